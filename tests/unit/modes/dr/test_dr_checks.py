"""rlb.modes.dr: a real server must be on-link, reached from a LAN IP that is no VIP,
on the service's own port (what the DR fast path needs: only the MAC changes)."""
import pytest

from rlb.errors import CommandError
from rlb.modes.dr import DR
from support.mode_model import Dest, ModeModel, Svc, ip

VIP = Svc(ip("192.168.100.254"))
LAN = ModeModel(routes=[("192.168.100.0/24", "dpdk0")], first={"dpdk0": "192.168.100.1"})


def test_an_on_link_real_server_on_the_service_port_is_accepted():
    DR.check_dest(VIP, Dest(ip("192.168.100.2")), LAN)


@pytest.mark.parametrize("model, dest, error", [
    (LAN, Dest(ip("192.168.100.2"), 8080), "DR cannot change ports"),
    (LAN, Dest(ip("10.0.0.2")), "not on a connected network"),
    (ModeModel(routes=[("10.0.0.0/8", "dpdk0", "global", ip("192.168.100.9"))]),
     Dest(ip("10.0.0.2")), "not on a connected network"),               # through a gateway
    (ModeModel(routes=[("192.168.100.0/24", "dpdk0")]), Dest(ip("192.168.100.2")),
     "needs a LAN IP of our own on dpdk0"),
    (ModeModel(routes=[("192.168.100.0/24", "dpdk0")], first={"dpdk0": "192.168.100.254"}),
     Dest(ip("192.168.100.2")), r"the first address 192\.168\.100\.254 on dpdk0 is a VIP"),
])
def test_what_dr_cannot_serve_is_refused(model, dest, error):
    with pytest.raises(CommandError, match=error):
        DR.check_dest(VIP, dest, model)
