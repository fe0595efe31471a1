"""rlb.modes.tunnel: a real server anywhere a route reaches, an outer source that is no
VIP (the route's src, else the port's first address), the service's own port."""
import pytest

from rlb.errors import CommandError
from rlb.modes.tunnel import TUNNEL
from support.mode_model import Dest, ModeModel, Svc, ip

VIP = Svc(ip("10.0.0.100"))
ROUTED = ModeModel(routes=[("0.0.0.0/0", "dpdk0", "global", ip("192.168.100.9"),
                            ip("192.168.100.1"))])


def test_a_routed_real_server_with_a_source_is_accepted():
    TUNNEL.check_dest(VIP, Dest(ip("10.140.18.33")), ROUTED)


@pytest.mark.parametrize("model, dest, error", [
    (ROUTED, Dest(ip("10.140.18.33"), 8080), "tunnel cannot change ports"),
    (ModeModel(), Dest(ip("10.140.18.33")), "no route to real server"),
    (ModeModel(routes=[("10.140.18.33/32", "dpdk0", "host")]), Dest(ip("10.140.18.33")),
     "no route to real server"),                                      # our own address
    (ModeModel(routes=[("0.0.0.0/0", "dpdk0", "global", ip("192.168.100.9"))]),
     Dest(ip("10.140.18.33")), "has none and dpdk0 has no address"),
    (ModeModel(routes=[("0.0.0.0/0", "dpdk0", "global", None, ip("10.0.0.100"))]),
     Dest(ip("10.140.18.33")), r"the src of route 0\.0\.0\.0/0 10\.0\.0\.100 on dpdk0 is a VIP"),
])
def test_what_the_tunnel_cannot_serve_is_refused(model, dest, error):
    with pytest.raises(CommandError, match=error):
        TUNNEL.check_dest(VIP, dest, model)
