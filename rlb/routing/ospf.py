"""The FRR configuration written from rlb's `router ospf` and, for the BGP neighbours
with `bfd`, `router bgp`'s bfdd peers (rlb.model.routing).

The OSPF section speaks of rlb's ports (`interface dpdk1 point-to-point bfd`); FRR runs
on their kni twins (dpdk1.kni), so the text for FRR says `interface dpdk1.kni`. The VIPs
are never written here: rlb adds a prefix-list of the VIPs its services announce
(`announce PORT`, rlb.routing.announce) and `redistribute connected route-map` of it, so
ospfd announces exactly the VIPs that are on a kni at the moment.
"""
from __future__ import annotations

from ipaddress import IPv4Address

from rlb.health.config import DEFAULT_POLICY

BFD = "bfd"                    # bfdd's section
VIPS = "RLB-VIPS"              # FRR's prefix-list and route-map of the announced VIPs


def announced_vips(model) -> list[IPv4Address]:
    """The VIPs some service announces (`announce PORT`), sorted: the prefix-list."""
    vips = {svc.vaddr for svc in model.services.table.values()
            if svc.match is None and (svc.health or DEFAULT_POLICY).announce is not None}
    return sorted(vips, key=int)


def frr_configs(model, hostname: str) -> dict[str, str]:
    """The FRR daemons and the configuration of each: for the model's `router ospf`, and
    bfdd for `router bgp`'s neighbours with `bfd` (exabgp has no BFD); empty for none."""
    ospf, bgp = model.routing.ospf, model.routing.bgp
    peers = bgp.bfd_peers if bgp is not None else []
    if (ospf is None and not peers) or model.routing.frr is not None:
        return {}                       # none, or the operator's FRR (`routing frr`)
    out = {"zebra": f"hostname {hostname}\n!\n"}
    if peers or ospf.bfd:
        out["bfdd"] = _bfdd(peers)
    if ospf is not None:
        out["ospfd"] = _ospfd(model, ospf, hostname)
    return out


def _bfdd(peers) -> str:
    lines = [BFD]
    for addr, n in peers:
        lines.append(f" peer {addr}" + (f" local-address {n.source}" if n.source else ""))
        if n.bfd_multiplier is not None:
            lines.append(f"  detect-multiplier {n.bfd_multiplier}")
        if n.bfd_interval is not None:
            lines += [f"  receive-interval {n.bfd_interval}",
                      f"  transmit-interval {n.bfd_interval}"]
        lines.append(" !")
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
            lines.append(" ip ospf bfd")
        if s.passive:
            lines.append(" ip ospf passive")     # FRR 8's form of passive-interface
        lines.append("!")
    vips = announced_vips(model)
    for i, vip in enumerate(vips):
        lines.append(f"ip prefix-list {VIPS} seq {5 + i * 5} permit {vip}/32")
    if not vips:                            # the list exists, and lets nothing through
        lines.append(f"ip prefix-list {VIPS} seq 5 deny any")
    lines += ["!", f"route-map {VIPS} permit 10", f" match ip address prefix-list {VIPS}", "!",
              "router ospf"]
    if ospf.router_id is not None:
        lines.append(f" ospf router-id {ospf.router_id}")
    for prefix, area in ospf.networks:
        lines.append(f" network {prefix} area {area}")
    lines.append(f" redistribute connected route-map {VIPS}")
    if ospf.maximum_paths is not None:
        lines.append(f" maximum-paths {ospf.maximum_paths}")
    lines += [f" {line}" for line in ospf.frr]
    lines.append("!")
    return "\n".join(lines) + "\n"
