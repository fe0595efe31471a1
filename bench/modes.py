#!/usr/bin/env python3
"""rlb's forwarding modes side by side in one run: FNAT, DR, Tunnel, NAT, SNAT and plain
kernel routing (the ceiling), by new connections/s (wrk `Connection: close`) and iperf3;
then, for the one-way modes DR and Tunnel, the 64-byte UDP packet rate of the inbound
path against bench/cfwd (forward.py's harness).

Part 1, TCP (bench/fnat.py's lab, plus a LAN client for the one-arm modes):

    rlbb-client eth0 --veth-- wan0 [rlbb-lb] lan0 --veth-- br0 in rlbb-sw --+-- rlbb-rs1 eth0
    10.0.0.48/16                                                            +-- rlbb-rs2 eth0
                                                           rlbb-lanc eth0 --+
                                 192.168.100.2/.3 (rs1/rs2), .46 (lanc, MTU 1480)

  fnat    the tutorial's fnat-two-arm (fnat.py's rlb): client 10.0.0.48 -> VIP 10.0.0.100
  dr      DR one-arm: client rlbb-lanc -> VIP 192.168.100.254 on lan0 (after the LAN IP
          192.168.100.1); the real servers hold the VIP on lo (arp_ignore=1,
          arp_announce=2) and answer the client directly
  tunnel  the same with -i: IPIP from 192.168.100.1 to the real servers, decapsulated by
          rlb/lab/decap.py (user space: this kernel has no ipip) into tunl0; the LAN
          client's MTU is 1480 so that the 20-byte outer header fits the 1500-byte LAN
  nat     NAT two-arm in fnat.py's shape: client 10.0.0.48 -> VIP 10.0.0.100, -m; the real
          servers' default route is the LB's 192.168.100.1, replies go back through it
  snat    the reverse direction: rs1 (192.168.100.2, default via the LB's 192.168.100.1)
          is the client and reaches a server in rlbb-client (10.0.0.48, nginx + iperf3)
          as the sapool WAN address 10.0.0.3 (tcp match service, -J)
  kernel  no LB: client 10.0.0.48 -> the real servers' own addresses, routed by the LB
          namespace's kernel (as fnat.py's kernel peer)

Part 2, packets per second (forward.py's lab rlbb-gen -> rlbb-fwd -> rlbb-sink): cgen sends
64-byte UDP to VIP 10.10.1.100:9; rlb-dr / rlb-tunnel hold a UDP service on it with the
sink (10.10.2.2, static neighbour) as real server; cfwd forwards the same frames. Counted
at the sink's veth.

Must run as root:  /work/main/.venv/bin/python bench/modes.py [--quick]
Writes bench/results/modes-<timestamp>.{json,md}.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fnat  # noqa: E402
import forward  # noqa: E402

from rlb.lab import scripts, topologies  # noqa: E402
from common import (BenchError, Proc, Window, add_output_options, finish,  # noqa: E402
                    fmt_pps, install_signal_unwind, iperf3, log, make_namespaces, ns_exists,
                    remove_namespaces, sh, veth, wait_for)
from fnat_report import cpu_cell, fmt_k, rlb_line, threads_line  # noqa: E402

INSTANCE = "benchmodes"
# one instance name for every rlb this script starts (fnat.py's / forward.py's helpers
# read these module globals)
fnat.RLB_INSTANCE = INSTANCE
forward.RLB_INSTANCE = INSTANCE

NS_LANC = "rlbb-lanc"
NAMESPACES = fnat.NAMESPACES + (NS_LANC,)
LANC_IP, LANC_MAC, LANC_MTU = "192.168.100.46", "02:bb:20:00:00:46", 1480
DR = topologies.get("dr-one-arm")    # the tutorial's DR one-arm (rlb/lab/topologies.py)
DR_VIP = DR.vip                      # one-arm VIP, on the rs' lo
SNAT_WAN = "10.0.0.3"               # the sapool address on wan0
SNAT_MATCH = topologies.SNAT_MATCH
HTTP, IPERF = fnat.HTTP_PORT, fnat.IPERF_PORT
RS_IP, VIP, CLIENT_IP = fnat.RS_IP, fnat.VIP, fnat.CLIENT_IP
MODES = ("fnat", "dr", "tunnel", "nat", "snat", "kernel")
# iperf3 first, then CPS (the fnat row's iperf3 anomaly: see README)
TESTS = ("iperf", "cps")
PPS_VIP, PPS_PORT = "10.10.1.100", 9
PPS_RS = forward.SINK_IP           # the sink is the real server (forward.SINK_IP gets the VIP)
PPS_FORWARDERS = ("rlb-dr", "rlb-tunnel", "cfwd")


# ------------------------------------------------------------------ TCP lab


def build_lab(opts, logdir: str) -> dict:
    """fnat.py's lab, plus the LAN client, the DR/Tunnel settings of the real servers, their
    decapsulators, and the SNAT server in rlbb-client. Returns the processes started."""
    fnat.build_topology()
    make_namespaces((NS_LANC,))
    veth((NS_LANC, "eth0", LANC_MAC), (fnat.NS_SW, "p-lanc", "02:bb:2f:00:00:46"))
    sh("ip", "-n", fnat.NS_SW, "link", "set", "p-lanc", "master", fnat.BRIDGE)
    sh("ip", "-n", NS_LANC, "link", "set", "eth0", "mtu", str(LANC_MTU))
    sh("ip", "-n", NS_LANC, "addr", "add", f"{LANC_IP}/24", "dev", "eth0")
    for ns in (NS_LANC, fnat.NS_RS["rs1"]):         # rs1 is SNAT's client
        sh("sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65535",
           "net.ipv4.tcp_tw_reuse=1", ns=ns)
    procs: dict[str, Proc] = {}
    for rs, ns in fnat.NS_RS.items():
        # topologies.py's _TUN_RS (= _DR_RS + rp_filter off): harmless to the other modes
        sh("sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2",
           "net.ipv4.conf.lo.arp_ignore=1", "net.ipv4.conf.all.rp_filter=0",
           "net.ipv4.conf.default.rp_filter=0", ns=ns)
        sh("ip", "-n", ns, "addr", "add", f"{DR_VIP}/32", "dev", "lo")
        if "tunnel" in opts.modes:
            p = Proc(f"decap-{rs}", ["ip", "netns", "exec", ns, opts.python, "-m",
                                     "rlb.lab.decap"], logdir)
            procs[f"decap-{rs}"] = p
            wait_for(lambda: "ready" in p.stdout(), 15, f"decapsulator in {ns}", p)
    if "snat" in opts.modes:
        d = os.path.join(logdir, "wan")
        os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(fnat.NGINX_CONF.format(node="wan", dir=d, port=HTTP))
        procs["nginx-wan"] = Proc("nginx-wan", ["ip", "netns", "exec", fnat.NS_CLIENT, "nginx",
                                                "-c", conf, "-p", d + "/", "-e",
                                                f"{d}/error.log"], logdir)
        procs["iperf3s-wan"] = Proc("iperf3s-wan", ["ip", "netns", "exec", fnat.NS_CLIENT,
                                                    "iperf3", "-s", "-p", str(IPERF)], logdir)
        for port, name in ((HTTP, "nginx-wan"), (IPERF, "iperf3s-wan")):
            wait_for(lambda: bool(sh("ss", "-Hltn", f"sport = :{port}",
                                     ns=fnat.NS_CLIENT).stdout.strip()),
                     10, f"{name} listening", procs[name])
    return procs


def flush_timewait() -> dict:
    out = {}
    for ns in (fnat.NS_CLIENT, fnat.NS_LB, *fnat.NS_RS.values(), NS_LANC):
        n = sh("ss", "-Htan", "state", "time-wait", ns=ns).stdout.count("\n")
        if n:
            sh("ss", "-K", "-tan", "state", "time-wait", ns=ns)
            out[ns] = n
    return out


HEAD = ["dataplane", " workers 1", f" port dpdk0 net_af_packet0,iface={fnat.LAN_IF}",
        f" port dpdk1 net_af_packet1,iface={fnat.WAN_IF}", " busy-poll", "!"]


def mode_script(mode: str) -> list[str]:
    """The tutorial's commands for each mode in this lab (rlb/lab/scripts.py): an HTTP
    service (rr) and an iperf3 one (sh: its control and data connections meet one server)."""
    servers = [RS_IP[rs] for rs in fnat.NS_RS]
    if mode in ("dr", "tunnel"):        # tunnel on DR one-arm's wires: the LAN IP, the VIP
        return [*DR.script(mode=mode, servers=servers, vport=HTTP, rs_port=HTTP),
                *DR.script(mode=mode, net=False, servers=servers, vport=IPERF, rs_port=IPERF,
                           sched="sh")]
    if mode == "nat":                   # two-arm: the rs' default gateway, the VIP on WAN
        nat = dict(vip=VIP, servers=servers, addrs=((f"{fnat.LAN_GW}/24", "dpdk0"),),
                   vip_dev="dpdk1", vip_last=False, routes=("10.0.0.0/16 dev dpdk1",))
        return [*scripts.nat(**nat, vport=HTTP, rs_port=HTTP),
                *scripts.nat(**nat, net=False, vport=IPERF, rs_port=IPERF, sched="sh")]
    if mode == "snat":
        return list(scripts.snat(SNAT_WAN, match=SNAT_MATCH, wan_plen=16,
                                 protos=("proto=tcp",)))
    raise KeyError(mode)


class ModeRlb(fnat.Rlb):
    """fnat.py's rlb peer (same daemon, ports, busy-poll, counters) with another script."""

    def __init__(self, opts, logdir: str, mode: str):
        super().__init__(opts, logdir, "rlb")
        self.mode = mode
        self.name = self.daemon.name = f"rlb-{mode}"

    def config(self) -> str:
        if self.mode == "fnat":
            return super().config()
        return "\n".join(HEAD + mode_script(self.mode)) + "\n"


