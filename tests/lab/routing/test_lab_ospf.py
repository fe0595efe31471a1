"""The tutorial's "fnat-ospf-two-arm" in the lab, for real: two rlb instances (lb1,
lb2) each with the tutorial's lines, its kni side and FRR (zebra, ospfd) on dpdk1.kni,
an L3 switch running FRR in front of the client. OSPF comes up Full on both links, the
switch has two nexthops for the VIP, curl answers through it, and 200 connections from
the client spread over both LBs. The LB's own FRR is reached from the test with vtysh
on its socket directory, and the instances apart (`rlb -N lb1`, `-N lb2`)."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from rlb import lab
from rlb.lab import procs, state
from rlb.lab.topologies import OSPF_VIP, get
from support.cluster import conns, in_node, nexthops, rlb, until

TOPO = get("fnat-ospf-two-arm")
ECMP_WAIT = 60.0           # p2p with hello 10: ~21 s measured (research/routing.md 5.2)


@pytest.fixture(scope="module")
def ospf_lab():
    lab.down()
    try:
        lab.up(TOPO.name, tutorial=True)
        yield
    finally:
        lab.down()


def test_the_switch_gets_two_nexthops_and_ospf_is_full_everywhere(ospf_lab):
    assert until(lambda: nexthops() == ["172.10.0.2", "172.10.0.6"], ECMP_WAIT), \
        procs.vtysh("switch", "show ip ospf neighbor") + procs.vtysh("switch", "show ip route")
    for node, peer in (("lb1", "10.0.0.1"), ("lb2", "10.0.0.1"), ("switch", "192.168.100.200"),
                       ("switch", "192.168.100.202")):
        text = procs.vtysh(node, "show ip ospf neighbor")
        assert re.search(rf"^{re.escape(peer)}\s+\d+\s+Full", text, re.M), (node, text)


def test_curl_through_the_vip_answers(ospf_lab):
    assert until(lambda: len(nexthops()) == 2, ECMP_WAIT)
    r = in_node("client", "curl", "-s", "-m", "5", f"http://{OSPF_VIP}/")
    assert re.fullmatch(r"Your ip:port : 10\.0\.0\.48:\d+\n", r.stdout), r.stdout + r.stderr


def test_200_connections_spread_over_both_lbs(ospf_lab):
    assert until(lambda: len(nexthops()) == 2, ECMP_WAIT)
    before = {lb: conns(lb) for lb in TOPO.lbs}
    # 200 connections from as many client ports, one curl each (bounded: 5 s each)
    script = ("for p in $(seq 40000 40199); do curl -s -m 5 --local-port $p "
              f"-o /dev/null -w '%{{http_code}}\\n' http://{OSPF_VIP}/; done")
    r = in_node("client", "sh", "-c", script, timeout=300)
    codes = r.stdout.split()
    assert codes.count("200") == 200, r.stdout[-500:] + r.stderr[-500:]
    got = {lb: conns(lb) - before[lb] for lb in TOPO.lbs}
    assert sum(got.values()) == 200 and all(70 <= n <= 130 for n in got.values()), got


def test_each_lb_is_an_instance_of_its_own(ospf_lab):
    for node, lips in (("lb1", ("192.168.100.200", "192.168.100.201")),
                       ("lb2", ("192.168.100.202", "192.168.100.203"))):
        text = rlb(node, "show running-config")
        assert all(f"local-address {lip} dev dpdk0" in text for lip in lips), text
        assert "scope kni_host" in text
    st = lab.status()
    assert set(st["lbs"]) == {"lb1", "lb2"} and all(f["socket"] for f in st["lbs"].values())
    assert {"lb1", "lb2", "zebra@switch", "ospfd@switch", "ospfd@lb1"} <= set(st["processes"])


def test_lb1_withdraws_the_vip_when_its_service_is_down_and_comes_back(ospf_lab, tmp_path):
    """lb1 announces the VIP from its service (`announce dpdk1`): with its real servers'
    checks failing, its service goes down and it takes the VIP off dpdk1.kni; the switch
    keeps lb2's path only and every new connection succeeds; checks passing again, lb1
    announces it again after the hold-down."""
    assert until(lambda: len(nexthops()) == 2, ECMP_WAIT)
    flag = tmp_path / "up"
    flag.touch()
    check = f'check misc command "test -f {flag}" interval 0.5 fall 1'
    args = [sys.executable, "-m", "rlb", "-N", state.instance("lb1"), "-c", "configure",
            "-c", f"virtual-server tcp {OSPF_VIP}:80", "-c", "announce dpdk1 hold-down 2",
            "-c", f"real-server 192.168.100.2:80 {check}",
            "-c", f"real-server 192.168.100.3:80 {check}", "-c", "commit"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert until(lambda: rlb("lb1", "show routing vip", as_json=True)[0]["state"] ==
                 "announced", 10)
    flag.unlink()
    t0 = time.monotonic()
    assert until(lambda: nexthops() == ["172.10.0.6"], 10, step=0.05), nexthops()
    took = time.monotonic() - t0
    print(f"\nlb1 service down -> one nexthop in {took:.3f} s")
    assert took <= 0.5 + 0.5 + 1.0, took            # fall x interval + timeout + 1 s
    row = rlb("lb1", "show routing vip", as_json=True)[0]
    assert row["state"] in ("held down", "withdrawn") and "down" in row["why"], row
    codes = in_node("client", "sh", "-c", "for p in $(seq 41000 41029); do curl -s -m 5 "
                    f"--local-port $p -o /dev/null -w '%{{http_code}} ' http://{OSPF_VIP}/; "
                    "done").stdout.split()
    assert codes == ["200"] * 30, codes
    flag.touch()
    assert until(lambda: len(nexthops()) == 2, 15), nexthops()


def test_bfd_is_up_and_a_killed_lb_is_dropped_within_1_5_s(ospf_lab):
    """kill -9 of lb1's daemon: its data plane and kni go, BFD (100 ms x 3) sees it and
    the switch keeps lb2's path only, within 1.5 s; new connections all succeed."""
    assert until(lambda: len(nexthops()) == 2, ECMP_WAIT)
    assert until(lambda: procs.vtysh("switch", "show bfd peers brief").count(" up ") >= 2, 10), \
        procs.vtysh("switch", "show bfd peers brief")
    rec = lab.status()["processes"]["lb1"]
    os.kill(rec["pid"], signal.SIGKILL)                  # the daemon this lab started
    t0 = time.monotonic()
    assert until(lambda: nexthops() == ["172.10.0.6"], 5, step=0.02), nexthops()
    took = time.monotonic() - t0
    print(f"\nkill -9 of lb1 -> one nexthop in {took:.3f} s")
    assert took <= 1.5, took
    codes = in_node("client", "sh", "-c", "for p in $(seq 42000 42019); do curl -s -m 5 "
                    f"--local-port $p -o /dev/null -w '%{{http_code}} ' http://{OSPF_VIP}/; "
                    "done").stdout.split()
    assert codes == ["200"] * 20, codes
