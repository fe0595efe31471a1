"""Charts of a benchmark's result: one PNG per measured quantity, one bar per peer (the
median of its runs, whiskers from the lowest to the highest run, a dot per run), written
next to the result's JSON as <stem>-<metric>.png.

    python bench/charts.py bench/results/fnat-20261207-101635.json [...]

charts an old result (and links the PNGs into the .md beside it); the benchmarks call
write_results() in common.py, which calls bench_charts() here. Needs matplotlib (the
`bench` extra of pyproject.toml; `make setup` installs it); only the drawing does: the
shapes are read without it.

Results with per-peer repeated runs: forward.py (rx pps per forwarder), fnat.py (CPS,
keep-alive req/s, iperf3 Gbps per peer), modes.py (CPS and Gbps per mode, inbound pps per
forwarder), health.py (forwarded pps per phase: off, on, off2), commit.py (ms per table
size and operation). conntable.py and failover.py measure single events: no charts.
"""
from __future__ import annotations

import importlib
import json
import os
import re
import statistics
import sys
import textwrap
from dataclasses import dataclass, field

CHARTS_BEGIN = "<!-- charts: bench/charts.py -->"
CHARTS_END = "<!-- /charts -->"
NO_MPL = "matplotlib not installed (make setup installs the pinned one: pyproject's bench extra)"


class ChartError(Exception):
    """A result file that cannot be charted: unreadable, or a shape not known here."""


@dataclass
class Series:
    """One measured quantity: per peer (in the bench's order) the values of its runs."""
    metric: str                          # file name part: <stem>-<metric>.png
    title: str                           # what was measured
    unit: str                            # axis title
    peers: dict[str, list[float]]
    decimals: int | None = None          # fixed decimals for labels; None: k/M suffixes
    ours: set[str] = field(default_factory=set)   # peers drawn in rlb's colour
    xlabel: str = ""


@dataclass
class Result:
    bench: str
    title: str
    started: str | None
    machine: str | None
    series: list[Series]


# ------------------------------------------------------------------ shapes


