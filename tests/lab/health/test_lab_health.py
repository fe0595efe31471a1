"""Health checks with the real daemon in the lab (root): nginx stopped under wrk and
started again (slow start), HTTP status, DR and Tunnel probes at the VIP, MISC (dynamic
weight), UDP, all down with a sorry server, a flapping server under hysteresis, bad
input refused, every `show ip vs health` form.

The labs run under a namespace prefix, run directory and instance of their own
(`rlbh-`, /run/rlb/hlab, `hlb`), so they never meet another lab on the same machine.
No assertion here is timed: a detection is proved by the failures counted before it
(the reason's `after N failures`), and waits are bounded only to end a stuck test."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlb import lab
from rlb.control import paths
from rlb.lab import procs, state, topologies

PREFIX = "rlbh-"
RUN = Path("/run/rlb/hlab")
INSTANCE = "hlb"
RLB = [sys.executable, "-m", "rlb", "-N", INSTANCE]
VIP = "10.0.0.100"
RS1, RS2 = "192.168.100.2", "192.168.100.3"
LIP = "192.168.100.200"             # the tutorial's FNAT local address
SORRY = "192.168.100.9"             # an address of rs2's for the sorry server
APP_PORT = 8090                     # the tests' own HTTP servers (http.server)
WAIT = 20.0                         # the bound of every wait: only a stuck test meets it


# --- the lab, isolated --------------------------------------------------------------


class Labs:
    """One lab at a time under this module's prefix; use(NAME) brings NAME up with its
    tutorial lines (the one before goes down). Processes the tests start are stopped
    by their PID at the next switch and at the end."""

    def __init__(self):
        self.name = None
        self.started: list[subprocess.Popen] = []

    def use(self, name: str):
        if self.name != name:
            self.stop_own()
            lab.down()
            self.name = None
            lab.up(name, tutorial=True)
            self.name = name
        return topologies.get(name)

    def spawn(self, node: str, *argv: str, log: Path | None = None) -> subprocess.Popen:
        """A process of the test's in a node (`ip netns exec` execs: its PID is ours)."""
        out = open(log, "wb") if log else subprocess.DEVNULL
        p = subprocess.Popen(["ip", "netns", "exec", ns(node), *argv],
                             stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        if log:
            out.close()
        self.started.append(p)
        return p

    def stop_own(self):
        for p in self.started:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.started.clear()


@pytest.fixture(scope="module")
def labs():
    saved = (topologies.NS_PREFIX, state.RUN_DIR, state.SOCK_DIR, state.LB_INSTANCE,
             paths.RUN_DIR, os.environ.get("RLB_RUN_DIR"))
    topologies.NS_PREFIX, state.RUN_DIR, state.SOCK_DIR = PREFIX, RUN, RUN
    state.LB_INSTANCE, paths.RUN_DIR = INSTANCE, str(RUN)
    os.environ["RLB_RUN_DIR"] = str(RUN)          # the daemon and every `rlb -c`
    labs = Labs()
    try:
        yield labs
    finally:
        labs.stop_own()
        lab.down()
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        (topologies.NS_PREFIX, state.RUN_DIR, state.SOCK_DIR, state.LB_INSTANCE,
         paths.RUN_DIR, env) = saved
        if env is None:
            os.environ.pop("RLB_RUN_DIR", None)
        else:
            os.environ["RLB_RUN_DIR"] = env
        assert not [n for n in left.split() if n.startswith(PREFIX)], left


@pytest.fixture
def fnat(labs):
    return labs.use("fnat-two-arm")


def ns(node: str) -> str:
    return PREFIX + node


def in_node(node, *cmd, timeout=30):
    return subprocess.run(["ip", "netns", "exec", ns(node), *cmd], capture_output=True,
                          text=True, timeout=timeout)


# --- driving the daemon -------------------------------------------------------------


def rlb(*cmds, check=True, as_json=False) -> subprocess.CompletedProcess:
    args = RLB + (["--json"] if as_json else [])
    for c in cmds:
        args += ["-c", c]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if check:
        assert r.returncode == 0, f"{cmds}: {r.stdout}{r.stderr}"
    return r


def configure(service: str, *lines: str, check=True) -> subprocess.CompletedProcess:
    """The lines in `service`'s virtual-server section, committed as one transaction."""
    return rlb("configure", f"virtual-server {service}", *lines, "commit", "end", check=check)


def running() -> str:
    return rlb("show running-config").stdout


def health(service: str = "") -> dict | list:
    out = rlb(f"show ip vs health {service}".strip() + " | json").stdout
    return json.loads(out)


def _walk(node):
    yield node
    if isinstance(node, dict):
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def _names(d: dict, key=None) -> set[str]:
    """The ways a health entry may name its object: a field holding ADDR:PORT or
    PROTO ADDR:PORT, an addr/port pair, or the key it is filed under."""
    out = {str(v) for v in d.values() if isinstance(v, str)}
    for a, p in (("addr", "port"), ("address", "port"), ("rip", "rport"), ("vip", "vport")):
        if a in d and p in d:
            out.add(f"{d[a]}:{d[p]}")
    if key is not None:
        out.add(str(key))
    return out


def server_entry(data, rs: str) -> dict | None:
    """The health entry of real server `rs` (ADDR:PORT) in `show ip vs health | json`."""
    for node in _walk(data):
        if isinstance(node, dict):
            for k, v in node.items():
                if isinstance(v, dict) and "state" in v and rs in _names(v, k):
                    return v
            if "state" in node and rs in _names(node) and not _servers(node):
                return node
    return None


def _servers(d: dict) -> list:
    for key in ("servers", "real_servers", "real-servers", "dests", "reals"):
        if key in d:
            v = d[key]
            return list(v.values()) if isinstance(v, dict) else list(v)
    return []


def service_entry(data, svc: str) -> dict | None:
    """The health entry of a service (VIP:PORT): the one that names it and has its quorum
    or its real servers."""
    def names_it(d, key=None):
        return any(n == svc or n.endswith(" " + svc) for n in _names(d, key))

    def is_service(d):
        return isinstance(d, dict) and ("quorum" in d or _servers(d))
    for node in _walk(data):
        if isinstance(node, dict):
            for k, v in node.items():
                if is_service(v) and names_it(v, k):
                    return v
            if is_service(node) and names_it(node):
                return node
    return None


def rs_entry(svc: str, rs: str) -> dict | None:
    """Real server `rs` of service `svc` (both ADDR:PORT) in `show ip vs health | json`."""
    return server_entry(service_entry(health(), svc) or {}, rs)


def rs_state(svc: str, rs: str) -> dict:
    entry = rs_entry(svc, rs)
    assert entry is not None, f"{rs} of {svc} not in show ip vs health: {health()}"
    return entry


def weights(svc: str) -> dict[str, int]:
    """`ipvsadm -ln`'s Weight column for the service's real servers (the weight now)."""
    block = _block(rlb("ipvsadm -ln").stdout, svc)
    return {m[0]: int(m[1]) for m in re.findall(r"->\s+(\S+)\s+\w+\s+(\d+)", block)}


def _block(listing: str, svc: str) -> str:
    """A service's lines of an ipvsadm listing (its real servers)."""
    parts = re.split(rf"\s{re.escape(svc)}\s", listing, maxsplit=1)
    return re.split(r"\n(?:TCP|UDP)\s", parts[1], maxsplit=1)[0] if len(parts) == 2 else ""


def dest_conns(svc: str) -> dict[str, int]:
    block = _block(rlb("ipvsadm -ln --stats --exact").stdout, svc)
    return {m[0]: int(m[1]) for m in re.findall(r"->\s+(\S+)\s+(\d+)", block)}


def until(pred, what: str, timeout: float = WAIT, step: float = 0.1):
    end = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(step)


def is_state(svc, rs, want):
    e = rs_entry(svc, rs)
    return e is not None and e.get("state") == want and e


def log_text() -> str:
    return state.lb_log().read_text(errors="replace")


def logged(svc: str, rs: str | None, what: str) -> list[str]:
    """The daemon's event-log lines of a service (and one of its real servers) whose
    state part matches `what` (`DOWN: http status 404`, `UP`): the log names the
    service, then the server, then the state and its reason."""
    head = re.escape(svc) + (rf"\b.* {re.escape(rs)}" if rs else "")
    return re.findall(rf"^.*\b{head} {what}.*$", log_text(), re.M)


def add_service(script_lines):
    rlb(*script_lines)


def fnat_service(port: int, udp=False, rs_port=None, servers=(RS1, RS2)):
    """An FNAT service on the lab's VIP, as the tutorial makes it (its lines, another port)."""
    add_service(topologies.get("fnat-two-arm").script(
        net=False, vport=port, udp=udp, rs_port=rs_port, servers=servers))


def http_app(labs, node: str, addr: str, files: dict[str, str], tmp: Path,
             port=APP_PORT) -> Path:
    """python's http.server on addr:port in `node`, serving `files` (others: 404); its
    log (a line per request, the client's address first) is the returned file."""
    root = tmp / f"www-{node}-{addr}"
    root.mkdir()
    for name, body in files.items():
        (root / name).write_text(body)
    log = tmp / f"http-{node}-{addr}.log"
    labs.spawn(node, sys.executable, "-u", "-m", "http.server", "--bind", addr,
               "--directory", str(root), str(port), log=log)
    until(lambda: f"{addr}:{port} " in in_node(node, "ss", "-Hltn").stdout,
          f"http.server on {node} {addr}:{port}")
    return log


def wrk(seconds, port, conns=8):
    return subprocess.Popen(
        ["ip", "netns", "exec", ns("client"), "wrk", "-t1", f"-c{conns}", f"-d{seconds}s",
         "--timeout", "2s", "-H", "Connection: close", f"http://{VIP}:{port}/"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def parse_wrk(out):
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return (reqs, sum(map(int, errors.groups())) if errors else 0,
            int(non2xx.group(1)) if non2xx else 0)


def finish(p: subprocess.Popen, timeout=40) -> str:
    try:
        return p.communicate(timeout=timeout)[0]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


# --- FNAT two-arm -------------------------------------------------------------------

CHECK = "interval 0.5 timeout 0.5 rise 1 fall 2"


def test_nginx_stopped_under_wrk_then_back_with_slow_start(fnat):
    svc = f"{VIP}:8080"
    fnat_service(8080)
    rlb(f"ipvsadm -e -t {svc} -r {RS1}:8080 -b -w 10")
    configure(f"tcp {svc}", f"real-server {RS1}:8080 check tcp {CHECK} slow-start 6",
              f"real-server {RS2}:8080 check tcp {CHECK}")
    assert f"real-server {RS1}:8080" in running() and "slow-start 6" in running()
    until(lambda: is_state(svc, f"{RS1}:8080", "UP") and is_state(svc, f"{RS2}:8080", "UP"),
          "both up")
    assert weights(svc) == {f"{RS1}:8080": 10, f"{RS2}:8080": 1}

    load = wrk(8, 8080)
    try:
        time.sleep(2)
        rec = state.load()["processes"]["nginx@rs1"]
        before = dest_conns(svc)[f"{RS1}:8080"]
        procs.stop([rec], 5.0)                          # by its recorded PID
        until(lambda: weights(svc).get(f"{RS1}:8080") == 0, "rs1 at weight 0")
        at_zero = dest_conns(svc)[f"{RS1}:8080"]
        out = finish(load)
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()
    down = rs_state(svc, f"{RS1}:8080")
    assert down["state"] == "DOWN" and down.get("error"), down
    # detected after exactly `fall` failed checks: within fall x interval + timeout
    assert logged(svc, f"{RS1}:8080", "DOWN: .*after 2 failures"), log_text()[-2000:]
    # no new connection to rs1 after its weight went to 0 ...
    assert dest_conns(svc)[f"{RS1}:8080"] == at_zero
    # ... and wrk's errors are the connections sent to rs1 before that (8 in flight)
    reqs, errors, non2xx = parse_wrk(out)
    assert reqs > 50 and non2xx == 0 and errors <= at_zero - before + 8, out
    reqs, errors, non2xx = parse_wrk(finish(wrk(2, 8080)))
    assert reqs > 20 and errors == 0 and non2xx == 0
    assert dest_conns(svc)[f"{RS1}:8080"] == at_zero

    with state.locked():
        st = state.load()
        st["processes"]["nginx@rs1"] = procs.start_nginx("rs1")
        state.save(st)
    seen = set()

    def back():
        w = weights(svc).get(f"{RS1}:8080")
        seen.add(w)
        return w == 10
    until(back, "rs1 back at weight 10", step=0.2)
    ramp = {w for w in seen if w is not None and 0 < w < 10}
    assert ramp, f"slow start: the weight ramps up, seen {sorted(seen, key=str)}"
    assert logged(svc, f"{RS1}:8080", "UP")
    reqs, errors, non2xx = parse_wrk(finish(wrk(2, 8080)))
    assert errors == 0 and non2xx == 0
    assert dest_conns(svc)[f"{RS1}:8080"] > at_zero, "rs1 takes connections again"


def test_http_status_404_is_down_with_the_reason(fnat, labs, tmp_path):
    svc = f"{VIP}:{APP_PORT}"
    logs = {node: http_app(labs, node, addr, {"health": "ok\n", "index.html": "app\n"},
                           tmp_path) for node, addr in (("rs1", RS1), ("rs2", RS2))}
    fnat_service(APP_PORT)
    configure(f"tcp {svc}",
              f"real-server {RS1}:{APP_PORT} check http path /missing status 200 {CHECK}",
              f"real-server {RS2}:{APP_PORT} check http path /health status 200 {CHECK}")
    until(lambda: is_state(svc, f"{RS1}:{APP_PORT}", "DOWN"), "rs1 down")
    until(lambda: is_state(svc, f"{RS2}:{APP_PORT}", "UP")
          and rs_state(svc, f"{RS2}:{APP_PORT}").get("successes", 1) >= 1, "rs2 up")
    e = rs_state(svc, f"{RS1}:{APP_PORT}")
    assert "http status 404" in e.get("error", ""), e
    text = rlb(f"show ip vs health tcp {svc}").stdout
    assert "http status 404" in text and "DOWN" in text and "UP" in text, text
    assert logged(svc, f"{RS1}:{APP_PORT}", "DOWN: http status 404")
    assert weights(svc) == {f"{RS1}:{APP_PORT}": 0, f"{RS2}:{APP_PORT}": 1}
    # FNAT probes leave from the service's local address, as its traffic does
    probes = [line.split()[0] for line in logs["rs1"].read_text().splitlines()
              if '"GET /missing ' in line]
    assert probes and set(probes) == {LIP}, probes
    for _ in range(4):           # every answer comes from rs2 (rs1 has weight 0)
        r = in_node("client", "curl", "-s", "-m", "5", f"http://{svc}/health")
        assert r.stdout == "ok\n", r.stdout + r.stderr


def test_https_against_plain_http_is_down_with_a_tls_error(fnat):
    svc = f"{VIP}:8080"
    if f"TCP  {svc}" not in rlb("ipvsadm -ln").stdout:
        fnat_service(8080)
    # accepted at commit: whether the port speaks TLS is the probe's to find out
    configure(f"tcp {svc}", f"real-server {RS2}:8080 check https path / {CHECK}")
    assert re.search(rf"real-server {re.escape(RS2)}:8080 .*check https", running())
    until(lambda: is_state(svc, f"{RS2}:8080", "DOWN"), "rs2 down over TLS")
    e = rs_state(svc, f"{RS2}:8080")
    assert "TLS" in e.get("error", ""), e
    configure(f"tcp {svc}", f"real-server {RS2}:8080 check tcp {CHECK}")
    until(lambda: is_state(svc, f"{RS2}:8080", "UP"), "rs2 up again over TCP")


def script(tmp: Path, name: str, body: str) -> Path:
    p = tmp / name
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(0o755)
    return p


def test_misc_check_and_dynamic_weight(fnat, tmp_path):
    svc = f"{VIP}:80"                        # the tutorial's service (rs_app)
    flag = tmp_path / "rs1-ok"
    flag.touch()
    code = tmp_path / "rs2-code"
    code.write_text("0\n")
    up_if = script(tmp_path, "up-if", f'[ -e "{flag}" ] && exit 0; exit 1')
    dyn = script(tmp_path, "dyn", f'exit $(cat "{code}")')
    rlb(f"ipvsadm -e -t {svc} -r {RS2}:80 -b -w 3")
    configure(f"tcp {svc}",
              f'real-server {RS1}:80 check misc command "{up_if}" {CHECK}',
              f'real-server {RS2}:80 check misc command "{dyn}" dynamic yes {CHECK}')
    until(lambda: is_state(svc, f"{RS1}:80", "UP") and is_state(svc, f"{RS2}:80", "UP"),
          "both up")
    assert weights(svc) == {f"{RS1}:80": 1, f"{RS2}:80": 3}
    flag.unlink()
    until(lambda: weights(svc).get(f"{RS1}:80") == 0, "rs1 down when its file is gone")
    assert "exit 1" in rs_state(svc, f"{RS1}:80").get("error", "")
    code.write_text("7\n")                   # misc_dynamic: exit 2+N sets weight N
    until(lambda: weights(svc).get(f"{RS2}:80") == 5, "rs2 at weight 5")
    e = rs_state(svc, f"{RS2}:80")
    assert e["state"] == "UP" and e.get("configured_weight", 3) == 3, e
    code.write_text("0\n")                   # exit 0: the configured weight back
    until(lambda: weights(svc).get(f"{RS2}:80") == 3, "rs2 back at weight 3")
    flag.touch()
    until(lambda: weights(svc).get(f"{RS1}:80") == 1, "rs1 back")


def test_udp_check_echo_up_and_closed_port_down(fnat):
    svc = f"{VIP}:9999"
    fnat_service(9999, udp=True)
    configure(f"udp {svc}",
              f"real-server {RS1}:9999 check udp payload 68656c6c6f require-reply any {CHECK}",
              f"real-server {RS2}:9999 check udp port 9998 {CHECK}")
    until(lambda: is_state(svc, f"{RS2}:9999", "DOWN"), "rs2 down (port 9998 closed)")
    until(lambda: is_state(svc, f"{RS1}:9999", "UP")
          and rs_state(svc, f"{RS1}:9999").get("successes", 1) >= 2, "rs1 up (echo)")
    assert "unreachable" in rs_state(svc, f"{RS2}:9999").get("error", "")
    assert weights(svc) == {f"{RS1}:9999": 1, f"{RS2}:9999": 0}
    text = rlb(f"show ip vs health udp {svc}").stdout
    assert RS1 in text and RS2 in text, text
    data = health(f"udp {svc}")
    assert server_entry(data, f"{RS1}:9999") and not server_entry(data, f"{RS1}:8080")


def test_all_down_service_down_and_the_sorry_server_answers(fnat, labs, tmp_path):
    svc = f"{VIP}:81"
    in_node("rs2", "ip", "addr", "add", f"{SORRY}/24", "dev", "eth0")
    http_app(labs, "rs2", SORRY, {"index.html": "sorry\n"}, tmp_path)
    fnat_service(81)                         # nothing listens on :81: both go down
    lost = tmp_path / "quorum-lost"
    down_hook = script(tmp_path, "quorum-down", f'touch "{lost}"')
    configure(f"tcp {svc}", f"check tcp {CHECK}", f'quorum-down "{down_hook}"',
              f"sorry-server {SORRY}:{APP_PORT} mode fnat")
    until(lambda: is_state(svc, f"{RS1}:81", "DOWN") and is_state(svc, f"{RS2}:81", "DOWN"),
          "both down")
    s = until(lambda: (e := service_entry(health(), svc)) and e.get("state") == "DOWN" and e,
              "service down")
    assert "quorum" in json.dumps(s), s
    text = rlb(f"show ip vs health tcp {svc}").stdout
    assert "DOWN" in text and "quorum" in text.lower(), text
    r = until(lambda: (r := in_node("client", "curl", "-s", "-m", "3", f"http://{svc}/"))
              .stdout == "sorry\n" and r, "the sorry server answers")
    assert r.stdout == "sorry\n"
    until(lambda: lost.exists(), "quorum-down ran")
    assert f"sorry-server {SORRY}:{APP_PORT}" in running()


def test_flapping_server_does_not_flap_the_service_with_hysteresis(fnat, tmp_path):
    svc = f"{VIP}:82"
    fnat_service(82)
    rlb(f"ipvsadm -e -t {svc} -r {RS2}:82 -b -w 2")
    toggle = script(tmp_path, "flap", f'f="{tmp_path}/state"\n'
                    'if [ -e "$f" ]; then rm -f "$f"; exit 1; fi\ntouch "$f"; exit 0')
    steady = script(tmp_path, "steady", "exit 0")
    # rs1 (1) flaps, rs2 (2) stays: the sum moves 3 <-> 2; up at >= 3, down under 1
    configure(f"tcp {svc}", "quorum 2 hysteresis 1",
              f'real-server {RS1}:82 check misc command "{toggle}" interval 0.5 timeout 0.5 '
              "rise 1 fall 1",
              f'real-server {RS2}:82 check misc command "{steady}" {CHECK}')
    until(lambda: (e := service_entry(health(), svc)) and e.get("state") == "UP", "service up")
    since = service_entry(health(), svc).get("since")
    flaps = len(logged(svc, f"{RS1}:82", "(?:UP|DOWN)"))
    until(lambda: len(logged(svc, f"{RS1}:82", "(?:UP|DOWN)")) >= flaps + 4,
          "rs1 flapped 4 times")
    e = service_entry(health(), svc)
    assert e["state"] == "UP" and e.get("since") == since, e
    assert not logged(svc, None, "DOWN"), log_text()[-2000:]


def test_alpha_maintenance_and_on_failure_remove(fnat):
    svc = f"{VIP}:84"
    fnat_service(84, rs_port=8080)           # nginx behind another service port
    # alpha: rs2, whose check never succeeds, starts down and so never goes down (no
    # DOWN line); on-failure remove: down is out of scheduling, not weight 0
    configure(f"tcp {svc}", "alpha", "on-failure remove",
              f"real-server {RS1}:8080 check tcp {CHECK}",
              f"real-server {RS2}:8080 check tcp port 81 {CHECK}")
    assert "alpha" in running() and "on-failure remove" in running()
    until(lambda: is_state(svc, f"{RS1}:8080", "UP"), "rs1 up after its first success")
    until(lambda: (e := rs_entry(svc, f"{RS2}:8080")) and e.get("failures", 0) >= 2,
          "rs2 checked twice")
    assert rs_state(svc, f"{RS2}:8080")["state"] == "DOWN"
    assert not logged(svc, f"{RS2}:8080", "DOWN"), "alpha: never up, so never down"
    before = dest_conns(svc).get(f"{RS2}:8080", 0)
    for _ in range(4):
        r = in_node("client", "curl", "-s", "-m", "5", f"http://{svc}/")
        assert r.stdout.startswith(f"Your ip:port : {LIP}:"), r.stdout + r.stderr
    assert dest_conns(svc).get(f"{RS2}:8080", 0) == before, "removed from scheduling"
    # maintenance: weight 0 whatever the health, the checks go on
    configure(f"tcp {svc}", f"real-server {RS1}:8080 disabled")
    until(lambda: weights(svc).get(f"{RS1}:8080", 0) == 0, "rs1 at weight 0 in maintenance")
    n = rs_state(svc, f"{RS1}:8080").get("successes", 0)
    until(lambda: rs_state(svc, f"{RS1}:8080").get("successes", 0) > n + 1,
          "rs1 still checked in maintenance")


def refused_at(word: str):
    """The refusal names the word: the grammar's `^` under it (rlb -c), or the checkers
    it expected instead (rlb -f)."""
    def check(out: str, line: str) -> bool:
        if "expected: http, https, icmp, misc, tcp" in out:
            return True
        lines = out.splitlines()
        return any(a.strip() == line and b.rstrip().endswith("^")
                   and len(b.rstrip()) - 1 - (len(a) - len(a.lstrip())) == line.index(word)
                   for a, b in zip(lines, lines[1:]))
    return check


def says(text: str):
    return lambda out, line: text in out.lower()


BAD = [
    (f"real-server {RS1}:80 check tcp interval 0", says("interval")),
    (f"real-server {RS1}:80 check tcp interval 1 timeout 2", says("timeout")),
    (f"real-server {RS1}:80 check bogus interval 1", refused_at("bogus")),
    # port 80 speaks plain HTTP: an https check of it could never pass
    (f"real-server {RS1}:80 check https path /", says("https check of port 80")),
]


@pytest.mark.parametrize("line,reason", BAD,
                         ids=["interval0", "timeout>interval", "unknown", "https-port80"])
def test_bad_input_refused_with_the_reason_and_nothing_changed(fnat, tmp_path, line, reason):
    before = running()
    r = configure(f"tcp {VIP}:80", line, check=False)
    assert r.returncode != 0, r.stdout
    assert reason(r.stdout + r.stderr, line), r.stdout + r.stderr
    assert running() == before
    conf = tmp_path / "bad.conf"
    conf.write_text(f"virtual-server tcp {VIP}:80\n {line}\n!\n")
    r = subprocess.run(RLB + ["-f", str(conf)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0, r.stdout
    assert reason(r.stdout + r.stderr, line), r.stdout + r.stderr
    assert running() == before


def test_every_show_form_against_the_daemon(fnat):
    for form in ("show ip vs health", f"show ip vs health tcp {VIP}:80",
                 f"show ip vs health udp {VIP}:9999"):
        if "udp" in form and f"UDP  {VIP}:9999" not in rlb("ipvsadm -ln").stdout:
            fnat_service(9999, udp=True)
        text = rlb(form).stdout
        assert text.strip(), form
        data = json.loads(rlb(form + " | json").stdout)
        assert data is not None
    text = rlb(f"show ip vs health tcp {VIP}:80").stdout
    assert RS1 in text and RS2 in text, text
    r = rlb(f"show ip vs health tcp {VIP}:7", check=False)
    assert r.returncode != 0


# --- DR and Tunnel: probes at the VIP -----------------------------------------------


@pytest.mark.parametrize("name", ["dr-one-arm", "tunnel-one-arm"])
def test_real_server_without_the_vip_is_down(labs, name):
    topo = labs.use(name)
    rs = {"dr-one-arm": (RS1, RS2), "tunnel-one-arm": ("10.140.18.33", "10.40.84.170")}[name]
    svc = f"{topo.vip}:80"
    in_node("rs1", "ip", "addr", "del", f"{topo.vip}/32", "dev", "lo")
    try:
        configure(f"tcp {svc}", f"check tcp {CHECK}")
        until(lambda: (a := rs_entry(svc, f"{rs[0]}:80")) and a.get("last")
              and (b := rs_entry(svc, f"{rs[1]}:80")) and b.get("last"), "both checked")
        until(lambda: is_state(svc, f"{rs[0]}:80", "DOWN"), "rs1 without the VIP down")
        assert is_state(svc, f"{rs[1]}:80", "UP"), health()
        assert weights(svc) == {f"{rs[0]}:80": 0, f"{rs[1]}:80": 1}
    finally:
        in_node("rs1", "ip", "addr", "add", f"{topo.vip}/32", "dev", "lo")
    until(lambda: is_state(svc, f"{rs[0]}:80", "UP"), "rs1 with the VIP back up")
