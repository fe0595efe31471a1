"""The tutorial's scenarios as data: nodes, veth links, L2 segments, addresses, routes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from rlb.lab import scripts

# Linux limits interface names to IFNAMSIZ-1 characters.
IFNAMSIZ = 15

# A node lives in the namespace NS_PREFIX + node name (rlb-client, rlb-lb ...).
NS_PREFIX = "rlb-"

End = tuple[str, str]  # (node, interface name inside that node's namespace)


@dataclass(frozen=True)
class OvsGre:
    """An IP-over-GRE tunnel (protocol 0x0800, as DPVS's `dpip tunnel ... mode gre`)
    that a node's Open vSwitch terminates (rlb.lab.ovs.Ovs.gre_tunnel): over the veth end
    `underlay`, `local` (CIDR) the node's own underlay address (on OVS's br-phy), to
    `remote`; the host behind the tunnel is the internal port `host` with `inner` (CIDR).
    `mtu`: the host port's (OVS's mtu_request), room for the outer headers on the
    underlay; `ip`: `ip` lines run in the node once that port exists (its routes)."""

    underlay: str
    local: str
    remote: str
    inner: str
    host: str = "gre-host"
    key: int | None = None
    mtu: int | None = None
    ip: tuple[str, ...] = ()


@dataclass(frozen=True)
class OvsSwitch:
    """An Open vSwitch (userspace datapath, rlb/lab/ovs.py) in a node's namespace: one
    bridge whose ports are veth ends of that node. What this kernel has no module for
    (an LACP bond, a VLAN trunk, a GRE tunnel) is done by OVS, as a real switch would."""

    bridge: str = "br0"
    # (bond name, its member veth ends): LACP active, fast, balance-tcp
    bonds: tuple[tuple[str, tuple[str, ...]], ...] = ()
    trunks: tuple[tuple[str, tuple[int, ...]], ...] = ()   # (veth end, its VLANs)
    access: tuple[tuple[str, int | None], ...] = ()        # (veth end, VLAN tag or None)
    gre: OvsGre | None = None       # a GRE tunnel on bridges of its own (br-phy, br-int)

    def devices(self) -> tuple[str, ...]:
        """Every veth end the switch takes."""
        return (*(m for _, ms in self.bonds for m in ms), *(d for d, _ in self.trunks),
                *(d for d, _ in self.access), *((self.gre.underlay,) if self.gre else ()))

    @property
    def switched(self) -> bool:
        """Whether `bridge` has ports (a tunnel-only OVS makes no such bridge)."""
        return bool(self.bonds or self.trunks or self.access)


@dataclass(frozen=True)
class Bond:
    """A bond of an LB's data ports, declared in its dataplane section (rlb's model:
    `bond NAME mode 0|4 slaves P1 P2 ... [primary P] [xmit-policy layer34]`)."""

    name: str
    mode: int
    slaves: tuple[str, ...]
    primary: str | None = None
    xmit_policy: str | None = None

    @property
    def line(self) -> str:
        words = [f"bond {self.name} mode {self.mode} slaves {' '.join(self.slaves)}"]
        if self.primary:
            words.append(f"primary {self.primary}")
        if self.xmit_policy:
            words.append(f"xmit-policy {self.xmit_policy}")
        return " ".join(words)


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
    # FRR daemons and their configuration files, (daemon, text) each (rlb.routing.frr):
    # a switch's start with the lab; an LB's are the tutorial's, started by --tutorial
    frr: tuple[tuple[str, str], ...] = ()
    # An LB's kernel side in the tutorial (`ip ...` arguments run in its namespace once
    # its daemon made the kni taps): addresses and routes on <port>.kni, by --tutorial
    kni: tuple[str, ...] = ()
    # An LB's configuration in rlb's own words beyond the tutorial's lines (`router bgp`,
    # `announce`), committed by --tutorial once its kernel side is there
    config: tuple[str, ...] = ()
    # An LB's keepalived.conf in the tutorial (DPVS's keepalived's words), loaded by
    # --tutorial once its kernel side is there (`rlb keepalived load`)
    keepalived: str = ""
    # A switch node's Open vSwitch (started with the lab, stopped by PID at down)
    ovs: OvsSwitch | None = None


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
    ports: tuple[tuple[str, str], ...] = ()  # (data port, veth in each lb node)
    # Bonds of those ports in the LB's dataplane section (the slaves stop being interfaces)
    bonds: tuple[Bond, ...] = ()
    # The LB nodes, each an rlb instance with the same ports (rlb.lab.state.instance):
    # `lb` in most scenarios, lb1 and lb2 in a cluster
    lbs: tuple[str, ...] = ("lb",)
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
    # Other LBs' lines where they differ from the first's: (node, script) each
    scripts: tuple[tuple[str, Callable[..., tuple[str, ...]]], ...] = ()

    @property
    def lb(self) -> str:
        """The first LB node (the only one of most scenarios)."""
        return self.lbs[0]

    @property
    def lb_script(self) -> tuple[str, ...]:
        """The tutorial's lines for this scenario, as the tutorial has them."""
        return self.script()

    def script_of(self, node: str) -> tuple[str, ...]:
        """The tutorial's lines for one LB node."""
        return dict(self.scripts).get(node, self.script)()

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


