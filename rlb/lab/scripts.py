"""The tutorial's LB commands per forwarding mode, written once, with the knobs tests and
benchmarks turn.

Each function's defaults give the tutorial's lines for its scenario (topologies.py binds
them per topology); a test or a benchmark that needs a variant (another port name, one
real server, a UDP service, more local addresses) passes that knob instead of copying
the lines. `net=False` leaves out the `dpip` lines: a second service on a LB already set.
"""

from __future__ import annotations

from collections.abc import Iterable

LAN = "192.168.100.0/24"
LAN_GW = "192.168.100.1"
RS1, RS2 = "192.168.100.2", "192.168.100.3"
LIP = "192.168.100.200"          # the tutorial's FNAT local address

Lines = tuple[str, ...]


def virtual(vip: str, vport: int = 80, udp: bool = False) -> str:
    """ipvsadm's name of a TCP or UDP service: `-t VIP:PORT` or `-u VIP:PORT`."""
    return f"{'-u' if udp else '-t'} {vip}:{vport}"


def service(mode: str, vip: str, *, vport: int = 80, udp: bool = False, sched: str = "rr",
            servers: Iterable[str] = (RS1, RS2), rs_port: int | None = None,
            weight: int | None = None) -> list[str]:
    """`ipvsadm -A` for VIP:VPORT, then `ipvsadm -a` per real server with the flag the
    mode plugin declares (rlb.plugins: the registry names it, not this file)."""
    from rlb import plugins        # the compiled modes, loaded only when a script is made
    flag = plugins.modes()[mode].flag
    svc = virtual(vip, vport, udp)
    port = f":{rs_port}" if rs_port is not None else ""
    w = f" -w {weight}" if weight is not None else ""
    return [f"ipvsadm -A {svc} -s {sched}",
            *(f"ipvsadm -a {svc} -r {rs}{port} {flag}{w}" for rs in servers)]


def fnat(vip: str, *, wan: str = "dpdk1", lan: str = "dpdk0",
         client_net: str | None = "10.0.0.0/16", rs_net: str = LAN,
         laddrs: Iterable[str] = (LIP,), net: bool = True, vport: int = 80,
         udp: bool = False, **svc) -> Lines:
    """FNAT: the VIP on `wan`, routes to the clients (two-arm) and to the real servers,
    the service, then its local addresses on `lan`."""
    lines = []
    if net:
        lines.append(f"dpip addr add {vip}/32 dev {wan}")
        if client_net:
            lines.append(f"dpip route add {client_net} dev {wan}")
        lines.append(f"dpip route add {rs_net} dev {lan}")
    lines += service("fnat", vip, vport=vport, udp=udp, **svc)
    lines += [laddr(lip, vip, vport, udp, dev=lan) for lip in laddrs]
    return tuple(lines)


def fnat_vlan(vip: str, *, port: str = "dpdk0", wan_vid: int = 100, lan_vid: int = 200,
              kni_ip: str | None = "10.0.0.2", net: bool = True, **fnat_knobs) -> Lines:
    """FNAT two-arm on two VLANs of one port (tutorial, "virtual devices": the VLANs made
    by `dpip vlan add`, then simple FNAT two-arm with dpdk1 and dpdk0 replaced by them);
    kni_ip: an address of the WAN VLAN's kni handed to it by a kni_host route."""
    wan, lan = f"{port}.{wan_vid}", f"{port}.{lan_vid}"
    lines = []
    if net:
        lines += [f"dpip vlan add {wan} link {port} proto 802.1q id {wan_vid}",
                  f"dpip vlan add {lan} link {port} proto 802.1q id {lan_vid}"]
    lines += fnat(vip, wan=wan, lan=lan, net=net, **fnat_knobs)
    if net and kni_ip:
        lines.append(f"dpip route add {kni_ip}/32 dev {wan} scope kni_host")
    return tuple(lines)


def laddr(lip: str, vip: str, vport: int = 80, udp: bool = False, dev: str = "dpdk0") -> str:
    """One more FNAT local address for a service."""
    return f"ipvsadm --add-laddr -z {lip} {virtual(vip, vport, udp)} -F {dev}"


