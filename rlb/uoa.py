"""rlb.uoa, the name real servers import: UOA lives with FNAT (rlb.modes.fnat.uoa)."""
from rlb.modes.fnat.uoa import *  # noqa: F401,F403  (enable, recvfrom, parse_options ...)
