"""Bonds through the real compiled core (DPDK's bonding PMD over af_packet slaves): mode 0
spreads over both slaves, mode 4 negotiates LACP with a real partner (Open vSwitch's
userspace datapath) and a slave going down mid-transfer keeps the connection."""
import socket
import threading
import time

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import ARP, Ether

from support.netns import Daemon, Wire, del_ns, make_ns, sh, wait

NS = "rlbt-bond"
TMAC = "02:00:00:00:01:09"


def daemon(tmp, mode, extra=""):
    conf = f"""\
dataplane
 port dpdk0 net_af_packet0,iface=dp0
 port dpdk1 net_af_packet1,iface=dp1
 port dpdk2 net_af_packet2,iface=dp2
 bond bond0 mode {mode} slaves dpdk0 dpdk1 primary dpdk0{extra}
 forwarding
!
dpip addr add 10.1.0.1/24 dev bond0
dpip addr add 10.2.0.1/24 dev dpdk2
"""
    return Daemon(NS, "rlbt-bond", conf, tmp).start()


def mac(dev, ns=NS):
    return sh("cat", f"/sys/class/net/{dev}/address", ns=ns).stdout.strip()


@pytest.fixture(scope="module")
def rr(tmp_path_factory):
    make_ns(NS, [("dp0", "tp0"), ("dp1", "tp1"), ("dp2", "tp2")])
    d = daemon(tmp_path_factory.mktemp("bond0"), 0)
    try:
        d.ok("dpip neigh add 10.1.0.9 lladdr 02:00:00:00:01:09 dev bond0")
        yield d
    finally:
        rc = d.stop()
        left = sh("ip", "-o", "link", ns=NS).stdout
        del_ns(NS)
        assert rc == 0, d.log.read_text()
        assert "kni" not in left


def test_mode0_replies_over_both_slaves(rr):
    bmac = mac("dp0")                       # the primary's MAC is the bond's
    w0, w1 = Wire(NS, "tp0"), Wire(NS, "tp1")
    try:
        for k in range(20):
            (w0 if k % 2 else w1).send(bytes(
                Ether(src=TMAC, dst=bmac) / IP(src="10.1.0.9", dst="10.1.0.1") /
                ICMP(id=7, seq=k)))
        is_reply = lambda f: ICMP in Ether(f) and Ether(f)[ICMP].type == 0   # noqa: E731
        got0, got1 = w0.recv_all(is_reply), w1.recv_all(is_reply)
    finally:
        w0.close()
        w1.close()
    assert len(got0) + len(got1) == 20
    assert len(got0) >= 5 and len(got1) >= 5, (len(got0), len(got1))
    assert {Ether(f).src for f in got0 + got1} == {bmac}
    bond = rr.ok("dpip -s link show bond0")["data"]["ports"][0]["bond"]
    assert bond["mode"] == 0 and bond["primary"] == "dpdk0"
    by = {s["name"]: s for s in bond["slaves"]}
    assert set(by) == {"dpdk0", "dpdk1"} and all(s["up"] and s["active"] for s in by.values())
    assert by["dpdk0"]["stats"]["opackets"] >= 5 and by["dpdk1"]["stats"]["opackets"] >= 5
    assert by["dpdk0"]["stats"]["ipackets"] >= 10 and by["dpdk1"]["stats"]["ipackets"] >= 10


def test_bond_kni_has_the_bond_mac_and_carries_kernel_traffic(rr):
    assert mac("bond0.kni") == mac("dp0")
    rr.ok("dpip route add 10.1.0.2/32 dev bond0 scope kni_host")
    sh("ip", "addr", "add", "10.1.0.2/24", "dev", "bond0.kni", ns=NS)
    sh("ip", "link", "set", "bond0.kni", "up", ns=NS)
    sh("ip", "neigh", "replace", "10.1.0.9", "lladdr", TMAC, "dev", "bond0.kni", ns=NS)
    w0 = Wire(NS, "tp0")
    w1 = Wire(NS, "tp1")
    try:
        got = None
        for k in range(3):
            w0.send(bytes(Ether(src=TMAC, dst=mac("dp0")) / IP(src="10.1.0.9", dst="10.1.0.2") /
                          ICMP(id=99, seq=k)))
            match = lambda f: ICMP in Ether(f) and Ether(f)[ICMP].id == 99 and \
                Ether(f)[ICMP].type == 0                                      # noqa: E731
            got = w0.recv(match, 1.0) or w1.recv(match, 0.5)
            if got:
                break
        assert got is not None and Ether(got)[IP].src == "10.1.0.2"
    finally:
        w0.close()
        w1.close()
        sh("ip", "addr", "del", "10.1.0.2/24", "dev", "bond0.kni", ns=NS, check=False)
        rr.ok("dpip route del 10.1.0.2/32 dev bond0 scope kni_host")


