"""The little of the model a mode's checks read (duck-typed, as rlb.modes allows):
routes, a port's first address, the services' VIPs, our own addresses."""
from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network


@dataclass
class Route:
    prefix: IPv4Network
    port: str
    scope: str = "link"
    via: IPv4Address | None = None
    src: IPv4Address | None = None


@dataclass
class Address:
    addr: IPv4Address
    sapool: bool = False


@dataclass
class Svc:
    vaddr: IPv4Address | None = None
    vport: int = 80
    match: str | None = None


@dataclass
class Dest:
    addr: IPv4Address
    port: int = 80


@dataclass
class Services:
    table: dict = field(default_factory=dict)


class ModeModel:
    def __init__(self, routes=(), first=None, addresses=(), services=()):
        self.routes = {i: Route(IPv4Network(p), *rest) for i, (p, *rest) in enumerate(routes)}
        self.first = first or {}                  # port -> its first address (str)
        self.addresses = {a.addr: a for a in addresses}
        self.services = Services({i: s for i, s in enumerate(services)})

    def _primary(self, port):
        return self.first.get(port)

    def find_address(self, addr):
        return self.addresses.get(addr)


def ip(text):
    return IPv4Address(text)
