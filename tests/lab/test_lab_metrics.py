"""Prometheus metrics in the lab (issue 14): the tutorial's "simple FNAT two-arm" with
`metrics listen 127.0.0.1 PORT` committed on the LB (its namespace's loopback) and a real
Prometheus server running beside the daemon in that namespace, scraping it every second.
curl through the VIP N times, each a new connection: the service's and its real servers'
counters on the page move by exactly N (rr: both real servers take some), packets and
bytes grow, the figures agree with ipvsadm's; the page passes promtool; Prometheus scrapes
it without an error and its query API gives back the same values."""
import json
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from rlb import lab
from rlb.lab.topologies import get, ns_name
from support.netns import in_netns

TOPO = get("fnat-two-arm")
LB_NS = ns_name(TOPO.lb)                # the daemon runs in the LB node's namespace
VIP = TOPO.vip
RS = ("192.168.100.2", "192.168.100.3")
WORKERS = 2                             # the counters are summed over the workers
METRICS = ("127.0.0.1", 9617)           # in LB_NS: nothing in the host's namespace
PROM = ("127.0.0.1", 9090)
N = 20
TUTORIAL_PORT, NGINX_PORT = 80, 8080    # the tutorial's service (rs_app) and nginx's
RLB = [sys.executable, "-m", "rlb", "-N", "lb"]
# no proxy from the environment between the test and the namespace's loopback
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def rlb(*cmds, as_json=False):
    args = RLB + (["--json"] if as_json else [])
    for c in cmds:
        args += ["-c", c]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{cmds}: {r.stdout}{r.stderr}"
    return json.loads(r.stdout) if as_json else r.stdout


def http(host_port, path, timeout=5):
    """GET http://HOST:PORT/PATH as LB_NS sees it (its loopback)."""
    with in_netns(LB_NS):
        with OPENER.open(f"http://{host_port[0]}:{host_port[1]}{path}", timeout=timeout) as r:
            assert r.status == 200
            return r.read()


def scrape() -> bytes:
    return http(METRICS, "/metrics", timeout=10)


def samples(body: bytes) -> dict:
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            assert name not in out, f"a series twice on the page: {name}"
            out[name] = float(value)
    return out


def svc_label(port):
    return f'service="TCP {VIP}:{port}"'


def rs_key(name, port, rs, **labels):
    extra = "".join(f',{k}="{v}"' for k, v in labels.items())
    return (f'rlb_real_server_{name}{{{svc_label(port)},real_server="{rs}:{port}",'
            f'mode="fnat"{extra}}}')


def rs_values(s, name, port, **labels):
    return {rs: s[rs_key(name, port, rs, **labels)] for rs in RS}


def delta(after, before):
    return {k: after[k] - before[k] for k in after}


def curls(port, n=N):
    """n requests through the VIP from the client, each a new connection (a curl each)."""
    url = f"http://{VIP}/" if port == TUTORIAL_PORT else f"http://{VIP}:{port}/"
    for _ in range(n):
        r = subprocess.run(["ip", "netns", "exec", "rlb-client", "curl", "-s",
                            "--max-time", "5", url], capture_output=True, text=True,
                           timeout=15)
        assert r.returncode == 0 and r.stdout.startswith("Your ip:port : "), \
            f"curl {url}: {r.returncode} {r.stdout}{r.stderr}"


# --- the lab and Prometheus -------------------------------------------------------------


@pytest.fixture(scope="module")
def metrics_lab():
    lab.down()
    try:
        lab.up(TOPO.name, workers=WORKERS, tutorial=True)
        rlb(*TOPO.script(net=False, vport=NGINX_PORT))    # a second service, on nginx
        rlb("configure", f"metrics listen {METRICS[0]} {METRICS[1]}", "commit", "end")
        yield
    finally:
        lab.down()


PROM_YML = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: rlb
    static_configs:
      - targets: ['{target}']
