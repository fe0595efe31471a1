"""Where a probe of a real server goes and where it leaves from, so that it follows the
data path of the server's forwarding mode (DR: at the VIP with the server's MAC; Tunnel:
at the VIP inside IPIP; FNAT: from a local address of the service; NAT: to RIP:port).

The monitor (rlb.health.monitor) asks `ProbePaths.target(svc, dest)` before each probe
and hands the Target to `Check.run(target.addr, target.port, target.source, target.sport)`.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    addr: str                  # where the probe connects: the RIP, or the VIP for DR/Tunnel
    port: int                  # its port
    source: str | None = None  # local address bound before connecting (None: the kernel's)
    sport: int = 0             # local port bound (0: any)


class ProbePaths:
    """The probe paths of one instance: `sync()` after every change of the model sets
    up what the probes need (kernel side and data plane), `target()` says where one
    probe goes, `close()` removes what sync() made."""

    def __init__(self, model):
        self.model = model

    def sync(self) -> None:
        pass

    def target(self, svc, dest) -> Target:
        return Target(str(dest.addr), dest.port)

    def close(self) -> None:
        pass
