"""The passive check (DPVS's --dest-check) through the real core: per real server, the
connections it answered, never answered (TCP SYN, UDP), refused with a reset, and the run
of failures since its last answer, as `ipvsadm -ln --stats | json` shows them.

The tester plays the client on dpdk1's wire (tp1) and the real servers on dpdk0's (tp0):
FNAT TCP :80 and UDP :53 to RS1, DR :81 to RS2 (whose answers never pass the LB, so
it has no passive counters). A SYN lives SYN_RECV's 30 s before it counts as unanswered
(no setting shortens it), so the unanswered cases share one wait."""
import time

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from rlb.lab import scripts
from rlb.lab.topologies import RS1, RS2
from support.netns import Daemon, Wire, del_ns, fnat_two_port, lines, make_ns, sh

NS = "rlbt-passive"
VIP, LIP, CLIENT = "10.0.0.100", "192.168.100.200", "10.0.0.48"
PASSIVE = ("answered", "unanswered", "refused", "fails_in_row", "answered_ago", "failed_ago")
SYN_RECV = 30                  # consts.DEFAULT_TIMEOUTS, seconds


class Lab:
    def __init__(self, d, workers):
        self.d, self.workers = d, workers
        self.rs, self.cl = Wire(NS, "tp0"), Wire(NS, "tp1")
        mac = lambda dev: sh("cat", f"/sys/class/net/{dev}/address", ns=NS).stdout.strip()
        self.lb_lan, self.lb_wan = mac("dp0"), mac("dp1")
        self.rs_mac, self.cl_mac = mac("tp0"), mac("tp1")

    def client(self, sport, dport=80, flags="S", seq=100, ack=0, udp=False):
        l4 = UDP(sport=sport, dport=dport) / Raw(b"q") if udp else \
            TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack)
        self.cl.send(Ether(src=self.cl_mac, dst=self.lb_wan) / IP(src=CLIENT, dst=VIP) / l4)

    def to_rs(self, match):
        f = self.rs.recv(lambda f: IP in Ether(f) and match(Ether(f)), timeout=2)
        assert f is not None, "nothing reached the real server"
        return Ether(f)

    def reply(self, seen, flags="SA"):
        """What the real server sends back to a packet it saw."""
        ip = seen[IP]
        l4 = UDP(sport=seen[UDP].dport, dport=seen[UDP].sport) / Raw(b"a") if UDP in seen \
            else TCP(sport=seen[TCP].dport, dport=seen[TCP].sport, flags=flags, seq=9000,
                     ack=seen[TCP].seq + 1)
        self.rs.send(Ether(src=self.rs_mac, dst=self.lb_lan) / IP(src=ip.dst, dst=ip.src) / l4)
        f = self.cl.recv(lambda f: IP in Ether(f) and Ether(f)[IP].dst == CLIENT, timeout=2)
        assert f is not None, "the answer did not reach the client"

    def syn(self, sport, dport=80):
        self.client(sport, dport)
        return self.to_rs(lambda p: TCP in p and p[TCP].flags == "S" and p[TCP].dport == dport)

    def datagram(self, sport):
        self.client(sport, 53, udp=True)
        return self.to_rs(lambda p: UDP in p and p[IP].src == LIP and p[UDP].dport == 53)

    def dest(self, port):
        """The stats of the one real server of the service on VIP:port."""
        for svc in self.d.ok("ipvsadm -ln --stats")["data"]["services"]:
            if svc["vip"] == VIP and svc["port"] == port:
                (d,) = svc["dests"]
                return d["stats"]
        raise AssertionError(f"no service {VIP}:{port}")

    def close(self):
        self.rs.close()
        self.cl.close()


@pytest.fixture(scope="module", params=[1, 2], ids=["1worker", "2workers"])
def lab(request, tmp_path_factory):
    workers = request.param
    make_ns(NS, [("dp0", "tp0"), ("dp1", "tp1")])
    mac = lambda dev: sh("cat", f"/sys/class/net/{dev}/address", ns=NS).stdout.strip()
    conf = (fnat_two_port(workers, "conn-table-size 64", servers=(RS1,)) +
            lines(scripts.fnat(VIP, net=False, udp=True, vport=53, servers=(RS1,)),
                  ("dpip addr add 192.168.100.1/24 dev dpdk0",),     # DR: on-link with RS2
                  scripts.dr(VIP, net=False, vport=81, servers=(RS2,))) +
            "ipvsadm --set 0 0 2\n" +                                # UDP flows: 2 s
            f"dpip neigh add {RS1} lladdr {mac('tp0')} dev dpdk0\n"
            f"dpip neigh add {RS2} lladdr {mac('tp0')} dev dpdk0\n"
            f"dpip neigh add {CLIENT} lladdr {mac('tp1')} dev dpdk1\n")
    d = Daemon(NS, NS, conf, tmp_path_factory.mktemp("passive")).start()
    lab = Lab(d, workers)
    try:
        yield lab
    finally:
        lab.close()
        rc = d.stop()
        del_ns(NS)
        assert rc == 0, d.log.read_text()


