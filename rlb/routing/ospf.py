"""The FRR configuration written from rlb's `router ospf` and, for the BGP neighbours
with `bfd`, `router bgp`'s bfdd peers (rlb.model.routing).

The OSPF section speaks of rlb's ports (`interface dpdk1 point-to-point bfd`); FRR runs
on their kni twins (dpdk1.kni), so the text for FRR says `interface dpdk1.kni`. The VIPs
are never written by the operator: each VIP a service announces (`announce PORT`,
rlb.routing.announce) gets a `network VIP/32 area A` line here, A the area of the
section's first network (the backbone without one), and the Announcer puts the VIP on
the loopback while it is up. ospfd then announces it as a stub link of this router, an
intra-area route: a neighbour drops it with the router's adjacency at once, where an
external route (the tutorial's `redistribute connected`) waits for FRR's next AS-external
calculation, ~1 s later (lab: kill -9 of an LB with BFD, 0.26 s to one nexthop against
1.2 s). `timers throttle lsa all 0` lets a withdrawal leave at once even right after
another change of the router-LSA (FRR's default waits 5 s between two).
"""
from __future__ import annotations

from ipaddress import IPv4Address

from rlb.health.config import DEFAULT_POLICY

BFD = "bfd"                    # bfdd's section
BACKBONE = "0.0.0.0"
VIP_DEV = "lo"                 # where the Announcer puts a VIP that ospfd announces


def announced_vips(model) -> list[IPv4Address]:
    """The VIPs some service announces (`announce PORT`), sorted: the prefix-list."""
    vips = {svc.vaddr for svc in model.services.table.values()
            if svc.match is None and (svc.health or DEFAULT_POLICY).announce is not None}
    return sorted(vips, key=int)


def vip_dev(model) -> str | None:
    """Where an announced VIP goes with rlb's own OSPF (the loopback); None: its port's
    kni (BGP, which announces by API, or the operator's FRR, which redistributes it)."""
    r = model.routing
    return VIP_DEV if r.ospf is not None and r.frr is None else None


def frr_configs(model, hostname: str) -> dict[str, str]:
    """The FRR daemons and the configuration of each: for the model's `router ospf`, and
    bfdd for `router bgp`'s neighbours with `bfd` (exabgp has no BFD); empty for none."""
    ospf, bgp = model.routing.ospf, model.routing.bgp
    peers = bgp.bfd_peers if bgp is not None else []
    if (ospf is None and not peers) or model.routing.frr is not None:
        return {}                       # none, or the operator's FRR (`routing frr`)
    out = {"zebra": f"hostname {hostname}\n!\n"}
    if peers or ospf.bfd:
        out["bfdd"] = _bfdd(peers, _profiles(ospf) if ospf is not None else [])
    if ospf is not None:
        out["ospfd"] = _ospfd(model, ospf, hostname)
    return out


def _profile(port: str) -> str:
    return f"rlb-{port}"


def _profiles(ospf) -> list[tuple[str, int | None, int | None]]:
    """A bfdd profile for each OSPF interface with BFD timers of its own."""
    return [(_profile(p), s.bfd_interval, s.bfd_multiplier) for p, s in ospf.interfaces
            if s.bfd and (s.bfd_interval or s.bfd_multiplier)]


def _timers(interval, multiplier, indent: str) -> list[str]:
    out = [f"{indent}detect-multiplier {multiplier}"] if multiplier is not None else []
    if interval is not None:
        out += [f"{indent}receive-interval {interval}", f"{indent}transmit-interval {interval}"]
    return out


def _bfdd(peers, profiles=()) -> str:
    lines = [BFD]
    for name, interval, multiplier in profiles:
        lines += [f" profile {name}", *_timers(interval, multiplier, "  "), " !"]
    for addr, n in peers:
        lines.append(f" peer {addr}" + (f" local-address {n.source}" if n.source else ""))
        lines += [*_timers(n.bfd_interval, n.bfd_multiplier, "  "), " !"]
    return "\n".join(lines + ["!"]) + "\n"


def _ospfd(model, ospf, hostname: str) -> str:
    lines = [f"hostname {hostname}", "!"]
    for port, s in ospf.interfaces:
        lines.append(f"interface {model.ports[port].kni if port in model.ports else port}")
        if s.point_to_point:
            lines.append(" ip ospf network point-to-point")
        if s.hello is not None:
            lines.append(f" ip ospf hello-interval {s.hello}")
        if s.dead is not None:
            lines.append(f" ip ospf dead-interval {s.dead}")
        if s.cost is not None:
            lines.append(f" ip ospf cost {s.cost}")
        if s.bfd:
            lines.append(" ip ospf bfd")           # before its profile (FRR 8.4's order)
            if s.bfd_interval or s.bfd_multiplier:
                lines.append(f" ip ospf bfd profile {_profile(port)}")
        if s.passive:
            lines.append(" ip ospf passive")     # FRR 8's form of passive-interface
        lines.append("!")
    lines.append("router ospf")
    if ospf.router_id is not None:
        lines.append(f" ospf router-id {ospf.router_id}")
    for prefix, area in ospf.networks:
        lines.append(f" network {prefix} area {area}")
    area = ospf.networks[0][1] if ospf.networks else BACKBONE
    lines += [f" network {vip}/32 area {area}" for vip in announced_vips(model)]
    lines.append(" timers throttle lsa all 0")
    if ospf.maximum_paths is not None:
        lines.append(f" maximum-paths {ospf.maximum_paths}")
    lines += [f" {line}" for line in ospf.frr]
    lines.append("!")
    return "\n".join(lines) + "\n"
