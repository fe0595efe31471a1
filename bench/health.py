#!/usr/bin/env python3
"""Health checks at scale: 10,000 real servers checked over TCP every second, side by side
with the same daemon's commit latency and forwarding rate without and with the checks.

Topology (namespaces this script creates and removes; the host gets nothing):

    rlbbh-gen  g0 --veth-- f0 (dpdk0) [rlbbh-lb] (dpdk1) f1 --veth-- s0  rlbbh-sink
    10.10.1.2                 rlb daemon                       10.10.2.2, 10.20.0.1-N/16

rlbbh-sink drops the generator's UDP at ingress (nftables, counted) and lets TCP through
to this script's listener (`--listener`): one process holding a listening TCP socket
per real server (ADDRS x PORTS), an epoll loop that accepts every connection and closes
it at once (the kernel completed the handshake before accept()), and on stdin `close
ADDR PORT` (answered with the CLOCK_MONOTONIC time of the close: the server's stop) and
`count` (connections accepted so far).

The daemon (`workers 1`, busy-poll, af_packet ports as bench/forward.py) holds S NAT
services 10.10.3.x:80 of R real servers each (10.20.0.a:p, routed via the sink on
dpdk1). Its TCP checks go by the data plane's own prober (rlb/core/probe.pxd: a SYN
from the data plane's address on dpdk1 built by the worker, out of f1; the listener's
kernel answers SYN-ACK, the worker resets it, so no connection is ever accepted: the
sink's nftables counts the SYNs), so they share the worker with the forwarded packets.
On this one machine the sink's kernel handles the SYNs in the softirq of the veth
transmit, on the worker's CPU: what the worker pays for a check here includes the real
server's side. The checks are the services' default
`check tcp interval 1 timeout 1 rise 1 fall 2`, committed with `rlb -f` and removed
with `rlb -f --replace`.

Phases, one daemon, in this order (A-B-A, so that drift shows):
  off   forwarding pps (cgen 64-byte UDP gen -> sink, routed), commit latency
  on    the same with the checks running, the daemon's CPU (per thread) over a window,
        the checks done per second (`show ip vs health | json` counts), then detection:
        listeners closed at random moments, the time until the weight in `ipvsadm -ln`
        is 0 (polled every few ms on the service's own listing)
  off2  pps and commit latency again

    sudo .venv/bin/python bench/health.py            # ~5-7 min
    sudo .venv/bin/python bench/health.py --quick    # 1,000 servers, short windows, ~2 min

Writes bench/results/health.md (and .json).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import random
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import common  # noqa: E402
from common import (CGEN_DIR, BenchError, Proc, RlbDaemon, Window, add_output_options,  # noqa: E402
                    build_cgen, fmt_pps, install_signal_unwind, link_stats, log,
                    make_namespaces, sh, veth)

NS_GEN, NS_LB, NS_SINK = "rlbbh-gen", "rlbbh-lb", "rlbbh-sink"
NS_RS = NS_SINK                     # the listeners live behind the sink's port
NAMESPACES = (NS_GEN, NS_LB, NS_SINK)
GEN_IF, IN_IF, OUT_IF, SINK_IF = "g0", "f0", "f1", "s0"
GEN_MAC, IN_MAC = "02:bc:00:01:00:02", "02:bc:00:01:00:01"
OUT_MAC, SINK_MAC = "02:bc:00:02:00:01", "02:bc:00:02:00:02"
GEN_IP, IN_IP, OUT_IP, SINK_IP = "10.10.1.2", "10.10.1.1", "10.10.2.1", "10.10.2.2"
RS_NET = "10.20.0.0/16"
INSTANCE = "benchhealth"
NFT_SINK = "rlbbh_sink"
PORT0 = 20000                       # the listeners' first port
CALL_WAIT = 30.0                    # seconds a control call may wait behind the checks
CHECK = "check tcp interval {interval:g} timeout {timeout:g} rise 1 fall {fall}"


# ------------------------------------------------------------------ the listener


def listener_main(addrs: list[str], port0: int, nports: int) -> int:
    """Hold a listening socket per (addr, port); accept, wait for the peer's close, close."""
    need = len(addrs) * nports + 4096
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
    ep = select.epoll()
    listeners: dict[int, socket.socket] = {}
    by_key: dict[tuple[str, int], socket.socket] = {}

    def listen(addr, port):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        s.listen(64)
        s.setblocking(False)
        ep.register(s.fileno(), select.EPOLLIN)
        listeners[s.fileno()] = s
        by_key[(addr, port)] = s

    for a in addrs:
        for p in range(port0, port0 + nports):
            listen(a, p)
    ep.register(0, select.EPOLLIN)
    accepted = 0
    print("ready", flush=True)
    stdin = os.fdopen(0, "r")
    while True:
        for fd, _ in ep.poll(1.0):
            if fd == 0:
                line = stdin.readline()
                if not line:
                    return 0
                words = line.split()
                if words and words[0] == "close":
                    s = by_key.pop((words[1], int(words[2])))
                    ep.unregister(s.fileno())
                    del listeners[s.fileno()]
                    s.close()
                    print(f"closed {time.monotonic():.6f}", flush=True)
                elif words and words[0] == "count":
                    print(f"count {accepted}", flush=True)
            elif fd in listeners:
                # accept and close at once: the handshake is the kernel's, done before
                # accept(), so the prober's connect has succeeded already; the least
                # work per probe keeps the listener from competing with the daemon
                s = listeners[fd]
                while True:
                    try:
                        c, _ = s.accept()
                    except OSError:
                        break
                    accepted += 1
                    c.close()


