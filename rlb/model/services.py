"""The IPVS table of one LB instance: virtual services, real servers, local addresses, timeouts.

Part of the model (`model.services`): every change is validated first (a CommandError,
worded like ipvsadm's where it has words, and nothing changes), then recorded and pushed
to the data plane when one is attached (services_engine.py, which also reads its counters
back). Forwarding modes and schedulers come from the plugin registries (rlb.plugins);
both are injectable so the model can be used, and tested, without compiled plugins.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Interface

from rlb.model.model import CommandError
from rlb.model.services_engine import ServicesEngine
from rlb.core import consts

TCP, UDP = 6, 17
PROTO_NAMES = {TCP: "TCP", UDP: "UDP"}
# `ipvsadm --set tcp tcpfin udp` and their defaults, the data plane's (DPVS's; LVS keeps
# 900 120 300): short closing states keep the table small at high connection rates
DEFAULT_TIMEOUTS = {name: consts.DEFAULT_TIMEOUTS[state]
                    for name, state in consts.TIMEOUT_NAMES.items()}
MAX_TIMEOUT = 86400 * 31          # ipvsadm.c MAX_TIMEOUT
PERSISTENT_TIMEOUT = 300          # IPVS_SVC_PERSISTENT_TIMEOUT
DEFAULT_SCHEDULER = "wlc"         # ipvsadm.c DEF_SCHED (DPVS's ipvsadm too)
DEFAULT_MODE = "dr"               # ipvsadm: "gatewaying (direct routing) (default)"
HOST_MASK = IPv4Address("255.255.255.255")
MAX_THRESHOLD = 2**31 - 1         # ipvsadm: -x/-y take 0..INT_MAX, 0 = no limit
# svc_t.flags and the data plane's sizes, from the compiled module (types.pxd): the
# service and real server tables are the Engine's defaults, as the daemon starts it
F_PERSISTENT = consts.SVC_F_PERSISTENT
MAX_MATCH_SVCS = consts.MAX_MATCH_SVCS
MAX_SERVICES, MAX_DESTS = consts.DEFAULT_SVC_CAP, consts.DEFAULT_DEST_CAP
MAX_DESTS_PER_SVC, MAX_LADDRS_PER_SVC = consts.MAX_DESTS_PER_SVC, consts.MAX_LADDRS_PER_SVC


@dataclass
class Dest:
    """A real server of one service."""
    addr: IPv4Address
    port: int
    mode: str                        # Mode.name
    weight: int = 1
    u_threshold: int = 0
    l_threshold: int = 0
    slot: int = -1
    # health (rlb.health.config): its `check` clause (None: the service's, if any),
    # maintenance, and whether it is the service's sorry server (in the pool only while
    # the service has lost its quorum). The model keeps them as values; the monitor acts.
    check: object = None
    disabled: bool = False
    sorry: bool = False

    @property
    def available(self) -> bool:
        # weight 0 quiesces a real server: no new flows, established ones stay
        return self.weight > 0

    def health_fields(self) -> tuple:
        return (self.check, self.disabled, self.sorry)


@dataclass
class Laddr:
    """A local address (FNAT LIP) of one service and the port it lives on."""
    addr: IPv4Address
    dev: str


@dataclass
class Service:
    proto: int
    vaddr: IPv4Address
    vport: int
    sched: str
    persistent: bool = False
    timeout: int = PERSISTENT_TIMEOUT
    netmask: IPv4Address = HOST_MASK
    hash_target: str | None = None   # what a hashing scheduler (conhash) hashes
    dests: list[Dest] = field(default_factory=list)
    laddrs: list[Laddr] = field(default_factory=list)
    # SNAT "match" services (ipvsadm -H) are keyed by their match (rlb/model/match.py)
    match: object = None
    slot: int = -1
    # its health policy (rlb.health.config.Policy), None: the defaults
    health: object = None

    @property
    def checked(self) -> bool:
        """Whether health decides anything here: a policy, a check, maintenance or a
        sorry server (else every real server simply serves at its weight)."""
        return self.health is not None or any(d.check is not None or d.disabled or d.sorry
                                              for d in self.dests)

    @property
    def key(self) -> tuple:
        if self.match is not None:
            return match_key(self.match)
        return (self.proto, self.vaddr, self.vport)

    @property
    def flags(self) -> int:
        return F_PERSISTENT if self.persistent else 0

    def dest_port(self, port: int | None) -> int:
        """The port of a real server given as RIP[:PORT]: none, or 0, is the service's
        (LVS sends to the packet's destination port when a real server's is 0)."""
        return port or self.vport

    def dest(self, addr: IPv4Address, port: int | None) -> Dest | None:
        port = self.dest_port(port)
        return next((d for d in self.dests if d.addr == addr and d.port == port), None)

    def __str__(self) -> str:
        if self.match is not None:
            return f"MATCH {self.match}"
        return f"{PROTO_NAMES[self.proto]} {self.vaddr}:{self.vport}"


def match_key(match) -> tuple:
    """A match service's key: protocol 0 (never a real one), the canonical match text."""
    return (0, str(match), 0)


