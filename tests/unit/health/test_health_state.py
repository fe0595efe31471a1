"""One real server's health: rise/fall, alpha, maintenance, slow start, misc_dynamic weight."""
import pytest

from rlb.errors import CommandError
from rlb.health.result import Result
from rlb.health.state import ServerHealth, ServerSettings

OK = Result(True, 0.002)


def fail(error="tcp connect refused"):
    return Result(False, 0.001, error)


def feed(server, results, start=0.0, step=1.0):
    """Record results one per step; the transitions that came out, with their times."""
    out = []
    for i, r in enumerate(results):
        t = server.record(r, start + (i + 1) * step)
        if t is not None:
            out.append(t)
    return out


def test_fall_counts_consecutive_failures_after_the_first_success():
    s = ServerHealth(ServerSettings(rise=2, fall=3), now=0.0)
    assert s.up and not s.proven
    assert feed(s, [OK, fail(), fail(), OK, fail(), fail()]) == []   # never 3 in a row
    assert s.up
    (t,) = feed(s, [fail("http status 503")], start=6.0)
    assert not t.up and t.at == 7.0
    assert t.reason == "http status 503 after 3 failures"
    assert (s.up, s.since, s.failures, s.successes) == (False, 7.0, 5, 2)


def test_rise_counts_consecutive_successes():
    s = ServerHealth(ServerSettings(rise=3, fall=1), now=0.0)
    feed(s, [OK, fail()])
    assert not s.up
    assert feed(s, [OK, OK, fail(), OK, OK], start=2.0) == []
    (t,) = feed(s, [OK], start=7.0)
    assert t.up and t.reason == "check ok (2.0 ms) after 3 successes"


def test_without_alpha_the_first_failure_takes_a_fresh_server_down():
    # keepalived: "For non alpha mode, one failure is enough initially"
    s = ServerHealth(ServerSettings(rise=2, fall=3), now=0.0)
    (t,) = feed(s, [fail()])
    assert not t.up and t.reason == "tcp connect refused after 1 failure"


def test_alpha_starts_down_and_its_first_success_brings_it_up():
    s = ServerHealth(ServerSettings(rise=3, fall=3, alpha=True), now=0.0)
    assert not s.up and s.weight(0.0) == 0
    (t,) = feed(s, [OK])
    assert t.up and t.reason.endswith("after 1 success")
    # from then on, rise and fall count as usual
    assert feed(s, [fail(), fail()], start=1.0) == []
    assert len(feed(s, [fail()], start=3.0)) == 1
    assert feed(s, [OK, OK], start=4.0) == []
    assert feed(s, [OK], start=6.0)[0].up


def test_alpha_server_failing_from_the_start_stays_down_silently():
    s = ServerHealth(ServerSettings(alpha=True), now=0.0)
    assert feed(s, [fail(), fail(), fail()]) == []
    assert not s.up and s.since == 0.0


def test_down_sets_weight_0_or_removes_without_inhibit():
    inhibit = ServerHealth(ServerSettings(weight=5, fall=1), now=0.0)
    remove = ServerHealth(ServerSettings(weight=5, fall=1, inhibit=False), now=0.0)
    for s in (inhibit, remove):
        assert s.weight(0.0) == 5 and s.in_pool()
        feed(s, [fail()])
        assert s.weight(1.0) == 0
    assert inhibit.in_pool() and not remove.in_pool()


def test_slow_start_ramps_linearly_from_1_and_rounds_up():
    s = ServerHealth(ServerSettings(weight=10, rise=1, fall=1, slowstart=20), now=0.0)
    feed(s, [OK])
    assert s.weight(1.5) == 10          # up from the start: no ramp
    feed(s, [fail()], start=1.0)
    (t,) = feed(s, [OK], start=3.0)     # back up at t=4
    assert t.up and s.ramping
    got = [s.weight(4.0 + dt) for dt in (0, 0.1, 1, 2, 2.1, 10, 19.9, 20, 30)]
    assert got == [1, 1, 1, 1, 2, 5, 10, 10, 10]
    assert not s.ramping


