"""The cluster with BGP, for real ("fnat-bgp-two-arm"): lb1 (AS 65001) and lb2 (AS 65002)
each run exabgp from rlb's own `router bgp` (BFD by FRR's bfdd beside it) and announce
the VIP from their service (`announce dpdk1`); the switch runs FRR bgpd with ECMP
(multipath-relax) and BFD. Sessions Established, two nexthops, curl and a spread over
both LBs; a service down withdraws, a drain withdraws, a refused configuration changes
nothing, a change is applied and rolled back without restarting exabgp, and a killed LB
is dropped by BFD."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlb import lab
from rlb.control import paths
from rlb.lab import manage, procs, state
from rlb.lab.topologies import OSPF_VIP, get
from rlb.routing.frr import alive
from support.cluster import cluster_up, conns, curl_codes, in_node, nexthops, rlb, until

TOPO = get("fnat-bgp-two-arm")
BOTH = ["172.10.0.2", "172.10.0.6"]
UP_WAIT = 30.0             # BGP: ~2.4 s to Established (research/routing.md 7)


@pytest.fixture(scope="module")
def bgp_lab():
    with cluster_up(TOPO, BOTH, UP_WAIT):
        yield


def summary(node):
    return rlb(node, "show bgp summary", as_json=True)


def test_sessions_are_established_with_bfd_and_the_switch_has_two_nexthops(bgp_lab):
    for node, asn in (("lb1", 65001), ("lb2", 65002)):
        s = summary(node)
        assert s["asn"] == asn and s["announced"] == [OSPF_VIP], s
        (n,) = s["neighbors"]
        assert n["peer"] in ("172.10.0.1", "172.10.0.5") and n["state"] == "Established", n
        assert n["bfd"] and n["prefixes_sent"] == 1
        assert "Established" in rlb(node, "show bgp summary")
        # bfdd starts the session once BGP has registered the peer: up a little later
        assert until(lambda: "Status: up" in rlb(node, "show bfd peers"), UP_WAIT), \
            rlb(node, "show bfd peers")
    assert procs.vtysh("switch", "show bfd peers brief").count(" up ") >= 2
    assert nexthops() == BOTH
    r = in_node("client", "curl", "-s", "-m", "5", f"http://{OSPF_VIP}/")
    assert "10.0.0.48" in r.stdout, r.stdout + r.stderr


def test_100_connections_spread_over_both_lbs(bgp_lab):
    before = {lb: conns(lb) for lb in TOPO.lbs}
    codes = curl_codes(range(43000, 43100))
    assert codes.count("200") == 100, codes
    got = {lb: conns(lb) - before[lb] for lb in TOPO.lbs}
    assert sum(got.values()) == 100 and all(30 <= n <= 70 for n in got.values()), got


def test_a_configuration_exabgp_refuses_is_refused_at_commit_and_nothing_changes(bgp_lab):
    before = rlb("lb1", "show running-config")
    r = subprocess.run([sys.executable, "-m", "rlb", "-N", state.instance("lb1"),
                        "-c", "configure", "-c", "router bgp 65001",
                        "-c", "neighbor 172.10.0.1 timers 0 2", "-c", "commit"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "exabgp refused the configuration" in r.stderr + r.stdout
    assert "holdtime must be zero or at least three seconds" in r.stderr + r.stdout
    assert "Traceback" not in r.stderr + r.stdout
    assert rlb("lb1", "show running-config") == before
    assert summary("lb1")["neighbors"][0]["state"] == "Established"


def test_a_change_is_a_reload_and_a_rollback_puts_it_back(bgp_lab):
    conf = Path(paths.bgp_dir(state.instance("lb1"))) / "exabgp.conf"
    pid = summary("lb1")["process"]
    assert "hold-time 3;" in conf.read_text()
    rlb("lb1", "configure", "router bgp 65001", "neighbor 172.10.0.1 timers 3 9", "commit")
    assert until(lambda: "hold-time 9;" in conf.read_text(), 10)
    assert until(lambda: summary("lb1")["neighbors"][0]["state"] == "Established", UP_WAIT)
    assert summary("lb1")["process"] == pid            # exabgp reloaded, not restarted
    assert until(lambda: nexthops() == BOTH, UP_WAIT)
    rlb("lb1", "configure", "rollback 1", "commit")
    assert "neighbor 172.10.0.1 timers 1 3" in rlb("lb1", "show running-config")
    assert until(lambda: "hold-time 3;" in conf.read_text(), 10)
    assert until(lambda: nexthops() == BOTH, UP_WAIT)


def test_lb1_withdraws_when_its_service_is_down_and_comes_back(bgp_lab, tmp_path):
    flag = tmp_path / "up"
    flag.touch()
    check = f'check misc command "test -f {flag}" interval 0.5 fall 1'
    rlb("lb1", "configure", f"virtual-server tcp {OSPF_VIP}:80",
        f"real-server 192.168.100.2:80 {check}", f"real-server 192.168.100.3:80 {check}",
        "commit")
    assert until(lambda: summary("lb1")["announced"] == [OSPF_VIP], 10)
    assert until(lambda: nexthops() == BOTH, UP_WAIT)
    flag.unlink()
    t0 = time.monotonic()
    assert until(lambda: nexthops() == ["172.10.0.6"], 10, step=0.05), nexthops()
    took = time.monotonic() - t0
    print(f"\nlb1 service down -> one nexthop in {took:.3f} s")
    assert took <= 0.5 + 0.5 + 1.0, took            # fall x interval + timeout + 1 s
    assert summary("lb1")["announced"] == []
    assert curl_codes(range(43200, 43230)) == ["200"] * 30
    flag.touch()
    assert until(lambda: nexthops() == BOTH, 15), nexthops()


def test_drain_withdraws_every_vip_and_undrain_brings_them_back(bgp_lab):
    assert until(lambda: nexthops() == BOTH, UP_WAIT)
    text = rlb("lb1", "routing drain")
    assert "1 VIP(s) withdrawn" in text
    assert until(lambda: nexthops() == ["172.10.0.6"], 5, step=0.05), nexthops()
    assert curl_codes(range(43300, 43320)) == ["200"] * 20
    rlb("lb1", "routing undrain")
    assert until(lambda: nexthops() == BOTH, 15), nexthops()


HOLD = """
import socket, sys, time
socks = []
for port in range(43500, 43510):
    s = socket.socket()
    s.bind(("10.0.0.48", port))
    s.connect(("%s", 80))
    socks.append(s)
