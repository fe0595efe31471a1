"""Routing as the shell shows it: `show routing vip` (rlb.routing.announce), each VIP a
service announces, its state, why, since when and when it may come back."""
from __future__ import annotations

import time

from dataclasses import replace

from rlb.commands.base import CONFIG, OSPF, ROOT, ROUTING, Reply, Shown, g
from rlb.errors import CommandError
from rlb.model.routing import Ospf, OspfInterface

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
IF_NUMBERS = ("hello", "dead", "cost")


def _show_interfaces(model, ospf):
    out = []
    for port, s in ospf.interfaces:
        args = {"dev": port}
        args.update({f: True for f in IF_FLAGS if getattr(s, f)})
        args.update({n: getattr(s, n) for n in IF_NUMBERS if getattr(s, n) is not None})
        out.append(args)
    return out


@g.command("interface WORD$dev [{point-to-point$point_to_point|hello-interval (1-65535)$hello|"
           "dead-interval (1-65535)$dead|cost (1-65535)$cost|bfd$bfd|passive$passive}]",
           node=OSPF, key=("dev",), show=_show_interfaces,
           help={"dev": "Port (OSPF runs on its kni)", "hello": "Seconds (default 10)",
                 "dead": "Seconds (default 40)", "cost": "Interface cost"})
def ospf_interface(ctx, dev, point_to_point, hello, dead, cost, bfd, passive):
    """OSPF's settings of a port's kni (FRR's `interface DEV.kni` / `ip ospf ...`): the
    whole line, as a real server's `check` clause is."""
    ctx.model.port(dev)                               # one of ours, else its error
    if hello and dead and dead <= hello:
        raise CommandError(f"dead-interval {dead} must be longer than hello-interval {hello}")
    s = OspfInterface(bool(point_to_point), hello, dead, cost, bool(bfd), bool(passive))
    return _set_ospf(ctx, _ospf(ctx).with_interface(dev, s))


@g.command("no interface WORD$dev", node=OSPF, help={"dev": "Port"})
def ospf_no_interface(ctx, dev):
    if _ospf(ctx).interface(dev) is None:
        raise CommandError(f"interface {dev} is not in router ospf")
    return _set_ospf(ctx, _ospf(ctx).with_interface(dev, None))


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


@g.command("routing undrain", node=ROOT)
def routing_undrain(ctx):
    """Announce the VIPs again as their services' health says (each after its hold-down)."""
    a = _announcer(ctx)
    a.drain(False)
    rows = a.view()
    return Reply(_vip_text(rows), rows)
