"""Operations as the shell has them: `metrics listen` (the Prometheus endpoint,
rlb.ops.metrics), `log ...` (where the daemon's log goes, rlb.logs), `show metrics`."""
from __future__ import annotations

import os

from rlb.commands.base import CONFIG, OPS, ROOT, Reply, Shown, g
from rlb.errors import CommandError
from rlb.model.ops import DEFAULT_LEVEL, SYSLOG, MetricsListen

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
