#!/usr/bin/env python3
"""rlb's connection table: bytes per entry, and 1M FNAT connections held by one worker.

Same lab as bench/fnat.py (rlbb-client -- rlbb-lb -- bridge -- rlbb-rs1/rs2), but the
real servers' kernels never see the traffic: an nftables ingress chain on their eth0
counts and drops what rlb forwards, so nothing answers and nothing but rlb keeps state.

rlb runs with `workers 1`, `conn-table-size`, `memory`, `ipvsadm --set 900 120 300`, an
FNAT service with --lips local addresses and static neighbours for the real servers.
bench/cgen (`--tcp syn`) then pushes --conns SYNs from distinct client tuples (10.0.1.0
+ i % --clients, port 1024 + i / --clients) into the WAN veth, paced at --rate:

  1. SYN phase: every SYN makes a connection in SYN_RECV (its timeout, 30 s, is not
     settable: only ESTABLISHED, FIN_WAIT and UDP are, through `ipvsadm --set`);
  2. ACK phase: the same tuples' handshake ACKs move them to ESTABLISHED (900 s);
  3. hold: --hold seconds later (past SYN_RECV's 30 s) all must still be there;
  4. flood (fresh daemon): the same SYNs unpaced, to see how fast one worker creates
     connections when fed as fast as one generator CPU can.

Counted: connections in the table (`show dataplane`), drop reasons (conn_full,
no_laddr ...), frames lost before the port (`dpip link show -s`), SYNs that reached
the servers, the states of a sample (`ipvsadm -lnc` lists at most 10000), the
daemon's VmRSS, and bytes per entry (sizeof conn_t + hash buckets).

Must run as root:  /work/main/.venv/bin/python bench/conntable.py [--quick]
Writes bench/results/conntable-<timestamp>.{json,md}.
"""
from __future__ import annotations

import argparse
import collections
import datetime as _dt
import json
import os
import re
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fnat  # noqa: E402
from common import (BenchError, Proc, RlbDaemon, add_output_options, build_cgen,  # noqa: E402
                    finish, install_signal_unwind, link_stats, log, ns_exists, proc_status_kib,
                    remove_namespaces, sh, thread_times, thread_usage)

RLB_INSTANCE = "benchct"
NFT_SINK = "rlbb_sink"
CLIENT_BASE = "10.0.1.0"
SPORT = 1024
GOAL_BYTES = 256


def sink_setup() -> None:
    """The real servers' kernels see nothing: count (SYNs apart) and drop at ingress. They
    never send either, so the bridge is told where their MACs are (else it floods)."""
    for rs, ns in fnat.NS_RS.items():
        sh("bridge", "fdb", "add", fnat.RS_MAC[rs], "dev", f"p-{rs}", "master", "static",
           ns=fnat.NS_SW)
        mine = f"ether daddr {fnat.RS_MAC[rs]}"
        sh("nft", "-f", "-", ns=ns, input=(
            f"table netdev {NFT_SINK} {{\n"
            f"  chain in {{ type filter hook ingress device \"{fnat.RS_IF}\" priority 0; "
            "policy drop;\n"
            f"    {mine} tcp flags & (syn | ack) == syn counter drop\n"
            f"    {mine} tcp flags & (syn | ack) == ack counter drop\n"
            "    counter drop\n  }\n}\n"))


def sink_counts() -> dict:
    out = {"syn": 0, "ack": 0, "other": 0}
    for ns in fnat.NS_RS.values():
        data = json.loads(sh("nft", "-j", "list", "table", "netdev", NFT_SINK, ns=ns).stdout)
        counts = [e["counter"]["packets"] for item in data.get("nftables", [])
                  for e in (item.get("rule") or {}).get("expr", []) if "counter" in e]
        for k, v in zip(("syn", "ack", "other"), counts):
            out[k] += v
    return out


