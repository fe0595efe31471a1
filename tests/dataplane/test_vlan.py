"""VLAN interfaces through the real compiled core: golden frames tagged and untagged both
ways, their kni twins, unknown VLANs counted, `dpip vlan` at run time and its errors."""
import time

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, Dot1Q, Ether

from support.netns import Daemon, Wire, del_ns, make_ns, sh, wait
from support.tagged_wire import TaggedWire

NS = "rlbt-vlan"
CONFIG = """\
dataplane
 workers {workers}
 port dpdk0 net_af_packet0,iface=dp0
 port dpdk1 net_af_packet1,iface=dp1
 forwarding
!
dpip vlan add dpdk0.100 link dpdk0 proto 802.1q id 100
dpip vlan add link dpdk0 id 101
dpip addr add 10.100.0.1/24 dev dpdk0.100
dpip addr add 10.101.0.1/24 dev dpdk0.101
dpip addr add 10.2.0.1/24 dev dpdk1
dpip neigh add 10.100.0.9 lladdr 02:00:00:00:01:09 dev dpdk0.100
dpip neigh add 10.2.0.9 lladdr 02:00:00:00:02:09 dev dpdk1
dpip route add 10.100.0.2/32 dev dpdk0.100 scope kni_host
"""
TMAC = "02:00:00:00:01:09"


class Lab:
    def __init__(self, d):
        self.d = d
        self.w0 = TaggedWire(NS, "tp0")
        self.w1 = Wire(NS, "tp1")
        self.mac0 = sh("cat", "/sys/class/net/dp0/address", ns=NS).stdout.strip()
        self.mac1 = sh("cat", "/sys/class/net/dp1/address", ns=NS).stdout.strip()

    def reasons(self):
        return self.d.stats()["reasons"]


@pytest.fixture(scope="module", params=[1, 2], ids=["1w", "2w"])
def lab(request, tmp_path_factory):
    make_ns(NS, [("dp0", "tp0"), ("dp1", "tp1")])
    d = Daemon(NS, "rlbt-vlan", CONFIG.format(workers=request.param),
               tmp_path_factory.mktemp("vlan")).start()
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
        assert "kni" not in left, "kni taps must disappear with the daemon"


def tagged(vid):
    def match(f):
        p = Ether(f)
        return Dot1Q in p and p[Dot1Q].vlan == vid
    return match


def test_arp_reply_is_tagged(lab):
    req = Ether(src=TMAC, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=100) / \
        ARP(op=1, hwsrc=TMAC, psrc="10.100.0.9", pdst="10.100.0.1")
    lab.w0.send(bytes(req))
    got = lab.w0.recv(lambda f: tagged(100)(f) and ARP in Ether(f) and Ether(f)[ARP].op == 2)
    assert got is not None
    want = Ether(src=lab.mac0, dst=TMAC) / Dot1Q(vlan=100) / \
        ARP(op=2, hwsrc=lab.mac0, psrc="10.100.0.1", hwdst=TMAC, pdst="10.100.0.9")
    assert got[:len(bytes(want))] == bytes(want)


@pytest.mark.parametrize("vid", [100, 101])
def test_echo_on_each_vlan(lab, vid):
    ping = Ether(src=TMAC, dst=lab.mac0) / Dot1Q(vlan=vid) / \
        IP(src=f"10.{vid}.0.9", dst=f"10.{vid}.0.1", id=7, ttl=64) / ICMP(id=vid, seq=1) / (b"x" * 16)
    lab.w0.send(bytes(ping))
    if vid == 101:
        # no static neighbour there: the reply waits for an ARP request, tagged too
        req = lab.w0.recv(lambda f: tagged(vid)(f) and ARP in Ether(f) and Ether(f)[ARP].op == 1)
        assert req is not None and Ether(req)[ARP].pdst == "10.101.0.9"
        lab.w0.send(bytes(Ether(src=TMAC, dst=lab.mac0) / Dot1Q(vlan=vid) /
                          ARP(op=2, hwsrc=TMAC, psrc="10.101.0.9", hwdst=lab.mac0,
                              pdst="10.101.0.1")))
    got = lab.w0.recv(lambda f: tagged(vid)(f) and ICMP in Ether(f) and Ether(f)[ICMP].type == 0)
    assert got is not None, f"no echo reply on VLAN {vid}"
    p = Ether(got)
    assert (p[IP].src, p[IP].dst, p[ICMP].id, bytes(p[ICMP].payload)) == \
        (f"10.{vid}.0.1", f"10.{vid}.0.9", vid, b"x" * 16)
    assert p.dst == TMAC and p.src == lab.mac0


def test_forward_untags_and_tags(lab):
    """Golden frames: VLAN 100 -> dpdk1 leaves untagged, TTL one less; dpdk1 -> VLAN 100
    leaves tagged 100, to the static neighbour's MAC."""
    payload = b"golden-frame"
    lab.w0.send(bytes(Ether(src=TMAC, dst=lab.mac0) / Dot1Q(vlan=100) /
                      IP(src="10.100.0.9", dst="10.2.0.9", id=1, ttl=64) /
                      UDP(sport=1000, dport=2000) / payload))
    got = lab.w1.recv(lambda f: UDP in Ether(f) and Ether(f)[UDP].dport == 2000)
    want = Ether(src=lab.mac1, dst="02:00:00:00:02:09") / \
        IP(src="10.100.0.9", dst="10.2.0.9", id=1, ttl=63) / UDP(sport=1000, dport=2000) / payload
    assert got == bytes(want)
    lab.w1.send(bytes(Ether(src="02:00:00:00:02:09", dst=lab.mac1) /
                      IP(src="10.2.0.9", dst="10.100.0.9", id=2, ttl=64) /
                      UDP(sport=2000, dport=1000) / payload))
    got = lab.w0.recv(lambda f: UDP in Ether(f) and Ether(f)[UDP].dport == 1000)
    want = Ether(src=lab.mac0, dst=TMAC) / Dot1Q(vlan=100) / \
        IP(src="10.2.0.9", dst="10.100.0.9", id=2, ttl=63) / UDP(sport=2000, dport=1000) / payload
    assert got == bytes(want)


