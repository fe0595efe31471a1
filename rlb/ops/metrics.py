"""The Prometheus endpoint (`metrics listen A.B.C.D PORT`): http://A.B.C.D:PORT/metrics.

The daemon serves it from a thread of its own (prometheus_client's threading HTTP
server), so a scrape waits for neither the control socket nor the data plane: it reads
the workers' counters where they are (rlb.core.stats), as `show` does.

Two writers make one page. The families of a bounded size (ports, drop reasons, mbufs,
workers, the connection table, commits, routing, VRRP, sync, the process) are
prometheus_client's metric families in its registry, written by its generate_latest.
The families with a sample per service, real server and local address are written here,
line by line in the same text format: at 1,000 services x 16 real servers they are
200,000 samples, which generate_latest writes in 1.5-2.5 s on this machine (measured:
a generic sample costs it ~10 us); here they take a bulk read of the counters
(Engine.dest_bulk) and one formatted line each. bench/metrics.py measures the scrape.

Names follow Prometheus' conventions: rlb_ prefix, base units (bytes, seconds: the
workers' TSC cycles are divided by the TSC's rate, which rlb_tsc_hertz gives back),
`_total` for counters, direction/state/reason as labels.
"""
from __future__ import annotations

import gzip
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

from rlb.core import counters
from rlb.errors import CommandError

log = logging.getLogger("rlb.metrics")

PATH = "/metrics"
GZIP_LEVEL = 1              # a 15 MB page: level 1 is ~4x smaller and several times faster
POLL = 0.1                  # seconds: how fast a stopped server's thread notices
# The text format 0.0.4 (what Prometheus 2.x and promtool read; the library's newest
# names 1.0.0, whose escaping only names outside [a-zA-Z_:][a-zA-Z0-9_:]* need)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# A port's driver counters (rte_eth_stats), named as node_exporter names a NIC's
PORT_NAMES = {"ipackets": "receive_packets", "opackets": "transmit_packets",
              "ibytes": "receive_bytes", "obytes": "transmit_bytes",
              "ierrors": "receive_errors", "oerrors": "transmit_errors",
              "imissed": "receive_missed", "rx_nombuf": "receive_nombuf",
              "rx_pkts": "worker_receive_packets", "rx_bytes": "worker_receive_bytes",
              "tx_pkts": "worker_transmit_packets", "tx_bytes": "worker_transmit_bytes",
              "to_kni": "kni_punted_packets", "from_kni": "kni_sent_packets",
              "probes": "probe_packets"}
PUNT = "_kni"               # a drop reason's name ending so: punted to the kernel
DIRECTIONS = (("in", "inpkts", "inbytes"), ("out", "outpkts", "outbytes"))
PASSIVE = ("answered", "unanswered", "refused")


