"""A service's health: quorum with hysteresis, the hooks' timing, sorry server, omega, sync."""
import pytest

from rlb.errors import CommandError
from rlb.health.result import Result
from rlb.health.service import SORRY, Placement, ServiceHealth, ServiceSettings
from rlb.health.state import ServerSettings

OK = Result(True, 0.001)
BAD = Result(False, 0.001, "tcp connect refused")


class Hooks:
    def __init__(self):
        self.calls = []

    def up(self, t):
        self.calls.append(("up", t.at))

    def down(self, t):
        self.calls.append(("down", t.at))


def service(n=3, settings=ServiceSettings(), server=ServerSettings(fall=1), now=0.0):
    hooks = Hooks()
    svc = ServiceHealth(settings, now, on_quorum_up=hooks.up, on_quorum_down=hooks.down)
    svc.sync({f"rs{i}": server for i in range(1, n + 1)}, now)
    return svc, hooks


def test_starts_up_without_calling_the_hooks():
    svc, hooks = service()
    assert svc.up and hooks.calls == []
    assert svc.weight_sum() == 3


def test_all_down_loses_the_quorum_once_and_regains_it_once():
    svc, hooks = service()
    svc.record("rs1", BAD, 1.0)
    svc.record("rs2", BAD, 1.0)
    assert svc.up and hooks.calls == []
    ch = svc.record("rs3", BAD, 2.0)
    assert [t.state for _, t in ch.servers] == ["DOWN"]
    assert ch.service.state == "DOWN" and ch.service.weight_sum == 0
    assert ch.service.reason == "quorum lost: weight 0 (quorum 1 - hysteresis 0)"
    assert hooks.calls == [("down", 2.0)]
    svc.record("rs3", BAD, 3.0)
    assert hooks.calls == [("down", 2.0)]
    ch = svc.record("rs2", OK, 4.0)
    assert ch.service.up and ch.service.reason.startswith("quorum gained: weight 1 >= 1")
    assert hooks.calls == [("down", 2.0), ("up", 4.0)]


def test_hysteresis_thresholds_are_keepalived_s():
    # quorum 3 hysteresis 1 with weight-1 servers: up needs 4, down when below 2
    svc, hooks = service(n=5, settings=ServiceSettings(quorum=3, hysteresis=1))
    assert svc.up                                   # 5 >= 4
    for i, (key, r) in enumerate([("rs1", BAD), ("rs2", BAD), ("rs3", BAD)]):
        svc.record(key, r, float(i))
    assert svc.up and svc.weight_sum() == 2         # 2 is not below 3 - 1
    ch = svc.record("rs4", BAD, 10.0)
    assert not svc.up and ch.service.reason == "quorum lost: weight 1 < 2 (quorum 3 - hysteresis 1)"
    for key in ("rs1", "rs2"):
        assert svc.record(key, OK, 11.0).service is None    # 3: not yet 3 + 1
    assert svc.record("rs3", OK, 12.0).service.up
    assert hooks.calls == [("down", 10.0), ("up", 12.0)]


def test_starting_between_the_thresholds_starts_down():
    # keepalived set_quorum_states: up at start only with quorum + hysteresis
    svc, hooks = service(n=3, settings=ServiceSettings(quorum=3, hysteresis=1))
    assert not svc.up and hooks.calls == []


def test_a_server_flapping_every_check_does_not_flap_the_service():
    svc, hooks = service(n=3, settings=ServiceSettings(quorum=2, hysteresis=1))
    svc.record("rs3", BAD, 0.5)                     # steady down
    for i in range(100):
        svc.record("rs1", OK if i % 2 else BAD, float(i))
        svc.record("rs2", OK, float(i))
        assert svc.up
    assert hooks.calls == []


def test_without_hysteresis_the_same_flapping_flaps_the_service():
    # the control for the test above: it is the hysteresis that holds the service
    svc, hooks = service(n=3, settings=ServiceSettings(quorum=2))
    svc.record("rs3", BAD, 0.5)
    for i in range(10):
        svc.record("rs1", OK if i % 2 else BAD, float(i))
        svc.record("rs2", OK, float(i))
    assert len(hooks.calls) == 10


def test_weights_count_in_the_quorum_and_disabled_servers_do_not():
    hooks = Hooks()
    svc = ServiceHealth(ServiceSettings(quorum=5), 0.0, on_quorum_down=hooks.down)
    svc.sync({"big": ServerSettings(weight=4), "small": ServerSettings(weight=1)}, 0.0)
    assert svc.up and svc.weight_sum() == 5
    ch = svc.disable("small", 1.0)
    assert ch.service.state == "DOWN" and hooks.calls == [("down", 1.0)]
    assert svc.placements(1.0)["small"] == Placement(True, 0)
    assert svc.enable("small", 2.0).service.up


def test_misc_dynamic_weight_counts_in_the_quorum():
    svc, hooks = service(n=1, settings=ServiceSettings(quorum=5))
    assert not svc.up
    assert svc.record("rs1", Result(True, 0.0, weight=5), 1.0).service.up
    assert svc.record("rs1", Result(True, 0.0, weight=0), 2.0).service.state == "DOWN"


