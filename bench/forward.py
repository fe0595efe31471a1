#!/usr/bin/env python3
"""64-byte UDP forwarding through one namespace: rlb vs a minimal C DPDK loop vs the kernel.

Topology (all in network namespaces this script creates and removes):

    rlbb-gen  g0 --veth-- f0  rlbb-fwd  f1 --veth-- s0  rlbb-sink
    10.10.1.2            10.10.1.1     10.10.2.1          10.10.2.2

The generator (bench/cgen: AF_PACKET with qdisc bypass, sendmmsg or a TX ring,
pinned to --gen-cpu) sends 64-byte frames (60 + FCS) 10.10.1.2 -> 10.10.2.2 with the
destination MAC of f0, cycling over --flows UDP source ports. One forwarder at a
time runs in rlbb-fwd on f0/f1:

  rlb      `rlb daemon` with two af_packet ports, `forwarding`, `busy-poll`
  cfwd     bench/cfwd: the smallest C DPDK L3 loop on the same af_packet ports
  kernel   plain Linux IPv4 forwarding: it runs in the softirq of the sender,
           i.e. on the generator's CPU (a veth has no queue of its own)
  kernel-rps  the same with RPS steering f0's receive (and so forwarding) work
           to --fwd-cpu, the CPU a DPDK worker gets

Optional variants: rlb-idle (idle-sleep back-off instead of busy-poll),
rlb-nokni (no <port>.kni taps). Virtual devices (issue 15), each against plain rlb:

  rlb-vlan   the generator's frames come tagged (VLAN 100, cgen --vlan) into the VLAN
             interface dpdk0.100 and leave dpdk1 untagged
  rlb-vlan2  tagged both sides: in on dpdk0.100, out on dpdk1.200 (tagged 200)
  rlb-bond   the receiving side is bond0, mode 0 (round robin), slaves dpdk0 (f0) and
             dpdk2 (f2, a second veth from the generator's g2); two generators, one per
             slave link, both on --gen-cpu; out by plain dpdk1

    rlbb-gen  g0 --veth-- f0 \
                              rlbb-fwd (bond0 = f0 + f2)  f1 --veth-- s0  rlbb-sink
              g2 --veth-- f2 /

The result is the rate counted at the receiver (rx_packets of s0, whose kernel
stack drops everything at ingress, so it never replies). What the generator
offered (tx_packets of g0) is reported beside it. Runs are interleaved
(rlb, cfwd, kernel, rlb, ...) so that noise from other work on the machine
spreads over all forwarders; medians are reported.

Must run as root:  /work/main/.venv/bin/python bench/forward.py [--quick]
Writes bench/results/forward-<timestamp>.{json,md}.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import (CGEN_DIR, HERE, RLB_RUN_DIR, ROOT, BenchError, Proc,  # noqa: E402
                    add_output_options, cpu_times, cpu_usage, finish, fmt_pps, link_stats, log,
                    make_namespaces, ns_exists, other_load, process_times, sh, thread_times,
                    thread_usage, unattributed_user, veth, wait_for)

CFWD_DIR = os.path.join(HERE, "cfwd")

NS_GEN, NS_FWD, NS_SINK = "rlbb-gen", "rlbb-fwd", "rlbb-sink"
NAMESPACES = (NS_GEN, NS_FWD, NS_SINK)
GEN_IF, IN_IF, OUT_IF, SINK_IF = "g0", "f0", "f1", "s0"
GEN_MAC, IN_MAC = "02:bb:00:01:00:02", "02:bb:00:01:00:01"
GEN2_IF, IN2_IF = "g2", "f2"                    # the bond's second slave link (rlb-bond)
GEN2_MAC, IN2_MAC = "02:bb:00:03:00:02", "02:bb:00:03:00:01"
VLAN_IN, VLAN_OUT = 100, 200                    # rlb-vlan: in tagged; rlb-vlan2: both
OUT_MAC, SINK_MAC = "02:bb:00:02:00:01", "02:bb:00:02:00:02"
GEN_IP, IN_IP, OUT_IP, SINK_IP = "10.10.1.2", "10.10.1.1", "10.10.2.1", "10.10.2.2"
RLB_INSTANCE = "bench"
NFT_FWD_TABLE = "rlbb_fwd"          # isolation of f0/f1 for cfwd's run
NFT_SINK_TABLE = "rlbb_sink"        # the sink drops (and counts) everything
# -rps on a DPDK forwarder is accepted but not listed: the receive softirq then shares
# the worker's CPU and starves it (receive livelock, <1% delivered); see README.md
FORWARDERS = ("rlb", "cfwd", "kernel", "kernel-rps", "rlb-idle", "rlb-nokni",
              "rlb-vlan", "rlb-vlan2", "rlb-bond")
# each virtual device against the plain port (ratios of medians)
DEVICE_RATIOS = (("rlb-vlan", "rlb"), ("rlb-vlan2", "rlb"), ("rlb-bond", "rlb"))
HIDDEN_FORWARDERS = ("rlb-rps", "cfwd-rps", "rlb-idle-rps", "rlb-nokni-rps")
DEFAULT_FORWARDERS = "rlb,cfwd,kernel,kernel-rps"


def remove_namespaces() -> None:
    common.remove_namespaces(NAMESPACES)


def build_topology(bond: bool = False) -> None:
    make_namespaces(NAMESPACES)
    # veths are created inside the namespaces: the host namespace gets nothing
    veth((NS_GEN, GEN_IF, GEN_MAC), (NS_FWD, IN_IF, IN_MAC))
    veth((NS_FWD, OUT_IF, OUT_MAC), (NS_SINK, SINK_IF, SINK_MAC))
    if bond:        # the second slave link, only when a bond forwarder runs
        veth((NS_GEN, GEN2_IF, GEN2_MAC), (NS_FWD, IN2_IF, IN2_MAC))
    sh("ip", "-n", NS_GEN, "addr", "add", f"{GEN_IP}/24", "dev", GEN_IF)
    sh("ip", "-n", NS_SINK, "addr", "add", f"{SINK_IP}/24", "dev", SINK_IF)
    # the sink's stack never sees the traffic: no ICMP replies, no CPU spent past
    # the veth. The first counter takes only correctly forwarded frames: MACs
    # rewritten, TTL 63 and the header checksum that goes with it; the second the rest.
    # A tagged frame (rlb-vlan2) has its tag in the skb's metadata by then (skb_vlan_untag
    # runs before the ingress hook); nft shows it as ether type 0x8100 + the tag, so it
    # needs a rule of its own (vlan id 200), the network header being the IP one for both
    sh("nft", "-f", "-", ns=NS_SINK, input=(
        f"table netdev {NFT_SINK_TABLE} {{\n"
        f"  chain in {{ type filter hook ingress device \"{SINK_IF}\" priority 0; policy drop;\n"
        f"    ether saddr {OUT_MAC} ether daddr {SINK_MAC} ip saddr {GEN_IP} ip daddr {SINK_IP} "
        f"ip ttl 63 @nh,80,16 {forwarded_ip_checksum():#06x} counter drop\n"
        f"    ether saddr {OUT_MAC} ether daddr {SINK_MAC} vlan id {VLAN_OUT} ip saddr {GEN_IP} "
        f"ip daddr {SINK_IP} ip ttl 63 @nh,80,16 {forwarded_ip_checksum():#06x} counter drop\n"
        "    counter drop\n  }\n}\n"))


def forwarded_ip_checksum() -> int:
    """IP header checksum of a generated packet after one hop (cgen: id 0, DF, TTL 64)."""
    import ipaddress
    hdr = bytes([0x45, 0, 0, 46, 0, 0, 0x40, 0, 63, 17, 0, 0]) + \
        ipaddress.IPv4Address(GEN_IP).packed + ipaddress.IPv4Address(SINK_IP).packed
    total = sum(int.from_bytes(hdr[i:i + 2], "big") for i in range(0, 20, 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def sink_nft_count() -> tuple[int, int] | None:
    """(correctly forwarded, other) frames counted by the sink's ingress chain (its
    last counter is the other frames', the ones before count good frames untagged and
    tagged)."""
    r = sh("nft", "-j", "list", "table", "netdev", NFT_SINK_TABLE, ns=NS_SINK, check=False)
    if r.returncode:
        return None
    counts = []
    for item in json.loads(r.stdout).get("nftables", []):
        for expr in (item.get("rule") or {}).get("expr", []):
            if "counter" in expr:
                counts.append(expr["counter"].get("packets", 0))
    return (sum(counts[:-1]), counts[-1]) if len(counts) >= 2 else None


@dataclass
class Snapshot:
    t: float
    gen: dict
    fwd: dict
    sink: dict
    cpu: dict
    fwd_ports: dict | None = None
    sink_nft: tuple[int, int] | None = None
    threads: dict = field(default_factory=dict)


# ------------------------------------------------------------------ processes


def set_rps(mask: str) -> None:
    """Receive Packet Steering of f0: which CPUs run its receive softirq (0: the sender's)."""
    sh("sh", "-c", f"echo {mask} > /sys/class/net/{IN_IF}/queues/rx-0/rps_cpus", ns=NS_FWD)


class Forwarder:
    """name-rps variants steer f0's receive work (af_packet copy into the PMD ring, or the
    kernel's forwarding) to --fwd-cpu instead of the generator's CPU."""
    name = "?"
    proc: Proc | None = None

    def __init__(self, opts, logdir: str, name: str):
        self.opts = opts
        self.logdir = logdir
        self.name = name
        self.rps = name.endswith("-rps")
        self.base = name[:-4] if self.rps else name

    def setup(self) -> None:
        if self.rps:
            set_rps(format(1 << self.opts.fwd_cpu, "x"))
        self.start()

    def teardown(self) -> dict:
        try:
            return self.stop()
        finally:
            if self.rps:
                set_rps("0")

    # where the generators send (interface, VLAN tag or None), which interfaces of rlbb-fwd
    # receive them, the rlb ports that take them in and send them out
    gen_links: tuple[tuple[str, int | None], ...] = ((GEN_IF, None),)
    in_ifs: tuple[str, ...] = (IN_IF,)
    in_port, out_port = "dpdk0", "dpdk1"

    def start(self) -> None: ...

    def port_stats(self) -> dict | None:
        """DPDK port counters, cheap enough to take inside the window."""
        return None

    def report(self) -> dict:
        """Counters and text taken after the window, before stopping."""
        return {}

    def stop(self) -> dict:
        return {}


class Rlb(Forwarder):
    def __init__(self, opts, logdir, name: str = "rlb"):
        super().__init__(opts, logdir, name)
        self.sock_path = os.path.join(RLB_RUN_DIR, f"{RLB_INSTANCE}.sock")
        self.vlan_in = VLAN_IN if self.base in ("rlb-vlan", "rlb-vlan2") else None
        self.vlan_out = VLAN_OUT if self.base == "rlb-vlan2" else None
        self.bond = self.base == "rlb-bond"
        if self.bond:
            self.gen_links = ((GEN_IF, None), (GEN2_IF, None))
            self.in_ifs = (IN_IF, IN2_IF)
            self.in_port = "bond0"
        elif self.vlan_in:
            self.gen_links = ((GEN_IF, self.vlan_in),)
            self.in_port = f"dpdk0.{self.vlan_in}"
        if self.vlan_out:
            self.out_port = f"dpdk1.{self.vlan_out}"

    def config(self) -> str:
        lines = ["dataplane", " workers 1",
                 f" port dpdk0 net_af_packet0,iface={IN_IF}",
                 f" port dpdk1 net_af_packet1,iface={OUT_IF}"]
        if self.bond:
            # DPDK's bonding PMD, round robin; the primary's MAC (f0's) is the bond's
            lines += [f" port dpdk2 net_af_packet2,iface={IN2_IF}",
                      " bond bond0 mode 0 slaves dpdk0 dpdk2 primary dpdk0"]
        lines.append(" forwarding")
        if self.base == "rlb-idle":
            lines.append(" idle-sleep 200")
        else:
            lines.append(" busy-poll")
        if self.base == "rlb-nokni":
            lines.append(" no-kni")
        lines.append("!")
        for port, link, vid in ((self.in_port, "dpdk0", self.vlan_in),
                                (self.out_port, "dpdk1", self.vlan_out)):
            if vid:
                lines.append(f"dpip vlan add {port} link {link} proto 802.1q id {vid}")
        lines += [f"dpip addr add {IN_IP}/24 dev {self.in_port}",
                  f"dpip addr add {OUT_IP}/24 dev {self.out_port}",
                  f"dpip neigh add {SINK_IP} lladdr {SINK_MAC} dev {self.out_port}", ""]
        return "\n".join(lines)

    def _cli(self, *cmds: str, as_json: bool = False, timeout: float = 15):
        argv = [self.opts.python, "-m", "rlb", "-N", RLB_INSTANCE]
        for c in cmds:
            argv += ["-c", c]
        if as_json:
            argv.append("--json")
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT)

    def _call(self, cmd: str) -> dict:
        """One request on the control socket (what `rlb -c` does, without starting Python)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(self.sock_path)
            f = s.makefile("rwb")
            f.write(json.dumps({"cmd": cmd}).encode() + b"\n")
            f.flush()
            return json.loads(f.readline())

    def start(self) -> None:
        if os.path.exists(self.sock_path):
            raise BenchError(f"{self.sock_path} exists: an rlb instance {RLB_INSTANCE!r} is "
                             "running (or crashed); stop it or remove the socket")
        conf = os.path.join(self.logdir, f"{self.name}.conf")
        with open(conf, "w") as f:
            f.write(self.config())
        self.proc = Proc(self.name, ["ip", "netns", "exec", NS_FWD, self.opts.python, "-m", "rlb",
                                     "daemon", "-f", conf, "-N", RLB_INSTANCE], self.logdir)

        def ready():
            if not os.path.exists(self.sock_path):
                return False
            try:
                return self._cli("dpip link show", timeout=10).returncode == 0
            except subprocess.TimeoutExpired:
                return False
        wait_for(ready, 30, "rlb daemon", self.proc)

    def port_stats(self) -> dict | None:
        try:
            data = self._call("dpip link show -s").get("data") or {}
        except (OSError, ValueError) as err:
            return {"error": str(err)}
        out = {p["name"]: p.get("stats", {}) for p in data.get("ports", [])} | \
            {"reasons": data.get("reasons", {}), "pool": data.get("pool", {})}
        for p in data.get("ports", []):         # a bond's slaves: "bond0/dpdk0" ...
            for sl in (p.get("bond") or {}).get("slaves", []):
                out[f"{p['name']}/{sl['name']}"] = sl.get("stats") or {}
        try:
            workers = self._call("show dataplane").get("data", {}).get("workers", [])
            out["workers"] = {k: sum(w.get(k, 0) for w in workers)
                              for k in ("polls", "idle_sleeps", "busy_cycles", "idle_cycles",
                                        "rx_packets")}
        except (OSError, ValueError, AttributeError):
            pass
        return out

    def report(self) -> dict:
        out = {}
        r = self._cli("dpip link show -s", "show dataplane")
        out["link_show_s"] = (r.stdout + r.stderr).rstrip()
        r = self._cli("dpip link show -s", as_json=True)
        try:
            out["link_show_s_json"] = json.loads(r.stdout)
        except ValueError:
            out["link_show_s_json"] = None
        return out

    def stop(self) -> dict:
        rc = self.proc.stop(signal.SIGTERM) if self.proc else None
        # if it had to be killed, its cleanup did not run: do it in our namespace
        sh("nft", "delete", "table", "netdev", f"rlb_{RLB_INSTANCE}", ns=NS_FWD, check=False)
        if os.path.exists(self.sock_path) and rc not in (0, None):
            try:
                os.unlink(self.sock_path)
            except OSError:
                pass
        err = self.proc.stderr() if self.proc else ""
        return {"exit": rc, "log_tail": err.strip().splitlines()[-5:]}


def nft_isolate(ifaces: list[str]) -> None:
    lines = [f"table netdev {NFT_FWD_TABLE} {{"]
    for i, dev in enumerate(ifaces):
        lines.append(f"  chain in{i} {{ type filter hook ingress device \"{dev}\" priority 0; "
                     "policy drop; }")
    lines.append("}")
    sh("nft", "-f", "-", ns=NS_FWD, input="\n".join(lines) + "\n")


def nft_unisolate() -> None:
    sh("nft", "delete", "table", "netdev", NFT_FWD_TABLE, ns=NS_FWD, check=False)


class Cfwd(Forwarder):
    def start(self) -> None:
        # same conditions as rlb: the kernel stack ignores the af_packet interfaces
        nft_isolate([IN_IF, OUT_IF])
        cmd = ["ip", "netns", "exec", NS_FWD, os.path.join(CFWD_DIR, "cfwd"),
               "--no-huge", "-m", "512", "--no-pci", "--no-shconf", "--file-prefix", "rlbb-cfwd",
               "--lcores", f"0@{self.opts.main_cpu},1@{self.opts.fwd_cpu}", "--no-telemetry",
               "--log-level", "*:error",
               "--vdev", f"net_af_packet0,iface={IN_IF}", "--vdev", f"net_af_packet1,iface={OUT_IF}",
               "--", "--dst-mac", SINK_MAC]
        self.proc = Proc(self.name, cmd, self.logdir)
        wait_for(lambda: "forwarding" in self.proc.stderr(), 30, "cfwd", self.proc)

    def stop(self) -> dict:
        try:
            rc = self.proc.stop(signal.SIGTERM) if self.proc else None
        finally:
            nft_unisolate()
        out = {"exit": rc}
        try:
            out["stats"] = json.loads(self.proc.stdout().strip().splitlines()[-1])
        except (ValueError, IndexError):
            out["stats"] = None
            out["stderr"] = self.proc.stderr()[-2000:]
        return out


class Kernel(Forwarder):
    def start(self) -> None:
        sh("ip", "-n", NS_FWD, "addr", "add", f"{IN_IP}/24", "dev", IN_IF)
        sh("ip", "-n", NS_FWD, "addr", "add", f"{OUT_IP}/24", "dev", OUT_IF)
        sh("ip", "-n", NS_FWD, "neigh", "replace", SINK_IP, "lladdr", SINK_MAC, "dev", OUT_IF,
           "nud", "permanent")
        sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=NS_FWD)

    def stop(self) -> dict:
        sh("sysctl", "-qw", "net.ipv4.ip_forward=0", ns=NS_FWD, check=False)
        sh("ip", "-n", NS_FWD, "neigh", "flush", "dev", OUT_IF, check=False)
        sh("ip", "-n", NS_FWD, "addr", "flush", "dev", IN_IF, check=False)
        sh("ip", "-n", NS_FWD, "addr", "flush", "dev", OUT_IF, check=False)
        return {}


def make_forwarder(name: str, opts, logdir: str) -> Forwarder:
    if name.startswith("rlb"):
        return Rlb(opts, logdir, name)
    if name.startswith("cfwd"):
        return Cfwd(opts, logdir, name)
    return Kernel(opts, logdir, name)


# ------------------------------------------------------------------ one run


def snapshot(fwd: Forwarder | None, gen: "Generators | None" = None) -> Snapshot:
    gen_threads: dict = {}
    for pid in (gen.pids if gen else []):
        gen_threads |= thread_times(pid)
    threads = {"forwarder": thread_times(fwd.proc.pid if fwd and fwd.proc else None),
               "generator": gen_threads}
    cpu = cpu_times()
    t = time.monotonic()
    sink = link_stats(NS_SINK)        # the result: read first, closest to t
    g = link_stats(NS_GEN)
    f = link_stats(NS_FWD)
    ports = fwd.port_stats() if fwd is not None else None
    return Snapshot(t=t, gen=g, fwd=f, sink=sink, cpu=cpu, fwd_ports=ports,
                    sink_nft=sink_nft_count(), threads=threads)


class Generators:
    """The cgen processes of one run, one per link the forwarder receives on (two for a
    bond's slave links, both pinned to --gen-cpu), handled as one."""

    def __init__(self, procs: list[Proc]):
        self.procs = procs

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def alive(self) -> bool:
        return all(p.alive() for p in self.procs)

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        rcs = [p.p.wait(max(0.1, deadline - time.monotonic())) for p in self.procs]
        return next((rc for rc in rcs if rc), 0)

    def stderr(self) -> str:
        return " | ".join(p.stderr().strip() for p in self.procs)

    def report(self) -> dict | None:
        """cgen's JSON line; several are summed (seconds: the longest)."""
        out: dict = {}
        for p in self.procs:
            try:
                one = json.loads(p.stdout().strip().splitlines()[-1])
            except (ValueError, IndexError):
                return None
            for k, v in one.items():
                out[k] = max(out.get(k, 0), v) if k == "seconds" else out.get(k, 0) + v
        if len(self.procs) > 1:
            out["generators"] = len(self.procs)
        return out

    def stop(self, sig=signal.SIGINT, timeout: float = 5) -> None:
        for p in self.procs:
            p.stop(sig, timeout=timeout)


def start_generator(opts, logdir: str, seconds: float, tag: str,
                    links: tuple[tuple[str, int | None], ...] = ((GEN_IF, None),)) -> Generators:
    procs = []
    per_link = -(-opts.count // len(links)) if opts.count else 0
    try:
        for i, (iface, vid) in enumerate(links):
            src_mac = GEN_MAC if iface == GEN_IF else GEN2_MAC
            cmd = ["ip", "netns", "exec", NS_GEN, "taskset", "-c", str(opts.gen_cpu),
                   os.path.join(CGEN_DIR, "cgen"), "--iface", iface, "--src-mac", src_mac,
                   "--dst-mac", IN_MAC, "--src-ip", GEN_IP, "--dst-ip", SINK_IP, "--size", "60",
                   "--flows", str(opts.flows), "--seconds", f"{seconds:.2f}",
                   "--batch", str(opts.batch), "--mode", opts.gen_mode]
            if vid is not None:
                cmd += ["--vlan", str(vid)]
            if per_link:
                cmd += ["--count", str(per_link)]
            procs.append(Proc(f"cgen-{tag}" + (f"-{i}" if i else ""), cmd, logdir))
    except BaseException:
        Generators(procs).stop()
        raise
    return Generators(procs)


def delta(a: dict, b: dict, ns_dev: tuple[str, str | tuple[str, ...]], key: str) -> int:
    """Change of a counter of one interface, or summed over several (a bond's links)."""
    ns, devs = ns_dev
    return sum(b[ns][dev][key] - a[ns][dev][key]
               for dev in ((devs,) if isinstance(devs, str) else devs))


def run_once(opts, name: str, idx: int, logdir: str) -> dict:
    fwd = make_forwarder(name, opts, logdir)
    tag = f"{name}-{idx}"
    res: dict = {"forwarder": name, "run": idx}
    gen = None
    try:
        t_start = time.monotonic()
        fwd.setup()
        res["startup_s"] = round(time.monotonic() - t_start, 2)
        s0 = snapshot(fwd)
        # the generator outlives the window by a second: snapshots take some time
        gen = start_generator(opts, logdir, opts.warmup + opts.seconds + 1.0, tag,
                              fwd.gen_links)
        time.sleep(opts.warmup)
        if not gen.alive():
            raise BenchError(f"generator exited early: {gen.stderr().strip()}")
        a = snapshot(fwd, gen)
        procs_a = process_times()
        time.sleep(opts.seconds)
        procs_b = process_times()
        b = snapshot(fwd, gen)
        if not gen.alive():
            raise BenchError("the generator stopped before the end of the window "
                             "(snapshots too slow?)")
        ours = {str(os.getpid())} | {str(p) for p in gen.pids} | \
            ({str(fwd.proc.pid)} if fwd.proc else set())
        res["other_load"] = other_load(procs_a, procs_b, b.t - a.t, ours)
        if gen.wait(opts.warmup + opts.seconds + 10) != 0:
            raise BenchError(f"generator failed: {gen.stderr().strip()}")
        time.sleep(0.2)                 # let the last packets drain
        s3 = snapshot(fwd)
        res["forwarder_report"] = fwd.report()
        res["generator"] = gen.report()
    finally:
        if gen is not None:
            gen.stop(signal.SIGINT, timeout=5)
        res["forwarder_exit"] = fwd.teardown()

    def sec(snaps):
        return {"gen": snaps.gen, "fwd": snaps.fwd, "sink": snaps.sink}

    wa, wb = sec(a), sec(b)
    dt = b.t - a.t
    g = ("gen", tuple(iface for iface, _ in fwd.gen_links))
    i, o, k = ("fwd", fwd.in_ifs), ("fwd", OUT_IF), ("sink", SINK_IF)
    res["ports_used"] = {"in": fwd.in_port, "out": fwd.out_port, "in_ifs": list(fwd.in_ifs),
                         "gen_links": [list(x) for x in fwd.gen_links]}
    res["window_s"] = round(dt, 3)
    res["rx_pps"] = round(delta(wa, wb, k, "rx_packets") / dt)
    res["offered_pps"] = round(delta(wa, wb, g, "tx_packets") / dt)
    res["window"] = {
        "gen_tx": delta(wa, wb, g, "tx_packets"), "gen_tx_dropped": delta(wa, wb, g, "tx_dropped"),
        "fwd_in_rx": delta(wa, wb, i, "rx_packets"), "fwd_in_rx_dropped": delta(wa, wb, i, "rx_dropped"),
        "fwd_out_tx": delta(wa, wb, o, "tx_packets"),
        "fwd_out_tx_dropped": delta(wa, wb, o, "tx_dropped"),
        "sink_rx": delta(wa, wb, k, "rx_packets"), "sink_rx_dropped": delta(wa, wb, k, "rx_dropped"),
    }
    if a.sink_nft and b.sink_nft:
        res["window"]["sink_good"] = b.sink_nft[0] - a.sink_nft[0]
        res["window"]["sink_bad"] = b.sink_nft[1] - a.sink_nft[1]
    if s0.sink_nft and s3.sink_nft:
        good, bad = s3.sink_nft[0] - s0.sink_nft[0], s3.sink_nft[1] - s0.sink_nft[1]
        res["well_formed_pct"] = round(100 * good / max(1, good + bad), 3)
    if a.fwd_ports and b.fwd_ports and "error" not in a.fwd_ports and "error" not in b.fwd_ports:
        res["window"]["ports"] = {
            p: {key: b.fwd_ports[p].get(key, 0) - a.fwd_ports[p].get(key, 0)
                for key in b.fwd_ports[p] if isinstance(b.fwd_ports[p].get(key), int)}
            for p in b.fwd_ports if p not in ("pool",)}
    res["delivered_pct"] = round(100 * res["window"]["sink_rx"] / max(1, res["window"]["gen_tx"]), 1)
    res["cpu"] = cpu_usage(a.cpu, b.cpu)
    res["threads"] = {k: thread_usage(a.threads[k], b.threads[k], dt) for k in a.threads}
    cpp = cycles_per_packet(res)
    if cpp:
        res["cycles_per_packet"] = cpp
    ol = res["other_load"]
    ol["seen_pct"] = ol["total_pct"]
    ol["unattributed_user_pct"] = unattributed_user(res["cpu"], res["threads"])
    ol["total_pct"] = min(100.0 * len(res["cpu"]), max(ol["seen_pct"], ol["unattributed_user_pct"]))
    # whole generator run (warm-up included): where did packets go?
    ws0, ws3 = sec(s0), sec(s3)
    res["totals"] = {
        "gen_tx": delta(ws0, ws3, g, "tx_packets"), "gen_tx_dropped": delta(ws0, ws3, g, "tx_dropped"),
        "fwd_in_rx": delta(ws0, ws3, i, "rx_packets"), "fwd_out_tx": delta(ws0, ws3, o, "tx_packets"),
        "sink_rx": delta(ws0, ws3, k, "rx_packets"),
    }
    return res


def cycles_per_packet(res: dict) -> dict | None:
    """rlb's worker over the window: TSC cycles of its busy passes per packet it took
    (`show dataplane`), raw and times the share of the window its thread was on a CPU
    (a preempted busy pass goes on counting cycles: bench/cycles.py does the same)."""
    w = ((res.get("window") or {}).get("ports") or {}).get("workers") or {}
    if not w.get("rx_packets") or not w.get("busy_cycles"):
        return None
    raw = w["busy_cycles"] / w["rx_packets"]
    threads = (res.get("threads") or {}).get("forwarder") or []
    worker = max(threads, key=lambda t: t["user"] + t["system"], default=None)
    share = min(1.0, (worker["user"] + worker["system"]) / 100) if worker else None
    return {"raw": round(raw, 1), "on_cpu": round(raw * share, 1) if share else None,
            "worker_share": share}


# ------------------------------------------------------------------ report


def worker_cpu(r: dict) -> str:
    """CPU the forwarder's busiest thread got (a busy-poller should get ~100%)."""
    threads = (r.get("threads") or {}).get("forwarder") or []
    if not threads:
        return "-"
    t = max(threads, key=lambda t: t["user"] + t["system"])
    return f"{t['user'] + t['system']:.0f}%"


def median_run(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda x: x["rx_pps"])[len(runs) // 2]


def bottleneck(name: str, runs: list[dict], gen_cpu: int, fwd_cpu: int) -> str:
    """A reading of the counters of the median run: who limited the rate, where packets
    were lost, what the CPUs did."""
    r = median_run(runs)
    w, cpu, dt = r["window"], r["cpu"], r["window_s"]
    gen = r.get("generator") or {}
    lost = w["gen_tx"] - w["sink_rx"]
    frac = lost / max(1, w["gen_tx"])
    full = gen.get("ring_full", 0) / max(1, gen.get("kicks", 1))
    if frac >= 0.03:
        verdict = f"forwarder-bound: {100 * frac:.1f}% of offered lost"
    elif full > 0.2:
        # frames stay in the generator's ring until their skb is freed: a slow path
        # behind it throttles the generator instead of dropping
        verdict = (f"forwarder-bound by back-pressure (no loss, but the generator's ring was "
                   f"full on {100 * full:.0f}% of its kicks)")
    else:
        verdict = (f"kept up ({100 * (1 - frac):.1f}% of offered delivered): generator-bound")
    parts = [verdict]
    # where the lost packets went
    where = []
    if w["gen_tx_dropped"] or w["fwd_in_rx_dropped"]:
        where.append(f"veth drops gen->f0 {w['gen_tx_dropped'] + w['fwd_in_rx_dropped']}")
    ports = w.get("ports") or {}
    used = r.get("ports_used") or {"in": "dpdk0", "out": "dpdk1", "in_ifs": ["f0"]}
    # the PMD's counters are the link's: the bond's (its slaves summed), not a VLAN's
    rx_pmd = "bond0" if used["in"] == "bond0" else "dpdk0"
    p0, p1 = ports.get(rx_pmd), ports.get("dpdk1")
    exit_stats = (r.get("forwarder_exit") or {}).get("stats")
    if p0 is not None and p1 is not None:
        before = w["fwd_in_rx"] - p0.get("ipackets", 0)
        where.append(f"{'+'.join(used['in_ifs'])} {fmt_pps(w['fwd_in_rx'] / dt)}/s -> PMD rx "
                     f"{fmt_pps(p0.get('ipackets', 0) / dt)}/s "
                     f"({before} lost in the kernel before the PMD, imissed {p0.get('imissed', 0)}) "
                     f"-> PMD tx {fmt_pps(p1.get('opackets', 0) / dt)}/s (oerrors {p1.get('oerrors', 0)})")
        slaves = {k.split("/", 1)[1]: v for k, v in ports.items() if k.startswith(rx_pmd + "/")}
        if slaves:
            where.append("slaves rx " + ", ".join(f"{n} {fmt_pps(v.get('ipackets', 0) / dt)}/s"
                                                 for n, v in sorted(slaves.items())))
        for role, name, key in (("in", used["in"], "rx_pkts"), ("out", used["out"], "tx_pkts")):
            if name not in (rx_pmd, "dpdk1") and ports.get(name) is not None:
                where.append(f"{name} {key} {fmt_pps(ports[name].get(key, 0) / dt)}/s")
        reasons = {k: v for k, v in (ports.get("reasons") or {}).items() if v}
        if reasons:
            where.append(f"rlb drop reasons: {reasons}")
        polls = (ports.get("workers") or {}).get("polls")
        if polls:
            where.append(f"worker {fmt_pps(polls / dt)} polls/s, "
                         f"{p0.get('ipackets', 0) / polls:.2f} packets/poll")
    elif exit_stats:
        t = r["totals"]
        where.append(f"whole run: gen {t['gen_tx']} -> f0 {t['fwd_in_rx']} -> PMD rx "
                     f"{exit_stats['rx']} -> tx {exit_stats['tx']} (refused "
                     f"{exit_stats['tx_refused']}) -> sink {t['sink_rx']}; worker "
                     f"{exit_stats['rx'] / max(1, exit_stats['polls'] - exit_stats['empty_polls']):.2f} "
                     "packets per non-empty poll")
    parts += where
    gc, fc = cpu.get(f"cpu{gen_cpu}", {}), cpu.get(f"cpu{fwd_cpu}", {})
    parts.append(f"CPU{gen_cpu} {gc.get('busy', 0):.0f}% busy (softirq {gc.get('softirq', 0):.0f}%), "
                 f"CPU{fwd_cpu} {fc.get('busy', 0):.0f}% (user {fc.get('user', 0):.0f}%, "
                 f"sys {fc.get('system', 0):.0f}%, softirq {fc.get('softirq', 0):.0f}%)")
    for t in (r.get("threads") or {}).get("forwarder", []):
        if t["user"] + t["system"] >= 20:
            parts.append(f"thread {t['thread']} on CPU{t['cpu']}: user {t['user']:.0f}% "
                         f"sys {t['system']:.0f}%, preempted {t['preempted']} times")
    ol = r.get("other_load") or {}
    if ol.get("total_pct", 0) >= 5:
        top = ", ".join(f"{t['comm']} {t['pct']:.0f}%" for t in ol.get("top", [])[:3])
        parts.append(f"other processes used ~{ol['total_pct']:.0f}% of a CPU"
                     + (f" ({top})" if top else " (short-lived: unattributed user time)"))
    return "; ".join(parts)


def is_noisy(r: dict, opts) -> bool:
    return (r.get("other_load") or {}).get("total_pct", 0) > opts.max_noise


def summarize(results: list[dict], opts) -> dict:
    """Per forwarder, the median over the --runs runs least disturbed by other work."""
    by: dict[str, list[dict]] = {}
    for r in results:
        if "rx_pps" in r:
            by.setdefault(r["forwarder"], []).append(r)
    for name, runs in by.items():
        chosen = sorted(runs, key=lambda r: (is_noisy(r, opts), r["run"]))[:opts.runs]
        for r in runs:
            r["used"] = r in chosen
        by[name] = sorted(chosen, key=lambda r: r["run"])
    summary = {}
    for name in opts.forwarders:
        runs = by.get(name, [])
        if not runs:
            summary[name] = {"runs": 0}
            continue
        cpps = [r["cycles_per_packet"]["on_cpu"] for r in runs
                 if (r.get("cycles_per_packet") or {}).get("on_cpu")]
        summary[name] = {
            "cycles_per_packet_median": statistics.median(cpps) if cpps else None,
            "cycles_per_packet_all": cpps,
            "runs": len(runs),
            "rx_pps_median": statistics.median(r["rx_pps"] for r in runs),
            "rx_pps_all": [r["rx_pps"] for r in runs],
            "rx_pps_min": min(r["rx_pps"] for r in runs),
            "rx_pps_max": max(r["rx_pps"] for r in runs),
            "noisy_runs_used": sum(1 for r in runs if is_noisy(r, opts)),
            "median_run": median_run(runs)["run"],
            "well_formed_pct_min": min((r["well_formed_pct"] for r in runs if "well_formed_pct" in r),
                                       default=None),
            "runs_done": sum(1 for r in results if r.get("forwarder") == name),
            "offered_pps_median": statistics.median(r["offered_pps"] for r in runs),
            "delivered_pct_median": statistics.median(r["delivered_pct"] for r in runs),
            "bottleneck": bottleneck(name, runs, opts.gen_cpu, opts.fwd_cpu),
        }
    med = {k: v.get("rx_pps_median") for k, v in summary.items()}
    ratios = {}
    for a, b in (("rlb", "cfwd"), ("rlb", "kernel"), ("cfwd", "kernel"), ("rlb-idle", "cfwd"),
                 ("rlb-nokni", "cfwd"), ("rlb-rps", "cfwd-rps"), *DEVICE_RATIOS):
        if med.get(a) and med.get(b):
            ratios[f"{a}/{b}"] = round(med[a] / med[b], 3)
    return {"forwarders": summary, "ratios": ratios,
            "paired_ratios": paired_ratios(results, opts)}


def paired_ratios(results: list[dict], opts) -> dict:
    """Each device against the plain port run for run: rx pps of the device's run over
    that of plain rlb in the same round (interleaved, so the two saw the machine in about
    the same state), over every round where both ran; median, min, max. Noise that lasts
    longer than a round cancels out here, where it does not in the ratio of medians."""
    rx = {(r["forwarder"], r["run"]): r["rx_pps"] for r in results if "rx_pps" in r}
    cpp = {(r["forwarder"], r["run"]): (r.get("cycles_per_packet") or {}).get("on_cpu")
           for r in results if "rx_pps" in r}
    out = {}
    for a, b in DEVICE_RATIOS:
        if a not in opts.forwarders or b not in opts.forwarders:
            continue
        rounds = sorted(i for (n, i) in rx if n == a and (b, i) in rx and rx[(b, i)])
        vals = [rx[(a, i)] / rx[(b, i)] for i in rounds]
        cvals = [cpp[(a, i)] / cpp[(b, i)] for i in rounds if cpp.get((a, i)) and cpp.get((b, i))]
        if vals:
            out[f"{a}/{b}"] = {
                "rounds": len(vals), "median": round(statistics.median(vals), 3),
                "min": round(min(vals), 3), "max": round(max(vals), 3),
                "all": [round(v, 3) for v in vals],
                "cycles_median": round(statistics.median(cvals), 3) if cvals else None}
    return out


def markdown(summary: dict, opts, meta: dict) -> str:
    lines = [f"# 64-byte UDP forwarding, {meta['started']}",
             "",
             f"{opts.runs} runs of {opts.seconds:g} s per forwarder (after {opts.warmup:g} s warm-up), "
             f"interleaved; generator cgen --mode {opts.gen_mode} ({opts.flows} flows) on CPU{opts.gen_cpu}, "
             f"forwarder worker on CPU{opts.fwd_cpu}. Result = median rate at the receiver over the "
             f"{opts.runs} runs least disturbed by other processes (noisy: others above "
             f"{opts.max_noise:g}% of a CPU). Well-formed: lowest share of received frames with "
             "rewritten MACs, TTL 63 and the right header checksum. CPU columns, worker thread "
             "and other load: the median run.",
             "",
             "| forwarder | rx pps (median) | runs | offered pps | delivered | well-formed | CPU"
             f"{opts.gen_cpu} busy | CPU{opts.fwd_cpu} busy (usr/sys/si) | worker thread "
             "| other load | rlb cycles/packet |",
             "|---|---:|---|---:|---:|---:|---:|---|---:|---:|---:|"]
    for name, s in summary["forwarders"].items():
        if not s.get("runs"):
            lines.append(f"| {name} | failed | | | | | | | | | |")
            continue
        med_run = next(r for r in meta["results"]
                       if r.get("forwarder") == name and r.get("run") == s["median_run"])
        gc = med_run["cpu"].get(f"cpu{opts.gen_cpu}", {})
        fc = med_run["cpu"].get(f"cpu{opts.fwd_cpu}", {})
        runs_col = ", ".join(fmt_pps(v) for v in s["rx_pps_all"])
        wf = "-" if s.get("well_formed_pct_min") is None else f"{s['well_formed_pct_min']:.2f}%"
        if s["runs_done"] != s["runs"]:
            runs_col += f" (best {s['runs']} of {s['runs_done']})"
        if s["noisy_runs_used"]:
            runs_col += f" ({s['noisy_runs_used']} noisy)"
        lines.append(
            f"| {name} | **{fmt_pps(s['rx_pps_median'])}** | {runs_col} | "
            f"{fmt_pps(s['offered_pps_median'])} | "
            f"{s['delivered_pct_median']:.1f}% | {wf} | {gc.get('busy', 0):.0f}% | "
            f"{fc.get('busy', 0):.0f}% ({fc.get('user', 0):.0f}/{fc.get('system', 0):.0f}/"
            f"{fc.get('softirq', 0):.0f}) | {worker_cpu(med_run)} | "
            f"{(med_run.get('other_load') or {}).get('total_pct', 0):.0f}% | "
            + ("-" if s.get("cycles_per_packet_median") is None
               else f"{s['cycles_per_packet_median']:.0f}") + " |")
    lines.append("")
    if summary["ratios"]:
        lines.append("Ratios of medians: " + ", ".join(
            f"{k} = **{v:.2f}**" for k, v in summary["ratios"].items()))
        dev = [f"{a}/{b}" for a, b in DEVICE_RATIOS if f"{a}/{b}" in summary["ratios"]]
        if dev:
            lines.append("(virtual devices against the plain port, pps of the device / pps of "
                         "`rlb`: " + ", ".join(f"{k} = {summary['ratios'][k]:.3f}" for k in dev)
                         + "; offered rates in the table: a generator-bound row compares "
                         "what the generator CPU could offer, see bottleneck)")
        paired = summary.get("paired_ratios") or {}
        if paired:
            lines += ["", "Run for run (each round's device run / plain `rlb` run of the same "
                          "round, every round where both ran): rx pps ratio median (min-max), "
                          "and the median ratio of rlb cycles/packet:", ""]
            lines += [f"- {k}: **{v['median']:.3f}** ({v['min']:.3f}-{v['max']:.3f}, "
                      f"{v['rounds']} rounds); cycles/packet ratio "
                      + ("-" if v["cycles_median"] is None else f"{v['cycles_median']:.3f}")
                      for k, v in paired.items()]
        if "rlb/cfwd" in summary["ratios"]:
            ok = summary["ratios"]["rlb/cfwd"] >= 0.9
            lines.append(f"(goal rlb/cfwd >= 0.90: {'met' if ok else 'NOT met'})")
        lines.append("")
    lines.append("Bottleneck (median run):")
    lines.append("")
    for name, s in summary["forwarders"].items():
        if s.get("runs"):
            lines.append(f"- {name}: {s['bottleneck']}")
    failed = [r for r in meta["results"] if "error" in r]
    if failed:
        lines += ["", "Failed runs:", ""]
        lines += [f"- {r['forwarder']} run {r['run']}: {r['error']}" for r in failed]
    rl = [r for r in meta["results"] if r.get("forwarder", "").startswith("rlb")
          and (r.get("forwarder_report") or {}).get("link_show_s")]
    if rl:
        last = rl[-1]
        text = [ln for ln in last["forwarder_report"]["link_show_s"].splitlines()
                if not re.fullmatch(r"\s+\w+\s+0", ln)]
        lines += ["", f"`dpip link show -s` + `show dataplane` after {last['forwarder']} run "
                      f"{last['run']} (cumulative since the daemon started; zero drop reasons "
                      "left out, they are in the JSON):", "", "```", *text, "```"]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ main


def build_tools() -> None:
    for d, binary in ((CFWD_DIR, "cfwd"), (CGEN_DIR, "cgen")):
        r = subprocess.run(["make", "-s", "-C", d], capture_output=True, text=True)
        if r.returncode or not os.path.exists(os.path.join(d, binary)):
            raise BenchError(f"building {binary}: {r.stdout}{r.stderr}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="64-byte UDP forwarding through a namespace: rlb vs a minimal C DPDK "
                    "loop (cfwd) vs the Linux kernel, side by side in one run. Needs root.",
        epilog="Forwarders: rlb (busy-poll), cfwd, kernel (plain), kernel-rps (RPS to "
               "--fwd-cpu); variants rlb-idle, rlb-nokni; virtual devices rlb-vlan (in tagged "
               "on dpdk0.100, out untagged), rlb-vlan2 (tagged both sides), rlb-bond (in by a "
               "mode-0 bond of two af_packet slaves, a generator on each link). "
               "Results: bench/results/forward-<ts>.{json,md}.")
    p.add_argument("--seconds", type=float, default=10, help="measurement window per run (default 10)")
    p.add_argument("--warmup", type=float, default=1, help="excluded warm-up per run (default 1)")
    p.add_argument("--runs", type=int, default=3, help="runs per forwarder (default 3)")
    p.add_argument("--quick", action="store_true", help="smoke run: 3 runs of 2 s")
    p.add_argument("--forwarders", default=DEFAULT_FORWARDERS,
                   help=f"comma-separated, in order (default {DEFAULT_FORWARDERS}; "
                        f"known: {', '.join(FORWARDERS)})")
    p.add_argument("--flows", type=int, default=8, help="UDP source ports the generator cycles (default 8)")
    p.add_argument("--batch", type=int, default=256, help="generator frames per sendto kick (default 256)")
    p.add_argument("--gen-mode", choices=("ring", "mmsg"), default="mmsg",
                   help="generator: sendmmsg on AF_PACKET (default; measured faster here) "
                        "or the AF_PACKET tx ring")
    p.add_argument("--count", type=int, default=0,
                   help="stop the generator after this many packets (default: time only)")
    p.add_argument("--max-noise", type=float, default=15,
                   help="a run during which other processes used more than this %% of a CPU "
                        "is noisy: it is done again (default 15; 0 disables)")
    p.add_argument("--retries", type=int, default=2,
                   help="extra rounds for forwarders with noisy runs (default 2)")
    p.add_argument("--budget", type=float, default=0,
                   help="no extra run starts after this many seconds (default: 1.5x the "
                        "planned time)")
    p.add_argument("--gen-cpu", type=int, default=0, help="CPU of the generator (default 0)")
    p.add_argument("--fwd-cpu", type=int, default=1,
                   help="CPU of the forwarding worker / kernel RPS target (default 1)")
    p.add_argument("--main-cpu", type=int, default=0,
                   help="CPU of cfwd's (sleeping) main lcore (default 0; rlb spreads its "
                        "lcores over its affinity: main on the first CPU, worker on the second)")
    add_output_options(p)
    opts = p.parse_args(argv)
    if opts.quick:
        opts.seconds, opts.runs = 2, 3
    if opts.max_noise <= 0:
        opts.retries = 0
    if not opts.budget:
        opts.budget = 1.5 * opts.runs * len(opts.forwarders.split(",")) * (opts.seconds + opts.warmup + 4)
    opts.forwarders = [f.strip() for f in opts.forwarders.split(",") if f.strip()]
    bad = [f for f in opts.forwarders if f not in FORWARDERS + HIDDEN_FORWARDERS]
    if bad:
        p.error(f"unknown forwarder(s): {', '.join(bad)}")
    if opts.seconds <= 0 or opts.seconds > 600 or opts.warmup < 0 or opts.warmup > 60:
        p.error("--seconds must be in (0, 600], --warmup in [0, 60]")
    if not 1 <= opts.runs <= 20:
        p.error("--runs must be 1..20")
    ncpu = os.cpu_count() or 1
    for cpu in (opts.gen_cpu, opts.fwd_cpu, opts.main_cpu):
        if not 0 <= cpu < ncpu:
            p.error(f"CPU {cpu} does not exist (0..{ncpu - 1})")
    return opts


def main(argv=None) -> int:
    opts = parse_args(argv)
    if os.geteuid() != 0:
        print("forward.py: must run as root (network namespaces, DPDK)", file=sys.stderr)
        return 2
    for tool in ("ip", "nft", "ethtool", "taskset", "make", "cc"):
        if not shutil.which(tool):
            print(f"forward.py: {tool} not found", file=sys.stderr)
            return 2
    # SIGTERM/SIGHUP: unwind through the finally blocks like Ctrl-C
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)
    started = _dt.datetime.now()
    stamp = started.strftime("%Y%m%d-%H%M%S")
    logdir = tempfile.mkdtemp(prefix="rlbb-forward-")
    results: list[dict] = []
    meta = {"started": started.isoformat(timespec="seconds"), "results": results,
            "options": {k: v for k, v in vars(opts).items()},
            "generator": f"bench/cgen --mode {opts.gen_mode} (AF_PACKET, PACKET_QDISC_BYPASS)",
            "kernel": os.uname().release, "logs": logdir}
    rc = 0
    try:
        build_tools()
        log(f"topology: {NS_GEN} -- {NS_FWD} -- {NS_SINK}; logs in {logdir}")
        build_topology(bond=any(Rlb(opts, logdir, n).bond for n in opts.forwarders
                                if n.startswith("rlb")))
        t0 = time.monotonic()

        def one(name: str, idx: int) -> None:
            nonlocal rc
            log(f"{name} run {idx} ...")
            try:
                r = run_once(opts, name, idx, logdir)
            except (BenchError, OSError, subprocess.SubprocessError, ValueError,
                    KeyError) as err:
                log(f"{name} run {idx} failed: {err}")
                r = {"forwarder": name, "run": idx, "error": f"{type(err).__name__}: {err}"}
                rc = 1
            results.append(r)
            if "rx_pps" in r:
                log(f"{name} run {idx}: rx {fmt_pps(r['rx_pps'])}/s, offered "
                    f"{fmt_pps(r['offered_pps'])}/s ({r['delivered_pct']}% delivered), other "
                    f"processes {r['other_load']['total_pct']:.0f}% of a CPU")

        for i in range(opts.runs):                  # interleaved: rlb, cfwd, kernel, rlb, ...
            for name in opts.forwarders:
                one(name, i + 1)
        # runs disturbed by other work on the machine are done again, within bounds
        for extra in range(opts.retries):
            noisy = [n for n in opts.forwarders
                     if sum(1 for r in results if r["forwarder"] == n and "rx_pps" in r
                            and not is_noisy(r, opts)) < opts.runs]
            if not noisy or time.monotonic() - t0 > opts.budget:
                break
            for name in noisy:
                if time.monotonic() - t0 > opts.budget:
                    break
                log(f"{name}: fewer than {opts.runs} quiet runs (other processes above "
                    f"{opts.max_noise:g}% of a CPU): one more")
                one(name, opts.runs + extra + 1)
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        rc = 130
    except BenchError as err:
        log(f"error: {err}")
        rc = 1
    finally:
        nft_unisolate() if ns_exists(NS_FWD) else None
        remove_namespaces()
    if not results:
        return rc or 1
    summary = summarize(results, opts)
    meta["summary"] = summary
    md = markdown(summary, opts, meta)
    finish(opts, f"forward-{stamp}", meta, md, logdir)
    return rc


if __name__ == "__main__":
    sys.exit(main())
