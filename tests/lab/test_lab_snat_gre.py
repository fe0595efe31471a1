"""The tutorial's SNAT-GRE ("snat-gre"): the inside host is at a remote site and reaches
the LB only through a GRE tunnel. The site's Open vSwitch (in rlb-remote; this kernel has
no gre module) terminates the tunnel over the underlay it shares with dpdk0; the host
behind it, 192.168.100.5 on OVS's internal port, routes everything into the tunnel. The
LB's gre1 decapsulates, SNATs out of dpdk1 as 123.1.2.3 and sends the answers back into
the tunnel. Curl, ping and UDP from the host reach the server `wan` 123.1.2.1, which sees
only the WAN address; gre1 counts the packets; the underlay carries real GRE (proto 47,
IP over GRE) both ways; `rlb lab down` stops the site's OVS by PID."""
import re
import subprocess
import time

import pytest
from scapy.layers.inet import GRE, IP, TCP
from scapy.layers.l2 import Ether

from rlb import lab
from rlb.lab import procs, state
from rlb.lab.topologies import (GRE_HOST, GRE_HOST_IP, GRE_LB, GRE_MTU, GRE_NODE, GRE_SITE,
                                GRE_TUNNEL, SNAT_GW, SNAT_WAN_IP, get, ns_name, port_iface)
from support.cluster import rlb
from support.netns import Wire

TOPO = get("snat-gre")
SERVER = SNAT_GW                    # the outside: `wan`, nginx and rlb's server
YOU = re.compile(r"Your ip:port : (\d+\.\d+\.\d+\.\d+):\d+\n")


def remote(*cmd, timeout=60):
    return subprocess.run(["ip", "netns", "exec", ns_name(GRE_NODE), *cmd],
                          capture_output=True, text=True, timeout=timeout)


def curl(port=80, timeout=5):
    return remote("curl", "-s", "-m", str(timeout), f"http://{SERVER}:{port}/")


def counters(dev=GRE_TUNNEL):
    return rlb("lb", f"dpip -s link show {dev}", as_json=True)["ports"][0]["stats"]


def ovs_recs():
    procs_ = (state.load() or {}).get("processes", {})
    return {k: v for k, v in procs_.items() if k.endswith(f"@{GRE_NODE}")
            and v.get("kind") in ("ovsdb-server", "ovs-vswitchd")}


@pytest.fixture(scope="module")
def gre_lab():
    lab.down()
    try:
        t = time.monotonic()
        lab.up(TOPO.name, tutorial=True)
        print(f"\nsnat-gre up in {time.monotonic() - t:.1f}s")
        # OVS learns the LB's MAC on the underlay (it drops the packet that needed it)
        deadline = time.monotonic() + 10
        while " 0% packet loss" not in remote("ping", "-n", "-c", "1", "-W", "1",
                                              SERVER).stdout:
            assert time.monotonic() < deadline, "nothing through the tunnel in 10 s"
        yield
    finally:
        lab.down()


def test_the_lb_has_the_tunnel_and_the_site_its_ovs(gre_lab):
    assert f"{GRE_TUNNEL}: gre remote {GRE_SITE} local {GRE_LB} dev dpdk0" in \
        rlb("lb", "dpip tunnel show")
    (t,) = rlb("lb", "dpip tunnel show", as_json=True)
    assert (t["name"], t["mode"], t["local"], t["remote"], t["dev"], t["key"]) == \
        (GRE_TUNNEL, "gre", GRE_LB, GRE_SITE, "dpdk0", None)
    p = rlb("lb", f"dpip link show {GRE_TUNNEL}", as_json=True)["ports"][0]
    assert p["kind"] == "tunnel" and p["kni"] == f"{GRE_TUNNEL}.kni", p
    # the site's OVS: in the lab's state, alive, and its tunnel's inside port
    recs = ovs_recs()
    assert {f"ovsdb-server@{GRE_NODE}", f"ovs-vswitchd@{GRE_NODE}"} == set(recs)
    assert all(state.alive(r) for r in recs.values())
    ovs = procs.ovs_of(GRE_NODE)
    assert ovs.wait_route(GRE_LB) == "br-phy"
    assert "gre_sys" in ovs.appctl("tnl/ports/show")
    link = remote("ip", "-o", "link", "show", GRE_HOST).stdout
    assert f"mtu {GRE_MTU} " in link, link
    assert remote("ip", "route", "get", SERVER).stdout.split()[:5] == \
        [SERVER, "dev", GRE_HOST, "src", GRE_HOST_IP]


def test_curl_through_the_tunnel_is_snat_ed(gre_lab):
    before = counters()
    for port in (80, 8080) * 3:
        r = curl(port)
        m = YOU.fullmatch(r.stdout)
        # rlb's server (80) and nginx (8080) both see the LB's WAN address
        assert m and m.group(1) == SNAT_WAN_IP, r.stdout + r.stderr
    after = counters()
    # each connection: SYN, ACK, request, FIN, ACK in; SYN-ACK, answer, FIN... out
    assert after["rx_pkts"] - before["rx_pkts"] >= 6 * 4, (before, after)
    assert after["tx_pkts"] - before["tx_pkts"] >= 6 * 3, (before, after)
    conns = rlb("lb", "ipvsadm -lnc")
    assert re.search(rf"TCP .* {re.escape(GRE_HOST_IP)}:\d+ +{re.escape(SERVER)}:80 +"
                     rf"{re.escape(SNAT_WAN_IP)}:\d+", conns), conns


