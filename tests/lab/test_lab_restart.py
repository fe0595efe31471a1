"""`rlb lab up --tutorial`, `rlb lab restart lb` after the daemon is killed, and a lab's
own commit history: made at `up`, gone at `down`."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from rlb import lab
from rlb.lab import state
from rlb.lab.topologies import get

RLB = [sys.executable, "-m", "rlb"]
TOPO = get("fnat-two-arm")


def run(*args, check=True, timeout=120):
    r = subprocess.run([*RLB, *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, f"{args}: {r.stdout}{r.stderr}"
    return r


def lb(*cmds, as_json=False):
    args = ["-N", "lb"] + (["--json"] if as_json else [])
    for c in cmds:
        args += ["-c", c]
    out = run(*args).stdout
    return json.loads(out) if as_json else out


def curl(timeout=3):
    r = subprocess.run(["ip", "netns", "exec", "rlb-client", "curl", "-s", "-m", str(timeout),
                        f"http://{TOPO.vip}/"], capture_output=True, text=True,
                       timeout=timeout + 10)
    return r.stdout


def namespaces():
    """Each lab namespace with its inode: a rebuilt namespace would have a new one."""
    return {ns: os.stat(f"/run/netns/{ns}").st_ino for ns in os.listdir("/run/netns")
            if ns.startswith("rlb-")}


def kill_lb():
    rec = lab.status()["processes"]["lb"]
    os.kill(rec["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while state.alive(rec) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not state.alive(rec)
    return rec["pid"]


@pytest.fixture
def no_lab():
    lab.down()
    try:
        yield
    finally:
        lab.down()
        assert not [n for n in os.listdir("/run/netns") if n.startswith("rlb-")]
        assert not state.lb_state_base().exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_up_tutorial_then_restart_after_kill(no_lab, workers):
    out = run("lab", "up", TOPO.name, "--tutorial", "--workers", str(workers)).stdout
    assert f"saved by write memory to {state.lb_conf()}" in out, out
    assert f"try: rlb lab exec client -- curl -s http://{TOPO.vip}/\n" in out, out
    assert re.fullmatch(r"Your ip:port : 10\.0\.0\.48:\d+\n", curl())
    before = lb("show running-config")
    assert "10.0.0.100:80" in before and "192.168.100.200" in before
    nets = namespaces()
    servers = {k: v["pid"] for k, v in lab.status()["processes"].items() if k != "lb"}

    old = kill_lb()
    assert curl(timeout=2) == ""                                # nobody forwards now
    out = run("lab", "restart", "lb").stdout
    assert f"with {state.lb_conf()} (what write memory saved)" in out, out
    assert re.fullmatch(r"Your ip:port : 10\.0\.0\.48:\d+\n", curl())
    assert lb("show running-config") == before
    st = lab.status()
    assert st["processes"]["lb"]["pid"] != old and st["processes"]["lb"]["alive"]
    assert {k: v["pid"] for k, v in st["processes"].items() if k != "lb"} == servers
    assert namespaces() == nets                                 # not rebuilt

    # A commit that was not saved comes back too: the history is newer than lb.conf.
    lb("configure", "ip vs timeout tcp 600 tcpfin 30 udp 120", "commit comment longer")
    committed = lb("show running-config")
    assert committed != before
    kill_lb()
    out = run("lab", "restart", "lb").stdout
    assert "with the last commit of its history" in out, out
    assert lb("show running-config") == committed
    assert re.fullmatch(r"Your ip:port : 10\.0\.0\.48:\d+\n", curl())
    assert namespaces() == nets


def test_restart_without_a_lab_is_a_clear_error(no_lab):
    r = run("lab", "restart", "lb", check=False)
    assert r.returncode == 1 and r.stderr == "rlb lab: error: no lab is up: " \
                                             "`rlb lab up NAME` first\n"


def test_each_lab_starts_with_an_empty_history(no_lab):
    out = run("lab", "up", TOPO.name).stdout
    assert (f"`rlb lab script {TOPO.name}` prints the tutorial's lines for it, "
            f"`rlb lab up {TOPO.name} --tutorial` applies them") in out, out
    assert "(once the LB is configured)" in out
    assert lb("write memory").endswith(f"[OK] {state.lb_conf()}\n")     # README names it
    lb("configure", "ip vs timeout tcp 600 tcpfin 30 udp 120", "commit comment first lab")
    commits = lb("show configuration commits", as_json=True)["commits"]
    assert [c["comment"] for c in commits][:1] == ["first lab"]
    assert state.lb_state_base().is_dir()
    lab.down()
    assert not state.lb_state_base().exists()
    lab.up(TOPO.name)
    commits = lb("show configuration commits", as_json=True)["commits"]
    assert [c["comment"] for c in commits] == [f"startup from {state.lb_conf()}"]


def test_restart_of_a_lab_without_lb_is_a_clear_error(no_lab):
    run("lab", "up", TOPO.name, "--no-lb")
    nets = namespaces()
    r = run("lab", "restart", "lb", check=False)
    assert r.returncode == 1 and r.stderr.startswith(
        "rlb lab: error: this lab runs no LB daemon (up with --no-lb, or it was stopped)")
    assert namespaces() == nets and "lb" not in lab.status()["processes"]
