"""rlb.modes.nat: real servers of virtual services (not SNAT matches) that a route reaches."""
import pytest

from rlb.errors import CommandError
from rlb.modes.nat import NAT
from support.mode_model import Dest, ModeModel, Svc, ip

LAN = ModeModel(routes=[("192.168.100.0/24", "dpdk0"), ("10.0.0.100/32", "dpdk1", "host")])


def test_a_routed_real_server_is_accepted_and_steered_by_the_client():
    NAT.check_dest(Svc(ip("10.0.0.100")), Dest(ip("192.168.100.2"), 8080), LAN)
    assert NAT.steer_by_client and not NAT.needs_laddr


@pytest.mark.parametrize("svc, dest, error", [
    (Svc(match="proto=tcp"), Dest(ip("192.168.100.2")), "not SNAT matches"),
    (Svc(ip("10.0.0.100")), Dest(ip("172.16.0.2")), "not reachable: no route"),
    (Svc(ip("10.0.0.100")), Dest(ip("10.0.0.100")), "not reachable: no route"),  # host route
])
def test_what_nat_cannot_serve_is_refused(svc, dest, error):
    with pytest.raises(CommandError, match=error):
        NAT.check_dest(svc, dest, LAN)