class _Slots:
    """Integer slots of a data-plane array: freed ones are reused first (as Model's routes);
    fresh_first: unused ones first, then the longest freed (a deleted real server's
    connections drain until its slot is another's)."""

    def __init__(self, size: int, settings=None, setting: str = "", fresh_first: bool = False):
        # a fixed size, or the name of a Settings field read at each check (the
        # dataplane section may set it after the model was made)
        self._size, self._settings, self._setting = size, settings, setting
        self.free, self.next, self.used = [], 0, 0
        self.fresh_first = fresh_first

    @property
    def size(self) -> int:
        return getattr(self._settings, self._setting) if self._setting else self._size

    def room(self, n: int) -> bool:
        return self.used + n <= self.size

    def take(self) -> int:
        if self.fresh_first:
            slot = self.next if self.next < self.size or not self.free else self.free.pop(0)
        else:
            slot = self.free.pop() if self.free else self.next
        if slot == self.next:
            self.next += 1
        self.used += 1
        return slot

    def give(self, slot: int) -> None:
        self.free.append(slot)
        self.used -= 1


def svc_key(proto: int, vaddr: IPv4Address, vport: int | None) -> tuple:
    """A service's key from ipvsadm's -t/-u value (no port given: port 0)."""
    return (proto, vaddr, vport or 0)


def _check_unicast(ip: IPv4Address, what: str) -> None:
    if ip.is_multicast or ip.is_unspecified or ip == HOST_MASK:
        raise CommandError(f"{ip} cannot be a {what}")


def _check_netmask(mask: IPv4Address) -> None:
    inverted = ~int(mask) & 0xFFFFFFFF
    if inverted & (inverted + 1):
        raise CommandError("illegal virtual server persistent mask specified")


def _check_timeout(value: int, low: int) -> None:
    if not low <= value <= MAX_TIMEOUT:
        raise CommandError(f"invalid timeout value `{value}' specified")


def _check_dest(d: Dest) -> None:
    _check_unicast(d.addr, "real server address")
    if not 0 <= d.weight <= 65535:
        raise CommandError("illegal weight specified")
    for value, name in ((d.u_threshold, "u_threshold"), (d.l_threshold, "l_threshold")):
        if not 0 <= value <= MAX_THRESHOLD:
            raise CommandError(f"illegal {name} specified")
    if d.u_threshold and d.l_threshold > d.u_threshold:
        raise CommandError(f"lower threshold {d.l_threshold} is above the upper threshold "
                           f"{d.u_threshold}")


