"""Crafted frames through the real compiled core: ARP, ICMP, routing, kni, malformed input."""
import time

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw


def parse(frame):
    return Ether(frame)


def is_arp(op, tip=None):
    def m(f):
        p = Ether(f)
        return ARP in p and p[ARP].op == op and (tip is None or p[ARP].pdst == tip)
    return m


def is_ip(dst=None, proto=None):
    def m(f):
        p = Ether(f)
        return IP in p and (dst is None or p[IP].dst == dst) and (proto is None or p[IP].proto == proto)
    return m


def checksums_ok(pkt):
    """Recompute every checksum with scapy (an independent decoder) and compare."""
    raw = bytes(pkt)
    fresh = Ether(raw)
    for layer in (IP, ICMP, UDP, TCP):
        if layer in fresh:
            del fresh[layer].chksum
    return bytes(Ether(bytes(fresh))) == raw


class Delta:
    """Counters moved by the block: `with Delta(bench) as d: ...; d["ip_csum"] == 1`."""

    def __init__(self, bench):
        self.bench = bench

    def __enter__(self):
        self.before = self.bench.reasons()
        return self

    def __exit__(self, *exc):
        time.sleep(0.3)
        after = self.bench.reasons()
        self.moved = {k: after[k] - self.before[k] for k in after if after[k] != self.before[k]}

    def __getitem__(self, key):
        return self.moved.get(key, 0)


@pytest.fixture(autouse=True)
def clean(bench):
    bench.drain()
    yield


def test_arp_request_for_own_address_is_answered_and_sender_learned(bench):
    bench.w0.send(Ether(src=bench.tmac0, dst="ff:ff:ff:ff:ff:ff") /
                  ARP(op=1, hwsrc=bench.tmac0, psrc="10.1.0.2", pdst="10.1.0.1"))
    r = bench.w0.recv(is_arp(2))
    assert r is not None, "no ARP reply"
    a = parse(r)[ARP]
    assert (a.hwsrc, a.psrc, a.hwdst, a.pdst) == (bench.mac0, "10.1.0.1", bench.tmac0, "10.1.0.2")
    assert parse(r).dst == bench.tmac0
    rows = bench.d.ok("dpip neigh show")["data"]
    assert {"ip": "10.1.0.2", "mac": bench.tmac0, "dev": "dpdk0"}.items() <= \
        next(r for r in rows if r["ip"] == "10.1.0.2").items()


def test_arp_for_foreign_address_goes_to_kni(bench):
    with Delta(bench) as d:
        bench.w0.send(Ether(src=bench.tmac0, dst="ff:ff:ff:ff:ff:ff") /
                      ARP(op=1, hwsrc=bench.tmac0, psrc="10.1.0.2", pdst="10.1.0.99"))
        assert bench.k0.recv(is_arp(1, "10.1.0.99")) is not None
    assert d["arp_foreign_kni"] == 1


def test_icmp_echo_reply_from_data_plane(bench):
    req = bench.eth0() / IP(src="10.1.0.2", dst="10.1.0.1", ttl=9) / ICMP(id=77, seq=3) / Raw(b"x" * 40)
    bench.w0.send(req)
    r = bench.w0.recv(is_ip(dst="10.1.0.2", proto=1))
    assert r is not None, "no echo reply"
    p = parse(r)
    assert p[ICMP].type == 0 and p[ICMP].id == 77 and p[ICMP].seq == 3
    assert p[IP].src == "10.1.0.1" and bytes(p[Raw]) == b"x" * 40
    assert checksums_ok(p)


