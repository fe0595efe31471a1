"""Full-NAT (ipvsadm -b): the DPVS tutorial's first scenario; needs local addresses."""
from rlb.core.hookspecs import hookimpl
from rlb.modes import Mode
from rlb.modes import _fnat

FNAT = Mode(name="fnat", flag="-b", long_flag="--fullnat", display="FullNat",
            needs_laddr=True, ops=_fnat.ops)


@hookimpl
def rlb_forwarding_modes():
    return [FNAT]
