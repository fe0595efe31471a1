"""Operations as the shell has them: `metrics listen` (the Prometheus endpoint,
rlb.ops.metrics), `log ...` (where the daemon's log goes, rlb.logs), `show metrics`,
`capture` (a port's frames to a pcap file, rlb.ops.capture)."""
from __future__ import annotations

import asyncio
import os
import pwd

from rlb.commands.base import CONFIG, OPS, ROOT, Reply, Shown, g
from rlb.errors import CommandError
from rlb.model.ops import DEFAULT_LEVEL, SYSLOG, MetricsListen
from rlb.ops.capture import BOTH, DEFAULT_SECONDS, DIRECTIONS, open_file
from rlb.ops.capture import capture as run_capture

g.words(**{
    "metrics": "Prometheus metrics (the exposition format over HTTP, /metrics)",
    "log": "Where the daemon's log goes, and from which level",
    "syslog": "The local syslog (/dev/log), ident rlb; the audit as rlb-audit",
    "file": "A file (appended; reopened when logrotate moves it)",
    "level": "The least severe level written",
    "debug": "Everything, with the details of each step",
    "info": "Events (the default)",
    "warning": "Problems only",
})


def _show_metrics(model, _):
    m = model.ops.metrics
    return [Shown({"addr": m.addr, "port": m.port}, rank=(OPS, 0))] if m else []


@g.command("metrics listen A.B.C.D$addr (1-65535)$port", node=CONFIG, key=(),
           show=_show_metrics,
           help={"addr": "The address to listen on (0.0.0.0: all of the daemon's)",
                 "port": "TCP port (Prometheus' exporters use 9100-9999)"})
def metrics_listen(ctx, addr, port):
    """Serve the Prometheus metrics at http://ADDR:PORT/metrics: ports, drops by reason,
    mbufs, workers' cycles, connections, each service and real server, local addresses'
    ports, health, commits, routing and VRRP. A scrape reads the workers' counters where
    they are: it never stops the data plane, and runs beside the control socket."""
    if addr.is_multicast or (addr.is_reserved and not addr.is_unspecified):
        raise CommandError(f"{addr} cannot be listened on")
    ctx.model.ops.set(metrics=MetricsListen(addr, port))
    return Reply()


@g.command("no metrics", node=CONFIG)
def no_metrics(ctx):
    ctx.model.ops.set(metrics=None)
    return Reply()


def _show_log(model, _):
    t = model.ops.log_target
    if t is None:
        return []
    return [Shown({"syslog": True} if t == SYSLOG else {"path": t}, rank=(OPS, 1))]


@g.command("log (syslog$syslog|file WORD$path)", node=CONFIG, key=(), show=_show_log,
           help={"path": "An absolute path (its directory must exist)"})
def log_to(ctx, syslog, path):
    """Where the daemon's log goes; without this line, to its standard error (the
    journal under systemd). The audit of configuration changes stays its own stream:
    ident rlb-audit in syslog, PATH.audit beside a file."""
    if path is not None and not os.path.isabs(path):
        raise CommandError(f"{path}: the log file needs an absolute path")
    ctx.model.ops.set(log_target=SYSLOG if syslog else path)
    return Reply()


@g.command("no log", node=CONFIG)
def no_log(ctx):
    ctx.model.ops.set(log_target=None)
    return Reply()


@g.command("log level (debug|info|warning)$level", node=CONFIG, key=(),
           show=lambda model, _: [Shown({"level": model.ops.log_level}, rank=(OPS, 2))]
           if model.ops.log_level != DEFAULT_LEVEL else [])
def log_level(ctx, level):
    """The least severe level the log writes (default info)."""
    ctx.model.ops.set(log_level=level)
    return Reply()


@g.command("no log level", node=CONFIG)
def no_log_level(ctx):
    ctx.model.ops.set(log_level=DEFAULT_LEVEL)
    return Reply()


@g.command("show metrics", node=ROOT, readonly=True)
def show_metrics(ctx):
    """The metrics endpoint: where it listens, its scrapes, how long the last took, and
    how many series it served."""
    exporter = getattr(ctx.model, "exporter", None)
    if exporter is None:
        raise CommandError("data plane not running")
    data = exporter.view()
    if data["listen"] is None:
        return Reply("Metrics are not served (metrics listen A.B.C.D PORT)", data)
    last = data["last_ms"]
    text = (f"Serving http://{data['listen']}/metrics\n"
            f"  scrapes {data['scrapes']}, failed {data['failed']}\n"
            f"  last scrape {'-' if last is None else f'{last:.1f} ms'}, "
            f"{data['series']} series, {data['bytes']} bytes")
    return Reply(text, data)


# --------------------------------------------------------------------------- capture

g.words(**{
    "capture": "Write what a port receives and sends to a pcap file (tcpdump -w)",
    "in": "Frames the port receives (as they arrive)",
    "out": "Frames the port sends (as they leave)",
    "both": "Both directions (the default)",
    "filter": "A tcpdump filter expression, in quotes (libpcap compiles it; the data plane "
              "runs it)",
})


@g.command('capture WORD$dev [(in|out|both)$direction] [filter WORD$expr] '
           '[count (1-10000000)$count] [seconds (1-86400)$seconds] file WORD$path',
           node=ROOT, operational=True,
           help={"dev": "The data port", "expr": 'As tcpdump takes it: "tcp port 80"',
                 "count": "Stop after this many frames",
                 "seconds": f"Stop after this long (with neither: {DEFAULT_SECONDS} s)",
                 "path": "A new file (absolute path); `-` with rlb -c: standard output"})
def capture_cmd(ctx, dev, direction, expr, count, seconds, path):
    """Capture a data port's frames into a pcap file that tcpdump -r and Wireshark read.
    The workers run the filter and copy what it takes without waiting: a full queue
    drops the copy and counts it (the capture loses frames, never the port)."""
    engine = ctx.engine
    if engine is None:
        raise CommandError("data plane not running")
    port = ctx.model.port(dev)
    if path == "-":
        raise CommandError("file -: only with rlb -c (its standard output)")
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise CommandError("capture needs the daemon's event loop") from None
    uid = None
    try:
        uid = pwd.getpwnam(ctx.user).pw_uid
    except (KeyError, TypeError):
        pass
    job = run_capture(engine, port.index, dev, DIRECTIONS[direction or BOTH], expr, count,
                      seconds, lambda: open_file(path, uid))
    return Reply(wait=_summary(job, path))


async def _summary(job, path) -> Reply:
    d = await job
    d["file"] = path
    text = (f"{d['written']} frame(s) written to {path} in {d['seconds']:g} s "
            f"({d['port']} {d['direction']}"
            + (f", filter \"{d['filter']}\"" if d["filter"] else "") + "); "
            f"{d['matched']} matched, {d['dropped']} dropped (the capture queue was full)")
    return Reply(text, d)
