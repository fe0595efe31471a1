"""The tutorial's scenarios as data: nodes, veth links, L2 segments, addresses, routes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from rlb.lab import scripts

# Linux limits interface names to IFNAMSIZ-1 characters.
IFNAMSIZ = 15

# A node lives in the namespace NS_PREFIX + node name (rlb-client, rlb-lb ...).
NS_PREFIX = "rlb-"

End = tuple[str, str]  # (node, interface name inside that node's namespace)


@dataclass(frozen=True)
class Node:
    """One network namespace and what the lab configures in it."""

    name: str
    role: str  # client | lb | rs | switch | router
    addrs: tuple[End, ...] = ()  # (ifname, "a.b.c.d/len"); "lo" carries DR's VIP
    routes: tuple[str, ...] = ()  # arguments of `ip route add`, one route each
    # Applied right after the namespace is made, before any interface exists,
    # so `default` keys reach every interface created afterwards.
    sysctls: tuple[tuple[str, str], ...] = ()
    nginx: bool = False  # runs the "Your ip:port" real server
    hidden: bool = False  # plumbing (a switch, a router), not a host of the scenario
    decap: bool = False  # a tunnel-mode real server: IPIP into tunl0 (rlb/lab/decap.py)


@dataclass(frozen=True)
class Link:
    """A veth pair between two nodes."""

    a: End
    b: End


@dataclass(frozen=True)
class Segment:
    """An L2 segment: a Linux bridge in a switch node, one veth per member."""

    name: str  # bridge name in the switch's namespace
    switch: str  # the node that holds the bridge
    members: tuple[End, ...]

    def switch_side(self, member: End) -> str:
        """Name of the veth end plugged into the bridge for this member."""
        node, ifname = member
        return f"{node}-{ifname}"[:IFNAMSIZ]


@dataclass(frozen=True)
class Topology:
    """A whole scenario; the builder in netns.py has no code per topology."""

    name: str
    description: str
    nodes: tuple[Node, ...]
    links: tuple[Link, ...] = ()
    segments: tuple[Segment, ...] = ()
    ports: tuple[tuple[str, str], ...] = ()  # (data port, veth in the lb node)
    lb: str = "lb"
    # The LB's data plane routes what is not for a service (dpvs.conf's ipv4
    # `forwarding on`): DR two-arm's replies come back through it.
    lb_forwarding: bool = False
    vip: str = ""  # where the client reaches the service once the LB is set
    vport: int = 80
    # The tutorial's commands for this scenario, typed on the LB: the one definition
    # that `rlb lab up NAME --tutorial` applies, `rlb lab script NAME` prints, and the
    # demo, the tests and the benchmarks use; script(**knobs) gives a variant (another
    # port, one real server, UDP: see scripts.py). A plain `lab up` leaves the LB bare.
    script: Callable[..., tuple[str, ...]] = lambda **_: ()

    @property
    def lb_script(self) -> tuple[str, ...]:
        """The tutorial's lines for this scenario, as the tutorial has them."""
        return self.script()

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    @property
    def node_names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nodes)

    def veth_ends(self) -> list[End]:
        """Every veth end of the topology, switch-side ends included."""
        ends: list[End] = []
        for link in self.links:
            ends += [link.a, link.b]
        for seg in self.segments:
            for member in seg.members:
                ends += [member, (seg.switch, seg.switch_side(member))]
        return ends


def ns_name(node: str) -> str:
    return NS_PREFIX + node


def port_iface(port: str) -> str:
    """The lb namespace's veth end that a DPDK port `port` opens."""
    return f"veth-{port}"


# --- building blocks (shared values, not per-topology code) -----------------

LAN = scripts.LAN
LAN_GW = scripts.LAN_GW  # an address an LB may carry on dpdk0 (DR, routing)
WAN_GW = "10.0.0.1"  # an address an LB may carry on dpdk1 (routing tests)
RS1, RS2 = scripts.RS1, scripts.RS2

# The switch forwards frames only: IPv6 off keeps its bridge and ports from
# sending anything of their own into the scenario.
_QUIET = (
    ("net.ipv6.conf.all.disable_ipv6", "1"),
    ("net.ipv6.conf.default.disable_ipv6", "1"),
)

