"""The Prometheus endpoint of a real daemon (FNAT two-arm, the tutorial's service): served
where `metrics listen` says, moved and stopped by commits, refused where it cannot
listen; its text passes promtool; its per real server counters are the data plane's and
move with traffic (SYNs from the test: connections and packets +N); gzip as Prometheus
asks; `show metrics`. And the other operations lines: `log file`, `log level`."""
import gzip
import socket
import subprocess
import time
import urllib.request

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from support.netns import Daemon, Session, Wire, del_ns, fnat_two_port, in_netns, make_ns, sh

NS = "rlbt-metrics"
PORT = 9617
VIP, LIP = "10.0.0.100", "192.168.100.200"
RS = ("192.168.100.2", "192.168.100.3")


@pytest.fixture(scope="module")
def lb(tmp_path_factory):
    make_ns(NS, [("dp0", "tp0"), ("dp1", "tp1")])
    sh("ip", "link", "set", "lo", "up", ns=NS)
    conf = fnat_two_port() + "".join(f"{line}\n" for line in (
        f"dpip neigh add {RS[0]} lladdr 02:00:00:00:00:02 dev dpdk0",
        f"dpip neigh add {RS[1]} lladdr 02:00:00:00:00:03 dev dpdk0",
        "dpip neigh add 10.0.0.2 lladdr 02:00:00:00:00:04 dev dpdk1",
        f"metrics listen 127.0.0.1 {PORT}"))
    d = Daemon(NS, "rlbt-metrics", conf, tmp_path_factory.mktemp("metrics")).start()
    try:
        yield d
    finally:
        rc = d.stop()
        del_ns(NS)
        assert rc == 0, d.log.read_text()


def scrape(port=PORT, path="/metrics", headers=None):
    """The page as the namespace's loopback serves it: (status, headers, body)."""
    with in_netns(NS):
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()


def samples(body: bytes) -> dict:
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def rs_value(s, name, rs, **labels):
    extra = "".join(f',{k}="{v}"' for k, v in labels.items())
    key = (f'rlb_real_server_{name}{{service="TCP {VIP}:80",real_server="{rs}:80",'
           f'mode="fnat"{extra}}}')
    return s[key]


def test_the_page_passes_promtool_and_has_every_part(lb):
    status, headers, body = scrape()
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    s = samples(body)
    lines = [x for x in body.decode().splitlines() if x and not x.startswith("#")]
    assert lb.ok("show metrics")["data"]["series"] == len(lines) == len(s)
    for name in ('rlb_port_receive_packets_total{device="dpdk0"}',
                 'rlb_drops_total{reason="conn_miss"}', 'rlb_punts_total{reason="ip_options"}',
                 "rlb_mbuf_pool_in_use", 'rlb_worker_polls_total{state="busy",worker="0"}',
                 'rlb_worker_seconds_total{state="idle",worker="0"}', "rlb_tsc_hertz",
                 'rlb_connections{worker="0"}', "rlb_connections_capacity",
                 'rlb_commits_total{result="applied"}', 'rlb_sync_events_total{event="sent"}',
                 f'rlb_service_connections_total{{service="TCP {VIP}:80"}}',
                 f'rlb_service_real_servers{{service="TCP {VIP}:80",state="in_pool"}}',
                 f'rlb_local_address_ports_free{{service="TCP {VIP}:80",local_address="{LIP}",'
                 'device="dpdk0"}', "process_cpu_seconds_total"):
        assert name in s, name
    assert rs_value(s, "configured_weight", RS[0]) == 1 == rs_value(s, "in_pool", RS[0])
    assert s[f'rlb_service_real_servers{{service="TCP {VIP}:80",state="configured"}}'] == 2


