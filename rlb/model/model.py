"""The authoritative state of one LB instance: ports, addresses, routes, neighbours, settings.

Every change is validated here first (a CommandError says why and nothing changes),
then recorded and pushed to the data plane when one is attached. Running the same
commands against a Model without a data plane is how a whole config file is checked
before anything is applied.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from rlb.core.consts import (DEFAULT_DEST_CAP, DEFAULT_SVC_CAP, GLOBAL, HOST, KNI_HOST, LINK,
                             LPORT_RANGE, SCOPE_CODE, SCOPES)
from rlb.core.ports import iface_rx_packets, kernel_iface, kni_prepare
from rlb.errors import CommandError  # noqa: F401  (its home is rlb.errors)

ROUTED_SCOPES = SCOPES[:2]               # routes that lead somewhere (not our own, not kni)


def default_scope(via) -> str:
    """A route's scope when none is given: global through a gateway, else link."""
    return GLOBAL if via else LINK


PORT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,10}")
VLAN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,10}")     # dpdk0.100


@dataclass
class Settings:
    """The `dataplane` section: fixed at start, except the runtime ones noted."""
    workers: int = 1
    pool_size: int = 16384
    route_table_size: int = 1024
    neigh_table_size: int = 1024
    neigh_timeout: int = 60          # seconds (runtime)
    idle_sleep: int = 200            # microseconds (runtime)
    busy_poll: bool = False          # (runtime)
    forwarding: bool = False         # IPv4 forwarding along routes (runtime)
    memory: int = 512                # MiB for EAL without hugepages
    conn_table_size: int = 262144    # connections per worker (64 bytes each + hash)
    service_table_size: int = DEFAULT_SVC_CAP    # the Engine's defaults (types.pxd)
    dest_table_size: int = DEFAULT_DEST_CAP      # real servers, all services together
    kni: bool = True                 # a <port>.kni tap per port
    vip_miss_kni: bool = False       # VIP port without a service: to kni, not dropped (runtime)
    kni_rate: int = 10000            # bulk frames a worker hands the kernel a second (runtime)


# What a running data plane can take (the rest of Settings is read at start), and the
# Engine call that gives it each one.
def _push_idle(e, s):
    e.set_idle(s.busy_poll, s.idle_sleep)


PUSH = {"forwarding": lambda e, s: e.set_forwarding(s.forwarding),
        "busy_poll": _push_idle, "idle_sleep": _push_idle,
        "neigh_timeout": lambda e, s: e.set_neigh_timeout(s.neigh_timeout),
        "vip_miss_kni": lambda e, s: e.set_vip_miss_kni(s.vip_miss_kni),
        "kni_rate": lambda e, s: e.set_kni_rate(s.kni_rate)}
RUNTIME = frozenset(PUSH)


PORT, BOND, VLAN, TUNNEL = "port", "bond", "vlan", "tunnel"     # Port.kind
IPIP, GRE = "ipip", "gre"
TUNNEL_PROTOS = {IPIP: 4, GRE: 47}
BOND_MODES = {0: "round-robin", 4: "802.3ad"}  # DPVS's (dpvs.bond.conf): DPDK's bonding PMD
XMIT_POLICIES = {"layer2": "l2", "layer23": "l23", "layer34": "l34"}
DOT1Q, DOT1AD = "802.1q", "802.1ad"
VLAN_PROTOS = {DOT1Q: 0x8100, DOT1AD: 0x88a8}
MAX_INTERFACES = 32                  # types.pxd MAX_PORTS


def tunnel_mac(index: int) -> bytes:
    """A tunnel has no MAC: its kni tap and its decapsulated frames use this one (locally
    administered, one per interface slot)."""
    return bytes((0x02, 0x72, 0x6c, 0x62, 0x00, index))


@dataclass
class Bond:
    """`bond NAME mode 0|4 slaves P1 P2 ... [primary P] [xmit-policy layer34]`."""
    mode: int
    slaves: tuple
    primary: str | None = None
    xmit_policy: str | None = None


@dataclass
class Tunnel:
    """`dpip tunnel add NAME mode ipip|gre local A remote B [dev D] [key K] [csum] [ttl N]`."""
    mode: str
    local: IPv4Address
    remote: IPv4Address
    dev: str | None = None           # the link it is meant to leave by (the route decides)
    key: int | None = None           # GRE
    csum: bool = False               # GRE
    ttl: int = 0                     # 0: the inner packet's


