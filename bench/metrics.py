#!/usr/bin/env python3
"""The Prometheus endpoint's cost: a scrape of S services x 16 real servers (issue 14,
item 1: "a scrape never stalls the data plane or the control socket; a scrape of 1,000
services x 16 real servers takes < 100 ms").

Topology (a namespace this script creates and removes; the host gets nothing):

    rlbb-met:  dp0 (dpdk0, af_packet) ==veth== tp0        lo: 127.0.0.1:9617/metrics

One daemon per table size (`workers 1`, idle-sleep: no traffic), started on a file of
S FNAT services (wrr, one local address each, -b real servers) of 16 real servers each
and `metrics listen 127.0.0.1 9617`. Per size, interleaved, --runs times:

  rlb       an HTTP GET of /metrics from inside the namespace (urllib, this process
            entered into the namespace): wall time, bytes; plain and with
            `Accept-Encoding: gzip` (as Prometheus asks); the daemon's own time for the
            page (`show metrics`: last_ms, the page's text without the HTTP and gzip)
  reference the same samples written by prometheus_client alone: the page scraped once
            and parsed (prometheus_client.parser), its families re-exposed by a custom
            collector; timed: generate_latest() of a registry whose collect() builds
            them (CounterMetricFamily/GaugeMetricFamily.add_metric, what a collector of
            the library's does each scrape), and generate_latest() of the families
            already built (the writer alone)

Then, at the largest size only: `show version` and `show metrics` round trips, in turn,
on one control session every --pace ms, for --quiet-seconds without scraping, then while
a client in the namespace scrapes back to back (gzip, at most --loop-scrapes scrapes or
--loop-seconds): p50, p99, max of each window, and when the slow calls came; the
daemon's CPU per scrape; the data plane's worker over both windows (`show dataplane`:
its loop passes per second and the drop counters; the worker never takes the GIL, so a
scrape reaching it would show as fewer passes).

Each daemon is measured once it is quiet (--settle-pct): what a start leaves to do (the
health probe paths' netlink work: a /32 and two rules per FNAT local address) would
otherwise compete with the scrapes. The services share --laddrs local addresses.

    sudo .venv/bin/python bench/metrics.py            # 10, 100, 1000 services, 5 runs, ~2-3 min
    sudo .venv/bin/python bench/metrics.py --quick    # 2 runs, short windows, ~1.5 min

Writes bench/results/metrics-<timestamp>.{json,md}.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime as _dt
import json
import os
import platform
import statistics
import sys
import tempfile
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import common  # noqa: E402
from common import (BenchError, Proc, RlbDaemon, add_output_options,  # noqa: E402
                    install_signal_unwind, log, make_namespaces, remove_namespaces,
                    thread_times, thread_usage, veth)

NS = "rlbb-met"
NAMESPACES = (NS,)
INSTANCE = "benchmet"
DP_IF, TAP_IF = "dp0", "tp0"
DP_MAC, TAP_MAC = "02:bd:00:01:00:01", "02:bd:00:01:00:02"
ADDR, PORT = "127.0.0.1", 9617
PROM_PORT = 9618                  # the real Prometheus's own API, in the namespace
URL = f"http://{ADDR}:{PORT}/metrics"
# the control socket's round trips: a command with a little work (`show version` reads
# package metadata: a few ms) and one that only reads the exporter's counters
CONTROL = ("show version", "show metrics")
SLOW_MS = 20.0                  # a control call this slow is listed with its time
GOAL_MS = 100.0
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def in_netns(name: str):
    """This thread in namespace `name` for the block (sockets made there stay there)."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        yield
    finally:
        _libc.setns(own, CLONE_NEWNET)
        os.close(own)
        os.close(target)


def get(url: str, gzip: bool, timeout: float = 60) -> tuple[float, bytes]:
    """One GET (the caller in the namespace): (seconds to the body's last byte, body)."""
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"} if gzip else {})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=timeout) as r:
        body = r.read()
        if r.status != 200:
            raise BenchError(f"GET {url}: {r.status}")
        if gzip and r.headers.get("Content-Encoding") != "gzip":
            raise BenchError(f"GET {url}: gzip asked, {r.headers.get('Content-Encoding')} sent")
    return time.perf_counter() - t, body