# Tutorial, "fnat-ospf-two-arm": lb1 and lb2 announce the VIP by OSPF to an L3 switch
# (FRR) in front of the client, which spreads flows over both (ECMP); each LB reaches the
# switch on its own interconnect /30 through dpdk1.kni, the real servers on the shared
# LAN through dpdk0, from local addresses of its own.
OSPF_VIP = "123.1.2.3"
OSPF_CLIENT_NET, OSPF_SWITCH = "10.0.0.0/24", "10.0.0.1"
# node: (its interconnect address on <dpdk1>.kni, the switch's end, the /30, LIPs)
OSPF_LBS = {
    "lb1": ("172.10.0.2", "172.10.0.1", "172.10.0.0/30", ("192.168.100.200", "192.168.100.201")),
    "lb2": ("172.10.0.6", "172.10.0.5", "172.10.0.4/30", ("192.168.100.202", "192.168.100.203")),
}
# The switch hashes each flow by its 5-tuple (policy 3 with sip, dip, proto, sport and
# dport): policy 1 would reuse the hash a client socket left on the skb, which crosses
# a veth, so that ECMP picks per socket, not per flow (research/routing.md 5.3).
_L3_SWITCH = _ROUTER + (
    ("net.ipv4.fib_multipath_hash_policy", "3"),
    ("net.ipv4.fib_multipath_hash_fields", "0x0037"),
)
# OSPF on the LB<->switch links: the tutorial's timers (hello 10, dead 40), point to
# point (one of its "other parameters ... consistent with Switch"): no DR election, so
# no 40 s wait before the adjacency forms.
_OSPF_LINK = (" ip ospf network point-to-point\n ip ospf hello-interval 10\n"
              " ip ospf dead-interval 40\n ip ospf bfd\n ip ospf bfd profile fast\n")
# BFD beside OSPF (not in the tutorial): a dead LB is seen in 3 x 100 ms, not after
# OSPF's 40 s dead interval (research/routing.md 6: 1.3 s to one nexthop). `ip ospf bfd`
# must come before its profile (FRR 8.4 refuses the profile alone).
_BFDD = "bfd\n profile fast\n  detect-multiplier 3\n  receive-interval 100\n" \
        "  transmit-interval 100\n !\n!\n"


def _lb_ospfd(node: str) -> str:
    """The tutorial's ospfd.conf for an LB, FRR's words; the VIP is announced as a
    connected route of the kni through a route-map: FRR does not announce a /32 given
    by `network VIP/32 area 0` on the OSPF interface itself (research/routing.md 5.5,
    likely DPVS #124), the tutorial's way."""
    kni_ip, _, net, lips = OSPF_LBS[node]
    return (f"hostname {node}\n!\ninterface dpdk1.kni\n{_OSPF_LINK}!\n"
            f"ip prefix-list VIPS seq 5 permit {OSPF_VIP}/32\n!\n"
            "route-map VIPS permit 10\n match ip address prefix-list VIPS\n!\n"
            f"router ospf\n ospf router-id {lips[0]}\n log-adjacency-changes\n"
            f" auto-cost reference-bandwidth 1000\n network {net} area 0.0.0.0\n"
            " redistribute connected route-map VIPS\n!\n")


