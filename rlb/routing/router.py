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
import tempfile
import threading
import time
from pathlib import Path

from rlb.control import paths
from rlb.routing.frr import CONF, VTYSH, Frr, RoutingError, installed
from rlb.routing.ospf import frr_configs

log = logging.getLogger("rlb.routing")

FRR_RELOAD = "/usr/lib/frr/frr-reload.py"
RELOAD_TIMEOUT = 60.0
PATHSPACE = "pathspace"         # `routing frr pathspace NAME` (else vty-socket DIR)
DRYRUN = "--dryrun"             # vtysh: read a configuration file, check it, exit
SUPERVISE_EVERY = 5.0           # seconds between two looks for a dead daemon
RETRY_REFUSED = 60.0            # seconds before a configuration FRR refused is tried again


class Router:
    """FRR for one instance. `await run()` keeps it as the configuration says."""

    def __init__(self, model, instance: str, *, directory: str | None = None):
        self.model = model
        self.instance = instance
        self.dir = Path(directory or paths.frr_dir(instance))
        self.frr: Frr | None = None
        self.applied: dict[str, str] = {}
        self.problem: str | None = None          # the last failure, in FRR's words
        self._failed: tuple[dict, float] | None = None   # (what failed, when)
        self._lock = threading.Lock()            # a sync (a thread) and stop() never overlap
        self._wake = asyncio.Event()
        self._wake.set()
        model.routing.listeners.append(self._wake.set)
        model.routing.checkers.append(self.check)
        model.services.listeners.append(self._wake.set)     # the announced VIPs
        model.router = self

    # -- a commit's check ----------------------------------------------------------------

    def check(self, target) -> None:
        """A candidate's FRR configuration, read by FRR's own parser (`vtysh --dryrun`)
        before the commit changes anything: a RoutingError in FRR's words if it refuses
        a line; one if FRR is missing."""
        r = target.routing
        if r.frr is not None and (r.ospf is not None or (r.bgp and r.bgp.bfd_peers)):
            raise RoutingError(f"FRR is the operator's (routing frr {' '.join(r.frr)}): "
                               "configure OSPF and BFD there, not in `router ospf` or "
                               "`neighbor X bfd`; rlb only puts the VIPs on the kni")
        want = frr_configs(target, self.instance)
        if not want or want == self.applied:
            return
        installed()
        with tempfile.NamedTemporaryFile("w", suffix=".conf", prefix="rlb-frr-") as f:
            f.write("".join(want.values()))
            f.flush()
            try:
                r = subprocess.run([VTYSH, DRYRUN, CONF, f.name], capture_output=True,
                                   text=True, timeout=RELOAD_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise RoutingError("vtysh --dryrun did not finish") from None
        if r.returncode != 0:
            said = [line.strip() for line in (r.stdout + r.stderr).splitlines()
                    if line.strip()]
            raise RoutingError("FRR refused the configuration: " + " | ".join(said[-3:]))

    # -- one sync ---------------------------------------------------------------------

    def sync(self, want: dict[str, str] | None = None) -> None:
        """Make the daemons what the configuration says (`want`: its FRR text, made on
        the event loop, where the model changes); a failure is logged and kept in
        `problem` (shown by FRR's shows), never raised, and a configuration FRR refused
        is not tried again for RETRY_REFUSED seconds unless it changes."""
        if want is None:
            want = frr_configs(self.model, self.instance)
        with self._lock:
            try:
                if want == self.applied and (self.frr is None or not self.frr.dead()):
                    return
                if self._failed is not None and self._failed[0] == want and \
                        time.monotonic() - self._failed[1] < RETRY_REFUSED:
                    return
                if not want:
                    self._stop()
                    return
                self._apply(want)
                self.applied, self.problem, self._failed = want, None, None
            except Exception as e:          # FRR missing or refusing, a bad file: said
                self.problem = str(e) or type(e).__name__
                self._failed = (want, time.monotonic())
                log.error("routing: %s", self.problem)

    def _apply(self, want: dict[str, str]) -> None:
        if self.frr is None:
            self.frr = Frr(self.dir, None, daemons=tuple(want))
        frr = self.frr
        first = not self.applied
        frr.set_daemons(tuple(want))          # bfdd in or out with BFD
        adopted = first and frr.dead() != list(frr.daemons)   # left by a killed rlb
        if first or frr.dead():
            frr.start(want)                   # the files, and the daemons not running
            log.info("routing: FRR %s running in %s", " ".join(frr.daemons), self.dir)
        if not first or adopted:              # what runs may hold an older configuration
            self._reload(frr, want)

    def _reload(self, frr: Frr, want: dict[str, str]) -> None:
        """Apply the new configuration as a difference to the running daemons."""
        if not Path(FRR_RELOAD).is_file():
            raise RoutingError(f"{FRR_RELOAD} is missing: apt-get install frr-pythontools "
                               "(rlb applies a change to running daemons with it)")
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
            try:
                want = frr_configs(self.model, self.instance)
                await asyncio.to_thread(self.sync, want)
            except Exception:                   # never let the supervision end
                log.exception("routing: sync failed")

    def stop(self) -> None:
        """The daemon stops: FRR stops (after a sync under way has ended)."""
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        frr, self.frr = self.frr, None       # the shows say so from now on
        self.applied = {}
        if frr is not None:
            frr.stop()
            log.info("routing: FRR stopped")

    # -- FRR's answers ----------------------------------------------------------------

    def _running(self) -> Frr:
        theirs = self.model.routing.frr
        if theirs is not None:                      # the operator's FRR answers
            kind, where = theirs
            return Frr(Path(where), None, pathspace=where if kind == PATHSPACE else None)
        if self.frr is None:
            raise RoutingError("no routing daemon runs (configure `router ospf`)" +
                               (f"; the last attempt: {self.problem}" if self.problem else ""))
        return self.frr

    def vtysh(self, command: str) -> str:
        return self._running().vtysh(command)

    def json(self, command: str):
        return self._running().json(command)
