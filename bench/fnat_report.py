"""bench/fnat.py's results: medians over the least noisy runs, ratios, and the markdown
report with where the time went in each peer's median run."""
from __future__ import annotations

import re
import statistics

TESTS = ("cps", "ka", "iperf")
TEST_NAMES = {"cps": "CPS (wrk, Connection: close)", "ka": "keep-alive req/s",
              "iperf": "iperf3 Gbps"}


def is_noisy(r: dict, opts) -> bool:
    return any((t.get("other_load") or {}).get("total_pct", 0) > opts.max_noise
               for t in r["tests"].values())


def complete(r: dict, opts) -> bool:
    return all("value" in r["tests"].get(t, {}) for t in opts.tests)


def median_test(runs: list[dict], test: str) -> dict | None:
    vals = sorted((r["tests"][test] for r in runs if "value" in r["tests"].get(test, {})),
                  key=lambda t: t["value"])
    return vals[len(vals) // 2] if vals else None


def summarize(results: list[dict], opts) -> dict:
    """Per peer, the --runs runs least disturbed by other work; per test, their median."""
    summary = {}
    for name in opts.peers:
        runs = [r for r in results if r["peer"] == name and "error" not in r]
        chosen = sorted(runs, key=lambda r: (not complete(r, opts), is_noisy(r, opts),
                                             r["run"]))[:opts.runs]
        for r in runs:
            r["used"] = r in chosen
        chosen.sort(key=lambda r: r["run"])
        s = {"runs_done": sum(1 for r in results if r["peer"] == name), "runs": len(chosen),
             "noisy_runs_used": sum(1 for r in chosen if is_noisy(r, opts))}
        for test in opts.tests:
            vals = [r["tests"][test]["value"] for r in chosen if "value" in r["tests"].get(test, {})]
            s[test] = {"median": statistics.median(vals) if vals else None, "all": vals,
                       "errors": sum(r["tests"][test].get("errors", 0) for r in chosen
                                     if test in r["tests"]),
                       "failed": sum(1 for r in chosen if "error" in r["tests"].get(test, {}))}
            med = median_test(chosen, test)
            if med is not None:       # (the raw wrk output stays in the run's own record)
                s[test]["median_run"] = {k: v for k, v in med.items() if k != "raw"}
        summary[name] = s
    ratios: dict = {}
    for a in [x for x in opts.peers if x.startswith("rlb")]:
        # a bond peer against the same rlb on one port (rlb-bond-lips16 / rlb-lips16)
        single = a.replace("-bond", "", 1) if a.startswith("rlb-bond") else None
        for b in ((single,) if single in opts.peers else ()) + ("haproxy", "nft", "kernel"):
            for test in opts.tests:
                va = (summary.get(a) or {}).get(test, {}).get("median")
                vb = (summary.get(b) or {}).get(test, {}).get("median")
                if va and vb:
                    ratios.setdefault(f"{a}/{b}", {})[test] = round(va / vb, 3)
    return {"peers": summary, "ratios": ratios}


def fmt_k(v) -> str:
    if v is None:
        return "-"
    return f"{v / 1e3:.1f}k" if v >= 1000 else f"{v:.0f}"


def fmt_val(test: str, v) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if test == "iperf" else fmt_k(v)


def cpu_cell(t: dict) -> str:
    parts = []
    for cpu, u in sorted(t.get("cpu", {}).items()):
        parts.append(f"{cpu.upper()} {u['busy']:.0f}% ({u['user']:.0f}/{u['system']:.0f}/"
                     f"{u['softirq']:.0f})")
    return ", ".join(parts)


def threads_line(t: dict) -> str:
    """The busiest threads of the LB and the servers during a test."""
    parts = []
    for who, rows in (t.get("threads") or {}).items():
        for row in sorted(rows, key=lambda x: -(x["user"] + x["system"]))[:2]:
            if row["user"] + row["system"] >= 5:
                parts.append(f"{who}/{row['thread']} {row['user'] + row['system']:.0f}% "
                             f"(CPU{row['cpu']}, preempted {row['preempted']})")
    return ", ".join(parts)


def rlb_line(t: dict) -> str:
    c = t.get("lb_counters") or {}
    if not c:
        return ""
    dt = t.get("seconds") or 1
    ports = c.get("ports", {})
    parts = []
    for name in ("bond0", "dpdk1", "dpdk0"):
        p = ports.get(name) or {}
        if p:
            parts.append(f"{name} rx {fmt_k(p.get('ipackets', 0) / dt)}/s tx "
                         f"{fmt_k(p.get('opackets', 0) / dt)}/s, lost before port "
                         f"{p.get('lost_before_port', 0)}, imissed {p.get('imissed', 0)}, "
                         f"oerrors {p.get('oerrors', 0)}")
    slaves = c.get("slaves") or {}
    if slaves:
        parts.append("bond slaves " + ", ".join(
            f"{n.split('/')[-1]} rx {fmt_k(p.get('ipackets', 0) / dt)}/s tx "
            f"{fmt_k(p.get('opackets', 0) / dt)}/s" for n, p in sorted(slaves.items())))
    reasons = {k: v for k, v in (c.get("reasons") or {}).items() if v}
    parts.append(f"drops/punts {reasons or 'none'}")
    polls = c.get("polls") or 0
    rx = sum((ports.get(n) or {}).get("ipackets", 0) for n in ports)
    if polls:
        parts.append(f"{fmt_k(polls / dt)} polls/s, {rx / polls:.2f} packets/poll, "
                     f"idle sleeps {c.get('idle_sleeps', 0)}")
    conns = c.get("conns") or {}
    after = (t.get("lb_counters_after") or {}).get("conns") or {}
    if conns.get("created") is not None:
        parts.append(f"connections created {fmt_k(conns['created'] / dt)}/s, in table "
                     f"{after.get('conns')} of {after.get('capacity')}")
    return "; ".join(parts)


def tcp_line(t: dict) -> str:
    parts = []
    for ns, counters in (t.get("tcp") or {}).items():
        keep = {k.split(":")[1]: v for k, v in counters.items()
                if k not in ("Tcp:ActiveOpens", "Tcp:PassiveOpens", "TcpExt:TWRecycled")}
        if keep:
            parts.append(f"{ns.replace('rlbb-', '')} {keep}")
    return "; ".join(parts)


def markdown(summary: dict, opts, meta: dict) -> str:
    s, tests = summary["peers"], opts.tests
    lines = [f"# FNAT load balancing side by side, {meta['started']}", "",
             f"Median of {opts.runs} runs of {opts.seconds:g} s per test, peers interleaved. "
             f"wrk -t1 -c{opts.connections} (CPS with `Connection: close`), iperf3 one stream; "
             f"client tools on CPU{opts.client_cpu}; rlb's worker lcore on CPU1. "
             "Noisy = other processes used more than "
             f"{opts.max_noise:g}% of a CPU during a test.", "",
             "| peer | " + " | ".join(f"{TEST_NAMES[t]} (median) | runs" for t in tests)
             + " | errors (wrk socket/non-2xx) |",
             "|---|" + "---:|---|" * len(tests) + "---:|"]
    for name in opts.peers:
        p = s.get(name) or {}
        if not p.get("runs"):
            lines.append(f"| {name} | failed |" + " |" * (2 * len(tests)))
            continue
        cells = []
        for t in tests:
            cells.append(f"**{fmt_val(t, p[t]['median'])}**")
            runs = ", ".join(fmt_val(t, v) for v in p[t]["all"])
            if p[t]["failed"]:
                runs += f" ({p[t]['failed']} failed)"
            cells.append(runs)
        extra = ""
        if p["runs_done"] != p["runs"]:
            extra = f" (best {p['runs']} of {p['runs_done']} runs)"
        if p["noisy_runs_used"]:
            extra += f" ({p['noisy_runs_used']} noisy)"
        errors = sum(p[t]["errors"] for t in tests if t != "iperf")
        lines.append(f"| {name}{extra} | " + " | ".join(cells) + f" | {errors} |")
    lines.append("")
    if summary["ratios"]:
        lines += ["Ratios of medians:", "",
                  "| ratio | " + " | ".join(TEST_NAMES[t] for t in tests) + " |",
                  "|---|" + "---:|" * len(tests)]
        for k, v in summary["ratios"].items():
            lines.append(f"| {k} | " + " | ".join(f"{v[t]:.2f}" if t in v else "-" for t in tests)
                         + " |")
        lines.append("")
    lines += ["Where the time went (median run of each test; CPU busy % "
              "(user/system/softirq)):", ""]
    for name in opts.peers:
        p = s.get(name) or {}
        for t in tests:
            med = (p.get(t) or {}).get("median_run")
            if not med:
                continue
            bits = [cpu_cell(med)]
            for extra in (threads_line(med), rlb_line(med), tcp_line(med)):
                if extra:
                    bits.append(extra)
            if t != "iperf":
                bits.append(f"latency {med.get('latency_ms', 0):.2f} ms")
                tl = med.get("timeline") or []
                if t == "cps" and tl:
                    bits.append("client connections/s second by second: "
                                + " ".join(fmt_k(x.get("ActiveOpens", 0)) for x in tl)
                                + f" (SYN retransmits {sum(x.get('TCPSynRetrans', 0) for x in tl)})")
                if med.get("errors"):
                    bits.append(f"errors {med['socket_errors']} non-2xx {med['non2xx']}")
            else:
                bits.append(f"retransmits {med.get('retransmits')}")
            ol = med.get("other_load") or {}
            if ol.get("total_pct", 0) >= 5:
                bits.append(f"other processes ~{ol['total_pct']:.0f}% of a CPU")
            lines.append(f"- {name} {t}: " + "; ".join(bits))
    failed = [(r["peer"], r["run"], k, t["error"]) for r in meta["results"]
              for k, t in r.get("tests", {}).items() if "error" in t]
    failed += [(r["peer"], r["run"], "run", r["error"]) for r in meta["results"] if "error" in r]
    if failed:
        lines += ["", "Failed:", ""] + [f"- {p} run {i} {k}: {e}" for p, i, k, e in failed]
    rl = [r for r in meta["results"] if r["peer"].startswith("rlb")
          and (r.get("report") or {}).get("text")]
    if rl:
        last = rl[-1]
        text = [ln for ln in last["report"]["text"].splitlines()
                if not re.fullmatch(r"\s+\w+\s+0", ln)]
        lines += ["", f"rlb after {last['peer']} run {last['run']} (`dpip link show -s`, "
                      "`show dataplane`, `ipvsadm -ln --stats`, `ipvsadm -G`; cumulative over "
                      "its three tests; zero drop reasons left out):", "", "```", *text, "```"]
    return "\n".join(lines) + "\n"
