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
size and operation), cycles.py (cycles per packet per peer: established, new flows,
existing flows; lines at rlb's goal and DPVS's figure), metrics.py (scrape ms per table
size, grouped: rlb's GET, GET gzip, its own page time, prometheus_client's reference; and
the control socket's p99 quiet vs while scraping, one window each). conntable.py and
failover.py measure single events: no charts.
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
    # grouped bars instead of `peers`: per bar (the legend) per group (the x axis) its runs
    bars: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    refs: list[tuple[float, str]] = field(default_factory=list)   # dashed lines: value, label
    log: bool = False                    # log scale y
    note: str = ""                       # added to the subtitle (machine, versions)
    notes: dict[tuple[str, str], str] = field(default_factory=dict)  # (bar, group): text
    footer: str = ""                     # what a bar is, when not the median of runs

    def has_runs(self) -> bool:
        return any(self.peers.values()) or any(any(g.values()) for g in self.bars.values())

    def groups(self) -> list[str]:
        """The x axis of grouped bars: each bar's groups, in their first order."""
        return list(dict.fromkeys(g for per in self.bars.values() for g in per))


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


# cycles.py's GOAL_CYCLES and DPVS_CYCLES (not imported: cycles.py needs the lab's modules)
CYCLES_REFS = ((400.0, "rlb goal (established FNAT)"),
               (760.0, "DPVS v1.9.2 (2.9 Mpps @ 2.2 GHz)"))
CYCLES_KINDS = {"est": "an established flow (one TCP flow, SYN + 4095 data segments, replayed)",
                "new": "new flows ({n} distinct SYNs, each one a new connection)",
                "again": "existing flows (the {n} SYNs again, each finds its connection; "
                         "cfwd: its new-flows runs)"}


def _cycles(d: dict) -> list[Series]:
    n = (d.get("options") or {}).get("new_flows")
    n = f"{n:,}" if isinstance(n, int) else "the"
    note = ", ".join(x for x in (d.get("cpu_model"), f"TSC {d['tsc_hz'] / 1e9:.2f} GHz"
                                 if isinstance(d.get("tsc_hz"), (int, float)) else "") if x)
    out = []
    for kind, rows in d["summary"]["kinds"].items():
        if not isinstance(rows, dict):
            raise TypeError(f"{kind}: not an object")
        peers = {peer: _nums(row.get("cycles_all", [])) if row.get("runs") else []
                 for peer, row in rows.items()}
        if any(peers.values()):
            out.append(Series(kind, CYCLES_KINDS.get(kind, kind).format(n=n),
                              "cycles per packet (lower is better)", peers, 0,
                              {p for p in peers if p != "cfwd"},
                              "peer: cfwd (a bare DPDK loop: the floor of these ports), "
                              "rlb in each mode", refs=list(CYCLES_REFS) if kind == "est"
                              else [], note=note))
    return out


METRICS_PROM = "rlb: scraped by Prometheus (its scrape_duration_seconds)"
# (runs_ms key, bar); "prometheus" is not in runs_ms: the size's own key, its place here
METRICS_BARS = (("get_ms", "rlb: HTTP GET"), ("get_gzip_ms", "rlb: HTTP GET, gzip"),
                ("prometheus", METRICS_PROM),
                ("last_ms", "rlb: its own time for the page (show metrics)"),
                ("ref_build_ms", "reference: prometheus_client (collector + generate_latest)"))
METRICS_GOAL = 100.0                     # metrics.py's GOAL_MS


def _metrics(d: dict) -> list[Series]:
    bars: dict[str, dict[str, list[float]]] = {label: {} for _, label in METRICS_BARS}
    control = None
    for r in d["sizes"]:
        size = f"{r['services']:,} x {r['per_service']}"
        runs = r.get("runs_ms") or {}
        for key, label in METRICS_BARS:
            if key in runs:
                bars[label][size] = _nums(runs[key])
        prom = r.get("prometheus")          # a real Prometheus's scrapes, when it ran
        if isinstance(prom, dict) and isinstance(prom.get("runs_ms"), list):
            try:
                bars[METRICS_PROM][size] = _nums(prom["runs_ms"])
            except TypeError:
                pass
        if r.get("control"):
            control = (size, r["control"])
    bars = {label: per for label, per in bars.items() if per}
    note = f"prometheus_client {d['prometheus_client']}" if d.get("prometheus_client") else ""
    out = []
    if any(any(per.values()) for per in bars.values()):
        ref = [statistics.median(v) for label, per in bars.items() if label.startswith("ref")
               for v in per.values() if v]
        rest = [statistics.median(v) for label, per in bars.items()
                if not label.startswith("ref") for v in per.values() if v]
        log = bool(ref and rest) and max(ref) >= 5 * max(rest)
        goal = float((d.get("goal") or {}).get("ms") or METRICS_GOAL)
        out.append(Series("scrape", "a scrape of /metrics per table size, and "
                          "prometheus_client writing the same samples",
                          "ms (lower is better" + (", log scale)" if log else ")"), {},
                          ours={label for label in bars if label.startswith("rlb")},
                          xlabel="services x real servers each", bars=bars,
                          refs=[(goal, f"goal at 1,000 x 16 ({goal:g} ms)")], log=log,
                          note=note))
    if control:
        size, c = control
        windows = (("quiet", "quiet"), ("scraping", "while scraping"))
        cbars: dict[str, dict[str, list[float]]] = {}
        notes = {}
        for key, label in windows:
            for cmd, st in ((c.get(key) or {}).get("rtt_ms") or {}).items():
                cbars.setdefault(label, {})[cmd] = _nums([st["p99"]])
                notes[(label, cmd)] = f"p50 {fmt(st['p50'], None)}, max {fmt(st['max'], None)}"
        scrapes = (c.get("scraping") or {}).get("scrapes")
        if cbars:
            out.append(Series("control", f"control socket round trips at {size}, quiet and "
                              "while a client scrapes back to back"
                              + (f" ({scrapes} scrapes)" if scrapes else ""),
                              "ms, p99 of the window's round trips (lower is better)", {},
                              ours={"while scraping"}, xlabel="command (one control session, the "
                              "two in turn)", bars=cbars, notes=notes, note=note,
                              footer="bar: p99 of one window's round trips, written below "
                                     "it: their p50 and max"))
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
    ("cycles", "cycles per packet on in-memory ports",
     lambda d: isinstance(d.get("summary"), dict) and isinstance(d["summary"].get("kinds"), dict),
     _cycles),
    ("metrics", "the Prometheus endpoint's cost",
     lambda d: isinstance(d.get("sizes"), list) and "prometheus_client" in d, _metrics),
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


OURS_COLORS = ("tab:blue", "#9ecae1", "#08519c", "#4292c6")
OTHER_COLORS = ("tab:gray", "#c7c7c7", "#525252")
REF_COLORS = ("tab:red", "tab:purple", "tab:orange")


def _whisker_bar(ax, x: float, runs: list[float], width: float, color: str, big: bool) -> None:
    """A bar at the median of `runs`, whiskers from the lowest to the highest, a dot each."""
    med, lo, hi = statistics.median(runs), min(runs), max(runs)
    ax.bar(x, med, width=width, color=color, alpha=0.85, zorder=2)
    if big or len(runs) > 1:           # (one value of a window: bar alone)
        ax.errorbar(x, med, yerr=[[med - lo], [hi - med]], fmt="none", ecolor="black",
                    elinewidth=1.2 if big else 1.0, capsize=6 if big else 3, zorder=3)
    if big or len(runs) > 1:
        ax.scatter([x] * len(runs), runs, s=12 if big else 8, color="black", alpha=0.6,
                   zorder=4)


def _draw_peers(ax, s: Series, top: float) -> list[str]:
    """One bar per peer (its median, range and number of runs written above): the x labels."""
    names = list(s.peers)
    for i, name in enumerate(names):
        runs = s.peers[name]
        if not runs:
            ax.text(i, top * 0.02, "no run", ha="center", va="bottom", color="tab:red",
                    fontsize=9)
            continue
        med, lo, hi = statistics.median(runs), min(runs), max(runs)
        _whisker_bar(ax, i, runs, 0.6, "tab:blue" if name in s.ours else "tab:gray", True)
        ax.annotate(fmt(med, s.decimals), (i, hi), xytext=(0, 12), textcoords="offset points",
                    ha="center", va="bottom", fontsize=10, fontweight="bold")
        if len(runs) > 1:
            ax.annotate(f"{fmt(lo, s.decimals)} - {fmt(hi, s.decimals)} ({len(runs)} runs)",
                        (i, hi), xytext=(0, 3), textcoords="offset points", ha="center",
                        va="bottom", fontsize=7, color="dimgray")
        else:
            ax.annotate("1 run", (i, hi), xytext=(0, 3), textcoords="offset points",
                        ha="center", va="bottom", fontsize=7, color="dimgray")
    return names


def _draw_grouped(ax, s: Series, bottom: float) -> list[str]:
    """Per group (x) a bar per series of s.bars side by side, the median written above each
    (and its note, if any), a legend of the bars: the x labels."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    groups = s.groups()
    n = len(s.bars)
    bw = 0.8 / n
    colors, handles = {}, []
    ours = iter(OURS_COLORS * 3)
    others = iter(OTHER_COLORS * 3)
    for label in s.bars:
        colors[label] = next(ours) if label in s.ours else next(others)
        handles.append(Patch(color=colors[label], alpha=0.85, label=label))
    for j, (label, per) in enumerate(s.bars.items()):
        for i, group in enumerate(groups):
            x = i + (j - (n - 1) / 2) * bw
            runs = per.get(group) or []
            if not runs:
                ax.text(x, bottom, "no run", ha="center", va="bottom", color="tab:red",
                        fontsize=7, rotation=90)
                continue
            _whisker_bar(ax, x, runs, bw * 0.92, colors[label], False)
            note = s.notes.get((label, group))
            ax.annotate(fmt(statistics.median(runs), s.decimals), (x, max(runs)),
                        xytext=(0, 12 if note else 3), textcoords="offset points",
                        ha="center", va="bottom", fontsize=8, fontweight="bold")
            if note:
                ax.annotate(note.replace(", ", "\n") if bw < 0.3 else note, (x, max(runs)),
                            xytext=(0, 3), textcoords="offset points", ha="center",
                            va="bottom", fontsize=6.5, color="dimgray")
    for (value, label), color in zip(s.refs, REF_COLORS * 3):
        handles.append(Line2D([], [], linestyle="--", linewidth=1.2, color=color, label=label))
    ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.9)
    return groups


def draw(res: Result, s: Series, png: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, NullFormatter
    from matplotlib.transforms import blended_transform_factory

    if s.bars:
        values = [v for per in s.bars.values() for runs in per.values() for v in runs]
        width = max(6.4, len(s.groups()) * (0.6 * len(s.bars) + 0.5) + 2.5)
    else:
        values = [v for runs in s.peers.values() for v in runs]
        width = max(6.4, 1.25 * len(s.peers) + 2.5)
    values += [v for v, _ in s.refs]
    fig = Figure(figsize=(width, 4.8 if not s.bars else 5.4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    top = max(values, default=1.0) or 1.0
    if s.log:
        import math
        ax.set_yscale("log")
        low = min((v for v in values if v > 0), default=1.0)
        bottom = 10 ** math.floor(math.log10(low))
        span = math.log10(top) - math.log10(bottom)
        top_lim = 10 ** (math.log10(top) + 0.3 * span)
    else:
        bottom, top_lim = 0.0, top * (1.3 if s.bars else 1.2)
    names = _draw_grouped(ax, s, bottom) if s.bars else _draw_peers(ax, s, top)
    blend = blended_transform_factory(ax.transAxes, ax.transData)
    for (value, label), color in zip(s.refs, REF_COLORS * 3):
        ax.axhline(value, linestyle="--", linewidth=1.2, color=color, zorder=1.5)
        if s.bars:                       # grouped: in the legend
            continue
        ax.text(0.005, value, label, transform=blend, ha="left", va="bottom", fontsize=8,
                color=color, zorder=6,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.75, "pad": 1})
    rotate = len(names) > 5
    ax.set_xticks(range(len(names)), names, rotation=20 if rotate else 0,
                  ha="right" if rotate else "center")
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylim(bottom, top_lim)
    ax.set_ylabel(s.unit)
    ax.set_xlabel(s.xlabel)
    ax.yaxis.set_major_formatter(FuncFormatter(tick))
    if s.log:
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.grid(axis="y", alpha=0.3, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    chars = int(width * 12)              # what a line of the title holds at this size
    ax.set_title(textwrap.fill(f"{res.bench}.py, {res.title}: {s.title}", chars) + "\n",
                 fontsize=11, loc="left")
    sub = " | ".join(x for x in (_subtitle(res), s.note) if x)
    ax.text(0, 1.02, textwrap.shorten(sub, int(chars * 1.35)),
            transform=ax.transAxes, fontsize=8, color="dimgray")
    if s.footer:
        foot = s.footer
    else:
        labels = list(s.bars) or names
        ours = "blue: rlb, grey: the others; " if (
            not s.bars and s.ours and set(labels) - s.ours) else ""
        foot = (f"{ours}bar: median of the runs, whiskers: lowest to highest run, "
                "dots: each run")
    fig.supxlabel(foot, fontsize=8, color="dimgray")
    fig.savefig(png)


def write_charts(json_path: str) -> list[str]:
    """PNGs of the result `json_path`, next to it (<stem>-<metric>.png): their paths, [] for
    a result without repeated runs. ChartError: not a result known here; ImportError: no
    matplotlib (only raised when there is something to draw)."""
    res = read_result(json_path)
    series = [s for s in res.series if s.has_runs()]
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
