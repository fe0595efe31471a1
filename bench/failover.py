#!/usr/bin/env python3
"""What a client sees when one LB of an ECMP cluster fails or is taken out, in the labs
fnat-ospf-two-arm (real FRR everywhere; BFD 100 ms x 3) and fnat-bgp-two-arm (exabgp
on the LBs from rlb's `router bgp`, FRR bgpd on the switch, bfdd beside both), one run:

  cold   `rlb lab up NAME --tutorial` until the switch has both nexthops (each lab)
  (a)    all real servers of lb1's service fail their checks (MISC on a file, interval
         0.5, fall 1): lb1 withdraws the VIP (`announce dpdk1`)      (OSPF and BGP)
  (e)    `routing drain` on lb1                                      (OSPF and BGP)
  (b)    kill -9 of lb1's daemon, OSPF with BFD: the tutorial's FRR files (the VIP an
         external route) and fnat-ospf-rlb-two-arm (rlb's own `router ospf`: the VIP an
         intra-area route)
  (c)    the same without BFD (the tutorial's OSPF: dead interval 40 s)
  (d)    kill -9 of lb1's daemon, BGP with bfdd beside exabgp, then without (hold 3 s)

The client (a prober in its namespace, this file with --prober) opens a new TCP
connection to the VIP every 20 ms from the next source port (the switch hashes each
5-tuple to one LB), sends a request and waits 200 ms for the answer. Per event: the
failed requests, the window from the event to the last failed one, and when the switch
had one nexthop. Half the flows hash to lb2 and never notice: the window is how long
lb1's flows failed.

Established flows across ECMP changes, in dr-bgp-two-arm (DR, exabgp): 16 keep-alive
HTTP sessions (rlb.lab.sessions, a request each every 50 ms) across
  (f)    `routing drain` of lb1 and `routing undrain` 3 s later, scheduler mh
  (g)    a rolling restart of lb1, then lb2 (drain-on-stop 2 s), scheduler mh
  (f')   the drain of (f) with scheduler rr, the control
per event: requests, failed ones, connections opened (16: none broke), the longest time
a session waited between two answers, and the flows the other LB adopted.

Master/backup by VRRP (fnat-keepalive-rlb: rlb's `vrrp instance`, VRRPv3, 0.2 s adverts;
fnat-keepalive: the tutorial's keepalived.conf, VRRPv2, 1 s adverts), the prober on the
LAN, every flow to the MASTER:
  (h)    kill -9 of lb1's (the MASTER's) daemon: keepalived goes with it (the
         parent-death signal), but its priority-0 advert has no data plane left to leave
         by: the BACKUP waits 3 adverts + skew
  (i)    kill -9 of lb1's keepalived alone (no priority 0: the BACKUP waits 3 adverts +
         skew; rlb starts keepalived again 2 s later and lb1 preempts back)
  (j)    lb1's LAN link cut at the switch (VRRP silence, as (i); lb1 unreachable)
per event: failed requests, the window, and when lb2 said MASTER. Without connection
sync (not there yet), a connection open across a takeover is reset; these probes each
open a new one.

    sudo .venv/bin/python bench/failover.py           # ~6 min

Writes bench/results/failover.md (and .json).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import BenchError, add_output_options, finish, log  # noqa: E402

TOPO, OSPF_RLB_TOPO, BGP_TOPO = "fnat-ospf-two-arm", "fnat-ospf-rlb-two-arm", "fnat-bgp-two-arm"
DR_TOPO = "dr-bgp-two-arm"
KA_TOPOS = {"ka": "fnat-keepalive-rlb", "ka-tutorial": "fnat-keepalive"}
KA_VIP = "192.168.100.254"
SESSIONS, SESSION_GAP = 16, 0.05       # keep-alive sessions, a request each per gap (s)
VIP = "123.1.2.3"
INTERVAL, TIMEOUT = 0.02, 0.2          # the prober's pace and patience (s)
WINDOW = 8.0                           # seconds of probing around each event
PORT0 = 20000


# ------------------------------------------------------------------------- prober

def prober_main(seconds: float, vip: str = VIP) -> int:
    """In the client's namespace: a request every INTERVAL from the next source port;
    one JSON line per request: [send time (CLOCK_MONOTONIC), answered]."""
    end = time.monotonic() + seconds
    port = PORT0
    out = sys.stdout
    while time.monotonic() < end:
        t0 = time.monotonic()
        ok = False
        s = socket.socket()
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", port))
            s.settimeout(TIMEOUT)
            s.connect((vip, 80))
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            ok = len(s.recv(64)) > 0          # the server answered
        except OSError:
            ok = False
        finally:
            s.close()
        out.write(json.dumps([t0, ok]) + "\n")
        out.flush()
        port = PORT0 + (port - PORT0 + 1) % 20000
        time.sleep(max(0.0, INTERVAL - (time.monotonic() - t0)))
    return 0


class Prober:
    def __init__(self, python: str, seconds: float, vip: str = VIP):
        self.seconds = seconds
        self.p = subprocess.Popen(["ip", "netns", "exec", "rlb-client", python,
                                   os.path.abspath(__file__), "--prober", str(seconds),
                                   "--vip", vip], stdout=subprocess.PIPE, text=True)

    def results(self) -> list[tuple[float, bool]]:
        out, _ = self.p.communicate(timeout=self.seconds + 30)
        return [tuple(json.loads(line)) for line in out.splitlines() if line.strip()]


def outage(samples, t_event: float) -> dict:
    after = [(t, ok) for t, ok in samples if t >= t_event]
    failed = [t for t, ok in after if not ok]
    return {"requests": len(after), "failed": len(failed),
            "window_ms": round((max(failed) - t_event) * 1000 + INTERVAL * 1000)
            if failed else 0,
            "failed_at_ms": [round((t - t_event) * 1000) for t in failed]}


# ------------------------------------------------------------------------- the lab

def nexthops() -> list[str]:
    r = subprocess.run(["ip", "-n", "rlb-switch", "-j", "route", "show", f"{VIP}/32"],
                       capture_output=True, text=True)
    routes = json.loads(r.stdout or "[]")
    if not routes:
        return []
    return sorted(h["gateway"] for h in routes[0].get("nexthops", [])) or \
        [routes[0].get("gateway")]


def until(pred, timeout: float, step: float = 0.01) -> float | None:
    """Seconds until pred() held, None if it did not within timeout."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return time.monotonic() - t0
        time.sleep(step)
    return None


