"""Random and mutated frames through the real core: no crash, no leaked mbuf; transport
headers that do not fit their packet leave nothing behind, whatever the mode."""
import random
import time

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from support.netns import Wire


def seeds(bench):
    e = bench.eth0
    return [bytes(p) for p in (
        e() / IP(src="10.1.0.8", dst="10.1.0.1") / ICMP() / Raw(b"a" * 32),
        e() / IP(src="10.1.0.8", dst="10.2.0.1", ttl=3) / UDP(sport=1, dport=2) / Raw(b"b" * 16),
        e() / IP(src="10.1.0.8", dst="10.1.0.1", options=b"\x01\x01\x01\x00") / TCP(),
        Ether(src=bench.tmac0, dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="10.1.0.8", pdst="10.1.0.1"),
        e() / IP(src="10.1.0.8", dst="10.1.0.1", flags="MF") / UDP() / Raw(b"c" * 40),
    )]


def mutate(rng, frame):
    f = bytearray(frame)
    for _ in range(rng.randint(1, 6)):
        i = rng.randrange(12, min(len(f), 60))      # keep MACs: reach the parsers
        f[i] = rng.randrange(256)
    if rng.random() < 0.3:
        f = f[:rng.randint(14, len(f))]
    return bytes(f)


def test_thousands_of_bad_frames(bench):
    bench.d.ok(f"dpip neigh add 10.1.0.8 lladdr {bench.tmac0} dev dpdk0")
    try:
        time.sleep(0.3)
        before = bench.d.stats()
        rng = random.Random(2026)
        base = seeds(bench)
        sent = 0
        for i in range(3000):
            if i % 10 == 0:
                frame = bytes(bench.eth0(type=rng.choice([0x0800, 0x0806, 0x86dd, 0x1234]))) + \
                    rng.randbytes(rng.randint(0, 80))
            else:
                frame = mutate(rng, rng.choice(base))
            bench.w0.send(frame)
            sent += 1
            if i % 200 == 0:
                time.sleep(0.01)          # let af_packet's ring keep up
        time.sleep(4.5)                    # held packets for unanswered ARP time out (3 s)
        after = bench.d.stats()
        assert all(w["running"] for w in bench.d.ok("show dataplane")["data"]["workers"])
        got = sum(p["stats"]["rx_pkts"] for p in after["ports"]) - \
            sum(p["stats"]["rx_pkts"] for p in before["ports"])
        # af_packet's fanout holds what looks like an IP fragment for reassembly
        # (PACKET_FANOUT_FLAG_DEFRAG), so mutated headers do not all arrive
        assert got >= sent * (0.75 if bench.pmd == "net_af_packet" else 0.95), \
            f"the core saw {got} of {sent} frames"
        assert after["pool"]["in_use"] == before["pool"]["in_use"]
        # the LB still answers
        bench.drain()
        bench.w0.send(bench.eth0() / IP(src="10.1.0.8", dst="10.1.0.1") / ICMP(id=99))
        assert bench.w0.recv(lambda f: ICMP in Ether(f) and Ether(f)[ICMP].id == 99 and
                             Ether(f)[ICMP].type == 0) is not None
    finally:
        bench.d.ok("dpip neigh del 10.1.0.8")


# ------------------------------------------- transport headers that do not fit

