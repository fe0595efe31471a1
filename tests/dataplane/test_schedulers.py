"""Each scheduler on the distribution it promises, through the real core (FNAT, 1 worker).

New flows are SYNs (or UDP datagrams, whose flows count as active at once) from many
clients; the real server a flow went to is read off what the LB sends on the LAN wire."""
import ipaddress
import subprocess
import sys
import time
from collections import Counter

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from rlb.model.services_engine import TableDest
from rlb.sched.builtin import conhash_pick, conhash_ring
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

    def service(self, sched, weights=(1, 1, 1), vport=80, extra="", proto="-t"):
        self.d.ok(f"ipvsadm -A {proto} {VIP}:{vport} -s {sched} {extra}".strip())
        for rs, w in zip(RS, weights):
            self.d.ok(f"ipvsadm -a {proto} {VIP}:{vport} -r {rs} -b -w {w}")
        self.d.ok(f"ipvsadm --add-laddr -z 192.168.100.200 {proto} {VIP}:{vport} -F dpdk0")
        return vport

    def udp(self, client="10.0.0.48", vport=53, sport=None):
        """Send a datagram of a new flow; return the real server it was sent to (or None)."""
        self.port += 1
        sport = sport or self.port
        self.cl.send(Ether(src=self.cl_mac, dst=self.lb_wan) / IP(src=client, dst=VIP) /
                     UDP(sport=sport, dport=vport) / b"q")
        f = self.rs.recv(lambda f: UDP in Ether(f), timeout=2)
        return Ether(f)[IP].dst if f else None

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
    text = lab.d.ok("ipvsadm -ln")["text"]
    assert "persistent 60" in text


def test_no_available_server_drops_and_counts(lab):
    lab.service("rr", (0, 0, 0))
    before = lab.d.stats()["reasons"]["no_dest"]
    assert lab.syn() is None
    assert lab.d.stats()["reasons"]["no_dest"] == before + 1


def expected_delay_order(n, weights, idle_first):
    """IPVS's sed (ip_vs_sed.c) and nq (ip_vs_nq.c) on flows that all stay active: the
    least (active + 1) / weight, the first on a tie; nq takes an idle server first."""
    active, order = [0] * len(weights), []
    for _ in range(n):
        idle = [i for i, a in enumerate(active) if a == 0]
        best = idle[0] if idle_first and idle else min(
            range(len(weights)), key=lambda i: ((active[i] + 1) / weights[i], i))
        active[best] += 1
        order.append(RS[best])
    return order


@pytest.mark.parametrize("sched, idle_first", [("sed", False), ("nq", True)])
def test_sed_and_nq_follow_ipvs_expected_delay(lab, sched, idle_first):
    lab.d.ok("ipvsadm --set 1 1 300")              # the flows stay active for the test
    lab.service(sched, (1, 2, 3), vport=53, proto="-u")
    got = [lab.udp() for _ in range(12)]
    assert got == expected_delay_order(12, (1, 2, 3), idle_first)
    text = lab.d.ok(f"ipvsadm -ln -u {VIP}:53")["text"]
    assert f"UDP  {VIP}:53 {sched}" in text


def ring_of(target):
    ds = [TableDest(i, int(ipaddress.IPv4Address(rs)), 80, 1, True) for i, rs in enumerate(RS)]
    return conhash_ring(ds, target)


def test_conhash_sip_keeps_a_client_on_the_ring_server_the_control_plane_computes(lab):
    lab.service("conhash")
    cs = clients(60)
    got = {cl: lab.syn(client=cl) for cl in cs}
    ring = ring_of("sip")
    want = {cl: RS[conhash_pick(ring, int(ipaddress.IPv4Address(cl)))] for cl in cs}
    assert got == want and set(got.values()) == set(RS)
    assert {lab.syn(client=cs[0]) for _ in range(5)} == {got[cs[0]]}      # any source port
    assert f"TCP  {VIP}:80 conhash sip" in lab.d.ok("ipvsadm -ln")["text"]
    lab.d.ok(f"ipvsadm -d -t {VIP}:80 -r {RS[2]}")
    after = {cl: lab.syn(client=cl) for cl in cs}
    assert all(after[cl] == got[cl] for cl in cs if got[cl] != RS[2])


def test_conhash_sip_sport_spreads_one_client_by_its_port(lab):
    lab.service("conhash", extra="--hash-target sip_sport")
    ring = ring_of("sip_sport")
    ports = range(30001, 30061)
    got = {p: lab.syn(client="10.3.0.1", sport=p) for p in ports}
    assert got == {p: RS[conhash_pick(ring, int(ipaddress.IPv4Address("10.3.0.1")), p)]
                   for p in ports}
    assert set(got.values()) == set(RS)
    assert f"TCP  {VIP}:80 conhash sip_sport" in lab.d.ok("ipvsadm -ln")["text"]


