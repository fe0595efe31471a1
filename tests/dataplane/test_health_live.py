"""Health checks in a real daemon with its data plane: the check clauses through
configuration mode, results moving weights in the data plane (ipvsadm -ln), the event
log, `show ip vs health` and its json, maintenance, the sorry server and the quorum
commands, slow start, state kept across commits, bad input refused.

MISC checks (a file tested by `test -f`) make the servers' health the test's to set,
without a network path: the network checkers and the modes' probe paths have tests of
their own (tests/lab/health, test_dr_tunnel.py's probe cases)."""
import json
import time
from functools import partial

import pytest

from support import netns
from support.netns import Daemon, del_ns, fnat_two_port, make_ns, wait

NS, INSTANCE = "rlbt-health", "rlbt-health"
RS1, RS2, SORRY = "192.168.100.2:80", "192.168.100.3:80", "192.168.100.9:80"
VS = "virtual-server tcp 10.0.0.100:80"
Session = partial(netns.Session, INSTANCE)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    d = tmp_path_factory.mktemp("health")
    flags = {rs: d / rs.replace(":", "_") for rs in (RS1, RS2)}
    for f in flags.values():
        f.touch()
    make_ns(NS, [("dp0", "tp0"), ("dp1", "tp1")])
    conf = fnat_two_port() + "".join(f"{line}\n" for line in (
        VS,
        *(f" real-server {rs} check misc command \"test -f {f}\" interval 0.5 fall 1"
          for rs, f in flags.items()),
        "!"))
    daemon = Daemon(NS, INSTANCE, conf, d).start()
    daemon.flags, daemon.dir = flags, d
    try:
        yield daemon
    finally:
        rc = daemon.stop()
        del_ns(NS)
        assert rc == 0, daemon.log.read_text()


def weights(d):
    """{server: weight now} as ipvsadm -ln lists them (the data plane's weights)."""
    svc = d.ok("ipvsadm -ln")["data"]["services"][0]
    return {f"{x['addr']}:{x['port']}": x["weight"] for x in svc["dests"]}


def health(d):
    rows = d.ok("show ip vs health")["data"]
    return {s["server"]: s for s in rows[0]["servers"]}, rows[0]


def configure(*lines):
    s = Session()
    try:
        s.ok("enable", "configure", VS, *lines)
        return s.ok("commit")
    finally:
        s.close()


def test_both_up_at_start(lab):
    assert wait(lambda: weights(lab) == {RS1: 1, RS2: 1})
    servers, svc = health(lab)
    assert svc["state"] == "UP" and {s["state"] for s in servers.values()} == {"UP"}


def test_a_failing_check_sets_weight_0_logs_why_and_shows_it(lab):
    lab.flags[RS1].unlink()
    try:
        assert wait(lambda: weights(lab)[RS1] == 0), weights(lab)
        servers, svc = health(lab)
        rs1 = servers[RS1]
        assert rs1["state"] == "DOWN" and rs1["weight"] == 0 and rs1["configured_weight"] == 1
        assert rs1["error"] == "exit 1" and rs1["last"] == "failed"
        assert svc["state"] == "UP"               # rs2 holds the quorum
        text = lab.ok("show ip vs health tcp 10.0.0.100:80")["text"]
        assert "192.168.100.2:80" in text and "DOWN" in text and "exit 1" in text
        assert "real server 192.168.100.2:80 DOWN: exit 1 after 1 failure" in \
            lab.log.read_text()
        # the data plane has it at 0: the configuration keeps 1
        assert "real-server 192.168.100.2:80 mode fnat weight 1 check misc" in \
            lab.ok("show running-config")["text"]
    finally:
        lab.flags[RS1].touch()
    assert wait(lambda: weights(lab)[RS1] == 1)
    assert "real server 192.168.100.2:80 UP" in lab.log.read_text()


def test_json_of_every_form(lab):
    for line in ("show ip vs health", "show ip vs health tcp 10.0.0.100:80"):
        r = lab.call(line + " | json")
        assert r["ok"], r
        rows = json.loads(r["text"])
        assert rows[0]["service"] == "TCP 10.0.0.100:80"
        assert {"state", "since", "last", "error", "latency", "successes", "failures",
                "weight", "configured_weight", "passive"} <= set(rows[0]["servers"][0])
    assert not lab.call("show ip vs health tcp 10.9.9.9:80")["ok"]


def test_changing_one_check_keeps_the_state_of_the_others(lab):
    before, _ = health(lab)
    configure(f"real-server {RS2} interval 0.4")
    after, _ = health(lab)
    assert after[RS1]["since"] == before[RS1]["since"]
    assert after[RS1]["successes"] >= before[RS1]["successes"]
    assert "interval 0.4" in after[RS2]["check"]
    assert after[RS2]["since"] == before[RS2]["since"]      # its state too: only settings moved
    configure(f"real-server {RS2} interval 0.5")


def test_maintenance(lab):
    configure(f"real-server {RS2} disabled")
    assert wait(lambda: weights(lab)[RS2] == 0)
    servers, _ = health(lab)
    assert servers[RS2]["disabled"] and servers[RS2]["state"] == "UP"
    assert "DISABLED" in lab.ok("show ip vs health")["text"]
    configure(f"real-server {RS2} enabled")
    assert wait(lambda: weights(lab)[RS2] == 1)