def test_forwarding_resolves_next_hop_and_decrements_ttl(bench):
    bench.d.ok("dpip neigh del 10.2.0.9 dev dpdk1") if any(
        r["ip"] == "10.2.0.9" for r in bench.d.ok("dpip neigh show")["data"]) else None
    pkt = bench.eth0() / IP(src="10.1.0.2", dst="10.2.0.9", ttl=5) / UDP(sport=1234, dport=53) / Raw(b"q" * 20)
    bench.w0.send(pkt)
    req = bench.w1.recv(is_arp(1, "10.2.0.9"))
    assert req is not None, "LB did not ask for the next hop"
    a = parse(req)[ARP]
    assert a.psrc == "10.2.0.1" and a.hwsrc == bench.mac1
    bench.w1.send(Ether(src=bench.tmac1, dst=bench.mac1) /
                  ARP(op=2, hwsrc=bench.tmac1, psrc="10.2.0.9", hwdst=bench.mac1, pdst="10.2.0.1"))
    out = bench.w1.recv(is_ip(dst="10.2.0.9", proto=17))
    assert out is not None, "held packet not released after ARP reply"
    p = parse(out)
    assert p.dst == bench.tmac1 and p.src == bench.mac1
    assert p[IP].ttl == 4 and checksums_ok(p) and bytes(p[Raw]) == b"q" * 20


def test_static_route_via_gateway(bench):
    bench.d.ok("dpip neigh add 10.2.0.254 lladdr 02:00:00:00:02:54 dev dpdk1")
    bench.d.ok("dpip route add 10.3.0.0/24 via 10.2.0.254 dev dpdk1")
    try:
        bench.w0.send(bench.eth0() / IP(src="10.1.0.2", dst="10.3.0.5", ttl=64) / UDP(sport=5, dport=6))
        out = bench.w1.recv(is_ip(dst="10.3.0.5"))
        assert out is not None
        assert parse(out).dst == "02:00:00:00:02:54" and parse(out)[IP].ttl == 63
        assert checksums_ok(parse(out))
        # the default route (not in the LPM table: rte_lpm has no depth 0)
        bench.d.ok("dpip route add default via 10.2.0.254 dev dpdk1")
        bench.w0.send(bench.eth0() / IP(src="10.1.0.2", dst="198.51.100.7", ttl=64) / UDP())
        out = bench.w1.recv(is_ip(dst="198.51.100.7"))
        assert out is not None and parse(out).dst == "02:00:00:00:02:54"
        bench.d.ok("dpip route del default")
        with Delta(bench) as d:
            bench.w0.send(bench.eth0() / IP(src="10.1.0.2", dst="198.51.100.7") / UDP())
        assert d["no_route"] == 1
    finally:
        bench.d.ok("dpip route del 10.3.0.0/24 dev dpdk1")
        bench.d.ok("dpip neigh del 10.2.0.254 dev dpdk1")


@pytest.fixture
def pinned(bench):
    """10.1.0.8 is the tester on port 0, known without ARP."""
    bench.d.ok(f"dpip neigh add 10.1.0.8 lladdr {bench.tmac0} dev dpdk0")
    yield "10.1.0.8"
    bench.d.ok("dpip neigh del 10.1.0.8")


def icmp_error_for(pkt, type_, code):
    """The ICMP error the LB must send about pkt: its IP header + 8 bytes quoted."""
    def m(f):
        p = Ether(f)
        return (IP in p and ICMP in p and p[ICMP].type == type_ and p[ICMP].code == code and
                bytes(p[ICMP].payload)[:28] == bytes(pkt[IP])[:28])
    return m


def test_ttl_expired_is_dropped_counted_and_answered(bench, pinned):
    pkt = bench.eth0() / IP(src=pinned, dst="10.2.0.9", ttl=1) / UDP(sport=33434, dport=33435)
    with Delta(bench) as d:
        bench.w0.send(pkt)
        err = bench.w0.recv(icmp_error_for(pkt, 11, 0))
        assert bench.w1.recv(is_ip(dst="10.2.0.9"), timeout=0.3) is None
    assert d["ttl_exceeded"] == 1
    assert err is not None, "no ICMP time exceeded (traceroute needs it)"
    p = parse(err)
    assert p[IP].src == "10.1.0.1" and p[IP].dst == pinned and checksums_ok(p)


def test_no_route_is_dropped_counted_and_answered(bench, pinned):
    pkt = bench.eth0() / IP(src=pinned, dst="172.31.9.9") / UDP()
    with Delta(bench) as d:
        bench.w0.send(pkt)
        err = bench.w0.recv(icmp_error_for(pkt, 3, 0))
    assert d["no_route"] == 1
    assert err is not None and checksums_ok(parse(err))