def test_real_server_counters_move_with_traffic(lb):
    before = samples(scrape()[2])
    w1, w0 = Wire(NS, "tp1"), Wire(NS, "tp0")
    try:
        mac = sh("cat", "/sys/class/net/dp1/address", ns=NS).stdout.strip()
        n = 10
        for k in range(n):
            w1.send(Ether(dst=mac) / IP(src="10.0.0.2", dst=VIP) /
                    TCP(sport=41000 + k, dport=80, flags="S", seq=1000))
        got = [w0.recv(lambda f: TCP in Ether(f) and Ether(f)[TCP].flags == "S")
               for _ in range(n)]
        assert all(got), "the SYNs must reach the real servers"
    finally:
        w1.close()
        w0.close()
    after = samples(scrape()[2])
    conns = sum(rs_value(after, "connections_total", rs) - rs_value(before, "connections_total", rs)
                for rs in RS)
    pkts = sum(rs_value(after, "packets_total", rs, direction="in") -
               rs_value(before, "packets_total", rs, direction="in") for rs in RS)
    assert conns == n and pkts == n
    assert all(rs_value(after, "connections_total", rs) > 0 for rs in RS), "rr: both"
    svc = f'rlb_service_connections_total{{service="TCP {VIP}:80"}}'
    assert after[svc] - before[svc] == n
    # the same figures as ipvsadm's
    stats = lb.ok("ipvsadm -L -n --stats")["data"]["services"][0]["dests"]
    assert sum(d["stats"]["conns"] for d in stats) == sum(
        rs_value(after, "connections_total", rs) for rs in RS)
    used = f'rlb_local_address_ports_used{{service="TCP {VIP}:80",local_address="{LIP}",' \
           'device="dpdk0"}'
    assert after[used] - before[used] == n           # each SYN holds a local port


def test_gzip_and_other_paths(lb):
    status, headers, body = scrape(headers={"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert b"rlb_tsc_hertz" in gzip.decompress(body)
    assert scrape(path="/")[0] == 200
    assert scrape(path="/nothing")[0] == 404


def test_show_metrics_and_commits_move_and_stop_it(lb):
    v = lb.ok("show metrics | json")["data"] if False else lb.ok("show metrics")["data"]
    assert v["listen"] == f"127.0.0.1:{PORT}" and v["scrapes"] >= 1 and v["series"] > 50
    s = Session(lb.instance)
    # a port taken: refused, nothing changed, still served where it was
    with in_netns(NS):
        taken = socket.socket()
        taken.bind(("127.0.0.1", PORT + 1))
        taken.listen()
    try:
        s.ok("enable", "configure", f"metrics listen 127.0.0.1 {PORT + 1}")
        r = s("commit")
        assert not r["ok"] and "cannot listen there" in r["error"] and "in use" in r["error"]
        s.ok("abort")
    finally:
        taken.close()
    assert scrape()[0] == 200
    s.ok("configure", f"metrics listen 127.0.0.1 {PORT + 2}", "commit")
    assert scrape(PORT + 2)[0] == 200
    with pytest.raises(urllib.error.URLError):
        scrape()
    assert f"metrics listen 127.0.0.1 {PORT + 2}" in lb.ok("show running-config")["text"]
    s.ok("no metrics", "commit")
    with pytest.raises(urllib.error.URLError):
        scrape(PORT + 2)
    assert "not served" in lb.ok("show metrics")["text"]
    s.ok(f"metrics listen 127.0.0.1 {PORT}", "commit", "end")
    assert scrape()[0] == 200


def test_log_lines_send_the_log_where_they_say(lb, tmp_path):
    """`log file PATH` and `log level debug` by a commit on the running daemon: its lines
    (with the instance) go to PATH, the audit of that commit to PATH's .audit sibling; a
    file that cannot be written is refused and nothing changes; `no log` goes back."""
    path = tmp_path / "lb.log"
    s = Session(lb.instance)
    r = s("enable")
    assert r["ok"], r
    s.ok("configure", f"log file {tmp_path}/missing/lb.log")
    r = s("commit")
    assert not r["ok"] and "missing" in r["error"], r
    s.ok("abort")
    s.ok("configure", f"log file {path}", "log level debug", "commit")
    s.ok("ipvsadm -A -t 10.0.0.101:80 -s rr", "commit")          # an event, audited
    end = time.monotonic() + 5
    while time.monotonic() < end and "rlbt-metrics" not in (
            text := path.read_text() if path.exists() else ""):
        time.sleep(0.1)
    assert "rlbt-metrics" in text
    audit = (tmp_path / "lb.audit.log").read_text()
    assert "commit" in audit and "ipvsadm -A -t 10.0.0.101:80" in audit
    running = lb.ok("show running-config")["text"]
    assert f"log file {path}" in running and "log level debug" in running
    s.ok("no log", "no log level", "ipvsadm -D -t 10.0.0.101:80", "commit", "end")
    running = lb.ok("show running-config")["text"]
    assert "log file" not in running and "log level" not in running
