"""When each health check runs: a fixed phase per check spreads thousands over their interval."""
import asyncio
import heapq
import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Protocol

from rlb.errors import CommandError

# Phases are the golden-ratio sequence frac(i * 0.618...): each new check falls in the
# largest gap left by the ones before, so N checks of one interval are spread nearly
# evenly over it and an added or reconfigured check never moves the others. keepalived
# scatters its first checks at random instead (`warmup`, up to delay_loop).
GOLDEN = (math.sqrt(5) - 1) / 2


@dataclass
class Timing:
    """How often a check runs and how long it may take (seconds).

    The timeout defaults to the interval (HAProxy: without `timeout check`, `inter`
    bounds the check) and may not exceed it. keepalived accepts a connect_timeout
    longer than delay_loop because it waits delay_loop after each check ends, so its
    period stretches to timeout + delay_loop on a dead server; rlb runs checks on a
    fixed grid so that fall x interval + timeout bounds the detection time (the
    issue's goal), and a check of a server never overlaps the previous one, which a
    timeout longer than the interval would force. A keepalived.conf import with
    connect_timeout > delay_loop has to lower the timeout or raise the interval.
    """
    interval: float
    timeout: float | None = None

    def __post_init__(self):
        if not self.interval > 0:
            raise CommandError(f"interval {self.interval}: must be more than 0 seconds")
        if self.timeout is None:
            self.timeout = self.interval
        if not self.timeout > 0:
            raise CommandError(f"timeout {self.timeout}: must be more than 0 seconds")
        if self.timeout > self.interval:
            raise CommandError(
                f"timeout {self.timeout} is longer than interval {self.interval}: a check "
                "would still run when the next one is due")


class Clock(Protocol):
    def now(self) -> float: ...

    async def wait(self, event: asyncio.Event, timeout: float) -> None:
        """Return when the event is set or the timeout has passed."""


class MonotonicClock:
    """The daemon's clock."""

    def now(self) -> float:
        return time.monotonic()

    async def wait(self, event: asyncio.Event, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            pass


class ManualClock:
    """A clock that moves only when told to (tests, simulations): a wait() not cut short
    by its event jumps the time forward by its timeout."""

    def __init__(self, start: float = 1000.0):
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> float:
        self.t += seconds
        return self.t

    async def wait(self, event: asyncio.Event, timeout: float) -> None:
        # let the ready tasks run first (checks finishing "at once"), then jump
        for _ in range(3):
            await asyncio.sleep(0)
            if event.is_set():
                return
        self.t += timeout


@dataclass(slots=True)
class _Entry:
    key: Hashable
    timing: Timing
    phase: float             # the fraction of the interval where its grid starts
    slot: float = 0.0        # the next start on the check's grid
    running: bool = False
    deadline: float = 0.0
    version: int = 0         # bumped when its heap item goes stale


class Scheduler:
    """The start times of every check. Pure bookkeeping on the clock's time: due() says
    which checks to start, done() that one finished; run() is the loop around it."""

    def __init__(self, clock: Clock):
        self.clock = clock
        self.epoch = clock.now()
        self.entries: dict[Hashable, _Entry] = {}
        self._heap: list[tuple[float, int, int, Hashable]] = []
        self._added = 0
        self._seq = 0
        self._wake = asyncio.Event()
        self._wake_at = math.inf    # when run() is due to look again

    # -- configuration -----------------------------------------------------------

    def set(self, key: Hashable, timing: Timing) -> bool:
        """Add a check, or change one's timing keeping its phase; True if it is new.
        A check whose timing is unchanged is left exactly as it was."""
        e = self.entries.get(key)
        if e is not None and e.timing == timing:
            return False
        new = e is None
        if new:
            e = self.entries[key] = _Entry(key, timing, (self._added * GOLDEN) % 1.0)
            self._added += 1
        e.timing = timing
        if not e.running:       # a running check takes its new timing when done
            self._place(e, self._grid_at_or_after(e, self.clock.now()))
        return new

    def remove(self, key: Hashable) -> None:
        e = self.entries.pop(key, None)
        if e is not None:
            e.version += 1      # its heap items are stale now

    # -- the grid ----------------------------------------------------------------

    def _grid_at_or_after(self, e: _Entry, t: float) -> float:
        iv = e.timing.interval
        first = self.epoch + e.phase * iv
        k = max(0, math.ceil((t - first) / iv - 1e-9))
        return first + k * iv

    def _place(self, e: _Entry, slot: float) -> None:
        e.slot = slot
        e.version += 1
        self._seq += 1
        heapq.heappush(self._heap, (slot, self._seq, e.version, e.key))
        if slot < self._wake_at:    # run() sleeps past it: wake it up
            self._wake.set()

    # -- the loop's questions ------------------------------------------------------

    def due(self, now: float | None = None, slack: float = 0.0) -> list[tuple[Hashable, float]]:
        """The checks to start now (those due within `slack`, to batch wake-ups), each
        with its deadline; they count as running until done()."""
        now = self.clock.now() if now is None else now
        out = []
        heap = self._heap
        while heap and heap[0][0] <= now + slack:
            _, _, version, key = heapq.heappop(heap)
            e = self.entries.get(key)
            if e is None or e.version != version or e.running:
                continue
            e.running = True
            e.deadline = now + e.timing.timeout
            out.append((key, e.deadline))
        return out

    def done(self, key: Hashable, now: float | None = None) -> None:
        """A check finished (or was given up on): its next start is its next grid slot,
        at once if that has passed (a check that took its whole interval), never two
        at a time."""
        e = self.entries.get(key)
        if e is None or not e.running:
            return
        now = self.clock.now() if now is None else now
        e.running = False
        iv = e.timing.interval
        slot = self._grid_at_or_after(e, e.slot + iv * 0.5)   # the slot after the one run
        if slot < now:
            # late: start now, and stay on the grid (the latest slot not after now)
            slot = self._grid_at_or_after(e, now)
            if slot > now:
                slot -= iv
        self._place(e, slot)

    def overdue(self, now: float | None = None) -> list[Hashable]:
        """Running checks past their deadline: the runner failed to time them out."""
        now = self.clock.now() if now is None else now
        return [k for k, e in self.entries.items() if e.running and e.deadline < now]

    def next_time(self) -> float | None:
        """When due() next has something to say, None if no check waits."""
        heap = self._heap
        while heap:
            slot, _, version, key = heap[0]
            e = self.entries.get(key)
            if e is not None and e.version == version and not e.running:
                return slot
            heapq.heappop(heap)
        return None

    async def run(self, launch: Callable[[Hashable, float], None], *,
                  flush: Callable[[], None] | None = None,
                  slack: float = 0.002, idle: float = 1.0) -> None:
        """Start the checks as they fall due, forever. launch(key, deadline) starts one
        without blocking (a task that enforces the deadline, or a probe put in a batch)
        and calls done(key) when it ends; flush(), after each wake-up's launches, sends
        the batch. `slack` batches starts a few ms apart into one wake-up."""
        while True:
            now = self.clock.now()
            self._wake.clear()
            for key, deadline in self.due(now, slack):
                launch(key, deadline)
            if flush is not None:
                flush()
            nxt = self.next_time()
            delay = idle if nxt is None else min(idle, max(0.0, nxt - now))
            self._wake_at = now + delay
            await self.clock.wait(self._wake, delay)
            self._wake_at = math.inf