print("open", flush=True)
time.sleep(float(sys.argv[1]))
"""


def test_sigterm_with_drain_on_stop_withdraws_first_then_waits_for_the_connections(bgp_lab):
    """`routing drain-on-stop 3`: SIGTERM takes the VIP away from the switch at once,
    while the daemon still runs and counts its connections (ten held open from the
    client, some through lb1); it stops when they are gone or after 3 s."""
    assert until(lambda: nexthops() == BOTH, UP_WAIT)
    rlb("lb1", "configure", "routing drain-on-stop 3", "commit")
    before = conns("lb1")
    holder = subprocess.Popen(["ip", "netns", "exec", "rlb-client", sys.executable, "-c",
                               HOLD % OSPF_VIP, "20"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        assert until(lambda: conns("lb1") > before, 5)     # some of the ten through lb1
        pid = lab.status()["processes"]["lb1"]["pid"]
        os.kill(pid, signal.SIGTERM)
        t0 = time.monotonic()
        assert until(lambda: nexthops() == ["172.10.0.6"], 5, step=0.02), nexthops()
        print(f"\nSIGTERM of lb1 (drain-on-stop) -> one nexthop in {time.monotonic() - t0:.3f} s")
        time.sleep(max(0.0, 1.5 - (time.monotonic() - t0)))
        assert alive(pid)                                # still serving, draining
        assert until(lambda: not alive(pid), 10, step=0.1)
        took = time.monotonic() - t0
        assert 2.5 <= took <= 6.0, took                  # the 3 s, not the connections' 20
        text = state.lb_log("lb1").read_text()
        assert "stopping: every VIP withdrawn; waiting up to 3s for" in text
        assert "stopping: 0 active connection(s) left" not in text
    finally:
        holder.kill()
        holder.wait()
    manage.restart_lb(node="lb1")
    assert until(lambda: nexthops() == BOTH, UP_WAIT), rlb("lb1", "show bgp summary")


def test_a_killed_lb_is_dropped_by_bfd_within_1_5_s(bgp_lab):
    assert until(lambda: nexthops() == BOTH, UP_WAIT)
    rec = lab.status()["processes"]["lb1"]
    os.kill(rec["pid"], signal.SIGKILL)                  # the daemon this lab started
    t0 = time.monotonic()
    assert until(lambda: nexthops() == ["172.10.0.6"], 5, step=0.02), nexthops()
    took = time.monotonic() - t0
    print(f"\nkill -9 of lb1 -> one nexthop in {took:.3f} s")
    assert took <= 1.5, took
    assert curl_codes(range(43400, 43420)) == ["200"] * 20
    # exabgp went with the daemon that ran it: nothing announces for a dead LB
    pidfile = Path(paths.bgp_dir(state.instance("lb1"))) / "exabgp.pid"
    assert until(lambda: not _running(pidfile), 5)


def _running(pidfile: Path) -> bool:
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    return alive(pid)
