"""exabgp for one rlb instance, run from its `router bgp` section.

The daemon runs exabgp (the venv's, pinned) as its child in its own namespace, with
every file under /run/rlb/INSTANCE-bgp: the configuration written from the section (a
`neighbor` block per neighbour, local AS, hold time, its local address the kernel's on
the neighbour's network unless `update-source` says), no CLI pipes, its log. exabgp runs an API process of ours
(rlb.routing.exabridge) that connects back to the daemon on a unix socket, so the
daemon says what is announced: `announce route VIP/32 next-hop self` for each VIP the
Announcer puts up (rlb.routing.announce), `withdraw route ...` before it takes one down,
every command acknowledged by exabgp (`done`/`error`). exabgp's neighbour events (JSON)
say each session's state, which `show bgp summary` shows.

exabgp has no BFD: FRR's bfdd runs beside it (rlb.routing.router) for the neighbours
with `bfd`. exabgp dies with the daemon (the kernel's parent-death signal), so an rlb
killed leaves no session announcing VIPs nobody serves. A changed section is applied
by exabgp's reload (SIGUSR1: only the neighbours that changed are reset); a section
exabgp refuses is refused at commit with exabgp's own message (`exabgp --test`).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from importlib import metadata
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

from rlb.child import Helper, die_with_parent
from rlb.control import paths
from rlb.netlink import in_thread
from rlb.routing.frr import RoutingError, alive

log = logging.getLogger("rlb.routing")

EXABGP = Path(sys.executable).parent / "exabgp"      # pip installs it beside rlb's Python
ACK_WAIT = 5.0            # seconds exabgp may take to acknowledge a command
CHECK_TIMEOUT = 30.0
RESTART_AFTER = 5.0       # seconds before an exabgp that died is started again
# exabgp's state events, as FRR's `show bgp summary` names the states
STATE_EVENT = "state"      # exabgp's JSON event of a neighbour's state
STATES = {"up": "Established", "connected": "OpenSent", "down": "Active"}
# exabgp's settings (its environment): ours, and nothing of the host's /etc/exabgp
ENV = {"exabgp_daemon_user": "root", "exabgp_daemon_drop": "false",
       "exabgp_daemon_daemonize": "false", "exabgp_api_cli": "false",
       "exabgp_api_ack": "true", "exabgp_api_respawn": "true",
       "exabgp_api_encoder": "json"}


def installed() -> None:
    if not EXABGP.is_file():
        raise RoutingError(f"exabgp is not installed ({EXABGP} missing): `make setup` "
                           "installs it (exabgp 4.2, pinned) into rlb's venv")


def version() -> str | None:
    try:
        return metadata.version("exabgp")
    except metadata.PackageNotFoundError:
        return None


def kernel_addresses() -> list[IPv4Interface]:
    """The IPv4 addresses of this namespace's interfaces (the kni's among them)."""
    found: list[IPv4Interface] = []

    def work(ipr) -> list[str]:
        for msg in ipr.get_addr(family=2):           # AF_INET
            found.append(IPv4Interface(f"{msg.get_attr('IFA_ADDRESS')}/{msg['prefixlen']}"))
        return []
    problems = in_thread(work, "rlb-bgp")
    if problems:
        raise RoutingError(problems[0])
    return found


def sources(bgp, addresses: list[IPv4Interface]) -> dict[IPv4Address, IPv4Address]:
    """Each neighbour's local address: its update-source, else the kernel's address on
    its network (exabgp 4.2 needs one)."""
    out = {}
    for addr, n in bgp.neighbors:
        src = n.source or next((a.ip for a in addresses if addr in a.network
                                and a.ip != addr), None)
        if src is None:
            raise RoutingError(f"neighbor {addr}: no address of this LB's kernel is on its "
                               "network (put one on the kni, or give `neighbor "
                               f"{addr} update-source A.B.C.D`)")
        out[addr] = src
    return out


def config(bgp, api_socket: str, addresses: list[IPv4Interface]) -> str:
    """exabgp's configuration for a `router bgp` section (with neighbours), given the
    kernel's addresses; a RoutingError for what exabgp cannot be given."""
    src = sources(bgp, addresses)
    rid = bgp.router_id or src[bgp.neighbors[0][0]]
    lines = ["process rlb {",
             f"    run {sys.executable} -m rlb.routing.exabridge {api_socket};",
             "    encoder json;", "}"]
    for addr, n in bgp.neighbors:
        lines += [f"neighbor {addr} {{",
                  f"    router-id {rid};",
                  f"    local-address {src[addr]};",
                  f"    local-as {bgp.asn};",
                  f"    peer-as {n.remote_as};"]
        if n.hold is not None:
            lines.append(f"    hold-time {n.hold};")
        lines += ["    family { ipv4 unicast; }",
                  "    api { processes [ rlb ]; neighbor-changes; }", "}"]
    return "\n".join(lines) + "\n"


