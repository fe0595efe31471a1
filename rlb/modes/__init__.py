"""Forwarding modes: what each one is called, what it needs, and its C entry points.

Each mode is a package here (fnat/, dr/, tunnel/, nat/, snat/): its descriptor and
checks in __init__.py, its packet path in fast.pyx (built to <package>.fast), and what
only it needs. A new one is its package and a line in rlb.plugins.BUILTIN; a third
party's registers through the `rlb` entry-point group (rlb.core.hookspecs).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from rlb.core.hookspecs import hookimpl


# Where a health probe of a mode's real servers goes (Mode.probe; rlb.health.path):
PROBE_RIP = "rip"         # RIP:port, from our address toward it (routed, as NAT's packets)
PROBE_LADDR = "laddr"     # RIP:port, from a local address of the service (FNAT)
PROBE_VIP = "vip"         # the VIP at the real server's port, through the mode's own
                          # transmit, named by the probe's local port: only for a mode
                          # whose capsule has direct_reply (DR, Tunnel: the server holds
                          # the VIP), as rlb/core/probe.pxd takes that transmit for it


@dataclass(frozen=True)
class Mode:
    """One forwarding mode. Subclass to validate; `ops` returns the C capsule."""
    name: str                 # fnat, dr, tunnel, nat, snat
    flag: str                 # ipvsadm's real-server flag: -b -g -i -m -J
    long_flag: str            # --fullnat --gatewaying --ipip --masquerading --snat
    display: str              # what `ipvsadm -ln` prints: FullNat Route Tunnel Masq SNAT
    needs_laddr: bool = False # FNAT: a service needs local addresses (ipvsadm --add-laddr)
    ops: object = None        # () -> PyCapsule "rlb.mode_ops_t"
    steer_by_client: bool = False  # NAT: the client's tuple picks the worker both ways
    match_only: bool = False  # SNAT: for match services (ipvsadm -H), and only those
    help: str = ""            # the help of its ipvsadm flags ("Full NAT forwarding ...")
    probe: str = PROBE_RIP    # where its real servers' health probes go (PROBE_* above)

    def check_service(self, svc, model) -> None:
        """Raise CommandError when a service cannot work in this mode."""

    def check_dest(self, svc, dest, model) -> None:
        """Raise CommandError when a real server cannot work in this mode."""

    def usable(self, dest, model) -> bool:
        """Whether a real server that passed check_dest can take flows now (a False one
        stays configured at weight 0 until it can; see `needs_own_address`)."""
        return True

    # usable() depends on the LB's addresses: the model asks again when they change
    needs_own_address = False


class Compiled:
    """The `ops` of a mode whose C is the compiled module `module` (a built-in mode's
    `<package>.fast`), imported at the first call: rlb.toa and rlb.uoa, in the FNAT
    package, then load on a real server without the data plane's libraries."""

    def __init__(self, module: str):
        self.module = module

    def __call__(self):
        return importlib.import_module(self.module).ops()

    def __repr__(self):
        return f"Compiled({self.module!r})"


def provides(*modes: Mode):
    """A plugin module's `rlb_forwarding_modes` hook, returning these modes:
    `rlb_forwarding_modes = provides(FNAT)`."""
    return hookimpl(lambda: list(modes))
