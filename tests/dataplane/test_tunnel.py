"""IPIP and GRE tunnel interfaces through the real compiled core: golden frames
encapsulated and decapsulated both ways, GRE keys and checksums, the tunnel's kni twin,
SNAT through a GRE tunnel (the tutorial's SNAT-GRE), `dpip tunnel` errors."""
import pytest
from scapy.layers.inet import GRE, ICMP, IP, UDP
from scapy.layers.l2 import Ether

from support.netns import Daemon, Wire, del_ns, make_ns, sh, wait

NS = "rlbt-tun"
PEER = "02:00:00:00:01:02"         # the underlay's next hop (static neighbour)
WAN_GW = "02:00:00:00:02:01"
CONFIG = f"""\
dataplane
 port dpdk0 net_af_packet0,iface=dp0
 port dpdk1 net_af_packet1,iface=dp1
 forwarding
!
dpip addr add 10.0.0.1/24 dev dpdk0
dpip addr add 123.1.2.3/24 dev dpdk1 sapool
dpip neigh add 10.0.0.2 lladdr {PEER} dev dpdk0
dpip neigh add 123.1.2.1 lladdr {WAN_GW} dev dpdk1
dpip route add default via 123.1.2.1 dev dpdk1
dpip tunnel add mode ipip ipip1 local 10.0.0.1 remote 10.0.0.2
dpip tunnel add gre1 mode gre local 10.0.0.1 remote 10.0.0.3 dev dpdk0
dpip tunnel add gre2 mode gre local 10.0.0.1 remote 10.0.0.3 key 42 csum ttl 30
dpip neigh add 10.0.0.3 lladdr {PEER} dev dpdk0
dpip addr add 172.16.1.1/30 dev ipip1
dpip addr add 172.16.2.1/30 dev gre1
dpip addr add 172.16.3.1/30 dev gre2
dpip route add 192.168.100.0/24 dev gre1
ipvsadm -A -s rr -H proto=udp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1
ipvsadm -a -H proto=udp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1 -r 123.1.2.3:0 -w 100 -J
"""


class Lab:
    def __init__(self, d):
        self.d = d
        self.w0, self.w1 = Wire(NS, "tp0"), Wire(NS, "tp1")
        self.mac0 = sh("cat", "/sys/class/net/dp0/address", ns=NS).stdout.strip()
        self.mac1 = sh("cat", "/sys/class/net/dp1/address", ns=NS).stdout.strip()

    def under(self, src, outer_extra, inner):
        """A frame from the underlay's peer to us, `inner` in an outer header."""
        return Ether(src=PEER, dst=self.mac0) / IP(src=src, dst="10.0.0.1", id=5, ttl=64,
                                                  **outer_extra) / inner


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    make_ns(NS, [("dp0", "tp0"), ("dp1", "tp1")])
    d = Daemon(NS, "rlbt-tun", CONFIG, tmp_path_factory.mktemp("tun")).start()
    lab = Lab(d)
    try:
        yield lab
    finally:
        lab.w0.close()
        lab.w1.close()
        rc = d.stop()
        left = sh("ip", "-o", "link", ns=NS).stdout
        del_ns(NS)
        assert rc == 0, d.log.read_text()
        assert "kni" not in left


def echo_reply(ident):
    return lambda f: ICMP in Ether(f) and Ether(f)[ICMP].type == 0 and Ether(f)[ICMP].id == ident


def test_ipip_echo_golden_both_ways(lab):
    inner = IP(src="172.16.1.2", dst="172.16.1.1", id=9, ttl=64) / ICMP(id=11, seq=1) / b"ipip"
    lab.w0.send(bytes(lab.under("10.0.0.2", {"proto": 4}, inner)))
    got = lab.w0.recv(echo_reply(11))
    assert got is not None
    p = Ether(got)
    # outer: ours to the remote end, proto 4, the inner's TTL (ttl 0: inherit)
    assert (p.src, p.dst, p[IP].src, p[IP].dst, p[IP].proto) == \
        (lab.mac0, PEER, "10.0.0.1", "10.0.0.2", 4)
    want = IP(src="172.16.1.1", dst="172.16.1.2", ttl=64, id=9) / ICMP(type=0, id=11, seq=1) / b"ipip"
    inner_got = p[IP].payload
    assert bytes(inner_got) == bytes(IP(bytes(want)))
    outer = IP(bytes(p[IP]))
    del outer.chksum
    assert IP(bytes(outer)).chksum == p[IP].chksum and p[IP].ttl == inner_got.ttl


