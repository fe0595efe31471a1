"""One real server's health: rise/fall counting, maintenance, and the weight it should have now."""
import math
from dataclasses import dataclass

from rlb.errors import CommandError
from rlb.health.result import Result

# IPVS's (and rlb.model.services') weight range
MAX_WEIGHT = 65535


@dataclass(frozen=True)
class ServerSettings:
    """What the configuration says about one real server's health and weight.

    rise/fall: consecutive successes to come up, consecutive failures to go down
    (HAProxy's `rise`/`fall`). The defaults are keepalived's: one success brings a
    server up, and `retry 1` (its default) means two failures in a row take it down.
    inhibit: down means weight 0, new flows stop and existing ones drain (keepalived's
    `inhibit_on_failure`, rlb's default as the issue asks); False removes it from
    scheduling. slowstart: seconds over which the weight ramps up after it comes
    back (HAProxy's `slowstart`), 0 for none.
    """
    weight: int = 1
    rise: int = 1
    fall: int = 2
    alpha: bool = False
    inhibit: bool = True
    slowstart: float = 0.0

    def __post_init__(self):
        if not 0 <= self.weight <= MAX_WEIGHT:
            raise CommandError(f"weight {self.weight}: must be 0..{MAX_WEIGHT}")
        if self.rise < 1 or self.fall < 1:
            what = f"rise {self.rise}" if self.rise < 1 else f"fall {self.fall}"
            raise CommandError(f"{what}: must be at least 1 (checks in a row)")
        if self.slowstart < 0:
            raise CommandError(f"slowstart {self.slowstart}: must not be negative")


@dataclass(frozen=True)
class Transition:
    """A change of a server's health: `reason` follows "NAME ADDR:PORT UP|DOWN: "."""
    up: bool
    reason: str
    at: float

    @property
    def state(self) -> str:
        return "UP" if self.up else "DOWN"

    def line(self, who: str) -> str:
        """The event log's line: `rs1 192.168.100.2:80 DOWN: http status 503 after 3
        failures` for who="rs1 192.168.100.2:80"."""
        return f"{who} {self.state}: {self.reason}"


def _times(n: int, word: str, plural: str) -> str:
    return f"{n} {word if n == 1 else plural}"


