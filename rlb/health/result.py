"""The outcome of one health check, as every checker returns it."""
from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    ok: bool
    latency: float
    error: str = ""
    weight: int | None = None