class Exporter:
    """The daemon's metrics endpoint: started, moved and stopped as `metrics listen`
    says (a listener of model.ops); its checker refuses a commit whose address cannot
    be listened on."""

    def __init__(self, model, instance: str, version: str = ""):
        self.model = model
        self.instance = instance
        self.version = version
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self.listening = None                   # the MetricsListen served
        self.stats = {"scrapes": 0, "failed": 0, "last_ms": None, "series": 0, "bytes": 0}
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        self.registry.register(_Bounded(self))
        model.exporter = self
        model.ops.listeners.append(self.apply)
        model.ops.checkers.append(self.check)

    # -- configuration -------------------------------------------------------------------

    def check(self, target) -> None:
        want = target.ops.metrics
        if want is None or want == self.listening:
            return
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((str(want.addr), want.port))
        except OSError as err:
            raise CommandError(f"metrics listen {want.addr} {want.port}: cannot listen "
                               f"there: {err.strerror or err}") from None

    def apply(self) -> None:
        want = self.model.ops.metrics
        if want == self.listening:
            return
        self.stop()
        if want is None:
            return
        try:
            server = _Server((str(want.addr), want.port), _Handler)
        except OSError as err:
            log.error("metrics: cannot listen on %s:%d: %s", want.addr, want.port,
                      err.strerror or err)
            return
        server.exporter = self
        self.server, self.listening = server, want
        self.thread = threading.Thread(target=server.serve_forever, args=(POLL,),
                                       name="rlb-metrics", daemon=True)
        self.thread.start()
        log.info("metrics: serving http://%s:%d%s", want.addr, want.port, PATH)

    def stop(self) -> None:
        """Stop serving; a scrape under way is finished first (the daemon stops the
        endpoint before the data plane whose memory it reads)."""
        server, self.server, self.listening = self.server, None, None
        if server is None:
            return
        server.shutdown()
        server.server_close()           # joins the request threads (block_on_close)
        self.thread.join(5)
        self.thread = None

    def view(self) -> dict:
        m = self.listening
        return {"listen": f"{m.addr}:{m.port}" if m else None, **self.stats}

    # -- a scrape ------------------------------------------------------------------------

    def page(self) -> bytes:
        """The whole exposition text: the registry's families, then the per-service ones."""
        t0 = time.perf_counter()
        try:
            lines = _Sized(self.model).lines()
            body = generate_latest(self.registry) + "".join(lines).encode()
        except Exception:
            self.stats["failed"] += 1
            raise
        self.stats.update(scrapes=self.stats["scrapes"] + 1,
                          last_ms=round((time.perf_counter() - t0) * 1000, 2),
                          series=body.count(b"\n") - body.count(b"\n#"), bytes=len(body))
        return body


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = True
    allow_reuse_address = True
    exporter: Exporter


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "rlb"

    def do_GET(self):                                   # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0]
        if path == "/":
            return self._send(200, "text/html; charset=utf-8",
                              b"<html><head><title>rlb</title></head><body><h1>rlb</h1>"
                              b'<p><a href="/metrics">Metrics</a></p></body></html>\n')
        if path != PATH:
            return self._send(404, "text/plain", b"not found: try /metrics\n")
        try:
            body = self.server.exporter.page()
        except Exception:                               # the daemon goes on; the log says
            log.exception("metrics: the scrape failed")
            return self._send(500, "text/plain", b"scrape failed: see the rlb log\n")
        if "gzip" in self.headers.get("Accept-Encoding", ""):
            return self._send(200, CONTENT_TYPE, gzip.compress(body, GZIP_LEVEL),
                              gzip=True)
        return self._send(200, CONTENT_TYPE, body)

    def _send(self, code: int, ctype: str, body: bytes, gzip: bool = False) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if gzip:
            self.send_header("Content-Encoding", "gzip")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):                  # not a line per scrape at info
        log.debug("metrics: %s %s", self.address_string(), fmt % args)


def _counter(name, help, labels=()):
    return CounterMetricFamily(name, help, labels=list(labels))


def _gauge(name, help, labels=()):
    return GaugeMetricFamily(name, help, labels=list(labels))


class _Bounded:
    """The families of a bounded size, as prometheus_client metric families."""

    def __init__(self, exporter: Exporter):
        self.exporter = exporter

    def collect(self):
        ex = self.exporter
        model = ex.model
        info = InfoMetricFamily("rlb", "this rlb instance (rlb_instance: its -N name; not "
                                "`instance`, which Prometheus gives the target)",
                                labels=["rlb_instance", "version"])
        info.add_metric([ex.instance, ex.version], {})
        yield info
        yield from _commits()
        engine = model.engine
        if engine is not None:
            yield from _ports(model, engine)
            yield from _reasons(engine)
            yield from _pool(engine)
            yield from _workers(engine)
            yield from _conns(engine)
        yield from _routing(model)
        yield from _vrrp(model)
        yield from _sync(model)


def _commits():
    from rlb.control.commit import STATS
    c = _counter("rlb_commits", "configuration commits of this daemon, by result "
                 "(applied; refused: nothing changed; failed: the previous configuration "
                 "put back; rolled_back: a commit confirmed not confirmed)", ["result"])
    for result, n in STATS.items():
        c.add_metric([result], n)
    yield c


def _ports(model, engine):
    fams = {name: _counter(f"rlb_port_{PORT_NAMES[name]}", c.help, ["device"])
            for name, c in ((c.name, c) for c in counters.PORT.counters)}
    for port in list(model.ports.values()):
        st = engine.port_stats(port.index)
        for name, fam in fams.items():
            fam.add_metric([port.name], st[name])
    yield from fams.values()


def _reasons(engine):
    drops = _counter("rlb_drops", "packets the data plane dropped, by reason", ["reason"])
    punts = _counter("rlb_punts", "packets the data plane handed to the kernel (kni) for a "
                     "reason other than their being for it", ["reason"])
    for reason, n in engine.reasons().items():
        if reason.endswith(PUNT):
            punts.add_metric([reason[:-len(PUNT)]], n)
        else:
            drops.add_metric([reason], n)
    yield drops
    yield punts