def scrape_loop_main(url: str, count: int, seconds: float) -> int:
    """--scrape-loop (run inside the namespace): gzip scrapes back to back, at most
    `count` or `seconds`; one JSON line: the wall time of each."""
    times, end = [], time.monotonic() + seconds
    while len(times) < count and time.monotonic() < end:
        dt, _ = get(url, gzip=True)
        times.append(round(dt * 1000, 3))
    print(json.dumps({"ms": times}), flush=True)
    return 0


# ------------------------------------------------------------------ config


def config(services: int, per: int, laddrs: int) -> str:
    """S FNAT services of `per` real servers each (the same addresses in every service),
    each with one local address of a pool of `laddrs` that the services share (as
    keepalived's local_address_group is shared)."""
    n = services * per
    lines = ["dataplane", " workers 1", f" port dpdk0 net_af_packet0,iface={DP_IF}",
             f" service-table-size {max(1024, services)}",
             f" dest-table-size {max(16384, n)}", "!",
             "dpip addr add 10.0.0.1/16 dev dpdk0", "dpip addr add 192.168.0.1/16 dev dpdk0",
             f"metrics listen {ADDR} {PORT}"]
    for s in range(services):
        vip = f"10.0.{1 + s // 250}.{1 + s % 250}:80"
        lines.append(f"ipvsadm -A -t {vip} -s wrr")
        k = s % laddrs
        lines.append(f"ipvsadm --add-laddr -z 192.168.{200 + k // 250}.{1 + k % 250} "
                     f"-t {vip} -F dpdk0")
        for d in range(per):
            lines.append(f"ipvsadm -a -t {vip} -r 192.168.{1 + d // 250}.{1 + d % 250}:80 -b")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ the reference


class Reference:
    """The scraped page's families, written again by prometheus_client alone."""

    def __init__(self, page: str):
        from prometheus_client.parser import text_string_to_metric_families
        self.rows = []
        for fam in text_string_to_metric_families(page):
            names = list(fam.samples[0].labels) if fam.samples else []
            samples, odd = [], []
            for s in fam.samples:
                if (fam.type in ("counter", "gauge", "info") and list(s.labels) == names
                        and s.name in self._names(fam)):
                    samples.append(([s.labels[k] for k in names], s.value))
                else:
                    odd.append(s)
            self.rows.append((fam.type, fam.name, fam.documentation, names, samples, odd))
        self.samples = sum(len(r[4]) + len(r[5]) for r in self.rows)
        self.built = list(self.families())

    @staticmethod
    def _names(fam) -> tuple[str, ...]:
        return {"counter": (fam.name + "_total",), "info": (fam.name + "_info",)}.get(
            fam.type, (fam.name,))

    def families(self):
        from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                            InfoMetricFamily, Metric)
        for kind, name, doc, labels, samples, odd in self.rows:
            if kind == "counter":
                fam = CounterMetricFamily(name, doc, labels=labels)
            elif kind == "gauge":
                fam = GaugeMetricFamily(name, doc, labels=labels)
            elif kind == "info":
                fam = InfoMetricFamily(name, doc, labels=labels)
            else:                       # unknown, untyped: no add_metric; as parsed
                fam = Metric(name, doc, kind)
            for values, value in samples:
                fam.add_metric(values, {} if kind == "info" else value)
            for s in odd:
                fam.add_sample(s.name, s.labels, s.value)
            yield fam

    def time(self, build: bool) -> tuple[float, bytes]:
        """generate_latest() of a registry whose collector builds the families (build) or
        yields them built: (seconds, text)."""
        from prometheus_client import CollectorRegistry, generate_latest
        ref = self

        class Collector:
            def collect(self):
                return ref.families() if build else iter(ref.built)
        reg = CollectorRegistry(auto_describe=False)
        reg.register(Collector())
        t = time.perf_counter()
        text = generate_latest(reg)
        return time.perf_counter() - t, text


