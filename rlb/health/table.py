"""Every service's health and the checks' schedule together: one sync, one record per result."""
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field

from rlb.health.result import Result
from rlb.health.schedule import Clock, Scheduler, Timing
from rlb.health.service import Changes, ServiceHealth, ServiceSettings, ServiceTransition
from rlb.health.state import ServerSettings


@dataclass(frozen=True)
class ServerConfig:
    """One real server's `check` clause as the state needs it (the checker itself,
    its kind and options, is the caller's: the table schedules keys, not probes)."""
    timing: Timing | None
    settings: ServerSettings = ServerSettings()


@dataclass(frozen=True)
class ServiceConfig:
    settings: ServiceSettings = ServiceSettings()
    servers: Mapping[Hashable, ServerConfig] = field(default_factory=dict)


QuorumHook = Callable[[Hashable, ServiceTransition], None]


class HealthTable:
    """The daemon's health state: ServiceHealth by service key, and the Scheduler whose
    keys are (service key, server key). sync() takes the whole configuration after a
    commit; a server whose key is unchanged keeps its state and its check's phase."""

    def __init__(self, clock: Clock, on_quorum_up: QuorumHook | None = None,
                 on_quorum_down: QuorumHook | None = None):
        self.clock = clock
        self.scheduler = Scheduler(clock)
        self.services: dict[Hashable, ServiceHealth] = {}
        self.on_quorum_up = on_quorum_up
        self.on_quorum_down = on_quorum_down

    def _hook(self, hook: QuorumHook | None, service: Hashable):
        if hook is None:
            return None
        return lambda t: hook(service, t)

    def sync(self, config: Mapping[Hashable, ServiceConfig]) -> dict[Hashable, Changes]:
        """Make the table the configuration's. A removed service shuts down as a
        removed one does (quorum_down if it was up); a new one starts as at boot."""
        now = self.clock.now()
        out: dict[Hashable, Changes] = {}
        for key in [k for k in self.services if k not in config]:
            svc = self.services.pop(key)
            t = svc.shutdown(now, removed=True)
            out[key] = Changes(service=t)
            for rs in svc.servers:
                self.scheduler.remove((key, rs))
        for key, c in config.items():
            svc = self.services.get(key)
            if svc is None:
                svc = self.services[key] = ServiceHealth(
                    c.settings, now, on_quorum_up=self._hook(self.on_quorum_up, key),
                    on_quorum_down=self._hook(self.on_quorum_down, key))
            gone = [rs for rs in svc.servers if rs not in c.servers]
            changes = svc.sync({rs: s.settings for rs, s in c.servers.items()}, now, c.settings)
            for rs in gone:
                self.scheduler.remove((key, rs))
            for rs, s in c.servers.items():
                if s.timing is None:        # no check: up, at its weight, unprobed
                    self.scheduler.remove((key, rs))
                else:
                    self.scheduler.set((key, rs), s.timing)
            if changes:
                out[key] = changes
        return out

    def record(self, key: tuple[Hashable, Hashable], result: Result) -> Changes:
        """A check's result: the check is done (its next start is scheduled) and its
        server's state moves. A result for a check removed meanwhile is dropped."""
        now = self.clock.now()
        self.scheduler.done(key, now)
        service, server = key
        svc = self.services.get(service)
        if svc is None or server not in svc.servers:
            return Changes()
        return svc.record(server, result, now)

    def skip(self, key: tuple[Hashable, Hashable]) -> None:
        """A check ended without a result to count (its verdict was not the server's):
        it is done, and runs again at its next slot."""
        self.scheduler.done(key, self.clock.now())

    def shutdown(self) -> dict[Hashable, ServiceTransition]:
        """The daemon stops: each service goes down (quorum_down with omega)."""
        now = self.clock.now()
        out = {}
        for key, svc in self.services.items():
            t = svc.shutdown(now)
            if t is not None:
                out[key] = t
        return out