"""


def prom_api(path, **params):
    """Prometheus's HTTP API: the `data` of a success."""
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    reply = json.loads(http(PROM, f"/api/v1/{path}{query}"))
    assert reply["status"] == "success", reply
    return reply["data"]


def rlb_targets():
    return [t for t in prom_api("targets")["activeTargets"] if t["labels"].get("job") == "rlb"]


def query(expr):
    """An instant query's vector: {frozenset(labels): value}."""
    data = prom_api("query", query=expr)
    assert data["resultType"] == "vector", data
    return {frozenset(r["metric"].items()): float(r["value"][1]) for r in data["result"]}


def wait_for(what, check, timeout):
    """check() until it returns a true value (bounded); the last value otherwise fails."""
    end = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = check()
            if last:
                return last
        except OSError as err:              # not listening yet
            last = err
        if time.monotonic() > end:
            pytest.fail(f"{what}: not within {timeout}s (last: {last!r})")
        time.sleep(0.25)


@pytest.fixture(scope="module")
def prometheus(metrics_lab, tmp_path_factory):
    """A real Prometheus server in LB_NS scraping the metrics every second, its files in a
    temporary directory, stopped by its PID."""
    d = tmp_path_factory.mktemp("prometheus")
    (d / "prometheus.yml").write_text(PROM_YML.format(target=f"{METRICS[0]}:{METRICS[1]}"))
    log = d / "prometheus.log"
    with open(log, "w") as logf:
        # `ip netns exec` execs the command: the PID is Prometheus's own
        proc = subprocess.Popen(
            ["ip", "netns", "exec", LB_NS, "/usr/bin/prometheus",
             f"--config.file={d / 'prometheus.yml'}", f"--storage.tsdb.path={d / 'data'}",
             f"--web.listen-address={PROM[0]}:{PROM[1]}", "--log.level=warn"],
            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        def target_up():
            assert proc.poll() is None, f"prometheus exited {proc.returncode}: " \
                                        f"{log.read_text()}"
            t = rlb_targets()       # none yet while Prometheus starts
            return t if len(t) == 1 and t[0]["health"] == "up" and not t[0]["lastError"] \
                else None
        wait_for("Prometheus's target rlb up", target_up, 30)
        yield proc, log
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


# --- the tests ----------------------------------------------------------------------


@pytest.mark.parametrize("port,other", [(TUTORIAL_PORT, NGINX_PORT),
                                        (NGINX_PORT, TUTORIAL_PORT)],
                         ids=["tutorial-80", "nginx-8080"])
def test_counters_move_with_traffic(metrics_lab, port, other):
    before = samples(scrape())
    curls(port)
    after = samples(scrape())

    conns = delta(rs_values(after, "connections_total", port),
                  rs_values(before, "connections_total", port))
    assert sum(conns.values()) == N, conns
    # rr on each worker: each real server gets at least half of each worker's flows
    assert all(c >= (N - WORKERS) // 2 for c in conns.values()), conns
    svc = f"rlb_service_connections_total{{{svc_label(port)}}}"
    assert after[svc] - before[svc] == N
    # the other service's counters did not move: its labels are its own
    assert sum(delta(rs_values(after, "connections_total", other),
                     rs_values(before, "connections_total", other)).values()) == 0
    o = f"rlb_service_connections_total{{{svc_label(other)}}}"
    assert after[o] == before[o]

    # packets and bytes: a connection is at least SYN, ACK, request, FIN in from the
    # client, SYN-ACK, response, FIN out to it; an IP packet is at least 40 bytes
    for direction, least in (("in", 4), ("out", 3)):
        pkts = sum(delta(rs_values(after, "packets_total", port, direction=direction),
                         rs_values(before, "packets_total", port, direction=direction))
                   .values())
        octets = sum(delta(rs_values(after, "bytes_total", port, direction=direction),
                           rs_values(before, "bytes_total", port, direction=direction))
                     .values())
        assert pkts >= least * N and octets >= 40 * pkts, (direction, pkts, octets)
        for rs, n in delta(rs_values(after, "packets_total", port, direction=direction),
                           rs_values(before, "packets_total", port,
                                     direction=direction)).items():
            assert n >= least * conns[rs], (rs, direction, n)
        s = f'rlb_service_packets_total{{{svc_label(port)},direction="{direction}"}}'
        assert after[s] - before[s] >= least * N
    # passive checks: every connection answered (counted once it is)
    answered = rs_values(after, "passive_checks_total", port, result="answered")
    assert sum(answered.values()) - sum(rs_values(before, "passive_checks_total", port,
                                                  result="answered").values()) == N
    # the same figures as ipvsadm's (connections, all workers)
    text = rlb("ipvsadm -ln --stats --exact")
    now = samples(scrape())
    for rs in RS:
        m = re.search(rf"-> {re.escape(rs)}:{port}\s+(\d+)", text)
        assert m and int(m.group(1)) == now[rs_key("connections_total", port, rs)], text


def test_the_page_passes_promtool(metrics_lab):
    curls(NGINX_PORT, 2)            # every family with samples
    body = scrape()
    r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True,
                       timeout=30)
    assert r.returncode == 0 and not r.stdout and not r.stderr, \
        r.stdout.decode() + r.stderr.decode()


def test_prometheus_scrapes_the_new_values(prometheus):
    proc, log = prometheus
    total = "sum(rlb_real_server_connections_total)"
    s0 = sum(v for k, v in samples(scrape()).items()
             if k.startswith("rlb_real_server_connections_total{"))
    curls(TUTORIAL_PORT)
    s1 = sum(v for k, v in samples(scrape()).items()
             if k.startswith("rlb_real_server_connections_total{"))
    assert s1 == s0 + N

    def scraped():
        v = query(total)
        return v if v.get(frozenset()) == s1 else None
    wait_for(f"Prometheus's {total} == {s1}", scraped, 15)

    assert query('up{job="rlb"}') == {
        frozenset({"__name__": "up", "job": "rlb",
                   "instance": f"{METRICS[0]}:{METRICS[1]}"}.items()): 1.0}
    # one real server of one service by its labels: one series, the page's value
    page = samples(scrape())
    one = query(f'rlb_real_server_connections_total{{real_server="{RS[0]}:80",'
                f'service="TCP {VIP}:80"}}')
    assert len(one) == 1, one
    (labels, value), = one.items()
    assert dict(labels) == {"__name__": "rlb_real_server_connections_total", "job": "rlb",
                            "instance": f"{METRICS[0]}:{METRICS[1]}",
                            "service": f"TCP {VIP}:80", "real_server": f"{RS[0]}:80",
                            "mode": "fnat"}
    assert value == page[rs_key("connections_total", 80, RS[0])]
    # the counters are counters to Prometheus too: they increased over the last minute
    inc = query(f'sum(increase(rlb_service_connections_total{{service="TCP {VIP}:80"}}[1m]))')
    assert len(inc) == 1 and next(iter(inc.values())) > 0, inc

    # every scrape so far went in whole: no error on the target, nothing Prometheus
    # refused (a series twice, out of order, over a limit)
    t = rlb_targets()
    assert len(t) == 1 and t[0]["health"] == "up" and not t[0]["lastError"], t
    prom = samples(http(PROM, "/metrics"))
    for name in ("prometheus_target_scrapes_sample_duplicate_timestamp_total",
                 "prometheus_target_scrapes_sample_out_of_order_total",
                 "prometheus_target_scrapes_sample_out_of_bounds_total",
                 "prometheus_target_scrapes_exceeded_sample_limit_total"):
        assert prom[name] == 0, name
    assert query('scrape_samples_scraped{job="rlb"}')
    assert proc.poll() is None
    assert "scrape" not in log.read_text().lower(), log.read_text()