def test_no_icmp_error_about_an_icmp_error(bench, pinned):
    inner = IP(src="10.1.0.1", dst=pinned) / UDP()
    pkt = bench.eth0() / IP(src=pinned, dst="10.2.0.9", ttl=1) / ICMP(type=3, code=1) / inner
    with Delta(bench) as d:
        bench.w0.send(pkt)
        assert bench.w0.recv(is_ip(dst=pinned, proto=1), timeout=0.5) is None
    assert d["ttl_exceeded"] == 1


def test_tcp_to_own_address_goes_to_kni_and_kernel_frames_leave_by_the_port(bench):
    bench.w0.send(bench.eth0() / IP(src="10.1.0.2", dst="10.1.0.1") / TCP(dport=22, flags="S"))
    got = bench.k0.recv(is_ip(dst="10.1.0.1", proto=6))
    assert got is not None and parse(got)[TCP].dport == 22
    # the other way: a frame the kernel writes on dpdk0.kni appears on the wire
    frame = Ether(src=bench.mac0, dst=bench.tmac0) / IP(src="10.1.0.1", dst="10.1.0.2") / UDP(sport=9, dport=9)
    bench.k0.send(frame)
    out = bench.w0.recv(is_ip(dst="10.1.0.2", proto=17))
    assert out is not None and parse(out)[UDP].sport == 9


def test_kni_host_route_delivers_to_kernel(bench):
    bench.d.ok("dpip route add 10.1.0.77/32 dev dpdk0 scope kni_host")
    try:
        bench.w0.send(bench.eth0() / IP(src="10.1.0.2", dst="10.1.0.77") / UDP(dport=179))
        assert bench.k0.recv(is_ip(dst="10.1.0.77")) is not None
    finally:
        bench.d.ok("dpip route del 10.1.0.77/32")


def test_forwarding_off_punts_to_kni(bench):
    # a config section command over one connection: enter the node, switch off, restore
    from rlb.control.client import Client
    with Client(bench.d.instance) as c:
        assert c.call("dataplane")["ok"] and c.call("no forwarding")["ok"]
        try:
            with Delta(bench) as d:
                bench.w0.send(bench.eth0() / IP(src="10.1.0.2", dst="10.2.0.50") / UDP())
                assert bench.k0.recv(is_ip(dst="10.2.0.50")) is not None
            assert d["fwd_disabled_kni"] == 1
        finally:
            assert c.call("forwarding")["ok"]


def test_kni_rate_keeps_bulk_to_its_budget_and_lets_control_frames_pass(bench):
    """`kni-rate 10`: one bulk frame a tick for the kernel (forwarding off: 30 UDP
    frames to a foreign address, the most 2 ticks allow are punted), while every frame of
    the routing and HA protocols is punted (OSPF, VRRP, BFD, BGP, link-local multicast),
    budget or not (packet.pxd, kni_control)."""
    from rlb.control.client import Client
    control = [bench.eth0() / IP(src="10.1.0.2", dst="224.0.0.5", proto=89) / Raw(b"o" * 40),
               bench.eth0() / IP(src="10.1.0.2", dst="10.2.0.50", proto=112, ttl=255) /
               Raw(b"v" * 20),
               bench.eth0() / IP(src="10.1.0.2", dst="10.2.0.50", ttl=255) / UDP(dport=3784),
               bench.eth0() / IP(src="10.1.0.2", dst="10.2.0.50") / TCP(dport=179),
               bench.eth0() / IP(src="10.1.0.2", dst="10.2.0.50") / TCP(sport=179),
               bench.eth0() / IP(src="10.1.0.2", dst="224.0.0.18") / UDP(dport=9)]
    with Client(bench.d.instance) as c:
        assert c.call("dataplane")["ok"] and c.call("no forwarding")["ok"]
        assert c.call("kni-rate 10")["ok"]
        time.sleep(0.25)                   # a worker takes its new budget at its next tick
        try:
            bulk = [bytes(bench.eth0() / IP(src="10.1.0.2", dst="10.2.0.50") /
                          UDP(sport=1000 + i, dport=9)) for i in range(30)]
            with Delta(bench) as d:
                t0 = time.monotonic()
                for frame in bulk:
                    bench.w0.send(frame)
                took = time.monotonic() - t0
                for pkt in control:
                    bench.w0.send(pkt)
                time.sleep(0.3)
            assert d["fwd_disabled_kni"] >= 30
            # a budget of 1 a tick (100 ms) per worker
            assert d["kni_ratelimit"] >= 30 - (took / 0.1 + 2) * bench.workers, (d.moved, took)
            assert d["kni_ratelimit"] > 0
            bench.drain()
            with Delta(bench) as d:
                for pkt in control * 5:                     # budget spent: they still pass
                    bench.w0.send(pkt)
                time.sleep(0.2)
            assert d["kni_ratelimit"] == 0 and d["fwd_disabled_kni"] >= 5 * 4, d.moved
            with Delta(bench) as d:                         # BFD from afar (TTL < 255): bulk
                for _ in range(10):
                    bench.w0.send(bench.eth0() / IP(src="10.1.0.2", dst="10.2.0.50", ttl=64) /
                                  UDP(dport=3784))
            assert d["kni_ratelimit"] >= 10 - 2 * bench.workers, d.moved
        finally:
            assert c.call("kni-rate 10000")["ok"] and c.call("forwarding")["ok"]