def _switch_ospfd() -> str:
    links = "".join(f"interface eth{i}\n{_OSPF_LINK}!\n" for i in (1, 2))
    nets = "".join(f" network {net} area 0.0.0.0\n" for _, _, net, _ in OSPF_LBS.values())
    return (f"hostname switch\n!\n{links}router ospf\n ospf router-id {OSPF_SWITCH}\n"
            f" log-adjacency-changes\n auto-cost reference-bandwidth 1000\n"
            f" passive-interface eth0\n network {OSPF_CLIENT_NET} area 0.0.0.0\n{nets}"
            " maximum-paths 8\n!\n")


def _ospf_lb(node: str) -> Node:
    kni_ip, gw, net, _ = OSPF_LBS[node]
    kni = ("link set dpdk1.kni up", f"addr add {kni_ip}/30 dev dpdk1.kni",
           f"addr add {OSPF_VIP}/32 dev dpdk1.kni",        # the VIP, for ospfd to announce
           f"route add default via {gw} dev dpdk1.kni")
    return Node(node, "lb", kni=kni, frr=(("zebra", f"hostname {node}\n"), ("bfdd", _BFDD),
                                         ("ospfd", _lb_ospfd(node))))


def _ospf_script(node: str) -> Callable[..., tuple[str, ...]]:
    kni_ip, gw, net, lips = OSPF_LBS[node]
    return partial(scripts.fnat_ospf, vip=OSPF_VIP, kni_ip=kni_ip, gateway=gw,
                   interconnect=net, laddrs=lips)


def _fnat_ospf(name: str, description: str) -> Topology:
    return Topology(
        name=name,
        description=description,
        nodes=(
            Node("client", "client", addrs=(("eth0", "10.0.0.48/24"),),
                 routes=(f"default via {OSPF_SWITCH}",)),
            Node("switch", "router",
                 addrs=(("eth0", f"{OSPF_SWITCH}/24"),
                        *((f"eth{i}", f"{gw}/30") for i, (_, gw, _, _)
                          in enumerate(OSPF_LBS.values(), 1))),
                 sysctls=_L3_SWITCH,
                 frr=(("zebra", "hostname switch\n"), ("bfdd", _BFDD),
                      ("ospfd", _switch_ospfd()))),
            *(_ospf_lb(node) for node in OSPF_LBS),
            _rs("rs1", RS1),
            _rs("rs2", RS2),
            _switch(),
        ),
        links=(Link(("client", "eth0"), ("switch", "eth0")),
               *(Link(("switch", f"eth{i}"), (node, port_iface("dpdk1")))
                 for i, node in enumerate(OSPF_LBS, 1))),
        segments=(_lan(*((node, port_iface("dpdk0")) for node in OSPF_LBS),
                       ("rs1", "eth0"), ("rs2", "eth0")),),
        ports=(("dpdk0", port_iface("dpdk0")), ("dpdk1", port_iface("dpdk1"))),
        lbs=tuple(OSPF_LBS),
        vip=OSPF_VIP,
        script=_ospf_script("lb1"),
        scripts=(("lb2", _ospf_script("lb2")),),
    )


# "fnat-bgp-two-arm" (not in the tutorial, which has OSPF only): the same cluster with
# BGP. Each LB runs exabgp from rlb's `router bgp` (its own AS, BFD by FRR's bfdd beside
# it) and announces the VIP from its service (`announce dpdk1`); the switch runs FRR
# bgpd with ECMP over the two ASes (multipath-relax) and BFD for both sessions.
BGP_SWITCH_AS = 65000
BGP_AS = {"lb1": 65001, "lb2": 65002}


def _switch_bgpd() -> str:
    lines = ["hostname switch", "!", f"router bgp {BGP_SWITCH_AS}",
             f" bgp router-id {OSPF_SWITCH}", " no bgp ebgp-requires-policy",
             " bgp bestpath as-path multipath-relax"]
    for node, (kni_ip, _, _, _) in OSPF_LBS.items():
        lines += [f" neighbor {kni_ip} remote-as {BGP_AS[node]}",
                  f" neighbor {kni_ip} timers 1 3", f" neighbor {kni_ip} timers connect 1",
                  f" neighbor {kni_ip} bfd", f" neighbor {kni_ip} bfd profile fast"]
    lines += [" address-family ipv4 unicast", "  maximum-paths 8", " exit-address-family",
              "!"]
    return "\n".join(lines) + "\n"


