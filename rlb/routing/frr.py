"""FRR's daemons for one rlb instance (or one lab node), in its network namespace.

Every path is explicit and under one directory of ours (`-f -i -z --vty_socket --log`,
bfdd's `--bfdctl`; the TCP vty off with `-P 0`), so several instances run side by side
and neither /etc/frr nor a host's own FRR is touched or seen (research/routing.md,
section 4: measured with FRR 8.4.4, Debian 12's). The daemons are our children (no
`-d`: we reap them, and see one die), each in a session of its own; a daemon is up
once its pid file holds its PID and its vty socket exists. zebra starts first (the
others reconnect to its ZAPI socket until it answers). They run as the `frr` user (the
package's), so the directory is theirs.

`vtysh --vty_socket DIR` talks to them; it needs no namespace of its own (the sockets
are files). Processes are stopped by the PIDs their pid files hold, checked against
/proc as the daemons of this directory, never by name.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from rlb.errors import CommandError

log = logging.getLogger("rlb.routing")

FRR_BIN = Path("/usr/lib/frr")
VTYSH = "vtysh"
ORDER = ("zebra", "bfdd", "ospfd", "bgpd")     # zebra first: the others connect to it
FRR_USER = "frr"
START_WAIT = 10.0          # seconds a daemon may take to write its pid file
STOP_WAIT = 5.0            # ... to exit after SIGTERM (ospfd flushes its LSAs first)
VTYSH_TIMEOUT = 15.0
# The daemons' and vtysh's own options (FRR's common-options.rst), and how a command
# enters a namespace
CONF, PIDFILE, ZAPI, VTY_DIR, VTY_ADDR, VTY_PORT, LOG = \
    "-f", "-i", "-z", "--vty_socket", "-A", "-P", "--log"
BFD_CTL, VTYSH_COMMAND, PATHSPACE = "--bfdctl", "-c", "-N"
IN_NETNS = ("ip", "netns", "exec")


class RoutingError(CommandError):
    """A routing daemon that cannot be started, reached or configured, in words."""


def installed(bin_dir: Path = FRR_BIN) -> None:
    """Raise a RoutingError saying how to install FRR when it is missing."""
    if not (bin_dir / "zebra").is_file() or shutil.which(VTYSH) is None:
        raise RoutingError(f"FRR is not installed ({bin_dir / 'zebra'} or {VTYSH} missing): "
                           "apt-get install frr (Debian 12: FRR 8.4)")


def alive(pid: int) -> bool:
    """A process that runs (a zombie, exited but not yet reaped by init, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


@dataclass
class Frr:
    """The FRR daemons of one namespace (None: the caller's own), their files in `dir`."""
    dir: Path
    netns: str | None
    daemons: tuple[str, ...] = ("zebra", "ospfd")
    bin_dir: Path = FRR_BIN
    procs: dict[str, subprocess.Popen] = field(default_factory=dict, repr=False)
    # FRR's own pathspace (`vtysh -N NAME`: /var/run/frr/NAME/) instead of `dir`'s
    # sockets: an FRR the operator runs, which rlb only asks
    pathspace: str | None = None

    def __post_init__(self):
        self.dir = Path(self.dir)
        unknown = set(self.daemons) - set(ORDER)
        if unknown:
            raise RoutingError(f"unknown FRR daemon(s) {', '.join(sorted(unknown))} "
                               f"(one of {', '.join(ORDER)})")
        if "zebra" not in self.daemons:
            self.daemons = ("zebra", *self.daemons)
        self.daemons = tuple(d for d in ORDER if d in self.daemons)

    # -- files ------------------------------------------------------------------

    def conf(self, daemon: str) -> Path:
        return self.dir / f"{daemon}.conf"

    def pidfile(self, daemon: str) -> Path:
        return self.dir / f"{daemon}.pid"

    def logfile(self, daemon: str) -> Path:
        return self.dir / f"{daemon}.log"

    def _write(self, path: Path, text: str) -> None:
        path.write_text(text)
        shutil.chown(path, FRR_USER, FRR_USER)
        path.chmod(0o640)

    # -- processes ----------------------------------------------------------------

    def argv(self, daemon: str) -> list[str]:
        d = self.dir
        argv = [str(self.bin_dir / daemon), CONF, str(self.conf(daemon)),
                PIDFILE, str(self.pidfile(daemon)), ZAPI, str(d / "zserv.api"),
                VTY_DIR, str(d), VTY_ADDR, "127.0.0.1", VTY_PORT, "0",   # no TCP vty
                LOG, f"file:{self.logfile(daemon)}"]
        if daemon == "bfdd":
            argv += [BFD_CTL, str(d / "bfdd.sock")]
        if self.netns:
            argv = [*IN_NETNS, self.netns, *argv]
        return argv

    def start(self, configs: dict[str, str] | None = None) -> None:
        """Write each daemon's configuration (`configs`: daemon -> text; an empty file
        for the rest) and start the daemons not running yet."""
        installed(self.bin_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.dir, FRR_USER, FRR_USER)
        self.dir.chmod(0o755)
        configs = configs or {}
        for daemon in self.daemons:
            self._write(self.conf(daemon), configs.get(daemon, f"! {daemon}: rlb\n"))
        for daemon in self.daemons:
            if self.pid(daemon) is None:
                self._spawn(daemon)

    def _spawn(self, daemon: str) -> None:
        self.pidfile(daemon).unlink(missing_ok=True)
        out = self.dir / f"{daemon}.out"           # what it says before its log is open
        with open(out, "ab") as f:
            proc = subprocess.Popen(self.argv(daemon), stdin=subprocess.DEVNULL, stdout=f,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        vty = self.dir / f"{daemon}.vty"
        end = time.monotonic() + START_WAIT
        while time.monotonic() < end:
            if proc.poll() is not None:
                said = out.read_text(errors="replace").strip().splitlines()[-3:]
                raise RoutingError(f"{daemon} did not start (exit {proc.returncode}): "
                                   + " | ".join(said))
            if self.pid(daemon) == proc.pid and vty.exists():
                self.procs[daemon] = proc
                log.info("%s started (pid %d, %s)", daemon, proc.pid, self.dir)
                return
            time.sleep(0.05)
        proc.kill()
        proc.wait()
        raise RoutingError(f"{daemon} was not up within {START_WAIT:g} s: see "
                           f"{self.logfile(daemon)}")

    def pid(self, daemon: str) -> int | None:
        """The PID of this directory's `daemon` if it runs (its pid file, checked against
        the process's command line: a reused PID is not taken for it)."""
        try:
            pid = int(self.pidfile(daemon).read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            return None
        if not cmdline or Path(os.fsdecode(cmdline[0])).name != daemon or \
                os.fsencode(str(self.pidfile(daemon))) not in cmdline:
            return None
        return pid

    def dead(self) -> list[str]:
        for proc in self.procs.values():
            proc.poll()                    # reap a child that died
        return [d for d in self.daemons if self.pid(d) is None]

    def revive(self) -> list[str]:
        """Start again the daemons that died (supervision); the ones restarted."""
        out = []
        for daemon in self.dead():
            log.warning("%s (%s) is not running: starting it again", daemon, self.dir)
            self._spawn(daemon)
            out.append(daemon)
        return out

    def stop(self, wait: float = STOP_WAIT) -> None:
        """SIGTERM to each daemon (zebra last), SIGKILL to one still there after `wait`."""
        for daemon in reversed(self.daemons):
            self.stop_one(daemon, wait)

    def stop_one(self, daemon: str, wait: float = STOP_WAIT) -> None:
        pid = self.pid(daemon)
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        proc = self.procs.pop(daemon, None)
        end = time.monotonic() + wait
        while time.monotonic() < end and alive(pid):
            if proc is not None:
                proc.poll()
            time.sleep(0.05)
        if alive(pid):
            log.warning("%s (pid %d) did not stop within %g s: killed", daemon, pid, wait)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc is not None and proc.pid == pid:
            proc.wait()

    def set_daemons(self, daemons) -> None:
        """The daemons it runs from now on (zebra always, in FRR's order); one no longer
        wanted is stopped, a new one is started by the next start()."""
        want = ("zebra", *daemons)
        for daemon in self.daemons:
            if daemon not in want:
                self.stop_one(daemon)
        self.daemons = tuple(d for d in ORDER if d in want)

    # -- vtysh ------------------------------------------------------------------------

    def vtysh(self, *commands: str, timeout: float = VTYSH_TIMEOUT) -> str:
        """Run commands through vtysh on this directory's daemons; their output. A
        command the daemons refuse raises a RoutingError with FRR's own words."""
        argv = [VTYSH, PATHSPACE, self.pathspace] if self.pathspace else \
            [VTYSH, VTY_DIR, str(self.dir)]
        for c in commands:
            argv += [VTYSH_COMMAND, c]
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RoutingError(f"vtysh did not answer within {timeout:g} s") from None
        except FileNotFoundError:
            installed(self.bin_dir)
            raise
        if r.returncode != 0:
            why = (r.stdout + r.stderr).strip() or f"exit {r.returncode}"
            raise RoutingError(why)
        return r.stdout

    def json(self, command: str):
        """A `show ... json` command's answer, parsed."""
        text = self.vtysh(command if command.endswith(" json") else command + " json")
        try:
            return json.loads(text)
        except ValueError:
            raise RoutingError(f"{command}: FRR gave no JSON: {text.strip()[:200]}") from None