def _pool(engine):
    p = engine.pool()
    yield _one(_gauge("rlb_mbuf_pool_size", "mbufs in the data plane's pool"), p["size"])
    yield _one(_gauge("rlb_mbuf_pool_in_use", "mbufs in use (in queues, rings, held "
                      "packets)"), p["in_use"])


def _one(fam, value):
    fam.add_metric([], value)
    return fam


def _workers(engine):
    hz = engine.tsc_hz
    polls = _counter("rlb_worker_polls", "passes of a worker's loop: busy (found work) or "
                     "idle", ["worker", "state"])
    secs = _counter("rlb_worker_seconds", "time a worker spent on busy and idle passes "
                    "(TSC cycles / rlb_tsc_hertz; idle sleeps not counted)",
                    ["worker", "state"])
    rx = _counter("rlb_worker_received_packets", "packets the busy passes took (ports, kni, "
                  "other workers)", ["worker"])
    bursts = _counter("rlb_worker_receive_bursts", "receive bursts with a packet", ["worker"])
    sleeps = _counter("rlb_worker_idle_sleeps", "sleeps for want of packets", ["worker"])
    for w in engine.workers():
        wid = str(w["id"])
        for state in ("busy", "idle"):
            polls.add_metric([wid, state], w[f"{state}_polls"])
            secs.add_metric([wid, state], w[f"{state}_cycles"] / hz)
        rx.add_metric([wid], w["rx_packets"])
        bursts.add_metric([wid], w["rx_bursts"])
        sleeps.add_metric([wid], w["idle_sleeps"])
    yield from (polls, secs, rx, bursts, sleeps)
    yield _one(_gauge("rlb_tsc_hertz", "TSC cycles a second (cycles per packet: sum "
                      "without (state) (rate(rlb_worker_seconds_total{state=\"busy\"}[1m])) "
                      "* on (job, instance) group_left rlb_tsc_hertz / "
                      "rate(rlb_worker_received_packets_total[1m]))"), hz)


def _conns(engine):
    c = engine.conn_summary()
    now = _gauge("rlb_connections", "connections in a worker's table", ["worker"])
    for i, n in enumerate(c["per_worker"]):
        now.add_metric([str(i)], n)
    yield now
    yield _one(_gauge("rlb_connections_capacity", "connections the tables hold, all "
                      "workers"), c["capacity"])
    # the table's `created` is rlb_connections_new (OpenMetrics keeps _created for itself)
    for name in ("new", "expired", "adopted"):
        which = "created" if name == "new" else name
        yield _one(_counter(f"rlb_connections_{name}", counters.CONNS.counters[
            counters.CONNS.names().index(which)].help), c[which])
    ev = _counter("rlb_sync_events", "connection sync events: sent (queued for the peer), "
                  "lost (queue full), applied (the peer's), refused (the peer's, for a "
                  "service or real server this LB lacks)", ["event"])
    for name in ("sent", "lost", "applied", "refused"):
        ev.add_metric([name], c[f"sync_{name}"])
    yield ev


def _routing(model):
    a = getattr(model, "announcer", None)
    if a is None:
        return
    fam = _gauge("rlb_vip_announced", "1 while the VIP's route is announced (OSPF/BGP)",
                 ["vip", "device"])
    for row in a.view():
        fam.add_metric([row["vip"], row["dev"]], 1 if row["state"] == "announced" else 0)
    yield fam


def _vrrp(model):
    k = getattr(model, "keepalived", None)
    if k is None:
        return
    state = _gauge("rlb_vrrp_master", "1 while this LB is the instance's VRRP MASTER",
                   ["vrrp_instance"])
    prio = _gauge("rlb_vrrp_priority", "the instance's priority now", ["vrrp_instance"])
    for i in k.view()["instances"]:
        state.add_metric([i["name"]], 1 if i["state"].lower() == "master" else 0)
        prio.add_metric([i["name"]], i["priority"])
    yield state
    yield prio


def _sync(model):
    s = getattr(model, "syncer", None)
    if s is None or model.ha.sync is None:
        return
    v = s.view()
    yield _one(_gauge("rlb_sync_peer_up", "1 while the sync peer is heard"),
               1 if v["state"] == "up" else 0)


