"""The Announcer's decisions (rlb/routing/announce.py) with a clock, a fake kernel and a
fake monitor: a VIP on its port's kni while a service of it is up, withdrawn when none
is, back only after the hold-down; several services of one VIP; the grammar's
`announce` line through the configuration (running-config round trip, bad input)."""
from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from rlb.control.config import check
from rlb.errors import ConfigError
from rlb.routing.announce import ANNOUNCED, HELD, WITHDRAWN, Announcer
from support.engine import FakeEngine

CONF = """dataplane
 port dpdk0 net_tap0
 port dpdk1 net_tap1
!
dpip addr add 10.0.0.1/24 dev dpdk1
dpip addr add 192.168.100.1/24 dev dpdk0
ipvsadm -A -t 123.1.2.3:80 -s rr
ipvsadm -a -t 123.1.2.3:80 -r 192.168.100.2:80 -m
ipvsadm -A -t 123.1.2.3:443 -s rr
ipvsadm -a -t 123.1.2.3:443 -r 192.168.100.2:443 -m
virtual-server tcp 123.1.2.3:80
 announce dpdk1
!
"""
VIP = IPv4Address("123.1.2.3")
WEB, TLS = (6, VIP, 80), (6, VIP, 443)


class Kernel:
    def __init__(self):
        self.addrs: set = set()
        self.ops: list = []

    def add(self, dev, addr):
        self.ops.append(("add", dev, str(addr)))
        self.addrs.add((dev, str(addr)))

    def delete(self, dev, addr):
        self.ops.append(("del", dev, str(addr)))
        self.addrs.discard((dev, str(addr)))


class Monitor:
    def __init__(self):
        self.up: dict = {}
        self.service_listeners: list = []

    def service_up(self, key):
        return self.up.get(key, True)


def setup(extra=""):
    model = check(list(enumerate((CONF + extra).splitlines(), 1)), "t.conf")
    mon, kernel = Monitor(), Kernel()
    return model, mon, kernel, Announcer(model, mon, kernel=kernel, clock=lambda: 0.0)


def test_announced_while_up_withdrawn_when_down_back_after_the_hold_down():
    model, mon, kernel, a = setup()
    assert a.step(100.0) is None and kernel.addrs == {("dpdk1.kni", "123.1.2.3")}
    mon.up[WEB] = False
    a.step(101.0)
    assert kernel.addrs == set() and a.vips[(VIP, "dpdk1")].why == "service TCP 123.1.2.3:80 down"
    mon.up[WEB] = True
    assert a.step(101.5) == 103.0                    # held down until 2 s after
    assert kernel.addrs == set() and a.vips[(VIP, "dpdk1")].why.endswith("held down")
    a.step(103.0)
    assert kernel.addrs == {("dpdk1.kni", "123.1.2.3")}
    assert kernel.ops == [("del", "dpdk1.kni", "123.1.2.3"),      # the first step's sweep
                          ("add", "dpdk1.kni", "123.1.2.3"), ("del", "dpdk1.kni", "123.1.2.3"),
                          ("add", "dpdk1.kni", "123.1.2.3")]


def test_a_vip_stays_while_any_of_its_services_is_up():
    model, mon, kernel, a = setup("virtual-server tcp 123.1.2.3:443\n announce dpdk1 "
                                  "hold-down 5\n!\n")
    a.step(10.0)
    mon.up[WEB] = False
    a.step(11.0)
    assert kernel.addrs == {("dpdk1.kni", "123.1.2.3")}     # :443 still up
    mon.up[TLS] = False
    a.step(12.0)
    assert kernel.addrs == set()
    mon.up[TLS] = True
    assert a.step(13.0) == 17.0                      # the longest hold-down of its services


def test_stop_withdraws_everything_and_a_removed_service_withdraws_its_vip():
    model, mon, kernel, a = setup()
    a.step(1.0)
    a.stop()
    assert kernel.addrs == set()
    model, mon, kernel, a = setup()
    a.step(1.0)
    model.services.del_service(WEB)
    a.step(2.0)
    assert kernel.addrs == set() and a.vips[(VIP, "dpdk1")].why == "no service announces it"