@dataclass
class Port:
    """An interface: a data port, a bond of data ports or a VLAN on either (kind)."""
    name: str
    devargs: str
    index: int
    kernel_rx_base: int | None = field(default=None, compare=False)  # iface rx at start
    kind: str = PORT
    bond: Bond | None = None         # BOND: its settings
    link: str | None = None          # VLAN: the port or bond it is on
    vid: int = 0
    proto: str = DOT1Q
    tunnel: Tunnel | None = None     # TUNNEL: its ends and options

    @property
    def kni(self) -> str:
        return f"{self.name}.kni"


@dataclass
class Address:
    iface: IPv4Interface
    port: str
    sapool: bool = False
    ip: IPv4Address = field(init=False, repr=False, compare=False)   # iface.ip, kept

    def __post_init__(self):
        self.ip = self.iface.ip


@dataclass
class Route:
    prefix: IPv4Network
    port: str
    via: IPv4Address | None = None
    src: IPv4Address | None = None
    scope: str = LINK
    mtu: int = 1500
    metric: int = 0
    auto: bool = False               # made by an address, removed with it
    sapool: bool = False             # host route of a local-address pool (FNAT/SNAT)
    slot: int = -1                   # index in the data plane's route array

    def key(self):
        return (self.prefix.network_address, self.prefix.prefixlen)


@dataclass
class Neighbour:
    ip: IPv4Address
    mac: str
    port: str


