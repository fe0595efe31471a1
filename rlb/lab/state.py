"""The lab's run directory, its state file and the identity of the processes it started."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

# Module globals read at call time, so a test can point them elsewhere.
RUN_DIR = Path("/run/rlb/lab")
SOCK_DIR = Path("/run/rlb")  # the daemon's: /run/rlb/<instance>.sock
LB_INSTANCE = "lb"


class LabError(Exception):
    """An expected failure: reported as one line, without a traceback."""


def state_file() -> Path:
    return RUN_DIR / "state.json"


def instance(node: str = "lb") -> str:
    """The rlb instance of an LB node: LB_INSTANCE for the one LB of most scenarios (node
    `lb`), the node's own name (lb1, lb2) where a scenario has several; a test that
    moves LB_INSTANCE elsewhere moves them all."""
    if node == "lb":
        return LB_INSTANCE
    return node if LB_INSTANCE == "lb" else f"{LB_INSTANCE}-{node}"


def lb_conf(node: str = "lb") -> Path:
    return RUN_DIR / f"{node}.conf"


def lb_keepalived(node: str = "lb") -> Path:
    """An LB's keepalived.conf in the tutorial's scenarios that have one."""
    return RUN_DIR / f"{node}-keepalived.conf"


def lb_log(node: str = "lb") -> Path:
    return RUN_DIR / f"{node}.log"


def lb_state_base(node: str = "lb") -> Path:
    """An LB daemon's RLB_STATE_DIR: its commit history and ssh host key, made at `up`
    and removed at `down`, so that each lab starts with an empty history."""
    return RUN_DIR / f"{node}-state"


def lb_sock(node: str = "lb") -> Path:
    return SOCK_DIR / f"{instance(node)}.sock"


def frr_dir(node: str) -> Path:
    """Where a node's FRR daemons keep their configuration, sockets, pid files and logs
    (rlb.routing.frr: every path explicit, nothing under /etc/frr)."""
    return RUN_DIR / node / "frr"


def node_dir(node: str) -> Path:
    return RUN_DIR / node


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """Serialise lab commands: two `up`s racing would build over each other."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    with open(RUN_DIR / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def load() -> dict | None:
    """The recorded state, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads(state_file().read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        # A torn file after a crash: `down` then falls back to the names
        # every topology can create, so losing it costs nothing.
        return None
    return data if isinstance(data, dict) else None


def save(state: dict) -> None:
    """Write atomically: a crash mid-write must not leave half a file."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    tmp = state_file().with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, state_file())


def clear() -> None:
    state_file().unlink(missing_ok=True)


# --- processes ---------------------------------------------------------------
# A PID is recorded with its start time (field 22 of /proc/PID/stat): a PID
# reused by an unrelated process after ours died must never be signalled.


def proc_start(pid: int) -> int | None:
    """Start time of a live (non-zombie) process, None if there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        _reap(pid)
        return None
    return int(fields[19])


def _reap(pid: int) -> None:
    # Our own child (start_lb in this process) stays a zombie until waited for.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def record(pid: int) -> dict:
    return {"pid": pid, "start": proc_start(pid)}


def alive(rec: dict) -> bool:
    # No recorded start time means it was already gone when recorded.
    start = proc_start(rec["pid"])
    return start is not None and start == rec.get("start")


def _wait_gone(recs: list[dict], timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        left = [r for r in recs if alive(r)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def terminate(recs: list[dict], timeout: float = 10.0) -> None:
    """SIGTERM the recorded processes, then SIGKILL what is left after timeout."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 2.0)):
        recs = [r for r in recs if alive(r)]
        if not recs:
            return
        for r in recs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(r["pid"], sig)
        recs = _wait_gone(recs, wait)
