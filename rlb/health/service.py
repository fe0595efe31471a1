"""A virtual service's health: its servers, quorum with hysteresis, sorry server, hook timing."""
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field

from rlb.errors import CommandError
from rlb.health.result import Result
from rlb.health.state import MAX_WEIGHT, ServerHealth, ServerSettings, Transition

# the key of the sorry server in placements()
SORRY = "sorry-server"


@dataclass(frozen=True)
class ServiceSettings:
    """keepalived's virtual_server keywords: `quorum` (default 1), `hysteresis` (0),
    `sorry_server` (here: whether one is configured, and its weight), `omega`."""
    quorum: int = 1
    hysteresis: int = 0
    sorry: bool = False
    sorry_weight: int = 1
    omega: bool = False

    def __post_init__(self):
        if self.quorum < 1:
            # quorum 0 would hold the service up with no server at all
            raise CommandError(f"quorum {self.quorum}: must be at least 1")
        if self.hysteresis < 0:
            raise CommandError(f"hysteresis {self.hysteresis}: must not be negative")
        if not 0 <= self.sorry_weight <= MAX_WEIGHT:
            raise CommandError(f"sorry-server weight {self.sorry_weight}: must be 0..{MAX_WEIGHT}")


@dataclass(frozen=True)
class ServiceTransition(Transition):
    """The service's quorum changed: up (quorum_up's time) or down (quorum_down's); its
    state and event-log line as a server's."""
    weight_sum: int
    initial: bool = False


@dataclass(frozen=True)
class Placement:
    """What the scheduler's list should hold for one server: in it or not, at what weight."""
    in_pool: bool
    weight: int


@dataclass
class Changes:
    """What one event changed: the servers' transitions and the service's, if any."""
    servers: list[tuple[Hashable, Transition]] = field(default_factory=list)
    service: ServiceTransition | None = None

    def __bool__(self):
        return bool(self.servers) or self.service is not None


Hook = Callable[[ServiceTransition], None]