def dr(vip: str, *, dev: str = "dpdk0", lan_ip: str = f"{LAN_GW}/24",
       wan: str | None = None, wan_ip: str | None = None, net: bool = True,
       mode: str = "dr", **svc) -> Lines:
    """DR: the LAN IP first (a DR real server must be on-link with one of the LB's
    addresses), the VIP on `wan` (two-arm) or `dev`, then the service with -g
    (`mode="tunnel"`: -i on the same addresses, as the benchmarks run it)."""
    lines = []
    if net:
        if wan and wan_ip:
            lines.append(f"dpip addr add {wan_ip} dev {wan}")
        if not wan:
            lines.append(f"dpip addr add {lan_ip} dev {dev}")
        lines.append(f"dpip addr add {vip}/32 dev {wan or dev}")
        if wan:
            lines.append(f"dpip addr add {lan_ip} dev {dev}")
    return tuple(lines + service(mode, vip, **svc))


def tunnel(vip: str, *, dev: str = "dpdk0", lan_ip: str = "10.140.16.48/20",
           gateway: str = "10.140.31.254", servers: Iterable[str] = ("10.140.18.33",
                                                                     "10.40.84.170"),
           net: bool = True, **svc) -> Lines:
    """Tunnel: the LAN IP, the default route whose src is the IPIP source, the service
    with -i, the VIP last (the tutorial's order)."""
    src = lan_ip.split("/")[0]
    lines = [f"dpip addr add {lan_ip} dev {dev}",
             f"dpip route add default via {gateway} src {src} dev {dev}"] if net else []
    lines += service("tunnel", vip, servers=servers, **svc)
    if net:
        lines.append(f"dpip addr add {vip}/32 dev {dev}")
    return tuple(lines)


def nat(vip: str, *, dev: str = "bond0", addrs: Iterable[tuple[str, str]] | None = None,
        servers: Iterable[str] = ("10.140.18.33", "10.140.18.34"), vip_dev: str | None = None,
        routes: Iterable[str] = (), vip_last: bool = True, net: bool = True, **svc) -> Lines:
    """NAT: the LB's addresses (ADDR, DEV) on the clients' and the real servers' networks
    (the tutorial's one-arm: both on `dev`), the service with -m, the VIP (last in the
    tutorial; `vip_last=False` puts it before `routes`)."""
    if addrs is None:
        addrs = (("192.168.0.66/24", dev), ("10.140.31.48/20", dev))
    vip_line = f"dpip addr add {vip}/32 dev {vip_dev or dev}"
    lines = []
    if net:
        lines += [f"dpip addr add {a} dev {d}" for a, d in addrs]
        if not vip_last:
            lines.append(vip_line)
        lines += [f"dpip route add {r}" for r in routes]
    lines += service("nat", vip, servers=servers, **svc)
    if net and vip_last:
        lines.append(vip_line)
    return tuple(lines)


def snat(wan_ip: str, *, match: str, wan: str = "dpdk1", lan: str = "dpdk0",
         wan_plen: int = 24, lan_ip: str = f"{LAN_GW}/24", gateway: str | None = None,
         protos: Iterable[str] = ("proto=tcp", "proto=icmp"), net: bool = True) -> Lines:
    """SNAT: the WAN address as a sapool, the LAN address, the default route out, then a
    match service per protocol whose one "real server" is the WAN address, port 0."""
    from rlb import plugins
    flag = plugins.modes()["snat"].flag
    lines = []
    if net:
        lines += [f"dpip addr add {wan_ip}/{wan_plen} dev {wan} sapool",
                  f"dpip addr add {lan_ip} dev {lan}"]
        if gateway:
            lines.append(f"dpip route add default via {gateway} dev {wan}")
    for proto in protos:
        svc = f"-H {proto},{match}"
        lines += [f"ipvsadm -A -s rr {svc}", f"ipvsadm -a {svc} -r {wan_ip}:0 -w 100 {flag}"]
    return tuple(lines)


