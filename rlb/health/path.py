"""Where a probe of a real server goes and where it leaves from, so that it follows the
data path of the server's forwarding mode (DR: at the VIP with the server's MAC; Tunnel:
at the VIP inside IPIP; FNAT: from a local address of the service; NAT: to RIP:port).

The monitor (rlb.health.monitor) asks `ProbePaths.target(svc, dest)` before each probe
and hands the Target to `Check.run(target.addr, target.port, target.source, target.sport)`.

How a probe reaches the data plane: the checks run in the daemon, in the LB's namespace,
whose kernel sees only the kni taps. `sync()` gives that kernel each probe source (an
address of the data plane's own) as a /32 on its port's kni, and two policy rules, `from
SOURCE sport PROBE_PORTS` and `from SOURCE ipproto icmp`, into a table per port whose
default route leads to a link-local gateway whose permanent neighbour entry is the
port's own MAC. So the kernel never ARPs, its other traffic is untouched, and a probe
reaches the data plane as a frame to its own MAC (rlb/core/probe.pxd), which takes it on:
routed to RIP:port, or to the VIP through the DR or Tunnel transmit of the real server
that the probe's local port names (PROBE_PORT_MIN + the server's dest slot). Answers come
to our own address, and what the data plane does not take of those goes to the kni.
"""
from __future__ import annotations

import errno
import logging
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from rlb.core.consts import PROBE_PORT_MIN, PROBE_PORTS
from rlb.modes import PROBE_LADDR, PROBE_RIP, PROBE_VIP
from rlb.netlink import in_thread
from rlb.modes.direct import ROUTED, arp_source, route_to, vips

log = logging.getLogger("rlb.health")

# The kernel side, in the LB's own namespace
TABLE_BASE = 29200            # the routing table of port index i: TABLE_BASE + i
RULE_PRIORITY = 100           # before `main` (32766) and, once moved, `local`
# While probe rules exist, the kernel's `local` rule (priority 0) is moved after them: a
# VIP the LB's kernel also holds (on a kni: an announced VIP, rlb.routing.announce) must
# not take a probe to it away from the data plane (DR and Tunnel probes go to the VIP)
LOCAL_TABLE, LOCAL_FIRST, LOCAL_MOVED = 255, 0, 200
GATEWAY = "169.254.0.1"       # link-local: only ever a permanent neighbour of a kni
NUD_PERMANENT = 0x80          # linux/neighbour.h
RTNH_F_ONLINK = 4             # linux/rtnetlink.h: the gateway is on the link as it is
IPPROTO_ICMP = 1
# a kernel rule's port range may not end at 65535 (fib_rule_port_range_valid)
SPORT_RANGE = f"{PROBE_PORT_MIN}:{PROBE_PORT_MIN + PROBE_PORTS - 1}"
ADD, DEL, REPLACE = "add", "del", "replace"


@dataclass(frozen=True)
class Target:
    addr: str                  # where the probe connects: the RIP, or the VIP for DR/Tunnel
    port: int                  # its port
    source: str | None = None  # local address bound before connecting (None: the kernel's)
    sport: int = 0             # local port bound (0: any)


def probe_port(dest, names: bool = True) -> int:
    """The local port of a real server's probes: its dest slot in the reserved range.
    Past the range (a real-server table over PROBE_PORTS), a probe whose port must name
    its server (at a VIP) has none (0); a probe to RIP:port only needs a port of the
    range (the data plane routes it by its address), so the slot wraps around."""
    if dest.slot < 0:
        return 0
    if dest.slot < PROBE_PORTS:
        return PROBE_PORT_MIN + dest.slot
    return 0 if names else PROBE_PORT_MIN + dest.slot % PROBE_PORTS


@dataclass
class _Kernel:
    """What sync() put into the kernel, so that sync() and close() take out only that."""
    ports: dict = field(default_factory=dict)      # port name -> (ifindex, table)
    addrs: dict = field(default_factory=dict)      # IPv4Address -> ifindex (added by us)
    rules: dict = field(default_factory=dict)      # IPv4Address -> table
    local_moved: bool = False                      # the `local` rule at LOCAL_MOVED


