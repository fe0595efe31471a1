"""The data plane's TCP prober (rlb/core/probe.pxd) through the real core: a daemon's
`check tcp` goes out as a SYN built by worker 0, and what the real server's wire sends
back decides: a SYN-ACK is up (and the prober resets the half-open connection), a reset
is "connection refused", nothing is a timeout; an answer that does not acknowledge the
probe's own sequence number counts for nothing.

The tester plays the real server RS1 on dpdk0's wire (tp0) of an FNAT service; its probes
leave from the service's local address, as its connections do. With one and two workers
(the answers reach either)."""
import time

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from rlb.core.consts import PROBE_PORT_MIN, PROBE_PORTS
from rlb.lab import scripts
from rlb.lab.topologies import RS1
from support.netns import Daemon, Wire, del_ns, lines, make_ns, sh, two_ports, wait

NS = "rlbt-prober"
VIP, LIP = "10.0.0.100", "192.168.100.200"
CHECK = "check tcp interval 0.5 timeout 0.4 rise 1 fall 1"


class Lab:
    def __init__(self, d):
        self.d = d
        self.rs = Wire(NS, "tp0")
        mac = lambda dev: sh("cat", f"/sys/class/net/{dev}/address", ns=NS).stdout.strip()
        self.lb_mac, self.rs_mac = mac("dp0"), mac("tp0")

    def syn(self, timeout=3.0):
        """The next probe SYN on the real server's wire."""
        f = self.rs.recv(lambda f: TCP in Ether(f) and Ether(f)[TCP].flags == "S"
                         and Ether(f)[IP].dst == RS1, timeout=timeout)
        assert f is not None, "no probe reached the real server"
        return Ether(f)

    def answer(self, syn, flags, ack=None):
        ip, tcp = syn[IP], syn[TCP]
        self.rs.send(Ether(src=self.rs_mac, dst=self.lb_mac) / IP(src=ip.dst, dst=ip.src) /
                     TCP(sport=tcp.dport, dport=tcp.sport, flags=flags, seq=7000,
                         ack=tcp.seq + 1 if ack is None else ack))

    def server(self):
        (row,) = self.d.ok("show ip vs health")["data"]
        (s,) = row["servers"]
        return s

    def workers(self, name):
        return sum(w[name] for w in self.d.ok("show dataplane")["data"]["workers"])

    def close(self):
        self.rs.close()


@pytest.fixture(scope="module", params=[1, 2], ids=["1worker", "2workers"])
def lab(request, tmp_path_factory):
    make_ns(NS, [("dp0", "tp0"), ("dp1", "tp1")])
    mac = sh("cat", "/sys/class/net/tp0/address", ns=NS).stdout.strip()
    conf = (two_ports(request.param) +
            lines(scripts.fnat(VIP, servers=(RS1,))) +
            f"dpip neigh add {RS1} lladdr {mac} dev dpdk0\n"
            f"virtual-server tcp {VIP}:80\n {CHECK}\n!\n")
    d = Daemon(NS, NS, conf, tmp_path_factory.mktemp("prober")).start()
    lab = Lab(d)
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
    yield


def test_the_syn_leaves_from_the_local_address_and_is_well_formed(lab):
    syn = lab.syn()
    assert (syn[IP].src, syn[TCP].dport, syn[IP].ttl) == (LIP, 80, 64)
    assert PROBE_PORT_MIN <= syn[TCP].sport < PROBE_PORT_MIN + PROBE_PORTS
    assert syn[IP].flags == "DF" and ("MSS", 1460) in syn[TCP].options
    # both checksums as scapy computes them
    raw = syn[IP].copy()
    del raw.chksum, raw[TCP].chksum
    again = IP(bytes(raw))
    assert (again.chksum, again[TCP].chksum) == (syn[IP].chksum, syn[TCP].chksum)
    assert lab.workers("probes_sent") > 0


def test_a_syn_ack_is_up_and_the_prober_resets_it(lab):
    answers = lab.workers("probe_answers")
    for _ in range(2):                      # rise 1: the first answer would do
        syn = lab.syn()
        lab.answer(syn, "SA")
        rst = lab.rs.recv(lambda f: TCP in Ether(f) and Ether(f)[TCP].flags & 0x04, timeout=2)
        assert rst is not None, "the half-open connection was not reset"
        rst = Ether(rst)
        # RFC 9293: the reset's sequence number is the acknowledgement it answers
        assert (rst[IP].src, rst[TCP].sport, rst[TCP].seq) == (LIP, syn[TCP].sport,
                                                                syn[TCP].seq + 1)
    assert wait(lambda: lab.server()["state"] == "UP"), lab.server()
    s = lab.server()
    assert s["last"] == "ok" and s["latency"] is not None and s["latency"] < 1
    assert lab.workers("probe_answers") >= answers + 2


def test_a_reset_is_connection_refused(lab):
    lab.answer(lab.syn(), "SA")
    assert wait(lambda: lab.server()["state"] == "UP")
    lab.answer(lab.syn(), "RA")
    assert wait(lambda: lab.server()["state"] == "DOWN"), lab.server()
    assert lab.server()["error"] == "connection refused"
    assert "192.168.100.2:80 DOWN: connection refused after 1 failure" in lab.d.log.read_text()


def test_no_answer_is_a_timeout_and_a_wrong_ack_counts_for_nothing(lab):
    lab.answer(lab.syn(), "SA")
    assert wait(lambda: lab.server()["state"] == "UP")
    # answers that do not acknowledge the probe's sequence number: not the prober's
    syn = lab.syn()
    lab.answer(syn, "SA", ack=syn[TCP].seq + 2)
    lab.answer(syn, "RA", ack=syn[TCP].seq)
    assert wait(lambda: lab.server()["state"] == "DOWN"), lab.server()
    assert lab.server()["error"] == "timeout after 0.4 s during connect"
    syn = lab.syn()
    lab.answer(syn, "SA")
    assert wait(lambda: lab.server()["state"] == "UP"), lab.server()


def test_a_late_answer_counts_for_nothing(lab):
    """The answer to a probe that timed out, sent after the next probe went out, neither
    ends the next one nor crashes anything."""
    old = lab.syn()
    new = lab.syn()                          # `old` timed out meanwhile
    lab.answer(old, "SA")
    time.sleep(0.1)
    lab.answer(new, "RA")
    # `old`'s timeout took it down (fall 1); `new`'s reset says why now
    assert wait(lambda: lab.server()["error"] == "connection refused"), lab.server()
    assert lab.server()["state"] == "DOWN"
    lab.answer(lab.syn(), "SA")
    assert wait(lambda: lab.server()["state"] == "UP"), lab.server()


def test_malformed_answers_are_dropped_and_counted(lab):
    before = lab.d.ok("show dataplane")["data"]["reasons"]["tcp_hdrlen"]
    syn = lab.syn()
    frame = bytes(Ether(src=lab.rs_mac, dst=lab.lb_mac) / IP(src=RS1, dst=LIP) /
                  TCP(sport=80, dport=syn[TCP].sport, flags="SA", ack=syn[TCP].seq + 1,
                      dataofs=15))               # options past the segment's end
    lab.rs.send(frame)
    assert wait(lambda: lab.d.ok("show dataplane")["data"]["reasons"]["tcp_hdrlen"] > before)
    lab.answer(lab.syn(), "SA")
    assert wait(lambda: lab.server()["state"] == "UP"), lab.server()