def config(opts, lips: list[str]) -> str:
    # the af_packet PMD's ring: 512 frames unless framecnt= says otherwise
    ring = f",framecnt={opts.framecnt}" if opts.framecnt else ""
    lines = ["dataplane", " workers 1", f" conn-table-size {opts.table}",
             f" memory {opts.memory}",
             f" port dpdk0 net_af_packet0,iface={fnat.LAN_IF}{ring}",
             f" port dpdk1 net_af_packet1,iface={fnat.WAN_IF}{ring}", " busy-poll", "!"]
    # the tutorial's FNAT two-arm (rlb/lab/topologies.py), the neighbours and timeouts
    # before its service
    script = fnat.TOPO.script(servers=[fnat.RS_IP[rs] for rs in fnat.NS_RS], rs_port=80,
                              laddrs=lips)
    net = [line for line in script if line.startswith("dpip ")]
    lines += net
    lines += [f"dpip neigh add {fnat.RS_IP[rs]} lladdr {fnat.RS_MAC[rs]} dev dpdk0"
              for rs in fnat.NS_RS]
    lines += ["ipvsadm --set 900 120 300", *script[len(net):]]
    return "\n".join(lines) + "\n"


class Daemon:
    """The daemon plus what we read from it."""

    def __init__(self, opts, logdir: str, name: str):
        self.d = RlbDaemon(opts.python, RLB_INSTANCE, fnat.NS_LB, logdir, name)
        lips = [f"{fnat.LIP_BASE}{fnat.LIP_FIRST + i}" for i in range(opts.lips)]
        self.conf = config(opts, lips)

    def start(self) -> None:
        self.d.start(self.conf, ready_cmd="show dataplane", timeout=180)

    def state(self) -> dict:
        link = self.d.call("dpip link show -s")
        dp = self.d.call("show dataplane")
        ports = {p["name"]: p.get("stats", {}) for p in link.get("ports", [])}
        return {"t": time.monotonic(), "connections": dp.get("connections", {}),
                "reasons": {k: v for k, v in dp.get("reasons", {}).items() if v},
                "ports": {n: {k: st.get(k) for k in ("ipackets", "opackets", "imissed",
                                                     "kernel_rx", "lost_before_port")}
                          for n, st in ports.items()},
                "pool": dp.get("pool"),
                "rss_kib": self.d.rss_kib(), "hwm_kib": proc_status_kib(self.d.pid, "VmHWM")}

    def sample_states(self) -> dict:
        rows = self.d.call("ipvsadm -lnc", timeout=60).get("connections", [])
        return {"listed": len(rows), "states": dict(collections.Counter(r["state"] for r in rows))}

    def stop(self) -> dict:
        return self.d.stop()