def _bgp_lb(node: str, extra: tuple[str, ...] = ()) -> Node:
    kni_ip, gw, _, _ = OSPF_LBS[node]
    kni = ("link set dpdk1.kni up", f"addr add {kni_ip}/30 dev dpdk1.kni",
           f"route add default via {gw} dev dpdk1.kni")
    config = (f"router bgp {BGP_AS[node]}", f" bgp router-id {kni_ip}",
              f" neighbor {gw} remote-as {BGP_SWITCH_AS}", f" neighbor {gw} timers 1 3",
              f" neighbor {gw} bfd interval 100 multiplier 3", "exit",
              f"virtual-server tcp {OSPF_VIP}:80", " announce dpdk1 hold-down 2", "exit",
              *extra)
    return Node(node, "lb", kni=kni, config=config)


def _fnat_bgp(name: str, description: str) -> Topology:
    ospf = _fnat_ospf(name, description)
    nodes = []
    for n in ospf.nodes:
        if n.name == "switch":
            n = replace(n, frr=(("zebra", "hostname switch\n"), ("bfdd", _BFDD),
                                ("bgpd", _switch_bgpd())))
        elif n.name in OSPF_LBS:
            n = _bgp_lb(n.name)
        nodes.append(n)
    return replace(ospf, nodes=tuple(nodes))


# "dr-bgp-two-arm": fnat-bgp-two-arm's cluster in DR mode with the Maglev scheduler (mh).
# The real servers carry the VIP on lo and answer the client straight through the
# switch, which has a leg on their LAN (their default gateway); each LB only rewrites
# the MAC. A flow that ECMP moves from one LB to the other (a withdrawal, a restart)
# finds the same real server there: a mid-flow segment is scheduled by the Maglev
# table, the same on both LBs. `routing drain-on-stop 2`: a stopped LB keeps
# forwarding for 2 s after its withdrawal (packets already on their way).
DR_SWITCH_LAN = LAN_GW


def _dr_bgp(name: str, description: str) -> Topology:
    bgp = _fnat_bgp(name, description)
    nodes = []
    for n in bgp.nodes:
        if n.name == "switch":
            n = replace(n, addrs=(*n.addrs, ("eth3", f"{DR_SWITCH_LAN}/24")))
        elif n.name in OSPF_LBS:
            n = _bgp_lb(n.name, extra=("routing drain-on-stop 2",))
        elif n.role == "rs":
            n = _rs(n.name, dict(n.addrs)["eth0"].split("/")[0],
                    (f"default via {DR_SWITCH_LAN}",), vip=OSPF_VIP)
        nodes.append(n)
    (lan,) = bgp.segments
    return replace(bgp, nodes=tuple(nodes),
                   segments=(replace(lan, members=(*lan.members, ("switch", "eth3"))),),
                   script=_dr_script("lb1"), scripts=(("lb2", _dr_script("lb2")),))


def _dr_script(node: str) -> Callable[..., tuple[str, ...]]:
    kni_ip, gw, net, lips = OSPF_LBS[node]
    return partial(scripts.dr_ecmp, vip=OSPF_VIP, lan_ip=f"{lips[0]}/24", kni_ip=kni_ip,
                   gateway=gw, interconnect=net)


# "fnat-keepalive" (tutorial, "fnat-keepalive"): FNAT one-arm on the LAN
# 192.168.100.0/24 with two LBs, lb1 MASTER (priority 100) and lb2 BACKUP (80). Each runs
# keepalived (VRRP only) on dpdk0.kni, which has an address of its own; the VIP
# 192.168.100.254 and the local addresses .200/.201 are the MASTER's (the kernel of the
# MASTER answers ARP for them). --tutorial loads the tutorial's keepalived.conf on each
# LB (`rlb keepalived load`: its VRRP instance, service, local addresses and checks);
# "fnat-keepalive-rlb" says the same in rlb's own words (VRRPv3, adverts every 0.2 s).
KA_VIP = "192.168.100.254"
KA_CLIENT = "192.168.100.146"
KA_LBS = {"lb1": ("192.168.100.11", "master", 100), "lb2": ("192.168.100.12", "backup", 80)}