def rlb(instance: str, *lines: str) -> str:
    args = [sys.executable, "-m", "rlb", "-N", instance]
    for line in lines:
        args += ["-c", line]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if r.returncode:
        raise BenchError(f"rlb -N {instance} {lines}: {r.stdout}{r.stderr}")
    return r.stdout


def event(name: str, python: str, act, restore=None, window: float = WINDOW) -> dict:
    """Probe, act at 1 s, measure; then restore and wait for both nexthops again."""
    p = Prober(python, window)
    time.sleep(1.0)
    t0 = time.monotonic()
    act()
    one = until(lambda: len(nexthops()) == 1, window - 1.5)
    samples = p.results()
    res = {"event": name, **outage(samples, t0),
           "one_nexthop_ms": round(one * 1000) if one is not None else None}
    log(f"{name}: {res}")
    if restore is not None:
        restore()
        back = until(lambda: len(nexthops()) == 2, 90, step=0.1)
        res["both_back_s"] = round(back, 1) if back is not None else None
    return res


def settle() -> None:
    """Both nexthops again (a routing change can reset an adjacency) and 3 s of quiet."""
    if until(lambda: len(nexthops()) == 2, 90, step=0.1) is None:
        raise BenchError(f"the switch did not get both nexthops back: {nexthops()}")
    time.sleep(3)


def restart(node: str):
    from rlb.lab import manage
    return lambda: manage.restart_lb(node=node)


def later(act, seconds: float = 1.0):
    return lambda: (time.sleep(seconds), act())


def kill(node: str):
    from rlb import lab
    return lambda: os.kill(lab.status()["processes"][node]["pid"], signal.SIGKILL)