def _patch(pkt, offset, value):
    raw = bytearray(bytes(pkt))
    raw[offset] = value
    return bytes(raw)


MALFORMED = [
    # (name, frame builder, counter, goes to kni)
    ("truncated_ip", lambda b: bytes(b.eth0(type=0x0800)) + b"\x45\x00\x00", "truncated", False),
    ("ip_version_6_in_v4", lambda b: b.eth0() / IP(version=6, dst="10.1.0.1") / UDP(), "ip_version", False),
    ("ihl_too_small", lambda b: b.eth0() / IP(ihl=4, dst="10.1.0.1") / UDP(), "ip_hdrlen", False),
    ("ihl_beyond_frame", lambda b: bytes(b.eth0() / IP(ihl=15, dst="10.1.0.1", options=[]))[:40], "ip_hdrlen", False),
    ("totlen_too_big", lambda b: b.eth0() / IP(len=1400, dst="10.1.0.1") / UDP(), "ip_totlen", False),
    ("totlen_below_header", lambda b: b.eth0() / IP(len=12, dst="10.1.0.1") / UDP(), "ip_totlen", False),
    ("bad_ip_checksum", lambda b: b.eth0() / IP(chksum=0x1234, dst="10.1.0.1") / ICMP(), "ip_csum", False),
    ("ip_options", lambda b: b.eth0() / IP(dst="10.1.0.1", options=b"\x94\x04\x00\x00") / ICMP(), "ip_options_kni", True),
    ("unknown_ethertype", lambda b: b.eth0(type=0x88b5) / Raw(b"hello world, unknown protocol"), "ethertype_kni", True),
    ("arp_bad_hlen", lambda b: _patch(Ether(src=b.tmac0, dst="ff:ff:ff:ff:ff:ff") / ARP(pdst="10.1.0.1"), 18, 5), "arp_bad", False),
    ("arp_bad_opcode", lambda b: _patch(Ether(src=b.tmac0, dst="ff:ff:ff:ff:ff:ff") / ARP(pdst="10.1.0.1"), 21, 9), "arp_bad", False),
    ("arp_truncated", lambda b: bytes(Ether(src=b.tmac0, dst="ff:ff:ff:ff:ff:ff", type=0x0806)) + b"\x00\x01\x08\x00", "truncated", False),
    ("other_host_mac", lambda b: Ether(src=b.tmac0, dst="02:11:22:33:44:55") / IP(dst="10.1.0.1") / ICMP(), "l2_other_host", False),
    # transport headers that do not fit their packet (the kernel would drop them too)
    ("tcp_offset_below_5", lambda b: b.eth0() / IP(dst="10.1.0.1") / TCP(dataofs=4), "tcp_hdrlen", False),
    ("tcp_offset_beyond_packet", lambda b: b.eth0() / IP(dst="10.1.0.1") / TCP(dataofs=15) / Raw(b"x" * 20), "tcp_hdrlen", False),
    ("tcp_header_cut", lambda b: b.eth0() / IP(dst="10.1.0.1", len=32, proto=6) / Raw(bytes(TCP())[:12]), "tcp_hdrlen", False),
    ("udp_len_beyond_packet", lambda b: b.eth0() / IP(dst="10.2.0.9") / UDP(len=40) / Raw(b"u" * 8), "udp_len", False),
    ("udp_len_below_header", lambda b: b.eth0() / IP(dst="10.1.0.1") / UDP(len=6) / Raw(b"u" * 8), "udp_len", False),
    ("icmp_short", lambda b: b.eth0() / IP(dst="10.1.0.1", proto=1) / Raw(b"\x08\x00\xf7\xff"), "icmp_len", False),
]