class ProbePaths:
    """The probe paths of one instance: `sync()` after every change of the model sets
    up what the probes need (the kernel's way to the data plane; the data plane needs
    nothing of its own: a probe's port names its real server's slot, which the workers
    hold already), `target()` says where one probe goes, `close()` removes what sync()
    made."""

    def __init__(self, model):
        self.model = model
        self.kernel = _Kernel()
        self.problems: list[str] = []      # what the last sync could not do, in words

    @property
    def enabled(self) -> bool:
        """Probes follow the data path only through kni taps (`no-kni`: the plain RIP)."""
        return bool(self.model.settings.kni)

    # ------------------------------------------------------------------ targets

    def target(self, svc, dest) -> Target:
        plain = Target(str(dest.addr), dest.port)
        if not self.enabled:
            return plain
        kind = getattr(self.model.services.modes.get(dest.mode), "probe", PROBE_RIP)
        sport = probe_port(dest, names=kind == PROBE_VIP)
        source = self._source(svc, dest, kind)
        if not sport or source is None:
            return plain
        if kind == PROBE_VIP and getattr(svc, "vaddr", None) is not None:
            return Target(str(svc.vaddr), dest.port, str(source), sport)
        return Target(str(dest.addr), dest.port, str(source), sport)

    def prober(self, svc, dest, source: str | None = None,
               port: int | None = None) -> tuple | None:
        """The data plane's TCP prober's arguments for a check of `dest` (Engine.probe_tcp:
        slot, saddr, daddr, sport, dport, dest slot at a VIP or -1, source's port index),
        along the same path as target()'s, kni or not (no kernel takes part); None when
        the prober cannot take it (no source of ours, a slot past its table): the check
        then runs from a kernel socket. `source`/`port`: the check's own."""
        engine = self.model.engine
        cap = getattr(engine, "probe_capacity", 0)
        if not 0 <= dest.slot < cap:
            return None
        kind = getattr(self.model.services.modes.get(dest.mode), "probe", PROBE_RIP)
        if source is not None:
            src = IPv4Address(source)
        else:
            src = self._source(svc, dest, kind)
        a = self.model.find_address(src) if src is not None else None
        if a is None:                   # not ours: the kernel's socket binds it or fails
            return None
        if kind == PROBE_VIP:
            if getattr(svc, "vaddr", None) is None:
                return None
            daddr, via = int(svc.vaddr), dest.slot
        else:
            daddr, via = int(dest.addr), -1
        return (dest.slot, int(src), daddr, PROBE_PORT_MIN + dest.slot % PROBE_PORTS,
                port or dest.port, via, self.model.ports[a.port].index)

    def _source(self, svc, dest, kind: str) -> IPv4Address | None:
        """The data plane's own address facing the real server: a local address of the
        service (FNAT), else the route's src (Tunnel's outer source), else our address
        on the network of the next hop (as Linux picks a source: the server answers on
        its connected network), else the port's first address (the ARP source)."""
        if kind == PROBE_LADDR and svc.laddrs:
            return svc.laddrs[0].addr
        r = route_to(self.model, dest.addr)
        if r is None or r.scope not in ROUTED:
            return None
        if r.src is not None:
            return r.src
        hop, taken = r.via or dest.addr, vips(self.model, svc)
        for a in self.model.addresses:     # never a VIP: the real servers hold it (DR)
            if a.port == r.port and a.iface.network.prefixlen < 32 and \
                    hop in a.iface.network and a.ip not in taken:
                return a.ip
        return arp_source(self.model, r)

    def wanted(self) -> dict[IPv4Address, str]:
        """Every probe source and the port it is an address of."""
        out: dict[IPv4Address, str] = {}
        for svc in self.model.services.table.values():
            for d in svc.dests:
                t = self.target(svc, d)
                a = self.model.find_address(IPv4Address(t.source)) if t.source else None
                if a is not None:
                    out[a.ip] = a.port
        return out

    # ---------------------------------------------------------------- the kernel

    def sync(self) -> None:
        """Make the kernel's probe routing the model's: each source a /32 on its port's
        kni (unless the kernel has it already), its rules, each such port's table,
        gateway and neighbour; what is no longer wanted goes. Never raises: what fails
        is logged and kept in `problems` (the probes it concerns then fail)."""
        want = self.wanted() if self.enabled else {}
        if not want and not self.kernel.ports and not self.kernel.rules:
            self.problems = []
            return
        self.problems = _in_thread(lambda ipr: self._apply(ipr, want))
        for p in self.problems:
            log.warning("health probe path: %s", p)

    def close(self) -> None:
        """Remove everything sync() made (the daemon's stop; `no-kni`)."""
        if self.kernel.ports or self.kernel.rules or self.kernel.addrs or \
                self.kernel.local_moved:
            for p in _in_thread(lambda ipr: self._apply(ipr, {})):
                log.warning("health probe path: %s", p)

    def _apply(self, ipr, want: dict[IPv4Address, str]) -> list[str]:
        problems: list[str] = []
        k = self.kernel
        ports = {}
        for name in sorted(set(want.values())):
            port = self.model.ports[name]
            found = ipr.link_lookup(ifname=port.kni)
            if not found:
                problems.append(f"no interface {port.kni}: probes of {name} cannot start")
                continue
            ports[name] = (found[0], TABLE_BASE + port.index)
        # out: rules and addresses of sources gone or moved, then unused ports' tables
        for ip, table in list(k.rules.items()):
            if want.get(ip) not in ports or ports[want[ip]][1] != table:
                _rules(ipr, DEL, ip, table, problems)
                del k.rules[ip]
        for ip, index in list(k.addrs.items()):
            if want.get(ip) not in ports or ports[want[ip]][0] != index:
                _quiet(problems, f"address {ip}", ipr.addr, DEL, index=index,
                       address=str(ip), prefixlen=32)
                del k.addrs[ip]
        for name, (index, table) in list(k.ports.items()):
            if ports.get(name) != (index, table):
                _quiet(problems, f"table {table}", ipr.route, DEL, dst="0.0.0.0/0",
                       gateway=GATEWAY, oif=index, table=table)
                _quiet(problems, f"neighbour {GATEWAY}", ipr.neigh, DEL, dst=GATEWAY,
                       ifindex=index)
                del k.ports[name]
        # in: each port's gateway, its sources' addresses (before the route: a gateway is
        # checked against the local table, which a namespace without any address lacks),
        # its table; then each source's rules
        for name, (index, table) in ports.items():
            mac = ipr.get_links(index)[0].get("address")
            if not _quiet(problems, f"neighbour {GATEWAY} on {self.model.ports[name].kni}",
                          ipr.neigh, REPLACE, dst=GATEWAY, lladdr=mac, ifindex=index,
                          state=NUD_PERMANENT):
                continue
            for ip in [ip for ip, port in want.items() if port == name]:
                if ip not in k.addrs and not ipr.get_addr(address=str(ip)) and \
                        _quiet(problems, f"address {ip}", ipr.addr, ADD, index=index,
                               address=str(ip), prefixlen=32):
                    k.addrs[ip] = index
            if _quiet(problems, f"table {table}", ipr.route, REPLACE, dst="0.0.0.0/0",
                      gateway=GATEWAY, oif=index, table=table, flags=RTNH_F_ONLINK):
                k.ports[name] = (index, table)
        for ip, name in want.items():
            if name not in k.ports:
                continue
            table = k.ports[name][1]
            if ip not in k.rules:
                _rules(ipr, ADD, ip, table, problems)
                k.rules[ip] = table
        _local_rule(ipr, k, bool(k.rules), problems)
        return problems


