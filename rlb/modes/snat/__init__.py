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
        if addr is not None and not addr.sapool:
            raise CommandError(f"{dest.addr} is one of our addresses without sapool: SNAT "
                               f"takes local ports from it (dpip addr add {dest.addr}/PREFIX "
                               "dev WAN sapool)")

    # A WAN address that is not (yet) ours takes no flow until it is: the tutorial's
    # keepalived way, where quorum_up adds it (`dpip addr add ... sapool`) once its check
    # passes and quorum_down removes it
    needs_own_address = True

    def usable(self, dest, model):
        addr = model.find_address(dest.addr)
        return addr is not None and addr.sapool


SNAT = Snat(name="snat", flag="-J", long_flag="--snat", display="SNAT", match_only=True,
            ops=Compiled(f"{__name__}.fast"), help="SNAT forwarding")

rlb_forwarding_modes = provides(SNAT)
