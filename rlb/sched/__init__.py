"""Schedulers: how a service picks a real server for a new flow."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Scheduler:
    name: str                              # what `-s NAME` and `scheduler NAME` say
    help: str
    ops: Callable | None = None            # () -> PyCapsule "rlb.sched_ops_t"
    # Table schedulers: (dests) -> list of dest slots, computed in the control plane;
    # dests are objects with .slot, .addr, .port, .weight, .available
    table: Callable | None = None
    # What it hashes (`--hash-target`), the default first; a scheduler with targets has
    # its table built as table(dests, target)
    targets: tuple[str, ...] = ()
