"""Helpers shared by the benchmarks: commands in namespaces, counters, CPU accounting,
processes we start (and stop by PID), the rlb daemon, the results files."""
from __future__ import annotations

import json
import shutil
import os
import resource
import signal
import socket
import subprocess
import sys
import time

import charts

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CGEN_DIR = os.path.join(HERE, "cgen")
DEFAULT_PY = os.path.join(ROOT, ".venv", "bin", "python")
RLB_RUN_DIR = os.environ.get("RLB_RUN_DIR", "/run/rlb")


class BenchError(Exception):
    pass


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(*cmd: str, ns: str | None = None, check: bool = True, input: str | None = None,
       timeout: float = 30) -> subprocess.CompletedProcess:
    full = (["ip", "netns", "exec", ns] if ns else []) + list(cmd)
    r = subprocess.run(full, input=input, text=True, capture_output=True, timeout=timeout)
    if check and r.returncode:
        raise BenchError(f"{' '.join(full)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


def ns_exists(name: str) -> bool:
    return os.path.exists(f"/run/netns/{name}")


def link_stats(ns: str) -> dict:
    data = json.loads(sh("ip", "-n", ns, "-s", "-j", "link", "show").stdout)
    out = {}
    for link in data:
        s = link.get("stats64") or link.get("stats") or {}
        rx, tx = s.get("rx", {}), s.get("tx", {})
        out[link["ifname"]] = {"rx_packets": rx.get("packets", 0), "rx_dropped": rx.get("dropped", 0),
                               "tx_packets": tx.get("packets", 0), "tx_dropped": tx.get("dropped", 0)}
    return out


def cpu_times() -> dict:
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3:4].isdigit():
                name, *vals = line.split()
                out[name] = [int(v) for v in vals[:8]]
    return out


def unattributed_user(cpu: dict, threads: dict) -> float:
    """User time on the CPUs beyond that of this run's threads, in % of one CPU: other
    people's work, short-lived processes included (softirq is never user time)."""
    total = sum(c["user"] for c in cpu.values())
    ours = sum(t["user"] for rows in threads.values() for t in rows)
    return round(max(0.0, total - ours), 1)


def cpu_usage(a: dict, b: dict) -> dict:
    """Per CPU: % busy and its split (user, system, softirq, irq, steal) between two samples."""
    res = {}
    for cpu in a:
        d = [y - x for x, y in zip(a[cpu], b[cpu])]
        total = sum(d) or 1
        user, nice, system, idle, iowait, irq, softirq, steal = d
        res[cpu] = {"busy": round(100 * (total - idle - iowait) / total, 1),
                    "user": round(100 * (user + nice) / total, 1),
                    "system": round(100 * system / total, 1),
                    "softirq": round(100 * softirq / total, 1),
                    "irq": round(100 * irq / total, 1),
                    "steal": round(100 * steal / total, 1)}
    return res


CLK_TCK = os.sysconf("SC_CLK_TCK")


def thread_times(pid: int | None) -> dict:
    """Per thread of a process: name, CPU ticks, last CPU, context switches."""
    out = {}
    if pid is None:
        return out
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                comm_part, rest = f.read().rsplit(")", 1)
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        fields = rest.split()
        out[tid] = {"comm": comm_part.split("(", 1)[1], "utime": int(fields[11]),
                    "stime": int(fields[12]), "cpu": int(fields[36]),
                    "nvcsw": int(status.get("nonvoluntary_ctxt_switches", "0")),
                    "vcsw": int(status.get("voluntary_ctxt_switches", "0"))}
    return out


def thread_usage(a: dict, b: dict, dt: float) -> list[dict]:
    """Threads that used CPU between two samples: % of one CPU in user and system time."""
    rows = []
    for tid, t in b.items():
        p = a.get(tid)
        if p is None:
            continue
        user = 100 * (t["utime"] - p["utime"]) / CLK_TCK / dt
        system = 100 * (t["stime"] - p["stime"]) / CLK_TCK / dt
        if user + system < 1:
            continue
        rows.append({"thread": t["comm"], "tid": int(tid), "cpu": t["cpu"],
                     "user": round(user, 1), "system": round(system, 1),
                     "preempted": t["nvcsw"] - p["nvcsw"], "slept": t["vcsw"] - p["vcsw"]})
    return rows


