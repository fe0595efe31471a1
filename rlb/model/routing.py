"""Routing in rlb's own configuration (`router ospf`, `router bgp`), as the model keeps
it: pure data, what the commands change, the commits compare and the daemons are told
(rlb.routing.ospf writes FRR's text from it, rlb.routing.exabgp exabgp's). The OSPF
section speaks of rlb's ports (`interface dpdk1 point-to-point bfd`); FRR runs on their
kni twins. BGP is exabgp's, with FRR's bfdd beside it for the neighbours with `bfd`."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network


@dataclass(frozen=True)
class OspfInterface:
    """OSPF on one port's kni."""
    point_to_point: bool = False
    hello: int | None = None          # seconds (FRR's default 10)
    dead: int | None = None           # seconds (FRR's default 40)
    cost: int | None = None
    bfd: bool = False                 # a BFD session per neighbour (FRR's bfdd)
    passive: bool = False
    bfd_interval: int | None = None   # ms between BFD packets, both ways (FRR's 300)
    bfd_multiplier: int | None = None # packets missed before the neighbour is down (3)


@dataclass(frozen=True)
class Ospf:
    """`router ospf`: FRR's ospfd for this instance."""
    router_id: IPv4Address | None = None
    networks: tuple[tuple[IPv4Network, str], ...] = ()       # (prefix, area), in order
    maximum_paths: int | None = None
    interfaces: tuple[tuple[str, OspfInterface], ...] = ()   # (port, its settings)
    frr: tuple[str, ...] = ()        # FRR's own lines for `router ospf`, as typed (`frr LINE`)

    def interface(self, port: str) -> OspfInterface | None:
        return dict(self.interfaces).get(port)

    def with_interface(self, port: str, settings: OspfInterface | None) -> Ospf:
        rest = tuple((p, s) for p, s in self.interfaces if p != port)
        return replace(self, interfaces=rest + (((port, settings),) if settings else ()))

    def with_network(self, prefix: IPv4Network, area: str | None) -> Ospf:
        rest = tuple((p, a) for p, a in self.networks if p != prefix)
        return replace(self, networks=rest + (((prefix, area),) if area is not None else ()))

    @property
    def bfd(self) -> bool:
        return any(s.bfd for _, s in self.interfaces)


@dataclass(frozen=True)
class BgpNeighbor:
    """One BGP neighbour of exabgp's."""
    remote_as: int
    hold: int | None = None            # seconds (exabgp's default 180); keepalive hold/3
    bfd: bool = False                  # a BFD session with it (FRR's bfdd beside exabgp)
    bfd_interval: int | None = None    # ms between BFD packets, both ways (FRR's 300)
    bfd_multiplier: int | None = None  # packets missed before it is down (FRR's 3)
    source: IPv4Address | None = None  # our address for the session (else the kernel's)


@dataclass(frozen=True)
class Bgp:
    """`router bgp ASN`: exabgp for this instance, announcing the VIPs."""
    asn: int
    router_id: IPv4Address | None = None
    neighbors: tuple[tuple[IPv4Address, BgpNeighbor], ...] = ()   # in order

    def neighbor(self, addr: IPv4Address) -> BgpNeighbor | None:
        return dict(self.neighbors).get(addr)

    def with_neighbor(self, addr: IPv4Address, n: BgpNeighbor | None) -> Bgp:
        old = [(a, x) for a, x in self.neighbors]
        if n is None:
            return replace(self, neighbors=tuple((a, x) for a, x in old if a != addr))
        if addr in dict(old):              # in place: the order of the text stays
            return replace(self, neighbors=tuple((a, n if a == addr else x) for a, x in old))
        return replace(self, neighbors=(*old, (addr, n)))

    @property
    def bfd_peers(self) -> list[tuple[IPv4Address, BgpNeighbor]]:
        return [(a, n) for a, n in self.neighbors if n.bfd]


@dataclass
class Routing:
    """A model's routing configuration. Its listeners (the daemon's FRR and exabgp) hear
    each change; its checkers (the same) are asked about a candidate's before a commit
    changes anything, and raise a CommandError in the daemons' own words."""
    ospf: Ospf | None = None
    bgp: Bgp | None = None
    drain_on_stop: int | None = None     # seconds SIGTERM waits for connections to drain
    # The operator's own FRR instead of rlb's: ("vty-socket", DIR) or ("pathspace", NAME)
    frr: tuple[str, str] | None = None
    listeners: list = field(default_factory=list, repr=False, compare=False)
    checkers: list = field(default_factory=list, repr=False, compare=False)

    def set_ospf(self, ospf: Ospf | None) -> None:
        self.ospf = ospf
        self._changed()

    def set_bgp(self, bgp: Bgp | None) -> None:
        self.bgp = bgp
        self._changed()

    def set_frr(self, frr: tuple[str, str] | None) -> None:
        self.frr = frr
        self._changed()

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()

    def check(self, target) -> None:
        """Before a commit: the daemons' checks of the target model's routing, if it
        differs from this one."""
        t = target.routing
        if (t.ospf, t.bgp, t.frr) != (self.ospf, self.bgp, self.frr):
            for checker in self.checkers:
                checker(target)
