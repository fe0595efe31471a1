"""MISC check (keepalived's MISC_CHECK): run a program (argv, no shell), killed with its
process group at the timeout. Exit 0 up, else down; with `dynamic` (misc_dynamic),
0 up, 1 down, 2-255 up with weight = code - 2."""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from rlb.errors import CommandError
from rlb.health.result import Result

from . import settings as s
from .base import Checker, Probe

STDERR_TAIL = 200           # characters of stderr kept for the error text
STDERR_GRACE = 0.05         # seconds to collect stderr after the exit (a child may hold it)

SETTINGS = (
    s.Setting("command", s.COMMAND, None, "program and its arguments (keepalived's misc_path)"),
    s.Setting("dynamic", s.FLAG, False,
              "exit 2-255 sets the weight to code - 2 (keepalived's misc_dynamic)"),
)


def verdict(code: int, dynamic: bool, tail: str) -> Result:
    if code == 0:
        return Result(True, 0.0)
    if code < 0:
        return Result(False, 0.0, f"killed by signal {-code}")
    if dynamic and 2 <= code <= 255:
        return Result(True, 0.0, weight=code - 2)
    return Result(False, 0.0, f"exit {code}" + (f": {tail}" if tail else ""))


async def read_tail(stream: asyncio.StreamReader, out: list[bytes]) -> None:
    while chunk := await stream.read(4096):
        out.append(chunk)
        while sum(map(len, out)) > 4 * STDERR_TAIL and len(out) > 1:
            out.pop(0)


def validate(values) -> None:
    if values["command"] is None:
        raise CommandError("misc check: command is required")


async def probe(probe: Probe) -> Result:
    proc = await asyncio.create_subprocess_exec(
        *probe.values["command"], stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        start_new_session=True)          # its own process group: a timeout kills it all
    err: list[bytes] = []
    reader = asyncio.ensure_future(read_tail(proc.stderr, err))
    try:
        probe.stage = f"command (pid {proc.pid})"
        code = await proc.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(reader), STDERR_GRACE)
    finally:
        if proc.returncode is None:
            # the group's id is the child's own PID (start_new_session)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            # its stderr at EOF closes the pipe, and with it the process's transport:
            # none is left for the loop's end to find open
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(reader), STDERR_GRACE)
        reader.cancel()
    tail = b"".join(err).decode(errors="replace").strip()[-STDERR_TAIL:]
    return verdict(code, probe.values["dynamic"], " ".join(tail.split()))


CHECKER = Checker("misc", "run a program; up on exit 0 (dynamic: 2-255 set the weight)",
                  SETTINGS, probe, validate)
