"""The check scheduler on a manual clock: spread, timeouts, no overlap, reconfiguration."""
import asyncio
from collections import Counter

import pytest

from rlb.errors import CommandError
from rlb.health.schedule import ManualClock, MonotonicClock, Scheduler, Timing


def test_timing_defaults_the_timeout_to_the_interval():
    assert Timing(2).timeout == 2
    assert Timing(2, 0.5).timeout == 0.5


@pytest.mark.parametrize("interval, timeout, message", [
    (0, None, "interval 0: must be more than 0 seconds"),
    (-1, 1, "interval -1: must be more than 0"),
    (1, 0, "timeout 0: must be more than 0"),
    (1, 2, "timeout 2 is longer than interval 1"),
])
def test_bad_timing_is_refused_with_the_reason(interval, timeout, message):
    with pytest.raises(CommandError, match=message):
        Timing(interval, timeout)


def test_a_check_runs_once_per_interval_on_its_grid():
    clock = ManualClock(0.0)
    s = Scheduler(clock)
    s.set("a", Timing(1.0, 0.5))
    starts = []
    for _ in range(5):
        t = s.next_time()
        clock.t = t
        ((key, deadline),) = s.due()
        assert key == "a" and deadline == t + 0.5
        starts.append(t)
        assert s.due() == []                    # running: not due again
        clock.advance(0.2)
        s.done("a")
    assert [b - a for a, b in zip(starts, starts[1:])] == pytest.approx([1.0] * 4)


def test_ten_thousand_checks_are_spread_over_their_interval():
    clock = ManualClock(0.0)
    s = Scheduler(clock)
    for i in range(10_000):
        s.set(i, Timing(1.0, 0.5))
    slots = Counter()
    for key, e in s.entries.items():
        assert 0.0 <= e.slot < 1.0
        slots[int(e.slot * 1000)] += 1          # 1000 buckets of 1 ms
    # evenly: 10 a millisecond, none empty, none crowded
    assert len(slots) == 1000 and max(slots.values()) <= 12


def test_adding_a_check_does_not_move_the_others():
    s = Scheduler(ManualClock(0.0))
    for i in range(10):
        s.set(i, Timing(2.0))
    before = {k: e.slot for k, e in s.entries.items()}
    s.set("new", Timing(2.0))
    s.remove(3)
    assert {k: e.slot for k, e in s.entries.items() if k != "new"} == \
        {k: v for k, v in before.items() if k != 3}


def test_unchanged_timing_keeps_the_entry_and_changed_keeps_the_phase():
    clock = ManualClock(0.0)
    s = Scheduler(clock)
    for i in range(3):
        s.set(i, Timing(1.0))
    e = s.entries[2]
    slot = e.slot
    assert s.set(2, Timing(1.0)) is False and s.entries[2] is e and e.slot == slot
    clock.t = 10.0
    assert s.set(2, Timing(4.0, 1.0)) is False and s.entries[2] is e
    # same phase fraction, now on the 4 s grid
    assert e.slot >= 10.0 and (e.slot / 4.0) % 1.0 == pytest.approx(e.phase)


def test_removed_check_is_never_due():
    clock = ManualClock(0.0)
    s = Scheduler(clock)
    s.set("a", Timing(1.0))
    s.set("b", Timing(1.0))
    s.remove("a")
    clock.t = 5.0
    assert [k for k, _ in s.due()] == ["b"]
    s.done("a")                                 # unknown: ignored


def test_a_check_that_takes_its_whole_interval_runs_again_at_once_never_overlapping():
    clock = ManualClock(0.0)
    s = Scheduler(clock)
    s.set("a", Timing(1.0, 1.0))
    first = s.next_time()
    clock.t = first
    s.due()
    clock.t = first + 1.0005                    # the next slot has just passed
    assert s.due() == []                        # still running: no second probe
    s.done("a")
    assert s.next_time() == pytest.approx(first + 1.0)
    ((key, _),) = s.due()
    # and it stays on its grid afterwards
    s.done("a")
    assert s.next_time() == pytest.approx(first + 2.0)


def test_overdue_lists_checks_past_their_deadline():
    clock = ManualClock(0.0)
    s = Scheduler(clock)
    s.set("a", Timing(2.0, 0.5))
    clock.t = s.next_time()
    s.due()
    clock.advance(0.4)
    assert s.overdue() == []
    clock.advance(0.2)
    assert s.overdue() == ["a"]


def test_slack_batches_near_starts():
    clock = ManualClock(0.0)
    s = Scheduler(clock)
    for i in range(1000):
        s.set(i, Timing(1.0))
    clock.t = 0.0
    assert len(s.due(slack=0.01)) in range(9, 13)


def test_run_starts_every_check_each_interval_on_a_manual_clock():
    clock = ManualClock(0.0)
    s = Scheduler(clock)
    for i in range(100):
        s.set(i, Timing(1.0, 0.1))
    started = Counter()

    async def check(key):
        await asyncio.sleep(0)
        s.done(key)

    def launch(key, deadline):
        assert deadline - clock.now() == pytest.approx(0.1)
        started[key] += 1
        asyncio.ensure_future(check(key))

    async def main():
        runner = asyncio.ensure_future(s.run(launch))
        while clock.now() < 10.0:
            await asyncio.sleep(0)
        runner.cancel()

    asyncio.run(main())
    assert set(started.values()) <= {10, 11} and len(started) == 100


def test_monotonic_clock_wait_returns_on_the_event_or_the_timeout():
    async def main():
        clock = MonotonicClock()
        event = asyncio.Event()
        t0 = clock.now()
        await clock.wait(event, 0.01)
        assert clock.now() - t0 >= 0.009
        event.set()
        t1 = clock.now()
        await clock.wait(event, 10)
        assert clock.now() - t1 < 1

    asyncio.run(main())


def run_for(s, clock, seconds, launch):
    async def main():
        runner = asyncio.ensure_future(s.run(launch))
        while clock.now() < seconds:
            await asyncio.sleep(0)
        runner.cancel()

    asyncio.run(main())


def test_run_wakes_for_a_slot_placed_while_it_sleeps():
    # one check, nothing else waiting while it runs: its next slot (0.5 s on) comes
    # before run()'s idle wake-up (1 s), and done() has to wake it
    clock = ManualClock(0.0)
    s = Scheduler(clock)
    s.set("a", Timing(0.5, 0.1))
    starts = []

    async def check():
        await asyncio.sleep(0)
        s.done("a")

    def launch(key, deadline):
        starts.append(clock.now())
        asyncio.ensure_future(check())

    run_for(s, clock, 10.0, launch)
    assert len(starts) in (19, 20, 21)
    assert [b - a for a, b in zip(starts, starts[1:])] == pytest.approx([0.5] * (len(starts) - 1))


def test_run_wakes_for_a_check_added_while_it_sleeps():
    clock = ManualClock(0.0)
    s = Scheduler(clock)
    s.set("slow", Timing(60.0))
    starts = []

    def launch(key, deadline):
        starts.append((key, clock.now()))
        s.done(key)

    async def main():
        runner = asyncio.ensure_future(s.run(launch, idle=60.0))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        s.set("fast", Timing(1.0))
        while clock.now() < 5.0:
            await asyncio.sleep(0)
        runner.cancel()

    asyncio.run(main())
    assert sum(1 for k, _ in starts if k == "fast") >= 4
