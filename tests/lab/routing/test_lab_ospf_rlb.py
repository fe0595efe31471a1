"""The OSPF cluster with rlb's own `router ospf` on the LBs ("fnat-ospf-rlb-two-arm"): no
FRR file on lb1 or lb2; rlb runs zebra, ospfd and bfdd from its section and announces
the VIP from its service as an intra-area route (the VIP on lo, `network VIP/32`). The
switch gets both nexthops, curl answers, the shows are FRR's from rlb's shell, and a
killed LB is dropped within 1 s with BFD (an external route took 1.2 s)."""
import os
import re
import signal
import time

import pytest

from rlb import lab
from rlb.lab.topologies import OSPF_VIP, get
from support.cluster import curl_codes, in_node, nexthops, rlb, until

TOPO = get("fnat-ospf-rlb-two-arm")
BOTH = ["172.10.0.2", "172.10.0.6"]
ECMP_WAIT = 60.0


@pytest.fixture(scope="module")
def ospf_rlb_lab():
    lab.down()
    try:
        lab.up(TOPO.name, tutorial=True)
        assert until(lambda: nexthops() == BOTH, ECMP_WAIT), rlb("lb1", "show ip ospf neighbor")
        yield
    finally:
        lab.down()


def test_the_vip_is_an_intra_area_route_from_each_lb_s_own_section(ospf_rlb_lab):
    for node in ("lb1", "lb2"):
        assert re.search(r"^10\.0\.0\.1\s+\d+\s+Full", rlb(node, "show ip ospf neighbor"), re.M)
        assert rlb(node, "show routing vip", as_json=True)[0]["state"] == "announced"
        lo = in_node(node, "ip", "-o", "addr", "show", "dev", "lo").stdout
        assert f"{OSPF_VIP}/32" in lo
        assert "router ospf" in rlb(node, "show running-config")
    route = in_node("switch", "vtysh", "--vty_socket", "/run/rlb/lab/switch/frr", "-c",
                    f"show ip ospf route {OSPF_VIP}/32").stdout or ""
    text = in_node("switch", "vtysh", "--vty_socket", "/run/rlb/lab/switch/frr", "-c",
                   "show ip ospf route").stdout
    assert re.search(rf"^N\s+{re.escape(OSPF_VIP)}/32", text, re.M), route + text
    assert curl_codes(range(44000, 44010)) == ["200"] * 10


def test_a_killed_lb_is_dropped_within_1_s(ospf_rlb_lab):
    assert until(lambda: nexthops() == BOTH, ECMP_WAIT)
    assert until(lambda: "Status: up" in rlb("lb1", "show bfd peers"), 15)
    time.sleep(6)                       # the switch's SPF hold-down of the start is over
    pid = lab.status()["processes"]["lb1"]["pid"]
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    assert until(lambda: nexthops() == ["172.10.0.6"], 5, step=0.02), nexthops()
    took = time.monotonic() - t0
    print(f"\nkill -9 of lb1 (rlb's own OSPF, BFD) -> one nexthop in {took:.3f} s")
    assert took <= 1.0, took
    assert curl_codes(range(44100, 44120)) == ["200"] * 20
