"""The checkers' registry: one module per kind, each a Checker in KINDS (a new kind is a
module and one line here); `configure` validates a check's settings once, and the
Check it returns probes a real server within its timeout (`await check.run(addr, port)`)."""
from __future__ import annotations

from typing import Any

from rlb.errors import CommandError
from rlb.health.result import Result  # noqa: F401  (what a probe returns)

from . import http, https, icmp, misc, tcp, udp
from . import settings as _settings
from .base import Check, Checker, Probe, describe  # noqa: F401  (the package's API)

KINDS: tuple[Checker, ...] = (
    tcp.CHECKER,
    http.CHECKER,
    https.CHECKER,
    udp.CHECKER,
    icmp.CHECKER,
    misc.CHECKER,
)
CHECKERS: dict[str, Checker] = {c.name: c for c in KINDS}


def configure(kind: str, given: dict[str, Any] | None = None) -> Check:
    """A check of this kind with these settings (text or values), all validated now:
    a CommandError says what is wrong."""
    checker = CHECKERS.get(kind)
    if checker is None:
        raise CommandError(f"unknown checker {kind!r} (one of {', '.join(CHECKERS)})")
    values = _settings.parse(kind, checker.all_settings, dict(given or {}))
    if checker.validate:
        checker.validate(values)
    return Check(checker, kind, tuple(values.items()))