def test_sorry_server_replaces_the_pool_while_the_quorum_is_lost():
    settings = ServiceSettings(sorry=True, sorry_weight=2)
    svc, _ = service(n=2, settings=settings)
    p = svc.placements(0.0)
    assert p == {"rs1": Placement(True, 1), "rs2": Placement(True, 1), SORRY: Placement(False, 0)}
    svc.record("rs1", BAD, 1.0)
    assert not svc.sorry_active
    svc.record("rs2", BAD, 1.0)
    assert svc.sorry_active
    assert svc.placements(1.0)[SORRY] == Placement(True, 2)
    svc.record("rs1", OK, 2.0)
    assert not svc.sorry_active and svc.placements(2.0)[SORRY] == Placement(False, 0)
    assert svc.placements(2.0)["rs1"] == Placement(True, 1)


def test_sorry_server_holds_live_servers_out_until_the_quorum_is_back():
    # keepalived perform_svr_state: "Change only if we have quorum or no sorry server"
    settings = ServiceSettings(quorum=2, sorry=True)
    svc, _ = service(n=3, settings=settings, server=ServerSettings(fall=1, inhibit=False))
    svc.record("rs1", BAD, 1.0)
    svc.record("rs2", BAD, 1.0)
    assert svc.sorry_active
    # rs3 is up but out, as a down server without inhibit is
    assert svc.placements(1.0)["rs3"] == Placement(False, 0)
    svc.record("rs1", OK, 2.0)
    p = svc.placements(2.0)
    assert p["rs1"] == p["rs3"] == Placement(True, 1) and p[SORRY].in_pool is False


def test_no_sorry_server_no_sorry_placement():
    svc, _ = service(n=1)
    svc.record("rs1", BAD, 1.0)
    assert SORRY not in svc.placements(1.0) and not svc.sorry_active


def test_omega_runs_quorum_down_at_shutdown():
    svc, hooks = service(settings=ServiceSettings(omega=True))
    t = svc.shutdown(5.0)
    assert t.state == "DOWN" and hooks.calls == [("down", 5.0)] and not svc.up
    assert svc.shutdown(6.0) is None
    assert svc.record("rs1", OK, 7.0).service is None      # stopped: no more hooks


def test_without_omega_shutdown_is_silent_but_removal_is_not():
    svc, hooks = service()
    assert svc.shutdown(5.0).state == "DOWN" and hooks.calls == []
    svc, hooks = service()
    assert svc.shutdown(5.0, removed=True).reason == "service removed"
    assert hooks.calls == [("down", 5.0)]


def test_shutdown_of_a_service_already_down_does_not_call_quorum_down_again():
    svc, hooks = service(n=1, settings=ServiceSettings(omega=True))
    svc.record("rs1", BAD, 1.0)
    assert svc.shutdown(2.0) is None and hooks.calls == [("down", 1.0)]


def test_sync_keeps_the_state_of_known_servers_and_drops_the_gone():
    svc, hooks = service(n=3, server=ServerSettings(rise=2, fall=2))
    svc.record("rs1", BAD, 1.0)
    svc.record("rs1", BAD, 2.0)
    kept = svc.servers["rs2"]
    before = svc.servers["rs1"]
    ch = svc.sync({"rs1": ServerSettings(rise=2, fall=2, weight=3),
                   "rs2": ServerSettings(rise=2, fall=2), "rs4": ServerSettings()}, 3.0)
    assert svc.servers["rs2"] is kept and svc.servers["rs1"] is before
    assert not svc.servers["rs1"].up and svc.servers["rs1"].failures == 2
    assert svc.servers["rs1"].settings.weight == 3
    assert "rs3" not in svc.servers and svc.servers["rs4"].up
    assert ch.service is None and svc.weight_sum() == 2


def test_sync_with_a_new_quorum_moves_the_service_and_calls_the_hook():
    svc, hooks = service(n=2)
    ch = svc.sync(dict.fromkeys(svc.servers, ServerSettings(fall=1)), 4.0,
                  ServiceSettings(quorum=3))
    assert ch.service.state == "DOWN" and hooks.calls == [("down", 4.0)]


def test_slow_start_placements_and_quorum_count_the_full_weight():
    svc, _ = service(n=1, settings=ServiceSettings(quorum=10),
                     server=ServerSettings(weight=10, fall=1, slowstart=10))
    svc.record("rs1", BAD, 1.0)
    ch = svc.record("rs1", OK, 2.0)
    assert ch.service.up and svc.ramping() == ["rs1"]
    assert svc.placements(2.0)["rs1"] == Placement(True, 1)
    assert svc.placements(7.0)["rs1"] == Placement(True, 5)
    assert svc.placements(12.0)["rs1"] == Placement(True, 10) and svc.ramping() == []


def test_view():
    svc, _ = service(n=2, settings=ServiceSettings(quorum=2, hysteresis=0))
    assert svc.view(1.0) == {"state": "UP", "since": 0.0, "quorum": 2, "hysteresis": 0,
                             "weight_sum": 2, "sorry_active": False}


@pytest.mark.parametrize("kwargs, message", [
    ({"quorum": 0}, "quorum 0: must be at least 1"),
    ({"hysteresis": -1}, "hysteresis -1: must not be negative"),
    ({"sorry_weight": -1}, "sorry-server weight -1"),
])
def test_bad_service_settings_are_refused(kwargs, message):
    with pytest.raises(CommandError, match=message):
        ServiceSettings(**kwargs)