def ka_conf(state: str = "MASTER", priority: int = 100) -> str:
    """The tutorial's keepalived.conf, as it prints it (the BACKUP's: its state and
    priority)."""
    return f"""! Configuration File for keepalived

global_defs {{
    notification_email {{
        foo@example.com
    }}
    notification_email_from bar@example.com
    smtp_server 1.2.3.4
    smtp_connect_timeout 60
    router_id DPVS_DEVEL
}}

local_address_group laddr_g1 {{
    192.168.100.200 dpdk0    # use DPDK interface
    192.168.100.201 dpdk0    # use DPDK interface
}}

#
# VRRP section
#
vrrp_instance VI_1 {{
    state {state}                  # master
    interface dpdk0.kni           # should be kni interface
    dpdk_interface dpdk0          # should be DPDK interface
    virtual_router_id 123         # VID should be unique in network
    priority {priority}                  # master's priority is bigger than worker
    advert_int 1
    authentication {{
        auth_type PASS
        auth_pass ****
    }}

    virtual_ipaddress {{
        {KA_VIP}
    }}
}}

#
# Virtual Server Section
#
virtual_server_group {KA_VIP}-80 {{
    {KA_VIP} 80
}}

virtual_server group {KA_VIP}-80 {{
    delay_loop 3
    lb_algo rr         # scheduling algorithm Round-Robin
    lb_kind FNAT       # Forwarding Mode Full-NAT
    protocol TCP       # Protocol TCP

    laddr_group_name laddr_g1   # Local IP group-ID

    real_server {RS1} 80 {{ # real-server
        weight 100
        inhibit_on_failure
        TCP_CHECK {{    # health check
            nb_sock_retry 2
            connect_timeout 3
            connect_port 80
        }}
    }}

    real_server {RS2} 80 {{ # real-server
        weight 100
        inhibit_on_failure
        TCP_CHECK {{ # health check
            nb_sock_retry 2
            connect_timeout 3
            connect_port 80
        }}
    }}
}}
"""


def _ka_lb(node: str, words: str) -> Node:
    kni_ip, state, prio = KA_LBS[node]
    kni = ("link set dpdk0.kni up", f"addr add {kni_ip}/24 dev dpdk0.kni")
    if words == "keepalived":
        return Node(node, "lb", kni=kni, keepalived=ka_conf(state.upper(), prio))
    peer = next(ip for n, (ip, _, _) in KA_LBS.items() if n != node)
    config = ("vrrp instance VI_1", " interface dpdk0", f" state {state}",
              " virtual-router-id 123", f" priority {prio}",
              f" virtual-address {KA_VIP}/32", "exit", f"sync peer {peer}")
    return Node(node, "lb", kni=kni, config=config)


def _ka_script(node: str, words: str) -> Callable[..., tuple[str, ...]]:
    # with the tutorial's keepalived.conf, the service is the file's; the LB's own lines
    # are the tutorial's "for test only" route to the LAN and the kni's address
    if words == "keepalived":
        return partial(scripts.fnat_keepalive, vip=KA_VIP, kni_ip=KA_LBS[node][0],
                       service_lines=False)
    return partial(scripts.fnat_keepalive, vip=KA_VIP, kni_ip=KA_LBS[node][0])


def _fnat_keepalive(name: str, description: str, words: str) -> Topology:
    return Topology(
        name=name,
        description=description,
        nodes=(
            Node("client", "client", addrs=(("eth0", f"{KA_CLIENT}/24"),)),
            *(_ka_lb(node, words) for node in KA_LBS),
            _rs("rs1", RS1),
            _rs("rs2", RS2),
            _switch(),
        ),
        segments=(_lan(("client", "eth0"), *((node, port_iface("dpdk0")) for node in KA_LBS),
                       ("rs1", "eth0"), ("rs2", "eth0")),),
        ports=(("dpdk0", port_iface("dpdk0")),),
        lbs=tuple(KA_LBS),
        vip=KA_VIP,
        script=_ka_script("lb1", words),
        scripts=(("lb2", _ka_script("lb2", words)),),
    )