def cold_start(topo: str) -> dict:
    from rlb import lab
    lab.down()
    t0 = time.monotonic()
    lab.up(topo, tutorial=True)
    up = time.monotonic() - t0
    two = until(lambda: len(nexthops()) == 2, 90, step=0.1)
    cold = {"topology": topo, "lab_up_s": round(up, 1),
            "then_two_nexthops_s": round(two, 1) if two else None}
    log(f"cold start: {cold}")
    return cold


def common(python: str, flag: str, results: list, tag: str) -> None:
    """(a) and (e) on lb1 of the cluster that is up."""
    check = f'check misc command "test -f {flag}" interval 0.5 fall 1'
    rlb("lb1", "configure", f"virtual-server tcp {VIP}:80", "announce dpdk1",
        f"real-server 192.168.100.2:80 {check}", f"real-server 192.168.100.3:80 {check}",
        "commit")
    time.sleep(3)
    results.append(event(f"(a) {tag}: lb1's service down (checks, fall 1 x 0.5 s)", python,
                         lambda: os.unlink(flag), lambda: open(flag, "w").close()))
    results.append(event(f"(e) {tag}: routing drain on lb1", python,
                         lambda: rlb("lb1", "routing drain"),
                         lambda: rlb("lb1", "routing undrain")))


def ospf_run(python: str, flag: str, results: list, colds: list) -> None:
    from rlb.lab import procs
    colds.append(cold_start(TOPO))
    common(python, flag, results, "OSPF")
    results.append(event("(b) OSPF: kill -9 of lb1's daemon, BFD 100 ms x 3", python,
                         kill("lb1"), restart("lb1")))
    # the tutorial's OSPF alone: no BFD on lb1's link, either end; its dead interval 40 s
    procs.vtysh("lb1", "configure terminal", "interface dpdk1.kni", "no ip ospf bfd")
    procs.vtysh("switch", "configure terminal", "interface eth1", "no ip ospf bfd")
    time.sleep(2)
    settle()
    results.append(event("(c) OSPF: kill -9 of lb1's daemon, no BFD (dead interval 40 s)",
                         python, kill("lb1"), window=50.0))


def ospf_rlb_run(python: str, flag: str, results: list, colds: list) -> None:
    """rlb's own `router ospf` on the LBs: the VIP an intra-area route."""
    colds.append(cold_start(OSPF_RLB_TOPO))
    common(python, flag, results, "OSPF, rlb's own")
    results.append(event("(b) OSPF, rlb's own: kill -9 of lb1's daemon, BFD 100 ms x 3",
                         python, kill("lb1")))


def bgp_run(python: str, flag: str, results: list, colds: list) -> None:
    from rlb.lab import procs
    colds.append(cold_start(BGP_TOPO))
    common(python, flag, results, "BGP")
    results.append(event("(d) BGP: kill -9 of lb1's daemon, bfdd beside exabgp (100 ms x 3)",
                         python, kill("lb1"), restart("lb1")))
    rlb("lb1", "configure", "router bgp 65001", "no neighbor 172.10.0.1 bfd", "commit")
    procs.vtysh("switch", "configure terminal", "router bgp 65000",
                "no neighbor 172.10.0.2 bfd")
    time.sleep(3)
    settle()
    results.append(event("(d) BGP: kill -9 of lb1's daemon, no BFD (hold time 3 s)", python,
                         kill("lb1"), window=10.0))


