"""DR and tunnel through the real core, driven by the tutorial's commands: what leaves
for the real servers (golden cases), ARP from the LAN IP, the MTU rule of the tunnel,
and the configurations the modes refuse.

dpdk0 carries the tutorial's DR one-arm scenario (client and real servers on its wire,
tp0), dpdk1 its tunnel one-arm scenario (tp1), dpdk2 (tp2) starts bare for the refusals.
Real servers and the gateway are static neighbours with made-up MACs, so every frame is
deterministic; the tester sees them on the veth peer whatever their destination MAC."""
import re
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw
from scapy.utils import checksum

from rlb.control.config import check
from rlb.health.path import ProbePaths, Target
from rlb.lab.topologies import RS1, get
from support.netns import Daemon, Wire, del_ns, lines, make_ns, sh

NS = "rlbt-drtun"
DR_VIP, DR_LAN_IP, DR_CLIENT = "192.168.100.254", "192.168.100.1", "192.168.100.46"
DR_RS = {"192.168.100.2": "02:00:00:00:01:02", "192.168.100.3": "02:00:00:00:01:03"}
TUN_VIP, TUN_LAN_IP, TUN_CLIENT = "10.140.31.48", "10.140.16.48", "10.140.20.46"
TUN_GW, TUN_GW_MAC = "10.140.31.254", "02:00:00:00:02:fe"
TUN_NEAR, TUN_NEAR_MAC, TUN_FAR = "10.140.18.33", "02:00:00:00:02:21", "10.40.84.170"

DR_ONE_ARM = get("dr-one-arm").lb_script
TUNNEL_ONE_ARM = get("tunnel-one-arm").script(dev="dpdk1")    # the tutorial's, on dpdk1
# One real server per service where a test must know which one it gets.
EXTRA = (get("tunnel-one-arm").script(net=False, vport=81, servers=(TUN_FAR,)) +
         get("tunnel-one-arm").script(net=False, vport=82, servers=(TUN_NEAR,)) +
         get("dr-one-arm").script(net=False, udp=True, vport=53, servers=(RS1,)) +
         get("dr-one-arm").script(net=False, vport=83, sched="mh"))     # mid-flow adoption


def mac_of(dev):
    return sh("cat", f"/sys/class/net/{dev}/address", ns=NS).stdout.strip()


class Bench:
    def __init__(self, d, workers):
        self.d, self.workers = d, workers
        self.lan, self.tun, self.bare = Wire(NS, "tp0"), Wire(NS, "tp1"), Wire(NS, "tp2")
        self.lb0, self.lb1 = mac_of("dp0"), mac_of("dp1")
        self.t0, self.t1 = mac_of("tp0"), mac_of("tp1")

    def dr_client(self, sport, dport=80, tcp="S", proto="tcp", **ip):
        l4 = TCP(sport=sport, dport=dport, flags=tcp, seq=1000) if proto == "tcp" \
            else UDP(sport=sport, dport=dport)
        return Ether(src=self.t0, dst=self.lb0) / IP(src=DR_CLIENT, dst=DR_VIP, **ip) / l4

    def tun_client(self, sport, dport=80, tcp="S", payload=b"", **ip):
        p = Ether(src=self.t1, dst=self.lb1) / IP(src=TUN_CLIENT, dst=TUN_VIP, **ip) / \
            TCP(sport=sport, dport=dport, flags=tcp, seq=1000)
        return p / Raw(payload) if payload else p

    @staticmethod
    def recv(wire, match, timeout=2):
        f = wire.recv(lambda f: match(Ether(f)), timeout=timeout)
        return f

    def reasons(self):
        return self.d.stats()["reasons"]

    def close(self):
        for w in (self.lan, self.tun, self.bare):
            w.close()


