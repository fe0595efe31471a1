"""What the daemon's helper processes (exabgp, keepalived) share: they die with it."""
from __future__ import annotations

import ctypes
import signal

PR_SET_PDEATHSIG = 1
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl     # looked up here, not in the child


def die_with_parent() -> None:
    """preexec_fn of a helper: the kernel sends it SIGTERM when the daemon dies (kill -9
    included), so nothing speaks for an instance that is gone."""
    _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)          # in the child, before exec: no dlopen