# "fnat-ospf-rlb-two-arm": fnat-ospf-two-arm with rlb's own `router ospf` on the LBs in
# place of the tutorial's FRR files: rlb runs zebra, ospfd and bfdd from it and announces
# the VIP from its service (`announce dpdk1`) as an intra-area stub (rlb.routing.ospf).
def _ospf_rlb_lb(node: str) -> Node:
    kni_ip, gw, net, lips = OSPF_LBS[node]
    kni = ("link set dpdk1.kni up", f"addr add {kni_ip}/30 dev dpdk1.kni",
           f"route add default via {gw} dev dpdk1.kni")
    config = ("router ospf", f" ospf router-id {lips[0]}", f" network {net} area 0.0.0.0",
              " interface dpdk1 point-to-point hello-interval 10 dead-interval 40 bfd "
              "bfd-interval 100 bfd-multiplier 3",
              " frr auto-cost reference-bandwidth 1000", "exit",
              f"virtual-server tcp {OSPF_VIP}:80", " announce dpdk1 hold-down 2", "exit")
    return Node(node, "lb", kni=kni, config=config)


def _fnat_ospf_rlb(name: str, description: str) -> Topology:
    ospf = _fnat_ospf(name, description)
    return replace(ospf, nodes=tuple(_ospf_rlb_lb(n.name) if n.name in OSPF_LBS else n
                                     for n in ospf.nodes))


# The tutorial's "virtual devices": "to configure DPVS ... for Virtual device is nothing
# special. Just replace the logical interfaces ... with corresponding virtual devices".
# The LB's peer is an Open vSwitch (userspace datapath) in the namespace `ovs`: this
# kernel has no bonding or 8021q module, and a Linux bridge speaks neither LACP nor VLANs.
OVS_NODE = "ovs"
WAN_VIP = "10.0.0.100"
CLIENT = "10.0.0.48"


def _ovs_switch(ovs: OvsSwitch) -> Node:
    return Node(OVS_NODE, "switch", sysctls=_QUIET, hidden=True, ovs=ovs)


def _ovs_side(node: str, ifname: str) -> str:
    """The OVS namespace's end of a veth from `node` (lb-dpdk1, client, rs1 ...)."""
    return (node if ifname == "eth0" else f"{node}-{ifname.removeprefix('veth-')}")[:IFNAMSIZ]


def _to_ovs(node: str, ifname: str) -> Link:
    return Link((node, ifname), (OVS_NODE, _ovs_side(node, ifname)))


# "bond-two-arm": simple FNAT two-arm whose WAN is bond0, an 802.3ad (mode 4) bond of
# dpdk1 and dpdk2, facing the switch's LACP bond (active, fast, balance-tcp), which also
# holds the client; the LAN on dpdk0 as in fnat-two-arm.
BOND = Bond("bond0", 4, ("dpdk1", "dpdk2"), primary="dpdk1", xmit_policy="layer34")
OVS_BOND = "bond0"


def _bond_two_arm(name: str, description: str,
                  script: Callable[..., tuple[str, ...]]) -> Topology:
    rs_routes = (f"default via {LAN_GW}",)
    wan = tuple(port_iface(p) for p in BOND.slaves)
    return Topology(
        name=name,
        description=description,
        nodes=(
            Node("client", "client", addrs=(("eth0", f"{CLIENT}/16"),),
                 routes=(f"{LAN} via {WAN_GW}",)),
            Node("lb", "lb"),
            _rs("rs1", RS1, rs_routes),
            _rs("rs2", RS2, rs_routes),
            _switch(),
            _ovs_switch(OvsSwitch(
                bonds=((OVS_BOND, tuple(_ovs_side("lb", w) for w in wan)),),
                access=((_ovs_side("client", "eth0"), None),))),
        ),
        links=(_to_ovs("client", "eth0"), *(_to_ovs("lb", w) for w in wan)),
        segments=(_lan(("lb", port_iface("dpdk0")), ("rs1", "eth0"), ("rs2", "eth0")),),
        ports=(("dpdk0", port_iface("dpdk0")),
               *((p, port_iface(p)) for p in BOND.slaves)),
        bonds=(BOND,),
        vip=WAN_VIP,
        script=script,
    )


# "vlan-two-arm": simple FNAT two-arm on one port, dpdk0, carrying two VLANs: dpdk0.100
# (WAN, the client) and dpdk0.200 (LAN, the real servers), to the switch's trunk port;
# the client is on its access port of VLAN 100, the real servers on VLAN 200's. The
# LB's kernel has an address on dpdk0.100.kni (a kni_host route hands it its packets).
VLAN_WAN, VLAN_LAN = 100, 200
VLAN_KNI = "10.0.0.2"