@pytest.fixture(scope="module", params=[1, 2], ids=["1worker", "2workers"])
def daemon(request, tmp_path_factory):
    workers = request.param
    make_ns(NS, [("dp0", "tp0"), ("dp1", "tp1"), ("dp2", "tp2")])
    neigh = "".join(f"dpip neigh add {ip} lladdr {mac} dev dpdk0\n" for ip, mac in DR_RS.items())
    neigh += (f"dpip neigh add {TUN_NEAR} lladdr {TUN_NEAR_MAC} dev dpdk1\n"
              f"dpip neigh add {TUN_GW} lladdr {TUN_GW_MAC} dev dpdk1\n"
              f"dpip neigh add {TUN_CLIENT} lladdr {mac_of('tp1')} dev dpdk1\n")
    conf = (f"dataplane\n workers {workers}\n port dpdk0 net_af_packet0,iface=dp0\n"
            f" port dpdk1 net_af_packet1,iface=dp1\n port dpdk2 net_af_packet2,iface=dp2\n"
            f" conn-table-size 256\n!\n" + lines(DR_ONE_ARM, TUNNEL_ONE_ARM, EXTRA) + neigh)
    d = Daemon(NS, "rlbt-drtun", conf, tmp_path_factory.mktemp("drtun")).start()
    b = Bench(d, workers)
    b.conf = conf
    try:
        yield b
    finally:
        b.close()
        rc = d.stop()
        del_ns(NS)
        assert rc == 0, d.log.read_text()


@pytest.fixture
def bench(daemon):
    for w in (daemon.lan, daemon.tun, daemon.bare):
        w.drain()
    return daemon


# ------------------------------------------------------------------------------ DR

# Golden cases: what the client sends; the real server must get the very same IP packet
# (TTL and checksums included), only the Ethernet header new.
DR_CASES = [
    dict(id="syn", sport=40001, ip={}),
    dict(id="syn-ttl-17-tos-df", sport=40002, ip=dict(ttl=17, tos=0x28, flags="DF", id=0x4242)),
    dict(id="syn-ttl-1", sport=40003, ip=dict(ttl=1)),      # not routed: no TTL rule
    dict(id="udp", sport=40004, dport=53, proto="udp", ip={}),
]


@pytest.mark.parametrize("case", DR_CASES, ids=[c["id"] for c in DR_CASES])
def test_dr_frame_is_the_client_packet_to_the_rs_mac(bench, case):
    sent = bench.dr_client(case["sport"], case.get("dport", 80), proto=case.get("proto", "tcp"),
                           **case["ip"]) / Raw(b"golden")
    bench.lan.send(sent)
    f = bench.recv(bench.lan, lambda p: IP in p and p[IP].src == DR_CLIENT and
                   p.src == bench.lb0 and p.dst in DR_RS.values())
    assert f is not None, "nothing reached a real server"
    got = Ether(f)
    assert got.src == bench.lb0 and got.type == 0x0800
    assert bytes(f)[14:] == bytes(sent)[14:], "DR must not touch the IP packet"
    rs = next(ip for ip, mac in DR_RS.items() if mac == got.dst)
    rows = [c for c in bench.d.ok("ipvsadm -lnc")["data"]["connections"]
            if c["cport"] == case["sport"]]
    assert len(rows) == 1 and rows[0]["destination"].startswith(f"{rs}:")
    assert rows[0]["mode"] == "dr" and rows[0]["local"] == rows[0]["source"]


def test_dr_round_robin_uses_both_real_servers(bench):
    seen = []
    for port in range(41000, 41004):
        bench.lan.send(bench.dr_client(port))
        f = bench.recv(bench.lan, lambda p: TCP in p and p[TCP].sport == port and
                       p.src == bench.lb0)
        assert f is not None
        seen.append(Ether(f).dst)
    assert set(seen) == set(DR_RS.values()) and seen[0::2] == [seen[0]] * 2


