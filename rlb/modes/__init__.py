"""Forwarding modes: what each one is called, what it needs, and its C entry points."""
from __future__ import annotations

from dataclasses import dataclass


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

    def check_service(self, svc, model) -> None:
        """Raise CommandError when a service cannot work in this mode."""

    def check_dest(self, svc, dest, model) -> None:
        """Raise CommandError when a real server cannot work in this mode."""