class Listener:
    """The listener process in rlbbh-rs, driven over its stdin/stdout."""

    def __init__(self, python: str, addrs: list[str], nports: int, cpu: str):
        # on the daemon's control CPU: the worker's CPU carries only the worker
        self.p = subprocess.Popen(
            ["ip", "netns", "exec", NS_RS, "taskset", "-c", cpu, python,
             os.path.abspath(__file__), "--listener",
             ",".join(addrs), str(PORT0), str(nports)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        line = self._read(60)
        if line != "ready":
            raise BenchError(f"listener: {line!r}")

    @property
    def pid(self) -> int:
        return self.p.pid

    def _read(self, timeout: float) -> str:
        if not select.select([self.p.stdout], [], [], timeout)[0]:
            raise BenchError("listener: no answer")
        return self.p.stdout.readline().strip()

    def close(self, addr: str, port: int) -> float:
        self.p.stdin.write(f"close {addr} {port}\n")
        return float(self._read(10).split()[1])

    def count(self) -> int:
        self.p.stdin.write("count\n")
        return int(self._read(10).split()[1])

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()            # by the PID we started
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


# ------------------------------------------------------------------ topology and config


def build_topology(addrs: list[str]) -> None:
    make_namespaces(NAMESPACES)
    veth((NS_GEN, GEN_IF, GEN_MAC), (NS_LB, IN_IF, IN_MAC))
    veth((NS_LB, OUT_IF, OUT_MAC), (NS_SINK, SINK_IF, SINK_MAC))
    sh("ip", "-n", NS_GEN, "addr", "add", f"{GEN_IP}/24", "dev", GEN_IF)
    sh("ip", "-n", NS_SINK, "-batch", "-", input=f"addr add {SINK_IP}/24 dev {SINK_IF}\n" + "".join(
        f"addr add {a}/16 dev {SINK_IF}\n" for a in addrs))
    # the generator's UDP never reaches the sink's stack (no answer, no CPU past the
    # veth); the probes' TCP does, to the listeners
    sh("nft", "-f", "-", ns=NS_SINK, input=(
        f"table netdev {NFT_SINK} {{\n  chain in {{ type filter hook ingress device "
        f"\"{SINK_IF}\" priority 0; policy accept; meta l4proto udp counter drop\n"
        "    tcp flags & (syn | ack) == syn counter\n  }\n}\n"))


def sink_counter(what: str) -> int:
    """Packets the sink's ingress counted: "udp" (the generator's, forwarded by the LB),
    "syn" (the probes, whoever sends them: the data plane's prober completes no
    connection, so the listener accepts none)."""
    data = json.loads(sh("nft", "-j", "list", "chain", "netdev", NFT_SINK, "in",
                         ns=NS_SINK).stdout)
    for item in data["nftables"]:
        rule = item.get("rule")
        if rule and any(what in json.dumps(e) for e in rule["expr"]):
            return next(e["counter"]["packets"] for e in rule["expr"] if "counter" in e)
    return 0


def syns_at_sink() -> int:
    return sink_counter("syn")


def servers(n_services: int, per_service: int, addrs: list[str]) -> list[tuple[str, list]]:
    """[(VIP:80, [(addr, port), ...])]: every real server a listener of its own."""
    pairs = [(a, PORT0 + p) for p in range(len_ports(n_services * per_service, addrs))
             for a in addrs][:n_services * per_service]
    return [(f"10.10.3.{s + 1}:80" if s < 250 else f"10.10.4.{s - 249}:80",
             pairs[s * per_service:(s + 1) * per_service]) for s in range(n_services)]


def len_ports(total: int, addrs: list[str]) -> int:
    return -(-total // len(addrs))


def base_config(table) -> str:
    n = sum(len(d) for _, d in table)
    lines = ["dataplane", " workers 1", f" port dpdk0 net_af_packet0,iface={IN_IF}",
             f" port dpdk1 net_af_packet1,iface={OUT_IF}", " forwarding", " busy-poll",
             f" service-table-size {max(256, len(table) * 2)}",
             f" dest-table-size {max(4096, 2 * n)}", "!",
             f"dpip addr add {IN_IP}/24 dev dpdk0", f"dpip addr add {OUT_IP}/24 dev dpdk1",
             f"dpip neigh add {SINK_IP} lladdr {SINK_MAC} dev dpdk1",
             f"dpip route add {RS_NET} via {SINK_IP} dev dpdk1"]
    for vip, dests in table:
        lines.append(f"ipvsadm -A -t {vip} -s rr")
        lines += [f"ipvsadm -a -t {vip} -r {a}:{p} -m" for a, p in dests]
    return "\n".join(lines) + "\n"


def checks_config(table, opts) -> str:
    check = CHECK.format(interval=opts.interval, timeout=opts.timeout, fall=opts.fall)
    return "".join(f"virtual-server tcp {vip}\n {check}\n!\n" for vip, _ in table)


# ------------------------------------------------------------------ measurements


class Bench:
    def __init__(self, opts, logdir: str):
        self.opts, self.logdir = opts, logdir
        self.addrs = [f"10.20.0.{i + 1}" for i in range(opts.addrs)]
        self.table = servers(opts.services, opts.per_service, self.addrs)
        self.rlb = RlbDaemon(opts.python, INSTANCE, NS_LB, logdir, name="rlb")
        self.listener: Listener | None = None
        self.base_path = os.path.join(logdir, "base.conf")
        self.checks_path = os.path.join(logdir, "checks.conf")
        self.deadline = time.monotonic() + opts.budget     # set again when checks start

    # -- the daemon -------------------------------------------------------------

    def start(self) -> float:
        with open(self.base_path, "w") as f:
            f.write(base_config(self.table))
        with open(self.checks_path, "w") as f:
            f.write(checks_config(self.table, self.opts))
        t = time.monotonic()
        self.rlb.start(open(self.base_path).read(), ready_cmd="dpip link show", timeout=180)
        took = time.monotonic() - t
        # no taskset here: the daemon pins its lcores itself (EAL --lcores: the main
        # one, where the control loop and the checks run, on the first CPU of its
        # affinity, the worker on the second); `taskset -a` would unpin them
        return took

    def apply(self, path: str, replace: bool = False) -> float:
        argv = [self.opts.python, "-m", "rlb", "-N", INSTANCE, "-f", path]
        if replace:
            argv.append("--replace")
        t = time.monotonic()
        r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        if r.returncode:
            raise BenchError(f"rlb -f {path}: {(r.stdout + r.stderr).strip()[-1500:]}")
        return time.monotonic() - t

    # -- forwarding --------------------------------------------------------------

    def pps(self, tag: str) -> dict:
        """The median of --pps-runs forwarding windows (this machine is shared: one
        window can lose its worker's CPU to someone else's work), all kept."""
        runs = [self.pps_once(f"{tag}-{i}") for i in range(self.opts.pps_runs)]
        for r in runs:
            r["worker_pct"] = max((t["user"] + t["system"] for t in r["threads"]["daemon"]
                                   if t["tid"] != self.rlb.pid), default=0.0)
        best = sorted(runs, key=lambda r: r["rx_pps"])[len(runs) // 2]
        return {**best, "runs": [round(r["rx_pps"]) for r in runs]}

    def pps_once(self, tag: str) -> dict:
        o = self.opts
        gen = Proc(f"cgen-{tag}", [
            "ip", "netns", "exec", NS_GEN, "taskset", "-c", str(o.gen_cpu),
            os.path.join(CGEN_DIR, "cgen"), "--iface", GEN_IF, "--src-mac", GEN_MAC,
            "--dst-mac", IN_MAC, "--src-ip", GEN_IP, "--dst-ip", SINK_IP, "--size", "60",
            "--flows", "8", "--seconds", f"{o.warmup + o.seconds + 1:.2f}", "--batch", "256",
            "--mode", "mmsg"], self.logdir)
        try:
            time.sleep(o.warmup)
            a_g, a_s, t0 = link_stats(NS_GEN), sink_counter("udp"), time.monotonic()
            win = Window(NAMESPACES, {"daemon": self.rlb.pid, "gen": gen.pid})
            time.sleep(o.seconds)
            b_s, t1, b_g = sink_counter("udp"), time.monotonic(), link_stats(NS_GEN)
            w = win.close()
            gen.p.wait(o.seconds + 15)
        finally:
            gen.stop(signal.SIGINT, timeout=5)
        dt = t1 - t0
        rx = b_s - a_s          # the generator's datagrams only (not the probes' TCP)
        tx = b_g[GEN_IF]["tx_packets"] - a_g[GEN_IF]["tx_packets"]
        return {"rx_pps": rx / dt, "offered_pps": tx / dt, "delivered_pct": 100 * rx / max(tx, 1),
                "other_load_pct": w["other_load"]["total_pct"], "threads": w["threads"]}

    # -- commits -----------------------------------------------------------------

    def commits(self, tag: str) -> dict:
        from rlb.control.client import Client
        vip, dests = self.table[0]
        rip = f"{dests[0][0]}:{dests[0][1]}"
        times, ipv = [], []
        with Client(INSTANCE, timeout=CALL_WAIT) as c:
            assert c.request({"shell": True})["ok"]

            def ok(line):
                r = c.call(line)
                if not r.get("ok"):
                    raise BenchError(f"{line}: {r.get('error')}")
                return r
            timed_out = None
            try:
                ok("enable")
                for i in range(self.opts.commits):
                    ok("configure")
                    ok(f"virtual-server tcp {vip}")
                    ok(f"real-server {rip} weight {2 + i}")
                    t = time.perf_counter()
                    timed_out = "commit"
                    ok("commit")
                    times.append(time.perf_counter() - t)
                    timed_out = "end"
                    ok("end")
                    t = time.perf_counter()
                    timed_out = "ipvsadm -e"
                    ok(f"ipvsadm -e -t {vip} -r {rip} -m -w {100 + i}")
                    ipv.append(time.perf_counter() - t)
                    timed_out = None
                ok(f"ipvsadm -e -t {vip} -r {rip} -m -w 1")
            except OSError:
                # not answered within CALL_WAIT: the session is lost; that is the result
                log(f"{tag}: {timed_out or 'a line'} not answered within {CALL_WAIT:g} s")
                if timed_out == "commit":
                    times.append(CALL_WAIT)
                elif timed_out == "ipvsadm -e":
                    ipv.append(CALL_WAIT)
        return {"commit_ms": statistics.median(times) * 1000 if times else None,
                "commit_max_ms": max(times) * 1000 if times else None,
                "ipvsadm_e_ms": statistics.median(ipv) * 1000 if ipv else None,
                "runs": len(times), "timed_out": timed_out}

    def show_ms(self, wait: float = CALL_WAIT) -> float:
        """`ipvsadm -ln` of one service: how long a show waits behind the checks (a
        call that is not answered within `wait` counts as CALL_WAIT: "at least")."""
        vip = self.table[0][0]
        t = time.perf_counter()
        try:
            self.rlb.call(f"ipvsadm -ln -t {vip}", timeout=wait)
        except OSError:
            return CALL_WAIT * 1000
        return (time.perf_counter() - t) * 1000

    # -- the checks' cost ---------------------------------------------------------

    def checked(self) -> int | None:
        """Results recorded so far over every real server (show ip vs health | json)."""
        try:
            data = self.rlb.call("show ip vs health | json", timeout=CALL_WAIT)
        except (BenchError, OSError, ValueError):
            return None
        total = 0

        def walk(n):
            nonlocal total
            if isinstance(n, dict):
                if isinstance(n.get("successes"), int) and isinstance(n.get("failures"), int):
                    total += n["successes"] + n["failures"]
                    return
                for v in n.values():
                    walk(v)
            elif isinstance(n, list):
                for v in n:
                    walk(v)
        walk(data)
        return total or None

    def timed(self, fn):
        """fn()'s value and the midpoint of the call: when a count was taken."""
        a = time.monotonic()
        v = fn()
        return v, (a + time.monotonic()) / 2

    def cpu(self) -> dict:
        (c0, tc0), (a0, ta0) = self.timed(self.checked), self.timed(self.listener.count)
        s0, ts0 = self.timed(syns_at_sink)
        t0 = time.monotonic()
        win = Window(NAMESPACES, {"daemon": self.rlb.pid, "listener": self.listener.pid})
        shows = []
        end = t0 + self.opts.cpu_seconds
        while time.monotonic() < end:
            shows.append(self.show_ms(wait=max(1.0, end - time.monotonic())))
            time.sleep(0.5)
        w = win.close()
        (a1, ta1), (c1, tc1) = self.timed(self.listener.count), self.timed(self.checked)
        s1, ts1 = self.timed(syns_at_sink)
        return {"window": w, "checks_per_s": None if c0 is None or c1 is None
                else (c1 - c0) / (tc1 - tc0),
                "accepts_per_s": (a1 - a0) / (ta1 - ta0),
                "syns_per_s": (s1 - s0) / (ts1 - ts0),
                "show_ms": statistics.median(shows), "show_max_ms": max(shows)}

    # -- detection -----------------------------------------------------------------

    def weight(self, vip: str) -> dict[str, int]:
        data = self.rlb.call(f"ipvsadm -ln -t {vip}", timeout=CALL_WAIT)
        out = {}

        def walk(n):
            if isinstance(n, dict):
                addr = n.get("address") or n.get("addr") or n.get("rip")
                port = n.get("port") or n.get("rport")
                if addr is not None and "weight" in n:
                    key = str(addr) if port is None or ":" in str(addr) else f"{addr}:{port}"
                    out[key] = n["weight"]
                for v in n.values():
                    walk(v)
            elif isinstance(n, list):
                for v in n:
                    walk(v)
        walk(data)
        return out

    def detection(self) -> list[dict]:
        o = self.opts
        rnd = random.Random(11)
        rounds = -(-o.stops // o.stops_per_round)
        picked = rnd.sample(range(1, len(self.table)), min(rounds, len(self.table) - 1))
        out = []
        for r, s in enumerate(picked):
            vip, dests = self.table[s]
            if time.monotonic() > self.deadline:
                log("detection: the bench's time budget is spent")
                break
            try:
                up = self.weight(vip)
            except OSError:
                log(f"{vip}: ipvsadm -ln not answered within {CALL_WAIT:g} s")
                continue
            candidates = [(a, p) for a, p in dests if up.get(f"{a}:{p}", 0) > 0]
            res_down = len(dests) - len(candidates)
            if res_down:
                log(f"{vip}: {res_down} real servers already down before the stops")
            chosen = rnd.sample(candidates, min(o.stops_per_round, o.stops - len(out),
                                                len(candidates)))
            offsets = sorted(rnd.uniform(0, o.interval) for _ in chosen)
            closed = {}
            start = time.monotonic()
            for (a, p), off in zip(chosen, offsets):
                time.sleep(max(0.0, start + off - time.monotonic()))
                closed[f"{a}:{p}"] = self.listener.close(a, p)
            deadline = time.monotonic() + 2 * (o.fall * o.interval + o.timeout) + 5
            pending = dict(closed)
            while pending and time.monotonic() < deadline:
                before = time.monotonic()
                try:
                    w = self.weight(vip)
                except OSError:
                    w = {}                          # not answered in time: no news
                after = time.monotonic()
                for key in [k for k in pending if w.get(k) == 0]:
                    # seen between the poll's start and its answer: the midpoint
                    out.append({"server": key, "round": r,
                                "seconds": (before + after) / 2 - pending.pop(key),
                                "poll_s": after - before})
                time.sleep(o.poll)
            for key in pending:
                out.append({"server": key, "round": r, "seconds": None})
            log(f"detection round {r + 1}/{len(picked)}: "
                + ", ".join(f"{d['seconds']:.2f}" if d["seconds"] is not None else "MISSED"
                            for d in out[-len(closed):]))
        return out


def ms(v: float | None) -> str:
    """Milliseconds as the table shows them; a call not answered in time says so."""
    if v is None:
        return "-"
    return f">= {v:.0f}" if v >= CALL_WAIT * 1000 else f"{v:.1f}"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def main_thread(threads: list[dict], pid: int) -> float:
    return sum(t["user"] + t["system"] for t in threads if t["tid"] == pid)


def others(threads: list[dict], pid: int) -> float:
    """The daemon's threads but its main one and the busy-polling worker (the highest)."""
    rest = sorted((t["user"] + t["system"] for t in threads if t["tid"] != pid), reverse=True)
    return sum(rest[1:])


def markdown(res: dict, opts) -> str:
    budget = opts.fall * opts.interval + opts.timeout + 0.1
    n = opts.services * opts.per_service
    lines = [f"# bench/health.py, {res['started']}", "",
             f"{n:,} real servers ({opts.services} NAT services x {opts.per_service}), "
             f"`check tcp interval {opts.interval:g} timeout {opts.timeout:g} rise 1 fall "
             f"{opts.fall}` against real listeners in {NS_RS} (on CPU {opts.control_cpu}), "
             "probes through the data plane; the daemon pins its main lcore (control loop "
             "and checks) on CPU 0 and its busy-polling worker on CPU 1; generator on CPU "
             f"{opts.gen_cpu}; one daemon, phases off -> on -> off.", "",
             "| phase | results/s / SYNs/s at the servers | daemon main thread CPU | commit ms (median) | "
             "ipvsadm -e ms | show 1 service ms | rx pps (median; runs) | offered pps | "
             "delivered | worker thread CPU | other load |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for ph in ("off", "on", "off2"):
        p = res["phases"].get(ph)
        if not p:
            continue
        f, c, cpu = p.get("pps", {}), p.get("commit", {}), p.get("cpu", {})
        main = cpu.get("main_pct", f.get("main_pct"))
        lines.append(
            f"| {ph} | {cpu.get('checks_per_s', 0) or 0:,.0f} / "
            f"{cpu.get('syns_per_s', 0) or 0:,.0f} | "
            f"{'-' if main is None else f'{main:.0f} %'} | "
            f"{ms(c.get('commit_ms'))} | {ms(c.get('ipvsadm_e_ms'))} | "
            f"{ms(cpu.get('show_ms', p.get('show_ms')))} | {fmt_pps(f.get('rx_pps'))} "
            f"({', '.join(fmt_pps(v) for v in f.get('runs', []))}) | "
            f"{fmt_pps(f.get('offered_pps'))} | {f.get('delivered_pct', 0):.1f} % | "
            f"{f.get('worker_pct', 0):.0f} % | {f.get('other_load_pct', 0):.0f} % |")
    det = [d["seconds"] for d in res.get("detection", []) if d["seconds"] is not None]
    missed = sum(1 for d in res.get("detection", []) if d["seconds"] is None)
    lines += ["", "| detection (close -> weight 0 in ipvsadm -ln) | value |", "|---|---:|"]
    if det:
        lines += [f"| stops | {len(det)} (+{missed} missed) |",
                  f"| p50 | {pct(det, 0.5) * 1000:.0f} ms |",
                  f"| p99 | {pct(det, 0.99) * 1000:.0f} ms |",
                  f"| max | {max(det) * 1000:.0f} ms |",
                  f"| goal p99 <= fall x interval + timeout + 100 ms | {budget * 1000:.0f} ms: "
                  f"{'met' if pct(det, 0.99) <= budget else 'NOT met'} |",
                  f"| poll resolution (median call) | "
                  f"{statistics.median(d['poll_s'] for d in res['detection'] if d.get('poll_s')) * 1000:.1f} ms |"]
    else:
        lines.append(f"| stops | none detected ({missed} missed) |")
    on = res["phases"].get("on", {}).get("cpu", {})
    if on:
        lines += ["", f"Checks on: the daemon's main thread {on.get('main_pct', 0):.0f} % of a "
                  f"core, its other threads but the worker {on.get('other_threads_pct', 0):.0f} %; "
                  f"the servers' side saw {on.get('syns_per_s', 0):,.0f} SYNs/s and the "
                  f"listener accepted {on.get('accepts_per_s', 0):,.0f} connections/s "
                  f"(its own CPU {on.get('listener_pct', 0):.0f} %). Goal: <= 1 core at "
                  "10k checks/s."]
    lines += ["", f"Startup with {n:,} real servers: {res.get('startup_s', 0):.1f} s; "
              f"committing the checks (`rlb -f`): {res.get('apply_checks_s', 0):.1f} s; "
              f"removing them (`rlb -f --replace`): {res.get('remove_checks_s', 0):.1f} s."]
    if res.get("errors"):
        lines += ["", "Errors:", *[f"- {e}" for e in res["errors"]]]
    return "\n".join(lines) + "\n"


def run(opts, logdir: str, res: dict) -> None:
    b = Bench(opts, logdir)
    build_cgen()
    log(f"topology {' '.join(NAMESPACES)}; {opts.services * opts.per_service} real servers")
    build_topology(b.addrs)
    try:
        b.listener = Listener(opts.python, b.addrs, len_ports(
            opts.services * opts.per_service, b.addrs), str(opts.control_cpu))
        res["startup_s"] = b.start()
        log(f"daemon up in {res['startup_s']:.1f} s")
        pid = b.rlb.pid

        def measure_plain(name):
            ph = res["phases"][name] = {}
            ph["pps"] = b.pps(name)
            ph["pps"]["main_pct"] = main_thread(ph["pps"]["threads"]["daemon"], pid)
            ph["commit"] = b.commits(name)
            ph["show_ms"] = statistics.median(b.show_ms() for _ in range(5))
            log(f"{name}: {fmt_pps(ph['pps']['rx_pps'])} pps, commit "
                f"{ms(ph['commit']['commit_ms'])} ms")

        def step(what, fn):
            """One measurement; a daemon too busy to answer is a result, not the end."""
            try:
                return fn()
            except (BenchError, OSError, subprocess.SubprocessError, KeyError) as err:
                log(f"{what}: {type(err).__name__}: {err}")
                res["errors"].append(f"{what}: {type(err).__name__}: {err}")
                return None

        measure_plain("off")
        res["apply_checks_s"] = b.apply(b.checks_path)
        log(f"checks committed in {res['apply_checks_s']:.1f} s; settling "
            f"{opts.settle:g} s")
        time.sleep(opts.settle)
        ph = res["phases"]["on"] = {}
        cpu = step("on: CPU window", b.cpu)
        if cpu:
            th = cpu["window"]["threads"]
            cpu["main_pct"] = main_thread(th["daemon"], pid)
            cpu["other_threads_pct"] = others(th["daemon"], pid)
            cpu["listener_pct"] = sum(t["user"] + t["system"] for t in th["listener"])
            ph["cpu"] = cpu
            log(f"on: {cpu['checks_per_s'] or 0:,.0f} results/s, {cpu['syns_per_s']:,.0f} "
                f"SYNs/s at the servers, main thread {cpu['main_pct']:.0f} %")
        ph["pps"] = step("on: pps", lambda: b.pps("on")) or {}
        ph["commit"] = step("on: commits", lambda: b.commits("on")) or {}
        log(f"on: {fmt_pps(ph['pps'].get('rx_pps'))} pps, commit "
            f"{ms(ph['commit'].get('commit_ms'))} ms")
        b.deadline = time.monotonic() + opts.budget
        res["detection"] = step("detection", b.detection) or []
        res["remove_checks_s"] = b.apply(b.base_path, replace=True)
        measure_plain("off2")
    finally:
        res["daemon_exit"] = b.rlb.stop() if b.rlb.proc else None
        if b.listener:
            b.listener.stop()
        common.remove_namespaces(NAMESPACES)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--services", type=int, default=100)
    p.add_argument("--per-service", type=int, default=100)
    p.add_argument("--addrs", type=int, default=10, help="listener addresses (default 10)")
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("--fall", type=int, default=2)
    p.add_argument("--seconds", type=float, default=5, help="pps window (default 5)")
    p.add_argument("--warmup", type=float, default=1)
    p.add_argument("--pps-runs", type=int, default=3, help="pps windows per phase (median)")
    p.add_argument("--cpu-seconds", type=float, default=10, help="CPU window with checks")
    p.add_argument("--settle", type=float, default=5, help="seconds after the checks' commit")
    p.add_argument("--commits", type=int, default=3,
                   help="commits timed per phase (default 3: one takes seconds at 10k)")
    p.add_argument("--stops", type=int, default=50)
    p.add_argument("--stops-per-round", type=int, default=10)
    p.add_argument("--poll", type=float, default=0.005, help="pause between weight polls")
    p.add_argument("--control-cpu", type=int, default=0,
                   help="the listener's CPU: the one of the daemon's main lcore, which the "
                        "daemon pins on the first CPU it may use (default 0)")
    p.add_argument("--gen-cpu", type=int, default=0)
    p.add_argument("--budget", type=float, default=120,
                   help="seconds after which no detection round starts (default 120)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1,000 servers, 2 s windows, 10 stops")
    p.add_argument("--listener", nargs=3, metavar=("ADDRS", "PORT0", "NPORTS"),
                   help=argparse.SUPPRESS)
    add_output_options(p)
    opts = p.parse_args(argv)
    if opts.quick:
        opts.services, opts.per_service = 10, 100
        opts.seconds, opts.cpu_seconds, opts.settle, opts.commits = 2, 3, 3, 3
        opts.pps_runs = 1
        opts.stops = 10
    if opts.timeout > opts.interval:
        p.error("--timeout must be <= --interval")
    return opts


def main(argv=None) -> int:
    opts = parse_args(argv)
    if opts.listener:
        addrs, port0, nports = opts.listener
        return listener_main(addrs.split(","), int(port0), int(nports))
    if os.geteuid() != 0:
        print("health.py: must run as root (namespaces, DPDK)", file=sys.stderr)
        return 2
    install_signal_unwind()
    started = _dt.datetime.now()
    logdir = tempfile.mkdtemp(prefix="rlbbh-")
    res = {"started": started.isoformat(timespec="seconds"), "options": vars(opts),
           "phases": {}, "errors": []}
    rc = 0
    t0 = time.monotonic()
    try:
        run(opts, logdir, res)
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        rc = 130
    except (BenchError, OSError, subprocess.SubprocessError, ValueError, KeyError) as err:
        log(f"error: {type(err).__name__}: {err}")
        res["errors"].append(f"{type(err).__name__}: {err}")
        rc = 1
    res["wall_s"] = time.monotonic() - t0
    md = markdown(res, opts)
    path = common.write_results(opts.out, "health", res, md)
    print(md)
    log(f"wrote {path}.md and .json in {res['wall_s']:.0f} s (logs {logdir})")
    if not opts.keep_logs and rc == 0:
        shutil.rmtree(logdir, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