def test_dr_arps_for_the_rs_from_the_lan_ip(bench):
    """An unknown real server is resolved with ARP from the LAN IP, never from the VIP
    (the real server holds the VIP and would ignore it: tutorial, DR section)."""
    bench.d.ok("ipvsadm -A -t 192.168.100.254:8000 -s rr")
    bench.d.ok("ipvsadm -a -t 192.168.100.254:8000 -r 192.168.100.9 -g")
    try:
        sent = bench.dr_client(42000, 8000)
        bench.lan.send(sent)
        req = bench.recv(bench.lan, lambda p: ARP in p and p[ARP].pdst == "192.168.100.9")
        assert req is not None, "no ARP request for the real server"
        a = Ether(req)[ARP]
        assert a.op == 1 and a.psrc == DR_LAN_IP and a.hwsrc == bench.lb0
        rs_mac = "02:00:00:00:01:09"
        bench.lan.send(Ether(src=rs_mac, dst=bench.lb0) /
                       ARP(op=2, hwsrc=rs_mac, psrc="192.168.100.9", hwdst=bench.lb0,
                           pdst=DR_LAN_IP))
        f = bench.recv(bench.lan, lambda p: TCP in p and p.dst == rs_mac)
        assert f is not None, "the held SYN did not follow the ARP reply"
        assert bytes(f)[14:] == bytes(sent)[14:]
    finally:
        bench.d.ok("ipvsadm -D -t 192.168.100.254:8000")


def test_dr_reply_from_the_rs_own_address_is_dropped(bench):
    """Replies leave a DR real server from the VIP, straight to the client; one from its
    own address (no VIP on lo) that reaches the LB is counted and dropped."""
    bench.lan.send(bench.dr_client(43000))
    f = bench.recv(bench.lan, lambda p: TCP in p and p[TCP].sport == 43000 and p.src == bench.lb0)
    assert f is not None
    rs = next(ip for ip, mac in DR_RS.items() if mac == Ether(f).dst)
    before = bench.reasons()["direct_reply"]
    bench.lan.send(Ether(src=DR_RS[rs], dst=bench.lb0) / IP(src=rs, dst=DR_CLIENT) /
                   TCP(sport=80, dport=43000, flags="SA", seq=5, ack=1001))
    assert bench.recv(bench.lan, lambda p: IP in p and p[IP].src == rs, timeout=0.5) is None
    assert bench.reasons()["direct_reply"] == before + 1


def test_dr_reply_of_no_connection_is_dropped_on_every_worker(bench):
    """A DR real server answering through us for flows no worker holds: each worker the
    port's steering picks drops and counts it (the real server's mode says so), none
    forwards it to the client."""
    rs, mac = next(iter(DR_RS.items()))
    before = bench.reasons()["direct_reply"]
    for sport in range(44000, 44016):          # 16 flows: both workers get some
        bench.lan.send(Ether(src=mac, dst=bench.lb0) / IP(src=rs, dst=DR_CLIENT) /
                       TCP(sport=80, dport=sport, flags="A", seq=5, ack=1))
    assert bench.recv(bench.lan, lambda p: IP in p and p[IP].src == rs, timeout=0.5) is None
    assert bench.reasons()["direct_reply"] == before + 16


def test_dr_rs_cannot_be_taken_off_link(bench):
    """A DR real server must stay on-link: deleting the route or the address that puts it
    there is refused (so the data plane's not_onlink drop is a last defence only), and
    traffic goes on."""
    before = bench.reasons()["not_onlink"]
    r = bench.d.call("dpip route del 192.168.100.0/24 dev dpdk0")
    assert not r["ok"] and "belongs to an address" in r["error"], r
    lan = next(a["addr"] for a in bench.d.ok("dpip addr show dev dpdk0")["data"]
               if a["addr"].startswith(DR_LAN_IP + "/"))
    r = bench.d.call(f"dpip addr del {lan} dev dpdk0")
    assert not r["ok"] and f"address {DR_LAN_IP} is needed" in r["error"], r
    r = bench.d.call("dpip route add 192.168.100.0/25 via 192.168.100.1 dev dpdk0")
    assert not r["ok"] and "cannot be added" in r["error"], r
    bench.lan.send(bench.dr_client(44000))
    assert bench.recv(bench.lan, lambda p: TCP in p and p[TCP].sport == 44000 and
                      p.src == bench.lb0) is not None
    assert bench.reasons()["not_onlink"] == before


