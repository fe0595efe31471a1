"""The `dataplane` section (its NUMBERS/SWITCHES settings, ports) and the DPVS `dpip` commands."""
from __future__ import annotations

from dataclasses import fields
from ipaddress import IPv4Interface

from rlb.model.model import (BOND, BOND_MODES, DOT1Q, GLOBAL, TUNNEL, Tunnel, PORT, VLAN, CommandError, LPORT_RANGE,
                             Settings)
from rlb.core import counters
from rlb.core.ports import iface_rx_packets, kernel_iface
from rlb.commands.base import (DATAPLANE, ROUTE_HELP, ROUTE_OPTS, SETTINGS, Reply, _prefix, g,
                               route_add)
from rlb.commands.printing import Shown

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
           "neigh_timeout": "neigh-timeout (1-86400)", "idle_sleep": "idle-sleep (0-100000)",
           "kni_rate": "kni-rate (0-10000000)"}
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
                                  for p in [*model.ports.values(), *model.slaves.values()]
                                  if p.kind == PORT],
           help={"name": "Port name (dpdk0, dpdk1, ...)",
                 "devargs": "PCI address (0000:06:00.0) or vdev (net_af_packet0,iface=eth1)"})
def dp_port(ctx, name, devargs):
    if ctx.engine is not None:
        raise CommandError("port is read at start: change the config file and restart")
    ctx.model.add_port(name, devargs)
    return Reply()



g.words(**{
    "bond": "A bond of data ports (DPDK's bonding PMD), as dpvs.bond.conf declares one",
    "slaves": "The data ports it bonds (declared above it)",
    "primary": "The slave whose MAC the bond takes",
    "xmit-policy": "How mode 4 spreads flows over its slaves",
    "layer2": "By MAC addresses",
    "layer23": "By MAC and IP addresses",
    "layer34": "By IP addresses and ports",
    "lacp-rate": "How often mode 4 asks its partner for LACPDUs",
    "slow": "Every 30 seconds (DPDK's bonding PMD: the only rate it asks for)",
    "fast": "Every second (refused: DPDK's bonding PMD cannot ask for it)",
    "vlan": "VLAN interfaces (802.1Q, 802.1ad) on ports and bonds",
    "proto": "The VLAN tag's protocol",
    "802.1q": "802.1Q (0x8100, default)",
    "802.1ad": "802.1ad (0x88a8)",
    "id": "The VLAN id",
})


LACP_FAST = "fast"


def _bonds(model, _):
    out = []
    for p in model.ports.values():
        if p.kind == BOND:
            b = p.bond
            args = {"name": p.name, "mode": b.mode, "s1": b.slaves[0], "s2": b.slaves[1]}
            args.update({f"s{k}": sl for k, sl in enumerate(b.slaves[2:], 3)})
            if b.primary:
                args["primary"] = b.primary
            if b.xmit_policy:
                args["policy"] = b.xmit_policy
            out.append(args)
    return out


@g.command("bond WORD$name mode (0-4)$mode slaves WORD$s1 WORD$s2 [WORD$s3 [WORD$s4]] "
           "[primary WORD$primary] [xmit-policy (layer2|layer23|layer34)$policy] "
           "[lacp-rate (slow|fast)$rate]",
           node=DATAPLANE, key=("name",), show=_bonds,
           help={"name": "Bond name (bond0, ...)", "mode": "0 round-robin, 4 802.3ad (LACP)",
                 "s1": "A data port declared above", "s2": "Another one",
                 "s3": "Another one", "s4": "Another one",
                 "primary": "The slave whose MAC the bond takes"})
def dp_bond(ctx, name, mode, s1, s2, s3, s4, primary, policy, rate):
    if ctx.engine is not None:
        raise CommandError("bond is read at start: change the config file and restart")
    if rate == LACP_FAST:
        # DPDK's bonding PMD (22.11) never sets its actor's LACP_Timeout bit and has no
        # call that does: the partner is asked for a LACPDU every 30 s whatever we say
        raise CommandError("lacp-rate fast: DPDK's bonding PMD always asks its partner for "
                           "the slow rate (30 s); a slave's lost link is seen by its carrier "
                           "at once instead (rlb watches it)")
    slaves = [s for s in (s1, s2, s3, s4) if s is not None]
    ctx.model.add_bond(name, mode, slaves, primary, policy)
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