def test_persistence_templates_in_lnc_and_persistent_conn(lab):
    lab.service("rr", extra="-p 60")
    server = lab.syn(client="10.2.0.7")
    def mine(text):        # earlier tests' flows and templates may not have expired yet
        return [line for line in text.splitlines()[2:] if line.split()[3].startswith("10.2.0.7:")]
    lines = mine(lab.d.ok("ipvsadm -lnc --persistent-conn")["text"])
    assert len(lines) == 1, lines
    proto, expire, state, src, vip, local, dst = lines[0].split()
    assert (proto, state, src, vip, dst) == ("TCP", "NONE", "10.2.0.7:0", f"{VIP}:80",
                                             f"{server}:80")
    assert 55 <= int(expire[:2]) * 60 + int(expire[3:]) <= 60
    everything = mine(lab.d.ok("ipvsadm -lnc")["text"])
    # the flow and its template (whose time left may have ticked since)
    assert len(everything) == 2 and lines[0].split()[2:] in [e.split()[2:] for e in everything]
    listing = lab.d.ok(f"ipvsadm -ln --persistent-conn -t {VIP}:80")["text"].splitlines()
    counts = {line.split()[1].split(":")[0]: int(line.split()[3]) for line in listing
              if line.startswith("  -> ") and "RemoteAddress" not in line}
    assert counts == {rs: int(rs == server) for rs in RS}


def rlb(lab, *args, stdin=None):
    return subprocess.run([sys.executable, "-m", "rlb", "-N", lab.d.instance, *args],
                          input=stdin, capture_output=True, text=True, timeout=60)


def test_save_then_restore_through_rlb_ipvsadm(lab, tmp_path):
    lab.service("conhash", (1, 2, 3), extra="--hash-target sip_sport -p 30")
    lab.d.ok(f"ipvsadm -e -t {VIP}:80 -r {RS[1]} -b -w 5 -x 100")
    saved = rlb(lab, "ipvsadm", "-S", "-n")
    assert saved.returncode == 0, saved.stderr
    before = lab.d.ok("ipvsadm -ln")["text"]
    # all or nothing: a bad last line leaves the table as it was, and says which line
    bad = rlb(lab, "ipvsadm", "-R", stdin="-C\n" + saved.stdout + "-A -t 10.0.0.100:80\n")
    assert bad.returncode == 1 and "<stdin>:" in bad.stderr, bad.stderr
    assert lab.d.ok("ipvsadm -ln")["text"] == before
    lab.d.ok("ipvsadm -C")
    back = rlb(lab, "ipvsadm", "-R", stdin=saved.stdout)
    assert back.returncode == 0, back.stderr
    assert lab.d.ok("ipvsadm -ln")["text"] == before
    assert rlb(lab, "ipvsadm", "-S").stdout == saved.stdout
    # and the restored service forwards
    assert lab.syn(client="10.4.0.1") in RS
    # from a file named on the line, as one commit again
    rules = tmp_path / "rules"
    rules.write_text("-C\n" + saved.stdout)
    again = rlb(lab, "ipvsadm", "-R", str(rules))
    assert again.returncode == 0 and rlb(lab, "ipvsadm", "-S").stdout == saved.stdout, again
    missing = rlb(lab, "ipvsadm", "-R", str(tmp_path / "none"))
    assert missing.returncode == 2 and "No such file" in missing.stderr
    said = rlb(lab, "-c", "ipvsadm -R")
    assert said.returncode == 1 and "ipvsadm -R < FILE" in said.stderr


def test_edit_service_sets_exactly_the_options_given(lab):
    lab.service("rr", extra="-p 30")
    lab.d.ok(f"ipvsadm -E -t {VIP}:80 -s rr")
    assert f"TCP  {VIP}:80 rr\n" in lab.d.ok("ipvsadm -ln")["text"] + "\n"
    got = [lab.syn(client="10.2.0.9") for _ in range(3)]      # no persistence any more
    assert set(got) == set(RS)


def test_real_server_port_zero_is_the_service_port_and_list_options(lab):
    lab.d.ok(f"ipvsadm -A -t {VIP}:80 -s rr")
    lab.d.ok(f"ipvsadm -a -t {VIP}:80 -r {RS[0]}:0 -b -x 40 -y 20")
    lab.d.ok(f"ipvsadm --add-laddr -z 192.168.100.200 -t {VIP}:80 -F dpdk0")
    done = rlb(lab, "-c", "configure", "-c", f"virtual-server tcp {VIP}:80",
               "-c", f"real-server {RS[1]}:0 mode fnat weight 2", "-c", "commit")
    assert done.returncode == 0, done.stderr
    text = lab.d.ok("ipvsadm -ln")["text"]
    assert f"  -> {RS[0]}:80 " in text and f"  -> {RS[1]}:80 " in text and ":0 " not in text
    lab.port += 1
    lab.cl.send(Ether(src=lab.cl_mac, dst=lab.lb_wan) / IP(src="10.5.0.1", dst=VIP) /
                TCP(sport=lab.port, dport=80, flags="S"))
    f = lab.rs.recv(lambda f: TCP in Ether(f) and Ether(f)[TCP].flags == "S", timeout=2)
    assert f is not None and Ether(f)[TCP].dport == 80
    assert lab.d.ok(f"ipvsadm -ln --thresholds -t {VIP}:80")["text"].splitlines()[3].split()[2:4] \
        == ["40", "20"]
    made = [line.split()[1] for line in lab.d.ok("ipvsadm -ln --nosort")["text"].splitlines()
            if line.startswith("  -> 1")]
    assert made == [f"{RS[0]}:80", f"{RS[1]}:80"]
