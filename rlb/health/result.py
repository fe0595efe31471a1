"""The outcome of one health probe, the contract between the checkers and the state machine."""
from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    ok: bool
    latency: float
    error: str = ""
    weight: int | None = None
    timed_out: bool = False      # no answer within the timeout (the verdict may be ours)