def _vlan_two_arm(name: str, description: str,
                  script: Callable[..., tuple[str, ...]]) -> Topology:
    rs_routes = (f"default via {LAN_GW}",)
    wan = f"dpdk0.{VLAN_WAN}"
    return Topology(
        name=name,
        description=description,
        nodes=(
            Node("client", "client", addrs=(("eth0", f"{CLIENT}/16"),),
                 routes=(f"{LAN} via {WAN_GW}",)),
            Node("lb", "lb", kni=(f"link set {wan}.kni up",
                                  f"addr add {VLAN_KNI}/16 dev {wan}.kni")),
            _rs("rs1", RS1, rs_routes),
            _rs("rs2", RS2, rs_routes),
            _ovs_switch(OvsSwitch(
                trunks=((_ovs_side("lb", port_iface("dpdk0")), (VLAN_WAN, VLAN_LAN)),),
                access=((_ovs_side("client", "eth0"), VLAN_WAN),
                        (_ovs_side("rs1", "eth0"), VLAN_LAN),
                        (_ovs_side("rs2", "eth0"), VLAN_LAN)))),
        ),
        links=(_to_ovs("lb", port_iface("dpdk0")), _to_ovs("client", "eth0"),
               _to_ovs("rs1", "eth0"), _to_ovs("rs2", "eth0")),
        ports=(("dpdk0", port_iface("dpdk0")),),
        vip=WAN_VIP,
        script=script,
    )


# "snat-gre" (tutorial, "virtual devices": DPVS's tunnels make "SNAT-GRE", "remote host
# use tunnel to access Internet through DPVS SNAT"): the SNAT scenario whose inside host
# is at a remote site that reaches the LB only through a GRE tunnel. dpdk0 is on the
# underlay shared with the site, whose Open vSwitch (this kernel has no gre module)
# terminates the tunnel: the host behind it, 192.168.100.5 on OVS's internal port, has
# its default route into the tunnel; the LB's gre1 decapsulates its packets, SNATs them
# out of dpdk1 as 123.1.2.3 and routes the answers back into the tunnel.
GRE_NODE = "remote"
GRE_LB, GRE_SITE = "10.0.0.1", "10.0.0.2"        # the underlay ends (dpdk0, the site)
GRE_TUNNEL, GRE_LB_INNER = "gre1", "172.16.0.1/30"
GRE_SITE_INNER = "172.16.0.2/30"                  # the site's end of the /30
GRE_HOST, GRE_HOST_IP = "gre-host", "192.168.100.5"
GRE_MTU = 1476                                    # 1500 less the outer IP and GRE headers


