"""UOA through the real core: FNAT puts the client in IPv4 option 31 of a UDP flow's
first datagrams (DPVS uoa, "ipo" mode), three at most and none once the real server
answered; checksums right, payload intact, replies restored; TCP keeps TOA.

The tester plays the client on dpdk1's wire (tp1) and the real server on dpdk0's
wire (tp0); neighbours are static so every frame is deterministic."""
import time

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from rlb.lab.topologies import get
from support.netns import Daemon, Wire, del_ns, fnat_two_port, lines, make_ns, sh

NS = "rlbt-uoa"
VIP, LIP, CLIENT, RS = "10.0.0.100", "192.168.100.200", "10.0.0.48", "192.168.100.2"
PORT = 9999
# The tutorial's FNAT two-arm with one real server, and the same service over UDP
UDP_SERVICE = get("fnat-two-arm").script(net=False, udp=True, vport=PORT, servers=(RS,))
UOA_SENT_MAX = 3             # DPVS's default uoa_max_trail


class Bench:
    def __init__(self, d):
        self.d = d
        self.rs, self.cl = Wire(NS, "tp0"), Wire(NS, "tp1")
        mac = lambda dev: sh("cat", f"/sys/class/net/{dev}/address", ns=NS).stdout.strip()
        self.lb_lan, self.lb_wan = mac("dp0"), mac("dp1")
        self.rs_mac, self.cl_mac = mac("tp0"), mac("tp1")

    def udp(self, sport, payload, **kw):
        return (Ether(src=self.cl_mac, dst=self.lb_wan) / IP(src=CLIENT, dst=VIP) /
                UDP(sport=sport, dport=PORT, **kw) / Raw(payload))

    def to_rs(self, payload, timeout=2):
        f = self.rs.recv(lambda f: Raw in Ether(f) and bytes(Ether(f)[Raw]) == payload,
                         timeout=timeout)
        return Ether(f) if f else None

    def send(self, sport, payload, **kw):
        """A datagram from the client; what the real server got."""
        self.cl.send(self.udp(sport, payload, **kw))
        p = self.to_rs(payload)
        assert p is not None, f"{payload!r} did not reach the real server"
        return p

    def close(self):
        self.rs.close()
        self.cl.close()


@pytest.fixture(scope="module", params=[1, 2], ids=["1worker", "2workers"])
def bench(request, tmp_path_factory):
    make_ns(NS, [("dp0", "tp0"), ("dp1", "tp1")])
    mac = lambda dev: sh("cat", f"/sys/class/net/{dev}/address", ns=NS).stdout.strip()
    conf = (fnat_two_port(request.param, "conn-table-size 64", servers=(RS,)) +
            lines(UDP_SERVICE) +
            f"dpip neigh add {RS} lladdr {mac('tp0')} dev dpdk0\n"
            f"dpip neigh add {CLIENT} lladdr {mac('tp1')} dev dpdk1\n")
    d = Daemon(NS, "rlbt-uoa", conf, tmp_path_factory.mktemp("uoa")).start()
    b = Bench(d)
    try:
        yield b
    finally:
        b.close()
        rc = d.stop()
        del_ns(NS)
        assert rc == 0, d.log.read_text()


@pytest.fixture(autouse=True)
def fresh(bench):
    bench.rs.drain()
    bench.cl.drain()
    yield


def uoa(p):
    """Option 31's (port, address) bytes, or None; the header must hold only it."""
    raw = bytes(p[IP])
    ihl = (raw[0] & 0xF) * 4
    if ihl == 20:
        return None
    assert ihl == 28 and raw[20] == 31 and raw[21] == 8, raw[:ihl].hex()
    return raw[22:28]


def checksums_ok(p):
    raw = bytes(p)
    fresh = Ether(raw)
    for layer in (IP, TCP, UDP):
        if layer in fresh:
            del fresh[layer].chksum
    return bytes(Ether(bytes(fresh))) == raw


def expected(sport):
    return sport.to_bytes(2, "big") + bytes([10, 0, 0, 48])


def test_first_datagrams_carry_the_client_then_no_more(bench):
    seen = [bench.send(45000, b"datagram %d" % i) for i in range(UOA_SENT_MAX + 2)]
    for i, p in enumerate(seen):
        assert p[IP].src == LIP and p[IP].dst == RS and p[UDP].dport == PORT
        assert p[UDP].sport == seen[0][UDP].sport                 # one flow, one lport
        assert checksums_ok(p), f"datagram {i}: bad checksum"
        assert bytes(p[Raw]) == b"datagram %d" % i
        assert p[IP].len == len(bytes(p[IP])) and p[UDP].len == 8 + len(b"datagram 0")
    assert [uoa(p) for p in seen] == [expected(45000)] * UOA_SENT_MAX + [None] * 2


def test_a_reply_from_the_real_server_ends_it_and_is_restored(bench):
    q = bench.send(45100, b"query")
    assert uoa(q) == expected(45100) and checksums_ok(q)
    bench.rs.send(Ether(src=bench.rs_mac, dst=bench.lb_lan) / IP(src=RS, dst=LIP) /
                  UDP(sport=PORT, dport=q[UDP].sport) / Raw(b"answer"))
    f = bench.cl.recv(lambda f: Raw in Ether(f) and bytes(Ether(f)[Raw]) == b"answer")
    assert f is not None, "the reply did not reach the client"
    a = Ether(f)
    assert a[IP].src == VIP and a[IP].dst == CLIENT and a[UDP].sport == PORT
    assert a[UDP].dport == 45100 and a[IP].ihl == 5 and checksums_ok(a)
    later = bench.send(45100, b"after the answer")                # DPVS: "acked", done
    assert uoa(later) is None and checksums_ok(later)


def test_a_datagram_without_checksum_keeps_none(bench):
    p = bench.send(45200, b"no checksum", chksum=0)
    assert uoa(p) == expected(45200) and p[UDP].chksum == 0
    ip = IP(bytes(p[IP]))
    del ip.chksum
    assert IP(bytes(ip)).chksum == p[IP].chksum                   # the IP header's is right


def test_a_datagram_too_big_for_the_mtu_goes_without_and_the_next_carries_it(bench):
    big = b"x" * (1500 - 20 - 8)                                  # exactly the MTU
    p = bench.send(45300, big)
    assert uoa(p) is None and len(bytes(p[IP])) == 1500 and checksums_ok(p)
    small = bench.send(45300, b"small")
    assert uoa(small) == expected(45300) and checksums_ok(small)


def test_no_mbuf_lost_and_no_drop(bench):
    time.sleep(0.2)
    pool, reasons = bench.d.stats()["pool"]["in_use"], bench.d.stats()["reasons"]
    for i in range(8):
        bench.send(45400 + i, b"flow %d" % i)
    time.sleep(0.2)
    st = bench.d.stats()
    assert st["pool"]["in_use"] == pool
    assert {k: v for k, v in st["reasons"].items() if v != reasons[k]} == {}


def test_tcp_still_gets_toa_and_no_ip_option(bench):
    bench.cl.send(Ether(src=bench.cl_mac, dst=bench.lb_wan) / IP(src=CLIENT, dst=VIP) /
                  TCP(sport=46000, dport=80, flags="S", seq=100))
    f = bench.rs.recv(lambda f: TCP in Ether(f) and Ether(f)[TCP].flags == "S")
    assert f is not None
    syn = Ether(f)
    assert syn[IP].ihl == 5 and checksums_ok(syn)
    assert dict((k, v) for k, v in syn[TCP].options if k == 254) == {254: expected(46000)}
