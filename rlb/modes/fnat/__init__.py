"""Full-NAT (ipvsadm -b): the DPVS tutorial's first scenario; needs local addresses.
The client's address reaches the real servers in TOA (TCP) and UOA (UDP): toa.py and
uoa.py read them there (rlb.toa, rlb.uoa)."""
from rlb.modes import PROBE_LADDR, Compiled, Mode, provides

FNAT = Mode(name="fnat", flag="-b", long_flag="--fullnat", display="FullNat",
            needs_laddr=True, ops=Compiled(f"{__name__}.fast"), probe=PROBE_LADDR,
            help="Full NAT forwarding (needs local addresses)")

rlb_forwarding_modes = provides(FNAT)
