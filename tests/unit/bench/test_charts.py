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