def generate(opts, logdir: str, flags: str, rate: float, tag: str) -> dict:
    clients = opts.clients
    ports = -(-opts.conns // clients)
    if ports > 65535 - SPORT:
        raise BenchError(f"{opts.conns} tuples need more than {clients} clients x "
                         f"{65535 - SPORT} ports: raise --clients")
    seconds = (opts.conns / rate + 20) if rate else 60
    cmd = ["ip", "netns", "exec", fnat.NS_CLIENT, "taskset", "-c", str(opts.gen_cpu),
           opts.cgen, "--iface", fnat.CLIENT_IF, "--src-mac", fnat.CLIENT_MAC,
           "--dst-mac", fnat.WAN_MAC, "--src-ip", CLIENT_BASE, "--dst-ip", fnat.VIP,
           "--dport", "80", "--sport", str(SPORT), "--mode", "mmsg", "--tcp", flags,
           "--src-count", str(clients), "--sports", str(ports), "--count", str(opts.conns),
           "--rate", f"{rate:g}", "--batch", str(opts.batch), "--seconds", f"{seconds:g}"]
    p = Proc(f"cgen-{tag}", cmd, logdir)
    try:
        if p.p.wait(seconds + 15) != 0:
            raise BenchError(f"cgen failed: {p.stderr().strip()}")
    finally:
        p.stop(signal.SIGINT, timeout=5)
    return json.loads(p.stdout().strip().splitlines()[-1])


def one_pass(opts, dmn: Daemon, logdir: str, flags: str, rate: float, tag: str) -> dict:
    a, sink_a, veth_a = dmn.state(), sink_counts(), link_stats(fnat.NS_CLIENT)
    th_a, t_a = thread_times(dmn.d.pid), time.monotonic()
    gen = generate(opts, logdir, flags, rate, tag)
    th_b, t_b = thread_times(dmn.d.pid), time.monotonic()
    time.sleep(1.0)                      # the last frames through the worker
    b, sink_b, veth_b = dmn.state(), sink_counts(), link_stats(fnat.NS_CLIENT)
    ca, cb = a["connections"], b["connections"]
    wan_a, wan_b = a["ports"].get("dpdk1", {}), b["ports"].get("dpdk1", {})
    out = {"generator": gen,
           "sent_on_veth": veth_b[fnat.CLIENT_IF]["tx_packets"] - veth_a[fnat.CLIENT_IF]["tx_packets"],
           "wan_kernel_rx": (wan_b.get("kernel_rx") or 0) - (wan_a.get("kernel_rx") or 0),
           "wan_pmd_rx": (wan_b.get("ipackets") or 0) - (wan_a.get("ipackets") or 0),
           "lost_before_port": (wan_b.get("lost_before_port") or 0)
           - (wan_a.get("lost_before_port") or 0),
           "created": cb.get("created", 0) - ca.get("created", 0),
           "conns_after": cb.get("conns"), "capacity": cb.get("capacity"),
           "reasons": {k: v - a["reasons"].get(k, 0) for k, v in b["reasons"].items()
                       if v - a["reasons"].get(k, 0)},
           "reached_servers": {k: sink_b[k] - sink_a[k] for k in sink_b},
           "rss_kib_before": a["rss_kib"], "rss_kib_after": b["rss_kib"],
           "hwm_kib_after": b["hwm_kib"], "state_after": b,
           "threads": thread_usage(th_a, th_b, t_b - t_a)}
    secs = gen.get("seconds") or 1
    out["offered_pps"] = round(gen.get("queued", 0) / secs)
    out["created_per_s"] = round(out["created"] / secs)
    out["worker"] = w = max(out["threads"], key=lambda t: t["user"] + t["system"], default=None)
    log(f"{tag}: {gen.get('queued')} {flags.upper()}s in {secs:.2f} s, created "
        f"{out['created']}, table {out['conns_after']}, drops {out['reasons'] or 'none'}, lost "
        f"before port {out['lost_before_port']}; worker "
        f"{w['user'] + w['system'] if w else 0:.0f}% CPU, preempted {w['preempted'] if w else '-'}"
        " times")
    return out


def phase(opts, dmn: Daemon, logdir: str, flags: str, rate: float, tag: str,
          passes: int = 1) -> dict:
    """The tuples once; then again (--passes) as clients retransmit, to pick up what was
    lost before the port: a SYN or ACK for a connection already there changes nothing."""
    out = one_pass(opts, dmn, logdir, flags, rate, tag)
    out["flags"], out["rate_asked"] = flags, rate
    out["retransmissions"] = [one_pass(opts, dmn, logdir, flags, rate, f"{tag}-again{i + 1}")
                              for i in range(passes - 1)]
    last = out["retransmissions"][-1] if out["retransmissions"] else out
    out["final_conns"] = last["conns_after"]
    out["final_rss_kib"] = last["rss_kib_after"]
    out["sample"] = dmn.sample_states()
    log(f"{tag}: sample of the table {out['sample']['states']}")
    return out


def entry_size(conn_summary: dict) -> dict:
    """Bytes per entry: sizeof(conn_t) plus the hash buckets (2 x the table, rounded up
    to a power of two, 4 bytes each) spread over the entries."""
    cap = conn_summary.get("capacity") or 0
    buckets = 1
    while buckets < 2 * cap:
        buckets <<= 1
    entry = conn_summary.get("entry_bytes")
    hash_per = 4 * buckets / cap if cap else None
    return {"entry_bytes": entry, "hash_buckets": buckets,
            "hash_bytes_per_entry": round(hash_per, 2) if hash_per else None,
            "hash_bytes_reported": conn_summary.get("hash_bytes"),
            "bytes_per_connection": round(entry + hash_per, 2) if entry and hash_per else None,
            "bytes_per_connection_nominal": entry + 8 if entry else None,
            "table_mib": round((cap * entry + 4 * buckets) / 2**20, 1) if entry else None}


def run(opts, logdir: str) -> dict:
    res: dict = {}
    dmn = Daemon(opts, logdir, "rlb-conntable")
    res["config"] = dmn.conf
    t0 = time.monotonic()
    dmn.start()
    try:
        res["startup_s"] = round(time.monotonic() - t0, 1)
        s0 = dmn.state()
        res["idle"] = s0
        res["timeouts"] = dmn.d.call("ipvsadm -l --timeout")
        res["entry"] = entry_size(s0["connections"])
        log(f"daemon up in {res['startup_s']} s: {s0['connections'].get('capacity')} entries of "
            f"{res['entry']['entry_bytes']} bytes + {res['entry']['hash_bytes_per_entry']} of hash; "
            f"VmRSS {s0['rss_kib'] / 1024:.0f} MiB")
        res["syn"] = phase(opts, dmn, logdir, "syn", opts.rate, "syn", opts.passes)
        if opts.ack:
            res["ack"] = phase(opts, dmn, logdir, "ack", opts.rate, "ack", opts.passes)
        if opts.hold:
            log(f"holding {opts.hold:g} s (past SYN_RECV's 30 s timeout) ...")
            time.sleep(opts.hold)
            h = dmn.state()
            res["hold"] = {"after_s": opts.hold, "conns": h["connections"].get("conns"),
                           "expired": h["connections"].get("expired"),
                           "reasons": h["reasons"], "rss_kib": h["rss_kib"],
                           "sample": dmn.sample_states()}
            log(f"after {opts.hold:g} s: {res['hold']['conns']} connections, expired "
                f"{res['hold']['expired']}")
        res["text"] = dmn.d.text("show dataplane", "dpip link show -s", "ipvsadm -ln --stats",
                                 "ipvsadm -G", "ipvsadm -l --timeout")
    finally:
        res["stop"] = dmn.stop()
    if opts.flood:
        dmn = Daemon(opts, logdir, "rlb-conntable-flood")
        dmn.start()
        try:
            res["flood"] = phase(opts, dmn, logdir, "syn", 0, "flood", 1)
        finally:
            res["flood_stop"] = dmn.stop()
    return res


def fmt_n(v) -> str:
    return "-" if v is None else f"{v:,}"


def worker_cell(p: dict) -> str:
    w = p.get("worker")
    return f"{w['user'] + w['system']:.0f}%, {w['preempted']}x" if w else "-"


def markdown(res: dict, opts, meta: dict) -> str:
    e = res.get("entry") or {}
    lines = [f"# rlb connection table, {meta['started']}", "",
             f"One worker, `conn-table-size {opts.table}`, `memory {opts.memory}`, "
             f"`ipvsadm --set 900 120 300`, FNAT service with {opts.lips} local addresses, two "
             f"real servers whose kernels drop everything (static neighbours). {opts.conns:,} "
             f"distinct client tuples ({opts.clients} addresses from {CLIENT_BASE} x ports from "
             f"{SPORT}), SYNs then ACKs, paced at {opts.rate:g}/s by bench/cgen on CPU{opts.gen_cpu}; "
             f"af_packet ring {opts.framecnt or 512} frames per port.",
             "", "## Bytes per connection", "",
             f"- `sizeof(conn_t)` (`show dataplane`, entry): **{e.get('entry_bytes')}** bytes",
             f"- hash: {fmt_n(e.get('hash_buckets'))} buckets of 4 bytes for "
             f"{fmt_n((res.get('idle') or {}).get('connections', {}).get('capacity'))} entries = "
             f"{e.get('hash_bytes_per_entry')} bytes per entry (2 per entry nominal: 8 bytes; "
             "the bucket count is rounded up to a power of two)",
             f"- total **{e.get('bytes_per_connection')}** bytes per connection "
             f"(nominal {e.get('bytes_per_connection_nominal')}; goal <= {GOAL_BYTES}: "
             f"{'met' if (e.get('bytes_per_connection') or 1e9) <= GOAL_BYTES else 'NOT met'}); "
             f"table {e.get('table_mib')} MiB", ""]
    idle = res.get("idle") or {}
    lines += ["## 1M connections through one worker", "",
              "First pass: each tuple once; retransmission: all tuples again (what clients do "
              "when a SYN or ACK is lost). Lost before port = frames the kernel dropped because "
              "the af_packet ring was full (the worker did not come back in time).", "",
              "| phase | offered | rate /s | created | lost before port | drops | worker CPU, "
              "preempted | retransmission: created, lost before port, drops | in table after "
              "| reached servers | sample states (ipvsadm -lnc) |",
              "|---|---:|---:|---:|---:|---|---|---|---:|---:|---|"]
    for key in ("syn", "ack", "flood"):
        p = res.get(key)
        if not p:
            continue
        name = {"syn": "SYN", "ack": "ACK (-> ESTABLISHED)",
                "flood": "SYN flood, fresh daemon, unpaced"}[key]
        again = "; ".join(f"{fmt_n(r['created'])}, {fmt_n(r['lost_before_port'])}, "
                          f"{r['reasons'] or 'none'}" for r in p.get("retransmissions", [])) or "-"
        reached = sum(r["reached_servers"].get("ack" if key == "ack" else "syn", 0)
                      for r in [p] + p.get("retransmissions", []))
        lines.append(
            f"| {name} | {fmt_n(p['generator'].get('queued'))} | {fmt_n(p['offered_pps'])} | "
            f"{fmt_n(p['created'])} | {fmt_n(p['lost_before_port'])} | {p['reasons'] or 'none'} | "
            f"{worker_cell(p)} | {again} | **{fmt_n(p['final_conns'])}** of "
            f"{fmt_n(p['capacity'])} | {fmt_n(reached)} | {p['sample']['states']} of "
            f"{p['sample']['listed']} |")
    h = res.get("hold")
    if h:
        lines += ["", f"After {h['after_s']:g} s more: **{fmt_n(h['conns'])}** connections in the "
                      f"table, {fmt_n(h['expired'])} expired, states of the sample "
                      f"{h['sample']['states']}, drops {h['reasons'] or 'none'}."]
    syn = res.get("syn") or {}
    held = (h or {}).get("conns", syn.get("final_conns"))
    table_drops = {k: v for k, v in (res.get("hold") or {}).get("reasons", {}).items()
                   if k in ("conn_full", "no_laddr", "no_mbuf", "tx_full")}
    lines += ["", f"VmRSS of the daemon: {(idle.get('rss_kib') or 0) / 1024:.0f} MiB before the "
                  f"SYNs, {(syn.get('rss_kib_after') or 0) / 1024:.0f} MiB after them "
                  f"(peak {(syn.get('hwm_kib_after') or 0) / 1024:.0f} MiB): the table is "
                  "allocated and touched at start.", "",
              f"Goal, {opts.conns:,} held without drops: "
              f"**{'met' if held == opts.conns and not table_drops else 'NOT met'}** "
              f"({fmt_n(held)} held; conn_full/no_laddr/no_mbuf/tx_full {table_drops or 'none'}; "
              f"lost before the port on the first pass: SYN "
              f"{fmt_n(syn.get('lost_before_port'))}, ACK "
              f"{fmt_n((res.get('ack') or {}).get('lost_before_port'))})."]
    if res.get("text"):
        text = [ln for ln in res["text"].splitlines() if not re.fullmatch(r"\s+\w+\s+0", ln)]
        lines += ["", "After the hold (`show dataplane`, `dpip link show -s`, `ipvsadm -ln "
                      "--stats`, `ipvsadm -G`, `ipvsadm -l --timeout`; zero counters left out):",
                  "", "```", *text, "```"]
    if meta.get("error"):
        lines += ["", f"Error: {meta['error']}"]
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="rlb's connection table: bytes per entry, and --conns FNAT connections "
                    "held by one worker (crafted SYNs, then ACKs). Needs root.")
    p.add_argument("--conns", type=int, default=1_000_000, help="client tuples (default 1M)")
    p.add_argument("--table", type=int, default=1_100_000, help="conn-table-size (default 1.1M)")
    p.add_argument("--memory", type=int, default=2048, help="dataplane memory MiB (default 2048)")
    p.add_argument("--lips", type=int, default=16,
                   help="FNAT local addresses (default 16; ~64k ports each)")
    p.add_argument("--clients", type=int, default=256, help="client addresses (default 256)")
    p.add_argument("--rate", type=float, default=200_000, help="packets/s (default 200000)")
    p.add_argument("--batch", type=int, default=32, help="generator frames per sendmmsg")
    p.add_argument("--framecnt", type=int, default=0,
                   help="af_packet ring frames per port (devarg framecnt; default: DPDK's 512)")
    p.add_argument("--hold", type=float, default=35,
                   help="seconds to wait after the ACKs before counting again (default 35; 0: no)")
    p.add_argument("--no-ack", dest="ack", action="store_false", help="SYNs only")
    p.add_argument("--passes", type=int, default=2,
                   help="times each phase sends all its tuples (default 2: once, then the "
                        "retransmissions that recover what was lost before the port)")
    p.add_argument("--no-flood", dest="flood", action="store_false",
                   help="skip the unpaced phase")
    p.add_argument("--quick", action="store_true", help="100k connections, no hold")
    p.add_argument("--gen-cpu", type=int, default=0, help="generator CPU (default 0)")
    add_output_options(p)
    opts = p.parse_args(argv)
    if opts.quick:
        opts.conns, opts.hold = 100_000, 0
    if not 1 <= opts.lips <= 16:
        p.error("--lips: 1..16 (MAX_LADDRS_PER_SVC)")
    if opts.conns < 1 or opts.conns > opts.table or opts.rate < 0:
        p.error("--conns must be 1..--table, --rate >= 0")
    return opts