# LVS-DR real servers carry the VIP on lo and must not answer ARP for it.
# The tutorial sets arp_ignore on lo only; Linux takes the maximum of `all`
# and the receiving interface (eth0), so `all` is what makes it effective.
_DR_RS = (
    ("net.ipv4.conf.all.arp_ignore", "1"),
    ("net.ipv4.conf.all.arp_announce", "2"),
    ("net.ipv4.conf.lo.arp_ignore", "1"),
)


# A tunnel-mode real server is a DR one whose packets arrive on tunl0, the client's source
# not routed there: Linux uses the maximum of `all` and the device's rp_filter, so `all`
# stays off (rlb/lab/decap.py sets tunl0's: off, tunl0 holding no address here).
_TUN_RS = _DR_RS + (
    ("net.ipv4.conf.all.rp_filter", "0"),
    ("net.ipv4.conf.default.rp_filter", "0"),
)


def _rs(name: str, addr: str, routes: tuple[str, ...] = (), vip: str = "",
        plen: int = 24, tunnel: bool = False) -> Node:
    addrs: tuple[End, ...] = (("eth0", f"{addr}/{plen}"),)
    if vip:
        addrs += (("lo", f"{vip}/32"),)
    sysctls = _TUN_RS if tunnel else _DR_RS if vip else ()
    return Node(name, "rs", addrs=addrs, routes=routes, nginx=True, sysctls=sysctls,
                decap=tunnel)


def _switch(name: str = "sw") -> Node:
    return Node(name, "switch", sysctls=_QUIET, hidden=True)


def _lan(*members: End) -> Segment:
    return Segment("br-lan", "sw", members)


def _two_arm(name: str, description: str, vip_on_rs: bool,
             script: Callable[..., tuple[str, ...]], lb_forwarding: bool = False) -> Topology:
    """Client on the WAN port (dpdk1), real servers on a LAN segment (dpdk0)."""
    rs_routes = (f"default via {LAN_GW}",)
    vip = "10.0.0.100" if vip_on_rs else ""
    return Topology(
        name=name,
        description=description,
        nodes=(
            Node("client", "client", addrs=(("eth0", "10.0.0.48/16"),),
                 routes=(f"{LAN} via {WAN_GW}",)),
            Node("lb", "lb"),
            _rs("rs1", RS1, rs_routes, vip),
            _rs("rs2", RS2, rs_routes, vip),
            _switch(),
        ),
        links=(Link(("client", "eth0"), ("lb", port_iface("dpdk1"))),),
        segments=(_lan(("lb", port_iface("dpdk0")), ("rs1", "eth0"), ("rs2", "eth0")),),
        ports=(("dpdk0", port_iface("dpdk0")), ("dpdk1", port_iface("dpdk1"))),
        lb_forwarding=lb_forwarding,
        vip="10.0.0.100",
        script=script,
    )


def _one_arm(name: str, description: str, client: str, vip_on_rs: bool,
             script: Callable[..., tuple[str, ...]]) -> Topology:
    """Client, LB port dpdk0 and real servers all on one LAN segment."""
    vip = "192.168.100.254"
    return Topology(
        name=name,
        description=description,
        nodes=(
            Node("client", "client", addrs=(("eth0", f"{client}/24"),)),
            Node("lb", "lb"),
            _rs("rs1", RS1, vip=vip if vip_on_rs else ""),
            _rs("rs2", RS2, vip=vip if vip_on_rs else ""),
            _switch(),
        ),
        segments=(_lan(("client", "eth0"), ("lb", port_iface("dpdk0")),
                       ("rs1", "eth0"), ("rs2", "eth0")),),
        ports=(("dpdk0", port_iface("dpdk0")),),
        vip=vip,
        script=script,
    )


# Tutorial, "Tunnel": the LB's LAN 10.140.16.0/20 with its gateway, one real server on
# it and one behind the gateway in another subnet.
TUN_LAN_GW = "10.140.31.254"
TUN_VIP = "10.140.31.48"
TUN_FAR_GW = "10.40.84.254"
TUN_RS1, TUN_RS2 = "10.140.18.33", "10.40.84.170"
TUN_CLIENT = "10.140.20.46"