g.command("dpip route add (A.B.C.D/M$prefix|default) " + ROUTE_OPTS, node="exec",
          help=ROUTE_HELP)(route_add)


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
        row = {"name": p.name, "devargs": p.devargs, "kni": p.kni if m.settings.kni else None,
               "kind": p.kind}
        if p.kind == VLAN:
            row["vlan"] = {"link": p.link, "id": p.vid, "proto": p.proto}
        if ctx.engine is not None:
            info = ctx.engine.port_info(p.index)
            mac = ":".join(f"{b:02X}" for b in info["mac"])
            row.update(mac=mac, mtu=info["mtu"], driver=info["driver"], queues=info["queues"],
                       up=info["up"])
            lines += [f"{p.index + 1}: {p.name}: socket 0 mtu {info['mtu']} "
                      f"rx-queue {info['queues']} tx-queue {info['queues']}",
                      f"    {'UP' if info['up'] else 'DOWN'} {info['speed']} Mbps full-duplex "
                      "auto-nego",
                      f"    addr {mac} driver {info['driver']}"]
            if p.kind == VLAN:
                lines.append(f"    vlan {p.proto} id {p.vid} link {p.link}")
            if p.kind == TUNNEL:
                t = p.tunnel
                row["tunnel"] = {"mode": t.mode, "local": str(t.local), "remote": str(t.remote)}
                lines.append(f"    tunnel {t.mode} local {t.local} remote {t.remote}")
            if p.kind == BOND:
                row["bond"] = bond = _bond_rows(m, p, ctx.engine.bond_info(p.index))
                lines += _bond_lines(p, bond, stats)
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


def _bond_rows(m, p, info) -> dict:
    """The engine's view of a bond, its slaves named as the config names them."""
    names = {sl.devargs.split(",")[0]: sl.name for sl in m.slaves.values()}
    by_id = {s["port_id"]: s for s in info["slaves"]}
    for s in info["slaves"]:
        s["name"] = names.get(s["device"], s["device"])
    for s in info["slaves"]:
        s["in_bond"] = True
    there = {s["name"] for s in info["slaves"]}
    info["slaves"] += [{"name": sl, "device": m.slaves[sl].devargs.split(",")[0], "up": False,
                        "active": False, "in_bond": False, "stats": {}}
                       for sl in p.bond.slaves if sl not in there]      # its link is down
    primary = by_id.get(info["primary"])
    return {"mode": info["mode"], "mode_name": BOND_MODES.get(info["mode"], str(info["mode"])),
            "primary": primary["name"] if primary else None,
            "xmit_policy": p.bond.xmit_policy,
            "slaves": info["slaves"]}


def _bond_lines(p, bond, stats) -> list:
    lines = [f"    bond mode {bond['mode']} ({bond['mode_name']}) primary {bond['primary']}"
             + (f" xmit-policy {bond['xmit_policy']}" if bond["xmit_policy"] else "")]
    for s in bond["slaves"]:
        lines.append(f"    slave {s['name']}: {'UP' if s['up'] else 'DOWN'}, "
                     f"{'active' if s['active'] else 'inactive'}"
                     f"{'' if s['in_bond'] else ' (out of the bond until its link is back)'}")
        lacp = s.get("lacp")
        if lacp:
            partner = lacp["partner"]
            known = "defaulted" not in partner["state"] and partner["system"] != "00:00:00:00:00:00"
            lines.append(f"      lacp {lacp['selected']}, actor {','.join(lacp['actor']['state'])}; "
                         + (f"partner {partner['system']} key {partner['key']} port "
                            f"{partner['port']} {','.join(partner['state'])}" if known
                            else "no partner"))
        if stats and s["stats"]:
            lines += _table4(("ipackets", "opackets", "ierrors", "imissed"), s["stats"])
    return lines


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


def cycles(w: dict) -> dict:
    """Where a worker's cycles go, from its counters: the share of its (awake) cycles
    spent on busy passes, cycles per packet taken on them, packets per receive burst
    (None before there is any)."""
    busy, idle = w["busy_cycles"], w["idle_cycles"]
    return {"busy_share": busy / (busy + idle) if busy + idle else None,
            "cycles_per_packet": busy / w["rx_packets"] if w["rx_packets"] else None,
            "packets_per_burst": w["rx_packets"] / w["rx_bursts"] if w["rx_bursts"] else None}


def _ratio(v, scale=1, unit=""):
    return "-" if v is None else f"{v * scale:.1f}{unit}"


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
        w.update(cycles(w))
        lines.append(f"  worker {w['id']} lcore {w['lcore']} "
                     + " ".join(f"{k} {w[k]}" for k in counters.WORKER.names()))
        lines.append(f"    busy {_ratio(w['busy_share'], 100, '%')} of its cycles, "
                     f"{_ratio(w['cycles_per_packet'])} cycles/packet, "
                     f"{_ratio(w['packets_per_burst'])} packets/burst")
    p = data["pool"]
    lines.append(f"mbuf pool: size {p['size']} in_use {p['in_use']} available {p['available']}")
    c = data["connections"] = ctx.engine.conn_summary()
    lines.append(f"connections: {c['conns']} of {c['capacity']} "
                 f"(per worker {', '.join(map(str, c['per_worker']))}), "
                 f"entry {c['entry_bytes']} bytes + {c['hash_bytes']} of hash, "
                 f"created {c['created']}, expired {c['expired']}, adopted {c['adopted']}")
    lines += [f"  {k:<20}{v}" for k, v in data["reasons"].items()]
    return Reply("\n".join(lines), data)


# ------------------------------------------------------------------ dpip vlan

