"""Direct routing (ipvsadm -g, Route): the tutorial's DR scenario; real servers on-link,
holding the VIP on lo, answer the client themselves."""
from __future__ import annotations

from rlb.errors import CommandError
from rlb.modes import PROBE_VIP, Compiled, Mode, provides
from rlb.modes.direct import (LAN_IP_FIRST, LINK, arp_source, check_not_vip, check_same_port,
                              route_to, source_name)


class Dr(Mode):
    # local addresses on a DR service are refused by the core (Services.add_laddr/add_dest)
    def check_dest(self, svc, dest, model) -> None:
        check_same_port(svc, dest, "DR")
        r = route_to(model, dest.addr)
        if r is None or r.scope != LINK or r.via is not None:     # as fast.pyx
            raise CommandError(f"real server {dest.addr} is not on a connected network of any "
                               "port: DR needs the RS and the LB on-link (dpip addr add "
                               "LANIP/PREFIX dev PORT)")
        src = arp_source(model, r)
        if src is None:
            raise CommandError(f"DR needs a LAN IP of our own on {r.port} to reach {dest.addr} "
                               f"({LAN_IP_FIRST})")
        check_not_vip(model, svc, src, r.port, source_name(r))


DR = Dr(name="dr", flag="-g", long_flag="--gatewaying", display="Route",
        ops=Compiled(f"{__name__}.fast"), probe=PROBE_VIP, help="Direct routing forwarding")

rlb_forwarding_modes = provides(DR)
