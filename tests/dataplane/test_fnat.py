"""FNAT through the real core, driven by the tutorial's commands: rewrites both ways,
TOA, the LVS state machine, schedulers, weight 0, deleted servers, limits, two workers.

The tester plays the client on dpdk1's wire (tp1) and both real servers on dpdk0's
wire (tp0); neighbours are static so every frame is deterministic."""
import time

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from support.netns import Daemon, Wire, del_ns, fnat_two_port, make_ns, sh

NS = "rlbt-fnat"
VIP, LIP, CLIENT = "10.0.0.100", "192.168.100.200", "10.0.0.48"
RS = ("192.168.100.2", "192.168.100.3")


class Fnat:
    def __init__(self, d, workers):
        self.d, self.workers = d, workers
        self.rs = Wire(NS, "tp0")
        self.cl = Wire(NS, "tp1")
        mac = lambda dev: sh("cat", f"/sys/class/net/{dev}/address", ns=NS).stdout.strip()
        self.lb_lan, self.lb_wan = mac("dp0"), mac("dp1")
        self.rs_mac, self.cl_mac = mac("tp0"), mac("tp1")

    def client(self, sport, flags="S", seq=1000, ack=0, payload=b"", dport=80, proto="tcp"):
        l4 = TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack) if proto == "tcp" \
            else UDP(sport=sport, dport=dport)
        p = Ether(src=self.cl_mac, dst=self.lb_wan) / IP(src=CLIENT, dst=VIP) / l4
        return p / Raw(payload) if payload else p

    def server(self, seen, flags="SA", seq=5000, ack=None, payload=b""):
        """The reply a real server sends to what it saw (swapped addresses and ports)."""
        ip = seen[IP]
        if TCP in seen:
            l4 = TCP(sport=seen[TCP].dport, dport=seen[TCP].sport, flags=flags, seq=seq,
                     ack=seen[TCP].seq + 1 if ack is None else ack)
        else:
            l4 = UDP(sport=seen[UDP].dport, dport=seen[UDP].sport)
        p = Ether(src=self.rs_mac, dst=self.lb_lan) / IP(src=ip.dst, dst=ip.src) / l4
        return p / Raw(payload) if payload else p

    def to_rs(self, match=lambda p: True, timeout=2):
        f = self.rs.recv(lambda f: IP in Ether(f) and Ether(f)[IP].src == LIP and match(Ether(f)),
                         timeout=timeout)
        return Ether(f) if f else None

    def to_client(self, match=lambda p: True, timeout=2):
        f = self.cl.recv(lambda f: IP in Ether(f) and Ether(f)[IP].dst == CLIENT and match(Ether(f)),
                         timeout=timeout)
        return Ether(f) if f else None

    def handshake(self, sport):
        self.cl.send(self.client(sport, "S", seq=100))
        syn = self.to_rs(lambda p: TCP in p and p[TCP].flags == "S")
        assert syn is not None, "SYN did not reach a real server"
        self.rs.send(self.server(syn, "SA", seq=9000))
        sa = self.to_client(lambda p: TCP in p and p[TCP].dport == sport)
        assert sa is not None, "SYN-ACK did not reach the client"
        self.cl.send(self.client(sport, "A", seq=101, ack=9001))
        ack = self.to_rs(lambda p: TCP in p and p[TCP].flags == "A" and p[TCP].sport == syn[TCP].sport)
        assert ack is not None
        return syn, sa, ack

    def reasons(self):
        return self.d.stats()["reasons"]

    def conns(self):
        return self.d.ok("ipvsadm -lnc")["data"]["connections"]

    def close(self):
        self.rs.close()
        self.cl.close()