def test_view_says_the_state_and_when_it_may_come_back():
    model, mon, kernel, a = setup()
    now = [50.0]
    a.clock = lambda: now[0]
    a.step()
    assert a.view()[0]["state"] == ANNOUNCED and a.view()[0]["next_announce"] is None
    mon.up[WEB] = False
    a.step()
    row = a.view()[0]
    assert row["state"] == HELD and row["next_announce"] is not None and row["dev"] == "dpdk1"
    now[0] = 60.0
    assert a.view()[0]["state"] == WITHDRAWN


def test_a_kernel_that_refuses_is_said_and_retried():
    model, mon, kernel, a = setup()

    def refuse(dev, addr):
        raise OSError(19, "no interface dpdk1.kni")
    kernel.add = refuse
    a.step(1.0)
    v = a.vips[(VIP, "dpdk1")]
    assert not v.announced and "add on dpdk1.kni failed" in v.why


def test_the_announce_line_round_trips_and_bad_input_is_refused():
    from rlb.commands.running import render
    model = check(list(enumerate((CONF + "virtual-server tcp 123.1.2.3:443\n announce dpdk0 "
                                  "hold-down 7\n!\n").splitlines(), 1)), "t.conf")
    text = "\n".join(render(model).lines())
    assert " announce dpdk1\n" in text + "\n" and " announce dpdk0 hold-down 7" in text
    for line, why in ((" announce dpdk9", "dpdk9"), (" announce dpdk1 hold-down 0", "")):
        with pytest.raises(ConfigError) as e:
            check(list(enumerate((CONF + f"virtual-server tcp 123.1.2.3:443\n{line}\n!\n")
                                 .splitlines(), 1)), "t.conf")
        assert why in str(e.value)


def test_drain_withdraws_everything_and_undrain_brings_it_back_after_the_hold_down():
    model, mon, kernel, a = setup()
    now = [10.0]
    a.clock = lambda: now[0]
    a.step()
    a.drain(True)
    assert kernel.addrs == set() and a.view()[0]["why"] == "drained (routing drain)"
    assert a.view()[0]["connections"] == 0
    now[0] = 11.0
    a.drain(False)
    assert kernel.addrs == set()                     # its hold-down first
    now[0] = 12.0
    a.step()
    assert kernel.addrs == {("dpdk1.kni", "123.1.2.3")}


def test_nothing_is_announced_before_health_has_spoken():
    """A service with health (here: its `announce` policy) whose state the monitor does
    not know yet (its first sync to come) is not announced, then is."""
    model, mon, kernel, a = setup()
    mon.up[WEB] = None
    a.step(1.0)
    assert kernel.addrs == set()
    mon.up[WEB] = True
    a.step(2.0)
    assert kernel.addrs == {("dpdk1.kni", "123.1.2.3")}


class PollingEngine(FakeEngine):
    """The data plane's worker counters, as Engine.workers() gives them."""
    def __init__(self):
        super().__init__()
        self.polls = [100, 200]

    def workers(self):
        return [{"polls": n} for n in self.polls]


class Speaker:
    def __init__(self):
        self.said: list = []

    def announce(self, addr):
        self.said.append(("announce", str(addr)))

    def withdraw(self, addr):
        self.said.append(("withdraw", str(addr)))

    def sync(self, addrs):
        self.now = {str(a) for a in addrs}


def test_a_worker_that_stops_polling_withdraws_everything_until_it_polls_again():
    model, mon, kernel, a = setup()
    model.engine = engine = PollingEngine()
    speaker = Speaker()
    a.speakers.append(speaker)
    a.step(0.0)
    assert kernel.addrs == {("dpdk1.kni", "123.1.2.3")} and a.stalled is None
    engine.polls = [101, 201]
    a.step(0.9)
    engine.polls = [102, 201]                        # worker 1 stuck since 0.9
    a.step(1.5)
    assert kernel.addrs and a.stalled is None         # 0.6 s: not yet
    a.step(2.0)
    assert kernel.addrs == set()
    assert a.stalled == "data plane worker 1 stopped polling 1.1s ago"
    assert next(iter(a.vips.values())).why.startswith("data plane worker 1 stopped polling")
    assert speaker.said == [("announce", "123.1.2.3"), ("withdraw", "123.1.2.3")]
    engine.polls = [103, 202]
    a.step(2.5)
    assert a.stalled is None and kernel.addrs == set()   # its hold-down first
    engine.polls = [104, 203]
    a.step(2.0 + 2.0)
    assert kernel.addrs == {("dpdk1.kni", "123.1.2.3")}
    assert speaker.said[-1] == ("announce", "123.1.2.3")


