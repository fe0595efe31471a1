"""keepalived for one rlb instance, run from its `vrrp instance` sections: VRRP only.

The daemon runs Debian's stock keepalived as its child in its own namespace (`-P`: the
VRRP process only; explicit pid files; every file under /run/rlb/INSTANCE-ha), with a
configuration written from the sections: per instance, VRRP on PORT.kni, its virtual
addresses in `virtual_ipaddress` and the local addresses of the services on them in
`virtual_ipaddress_excluded`, all on the kni. While MASTER, keepalived holds them there:
the kernel answers ARP for them (the data plane passes that ARP to the kni on every LB:
Model.vrrp_addresses) and keepalived sends the gratuitous ARPs, out through the data
plane. rlb keeps the services and their checks itself; keepalived is told nothing of
them.

keepalived reports each transition on its notify FIFO (`INSTANCE "VI_1" MASTER 100`),
which the daemon reads for `show vrrp`. A changed section is keepalived's reload
(SIGHUP); a section keepalived refuses is refused at commit with its own message
(`keepalived -t`). keepalived dies with the daemon (the parent-death signal: SIGTERM, on
which a MASTER sends priority 0 and its peer takes over at once).
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path

from rlb.child import Helper, die_with_parent
from rlb.control import paths
from rlb.errors import CommandError
from rlb.model.ha import MASTER

log = logging.getLogger("rlb.ha")

KEEPALIVED = Path("/usr/sbin/keepalived")
RESTART_AFTER = 2.0       # seconds before a keepalived that died is started again
CHECK_TIMEOUT = 30.0
FIFO = "notify.fifo"
STATES = ("MASTER", "BACKUP", "FAULT", "STOP")
# keepalived's argv: one check of a file (-t); a run in the foreground (-n), its log on
# stdout (-l, -D detailed), VRRP only (-P), with its pid files (-p, -r) and file (-f)
CHECK_ARGV = ("-t", "-n", "-l", "-P", "-f")
RUN_ARGV = ("-n", "-l", "-D", "-P")
PIDS = ("-p", "-r")


class HaError(CommandError):
    """keepalived missing, or refusing a configuration (its words)."""


def installed() -> None:
    if not KEEPALIVED.is_file():
        raise HaError(f"keepalived is not installed ({KEEPALIVED} missing): `make setup` "
                      "installs Debian's keepalived")


def config(model, instance: str, fifo: str) -> str:
    """keepalived's configuration for the model's VRRP sections ('' for none)."""
    if not model.ha.instances:
        return ""
    moved = model.vrrp_addresses()
    out = [f"# written by rlb for instance {instance}: VRRP only (rlb runs the services",
           "# and their checks); changes go through rlb's configuration, not here",
           "global_defs {", f"    router_id {instance}", f"    vrrp_notify_fifo {fifo}",
           "}"]
    for name, inst in model.ha.instances:
        kni = f"{inst.port}.kni"
        vips = {a.ip for a in inst.addresses}
        lips = sorted(ip for ip, owner in moved.items() if owner == name and ip not in vips)
        out += [f"vrrp_instance {name} {{", f"    state {inst.state.upper()}",
                f"    interface {kni}", f"    virtual_router_id {inst.vrid}",
                f"    priority {inst.priority}", f"    advert_int {inst.advert:g}",
                f"    version {inst.version}"]
        if inst.auth:
            out += ["    authentication {", "        auth_type PASS",
                    f"        auth_pass {inst.auth}", "    }"]
        if inst.source:
            out.append(f"    unicast_src_ip {inst.source}")
        if inst.peers:
            out += ["    unicast_peer {", *(f"        {p}" for p in inst.peers), "    }"]
        if not inst.preempt:
            out.append("    nopreempt")
        if inst.preempt_delay:
            out.append(f"    preempt_delay {inst.preempt_delay}")
        for key in ("delay", "repeat", "refresh"):
            value = getattr(inst, f"garp_{key}")
            if value is not None:
                out.append(f"    garp_master_{key} {value}")
        out += ["    virtual_ipaddress {",
                *(f"        {a} dev {kni}" for a in inst.addresses), "    }"]
        if lips:
            out += ["    virtual_ipaddress_excluded {",
                    *(f"        {ip}/32 dev {kni}" for ip in lips), "    }"]
        out.append("}")
    return "\n".join(out) + "\n"


def check_text(text: str) -> None:
    """keepalived's own parser on a configuration (`keepalived -t`): its words if it
    refuses it."""
    installed()
    with tempfile.NamedTemporaryFile("w", suffix=".conf", prefix="rlb-ka-") as f:
        f.write(text)
        f.flush()
        try:
            r = subprocess.run([str(KEEPALIVED), *CHECK_ARGV, f.name],
                               capture_output=True, text=True, timeout=CHECK_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise HaError("keepalived -t did not finish") from None
    if r.returncode != 0:
        said = [line.split(": ", 1)[-1].strip() for line in (r.stdout + r.stderr).splitlines()
                if line.strip() and "Script user" not in line]
        raise HaError("keepalived refused the configuration: " + " | ".join(said[-3:]))


def parse_notify(line: str) -> tuple[str, str, int] | None:
    """`INSTANCE "VI_1" MASTER 100` -> ("VI_1", "master", 100); None for other lines."""
    parts = line.split()
    if len(parts) != 4 or parts[0] != "INSTANCE" or parts[2] not in STATES:
        return None
    try:
        return parts[1].strip('"'), parts[2].lower(), int(parts[3])
    except ValueError:
        return None


class Keepalived(Helper):
    """keepalived for one instance. `await run()` keeps it as the configuration says."""

    what = "keepalived"

    def __init__(self, model, instance: str, *, directory: str | None = None):
        super().__init__(log)
        self.model = model
        self.instance = instance
        self.dir = Path(directory or paths.ha_dir(instance))
        self.proc: asyncio.subprocess.Process | None = None
        self.applied: str | None = None
        self.problem: str | None = None
        self.states: dict[str, tuple[str, int, float]] = {}   # name: (state, prio, since)
        self._fd: int | None = None
        self._buf = b""
        self._died_at = 0.0
        model.ha.listeners.append(self._wake.set)
        model.ha.checkers.append(self.check)
        model.services.listeners.append(self._wake.set)      # the local addresses moved
        model.keepalived = self

    @property
    def conf(self) -> Path:
        return self.dir / "keepalived.conf"

    @property
    def fifo(self) -> Path:
        return self.dir / FIFO

    # -- a commit's check ------------------------------------------------------------------

    def check(self, target) -> None:
        text = config(target, self.instance, str(self.fifo))
        if text and text != self.applied:
            check_text(text)

    # -- the loop ------------------------------------------------------------------------

    async def _sync(self) -> None:
        text = config(self.model, self.instance, str(self.fifo))
        if not text:
            await self._stop_process()
            return
        if self.proc is not None and self.proc.returncode is not None:
            log.warning("vrrp: keepalived exited (%s): starting it again", self.proc.returncode)
            self.problem = f"keepalived exited ({self.proc.returncode}); see {self.dir}"
            self.proc, self.applied, self._died_at = None, None, time.monotonic()
            self.states.clear()
        if self.proc is None:
            if time.monotonic() - self._died_at < RESTART_AFTER:
                asyncio.get_running_loop().call_later(RESTART_AFTER, self._wake.set)
                return
            try:
                await self._start(text)
            except HaError as e:        # keepalived missing: said once, tried again later
                if self.problem != str(e):
                    log.error("vrrp: %s", e)
                self.problem, self._died_at = str(e), time.monotonic()
        elif text != self.applied:
            self.conf.write_text(text)
            self.proc.send_signal(signal.SIGHUP)      # keepalived reloads its configuration
            self.applied = text
            log.info("vrrp: keepalived reloads its configuration")

    async def _start(self, text: str) -> None:
        installed()
        self.dir.mkdir(parents=True, exist_ok=True)
        for pidfile in ("keepalived.pid", "vrrp.pid"):
            self.kill_stale(self.dir / pidfile, self.conf)
        self._open_fifo()
        self.conf.write_text(text)
        with open(self.dir / "keepalived.log", "ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                str(KEEPALIVED), *RUN_ARGV, CHECK_ARGV[-1], str(self.conf),
                PIDS[0], str(self.dir / "keepalived.pid"), PIDS[1], str(self.dir / "vrrp.pid"),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent)
        self.applied, self.problem = text, None
        log.info("vrrp: keepalived running (pid %d, %s)", self.proc.pid, self.dir)

    # -- the notify FIFO -------------------------------------------------------------------

    def _open_fifo(self) -> None:
        """Made by us (keepalived writes to a FIFO that is there), held open for reading
        and writing so that it never reads as closed between two keepalived runs."""
        if self._fd is not None:
            return
        try:
            if not stat.S_ISFIFO(self.fifo.lstat().st_mode):
                self.fifo.unlink()
                os.mkfifo(self.fifo, 0o600)
        except FileNotFoundError:
            os.mkfifo(self.fifo, 0o600)
        self._fd = os.open(self.fifo, os.O_RDWR | os.O_NONBLOCK)
        asyncio.get_running_loop().add_reader(self._fd, self._read)

    def _read(self) -> None:
        try:
            chunk = os.read(self._fd, 4096)
        except BlockingIOError:
            return
        self._buf += chunk
        *lines, self._buf = self._buf.split(b"\n")
        for raw in lines:
            got = parse_notify(raw.decode(errors="replace"))
            if got is None:
                continue
            name, state, prio = got
            old = self.states.get(name)
            if old is None or old[0] != state:
                log.info("vrrp: instance %s is %s (priority %d)", name, state.upper(), prio)
                self.states[name] = (state, prio, time.monotonic())
                if state == MASTER:
                    self._announce(name)

    def _announce(self, name: str) -> None:
        """A new MASTER: a gratuitous ARP from the data plane for each address it moves
        (keepalived sends its own from the kni too, as its garp settings say)."""
        inst, engine = self.model.ha.instance(name), self.model.engine
        if inst is None or engine is None or inst.port not in self.model.ports:
            return
        port = self.model.ports[inst.port].index
        for ip, owner in self.model.vrrp_addresses().items():
            if owner == name:
                try:
                    engine.garp(int(ip), port)
                except Exception as e:          # the data plane busy: keepalived's remain
                    log.warning("vrrp: gratuitous ARP for %s: %s", ip, e)

    def _close_fifo(self) -> None:
        if self._fd is not None:
            try:
                asyncio.get_running_loop().remove_reader(self._fd)
            except RuntimeError:
                pass
            os.close(self._fd)
            self._fd = None

    # -- stopping ------------------------------------------------------------------------

    async def _stop_process(self) -> None:
        self.applied = None
        if await self.stop_process():     # a MASTER sends priority 0: the peer takes over
            self.states.clear()

    async def stop(self) -> None:
        """The daemon stops: keepalived leaves (the peer becomes MASTER) and stops."""
        await self._stop_process()
        self._close_fifo()

    # -- show vrrp -----------------------------------------------------------------------

    def view(self) -> dict:
        now = time.monotonic()
        moved = self.model.vrrp_addresses()
        rows = []
        for name, inst in self.model.ha.instances:
            state, prio, since = self.states.get(name, ("init", inst.priority, None))
            rows.append({"name": name, "port": inst.port, "vrid": inst.vrid,
                         "priority": prio, "state": state,
                         "for": None if since is None else round(now - since, 1),
                         "addresses": [str(ip) for ip, owner in moved.items()
                                       if owner == name]})
        running = self.proc is not None and self.proc.returncode is None
        return {"instances": rows, "problem": self.problem,
                "process": f"pid {self.proc.pid}" if running else "not running"}