@pytest.fixture(scope="module", params=[1, 2], ids=["1worker", "2workers"])
def fnat(request, tmp_path_factory):
    workers = request.param
    make_ns(NS, [("dp0", "tp0"), ("dp1", "tp1")])
    mac = lambda dev: sh("cat", f"/sys/class/net/{dev}/address", ns=NS).stdout.strip()
    conf = (fnat_two_port(workers, "conn-table-size 64") +        # the tutorial's lines
            f"dpip neigh add 192.168.100.2 lladdr {mac('tp0')} dev dpdk0\n"
            f"dpip neigh add 192.168.100.3 lladdr {mac('tp0')} dev dpdk0\n"
            f"dpip neigh add 10.0.0.48 lladdr {mac('tp1')} dev dpdk1\n")
    d = Daemon(NS, "rlbt-fnat", conf, tmp_path_factory.mktemp("fnat")).start()
    f = Fnat(d, workers)
    try:
        yield f
    finally:
        f.close()
        rc = d.stop()
        del_ns(NS)
        assert rc == 0, d.log.read_text()


@pytest.fixture(autouse=True)
def fresh(fnat):
    fnat.rs.drain()
    fnat.cl.drain()
    yield


def checksums_ok(p):
    raw = bytes(p)
    fresh = Ether(raw)
    for layer in (IP, TCP, UDP):
        if layer in fresh:
            del fresh[layer].chksum
    return bytes(Ether(bytes(fresh))) == raw


def toa(p):
    for kind, value in p[TCP].options:
        if kind == 254:
            return value
    return None


def test_syn_rewritten_with_toa_and_reply_restored(fnat):
    syn, sa, ack = fnat.handshake(40001)
    assert syn[IP].src == LIP and syn[IP].dst in RS and syn[TCP].dport == 80
    assert syn[TCP].sport % fnat.workers in range(fnat.workers) and syn[TCP].sport >= 1025
    assert syn.dst == fnat.rs_mac and syn.src == fnat.lb_lan
    assert toa(syn) == (40001).to_bytes(2, "big") + bytes([10, 0, 0, 48])
    assert checksums_ok(syn)
    assert sa[IP].src == VIP and sa[TCP].sport == 80 and sa[TCP].dport == 40001
    assert sa.src == fnat.lb_wan and sa.dst == fnat.cl_mac and checksums_ok(sa)
    # the first ACK carries TOA too (for the LVS toa kernel module); later ones do not
    assert toa(ack) == toa(syn) and checksums_ok(ack)
    fnat.cl.send(fnat.client(40001, "PA", seq=101, ack=9001, payload=b"GET / HTTP/1.0\r\n\r\n"))
    data = fnat.to_rs(lambda p: Raw in p)
    assert data is not None and toa(data) is None and bytes(data[Raw]).startswith(b"GET")
    assert checksums_ok(data)
    rows = [c for c in fnat.conns() if c["cport"] == 40001]
    assert len(rows) == 1 and rows[0]["state"] == "ESTABLISHED"


def test_server_side_gets_its_own_isn_and_timestamp_clock(fnat):
    """A fresh ISN and timestamp clock per flow (RFC 6528, RFC 7323 5.4), so a real
    server in TIME_WAIT for a reused LIP:lport takes the SYN; acknowledgements, TSecr
    and SACK blocks come back in the client's own numbers."""
    fnat.cl.send(Ether(src=fnat.cl_mac, dst=fnat.lb_wan) / IP(src=CLIENT, dst=VIP) /
                 TCP(sport=40100, dport=80, flags="S", seq=1000,
                     options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (12345, 0))]))
    syn = fnat.to_rs(lambda p: TCP in p and p[TCP].flags == "S")
    assert syn is not None and checksums_ok(syn)
    delta = (syn[TCP].seq - 1000) % 2**32
    assert delta != 0
    tsval = dict(syn[TCP].options)["Timestamp"][0]
    assert tsval != 12345 and ("MSS", 1460) in syn[TCP].options and toa(syn) is not None
    sa = fnat.server(syn, "SA", seq=7000)
    sa[TCP].options = [("Timestamp", (555, tsval)),
                       ("SAck", (syn[TCP].seq + 1, syn[TCP].seq + 1))]
    fnat.rs.send(sa)
    back = fnat.to_client(lambda p: TCP in p and p[TCP].dport == 40100)
    assert back is not None and checksums_ok(back)
    assert back[TCP].ack == 1001                      # the client's own numbers
    opts = dict(back[TCP].options)
    assert opts["SAck"] == (1001, 1001) and opts["Timestamp"] == (555, 12345)
    fnat.cl.send(Ether(src=fnat.cl_mac, dst=fnat.lb_wan) / IP(src=CLIENT, dst=VIP) /
                 TCP(sport=40100, dport=80, flags="A", seq=1001, ack=7001,
                     options=[("NOP", None), ("NOP", None), ("Timestamp", (12346, 555))]))
    ack = fnat.to_rs(lambda p: TCP in p and p[TCP].flags == "A" and p[TCP].sport == syn[TCP].sport)
    assert ack is not None and ack[TCP].seq == (1001 + delta) % 2**32 and checksums_ok(ack)
    assert dict(ack[TCP].options)["Timestamp"] == ((tsval + 1) % 2**32, 555)