def process_times() -> dict:
    """CPU ticks of every process on the machine (other engineers' work is noise here)."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                comm_part, rest = f.read().rsplit(")", 1)
        except OSError:
            continue
        fields = rest.split()
        kthread = bool(int(fields[6]) & 0x00200000)         # PF_KTHREAD
        # own time only: children's (cutime) would bring in whole lifetimes of commands
        # that merely ended in the window; short-lived ones are caught by
        # unattributed_user() instead
        ticks = int(fields[11]) + int(fields[12])
        out[pid] = (comm_part.split("(", 1)[1], ticks, kthread)
    return out


def other_load(a: dict, b: dict, dt: float, ours: set) -> dict:
    """CPU used by processes that are not part of this run, in % of one CPU. Kernel
    threads (ksoftirqd doing deferred network work, kworkers) are counted apart:
    they may be this run's own packets. Processes that came and went within the
    window are not seen here: see unattributed_user()."""
    rows, kernel = [], 0.0
    for pid, (comm, ticks, kthread) in b.items():
        if pid in ours or pid not in a:
            continue
        pct = 100 * (ticks - a[pid][1]) / CLK_TCK / dt
        if kthread:
            kernel += pct
        elif pct >= 0.5:
            rows.append((round(pct, 1), comm, int(pid)))
    rows.sort(reverse=True)
    return {"total_pct": round(sum(r[0] for r in rows), 1), "kernel_threads_pct": round(kernel, 1),
            "top": [{"comm": c, "pid": p, "pct": v} for v, c, p in rows[:6]]}


class Proc:
    """A process we started, stopped by its PID only."""

    def __init__(self, name: str, cmd: list[str], logdir: str):
        self.name = name
        self.out_path = os.path.join(logdir, f"{name}.out")
        self.err_path = os.path.join(logdir, f"{name}.err")
        self._out = open(self.out_path, "w")
        self._err = open(self.err_path, "w")
        self.cmd = cmd
        self.p = subprocess.Popen(cmd, stdout=self._out, stderr=self._err,
                                  stdin=subprocess.DEVNULL, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.p.pid

    def alive(self) -> bool:
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout: float = 15) -> int | None:
        if self.alive():
            try:
                os.kill(self.p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"{self.name} (pid {self.pid}) ignored {signal.Signals(sig).name}: SIGKILL")
                os.kill(self.p.pid, signal.SIGKILL)
                self.p.wait(5)
        self._out.close()
        self._err.close()
        return self.p.returncode

    def stdout(self) -> str:
        if not self._out.closed:
            self._out.flush()
        with open(self.out_path) as f:
            return f.read()

    def stderr(self) -> str:
        if not self._err.closed:
            self._err.flush()
        with open(self.err_path) as f:
            return f.read()


def wait_for(pred, timeout: float, what: str, proc: Proc | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise BenchError(f"{what}: {proc.name} exited with {proc.p.returncode}: "
                             f"{proc.stderr().strip()[-2000:]}")
        if pred():
            return
        time.sleep(0.2)
    raise BenchError(f"{what}: not ready after {timeout:.0f} s")


def fmt_pps(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v / 1e6:.3f}M" if v >= 1e6 else f"{v / 1e3:.1f}k"


def fmt_rate(v: float | None, unit: str = "") -> str:
    if v is None:
        return "-"
    return fmt_pps(v) + unit


# ------------------------------------------------------------------ namespaces


def make_namespaces(names: tuple[str, ...]) -> None:
    """Fresh namespaces, IPv6 off. A stale one left by a crashed run is removed, unless
    processes still live in it (another run?)."""
    for ns in names:
        if ns_exists(ns):
            pids = sh("ip", "netns", "pids", ns, check=False).stdout.split()
            if pids:
                raise BenchError(f"namespace {ns} exists with processes {pids}: another "
                                 "bench run? (remove it by hand when it is stale)")
            log(f"removing stale namespace {ns}")
            sh("ip", "netns", "del", ns)
    for ns in names:
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
           "net.ipv6.conf.default.disable_ipv6=1", ns=ns)


def remove_namespaces(names: tuple[str, ...]) -> None:
    for ns in names:
        if ns_exists(ns):
            sh("ip", "netns", "del", ns, check=False)


def namespace_pids(names: tuple[str, ...]) -> set[str]:
    out: set[str] = set()
    for ns in names:
        if ns_exists(ns):
            out |= set(sh("ip", "netns", "pids", ns, check=False).stdout.split())
    return out


def veth(a: tuple[str, str, str], b: tuple[str, str, str]) -> None:
    """A veth pair made inside the namespaces (the host gets nothing): (ns, ifname, mac)
    each end, checksum offload and GRO off on both (BASELINE.md), up."""
    sh("ip", "-n", a[0], "link", "add", a[1], "address", a[2], "type", "veth",
       "peer", "name", b[1], "address", b[2], "netns", b[0])
    for ns, dev, _ in (a, b):
        # tx off also turns off TSO/GSO: without it af_packet ports forward frames with
        # unfinished checksums and the receivers drop them
        sh("ethtool", "-K", dev, "tx", "off", "gro", "off", ns=ns)
        sh("ip", "-n", ns, "link", "set", dev, "up")


# ------------------------------------------------------------------ CPU accounting


def children_ticks() -> tuple[float, float]:
    """User and system CPU (in ticks) of our waited-for children: load generators and
    commands that ended within a window, which /proc no longer shows."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime * CLK_TCK, ru.ru_stime * CLK_TCK