def _nums(values) -> list[float]:
    if not isinstance(values, list):
        raise TypeError(f"runs are not a list: {values!r:.60}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"a run is not a number: {v!r:.60}")
        out.append(float(v))
    return out


def _rlb(names) -> set[str]:
    return {n for n in names if n.startswith("rlb")}


def _forwarders(fwd: dict, metric: str, title: str) -> Series:
    """forward.summarize()'s per-forwarder rx pps (forward.py, modes.py's pps part)."""
    peers = {name: _nums(s.get("rx_pps_all", [])) if s.get("runs") else []
             for name, s in fwd.items()}
    return Series(metric, title, "packets/s received", peers, ours=_rlb(peers),
                  xlabel="forwarder")


FNAT_TESTS = (("cps", "cps", "new connections/s (CPS, wrk, Connection: close)",
               "connections/s", None),
              ("ka", "reqs", "keep-alive requests/s (wrk)", "requests/s", None),
              ("iperf", "gbps", "iperf3 throughput, one stream", "Gbit/s received", 2))


def _tests(summary: dict, tests, ours, xlabel: str) -> list[Series]:
    out = []
    for test, metric, title, unit, dec in tests:
        peers = {}
        for name, s in summary.items():
            if not isinstance(s, dict):
                raise TypeError(f"{name}: not an object")
            t = s.get(test)
            if t is not None:
                peers[name] = _nums(t.get("all", []))
        if any(peers.values()):
            out.append(Series(metric, title, unit, peers, dec, ours(peers), xlabel))
    return out


def _forward(d: dict) -> list[Series]:
    return [_forwarders(d["summary"]["forwarders"], "pps",
                        "packets routed to the sink, per forwarder")]


def _fnat(d: dict) -> list[Series]:
    return _tests(d["summary"]["peers"], FNAT_TESTS, _rlb, "load balancer")


def _modes(d: dict) -> list[Series]:
    tests = [t for t in FNAT_TESTS if t[0] != "ka"]
    out = _tests(d["summary"], tests, lambda peers: {n for n in peers if n != "kernel"},
                 "rlb's mode (kernel: routing, the ceiling)")
    if d.get("pps_summary"):
        out.append(_forwarders(d["pps_summary"]["forwarders"], "pps",
                               "inbound 64-byte UDP to the VIP (rx at the real server)"))
    return out


def _health(d: dict) -> list[Series]:
    peers = {name: _nums((ph.get("pps") or {}).get("runs", []))
             for name, ph in d["phases"].items()}
    if not any(peers.values()):
        return []
    return [Series("pps", "64-byte UDP forwarded by the daemon, health checks off / on / off "
                   "again", "packets/s received", peers, ours=set(peers),
                   xlabel="phase (one daemon, in this order)")]


COMMIT_OPS = (("render", "show running-config"), ("configure", "a session's candidate"),
              ("commit", "commit of one weight change"), ("load", "the whole text as a model"),
              ("ipvsadm_e", "one ipvsadm -e"))


def _commit(rows: list) -> list[Series]:
    out = []
    for op, what in COMMIT_OPS:
        peers = {}
        for r in rows:
            size = f"{r['services']} x {r['dests']}"
            runs = (r.get("runs_ms") or {}).get(op)
            if runs is not None:
                peers[size] = _nums(runs)
        if any(peers.values()):
            out.append(Series(op.replace("_", "-"), what, "milliseconds", peers,
                              ours=set(peers), xlabel="services x real servers each"))
    return out


def _no_runs(d) -> list[Series]:
    return []


# (bench, title, does this JSON look like it, its series); the first match wins
SHAPES = (
    ("commit", "configuration mode's cost",
     lambda d: isinstance(d, list) and bool(d) and all(
         isinstance(r, dict) and {"services", "dests"} <= r.keys() for r in d), _commit),
    ("forward", "64-byte UDP forwarding",
     lambda d: isinstance(d.get("summary"), dict) and "forwarders" in d["summary"], _forward),
    ("fnat", "FNAT load balancing",
     lambda d: isinstance(d.get("summary"), dict) and "peers" in d["summary"], _fnat),
    ("modes", "rlb's forwarding modes",
     lambda d: "lb_configs" in d and ("summary" in d or "pps_summary" in d)
     and "peers" not in (d.get("summary") or {}), _modes),
    ("health", "health checks at scale", lambda d: isinstance(d.get("phases"), dict), _health),
    ("conntable", "connection table", lambda d: "result" in d and "conns" in d.get("options", {}),
     _no_runs),
    ("failover", "failover", lambda d: "events" in d and "cold" in d, _no_runs),
)


def read_result(json_path: str) -> Result:
    """The result's measured series (no matplotlib needed); ChartError if it is not one."""
    try:
        with open(json_path) as f:
            data = json.load(f)
    except OSError as err:
        raise ChartError(f"{json_path}: {err.strerror or err}") from None
    except ValueError as err:
        raise ChartError(f"{json_path}: not JSON ({err})") from None
    for bench, title, looks, series in SHAPES:
        try:
            if not looks(data):
                continue
        except (AttributeError, TypeError):     # a list where a dict was looked for, ...
            continue
        try:
            found = series(data)
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            raise ChartError(f"{json_path}: looks like a {bench}.py result but is not one "
                             f"this knows ({type(err).__name__}: {err})") from None
        meta = data if isinstance(data, dict) else {}
        started = meta.get("started")
        stamp = re.search(r"(\d{4})(\d\d)(\d\d)-(\d\d)(\d\d)(\d\d)\.json$", json_path)
        if not started and stamp:          # commit.py's: only the file name has the time
            started = "{}-{}-{} {}:{}:{}".format(*stamp.groups())
        return Result(bench, title, str(started) if started else None, meta.get("kernel"),
                      found)
    known = ", ".join(f"{s[0]}.py" for s in SHAPES)
    raise ChartError(f"{json_path}: not a result shape bench/charts.py knows ({known})")


# ------------------------------------------------------------------ drawing


def fmt(v: float, decimals: int | None) -> str:
    if decimals is not None:
        if 0 < abs(v) < 10 ** -decimals * 10:       # 0.003, not 0.00
            return f"{v:.2g}"
        return f"{v:.{decimals}f}"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.2f}M"
    if a >= 1e4:
        return f"{v / 1e3:.1f}k"
    if a >= 1e3:
        return f"{v / 1e3:.2f}k"
    if a >= 100 or v == int(v):
        return f"{v:.0f}"
    return f"{v:.3g}"


def tick(v: float, _pos=None) -> str:
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:g}M"
    if a >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def _subtitle(res: Result) -> str:
    parts = []
    if res.started:
        parts.append(res.started.replace("T", " "))
    if res.machine:
        parts.append(f"kernel {res.machine}")
    return " | ".join(parts)