def test_round_robin_alternates_real_servers(fnat):
    seen = []
    for port in range(41000, 41006):
        fnat.cl.send(fnat.client(port, "S"))
        syn = fnat.to_rs(lambda p: TCP in p and p[TCP].flags == "S")
        assert syn is not None
        seen.append(syn[IP].dst)
    # one turn shared by the workers: strict alternation whoever sees the SYN
    assert seen[0::2] == [seen[0]] * 3 and seen[1::2] == [seen[1]] * 3 and seen[0] != seen[1]


def test_retransmitted_syn_keeps_its_connection(fnat):
    fnat.cl.send(fnat.client(42000, "S", seq=7))
    first = fnat.to_rs(lambda p: TCP in p and p[TCP].flags == "S")
    fnat.cl.send(fnat.client(42000, "S", seq=7))
    again = fnat.to_rs(lambda p: TCP in p and p[TCP].flags == "S")
    assert (first[IP].dst, first[TCP].sport) == (again[IP].dst, again[TCP].sport)
    assert len([c for c in fnat.conns() if c["cport"] == 42000]) == 1


def test_fin_both_ways_then_close(fnat):
    syn, _, _ = fnat.handshake(43000)
    fnat.cl.send(fnat.client(43000, "FA", seq=101, ack=9001))
    fin = fnat.to_rs(lambda p: TCP in p and "F" in str(p[TCP].flags))
    assert fin is not None
    fnat.rs.send(fnat.server(fin, "FA", seq=9001, ack=102))
    assert fnat.to_client(lambda p: TCP in p and "F" in str(p[TCP].flags)) is not None
    fnat.cl.send(fnat.client(43000, "A", seq=102, ack=9002))
    states = [c["state"] for c in fnat.conns() if c["cport"] == 43000]
    assert states and states[0] in ("TIME_WAIT", "CLOSE", "LAST_ACK", "CLOSE_WAIT", "FIN_WAIT")


def test_rst_moves_to_close(fnat):
    fnat.handshake(43100)
    fnat.cl.send(fnat.client(43100, "R", seq=101))
    assert fnat.to_rs(lambda p: TCP in p and "R" in str(p[TCP].flags)) is not None
    rows = [c for c in fnat.conns() if c["cport"] == 43100]
    assert rows and rows[0]["state"] == "CLOSE" and rows[0]["expires"] <= 3


def test_segments_without_connection_and_other_ports_are_dropped(fnat):
    before = fnat.reasons()
    fnat.cl.send(fnat.client(44000, "A", seq=5, ack=5))            # no SYN first
    fnat.cl.send(fnat.client(44001, "S", dport=8080))              # VIP, no such service
    fnat.cl.send(fnat.client(44002, "FA"))
    assert fnat.to_rs(timeout=0.5) is None
    time.sleep(0.2)
    after = fnat.reasons()
    assert after["conn_miss"] - before["conn_miss"] == 2
    assert after["no_service"] - before["no_service"] == 1