def test_vlan_on_the_bond(rr):
    """`dpip vlan add link bond1 id 103` of the tutorial: a VLAN on a bond answers tagged."""
    from scapy.layers.l2 import Dot1Q
    from support.tagged_wire import TaggedWire
    rr.ok("dpip vlan add link bond0 id 103")
    rr.ok("dpip addr add 10.103.0.1/24 dev bond0.103")
    w0, w1 = TaggedWire(NS, "tp0"), TaggedWire(NS, "tp1")
    try:
        w0.send(bytes(Ether(src=TMAC, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=103) /
                      ARP(op=1, hwsrc=TMAC, psrc="10.103.0.9", pdst="10.103.0.1")))
        match = lambda f: Dot1Q in Ether(f) and Ether(f)[Dot1Q].vlan == 103 and \
            ARP in Ether(f) and Ether(f)[ARP].op == 2                        # noqa: E731
        got = w0.recv(match, 1.0) or w1.recv(match, 0.5)     # mode 0: either slave
        assert got is not None and Ether(got)[ARP].hwsrc == mac("dp0")
    finally:
        w0.close()
        w1.close()
        rr.ok("dpip addr del 10.103.0.1/24 dev bond0.103")
        rr.ok("dpip vlan del bond0.103")


def test_slave_link_down_is_seen(rr):
    sh("ip", "link", "set", "tp1", "down", ns=NS)
    try:
        def slave(name):
            bond = rr.ok("dpip link show bond0")["data"]["ports"][0]["bond"]
            return next(s for s in bond["slaves"] if s["name"] == name)
        assert wait(lambda: not slave("dpdk1")["up"] and not slave("dpdk1")["active"], 5)
        assert slave("dpdk0")["active"]
    finally:
        sh("ip", "link", "set", "tp1", "up", ns=NS)
    assert wait(lambda: all(s["active"] for s in rr.ok("dpip link show bond0")["data"]
                            ["ports"][0]["bond"]["slaves"]), 5)


@pytest.mark.parametrize("line, why", [
    ("bond bond1 mode 2 slaves dpdk0 dpdk1", "mode 0 (round-robin) or 4"),
    ("bond bond1 mode 4 slaves dpdk0 dpdk0", "distinct"),
    ("bond bond1 mode 4 slaves dpdk0 dpdk9", "not a data port"),
    ("bond bond1 mode 4 slaves dpdk0 dpdk1 primary dpdk2", "not one of the bond's slaves"),
    ("bond bond1 mode 0 slaves dpdk0 dpdk1 xmit-policy layer34", "mode 4"),
    ("bond bond1 mode 4 slaves dpdk0 dpdk1 lacp-rate fast", "always asks its partner"),
])
def test_bond_errors(tmp_path, line, why):
    from rlb.control.config import ConfigError, check, read_file
    conf = tmp_path / "x.conf"
    conf.write_text("dataplane\n port dpdk0 net_af_packet0,iface=a0\n"
                    " port dpdk1 net_af_packet1,iface=a1\n"
                    f" port dpdk2 net_af_packet2,iface=a2\n {line}\n!\n")
    with pytest.raises(ConfigError) as e:
        check(read_file(str(conf)), str(conf))
    assert why in str(e.value)


# ------------------------------------------------- mode 4 with a real LACP partner

LNS, SW, SRV = "rlbt-lacp", "rlbt-lacpsw", "rlbt-lacpsv"
LACP_CONF = """\
dataplane
 port dpdk0 net_af_packet0,iface=dp0
 port dpdk1 net_af_packet1,iface=dp1
 port dpdk2 net_af_packet2,iface=dp2
 bond bond0 mode 4 slaves dpdk0 dpdk1 primary dpdk0 xmit-policy layer34
 forwarding
!
dpip addr add 10.1.0.1/24 dev bond0
dpip addr add 10.2.0.1/24 dev dpdk2
"""