def test_gre_plain_and_keyed_with_checksum(lab):
    inner = IP(src="172.16.2.2", dst="172.16.2.1") / ICMP(id=12)
    lab.w0.send(bytes(lab.under("10.0.0.3", {"proto": 47}, GRE(proto=0x0800) / inner)))
    got = lab.w0.recv(echo_reply(12))
    assert got is not None
    p = Ether(got)
    assert p[IP].dst == "10.0.0.3" and p[GRE].key_present == 0 and p[GRE].chksum_present == 0
    assert p[GRE].proto == 0x0800
    # the keyed tunnel between the same ends: its key and a checksum, TTL 30
    inner = IP(src="172.16.3.2", dst="172.16.3.1") / ICMP(id=13)
    lab.w0.send(bytes(lab.under("10.0.0.3", {"proto": 47},
                                GRE(key_present=1, key=42, proto=0x0800) / inner)))
    got = lab.w0.recv(echo_reply(13))
    assert got is not None
    p = Ether(got)
    assert p[GRE].key_present == 1 and p[GRE].key == 42 and p[GRE].chksum_present == 1
    assert p[IP].ttl == 30
    g = GRE(bytes(p[GRE]))
    g.chksum = None
    assert bytes(GRE(bytes(g)))[4:6] == bytes(p[GRE])[4:6], "GRE checksum"
    # a key no tunnel has: counted, dropped
    before = lab.d.stats()["reasons"]["tunnel_bad"]
    lab.w0.send(bytes(lab.under("10.0.0.3", {"proto": 47},
                                GRE(key_present=1, key=43, proto=0x0800) / inner)))
    assert lab.w0.recv(echo_reply(13), 0.5) is None
    assert wait(lambda: lab.d.stats()["reasons"]["tunnel_bad"] == before + 1)


def test_snat_through_gre(lab):
    """The tutorial's SNAT-GRE: a remote host reaches the WAN through a GRE tunnel to
    the LB, SNAT'ed to its WAN address; the answer goes back into the tunnel."""
    inner = IP(src="192.168.100.5", dst="8.8.8.8", id=3, ttl=64) / UDP(sport=5353, dport=53) / b"q"
    lab.w0.send(bytes(lab.under("10.0.0.3", {"proto": 47}, GRE(proto=0x0800) / inner)))
    out = lab.w1.recv(lambda f: UDP in Ether(f) and Ether(f)[UDP].dport == 53)
    assert out is not None, "nothing left by the WAN"
    o = Ether(out)
    assert (o.dst, o[IP].src, o[IP].dst, o[IP].ttl) == (WAN_GW, "123.1.2.3", "8.8.8.8", 63)
    lport = o[UDP].sport
    lab.w1.send(bytes(Ether(src=WAN_GW, dst=lab.mac1) /
                      IP(src="8.8.8.8", dst="123.1.2.3") / UDP(sport=53, dport=lport) / b"a"))
    back = lab.w0.recv(lambda f: GRE in Ether(f) and UDP in Ether(f)[GRE].payload)
    assert back is not None, "the answer did not go back into the tunnel"
    b = Ether(back)
    assert (b[IP].src, b[IP].dst) == ("10.0.0.1", "10.0.0.3")
    i = b[GRE].payload
    assert (i[IP].src, i[IP].dst, i[UDP].sport, i[UDP].dport) == \
        ("8.8.8.8", "192.168.100.5", 53, 5353)


def test_tunnel_kni_twin(lab):
    """A kernel address on gre1.kni answers through the tunnel."""
    sh("ip", "addr", "add", "172.16.2.5/30", "dev", "gre1.kni", ns=NS, check=False)
    sh("ip", "link", "set", "gre1.kni", "up", ns=NS)
    lab.d.ok("dpip route add 172.16.2.5/32 dev gre1 scope kni_host")
    try:
        # the remote end pings the kernel's address on the tunnel
        inner = IP(src="172.16.2.6", dst="172.16.2.5") / ICMP(id=21)
        got = None
        for _ in range(3):
            lab.w0.send(bytes(lab.under("10.0.0.3", {"proto": 47}, GRE(proto=0x0800) / inner)))
            got = lab.w0.recv(echo_reply(21), 1.0)
            if got:
                break
        assert got is not None, "the kernel's answer did not come back through the tunnel"
        p = Ether(got)
        assert p[IP].dst == "10.0.0.3" and p[GRE].payload[IP].src == "172.16.2.5"
    finally:
        lab.d.call("dpip route del 172.16.2.5/32 dev gre1 scope kni_host")


