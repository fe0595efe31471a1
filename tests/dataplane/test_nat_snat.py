"""NAT and SNAT through the real core: rewrites both ways with checksums, ICMP echo
identifiers, match rules, and two workers (NAT: the client picks the worker)."""
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from rlb.lab import scripts
from rlb.lab.topologies import LAN_GW, RS1, RS2, get
from support.netns import Daemon, Wire, del_ns, lines, make_ns, sh



def checksums_ok(p):
    raw = bytes(p)
    fresh = Ether(raw)
    for layer in (IP, TCP, UDP, ICMP):
        if layer in fresh:
            del fresh[layer].chksum
    return bytes(Ether(bytes(fresh))) == raw


class Wires:
    def __init__(self, ns, d, workers):
        self.ns, self.d, self.workers = ns, d, workers
        self.lan, self.wan = Wire(ns, "tp0"), Wire(ns, "tp1")
        mac = lambda dev: sh("cat", f"/sys/class/net/{dev}/address", ns=ns).stdout.strip()
        self.lb_lan, self.lb_wan, self.lan_mac, self.wan_mac = (mac("dp0"), mac("dp1"),
                                                                 mac("tp0"), mac("tp1"))

    def from_lan(self, pkt):
        self.lan.send(Ether(src=self.lan_mac, dst=self.lb_lan) / pkt)

    def from_wan(self, pkt):
        self.wan.send(Ether(src=self.wan_mac, dst=self.lb_wan) / pkt)

    @staticmethod
    def got(wire, match, timeout=2):
        f = wire.recv(lambda f: IP in Ether(f) and match(Ether(f)), timeout=timeout)
        return Ether(f) if f else None

    def close(self):
        self.lan.close()
        self.wan.close()


def start(request, tmp_path_factory, ns, script):
    """A daemon of its own per fixture: pytest may hold both modules' fixtures at once."""
    workers = request.param
    make_ns(ns, [("dp0", "tp0"), ("dp1", "tp1")])
    mac = lambda dev: sh("cat", f"/sys/class/net/{dev}/address", ns=ns).stdout.strip()
    conf = (f"dataplane\n workers {workers}\n port dpdk0 net_af_packet0,iface=dp0\n"
            f" port dpdk1 net_af_packet1,iface=dp1\n!\n" +
            script.format(lan=mac("tp0"), wan=mac("tp1")))
    d = Daemon(ns, ns, conf, tmp_path_factory.mktemp(ns)).start()
    return Wires(ns, d, workers)


def stop(w):
    w.close()
    rc = w.d.stop()
    del_ns(w.ns)
    assert rc == 0, w.d.log.read_text()


# NAT two-arm: fnat-two-arm's addresses, the VIP on the WAN port, real servers on 8080
NAT = lines(scripts.nat("10.0.0.100", addrs=(("10.0.0.1/16", "dpdk1"), (f"{LAN_GW}/24", "dpdk0")),
                        vip_dev="dpdk1", vip_last=False, servers=(RS1, RS2), rs_port=8080)) + """\
dpip neigh add 192.168.100.2 lladdr {lan} dev dpdk0
dpip neigh add 192.168.100.3 lladdr {lan} dev dpdk0
dpip neigh add 10.0.0.48 lladdr {wan} dev dpdk1
"""

# the tutorial's SNAT, and UDP as well
SNAT = lines(get("snat").script(protos=("proto=tcp", "proto=icmp", "proto=udp"))) + """\
dpip neigh add 123.1.2.1 lladdr {wan} dev dpdk1
dpip neigh add 192.168.100.5 lladdr {lan} dev dpdk0
"""


@pytest.fixture(scope="module", params=[1, 2], ids=["1worker", "2workers"])
def nat(request, tmp_path_factory):
    w = start(request, tmp_path_factory, "rlbt-nat", NAT)
    yield w
    stop(w)


@pytest.fixture(scope="module", params=[1, 2], ids=["1worker", "2workers"])
def snat(request, tmp_path_factory):
    w = start(request, tmp_path_factory, "rlbt-snat", SNAT)
    yield w
    stop(w)


