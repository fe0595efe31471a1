"""The health table: the configuration synced in, results recorded, services removed and stopped."""
from rlb.health.result import Result
from rlb.health.schedule import ManualClock, Timing
from rlb.health.service import ServiceSettings
from rlb.health.state import ServerSettings
from rlb.health.table import HealthTable, ServerConfig, ServiceConfig

VIP = "10.0.0.1:80"
FAST = ServerConfig(Timing(1.0, 0.5), ServerSettings(fall=1))


def table():
    calls = []
    clock = ManualClock(0.0)
    t = HealthTable(clock, on_quorum_up=lambda svc, tr: calls.append(("up", svc, tr.at)),
                    on_quorum_down=lambda svc, tr: calls.append(("down", svc, tr.at)))
    return t, clock, calls


def config(**servers):
    return {VIP: ServiceConfig(ServiceSettings(), servers)}


def test_sync_schedules_every_check_and_starts_the_services():
    t, clock, calls = table()
    changes = t.sync(config(rs1=FAST, rs2=FAST))
    assert changes[VIP].service.initial and changes[VIP].service.up
    assert set(t.scheduler.entries) == {(VIP, "rs1"), (VIP, "rs2")}
    assert calls == []


def test_record_moves_the_state_and_reschedules_the_check():
    t, clock, calls = table()
    t.sync(config(rs1=FAST))
    clock.t = t.scheduler.next_time()
    ((key, _),) = t.scheduler.due()
    ch = t.record(key, Result(False, 0.5, "timeout after 0.5s"))
    (server, tr), = ch.servers
    assert tr.line("rs1 192.168.100.2:80") == \
        "rs1 192.168.100.2:80 DOWN: timeout after 0.5s after 1 failure"
    assert ch.service.line(VIP).startswith("10.0.0.1:80 DOWN: quorum lost")
    assert calls == [("down", VIP, clock.t)]
    assert t.scheduler.next_time() > clock.t        # scheduled again


def test_a_changed_check_keeps_its_state_and_the_unchanged_keep_theirs():
    t, clock, calls = table()
    t.sync(config(rs1=FAST, rs2=FAST))
    t.record((VIP, "rs1"), Result(False, 0.1, "refused"))
    rs1, rs2 = t.services[VIP].servers["rs1"], t.services[VIP].servers["rs2"]
    entry2 = t.scheduler.entries[(VIP, "rs2")]
    slot2 = entry2.slot
    t.sync(config(rs1=ServerConfig(Timing(2.0), ServerSettings(fall=3)), rs2=FAST, rs3=FAST))
    assert t.services[VIP].servers["rs1"] is rs1 and not rs1.up
    assert t.services[VIP].servers["rs2"] is rs2
    assert t.scheduler.entries[(VIP, "rs2")] is entry2 and entry2.slot == slot2
    assert t.scheduler.entries[(VIP, "rs1")].timing == Timing(2.0)


def test_a_removed_server_is_unscheduled_and_its_late_result_dropped():
    t, clock, calls = table()
    t.sync(config(rs1=FAST, rs2=FAST))
    t.sync(config(rs2=FAST))
    assert (VIP, "rs1") not in t.scheduler.entries
    assert not t.record((VIP, "rs1"), Result(False, 0.1, "refused"))


def test_a_removed_service_calls_quorum_down_and_is_unscheduled():
    t, clock, calls = table()
    t.sync(config(rs1=FAST))
    clock.t = 3.0
    changes = t.sync({})
    assert changes[VIP].service.reason == "service removed"
    assert calls == [("down", VIP, 3.0)] and t.scheduler.entries == {}


def test_shutdown_calls_quorum_down_only_with_omega():
    t, clock, calls = table()
    t.sync({"a": ServiceConfig(ServiceSettings(omega=True), {"rs1": FAST}),
            "b": ServiceConfig(ServiceSettings(), {"rs1": FAST})})
    stopped = t.shutdown()
    assert set(stopped) == {"a", "b"} and calls == [("down", "a", 0.0)]