# A router forwards between its networks; rp_filter off because the real servers
# behind it answer from the VIP, which lives on the other side (the LAN).
_ROUTER = _QUIET + (
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv4.conf.all.rp_filter", "0"),
    ("net.ipv4.conf.default.rp_filter", "0"),
)


def _tunnel_one_arm(name: str, description: str, script: Callable[..., tuple[str, ...]]) -> Topology:
    """Client, LB port dpdk0, rs1 and the router on the LAN; rs2 behind the router."""
    return Topology(
        name=name,
        description=description,
        nodes=(
            Node("client", "client", addrs=(("eth0", f"{TUN_CLIENT}/20"),),
                 routes=(f"default via {TUN_LAN_GW}",)),
            Node("lb", "lb"),
            _rs("rs1", TUN_RS1, (f"default via {TUN_LAN_GW}",), TUN_VIP, plen=20,
                tunnel=True),
            _rs("rs2", TUN_RS2, (f"default via {TUN_FAR_GW}",), TUN_VIP, tunnel=True),
            Node("router", "router", addrs=(("eth0", f"{TUN_LAN_GW}/20"),
                                            ("eth1", f"{TUN_FAR_GW}/24")),
                 sysctls=_ROUTER, hidden=True),
            _switch(),
        ),
        links=(Link(("router", "eth1"), ("rs2", "eth0")),),
        segments=(_lan(("client", "eth0"), ("lb", port_iface("dpdk0")),
                       ("rs1", "eth0"), ("router", "eth0")),),
        ports=(("dpdk0", port_iface("dpdk0")),),
        vip=TUN_VIP,
        script=script,
    )


# Tutorial, "NAT mode (one-arm)": one port (named bond0 as there) carrying the client
# network 192.168.0.0/24 and the real servers' 10.140.16.0/20; the real servers route
# the client network back via the LB.
NAT_LB_LAN = "10.140.31.48"
NAT_VIP = "192.168.0.89"


def _nat_one_arm(name: str, description: str, script: Callable[..., tuple[str, ...]]) -> Topology:
    back = (f"192.168.0.0/24 via {NAT_LB_LAN} dev eth0",)     # tutorial, each RS
    return Topology(
        name=name,
        description=description,
        nodes=(
            Node("client", "client", addrs=(("eth0", "192.168.0.88/24"),)),
            Node("lb", "lb"),
            _rs("rs1", "10.140.18.33", back, plen=20),
            _rs("rs2", "10.140.18.34", back, plen=20),
            _switch(),
        ),
        segments=(_lan(("client", "eth0"), ("lb", port_iface("bond0")),
                       ("rs1", "eth0"), ("rs2", "eth0")),),
        ports=(("bond0", port_iface("bond0")),),
        vip=NAT_VIP,
        script=script,
    )


# Tutorial, "SNAT": hosts on the LAN (dpdk0) reach the outside through the WAN address
# 123.1.2.3 (dpdk1); `wan` is the gateway 123.1.2.1 and a server that sees only that.
SNAT_WAN_IP, SNAT_GW = "123.1.2.3", "123.1.2.1"
SNAT_MATCH = "src-range=192.168.100.0-192.168.100.254,oif=dpdk1"


def _snat(name: str, description: str, script: Callable[..., tuple[str, ...]]) -> Topology:
    return Topology(
        name=name,
        description=description,
        nodes=(
            Node("client", "client", addrs=(("eth0", "192.168.100.2/24"),),
                 routes=(f"default via {LAN_GW}",)),
            Node("lb", "lb"),
            Node("wan", "rs", addrs=(("eth0", f"{SNAT_GW}/24"),), nginx=True),
        ),
        links=(Link(("client", "eth0"), ("lb", port_iface("dpdk0"))),
               Link(("wan", "eth0"), ("lb", port_iface("dpdk1")))),
        ports=(("dpdk0", port_iface("dpdk0")), ("dpdk1", port_iface("dpdk1"))),
        vip=SNAT_GW,
        script=script,
    )


# --- the scenarios ----------------------------------------------------------

