"""What the daemon's helper processes (exabgp, keepalived) share: they die with it."""
from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
from pathlib import Path

PR_SET_PDEATHSIG = 1
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl     # looked up here, not in the child


def die_with_parent() -> None:
    """preexec_fn of a helper: the kernel sends it SIGTERM when the daemon dies (kill -9
    included), so nothing speaks for an instance that is gone."""
    _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)          # in the child, before exec: no dlopen


class Helper:
    """What a helper's keeper (rlb.routing.exabgp.Speaker, rlb.ha.keepalived.Keepalived)
    shares: a loop that syncs on a wake-up or every `every` seconds and never ends on an
    error (kept in `problem`); a helper left running by a killed daemon found by its pid
    file and stopped; a polite stop (SIGTERM, then SIGKILL)."""

    every = 5.0                # seconds between two looks when nothing wakes the loop
    stop_wait = 3.0
    what = "helper"            # its name in the log
    proc: asyncio.subprocess.Process | None = None
    problem: str | None = None

    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self._wake = asyncio.Event()
        self._wake.set()

    async def _sync(self) -> None:
        raise NotImplementedError

    async def run(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.every):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self._sync()
            except Exception as e:              # never let the supervision end
                self.problem = str(e) or type(e).__name__
                self.log.exception("%s: %s", self.what, self.problem)

    def kill_stale(self, pidfile: Path, conf: Path) -> None:
        """A helper of this configuration file left running (its pid file, checked against
        its command line): stopped, so that two never speak for the instance."""
        try:
            pid = int(pidfile.read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            return
        if os.fsencode(str(conf)) in cmdline.split(b"\0"):
            self.log.warning("%s: one of %s was still running (pid %d): stopped",
                             self.what, conf, pid)
            os.kill(pid, signal.SIGKILL)

    async def stop_process(self) -> bool:
        """SIGTERM, SIGKILL after stop_wait; False if none was running."""
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return False
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), self.stop_wait)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        self.log.info("%s: stopped", self.what)
        return True