# ------------------------------------------------------------------ measurements


def series_of(body: bytes) -> int:
    return body.count(b"\n") - body.count(b"\n#") - (1 if body.startswith(b"#") else 0)


def stats(values: list[float], nd: int = 2) -> dict:
    if not values:
        return {"n": 0}
    v = sorted(values)
    return {"n": len(v), "min": round(v[0], nd), "median": round(statistics.median(v), nd),
            "max": round(v[-1], nd)}


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


def threads_cpus(pid: int) -> list[list[str]]:
    """The daemon's threads now: [name, CPUs allowed] (where a scrape's thread may run)."""
    out = []
    for tid in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                st = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        except OSError:
            continue
        out.append([st.get("Name", "?"), st.get("Cpus_allowed_list", "?")])
    return out


def proc_cpu_ms(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / common.CLK_TCK


class Bench:
    def __init__(self, opts, logdir: str):
        self.opts, self.logdir = opts, logdir

    def start(self, services: int) -> tuple[RlbDaemon, float]:
        rlb = RlbDaemon(self.opts.python, INSTANCE, NS, self.logdir, name=f"rlb-{services}")
        t = time.monotonic()
        last = None
        for attempt in range(3):       # another engineer's `make build` may be under way
            try:
                rlb.start(config(services, self.opts.per_service, self.opts.laddrs),
                          ready_cmd="show metrics", timeout=240)
                return rlb, time.monotonic() - t
            except BenchError as err:
                last = err
                if rlb.proc is not None:
                    rlb.stop()
                if "ImportError" not in str(err) and "ModuleNotFoundError" not in str(err):
                    raise
                log(f"daemon: import error (a rebuild under way?), retry in 60 s: {err}")
                time.sleep(60)
        raise last

    def settle(self, rlb: RlbDaemon) -> float:
        """Wait until the daemon is quiet (its threads but the worker under --settle-pct
        of a CPU over 2 s: what it does after a start, such as the health probe paths'
        netlink work, is done); the seconds waited."""
        t0, busy = time.monotonic(), 0.0
        while time.monotonic() - t0 < self.opts.settle_timeout:
            a, ta = thread_times(rlb.pid), time.monotonic()
            time.sleep(2)
            b = thread_times(rlb.pid)
            busy = sum(r["user"] + r["system"] for r in thread_usage(a, b, time.monotonic() - ta)
                       if not r["thread"].startswith("rte-"))
            if busy < self.opts.settle_pct:
                return time.monotonic() - t0
        log(f"the daemon still busy ({busy:.0f} % of a CPU) after {self.opts.settle_timeout:g} s")
        return time.monotonic() - t0

    def scrape(self, gzip: bool) -> tuple[float, bytes]:
        with in_netns(NS):
            return get(URL, gzip)

    def size(self, services: int, last: bool) -> dict:
        o = self.opts
        log(f"{services} x {o.per_service}: starting the daemon")
        rlb, took = self.start(services)
        out = {"services": services, "per_service": o.per_service,
               "real_servers": services * o.per_service, "daemon_start_s": round(took, 1)}
        try:
            out["settle_s"] = round(self.settle(rlb), 1)
            self.scrape(False)                          # the first: imports, warm-up
            _, body = self.scrape(False)
            t = time.perf_counter()
            ref = Reference(body.decode())
            out["reference_parse_s"] = round(time.perf_counter() - t, 2)
            out["series"] = series_of(body)
            out["reference_samples"] = ref.samples
            if ref.samples != out["series"]:
                raise BenchError(f"reference has {ref.samples} samples, the page "
                                 f"{out['series']}")
            runs = {k: [] for k in ("get_ms", "get_gzip_ms", "last_ms", "last_gzip_ms",
                                    "ref_build_ms", "ref_write_ms")}
            sizes = {"bytes": [], "gzip_bytes": [], "ref_bytes": []}
            log(f"{services} x {o.per_service}: {out['series']} series, {len(body)} bytes; "
                f"{o.runs} runs")
            for i in range(o.runs):
                dt, body = self.scrape(False)
                runs["get_ms"].append(dt * 1000)
                runs["last_ms"].append(rlb.call("show metrics")["last_ms"])
                sizes["bytes"].append(len(body))
                dt, zbody = self.scrape(True)
                runs["get_gzip_ms"].append(dt * 1000)
                runs["last_gzip_ms"].append(rlb.call("show metrics")["last_ms"])
                sizes["gzip_bytes"].append(len(zbody))
                dt, text = ref.time(build=True)
                runs["ref_build_ms"].append(dt * 1000)
                sizes["ref_bytes"].append(len(text))
                dt, _ = ref.time(build=False)
                runs["ref_write_ms"].append(dt * 1000)
            out["runs_ms"] = {k: [round(v, 3) for v in vals] for k, vals in runs.items()}
            out.update({k: stats(v) for k, v in runs.items()})
            out.update({k: int(statistics.median(v)) for k, v in sizes.items()})
            out["show_metrics"] = rlb.call("show metrics")
            lm = out["last_ms"]["median"]
            for k in ("build", "write"):
                out[f"ratio_ref_{k}_to_rlb"] = \
                    round(out[f"ref_{k}_ms"]["median"] / lm, 1) if lm else None
            out["prometheus"] = self.prometheus()
            if last:
                out["control"] = self.control(rlb)
        finally:
            out["daemon_stop"] = rlb.stop()
        return out

    def prometheus(self) -> dict | None:
        """A real Prometheus (Debian's) in the namespace scraping the endpoint every 2 s
        (gzip, as it asks), for --prom-seconds: its own scrape_duration_seconds of each
        scrape (the figure a Prometheus user sees), min/median/max in ms."""
        exe = shutil.which("prometheus")
        if exe is None or self.opts.prom_seconds <= 0:
            return None
        where = tempfile.mkdtemp(prefix="prom-", dir=self.logdir)
        with open(os.path.join(where, "prometheus.yml"), "w") as f:
            f.write("global:\n  scrape_interval: 2s\n  scrape_timeout: 1900ms\n"
                    "scrape_configs:\n  - job_name: rlb\n    static_configs:\n"
                    f"      - targets: ['{ADDR}:{PORT}']\n")
        logf = open(os.path.join(where, "prometheus.log"), "w")
        proc = subprocess.Popen(
            ["ip", "netns", "exec", NS, exe, f"--config.file={where}/prometheus.yml",
             f"--storage.tsdb.path={where}/data", f"--web.listen-address={ADDR}:{PROM_PORT}",
             "--log.level=warn"], stdout=logf, stderr=subprocess.STDOUT)
        try:
            time.sleep(self.opts.prom_seconds)
            q = urllib.parse.quote(f'scrape_duration_seconds{{job="rlb"}}'
                                   f'[{int(self.opts.prom_seconds)}s]')
            with in_netns(NS):
                with urllib.request.urlopen(f"http://{ADDR}:{PROM_PORT}/api/v1/query?query={q}",
                                            timeout=10) as r:
                    res = json.load(r)["data"]["result"]
                with urllib.request.urlopen(f"http://{ADDR}:{PROM_PORT}/api/v1/query?query="
                                            + urllib.parse.quote('up{job="rlb"}'),
                                            timeout=10) as r:
                    up = json.load(r)["data"]["result"]
        except (OSError, ValueError, KeyError) as err:
            log(f"prometheus: {err}")
            return None
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            logf.close()
        ms = [float(v) * 1000 for _, v in res[0]["values"]] if res else []
        return {"scrapes": len(ms), "up": up[0]["value"][1] if up else None,
                "runs_ms": [round(v, 1) for v in ms], **({"ms": stats(ms)} if ms else {})}

    # -- the control socket and the data plane while scraping ---------------------------

    def window(self, rlb: RlbDaemon, client, until) -> dict:
        """Round trips on one control session every --pace ms, the commands of CONTROL in
        turn, until until() is true: their times, the daemon's CPU, the worker's passes
        and the drops over the window."""
        dp0, cpu0, t0 = rlb.call("show dataplane"), proc_cpu_ms(rlb.pid), time.monotonic()
        rtts = {cmd: [] for cmd in CONTROL}
        slow = []                       # (seconds into the window, ms) of the slow calls
        pace = self.opts.pace / 1000
        k = 0
        while not until():
            cmd = CONTROL[k % len(CONTROL)]
            k += 1
            t = time.perf_counter()
            r = client.call(cmd)
            ms = (time.perf_counter() - t) * 1000
            rtts[cmd].append(ms)
            if ms >= SLOW_MS and len(slow) < 40:
                slow.append((round(time.monotonic() - t0, 2), round(ms, 1)))
            if not r.get("ok"):
                raise BenchError(f"{cmd}: {r.get('error')}")
            time.sleep(max(0.0, pace - (time.perf_counter() - t)))
        dt = time.monotonic() - t0
        cpu1, dp1 = proc_cpu_ms(rlb.pid), rlb.call("show dataplane")
        w0, w1 = dp0["workers"][0], dp1["workers"][0]
        drops = {k: dp1["reasons"][k] - dp0["reasons"].get(k, 0) for k in dp1["reasons"]}
        return {"seconds": round(dt, 2), "calls": sum(map(len, rtts.values())),
                "rtt_ms": {cmd: {"n": len(v), "p50": round(pct(v, 0.5), 2),
                                 "p99": round(pct(v, 0.99), 2), "max": round(max(v), 2)}
                           for cmd, v in rtts.items() if v},
                "slow_calls": slow,
                "daemon_cpu_pct": round((cpu1 - cpu0) / dt / 10, 1),
                "daemon_cpu_ms": round(cpu1 - cpu0, 1),
                "worker_polls_per_s": round((w1["polls"] - w0["polls"]) / dt),
                "worker_idle_sleeps_per_s": round((w1["idle_sleeps"] - w0["idle_sleeps"]) / dt),
                "drops": sum(drops.values()),
                "drops_by_reason": {k: v for k, v in drops.items() if v}}

    def control(self, rlb: RlbDaemon) -> dict:
        from rlb.control.client import Client
        o = self.opts
        log(f"control socket: {o.quiet_seconds:g} s quiet, then while scraping "
            f"(<= {o.loop_scrapes} scrapes, <= {o.loop_seconds:g} s)")
        with Client(INSTANCE, timeout=30) as c:
            end = time.monotonic() + o.quiet_seconds
            quiet = self.window(rlb, c, lambda: time.monotonic() >= end)
            loop = Proc("scrape-loop", ["ip", "netns", "exec", NS, o.python,
                                        os.path.abspath(__file__), "--scrape-loop",
                                        "--url", URL, "--loop-scrapes", str(o.loop_scrapes),
                                        "--loop-seconds", str(o.loop_seconds)], self.logdir)
            try:
                busy = self.window(rlb, c, lambda: not loop.alive())
                busy["threads"] = threads_cpus(rlb.pid)
                rc = loop.p.wait(30)
            finally:
                loop.stop()
            if rc:
                raise BenchError(f"scrape loop: exit {rc}: {loop.stderr().strip()[-500:]}")
            ms = json.loads(loop.stdout().strip().splitlines()[-1])["ms"]
        busy["scrapes"] = len(ms)
        busy["scrape_ms"] = stats(ms)
        extra = busy["daemon_cpu_ms"] - quiet["daemon_cpu_ms"] / quiet["seconds"] * busy["seconds"]
        busy["daemon_cpu_ms_per_scrape"] = round(extra / max(len(ms), 1), 1)
        return {"quiet": quiet, "scraping": busy}


# ------------------------------------------------------------------ report


def fmt_s(s: dict, nd: int = 1) -> str:
    if not s or not s.get("n"):
        return "-"
    return f"{s['median']:.{nd}f} ({s['min']:.{nd}f}-{s['max']:.{nd}f})"


def report(meta: dict) -> str:
    o = meta["options"]
    lines = [f"# metrics.py: the Prometheus endpoint's cost ({meta['started']})", "",
             f"{meta['host']}, kernel {meta['kernel']}, {meta['cpus']} CPUs; prometheus_client "
             f"{meta['prometheus_client']}; {o['runs']} runs per size, interleaved; "
             f"FNAT services of {o['per_service']} real servers (one local address each, of "
             f"{o['laddrs']} the services share), no traffic (every counter 0); the daemon "
             "`workers 1`, idle-sleep.", "",
             "ms: median (min-max) of the runs. GET: an HTTP GET from inside the namespace to "
             "the body's last byte; last_ms: the daemon's own time for the page (`show "
             "metrics`, without HTTP and gzip); reference: prometheus_client's "
             "generate_latest() of the same samples (build: its collector builds the "
             "families each scrape; write: the families built once). ratio: reference / "
             "rlb's last_ms.", "",
             "| services x real servers | series | bytes | gzip bytes | GET ms | GET gzip ms "
             "| rlb last_ms | reference build+write ms | reference write ms | ratio build | "
             "ratio write |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in meta["sizes"]:
        lines.append(
            f"| {r['services']} x {r['per_service']} | {r['series']:,} | {r['bytes']:,} | "
            f"{r['gzip_bytes']:,} | {fmt_s(r['get_ms'])} | {fmt_s(r['get_gzip_ms'])} | "
            f"{fmt_s(r['last_ms'])} | {fmt_s(r['ref_build_ms'], 0)} | "
            f"{fmt_s(r['ref_write_ms'], 0)} | {r['ratio_ref_build_to_rlb']}x | "
            f"{r['ratio_ref_write_to_rlb']}x |")
    if any(r.get("prometheus") for r in meta["sizes"]):
        lines += ["", "A real Prometheus (Debian's, in the namespace, every 2 s, gzip) scraping "
                  "each size: its own `scrape_duration_seconds`, ms.", "",
                  "| services x real servers | scrapes | up | scrape ms |", "|---|---:|---:|---:|"]
        for r in meta["sizes"]:
            p = r.get("prometheus") or {}
            lines.append(f"| {r['services']} x {r['per_service']} | {p.get('scrapes', '-')} | "
                         f"{p.get('up', '-')} | "
                         f"{fmt_s(p['ms']) if p.get('ms') else '-'} |")
    big = meta["sizes"][-1]
    worst = max(big["get_ms"]["median"], big["get_gzip_ms"]["median"])
    lines += ["", f"Goal: a scrape of 1,000 x 16 < {GOAL_MS:g} ms. At {big['services']} x "
              f"{big['per_service']}: GET median {big['get_ms']['median']:.1f} ms, gzip "
              f"{big['get_gzip_ms']['median']:.1f} ms: "
              f"{'met' if worst < GOAL_MS else 'NOT met'}.", ""]
    c = big.get("control")
    if c:
        q, b = c["quiet"], c["scraping"]
        lines += [f"## The control socket and the data plane while scraping ({big['services']}"
                  f" x {big['per_service']})", "",
                  f"One control session, a call every {o['pace']:g} ms, "
                  f"{' and '.join(f'`{c_}`' for c_ in CONTROL)} in turn; quiet: "
                  f"{q['seconds']:g} s without scrapes; scraping: a client in the namespace "
                  f"scraping back to back (gzip), {b['scrapes']} scrapes of "
                  f"{fmt_s(b['scrape_ms'])} ms. The worker's loop passes a second and the "
                  "drop counters (`show dataplane`) over the same windows.", "",
                  "| window | command | calls | p50 ms | p99 ms | max ms | daemon CPU | "
                  "worker passes/s | drops |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name, w in (("quiet", q), ("scraping", b)):
            for cmd, r in w["rtt_ms"].items():
                lines.append(f"| {name} | `{cmd}` | {r['n']} | {r['p50']} | {r['p99']} | "
                             f"{r['max']} | {w['daemon_cpu_pct']} % | "
                             f"{w['worker_polls_per_s']:,} | {w['drops']} |")
        lines += ["", "Calls over {:g} ms (seconds into the window: ms): quiet {}; scraping {}."
                  .format(SLOW_MS, ", ".join(f"{t}: {ms}" for t, ms in q["slow_calls"]) or "none",
                          ", ".join(f"{t}: {ms}" for t, ms in b["slow_calls"][:12]) or "none"),
                  "", "The daemon's threads and the CPUs they may run on: " + ", ".join(
                      f"{n} {c_}" for n, c_ in b.get("threads", [])) + "."]
        lines += ["", f"Daemon CPU per scrape (beyond the quiet window's rate): "
                  f"{b['daemon_cpu_ms_per_scrape']} ms.", ""]
    lines += ["Daemon start (config file to `show metrics` answering) + settling (until "
              f"its threads but the worker use < {o['settle_pct']:g} % of a CPU): " + ", ".join(
                  f"{r['services']} x {r['per_service']}: {r['daemon_start_s']} + "
                  f"{r['settle_s']} s" for r in meta["sizes"]), ""]
    return "\n".join(lines)


# ------------------------------------------------------------------ main


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10,100,1000", help="services, ascending (default "
                   "%(default)s); the control-socket windows run at the last")
    p.add_argument("--per-service", type=int, default=16, help="real servers per service")
    p.add_argument("--laddrs", type=int, default=4,
                   help="FNAT local addresses the services share (default %(default)s)")
    p.add_argument("--settle-pct", type=float, default=20,
                   help="the daemon is quiet under this %% of a CPU (its worker aside)")
    p.add_argument("--settle-timeout", type=float, default=120)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--pace", type=float, default=10, help="ms between control calls")
    p.add_argument("--quiet-seconds", type=float, default=10)
    p.add_argument("--loop-scrapes", type=int, default=50)
    p.add_argument("--loop-seconds", type=float, default=30)
    p.add_argument("--prom-seconds", type=float, default=20,
                   help="how long a real Prometheus scrapes each size (0: not at all)")
    p.add_argument("--quick", action="store_true", help="2 runs, 5 s quiet, <= 20 scrapes")
    p.add_argument("--scrape-loop", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--url", default=URL, help=argparse.SUPPRESS)
    add_output_options(p)
    opts = p.parse_args()
    if opts.scrape_loop:
        return scrape_loop_main(opts.url, opts.loop_scrapes, opts.loop_seconds)
    if opts.quick:
        opts.runs, opts.quiet_seconds, opts.loop_scrapes, opts.loop_seconds = 2, 5, 20, 15
        opts.prom_seconds = min(opts.prom_seconds, 10)
    if os.geteuid() != 0:
        print("run as root (namespaces, the data plane)", file=sys.stderr)
        return 2
    sizes = [int(s) for s in opts.sizes.split(",")]
    install_signal_unwind()
    logdir = tempfile.mkdtemp(prefix="rlbb-met-")
    from importlib.metadata import version
    meta = {"bench": "metrics", "started": _dt.datetime.now().isoformat(timespec="seconds"),
            "host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
            "prometheus_client": version("prometheus_client"),
            "options": {k: v for k, v in vars(opts).items()
                        if k not in ("scrape_loop", "url", "out", "python", "keep_logs")},
            "sizes": []}
    t0 = time.monotonic()
    try:
        make_namespaces(NAMESPACES)
        veth((NS, DP_IF, DP_MAC), (NS, TAP_IF, TAP_MAC))
        bench = Bench(opts, logdir)
        for i, s in enumerate(sizes):
            meta["sizes"].append(bench.size(s, last=i == len(sizes) - 1))
    except BenchError as err:
        log(f"failed: {err} (logs in {logdir})")
        opts.keep_logs = True
        return 1
    finally:
        remove_namespaces(NAMESPACES)
    meta["seconds"] = round(time.monotonic() - t0, 1)
    big = meta["sizes"][-1]
    meta["goal"] = {"ms": GOAL_MS, "services": big["services"], "get_ms": big["get_ms"]["median"],
                    "get_gzip_ms": big["get_gzip_ms"]["median"],
                    "met": max(big["get_ms"]["median"], big["get_gzip_ms"]["median"]) < GOAL_MS}
    base = f"metrics-{time.strftime('%Y%m%d-%H%M%S')}"
    common.finish(opts, base, meta, report(meta), logdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