@pytest.mark.parametrize("name,build,counter,kni", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_input_is_counted(bench, name, build, counter, kni):
    frame = bytes(build(bench))
    with Delta(bench) as d:
        bench.w0.send(frame)
        seen_kni = bench.k0.recv(lambda f: f[12:] == frame[12:len(f)] or f[12:14] == frame[12:14] and
                                 f[14:34] == frame[14:34], timeout=0.5)
        reply = bench.w0.recv(is_ip(proto=1), timeout=0.3)
    assert d[counter] == 1, d.moved
    assert (seen_kni is not None) == kni
    assert reply is None, "a malformed packet must not be answered"


def test_fragments_for_us(bench):
    """A fragmented echo request: af_packet sockets hand over the reassembled packet
    (answered in the data plane); a port that sees raw fragments punts them to the
    kernel, which reassembles (counted)."""
    frags = fragment(bench.eth0() / IP(src="10.1.0.2", dst="10.1.0.1") / ICMP(id=5) /
                     Raw(b"f" * 1200), fragsize=600)
    assert len(frags) == 3
    with Delta(bench) as d:
        for f in frags:
            bench.w0.send(f)
        reply = bench.w0.recv(is_ip(dst="10.1.0.2", proto=1), timeout=0.5)
        punted = bench.k0.recv_all(is_ip(dst="10.1.0.1"), timeout=0.3)
    if bench.pmd == "net_af_packet":
        assert reply is not None and len(parse(reply)[Raw]) == 1200 and d["ip_frag_kni"] == 0
    else:
        assert d["ip_frag_kni"] == 3 and len(punted) == 3


def test_a_burst_of_garbage_leaves_the_pool_as_it_was(bench):
    # replies go to a neighbour we pin, so that no packet waits for ARP
    bench.d.ok(f"dpip neigh add 10.1.0.8 lladdr {bench.tmac0} dev dpdk0")
    try:
        time.sleep(0.5)
        before = bench.d.stats()["pool"]["in_use"]
        for i in range(300):
            bench.w0.send(bytes(bench.eth0(type=0x0800)) + bytes([0x45 + (i % 3), 0, 0, i % 256]) * 8)
            bench.w0.send(bench.eth0() / IP(src="10.1.0.8", dst="10.1.0.1", ttl=1 + i % 3) / ICMP(seq=i))
        time.sleep(1.0)
        after = bench.d.stats()["pool"]["in_use"]
        assert after == before, f"mbufs in use went from {before} to {after}"
    finally:
        bench.d.ok("dpip neigh del 10.1.0.8")


def test_unresolved_next_hop_frees_its_held_packets(bench):
    before = bench.reasons()
    pool = bench.d.stats()["pool"]["in_use"]
    for i in range(6):
        bench.w0.send(bench.eth0() / IP(src="10.1.0.2", dst="10.2.0.77") / UDP(sport=1000 + i))
    probes = bench.w1.recv_all(is_arp(1, "10.2.0.77"), timeout=1.5)
    assert probes, "no ARP request for the next hop"
    # 3 probes a second apart (timer granularity 1 s), then the held packets go
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        now = bench.reasons()
        gone = sum(now[k] - before[k] for k in ("neigh_unresolved", "neigh_queue_full"))
        if gone == 6:
            break
        time.sleep(0.25)
    assert gone == 6, "up to 4 held per worker, the rest counted as queue full, all freed"
    assert bench.d.stats()["pool"]["in_use"] == pool


def test_gratuitous_arp_when_an_address_is_added(bench):
    bench.d.ok("dpip addr add 10.1.0.50/24 dev dpdk0")
    try:
        garp = bench.w0.recv(is_arp(1, "10.1.0.50"))
        assert garp is not None, "no gratuitous ARP"
        p = parse(garp)
        assert p.dst == "ff:ff:ff:ff:ff:ff" and p[ARP].psrc == "10.1.0.50"
        assert p[ARP].hwsrc == bench.mac0
    finally:
        bench.d.ok("dpip addr del 10.1.0.50/24 dev dpdk0")


def test_learned_neighbours_age_out_static_ones_stay(bench):
    from rlb.control.client import Client
    bench.d.ok("dpip neigh add 10.1.0.60 lladdr 02:00:00:00:00:60 dev dpdk0")
    with Client(bench.d.instance) as c:
        assert c.call("dataplane")["ok"] and c.call("neigh-timeout 1")["ok"]
        try:
            bench.w0.send(Ether(src=bench.tmac0, dst="ff:ff:ff:ff:ff:ff") /
                          ARP(op=1, hwsrc=bench.tmac0, psrc="10.1.0.3", pdst="10.1.0.1"))
            assert bench.w0.recv(is_arp(2)) is not None
            ips = {r["ip"]: r for r in bench.d.ok("dpip neigh show")["data"]}
            assert ips["10.1.0.3"]["state"] == "REACHABLE"
            time.sleep(3)
            ips = {r["ip"]: r for r in bench.d.ok("dpip neigh show")["data"]}
            assert "10.1.0.3" not in ips
            assert ips["10.1.0.60"]["state"] == "PERMANENT"
        finally:
            assert c.call("neigh-timeout 30")["ok"]
            bench.d.ok("dpip neigh del 10.1.0.60")


def test_the_stats_api_speaks_the_counter_table(bench):
    """Every counter view's keys are rlb/core/counters.py's names, in its order (that a
    drop lands under its reason's name: test_malformed_input_is_counted)."""
    from rlb.core import counters
    data = bench.d.stats()
    assert list(data["reasons"]) == list(counters.REASON.names())
    st = data["ports"][0]["stats"]
    assert [k for k in st if k not in ("kernel_rx", "lost_before_port")] == \
        list(counters.PORT.names())
    dp = bench.d.ok("show dataplane")["data"]
    assert all(set(counters.WORKER.names()) <= set(w) for w in dp["workers"])
    assert set(counters.CONNS.names()) <= set(dp["connections"])
    bench.d.ok("ipvsadm -A -t 10.2.0.100:80 -s rr")
    try:
        bench.d.ok("ipvsadm -a -t 10.2.0.100:80 -r 10.2.0.5:80 -m")
        svc = bench.d.ok("ipvsadm -L -n --stats")["data"]["services"][0]
        assert list(svc["stats"]) == list(counters.SVC.names())
        assert list(svc["dests"][0]["stats"]) == list(counters.DEST.names())
    finally:
        bench.d.ok("ipvsadm -D -t 10.2.0.100:80")


def test_where_the_cycles_go_adds_up(bench, pinned):
    """Each pass of a worker's loop is busy or idle (a read between the two increments
    of one pass may see polls one ahead per worker); the busy ones took the packets."""
    def workers():
        return bench.d.ok("show dataplane")["data"]["workers"]

    before = sum(w["rx_packets"] for w in workers())
    for seq in range(20):
        bench.w0.send(bench.eth0() / IP(src=pinned, dst="10.1.0.1") / ICMP(id=78, seq=seq))
        assert bench.w0.recv(is_ip(dst=pinned, proto=1)) is not None
    rows = workers()
    for w in rows:
        assert 0 <= w["polls"] - (w["busy_polls"] + w["idle_polls"]) <= 1
        assert w["busy_polls"] > 0 and w["idle_polls"] > 0
        assert w["rx_bursts"] <= w["rx_packets"]
        assert w["busy_cycles"] > 0 and w["idle_cycles"] > 0
    assert sum(w["rx_packets"] for w in rows) - before >= 20
    busiest = max(rows, key=lambda w: w["rx_packets"])
    assert busiest["cycles_per_packet"] > 0 and 0 < busiest["busy_share"] < 1
    assert busiest["packets_per_burst"] >= 1
    text = bench.d.ok("show dataplane")["text"]
    assert "cycles/packet" in text and "packets/burst" in text
