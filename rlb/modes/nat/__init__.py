"""NAT (ipvsadm -m, Masq): the real servers route their replies back through the LB.
Works with several workers: the client's address and port choose the worker."""
from rlb.errors import CommandError
from rlb.modes import Compiled, Mode, provides
from rlb.modes.direct import ROUTED


class Nat(Mode):
    def check_dest(self, svc, dest, model):
        if getattr(svc, "match", None):
            raise CommandError("NAT serves virtual services (-t/-u), not SNAT matches (-H)")
        if not _routed(model, dest.addr):
            raise CommandError(f"real server {dest.addr} is not reachable: no route to it")


def _routed(model, addr) -> bool:
    return any(addr in r.prefix and r.scope in ROUTED for r in model.routes.values())


NAT = Nat(name="nat", flag="-m", long_flag="--masquerading", display="Masq",
          steer_by_client=True, ops=Compiled(f"{__name__}.fast"),
          help="NAT (masquerading) forwarding")

rlb_forwarding_modes = provides(NAT)