def main(argv=None) -> int:
    opts = parse_args(argv)
    if os.geteuid() != 0:
        print("conntable.py: must run as root", file=sys.stderr)
        return 2
    install_signal_unwind()
    started = _dt.datetime.now()
    logdir = tempfile.mkdtemp(prefix="rlbb-conntable-")
    meta: dict = {"started": started.isoformat(timespec="seconds"), "options": dict(vars(opts)),
                  "kernel": os.uname().release, "logs": logdir}
    rc, res = 0, {}
    try:
        opts.cgen = build_cgen()
        meta["options"]["cgen"] = opts.cgen
        log(f"topology: {' '.join(fnat.NAMESPACES)}; logs in {logdir}")
        fnat.build_topology()
        sink_setup()
        res = run(opts, logdir)
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        rc = 130
    except (BenchError, OSError, ValueError, KeyError) as err:
        log(f"error: {err}")
        meta["error"] = f"{type(err).__name__}: {err}"
        rc = 1
    finally:
        if ns_exists(fnat.NS_LB):
            fnat.kernel_lb_clear()
        remove_namespaces(fnat.NAMESPACES)
    meta["result"] = res
    md = markdown(res, opts, meta)
    finish(opts, f"conntable-{started.strftime('%Y%m%d-%H%M%S')}", meta, md, logdir)
    return rc


if __name__ == "__main__":
    sys.exit(main())