# -------------------------------------------------------------------------- tunnel

def outer_ok(f, dst_mac, rs, sent, df):
    """The frame is `sent`'s IP packet, byte for byte, inside a sound RFC 2003 header."""
    raw = bytes(f)
    got = Ether(raw)
    assert got.dst == dst_mac and got.type == 0x0800
    o = got[IP]
    assert (o.version, o.ihl, o.proto, o.ttl) == (4, 5, 4, 64)
    assert o.src == TUN_LAN_IP and o.dst == rs
    assert o.len == 20 + len(bytes(sent)) - 14
    assert o.id == sent[IP].id and o.tos == sent[IP].tos
    assert bool(o.flags.DF) == df and o.frag == 0 and not o.flags.MF
    assert checksum(raw[14:34]) == 0, "outer header checksum"
    assert raw[34:] == bytes(sent)[14:], "the inner packet must be the client's, unchanged"


TUN_CASES = [
    dict(id="near-rs-on-link", dport=82, rs=TUN_NEAR, mac=TUN_NEAR_MAC, ip={}),
    dict(id="far-rs-via-gateway", dport=81, rs=TUN_FAR, mac=TUN_GW_MAC,
         ip=dict(flags="DF", id=0x1234, tos=0x10, ttl=9)),
    dict(id="without-df", dport=81, rs=TUN_FAR, mac=TUN_GW_MAC, ip=dict(flags=0, id=7)),
]


@pytest.mark.parametrize("case", TUN_CASES, ids=[c["id"] for c in TUN_CASES])
def test_tunnel_encapsulates_the_client_packet(bench, case):
    sport = 45000 + TUN_CASES.index(case)
    sent = bench.tun_client(sport, case["dport"], payload=b"inner", **case["ip"])
    bench.tun.send(sent)
    f = bench.recv(bench.tun, lambda p: IP in p and p[IP].proto == 4 and
                   p[IP].dst == case["rs"] and IP in p[IP].payload and
                   p[IP].payload[TCP].sport == sport)
    assert f is not None, "no IPIP packet for the real server"
    outer_ok(f, case["mac"], case["rs"], sent, df=bool(sent[IP].flags.DF))


def test_tunnel_tutorial_service_uses_both_real_servers(bench):
    seen = set()
    for port in range(46000, 46004):
        bench.tun.send(bench.tun_client(port))
        f = bench.recv(bench.tun, lambda p: IP in p and p[IP].proto == 4 and
                       p[IP].payload[TCP].sport == port)
        assert f is not None
        seen.add((Ether(f).dst, Ether(f)[IP].dst))
    assert seen == {(TUN_NEAR_MAC, TUN_NEAR), (TUN_GW_MAC, TUN_FAR)}


def big(bench, sport, dport, tot, df):
    """A data segment of total length `tot` on a flow whose SYN went through."""
    bench.tun.send(bench.tun_client(sport, dport))
    assert bench.recv(bench.tun, lambda p: IP in p and p[IP].proto == 4 and
                      p[IP].payload[TCP].sport == sport) is not None
    return bench.tun_client(sport, dport, "PA", b"x" * (tot - 40), flags="DF" if df else 0)