VLAN_HELP = {"name": "Its name (default LINK.ID)", "link": "The port or bond it is on",
             "vid": "VLAN id"}


@g.command("dpip vlan add [WORD$name] link WORD$link [proto (802.1q|802.1ad)$proto] "
           "id (1-4094)$vid", node="exec", help=VLAN_HELP)
def vlan_add(ctx, name, link, proto, vid):
    if name is not None and name in ctx.model.ports:
        raise CommandError(f"{name} already exists")
    made = ctx.model.add_vlan(name, link, vid, proto or DOT1Q)
    return Reply("" if name else made, {"name": made})


@g.command("dpip vlan del WORD$name", node="exec", help={"name": "A VLAN interface"})
def vlan_del(ctx, name):
    ctx.model.del_iface(name)
    return Reply()


@g.command("dpip vlan show [WORD$name]", node="exec", help={"name": "A VLAN interface"},
           readonly=True)
def vlan_show(ctx, name):
    if name is not None:
        ctx.model.port(name)            # (another kind of interface: no VLAN to show)
    rows = [{"name": p.name, "link": p.link, "proto": p.proto, "id": p.vid,
             "kni": p.kni if ctx.model.settings.kni else None}
            for p in ctx.model.ports.values() if p.kind == VLAN and name in (None, p.name)]
    lines = [f"{r['name']}: link {r['link']} proto {r['proto']} id {r['id']}" for r in rows]
    return Reply("\n".join(lines), rows)


# ---------------------------------------------------------------- dpip tunnel

g.words(change="Change an entry")
TUNNEL_OPTS = "[dev WORD$dev] [key (0-4294967295)$key] [csum$csum] [ttl (0-255)$ttl]"
TUNNEL_HELP = {"name": "The tunnel interface's name", "local": "This LB's end",
               "remote": "The other end", "dev": "The link it leaves by (the routes decide)",
               "key": "GRE key", "ttl": "Outer TTL (0: the inner packet's)"}
FNAT_WARNING = ("Note: a tunnel's packets all hash to one worker: FNAT, SNAT and NAT "
                "through it run on that one (DPVS's tutorial says the same).")


def _tunnel_reply(ctx, name):
    r = tunnel_show(ctx, name)
    return Reply(FNAT_WARNING if ctx.model.settings.workers > 1 else "", r.data)


@g.command("dpip tunnel add (mode (ipip|gre)$mode WORD$name|WORD$name2 mode (ipip|gre)$mode2) "
           f"local A.B.C.D$local remote A.B.C.D$remote {TUNNEL_OPTS}", node="exec",
           help={**TUNNEL_HELP, "name2": "The tunnel interface's name"})
def tunnel_add(ctx, mode, name, name2, mode2, local, remote, dev, key, csum, ttl):
    name = name or name2
    ctx.model.add_tunnel(name, Tunnel(mode or mode2, local, remote, dev, key, bool(csum),
                                      ttl or 0))
    return _tunnel_reply(ctx, name)


@g.command("dpip tunnel change WORD$name [mode (ipip|gre)$mode] [local A.B.C.D$local] "
           f"[remote A.B.C.D$remote] {TUNNEL_OPTS}", node="exec", help=TUNNEL_HELP)
def tunnel_change(ctx, name, mode, local, remote, dev, key, csum, ttl):
    """As `ip tunnel change`: what is given changes, the rest stays."""
    p = ctx.model.port(name)
    if p.kind != TUNNEL:
        raise CommandError(f"{name} is not a tunnel")
    t = p.tunnel
    ctx.model.change_tunnel(name, Tunnel(
        mode or t.mode, local or t.local, remote or t.remote, dev or t.dev,
        t.key if key is None else key, bool(csum) or t.csum, t.ttl if ttl is None else ttl))
    return _tunnel_reply(ctx, name)


@g.command("dpip tunnel del WORD$name", node="exec", help={"name": "A tunnel interface"})
def tunnel_del(ctx, name):
    ctx.model.del_iface(name, TUNNEL)
    return Reply()


@g.command("dpip tunnel show [WORD$name]", node="exec", help={"name": "A tunnel interface"},
           readonly=True)
def tunnel_show(ctx, name):
    if name is not None:
        ctx.model.port(name)            # (another kind of interface: no tunnel to show)
    rows, lines = [], []
    for p in ctx.model.ports.values():
        if p.kind != TUNNEL or name not in (None, p.name):
            continue
        t = p.tunnel
        rows.append({"name": p.name, "mode": t.mode, "local": str(t.local),
                     "remote": str(t.remote), "dev": t.dev, "key": t.key, "csum": t.csum,
                     "ttl": t.ttl, "kni": p.kni if ctx.model.settings.kni else None})
        lines.append(f"{p.name}: {t.mode} remote {t.remote} local {t.local}"
                     + (f" dev {t.dev}" if t.dev else "")
                     + (f" key {t.key}" if t.key is not None else "")
                     + (" csum" if t.csum else "") + f" ttl {t.ttl or 'inherit'}")
    return Reply("\n".join(lines), rows)
