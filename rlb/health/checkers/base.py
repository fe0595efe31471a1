"""What every checker shares: the Checker descriptor, the Probe it is given, the
configured Check whose `run` bounds every probe by its timeout, and the error words."""
from __future__ import annotations

import asyncio
import os
import ssl
from dataclasses import dataclass, field, replace
from typing import Any, Awaitable, Callable

from rlb.health.result import Result

from . import settings as _settings


@dataclass(frozen=True)
class Checker:
    """A kind of check: its name, help, the settings it takes beyond the COMMON ones,
    and `probe(probe)`, a coroutine returning a Result (or raising OSError / ssl.SSLError,
    which become a failed Result). `validate(values)` refuses combinations
    (CommandError) once every value is parsed."""
    name: str
    help: str
    settings: tuple[_settings.Setting, ...]
    probe: Callable[["Probe"], Awaitable[Result]]
    validate: Callable[[dict[str, Any]], None] | None = None
    # well-known ports that speak something else: (port, what it speaks); a check
    # aimed at one is refused (an https check of port 80 could never pass)
    wrong_ports: tuple[tuple[int, str], ...] = ()

    @property
    def all_settings(self) -> tuple[_settings.Setting, ...]:
        return _settings.COMMON + self.settings


@dataclass
class Probe:
    """What one probe is given: where to go and the check's values. A probe sets `stage`
    to what it waits for, so a timeout says where it hung."""
    addr: str
    port: int
    values: dict[str, Any]
    deadline: float                      # the event loop's time the probe must end by
    stage: str = ""
    # the data path's source (rlb.health.path.Target) when the check names none
    path_source: str | None = None
    sport: int = 0                       # local port to bind (0: any)

    @property
    def source(self) -> str | None:
        return self.values["source"] or self.path_source

    @property
    def timeout(self) -> float:
        return self.values["timeout"]

    def local_addr(self):
        return (self.source or "0.0.0.0", self.sport) if self.source or self.sport else None


@dataclass(frozen=True)
class Check:
    """A configured check. Two checks with the same kind and values are equal, so the
    state machine can keep the state of a check whose settings did not change."""
    checker: Checker = field(compare=False)
    kind: str
    values: tuple[tuple[str, Any], ...]

    def get(self, name: str) -> Any:
        return dict(self.values)[name]

    def words(self) -> list[tuple[str, str]]:
        """(setting, text) of every value that is not its default, in the checker's
        order: what `show running-config` writes after `check KIND`."""
        values = dict(self.values)
        return [(s.name, s.type.text(values[s.name])) for s in self.checker.all_settings
                if values[s.name] != s.default]

    async def run(self, addr: str, port: int, source: str | None = None,
                  sport: int = 0) -> Result:
        """Probe addr (at the check's port, else `port`): never longer than the timeout,
        never raising for what the server does. source/sport: where the data path says
        the probe leaves from (rlb.health.path); the check's own `source` wins."""
        values = dict(self.values)
        loop = asyncio.get_running_loop()
        start = loop.time()
        probe = Probe(addr, values["port"] or port, values, start + values["timeout"],
                      path_source=source, sport=sport)
        try:
            async with asyncio.timeout_at(probe.deadline):
                result = await self.checker.probe(probe)
            return replace(result, latency=loop.time() - start)
        except TimeoutError:
            during = f" during {probe.stage}" if probe.stage else ""
            return Result(False, loop.time() - start,
                          f"timeout after {values['timeout']} s{during}", timed_out=True)
        except (OSError, ssl.SSLError, EOFError) as e:
            return Result(False, loop.time() - start, describe(e, probe.stage))
        except asyncio.LimitOverrunError:    # a header line past the stream's 64 KiB limit
            return Result(False, loop.time() - start, f"{probe.stage} too long")


def describe(exc: BaseException, stage: str = "") -> str:
    """The operator's words for what went wrong: `connection refused`, `TLS handshake
    failed: wrong version number`, `no route to host`."""
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        return f"TLS handshake failed: {str(reason).lower().replace('_', ' ')}"
    if stage == "TLS handshake":
        return f"TLS handshake failed: {describe(exc)}"
    if isinstance(exc, EOFError | asyncio.IncompleteReadError):
        return "connection closed by the server"
    if isinstance(exc, OSError) and exc.errno:
        # by the errno: asyncio's sock_connect words its errors "Connect call failed (...)"
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__