@pytest.mark.parametrize("mtu", [None, 1400], ids=["route-1500", "route-mtu-1400"])
def test_tunnel_too_big_with_df_answers_frag_needed(bench, mtu):
    if mtu:
        bench.d.ok(f"dpip route add {TUN_FAR}/32 via {TUN_GW} src {TUN_LAN_IP} dev dpdk1 "
                   f"mtu {mtu}")
    try:
        limit = (mtu or 1500) - 20
        sport = 47000 if mtu is None else 47100
        fits = big(bench, sport, 81, limit, df=True)
        bench.tun.send(fits)
        f = bench.recv(bench.tun, lambda p: IP in p and p[IP].proto == 4 and Raw in p)
        assert f is not None, "a packet that fits the tunnel exactly must go"
        outer_ok(f, TUN_GW_MAC, TUN_FAR, fits, df=True)
        assert Ether(f)[IP].len == limit + 20
        before = bench.reasons()["too_big"]
        too_big = big(bench, sport + 1, 81, limit + 1, df=True)
        bench.tun.send(too_big)
        icmp = bench.recv(bench.tun, lambda p: ICMP in p and p[IP].dst == TUN_CLIENT)
        assert icmp is not None, "no ICMP fragmentation needed"
        p = Ether(icmp)
        assert p.dst == bench.t1 and p[IP].src == TUN_LAN_IP
        assert (p[ICMP].type, p[ICMP].code, p[ICMP].nexthopmtu) == (3, 4, limit)
        assert p[IPerror].src == TUN_CLIENT and p[IPerror].dst == TUN_VIP
        assert bytes(p[IPerror])[:20] == bytes(too_big[IP])[:20]
        assert bench.recv(bench.tun, lambda q: IP in q and q[IP].proto == 4, timeout=0.3) is None
        assert bench.reasons()["too_big"] == before + 1
    finally:
        if mtu:
            bench.d.ok(f"dpip route del {TUN_FAR}/32 dev dpdk1")


def test_tunnel_too_big_without_df_is_dropped(bench):
    too_big = big(bench, 47200, 81, 1481, df=False)
    before = bench.reasons()["too_big"]
    bench.tun.send(too_big)
    assert bench.recv(bench.tun, lambda p: IP in p and (p[IP].proto == 4 or ICMP in p),
                      timeout=0.5) is None
    assert bench.reasons()["too_big"] == before + 1


# ------------------------------------------------------------------- refusals

def refused(bench, cmd, match):
    before = bench.d.ok("ipvsadm -ln")["text"]
    r = bench.d.call(cmd)
    assert not r["ok"], f"{cmd} was accepted"
    assert match in r["error"], r["error"]
    assert bench.d.ok("ipvsadm -ln")["text"] == before
    return r["error"]


def test_dr_refusals(bench):
    # the tutorial's RS in another subnet is for the tunnel, not DR
    refused(bench, "ipvsadm -a -t 192.168.100.254:80 -r 10.40.84.171 -g",
            "is not on a connected network")
    refused(bench, "ipvsadm -a -t 192.168.100.254:80 -r 192.168.100.5:8080 -g",
            "cannot change ports")
    refused(bench, "ipvsadm --add-laddr -z 192.168.100.200 -t 192.168.100.254:80 -F dpdk0",
            "for FNAT")
    refused(bench, "ipvsadm -a -t 10.140.31.48:80 -r 10.140.18.34:8080 -i",
            "cannot change ports")


def test_vip_before_lan_ip_and_tunnel_without_src_on_a_bare_port(bench):
    d = bench.d
    d.ok("dpip route add 172.17.0.0/24 dev dpdk2")        # connected, but no address of ours
    d.ok("ipvsadm -A -t 172.16.0.254:80 -s rr")
    try:
        refused(bench, "ipvsadm -a -t 172.16.0.254:80 -r 172.17.0.5 -i",
                "tunnel mode needs a route src: dpip route add default via GW src LANIP "
                "dev PORT")
        refused(bench, "ipvsadm -a -t 172.16.0.254:80 -r 172.17.0.5 -g", "needs a LAN IP")
        # the VIP first, then the LAN IP: the port's first address (the ARP source) is
        # the VIP, which the real servers hold themselves
        d.ok("dpip addr add 172.16.0.254/32 dev dpdk2")
        d.ok("dpip addr add 172.16.0.1/24 dev dpdk2")
        for flag in ("-g", "-i"):
            err = refused(bench, f"ipvsadm -a -t 172.16.0.254:80 -r 172.16.0.2 {flag}",
                          "is a VIP")
            assert "LAN IP must be added before the VIP" in err
        # the tutorial's order works
        d.ok("dpip addr del 172.16.0.254/32 dev dpdk2")
        d.ok("dpip addr add 172.16.0.254/32 dev dpdk2")
        d.ok("ipvsadm -a -t 172.16.0.254:80 -r 172.16.0.2 -g")
        d.ok("ipvsadm -a -t 172.16.0.254:80 -r 172.16.0.3 -i")
        text = d.ok("ipvsadm -ln")["text"]
        assert "172.16.0.2:80" in text and "Route" in text and "Tunnel" in text
    finally:
        d.call("ipvsadm -D -t 172.16.0.254:80")
        d.call("dpip addr del 172.16.0.254/32 dev dpdk2")
        d.call("dpip addr del 172.16.0.1/24 dev dpdk2")
        d.call("dpip route del 172.17.0.0/24 dev dpdk2")