def user_ticks_by_pid() -> dict:
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                out[pid] = int(f.read().rsplit(")", 1)[1].split()[11])
        except (OSError, IndexError, ValueError):
            continue
    return out


class Window:
    """CPU use over a measurement window: per CPU, per thread of the processes we watch,
    and the load of everything that is not ours (other people's work on the machine).
    Ours = this process, its children, and every process in our namespaces."""

    def __init__(self, namespaces: tuple[str, ...], watch: dict[str, int | None]):
        self.namespaces = namespaces
        self.watch = watch
        self.threads = {k: thread_times(pid) for k, pid in watch.items()}
        self.procs = process_times()
        self.user = user_ticks_by_pid()
        self.children = children_ticks()
        self.cpu = cpu_times()
        self.t = time.monotonic()

    def close(self) -> dict:
        cpu = cpu_times()
        t = time.monotonic()
        children = children_ticks()
        user = user_ticks_by_pid()
        procs = process_times()
        threads = {k: thread_times(pid) for k, pid in self.watch.items()}
        dt = t - self.t
        ours = namespace_pids(self.namespaces) | {str(os.getpid())}
        res = {"seconds": round(dt, 3), "cpu": cpu_usage(self.cpu, cpu),
               "threads": {k: thread_usage(self.threads[k], threads[k], dt) for k in threads}}
        ol = other_load(self.procs, procs, dt, ours)
        # user time on the CPUs that no process we saw (ours or not) accounts for:
        # short-lived processes of other people
        total_user = sum((b[0] + b[1]) - (a[0] + a[1]) for a, b in
                         ((self.cpu[c], cpu[c]) for c in cpu))
        seen = sum(u - self.user[p] for p, u in user.items() if p in self.user)
        seen += children[0] - self.children[0]
        ol["seen_pct"] = ol["total_pct"]
        ol["unattributed_user_pct"] = round(max(0.0, 100 * (total_user - seen) / CLK_TCK / dt), 1)
        ol["total_pct"] = min(100.0 * len(cpu), max(ol["seen_pct"], ol["unattributed_user_pct"]))
        res["other_load"] = ol
        return res


# ------------------------------------------------------------------ the rlb daemon