# One service of every mode on the bench's daemon (dpdk0 10.1.0.1/24 towards the
# clients, dpdk1 10.2.0.1/24 towards the servers); every neighbour is static, so a
# frame that got through would leave at once, and nothing is left waiting for ARP.
CLIENT, SNAT_CLIENT, SNAT_DST = "10.1.0.8", "10.1.0.50", "10.2.0.77"
FNAT_VIP, DR_VIP, TUN_VIP, NAT_VIP = "10.1.0.100", "10.1.0.101", "10.1.0.102", "10.1.0.103"
FNAT_RS, DR_RS, TUN_RS, NAT_RS = "10.2.0.2", "10.1.0.20", "10.2.0.3", "10.2.0.4"
LIPS, SNAT_IP = ("10.2.0.200", "10.2.0.201"), "10.2.0.9"
SNAT_MATCH = "src-range=10.1.0.50-10.1.0.50,oif=dpdk1"
MODES = f"""\
dpip addr add {FNAT_VIP}/32 dev dpdk0
ipvsadm -A -t {FNAT_VIP}:80 -s rr
ipvsadm -a -t {FNAT_VIP}:80 -r {FNAT_RS} -b
ipvsadm --add-laddr -z {LIPS[0]} -t {FNAT_VIP}:80 -F dpdk1
ipvsadm -A -u {FNAT_VIP}:53 -s rr
ipvsadm -a -u {FNAT_VIP}:53 -r {FNAT_RS} -b
ipvsadm --add-laddr -z {LIPS[1]} -u {FNAT_VIP}:53 -F dpdk1
dpip addr add {DR_VIP}/32 dev dpdk0
ipvsadm -A -t {DR_VIP}:80 -s rr
ipvsadm -a -t {DR_VIP}:80 -r {DR_RS} -g
dpip addr add {TUN_VIP}/32 dev dpdk0
ipvsadm -A -t {TUN_VIP}:80 -s rr
ipvsadm -a -t {TUN_VIP}:80 -r {TUN_RS} -i
dpip addr add {NAT_VIP}/32 dev dpdk0
ipvsadm -A -t {NAT_VIP}:80 -s rr
ipvsadm -a -t {NAT_VIP}:80 -r {NAT_RS}:8080 -m
ipvsadm -A -u {NAT_VIP}:53 -s rr
ipvsadm -a -u {NAT_VIP}:53 -r {NAT_RS}:53 -m
dpip addr add {SNAT_IP}/32 dev dpdk1 sapool
ipvsadm -A -s rr -H proto=tcp,{SNAT_MATCH}
ipvsadm -a -H proto=tcp,{SNAT_MATCH} -r {SNAT_IP}:0 -J
ipvsadm -A -s rr -H proto=udp,{SNAT_MATCH}
ipvsadm -a -H proto=udp,{SNAT_MATCH} -r {SNAT_IP}:0 -J
ipvsadm -A -s rr -H proto=icmp,{SNAT_MATCH}
ipvsadm -a -H proto=icmp,{SNAT_MATCH} -r {SNAT_IP}:0 -J
"""
WAN_NEIGH = (FNAT_RS, TUN_RS, NAT_RS, SNAT_DST)
LAN_NEIGH = (CLIENT, SNAT_CLIENT, DR_RS)
ADDRS = {CLIENT, SNAT_CLIENT, SNAT_DST, FNAT_VIP, DR_VIP, TUN_VIP, NAT_VIP, FNAT_RS, DR_RS,
         TUN_RS, NAT_RS, SNAT_IP, *LIPS}
# (source, destination, protocols, wire): the flows of the services above
TARGETS = [
    (CLIENT, FNAT_VIP, "tcp udp", 0), (CLIENT, DR_VIP, "tcp", 0), (CLIENT, TUN_VIP, "tcp", 0),
    (CLIENT, NAT_VIP, "tcp udp", 0), (SNAT_CLIENT, SNAT_DST, "tcp udp icmp", 0),
    (FNAT_RS, LIPS[0], "tcp", 1), (FNAT_RS, LIPS[1], "udp", 1),   # towards the local addresses
]
REASON = {"tcp": "tcp_hdrlen", "udp": "udp_len", "icmp": "icmp_len"}


@pytest.fixture
def modes(bench):
    for ip in WAN_NEIGH:
        bench.d.ok(f"dpip neigh add {ip} lladdr {bench.tmac1} dev dpdk1")
    for ip in LAN_NEIGH:
        bench.d.ok(f"dpip neigh add {ip} lladdr {bench.tmac0} dev dpdk0")
    for line in MODES.splitlines():
        bench.d.ok(line)
    k1 = Wire(bench.d.ns, "dpdk1.kni")
    wires = {"tp0": bench.w0, "tp1": bench.w1, "dpdk0.kni": bench.k0, "dpdk1.kni": k1}
    try:
        time.sleep(0.3)
        for w in wires.values():
            w.drain()
        yield wires
    finally:
        k1.close()
        bench.d.ok("ipvsadm -C")
        for vip in (FNAT_VIP, DR_VIP, TUN_VIP, NAT_VIP):
            bench.d.ok(f"dpip addr del {vip}/32 dev dpdk0")
        bench.d.ok(f"dpip addr del {SNAT_IP}/32 dev dpdk1")
        for ip in WAN_NEIGH + LAN_NEIGH:
            bench.d.ok(f"dpip neigh del {ip}")


def ours(frame):
    """A frame about this test's flows: IPv4 from or to one of its addresses, or ARP."""
    p = Ether(frame)
    if ARP in p:
        return p[ARP].pdst in ADDRS or p[ARP].psrc in ADDRS
    return IP in p and (p[IP].src in ADDRS or p[IP].dst in ADDRS)