def test_listing_shows_route_and_tunnel(bench):
    text = bench.d.ok("ipvsadm -ln")["text"]
    assert re.search(r"^  -> 192\.168\.100\.2:80 +Route +1 ", text, re.M), text
    assert re.search(r"^  -> 10\.40\.84\.170:80 +Tunnel +1 ", text, re.M), text


# ------------------------------------------------- validation without a data plane

def model_with(lines):
    from rlb.control.config import run_lines
    from rlb.model.model import Model
    from rlb.commands.base import Context
    m = Model()
    m.add_port("dpdk0", "net_tap_dpdk0")
    m.add_port("dpdk1", "net_tap_dpdk1")
    run_lines(Context(m), list(enumerate(lines, 1)), "test")
    return m


def test_model_accepts_the_tutorial_scripts_and_refuses_what_cannot_work():
    from rlb.model.model import CommandError
    dr = model_with(DR_ONE_ARM)
    tun = model_with(get("tunnel-one-arm").lb_script)
    svc = tun.services.table[(6, IPv4Address(TUN_VIP), 80)]
    assert [d.mode for d in svc.dests] == ["tunnel", "tunnel"]
    # no route at all to the real server (no default route here)
    with pytest.raises(CommandError, match="no route to real server"):
        dr.services.add_dest((6, IPv4Address(DR_VIP), 80), IPv4Address("10.9.9.9"),
                             mode="tunnel")
    # a route src that is a VIP
    dr.add_address(IPv4Interface("10.1.0.1/24"), "dpdk1")
    dr.add_route(IPv4Network("10.2.0.0/16"), "dpdk1", via=IPv4Address("10.1.0.9"),
                 src=IPv4Address(DR_VIP))
    with pytest.raises(CommandError, match=r"the src of route 10\.2\.0\.0/16 192\.168\.100\."
                                           r"254 on dpdk1 is a VIP"):
        dr.services.add_dest((6, IPv4Address(DR_VIP), 80), IPv4Address("10.2.3.4"),
                             mode="tunnel")
    # a local address on a service with DR real servers (refused by the core)
    with pytest.raises(CommandError, match="for FNAT"):
        dr.services.add_laddr((6, IPv4Address(DR_VIP), 80), IPv4Address("192.168.100.200"),
                              "dpdk0")
    assert dr.find_address(IPv4Address("192.168.100.200")) is None


# ------------------------------------------------------------------- health probes

def probe_targets(bench):
    """Where the daemon's probes go (rlb.health.path), from a model of its configuration
    (the same lines: the same real-server slots)."""
    model = check(list(enumerate(bench.conf.splitlines(), 1)), "drtun.conf")
    paths = ProbePaths(model)
    return {(str(d.addr), svc.vport): paths.target(svc, d)
            for svc in model.services.table.values() for d in svc.dests}


def kernel_probe(bench, t: Target, kni_mac: str, flags="S"):
    """The probe as the kernel sends it on the kni: to the port's own MAC (the permanent
    neighbour of ProbePaths' gateway), from the probe's source and port."""
    return Ether(src=kni_mac, dst=kni_mac) / IP(src=t.source, dst=t.addr, id=0x77) / \
        TCP(sport=t.sport, dport=t.port, flags=flags, seq=9) / Raw(b"probe")


