"""Routing as the shell shows it: `show routing vip` (rlb.routing.announce), each VIP a
service announces, its state, why, since when and when it may come back."""
from __future__ import annotations

import time

from dataclasses import replace

from rlb.commands.base import BGP, CONFIG, OSPF, ROOT, ROUTING, Reply, Shown, g
from rlb.errors import CommandError
from rlb.model.routing import Bgp, BgpNeighbor, Ospf, OspfInterface

g.words(**{
    "routing": "Route announcement of the VIPs",
    "vip": "Each VIP a service announces (`announce` in its virtual-server section)",
    "drain": "Withdraw every VIP of this LB (maintenance); connections drain",
    "undrain": "Announce the VIPs again as their services' health says",
    "router": "A routing protocol of this LB (FRR's daemons, run by rlb)",
    "ospf": "OSPFv2 (FRR's ospfd on the ports' kni)",
    "router-id": "OSPF router ID",
    "network": "Enable OSPF on the interfaces of a network",
    "area": "OSPF area",
    "maximum-paths": "Equal-cost paths OSPF installs (ECMP)",
    "point-to-point": "Point-to-point network type (no DR election)",
    "hello-interval": "Seconds between hellos",
    "dead-interval": "Seconds without a hello before the neighbour is down",
    "cost": "OSPF interface cost",
    "bfd": "A BFD session with each neighbour (FRR's bfdd): a dead neighbour in ~1 s",
    "passive": "Announce the interface's networks, send no hellos",
    "peers": "BFD peers",
    "frr": "A line of FRR's own for this section, passed as typed (FRR checks it at commit)",
    "bgp": "BGP (exabgp, run by rlb; FRR's bfdd beside it for BFD)",
    "remote-as": "The neighbour's AS",
    "timers": "BGP keepalive and hold time",
    "update-source": "Our address for the session (default: the kernel's choice)",
    "multiplier": "BFD packets missed before the neighbour is down",
    "bfd-interval": "Milliseconds between BFD packets on this interface",
    "bfd-multiplier": "BFD packets missed before a neighbour on it is down",
    "vty-socket": "The directory of its daemons' vty sockets (vtysh --vty_socket)",
    "pathspace": "FRR's pathspace (vtysh -N NAME: /var/run/frr/NAME/)",
    "drain-on-stop": "On SIGTERM, withdraw every VIP and wait for the connections first",
    "summary": "BGP sessions (exabgp's neighbours) and the routes sent",
})

# --------------------------------------------------------------------- router ospf


def _ospf(ctx) -> Ospf:
    return ctx.model.routing.ospf or Ospf()


def _set_ospf(ctx, ospf: Ospf) -> Reply:
    ctx.model.routing.set_ospf(ospf)
    return Reply()


@g.command("router ospf", node=CONFIG, opens=OSPF,
           show=lambda model, _: [Shown({}, model.routing.ospf, (ROUTING,), bare=True)]
           if model.routing.ospf is not None else [])
def router_ospf(ctx):
    """OSPF for this LB: FRR's zebra and ospfd (and bfdd) in its namespace, on the ports'
    kni, configured from this section; the VIPs of the services with `announce`."""
    if ctx.model.routing.ospf is None:
        ctx.model.routing.set_ospf(Ospf())
    ctx.node = OSPF
    return Reply()


@g.command("no router ospf", node=CONFIG)
def no_router_ospf(ctx):
    ctx.model.routing.set_ospf(None)
    return Reply()


@g.command("ospf router-id A.B.C.D$rid", node=OSPF, key=(),
           show=lambda model, ospf: [{"rid": ospf.router_id}] if ospf.router_id else [])
def ospf_router_id(ctx, rid):
    return _set_ospf(ctx, replace(_ospf(ctx), router_id=rid))


@g.command("no ospf router-id", node=OSPF)
def ospf_no_router_id(ctx):
    return _set_ospf(ctx, replace(_ospf(ctx), router_id=None))


def _show_networks(model, ospf):
    return [{"prefix": p, "area": a} if "." in a else {"prefix": p, "area_id": int(a)}
            for p, a in ospf.networks]


@g.command("network A.B.C.D/M$prefix area (A.B.C.D$area|(0-4294967295)$area_id)", node=OSPF,
           key=("prefix",), show=_show_networks,
           help={"prefix": "Network (its interfaces run OSPF)", "area": "Area as an address",
                 "area_id": "Area as a number"})
def ospf_network(ctx, prefix, area, area_id):
    return _set_ospf(ctx, _ospf(ctx).with_network(
        prefix.network, str(area) if area is not None else str(area_id)))


