"""`router ospf` in rlb's grammar (rlb/commands/routing.py): the section round-trips
through show running-config, bad input is refused with its reason, and the FRR text
written from it (rlb/routing/ospf.py) speaks of the kni twins and the announced VIPs."""
import pytest

from rlb.commands.running import render
from rlb.control.config import check
from rlb.errors import ConfigError
from rlb.routing.ospf import frr_configs, vip_dev

BASE = """dataplane
 port dpdk0 net_tap0
 port dpdk1 net_tap1
!
dpip addr add 10.0.0.1/24 dev dpdk1
ipvsadm -A -t 123.1.2.3:80 -s rr
ipvsadm -a -t 123.1.2.3:80 -r 10.0.0.5:80 -m
ipvsadm -A -t 123.1.2.4:80 -s rr
"""
OSPF = """router ospf
 ospf router-id 10.0.0.1
 network 172.10.0.0/30 area 0
 network 10.0.0.0/24 area 0.0.0.1
 maximum-paths 8
 interface dpdk1 point-to-point hello-interval 1 dead-interval 4 bfd
 interface dpdk0 cost 7 passive
!
"""


def model(text):
    return check(list(enumerate(text.splitlines(), 1)), "t.conf")


def test_the_section_round_trips():
    m = model(BASE + OSPF)
    text = "\n".join(render(m).lines())
    assert OSPF.rstrip("\n") in text
    again = model(text)
    assert again.routing.ospf == m.routing.ospf


def test_frr_text_speaks_of_the_kni_and_the_announced_vips():
    m = model(BASE + "virtual-server tcp 123.1.2.3:80\n announce dpdk1\n!\n" + OSPF)
    conf = frr_configs(m, "lb1")
    assert set(conf) == {"zebra", "bfdd", "ospfd"}
    ospfd = conf["ospfd"]
    for line in ("interface dpdk1.kni", " ip ospf network point-to-point",
                 " ip ospf hello-interval 1", " ip ospf dead-interval 4", " ip ospf bfd",
                 "interface dpdk0.kni", " ip ospf cost 7", " ip ospf passive",
                 # the VIP a stub of ours in the first network's area (intra-area)
                 " network 123.1.2.3/32 area 0", " timers throttle lsa all 0",
                 " maximum-paths 8", " network 10.0.0.0/24 area 0.0.0.1"):
        assert line in ospfd.splitlines(), line
    assert "123.1.2.4" not in ospfd                         # not announced
    assert "redistribute" not in ospfd
    assert frr_configs(model(BASE), "lb1") == {}
    no_vip = frr_configs(model(BASE + OSPF), "lb1")["ospfd"]
    assert "/32 area" not in no_vip
    assert vip_dev(m) == "lo" and vip_dev(model(BASE)) is None
    theirs = model(BASE + "routing frr vty-socket /run/frr-op\n")
    assert vip_dev(theirs) is None and frr_configs(theirs, "lb1") == {}


@pytest.mark.parametrize("line,why", [
    (" interface dpdk9", "dpdk9"),
    (" interface dpdk1 hello-interval 5 dead-interval 5", "longer than hello-interval"),
    (" network 10.1.0.0/24 area x", "Invalid input"),
    (" network 10.1.0.0/24 area 4294967296", "must be 0-4294967295"),
    (" maximum-paths 65", ""),
    (" no network 10.2.0.0/24", "not in router ospf"),
    (" no interface dpdk0", "not in router ospf"),
])
def test_bad_input_is_refused_with_the_reason(line, why):
    with pytest.raises(ConfigError) as e:
        model(BASE + f"router ospf\n{line}\n!\n")
    assert why in str(e.value)


def test_no_router_ospf_removes_the_section():
    m = model(BASE + OSPF + "no router ospf\n")
    assert m.routing.ospf is None and "router ospf" not in "\n".join(render(m).lines())