def test_udp_service(fnat):
    fnat.d.ok("ipvsadm -A -u 10.0.0.100:53 -s rr")
    fnat.d.ok("ipvsadm -a -u 10.0.0.100:53 -r 192.168.100.2 -b")
    fnat.d.ok("ipvsadm --add-laddr -z 192.168.100.200 -u 10.0.0.100:53 -F dpdk0")
    try:
        fnat.cl.send(fnat.client(45000, proto="udp", dport=53) / Raw(b"query"))
        q = fnat.to_rs(lambda p: UDP in p)
        assert q is not None and q[IP].dst == "192.168.100.2" and q[UDP].dport == 53
        assert checksums_ok(q)
        fnat.rs.send(fnat.server(q) / Raw(b"answer"))
        a = fnat.to_client(lambda p: UDP in p)
        assert a is not None and a[IP].src == VIP and a[UDP].sport == 53 and a[UDP].dport == 45000
        assert checksums_ok(a) and bytes(a[Raw]) == b"answer"
    finally:
        fnat.d.ok("ipvsadm -D -u 10.0.0.100:53")


def test_service_without_local_address_counts_drops(fnat):
    fnat.d.ok("ipvsadm -A -t 10.0.0.100:81 -s rr")
    fnat.d.ok("ipvsadm -a -t 10.0.0.100:81 -r 192.168.100.2 -b")
    try:
        before = fnat.reasons()["no_laddr"]
        fnat.cl.send(fnat.client(46000, "S", dport=81))
        assert fnat.to_rs(timeout=0.5) is None
        assert fnat.reasons()["no_laddr"] == before + 1
        deadline = time.monotonic() + 6          # the daemon says why, in its log
        while "no local address" not in fnat.d.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "10.0.0.100:81" in fnat.d.log.read_text().split("no local address")[0][-200:]
    finally:
        fnat.d.ok("ipvsadm -D -t 10.0.0.100:81")


def test_weight_zero_quiesces_and_delete_drains(fnat):
    syn, _, _ = fnat.handshake(47000)
    busy = syn[IP].dst
    other = RS[1] if busy == RS[0] else RS[0]
    fnat.d.ok(f"ipvsadm -e -t 10.0.0.100:80 -r {busy} -b -w 0")
    try:
        for port in range(47001, 47005):
            fnat.cl.send(fnat.client(port, "S"))
            s = fnat.to_rs(lambda p: TCP in p and p[TCP].flags == "S")
            assert s is not None and s[IP].dst == other, "weight 0 must take no new flow"
        # the old flow still goes through
        fnat.cl.send(fnat.client(47000, "PA", seq=101, ack=9001, payload=b"still here"))
        assert fnat.to_rs(lambda p: Raw in p and p[IP].dst == busy) is not None
    finally:
        fnat.d.ok(f"ipvsadm -e -t 10.0.0.100:80 -r {busy} -b -w 1")
    # deleting the server drains it, as LVS does (a keepalived reload that drops a
    # server must not cut its connections): its flow goes on, new ones go elsewhere
    before = fnat.reasons()["dest_gone"]
    fnat.d.ok(f"ipvsadm -d -t 10.0.0.100:80 -r {busy}")
    try:
        fnat.cl.send(fnat.client(47000, "PA", seq=111, ack=9001, payload=b"still?"))
        assert fnat.to_rs(lambda p: Raw in p and p[IP].dst == busy) is not None
        assert fnat.reasons()["dest_gone"] == before
        assert [c for c in fnat.conns() if c["cport"] == 47000]
        fnat.cl.send(fnat.client(47010, "S"))
        s = fnat.to_rs(lambda p: TCP in p and p[TCP].flags == "S")
        assert s is not None and s[IP].dst == other, "a deleted server takes no new flow"
    finally:
        fnat.d.ok(f"ipvsadm -a -t 10.0.0.100:80 -r {busy} -b")


def test_timeouts_expire_connections(fnat):
    fnat.d.ok("ipvsadm --set 2 2 2")
    try:
        fnat.handshake(48000)
        assert [c for c in fnat.conns() if c["cport"] == 48000]
        time.sleep(3.5)
        assert not [c for c in fnat.conns() if c["cport"] == 48000]
    finally:
        fnat.d.ok("ipvsadm --set 90 7 300")