class Services(ServicesEngine):
    """`model.services`: the virtual service table and the timeouts."""

    def __init__(self, model, modes: dict | None = None, schedulers: dict | None = None, *,
                 max_services=None, max_dests=None):
        self.model = model
        self._modes, self._schedulers = modes, schedulers
        self.table: dict[tuple, Service] = {}
        self.timeouts = dict(DEFAULT_TIMEOUTS)
        self._svc_slots = _Slots(max_services, model.settings,
                                 "" if max_services else "service_table_size")
        # a deleted real server's slot is taken last: its connections drain meanwhile
        self._dest_slots = _Slots(max_dests, model.settings,
                                  "" if max_dests else "dest_table_size", fresh_first=True)
        self._auto: set[IPv4Address] = set()   # addresses --add-laddr created (it removes them too)
        self._registered = None                 # the engine modes and schedulers were given to
        self._samples: deque = deque(maxlen=2)  # (monotonic time, {(kind, slot): counters})
        # what health decided for a real server, by slot: (in the pool, weight now);
        # absent: its configuration (services_engine.ServicesEngine.placed)
        self.placement: dict[int, tuple[bool, int]] = {}
        # told after every change of the table (the health monitor syncs then)
        self.listeners: list = []

    @property
    def engine(self):
        return self.model.engine

    # ------------------------------------------------------------ registries

    @property
    def modes(self) -> dict:
        """{name: Mode}; its order gives each mode its index in the data plane."""
        if self._modes is None:
            from rlb import plugins
            self._modes = plugins.modes()
        return self._modes

    @property
    def schedulers(self) -> dict:
        """{name: Scheduler}; its order gives each scheduler its index."""
        if self._schedulers is None:
            from rlb import plugins
            self._schedulers = plugins.schedulers()
        return self._schedulers

    def mode_index(self, name: str) -> int:
        return list(self.modes).index(name)

    def sched_index(self, name: str) -> int:
        return list(self.schedulers).index(name)

    def mode_for_flag(self, flag: str | None) -> str:
        """The name of the mode an ipvsadm flag selects (-b or --fullnat); None: the default."""
        if flag is None:
            if DEFAULT_MODE in self.modes:
                return DEFAULT_MODE
            raise CommandError(f"forwarding mode {DEFAULT_MODE} (the default) is not available: "
                               f"give one of {self._flags()}")
        for m in self.modes.values():
            if flag in (m.flag, m.long_flag):
                return m.name
        raise CommandError(f"forwarding mode {flag} is not available (available: {self._flags()})")

    def _flags(self) -> str:
        return ", ".join(f"{m.flag} ({m.name})" for m in self.modes.values()) or "none"

    def _scheduler(self, name: str):
        sched = self.schedulers.get(name)
        if sched is None:
            known = ", ".join(self.schedulers) or "none"
            raise CommandError(f"Scheduler not found: {name} (available: {known})")
        return sched

    def hash_target(self, sched: str, given: str | None) -> str | None:
        """The hash target a service of this scheduler gets (its first when not given)."""
        targets = self._scheduler(sched).targets
        if not targets:
            if given is not None:
                raise CommandError(f"hash target can only be set when the scheduler hashes "
                                   f"({', '.join(n for n, s in self.schedulers.items() if s.targets)})")
            return None
        if given is not None and given not in targets:
            raise CommandError(f"hash target {given} not supported ({', '.join(targets)})")
        return given or targets[0]

    def _mode(self, name: str):
        mode = self.modes.get(name)
        if mode is None:
            raise CommandError(f"forwarding mode {name} is not available "
                               f"(available: {self._flags()})")
        return mode

    def _check_hooks(self, cand: Service, dest: Dest | None = None) -> None:
        """The modes' own rules, asked about the service as it would be after the change."""
        if dest is not None:
            self.modes[dest.mode].check_dest(cand, dest, self.model)
        for name in dict.fromkeys(d.mode for d in cand.dests):
            self.modes[name].check_service(cand, self.model)

    # -------------------------------------------------------------- services

    def get(self, key: tuple, missing: str = "No such service") -> Service:
        svc = self.table.get(key)
        if svc is None:
            raise CommandError(missing)
        return svc

    def add_service(self, key: tuple, *, sched: str | None = None, persistent: int | None = None,
                    netmask: IPv4Address | None = None, hash_target: str | None = None) -> Service:
        """ipvsadm -A; persistent is the persistence timeout (None: not persistent).
        A match key (match_key) makes a SNAT match service."""
        proto, vaddr, vport = key
        if proto == 0 and isinstance(vaddr, str):
            return self._add_match_service(key, sched, persistent, hash_target)
        if proto not in PROTO_NAMES:
            raise CommandError(f"protocol {proto} is not supported (TCP or UDP)")
        if vport == 0:
            if persistent is None:
                raise CommandError("Zero port specified for no-match and non-persistent service")
            raise CommandError("all-port (port 0) persistent services are not supported")
        _check_unicast(vaddr, "virtual service address")
        if key in self.table:
            raise CommandError("Service already exists")
        sched = sched or DEFAULT_SCHEDULER
        target = self.hash_target(sched, hash_target)
        if persistent is not None:
            _check_timeout(persistent, 1)
        if netmask is not None:
            _check_netmask(netmask)
        if not self._svc_slots.room(1):
            raise CommandError(f"service table full ({self._svc_slots.size} services)")
        svc = Service(proto, vaddr, vport, sched, persistent is not None,
                      persistent or PERSISTENT_TIMEOUT, netmask or HOST_MASK, target)
        self.table[key] = svc
        try:                        # a VIP may be what real servers are reached from
            m = self.model
            sources = {IPv4Address(m._primary(p)) for p in m.ports} | \
                {r.src for r in m.routes.values() if r.src is not None}
            if vaddr in sources:
                self.check_all()
        except CommandError as err:
            del self.table[key]
            raise CommandError(f"the VIP {vaddr} cannot be added: {err}") from None
        svc.slot = self._svc_slots.take()
        if self.engine is not None:
            # the data plane knows its VIPs from the services it holds (lb.pxd vip_known)
            self._ensure_registered(self.engine)
            self._push_service(self.engine, svc)
        self.changed()
        return svc

    def _add_match_service(self, key, sched, persistent, hash_target) -> Service:
        from rlb.model.match import parse_match
        match = parse_match(key[1], self.model.ports)
        if key in self.table:
            raise CommandError("Service already exists")
        if persistent is not None:
            raise CommandError("a match (SNAT) service cannot be persistent")
        sched = sched or DEFAULT_SCHEDULER
        target = self.hash_target(sched, hash_target)
        if not self._svc_slots.room(1):
            raise CommandError(f"service table full ({self._svc_slots.size} services)")
        if sum(1 for s in self.table.values() if s.match is not None) >= MAX_MATCH_SVCS:
            raise CommandError(f"at most {MAX_MATCH_SVCS} match services")
        svc = Service(match.proto, IPv4Address(0), 0, sched, match=match, hash_target=target)
        svc.slot = self._svc_slots.take()
        self.table[svc.key] = svc
        if self.engine is not None:
            self._ensure_registered(self.engine)
            self._push_service(self.engine, svc)
        self.changed()
        return svc

    def edit_service(self, key: tuple, *, sched: str | None = None, persistent: int | None = None,
                     netmask: IPv4Address | None = None, no_persistent: bool = False,
                     hash_target: str | None = None) -> Service:
        """Only what is given changes (ipvsadm -E gives everything: rlb/commands/ipvsadm.py);
        no_persistent (the shell's `no persistent`) ends persistence. A new scheduler
        without a hash target gets its default one."""
        svc = self.get(key)
        if no_persistent and (persistent is not None or netmask is not None):
            raise CommandError("persistence cannot be set and ended at once")
        new_sched = sched or svc.sched
        target = self.hash_target(new_sched, hash_target if hash_target is not None or
                              new_sched != svc.sched else svc.hash_target)
        if persistent is not None:
            _check_timeout(persistent, 1)
        if netmask is not None:
            _check_netmask(netmask)
        if svc.match is not None and persistent is not None:
            raise CommandError("a match (SNAT) service cannot be persistent")
        changes = {"sched": new_sched, "hash_target": target}
        if persistent is not None:
            changes.update(persistent=True, timeout=persistent)
        if no_persistent:
            changes.update(persistent=False, timeout=PERSISTENT_TIMEOUT, netmask=HOST_MASK)
        if netmask is not None:
            changes["netmask"] = netmask
        self._check_hooks(replace(svc, **changes))
        for k, v in changes.items():
            setattr(svc, k, v)
        if self.engine is not None:
            self._ensure_registered(self.engine)
            self._push_service(self.engine, svc)
        self.changed()
        return svc

    def set_health(self, key: tuple, policy) -> Service:
        """The service's health policy (rlb.health.config.Policy; None: the defaults)."""
        svc = self.get(key)
        svc.health = policy
        self.changed()
        return svc

    def del_service(self, key: tuple) -> Service:
        """ipvsadm -D: the service, its real servers and its local addresses."""
        svc = self.get(key)
        self._remove(svc)
        self._release(svc.laddrs)
        self.changed()
        return svc

    def clear(self) -> list[Service]:
        """ipvsadm -C: every service (timeouts stay)."""
        gone = list(self.table.values())
        for svc in gone:
            self._remove(svc)
        self._release([la for svc in gone for la in svc.laddrs])
        self.changed()
        return gone

    def _remove(self, svc: Service) -> None:
        del self.table[svc.key]
        self._svc_slots.give(svc.slot)
        for d in svc.dests:
            self._dest_slots.give(d.slot)
        self._forget(("svc", svc.slot), *(("dest", d.slot) for d in svc.dests))
        e = self.engine
        if e is not None:
            e.svc_del(svc.slot)
            for d in svc.dests:
                e.dest_del(d.slot, drain=False)      # a service gone ends its connections

    # ---------------------------------------------------------- real servers

    def add_dest(self, key: tuple, addr: IPv4Address, port: int | None = None, *,
                 mode: str | None = None, weight: int | None = None,
                 u_threshold: int | None = None, l_threshold: int | None = None,
                 check=None, disabled: bool | None = None, sorry: bool = False) -> Dest:
        """ipvsadm -a; port None: the service's port, mode None: the default (-g).
        check, disabled, sorry: its health (Dest)."""
        svc = self.get(key, "Service not defined")
        mode = self._mode(mode).name if mode is not None else self.mode_for_flag(None)
        port = svc.dest_port(port)
        if svc.dest(addr, port) is not None:
            raise CommandError("Destination already exists")
        d = Dest(addr, port, mode, 1 if weight is None else weight, u_threshold or 0,
                 l_threshold or 0, check=check, disabled=bool(disabled), sorry=sorry)
        _check_dest(d)
        match_only = self._check_fit(svc, d)
        if self.model.find_address(addr) is not None and not match_only:
            raise CommandError(f"real server {addr} is one of our own addresses")
        if not self._dest_slots.room(1):
            raise CommandError(f"real server table full ({self._dest_slots.size} real servers)")
        if len(svc.dests) >= MAX_DESTS_PER_SVC:
            raise CommandError(f"at most {MAX_DESTS_PER_SVC} real servers per service")
        self._check_hooks(replace(svc, dests=[*svc.dests, d]), d)
        d.slot = self._dest_slots.take()
        svc.dests.append(d)
        if self.engine is not None:
            self._ensure_registered(self.engine)
            self._push_dest(self.engine, svc, d)
            self._push_service(self.engine, svc)
        self.changed()
        return d

    def _check_fit(self, svc: Service, d: Dest) -> bool:
        """A real server's mode fits its service; whether it is SNAT's (match only)."""
        match_only = getattr(self.modes[d.mode], "match_only", False)
        if (svc.match is not None) != match_only:
            raise CommandError("a match service (-H) takes SNAT (-J) real servers, and SNAT "
                               "serves only match services")
        if svc.laddrs and not self.modes[d.mode].needs_laddr:
            raise CommandError(f"this service has local addresses (FNAT): a {d.mode} real "
                               "server cannot use them; delete them first (ipvsadm --del-laddr)")
        return match_only

    def edit_dest(self, key: tuple, addr: IPv4Address, port: int | None = None, *,
                  mode: str | None = None, weight: int | None = None,
                  u_threshold: int | None = None, l_threshold: int | None = None,
                  check=None, no_check: bool = False, disabled: bool | None = None,
                  sorry: bool | None = None) -> Dest:
        """Only what is given changes (ipvsadm -e gives everything: rlb/commands/ipvsadm.py);
        no_check drops the server's own check clause."""
        svc = self.get(key, "Service not defined")
        d = svc.dest(addr, port)
        if d is None:
            raise CommandError("No such destination")
        given = {"mode": mode and self._mode(mode).name, "weight": weight,
                 "u_threshold": u_threshold, "l_threshold": l_threshold, "check": check,
                 "disabled": disabled, "sorry": sorry}
        changes = {k: v for k, v in given.items() if v is not None}
        if no_check:
            changes["check"] = None

        new = replace(d, **changes)
        _check_dest(new)
        self._check_fit(svc, new)
        self._check_hooks(replace(svc, dests=[new if x is d else x for x in svc.dests]), new)
        for k, v in changes.items():
            setattr(d, k, v)
        if self.engine is not None:
            self._ensure_registered(self.engine)
            self._push_dest(self.engine, svc, d)
            self._push_service(self.engine, svc)
        self.changed()
        return d

    def del_dest(self, key: tuple, addr: IPv4Address, port: int | None = None) -> Dest:
        """ipvsadm -d: the service stops listing it first, then its slot is freed."""
        svc = self.get(key, "Service not defined")
        d = svc.dest(addr, port)
        if d is None:
            raise CommandError("No such destination")
        svc.dests.remove(d)
        self._dest_slots.give(d.slot)
        self._forget(("dest", d.slot))
        if self.engine is not None:
            self._push_service(self.engine, svc)
            self.engine.dest_del(d.slot)
        self.changed()
        return d

    # ------------------------------------------------------- local addresses

    def add_laddr(self, key: tuple, addr: IPv4Address, dev: str) -> Laddr:
        """ipvsadm --add-laddr: the address is added to the port with sapool if it is not
        there yet (DPVS tutorial: "sapool option will be set automatically")."""
        svc = self.get(key, "Service not defined")
        self.model.port(dev)
        others = sorted({d.mode for d in svc.dests if not self.modes[d.mode].needs_laddr})
        if svc.match is not None or others:
            raise CommandError("local addresses are for FNAT services; this one's real servers "
                               f"are {', '.join(others) or 'SNAT matches'}")
        if any(la.addr == addr for la in svc.laddrs):
            raise CommandError("Local address already exists")
        existing = self.model.find_address(addr)
        if existing is not None and existing.port != dev:
            raise CommandError(f"local address {addr} is an address of {existing.port}, not {dev}")
        if existing is not None and not existing.sapool:
            raise CommandError(f"address {addr} on {dev} has no sapool: delete it with dpip and "
                               "let ipvsadm --add-laddr add it")
        if len(svc.laddrs) >= MAX_LADDRS_PER_SVC:
            raise CommandError(f"at most {MAX_LADDRS_PER_SVC} local addresses per service")
        la = Laddr(addr, dev)
        self._check_hooks(replace(svc, laddrs=[*svc.laddrs, la]))
        if existing is None:
            # validates fully before changing anything, so this is the first change
            # a VRRP VIP's local address is the MASTER's: keepalived announces it
            self.model.add_address(IPv4Interface(f"{addr}/32"), dev, sapool=True,
                                   garp=svc.vaddr not in self.model.vrrp_vips())
            self._auto.add(addr)
            if self.engine is not None:     # made by us: no longer a candidate ARP source
                self.engine.port_addr(self.model.ports[dev].index, self.model._primary(dev))
        svc.laddrs.append(la)
        if self.engine is not None:
            self._ensure_registered(self.engine)
            self._push_service(self.engine, svc)
        self.changed()
        return la

    def del_laddr(self, key: tuple, addr: IPv4Address, dev: str) -> Laddr:
        """ipvsadm --del-laddr; an address --add-laddr created goes with its last user."""
        svc = self.get(key, "Service not defined")
        la = next((x for x in svc.laddrs if x.addr == addr and x.dev == dev), None)
        if la is None:
            raise CommandError("No such Local address")
        svc.laddrs.remove(la)
        if self.engine is not None:
            self._push_service(self.engine, svc)
        self._release([la])
        self.changed()
        return la

    def _release(self, laddrs) -> None:
        """Remove the addresses --add-laddr created that no service uses any more (one still
        the src of a route stays, as the operator's)."""
        in_use = {la.addr for s in self.table.values() for la in s.laddrs}
        for la in laddrs:
            if la.addr not in self._auto or la.addr in in_use:
                continue
            self._auto.discard(la.addr)
            a = self.model.find_address(la.addr)
            if a is None or any(r.src == la.addr for r in self.model.routes.values()):
                continue
            self.model.del_address(a.iface, a.port)

    def laddr_users(self, ip: IPv4Address) -> list[Service]:
        return [s for s in self.table.values() if any(la.addr == ip for la in s.laddrs)]

    def check_address_add(self, ip: IPv4Address) -> None:
        """Model.add_address asks first: a real server cannot become one of our addresses
        (SNAT's real servers are ours: they are the WAN addresses)."""
        for svc in self.table.values():
            for d in svc.dests:
                if d.addr == ip and not getattr(self.modes[d.mode], "match_only", False):
                    raise CommandError(f"{ip} is a real server of {svc}")

    def dests_in(self, prefixes) -> bool:
        """Whether a real server's address is in one of the prefixes."""
        return any(d.addr in p for svc in self.table.values() for d in svc.dests
                   for p in prefixes)

    def check_all(self) -> None:
        """Every service and real server still passes its mode's checks (the model asks
        before removing an address or a route)."""
        for svc in self.table.values():
            for d in svc.dests:
                self.modes[d.mode].check_dest(svc, d, self.model)
            self._check_hooks(svc)

    def uses_port(self, name: str) -> bool:
        """A service names the interface: a local address on it, a match's iif/oif."""
        for svc in self.table.values():
            if any(la.dev == name for la in svc.laddrs):
                return True
            m = getattr(svc, "match", None)
            if m is not None and name in (m.iif, m.oif):
                return True
        return False

    def check_address_delete(self, ip: IPv4Address) -> None:
        """Model.del_address asks first: a local address in use stays."""
        users = self.laddr_users(ip)
        if users:
            raise CommandError(f"address {ip} is a local address of {', '.join(map(str, users))}:"
                               " remove it with ipvsadm --del-laddr first")

    # ------------------------------------------------------------- timeouts

    def set_timeouts(self, tcp: int, tcpfin: int, udp: int) -> dict:
        """ipvsadm --set: 0 leaves a value unchanged."""
        new = {"tcp": tcp, "tcpfin": tcpfin, "udp": udp}
        for value in new.values():
            _check_timeout(value, 0)
        for name, value in new.items():
            if value:
                self.timeouts[name] = value
                if self.engine is not None:
                    self.engine.set_timeout(name, value)
        return dict(self.timeouts)

    # ----------------------------------------------------------- data plane

    def attach(self, engine) -> None:
        """Replay the whole table into a freshly started data plane (Model.attach calls this
        last): timeouts, then per service its real servers, its table, the service. A table
        never configured pushes nothing (the data plane starts with the LVS defaults)."""
        self._registered = None
        self._samples.clear()
        if not self.table and self.timeouts == DEFAULT_TIMEOUTS:
            return
        for name, value in self.timeouts.items():
            engine.set_timeout(name, value)
        if not self.table:
            return
        self._ensure_registered(engine)
        for svc in self.table.values():
            for d in svc.dests:
                self._push_dest(engine, svc, d)
            self._push_service(engine, svc)