def targets(mode: str) -> tuple[str, list[str], str]:
    """(client namespace, wrk targets, iperf3 target) of a mode."""
    if mode in ("dr", "tunnel"):
        return NS_LANC, [DR_VIP], DR_VIP
    if mode == "snat":
        return fnat.NS_RS["rs1"], [CLIENT_IP], CLIENT_IP
    if mode == "kernel":
        return fnat.NS_CLIENT, [RS_IP["rs1"], RS_IP["rs2"]], RS_IP["rs1"]
    return fnat.NS_CLIENT, [VIP], VIP


def make_peer(mode: str, opts, logdir: str):
    return fnat.Kernel(opts, logdir, "kernel") if mode == "kernel" else ModeRlb(opts, logdir, mode)


def in_ns(opts, ns: str, *cmd: str) -> list[str]:
    return ["ip", "netns", "exec", ns, "taskset", "-c", str(opts.client_cpu), *cmd]


def run_wrk(opts, logdir: str, ns: str, tgts: list[str], tag: str) -> dict:
    conns = max(1, opts.connections // len(tgts))
    procs = [Proc(f"wrk-{tag}-{i}", in_ns(opts, ns, "wrk", "-t1", f"-c{conns}",
                                          f"-d{opts.seconds:g}s", "--timeout", "2s", "-H",
                                          "Connection: close", f"http://{t}:{HTTP}/"), logdir)
             for i, t in enumerate(tgts)]
    outs = []
    try:
        for p in procs:
            p.p.wait(opts.seconds + 30)
    finally:
        for p in procs:
            p.stop(signal.SIGTERM, timeout=5)
            outs.append(p.stdout() + p.stderr())
    parsed = [fnat.parse_wrk(o) for o in outs]
    if any("rps" not in p for p in parsed):
        raise BenchError(f"wrk failed: {' | '.join(o.strip()[-300:] for o in outs)}")
    errs = {k: sum(p["socket_errors"].get(k, 0) for p in parsed)
            for k in ("connect", "read", "write", "timeout")}
    return {"value": round(sum(p["rps"] for p in parsed), 1),
            "requests": sum(p["requests"] for p in parsed),
            "latency_ms": round(statistics.mean(p.get("latency_ms", 0) for p in parsed), 3),
            "socket_errors": errs, "non2xx": sum(p["non2xx"] for p in parsed),
            "errors": sum(errs.values()) + sum(p["non2xx"] for p in parsed), "raw": outs}


def run_iperf(opts, logdir: str, ns: str, target: str, tag: str) -> dict:
    return iperf3(in_ns(opts, ns, "iperf3", "-c", target, "-p", str(IPERF)), logdir, tag,
                  opts.seconds)


def run_mode(opts, mode: str, idx: int, servers, logdir: str, extra: dict) -> dict:
    peer = make_peer(mode, opts, logdir)
    ns, tgts, itgt = targets(mode)
    res: dict = {"mode": mode, "run": idx, "tests": {}, "timewait_flushed": flush_timewait()}
    try:
        peer.start()
        for t in tgts:        # one request must go through before we measure
            r = sh("curl", "-s", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}",
                   f"http://{t}:{HTTP}/", ns=ns, check=False, timeout=10)
            if r.stdout.strip() != "200":
                raise BenchError(f"{mode}: curl http://{t}/ from {ns} gave "
                                 f"{r.stdout.strip() or 'nothing'}")
        for test in opts.tests:
            time.sleep(opts.pause)
            c0 = peer.counters()
            win = Window(NAMESPACES, {"lb": peer.pid, **servers.worker_pids(),
                                      **{k: p.pid for k, p in extra.items()}})
            try:
                tag = f"{mode}-{idx}-{test}"
                r = (run_iperf(opts, logdir, ns, itgt, tag) if test == "iperf"
                     else run_wrk(opts, logdir, ns, tgts, tag))
            except (BenchError, OSError, subprocess.SubprocessError, ValueError) as err:
                log(f"{mode} run {idx} {test} failed: {err}")
                r = {"error": f"{type(err).__name__}: {err}"}
            r.update(win.close())
            c1 = peer.counters()
            if c0 and c1 and "error" not in c0 and "error" not in c1:
                r["lb_counters"] = fnat.diff(c0, c1)
                r["lb_counters_after"] = c1
            res["tests"][test] = r
            if "value" in r:
                log(f"{mode} run {idx}: {test} {r['value']:g}"
                    + (f" ({r['errors']} errors)" if r.get("errors") else "")
                    + f", other processes {r['other_load']['total_pct']:.0f}% of a CPU")
        res["report"] = peer.report()
    finally:
        res["stop"] = peer.stop()
    return res


