"""Every rlb command, declared once: the `dataplane` section and the DPVS `dpip` lines.

The definition strings are the grammar (rlb/commands/grammar.py): the config file,
`rlb -c`, the control socket and the shell all parse with this one graph.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from ipaddress import IPv4Interface, IPv4Network

from rlb.model.model import GLOBAL, SCOPES, CommandError, LPORT_RANGE, Model, Settings
from rlb.model.services import TCP, UDP, svc_key
from rlb.core import counters
from rlb.core.ports import iface_rx_packets, kernel_iface
from rlb.commands import render
from rlb.commands.grammar import Grammar
from rlb.commands.printing import Shown


@dataclass
class Reply:
    text: str = ""
    data: object = None


# The shell's modes are nodes, as FRR's VIEW_NODE, ENABLE_NODE and CONFIG_NODE; "exec"
# (ROOT) holds every dpip/ipvsadm command and is where `rlb -c` runs; config files run
# in CONFIG (whose parent is ROOT).
ROOT, VIEW, ENABLE, CONFIG, PIPE = "exec", "view", "enable", "config", "pipe"
# Privileges (`username NAME privilege view|admin`): a viewer runs readonly commands only.
ADMIN, VIEWER = "admin", "view"
SSH = "ssh"         # a session's kind (rlb.commands.users), Context.via of the daemon's ssh shell


@dataclass
class Context:
    """What a handler may touch: the model (and through it the data plane), and the session."""
    model: Model                    # what commands change: the candidate in configuration
    node: str = "exec"
    user: str = "root"
    privilege: str = ADMIN
    shell: bool = False             # an interactive session (modes lb> lb# lb(config)#)
    host: str = "rlb"               # {host} of the prompts: the instance name
    output: Reply = field(default_factory=Reply)  # what a `|` filter works on
    closed: bool = False            # `exit` at the top: the session ends
    running: Model = None           # the instance's model (ctx.model outside configuration)
    candidate: object = None        # rlb.control.commit.Candidate after `configure`
    section: object = None          # what a section (config-if, config-vs) edits
    length: int | None = None       # `terminal length`: lines a page (0: no paging)
    width: int | None = None        # `terminal width`: columns (0: the terminal's own)
    line: str = ""                  # the command being run, without its filters
    tty: str | None = None          # the terminal of an interactive `rlb` (console)
    active: float = field(default_factory=time.monotonic)   # last request (show users)
    via: str = ""                   # how the session came: "socket", "ssh" (the history says)
    # The commit machinery and exec dispatch (rlb.control.machinery.Control), set by control
    # when it runs a handler: the commands sit below control and do not import it.
    control: object = None

    def __post_init__(self):
        if self.running is None:
            self.running = self.model

    @property
    def configuring(self) -> bool:
        return self.candidate is not None

    @property
    def engine(self):
        return self.model.engine

    @property
    def prompt(self) -> str:
        return g.nodes[self.node].prompt.format(host=self.host)

    def session(self) -> dict:
        """What a shell client shows and obeys: the node, its prompt, who; closed when
        `exit` ended the session."""
        info = {"node": self.node, "prompt": self.prompt, "user": self.user,
                "privilege": self.privilege}
        if self.closed:
            info["closed"] = True
        if self.length is not None:
            info["rows"] = self.length
        if self.width is not None:
            info["columns"] = self.width
        return info


g = Grammar()
g.node("exec", prompt="{host}>")
DATAPLANE = g.node("dataplane", parent="exec", prompt="{host}(dataplane)#").name

# Where each stanza of the running configuration goes (Shown.rank), so that its text
# reads back in order: the data plane's settings and ports first; routes that need only
# their port before the addresses (an address does not make the network route an
# operator made first, and must not on the way back); then the interfaces; routes with
# a src (an address of ours), then those through a gateway (the route that puts the
# gateway on-link may be one with a src only); the services; the accounts.
SETTINGS, PORT_ONLY, INTERFACES, WITH_SRC, VIA, SERVICES, ACCOUNTS = range(7)


def route_group(r) -> int:
    """What a route needs before it: only its port, an address (its src), or a route that
    puts its gateway on-link (the stanza's rank)."""
    return VIA if r.via is not None else WITH_SRC if r.src is not None else PORT_ONLY


def laddr_made(model) -> set:
    """The addresses --add-laddr made that are left out of the text (the local-address lines
    make them again); one that a route has as its src is written, as the route needs it
    first (and the model keeps it as the operator's once its local address goes)."""
    return model.services._auto - {r.src for r in model.routes.values()}


g.words(**{
    "dpip": "DPVS-compatible interface, address, route and neighbour tool",
    "addr": "Protocol (IPv4) address management",
    "route": "Routing table management",
    "neigh": "Neighbour (ARP) table management",
    "link": "Port (link) information",
    "add": "Add an entry",
    "del": "Delete an entry",
    "show": "Show entries",
    "flush": "Remove all learned entries",
    "dev": "Port the entry belongs to",
    "sapool": "Address is a source-address pool (FNAT/SNAT local address)",
    "via": "Gateway (next hop)",
    "src": "Preferred source address",
    "scope": "Route scope",
    "host": "Own address (local delivery)",
    "global": "Reached through a gateway",
    "kni_host": "Deliver to the kernel through the kni interface",
    "mtu": "Path MTU",
    "metric": "Route metric",
    "default": "Default route (0.0.0.0/0)",
    "lladdr": "Link-layer (MAC) address",
    "-s": "dpip: include statistics; ipvsadm: the scheduler",
    "dataplane": "Data plane: its settings section, or (after show) its workers and counters",
    "workers": "Number of worker lcores",
    "port": "A DPDK port: name and PCI address or vdev",
    "pool-size": "mbufs in the packet pool",
    "route-table-size": "Maximum routes",
    "neigh-table-size": "Neighbour table slots per worker (power of two)",
    "neigh-timeout": "Seconds a learned neighbour stays valid",
    "idle-sleep": "Microseconds an idle worker sleeps (0: yield only)",
    "busy-poll": "Workers never sleep (lowest latency, one core each)",
    "forwarding": "Forward IPv4 packets along routes (off by default)",
    "memory": "MiB of memory for DPDK without hugepages (dataplane); the startup file (write)",
    "conn-table-size": "Connections per worker (new flows beyond it are dropped, counted)",
    "service-table-size": "Maximum virtual services",
    "dest-table-size": "Maximum real servers, all services together",
    "no-kni": "Do not create <port>.kni interfaces",
    "no": "Negate a setting",
    "vip-miss-to-kni": "Packets to a VIP port without a service go to kni (else dropped)",
    # router-style words, of configuration mode (configure.py) and of the shows (show.py)
    "interface": "A port: its addresses and static neighbours",
    "ip": "IPv4 settings",
    "address": "An address of the port",
    "neighbor": "A static neighbour (ARP entry)",
    "vs": "The virtual server table (IPVS)",
    "timeout": "Connection timeouts in seconds (tcp tcpfin udp)",
    "startup-config": "The startup configuration file",
    "tcp": "TCP",
    "udp": "UDP",
    "match": "A SNAT match service (proto=,src-range=,dst-range=,iif=,oif=)",
})

# ------------------------------------------------------------ dataplane section


@g.command("dataplane", node="exec", opens=DATAPLANE,
           show=lambda model, _: [Shown({}, model.settings, (SETTINGS,), bare=True)])
def enter_dataplane(ctx):
    ctx.node = DATAPLANE
    return Reply()


# Settings attribute -> its line in the dataplane section, the one table of them: the
# commands below are made from it, and so is the section `show running-config` writes
# (each command's show: a number that is not its default, a switch that is on).
# Model.set_setting checks a value beyond its range and gives the runtime ones to a
# running data plane.
NUMBERS = {"workers": "workers (1-16)", "memory": "memory (64-65536)",
           "pool_size": "pool-size (1024-4194304)",
           "route_table_size": "route-table-size (16-1048576)",
           "neigh_table_size": "neigh-table-size (16-1048576)",
           "conn_table_size": "conn-table-size (16-67108864)",
           "service_table_size": "service-table-size (1-65535)",
           "dest_table_size": "dest-table-size (1-16777215)",
           "neigh_timeout": "neigh-timeout (1-86400)", "idle_sleep": "idle-sleep (0-100000)"}
SWITCHES = {"busy_poll": "busy-poll", "forwarding": "forwarding",
            "vip_miss_kni": "vip-miss-to-kni"}
assert {f.name for f in fields(Settings)} == {*NUMBERS, *SWITCHES, "kni"}, "a setting unnamed"
DEFAULTS = Settings()


def _number_setting(attr, definition):
    word = definition.split()[0]

    def handler(ctx, n):
        ctx.model.set_setting(attr, n, word)
        return Reply()

    def show(model, settings):
        value = getattr(settings, attr)
        return [{"n": value}] if value != getattr(DEFAULTS, attr) else []
    handler.__name__ = handler.__qualname__ = f"dp_{attr}"
    g.command(f"{definition}$n", node=DATAPLANE, show=show, key=())(handler)


def _switch_setting(attr, word):
    def handler(ctx, no):
        ctx.model.set_setting(attr, not no, word)
        return Reply()
    handler.__name__ = handler.__qualname__ = f"dp_{attr}"
    g.command(f"[no] {word}", node=DATAPLANE,
              show=lambda model, settings: [{}] if getattr(settings, attr) else [])(handler)


# In the order of the section's lines: the numbers, no-kni, the ports, the switches.
for _attr, _definition in NUMBERS.items():
    _number_setting(_attr, _definition)


NO_KNI = "no-kni"


@g.command(NO_KNI, node=DATAPLANE, show=lambda model, settings: [] if settings.kni else [{}])
def dp_no_kni(ctx):
    ctx.model.set_setting("kni", False, NO_KNI)
    return Reply()


@g.command("port WORD$name WORD$devargs", node=DATAPLANE, key=("name",),
           show=lambda model, _: [{"name": p.name, "devargs": p.devargs}
                                  for p in model.ports.values()],
           help={"name": "Port name (dpdk0, dpdk1, ...)",
                 "devargs": "PCI address (0000:06:00.0) or vdev (net_af_packet0,iface=eth1)"})
def dp_port(ctx, name, devargs):
    if ctx.engine is not None:
        raise CommandError("port is read at start: change the config file and restart")
    ctx.model.add_port(name, devargs)
    return Reply()


for _attr, _word in SWITCHES.items():
    _switch_setting(_attr, _word)


# ------------------------------------------------------------------ dpip addr


def _ip_str(ip):
    return str(ip) if ip is not None else "0.0.0.0"


ADDR_HELP = {"addr": "Address with prefix length", "host": "Address (/32)", "dev": "Port name"}


@g.command("dpip addr add (A.B.C.D/M$addr|A.B.C.D$host) dev WORD$dev [sapool]", node="exec",
           help=ADDR_HELP)
def addr_add(ctx, addr, host, dev, sapool):
    ctx.model.add_address(addr or IPv4Interface(host), dev, bool(sapool))
    return Reply()


@g.command("dpip addr del (A.B.C.D/M$addr|A.B.C.D$host) dev WORD$dev", node="exec",
           help=ADDR_HELP)
def addr_del(ctx, addr, host, dev):
    ctx.model.del_address(addr or IPv4Interface(host), dev)
    return Reply()


@g.command("dpip addr show [dev WORD$dev]", node="exec", help={"dev": "Port name"}, readonly=True)
def addr_show(ctx, dev):
    if dev is not None:
        ctx.model.port(dev)
    rows, lines = [], []
    lports = LPORT_RANGE[1] - LPORT_RANGE[0] + 1
    for a in ctx.model.addresses:
        if dev is not None and a.port != dev:
            continue
        row = {"addr": str(a.iface), "dev": a.port, "scope": GLOBAL, "sapool": a.sapool}
        lines.append(f"inet {a.iface} scope {GLOBAL} {a.port}")
        tail = "     valid_lft forever preferred_lft forever"
        if a.sapool:
            # local ports in use by connections: each worker owns lport % workers
            used, miss = ctx.model.services.sapool_usage(a.ip)
            row.update(sa_used=used, sa_free=max(lports - used, 0), sa_miss=miss)
            tail += f" sa_used {used} sa_free {max(lports - used, 0)} sa_miss {miss}"
        lines.append(tail)
        rows.append(row)
    return Reply("\n".join(lines), rows)


# ----------------------------------------------------------------- dpip route

ROUTE_OPTS = ("{via A.B.C.D$via|src A.B.C.D$src|dev WORD$dev"
              f"|scope ({'|'.join(SCOPES)})$scope|mtu (68-9000)$mtu"
              "|metric (0-4294967295)$metric}")
ROUTE_HELP = {"prefix": "Destination network", "via": "Gateway address",
              "src": "Source address", "dev": "Port name", "mtu": "MTU", "metric": "Metric"}


def _prefix(prefix, default):
    if default:
        return IPv4Network("0.0.0.0/0")
    if prefix.ip != prefix.network.network_address:
        raise CommandError(f"{prefix} has host bits set (did you mean {prefix.network}?)")
    return prefix.network


@g.command("dpip route add (A.B.C.D/M$prefix|default) " + ROUTE_OPTS, node="exec", help=ROUTE_HELP)
def route_add(ctx, prefix, default, via, src, dev, scope, mtu, metric):
    if dev is None:
        raise CommandError("dev is required (the port the route leaves by)")
    ctx.model.add_route(_prefix(prefix, default), dev, via, src, scope, mtu or 1500, metric or 0)
    return Reply()


@g.command("dpip route del (A.B.C.D/M$prefix|default) " + ROUTE_OPTS, node="exec", help=ROUTE_HELP)
def route_del(ctx, prefix, default, via, src, dev, scope, mtu, metric):
    ctx.model.del_route(_prefix(prefix, default), dev)
    return Reply()


@g.command("dpip route show [dev WORD$dev]", node="exec", help={"dev": "Port name"}, readonly=True)
def route_show(ctx, dev):
    if dev is not None:
        ctx.model.port(dev)
    # DPVS lists host routes first, then networks, longest prefix first
    routes = sorted((r for r in ctx.model.routes.values() if dev is None or r.port == dev),
                    key=lambda r: -r.prefix.prefixlen)
    rows, lines = [], []
    for r in routes:
        rows.append({"prefix": str(r.prefix), "via": _ip_str(r.via), "src": _ip_str(r.src),
                     "dev": r.port, "mtu": r.mtu, "scope": r.scope, "metric": r.metric,
                     "proto": "auto"})
        lines.append(f"inet {r.prefix} via {_ip_str(r.via)} src {_ip_str(r.src)} dev {r.port} "
                     f"mtu {r.mtu} tos 0 scope {r.scope} metric {r.metric} proto auto")
    return Reply("\n".join(lines), rows)


# A virtual service as router-style lines name it (configuration mode's `virtual-server`,
# `clear ip vs counters`)
VS_HELP = {"tcp": "VIP:port", "udp": "VIP:port",
           "match": "proto=tcp,src-range=A-B,dst-range=A-B:P1-P2,iif=,oif="}
VS_DEF = "(tcp A.B.C.D:PORT$tcp|udp A.B.C.D:PORT$udp|match WORD$match)"


def _vs_key(tcp, udp, match):
    if match is not None:
        from rlb.model.match import parse_match
        from rlb.model.services import match_key
        return match_key(parse_match(match))
    vs = tcp or udp
    if vs.port is None:
        raise CommandError("a virtual server needs its port (VIP:PORT)")
    return svc_key(TCP if tcp else UDP, vs.addr, vs.port)



# ----------------------------------------------------------------- dpip neigh


@g.command("dpip neigh add A.B.C.D$ip lladdr MAC$mac dev WORD$dev", node="exec",
           help={"ip": "Neighbour address", "mac": "Its MAC address", "dev": "Port name"})
def neigh_add(ctx, ip, mac, dev):
    ctx.model.add_neighbour(ip, mac, dev)
    return Reply()


@g.command("dpip neigh del A.B.C.D$ip [dev WORD$dev]", node="exec",
           help={"ip": "Neighbour address", "dev": "Port name"})
def neigh_del(ctx, ip, dev):
    ctx.model.del_neighbour(ip, dev)
    return Reply()


@g.command("dpip neigh flush [dev WORD$dev]", node="exec", help={"dev": "Port name"},
           operational=True)
def neigh_flush(ctx, dev):
    index = ctx.model.port(dev).index if dev else -1
    if ctx.engine is not None:
        ctx.engine.neigh_flush(index)
    return Reply()


@g.command("dpip neigh show [dev WORD$dev]", node="exec", help={"dev": "Port name"}, readonly=True)
def neigh_show(ctx, dev):
    m = ctx.model
    if dev is not None:
        m.port(dev)
    names = {p.index: p.name for p in m.ports.values()}
    if ctx.engine is not None:
        entries = ctx.engine.neighbours()
    else:
        entries = [{"ip": int(n.ip), "mac": bytes.fromhex(n.mac.replace(":", "")),
                    "port": m.ports[n.port].index, "state": "PERMANENT", "worker": 0, "age": 0}
                   for n in m.neighbours.values()]
    rows, lines = [], []
    from ipaddress import IPv4Address
    for e in sorted(entries, key=lambda e: e["ip"]):
        port = names.get(e["port"], str(e["port"]))
        if dev is not None and port != dev:
            continue
        mac = ":".join(f"{b:02x}" for b in e["mac"])
        ip = str(IPv4Address(e["ip"]))
        kind = "static" if e["state"] == "PERMANENT" else "auto"
        rows.append({"ip": ip, "mac": mac, "state": e["state"], "dev": port,
                     "age": round(e["age"], 1), "type": kind})
        lines.append(f"ip: {ip:<16} mac: {mac}   state: {e['state']:<10}  dev: {port:<6}  "
                     f"core: {e['worker']}  {kind}")
    return Reply("\n".join(lines), rows)


# ------------------------------------------------------------------ dpip link


def _link_show(ctx, dev, stats):
    m = ctx.model
    ports = [m.port(dev)] if dev else list(m.ports.values())
    rows, lines = [], []
    for i, p in enumerate(ports, 1):
        row = {"name": p.name, "devargs": p.devargs, "kni": p.kni if m.settings.kni else None}
        if ctx.engine is not None:
            info = ctx.engine.port_info(p.index)
            mac = ":".join(f"{b:02X}" for b in info["mac"])
            row.update(mac=mac, mtu=info["mtu"], driver=info["driver"], queues=info["queues"])
            lines += [f"{p.index + 1}: {p.name}: socket 0 mtu {info['mtu']} "
                      f"rx-queue {info['queues']} tx-queue {info['queues']}",
                      f"    UP {info['speed']} Mbps full-duplex auto-nego",
                      f"    addr {mac} driver {info['driver']}"]
            if stats:
                st = ctx.engine.port_stats(p.index)
                row["stats"] = st
                shown = [c.name for c in counters.PORT.counters if c.shown]
                for k in range(0, len(shown), 4):
                    lines += _table4(shown[k:k + 4], st)
                iface = kernel_iface(p.devargs)
                now = iface_rx_packets(iface) if iface else None
                if now is not None and p.kernel_rx_base is not None:
                    st["kernel_rx"] = now - p.kernel_rx_base
                    st["lost_before_port"] = max(st["kernel_rx"] - st["ipackets"], 0)
                    lines += _table4(("kernel_rx", "lost_before_port"), st)
        else:
            lines.append(f"{p.index + 1}: {p.name}: {p.devargs} (data plane not running)")
        rows.append(row)
    if stats and ctx.engine is not None:
        pool = ctx.engine.pool()
        drops = {k: v for k, v in ctx.engine.reasons().items()}
        lines.append(f"mbuf pool: size {pool['size']} in_use {pool['in_use']} "
                     f"available {pool['available']}")
        lines.append("drops and kni punts by reason:")
        lines += [f"    {k:<20}{v}" for k, v in drops.items() if v] or ["    (none)"]
        return Reply("\n".join(lines), {"ports": rows, "pool": pool, "reasons": drops})
    return Reply("\n".join(lines), {"ports": rows})


def _table4(keys, st):
    # the column names are counter keys, shown as DPVS's `dpip link show -s` lays them out
    return ["    " + "".join(f"{k:<20}" for k in keys),
            "    " + "".join(f"{st[k]:<20}" for k in keys)]


@g.command("dpip link show [WORD$dev] [-s$stats]", node="exec", help={"dev": "Port name"},
           readonly=True)
def link_show(ctx, dev, stats):
    return _link_show(ctx, dev, stats)


@g.command("dpip -s$stats link show [WORD$dev]", node="exec", help={"dev": "Port name"},
           readonly=True)
def link_show_s(ctx, stats, dev):
    return _link_show(ctx, dev, stats)


@g.command("show dataplane", node="exec", readonly=True)
def dataplane_info(ctx):
    if ctx.engine is None:
        raise CommandError("data plane not running")
    s = ctx.model.settings
    data = {"workers": ctx.engine.workers(), "pool": ctx.engine.pool(),
            "reasons": ctx.engine.reasons(), "forwarding": s.forwarding,
            "busy_poll": s.busy_poll, "idle_sleep_us": s.idle_sleep}
    lines = [f"workers {len(data['workers'])}  forwarding {'on' if s.forwarding else 'off'}  "
             f"{SWITCHES['busy_poll'] if s.busy_poll else f'idle-sleep {s.idle_sleep}us'}"]
    for w in data["workers"]:
        lines.append(f"  worker {w['id']} lcore {w['lcore']} "
                     + " ".join(f"{k} {w[k]}" for k in counters.WORKER.names()))
    p = data["pool"]
    lines.append(f"mbuf pool: size {p['size']} in_use {p['in_use']} available {p['available']}")
    c = data["connections"] = ctx.engine.conn_summary()
    lines.append(f"connections: {c['conns']} of {c['capacity']} "
                 f"(per worker {', '.join(map(str, c['per_worker']))}), "
                 f"entry {c['entry_bytes']} bytes + {c['hash_bytes']} of hash, "
                 f"created {c['created']}, expired {c['expired']}")
    lines += [f"  {k:<20}{v}" for k, v in data["reasons"].items()]
    return Reply("\n".join(lines), data)


# ------------------------------------------------------------- the shell's modes
# `rlb` and the ssh shell start in VIEW (lb>); `enable` leads to ENABLE (lb#) and
# `configure` to CONFIG (lb(config)#). VIEW reaches the readonly commands of ROOT,
# ENABLE also the tools that apply at once (dpip, ipvsadm) and `configure`, CONFIG all
# of them, changing the session's candidate (rlb/control/server.py says how;
# rlb/commands/configure.py has configuration mode).

g.node(VIEW, parent="exec", prompt="{host}>")
g.node(ENABLE, parent="exec", prompt="{host}#")
g.node(CONFIG, parent="exec", prompt="{host}(config)#")
EXEC_MODES = (VIEW, ENABLE)


def lineage(node: str, configuring: bool = False) -> list[str]:
    """Where a line typed in `node` is looked for, in order: the node, then its parents
    (Grammar.ancestors). In the shell and in configuration mode (configuring) a
    section's way up is configuration mode, and exec's commands come last."""
    nodes = g.ancestors(node)
    if configuring:
        nodes.remove(ROOT)
        if node not in EXEC_MODES and CONFIG not in nodes:
            nodes.append(CONFIG)
        nodes.append(ROOT)
    return nodes

# What may follow a `|`: filters of a command's output, run by rlb/control/server.py
# with the output in ctx.output (an empty Reply when run on their own).
g.node(PIPE, prompt="")

g.words(**{
    "enable": "Turn on privileged commands",
    "disable": "Turn off privileged commands",
    "configure": "Enter configuration mode",
    "terminal": "The terminal: configure from it, its length and width",
    "length": "Lines a screen, for paging",
    "width": "Columns a line, for paging",
    "do": "Run an exec-mode command (show, clear, write) without leaving this mode",
    "exit": "Leave this mode (at the top: end the session)",
    "end": "Leave configuration mode (Ctrl-Z)",
    "include": "Only lines that match a regular expression",
    "exclude": "Only lines that do not match a regular expression",
    "json": "The command's data as JSON",
    "begin": "From the first line that matches a regular expression",
    "section": "Lines that match a regular expression, with the lines indented under them",
    "count": "The number of lines (that match a regular expression)",
})


@g.command("enable", node=VIEW, operational=True)
def enable(ctx):
    """Privileged mode: not readonly, so that view users are refused it; no change of
    the configuration (operational)."""
    ctx.node = ENABLE
    return Reply()


@g.command("disable", node=ENABLE, readonly=True)
def disable(ctx):
    ctx.node = VIEW
    return Reply()


@g.command("exit", node=VIEW, readonly=True)
def exit_view(ctx):
    ctx.closed = True
    return Reply()


@g.command("exit", node=ENABLE, readonly=True)
def exit_enable(ctx):
    ctx.closed = True
    return Reply()


TERMINAL_HELP = {"n": "0: no paging (length) or the terminal's own width"}


@g.command("terminal length (0-512)$n", node=ROOT, readonly=True, help=TERMINAL_HELP)
def terminal_length(ctx, n):
    """The session's page length, as IOS (`terminal length 0`: no --More--)."""
    ctx.length = n
    return Reply()


@g.command("terminal width (0-512)$n", node=ROOT, readonly=True, help=TERMINAL_HELP)
def terminal_width(ctx, n):
    ctx.width = n
    return Reply()


def do_exec(ctx, line):
    """An exec-mode command from a configuration mode, as IOS and FRR: shows, clears,
    `write memory`; the session stays where it is."""
    return ctx.control.run_exec(ctx, line)


for _node in (CONFIG, DATAPLANE):
    g.command("do LINE$line", node=_node, readonly=True,
              help={"line": "The command (show ..., clear ..., write memory)"})(do_exec)


# What Ctrl-Z types in configuration mode and its sections (rlb/shell/repl.py).
CTRL_Z = "end"

REGEX_HELP = {"regex": "Regular expression (Python syntax), to the end of the line"}


@g.command("include LINE$regex", node=PIPE, readonly=True, help=REGEX_HELP)
def pipe_include(ctx, regex):
    return Reply(render.grep(ctx.output.text, regex, keep=True), ctx.output.data)


@g.command("exclude LINE$regex", node=PIPE, readonly=True, help=REGEX_HELP)
def pipe_exclude(ctx, regex):
    return Reply(render.grep(ctx.output.text, regex, keep=False), ctx.output.data)


@g.command("begin LINE$regex", node=PIPE, readonly=True, help=REGEX_HELP)
def pipe_begin(ctx, regex):
    return Reply(render.begin(ctx.output.text, regex), ctx.output.data)


@g.command("section LINE$regex", node=PIPE, readonly=True, help=REGEX_HELP)
def pipe_section(ctx, regex):
    return Reply(render.section(ctx.output.text, regex), ctx.output.data)


@g.command("count [LINE$regex]", node=PIPE, readonly=True, help=REGEX_HELP)
def pipe_count(ctx, regex):
    """The count is the data too: `| count | json` prints the number."""
    n = render.count(ctx.output.text, regex)
    return Reply(str(n), n)


@g.command("json", node=PIPE, readonly=True)
def pipe_json(ctx):
    return Reply(render.as_json(ctx.output.data), ctx.output.data)


# ---------------------------------------------- values Tab and `?` offer, by binding


def _service_values(proto):
    def values(ctx):
        return [f"{s.vaddr}:{s.vport}" for s in ctx.model.services.table.values()
                if s.match is None and s.proto == proto]
    return values


def _real_servers(ctx):
    """Those of the service being edited (config-vs), else of every service."""
    table = ctx.model.services.table
    services = [table[ctx.section]] if ctx.section in table else table.values()
    return sorted({f"{d.addr}:{d.port}" for s in services for d in s.dests})


g.completer("dev", lambda ctx: list(ctx.model.ports))
g.completer("addr", lambda ctx: [str(a.iface) for a in ctx.model.addresses])
g.completer("prefix", lambda ctx: [str(r.prefix) for r in ctx.model.routes.values() if not r.auto])
g.completer("ip", lambda ctx: [str(ip) for ip in ctx.model.neighbours])
g.completer("tcp", _service_values(TCP))
g.completer("udp", _service_values(UDP))
g.completer("server", _real_servers)
g.completer("laddr", lambda ctx: [str(a.ip) for a in ctx.model.addresses if a.sapool])

import rlb.commands.ipvsadm  # noqa: E402,F401  (the ipvsadm commands, on this same grammar)
import rlb.commands.users  # noqa: E402,F401  (the ssh server's `username` and `ssh` commands)
import rlb.commands.configure  # noqa: E402,F401  (configuration mode: candidate, commit, sections)
import rlb.commands.show  # noqa: E402,F401  (router-style names of the dpip and ipvsadm views)