# --------------------------------------------------------------------- per service

def _esc(v: str) -> str:
    if "\\" in v or '"' in v or "\n" in v:
        v = v.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')
    return v


class _Family:
    """One family's text: HELP, TYPE, then a line per sample."""
    __slots__ = ("name", "lines")

    def __init__(self, name: str, kind: str, help: str):
        self.name = name
        self.lines = [f"# HELP {name} {help}\n# TYPE {name} {kind}\n"]


class _Sized:
    """The families with a sample per service, real server and local address."""

    def __init__(self, model):
        self.model = model

    def lines(self) -> list[str]:
        model = self.model
        engine = model.engine
        services = model.services
        svcs = [s for s in list(services.table.values()) if s.slot >= 0]
        out: list[str] = []
        if engine is None:
            return out
        from rlb.core.stats import DEST_BULK, SVC_BULK
        from rlb.modes import PROBE_VIP
        sv = engine.svc_bulk([s.slot for s in svcs])
        ns = len(SVC_BULK)
        si = {n: k for k, n in enumerate(SVC_BULK)}
        dests = [(s, d) for s in svcs for d in list(s.dests) if d.slot >= 0]
        dv = engine.dest_bulk([d.slot for _, d in dests])
        nd = len(DEST_BULK)
        di = {n: k for k, n in enumerate(DEST_BULK)}

        # services
        f_conns = _Family("rlb_service_connections_total", "counter",
                          "connections the service scheduled")
        f_pkts = _Family("rlb_service_packets_total", "counter",
                         "packets of the service's connections: in from clients, out to them")
        f_bytes = _Family("rlb_service_bytes_total", "counter",
                          "bytes of the service's connections: in from clients, out to them")
        f_drop = _Family("rlb_service_dropped_connections_total", "counter",
                         "new flows the service dropped: no_dest (no real server can take "
                         "one), no_laddr (FNAT: no local address port free)")
        f_rs = _Family("rlb_service_real_servers", "gauge",
                       "real servers configured (in_pool: those the scheduler has now)")
        labels = {}
        for k, s in enumerate(svcs):
            lab = labels[s.slot] = f'service="{_esc(str(s))}"'
            at = k * ns
            f_conns.lines.append(f"rlb_service_connections_total{{{lab}}} {sv[at]}\n")
            for direction, p, b in DIRECTIONS:
                f_pkts.lines.append(f'rlb_service_packets_total{{{lab},direction="{direction}"}}'
                                    f" {sv[at + si[p]]}\n")
                f_bytes.lines.append(f'rlb_service_bytes_total{{{lab},direction="{direction}"}}'
                                     f" {sv[at + si[b]]}\n")
            for reason in ("no_dest", "no_laddr"):
                f_drop.lines.append(f'rlb_service_dropped_connections_total{{{lab},'
                                    f'reason="{reason}"}} {sv[at + si[reason]]}\n')
            listed = sum(1 for d in s.dests if services.placed(d)[0])
            f_rs.lines.append(f'rlb_service_real_servers{{{lab},state="configured"}} '
                              f"{len(s.dests)}\n")
            f_rs.lines.append(f'rlb_service_real_servers{{{lab},state="in_pool"}} {listed}\n')

        # real servers
        rs = {name: _Family(f"rlb_real_server_{name}", kind, help) for name, kind, help in (
            ("connections_total", "counter", "connections scheduled to the real server"),
            ("packets_total", "counter", "packets of its connections: in from clients, out "
             "to them"),
            ("bytes_total", "counter", "bytes of its connections: in from clients, out to "
             "them"),
            ("active_connections", "gauge", "its established TCP connections"),
            ("inactive_connections", "gauge", "its other connections (closing, UDP)"),
            ("weight", "gauge", "its weight now (health, quiescing: 0 takes no new flows)"),
            ("configured_weight", "gauge", "its weight as configured"),
            ("in_pool", "gauge", "1 while the scheduler has it (health: up, or not checked)"),
            ("passive_checks_total", "counter", "what it did with its connections, seen in "
             "the traffic (FNAT, NAT, SNAT): answered, unanswered, refused (a reset)"),
        )}
        by_mode: dict[tuple[str, str], int] = {}
        modes = services.modes
        p_conns, p_pkts, p_bytes = (rs["connections_total"].lines, rs["packets_total"].lines,
                                    rs["bytes_total"].lines)
        p_act, p_inact = rs["active_connections"].lines, rs["inactive_connections"].lines
        p_w, p_cw, p_pool = (rs["weight"].lines, rs["configured_weight"].lines,
                             rs["in_pool"].lines)
        p_pass = rs["passive_checks_total"].lines
        i_in, i_out = (di["inpkts"], di["inbytes"]), (di["outpkts"], di["outbytes"])
        i_pass = [(r, di[r]) for r in PASSIVE]
        for k, (s, d) in enumerate(dests):
            lab = f'{labels[s.slot]},real_server="{d.addr}:{d.port}",mode="{d.mode}"'
            at = k * nd
            act, inact = dv[at], dv[at + 1]
            p_conns.append(f"rlb_real_server_connections_total{{{lab}}} {dv[at + 2]}\n")
            p_pkts.append(f'rlb_real_server_packets_total{{{lab},direction="in"}} '
                          f"{dv[at + i_in[0]]}\n")
            p_pkts.append(f'rlb_real_server_packets_total{{{lab},direction="out"}} '
                          f"{dv[at + i_out[0]]}\n")
            p_bytes.append(f'rlb_real_server_bytes_total{{{lab},direction="in"}} '
                           f"{dv[at + i_in[1]]}\n")
            p_bytes.append(f'rlb_real_server_bytes_total{{{lab},direction="out"}} '
                           f"{dv[at + i_out[1]]}\n")
            p_act.append(f"rlb_real_server_active_connections{{{lab}}} {act}\n")
            p_inact.append(f"rlb_real_server_inactive_connections{{{lab}}} {inact}\n")
            pool, weight = services.placed(d)
            p_w.append(f"rlb_real_server_weight{{{lab}}} {weight}\n")
            p_cw.append(f"rlb_real_server_configured_weight{{{lab}}} {d.weight}\n")
            p_pool.append(f"rlb_real_server_in_pool{{{lab}}} {1 if pool else 0}\n")
            mode = modes.get(d.mode)
            if mode is not None and mode.probe != PROBE_VIP:
                for result, j in i_pass:
                    p_pass.append(f'rlb_real_server_passive_checks_total{{{lab},'
                                  f'result="{result}"}} {dv[at + j]}\n')
            key = (d.mode, "active")
            by_mode[key] = by_mode.get(key, 0) + act
            key = (d.mode, "inactive")
            by_mode[key] = by_mode.get(key, 0) + inact

        f_mode = _Family("rlb_connections_by_mode", "gauge",
                         "connections of the real servers of each forwarding mode: active "
                         "(established TCP) or inactive (closing, UDP)")
        for (mode, state), n in sorted(by_mode.items()):
            f_mode.lines.append(f'rlb_connections_by_mode{{mode="{mode}",state="{state}"}} '
                                f"{n}\n")

        # local addresses (FNAT)
        lports = _lports()
        f_used = _Family("rlb_local_address_ports_used", "gauge",
                         "ports of the local address held by connections (sa_used)")
        f_free = _Family("rlb_local_address_ports_free", "gauge",
                         "ports of the local address left (sa_free)")
        f_miss = _Family("rlb_local_address_port_misses_total", "counter",
                         "new flows that found no free port of it (sa_miss)")
        for s in svcs:
            if not s.laddrs:
                continue
            for la, row in zip(s.laddrs, services.laddr_stats(s)):
                lab = f'{labels[s.slot]},local_address="{la.addr}",device="{la.dev}"'
                f_used.lines.append(f"rlb_local_address_ports_used{{{lab}}} {row['used']}\n")
                f_free.lines.append(f"rlb_local_address_ports_free{{{lab}}} "
                                    f"{max(lports - row['used'], 0)}\n")
                f_miss.lines.append(f"rlb_local_address_port_misses_total{{{lab}}} "
                                    f"{row['miss']}\n")
        for fam in (f_conns, f_pkts, f_bytes, f_drop, f_rs, *rs.values(), f_mode, f_used,
                    f_free, f_miss):
            if len(fam.lines) > 1:
                out += fam.lines
        return out


def _lports() -> int:
    from rlb.core.consts import LPORT_RANGE
    return LPORT_RANGE[1] - LPORT_RANGE[0] + 1
