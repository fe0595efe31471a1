"""Operations as configured: where the metrics are served (`metrics listen`), where the
log goes and from which level (`log ...`). The daemon's exporter (rlb.ops.metrics) and
its logging (rlb.logs) are this section's listeners; their checks run before a commit."""
from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address

from rlb.errors import CommandError

LEVELS = ("debug", "info", "warning")
DEFAULT_LEVEL = "info"
SYSLOG = "syslog"                   # log_target: the local syslog, else an absolute path


@dataclass(frozen=True)
class MetricsListen:
    """`metrics listen A.B.C.D PORT`: the Prometheus endpoint (HTTP, /metrics)."""
    addr: IPv4Address
    port: int


@dataclass
class Ops:
    metrics: MetricsListen | None = None
    log_target: str | None = None           # None: stderr (the journal under systemd)
    log_level: str = DEFAULT_LEVEL
    listeners: list = field(default_factory=list, repr=False, compare=False)
    checkers: list = field(default_factory=list, repr=False, compare=False)

    def set(self, **changes) -> None:
        for name, value in changes.items():
            if not hasattr(self, name) or name in ("listeners", "checkers"):
                raise AttributeError(name)
            setattr(self, name, value)
        for listener in self.listeners:
            listener()

    def same(self, other: Ops) -> bool:
        return (self.metrics, self.log_target, self.log_level) == \
               (other.metrics, other.log_target, other.log_level)

    def check(self, target) -> None:
        """Before a commit: the log file can be written; the daemon's checkers (can the
        metrics endpoint listen there?) when the section changes."""
        t = target.ops
        if t.log_target not in (None, SYSLOG):
            from rlb import logs
            for p in logs.problems(t.log_target):
                raise CommandError(f"log file {t.log_target}: {p}")
        if not self.same(t):
            for checker in self.checkers:
                checker(target)
