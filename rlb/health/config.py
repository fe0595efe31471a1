"""What the configuration says about health: a real server's `check` clause (Clause) and
a service's policy (Policy). Both are frozen values: the model keeps them as they are
(a commit compares them), the monitor turns them into schedules and state."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from rlb.errors import CommandError
from rlb.health import checkers
from rlb.health.checkers import settings as s
from rlb.health.schedule import Timing
from rlb.health.service import ServiceSettings

# HAProxy's `inter` default; keepalived's delay_loop (60 s) would find a dead server
# after two minutes, which no LB user expects of a default
DEFAULT_INTERVAL = 2.0
MAX_COUNT = 1000

# The clause's own settings, beside the checker's: how often, and how many in a row.
# (timeout is the checkers' common setting: one timeout, checked against the interval)
INTERVAL, RISE, FALL, SLOW_START = "interval", "rise", "fall", "slow-start"
TIMEOUT = s.COMMON[-1].name      # the checkers' common timeout (its default: 1 s)


def _count(value):
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number of checks") from None
    if not 1 <= n <= MAX_COUNT:
        raise ValueError(f"{value!r} must be 1-{MAX_COUNT} checks in a row")
    return n


def _slow(value):
    return 0.0 if str(value) in ("0", "0.0") else s.SECONDS.parse(value)


COUNT = s.Type("N", _count)
TIMING = (
    s.Setting(INTERVAL, s.SECONDS, DEFAULT_INTERVAL, "seconds from one check's start to the next"),
    s.Setting(RISE, COUNT, 1, "successes in a row that bring a server up"),
    s.Setting(FALL, COUNT, 2, "failures in a row that take a server down"),
    s.Setting(SLOW_START, s.Type("SECONDS", _slow, lambda v: f"{v:g}"), 0.0,
              "seconds over which the weight ramps up after the server comes back (0: none)"),
)


def clause_settings(kind: str) -> tuple[s.Setting, ...]:
    """Every setting a `check KIND` clause takes, in the order it prints."""
    return TIMING + checkers.CHECKERS[kind].all_settings


@dataclass(frozen=True)
class Clause:
    """One `check KIND ...` clause: the configured checker and its timing. Equal clauses
    are the same check: a commit that keeps it keeps its state."""
    check: checkers.Check
    interval: float = DEFAULT_INTERVAL
    rise: int = 1
    fall: int = 2
    slowstart: float = 0.0

    @property
    def kind(self) -> str:
        return self.check.kind

    @functools.cached_property
    def timing(self) -> Timing:
        return Timing(self.interval, self.check.get(TIMEOUT))

    def words(self) -> list[tuple[str, str]]:
        """(setting, text) of each value that is not its default, in the printing order."""
        mine = {INTERVAL: self.interval, RISE: self.rise, FALL: self.fall,
                SLOW_START: self.slowstart}
        out = [(t.name, t.type.text(mine[t.name])) for t in TIMING if mine[t.name] != t.default]
        # a timeout that is the default for this interval (clause()) is not written
        auto = min(s.COMMON[-1].default, self.interval)
        return out + [(k, v) for k, v in self.check.words()
                      if k != TIMEOUT or self.check.get(TIMEOUT) != auto]

    @functools.cached_property
    def text(self) -> str:
        """The clause as written after `check` (show ip vs health shows it per server)."""
        return " ".join([self.kind, *(f"{k} {quote(v)}" for k, v in self.words())])


def clause(kind: str, given: dict[str, Any] | None = None) -> Clause:
    """A Clause from the operator's values (by setting name), all validated now: a
    CommandError names the setting and the reason, and nothing is made."""
    if kind not in checkers.CHECKERS:
        raise CommandError(f"unknown checker {kind!r} (one of {', '.join(checkers.CHECKERS)})")
    given = {k: v for k, v in (given or {}).items() if v is not None}
    mine = s.parse(kind, TIMING, {t.name: given.pop(t.name) for t in TIMING if t.name in given})
    interval = mine[INTERVAL]
    default = s.COMMON[-1].default
    if TIMEOUT not in given and interval < default:
        given[TIMEOUT] = interval          # the default timeout fits in the interval
    check = checkers.configure(kind, given)
    c = Clause(check, interval, mine[RISE], mine[FALL], mine[SLOW_START])
    c.timing                                 # timeout <= interval, else a CommandError
    return c


def check_port(c: Clause | None, port: int) -> None:
    """Refuse a clause aimed at a port that speaks something else (https at 80)."""
    if c is None:
        return
    at = c.check.get("port") or port
    for wrong, speaks in c.check.checker.wrong_ports:
        if at == wrong:
            raise CommandError(f"{c.kind} check of port {at}, which speaks {speaks}: give the "
                               f"port that speaks {c.kind} (port N)")


def quote(text: str) -> str:
    """A value as the grammar reads it back: in double quotes when it has spaces, quotes
    or backslashes (a regex, a command)."""
    if text and not any(ch.isspace() or ch in '"\\' for ch in text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# A withdrawn VIP is announced again only this long after (seconds): OSPF neighbours
# ignore an LSA that comes back within MinLSArrival (1 s) of its withdrawal for 8-9 s
# (research/routing.md 5.4)
DEFAULT_HOLD_DOWN = 2.0

# `on-failure inhibit|remove`: keepalived's inhibit_on_failure (weight 0, connections
# drain) or its default (out of the scheduler's list)
INHIBIT, REMOVE = "inhibit", "remove"


@dataclass(frozen=True)
class Policy:
    """A service's health settings (keepalived's virtual_server keywords): the default
    check of its real servers without their own, quorum and hysteresis, the commands
    run when the quorum is gained or lost, alpha, omega, and what down means."""
    check: Clause | None = None
    quorum: int = 1
    hysteresis: int = 0
    quorum_up: str | None = None
    quorum_down: str | None = None
    alpha: bool = False
    omega: bool = False
    inhibit: bool = True
    # route announcement (rlb.routing.announce): the port on whose kni the VIP is put
    # while the service is up, and how long a withdrawn VIP waits before it comes back
    announce: str | None = None
    hold_down: float = DEFAULT_HOLD_DOWN
    announce_all: bool = False     # `when all`: the VIP only while all its services are up

    def __post_init__(self):
        ServiceSettings(self.quorum, self.hysteresis)       # its checks, at configuration time


DEFAULT_POLICY = Policy()