def snat_gre(wan_ip: str, *, match: str, local: str, remote: str, tunnel: str = "gre1",
             tunnel_ip: str = "172.16.0.1/30", under: str = "dpdk0", under_plen: int = 24,
             inner_net: str = LAN, wan: str = "dpdk1", wan_plen: int = 24,
             gateway: str | None = None, key: int | None = None,
             protos: Iterable[str] = ("proto=tcp", "proto=udp", "proto=icmp"),
             net: bool = True) -> Lines:
    """SNAT-GRE (tutorial, "virtual devices"): the inside hosts are behind a GRE tunnel
    to `remote` over `under`: the WAN sapool, the underlay address `local`, the tunnel
    (`dpip tunnel add ... mode gre`, as the tutorial's), an address on it and the route
    to the inside network through it, then snat()'s default route and match services."""
    lines = []
    if net:
        k = f" key {key}" if key is not None else ""
        lines += [f"dpip addr add {wan_ip}/{wan_plen} dev {wan} sapool",
                  f"dpip addr add {local}/{under_plen} dev {under}",
                  f"dpip tunnel add {tunnel} mode gre local {local} remote {remote} "
                  f"dev {under}{k}",
                  f"dpip addr add {tunnel_ip} dev {tunnel}",
                  f"dpip route add {inner_net} dev {tunnel}"]
        if gateway:
            lines.append(f"dpip route add default via {gateway} dev {wan}")
    lines += snat(wan_ip, match=match, wan=wan, protos=protos, net=False)
    return tuple(lines)


def fnat_ospf(vip: str = "123.1.2.3", *, kni_ip: str = "172.10.0.2",
              gateway: str = "172.10.0.1", interconnect: str = "172.10.0.0/30",
              laddrs: Iterable[str] = (LIP, "192.168.100.201"), wan: str = "dpdk1",
              lan: str = "dpdk0", net: bool = True, **svc) -> Lines:
    """FNAT in an OSPF/ECMP cluster (tutorial, "fnat-ospf-two-arm"), its lines in its
    order: the route to the LAN, the service, its local addresses, and the kni_host route
    that hands the packets for the interconnect address to <wan>.kni, where ospfd runs
    (the VIP is on the kni too, for ospfd to announce: not a dpip address). Then what the
    tutorial leaves to "almost the same as simple FNAT": the way back to the clients, the
    interconnect network and a default route via the switch."""
    lines = [f"dpip route add {LAN} dev {lan}"] if net else []
    lines += service("fnat", vip, **svc)
    lines += [laddr(lip, vip, dev=lan) for lip in laddrs]
    if net:
        lines += _uplink(kni_ip, gateway, interconnect, wan)
    return tuple(lines)


def fnat_keepalive(vip: str = "192.168.100.254", *, kni_ip: str = "192.168.100.11",
                   laddrs: Iterable[str] = (LIP, "192.168.100.201"), dev: str = "dpdk0",
                   net: bool = True, service_lines: bool = True, **svc) -> Lines:
    """FNAT one-arm under VRRP (tutorial, "fnat-keepalive"): what its keepalived.conf
    configures in the data plane, in dpip/ipvsadm lines. The kni's own address reaches
    the kni (keepalived speaks from it); the route to the LAN; the service and its local
    addresses, on both LBs. The VIP is no dpip address: the VRRP section moves it."""
    lines = [f"dpip route add {kni_ip}/32 dev {dev} scope kni_host",
             f"dpip route add {LAN} dev {dev}"] if net else []
    if service_lines:       # (with the tutorial's keepalived.conf, the file has them)
        lines += service("fnat", vip, **svc)
        lines += [laddr(lip, vip, dev=dev) for lip in laddrs]
    return tuple(lines)


def _uplink(kni_ip: str, gateway: str, interconnect: str, wan: str) -> list[str]:
    """A cluster LB's way to its switch: the interconnect address handed to <wan>.kni
    (where the routing daemon speaks), the interconnect network, a default route."""
    return [f"dpip route add {kni_ip}/32 dev {wan} scope kni_host",
            f"dpip route add {interconnect} dev {wan}",
            f"dpip route add default via {gateway} dev {wan}"]


def dr_ecmp(vip: str = "123.1.2.3", *, lan_ip: str = "192.168.100.200/24",
            kni_ip: str = "172.10.0.2", gateway: str = "172.10.0.1",
            interconnect: str = "172.10.0.0/30", wan: str = "dpdk1", lan: str = "dpdk0",
            sched: str = "mh", net: bool = True, **svc) -> Lines:
    """DR in an ECMP cluster (not in the tutorial): the LAN address (the real servers
    on-link), the service with -g and the Maglev scheduler, which every LB fills the
    same from the same servers, so a flow ECMP moves to another LB keeps its server;
    then the way to the switch, as fnat_ospf has it."""
    lines = [f"dpip addr add {lan_ip} dev {lan}"] if net else []
    lines += service("dr", vip, sched=sched, **svc)
    if net:
        lines += _uplink(kni_ip, gateway, interconnect, wan)
    return tuple(lines)