def test_ping_and_udp_through_the_tunnel(gre_lab):
    before = counters()
    r = remote("ping", "-n", "-c", "5", "-i", "0.2", "-W", "2", SERVER)
    assert " 0% packet loss" in r.stdout, r.stdout + r.stderr
    # a full-size packet of the host's MTU: 1476 inside, 1500 on the underlay
    r = remote("ping", "-n", "-c", "2", "-i", "0.2", "-W", "2", "-M", "do",
               "-s", str(GRE_MTU - 28), SERVER)
    assert " 0% packet loss" in r.stdout, r.stdout + r.stderr
    # the LB's own address on the tunnel answers too
    r = remote("ping", "-n", "-c", "2", "-i", "0.2", "-W", "2", "172.16.0.1")
    assert " 0% packet loss" in r.stdout, r.stdout + r.stderr
    after = counters()
    assert after["rx_pkts"] - before["rx_pkts"] >= 9 and \
        after["tx_pkts"] - before["tx_pkts"] >= 9, (before, after)
    conns = rlb("lb", "ipvsadm -lnc")
    assert re.search(rf"ICMP .* {re.escape(GRE_HOST_IP)}:\d+ .* {re.escape(SNAT_WAN_IP)}:",
                     conns), conns
    # UDP: the lab's echo on the server answers with the source it sees
    r = remote("python3", "-c", (
        "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
        "s.settimeout(2)\nfor _ in range(3):\n"
        f"    s.sendto(b'rlb', ('{SERVER}', {procs.UDP_ECHO_PORT}))\n"
        "    try:\n        print(s.recv(200).decode(), end=''); break\n"
        "    except TimeoutError:\n        pass"))
    m = YOU.fullmatch(r.stdout)
    assert m and m.group(1) == SNAT_WAN_IP, r.stdout + r.stderr


def test_the_underlay_carries_ip_over_gre(gre_lab):
    """Raw sockets on both ends of the underlay veth: what the site sends the LB, and
    what the LB sends the site, are IPv4 protocol 47, GRE without key carrying IPv4, the
    host's connection inside; the server's side sees only the WAN address."""
    to_lb = Wire(ns_name("lb"), port_iface("dpdk0"))          # in: from the site
    to_site = Wire(ns_name(GRE_NODE), "eth0")                  # in: from the LB
    at_wan = Wire(ns_name("wan"), "eth0")                      # in: from the LB's WAN

    def gre(src, dst):
        def match(raw):
            f = Ether(raw)
            return (IP in f and f[IP].proto == 47 and (f[IP].src, f[IP].dst) == (src, dst)
                    and GRE in f and TCP in f[GRE].payload)
        return match
    try:
        for w in (to_lb, to_site, at_wan):
            w.drain()
        r = curl()
        assert YOU.fullmatch(r.stdout), r.stdout + r.stderr
        up = to_lb.recv_all(gre(GRE_SITE, GRE_LB), timeout=0.5)
        down = to_site.recv_all(gre(GRE_LB, GRE_SITE), timeout=0.5)
        wan = [Ether(f) for f in at_wan.recv_all(lambda raw: TCP in Ether(raw), timeout=0.5)]
    finally:
        for w in (to_lb, to_site, at_wan):
            w.close()
    assert len(up) >= 4 and len(down) >= 3, (len(up), len(down))
    for raw, (src, dst) in [(f, (GRE_HOST_IP, SERVER)) for f in up] + \
                           [(f, (SERVER, GRE_HOST_IP)) for f in down]:
        g = Ether(raw)[GRE]
        assert (g.proto, g.key_present, g.chksum_present) == (0x0800, 0, 0), g
        inner = g.payload
        assert (inner[IP].src, inner[IP].dst) == (src, dst)
        assert 80 in (inner[TCP].sport, inner[TCP].dport)
    # the SYN went in with the host's MSS (its MTU less 40): nothing on the underlay
    # exceeds 1500
    syn = next(Ether(f)[GRE].payload for f in up if Ether(f)[GRE].payload[TCP].flags.S)
    assert dict(syn[TCP].options)["MSS"] == GRE_MTU - 40
    assert all(len(Ether(f)[IP]) <= 1500 for f in up + down)
    # on the WAN: the LB's address, never the inside host's
    assert wan and {f[IP].src for f in wan} == {SNAT_WAN_IP}, [f.summary() for f in wan]


def test_down_stops_the_site_s_ovs_by_pid(gre_lab):
    recs = ovs_recs()
    assert len(recs) == 2
    lab.down()
    assert not any(state.alive(r) for r in recs.values())
    assert state.load() is None
    present = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert ns_name(GRE_NODE) not in present and ns_name("lb") not in present
