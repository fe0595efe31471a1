"""FRR's daemons run by rlb (rlb/routing/frr.py) for real: two namespaces joined by a
veth, zebra + ospfd in each with every path under a directory of the test's own; the
adjacency comes up Full over a point-to-point link with fast hellos and each side learns
the other's loopback; vtysh answers (and its JSON parses); a daemon killed is found
dead and started again; stop() leaves no process; a command FRR refuses comes back in
FRR's words; FRR missing is a clear error."""
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from rlb.routing.frr import Frr, RoutingError, alive, installed

A, B = "rlbt-frr-a", "rlbt-frr-b"
ADDR = {A: ("10.255.1.1/30", "10.255.9.1"), B: ("10.255.1.2/30", "10.255.9.2")}


def sh(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True)


def ospfd_conf(ns):
    net, rid = ADDR[ns]
    return (f"hostname {ns}\n"
            "interface eth0\n ip ospf network point-to-point\n"
            " ip ospf dead-interval minimal hello-multiplier 4\n!\n"
            f"router ospf\n ospf router-id {rid}\n network 10.255.1.0/30 area 0\n"
            " redistribute connected\n!\n")


@pytest.fixture(scope="module")
def base():
    """A directory the daemons (user frr) can walk into: pytest's own are root's only."""
    d = Path(tempfile.mkdtemp(prefix="rlbt-frr-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def pair(base):
    for ns in (A, B):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "link", "add", "rlbtfrr0", "netns", A, "type", "veth", "peer", "name",
       "rlbtfrr1", "netns", B)
    for ns, dev in ((A, "rlbtfrr0"), (B, "rlbtfrr1")):
        sh("ip", "-n", ns, "link", "set", dev, "name", "eth0")
        sh("ip", "-n", ns, "addr", "add", ADDR[ns][0], "dev", "eth0")
        sh("ip", "-n", ns, "addr", "add", f"{ADDR[ns][1]}/32", "dev", "lo")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
    frrs = {ns: Frr(base / ns, ns) for ns in (A, B)}
    try:
        for ns, f in frrs.items():
            f.start({"ospfd": ospfd_conf(ns)})
        yield frrs
    finally:
        for f in frrs.values():
            f.stop()
        for ns in (A, B):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def full(f):
    try:
        nbrs = f.json("show ip ospf neighbor")["neighbors"]
    except RoutingError:
        return False
    return any(n[0]["state"].startswith("Full") for n in nbrs.values())


def until(pred, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.2)
    return pred()


def test_the_adjacency_comes_up_and_routes_are_learned(pair):
    assert until(lambda: full(pair[A]) and full(pair[B])), pair[A].vtysh("show ip ospf neighbor")
    # the other side's loopback, redistributed as connected, in the kernel of each
    assert until(lambda: "10.255.9.2" in sh("ip", "-n", A, "route").stdout, 30)
    assert until(lambda: "10.255.9.1" in sh("ip", "-n", B, "route").stdout, 30)
    assert "ospf router-id 10.255.9.1" in pair[A].vtysh("show running-config")


def test_a_killed_daemon_is_found_dead_and_started_again(pair):
    f = pair[A]
    pid = f.pid("ospfd")
    os.kill(pid, signal.SIGKILL)
    assert until(lambda: f.dead() == ["ospfd"], 5)
    assert f.revive() == ["ospfd"]
    assert f.pid("ospfd") not in (None, pid) and f.dead() == []
    assert until(lambda: full(f) and full(pair[B]))


def test_frr_s_refusal_comes_back_in_its_words(pair):
    with pytest.raises(RoutingError) as e:
        pair[A].vtysh("configure terminal", "router ospf", "ospf router-id 300.1.1.1")
    assert "300.1.1.1" in str(e.value) or "Unknown command" in str(e.value) or \
        "malformed" in str(e.value).lower()


def test_stop_leaves_no_process(pair, base):
    f = Frr(base / "c", A, daemons=("ospfd", "bfdd"))
    f.start()
    pids = [f.pid(d) for d in f.daemons]
    assert f.daemons == ("zebra", "bfdd", "ospfd") and None not in pids
    f.stop()
    assert f.dead() == list(f.daemons)
    assert not any(alive(pid) for pid in pids)


def test_frr_missing_or_unknown_daemons_are_clear_errors(tmp_path):
    with pytest.raises(RoutingError, match="FRR is not installed"):
        installed(tmp_path)
    with pytest.raises(RoutingError, match="FRR is not installed"):
        Frr(tmp_path / "x", None, bin_dir=tmp_path).start()
    with pytest.raises(RoutingError, match="unknown FRR daemon"):
        Frr(tmp_path / "x", None, daemons=("ripd",))
