"""rlb.toa, the name real servers import: TOA lives with FNAT (rlb.modes.fnat.toa)."""
from rlb.modes.fnat.toa import *  # noqa: F401,F403  (enable, client_address, parse_syn ...)