PROBE_CASES = [
    # (real server, its service's port, kni, the frame's next hop MAC)
    dict(id="dr", rs=RS1, vport=80, kni="dpdk0.kni", mac=DR_RS[RS1]),
    dict(id="tunnel-near", rs=TUN_NEAR, vport=82, kni="dpdk1.kni", mac=TUN_NEAR_MAC),
    dict(id="tunnel-far", rs=TUN_FAR, vport=81, kni="dpdk1.kni", mac=TUN_GW_MAC),
]


@pytest.mark.parametrize("case", PROBE_CASES, ids=[c["id"] for c in PROBE_CASES])
def test_a_probe_from_the_kni_takes_its_real_server_s_mode(bench, case):
    """DR: the kernel's packet to the VIP, byte for byte, at the real server's MAC;
    Tunnel: inside IPIP from the LAN IP, on-link or through the gateway. The local port
    names the real server: the probe goes to it, whatever the scheduler would pick."""
    t = probe_targets(bench)[(case["rs"], case["vport"])]
    kni = Wire(NS, case["kni"])
    lb_mac = bench.lb0 if case["kni"] == "dpdk0.kni" else bench.lb1
    wire = bench.lan if case["kni"] == "dpdk0.kni" else bench.tun
    try:
        for _ in range(3):                 # the same real server every time
            sent = kernel_probe(bench, t, lb_mac)
            kni.send(sent)
            f = bench.recv(wire, lambda p: IP in p and p.src == lb_mac and
                           (p[IP].id == 0x77 or (IP in p[IP].payload and
                                                 p[IP].payload.id == 0x77)))
            assert f is not None, "the probe did not leave"
            if case["id"] == "dr":
                assert Ether(f).dst == case["mac"] and t.addr == DR_VIP
                assert bytes(f)[14:] == bytes(sent)[14:], "DR must not touch the probe"
            else:
                assert t.addr == TUN_VIP and t.source == TUN_LAN_IP
                outer_ok(f, case["mac"], case["rs"], sent, df=False)
    finally:
        kni.close()


def test_a_real_server_at_weight_0_is_still_probed(bench):
    """A server the checks took down (inhibited: weight 0) takes no new connections but
    its probes still reach it, or it could never come back up."""
    t = probe_targets(bench)[(RS1, 80)]
    bench.d.ok(f"ipvsadm -e -t {DR_VIP}:80 -r {RS1} -g -w 0")
    kni = Wire(NS, "dpdk0.kni")
    try:
        sent = kernel_probe(bench, t, bench.lb0)
        kni.send(sent)
        f = bench.recv(bench.lan, lambda p: IP in p and p[IP].id == 0x77 and p.src == bench.lb0)
    finally:
        kni.close()
        bench.d.ok(f"ipvsadm -e -t {DR_VIP}:80 -r {RS1} -g -w 1")
    assert f is not None and Ether(f).dst == DR_RS[RS1]
    assert bytes(f)[14:] == bytes(sent)[14:]


def test_a_probe_to_rip_port_is_routed_unchanged(bench):
    """A probe that is not to a VIP (FNAT, NAT) is routed by its destination, TTL kept
    (our own packet), whatever real server its port's slot holds."""
    t = probe_targets(bench)[(RS1, 80)]
    rip = Target(RS1, 80, DR_LAN_IP, t.sport)
    kni = Wire(NS, "dpdk0.kni")
    try:
        sent = kernel_probe(bench, rip, bench.lb0)
        kni.send(sent)
        f = bench.recv(bench.lan, lambda p: IP in p and p[IP].id == 0x77 and p.src == bench.lb0)
    finally:
        kni.close()
    assert f is not None and Ether(f).dst == DR_RS[RS1]
    assert bytes(f)[14:] == bytes(sent)[14:]


def test_the_modes_are_registered():
    from rlb import plugins
    modes = plugins.modes()
    assert modes["dr"].flag == "-g" and modes["dr"].display == "Route"
    assert modes["tunnel"].flag == "-i" and modes["tunnel"].display == "Tunnel"
    assert not modes["dr"].needs_laddr and not modes["tunnel"].needs_laddr


