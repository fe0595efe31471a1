"""The VRRP sections without a keepalived running: what rlb writes for keepalived, what it
reads back from its notify FIFO, what the data plane is told about the addresses VRRP
moves, and what a commit refuses (keepalived's own parser runs when it is installed,
as `make test` makes sure)."""
from ipaddress import IPv4Address

import pytest

from rlb.control.config import check
from rlb.errors import CommandError, ConfigError
from rlb.ha.keepalived import HaError, check_text, config, parse_notify
from support.engine import FakeEngine

CONF = """dataplane
 port dpdk0 net_tap0
!
dpip route add 192.168.100.0/24 dev dpdk0
dpip addr add 192.168.100.9/24 dev dpdk0
ipvsadm -A -t 192.168.100.254:80 -s rr
ipvsadm -a -t 192.168.100.254:80 -r 192.168.100.2 -b
ipvsadm --add-laddr -z 192.168.100.200 -t 192.168.100.254:80 -F dpdk0
ipvsadm -A -t 192.168.100.9:80 -s rr
ipvsadm -a -t 192.168.100.9:80 -r 192.168.100.3 -b
ipvsadm --add-laddr -z 192.168.100.210 -t 192.168.100.9:80 -F dpdk0
"""
VRRP = """vrrp instance VI_1
 interface dpdk0
 state master
 virtual-router-id 123
 virtual-address 192.168.100.254/32
 unicast-peer 192.168.100.12
 garp master-delay 1 master-repeat 3
"""


def model(extra=VRRP):
    return check(list(enumerate((CONF + extra).splitlines(), 1)), "t.conf")


def test_keepalived_gets_vrrp_only_on_the_kni_with_the_service_local_addresses():
    text = config(model(), "lb1", "/run/rlb/lb1-ha/notify.fifo")
    assert "vrrp_notify_fifo /run/rlb/lb1-ha/notify.fifo" in text
    assert "    interface dpdk0.kni\n    virtual_router_id 123\n    priority 100\n" \
           "    advert_int 0.2\n    version 3\n" in text
    assert "    state MASTER\n" in text
    assert "unicast_peer {\n        192.168.100.12\n    }" in text
    assert "garp_master_delay 1\n    garp_master_repeat 3\n" in text
    assert "virtual_ipaddress {\n        192.168.100.254/32 dev dpdk0.kni\n    }" in text
    # the local address of the VIP's service moves with it; the other service's does not
    assert "virtual_ipaddress_excluded {\n        192.168.100.200/32 dev dpdk0.kni\n" in text
    assert "192.168.100.210" not in text
    assert "virtual_server" not in text and "real_server" not in text


def test_no_section_no_keepalived():
    assert config(model(""), "lb1", "f") == ""


def test_the_data_plane_passes_arp_of_vrrp_addresses_to_the_kni_and_never_garps_them():
    m = model()
    m.attach(e := FakeEngine())
    flagged = {IPv4Address(c[1][1]) for c in e.calls
               if c[0] == "route_set" and c[2].get("kni_arp")}
    assert flagged == {IPv4Address("192.168.100.200")}      # the VIP is no dpip address
    garps = {IPv4Address(c[1][0]) for c in e.calls if c[0] == "garp"}
    assert IPv4Address("192.168.100.200") not in garps
    assert IPv4Address("192.168.100.210") in garps
    # the ARP source of the port is never a VRRP address
    assert ("port_addr", (0, int(IPv4Address("192.168.100.9"))), {}) in e.calls
    # the section goes: the local address is the data plane's again
    mark = len(e.calls)
    m.ha.set_instance("VI_1", None)
    again = [c for c in e.calls[mark:] if c[0] == "route_set"]
    assert [(IPv4Address(c[1][1]), c[2].get("kni_arp")) for c in again] == \
        [(IPv4Address("192.168.100.200"), False)]


def test_notify_lines():
    assert parse_notify('INSTANCE "VI_1" MASTER 100') == ("VI_1", "master", 100)
    assert parse_notify('INSTANCE "VI_1" BACKUP 80') == ("VI_1", "backup", 80)
    assert parse_notify('GROUP "G" MASTER 100') is None
    assert parse_notify("INSTANCE VI_1 MASTER x") is None
    assert parse_notify("") is None


@pytest.mark.parametrize("lines, error", [
    (" interface dpdk0\n", "no virtual-router-id"),
    (" interface dpdk0\n virtual-router-id 5\n", "no virtual-address"),
    (" virtual-router-id 5\n virtual-address 10.0.0.1/32\n", "no interface"),
    (" interface dpdk0\n virtual-router-id 5\n virtual-address 10.0.0.1/32\n"
     " authentication pass x\n", "authentication is VRRPv2's"),
    (" interface dpdk0\n virtual-router-id 5\n virtual-address 10.0.0.1/32\n"
     " vrrp-version 2\n advert-interval 0.5\n", "VRRPv2 adverts are whole seconds"),
    (" interface dpdk0\n virtual-router-id 123\n virtual-address 10.0.0.1/32\n",
     "virtual-router-id 123 on dpdk0 is instance VI_1's"),
])
def test_a_commit_refuses_an_incomplete_or_clashing_section(lines, error):
    target = model(VRRP + "exit\nvrrp instance VI_2\n" + lines)
    with pytest.raises(CommandError, match=error):
        model("").ha.check(target)


@pytest.mark.parametrize("line, error", [
    ("advert-interval 0.001", "seconds from 0.01 to 255"),
    ("advert-interval soon", "seconds from 0.01 to 255"),
    ("authentication pass toolongpassword", "at most 8"),
    ("virtual-address 192.168.100.9/32", "is an address of this LB"),
    ("interface dpdk7", "no such port"),
])
def test_bad_lines_are_refused(line, error):
    with pytest.raises(ConfigError, match=error):
        model(VRRP + " " + line + "\n")


def test_keepalived_checks_what_rlb_writes_and_its_refusal_is_in_its_words():
    """keepalived -t reads the file (here, where no dpdk0.kni exists, it refuses it: at
    commit it runs in the instance's namespace, beside the kni; the lab test commits)."""
    with pytest.raises(HaError, match="keepalived refused the configuration: .*"
                       "Non-existent interface specified in configuration"):
        check_text(config(model(), "lb1", "/tmp/rlb-test.fifo"))