class ServerHealth:
    """The health of one real server, fed with check results and maintenance commands.

    It never does I/O: record() takes a Result and the time and returns the Transition
    when the server's health changed; weight(now) and in_pool(now) are what the data
    plane should have for it (the service may override them, see ServiceHealth).
    """

    def __init__(self, settings: ServerSettings, now: float):
        self.settings = settings
        # keepalived (check_data.c, after the config is read): an alpha checker starts
        # down ("On daemon startup assume that all RSs are down", keepalived.conf(5));
        # without alpha the server starts up, in the pool.
        self.up = not settings.alpha
        self.since = now
        # Until a first result, one result decides, whatever rise/fall say: keepalived
        # sets retry_it = retry at start ("For non alpha mode, one failure is enough
        # initially") and an alpha checker comes up on its first success (tcp_epilog);
        # HAProxy's init-state up/down are the same rule.
        self.proven = False
        self.streak = 0                 # > 0: successes in a row, < 0: failures in a row
        self.successes = 0
        self.failures = 0
        self.last: Result | None = None
        self.last_at: float | None = None
        self.dynamic: int | None = None   # misc_dynamic weight while up
        self.disabled = False
        self.ramp_from: float | None = None   # when the slow start began, None: none
        self.transitions = 0

    # -- results -----------------------------------------------------------------

    def record(self, result: Result, now: float) -> Transition | None:
        """Count one check result; the Transition when it changes the server's health."""
        self.last, self.last_at = result, now
        if result.ok:
            self.successes += 1
            self.streak = self.streak + 1 if self.streak > 0 else 1
            # keepalived check_misc.c: exit 0 resets the weight to the configured one,
            # 2-255 sets it to code - 2; the checker gives it as Result.weight.
            w = result.weight
            self.dynamic = None if w is None else max(0, min(MAX_WEIGHT, w))
            if not self.up and (not self.proven or self.streak >= self.settings.rise):
                return self._change(True, now, self._up_reason(result))
        else:
            self.failures += 1
            self.streak = self.streak - 1 if self.streak < 0 else -1
            # keepalived check_misc.c: a failure clears the dynamic weight
            self.dynamic = None
            if self.up and (not self.proven or -self.streak >= self.settings.fall):
                return self._change(False, now, self._down_reason(result))
        self.proven = True
        return None

    def _change(self, up: bool, now: float, reason: str) -> Transition:
        self.proven = True
        self.up, self.since = up, now
        self.transitions += 1
        self.ramp_from = now if up and self.settings.slowstart else None
        return Transition(up, reason, now)

    def _up_reason(self, result: Result) -> str:
        ms = result.latency * 1000
        return f"check ok ({ms:.1f} ms) after {_times(self.streak, 'success', 'successes')}"

    def _down_reason(self, result: Result) -> str:
        return f"{result.error or 'check failed'} after {_times(-self.streak, 'failure', 'failures')}"

    # -- maintenance -------------------------------------------------------------

    def disable(self) -> bool:
        """Maintenance: weight 0 whatever the health; the checks go on. True if changed."""
        if self.disabled:
            return False
        self.disabled = True
        return True

    def enable(self, now: float) -> bool:
        """Back from maintenance; a healthy server ramps up again if slowstart is set
        (HAProxy: "It must also start immediately, at least at the minimal step when
        leaving maintenance", server.c server_recalc_eweight)."""
        if not self.disabled:
            return False
        self.disabled = False
        if self.up and self.settings.slowstart:
            self.ramp_from = now
        return True

    def reconfigure(self, settings: ServerSettings) -> None:
        """New settings, the state kept: a changed rise/fall applies from the next result."""
        self.settings = settings
        if not settings.slowstart:
            self.ramp_from = None

    # -- weight now --------------------------------------------------------------

    @property
    def target(self) -> int:
        """The weight the server has when serving: misc_dynamic's, else the configured."""
        return self.settings.weight if self.dynamic is None else self.dynamic

    @property
    def live(self) -> bool:
        """Up and not in maintenance: it counts in the quorum."""
        return self.up and not self.disabled

    def weight(self, now: float) -> int:
        """The weight the scheduler should use now (0 when down or disabled)."""
        if not self.live:
            return 0
        target = self.target
        if self.ramp_from is None or target == 0:
            return target
        elapsed = now - self.ramp_from
        if elapsed >= self.settings.slowstart or elapsed < 0:
            self.ramp_from = None
            return target
        # HAProxy's slowstart is linear from its minimal step to full and rounds up
        # (server.c server_recalc_eweight: `(uweight * w + wmult - 1) / wmult`), so a
        # serving server never gets 0.
        return max(1, min(target, math.ceil(target * elapsed / self.settings.slowstart)))

    @property
    def ramping(self) -> bool:
        """In a slow start: its weight changes with time, without a result."""
        return self.live and self.ramp_from is not None

    def in_pool(self) -> bool:
        """Whether the server stays in the scheduler's list: a down or disabled one is
        removed only when inhibit is off (keepalived without inhibit_on_failure)."""
        return self.live or self.settings.inhibit

    def view(self, now: float) -> dict:
        """What `show ip vs health` prints for the server."""
        last = self.last
        return {
            "state": "UP" if self.up else "DOWN",
            "disabled": self.disabled,
            "since": self.since,
            "last": None if last is None else ("ok" if last.ok else "failed"),
            "last_at": self.last_at,
            "error": "" if last is None else last.error,
            "latency": None if last is None else last.latency,
            "successes": self.successes,
            "failures": self.failures,
            "weight": self.weight(now),
            "configured_weight": self.settings.weight,
            "in_pool": self.in_pool(),
        }