# ------------------------------------------------------------------ pps part (forward.py)


class PpsRlb(forward.Rlb):
    """forward.py's rlb, holding a DR or Tunnel UDP service instead of routing."""

    def config(self) -> str:
        return "\n".join([
            "dataplane", " workers 1", f" port dpdk0 net_af_packet0,iface={forward.IN_IF}",
            f" port dpdk1 net_af_packet1,iface={forward.OUT_IF}", " busy-poll", "!",
            f"dpip addr add {forward.IN_IP}/24 dev dpdk0",
            f"dpip addr add {forward.OUT_IP}/24 dev dpdk1",
            f"dpip addr add {PPS_VIP}/32 dev dpdk0",
            f"dpip neigh add {PPS_RS} lladdr {forward.SINK_MAC} dev dpdk1",
            *scripts.service(self.name.removeprefix("rlb-"), PPS_VIP, udp=True, vport=PPS_PORT,
                             servers=(PPS_RS,), rs_port=PPS_PORT), ""])

    def start(self) -> None:
        super().start()
        r = self._cli("ipvsadm -ln")
        if PPS_RS not in r.stdout:
            raise BenchError(f"{self.name}: service not configured: {r.stdout}{r.stderr}")


def run_pps(opts, logdir: str) -> tuple[list[dict], dict]:
    popts = types.SimpleNamespace(
        seconds=opts.seconds, warmup=1.0, runs=opts.runs, gen_cpu=0, fwd_cpu=1, main_cpu=0,
        flows=8, batch=256, gen_mode="mmsg", count=0, python=opts.python,
        max_noise=opts.max_noise, forwarders=list(opts.pps))
    orig_make = forward.make_forwarder

    def make(name, o, d):
        return PpsRlb(o, d, name) if name.startswith("rlb-") else orig_make(name, o, d)

    results: list[dict] = []
    forward.make_forwarder = make
    try:
        forward.build_tools()
        forward.build_topology()              # the sink's address and counters: SINK_IP
        forward.SINK_IP = PPS_VIP             # from here on: cgen's destination is the VIP
        for i in range(opts.runs):
            for name in opts.pps:
                log(f"pps {name} run {i + 1} ...")
                try:
                    r = forward.run_once(popts, name, i + 1, logdir)
                    log(f"pps {name} run {i + 1}: rx {fmt_pps(r['rx_pps'])}/s, offered "
                        f"{fmt_pps(r['offered_pps'])}/s, other processes "
                        f"{r['other_load']['total_pct']:.0f}% of a CPU")
                except (BenchError, OSError, subprocess.SubprocessError, ValueError,
                        KeyError) as err:
                    log(f"pps {name} run {i + 1} failed: {err}")
                    r = {"forwarder": name, "run": i + 1, "error": f"{type(err).__name__}: {err}"}
                results.append(r)
    finally:
        forward.SINK_IP = PPS_RS
        forward.make_forwarder = orig_make
        if ns_exists(forward.NS_FWD):
            forward.nft_unisolate()
        forward.remove_namespaces()
    return results, forward.summarize(results, popts)


