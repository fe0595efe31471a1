"""bench/charts.py: a PNG per measured quantity of each benchmark result with repeated
runs (the JSON shapes the benches write, built here small), none for the results without,
a one-line error for a shape it does not know, and bench/common.py's results step that
draws and links them, or says in one line why not."""
import importlib.util
import json
import struct
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "bench"))

import charts  # noqa: E402
import common  # noqa: E402

HAVE_MPL = importlib.util.find_spec("matplotlib") is not None
needs_mpl = pytest.mark.skipif(
    not HAVE_MPL, reason="matplotlib not installed: `make setup` installs it (pyproject.toml's "
                         "test and bench extras)")
STARTED = "2026-12-07T10:16:35"


def fwd_summary(names_runs: dict) -> dict:
    """forward.summarize()'s shape (forward.py, modes.py's pps part)."""
    out = {}
    for name, runs in names_runs.items():
        out[name] = ({"runs": 0} if not runs else
                     {"runs": len(runs), "rx_pps_median": sorted(runs)[len(runs) // 2],
                      "rx_pps_all": runs, "noisy_runs_used": 0, "median_run": 1,
                      "well_formed_pct_min": 100.0, "runs_done": len(runs),
                      "offered_pps_median": 1.2e6, "delivered_pct_median": 80.0,
                      "bottleneck": "..."})
    return {"forwarders": out, "ratios": {}}


def summary_of_tests(peers: dict) -> dict:
    """fnat_report.summarize()'s per-peer part, also modes.summarize()'s."""
    return {name: {"runs": 3, "noisy_runs_used": 0, **{
        test: {"median": sorted(v)[len(v) // 2] if v else None, "all": v, "errors": 0,
               "failed": 0} for test, v in tests.items()}} for name, tests in peers.items()}


def cycles_kinds(kinds: dict) -> dict:
    """cycles.summarize()'s shape: per kind per peer its rows (a failed row: no runs)."""
    out = {}
    for kind, peers in kinds.items():
        rows = {}
        for peer, cpp in peers.items():
            if not cpp:
                rows[peer] = {"runs": 0, "failed": 2}
                continue
            med = sorted(cpp)[len(cpp) // 2]
            rows[peer] = {"runs": len(cpp), "failed": 0, "noisy_used": False,
                          "cycles_all": cpp, "cycles_median": med, "cycles_min": min(cpp),
                          "cycles_max": max(cpp), "raw_all": [c * 1.02 for c in cpp],
                          "raw_median": med * 1.02, "on_cpu_min": 0.98,
                          "pps_all": [2.4e9 / c for c in cpp], "pps_median": 2.4e9 / med,
                          "forwarded_min": 1.0, "busy_share_min": 1.0, "reasons": {},
                          "vs_cfwd": 2.5, "above_cfwd": 200.0}
        out[kind] = rows
    return out


def metrics_size(services: int, scale: float, control: bool = False) -> dict:
    """One of metrics.py's sizes: the runs and their stats, the control windows at the last."""
    runs = {"get_ms": [4.2 * scale, 4.0 * scale, 4.9 * scale],
            "get_gzip_ms": [4.1 * scale, 5.3 * scale, 4.0 * scale],
            "last_ms": [2.3 * scale, 2.2 * scale, 2.8 * scale],
            "last_gzip_ms": [2.0 * scale, 3.0 * scale, 2.1 * scale],
            "ref_build_ms": [40.2 * scale, 41.5 * scale, 38.6 * scale],
            "ref_write_ms": [19.6 * scale, 15.3 * scale, 15.6 * scale]}
    out = {"services": services, "per_service": 16, "real_servers": services * 16,
           "daemon_start_s": 1.2, "settle_s": 0.5, "series": 2287, "reference_samples": 2287,
           "runs_ms": runs, "bytes": 253267, "gzip_bytes": 13388, "ref_bytes": 253000,
           "show_metrics": {"ok": True, "last_ms": 2.3 * scale},
           "ratio_ref_build_to_rlb": 8.8, "ratio_ref_write_to_rlb": 7.0, "daemon_stop": 0,
           **{k: {"n": 3, "min": min(v), "median": sorted(v)[1], "max": max(v)}
              for k, v in runs.items()}}
    if control:
        def window(p99_version, p99_metrics, **extra):
            return {"seconds": 10.0, "calls": 900, "slow_calls": [[1.2, 21.0]],
                    "rtt_ms": {"show version": {"n": 450, "p50": 4.5, "p99": p99_version,
                                                "max": 103.7},
                               "show metrics": {"n": 450, "p50": 0.8, "p99": p99_metrics,
                                                "max": 158.2}},
                    "daemon_cpu_pct": 12.0, "daemon_cpu_ms": 1200.0,
                    "worker_polls_per_s": 9000, "worker_idle_sleeps_per_s": 9000,
                    "drops": 0, "drops_by_reason": {}, **extra}
        out["control"] = {"quiet": window(14.9, 7.6),
                          "scraping": window(74.7, 92.1, scrapes=50, threads=[["rlbd", "0-1"]],
                                             scrape_ms={"n": 50, "min": 337.1,
                                                        "median": 441.8, "max": 639.2},
                                             daemon_cpu_ms_per_scrape=210.0)}
    return out


METRICS = {"bench": "metrics", "started": STARTED, "host": "vm", "kernel": "6.1.0-99-amd64",
           "cpus": 2, "prometheus_client": "0.26.0",
           "options": {"runs": 3, "per_service": 16, "laddrs": 4, "pace": 10.0},
           "sizes": [metrics_size(10, 1), metrics_size(100, 8),
                     metrics_size(1000, 90, control=True)],
           "seconds": 120.0,
           "goal": {"ms": 100.0, "services": 1000, "get_ms": 378.0, "get_gzip_ms": 369.0,
                    "met": False}}

SHAPES = {
    "forward": ({"started": STARTED, "kernel": "6.1.0-99-amd64", "results": [],
                 "options": {}, "generator": "bench/cgen", "logs": "/tmp/x",
                 "summary": fwd_summary({"rlb": [1.31e6, 1.29e6, 1.35e6],
                                         "cfwd": [1.4e6, 1.41e6, 1.38e6],
                                         "kernel": [6.1e5, 6.0e5, 6.3e5],
                                         "kernel-rps": []})},
                ["pps"]),
    "fnat": ({"started": STARTED, "kernel": "6.1.0-99-amd64", "results": [], "options": {},
              "logs": "/tmp/x", "lb_configs": {"rlb": "..."},
              "summary": {"peers": summary_of_tests({
                  "rlb": {"cps": [31e3, 33e3, 29e3], "ka": [120e3, 118e3, 125e3],
                          "iperf": [2.81, 2.7, 2.9]},
                  "rlb-lips16": {"cps": [34e3, 35e3, 33e3], "ka": [121e3, 119e3, 123e3],
                                 "iperf": [2.8, 2.75, 2.85]},
                  "nft": {"cps": [25e3, 26e3, 24e3], "ka": [90e3, 95e3, 92e3],
                          "iperf": [3.1, 3.0, 3.2]},
                  "haproxy": {"cps": [9e3, 9.5e3], "ka": [40e3, 41e3], "iperf": [1.9, 2.0]},
                  "kernel": {"cps": [40e3, 41e3, 39e3], "ka": [150e3, 149e3, 152e3],
                             "iperf": [4.0, 4.2, 4.1]}}),
                  "ratios": {}}},
             ["cps", "reqs", "gbps"]),
    "modes": ({"started": STARTED, "kernel": "6.1.0-99-amd64", "results": [], "options": {},
               "logs": "/tmp/x", "lb_configs": {"fnat": "..."},
               "summary": summary_of_tests({
                   "fnat": {"iperf": [0.02, 0.01, 0.003], "cps": [30e3, 31e3, 29e3]},
                   "dr": {"iperf": [3.5, 3.7, 3.6], "cps": [35e3, 36e3, 34e3]},
                   "kernel": {"iperf": [4.0, 4.1, 4.2], "cps": [40e3, 39e3, 41e3]}}),
               "pps_results": [],
               "pps_summary": fwd_summary({"rlb-dr": [1.1e6, 1.2e6, 1.15e6],
                                           "rlb-tunnel": [9e5, 9.5e5, 9.2e5],
                                           "cfwd": [1.4e6, 1.38e6, 1.41e6]})},
              ["cps", "gbps", "pps"]),
    "health": ({"started": STARTED, "options": {"pps_runs": 3}, "errors": [], "wall_s": 250.0,
                "detection": [{"server": "10.20.0.5:20582", "seconds": 1.3}],
                "phases": {"off": {"pps": {"rx_pps": 318733.3, "runs": [318733, 326062, 296864]},
                                   "commit": {"commit_ms": 9086.5, "runs": 3}},
                           "on": {"cpu": {"main_pct": 37.9},
                                  "pps": {"rx_pps": 209779.7, "runs": [209780, 226300, 166600]}},
                           "off2": {"pps": {"rx_pps": 282602.6, "runs": [282603, 305900, 271900]}}}},
               ["pps"]),
    "commit": ([{"services": s, "dests": d, "lines": 300, "render": 1.0, "configure": 2.0,
                 "commit": 3.0, "load": 4.0, "ipvsadm_e": 0.5,
                 "runs_ms": {"render": [1.0, 1.1, 0.9], "configure": [2.0, 2.2, 1.9],
                             "commit": [3.0 * s / 16, 3.3 * s / 16, 2.9 * s / 16],
                             "load": [4.0, 4.4, 3.9], "ipvsadm_e": [0.5, 0.6, 0.45]}}
                for s, d in ((16, 16), (64, 64), (256, 16))],
               ["render", "configure", "commit", "load", "ipvsadm-e"]),
    "cycles": ({"bench": "cycles", "started": "2026-12-07 18:28:45", "kernel": "6.1.0-99-amd64",
                "options": {"modes": ["fnat", "dr", "snat"], "kinds": ["est", "new", "again"],
                            "runs": 3, "new_flows": 300000, "nokni": ["fnat"]},
                "cpu_model": "AMD EPYC", "rlb_configs": {"fnat-est": "..."},
                "tsc_hz_source": "rlb worker counters", "tsc_hz": 2436038054.0,
                "cpuinfo_mhz": 2445.4, "elapsed_s": 258.3, "results": [],
                "summary": {"kinds": cycles_kinds({
                    "est": {"cfwd": [113.6, 109.2, 113.0], "fnat": [328.2, 307.1, 317.0],
                            "dr": [223.2], "snat": [], "fnat-nokni": [351.2, 325.4]},
                    "new": {"cfwd": [190.3, 209.0], "fnat": [1371.1, 1200.5, 1290.0],
                            "dr": [849.0, 900.1], "snat": [1516.8]},
                    "again": {"cfwd": [190.3, 209.0], "fnat": [1038.5, 921.8],
                              "dr": [778.0, 728.9], "snat": [803.7, 1063.9, 719.6]}})}},
               ["est", "new", "again"]),
    "metrics": (METRICS, ["scrape", "control"]),
    "metrics-quick": ({**METRICS, "sizes": [metrics_size(1000, 40)]}, ["scrape"]),
}

NO_RUNS = {
    "failover": {"started": "2026-12-07 14:57:53.1", "cold": [],
                 "events": [{"event": "(a) ...", "requests": 352, "failed": 0}]},
    "conntable": {"started": STARTED, "options": {"conns": 100000}, "kernel": "6.1",
                  "logs": "/tmp/x", "result": {"syn": {"conns": 100000}}},
    "commit-old": [{"services": 16, "dests": 16, "lines": 300, "render": 1.0,
                    "configure": 2.0, "commit": 3.0, "load": 4.0, "ipvsadm_e": 0.5}],
}

UNKNOWN = {
    "list": [1, 2, 3],
    "dict": {"started": STARTED, "something": {"else": 1}},
    "number": 42,
}


def dump(tmp_path: Path, stem: str, data) -> str:
    path = tmp_path / f"{stem}.json"
    path.write_text(json.dumps(data))
    return str(path)


def assert_png(path: str) -> None:
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 600 and height >= 400, (path, width, height)
    assert data.rstrip(b"\0")[-8:-4] == b"IEND"


@needs_mpl
@pytest.mark.parametrize("bench", sorted(SHAPES))
def test_a_png_per_measured_quantity(tmp_path, bench):
    data, metrics = SHAPES[bench]
    path = dump(tmp_path, f"{bench}-20261207-101635", data)
    pngs = charts.write_charts(path)
    assert pngs == [str(tmp_path / f"{bench}-20261207-101635-{m}.png") for m in metrics]
    for png in pngs:
        assert_png(png)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [Path(path).name] + [Path(p).name for p in pngs])


def test_the_series_are_the_runs_of_each_peer(tmp_path):
    res = charts.read_result(dump(tmp_path, "fnat-x", SHAPES["fnat"][0]))
    assert (res.bench, res.started, res.machine) == ("fnat", STARTED, "6.1.0-99-amd64")
    cps = res.series[0]
    assert (cps.metric, cps.unit) == ("cps", "connections/s")
    assert list(cps.peers) == ["rlb", "rlb-lips16", "nft", "haproxy", "kernel"]
    assert cps.peers["haproxy"] == [9e3, 9.5e3]
    assert cps.ours == {"rlb", "rlb-lips16"}
    fwd = charts.read_result(dump(tmp_path, "forward-x", SHAPES["forward"][0])).series[0]
    assert fwd.peers["kernel-rps"] == [] and fwd.unit == "packets/s received"
    modes = charts.read_result(dump(tmp_path, "modes-x", SHAPES["modes"][0]))
    assert [s.unit for s in modes.series] == ["connections/s", "Gbit/s received",
                                              "packets/s received"]
    assert modes.series[0].ours == {"fnat", "dr"}


def test_cycles_per_kind_with_the_reference_lines_on_the_established_chart(tmp_path):
    res = charts.read_result(dump(tmp_path, "cycles-x", SHAPES["cycles"][0]))
    assert (res.bench, res.started, res.machine) == ("cycles", "2026-12-07 18:28:45",
                                                     "6.1.0-99-amd64")
    est, new, again = res.series
    assert list(est.peers) == ["cfwd", "fnat", "dr", "snat", "fnat-nokni"]
    assert est.peers["snat"] == [] and est.peers["dr"] == [223.2]
    assert est.ours == {"fnat", "dr", "snat", "fnat-nokni"}
    assert "lower is better" in est.unit
    assert est.refs == [(400.0, "rlb goal (established FNAT)"),
                        (760.0, "DPVS v1.9.2 (2.9 Mpps @ 2.2 GHz)")]
    assert new.refs == [] and again.refs == []
    assert "300,000" in new.title and "TSC 2.44 GHz" in est.note


def test_metrics_scrapes_grouped_per_size_and_the_control_socket(tmp_path):
    scrape, control = charts.read_result(dump(tmp_path, "metrics-x", METRICS)).series
    assert scrape.groups() == ["10 x 16", "100 x 16", "1,000 x 16"]
    assert [b.split(":")[0] for b in scrape.bars] == ["rlb", "rlb", "rlb", "reference"]
    ref = next(b for b in scrape.bars if b.startswith("reference"))
    assert scrape.bars[ref]["10 x 16"] == [40.2, 41.5, 38.6]
    assert scrape.log                      # the reference ~10x the rest: log scale
    assert scrape.refs == [(100.0, "goal at 1,000 x 16 (100 ms)")]
    assert control.groups() == ["show version", "show metrics"]
    assert control.bars == {"quiet": {"show version": [14.9], "show metrics": [7.6]},
                            "while scraping": {"show version": [74.7],
                                               "show metrics": [92.1]}}
    assert control.notes[("quiet", "show version")] == "p50 4.5, max 104"
    one = METRICS["sizes"][0]
    close = {**METRICS, "sizes": [{**one, "runs_ms": {**one["runs_ms"],
                                                      "ref_build_ms": [12.0, 11.0]}}]}
    (scrape,) = charts.read_result(dump(tmp_path, "metrics-y", close)).series
    assert not scrape.log and scrape.unit == "ms (lower is better)"
    # a real Prometheus's scrape_duration_seconds, when the bench ran one: a bar of its own
    prom = {**METRICS, "sizes": [{**one, "prometheus": {"scrapes": 3, "up": "1",
                                                        "runs_ms": [9.5, 8.1, 12.0]}}]}
    (scrape,) = charts.read_result(dump(tmp_path, "metrics-z", prom)).series
    assert scrape.bars[charts.METRICS_PROM] == {"10 x 16": [9.5, 8.1, 12.0]}
    assert charts.METRICS_PROM in scrape.ours
    if HAVE_MPL:
        assert_png(charts.write_charts(dump(tmp_path, "metrics-z", prom))[0])


@pytest.mark.parametrize("name", sorted(NO_RUNS))
def test_results_without_repeated_runs_get_no_chart(tmp_path, name):
    path = dump(tmp_path, name, NO_RUNS[name])
    assert charts.write_charts(path) == []
    assert charts.main([path]) == 0
    assert [p.name for p in tmp_path.iterdir()] == [f"{name}.json"]


@pytest.mark.parametrize("name", sorted(UNKNOWN))
def test_an_unknown_shape_is_one_line_and_exit_1(tmp_path, capsys, name):
    path = dump(tmp_path, name, UNKNOWN[name])
    with pytest.raises(charts.ChartError, match="not a result shape bench/charts.py knows"):
        charts.write_charts(path)
    assert charts.main([path]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(f"charts.py: {path}: not a result shape")
    assert "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir()] == [f"{name}.json"]


def test_a_known_shape_with_bad_values_and_unreadable_files(tmp_path, capsys):
    bad = json.loads(json.dumps(SHAPES["fnat"][0]))
    bad["summary"]["peers"]["rlb"]["cps"]["all"] = ["fast", "faster"]
    path = dump(tmp_path, "fnat-bad", bad)
    with pytest.raises(charts.ChartError, match="looks like a fnat.py result but is not one"):
        charts.write_charts(path)
    (tmp_path / "broken.json").write_text("{not json")
    missing = str(tmp_path / "missing.json")
    assert charts.main([path, str(tmp_path / "broken.json"), missing]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and "not JSON" in err[1] and "No such file" in err[2]
    assert not list(tmp_path.glob("*.png"))


@needs_mpl
def test_the_cli_links_the_charts_into_the_md_once(tmp_path, capsys):
    path = dump(tmp_path, "fnat-20261207-101635", SHAPES["fnat"][0])
    md = tmp_path / "fnat-20261207-101635.md"
    md.write_text("# FNAT\n\n| peer | cps |\n")
    assert charts.main([path]) == 0
    assert charts.main([path]) == 0          # again: the section is replaced, not added
    text = md.read_text()
    assert text.startswith("# FNAT\n\n| peer | cps |\n")
    assert text.count("## Charts") == 1
    for m in ("cps", "reqs", "gbps"):
        assert text.count(f"(fnat-20261207-101635-{m}.png)") == 1
    out = capsys.readouterr().out
    assert "charts linked" in out
    assert charts.main(["--no-md", path]) == 0 and md.read_text() == text


@needs_mpl
def test_the_bench_results_step_draws_and_links(tmp_path, capsys):
    data, metrics = SHAPES["forward"]
    path = common.write_results(str(tmp_path), "forward-20261207-101635", data, "# forward\n")
    md = Path(path + ".md").read_text()
    assert md.startswith("# forward\n")
    for m in metrics:
        assert f"![forward-20261207-101635-{m}](forward-20261207-101635-{m}.png)" in md
        assert_png(f"{path}-{m}.png")
    assert "charts: forward-20261207-101635-pps.png" in capsys.readouterr().err


def test_without_matplotlib_the_bench_still_writes_its_results(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)      # import matplotlib: ImportError
    path = common.write_results(str(tmp_path), "fnat-x", SHAPES["fnat"][0], "# fnat\n")
    assert Path(path + ".md").read_text() == "# fnat\n"
    assert json.loads(Path(path + ".json").read_text())["started"] == STARTED
    assert not list(tmp_path.glob("*.png"))
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith(
        "charts skipped: matplotlib not installed (make setup installs the pinned one: "
        "pyproject's bench extra)")
    # a result without runs needs no matplotlib and says nothing
    common.write_results(str(tmp_path), "failover", NO_RUNS["failover"], "# failover\n")
    assert capsys.readouterr().err == ""
    assert charts.main([dump(tmp_path, "fnat-y", SHAPES["fnat"][0])]) == 1
    assert capsys.readouterr().err.startswith("charts.py: matplotlib not installed")


def test_an_unknown_shape_does_not_fail_the_bench(tmp_path, capsys):
    path = common.write_results(str(tmp_path), "new-x", UNKNOWN["dict"], "# new\n")
    assert Path(path + ".md").read_text() == "# new\n"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "charts skipped:" in err[0] and "not a result shape" in err[0]
