"""Connection sync for real ("fnat-keepalive-rlb": `sync peer` on both LBs beside VRRP):
keep-alive FNAT sessions open through the MASTER go on through the BACKUP after kill -9
of the MASTER's daemon, and back through the MASTER when it returns and preempts (it got
the whole table by bulk sync first). The control: with `no sync` the same takeover
breaks every session. `show sync` says what went each way."""
import os
import signal
import time

import pytest

from rlb import lab
from rlb.lab import manage
from rlb.lab.topologies import KA_VIP, get
from support.cluster import Sessions, failures, pair_up, rlb, roles, until

TOPO = get("fnat-keepalive-rlb")
COUNT = 8


@pytest.fixture(scope="module")
def sync_lab():
    with pair_up(TOPO):
        assert until(lambda: all(sync(n)["state"] == "up" for n in TOPO.lbs), 10), \
            sync("lb1")
        yield


def sync(node):
    return rlb(node, "show sync", as_json=True)


def kill_lb1():
    os.kill(lab.status()["processes"]["lb1"]["pid"], signal.SIGKILL)


def test_sessions_live_through_a_takeover_and_the_master_s_return(sync_lab):
    before = sync("lb2")["received"]["events"]
    with Sessions(8, 47000, COUNT, vip=KA_VIP) as s:
        time.sleep(1)
        assert sync("lb2")["received"]["events"] >= before + COUNT   # lb1 told it
        assert sync("lb2")["conns"] >= COUNT
        kill_lb1()
        res = s.result()
    assert res["failed"] == 0 and res["connections"] == COUNT, failures(res)
    assert roles()[1] == "master"
    with Sessions(12, 47100, COUNT, vip=KA_VIP) as s:
        time.sleep(1)
        manage.restart_lb(node="lb1")                 # back: bulk sync, then it preempts
        assert until(lambda: roles() == ("master", "backup"), 15), roles()
        res = s.result()
    assert res["failed"] == 0 and res["connections"] == COUNT, failures(res)
    got = sync("lb1")
    assert got["bulk_received"]["events"] >= COUNT and got["state"] == "up", got
    assert got["refused"] == 0 and got["lost"] == 0 and got["dropped"] == 0, got
    assert got["record_bytes"] == 40
    text = rlb("lb1", "show sync")
    assert "Peer 192.168.100.12 port 8848: up" in text and "VI_1 master" in text, text


def test_without_sync_a_takeover_breaks_the_sessions(sync_lab):
    """The control: the same kill with `no sync` on both LBs."""
    for node in TOPO.lbs:
        rlb(node, "configure", "no sync", "commit")
    try:
        assert until(lambda: sync("lb1")["state"] == "off", 5), sync("lb1")
        with Sessions(8, 47200, COUNT, vip=KA_VIP) as s:
            time.sleep(1)
            kill_lb1()
            res = s.result()
        assert res["failed"] >= COUNT and res["connections"] > COUNT, res
    finally:
        manage.restart_lb(node="lb1")
        assert until(lambda: roles() == ("master", "backup"), 15), roles()
