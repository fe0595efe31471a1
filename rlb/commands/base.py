"""What every command module builds on: the grammar `g`, its nodes and modes, Context, Reply, `|` filters.

The definition strings are the grammar (rlb/commands/grammar.py): the config file,
`rlb -c`, the control socket and the shell all parse with this one graph. The modules
that declare commands on it are imported at the end (dpip.py: the `dataplane` section
and the DPVS `dpip` lines; ipvsadm.py; users.py; configure.py; show.py), so that
importing this one gives the whole grammar. The keyword help stays here, below them
all: a word is described before any module installs a command using it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from ipaddress import IPv4Network

from rlb.model.model import SCOPES, CommandError, Model
from rlb.model.services import TCP, UDP, svc_key
from rlb.commands import checks, render
from rlb.commands.grammar import Grammar
from rlb.commands.printing import Shown  # noqa: F401  (configure.py and users.py take it from here)


@dataclass
class Reply:
    text: str = ""
    data: object = None
    # A command that takes time (capture): an awaitable of its final Reply. The daemon's
    # event loop awaits it and the session waits for the answer; nothing else waits.
    wait: object = None


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
# gateway on-link may be one with a src only); the services; the accounts; routing, HA;
# operations last (metrics, logs).
SETTINGS, PORT_ONLY, INTERFACES, WITH_SRC, VIA, SERVICES, ACCOUNTS, ROUTING, HA, OPS = range(10)


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
    "listen": "Address and port a server of the daemon accepts connections on (ssh, metrics)",
    "seconds": "A time in seconds (commit confirmed: instead of minutes)",
    "dpip": "DPVS-compatible interface, address, route and neighbour tool",
    "addr": "Protocol (IPv4) address management",
    "route": "Routing table management",
    "neigh": "Neighbour (ARP) table management",
    "link": "Port (link) information; the port or bond a VLAN is on",
    "mode": "Forwarding mode; a bond's mode; a tunnel's",
    "key": "An authorized public key (an OpenSSH public key line); a GRE tunnel's key",
    # tunnel interfaces: `dpip tunnel` and the interface section's `tunnel mode`
    "tunnel": "IPIP and GRE tunnel interfaces",
    "ipip": "IP in IP (RFC 2003)",
    "gre": "GRE (RFC 2784), with a key (RFC 2890) and a checksum if asked",
    "local": "The tunnel's own end (an address of this LB)",
    "remote": "The tunnel's other end",
    "csum": "GRE checksums",
    "ttl": "The outer header's TTL (0: the inner packet's)",
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
    "kni-rate": "Bulk frames a worker hands the kernel a second (0: no limit); the routing "
                "and HA protocols' frames always pass",
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


# ------------------------------------------------ routes, as dpip and `ip route` say them
# `dpip route add` (dpip.py) and configuration mode's `ip route` (configure.py) take the
# same options and add the same way.

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


def route_add(ctx, prefix, default, via, src, dev, scope, mtu, metric):
    if dev is None:
        raise CommandError("dev is required (the port the route leaves by)")
    ctx.model.add_route(_prefix(prefix, default), dev, via, src, scope, mtu or 1500, metric or 0)
    return Reply()


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


# ------------------------------------------------------------- the shell's modes
# `rlb` and the ssh shell start in VIEW (lb>); `enable` leads to ENABLE (lb#) and
# `configure` to CONFIG (lb(config)#). VIEW reaches the readonly commands of ROOT,
# ENABLE also the tools that apply at once (dpip, ipvsadm) and `configure`, CONFIG all
# of them, changing the session's candidate (rlb/control/server.py says how;
# rlb/commands/configure.py has configuration mode).

g.node(VIEW, parent="exec", prompt="{host}>")
g.node(ENABLE, parent="exec", prompt="{host}#")
g.node(CONFIG, parent="exec", prompt="{host}(config)#")
# configuration mode's sections (rlb/commands/configure.py; health.py adds to VS)
IF, VS, OSPF, BGP = "config-if", "config-vs", "config-router", "config-router-bgp"
VRRP = "config-vrrp"
g.node(IF, parent=CONFIG, prompt="{host}(config-if)#")
g.node(VS, parent=CONFIG, prompt="{host}(config-vs)#")
g.node(OSPF, parent=CONFIG, prompt="{host}(config-router)#")
g.node(BGP, parent=CONFIG, prompt="{host}(config-router)#")       # FRR's prompt for both
g.node(VRRP, parent=CONFIG, prompt="{host}(config-vrrp)#")
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
    "count": "A count: of the lines (that match a regular expression), of frames (capture)",
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

# a check clause's words (rlb/commands/checks.py: derived from the checkers' settings)
g.words(**{w: text for w, text in checks.WORDS.items() if w not in g._words})

import rlb.commands.dpip  # noqa: E402,F401  (the `dataplane` section and the dpip commands)
import rlb.commands.ipvsadm  # noqa: E402,F401  (the ipvsadm commands, on this same grammar)
import rlb.commands.users  # noqa: E402,F401  (the ssh server's `username` and `ssh` commands)
import rlb.commands.configure  # noqa: E402,F401  (configuration mode: candidate, commit, sections)
import rlb.commands.show  # noqa: E402,F401  (router-style names of the dpip and ipvsadm views)
import rlb.commands.routing  # noqa: E402,F401  (what the route announcements do)
import rlb.commands.ha  # noqa: E402,F401  (master/backup: the VRRP sections, show vrrp)
import rlb.commands.ops  # noqa: E402,F401  (operations: metrics, logs)
