"""IP-in-IP tunnel (ipvsadm -i, Tunnel): the tutorial's tunnel scenario; real servers on
any network a route reaches decapsulate and answer the client themselves."""
from __future__ import annotations

from rlb.errors import CommandError
from rlb.modes import PROBE_VIP, Compiled, Mode, provides
from rlb.modes.direct import (ROUTED, arp_source, check_not_vip, check_same_port, route_to,
                              source_name)

NEEDS_SRC = "tunnel mode needs a route src: dpip route add default via GW src LANIP dev PORT"


class Tunnel(Mode):
    def check_dest(self, svc, dest, model) -> None:
        check_same_port(svc, dest, self.name)
        r = route_to(model, dest.addr)
        if r is None or r.scope not in ROUTED:   # as fast.pyx
            raise CommandError(f"no route to real server {dest.addr}: {NEEDS_SRC}")
        # the outer source: the route's src (tutorial: "`src` must be set for tunnel
        # mode"), else the port's first address
        src = arp_source(model, r)
        if src is None:
            raise CommandError(f"{NEEDS_SRC} (route {r.prefix} has none and {r.port} has "
                               "no address)")
        check_not_vip(model, svc, src, r.port, source_name(r))


TUNNEL = Tunnel(name="tunnel", flag="-i", long_flag="--ipip", display="Tunnel",
                ops=Compiled(f"{__name__}.fast"), probe=PROBE_VIP,
                help="IP-in-IP tunnel forwarding")

rlb_forwarding_modes = provides(TUNNEL)