def _local_rule(ipr, k: _Kernel, after: bool, problems: list[str]) -> None:
    """The kernel's `local` rule after the probe rules (after=True), or back first."""
    if after == k.local_moved:
        return
    new, old = (LOCAL_MOVED, LOCAL_FIRST) if after else (LOCAL_FIRST, LOCAL_MOVED)
    if _quiet(problems, f"rule {new} lookup local", ipr.rule, ADD, table=LOCAL_TABLE,
              priority=new) and \
            _quiet(problems, f"rule {old} lookup local", ipr.rule, DEL, table=LOCAL_TABLE,
                   priority=old):
        k.local_moved = after


def _rules(ipr, cmd: str, ip: IPv4Address, table: int, problems: list[str]) -> None:
    """The two rules of a probe source: its TCP/UDP probes by local port, its ICMP."""
    common = dict(table=table, priority=RULE_PRIORITY, src=str(ip), src_len=32)
    _quiet(problems, f"rule from {ip} sport {SPORT_RANGE}", ipr.rule, cmd,
           sport_range=SPORT_RANGE, **common)
    _quiet(problems, f"rule from {ip} ipproto icmp", ipr.rule, cmd, ip_proto=IPPROTO_ICMP,
           **common)


def _quiet(problems: list[str], what: str, call, cmd: str, **kw) -> bool:
    """One netlink change; True when it holds. Adding what is there already, or removing
    what is gone already, is success; any other refusal is a problem, in words."""
    try:
        call(cmd, **kw)
        return True
    except Exception as err:       # pyroute2's NetlinkError (.code: the errno), OSError
        code = getattr(err, "code", None) or getattr(err, "errno", None)
        # the kernel drops a device's routes with its last address: already gone is gone
        if cmd == DEL and code in (errno.ENOENT, errno.ESRCH, errno.EADDRNOTAVAIL):
            return True
        if cmd == ADD and code == errno.EEXIST:
            return True
        problems.append(f"{cmd} {what}: {err}")
        return False


def _in_thread(work) -> list[str]:
    return in_thread(work, "rlb-probe-paths")