def test_slow_start_never_gives_a_weight_1_server_0():
    s = ServerHealth(ServerSettings(weight=1, fall=1, slowstart=60), now=0.0)
    feed(s, [fail(), OK])
    assert [s.weight(2.0 + dt) for dt in (0, 0.01, 30, 59)] == [1, 1, 1, 1]


def test_disable_is_weight_0_whatever_the_health_and_checks_still_count():
    s = ServerHealth(ServerSettings(weight=4, fall=2), now=0.0)
    assert s.disable() and not s.disable()
    assert s.weight(0.0) == 0 and not s.live and s.in_pool()
    # the health keeps being tracked while disabled
    (t,) = feed(s, [fail()])
    assert not t.up and not s.up and s.disabled
    feed(s, [OK], start=1.0)
    assert s.up and s.weight(3.0) == 0
    assert s.view(3.0)["state"] == "UP" and s.view(3.0)["disabled"]
    assert s.enable(3.0) and not s.enable(3.0)
    assert s.weight(3.0) == 4


def test_enable_ramps_again_with_slow_start():
    s = ServerHealth(ServerSettings(weight=8, slowstart=8), now=0.0)
    s.disable()
    s.enable(100.0)
    assert [s.weight(100.0 + dt) for dt in (0, 4, 8)] == [1, 4, 8]


def test_enable_of_a_down_server_leaves_it_at_0():
    s = ServerHealth(ServerSettings(weight=3, fall=1), now=0.0)
    s.disable()
    feed(s, [fail()])
    s.enable(2.0)
    assert s.weight(2.0) == 0


def test_misc_dynamic_weight_overrides_the_configured_while_up():
    s = ServerHealth(ServerSettings(weight=3, rise=1, fall=1), now=0.0)
    feed(s, [Result(True, 0.01, weight=7)])
    assert s.weight(1.0) == 7 and s.target == 7
    feed(s, [Result(True, 0.01, weight=0)], start=1.0)
    assert s.up and s.weight(2.0) == 0
    # exit 0 (no weight) sets the configured weight back, as keepalived's misc_dynamic
    feed(s, [OK], start=2.0)
    assert s.weight(3.0) == 3
    feed(s, [Result(True, 0.01, weight=9), Result(False, 0.01, "exit 1")], start=3.0)
    assert s.weight(5.0) == 0
    feed(s, [OK], start=5.0)
    assert s.weight(6.0) == 3           # the failure cleared the dynamic weight


def test_misc_dynamic_weight_is_clamped_to_the_ipvs_range():
    s = ServerHealth(ServerSettings(), now=0.0)
    feed(s, [Result(True, 0.0, weight=70000)])
    assert s.weight(1.0) == 65535


def test_view_has_what_show_prints():
    s = ServerHealth(ServerSettings(weight=2), now=5.0)
    feed(s, [Result(False, 0.25, "timeout after 1s")], start=5.0)
    v = s.view(7.0)
    assert v == {"state": "DOWN", "disabled": False, "since": 6.0, "last": "failed",
                 "last_at": 6.0, "error": "timeout after 1s", "latency": 0.25,
                 "successes": 0, "failures": 1, "weight": 0, "configured_weight": 2,
                 "in_pool": True}


def test_reconfigure_keeps_the_state_and_counts():
    s = ServerHealth(ServerSettings(fall=3), now=0.0)
    feed(s, [OK, fail(), fail()])
    s.reconfigure(ServerSettings(fall=2, weight=9))
    assert s.up and s.failures == 2 and s.weight(3.0) == 9
    # the streak of 2 failures already meets the new fall at the next failure
    assert not feed(s, [fail()], start=3.0)[0].up


@pytest.mark.parametrize("kwargs, message", [
    ({"rise": 0}, "rise 0: must be at least 1"),
    ({"fall": 0}, "fall 0: must be at least 1"),
    ({"weight": -1}, "weight -1: must be 0..65535"),
    ({"weight": 65536}, "weight 65536: must be 0..65535"),
    ({"slowstart": -1}, "slowstart -1: must not be negative"),
])
def test_bad_settings_are_refused_with_the_reason(kwargs, message):
    with pytest.raises(CommandError, match=message):
        ServerSettings(**kwargs)