@pytest.fixture(scope="module")
def lacp(tmp_path_factory):
    """rlb's bond0 (dp0, dp1) faces an Open vSwitch LACP bond (tp0, tp1) in namespace SW
    whose internal port `cli` is the client 10.1.0.9; dpdk2 leads to a server 10.2.0.9."""
    from rlb.lab.ovs import Ovs
    for ns in (LNS, SW, SRV):
        del_ns(ns)
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    for a, b, peer in (("dp0", "tp0", SW), ("dp1", "tp1", SW), ("dp2", "tp2", SRV)):
        sh("ip", "-n", LNS, "link", "add", a, "type", "veth", "peer", "name", b, "netns", peer)
        for ns, dev in ((LNS, a), (peer, b)):
            sh("ethtool", "-K", dev, "tx", "off", "gro", "off", ns=ns, check=False)
            sh("ip", "-n", ns, "link", "set", dev, "up")
    sh("ip", "-n", SRV, "addr", "add", "10.2.0.9/24", "dev", "tp2")
    sh("ip", "-n", SRV, "route", "add", "default", "via", "10.2.0.1")
    ovs = Ovs(SW, tmp_path_factory.mktemp("ovs") / "run").start()
    d = None
    try:
        ovs.bridge("br0")
        ovs.bond("br0", "bond0", ["tp0", "tp1"], mode="balance-tcp")
        ovs.internal("br0", "cli", "10.1.0.9/24")
        sh("ip", "-n", SW, "route", "add", "default", "via", "10.1.0.1")
        d = Daemon(LNS, "rlbt-lacp", LACP_CONF, tmp_path_factory.mktemp("lacp")).start()
        yield d, ovs
    finally:
        rc = d.stop() if d is not None else 0
        ovs.stop()
        for ns in (LNS, SW, SRV):
            del_ns(ns)
        assert rc == 0, d.log.read_text()


def _slaves(d):
    return {s["name"]: s for s in d.ok("dpip link show bond0")["data"]["ports"][0]["bond"]["slaves"]}


def test_lacp_negotiated_with_ovs(lacp):
    d, ovs = lacp
    ours = mac("dp0", LNS)

    def negotiated():
        st = ovs.lacp_status("bond0")
        s = _slaves(d)
        return st["negotiated"] and all(
            m["status"] == "current" and m["attached"] and m["partner_sys_id"] == ours
            for m in st["members"].values()) and all(
            x["lacp"]["selected"] == "selected" and
            x["lacp"]["partner"]["system"] == st["sys_id"] and
            "distributing" in x["lacp"]["actor"]["state"] for x in s.values())
    assert wait(negotiated, 30), (ovs.appctl("lacp/show", "bond0"), _slaves(d))
    out = d.ok("dpip link show bond0")["text"]
    assert "bond mode 4 (802.3ad) primary dpdk0 xmit-policy layer34" in out
    assert f"partner {ovs.lacp_status('bond0')['sys_id']}" in out
    ping = sh("ip", "netns", "exec", SW, "ping", "-c", "3", "-i", "0.2", "-W", "1", "10.2.0.9",
              check=False)
    assert ping.returncode == 0, ping.stdout


def test_slave_down_mid_transfer_keeps_the_connection(lacp):
    """A TCP download from the server through the bond: the slave carrying it loses its
    link half way; the transfer ends complete and the bond goes on with the other."""
    d, ovs = lacp
    size, chunk = 6_000_000, 60_000          # ~3 s at 100 chunks a second
    srv = socket.socket()
    got = []
    ready = threading.Event()

    def serve():
        from support.netns import in_netns
        with in_netns(SRV):
            s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("10.2.0.9", 5001))
        s.listen(1)
        s.settimeout(10)
        ready.set()
        conn, _ = s.accept()
        with conn:
            sent = 0
            while sent < size:
                conn.sendall(b"z" * chunk)
                sent += chunk
                time.sleep(0.01)
        s.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    assert ready.wait(5)
    from support.netns import in_netns
    with in_netns(SW):
        srv = socket.create_connection(("10.2.0.9", 5001), timeout=10)
    before = {k: v["stats"]["opackets"] for k, v in _slaves(d).items()}
    total, cut = 0, None
    end = time.monotonic() + 30
    try:
        while total < size and time.monotonic() < end:
            data = srv.recv(65536)
            if not data:
                break
            total += len(data)
            if cut is None and total > size // 3:
                now = {k: v["stats"]["opackets"] for k, v in _slaves(d).items()}
                cut = max(now, key=lambda k: now[k] - before[k])     # the one carrying it
                sh("ip", "-n", SW, "link", "set", "tp" + cut[-1], "down")
        got.append(total)
    finally:
        srv.close()
        t.join(5)
    try:
        assert cut is not None
        assert total == size, f"{total} of {size} bytes: the connection broke at the cut"
        s = _slaves(d)
        assert not s[cut]["active"] and s[cut]["in_bond"] is False
        other = next(k for k in s if k != cut)
        assert s[other]["active"]
    finally:
        sh("ip", "-n", SW, "link", "set", "tp" + cut[-1], "up", check=False)
    assert wait(lambda: all(x["active"] for x in _slaves(d).values()), 30), _slaves(d)
