"""The Monitor on a model without a data plane: MISC checks (`true`, `false`) run on the
event loop, their results place the real servers (Services.placed), the service's state
reaches its listeners, a sync after a change keeps the state of unchanged checks, and
the event loop stays free while a check hangs."""
from __future__ import annotations

import asyncio
import time
from ipaddress import IPv4Address

from rlb.control.config import check
from rlb.health.monitor import Monitor

CONF = """dataplane
 no-kni
 port dpdk0 net_tap0
!
dpip addr add 10.0.0.1/24 dev dpdk0
ipvsadm -A -t 10.0.0.100:80 -s rr
ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.2:80 -m -w 3
ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.3:80 -m -w 2
virtual-server tcp 10.0.0.100:80
 real-server 10.0.0.2:80 check misc command true interval 0.2 fall 1
 real-server 10.0.0.3:80 check misc command false interval 0.2 fall 1
"""
KEY = (6, IPv4Address("10.0.0.100"), 80)


def model(extra=""):
    return check(list(enumerate((CONF + extra).splitlines(), 1)), "t.conf")


async def run_for(monitor, seconds):
    task = asyncio.create_task(monitor.run())
    await asyncio.sleep(seconds)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


def weights(m):
    svc = m.services.table[KEY]
    return [m.services.placed(d) for d in svc.dests]


def test_results_place_the_real_servers_and_tell_the_listeners():
    m = model()
    states = []

    async def go():
        mon = Monitor(m)
        mon.service_listeners.append(lambda key, up: states.append((key, up)))
        await run_for(mon, 1.0)
        return mon
    mon = asyncio.run(go())
    assert weights(m) == [(True, 3), (True, 0)]          # inhibit: in the list at 0
    rows = mon.view()
    assert rows[0]["state"] == "UP" and rows[0]["weight_sum"] == 3
    down = {s["server"]: s for s in rows[0]["servers"]}["10.0.0.3:80"]
    assert down["state"] == "DOWN" and down["error"] == "exit 1" and down["failures"] >= 2
    assert mon.service_up(KEY) is True and states == [(KEY, True)]   # its state at start


def test_the_service_goes_down_and_its_listeners_hear_it():
    m = model(" real-server 10.0.0.2:80 check misc command false interval 0.2 fall 1\n")
    states = []

    async def go():
        mon = Monitor(m)
        mon.service_listeners.append(lambda key, up: states.append((key, up)))
        await run_for(mon, 1.0)
    asyncio.run(go())
    assert states == [(KEY, True), (KEY, False)] and weights(m) == [(True, 0), (True, 0)]


def test_a_sync_keeps_the_state_of_unchanged_checks():
    m = model()

    async def go():
        mon = Monitor(m)
        await run_for(mon, 0.7)
        before = {s["server"]: s for s in mon.view()[0]["servers"]}
        m.services.edit_dest(KEY, IPv4Address("10.0.0.3"), 80, weight=5)
        mon.sync()
        after = {s["server"]: s for s in mon.view()[0]["servers"]}
        return before, after
    before, after = asyncio.run(go())
    for rs in before:
        assert after[rs]["since"] == before[rs]["since"]
        assert after[rs]["successes"] + after[rs]["failures"] >= \
            before[rs]["successes"] + before[rs]["failures"]
    assert after["10.0.0.3:80"]["configured_weight"] == 5


def test_a_hanging_check_does_not_hold_the_loop():
    m = model(" real-server 10.0.0.2:80 check misc command \"sleep 30\" interval 1 "
              "timeout 0.5\n")

    async def go():
        mon = Monitor(m)
        task = asyncio.create_task(mon.run())
        lags = []
        end = time.monotonic() + 6.0
        while time.monotonic() < end:            # the loop answers every 10 ms
            t = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append(time.monotonic() - t)
            rows = mon.view()
            if rows and any(s["server"] == "10.0.0.2:80" and s["state"] == "DOWN"
                            for s in rows[0]["servers"]):
                break
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        return mon, lags
    mon, lags = asyncio.run(go())
    s = {s["server"]: s for s in mon.view()[0]["servers"]}["10.0.0.2:80"]
    assert s["state"] == "DOWN" and s["error"].startswith("timeout after 0.5 s")
    assert len(lags) > 20                         # it kept turning while the check hung


def test_a_removed_service_runs_its_quorum_down(tmp_path):
    mark = tmp_path / "down"
    m = model(f" quorum-down touch {mark}\n")

    async def go():
        mon = Monitor(m)
        task = asyncio.create_task(mon.run())
        await asyncio.sleep(0.5)
        m.services.del_service(KEY)
        for _ in range(50):
            await asyncio.sleep(0.05)
            if mark.exists():
                break
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        await mon.stop()                    # the hook's process is waited for
        return mon
    mon = asyncio.run(go())
    assert mark.exists() and mon.view() == []


def test_timeouts_while_the_loop_runs_late_are_not_held_against_a_server():
    # a check that always times out, while something blocks the loop now and then (a
    # saturated checker): the server is never taken down by a timeout it may not owe
    m = model(" real-server 10.0.0.2:80 check misc command \"sleep 30\" interval 0.5 "
              "timeout 0.3 fall 1\n")

    async def go():
        mon = Monitor(m)
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(mon.run())
        end = loop.time() + 2.0
        while loop.time() < end:                 # the loop blocked 0.2 s in every 0.25 s
            time.sleep(0.2)
            await asyncio.sleep(0.05)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        await mon.stop()
        return mon
    mon = asyncio.run(go())
    s = {s["server"]: s for s in mon.view()[0]["servers"]}["10.0.0.2:80"]
    assert mon.discarded >= 1 and s["state"] == "UP" and s["failures"] == 0
