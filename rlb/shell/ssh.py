"""The ssh shell: asyncssh and prompt_toolkit's SSH server in the daemon, public keys only.

`ssh listen ADDR PORT` starts it; each login gets the same Shell as `rlb`, running
commands through rlb.control.server.execute with its own Context (user, privilege).
Without a terminal it is `rlb` without one: an exec request (`ssh lb 'show ip vs'`) runs
as `rlb -c`, a shell without a pty (`... | ssh -T lb`) as lines on rlb's stdin; the exit
status is theirs.
prompt_toolkit's server lets everyone in, so every auth method but public keys of
configured users is refused here (STYLE.md).
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections import deque

import asyncssh
from prompt_toolkit.contrib.ssh import PromptToolkitSSHServer, PromptToolkitSSHSession
from prompt_toolkit.data_structures import Size

from rlb.control.paths import state_dir
from rlb.commands.base import SSH, Context
from rlb.commands.grammar import MAX_LINE
from rlb.commands.render import printable
from rlb.shell.repl import LocalTransport, QuietFileHistory, Script, Shell, commands
from rlb.commands.users import accounts

log = logging.getLogger("rlb.ssh")
HOST_KEY = "ssh_host_key"
MAX_PENDING = MAX_LINE + 256    # characters typed without Enter that the session keeps
_ENDS = "\r\n\x03\x15"           # Enter, Ctrl-C, Ctrl-U: the line starts again
_LINE_ENDS = re.compile("([\r\n\x03\x15])")


def host_key(directory: str):
    """The host key, made on first start: written whole under a temporary name, mode 0600."""
    path = os.path.join(directory, HOST_KEY)
    if os.path.exists(path):
        if os.stat(path).st_mode & 0o077:
            log.warning("ssh: %s was readable by others: mode set to 0600", path)
            os.chmod(path, 0o600)
        return asyncssh.read_private_key(path)
    key = asyncssh.generate_private_key("ssh-ed25519")
    tmp = path + ".new"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.export_private_key())
    os.rename(tmp, path)
    log.info("ssh: new host key %s %s", path, key.get_fingerprint())
    return key


class FailureLimiter:
    """Failed logins per source address in the last `window` seconds: each refused key
    waits longer than the last, and past `limit` the address is turned away at connect."""

    def __init__(self, limit: int = 10, window: float = 60.0, clock=time.monotonic,
                 max_addrs: int = 4096):
        self.limit, self.window, self.clock, self.max_addrs = limit, window, clock, max_addrs
        self.failures: dict[str, deque] = {}
        self.warned: dict[str, float] = {}

    def recent(self, addr: str) -> int:
        q = self.failures.get(addr)
        now = self.clock()
        while q and now - q[0] > self.window:
            q.popleft()
        if q is not None and not q:
            del self.failures[addr]
        return len(q or ())

    def fail(self, addr: str) -> int:
        if addr not in self.failures and len(self.failures) >= self.max_addrs:
            # a flood of addresses must not grow memory: drop the stalest
            del self.failures[min(self.failures, key=lambda a: self.failures[a][-1])]
        self.failures.setdefault(addr, deque()).append(self.clock())
        return self.recent(addr)

    def blocked(self, addr: str) -> bool:
        return self.recent(addr) >= self.limit

    def delay(self, addr: str, refused: int) -> float:
        return min(0.2 * 2 ** (self.recent(addr) + refused), 5.0)

    def warn_once(self, addr: str) -> bool:
        """True at most once a window per address: the log says it, not every attempt."""
        now = self.clock()
        if now - self.warned.get(addr, -self.window - 1) > self.window:
            self.warned[addr] = now
            return True
        return False


class _Session(PromptToolkitSSHSession):
    """One session channel: the shell on a pty, else a batch (an exec request's command,
    or lines until EOF). A dropped connection cancels it; an endless line is cut."""

    def __init__(self, interact, batch, *, enable_cpr: bool):
        super().__init__(interact, enable_cpr=enable_cpr)
        self.batch = batch          # coroutine function(session) when there is no terminal
        self.pending = 0
        self.command = None         # what an exec request asked for
        self.lines = None           # a batch's input: lines, None at EOF
        self.partial, self.partial_len = "", 0
        self.early: list[str] = []
        self.writable = asyncio.Event()
        self.writable.set()

    def exec_requested(self, command: str) -> bool:
        self.command = command
        return True

    def _get_size(self) -> Size:
        # a client that sends no size (`ssh -tt` from a script) says 0x0: nothing would be
        # drawn, not even the prompt
        size = super()._get_size()
        return Size(rows=size.rows or 24, columns=size.columns or 80)

    @property
    def tty(self) -> bool:
        return self._chan.get_terminal_type() is not None

    def session_started(self) -> None:
        if self.command is None and self.tty:
            super().session_started()
            return
        self.lines = asyncio.Queue()
        self.interact_task = asyncio.get_running_loop().create_task(self.batch(self))

    def eof_received(self) -> bool:
        if self.lines is None:
            return super().eof_received()
        if self.partial_len:
            self._line()
        self.lines.put_nowait(None)
        return True                 # half open: the output is still to come

    def _line(self) -> None:
        self.lines.put_nowait((self.partial.removesuffix("\r"), self.partial_len))
        self.partial, self.partial_len = "", 0
        if self.lines.qsize() > 64:     # the input waits while the lines before it run
            self._chan.pause_reading()

    async def next_line(self):
        """(line, length before it was cut), or None at EOF."""
        item = await self.lines.get()
        if self.lines.qsize() < 8:
            self._chan.resume_reading()
        return item

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def write(self, text: str, stderr: bool = False) -> None:
        """A reply without a terminal, escaped; a pty wants \\r\\n."""
        text = printable(text) + "\n"
        if self.tty:
            text = text.replace("\n", "\r\n")
        (self._chan.write_stderr if stderr else self._chan.write)(text)

    def data_received(self, data: str, datatype) -> None:
        if self.lines is not None:
            self._batch_data(data)
            return
        # The line editor spends time on every character it holds: past MAX_PENDING since
        # the last Enter (or Ctrl-C, Ctrl-U) the rest is dropped, as the daemon would
        # refuse such a line anyway.
        kept = []
        for piece in _LINE_ENDS.split(data):
            if len(piece) == 1 and piece in _ENDS:
                self.pending = 0
                kept.append(piece)
                continue
            room = MAX_PENDING - self.pending
            if room > 0:
                kept.append(piece[:room])
            self.pending += len(piece)
        if self._input is None:     # typed ahead, before the shell is up: kept for it
            self.early.append("".join(kept))
            return
        super().data_received("".join(kept), datatype)

    def typed_ahead(self) -> None:
        """What came before the shell's input existed, now given to it."""
        for text in self.early:
            self._input.send_text(text)
        self.early.clear()

    def _batch_data(self, data: str) -> None:
        # lines as they come; past MAX_LINE a line is only counted (it will be refused)
        *done, rest = data.split("\n")
        for piece in done:
            self._keep(piece)
            self._line()
        self._keep(rest)

    def _keep(self, piece: str) -> None:
        room = MAX_LINE + 1 - len(self.partial)
        if room > 0:
            self.partial += piece[:room]
        self.partial_len += len(piece)

    def connection_lost(self, exc) -> None:
        if self.interact_task is not None:
            self.interact_task.cancel()