@g.command("no network A.B.C.D/M$prefix", node=OSPF, help={"prefix": "Network"})
def ospf_no_network(ctx, prefix):
    if prefix.network not in dict(_ospf(ctx).networks):
        raise CommandError(f"network {prefix.network} is not in router ospf")
    return _set_ospf(ctx, _ospf(ctx).with_network(prefix.network, None))


@g.command("maximum-paths (1-64)$n", node=OSPF, key=(),
           show=lambda model, ospf: [{"n": ospf.maximum_paths}] if ospf.maximum_paths else [])
def ospf_maximum_paths(ctx, n):
    return _set_ospf(ctx, replace(_ospf(ctx), maximum_paths=n))


@g.command("no maximum-paths", node=OSPF)
def ospf_no_maximum_paths(ctx):
    return _set_ospf(ctx, replace(_ospf(ctx), maximum_paths=None))


# OspfInterface's fields as the interface line binds them: switches, then numbers
IF_FLAGS = ("point_to_point", "bfd", "passive")
IF_NUMBERS = ("hello", "dead", "cost", "bfd_interval", "bfd_multiplier")


def _show_interfaces(model, ospf):
    out = []
    for port, s in ospf.interfaces:
        args = {"dev": port}
        args.update({f: True for f in IF_FLAGS if getattr(s, f)})
        args.update({n: getattr(s, n) for n in IF_NUMBERS if getattr(s, n) is not None})
        out.append(args)
    return out


@g.command("interface WORD$dev [{point-to-point$point_to_point|hello-interval (1-65535)$hello|"
           "dead-interval (1-65535)$dead|cost (1-65535)$cost|bfd$bfd|passive$passive|"
           "bfd-interval (10-60000)$bfd_interval|bfd-multiplier (2-255)$bfd_multiplier}]",
           node=OSPF, key=("dev",), show=_show_interfaces,
           help={"dev": "Port (OSPF runs on its kni)", "hello": "Seconds (default 10)",
                 "dead": "Seconds (default 40)", "cost": "Interface cost",
                 "bfd_interval": "Milliseconds between BFD packets, sent and wanted (300)",
                 "bfd_multiplier": "BFD packets missed before the neighbour is down (3)"})
def ospf_interface(ctx, dev, point_to_point, hello, dead, cost, bfd, passive, bfd_interval,
                   bfd_multiplier):
    """OSPF's settings of a port's kni (FRR's `interface DEV.kni` / `ip ospf ...`): the
    whole line, as a real server's `check` clause is. `bfd` with `bfd-interval 100` sees
    a dead neighbour in 0.3 s (a bfdd profile of its own)."""
    ctx.model.port(dev)                               # one of ours, else its error
    if hello and dead and dead <= hello:
        raise CommandError(f"dead-interval {dead} must be longer than hello-interval {hello}")
    if (bfd_interval or bfd_multiplier) and not bfd:
        raise CommandError("bfd-interval and bfd-multiplier go with bfd")
    s = OspfInterface(bool(point_to_point), hello, dead, cost, bool(bfd), bool(passive),
                      bfd_interval, bfd_multiplier)
    return _set_ospf(ctx, _ospf(ctx).with_interface(dev, s))


@g.command("no interface WORD$dev", node=OSPF, help={"dev": "Port"})
def ospf_no_interface(ctx, dev):
    if _ospf(ctx).interface(dev) is None:
        raise CommandError(f"interface {dev} is not in router ospf")
    return _set_ospf(ctx, _ospf(ctx).with_interface(dev, None))


@g.command("frr LINE$line", node=OSPF, key=("line",),
           show=lambda model, ospf: [{"line": x} for x in ospf.frr],
           help={"line": "FRR's words (`area 0.0.0.1 stub`, `auto-cost reference-bandwidth "
                         "1000`), under its `router ospf`"})
def ospf_frr(ctx, line):
    """What this section does not say in its own words, in FRR's: written under FRR's
    `router ospf` as typed; a line FRR does not take is refused at commit, in its words."""
    line = " ".join(line.split())
    if line in _ospf(ctx).frr:
        return Reply()
    return _set_ospf(ctx, replace(_ospf(ctx), frr=_ospf(ctx).frr + (line,)))


@g.command("no frr LINE$line", node=OSPF, help={"line": "The line, as typed"})
def ospf_no_frr(ctx, line):
    line = " ".join(line.split())
    if line not in _ospf(ctx).frr:
        raise CommandError(f"frr {line!r} is not in router ospf")
    return _set_ospf(ctx, replace(_ospf(ctx), frr=tuple(x for x in _ospf(ctx).frr
                                                        if x != line)))


