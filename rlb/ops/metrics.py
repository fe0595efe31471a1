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

import logging
from array import array
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from zlib_ng import gzip_ng
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

from rlb.core import counters
from rlb.errors import CommandError

log = logging.getLogger("rlb.metrics")

PATH = "/metrics"
# A 24 MB page (1,000 x 16) at level 1: zlib-ng's deflate takes ~20 ms where zlib's took
# ~65 ms (19x smaller instead of 28x); the same gzip on the wire
GZIP_LEVEL = 1
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
        self.labels = Labels()
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
            sized = _Sized(self.model, self.labels)
            lines = sized.lines()
            head = generate_latest(self.registry)
            body = b"".join([head, *lines])         # one copy of 24 MB, not two
        except Exception:
            self.stats["failed"] += 1
            raise
        self.stats.update(scrapes=self.stats["scrapes"] + 1,
                          last_ms=round((time.perf_counter() - t0) * 1000, 2),
                          series=head.count(b"\n") - head.count(b"\n#") - head.startswith(b"#")
                          + sized.series, bytes=len(body))
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
            return self._send(200, CONTENT_TYPE, gzip_ng.compress(body, GZIP_LEVEL),
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
    from rlb.routing.announce import ANNOUNCED
    a = getattr(model, "announcer", None)
    if a is None:
        return
    fam = _gauge("rlb_vip_announced", "1 while the VIP's route is announced (OSPF/BGP)",
                 ["vip", "device"])
    for row in a.view():
        fam.add_metric([row["vip"], row["dev"]], 1 if row["state"] == ANNOUNCED else 0)
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


class Labels:
    """The label text of each service and real server, made once and kept while the
    same one is in the table (a scrape looks them up: formatting 16,000 addresses each
    time cost more than reading the counters). A real server's row is kept by its Dest,
    which the model replaces rather than changes (rlb.model.services)."""

    def __init__(self):
        self.svcs: dict = {}
        self.dests: dict = {}       # id(Dest) -> (Dest, service label, row)
        self.modes: dict = {}       # mode name -> its index in the by-mode sums
        self._rows: _Rows | None = None

    def service(self, s) -> bytes:
        key = (s.slot, s.key)
        got = self.svcs.get(key)
        if got is None:
            got = self.svcs[key] = f'service="{_esc(str(s))}"'.encode()
        return got

    def dest(self, svc_label: bytes, d, passive) -> tuple:
        """(label text, mode index, passive check counted) of a real server."""
        got = self.dests.get(id(d))
        if got is not None and got[0] is d and got[1] is svc_label:
            return got[2]
        mode = self.modes.setdefault(d.mode, len(self.modes))
        row = (svc_label + f',real_server="{d.addr}:{d.port}",mode="{d.mode}"'.encode(),
               mode, passive(d.mode))
        self.dests[id(d)] = (d, svc_label, row)
        return row

    def rows(self, services) -> _Rows:
        """The table's rows as the last scrape had them, unless it changed since."""
        if self._rows is None or self._rows.version != services.version:
            self._rows = _Rows(self, services)
        return self._rows

    def trim(self, services: int, dests: int) -> None:
        """Forget rows of what left the table (kept until they outnumber the table)."""
        if len(self.dests) > 2 * dests + 1024:
            self.dests.clear()
        if len(self.svcs) > 2 * services + 1024:
            self.svcs.clear()


class _Rows:
    """What a scrape needs of the table besides the counters: the services and real
    servers (slots, label texts), each real server's weight now and configured and
    whether the scheduler has it, its mode's index and whether its passive check counts."""

    def __init__(self, labels: Labels, services):
        from rlb.modes import PROBE_VIP
        self.version = services.version
        self.svcs = [s for s in list(services.table.values()) if s.slot >= 0]
        self.slabels = [labels.service(s) for s in self.svcs]
        passive = {name: m.probe != PROBE_VIP for name, m in services.modes.items()}.get
        self.counts = array("Q", [0]) * (2 * len(self.svcs))
        ds = []
        for k, s in enumerate(self.svcs):
            ds += [(k, d) for d in list(s.dests) if d.slot >= 0]
            self.counts[2 * k] = len(s.dests)
        placed = services.placed_all([d for _, d in ds])
        self.dests, self.dlabels, self.extra = [], [], array("Q")
        groups, mask = bytearray(), bytearray()
        for (k, d), (pool, weight) in zip(ds, placed):
            label, group, checked = labels.dest(self.slabels[k], d, passive)
            self.counts[2 * k + 1] += pool
            self.dests.append(d.slot)
            self.dlabels.append(label)
            groups.append(group)
            mask.append(checked)
            self.extra.extend((weight, d.weight, pool))
        self.groups, self.mask = bytes(groups), bytes(mask)
        labels.trim(len(self.svcs), len(self.dests))


def _family(name: str, kind: str, help: str) -> bytes:
    return f"# HELP {name} {help}\n# TYPE {name} {kind}\n".encode()


class _Sized:
    """The families with a sample per service, real server and local address: their
    rows (labels and an array of values) in Python, their lines in C (rlb.ops.page)."""

    def __init__(self, model, labels: Labels):
        self.model = model
        self.labels = labels
        self.series = 0                 # lines written (samples)

    def lines(self) -> list[bytes]:
        model = self.model
        engine = model.engine
        if engine is None:
            return []
        from rlb.core.stats import DEST_BULK, SVC_BULK
        from rlb.ops.page import column, group_sums
        services = model.services
        rows = self.labels.rows(services)
        svcs, slabels, counts = rows.svcs, rows.slabels, rows.counts
        dests, dlabels, groups, extra, mask = (rows.dests, rows.dlabels, rows.groups,
                                               rows.extra, rows.mask)
        sv = engine.svc_bulk([s.slot for s in svcs])
        ns, si = len(SVC_BULK), {n: k for k, n in enumerate(SVC_BULK)}
        out: list[bytes] = []

        def fam(name, kind, help, *cols):
            """A family: its HELP and TYPE, then each column(rows' labels, tail, ...)."""
            parts = [column(f"{name}{{".encode(), *c) for c in cols]
            if any(parts):
                out.append(_family(name, kind, help))
                out.extend(parts)
                self.series += sum(len(c[0]) if len(c) < 6 else len(c[5]) - c[5].count(0)
                                   for c in cols)

        fam("rlb_service_connections_total", "counter", "connections the service scheduled",
            (slabels, b"}", sv, ns, si["conns"]))
        fam("rlb_service_packets_total", "counter",
            "packets of the service's connections: in from clients, out to them",
            *((slabels, f',direction="{d}"}}'.encode(), sv, ns, si[p])
              for d, p, _ in DIRECTIONS))
        fam("rlb_service_bytes_total", "counter",
            "bytes of the service's connections: in from clients, out to them",
            *((slabels, f',direction="{d}"}}'.encode(), sv, ns, si[b])
              for d, _, b in DIRECTIONS))
        fam("rlb_service_dropped_connections_total", "counter",
            "new flows the service dropped: no_dest (no real server can take one), "
            "no_laddr (FNAT: no local address port free)",
            *((slabels, f',reason="{r}"}}'.encode(), sv, ns, si[r])
              for r in ("no_dest", "no_laddr")))
        fam("rlb_service_real_servers", "gauge",
            "real servers configured (in_pool: those the scheduler has now)",
            (slabels, b',state="configured"}', counts, 2, 0),
            (slabels, b',state="in_pool"}', counts, 2, 1))

        # real servers
        dv = engine.dest_bulk(dests)
        nd, di = len(DEST_BULK), {n: k for k, n in enumerate(DEST_BULK)}
        ex = extra
        rs = "rlb_real_server_"
        fam(rs + "connections_total", "counter", "connections scheduled to the real server",
            (dlabels, b"}", dv, nd, di["conns"]))
        fam(rs + "packets_total", "counter", "packets of its connections: in from clients, "
            "out to them", *((dlabels, f',direction="{d}"}}'.encode(), dv, nd, di[p])
                              for d, p, _ in DIRECTIONS))
        fam(rs + "bytes_total", "counter", "bytes of its connections: in from clients, out "
            "to them", *((dlabels, f',direction="{d}"}}'.encode(), dv, nd, di[b])
                          for d, _, b in DIRECTIONS))
        fam(rs + "active_connections", "gauge", "its established TCP connections",
            (dlabels, b"}", dv, nd, di["activeconns"]))
        fam(rs + "inactive_connections", "gauge", "its other connections (closing, UDP)",
            (dlabels, b"}", dv, nd, di["inactconns"]))
        fam(rs + "weight", "gauge", "its weight now (health, quiescing: 0 takes no new flows)",
            (dlabels, b"}", ex, 3, 0))
        fam(rs + "configured_weight", "gauge", "its weight as configured",
            (dlabels, b"}", ex, 3, 1))
        fam(rs + "in_pool", "gauge", "1 while the scheduler has it (health: up, or not "
            "checked)", (dlabels, b"}", ex, 3, 2))
        fam(rs + "passive_checks_total", "counter", "what it did with its connections, seen "
            "in the traffic (FNAT, NAT, SNAT): answered, unanswered, refused (a reset)",
            *((dlabels, f',result="{r}"}}'.encode(), dv, nd, di[r], mask) for r in PASSIVE))

        # connections by forwarding mode
        names = sorted(self.labels.modes, key=self.labels.modes.get)
        if dests:
            out.append(_family("rlb_connections_by_mode", "gauge", "connections of the real "
                               "servers of each forwarding mode: active (established TCP) "
                               "or inactive (closing, UDP)"))
            for state, col in (("active", di["activeconns"]), ("inactive", di["inactconns"])):
                sums = group_sums(dv, nd, col, groups, len(names))
                out.append("".join(f'rlb_connections_by_mode{{mode="{m}",state="{state}"}} '
                                   f"{n}\n" for m, n in zip(names, sums)).encode())
                self.series += len(names)

        # local addresses (FNAT)
        lports = _lports()
        llabels, lv = [], array("Q")
        for k, s in enumerate(svcs):
            if not s.laddrs:
                continue
            for la, row in zip(s.laddrs, services.laddr_stats(s)):
                llabels.append(slabels[k] + f',local_address="{la.addr}",device="{la.dev}"'
                               .encode())
                lv.extend((row["used"], max(lports - row["used"], 0), row["miss"]))
        fam("rlb_local_address_ports_used", "gauge",
            "ports of the local address held by connections (sa_used)", (llabels, b"}", lv, 3, 0))
        fam("rlb_local_address_ports_free", "gauge", "ports of the local address left (sa_free)",
            (llabels, b"}", lv, 3, 1))
        fam("rlb_local_address_port_misses_total", "counter",
            "new flows that found no free port of it (sa_miss)", (llabels, b"}", lv, 3, 2))
        return out


def _lports() -> int:
    from rlb.core.consts import LPORT_RANGE
    return LPORT_RANGE[1] - LPORT_RANGE[0] + 1
