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
from rlb.model.services_engine import ZERO_DEST_STATS

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


# -- TCP checks through the data plane's prober (a fake one: the real one has
#    tests/dataplane/test_prober.py) ---------------------------------------------------

class FakeProber:
    """The Engine's prober calls: each queued probe is answered at the next read as
    `behaviour[daddr]` says ("open", "refused"; anything else: never)."""
    probe_capacity = 4096

    def __init__(self, behaviour, room=10**9):
        self.behaviour, self.room = behaviour, room
        self.batches, self.cancelled, self.pending = [], [], []

    def probe_tcp(self, batch):
        queued = batch[:self.room]
        self.batches.append(list(batch))
        self.pending += queued
        return len(queued)

    def probe_answers(self):
        out = []
        for slot, saddr, daddr, sport, dport, via, port in self.pending:
            how = self.behaviour.get(str(IPv4Address(daddr)))
            if how in ("open", "refused"):
                out.append((slot, how == "open", 0.001))
        self.pending = []
        return out

    def probe_cancel(self, slot):
        self.cancelled.append(slot)

    def dest_stats(self, slot):
        return ZERO_DEST_STATS

    def __getattr__(self, name):            # the rest of the Engine: placements pushed
        return lambda *args, **kwargs: None


TCP_CONF = """ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.4:80 -m
ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.5:80 -m
virtual-server tcp 10.0.0.100:80
 check tcp interval 0.2 timeout 0.1 fall 1
 real-server 10.0.0.5:80 check tcp source 10.9.9.9 interval 0.2 timeout 0.1 fall 1
"""


def tcp_model():
    # the misc servers of CONF keep their checks; .4 and .5 take the service's tcp check
    return check(list(enumerate((CONF.split("virtual-server")[0] + TCP_CONF).splitlines(), 1)),
                 "t.conf")


def states(mon):
    return {s["server"]: (s["state"], s["error"]) for s in mon.view()[0]["servers"]}


def test_tcp_checks_go_by_the_prober_along_their_path():
    m = tcp_model()
    m.engine = FakeProber({"10.0.0.2": "open", "10.0.0.3": "refused"})

    async def go():
        mon = Monitor(m)
        await run_for(mon, 1.0)
        return mon
    mon = asyncio.run(go())
    got = states(mon)
    assert got["10.0.0.2:80"] == ("UP", "")
    assert got["10.0.0.3:80"] == ("DOWN", "connection refused")
    assert got["10.0.0.4:80"] == ("DOWN", "timeout after 0.1 s during connect")
    # a source not ours: a kernel socket (which cannot bind it), never the prober
    assert got["10.0.0.5:80"][0] == "DOWN" and "timeout" not in got["10.0.0.5:80"][1]
    probed = {IPv4Address(a[2]) for b in m.engine.batches for a in b}
    assert probed == {IPv4Address(f"10.0.0.{i}") for i in (2, 3, 4)}
    svc = m.services.table[KEY]
    d2 = next(d for d in svc.dests if str(d.addr) == "10.0.0.2")
    first = next(a for b in m.engine.batches for a in b if a[0] == d2.slot)
    # from our address toward it (NAT), its probe port, routed (-1), port dpdk0
    assert first[1:] == (int(IPv4Address("10.0.0.1")), int(d2.addr), 61000 + d2.slot, 80, -1, 0)
    slot4 = next(d.slot for d in svc.dests if str(d.addr) == "10.0.0.4")
    assert slot4 in m.engine.cancelled                   # its late answer is not ours


def test_a_full_prober_queue_skips_the_checks_and_takes_no_server_down():
    m = tcp_model()
    m.engine = FakeProber({}, room=0)

    async def go():
        mon = Monitor(m)
        await run_for(mon, 0.7)
        return mon
    mon = asyncio.run(go())
    got = states(mon)
    assert len(m.engine.batches) >= 3                     # tried again at each interval
    for rs in ("10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80"):
        assert got[rs] == ("UP", ""), got
    assert not mon.inflight
