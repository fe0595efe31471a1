"""Checks DR and tunnel share: their real servers hold the VIP and answer clients
themselves, so the packet keeps its port and the LB must not speak to them from a VIP."""
from __future__ import annotations

from ipaddress import IPv4Address

from rlb.errors import CommandError

LAN_IP_FIRST = "dpip addr add 192.168.100.1/24 dev dpdk0"   # the tutorial's example
# The route scopes that lead somewhere (not our own addresses, not kni): as the fast
# paths' `r.scope >= SCOPE_HOST` (RouteScope, rlb/core/types.pxd) refuses the others
LINK = "link"              # on-link: the RS's own connected network (DR's only)
ROUTED = ("global", LINK)


def route_to(model, ip: IPv4Address):
    """The route the data plane would take to ip (longest prefix), or None."""
    best = None
    for r in model.routes.values():
        if ip in r.prefix and (best is None or r.prefix.prefixlen > best.prefix.prefixlen):
            best = r
    return best


def vips(model, svc) -> set:
    """Every service's virtual address, the one being changed included."""
    out = {getattr(s, "vaddr", None) for s in model.services.table.values()}
    out.add(getattr(svc, "vaddr", None))
    out.discard(None)
    return out


def arp_source(model, route) -> IPv4Address | None:
    """What the data plane sends from on the route's port: the route's src, else the
    port's first address (Model._primary: the ARP source)."""
    if route.src is not None:
        return route.src
    first = model._primary(route.port)
    return IPv4Address(first) if first else None


def source_name(route) -> str:
    return f"the src of route {route.prefix}" if route.src is not None else "the first address"


def check_same_port(svc, dest, mode: str) -> None:
    if dest.port != svc.vport:
        raise CommandError(f"{mode} cannot change ports: real server {dest.addr}:{dest.port} "
                           f"must use the service's port {svc.vport} (the client's packet "
                           "reaches it unchanged)")


def check_not_vip(model, svc, src: IPv4Address, port: str, what: str) -> None:
    """The real servers hold the VIP themselves and drop ARP (and IPIP) from it."""
    if src in vips(model, svc):
        raise CommandError(f"{what} {src} on {port} is a VIP: real servers hold the VIP and "
                           f"ignore packets from it. The LAN IP must be added before the VIP "
                           f"({LAN_IP_FIRST}, then the VIP)")
