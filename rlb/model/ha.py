"""Master/backup in rlb's own configuration (`vrrp instance NAME`), as the model keeps it:
pure data, what the commands change, the commits compare and keepalived is told
(rlb.ha.keepalived writes its VRRP-only configuration from it).

An instance runs VRRP on one port's kni. Its virtual addresses, and the local addresses
of the services on them (FNAT's, which the backup holds too), are the MASTER's: while
MASTER, keepalived keeps them on the kni, where the kernel answers ARP for them and sends
the gratuitous ARPs; the data plane passes ARP for them to the kni on every LB
(Model.vrrp_addresses), so only the MASTER answers, and serves."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Interface

from rlb.errors import CommandError

MASTER, BACKUP = "master", "backup"
SYNC_PORT = 8848       # IPVS's sync daemon's port
ADVERT = 0.2           # seconds between adverts rlb writes by default (VRRPv3)
VERSION = 3
PRIORITY = 100


@dataclass(frozen=True)
class VrrpInstance:
    """One `vrrp instance NAME` section."""
    port: str | None = None                   # VRRP on PORT.kni (`interface PORT`)
    vrid: int | None = None                   # virtual router id, 1-255
    priority: int = PRIORITY
    state: str = BACKUP                       # the state keepalived starts in
    advert: float = ADVERT                    # seconds (VRRPv3: centiseconds on the wire)
    version: int = VERSION
    auth: str | None = None                   # VRRPv2 simple password (PASS)
    addresses: tuple[IPv4Interface, ...] = ()  # the virtual addresses, in order
    peers: tuple[IPv4Address, ...] = ()       # unicast peers (else multicast 224.0.0.18)
    source: IPv4Address | None = None         # our address for unicast (else the kni's)
    preempt: bool = True
    preempt_delay: int | None = None          # seconds
    garp_delay: int | None = None             # seconds after MASTER before the 2nd burst
    garp_repeat: int | None = None            # gratuitous ARPs per burst
    garp_refresh: int | None = None           # seconds between refreshes while MASTER

    def with_address(self, addr: IPv4Interface, on: bool) -> VrrpInstance:
        rest = tuple(a for a in self.addresses if a.ip != addr.ip)
        return replace(self, addresses=rest + ((addr,) if on else ()))

    def with_peer(self, peer: IPv4Address, on: bool) -> VrrpInstance:
        rest = tuple(p for p in self.peers if p != peer)
        return replace(self, peers=rest + ((peer,) if on else ()))

    def problems(self) -> list[str]:
        """What keeps it from running, in the section's own words."""
        out = []
        if self.port is None:
            out.append("no interface (`interface PORT`: VRRP runs on its kni)")
        if self.vrid is None:
            out.append("no virtual-router-id")
        if not self.addresses:
            out.append("no virtual-address")
        if self.auth is not None and self.version != 2:
            out.append("authentication is VRRPv2's (`vrrp-version 2`)")
        if self.version == 2 and self.advert != int(self.advert):
            out.append("VRRPv2 adverts are whole seconds (`vrrp-version 3` for less)")
        return out


@dataclass(frozen=True)
class SyncPeer:
    """`sync peer A.B.C.D [port N]`: the LB this one tells its connections to, and hears
    its connections from (rlb.ha.sync), over UDP through the kni."""
    peer: IPv4Address
    port: int = SYNC_PORT


@dataclass
class Ha:
    """A model's master/backup configuration. Its listeners (the daemon's keepalived)
    hear each change; its checkers are asked about a candidate's before a commit."""
    instances: tuple[tuple[str, VrrpInstance], ...] = ()          # in order
    sync: SyncPeer | None = None                                  # connection sync
    listeners: list = field(default_factory=list, repr=False, compare=False)
    checkers: list = field(default_factory=list, repr=False, compare=False)

    def instance(self, name: str) -> VrrpInstance | None:
        return dict(self.instances).get(name)

    def set_instance(self, name: str, inst: VrrpInstance | None) -> None:
        old = self.instances
        if inst is None:
            self.instances = tuple((n, i) for n, i in old if n != name)
        elif name in dict(old):
            self.instances = tuple((n, inst if n == name else i) for n, i in old)
        else:
            self.instances = (*old, (name, inst))
        for listener in self.listeners:
            listener()

    def set_sync(self, peer: SyncPeer | None) -> None:
        self.sync = peer
        for listener in self.listeners:
            listener()

    def check(self, target) -> None:
        """Before a commit: the candidate's sections complete and consistent, then the
        daemons' checks (keepalived's own parser) if they differ from these."""
        seen: dict[tuple[str, int], str] = {}
        owner: dict[IPv4Address, str] = {}
        for name, inst in target.ha.instances:
            for p in inst.problems():
                raise CommandError(f"vrrp instance {name}: {p}")
            if inst.port not in target.ports:
                raise CommandError(f"vrrp instance {name}: no port {inst.port}")
            key = (inst.port, inst.vrid)
            if key in seen:
                raise CommandError(f"vrrp instance {name}: virtual-router-id {inst.vrid} on "
                                 f"{inst.port} is instance {seen[key]}'s")
            seen[key] = name
            for a in inst.addresses:
                if a.ip in owner:
                    raise CommandError(f"vrrp instance {name}: {a.ip} is instance "
                                     f"{owner[a.ip]}'s")
                owner[a.ip] = name
        if target.ha.instances != self.instances:
            for checker in self.checkers:
                checker(target)