@dataclass
class Model:
    settings: Settings = field(default_factory=Settings)
    ports: dict[str, Port] = field(default_factory=dict)     # interfaces: ports, bonds, VLANs
    slaves: dict[str, Port] = field(default_factory=dict)    # data ports a bond took
    addresses: list[Address] = field(default_factory=list)
    routes: dict[tuple, Route] = field(default_factory=dict)
    neighbours: dict[IPv4Address, Neighbour] = field(default_factory=dict)
    engine: object = None            # rlb.core.dataplane.Engine once started
    _free_slots: list[int] = field(default_factory=list)
    _next_slot: int = 0
    # The IPVS table (rlb.model.services.Services): virtual services, real servers,
    # local addresses, timeouts. Created with the model; replace it to inject registries.
    services: object = field(default=None, repr=False, compare=False)
    # The commits kept on disk and the startup file (rlb.control.commit.Store): a daemon's
    # model has one, a candidate or a checked file has none.
    store: object = field(default=None, repr=False, compare=False)
    # A candidate of a running instance (rlb.control.commit.Candidate): what the data
    # plane reads at start is refused as typed, as it is once the data plane runs.
    started: bool = field(default=False, repr=False, compare=False)
    # The health monitor of a running instance (rlb.health.monitor.Monitor), None elsewhere
    monitor: object = field(default=None, repr=False, compare=False)
    # `router ospf`, `router bgp` (rlb.model.routing.Routing): what FRR and exabgp are told
    routing: object = field(default=None, repr=False, compare=False)
    # Its VIP announcements (rlb.routing.announce.Announcer), None elsewhere
    announcer: object = field(default=None, repr=False, compare=False)
    # Its FRR (rlb.routing.router.Router), None elsewhere
    router: object = field(default=None, repr=False, compare=False)
    # Its exabgp (rlb.routing.exabgp.Speaker), None elsewhere
    speaker: object = field(default=None, repr=False, compare=False)
    # `vrrp instance NAME` sections (rlb.model.ha.Ha): what keepalived is told
    ha: object = field(default=None, repr=False, compare=False)
    # Its keepalived (rlb.ha.keepalived.Keepalived), None elsewhere
    keepalived: object = field(default=None, repr=False, compare=False)
    # Its connection sync with the peer LB (rlb.ha.sync.Sync), None elsewhere
    syncer: object = field(default=None, repr=False, compare=False)
    # `metrics listen`, `log ...` (rlb.model.ops.Ops): what the exporter and the log do
    ops: object = field(default=None, repr=False, compare=False)
    # Its Prometheus exporter (rlb.ops.metrics.Exporter), None elsewhere
    exporter: object = field(default=None, repr=False, compare=False)
    # The addresses whose ARP the kernel answers (VRRP's: vrrp_addresses), as pushed
    _kni_arp: frozenset = field(default=frozenset(), repr=False, compare=False)

    def __post_init__(self):
        if self.services is None:
            from rlb.model.services import Services  # it imports this module
            self.services = Services(self)
        if self.routing is None:
            from rlb.model.routing import Routing
            self.routing = Routing()
        if self.ha is None:
            from rlb.model.ha import Ha
            self.ha = Ha()
        self.ha.listeners.append(self.refresh_vrrp)
        if self.ops is None:
            from rlb.model.ops import Ops
            self.ops = Ops()
        self.services.listeners.append(self.refresh_vrrp)

    def attach(self, engine) -> None:
        """Push the whole validated state into a freshly started data plane."""
        self.engine = engine
        self._kni_arp = frozenset(self.vrrp_addresses())
        self.push_settings()
        for p in self.ports.values():
            if p.kind in (VLAN, TUNNEL):
                self._push_iface(p)
        for r in self.routes.values():
            self._push_route(r)
        for n in self.neighbours.values():
            engine.neigh_set(int(n.ip), parse_mac(n.mac), self.ports[n.port].index, True)
        for p in self.ports.values():
            engine.port_addr(p.index, self._primary(p.name))
            iface = kernel_iface(p.devargs)
            p.kernel_rx_base = iface_rx_packets(iface) if iface else None
        for a in self.addresses:
            if a.ip not in self._kni_arp:       # VRRP's: keepalived's, on the MASTER
                engine.garp(int(a.ip), self.ports[a.port].index)
        self.services.attach(engine)

    def push_settings(self, names=RUNTIME) -> None:
        """Runtime settings, to the data plane (busy-poll and idle-sleep are one call)."""
        calls = {PUSH[n] for n in names}
        for push in dict.fromkeys(PUSH.values()):
            if push in calls:
                push(self.engine, self.settings)

    # ------------------------------------------------------------- settings

    def set_setting(self, name: str, value, word: str) -> None:
        """A line of the dataplane section (`word` names it in messages): one read at
        start is refused once the data plane runs; a table cannot shrink below what it
        holds."""
        if name not in RUNTIME and (self.engine is not None or self.started) and \
                getattr(self.settings, name) != value:
            raise CommandError(f"{word} is read at start: change it in the startup "
                               "configuration and restart the instance")
        if name == "route_table_size" and value < len(self.routes):
            raise CommandError(f"{word} {value} is below the {len(self.routes)} routes "
                               "configured")
        if name == "neigh_table_size":
            if value & (value - 1):
                raise CommandError(f"{word} must be a power of two")
            if value // 2 < len(self.neighbours):
                raise CommandError(f"{word} {value} is too small for "
                                   f"{len(self.neighbours)} static neighbours")
        used = {"service_table_size": (self.services._svc_slots.used, "services"),
                "dest_table_size": (self.services._dest_slots.used, "real servers")}
        if name in used and value < used[name][0]:
            raise CommandError(f"{word} {value} is below the {used[name][1]} configured")
        setattr(self.settings, name, value)
        if name in RUNTIME and self.engine is not None:
            self.push_settings([name])

    # ---------------------------------------------------------------- ports

    def add_port(self, name: str, devargs: str) -> None:
        if name in self.ports and self.ports[name].devargs == devargs:
            return                  # the same line again (a config merged onto its own)
        if self.engine is not None or self.started:
            raise CommandError("ports are fixed once the data plane runs: change them in the "
                               "startup configuration and restart the instance")
        self._check_new_name(name, PORT)
        if devargs.split(",")[0].startswith("net_bonding"):
            raise CommandError("a bond is declared with `bond NAME mode 0|4 slaves PORT ...`")
        iface = kernel_iface(devargs)
        for p in [*self.ports.values(), *self.slaves.values()]:
            if p.kind != PORT:
                continue
            if p.devargs.split(",")[0] == devargs.split(",")[0]:
                raise CommandError(f"device {devargs.split(',')[0]} already used by port {p.name}")
            if iface is not None and kernel_iface(p.devargs) == iface:
                raise CommandError(f"interface {iface} already used by port {p.name}")
        if len(self.ports) + len(self.slaves) >= 8:
            raise CommandError("at most 8 ports")
        self.ports[name] = Port(name, devargs, len(self.ports))

    def _check_new_name(self, name: str, what: str, pattern=PORT_NAME) -> None:
        if name in self.ports or name in self.slaves:
            raise CommandError(f"{what} {name} already defined")
        if not pattern.fullmatch(name):
            # the kni tap is <name>.kni and Linux allows 15 bytes per interface name
            raise CommandError(f"bad {what} name {name!r}: ASCII letters, digits, - and _, "
                               f"at most {11 if pattern is PORT_NAME else 11} characters, "
                               "starting with a letter or digit")

    def add_bond(self, name: str, mode: int, slaves: list, primary=None,
                 xmit_policy=None) -> None:
        """A bond of data ports declared before it: they become its slaves (no longer
        interfaces of their own)."""
        bond = Bond(mode, tuple(slaves), primary, xmit_policy)
        old = self.ports.get(name)
        if old is not None and old.bond == bond:
            return                  # the same line again
        if self.engine is not None or self.started:
            raise CommandError("bonds are fixed once the data plane runs: change them in the "
                               "startup configuration and restart the instance")
        self._check_new_name(name, BOND)
        if mode not in BOND_MODES:
            raise CommandError(f"bond mode {mode}: rlb bonds in mode 0 (round-robin) or "
                               "4 (802.3ad), as DPVS does")
        if len(set(slaves)) != len(slaves) or not slaves:
            raise CommandError("a bond's slaves are distinct ports")
        for sl in slaves:
            p = self.ports.get(sl)
            if p is None or p.kind != PORT:
                taken = "is a slave of another bond" if sl in self.slaves else "is not a data port"
                raise CommandError(f"slave {sl} {taken} (declare `port {sl} ...` before the bond)")
            if self._port_used(sl):
                raise CommandError(f"slave {sl} has addresses, routes or neighbours: "
                                   "they go on the bond")
        if primary is not None and primary not in slaves:
            raise CommandError(f"primary {primary} is not one of the bond's slaves")
        if xmit_policy is not None and mode == 0:
            raise CommandError("xmit-policy is for mode 4 (mode 0 sends in turn)")
        devs = [self.ports[sl].devargs.split(",")[0] for sl in slaves]
        args = [f"net_bonding_{name}", f"mode={mode}", *(f"slave={d}" for d in devs)]
        if primary is not None:
            args.append(f"primary={self.ports[primary].devargs.split(',')[0]}")
        if xmit_policy is not None:
            args.append(f"xmit_policy={XMIT_POLICIES[xmit_policy]}")
        for sl in slaves:
            self.slaves[sl] = self.ports.pop(sl)
        # after the ports, as the running configuration's text has it: read back, the
        # interfaces come in the same order
        self.ports[name] = Port(name, ",".join(args), 0, kind=BOND, bond=bond)
        for i, p in enumerate(self.ports.values()):
            p.index = i

    def _port_used(self, name: str) -> bool:
        return any(a.port == name for a in self.addresses) or \
            any(r.port == name for r in self.routes.values()) or \
            any(n.port == name for n in self.neighbours.values()) or \
            any(p.link == name or (p.tunnel is not None and p.tunnel.dev == name)
                for p in self.ports.values())

    # ---------------------------------------------------------------- VLANs

    def add_vlan(self, name: str | None, link: str, vid: int, proto: str = DOT1Q) -> str:
        """A VLAN interface on a port or a bond (not on a VLAN, as DPVS refuses too);
        name None: LINK.ID. Its name, back."""
        parent = self.port(link)
        name = name or f"{link}.{vid}"
        old = self.ports.get(name)
        if old is not None and old.kind == VLAN and (old.link, old.vid, old.proto) == \
                (link, vid, proto):
            return name             # the same line again
        self._check_new_name(name, "VLAN", VLAN_NAME)
        if parent.kind not in (PORT, BOND):
            raise CommandError(f"{link} is a {parent.kind}: a VLAN goes on a port or a bond"
                               + (", not on another VLAN" if parent.kind == VLAN else ""))
        if not 1 <= vid <= 4094:
            raise CommandError(f"VLAN id {vid}: 1-4094")
        if proto not in VLAN_PROTOS:
            raise CommandError(f"VLAN protocol {proto}: {' or '.join(VLAN_PROTOS)}")
        for p in self.ports.values():
            if p.kind == VLAN and p.link == link and p.vid == vid:
                raise CommandError(f"VLAN {vid} is already on {link} ({p.name})")
        index = self._free_index()
        port = Port(name, "", index, kind=VLAN, link=link, vid=vid, proto=proto)
        if self.engine is not None:
            self._push_iface(port)
        self.ports[name] = port
        return name

    # -------------------------------------------------------------- tunnels

    def add_tunnel(self, name: str, t: Tunnel) -> None:
        """An IPIP or GRE tunnel interface (its remote end reached by the routes)."""
        old = self.ports.get(name)
        if old is not None and old.kind == TUNNEL and old.tunnel == t:
            return                  # the same line again
        self._check_new_name(name, TUNNEL, VLAN_NAME)
        self._check_tunnel(name, t)
        index = self._free_index()
        port = Port(name, "", index, kind=TUNNEL, tunnel=t)
        if self.engine is not None:
            self._push_iface(port)
        self.ports[name] = port

    def _push_iface(self, p: Port) -> None:
        """A VLAN or tunnel interface to the data plane, and its kni tap readied."""
        kni = p.kni if self.settings.kni else None
        if p.kind == VLAN:
            self.engine.vlan_add(p.index, p.name, self.ports[p.link].index, p.vid,
                                 VLAN_PROTOS[p.proto], kni)
            if kni:
                kni_prepare(kni)
            return
        t, proto = p.tunnel, TUNNEL_PROTOS[p.tunnel.mode]
        self.engine.tunnel_add(p.index, p.name, proto, int(t.local), int(t.remote), key=t.key,
                               csum=t.csum, ttl=t.ttl, mac=tunnel_mac(p.index), kni=kni)
        if kni:
            kni_prepare(kni, arp=False, mtu=self.engine.tunnel_mtu(proto, t.key, t.csum))

    def change_tunnel(self, name: str, t: Tunnel) -> None:
        p = self.port(name)
        if p.kind != TUNNEL:
            raise CommandError(f"{name} is not a tunnel")
        self._check_tunnel(name, t)
        if self.engine is not None:
            self.engine.tunnel_set(p.index, TUNNEL_PROTOS[t.mode], int(t.local),
                                   int(t.remote), key=t.key, csum=t.csum, ttl=t.ttl)
        p.tunnel = t

    def _check_tunnel(self, name: str, t: Tunnel) -> None:
        if t.mode not in TUNNEL_PROTOS:
            raise CommandError(f"tunnel mode {t.mode}: {' or '.join(TUNNEL_PROTOS)}")
        if t.mode == IPIP and (t.key is not None or t.csum):
            raise CommandError("key and csum are GRE's: an IPIP tunnel has neither")
        if t.key is not None and not 0 <= t.key <= 0xffffffff:
            raise CommandError(f"bad key {t.key}: 0-4294967295")
        if not 0 <= t.ttl <= 255:
            raise CommandError(f"bad ttl {t.ttl}: 0 (the inner packet's) to 255")
        for ip in (t.local, t.remote):
            if ip.is_multicast or ip.is_unspecified or ip == IPv4Address("255.255.255.255"):
                raise CommandError(f"{ip} cannot be a tunnel end")
        if t.dev is not None and self.port(t.dev).kind == TUNNEL:
            raise CommandError(f"{t.dev} is a tunnel: a tunnel leaves by a port, a bond "
                               "or a VLAN")
        for p in self.ports.values():
            if p.kind == TUNNEL and p.name != name and p.tunnel.mode == t.mode and \
                    (p.tunnel.local, p.tunnel.remote, p.tunnel.key) == (t.local, t.remote, t.key):
                raise CommandError(f"{p.name} has the same ends{' and key' if t.key else ''}: "
                                   "the packets would not know their tunnel")

    def _free_index(self) -> int:
        used = {p.index for p in self.ports.values()}
        index = next((i for i in range(MAX_INTERFACES) if i not in used), None)
        if index is None:
            raise CommandError(f"at most {MAX_INTERFACES} interfaces (ports, bonds, VLANs, "
                               "tunnels)")
        return index

    def del_iface(self, name: str, kind: str = VLAN) -> None:
        """A VLAN or a tunnel interface goes (with nothing on it any more)."""
        p = self.port(name)
        if p.kind != kind:
            raise CommandError(f"{name} is not a {kind}" if kind == TUNNEL else
                               f"{name} is not a VLAN")
        if self._port_used(name):
            raise CommandError(f"{name} has addresses, routes or neighbours: delete them first")
        if self.services.uses_port(name):
            raise CommandError(f"{name} is named by a service (local address, iif/oif): "
                               "change that first")
        if self.engine is not None:
            self.engine.iface_del(p.index)
        del self.ports[name]

    def port(self, name: str) -> Port:
        try:
            return self.ports[name]
        except KeyError:
            bond = next((p.name for p in self.ports.values()
                         if p.kind == BOND and name in p.bond.slaves), None)
            if bond is not None:
                raise CommandError(f"{name} is a slave of {bond}: use {bond}") from None
            known = ", ".join(self.ports) or "none defined"
            raise CommandError(f"no such port {name!r} (ports: {known})") from None

    # ------------------------------------------------------------ addresses

    def find_address(self, ip: IPv4Address) -> Address | None:
        return next((a for a in self.addresses if a.ip == ip), None)

    def add_address(self, iface: IPv4Interface, port: str, sapool: bool = False,
                    garp: bool = True) -> None:
        p = self.port(port)
        if iface.ip.is_multicast or iface.ip.is_unspecified or iface.ip == IPv4Address("255.255.255.255"):
            raise CommandError(f"{iface.ip} cannot be an interface address")
        if self.find_address(iface.ip):
            raise CommandError(f"address {iface.ip} already exists")
        if iface.ip in self.neighbours:
            raise CommandError(f"{iface.ip} is a static neighbour: delete it first")
        self.services.check_address_add(iface.ip)
        host = Route(IPv4Network(f"{iface.ip}/32"), p.name, scope=HOST, auto=True,
                     sapool=sapool)
        new = [host]
        if host.key() in self.routes:
            raise CommandError(f"route {host.prefix} already exists")
        if iface.network.prefixlen < 32:
            net = Route(iface.network, p.name, scope=LINK, auto=True)
            other = self.routes.get(net.key())
            if other is None:
                new.append(net)
            elif other.port != p.name:
                raise CommandError(f"network {iface.network} is on {other.port} (route "
                                   f"{other.prefix} dev {other.port}): not on {p.name} too")
        self._need_slots(len(new))
        addr = Address(iface, p.name, sapool)
        primary = self._primary(p.name)
        self.addresses.append(addr)
        try:                        # the first address of a port is its ARP source (DR, ...)
            if self._primary(p.name) != primary:
                self.services.check_all()
        except CommandError as err:
            self.addresses.remove(addr)
            raise CommandError(f"address {iface.ip} cannot be added: {err}") from None
        for r in new:
            self._install_route(r)
        if self.engine is not None:
            self.engine.port_addr(p.index, self._primary(p.name))
            if garp and iface.ip not in self.vrrp_addresses():
                self.engine.garp(int(iface.ip), p.index)
        self.services.addresses_changed()

    def del_address(self, iface: IPv4Interface, port: str) -> None:
        self.port(port)
        addr = self.find_address(iface.ip)
        if addr is None or addr.port != port:
            raise CommandError(f"address {iface.ip} not found on {port}")
        if iface.network.prefixlen != 32 and addr.iface.network != iface.network:
            raise CommandError(f"address {iface.ip} is {addr.iface}, not {iface}")
        self.services.check_address_delete(addr.ip)
        users = [str(r.prefix) for r in self.routes.values() if r.src == addr.ip]
        if users:
            raise CommandError(f"address {iface.ip} is the src of route(s) {', '.join(users)}: "
                               "delete those first")
        net = self.routes.get((addr.iface.network.network_address, addr.iface.network.prefixlen))
        still = any(a.iface.network == addr.iface.network for a in self.addresses if a is not addr)
        gone = [self.routes[(iface.ip, 32)]]
        if net is not None and net.auto and not still and addr.iface.network.prefixlen < 32:
            gone.append(net)
        self._still_valid_without(f"address {iface.ip}", gone, addr)
        self.addresses.remove(addr)
        for r in gone:
            self._remove_route(r)
        if self.engine is not None:
            self.engine.port_addr(self.ports[port].index, self._primary(port))
        self.services.addresses_changed()

    def _primary(self, port: str) -> int:
        """Source address for ARP requests on a port: its first address, else 0. The
        addresses `ipvsadm --add-laddr` made come last: they are implied by the local
        addresses, and the ARP source must not depend on when those were added. A VRRP
        address is never one (a BACKUP's request would pull its traffic over)."""
        made = self.services._auto
        mine = sorted((a for a in self.addresses if a.port == port and
                       a.ip not in self._kni_arp), key=lambda a: a.ip in made)
        return int(mine[0].ip) if mine else 0

    # ------------------------------------------------------------------ VRRP

    def vrrp_vips(self) -> set[IPv4Address]:
        return {a.ip for _, inst in self.ha.instances for a in inst.addresses}

    def vrrp_addresses(self) -> dict[IPv4Address, str]:
        """The addresses VRRP moves, by instance: each instance's virtual addresses and
        the local addresses of the services on them (FNAT's: the same on both LBs)."""
        out: dict[IPv4Address, str] = {}
        for name, inst in self.ha.instances:
            vips = {a.ip for a in inst.addresses}
            out.update((ip, name) for ip in vips)
            for svc in self.services.table.values():
                if getattr(svc, "vaddr", None) in vips:
                    out.update((la.addr, name) for la in svc.laddrs)
        return out

    def refresh_vrrp(self) -> None:
        """After a change of the VRRP sections or the services: the host routes whose
        ARP goes to the kernel now, or no longer, pushed again; the ports' ARP sources."""
        new = frozenset(self.vrrp_addresses())
        old, self._kni_arp = self._kni_arp, new
        if new == old or self.engine is None:
            return
        for r in self.routes.values():
            if r.scope == HOST and r.prefix.network_address in (new ^ old):
                self._push_route(r)
        for p in self.ports.values():
            self.engine.port_addr(p.index, self._primary(p.name))

    # --------------------------------------------------------------- routes

    def add_route(self, prefix: IPv4Network, port: str, via=None, src=None, scope=None,
                  mtu=1500, metric=0) -> None:
        self.port(port)
        scope = scope or default_scope(via)
        if scope not in SCOPES:
            raise CommandError(f"unknown scope {scope!r} (one of {', '.join(SCOPES)})")
        if scope == KNI_HOST and prefix.prefixlen != 32:
            raise CommandError("a kni_host route must be a /32 (DPVS tutorial)")
        if scope == HOST:
            raise CommandError("host routes come from `dpip addr add`")
        if via is not None and scope == LINK:
            raise CommandError("a route with a gateway cannot have scope link")
        if via is not None and not self._on_link(via, port):
            raise CommandError(f"gateway {via} is not on a connected network of {port}")
        if src is not None and not self.find_address(src):
            raise CommandError(f"src {src} is not one of our addresses")
        route = Route(prefix, port, via, src, scope, mtu, metric)
        old = self.routes.get(route.key())
        if old is not None and old.auto and old.scope == LINK and old.port == port and \
                not old.sapool and _route_fields(old) != _route_fields(route):
            # a route of the operator's for a network an address made a route for takes
            # its place (one route per prefix): the same as adding it before the address
            self._still_valid_without(f"the network route of {prefix}", [old], add=route)
            self._remove_route(old)
        elif old is not None:
            raise CommandError(f"route {prefix} already exists")
        else:
            self._need_slots(1)
            # a longer prefix may take a real server off its network (DR, tunnel, NAT)
            self._still_valid_without(f"route {prefix}", [], add=route)
        self._install_route(route)

    def del_route(self, prefix: IPv4Network, port: str | None = None) -> None:
        route = self.routes.get((prefix.network_address, prefix.prefixlen))
        if route is None or (port is not None and route.port != port):
            raise CommandError(f"route {prefix} not found")
        if route.auto:
            raise CommandError(f"route {prefix} belongs to an address: use `dpip addr del`")
        # the operator's route for a network we have an address on: the address's own
        # network route comes back (as if the operator's had never been added)
        owner = None if route.auto else next(
            (a for a in self.addresses if a.iface.network == route.prefix
             and route.prefix.prefixlen < 32), None)
        back = None if owner is None else Route(route.prefix, owner.port, scope=LINK,
                                                auto=True)
        self._still_valid_without(f"route {prefix}", [route], add=back)
        self._remove_route(route)
        if back is not None:
            self._install_route(back)

    def _still_valid_without(self, what: str, routes: list, address=None, add=None) -> None:
        """Before a removal (or a replacement by `add`): what stays must hold without it:
        routes through a gateway stay on-link, and every real server stays reachable the
        way its mode needs. Only what the change can touch is looked at: routes whose
        gateway is in a prefix that changes, and the real servers when one of theirs is
        in such a prefix or a port's ARP source changes."""
        prefixes = [r.prefix for r in routes] + ([add.prefix] if add is not None else [])
        ports = {address.port} if address is not None else set()
        sources = {p: self._primary(p) for p in ports}
        saved_routes, saved_addresses = dict(self.routes), list(self.addresses)
        try:
            for r in routes:
                del self.routes[r.key()]
            if add is not None:
                self.routes[add.key()] = add
            if address is not None:
                self.addresses.remove(address)
            for r in self.routes.values():
                if r.via is not None and any(r.via in p for p in prefixes) and \
                        not self._on_link(r.via, r.port):
                    raise CommandError(f"route {r.prefix} goes through {r.via}, which is on-link "
                                       f"only by {what}: delete that route first")
            moved = any(self._primary(p) != ip for p, ip in sources.items())
            if moved or self.services.dests_in(prefixes):
                try:
                    self.services.check_all()
                except CommandError as err:
                    why = f"{what} is needed" if routes or address else \
                        f"{what} cannot be added"
                    raise CommandError(f"{why}: {err}") from None
        finally:
            self.routes.clear()
            self.routes.update(saved_routes)
            self.addresses[:] = saved_addresses

    def _on_link(self, ip: IPv4Address, port: str) -> bool:
        return any(r.port == port and r.scope == LINK and ip in r.prefix and not r.via
                   for r in self.routes.values())

    def _need_slots(self, n: int) -> None:
        if len(self.routes) + n > self.settings.route_table_size:
            raise CommandError(f"route table full ({self.settings.route_table_size} routes)")

    def _install_route(self, r: Route) -> None:
        r.slot = self._free_slots.pop() if self._free_slots else self._next_slot
        if r.slot == self._next_slot:
            self._next_slot += 1
        self.routes[r.key()] = r
        if self.engine is not None:
            self._push_route(r)
        self.services.changed()         # a probe's path may be another now

    def _push_route(self, r: Route) -> None:
        self.engine.route_set(r.slot, int(r.prefix.network_address), r.prefix.prefixlen,
                              gw=int(r.via or 0), src=int(r.src or 0),
                              port=self.ports[r.port].index, scope=SCOPE_CODE[r.scope],
                              mtu=r.mtu, sapool=r.sapool,
                              kni_arp=r.scope == HOST and r.prefix.network_address in self._kni_arp)

    def _remove_route(self, r: Route) -> None:
        del self.routes[r.key()]
        self._free_slots.append(r.slot)
        if self.engine is not None:
            self.engine.route_del(r.slot, int(r.prefix.network_address), r.prefix.prefixlen)
        self.services.changed()

    # ----------------------------------------------------------- neighbours

    def add_neighbour(self, ip: IPv4Address, mac: str, port: str) -> None:
        p = self.port(port)
        if ip in self.neighbours:
            raise CommandError(f"neighbour {ip} already exists (delete it first)")
        if self.find_address(ip):
            raise CommandError(f"{ip} is our own address")
        if len(self.neighbours) >= self.settings.neigh_table_size // 2:
            raise CommandError("too many static neighbours for the table size")
        raw = bytes.fromhex(mac.replace(":", ""))
        if raw[0] & 1 or raw == bytes(6):
            raise CommandError(f"{mac} is not a unicast MAC address")
        self.neighbours[ip] = Neighbour(ip, mac, port)
        if self.engine is not None:
            self.engine.neigh_set(int(ip), raw, p.index, True)

    def del_neighbour(self, ip: IPv4Address, port: str | None = None) -> None:
        n = self.neighbours.get(ip)
        if n is None and self.engine is not None and port is not None:
            # a learned entry: flushing it is allowed, as with `ip neigh del`
            if any(e["ip"] == int(ip) for e in self.engine.neighbours()):
                self.engine.neigh_del(int(ip))
                return
        if n is None or (port is not None and n.port != port):
            raise CommandError(f"neighbour {ip} not found")
        del self.neighbours[ip]
        if self.engine is not None:
            self.engine.neigh_del(int(ip))


def _route_fields(r: Route) -> tuple:
    return (r.port, r.via, r.src, r.scope, r.mtu, r.metric)


def parse_mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", "").replace("-", ""))


def ip4(value) -> IPv4Address:
    return ipaddress.IPv4Address(value)