@pytest.fixture(autouse=True)
def fresh(lab):
    lab.rs.drain()
    lab.cl.drain()
    yield


def wait_for(check, seconds):
    end = time.monotonic() + seconds
    while not check() and time.monotonic() < end:
        time.sleep(0.5)
    return check()


def test_unanswered_counted_at_expiry_answered_not(lab):
    before = lab.dest(80)
    assert [before[k] for k in PASSIVE] == [0, 0, 0, 0, None, None]
    # TCP: one answered connection, closed by the client's reset (CLOSE: it ends soon,
    # within the wait below, and must not count), then three SYNs nobody answers
    seen = lab.syn(40000)
    lab.reply(seen)
    lab.client(40000, flags="R", seq=101)
    answered = lab.dest(80)
    assert answered["answered"] == 1 and answered["fails_in_row"] == 0
    assert 0 <= answered["answered_ago"] < 2 and answered["failed_ago"] is None
    for sport in (40001, 40002, 40003):
        lab.syn(sport)
    # UDP: one datagram answered, two not
    lab.reply(lab.datagram(41000))
    lab.datagram(41001)
    lab.datagram(41002)
    # DR: forwarded, but its answers would not pass the LB: nothing to count
    lab.client(42000, dport=81)
    lab.to_rs(lambda p: TCP in p and p[IP].dst == VIP and p[TCP].dport == 81)
    time.sleep(0.5)
    assert lab.dest(80)["unanswered"] == 0            # a SYN is not unanswered yet

    udp = lab.dest(53)
    assert wait_for(lambda: lab.dest(53)["unanswered"] == 2, 10), lab.dest(53)
    udp = lab.dest(53)
    assert (udp["answered"], udp["refused"], udp["fails_in_row"]) == (1, 0, 2)
    assert udp["failed_ago"] < 5 and udp["answered_ago"] >= udp["failed_ago"]

    assert wait_for(lambda: lab.dest(80)["unanswered"] == 3, SYN_RECV + 10), lab.dest(80)
    tcp = lab.dest(80)
    assert (tcp["answered"], tcp["unanswered"], tcp["refused"], tcp["fails_in_row"]) == \
        (1, 3, 0, 3)
    assert tcp["failed_ago"] < 5 and tcp["answered_ago"] > SYN_RECV - 5
    assert tcp["conns"] == 4 and lab.dest(53)["conns"] == 3

    dr = lab.dest(81)
    assert dr["conns"] == 1 and dr["inpkts"] == 1
    assert all(dr[k] is None for k in PASSIVE), dr      # n/a, not 0

    # an answer ends the run, on whichever worker it comes
    lab.reply(lab.syn(40010))
    tcp = lab.dest(80)
    assert (tcp["answered"], tcp["unanswered"], tcp["fails_in_row"]) == (2, 3, 0)
    assert tcp["answered_ago"] < 2
    lab.reply(lab.datagram(41010))
    assert lab.dest(53)["fails_in_row"] == 0


def test_reset_first_is_refused(lab):
    before = lab.dest(80)
    lab.reply(lab.syn(43000), flags="RA")             # nothing listening on the port
    after = lab.dest(80)
    assert after["refused"] == before["refused"] + 1
    assert after["answered"] == before["answered"]
    assert after["fails_in_row"] == before["fails_in_row"] + 1
    assert after["failed_ago"] < 2
    # a reset after the SYN-ACK is an answered connection closing, not a refusal
    seen = lab.syn(43001)
    lab.reply(seen)
    lab.rs.send(Ether(src=lab.rs_mac, dst=lab.lb_lan) /
                IP(src=seen[IP].dst, dst=seen[IP].src) /
                TCP(sport=seen[TCP].dport, dport=seen[TCP].sport, flags="R", seq=9001))
    time.sleep(0.3)
    last = lab.dest(80)
    assert (last["refused"], last["answered"], last["fails_in_row"]) == \
        (after["refused"], after["answered"] + 1, 0)


def test_text_view_unchanged(lab):
    """The passive counters are in `| json` only: ipvsadm's columns stay ipvsadm's."""
    text = lab.d.ok("ipvsadm -ln --stats")["text"]
    rows = [line.split() for line in text.splitlines()
            if line.startswith("  ->") and "RemoteAddress" not in line]
    assert len(rows) == 3 and all(len(r) == 7 for r in rows), text      # -> addr + 5
    assert "nswered" not in text and "efused" not in text
