"""Routing in rlb's own configuration (`router ospf`), as the model keeps it: pure data,
what the commands change, the commits compare and the daemon's FRR is told
(rlb.routing.ospf writes FRR's text from it). The section speaks of rlb's ports
(`interface dpdk1 point-to-point bfd`); FRR runs on their kni twins."""
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


@dataclass(frozen=True)
class Ospf:
    """`router ospf`: FRR's ospfd for this instance."""
    router_id: IPv4Address | None = None
    networks: tuple[tuple[IPv4Network, str], ...] = ()       # (prefix, area), in order
    maximum_paths: int | None = None
    interfaces: tuple[tuple[str, OspfInterface], ...] = ()   # (port, its settings)

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


@dataclass
class Routing:
    """A model's routing configuration; its listeners (the daemon's FRR) hear each
    change."""
    ospf: Ospf | None = None
    listeners: list = field(default_factory=list, repr=False, compare=False)

    def set_ospf(self, ospf: Ospf | None) -> None:
        self.ospf = ospf
        for listener in self.listeners:
            listener()