# --------------------------------------------------------------------- router bgp


def _bgp(ctx) -> Bgp:
    if ctx.model.routing.bgp is None:
        raise CommandError("no router bgp: `router bgp ASN` first")
    return ctx.model.routing.bgp


def _set_bgp(ctx, bgp: Bgp) -> Reply:
    ctx.model.routing.set_bgp(bgp)
    return Reply()


@g.command("router bgp (1-4294967295)$asn", node=CONFIG, opens=BGP,
           show=lambda model, _: [Shown({"asn": model.routing.bgp.asn}, model.routing.bgp,
                                        (ROUTING,), bare=True)]
           if model.routing.bgp is not None else [],
           help={"asn": "This LB's AS number"})
def router_bgp(ctx, asn):
    """BGP for this LB: exabgp in its namespace, configured from this section, announcing
    the VIPs of the services with `announce` (next-hop self); BFD with a neighbour by
    FRR's bfdd beside it."""
    bgp = ctx.model.routing.bgp
    if bgp is not None and bgp.asn != asn:
        raise CommandError(f"BGP runs as AS {bgp.asn}: `no router bgp` first")
    if bgp is None:
        ctx.model.routing.set_bgp(Bgp(asn))
    ctx.node = BGP
    return Reply()


@g.command("no router bgp [(1-4294967295)$asn]", node=CONFIG, help={"asn": "Its AS number"})
def no_router_bgp(ctx, asn):
    bgp = ctx.model.routing.bgp
    if bgp is None or (asn is not None and asn != bgp.asn):
        raise CommandError(f"no router bgp {asn or ''}".rstrip() + " is configured")
    ctx.model.routing.set_bgp(None)
    return Reply()


@g.command("bgp router-id A.B.C.D$rid", node=BGP, key=(),
           show=lambda model, bgp: [{"rid": bgp.router_id}] if bgp.router_id else [])
def bgp_router_id(ctx, rid):
    return _set_bgp(ctx, replace(_bgp(ctx), router_id=rid))


@g.command("no bgp router-id", node=BGP)
def bgp_no_router_id(ctx):
    return _set_bgp(ctx, replace(_bgp(ctx), router_id=None))


def _peer(ctx, peer) -> BgpNeighbor:
    n = _bgp(ctx).neighbor(peer)
    if n is None:
        raise CommandError(f"neighbor {peer}: give its remote-as first")   # FRR's order too
    return n


def _set_peer(ctx, peer, **changes) -> Reply:
    return _set_bgp(ctx, _bgp(ctx).with_neighbor(peer, replace(_peer(ctx, peer), **changes)))


@g.command("neighbor A.B.C.D$peer remote-as (1-4294967295)$remote_as", node=BGP,
           key=("peer",),
           show=lambda model, bgp: [{"peer": a, "remote_as": n.remote_as}
                                    for a, n in bgp.neighbors],
           help={"peer": "The neighbour's address", "remote_as": "Its AS number"})
def bgp_neighbor(ctx, peer, remote_as):
    n = _bgp(ctx).neighbor(peer)
    n = replace(n, remote_as=remote_as) if n is not None else BgpNeighbor(remote_as)
    return _set_bgp(ctx, _bgp(ctx).with_neighbor(peer, n))


@g.command("no neighbor A.B.C.D$peer [remote-as (1-4294967295)$remote_as]", node=BGP,
           help={"peer": "The neighbour's address", "remote_as": "Its AS number"})
def bgp_no_neighbor(ctx, peer, remote_as):
    n = _peer(ctx, peer)
    if remote_as is not None and remote_as != n.remote_as:
        raise CommandError(f"neighbor {peer} is in AS {n.remote_as}, not {remote_as}")
    return _set_bgp(ctx, _bgp(ctx).with_neighbor(peer, None))