def bad_l4(rng, proto, src, dst):
    """An IPv4 packet whose transport header does not fit it, varied at random."""
    sport, dport = rng.randint(1024, 65535), 53 if proto == "udp" else 80
    payload = Raw(rng.randbytes(rng.randint(0, 48)))
    if proto == "tcp":
        opts = [("NOP", None)] * rng.choice((0, 4, 8, 12))
        size = 20 + len(opts) + len(payload)
        if rng.random() < 0.2:       # the IP length ends inside the 20-byte header
            head = bytes(TCP(sport=sport, dport=dport, flags="S"))
            return IP(src=src, dst=dst, proto=6) / Raw(head[:rng.randint(0, 19)])
        # below 5 words, or past the end of the segment
        offset = rng.choice([*range(5), *(k for k in range(5, 16) if k * 4 > size)])
        return IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, dataofs=offset,
                                          flags=rng.choice(("S", "A", "PA", "SA", "F", "R")),
                                          options=opts) / payload
    if proto == "udp":
        size = 8 + len(payload)
        length = rng.choice([n for n in range(0, size + 64) if n != size] + [65535])
        if rng.random() < 0.5:
            return IP(src=src, dst=dst, proto=17) / Raw(rng.randbytes(rng.randint(0, 7)))
        return IP(src=src, dst=dst) / UDP(sport=sport, dport=dport, len=length) / payload
    return IP(src=src, dst=dst, proto=1) / Raw(b"\x08\x00" + rng.randbytes(rng.randint(0, 5)))


def test_bad_transport_headers_leave_no_trace_in_any_mode(bench, modes):
    """TCP data offset below 5 or beyond the packet, a UDP length other than the
    payload's, ICMP shorter than 8 bytes, to a service of every mode and to the local
    addresses: nothing leaves any port or reaches the kernel, nothing is scheduled,
    no connection and no local port taken, each counted under its reason."""
    rng = random.Random(9)
    macs = {0: (bench.tmac0, bench.mac0), 1: (bench.tmac1, bench.mac1)}
    sent = dict.fromkeys(REASON.values(), 0)
    before = bench.d.stats()
    for i in range(1200):
        src, dst, protos, wire = TARGETS[i % len(TARGETS)]
        proto = rng.choice(protos.split())
        pkt = bad_l4(rng, proto, src, dst)
        tmac, lbmac = macs[wire]
        (bench.w0 if wire == 0 else bench.w1).send(Ether(src=tmac, dst=lbmac) / pkt)
        sent[REASON[proto]] += 1
        if i % 100 == 0:
            time.sleep(0.01)
    time.sleep(1)
    leaked = {name: [Ether(f).summary() for f in w.recv_all(ours, timeout=0.2)]
              for name, w in modes.items()}
    assert not any(leaked.values()), leaked
    after = bench.d.stats()
    moved = {k: after["reasons"][k] - before["reasons"][k] for k in after["reasons"]
             if after["reasons"][k] != before["reasons"][k]}
    assert moved == sent, f"counted {moved}, sent {sent}"
    assert after["pool"]["in_use"] == before["pool"]["in_use"]
    assert bench.d.ok("ipvsadm -lnc")["data"]["connections"] == []
    assert all(la["conns"] == 0 and la["conflicts"] == 0
               for row in bench.d.ok("ipvsadm -G")["data"] for la in row["laddrs"])
    pools = [a for a in bench.d.ok("dpip addr show")["data"] if a["sapool"]]
    assert len(pools) == 3 and all(a["sa_used"] == 0 for a in pools), pools
    stats = bench.d.ok("ipvsadm -ln --stats")["data"]["services"]
    assert all(s["stats"]["conns"] == s["stats"]["inpkts"] == 0 for s in stats), stats

    # the same flows with sound headers do go through: the wires were listening
    for src, dst, wire, out, lb in ((CLIENT, FNAT_VIP, 0, "tp1", LIPS[0]),
                                    (CLIENT, DR_VIP, 0, "tp0", None),
                                    (CLIENT, TUN_VIP, 0, "tp1", TUN_RS),
                                    (CLIENT, NAT_VIP, 0, "tp1", NAT_RS),
                                    (SNAT_CLIENT, SNAT_DST, 0, "tp1", SNAT_IP)):
        bench.w0.send(bench.eth0() / IP(src=src, dst=dst) / TCP(sport=40000, dport=80, flags="S"))
        seen = modes[out].recv(lambda f: ours(f) and TCP in Ether(f) and
                               Ether(f)[TCP].flags == "S", timeout=2)
        assert seen is not None, f"a sound SYN to {dst} did not leave by {out}"
        if lb is not None:
            assert lb in (Ether(seen)[IP].src, Ether(seen)[IP].dst), Ether(seen).summary()