def test_unknown_vlan_counted_and_dropped(lab):
    before = lab.reasons()
    for _ in range(5):
        lab.w0.send(bytes(Ether(src=TMAC, dst=lab.mac0) / Dot1Q(vlan=300) /
                          IP(src="10.100.0.9", dst="10.100.0.1") / ICMP()))
    assert lab.w0.recv(tagged(300), timeout=0.5) is None
    assert wait(lambda: lab.reasons()["vlan_unknown"] - before["vlan_unknown"] == 5)


def test_kni_twin_carries_what_the_core_does_not_take(lab):
    """A kernel address on dpdk0.100.kni answers a tagged ping through the data plane."""
    sh("ip", "addr", "add", "10.100.0.2/24", "dev", "dpdk0.100.kni", ns=NS)
    sh("ip", "link", "set", "dpdk0.100.kni", "up", ns=NS)
    sh("ip", "neigh", "replace", "10.100.0.9", "lladdr", TMAC, "dev", "dpdk0.100.kni", ns=NS)
    try:
        mac = sh("cat", "/sys/class/net/dpdk0.100.kni/address", ns=NS).stdout.strip()
        assert mac == lab.mac0, "a VLAN's kni has its port's MAC"
        ping = Ether(src=TMAC, dst=lab.mac0) / Dot1Q(vlan=100) / \
            IP(src="10.100.0.9", dst="10.100.0.2") / ICMP(id=42, seq=1)
        got = None
        for _ in range(3):                 # the tap may still be coming up
            lab.w0.send(bytes(ping))
            got = lab.w0.recv(lambda f: tagged(100)(f) and ICMP in Ether(f) and
                              Ether(f)[ICMP].type == 0 and Ether(f)[ICMP].id == 42)
            if got:
                break
        assert got is not None, "the kernel's echo reply did not come back tagged"
        assert Ether(got)[IP].src == "10.100.0.2"
    finally:
        sh("ip", "addr", "del", "10.100.0.2/24", "dev", "dpdk0.100.kni", ns=NS, check=False)


def test_link_show_names_the_vlan(lab):
    r = lab.d.ok("dpip link show dpdk0.100")
    row = r["data"]["ports"][0]
    assert row["kind"] == "vlan" and row["vlan"] == {"link": "dpdk0", "id": 100,
                                                     "proto": "802.1q"}
    assert "vlan 802.1q id 100 link dpdk0" in r["text"]
    shown = lab.d.ok("dpip vlan show")["data"]
    assert [(v["name"], v["link"], v["id"]) for v in shown] == \
        [("dpdk0.100", "dpdk0", 100), ("dpdk0.101", "dpdk0", 101)]


@pytest.mark.parametrize("cmd, why", [
    ("dpip vlan add link dpdk9 id 5", "no such port"),
    ("dpip vlan add dpdk0.x link dpdk0 id 100", "VLAN 100 is already on dpdk0"),
    ("dpip vlan add link dpdk0.100 id 7", "not on another VLAN"),
    ("dpip vlan add dpdk0.100 link dpdk1 id 7", "already exists"),
    ("dpip vlan add link dpdk0 id 4095", ""),
    ("dpip vlan del dpdk1", "not a VLAN"),
    ("dpip vlan del dpdk0.100", "addresses, routes or neighbours"),
])
def test_vlan_errors_change_nothing(lab, cmd, why):
    before = lab.d.ok("show running-config")["text"]
    r = lab.d.call(cmd)
    assert not r["ok"] and why in r["error"], r
    assert "Traceback" not in r["error"]
    assert lab.d.ok("show running-config")["text"] == before


def test_vlan_added_and_deleted_at_run_time(lab):
    r = lab.d.ok("dpip vlan add link dpdk0 id 102")
    assert r["data"]["name"] == "dpdk0.102"
    lab.d.ok("dpip addr add 10.102.0.1/24 dev dpdk0.102")
    assert wait(lambda: "dpdk0.102.kni" in sh("ip", "-o", "link", ns=NS).stdout)
    ping = Ether(src=TMAC, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=102) / \
        ARP(op=1, hwsrc=TMAC, psrc="10.102.0.9", pdst="10.102.0.1")
    lab.w0.send(bytes(ping))
    assert lab.w0.recv(lambda f: tagged(102)(f) and ARP in Ether(f) and
                       Ether(f)[ARP].op == 2) is not None
    assert "interface dpdk0.102\n encapsulation dot1q 102" in \
        lab.d.ok("show running-config")["text"]
    lab.d.ok("dpip addr del 10.102.0.1/24 dev dpdk0.102")
    lab.d.ok("dpip vlan del dpdk0.102")
    assert wait(lambda: "dpdk0.102.kni" not in sh("ip", "-o", "link", ns=NS).stdout)
    before = lab.reasons()["vlan_unknown"]
    lab.w0.send(bytes(ping))
    assert wait(lambda: lab.reasons()["vlan_unknown"] == before + 1)
    # its slot is taken again by the next one, with fresh counters
    lab.d.ok("dpip vlan add link dpdk0 id 103")
    assert lab.d.ok("dpip -s link show dpdk0.103")["data"]["ports"][0]["stats"]["rx_pkts"] == 0
    lab.d.ok("dpip vlan del dpdk0.103")
    time.sleep(0.1)