# ------------------------------------------------------------------ report


def is_noisy(r: dict, opts) -> bool:
    return any((t.get("other_load") or {}).get("total_pct", 0) > opts.max_noise
               for t in r["tests"].values())


def summarize(results: list[dict], opts) -> dict:
    out = {}
    for mode in opts.modes:
        runs = [r for r in results if r["mode"] == mode and "error" not in r]
        s = {"runs": len(runs), "noisy_runs": sum(1 for r in runs if is_noisy(r, opts))}
        for test in opts.tests:
            ts = sorted((r["tests"][test] for r in runs if "value" in r["tests"].get(test, {})),
                        key=lambda t: t["value"])
            s[test] = {"median": statistics.median(t["value"] for t in ts) if ts else None,
                       "all": [r["tests"][test]["value"] for r in runs
                               if "value" in r["tests"].get(test, {})],
                       "errors": sum(r["tests"][test].get("errors", 0) for r in runs
                                     if test in r["tests"]),
                       "failed": sum(1 for r in runs if "error" in r["tests"].get(test, {}))}
            if ts:
                s[test]["median_run"] = {k: v for k, v in ts[len(ts) // 2].items() if k != "raw"}
        out[mode] = s
    for mode in opts.modes:
        for test in opts.tests:
            v = out[mode][test]["median"]
            for ref in ("fnat", "kernel"):
                rv = (out.get(ref) or {}).get(test, {}).get("median")
                out[mode][test][f"vs_{ref}"] = round(v / rv, 3) if v and rv else None
    return out


def markdown(summary: dict, pps: dict | None, opts, meta: dict) -> str:
    names = {"cps": "CPS (wrk, Connection: close)", "iperf": "iperf3 Gbps"}
    L = [f"# rlb forwarding modes side by side, {meta['started']}", "",
         f"Median of {opts.runs} runs of {opts.seconds:g} s per test, modes interleaved "
         f"({', '.join(opts.modes)}); wrk -t1 -c{opts.connections}, iperf3 one stream, on "
         f"CPU{opts.client_cpu}; rlb's worker on CPU1 (busy-poll). fnat/nat/kernel: client "
         "10.0.0.48 on wan0; dr/tunnel: one-arm, client 192.168.100.46 on the LAN (MTU 1480), "
         "replies direct; snat: rs1 -> 10.0.0.48 through the sapool address 10.0.0.3.", "",
         "| mode | " + " | ".join(f"{names[t]} | runs | vs fnat | vs kernel" for t in opts.tests)
         + " | wrk errors | noisy runs |",
         "|---|" + "---:|---|---:|---:|" * len(opts.tests) + "---:|---:|"]
    for mode in opts.modes:
        s = summary[mode]
        if not s["runs"]:
            L.append(f"| {mode} | failed |" + " |" * (4 * len(opts.tests)))
            continue
        cells = []
        for t in opts.tests:
            fmt = (lambda v: f"{v:.2f}") if t == "iperf" else fmt_k
            x = s[t]
            cells += [f"**{fmt(x['median'])}**" if x["median"] is not None else "-",
                      ", ".join(fmt(v) for v in x["all"]) + (f" ({x['failed']} failed)"
                                                             if x["failed"] else ""),
                      f"{x['vs_fnat']:.2f}" if x["vs_fnat"] else "-",
                      f"{x['vs_kernel']:.2f}" if x["vs_kernel"] else "-"]
        err = s["cps"]["errors"] if "cps" in s else 0
        L.append(f"| {mode} | " + " | ".join(cells) + f" | {err} | {s['noisy_runs']} |")
    L += ["", "Where the time went (median run of each test; CPU busy % (user/system/softirq)):",
          ""]
    for mode in opts.modes:
        for t in opts.tests:
            med = (summary[mode].get(t) or {}).get("median_run")
            if not med:
                continue
            bits = [cpu_cell(med)] + [x for x in (threads_line(med), rlb_line(med)) if x]
            if t == "cps":
                bits.append(f"latency {med.get('latency_ms', 0):.2f} ms")
                if med.get("errors"):
                    bits.append(f"errors {med['socket_errors']} non-2xx {med['non2xx']}")
            else:
                bits.append(f"retransmits {med.get('retransmits')}")
            ol = med.get("other_load") or {}
            if ol.get("total_pct", 0) >= 5:
                bits.append(f"other processes ~{ol['total_pct']:.0f}% of a CPU")
            L.append(f"- {mode} {t}: " + "; ".join(bits))
    if pps:
        f = pps["forwarders"]
        base = (f.get("cfwd") or {}).get("rx_pps_median")
        L += ["", f"## Inbound packet rate, 64-byte UDP (cgen -> VIP {PPS_VIP}:{PPS_PORT} -> "
                  "real server's veth)", "",
              "| forwarder | rx pps (median) | runs | offered pps | delivered | vs cfwd |",
              "|---|---:|---|---:|---:|---:|"]
        for name, s in f.items():
            if not s.get("runs"):
                L.append(f"| {name} | failed | | | | |")
                continue
            ratio = f"{s['rx_pps_median'] / base:.2f}" if base else "-"
            L.append(f"| {name} | **{fmt_pps(s['rx_pps_median'])}** | "
                     f"{', '.join(fmt_pps(v) for v in s['rx_pps_all'])} | "
                     f"{fmt_pps(s['offered_pps_median'])} | {s['delivered_pct_median']:.1f}% | "
                     f"{ratio} |")
        L += ["", "Bottleneck (median run):", ""]
        L += [f"- {n}: {s['bottleneck']}" for n, s in f.items() if s.get("runs")]
    failed = [(r["mode"], r["run"], k, t["error"]) for r in meta["results"]
              for k, t in r.get("tests", {}).items() if "error" in t]
    failed += [(r["mode"], r["run"], "run", r["error"]) for r in meta["results"] if "error" in r]
    failed += [(f"pps {r['forwarder']}", r["run"], "run", r["error"])
               for r in meta.get("pps_results", []) if "error" in r]
    if failed:
        L += ["", "Failed:", ""] + [f"- {m} run {i} {k}: {e}" for m, i, k, e in failed]
    return "\n".join(L) + "\n"


# ------------------------------------------------------------------ main


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="rlb's forwarding modes (FNAT, DR, Tunnel, NAT, SNAT) side by side with "
                    "kernel routing: CPS and iperf3; DR/Tunnel inbound pps vs cfwd. Needs root.")
    p.add_argument("--seconds", type=float, default=5, help="per test (default 5)")
    p.add_argument("--runs", type=int, default=3, help="runs per mode (default 3)")
    p.add_argument("--quick", action="store_true", help="smoke run: 1 run of 2 s")
    p.add_argument("--modes", default=",".join(MODES), help=f"in order (default {','.join(MODES)})")
    p.add_argument("--pps", default=",".join(PPS_FORWARDERS),
                   help=f"pps part forwarders (default {','.join(PPS_FORWARDERS)}; '' skips)")
    p.add_argument("--tests", default="cps,iperf", help="of cps,iperf (default both)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    p.add_argument("--pause", type=float, default=1.0, help="seconds between tests")
    p.add_argument("--client-cpu", type=int, default=0, help="CPU of wrk / iperf3 (default 0)")
    p.add_argument("--max-noise", type=float, default=15,
                   help="runs where other processes used more than this %% of a CPU are "
                        "flagged noisy (default 15)")
    add_output_options(p)
    opts = p.parse_args(argv)
    if opts.quick:
        opts.seconds, opts.runs = 2, 1
    opts.modes = [m for m in opts.modes.split(",") if m]
    opts.pps = [m for m in opts.pps.split(",") if m]
    opts.tests = [t for t in TESTS if t in opts.tests.split(",")]
    bad = [m for m in opts.modes if m not in MODES] + \
        [m for m in opts.pps if m not in PPS_FORWARDERS]
    if bad or not opts.tests:
        p.error(f"unknown mode/forwarder {bad} or no test")
    if not 0 < opts.seconds <= 60 or not 1 <= opts.runs <= 10:
        p.error("--seconds in (0, 60], --runs in 1..10")
    return opts


def main(argv=None) -> int:
    opts = parse_args(argv)
    if os.geteuid() != 0:
        print("modes.py: must run as root", file=sys.stderr)
        return 2
    missing = [t for t in ("ip", "nft", "ethtool", "taskset", "wrk", "iperf3", "nginx", "curl",
                           "ss") if not shutil.which(t)]
    if missing:
        print(f"modes.py: not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    install_signal_unwind()
    started = _dt.datetime.now()
    logdir = tempfile.mkdtemp(prefix="rlbb-modes-")
    results: list[dict] = []
    meta = {"started": started.isoformat(timespec="seconds"), "results": results,
            "options": dict(vars(opts)), "kernel": os.uname().release, "logs": logdir,
            "lb_configs": {}}
    rc, pps_summary = 0, None
    servers = fnat.Servers(logdir)
    extra: dict[str, Proc] = {}
    try:
        if opts.pps:
            meta["pps_results"], pps_summary = run_pps(opts, logdir)
            meta["pps_summary"] = pps_summary
        log(f"topology: {' '.join(NAMESPACES)}; logs in {logdir}")
        extra = build_lab(opts, logdir)
        servers.start()
        for i in range(opts.runs):
            for mode in opts.modes:
                log(f"{mode} run {i + 1} ...")
                try:
                    results.append(run_mode(opts, mode, i + 1, servers, logdir, extra))
                except (BenchError, OSError, subprocess.SubprocessError, ValueError,
                        KeyError) as err:
                    log(f"{mode} run {i + 1} failed: {err}")
                    results.append({"mode": mode, "run": i + 1, "tests": {},
                                    "error": f"{type(err).__name__}: {err}"})
                    rc = 1
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        rc = 130
    except BenchError as err:
        log(f"error: {err}")
        rc = 1
    finally:
        servers.stop()
        for p in extra.values():
            p.stop(signal.SIGTERM, timeout=10)
        meta["decap_counts"] = {k: p.stdout().strip().splitlines()[-1:]
                                for k, p in extra.items() if k.startswith("decap")}
        if ns_exists(fnat.NS_LB):
            fnat.kernel_lb_clear()
        remove_namespaces(NAMESPACES)
    for mode in opts.modes:
        if mode != "kernel":
            meta["lb_configs"][mode] = ModeRlb(opts, logdir, mode).config()
    if not results and not pps_summary:
        return rc or 1
    summary = summarize(results, opts)
    meta["summary"] = summary
    md = markdown(summary, pps_summary, opts, meta)
    finish(opts, f"modes-{started.strftime('%Y%m%d-%H%M%S')}", meta, md, logdir)
    return rc


if __name__ == "__main__":
    sys.exit(main())