def _exit(session, status: int) -> None:
    """The session's exit status to the client (`ssh` exits with it), and the channel closed."""
    try:
        session._chan.exit(status)
    except (OSError, asyncssh.Error):       # the client went first
        pass


class _Connection(PromptToolkitSSHServer):
    """One ssh connection: authentication, then shell sessions for the user."""

    def __init__(self, service: SshService):
        super().__init__(self._interact, enable_cpr=False)
        self.service = service
        self.conn = None
        self.peer = "?"
        self.username = None        # as the client sent it: quoted with %r in logs
        self.user = None            # once authenticated
        self.refused = 0

    def connection_made(self, conn) -> None:
        self.conn = conn
        peer = conn.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else "?"
        self.service.connections.add(conn)
        if self.service.limiter.blocked(self.peer):
            if self.service.limiter.warn_once(self.peer):
                log.warning("ssh: %s turned away: too many failed logins", self.peer)
            conn.close()

    def connection_lost(self, exc) -> None:
        self.service.connections.discard(self.conn)
        if self.user is not None:
            log.info("ssh: %s from %s logged out", self.user.name, self.peer)
        elif self.username is not None:
            n = self.service.limiter.fail(self.peer)
            log.warning("ssh: failed login for user %r from %s (%d in the last %.0f s)",
                        self.username, self.peer, n, self.service.limiter.window)

    def begin_auth(self, username: str) -> bool:
        self.username = username
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def host_based_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    async def validate_public_key(self, username: str, key) -> bool:
        if self.service.accounts.authorized(username, key) is not None:
            return True
        await asyncio.sleep(self.service.limiter.delay(self.peer, self.refused))
        self.refused += 1
        return False

    def auth_completed(self) -> None:
        # asyncssh calls begin_auth again whenever the client changes its user name, so
        # self.username is the one that just authenticated
        self.user = self.service.accounts.users.get(self.username)
        if self.user is not None:
            log.info("ssh: %s (%s) logged in from %s", self.user.name,
                     self.service.accounts.privilege_of(self.user), self.peer)

    def session_requested(self):
        if self.user is None:       # removed while logging in
            return False
        return _Session(self.interact, self._batch, enable_cpr=self.enable_cpr)

    async def _interact(self, ssh_session) -> None:
        user, status = self.user, 2
        ssh_session.typed_ahead()

        async def run(ctx):
            nonlocal status
            status = await Shell(LocalTransport(ctx), history=self.service.history(user.name)).run()
        await self._session(run)
        _exit(ssh_session, status)

    async def _batch(self, session: _Session) -> None:
        """No terminal: an exec request's command as `rlb -c`, else lines as rlb's stdin."""
        status = 2

        async def run(ctx):
            nonlocal status
            out, err = session.write, lambda text: session.write(text, stderr=True)
            if session.command is not None:
                status = commands(LocalTransport(ctx).call, [session.command], out, err)
                return
            script = Script(LocalTransport(ctx), out, err)
            if script.start():
                while (item := await session.next_line()) is not None:
                    await session.writable.wait()       # the client reads what came before
                    if not script.line(*item):
                        break
            status = script.status
        await self._session(run)
        _exit(session, status)

    async def _session(self, body) -> None:
        """One session of the user: listed in `show users` while it lasts."""
        svc, user = self.service, self.user
        ctx = Context(svc.model, user=user.name, privilege=svc.accounts.privilege_of(user),
                      host=svc.instance, via=SSH)
        entry = svc.accounts.open_session(user.name, ctx.privilege, self.peer, ctx=ctx)
        task = asyncio.current_task()
        svc.sessions.add(task)
        try:
            await body(ctx)
        except (asyncio.CancelledError, BrokenPipeError, ConnectionError):
            pass                    # the connection dropped: nothing half-done to undo
        except Exception:           # a bug: log it; the client sees the channel close
            log.exception("ssh: the session of %s failed", user.name)
        finally:
            svc.sessions.discard(task)
            svc.accounts.close_session(entry)
            if svc.model.store is not None:
                svc.model.store.flush(ctx)      # this session's lines: a commit now