TOPOLOGIES: tuple[Topology, ...] = (
    _two_arm(
        "fnat-two-arm",
        "simple FNAT two-arm: client 10.0.0.48 on dpdk1 (WAN), rs1/rs2 on dpdk0 (LAN)",
        vip_on_rs=False,
        script=partial(scripts.fnat, vip="10.0.0.100"),  # tutorial, "simple FNAT two-arm"
    ),
    _one_arm(
        "fnat-one-arm",
        "FNAT one-arm (keepalived section): client 192.168.100.146, VIP 192.168.100.254",
        client="192.168.100.146",
        vip_on_rs=False,
        # tutorial, keepalived section, "for test only" commands
        script=partial(scripts.fnat, vip="192.168.100.254", wan="dpdk0", client_net=None,
                       laddrs=("192.168.100.200", "192.168.100.201")),
    ),
    _one_arm(
        "dr-one-arm",
        "DR one-arm: client 192.168.100.46, LB and rs1/rs2 on one segment, VIP on the rs' lo",
        client="192.168.100.46",
        vip_on_rs=True,
        script=partial(scripts.dr, vip="192.168.100.254"),  # tutorial, DR section
    ),
    _two_arm(
        "dr-two-arm",
        "DR two-arm: fnat-two-arm's shape, VIP 10.0.0.100 on the rs' lo, replies via the LB",
        vip_on_rs=True,
        # The tutorial only says "like two-arm FNAT with -g and no LIP". Replies
        # leave the real servers by their default route 192.168.100.1, so the
        # LB carries that LAN address and routes them to the client (lb_forwarding).
        script=partial(scripts.dr, vip="10.0.0.100", wan="dpdk1", wan_ip=f"{WAN_GW}/16"),
        lb_forwarding=True,
    ),
    _tunnel_one_arm(
        "tunnel-one-arm",
        "Tunnel one-arm: client 10.140.20.46, VIP 10.140.31.48, rs1 on the LAN, rs2 behind "
        "the gateway (IPIP)",
        script=partial(scripts.tunnel, vip=TUN_VIP),  # tutorial, Tunnel section
    ),
    _nat_one_arm(
        "nat-one-arm",
        "NAT one-arm: client 192.168.0.88, VIP 192.168.0.89 on bond0, rs 10.140.18.33/34 "
        "routing back via the LB",
        # tutorial, NAT section (typos fixed: -s rr, real servers with -a)
        script=partial(scripts.nat, vip=NAT_VIP),
    ),
    _snat(
        "snat",
        "SNAT: client 192.168.100.2 on dpdk0 (LAN) reaches the server 123.1.2.1 on dpdk1 "
        "(WAN) as 123.1.2.3",
        # tutorial, SNAT section, its variables filled in
        script=partial(scripts.snat, wan_ip=SNAT_WAN_IP, match=SNAT_MATCH, gateway=SNAT_GW),
    ),
)

BY_NAME: dict[str, Topology] = {t.name: t for t in TOPOLOGIES}


def get(name: str) -> Topology:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown topology {name!r} (known: {', '.join(BY_NAME)})") from None


def all_namespaces() -> set[str]:
    """Every namespace any topology can create: what a crash cleanup looks for."""
    return {ns_name(n.name) for t in TOPOLOGIES for n in t.nodes}


def check(topo: Topology) -> list[str]:
    """Consistency problems of a topology's data (empty when it can be built)."""
    problems: list[str] = []
    names = topo.node_names
    if len(set(names)) != len(names):
        problems.append("duplicate node names")
    if topo.lb not in names:
        problems.append(f"lb node {topo.lb!r} is not a node")
    seen: set[End] = set()
    for node, ifname in topo.veth_ends():
        if node not in names:
            problems.append(f"{node}:{ifname}: no such node")
        if len(ifname) > IFNAMSIZ:
            problems.append(f"{node}:{ifname}: name longer than {IFNAMSIZ}")
        if (node, ifname) in seen:
            problems.append(f"{node}:{ifname}: used twice")
        seen.add((node, ifname))
    for seg in topo.segments:
        if seg.switch not in names:
            problems.append(f"segment {seg.name}: switch {seg.switch!r} is not a node")
    for port, ifname in topo.ports:
        if (topo.lb, ifname) not in seen:
            problems.append(f"port {port}: {ifname} is not a veth end of the lb node")
    for node in topo.nodes:
        for ifname, _ in node.addrs:
            if ifname != "lo" and (node.name, ifname) not in seen:
                problems.append(f"{node.name}: address on unknown interface {ifname}")
    return problems
