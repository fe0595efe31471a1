"""SNAT (ipvsadm -J with -H match): hosts behind the LB reach the outside from a WAN
address added with `dpip addr add ... sapool`; TCP, UDP and ICMP echo."""
from rlb.errors import CommandError
from rlb.modes import Compiled, Mode, provides


class Snat(Mode):
    def check_dest(self, svc, dest, model):
        if not getattr(svc, "match", None):
            raise CommandError("SNAT needs a match service: ipvsadm -A -s rr -H "
                               "proto=tcp,src-range=A-B,oif=DEV")
        if dest.port:
            raise CommandError("SNAT's -r is WANIP:0: the port must be 0")
        addr = model.find_address(dest.addr)
        if addr is None or not addr.sapool:
            raise CommandError(f"{dest.addr} must be one of our addresses, added with sapool "
                               f"(dpip addr add {dest.addr}/PREFIX dev WAN sapool)")


SNAT = Snat(name="snat", flag="-J", long_flag="--snat", display="SNAT", match_only=True,
            ops=Compiled(f"{__name__}.fast"), help="SNAT forwarding")

rlb_forwarding_modes = provides(SNAT)