def _snat_gre(name: str, description: str,
              script: Callable[..., tuple[str, ...]]) -> Topology:
    gre = OvsGre(underlay="eth0", local=f"{GRE_SITE}/24", remote=GRE_LB,
                 inner=f"{GRE_HOST_IP}/24", host=GRE_HOST, mtu=GRE_MTU,
                 ip=(f"addr add {GRE_SITE_INNER} dev {GRE_HOST}",
                     f"route add default dev {GRE_HOST} src {GRE_HOST_IP}"))
    return Topology(
        name=name,
        description=description,
        nodes=(
            Node(GRE_NODE, "client", sysctls=_QUIET, ovs=OvsSwitch(gre=gre)),
            Node("lb", "lb"),
            Node("wan", "rs", addrs=(("eth0", f"{SNAT_GW}/24"),), nginx=True),
        ),
        links=(Link((GRE_NODE, "eth0"), ("lb", port_iface("dpdk0"))),
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
    _snat_gre(
        "snat-gre",
        "SNAT through a GRE tunnel: the remote host 192.168.100.5 behind an OVS on dpdk0's "
        "underlay reaches the server 123.1.2.1 on dpdk1 (WAN) through gre1 as 123.1.2.3",
        # tutorial, SNAT section through the tunnel of its "virtual devices" section
        script=partial(scripts.snat_gre, wan_ip=SNAT_WAN_IP, match=SNAT_MATCH,
                       gateway=SNAT_GW, local=GRE_LB, remote=GRE_SITE,
                       tunnel=GRE_TUNNEL, tunnel_ip=GRE_LB_INNER),
    ),
    _fnat_ospf(
        "fnat-ospf-two-arm",
        "FNAT with OSPF/ECMP: client 10.0.0.48 behind an L3 switch (FRR) that spreads VIP "
        "123.1.2.3 over lb1 and lb2 (FRR on dpdk1.kni), rs1/rs2 on their shared LAN",
    ),
    _fnat_ospf_rlb(
        "fnat-ospf-rlb-two-arm",
        "fnat-ospf-two-arm with rlb's own `router ospf` on lb1 and lb2 (no FRR file on the "
        "LBs): the VIP announced from its service as an intra-area route, BFD",
    ),
    _fnat_bgp(
        "fnat-bgp-two-arm",
        "FNAT with BGP/ECMP: fnat-ospf-two-arm's cluster, lb1 (AS 65001) and lb2 (AS 65002) "
        "announcing VIP 123.1.2.3 by exabgp from rlb's `router bgp`, BFD beside it",
    ),
    _fnat_keepalive(
        "fnat-keepalive",
        "FNAT master/backup (keepalived section): client 192.168.100.146, lb1 MASTER and lb2 "
        "BACKUP by VRRP on dpdk0.kni, VIP 192.168.100.254, rs1/rs2, one LAN; --tutorial "
        "loads the tutorial's keepalived.conf on each",
        "keepalived",
    ),
    _fnat_keepalive(
        "fnat-keepalive-rlb",
        "fnat-keepalive in rlb's own words: `vrrp instance VI_1` (VRRPv3, adverts every "
        "0.2 s), the service by ipvsadm lines, connection sync between the LBs",
        "rlb",
    ),
    _dr_bgp(
        "dr-bgp-two-arm",
        "DR with BGP/ECMP: fnat-bgp-two-arm's cluster in DR mode, scheduler mh, VIP "
        "123.1.2.3 on the rs' lo, replies through the switch: flows survive ECMP changes",
    ),
    _bond_two_arm(
        "bond-two-arm",
        "FNAT two-arm on a bond: client 10.0.0.48 behind an OVS switch whose LACP bond "
        "faces bond0 (mode 4 of dpdk1, dpdk2), rs1/rs2 on dpdk0 (LAN)",
        # tutorial, "simple FNAT two-arm" with dpdk1 replaced by bond0 (virtual devices)
        script=partial(scripts.fnat, vip=WAN_VIP, wan=BOND.name),
    ),
    _vlan_two_arm(
        "vlan-two-arm",
        "FNAT two-arm on VLANs of one port: client 10.0.0.48 on dpdk0.100 (WAN), rs1/rs2 "
        "on dpdk0.200 (LAN), an OVS trunk as the switch; 10.0.0.2 on dpdk0.100.kni",
        script=partial(scripts.fnat_vlan, vip=WAN_VIP, kni_ip=VLAN_KNI),
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
    for lb in topo.lbs:
        if lb not in names:
            problems.append(f"lb node {lb!r} is not a node")
    for node, _ in topo.scripts:
        if node not in topo.lbs:
            problems.append(f"script for {node!r}, which is not an lb node")
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
        for lb in topo.lbs:
            if (lb, ifname) not in seen:
                problems.append(f"port {port}: {ifname} is not a veth end of lb node {lb}")
    for node in topo.nodes:
        for ifname, _ in node.addrs:
            if ifname != "lo" and (node.name, ifname) not in seen:
                problems.append(f"{node.name}: address on unknown interface {ifname}")
        if node.ovs is not None:
            devs = node.ovs.devices()
            if len(set(devs)) != len(devs):
                problems.append(f"{node.name}: an OVS port used twice")
            for dev in devs:
                if (node.name, dev) not in seen:
                    problems.append(f"{node.name}: OVS port {dev} is not a veth end of it")
            for bond, members in node.ovs.bonds:
                if len(members) < 2:
                    problems.append(f"{node.name}: OVS bond {bond} has fewer than 2 members")
    port_names = {p for p, _ in topo.ports}
    taken: set[str] = set()
    for bond in topo.bonds:
        if bond.name in port_names:
            problems.append(f"bond {bond.name}: also a port name")
        for sl in bond.slaves:
            if sl not in port_names:
                problems.append(f"bond {bond.name}: slave {sl} is not a port")
            if sl in taken:
                problems.append(f"bond {bond.name}: slave {sl} is in another bond")
            taken.add(sl)
    return problems
