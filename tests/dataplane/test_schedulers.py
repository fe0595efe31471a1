"""Each scheduler on the distribution it promises, through the real core (FNAT, 1 worker).

New flows are SYNs from many clients; the real server a flow went to is read off the
SYN the LB sends on the LAN wire."""
import ipaddress
import time
from collections import Counter

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from support.netns import Daemon, Wire, del_ns, make_ns, sh

NS = "rlbt-sched"
RS = ("192.168.100.2", "192.168.100.3", "192.168.100.4")
VIP = "10.0.0.100"


class Lab:
    def __init__(self, d):
        self.d = d
        self.rs = Wire(NS, "tp0")
        self.cl = Wire(NS, "tp1")
        self.lb_wan = sh("cat", "/sys/class/net/dp1/address", ns=NS).stdout.strip()
        self.cl_mac = sh("cat", "/sys/class/net/tp1/address", ns=NS).stdout.strip()
        self.port = 20000

    def service(self, sched, weights=(1, 1, 1), vport=80, extra=""):
        self.d.ok(f"ipvsadm -A -t {VIP}:{vport} -s {sched} {extra}".strip())
        for rs, w in zip(RS, weights):
            self.d.ok(f"ipvsadm -a -t {VIP}:{vport} -r {rs} -b -w {w}")
        self.d.ok(f"ipvsadm --add-laddr -z 192.168.100.200 -t {VIP}:{vport} -F dpdk0")
        return vport

    def syn(self, client="10.0.0.48", vport=80, sport=None):
        """Send a SYN; return the real server it was sent to (or None)."""
        self.port += 1
        sport = sport or self.port
        self.cl.send(Ether(src=self.cl_mac, dst=self.lb_wan) / IP(src=client, dst=VIP) /
                     TCP(sport=sport, dport=vport, flags="S"))
        f = self.rs.recv(lambda f: TCP in Ether(f) and Ether(f)[TCP].flags == "S", timeout=2)
        return Ether(f)[IP].dst if f else None

    def spread(self, n, **kw):
        return Counter(self.syn(**kw) for _ in range(n))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    make_ns(NS, [("dp0", "tp0"), ("dp1", "tp1")])
    tp0 = sh("cat", "/sys/class/net/tp0/address", ns=NS).stdout.strip()
    conf = ("dataplane\n port dpdk0 net_af_packet0,iface=dp0\n port dpdk1 net_af_packet1,iface=dp1\n!\n"
            "dpip addr add 10.0.0.100/32 dev dpdk1\ndpip route add 10.0.0.0/8 dev dpdk1\n"
            "dpip route add 192.168.100.0/24 dev dpdk0\n" +
            "".join(f"dpip neigh add {rs} lladdr {tp0} dev dpdk0\n" for rs in RS))
    d = Daemon(NS, "rlbt-sched", conf, tmp_path_factory.mktemp("sched")).start()
    lab = Lab(d)
    try:
        yield lab
    finally:
        lab.rs.close()
        lab.cl.close()
        assert d.stop() == 0
        del_ns(NS)


@pytest.fixture(autouse=True)
def clean(lab):
    lab.rs.drain()
    yield
    lab.d.ok("ipvsadm -C")
    lab.d.ok("ipvsadm --set 1 1 1")           # half-open flows of one test do not
    time.sleep(0.1)                           # weigh on the next (SYN_RECV stays 30 s)


def clients(n, base="10.1.0.0"):
    start = int(ipaddress.IPv4Address(base))
    return [str(ipaddress.IPv4Address(start + 7 * i + 1)) for i in range(n)]


def test_rr_takes_turns(lab):
    lab.service("rr")
    got = [lab.syn() for _ in range(9)]
    assert got[:3] == got[3:6] == got[6:] and set(got[:3]) == set(RS)


def test_wrr_follows_weights(lab):
    lab.service("wrr", (1, 2, 3))
    assert lab.spread(60) == Counter({RS[0]: 10, RS[1]: 20, RS[2]: 30})


def test_lc_balances_connections(lab):
    lab.service("lc")
    c = lab.spread(30)
    assert c == Counter({rs: 10 for rs in RS})


def test_wlc_balances_connections_per_weight(lab):
    lab.service("wlc", (1, 2, 3))
    c = lab.spread(60)
    assert all(abs(c[rs] - 10 * w) <= 1 for rs, w in zip(RS, (1, 2, 3))), c


def test_fo_sends_all_to_the_heaviest_available(lab):
    lab.service("fo", (1, 5, 3))
    assert lab.spread(10) == Counter({RS[1]: 10})
    lab.d.ok(f"ipvsadm -e -t {VIP}:80 -r {RS[1]} -b -w 0")
    assert lab.spread(10) == Counter({RS[2]: 10})


def test_sh_sticks_each_client_to_one_server(lab):
    lab.service("sh")
    first = {cl: lab.syn(client=cl) for cl in clients(60)}
    again = {cl: lab.syn(client=cl) for cl in clients(60)}
    assert first == again
    assert set(first.values()) == set(RS)


def test_mh_spreads_and_remaps_little_when_a_server_goes(lab):
    lab.service("mh")
    cs = clients(300)
    before = {cl: lab.syn(client=cl) for cl in cs}
    counts = Counter(before.values())
    assert all(60 <= counts[rs] <= 140 for rs in RS), counts
    lab.d.ok(f"ipvsadm -d -t {VIP}:80 -r {RS[2]}")
    after = {cl: lab.syn(client=cl) for cl in cs}
    stayed = [cl for cl in cs if before[cl] != RS[2]]
    moved = sum(1 for cl in stayed if after[cl] != before[cl])
    assert RS[2] not in after.values()
    assert moved <= len(stayed) * 0.05, f"{moved} of {len(stayed)} clients of remaining servers moved"


def test_persistence_keeps_a_client_on_its_server(lab):
    lab.service("rr", extra="-p 60")
    a = [lab.syn(client="10.2.0.1") for _ in range(4)]
    b = [lab.syn(client="10.2.0.2") for _ in range(4)]
    assert len(set(a)) == 1 and len(set(b)) == 1 and a[0] != b[0]
    text = lab.d.ok(f"ipvsadm -ln")["text"]
    assert "persistent 60" in text


def test_no_available_server_drops_and_counts(lab):
    lab.service("rr", (0, 0, 0))
    before = lab.d.stats()["reasons"]["no_dest"]
    assert lab.syn() is None
    assert lab.d.stats()["reasons"]["no_dest"] == before + 1