def test_all_down_brings_the_sorry_server_and_runs_quorum_down(lab):
    mark = lab.dir / "quorum-down-ran"
    configure(f"sorry-server {SORRY}", f"quorum-down touch {mark}",
              f"quorum-up rm -f {mark}")
    assert SORRY not in weights(lab)                 # standing by: not in the list
    for f in lab.flags.values():
        f.unlink()
    try:
        assert wait(lambda: weights(lab) == {RS1: 0, RS2: 0, SORRY: 1}), weights(lab)
        _, svc = health(lab)
        assert svc["state"] == "DOWN" and svc["sorry_active"]
        assert wait(lambda: mark.exists())
        assert "service TCP 10.0.0.100:80 DOWN: quorum lost" in lab.log.read_text()
    finally:
        for f in lab.flags.values():
            f.touch()
    assert wait(lambda: weights(lab) == {RS1: 1, RS2: 1})
    assert wait(lambda: not mark.exists())           # quorum-up ran
    configure("no sorry-server", "no quorum-down", "no quorum-up")


def test_on_failure_remove_takes_it_out_of_the_list(lab):
    configure("on-failure remove")
    lab.flags[RS1].unlink()
    try:
        assert wait(lambda: RS1 not in weights(lab)), weights(lab)
    finally:
        lab.flags[RS1].touch()
    assert wait(lambda: weights(lab).get(RS1) == 1)
    configure("on-failure inhibit")


def test_slow_start_ramps_the_weight(lab):
    configure(f"real-server {RS1} weight 100 slow-start 4")
    lab.flags[RS1].unlink()
    try:
        assert wait(lambda: weights(lab)[RS1] == 0)
    finally:
        lab.flags[RS1].touch()
    seen = set()
    end = time.monotonic() + 8
    while time.monotonic() < end and 100 not in seen:
        seen.add(weights(lab)[RS1])
        time.sleep(0.2)
    ramp = sorted(seen - {0, 100})
    assert len(ramp) >= 3 and 100 in seen, seen          # steps between, then the full weight
    configure(f"real-server {RS1} weight 1 slow-start 0")


def test_misc_dynamic_sets_the_weight_from_the_exit_code(lab):
    script = lab.dir / "weight.sh"
    script.write_text("#!/bin/sh\nexit $(cat %s)\n" % (lab.dir / "code"))
    script.chmod(0o755)
    (lab.dir / "code").write_text("7")
    configure(f"real-server {RS2} check misc command {script} dynamic yes interval 0.5")
    assert wait(lambda: weights(lab)[RS2] == 5), weights(lab)      # 7 - 2
    (lab.dir / "code").write_text("0")
    assert wait(lambda: weights(lab)[RS2] == 1), weights(lab)      # 0: the configured weight
    (lab.dir / "code").write_text("1")
    assert wait(lambda: weights(lab)[RS2] == 0), weights(lab)      # 1: down
    configure(f"real-server {RS2} check misc command \"test -f {lab.flags[RS2]}\" "
              "interval 0.5 fall 1")
    assert wait(lambda: weights(lab)[RS2] == 1)


@pytest.mark.parametrize("line, why", [
    (f"real-server {RS1} check tcp interval 0", "interval"),
    (f"real-server {RS1} check tcp interval 1 timeout 2", "longer than interval"),
    (f"real-server {RS1} check http path /x status 700", "status"),
    (f"real-server {RS1} check tcp path /health", "unknown setting 'path'"),
    (f"real-server {RS1} check smtp", "Invalid input"),
    (f"real-server {RS1} check misc command /no/such/program", "not an executable"),
    (f"real-server {RS1} rise 0", "rise"),
    ("quorum 0", "quorum must be"),
])
def test_bad_input_is_refused_and_changes_nothing(lab, line, why):
    before = lab.ok("show running-config")["text"]
    s = Session()
    try:
        s.ok("enable", "configure", VS)
        r = s(line)
        assert not r["ok"] and why in r["error"], r
    finally:
        s.close()
    assert lab.ok("show running-config")["text"] == before


def test_rlb_f_refuses_a_bad_clause_with_status_1(lab, tmp_path):
    import subprocess
    import sys
    f = tmp_path / "bad.conf"
    f.write_text(f"{VS}\n real-server {RS1} check tcp timeout 9\n")
    before = lab.ok("show running-config")["text"]
    r = subprocess.run([sys.executable, "-m", "rlb", "-N", INSTANCE, "-f", str(f)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "longer than interval" in r.stdout + r.stderr, r
    assert f"{f}:2:" in r.stdout + r.stderr
    assert lab.ok("show running-config")["text"] == before


def test_omega_runs_quorum_down_when_the_daemon_stops(tmp_path):
    ns, instance = "rlbt-omega", "rlbt-omega"
    up, mark = tmp_path / "up", tmp_path / "omega-ran"
    up.touch()
    make_ns(ns, [("dp0", "tp0"), ("dp1", "tp1")])
    conf = fnat_two_port(servers=("192.168.100.2",)) + "".join(f"{line}\n" for line in (
        VS, f" real-server {RS1} check misc command \"test -f {up}\" interval 0.5",
        " omega", f" quorum-down touch {mark}", "!"))
    d = Daemon(ns, instance, conf, tmp_path).start()
    try:
        assert wait(lambda: d.ok("show ip vs health")["data"][0]["state"] == "UP")
        assert not mark.exists()
    finally:
        rc = d.stop()
        del_ns(ns)
    assert rc == 0, d.log.read_text()
    assert mark.exists(), d.log.read_text()
    assert "DOWN: shutting down" in d.log.read_text()
