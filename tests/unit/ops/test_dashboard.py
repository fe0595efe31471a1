"""contrib/grafana/rlb.json, the Grafana dashboard of the metrics endpoint: valid JSON with
panels, importable (the datasource an input), and every metric name its queries use is
one rlb exports (rlb/ops/metrics.py) or prometheus_client's ProcessCollector's; counters
are rated, over $__rate_interval; promtool parses every query and computes the ratios
whose vector matching is easy to get wrong."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import ProcessCollector

from rlb.ops import metrics

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "contrib" / "grafana" / "rlb.json"
PROMTOOL = shutil.which("promtool")
METRIC = re.compile(r"\brlb_[a-z0-9_]+")
PROCESS = re.compile(r"\bprocess_[a-z0-9_]+")
CONFIG = """\
dataplane
 port dpdk0 net_tap0
!
dpip addr add 10.0.0.1/24 dev dpdk0
dpip addr add 10.0.0.200/32 dev dpdk0 sapool
ipvsadm -A -t 10.0.1.1:80 -s rr
ipvsadm -a -t 10.0.1.1:80 -r 10.0.0.5:80 -b
ipvsadm --add-laddr -z 10.0.0.200 -t 10.0.1.1:80 -F dpdk0
ipvsadm -A -t 10.0.1.2:80 -s rr
ipvsadm -a -t 10.0.1.2:80 -r 10.0.0.6:80 -g
"""


class _Announcer:                   # what the exporter reads of the daemon's parts
    @staticmethod
    def view():
        return [{"vip": "10.0.1.1", "dev": "dpdk0", "state": "announced"}]


class _Keepalived:
    @staticmethod
    def view():
        return {"instances": [{"name": "VI_1", "state": "MASTER", "priority": 100}]}


class _Syncer:
    @staticmethod
    def view():
        return {"state": "up"}


def exported_names() -> set[str]:
    """The names on a page rlb's exporter writes (Exporter.page, prometheus_client's
    parser reads it): a model with an FNAT and a DR service, on the tests' fake engine
    (counters read as zero), its announcer, keepalived and sync giving one row each."""
    from prometheus_client.parser import text_string_to_metric_families
    from rlb.control.config import check
    from support.engine import FakeEngine
    model = check(list(enumerate(CONFIG.splitlines(), 1)), "dashboard")
    model.attach(FakeEngine())
    model.announcer, model.keepalived, model.syncer = _Announcer(), _Keepalived(), _Syncer()
    model.ha.sync = object()
    page = metrics.Exporter(model, "t", "0").page().decode()
    return {s.name for fam in text_string_to_metric_families(page) for s in fam.samples}


EXPORTED = exported_names()


def process_names() -> set[str]:
    """The sample names of prometheus_client's ProcessCollector (read from /proc)."""
    return {s.name for fam in ProcessCollector(registry=None).collect() for s in fam.samples}


def unknown(expr: str) -> set[str]:
    """The rlb_ and process_ names of a query that rlb does not export."""
    return (set(METRIC.findall(expr)) - EXPORTED) | (set(PROCESS.findall(expr))
                                                    - process_names())


def load() -> dict:
    return json.loads(DASHBOARD.read_text())


def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))


def queries(dash) -> list[str]:
    """Every PromQL text: the panels' targets and the template variables' queries."""
    out = [t["expr"] for p in walk(dash["panels"]) for t in p.get("targets", [])]
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]
            out.append(q["query"] if isinstance(q, dict) else q)
    return out


def test_the_page_has_every_family():
    assert {"rlb_info", "rlb_commits_total", "rlb_port_receive_packets_total",
            "rlb_port_probe_packets_total", "rlb_drops_total", "rlb_punts_total",
            "rlb_mbuf_pool_in_use", "rlb_worker_seconds_total", "rlb_tsc_hertz",
            "rlb_connections", "rlb_connections_capacity",
            "rlb_connections_new_total", "rlb_sync_events_total",
            "rlb_vrrp_master", "rlb_service_connections_total",
            "rlb_service_real_servers", "rlb_real_server_in_pool",
            "rlb_real_server_passive_checks_total", "rlb_connections_by_mode",
            "rlb_local_address_ports_free", "rlb_local_address_port_misses_total"} <= EXPORTED
    assert len([n for n in EXPORTED if n.startswith("rlb_port_")]) == len(metrics.PORT_NAMES)
    assert len([n for n in EXPORTED if n.startswith("rlb_real_server_")]) == 9
    assert not any(n.endswith("_total_total") for n in EXPORTED)
    assert "process_cpu_seconds_total" in EXPORTED