def check_text(text: str) -> None:
    """exabgp's own check of a configuration (`exabgp --test`); a RoutingError with its
    words when it refuses it."""
    installed()
    with tempfile.NamedTemporaryFile("w", suffix=".conf", prefix="rlb-exabgp-") as f:
        f.write(text)
        f.flush()
        env = dict(os.environ, **ENV, exabgp_log_destination="stdout")
        try:
            r = subprocess.run([str(EXABGP), "--test", f.name], capture_output=True,
                               text=True, env=env, timeout=CHECK_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise RoutingError("exabgp --test did not finish") from None
    if r.returncode != 0:
        said = [line.rsplit("|", 1)[-1].strip() for line in (r.stdout + r.stderr).splitlines()]
        said = [s for s in said if s]
        start = next((i for i, s in enumerate(said) if "error" in s), max(0, len(said) - 3))
        raise RoutingError("exabgp refused the configuration: " + " | ".join(said[start:]))


def _fail(acks: deque) -> None:
    while acks:
        fut = acks.popleft()
        if not fut.done():
            fut.set_result("lost")


class Speaker(Helper):
    """The instance's exabgp. `await run()` keeps it as `router bgp` says; the Announcer
    calls announce()/withdraw() for each VIP."""

    what = "exabgp"

    def __init__(self, model, instance: str, *, directory: str | None = None):
        super().__init__(log)
        self.model = model
        self.dir = Path(directory or paths.bgp_dir(instance))
        self.routes: set[IPv4Address] = set()      # what should be announced
        self.sent: set[IPv4Address] = set()        # what exabgp acknowledged
        self.neighbors: dict[str, dict] = {}       # peer -> {state, since, reason}
        self.problem: str | None = None
        self.proc: asyncio.subprocess.Process | None = None
        self.applied: str | None = None
        self._died_at = 0.0
        self._writer: asyncio.StreamWriter | None = None
        self._acks: deque[asyncio.Future] = deque()
        self._server: asyncio.AbstractServer | None = None
        model.routing.listeners.append(self._wake.set)
        model.routing.checkers.append(self.check)
        model.speaker = self

    @property
    def api_socket(self) -> Path:
        return self.dir / "api.sock"

    @property
    def conf(self) -> Path:
        return self.dir / "exabgp.conf"

    # -- what the Announcer says ---------------------------------------------------------

    def announce(self, addr: IPv4Address) -> None:
        self.routes.add(addr)
        self._wake.set()

    def withdraw(self, addr: IPv4Address) -> None:
        self.routes.discard(addr)
        self._wake.set()

    def sync(self, addrs) -> None:
        """The whole set, after each of the Announcer's steps (a kernel step that failed
        keeps its VIP where the kernel has it)."""
        addrs = set(addrs)
        if addrs != self.routes:
            self.routes = addrs
            self._wake.set()

    # -- a commit's check ------------------------------------------------------------------

    def check(self, target) -> None:
        bgp = target.routing.bgp
        if bgp is None or not bgp.neighbors:
            return
        text = config(bgp, str(self.api_socket), kernel_addresses())
        if text != self.applied:
            check_text(text)

    # -- the loop ------------------------------------------------------------------------

    async def _sync(self) -> None:
        bgp = self.model.routing.bgp
        if bgp is None or not bgp.neighbors:
            await self._stop_process()
            return
        if self.proc is not None and self.proc.returncode is not None:
            log.warning("bgp: exabgp exited (%s): starting it again", self.proc.returncode)
            self.problem = f"exabgp exited ({self.proc.returncode}); see {self.dir}/exabgp.log"
            self.proc, self.applied, self._died_at = None, None, time.monotonic()
            self.neighbors.clear()
            self.sent.clear()
        try:
            addresses = await asyncio.to_thread(kernel_addresses)
            text = config(bgp, str(self.api_socket), addresses)
        except RoutingError as e:
            if self.problem != str(e):
                log.error("bgp: %s", e)
            self.problem = str(e)
            await self._push()              # withdrawals still reach a running exabgp
            return
        if self.proc is None:
            if time.monotonic() - self._died_at < RESTART_AFTER:
                self._wake_later(RESTART_AFTER)
                return
            try:
                await self._start(text)
            except RoutingError as e:   # exabgp missing: said once, tried again later
                if self.problem != str(e):
                    log.error("bgp: %s", e)
                self.problem, self._died_at = str(e), time.monotonic()
                return
        elif text != self.applied:
            self.conf.write_text(text)
            self.proc.send_signal(signal.SIGUSR1)       # exabgp reloads its configuration
            self.applied = text
            log.info("bgp: exabgp reloads its configuration")
        await self._push()

    def _wake_later(self, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self._wake.set)

    async def _start(self, text: str) -> None:
        installed()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.kill_stale(self.dir / "exabgp.pid", self.conf)
        if self._server is None:
            self.api_socket.unlink(missing_ok=True)
            self._server = await asyncio.start_unix_server(self._client,
                                                           path=str(self.api_socket))
        self.conf.write_text(text)
        env = dict(os.environ, **ENV, exabgp_log_destination=str(self.dir / "exabgp.log"),
                   exabgp_daemon_pid=str(self.dir / "exabgp.pid"))
        with open(self.dir / "exabgp.out", "ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                str(EXABGP), str(self.conf), stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, env=env, preexec_fn=die_with_parent)
        self.applied, self.problem = text, None
        log.info("bgp: exabgp %s running (pid %d, %s)", version(), self.proc.pid, self.dir)

    async def _stop_process(self) -> None:
        self.applied = None
        if await self.stop_process():             # exabgp closes its sessions (Cease)
            self.neighbors.clear()

    async def stop(self) -> None:
        """The daemon stops: every VIP withdrawn (the Announcer did, before), exabgp told
        so and stopped."""
        self.routes.clear()
        try:
            await asyncio.wait_for(self._push(), self.stop_wait)
        except Exception:
            pass
        await self._stop_process()
        if self._server is not None:
            self._server.close()
            self._server = None
        self.api_socket.unlink(missing_ok=True)

    # -- the API connection ----------------------------------------------------------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        """exabgp's API process (the bridge) connected: everything is announced again
        (exabgp may have restarted), then its lines are read until it goes."""
        if self._writer is not None:
            self._writer.close()
        _fail(self._acks)
        acks: deque[asyncio.Future] = deque()        # this connection's, in order
        self._writer, self._acks, self.sent = writer, acks, set()
        self._wake.set()
        try:
            while line := await reader.readline():
                self._line(line.decode(errors="replace").strip(), acks)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if self._writer is writer:
                self._writer = None
            _fail(acks)
            writer.close()

    def _line(self, text: str, acks: deque) -> None:
        if text in ("done", "error", "shutdown"):
            if acks:
                fut = acks.popleft()
                if not fut.done():
                    fut.set_result(text)
            return
        if not text.startswith("{"):
            return
        try:
            event = json.loads(text)
        except ValueError:
            return
        if event.get("type") != STATE_EVENT:
            return
        n = event.get("neighbor") or {}
        peer = (n.get("address") or {}).get("peer")
        state = n.get("state")
        if peer and state:
            row = self.neighbors.setdefault(peer, {})
            if state == "up":           # a new or reset neighbour of a reload starts
                self.sent = set()       # empty: everything again (exabgp keeps no twice)
                self._wake.set()
            if row.get("state") != state:
                row.update(state=state, since=time.monotonic())
                log.log(logging.INFO if state == "up" else logging.WARNING,
                        "bgp: neighbor %s %s%s", peer, state,
                        f" ({n['reason']})" if n.get("reason") else "")
            if n.get("reason"):
                row["reason"] = n["reason"]

    async def _command(self, line: str) -> bool:
        writer = self._writer
        if writer is None:
            return False
        fut = asyncio.get_running_loop().create_future()
        self._acks.append(fut)
        writer.write(line.encode() + b"\n")
        await writer.drain()
        try:
            said = await asyncio.wait_for(fut, ACK_WAIT)
        except TimeoutError:
            said = "no answer"
        if said != "done":
            log.error("bgp: exabgp: %s: %s", line, said)
        return said == "done"

    async def _push(self) -> None:
        """Tell exabgp the difference: withdrawals first."""
        for addr in sorted(self.sent - self.routes, key=int):
            if addr in self.routes:              # back while an ack was awaited
                continue
            if await self._command(f"withdraw route {addr}/32 next-hop self"):
                self.sent.discard(addr)
                log.warning("bgp: VIP %s withdrawn", addr)
        for addr in sorted(self.routes - self.sent, key=int):
            if addr not in self.routes:          # gone while an ack was awaited
                continue
            if await self._command(f"announce route {addr}/32 next-hop self"):
                self.sent.add(addr)
                log.info("bgp: VIP %s announced", addr)

    # -- `show bgp summary` ----------------------------------------------------------------

    def summary(self) -> dict:
        bgp = self.model.routing.bgp
        now = time.monotonic()
        running = self.proc is not None and self.proc.returncode is None and alive(self.proc.pid)
        rows = []
        for addr, n in (bgp.neighbors if bgp else ()):
            seen = self.neighbors.get(str(addr), {})
            state = STATES.get(seen.get("state"), "Idle")
            rows.append({"peer": str(addr), "remote_as": n.remote_as, "state": state,
                         "for": round(now - seen["since"], 1) if "since" in seen else None,
                         "reason": seen.get("reason"), "bfd": n.bfd,
                         "prefixes_sent": len(self.sent) if state == "Established" else 0})
        return {"asn": bgp.asn if bgp else None,
                "router_id": str(bgp.router_id) if bgp and bgp.router_id else None,
                "exabgp": version(),
                "process": f"running, pid {self.proc.pid}" if running else "not running",
                "problem": self.problem, "neighbors": rows,
                "announced": [str(a) for a in sorted(self.sent, key=int)]}