def test_nat_rewrites_destination_in_and_source_out(nat):
    for sport in range(30000, 30012):           # two workers: every flow, both ways
        nat.from_wan(IP(src="10.0.0.48", dst="10.0.0.100") / TCP(sport=sport, dport=80, flags="S"))
        syn = nat.got(nat.lan, lambda p: TCP in p and p[TCP].sport == sport)
        assert syn is not None, sport
        assert syn[IP].src == "10.0.0.48" and syn[IP].dst in ("192.168.100.2", "192.168.100.3")
        assert syn[TCP].dport == 8080 and checksums_ok(syn) and syn.src == nat.lb_lan
        nat.from_lan(IP(src=syn[IP].dst, dst="10.0.0.48") /
                     TCP(sport=8080, dport=sport, flags="SA", ack=syn[TCP].seq + 1))
        sa = nat.got(nat.wan, lambda p: TCP in p and p[TCP].dport == sport)
        assert sa is not None, f"reply of flow {sport} lost"
        assert sa[IP].src == "10.0.0.100" and sa[TCP].sport == 80 and checksums_ok(sa)
    rows = nat.d.ok("ipvsadm -lnc")["data"]["connections"]
    assert {r["cport"] for r in rows} >= set(range(30000, 30012))
    assert "Masq" in nat.d.ok("ipvsadm -ln")["text"]


def test_snat_tcp_udp_and_icmp_echo(snat):
    snat.from_lan(IP(src="192.168.100.5", dst="8.8.8.8", ttl=10) / TCP(sport=40000, dport=443, flags="S"))
    out = snat.got(snat.wan, lambda p: TCP in p and p[IP].dst == "8.8.8.8")
    assert out is not None
    assert out[IP].src == "123.1.2.3" and out[TCP].dport == 443 and out[IP].ttl == 9
    assert out[TCP].sport % snat.workers in range(snat.workers) and checksums_ok(out)
    assert out.dst == snat.wan_mac                  # the default gateway's MAC
    lport = out[TCP].sport
    snat.from_wan(IP(src="8.8.8.8", dst="123.1.2.3") / TCP(sport=443, dport=lport, flags="SA"))
    back = snat.got(snat.lan, lambda p: TCP in p and p[IP].dst == "192.168.100.5")
    assert back is not None and back[TCP].dport == 40000 and back[IP].src == "8.8.8.8"
    assert checksums_ok(back)

    snat.from_lan(IP(src="192.168.100.5", dst="9.9.9.9") / UDP(sport=5353, dport=53) / Raw(b"q"))
    out = snat.got(snat.wan, lambda p: UDP in p and p[IP].dst == "9.9.9.9")
    assert out is not None and out[IP].src == "123.1.2.3" and checksums_ok(out)
    snat.from_wan(IP(src="9.9.9.9", dst="123.1.2.3") / UDP(sport=53, dport=out[UDP].sport) / Raw(b"a"))
    back = snat.got(snat.lan, lambda p: UDP in p)
    assert back is not None and back[UDP].dport == 5353 and checksums_ok(back)

    snat.from_lan(IP(src="192.168.100.5", dst="1.1.1.1") / ICMP(id=777, seq=1) / Raw(b"ping"))
    out = snat.got(snat.wan, lambda p: ICMP in p and p[IP].dst == "1.1.1.1")
    assert out is not None and out[IP].src == "123.1.2.3" and checksums_ok(out)
    new_id = out[ICMP].id
    snat.from_wan(IP(src="1.1.1.1", dst="123.1.2.3") / ICMP(type=0, id=new_id, seq=1) / Raw(b"ping"))
    back = snat.got(snat.lan, lambda p: ICMP in p and p[IP].dst == "192.168.100.5")
    assert back is not None and back[ICMP].id == 777 and back[ICMP].type == 0
    assert checksums_ok(back)


def test_snat_many_flows_with_every_worker(snat):
    for sport in range(41000, 41016):
        snat.from_lan(IP(src="192.168.100.5", dst="8.8.4.4") / TCP(sport=sport, dport=80, flags="S"))
        out = snat.got(snat.wan, lambda p: TCP in p and p[IP].dst == "8.8.4.4")
        assert out is not None
        snat.from_wan(IP(src="8.8.4.4", dst="123.1.2.3") /
                      TCP(sport=80, dport=out[TCP].sport, flags="SA"))
        back = snat.got(snat.lan, lambda p: TCP in p and p[TCP].dport == sport)
        assert back is not None, f"reply of flow {sport} lost"


def test_snat_leaves_what_does_not_match(snat):
    before = snat.d.stats()["reasons"]
    # source outside the range: not translated (forwarding is off: to kni)
    snat.from_lan(IP(src="192.168.200.5", dst="8.8.8.8") / TCP(sport=1, dport=443, flags="S"))
    assert snat.got(snat.wan, lambda p: TCP in p and p[TCP].sport == 1, timeout=0.5) is None
    # our own address is not SNAT's business: ping is answered
    snat.from_lan(IP(src="192.168.100.5", dst="192.168.100.1") / ICMP(id=5))
    assert snat.got(snat.lan, lambda p: ICMP in p and p[ICMP].type == 0) is not None
    after = snat.d.stats()["reasons"]
    assert after["fwd_disabled_kni"] > before["fwd_disabled_kni"]
