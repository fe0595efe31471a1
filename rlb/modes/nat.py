"""NAT (ipvsadm -m, Masq): the real servers route their replies back through the LB.
Works with several workers: the client's address and port choose the worker."""
from rlb.model.model import ROUTED_SCOPES, CommandError
from rlb.core.hookspecs import hookimpl
from rlb.modes import Mode
from rlb.modes import _nat


class Nat(Mode):
    def check_dest(self, svc, dest, model):
        if getattr(svc, "match", None):
            raise CommandError("NAT serves virtual services (-t/-u), not SNAT matches (-H)")
        if not _routed(model, dest.addr):
            raise CommandError(f"real server {dest.addr} is not reachable: no route to it")


def _routed(model, addr) -> bool:
    return any(addr in r.prefix and r.scope in ROUTED_SCOPES for r in model.routes.values())


NAT = Nat(name="nat", flag="-m", long_flag="--masquerading", display="Masq",
          steer_by_client=True, ops=_nat.ops)


@hookimpl
def rlb_forwarding_modes():
    return [NAT]