def sessions_event(name: str, python: str, act, first_port: int, seconds: float,
                   vip: str = VIP) -> dict:
    """Keep-alive sessions from the client while `act` runs (it starts once each has an
    answer); what they lived through."""
    before = {lb: adopted(lb) for lb in ("lb1", "lb2")}
    p = subprocess.Popen(["ip", "netns", "exec", "rlb-client", python, "-m", "rlb.lab.sessions",
                          vip, "--sessions", str(SESSIONS), "--first-port", str(first_port),
                          "--interval", str(SESSION_GAP), "--seconds", str(seconds)],
                         stdout=subprocess.PIPE, text=True)
    try:
        if p.stdout.readline().strip() != "ready":
            raise BenchError("rlb.lab.sessions did not start")
        act()
        out, _ = p.communicate(timeout=seconds + 30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    r = json.loads(out.strip().splitlines()[-1])
    # a restarted LB counts from zero: what it adopted is its whole count
    took = {lb: n - before[lb] if n >= before[lb] else n
            for lb in ("lb1", "lb2") for n in (adopted(lb),)}
    res = {"event": name, "kind": "sessions", **{k: r[k] for k in (
        "requests", "failed", "connections", "max_gap_ms")}, "adopted": took}
    log(f"{name}: {res}")
    return res


def adopted(node: str) -> int:
    try:
        out = rlb(node, "show dataplane | json")
    except BenchError:                  # a daemon that is down adopted nothing
        return 0
    return json.loads(out)["connections"]["adopted"]


def drain_and_back() -> None:
    rlb("lb1", "routing drain")
    if until(lambda: len(nexthops()) == 1, 5) is None:
        raise BenchError("lb1 drained, the switch still has two nexthops")
    time.sleep(3)
    rlb("lb1", "routing undrain")
    settle()


def rolling_restart() -> None:
    from rlb.lab import manage
    for node in ("lb1", "lb2"):
        manage.restart_lb(node=node)
        settle()


def dr_run(python: str, flag: str, results: list, colds: list) -> None:
    colds.append(cold_start(DR_TOPO))
    settle()
    results.append(sessions_event("(f) DR, mh: routing drain of lb1, undrain 3 s later",
                                  python, drain_and_back, 44000, 15))
    results.append(sessions_event("(g) DR, mh: rolling restart of lb1 then lb2", python,
                                  rolling_restart, 44100, 45))
    svc = f"-t {VIP}:80"
    for node in ("lb1", "lb2"):
        rlb(node, f"ipvsadm -E {svc} -s rr")
    results.append(sessions_event("(f') DR, rr (control): routing drain of lb1, undrain 3 s "
                                  "later", python, drain_and_back, 44200, 15))


def vrrp_state(node: str) -> str | None:
    from rlb.control.client import Client, ControlError
    from rlb.lab import state
    try:
        with Client(state.instance(node), timeout=2) as c:
            got = c.call("show vrrp")
        return got["data"]["instances"][0]["state"] if got.get("ok") else None
    except (ControlError, OSError, KeyError, IndexError):
        return None


def roles() -> tuple:
    return vrrp_state("lb1"), vrrp_state("lb2")


def ka_settle() -> None:
    if until(lambda: roles() == ("master", "backup"), 60, step=0.2) is None:
        raise BenchError(f"lb1 is not MASTER again: {roles()}")
    time.sleep(3)


def ka_event(name: str, python: str, act, restore, window: float = WINDOW) -> dict:
    """Probe the VIP on the LAN, act at 1 s, measure; restore, wait for lb1 MASTER."""
    p = Prober(python, window, KA_VIP)
    time.sleep(1.0)
    t0 = time.monotonic()
    act()
    took = until(lambda: vrrp_state("lb2") == "master", window - 1.5, step=0.02)
    samples = p.results()
    res = {"event": name, "kind": "vrrp", **outage(samples, t0),
           "backup_master_ms": round(took * 1000) if took is not None else None}
    log(f"{name}: {res}")
    restore()
    ka_settle()
    return res


def kill_keepalived(node: str):
    from pathlib import Path

    from rlb.control import paths
    from rlb.lab import state

    def act():
        pid = int((Path(paths.ha_dir(state.instance(node))) / "keepalived.pid").read_text())
        os.kill(pid, signal.SIGKILL)
    return act


def lan_link(node: str, up: bool):
    def act():
        subprocess.run(["ip", "-n", "rlb-sw", "link", "set", f"{node}-veth-dpdk0",
                        "up" if up else "down"], check=True)
    return act


def ka_run(which: str):
    topo = KA_TOPOS[which]
    tag = "VRRPv3 0.2 s (rlb's words)" if which == "ka" else \
        "VRRPv2 1 s (the tutorial's keepalived.conf)"

    def run(python: str, flag: str, results: list, colds: list) -> None:
        from rlb import lab
        from rlb.lab import manage
        lab.down()
        t0 = time.monotonic()
        lab.up(topo, tutorial=True)
        ka_settle()
        colds.append({"topology": topo, "lab_up_s": round(time.monotonic() - t0, 1),
                      "then_two_nexthops_s": None})
        results.append(ka_event(f"(h) {tag}: kill -9 of the MASTER's daemon", python,
                                kill("lb1"), lambda: manage.restart_lb(node="lb1")))
        results.append(ka_event(f"(i) {tag}: kill -9 of the MASTER's keepalived", python,
                                kill_keepalived("lb1"), lambda: None, window=12.0))
        results.append(ka_event(f"(j) {tag}: the MASTER's LAN link cut", python,
                                lan_link("lb1", False), lan_link("lb1", True)))
    return run


def show_sync(node: str) -> dict:
    from rlb.control.client import Client
    from rlb.lab import state
    with Client(state.instance(node), timeout=5) as c:
        return c.call("show sync")["data"]


def sync_run(python: str, flag: str, results: list, colds: list) -> None:
    """fnat-keepalive-rlb with `sync peer` on both LBs: keep-alive sessions across a
    takeover and the MASTER's return, the control without sync, and the sync's capacity
    at the CPS wrk makes."""
    from rlb import lab
    from rlb.lab import manage
    lab.down()
    lab.up(KA_TOPOS["ka"], tutorial=True)
    ka_settle()
    # the kill 1 s into the sessions: a connection made in the last tick (10 ms) before
    # the MASTER dies has not reached the peer yet
    results.append(sessions_event("(k) FNAT, sync on: kill -9 of the MASTER's daemon",
                                  python, later(kill("lb1")), 44300, 8, KA_VIP))
    results.append(sessions_event("(l) FNAT, sync on: the MASTER back (bulk sync, "
                                  "preemption)", python, lambda: manage.restart_lb(node="lb1"),
                                  44400, 12, KA_VIP))
    ka_settle()
    results.append(sessions_event("(k2) FNAT, sync on: the MASTER's LAN link cut 4 s",
                                  python, later(lambda: (lan_link("lb1", False)(),
                                                         time.sleep(4),
                                                         lan_link("lb1", True)())),
                                  44600, 12, KA_VIP))
    ka_settle()
    results.append(sessions_event("(k3) FNAT, sync on: kill -9 of the MASTER's keepalived",
                                  python, later(kill_keepalived("lb1")), 44700, 10, KA_VIP))
    ka_settle()
    results.append(capacity(python))
    ka_settle()
    for node in ("lb1", "lb2"):
        rlb(node, "configure", "no sync", "commit")
    time.sleep(1)
    results.append(sessions_event("(k') FNAT, no sync (control): kill -9 of the MASTER's "
                                  "daemon", python, later(kill("lb1")), 44500, 8, KA_VIP))


# 5 s: wrk's closed connections (~20k) leave the client enough ports for the control
CAPACITY_SECONDS, CAPACITY_CONNS = 5, 64


def capacity(python: str) -> dict:
    """wrk from the client, a new connection per request (Connection: close) for
    CAPACITY_SECONDS: the connections made, the events lb1 queued and sent, what lb2
    applied, what was lost, the lag lb2 saw, bytes on the wire per connection."""
    before = {n: show_sync(n) for n in ("lb1", "lb2")}
    r = subprocess.run(["ip", "netns", "exec", "rlb-client", "timeout", str(CAPACITY_SECONDS + 20),
                        "wrk", "--timeout", "2s", "-t", "2", "-c",
                        str(CAPACITY_CONNS), "-d", f"{CAPACITY_SECONDS}s", "-H",
                        "Connection: close", f"http://{KA_VIP}/"], capture_output=True,
                       text=True, timeout=CAPACITY_SECONDS + 40)
    time.sleep(2)                     # the last events across
    after = {n: show_sync(n) for n in ("lb1", "lb2")}
    if r.returncode:
        log(f"wrk: exit {r.returncode}: {r.stdout[-300:]} {r.stderr[-300:]}")
    reqs = 0
    for line in r.stdout.splitlines():
        if "requests in" in line:
            reqs = int(line.split()[0])
    sent = after["lb1"]["sent"]["events"] - before["lb1"]["sent"]["events"]
    applied = after["lb2"]["applied"] - before["lb2"]["applied"]
    wire = after["lb1"]["sent"]["bytes"] - before["lb1"]["sent"]["bytes"]
    res = {"event": "(m) sync capacity: wrk, a new connection per request", "kind": "capacity",
           "cps": round(reqs / CAPACITY_SECONDS), "connections": reqs,
           "events_sent": sent, "events_per_s": round(sent / CAPACITY_SECONDS),
           "applied": applied, "lost": after["lb1"]["lost"] - before["lb1"]["lost"],
           "refused": after["lb2"]["refused"] - before["lb2"]["refused"],
           "lag_p50_ms": after["lb2"]["lag_ms"]["p50"], "lag_p99_ms": after["lb2"]["lag_ms"]["p99"],
           "bytes_per_conn": round(wire / reqs) if reqs else None,
           "events_per_conn": round(sent / reqs, 2) if reqs else None}
    res.update(bulk_sync())
    log(f"capacity: {res}")
    return res


def bulk_sync() -> dict:
    """lb2 restarted while lb1 holds wrk's connections (closing, still in its table):
    from lb2's first answer on its control socket until it has received the whole of
    the table lb1 sent it (lb1's bulk), and how many connections it then holds."""
    from rlb.lab import manage
    manage.restart_lb(node="lb2")
    t0 = time.monotonic()

    def done():
        try:
            sent, got = show_sync("lb1")["bulk_sent"], show_sync("lb2")["bulk_received"]
        except Exception:               # not up yet
            return False
        return sent["ago"] is not None and sent["ago"] < time.monotonic() - t0 + 1 and \
            got["events"] >= sent["events"] > 0
    until(done, 60, step=0.05)
    took = time.monotonic() - t0
    sent = show_sync("lb1")["bulk_sent"]["events"]
    return {"bulk_conns": _conns("lb2"), "bulk_of": sent, "bulk_s": round(took, 2),
            "bulk_per_s": round(sent / took) if took else None}


def _conns(node: str) -> int:
    try:
        return show_sync(node)["conns"]
    except Exception:                   # not up yet
        return 0


def _times(ms: list[int], most: int = 8) -> str:
    if len(ms) <= most:
        return ", ".join(map(str, ms)) or "-"
    return ", ".join(map(str, ms[:most // 2])) + f", ... ({len(ms) - most} more), " + \
        ", ".join(map(str, ms[-(most // 2):]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prober", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--vip", default=VIP, help=argparse.SUPPRESS)
    ap.add_argument("--only", action="append",
                    choices=("ospf", "ospf-rlb", "bgp", "dr", *KA_TOPOS, "sync"),
                    help="run only these labs (repeatable; default all)")
    add_output_options(ap)
    opts = ap.parse_args()
    if opts.prober:
        return prober_main(opts.prober, opts.vip)
    if os.geteuid() != 0:
        raise SystemExit("bench/failover.py needs root (the lab's namespaces)")
    from rlb import lab
    logdir = tempfile.mkdtemp(prefix="rlbbf-")
    flag = os.path.join(logdir, "up")
    started = _dt.datetime.now().isoformat(timespec="seconds")
    results, colds = [], []
    runs = {"ospf": ospf_run, "ospf-rlb": ospf_rlb_run, "bgp": bgp_run, "dr": dr_run,
            **{name: ka_run(name) for name in KA_TOPOS}, "sync": sync_run}
    for run in [runs[name] for name in (opts.only or runs)]:
        open(flag, "w").close()
        try:
            run(opts.python, flag, results, colds)
        except (BenchError, lab.LabError) as e:
            log(f"error: {e}")
            results.append({"error": str(e)})
        finally:
            lab.down()
    md = ["# bench/failover.py, " + started, "",
          f"Labs {TOPO}, {OSPF_RLB_TOPO} and {BGP_TOPO}: a client opens a connection to {VIP}:80 every "
          f"{INTERVAL * 1000:.0f} ms (new source port each, {TIMEOUT * 1000:.0f} ms to "
          "answer); the switch hashes per 5-tuple, so about half go to lb1.", "",
          "| event | requests after it | failed | window (event -> last failure) | "
          "switch at one nexthop | both back after | failures at (ms after the event) |",
          "|---|---:|---:|---:|---:|---:|---|"]
    for r in results:
        if "error" in r:
            md.append(f"| error: {r['error']} | | | | | | |")
            continue
        if r.get("kind") in ("sessions", "vrrp", "capacity"):
            continue
        md.append(f"| {r['event']} | {r['requests']} | {r['failed']} | {r['window_ms']} ms | "
                  f"{r['one_nexthop_ms']} ms | {r.get('both_back_s', '-')} s | "
                  f"{_times(r['failed_at_ms'])} |")
    md += ["", f"Lab {DR_TOPO}: {SESSIONS} keep-alive HTTP sessions from the client, a "
           f"request each every {SESSION_GAP * 1000:.0f} ms (2 s to answer), across ECMP "
           "changes; connections opened: "
           f"{SESSIONS} means none broke.", "",
           "| event | requests | failed | connections opened | longest wait for an answer | "
           "flows adopted (lb1, lb2) |", "|---|---:|---:|---:|---:|---|"]
    for r in results:
        if r.get("kind") == "sessions":
            md.append(f"| {r['event']} | {r['requests']} | {r['failed']} | {r['connections']} "
                      f"| {r['max_gap_ms']} ms | {r['adopted']['lb1']}, {r['adopted']['lb2']} |")
    md += ["", f"Labs {', '.join(KA_TOPOS.values())} (master/backup by VRRP): the client "
           f"opens a connection to {KA_VIP}:80 every {INTERVAL * 1000:.0f} ms; all go to the "
           "MASTER. No connection sync yet.", "",
           "| event | requests after it | failed | window (event -> last failure) | "
           "lb2 MASTER after | failures at (ms after the event) |",
           "|---|---:|---:|---:|---:|---|"]
    for r in results:
        if r.get("kind") == "vrrp":
            md.append(f"| {r['event']} | {r['requests']} | {r['failed']} | {r['window_ms']} ms "
                      f"| {r['backup_master_ms']} ms | {_times(r['failed_at_ms'])} |")
    caps = [r for r in results if r.get("kind") == "capacity"]
    if caps:
        md += ["", "Connection sync's capacity (fnat-keepalive-rlb, lb1 MASTER -> lb2):", "",
               "| connections/s | events/s sent | events per connection | applied by the "
               "peer | lost | refused | lag p50 | lag p99 | bytes on the wire per "
               "connection | bulk sync after a restart of the peer |",
               "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for r in caps:
            md.append(f"| {r['cps']} | {r['events_per_s']} | {r['events_per_conn']} | "
                      f"{r['applied']} of {r['events_sent']} | {r['lost']} | {r['refused']} | "
                      f"{r['lag_p50_ms']} ms | {r['lag_p99_ms']} ms | {r['bytes_per_conn']} | "
                      f"{r['bulk_of']} connections in {r['bulk_s']} s ({r['bulk_per_s']}/s; "
                      f"{r['bulk_conns']} held, the others ended meanwhile) |")
    md.append("")
    for cold in colds:
        if cold["then_two_nexthops_s"] is None:
            md.append(f"Cold start of {cold['topology']}: `rlb lab up --tutorial` until lb1 "
                      f"MASTER and lb2 BACKUP: {cold['lab_up_s']} s.")
            continue
        md.append(f"Cold start of {cold['topology']}: `rlb lab up --tutorial` took "
                  f"{cold['lab_up_s']} s, then {cold['then_two_nexthops_s']} s until the "
                  "switch had both nexthops.")
    finish(opts, "failover", {"started": started, "cold": colds, "events": results},
           "\n".join(md) + "\n", logdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