def test_it_is_a_dashboard_grafana_imports():
    dash = load()
    assert dash["title"] and dash["uid"] and 36 <= dash["schemaVersion"] <= 39
    assert [i["name"] for i in dash["__inputs"]] == ["DS_PROMETHEUS"]
    panels = list(walk(dash["panels"]))
    shown = [p for p in panels if p["type"] != "row"]
    assert len(shown) >= 30
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for p in shown:
        assert p["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, p["title"]
        assert p["targets"] and all(t["expr"] for t in p["targets"]), p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
    rows = {p["title"].split(" (")[0] for p in panels if p["type"] == "row"}
    assert {"Overview", "Ports", "Workers", "Services", "Real servers", "Local addresses",
            "HA and routing", "Process and scrape"} <= rows
    var = {v["name"]: v for v in dash["templating"]["list"]}
    assert {"DS_PROMETHEUS", "job", "instance", "service"} <= set(var)
    assert var["service"]["multi"] and var["service"]["includeAll"]
    assert "label_values(rlb_info" in var["instance"]["definition"]


def test_every_metric_the_dashboard_uses_is_exported():
    used = {n for q in queries(load()) for n in METRIC.findall(q)}
    assert len(used) >= 40                          # most of the families are drawn
    assert used - EXPORTED == set()
    assert {n for q in queries(load()) for n in PROCESS.findall(q)} - process_names() == set()


def test_an_unexported_name_is_caught():
    """The check above is not vacuous: a name rlb does not write, or one a _total short
    or long, or a process_ name the collector lacks, is reported."""
    assert unknown('rate(rlb_port_rx_packets_total{device="dpdk0"}[5m])') == {
        "rlb_port_rx_packets_total"}
    assert unknown("rate(rlb_drops[1m]) + rlb_connections_total") == {
        "rlb_drops", "rlb_connections_total"}
    assert unknown("process_cpu_seconds + process_resident_memory_bytes") == {
        "process_cpu_seconds"}
    assert unknown('rlb_connections_capacity - sum(rlb_connections{worker="0"})') == set()


def test_counters_are_rated_over_the_rate_interval():
    for q in queries(load()):
        for fn, name in re.findall(r"\b(rate|irate|increase)\(\s*([a-z_:][a-z0-9_:]*)", q):
            assert name.endswith("_total"), q
        for window in re.findall(r"\[([^\]]+)\]", q):
            assert window in ("$__rate_interval", "$__range"), q


def _promql(expr: str) -> str:
    """A query as Prometheus gets it from Grafana (variables at All)."""
    for var, value in (("$__rate_interval", "2m"), ("$__range", "1h"), ("$job", ".+"),
                       ("$instance", ".+"), ("$service", ".+")):
        expr = expr.replace(var, value)
    return expr


def _promtool(tmp_path, *args, doc) -> subprocess.CompletedProcess:
    path = tmp_path / "promtool.json"             # YAML reads JSON
    path.write_text(json.dumps(doc))
    return subprocess.run([PROMTOOL, *args, str(path)], capture_output=True, text=True)


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed")
def test_promtool_parses_every_query(tmp_path):
    def rules(exprs):
        return {"groups": [{"name": "dashboard", "rules": [
            {"record": f"q{k}", "expr": _promql(e)} for k, e in enumerate(exprs)]}]}
    panel_queries = [q for q in queries(load()) if not q.startswith("label_values(")]
    r = _promtool(tmp_path, "check", "rules", doc=rules(panel_queries))
    assert r.returncode == 0, r.stdout + r.stderr
    r = _promtool(tmp_path, "check", "rules", doc=rules(["rate(rlb_drops_total)"]))
    assert r.returncode != 0                         # it does catch a broken one


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed")
def test_the_ratios_match_their_vectors(tmp_path):
    """Busy share, cycles per packet (rlb_tsc_hertz has no worker label, the seconds a
    state label the packets lack), table use and in-pool share give a value, the right
    one, on series shaped as the endpoint writes them."""
    by_title = {p["title"]: [t["expr"] for t in p.get("targets", [])]
                for p in walk(load()["panels"])}
    lb = 'job="rlb",instance="lb1:9617"'
    svc = f'{lb},service="TCP 10.0.0.100:80"'
    series = {                                       # a minute apart
        f'rlb_worker_seconds_total{{{lb},worker="0",state="busy"}}': "0+30x10",
        f'rlb_worker_seconds_total{{{lb},worker="0",state="idle"}}': "0+90x10",
        f'rlb_tsc_hertz{{{lb}}}': "2000000000x10",
        f'rlb_worker_received_packets_total{{{lb},worker="0"}}': "0+60000000x10",
        f'rlb_connections{{{lb},worker="0"}}': "300x10",
        f'rlb_connections{{{lb},worker="1"}}': "200x10",
        f'rlb_connections_capacity{{{lb}}}': "1000x10",
        f'rlb_service_real_servers{{{svc},state="configured"}}': "4x10",
        f'rlb_service_real_servers{{{svc},state="in_pool"}}': "3x10",
    }
    worker = f'{{{lb},worker="0"}}'
    checks = [
        (by_title["Busy share per worker"][0], worker, 0.25),
        (by_title["Cycles per packet"][0], worker, 0.5 * 2e9 / 1e6),
        (by_title["Connection table use"][0], f"{{{lb}}}", 0.5),
        (by_title["Real servers configured vs in pool"][2],
         '{instance="lb1:9617",service="TCP 10.0.0.100:80"}', 0.75),
    ]
    doc = {"rule_files": [], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in series.items()],
        "promql_expr_test": [{"expr": _promql(e), "eval_time": "5m",
                              "exp_samples": [{"labels": labels, "value": value}]}
                             for e, labels, value in checks]}]}
    r = _promtool(tmp_path, "test", "rules", doc=doc)
    assert r.returncode == 0, r.stdout + r.stderr