def draw(res: Result, s: Series, png: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    names = list(s.peers)
    width = max(6.4, 1.25 * len(names) + 2.5)
    fig = Figure(figsize=(width, 4.8), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    top = max((max(v) for v in s.peers.values() if v), default=1.0) or 1.0
    for i, name in enumerate(names):
        runs = s.peers[name]
        if not runs:
            ax.text(i, top * 0.02, "no run", ha="center", va="bottom", color="tab:red",
                    fontsize=9)
            continue
        med, lo, hi = statistics.median(runs), min(runs), max(runs)
        color = "tab:blue" if name in s.ours else "tab:gray"
        ax.bar(i, med, width=0.6, color=color, alpha=0.85, zorder=2)
        ax.errorbar(i, med, yerr=[[med - lo], [hi - med]], fmt="none", ecolor="black",
                    elinewidth=1.2, capsize=6, zorder=3)
        ax.scatter([i] * len(runs), runs, s=12, color="black", alpha=0.6, zorder=4)
        ax.annotate(fmt(med, s.decimals), (i, hi), xytext=(0, 12), textcoords="offset points",
                    ha="center", va="bottom", fontsize=10, fontweight="bold")
        if len(runs) > 1:
            ax.annotate(f"{fmt(lo, s.decimals)} - {fmt(hi, s.decimals)} ({len(runs)} runs)",
                        (i, hi), xytext=(0, 3), textcoords="offset points", ha="center",
                        va="bottom", fontsize=7, color="dimgray")
        else:
            ax.annotate("1 run", (i, hi), xytext=(0, 3), textcoords="offset points",
                        ha="center", va="bottom", fontsize=7, color="dimgray")
    ax.set_xticks(range(len(names)), names, rotation=20 if len(names) > 5 else 0,
                  ha="right" if len(names) > 5 else "center")
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylim(0, top * 1.2)
    ax.set_ylabel(s.unit)
    ax.set_xlabel(s.xlabel)
    ax.yaxis.set_major_formatter(FuncFormatter(tick))
    ax.grid(axis="y", alpha=0.3, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    chars = int(width * 12)              # what a line of the title holds at this size
    ax.set_title(textwrap.fill(f"{res.bench}.py, {res.title}: {s.title}", chars) + "\n",
                 fontsize=11, loc="left")
    ax.text(0, 1.02, textwrap.shorten(_subtitle(res), int(chars * 1.35)),
            transform=ax.transAxes, fontsize=8, color="dimgray")
    ours = "blue: rlb, grey: the others; " if s.ours and set(names) - s.ours else ""
    fig.supxlabel(f"{ours}bar: median of the runs, whiskers: lowest to highest run, "
                  "dots: each run", fontsize=8, color="dimgray")
    fig.savefig(png)


def write_charts(json_path: str) -> list[str]:
    """PNGs of the result `json_path`, next to it (<stem>-<metric>.png): their paths, [] for
    a result without repeated runs. ChartError: not a result known here; ImportError: no
    matplotlib (only raised when there is something to draw)."""
    res = read_result(json_path)
    series = [s for s in res.series if any(s.peers.values())]
    if not series:
        return []
    importlib.import_module("matplotlib")      # ImportError before anything is written
    stem = os.path.splitext(json_path)[0]
    out = []
    for s in series:
        png = f"{stem}-{s.metric}.png"
        draw(res, s, png)
        out.append(png)
    return out


# ------------------------------------------------------------------ markdown


def md_section(pngs: list[str]) -> str:
    """The markdown image lines of `pngs` (relative: the .md is beside them)."""
    if not pngs:
        return ""
    lines = ["", CHARTS_BEGIN, "## Charts", ""]
    for p in pngs:
        name = os.path.basename(p)
        lines += [f"![{name[:-4]}]({name})", ""]
    return "\n".join(lines + [CHARTS_END, ""])


def link_in_md(md_path: str, pngs: list[str]) -> bool:
    """The chart section of an existing .md replaced (or added at its end)."""
    if not os.path.exists(md_path):
        return False
    with open(md_path) as f:
        text = f.read()
    a = text.find("\n" + CHARTS_BEGIN)
    if a >= 0:
        b = text.find(CHARTS_END, a)
        rest = text[b + len(CHARTS_END):].lstrip("\n") if b >= 0 else ""
        text = text[:a].rstrip("\n") + "\n" + (("\n" + rest) if rest else "")
    with open(md_path, "w") as f:
        f.write(text + md_section(pngs))
    return True


def bench_charts(json_path: str, log=print) -> list[str]:
    """For the benchmarks: write_charts() that never fails the bench. A missing
    matplotlib, an unknown shape or a drawing error is one line through `log`."""
    try:
        return write_charts(json_path)
    except ImportError:
        log(f"charts skipped: {NO_MPL}")
    except ChartError as err:
        log(f"charts skipped: {err}")
    except Exception as err:  # noqa: BLE001  (a chart must not lose a run's results)
        log(f"charts failed: {type(err).__name__}: {err}")
    return []


def main(argv=None) -> int:
    import argparse
    p = argparse.ArgumentParser(
        description="PNG charts of bench results (median, min-max, each run per peer), "
                    "written next to each JSON as <stem>-<metric>.png; the .md beside it "
                    "gets their links.")
    p.add_argument("results", nargs="+", metavar="RESULT.json")
    p.add_argument("--no-md", dest="md", action="store_false",
                   help="leave the .md beside the JSON as it is")
    opts = p.parse_args(argv)
    rc = 0
    for path in opts.results:
        try:
            pngs = write_charts(path)
        except ChartError as err:
            print(f"charts.py: {err}", file=sys.stderr)
            rc = 1
            continue
        except ImportError:
            print(f"charts.py: {NO_MPL}", file=sys.stderr)
            return 1
        if not pngs:
            print(f"{path}: no repeated per-peer measurements in this result: no charts")
            continue
        for png in pngs:
            print(png)
        md = os.path.splitext(path)[0] + ".md"
        if opts.md and link_in_md(md, pngs):
            print(f"{md}: charts linked")
    return rc


if __name__ == "__main__":
    sys.exit(main())