@pytest.mark.parametrize("cmd, why", [
    ("dpip tunnel add mode ipip t1 local 10.0.0.1 remote 10.0.0.2", "same ends"),
    ("dpip tunnel add mode ipip t1 local 10.0.0.1 remote 10.0.0.9 key 5", "GRE's"),
    ("dpip tunnel add t1 mode gre local 10.0.0.1 remote 10.0.0.9 dev dpdk7", "no such port"),
    ("dpip tunnel add t1 mode gre local 10.0.0.1 remote 224.0.0.5", "cannot be a tunnel end"),
    ("dpip tunnel add t1 mode gre local 10.0.0.1 remote 10.0.0.9 dev gre1", "is a tunnel"),
    ("dpip tunnel add ipip1 mode gre local 10.0.0.1 remote 10.0.0.9", "already defined"),
    ("dpip tunnel del gre1", "addresses, routes or neighbours"),
    ("dpip tunnel del dpdk0", "not a tunnel"),
    ("dpip tunnel change dpdk0 ttl 3", "not a tunnel"),
])
def test_tunnel_errors_change_nothing(lab, cmd, why):
    before = lab.d.ok("show running-config")["text"]
    r = lab.d.call(cmd)
    assert not r["ok"] and why in r["error"], r
    assert lab.d.ok("show running-config")["text"] == before


def test_tunnel_add_change_del_at_run_time(lab):
    lab.d.ok("dpip tunnel add t9 mode gre local 10.0.0.1 remote 10.0.0.2 key 9")
    assert wait(lambda: "t9.kni" in sh("ip", "-o", "link", ns=NS).stdout)
    lab.d.ok("dpip tunnel change t9 key 10 ttl 7")
    shown = lab.d.ok("dpip tunnel show t9")["data"][0]
    assert (shown["key"], shown["ttl"], shown["mode"]) == (10, 7, "gre")
    assert "interface t9\n tunnel mode gre local 10.0.0.1 remote 10.0.0.2 key 10 ttl 7" in \
        lab.d.ok("show running-config")["text"]
    lab.d.ok("dpip tunnel del t9")
    assert wait(lambda: "t9.kni" not in sh("ip", "-o", "link", ns=NS).stdout)


def test_link_show_names_the_tunnel(lab):
    r = lab.d.ok("dpip -s link show gre1")
    row = r["data"]["ports"][0]
    assert row["driver"] == "tunnel" and row["tunnel"] == {
        "mode": "gre", "local": "10.0.0.1", "remote": "10.0.0.3"}
    assert row["stats"]["rx_pkts"] > 0 and row["stats"]["tx_pkts"] > 0
    assert "tunnel gre local 10.0.0.1 remote 10.0.0.3" in r["text"]


def test_tunnel_mtu_leaves_room_for_its_headers(lab):
    mtus = {row["name"]: row["mtu"] for row in lab.d.ok("dpip link show")["data"]["ports"]}
    assert (mtus["ipip1"], mtus["gre1"], mtus["gre2"]) == (1480, 1476, 1468)
    for name, mtu in (("ipip1", 1480), ("gre1", 1476), ("gre2", 1468)):
        assert sh("cat", f"/sys/class/net/{name}.kni/mtu", ns=NS).stdout.strip() == str(mtu)


def test_too_big_for_the_tunnel_is_told(lab):
    """Forwarded into gre1 (MTU 1476) with DF: dropped, and the sender told the MTU."""
    before = lab.d.stats()["reasons"]["too_big"]
    big = Ether(src=WAN_GW, dst=lab.mac1) / IP(src="8.8.4.4", dst="192.168.100.9", flags="DF") / \
        UDP(sport=7, dport=7) / (b"x" * 1472)
    lab.w1.send(bytes(big))
    got = lab.w1.recv(lambda f: ICMP in Ether(f) and Ether(f)[ICMP].type == 3)
    assert got is not None, "no ICMP fragmentation needed"
    p = Ether(got)
    assert (p[ICMP].code, p[ICMP].nexthopmtu, p[IP].dst) == (4, 1476, "8.8.4.4")
    assert lab.w0.recv(lambda f: GRE in Ether(f), 0.3) is None
    assert wait(lambda: lab.d.stats()["reasons"]["too_big"] == before + 1)
