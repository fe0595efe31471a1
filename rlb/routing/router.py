"""The instance's FRR, run from its own configuration (`router ospf`).

The daemon starts zebra and ospfd (bfdd when an interface asks for BFD) in its own
namespace, with every path under /run/rlb/INSTANCE-frr (rlb.routing.frr), once the
configuration has a `router ospf`; a commit that changes it is applied to the running
daemons as a difference (FRR's frr-reload.py, through their vty sockets), so what did not
change is not restarted and adjacencies stay up; a daemon that dies is started again;
`no router ospf` stops them. The VIP prefix-list follows the services' `announce` lines.
"""
from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from pathlib import Path

from rlb.control import paths
from rlb.routing.frr import Frr, RoutingError
from rlb.routing.ospf import frr_configs

log = logging.getLogger("rlb.routing")

FRR_RELOAD = "/usr/lib/frr/frr-reload.py"
RELOAD_TIMEOUT = 60.0
SUPERVISE_EVERY = 5.0           # seconds between two looks for a dead daemon


class Router:
    """FRR for one instance. `await run()` keeps it as the configuration says."""

    def __init__(self, model, instance: str, *, directory: str | None = None):
        self.model = model
        self.instance = instance
        self.dir = Path(directory or paths.frr_dir(instance))
        self.frr: Frr | None = None
        self.applied: dict[str, str] = {}
        self.problem: str | None = None          # the last failure, in FRR's words
        self._wake = asyncio.Event()
        self._wake.set()
        model.routing.listeners.append(self._wake.set)
        model.services.listeners.append(self._wake.set)     # the announced VIPs
        model.router = self

    # -- one sync ---------------------------------------------------------------------

    def sync(self) -> None:
        """Make the daemons what the configuration says; a failure is logged and kept
        in `problem` (show), never raised to the loop."""
        want = frr_configs(self.model, self.instance)
        try:
            if want == self.applied and (self.frr is None or not self.frr.dead()):
                return
            if not want:
                self.stop()
                return
            self._apply(want)
            self.applied, self.problem = want, None
        except (RoutingError, OSError, subprocess.SubprocessError) as e:
            self.problem = str(e)
            log.error("routing: %s", e)

    def _apply(self, want: dict[str, str]) -> None:
        if self.frr is None:
            self.frr = Frr(self.dir, None, daemons=tuple(want))
        frr = self.frr
        first = not self.applied
        frr.set_daemons(tuple(want))          # bfdd in or out with BFD
        if first or frr.dead():
            frr.start(want)                   # the files, and the daemons not running
            log.info("routing: FRR %s running in %s", " ".join(frr.daemons), self.dir)
        if not first:
            self._reload(frr, want)

    def _reload(self, frr: Frr, want: dict[str, str]) -> None:
        """Apply the new configuration as a difference to the running daemons."""
        for daemon, text in want.items():
            frr.conf(daemon).write_text(text)
        whole = self.dir / "frr.conf"
        whole.write_text("".join(want[d] for d in frr.daemons))
        r = subprocess.run([sys.executable, FRR_RELOAD, "--reload", "--stdout",
                            "--vty_socket", str(self.dir), "--confdir", str(self.dir),
                            "--rundir", str(self.dir), "--bindir", "/usr/bin", str(whole)],
                           capture_output=True, text=True, timeout=RELOAD_TIMEOUT)
        if r.returncode != 0:
            said = [line for line in (r.stdout + r.stderr).splitlines() if line.strip()]
            raise RoutingError("FRR refused the change: " + " | ".join(said[-4:]))
        log.info("routing: FRR configuration applied")

    # -- the loop ---------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            try:
                async with asyncio.timeout(SUPERVISE_EVERY):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            await asyncio.to_thread(self.sync)

    def stop(self) -> None:
        if self.frr is not None:
            self.frr.stop()
            log.info("routing: FRR stopped")
        self.frr = None
        self.applied = {}

    # -- FRR's answers ----------------------------------------------------------------

    def vtysh(self, command: str) -> str:
        if self.frr is None:
            raise RoutingError("no routing daemon runs (configure `router ospf`)")
        return self.frr.vtysh(command)

    def json(self, command: str):
        if self.frr is None:
            raise RoutingError("no routing daemon runs (configure `router ospf`)")
        return self.frr.json(command)