def test_floods_and_stray_segments_leave_the_table_sound(fnat):
    """RST and FIN floods for flows that do not exist, out-of-window segments and
    retransmitted SYNs for one that does: counted, never a new entry, the real flow
    intact, no mbuf lost."""
    syn, _, _ = fnat.handshake(51000)
    time.sleep(0.2)
    pool = fnat.d.stats()["pool"]["in_use"]
    before = fnat.reasons()["conn_miss"]
    for i in range(300):
        fnat.cl.send(fnat.client(52000 + i, "R" if i % 2 else "FA", seq=i, ack=i))
        if i % 50 == 0:
            time.sleep(0.01)
    for i in range(20):                      # way out of window, on the real flow
        fnat.cl.send(fnat.client(51000, "A", seq=0xF0000000 + i, ack=0x7000000))
    for _ in range(5):                       # the SYN again and again
        fnat.cl.send(fnat.client(51000, "S", seq=100))
    time.sleep(0.5)
    assert fnat.reasons()["conn_miss"] - before == 300
    rows = [c for c in fnat.conns() if c["cport"] == 51000]
    assert len(rows) == 1
    assert not [c for c in fnat.conns() if 52000 <= c["cport"] < 52300], "a flood made entries"
    fnat.rs.drain()
    fnat.cl.send(fnat.client(51000, "PA", seq=101, ack=9001, payload=b"after the flood"))
    data = fnat.to_rs(lambda p: Raw in p and bytes(p[Raw]) == b"after the flood")
    assert data is not None and data[TCP].sport == syn[TCP].sport
    assert fnat.d.stats()["pool"]["in_use"] == pool


def test_vip_miss_to_kni_and_entry_size(fnat):
    from rlb.control.client import Client
    k = Wire(NS, "dpdk1.kni")
    try:
        with Client(fnat.d.instance) as c:
            assert c.call("dataplane")["ok"] and c.call("vip-miss-to-kni")["ok"]
            fnat.cl.send(fnat.client(53000, "S", dport=8443))
            assert k.recv(lambda f: TCP in Ether(f) and Ether(f)[TCP].dport == 8443) is not None
            assert c.call("no vip-miss-to-kni")["ok"]
    finally:
        k.close()
    conns = fnat.d.ok("show dataplane")["data"]["connections"]
    assert conns["entry_bytes"] + conns["hash_bytes"] <= 256      # the goal
    assert conns["capacity"] == 64 * fnat.workers


def test_many_handshakes_complete_with_every_worker_count(fnat):
    """With two workers, replies to LIP:lport can land on the other worker (af_packet
    fans out by flow hash): they must be steered to the owner."""
    for port in range(50000, 50020):
        fnat.handshake(port)
    assert len([c for c in fnat.conns() if 50000 <= c["cport"] < 50020]) == 20


def test_table_full_drops_new_flows_and_keeps_old_ones(fnat):
    """Last in the module: it leaves the table full of half-open flows (SYN_RECV: 30 s)."""
    fnat.d.ok("ipvsadm --set 2 2 2")
    time.sleep(3.5)                                  # let earlier tests' flows expire
    fnat.d.ok("ipvsadm --set 90 7 300")
    syn, _, _ = fnat.handshake(49000)
    before = fnat.reasons()["conn_full"]
    for port in range(49001, 49001 + 64 * fnat.workers + 8):
        fnat.cl.send(fnat.client(port, "S"))
        if port % 16 == 0:
            time.sleep(0.02)
    time.sleep(0.5)
    assert fnat.reasons()["conn_full"] > before
    fnat.cl.send(fnat.client(49000, "PA", seq=101, ack=9001, payload=b"old flow"))
    assert fnat.to_rs(lambda p: Raw in p and bytes(p[Raw]) == b"old flow") is not None
    fnat.d.ok("ipvsadm --set 1 1 1")
    time.sleep(2.5)
    fnat.d.ok("ipvsadm --set 90 7 300")
