"""VIP announcement in a real daemon (rlb/routing/announce.py): a service with `announce
dpdk1` puts its VIP on dpdk1.kni while it is up (what FRR's redistribute connected
announces), takes it off when its health says down, puts it back after the hold-down,
and `no announce` through a commit takes it off; `show routing vip` says why.

The real servers' health is MISC checks on files the test creates and removes (as
test_health_live.py does): no network path needed to move it."""
import json
from functools import partial

import pytest

from support import netns
from support.netns import Daemon, del_ns, fnat_two_port, make_ns, sh, wait

NS, INSTANCE = "rlbt-announce", "rlbt-announce"
RS1 = "192.168.100.2:80"
VIP = "10.0.0.100"
VS = f"virtual-server tcp {VIP}:80"
Session = partial(netns.Session, INSTANCE)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    d = tmp_path_factory.mktemp("announce")
    flag = d / "rs1"
    flag.touch()
    make_ns(NS, [("dp0", "tp0"), ("dp1", "tp1")])
    conf = fnat_two_port(servers=("192.168.100.2",)) + "".join(f"{line}\n" for line in (
        VS, f' real-server {RS1} check misc command "test -f {flag}" interval 0.3 fall 1',
        " announce dpdk1 hold-down 1", "!"))
    daemon = Daemon(NS, INSTANCE, conf, d).start()
    daemon.flag = flag
    try:
        yield daemon
    finally:
        rc = daemon.stop()
        del_ns(NS)
        assert rc == 0, daemon.log.read_text()


def on_kni(vip=VIP):
    out = sh("ip", "-j", "addr", "show", "dev", "dpdk1.kni", ns=NS).stdout
    return any(a["local"] == vip and a["prefixlen"] == 32
               for link in json.loads(out or "[]") for a in link.get("addr_info", []))


def vip_row(lab):
    rows = lab.ok("show routing vip")["data"]
    return next(r for r in rows if r["vip"] == VIP)


def test_up_announced_down_withdrawn_back_after_the_hold_down(lab):
    assert wait(on_kni), lab.ok("show routing vip")["text"]
    assert vip_row(lab)["state"] == "announced" and vip_row(lab)["dev"] == "dpdk1"
    lab.flag.unlink()
    try:
        assert wait(lambda: not on_kni()), lab.ok("show routing vip")["text"]
        row = vip_row(lab)
        assert row["state"] in ("held down", "withdrawn") and "down" in row["why"]
        assert f"VIP {VIP} withdrawn from dpdk1: service TCP {VIP}:80 down" in \
            lab.log.read_text()
    finally:
        lab.flag.touch()
    assert wait(on_kni)
    text = lab.ok("show routing vip")["text"]
    assert VIP in text and "announced" in text


def test_no_announce_through_a_commit_withdraws_it(lab):
    assert wait(on_kni)
    s = Session()
    try:
        s.ok("enable", "configure", VS, "no announce")
        s.ok("commit")
        assert wait(lambda: not on_kni())
        assert " announce dpdk1" not in lab.ok("show running-config")["text"]
        s.ok(VS, "announce dpdk1 hold-down 1")
        s.ok("commit")
    finally:
        s.close()
    assert wait(on_kni)
    assert " announce dpdk1 hold-down 1" in lab.ok("show running-config")["text"]


def test_drain_and_undrain(lab):
    assert wait(on_kni)
    r = lab.ok("routing drain")
    assert "VIP(s) withdrawn" in r["text"] and r["data"][0]["connections"] == 0
    assert not on_kni() and vip_row(lab)["why"] == "drained (routing drain)"
    r = lab.ok("routing undrain")
    assert wait(on_kni)
    assert vip_row(lab)["state"] == "announced"