class RlbDaemon:
    """`rlb daemon` in a namespace, on a config we write; queried over its control socket;
    stopped by SIGTERM to its PID (it removes its nft isolation table and socket)."""

    def __init__(self, python: str, instance: str, ns: str, logdir: str, name: str = "rlb"):
        self.python, self.instance, self.ns, self.logdir, self.name = \
            python, instance, ns, logdir, name
        self.sock_path = os.path.join(RLB_RUN_DIR, f"{instance}.sock")
        self.proc: Proc | None = None

    @property
    def nft_table(self) -> str:
        return f"rlb_{self.instance}".replace("-", "_")

    def start(self, config: str, ready_cmd: str = "ipvsadm -ln", timeout: float = 60) -> None:
        if os.path.exists(self.sock_path):
            raise BenchError(f"{self.sock_path} exists: an rlb instance {self.instance!r} is "
                             "running (or crashed); stop it or remove the socket")
        conf = os.path.join(self.logdir, f"{self.name}.conf")
        with open(conf, "w") as f:
            f.write(config)
        # `ip netns exec` execs the daemon in place: the PID is the daemon's
        self.proc = Proc(self.name, ["ip", "netns", "exec", self.ns, self.python, "-m", "rlb",
                                     "daemon", "-f", conf, "-N", self.instance], self.logdir)

        wait_for(lambda: os.path.exists(self.sock_path) and self.ready(ready_cmd), timeout,
                 "rlb daemon", self.proc)

    def ready(self, ready_cmd: str) -> bool:
        """Whether the started daemon answers (`rlb -c READY_CMD`)."""
        try:
            return self.cli(ready_cmd, timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def cli(self, *cmds: str, as_json: bool = False, timeout: float = 30):
        """`rlb -N <instance> -c ...` as an operator types it."""
        argv = [self.python, "-m", "rlb", "-N", self.instance]
        for c in cmds:
            argv += ["-c", c]
        if as_json:
            argv.append("--json")
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT)

    def text(self, *cmds: str) -> str:
        r = self.cli(*cmds)
        return (r.stdout + r.stderr).rstrip()

    def call(self, cmd: str, timeout: float = 10) -> dict:
        """One request on the control socket (what `rlb -c` does, without starting Python);
        returns the reply's data, raises BenchError on a refused command."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(self.sock_path)
            f = s.makefile("rwb")
            f.write(json.dumps({"cmd": cmd}).encode() + b"\n")
            f.flush()
            reply = json.loads(f.readline())
        if not reply.get("ok"):
            raise BenchError(f"rlb {cmd!r}: {reply.get('error')}")
        return reply.get("data") or {}

    def rss_kib(self) -> int | None:
        return proc_status_kib(self.pid, "VmRSS")

    def stop(self) -> dict:
        rc = self.proc.stop(signal.SIGTERM, timeout=30) if self.proc else None
        # killed: its cleanup did not run; do it in its namespace
        left = sh("nft", "list", "table", "netdev", self.nft_table, ns=self.ns, check=False)
        if left.returncode == 0:
            sh("nft", "delete", "table", "netdev", self.nft_table, ns=self.ns, check=False)
        if os.path.exists(self.sock_path) and rc not in (0, None):
            try:
                os.unlink(self.sock_path)
            except OSError:
                pass
        err = self.proc.stderr() if self.proc else ""
        return {"exit": rc, "nft_left_behind": left.returncode == 0,
                "log_tail": err.strip().splitlines()[-5:]}


def proc_status_kib(pid: int | None, key: str) -> int | None:
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


# ------------------------------------------------------------------ results


def add_output_options(p) -> None:
    """The options every bench has: which Python runs rlb, where results and logs go."""
    p.add_argument("--python", default=DEFAULT_PY if os.path.exists(DEFAULT_PY) else sys.executable,
                   help="Python with rlb installed (default the project venv)")
    p.add_argument("--out", default=os.path.join(HERE, "results"), help="results directory")
    p.add_argument("--keep-logs", action="store_true", help="keep the logs directory")


def finish(opts, base: str, meta: dict, md: str, logdir: str) -> str:
    """Results written (OUT/BASE.json, .md) and printed, the logs removed unless kept."""
    path = write_results(opts.out, base, meta, md)
    print(md)
    log(f"wrote {path}.json and {path}.md")
    if not opts.keep_logs:
        shutil.rmtree(logdir, ignore_errors=True)
    return path


def iperf3(cmd: list[str], logdir: str, tag: str, seconds: float) -> dict:
    """One iperf3 client run (`cmd` ends with its arguments; -J added here): received and
    sent Gbit/s, the sender's retransmissions."""
    p = Proc(f"iperf3-{tag}", [*cmd, "-t", f"{seconds:g}", "-J", "--connect-timeout", "3000"],
             logdir)
    try:
        p.p.wait(seconds + 30)
    finally:
        p.stop(signal.SIGTERM, timeout=5)
    try:
        data = json.loads(p.stdout())
    except ValueError:
        raise BenchError(f"iperf3: no JSON: {(p.stdout() + p.stderr()).strip()[-300:]}") from None
    if data.get("error"):
        raise BenchError(f"iperf3: {data['error']}")
    end = data.get("end", {})
    recv, sent = end.get("sum_received", {}), end.get("sum_sent", {})
    return {"value": round(recv.get("bits_per_second", 0) / 1e9, 3),
            "sent_gbps": round(sent.get("bits_per_second", 0) / 1e9, 3),
            "retransmits": sent.get("retransmits"), "errors": 0,
            "cpu_utilization": end.get("cpu_utilization_percent")}


def write_results(out_dir: str, base: str, meta: dict, md: str) -> str:
    """OUT/BASE.json, its charts (charts.py: OUT/BASE-<metric>.png, when the result has
    repeated runs and matplotlib is there; else one line why not) and OUT/BASE.md, which
    links the charts."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, base)
    with open(path + ".json", "w") as f:
        json.dump(meta, f, indent=2, default=str)
    pngs = charts.bench_charts(path + ".json", log)
    if pngs:
        log(f"charts: {', '.join(os.path.basename(p) for p in pngs)}")
    with open(path + ".md", "w") as f:
        f.write(md + charts.md_section(pngs))
    return path


def build_cgen() -> str:
    r = subprocess.run(["make", "-s", "-C", CGEN_DIR], capture_output=True, text=True)
    binary = os.path.join(CGEN_DIR, "cgen")
    if r.returncode or not os.path.exists(binary):
        raise BenchError(f"building cgen: {r.stdout}{r.stderr}")
    return binary


def install_signal_unwind() -> None:
    """SIGTERM/SIGHUP unwind through the finally blocks like Ctrl-C."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)