# --------------------------------------------------- flows that ECMP moved to this LB

def adopted(bench):
    return bench.d.ok("show dataplane")["data"]["connections"]["adopted"]


def test_a_mid_flow_segment_of_a_dr_mh_service_goes_where_the_table_says(bench):
    """No connection, no SYN: a flow another LB began (ECMP moved it here). The Maglev
    table (the same on every LB with these servers) names its server; the segment goes
    there as DR sends, and the flow has a connection from now on."""
    before, taken = bench.reasons()["conn_miss"], adopted(bench)
    seg = bench.dr_client(43001, 83, tcp="A") / Raw(b"mid-flow")
    bench.lan.send(seg)
    f = bench.recv(bench.lan, lambda p: IP in p and p[IP].src == DR_CLIENT and
                   TCP in p and p[TCP].sport == 43001 and p.src == bench.lb0)
    assert f is not None, "the mid-flow segment was dropped"
    assert bytes(f)[14:] == bytes(seg)[14:]
    rs = next(ip for ip, mac in DR_RS.items() if mac == Ether(f).dst)
    rows = [c for c in bench.d.ok("ipvsadm -lnc")["data"]["connections"]
            if c["cport"] == 43001]
    assert len(rows) == 1 and rows[0]["state"] == "ESTABLISHED" and \
        rows[0]["destination"].startswith(f"{rs}:")
    assert bench.reasons()["conn_miss"] == before and adopted(bench) == taken + 1
    # a new flow of the same client is scheduled by the same table: the same server
    bench.lan.send(bench.dr_client(43002, 83))
    f = bench.recv(bench.lan, lambda p: IP in p and TCP in p and p[TCP].sport == 43002)
    assert f is not None and Ether(f).dst == DR_RS[rs]


def test_a_reset_or_fin_of_a_flow_never_seen_is_not_adopted(bench):
    before = bench.reasons()["conn_miss"]
    for port, flags in ((43010, "R"), (43011, "FA"), (43012, "RA")):
        bench.lan.send(bench.dr_client(port, 83, tcp=flags))
        assert bench.recv(bench.lan, lambda p: IP in p and TCP in p and
                          p[TCP].sport == port, timeout=0.5) is None, flags
    assert bench.reasons()["conn_miss"] == before + 3


def test_a_mid_flow_segment_of_a_round_robin_service_is_still_dropped(bench):
    before = bench.reasons()["conn_miss"]
    bench.lan.send(bench.dr_client(43003, 80, tcp="A"))
    assert bench.recv(bench.lan, lambda p: IP in p and TCP in p and p[TCP].sport == 43003,
                      timeout=0.5) is None
    assert bench.reasons()["conn_miss"] == before + 1
    assert "adopted" in bench.d.ok("show dataplane")["text"]


def test_a_service_moved_from_mh_to_rr_no_longer_adopts(bench):
    """`ipvsadm -E ... -s rr` takes the Maglev table away with the scheduler: a mid-flow
    segment is dropped again, not sent to the server round robin picks (that server
    never saw the flow and would reset it). Back to mh, the table is there again."""
    vip = "192.168.100.254:83"
    try:
        bench.d.ok(f"ipvsadm -E -t {vip} -s rr")
        before, taken = bench.reasons()["conn_miss"], adopted(bench)
        bench.lan.send(bench.dr_client(43020, 83, tcp="A"))
        assert bench.recv(bench.lan, lambda p: IP in p and TCP in p and
                          p[TCP].sport == 43020, timeout=0.5) is None
        assert bench.reasons()["conn_miss"] == before + 1 and adopted(bench) == taken
    finally:
        bench.d.ok(f"ipvsadm -E -t {vip} -s mh")
    bench.lan.send(bench.dr_client(43021, 83, tcp="A"))
    assert bench.recv(bench.lan, lambda p: IP in p and TCP in p and
                      p[TCP].sport == 43021) is not None
    assert adopted(bench) == taken + 1