class ServiceHealth:
    """The health of one virtual service: its real servers' ServerHealth by key, its
    quorum state, and when the caller's quorum_up/quorum_down hooks are due.

    The hooks are plain callables, called synchronously at the transition; running a
    command is the caller's business. The first sync() sets the state without calling
    them, as keepalived does at start (set_quorum_states); with `alpha` the servers
    start down, so the service starts down and quorum_up runs when it comes up.
    """

    def __init__(self, settings: ServiceSettings, now: float, *,
                 on_quorum_up: Hook | None = None, on_quorum_down: Hook | None = None):
        self.settings = settings
        self.servers: dict[Hashable, ServerHealth] = {}
        self.on_quorum_up = on_quorum_up
        self.on_quorum_down = on_quorum_down
        self.up = False
        self.since = now
        self.started = False
        self.stopped = False

    # -- configuration -----------------------------------------------------------

    def sync(self, servers: Mapping[Hashable, ServerSettings], now: float,
             settings: ServiceSettings | None = None) -> Changes:
        """Make the servers those given: a key already known keeps its state (its new
        settings apply from now), a new key starts fresh, a missing one is dropped;
        then the quorum is evaluated again (a quorum change can move the service,
        keepalived's init_service_vs: "we may have got/lost quorum due to quorum
        setting changed")."""
        if settings is not None:
            self.settings = settings
        for key in [k for k in self.servers if k not in servers]:
            del self.servers[key]
        for key, s in servers.items():
            known = self.servers.get(key)
            if known is None:
                self.servers[key] = ServerHealth(s, now)
            elif known.settings != s:
                known.reconfigure(s)
        changes = Changes()
        if not self.started:
            self.started = True
            # keepalived set_quorum_states(): up when the live weight reaches
            # quorum + hysteresis, no notify script at start
            total = self.weight_sum()
            self.up = total >= self.settings.quorum + self.settings.hysteresis
            self.since = now
            changes.service = ServiceTransition(
                self.up, self._reason(self.up, total, initial=True), now, total, initial=True)
        else:
            changes.service = self._evaluate(now)
        return changes

    # -- events ------------------------------------------------------------------

    def record(self, key: Hashable, result: Result, now: float) -> Changes:
        """A check result for one server (KeyError if the key is not the service's)."""
        changes = Changes()
        server = self.servers[key]
        before = (server.live, server.target)
        t = server.record(result, now)
        if t is not None:
            changes.servers.append((key, t))
        # The quorum moves only with the sum of live weights, and this result can change
        # only this server's part: most results (thousands a second) change nothing, and
        # summing every server after each is O(servers) per result (bench/health.py).
        if t is not None or (server.live, server.target) != before:
            changes.service = self._evaluate(now)
        return changes

    def disable(self, key: Hashable, now: float) -> Changes:
        """Maintenance of one server: weight 0, out of the quorum, checks still running."""
        self.servers[key].disable()
        return Changes(service=self._evaluate(now))

    def enable(self, key: Hashable, now: float) -> Changes:
        self.servers[key].enable(now)
        return Changes(service=self._evaluate(now))

    def shutdown(self, now: float, *, removed: bool = False) -> ServiceTransition | None:
        """The daemon stops (or, removed=True, a commit removes the service): the service
        goes down. keepalived (ipwrapper.c do_vs_notifies) runs quorum_down on a stop
        only with `omega` ("Only send non SNMP notifies when stopping if omega set"),
        and on a service removed by a reload whatever omega says, as its servers are
        taken out and the quorum is lost. Unlike keepalived, which calls quorum_down
        at a stop even when the quorum was already down, the hook runs only for a
        service that was up (the down script already ran for it)."""
        if self.stopped:
            return None
        self.stopped = True
        if not self.up:
            return None
        self.up, self.since = False, now
        why = "service removed" if removed else "shutting down"
        t = ServiceTransition(False, why, now, self.weight_sum())
        if (removed or self.settings.omega) and self.on_quorum_down:
            self.on_quorum_down(t)
        return t

    # -- quorum ------------------------------------------------------------------

    def weight_sum(self) -> int:
        """keepalived's weigh_live_realservers(): the weights of the live servers. The
        target weight is counted, not a slow start's ramp: the server is up with its
        full capacity, only its share of new flows is held back."""
        return sum(s.target for s in self.servers.values() if s.live)

    def _evaluate(self, now: float) -> ServiceTransition | None:
        # keepalived ipwrapper.c update_quorum_state(): the threshold is
        # quorum - hysteresis while up and quorum + hysteresis while down; it goes
        # down when the sum is below it (or 0), comes up when the sum reaches it.
        if self.stopped:
            return None
        q, h = self.settings.quorum, self.settings.hysteresis
        total = self.weight_sum()
        if not self.up and total >= q + h:
            up = True
        elif self.up and (total == 0 or total < q - h):
            up = False
        else:
            return None
        self.up, self.since = up, now
        t = ServiceTransition(up, self._reason(up, total), now, total)
        hook = self.on_quorum_up if up else self.on_quorum_down
        if hook:
            hook(t)
        return t

    def _reason(self, up: bool, total: int, initial: bool = False) -> str:
        q, h = self.settings.quorum, self.settings.hysteresis
        if initial:
            what = "starting with quorum" if up else "starting without quorum"
            op = ">=" if up else "<"
            return f"{what}: weight {total} {op} {q + h} (quorum {q} + hysteresis {h})"
        if up:
            return f"quorum gained: weight {total} >= {q + h} (quorum {q} + hysteresis {h})"
        if total == 0:      # keepalived: a sum of 0 loses it whatever the threshold
            return f"quorum lost: weight 0 (quorum {q} - hysteresis {h})"
        return f"quorum lost: weight {total} < {q - h} (quorum {q} - hysteresis {h})"

    # -- what the data plane gets --------------------------------------------------

    @property
    def sorry_active(self) -> bool:
        """keepalived: the sorry server replaces the pool while the quorum is lost
        ("all real servers will be brought down when the quorum is not achieved and
        be replaced with the sorry server", keepalived.conf(5)); with the default
        quorum 1 that is when no live server has a weight."""
        return self.settings.sorry and not self.up

    def placements(self, now: float) -> dict[Hashable, Placement]:
        """Every server's place and weight now, and the sorry server's under SORRY.
        While the sorry server serves, the live servers are taken out as a down one
        is (ipwrapper.c perform_quorum_state), and come back with the quorum."""
        sorry = self.sorry_active
        out = {}
        for key, s in self.servers.items():
            if sorry:
                out[key] = Placement(s.settings.inhibit, 0)
            else:
                out[key] = Placement(s.in_pool(), s.weight(now))
        if self.settings.sorry:
            out[SORRY] = Placement(sorry, self.settings.sorry_weight if sorry else 0)
        return out

    def ramping(self) -> list[Hashable]:
        """The servers in a slow start: placements() changes for them with time alone."""
        return [k for k, s in self.servers.items() if s.ramping]

    def view(self, now: float) -> dict:
        """What `show ip vs health SERVICE` prints for the service."""
        return {
            "state": "UP" if self.up else "DOWN",
            "since": self.since,
            "quorum": self.settings.quorum,
            "hysteresis": self.settings.hysteresis,
            "weight_sum": self.weight_sum(),
            "sorry_active": self.sorry_active,
        }