@g.command("neighbor A.B.C.D$peer timers (0-21845)$keepalive (0-65535)$hold", node=BGP,
           key=("peer",),
           show=lambda model, bgp: [{"peer": a, "keepalive": n.hold // 3, "hold": n.hold}
                                    for a, n in bgp.neighbors if n.hold is not None],
           help={"peer": "The neighbour's address", "keepalive": "Seconds: hold/3 (exabgp's)",
                 "hold": "Seconds without a message before the session is down (0: never)"})
def bgp_neighbor_timers(ctx, peer, keepalive, hold):
    """Hold time (and keepalive) of a session: exabgp sends a keepalive every hold/3 s, so
    keepalive is that; exabgp says at commit what hold times it takes."""
    if keepalive != hold // 3:
        raise CommandError(f"exabgp keeps a session alive every hold/3 seconds: "
                           f"timers {hold // 3} {hold}")
    return _set_peer(ctx, peer, hold=hold)


@g.command("no neighbor A.B.C.D$peer timers", node=BGP, help={"peer": "The neighbour"})
def bgp_no_neighbor_timers(ctx, peer):
    return _set_peer(ctx, peer, hold=None)


def _show_bfd(model, bgp):
    out = []
    for a, n in bgp.neighbors:
        if n.bfd:
            args = {"peer": a, "interval": n.bfd_interval, "multiplier": n.bfd_multiplier}
            out.append({k: v for k, v in args.items() if v is not None})
    return out


@g.command("neighbor A.B.C.D$peer bfd [interval (10-60000)$interval] "
           "[multiplier (2-255)$multiplier]", node=BGP, key=("peer",), show=_show_bfd,
           help={"peer": "The neighbour's address",
                 "interval": "Milliseconds between BFD packets, sent and wanted (300)",
                 "multiplier": "Packets missed before the neighbour is down (3)"})
def bgp_neighbor_bfd(ctx, peer, interval, multiplier):
    """A BFD session with the neighbour (FRR's bfdd beside exabgp; the neighbour runs BFD
    for its BGP session too): a dead LB is seen after interval x multiplier (0.3 s with
    `interval 100`), not after the hold time."""
    return _set_peer(ctx, peer, bfd=True, bfd_interval=interval, bfd_multiplier=multiplier)


@g.command("no neighbor A.B.C.D$peer bfd", node=BGP, help={"peer": "The neighbour"})
def bgp_no_neighbor_bfd(ctx, peer):
    return _set_peer(ctx, peer, bfd=False, bfd_interval=None, bfd_multiplier=None)


@g.command("neighbor A.B.C.D$peer update-source A.B.C.D$source", node=BGP, key=("peer",),
           show=lambda model, bgp: [{"peer": a, "source": n.source} for a, n in bgp.neighbors
                                    if n.source is not None],
           help={"peer": "The neighbour's address", "source": "Our address (on a kni)"})
def bgp_neighbor_source(ctx, peer, source):
    return _set_peer(ctx, peer, source=source)


@g.command("no neighbor A.B.C.D$peer update-source", node=BGP, help={"peer": "The neighbour"})
def bgp_no_neighbor_source(ctx, peer):
    return _set_peer(ctx, peer, source=None)


@g.command("show bgp summary", node=ROOT, readonly=True)
def show_bgp_summary(ctx):
    """BGP sessions as exabgp has them (its neighbour events), and the VIPs it announces."""
    speaker = ctx.model.speaker
    if speaker is None:
        raise CommandError("data plane not running")       # exabgp runs beside the daemon
    data = speaker.summary()
    return Reply(_bgp_text(data), data)


YES_NO = {True: "yes", False: "no"}


def _bgp_text(data) -> str:
    if data["asn"] is None:
        return "BGP is not configured (router bgp ASN)"
    out = [f"BGP router identifier {data['router_id'] or '-'}, local AS number {data['asn']}"
           f" (exabgp {data['exabgp'] or '-'}: {data['process']})"]
    if data["problem"]:
        out.append(f"% {data['problem']}")
    out.append(f"{'Neighbor':<16} {'AS':>10} {'State':<12} {'Up/Down':>9} {'PfxSnt':>6}  BFD")
    for n in data["neighbors"]:
        out.append(f"{n['peer']:<16} {n['remote_as']:>10} {n['state']:<12} "
                   f"{_ago(n['for']):>9} {n['prefixes_sent']:>6}  {YES_NO[n['bfd']]}")
    out.append(f"Announced: {', '.join(data['announced']) or 'none'}")
    return "\n".join(out)


def _ago(seconds) -> str:
    if seconds is None:
        return "never"
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


# --------------------------------------------------------------------- FRR's own shows


# The shows FRR answers itself, each the same vtysh line: (its line, what it shows)
FRR_SHOWS = (
    ("show ip ospf neighbor", "OSPF neighbours, as FRR's ospfd has them"),
    ("show ip ospf route", "Routes OSPF computed (FRR's ospfd)"),
    ("show ip route ospf", "The routes OSPF gave FRR's zebra (the kernel side: the kni)"),
    ("show bfd peers", "BFD sessions (FRR's bfdd)"),
)


def _frr_show(ctx, command: str) -> Reply:
    """A show answered by FRR: its text, and its JSON as the data when it gives one. The
    router says when no FRR runs (RoutingError is a CommandError)."""
    router = ctx.model.router
    if router is None:
        raise CommandError("data plane not running")      # FRR runs beside the daemon
    text = router.vtysh(command)
    if router.problem:                  # FRR runs, but refused the latest configuration
        text += f"\n% the latest configuration was not applied: {router.problem}"
    try:
        data = router.json(command)
    except CommandError:
        data = {"text": text}           # a show FRR has no JSON for
    return Reply(text.rstrip("\n"), data)


def _frr_command(line: str, doc: str) -> None:
    def handler(ctx):
        return _frr_show(ctx, line)
    handler.__name__ = handler.__qualname__ = "show_" + "_".join(line.split()[1:])
    handler.__doc__ = doc
    g.command(line, node=ROOT, readonly=True)(handler)


for _line, _doc in FRR_SHOWS:
    _frr_command(_line, _doc)


def _vip_text(rows) -> str:
    if not rows:
        return "No VIP is announced (no virtual-server has `announce PORT`)."
    now = time.time()
    out = [f"{'VIP':<16} {'Port':<8} {'State':<10} {'For':>8} {'Conns':>7}  Why"]
    for r in rows:
        why = r["why"]
        if r["next_announce"] is not None:
            why += f"; not before {max(0.0, r['next_announce'] - now):.1f}s"
        out.append(f"{r['vip']:<16} {r['dev']:<8} {r['state']:<10} {r['for']:>7.1f}s "
                   f"{r['connections']:>7}  {why}")
    return "\n".join(out)


def _announcer(ctx):
    if ctx.model.announcer is None:
        raise CommandError("data plane not running")      # announcements run in the daemon
    return ctx.model.announcer


@g.command("show routing vip", node=ROOT, readonly=True)
def show_routing_vip(ctx):
    """Each VIP announced from its services: announced, withdrawn or held down, and why."""
    rows = _announcer(ctx).view()
    return Reply(_vip_text(rows), rows)


@g.command("routing drain", node=ROOT)
def routing_drain(ctx):
    """Maintenance: withdraw every VIP now; the data plane serves on while the neighbours
    move the flows away, and `show routing vip` counts the connections left."""
    a = _announcer(ctx)
    a.drain(True)
    rows = a.view()
    left = sum(r["connections"] for r in rows)
    return Reply(f"{len(rows)} VIP(s) withdrawn; {left} connection(s) left "
                 "(show routing vip: until 0, then stop or upgrade)", rows)


def _show_frr(model, _):
    theirs = model.routing.frr
    if theirs is None:
        return []
    kind, where = theirs
    return [Shown({"kind": kind, "where": where}, rank=(ROUTING, 1))]


@g.command("routing frr (vty-socket|pathspace)$kind WORD$where", node=CONFIG, key=(),
           show=_show_frr, help={"where": "Its directory (vty-socket) or name (pathspace)"})
def routing_frr(ctx, kind, where):
    """The operator runs FRR: rlb starts none, only puts each VIP on its port's kni while
    it is up (the operator's FRR announces it: `redistribute connected` with a route-map
    of the VIPs), and FRR's shows (`show ip ospf neighbor`...) ask that FRR."""
    ctx.model.routing.set_frr((kind, where))
    return Reply()


@g.command("no routing frr", node=CONFIG)
def no_routing_frr(ctx):
    ctx.model.routing.set_frr(None)
    return Reply()


@g.command("routing drain-on-stop (1-3600)$seconds", node=CONFIG, key=(),
           show=lambda model, _: [Shown({"seconds": model.routing.drain_on_stop},
                                        rank=(ROUTING, 0))] if model.routing.drain_on_stop
           else [],
           help={"seconds": "At most this long (a second SIGTERM stops at once)"})
def routing_drain_on_stop(ctx, seconds):
    """When the daemon is told to stop (SIGTERM, systemctl stop), it first withdraws every
    VIP, as `routing drain` does, and waits until their active connections have ended, at
    most `seconds`; then it stops. Without it, it withdraws and stops at once."""
    ctx.model.routing.drain_on_stop = seconds
    return Reply()


@g.command("no routing drain-on-stop", node=CONFIG)
def no_routing_drain_on_stop(ctx):
    ctx.model.routing.drain_on_stop = None
    return Reply()


@g.command("routing undrain", node=ROOT)
def routing_undrain(ctx):
    """Announce the VIPs again as their services' health says (each after its hold-down)."""
    a = _announcer(ctx)
    a.drain(False)
    rows = a.view()
    return Reply(_vip_text(rows), rows)