class SshService:
    """The daemon's ssh server, following `ssh listen` (also when changed at run time)."""

    def __init__(self, model, instance: str, state_base: str | None = None):
        self.model, self.instance, self.state_base = model, instance, state_base
        self.accounts = accounts(model)
        self.limiter = FailureLimiter()
        self.acceptor = None
        self.bound = None
        self.port = None
        self.connections: set = set()
        self.sessions: set = set()      # their tasks, awaited at stop
        self._lock = asyncio.Lock()
        self._tasks: set = set()
        self.accounts.watchers.append(self._changed)
        # asyncssh logs every connection at INFO, and an exec request's command as sent:
        # lines of the user's making in the daemon's log. rlb.ssh says who came and went.
        logging.getLogger("asyncssh").setLevel(logging.WARNING)

    def _changed(self) -> None:
        try:
            task = asyncio.get_running_loop().create_task(self.apply())
        except RuntimeError:        # no loop: a config file being checked
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def history(self, name: str):
        directory = os.path.join(state_dir(self.instance, self.state_base), "history")
        os.makedirs(directory, mode=0o700, exist_ok=True)
        return QuietFileHistory(os.path.join(directory, name))

    async def apply(self) -> None:
        """Listen where the config says, or not at all."""
        async with self._lock:
            want = self.accounts.listen
            if want == self.bound and (want is None) == (self.acceptor is None):
                return
            await self._close_acceptor()
            if want is None:
                self.accounts.status = "not listening"
                return
            try:
                key = host_key(state_dir(self.instance, self.state_base))
                self.accounts.host_key = key.get_fingerprint()
                self.acceptor = await asyncssh.create_server(
                    lambda: _Connection(self), want[0], want[1], server_host_keys=[key],
                    password_auth=False, kbdint_auth=False, host_based_auth=False,
                    gss_host=None, agent_forwarding=False, x11_forwarding=False,
                    allow_scp=False, line_editor=False, encoding="utf-8", errors="replace",
                    login_timeout=60, keepalive_interval=30, keepalive_count_max=3)
            except (OSError, ValueError, asyncssh.Error) as err:
                self.accounts.status = f"error: {err}"
                log.error("ssh: cannot listen on %s port %s: %s", want[0], want[1], err)
                return
            self.bound, self.port = want, self.acceptor.get_port()
            self.accounts.status = f"listening on {want[0]} port {self.port}"
            log.info("ssh: %s", self.accounts.status)

    async def _close_acceptor(self) -> None:
        if self.acceptor is not None:
            self.acceptor.close()
            await self.acceptor.wait_closed()
        self.acceptor = self.bound = self.port = None

    async def stop(self) -> None:
        """No more listening, every connection closed (daemon shutdown)."""
        if self._changed in self.accounts.watchers:
            self.accounts.watchers.remove(self._changed)
        async with self._lock:
            await self._close_acceptor()
        for conn in list(self.connections):
            conn.disconnect(asyncssh.DISC_BY_APPLICATION, f"rlb instance {self.instance} stopping")
        # sessions are cancelled by their connection's end: let them finish
        waits = [asyncio.ensure_future(c.wait_closed()) for c in self.connections]
        if waits or self.sessions:
            await asyncio.wait(waits + list(self.sessions), timeout=5)
        self.accounts.status = "not listening"
