"""The tutorial's "simple FNAT two-arm" on two VLANs of one port ("vlan-two-arm"): dpdk0
faces an Open vSwitch trunk (VLANs 100 and 200, in rlb-ovs); dpdk0.100 is the WAN (the
client on the switch's access port of VLAN 100), dpdk0.200 the LAN (the real servers on
VLAN 200's). Curl through the VIP reaches both real servers, the frames on the trunk are
tagged (seen on the wire with their tags), each VLAN counts its own packets, and the
client pings the kernel's address on dpdk0.100.kni."""
import re
import subprocess
import time

import pytest
from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.l2 import Dot1Q, Ether

from rlb import lab
from rlb.lab import state
from rlb.lab.topologies import (OVS_NODE, VLAN_KNI, VLAN_LAN, VLAN_WAN, _ovs_side, get,
                                ns_name, port_iface)
from support.cluster import rlb
from support.tagged_wire import TaggedWire

TOPO = get("vlan-two-arm")
VIP = TOPO.vip
LIP = "192.168.100.200"
TRUNK = _ovs_side("lb", port_iface("dpdk0"))      # the switch's end of dpdk0's veth


def client(*cmd, timeout=60):
    return subprocess.run(["ip", "netns", "exec", "rlb-client", *cmd], capture_output=True,
                          text=True, timeout=timeout)


def curl(timeout=5):
    return client("curl", "-s", "-m", str(timeout), f"http://{VIP}/")


def counters(dev):
    return rlb("lb", f"dpip -s link show {dev}", as_json=True)["ports"][0]["stats"]


@pytest.fixture(scope="module")
def vlan_lab():
    lab.down()
    try:
        t = time.monotonic()
        lab.up(TOPO.name, tutorial=True)
        print(f"\nvlan-two-arm up in {time.monotonic() - t:.1f}s")
        yield
    finally:
        lab.down()


def test_the_lb_has_the_two_vlans_and_the_switch_is_recorded(vlan_lab):
    shown = rlb("lb", "dpip vlan show")
    assert f"dpdk0.{VLAN_WAN}" in shown and f"dpdk0.{VLAN_LAN}" in shown, shown
    for vid in (VLAN_WAN, VLAN_LAN):
        p = rlb("lb", f"dpip link show dpdk0.{vid}", as_json=True)["ports"][0]
        assert p["kind"] == "vlan" and p["vlan"] == {"id": vid, "link": "dpdk0",
                                                     "proto": "802.1q"}, p
        assert p["kni"] == f"dpdk0.{vid}.kni"
    st = state.load()
    assert {f"ovsdb-server@{OVS_NODE}", f"ovs-vswitchd@{OVS_NODE}"} <= set(st["processes"])


def test_curl_through_the_vip_on_vlans(vlan_lab):
    wan, lan = counters(f"dpdk0.{VLAN_WAN}"), counters(f"dpdk0.{VLAN_LAN}")
    for _ in range(6):
        r = curl()
        assert re.fullmatch(r"Your ip:port : 10\.0\.0\.48:\d+\n", r.stdout), r.stdout + r.stderr
    text = rlb("lb", "ipvsadm -ln --stats")
    conns = [int(m) for m in re.findall(r"-> 192\.168\.100\.\d:80\s+(\d+)", text)]
    assert len(conns) == 2 and min(conns) >= 3, text      # both real servers, in turn
    # each VLAN interface counted its side of the 6 connections
    wan2, lan2 = counters(f"dpdk0.{VLAN_WAN}"), counters(f"dpdk0.{VLAN_LAN}")
    for before, after in ((wan, wan2), (lan, lan2)):
        assert after["rx_pkts"] - before["rx_pkts"] >= 6 * 4, (before, after)
        assert after["tx_pkts"] - before["tx_pkts"] >= 6 * 4, (before, after)


def test_frames_on_the_trunk_are_tagged(vlan_lab):
    """On the switch's end of the trunk: the LB's answer to the client leaves tagged
    100, its connection to a real server (from the LIP) tagged 200, and the client's and
    real servers' frames come in tagged by the switch."""
    wire = TaggedWire(ns_name(OVS_NODE), TRUNK)
    frames = []
    try:
        wire.drain()
        for _ in range(2):
            assert curl().stdout.startswith("Your ip:port : 10.0.0.48:")
        end = time.monotonic() + 1.0
        while (f := wire.recv(lambda raw: True, timeout=max(0.0, end - time.monotonic()))):
            frames.append(Ether(f))
    finally:
        wire.close()
    tcp = [f for f in frames if TCP in f]

    def vids(pred):
        return {f[Dot1Q].vlan if Dot1Q in f else None for f in tcp if pred(f)}
    assert vids(lambda f: f[IP].src == VIP) == {VLAN_WAN}, frames       # LB -> client
    assert vids(lambda f: f[IP].src == LIP) == {VLAN_LAN}, frames       # LB -> rs
    assert tcp and None not in vids(lambda f: True)


def test_ping_the_kni_address_of_the_wan_vlan(vlan_lab):
    r = client("ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", VLAN_KNI)
    assert " 0% packet loss" in r.stdout, r.stdout + r.stderr
    out = subprocess.run(["ip", "-n", ns_name("lb"), "-br", "addr", "show",
                          f"dpdk0.{VLAN_WAN}.kni"], capture_output=True, text=True).stdout
    assert f"{VLAN_KNI}/16" in out, out         # (a tap: its state shows UNKNOWN)
    # the echo requests reached the kni through the data plane
    assert counters(f"dpdk0.{VLAN_WAN}")["to_kni"] >= 3