def test_a_vip_on_two_ports_is_withdrawn_from_the_speakers_with_the_last_port():
    model, mon, kernel, a = setup("virtual-server tcp 123.1.2.3:443\n announce dpdk0\n!\n")
    speaker = Speaker()
    a.speakers.append(speaker)
    a.step(0.0)
    assert kernel.addrs == {("dpdk1.kni", "123.1.2.3"), ("dpdk0.kni", "123.1.2.3")}
    a.stop()
    assert speaker.said.count(("withdraw", "123.1.2.3")) == 1 and kernel.addrs == set()


def test_drain_on_stop_round_trips_and_is_refused_out_of_range():
    from rlb.commands.running import render
    model, *_ = setup("routing drain-on-stop 30\n")
    assert model.routing.drain_on_stop == 30
    assert "routing drain-on-stop 30" in render(model).lines()
    with pytest.raises(ConfigError):
        setup("routing drain-on-stop 0\n")


def test_with_rlb_s_own_ospf_the_vip_goes_on_the_loopback_and_moves_with_the_section():
    """ospfd announces a VIP on lo as an intra-area stub (rlb.routing.ospf); without
    `router ospf` (BGP, the operator's FRR) it is on the port's kni, and an announced
    VIP moves when the section comes or goes."""
    model, mon, kernel, a = setup("router ospf\n network 172.10.0.0/30 area 0\n!\n")
    a.step(0.0)
    assert kernel.addrs == {("lo", "123.1.2.3")}
    model.routing.set_ospf(None)
    a.step(1.0)
    assert kernel.addrs == {("dpdk1.kni", "123.1.2.3")}
    mon.up[WEB] = False
    a.step(2.0)
    assert kernel.addrs == set() and kernel.ops[-1] == ("del", "dpdk1.kni", "123.1.2.3")


def test_all_services_announces_the_vip_only_while_every_service_is_up():
    from rlb.commands.running import render
    model, mon, kernel, a = setup("virtual-server tcp 123.1.2.3:443\n"
                                  " announce dpdk1 hold-down 3 all-services\n!\n")
    assert " announce dpdk1 hold-down 3 all-services" in render(model).lines()
    a.step(0.0)
    assert kernel.addrs == {("dpdk1.kni", "123.1.2.3")}
    mon.up[TLS] = False
    a.step(1.0)
    assert kernel.addrs == set()
    assert "service TCP 123.1.2.3:443 down (all-services)" in a.view()[0]["why"]
    mon.up[TLS] = True
    a.step(1.0 + 3.0)                                  # the longer hold-down of the two
    assert kernel.addrs == {("dpdk1.kni", "123.1.2.3")}


def test_a_vip_a_killed_run_left_on_lo_is_swept_before_health_speaks():
    """lo outlives a killed daemon and FRR would announce what it holds at once: the
    first step removes the VIPs of the configuration from lo and the knis first."""
    model, mon, kernel, a = setup("router ospf\n network 172.10.0.0/30 area 0\n!\n")
    kernel.addrs.add(("lo", "123.1.2.3"))            # left by the previous run
    mon.up[WEB] = None                                # health not known yet
    a.step(0.0)
    assert kernel.addrs == set()
    assert ("del", "lo", "123.1.2.3") in kernel.ops


def test_after_stop_nothing_comes_back():
    model, mon, kernel, a = setup()
    speaker = Speaker()
    a.speakers.append(speaker)
    a.step(0.0)
    a.stop()
    a.drain(False)
    a.step(10.0)
    assert kernel.addrs == set() and speaker.now == set()
