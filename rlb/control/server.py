"""The control socket: one Unix socket per instance, one JSON request per line.

Request  {"cmd": "dpip addr show"}
Reply    {"ok": true, "text": "...", "data": ...}  or  {"ok": false, "error": "..."}
Request  {"shell": true, "tty": "pts/3"}: the connection becomes an interactive session,
         starting in the view node (lb>); tty (optional) is the client's terminal. Every
         reply then also has "node", "prompt", "user", "privilege", "length" and "width"
         once `terminal length|width` set them, and "closed": true once `exit` ended it.
Request  {"load": "text of a file", "source": "FILE", "replace": false}: the file as one
         commit (`rlb -f`); replace: the file is the whole configuration
Request  {"complete": "partial line"}
Reply    {"ok": true, "data": [[token, help], ...]}  (what may come next, <cr> last)
Each connection keeps its own Context: node, user (from the socket's peer), privilege.
Whoever may open the socket (root, group rlb) is an admin; ssh users have their own.
"""
from __future__ import annotations

import asyncio
import functools
import grp
import io
import json
import logging
import os
import pwd
import re
import socket
import struct
import time

from rlb.control.config import ConfigError, handler_params
from rlb.control.machinery import CONTROL
from rlb.model.model import CommandError, Model
from rlb.commands.base import (ADMIN, CONFIG, EXEC_MODES, PIPE, ROOT, VIEW, Context, Reply,
                                do_exec, g, lineage)
from rlb.commands.configure import load as load_lines
from rlb.commands.configure import KEEPS_SECTION, via
from rlb.commands.grammar import CR, MAX_LINE, Grammar, ParseError
from rlb.commands.render import split_pipes
from rlb.commands.users import accounts

log = logging.getLogger("rlb.control")
audit = logging.getLogger("rlb.audit")
PROGRESS = 5.0          # seconds between the progress lines of a command that takes time
MAX_REQUEST = 4 * 1024 * 1024       # a whole configuration file (`rlb -f`) is one request
PIPE_HELP = ("|", "Output modifiers")


def execute(ctx: Context, line) -> dict:
    """Run one command; every failure becomes an error reply, never an exception."""
    ctx.active = time.monotonic()
    try:
        reply = _run(ctx, line)
    except ParseError as err:
        out = {"ok": False, "error": str(err)}
    except CommandError as err:
        out = {"ok": False, "error": f"% {err}"}
    except Exception as err:                    # a bug: keep the daemon up, say so
        log.exception("command failed: %r", line)
        out = {"ok": False, "error": f"% internal error: {err}"}
    else:
        if reply.wait is not None:
            return _later(ctx, line, reply.wait)
        out = {"ok": True, "text": reply.text, "data": reply.data}
    finally:
        ctx.output = Reply()
    if ctx.shell:
        out.update(ctx.session())
    return out


async def _later(ctx: Context, line, wait) -> dict:
    """The reply of a command that takes time, when it is done (execute's rules)."""
    try:
        reply = await wait
    except CommandError as err:
        out = {"ok": False, "error": f"% {err}"}
    except Exception as err:                    # noqa: BLE001  (a bug: the daemon stays up)
        log.exception("command failed: %r", line)
        out = {"ok": False, "error": f"% internal error: {err}"}
    else:
        out = {"ok": True, "text": reply.text, "data": reply.data}
    if ctx.shell:
        out.update(ctx.session())
    return out


def open_shell(ctx: Context, tty: str | None = None) -> dict:
    """Make the context an interactive session, in the view node; tty: the terminal of
    an `rlb` on this host (its console, in `show users`)."""
    ctx.shell, ctx.node, ctx.closed = True, VIEW, False
    ctx.tty = tty
    return {"ok": True, **ctx.session()}


def complete(ctx: Context, line) -> list[tuple[str, str]]:
    """(token, help) pairs that may come next in the session's node, as `?` lists them."""
    if not isinstance(line, str) or len(line) > MAX_LINE:
        return []
    ctx.active = time.monotonic()
    text, pipes = split_pipes(line, partial=True)
    ctx.model = ctx.candidate.model if ctx.configuring else ctx.running
    if pipes:
        return g.complete(pipes[-1][1], PIPE, ctx)
    inner = _after_do(ctx, text)
    if inner is not None:       # `do ...`: what exec mode offers
        ctx.model = ctx.running
        out = _subset(ROOT, DO if ctx.privilege == ADMIN else READONLY).complete(inner, ROOT,
                                                                               ctx)
        return out[:-1] + [PIPE_HELP, CR] if out and out[-1] == CR else out
    if text.endswith("|") and (len(text) == 1 or text[-2] in " \t"):
        # a `|` being typed: offered where the command may end
        return [PIPE_HELP] if CR in _complete(ctx, text[:-1]) else []
    out = _complete(ctx, text)
    return out[:-1] + [PIPE_HELP, CR] if out and out[-1] == CR else out


_HEAD = re.compile(r"[ \t]*([^ \t]+)[ \t]+")


def _after_do(ctx, text):
    """The text after a first word that the session's node reads as `do`, else None."""
    head = _HEAD.match(text)
    if head is None or ctx.node in (ROOT, *EXEC_MODES):
        return None
    try:
        match, _ = _find(_chain(ctx), head.group(1) + " x")
    except (ParseError, CommandError):
        return None
    return text[head.end():] if match and match.command.handler is do_exec else None


def _complete(ctx, text):
    seen = {}
    for node, grammar in _chain(ctx):
        seen.update(dict.fromkeys(grammar.complete(text, node, ctx)))
    return sorted(seen, key=lambda c: (c == CR, c))


def load(ctx: Context, text, source: str, replace: bool = False,
         keepalived: bool = False) -> dict:
    """A whole file as one transaction (`rlb -f`); its errors say FILE:LINE. keepalived:
    text is a keepalived.conf's lines in rlb's words, [[file, line, text], ...]."""
    if ctx.privilege != ADMIN or (ctx.shell and ctx.node == VIEW):
        return {"ok": False, "error": f"% Permission denied: user {ctx.user} has "
                                      f"{ctx.privilege} privilege" if ctx.privilege != ADMIN
                else "% this is a privileged command: `enable` first"}
    if ctx.configuring:
        return {"ok": False, "error": "% leave configuration mode first"}
    if keepalived:
        lines = [tuple(x) for x in text]
    else:   # lines as a file read in text mode has them (rlb.control.config.read_file)
        lines = list(enumerate(io.StringIO(text, newline=None).read().split("\n"), 1))
    ctx.control = ctx.control or CONTROL
    try:
        reply = load_lines(ctx, lines, source, replace, keepalived)
    except ConfigError as err:
        return {"ok": False, "error": f"% {err}"}
    except CommandError as err:
        return {"ok": False, "error": f"% {source}: {err}"}
    except Exception as err:                    # a bug: keep the daemon up, say so
        log.exception("load %s failed", source)
        return {"ok": False, "error": f"% internal error: {err}"}
    audit.info("%s: load %s: %s", ctx.user, source, reply.text.splitlines()[0])
    return {"ok": True, "text": reply.text, "data": reply.data}


def _numbered(lines) -> bool:
    """[[file, line, text], ...]: a translated file's lines."""
    return isinstance(lines, list) and all(
        isinstance(x, list) and len(x) == 3 and isinstance(x[0], str)
        and isinstance(x[1], int) and isinstance(x[2], str) for x in lines)


# -- one line: the command, its filters, the mode rules ----------------------------

def _run(ctx: Context, line) -> Reply:
    if isinstance(line, (bytes, bytearray)):
        try:
            line = bytes(line).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ParseError("% Invalid input: the line is not UTF-8 text.", kind="invalid",
                             position=e.start) from None
    if not isinstance(line, str):
        raise ParseError("% Invalid input: a command line is text.", kind="invalid", position=0)
    # too long or a control character: said of the whole line, before it is split at
    # `|` (a filter's error echoes the line); only a comment gets through
    if g._clean(line)[1]:
        return Reply()
    text, pipes = split_pipes(line)
    ctx.line = text
    match, found = _resolve(ctx, text)
    filters = [_filter(line, offset, seg) for offset, seg in pipes]
    if match is None:
        if pipes:
            raise CommandError("no command before '|'")
        return Reply()
    for f in filters:               # a bad filter (say, its regex) stops a change before it runs
        _call(ctx, f)
    cmd = match.command
    if not cmd.readonly and ctx.privilege != ADMIN:     # _chain keeps them out: in case
        raise CommandError(f"Permission denied: user {ctx.user} has {ctx.privilege} privilege")
    if not cmd.readonly and cmd.handler not in KEEPS_SECTION:
        _move(ctx, found)           # a show from a parent node leaves the session where it is
    # a change goes to the candidate in configuration mode; a show sees the running state
    changes_config = not (cmd.readonly or cmd.operational)
    ctx.model = ctx.candidate.model if ctx.configuring and changes_config else ctx.running
    if changes_config and not ctx.configuring and ctx.running.store is not None:
        ctx.running.store.settle(ctx)       # another session's lines are their own commit
    try:
        reply = _call(ctx, match)
    finally:
        ctx.model = ctx.candidate.model if ctx.configuring else ctx.running
    if not cmd.readonly:
        audit.info("%s: %s", ctx.user, text.strip())
        if changes_config and not ctx.configuring and ctx.running.store is not None:
            _recorded(ctx, text.strip())
    for f in filters:
        ctx.output = reply
        reply = _call(ctx, f)
    return reply


def run_exec(ctx: Context, line: str) -> Reply:
    """`do LINE`: an exec-mode command run from a configuration mode, on the running
    state; only what changes no configuration (a show, a clear, `write memory`), and
    only what the user's privilege allows. Errors point into the whole line."""
    full = ctx.line if ctx.line.rstrip(" \t").endswith(line) else line   # else a file's line
    offset = len(full.rstrip(" \t")) - len(line)
    kind = DO if ctx.privilege == ADMIN else READONLY
    try:
        match = _subset(ROOT, kind).parse(line, ROOT)
    except ParseError as err:
        try:
            g.parse(line, ROOT)
        except ParseError:
            if err.kind not in ("invalid", "unknown"):
                raise err from None         # incomplete, ambiguous: no caret to move
            echo = full.translate(str.maketrans("\t\f\v\r\n", "     "))
            head = str(err).splitlines()[0]
            if err.kind == "unknown":
                head = "% Invalid input detected at '^' marker."
            raise ParseError(f"{head}\n{echo}\n{' ' * (offset + err.position)}^",
                             kind="invalid", position=offset + err.position,
                             expected=err.expected, line=full) from None
        if kind == READONLY:
            raise CommandError(f"Permission denied: user {ctx.user} has {ctx.privilege} "
                               "privilege") from None
        raise CommandError("`do` runs exec commands that change no configuration (show, "
                           "clear, write memory): in configuration mode, type the change "
                           "itself") from None
    if match is None:
        raise CommandError("`do` needs a command (do show running-config)")
    if not match.command.readonly:
        audit.info("%s: do %s", ctx.user, line.strip())
    ctx.model = ctx.running
    return _call(ctx, match)


def _recorded(ctx, line: str) -> None:
    """A change made at once (exec mode, `rlb -c`) is a commit in the history, when it
    moved the running configuration (`write memory`, `enable` do not): Store.changed."""
    ctx.running.store.changed(ctx.running, ctx, ctx.user, via(ctx), line)


def _call(ctx, match) -> Reply:
    ctx.control = ctx.control or CONTROL
    wanted = handler_params(match.command.handler)
    return match.command.handler(ctx, **{k: v for k, v in match.args.items()
                                         if k in wanted}) or Reply()


def _filter(line, offset, text):
    """A filter after `|`; its errors point into the whole line."""
    try:
        m = g.parse(text, PIPE)
    except ParseError as err:
        if err.kind in ("invalid", "unknown"):
            head = "% Invalid input detected at '^' marker." if err.kind == "unknown" else \
                str(err).splitlines()[0]
            echo = line.translate(str.maketrans("\t\f\v\r\n", "     "))
            raise ParseError(f"{head}\n{echo}\n{' ' * (offset + err.position)}^", kind=err.kind,
                             position=offset + err.position, expected=err.expected,
                             line=line) from None
        raise
    if m is None:
        raise CommandError("an output modifier is expected after '|' (include, exclude, ...)")
    return m


def _chain(ctx, restrict: bool = True) -> list[tuple[str, Grammar]]:
    """Where a line is looked for, in order: the node, then its parents (as in vtysh). In
    the shell a section's way up is configuration mode. A view user sees only readonly
    commands, and so do the shell's exec modes in ROOT (restrict=False: all of them)."""
    nodes = lineage(ctx.node, ctx.shell or ctx.configuring)
    if restrict and ctx.privilege != ADMIN:
        return [(n, _subset(n, READONLY)) for n in nodes]
    if restrict and ctx.shell and ctx.node in EXEC_MODES:
        kind = READONLY if ctx.node == VIEW else EXEC
        return [(n, _subset(n, kind) if n == ROOT else g) for n in nodes]
    return [(n, g) for n in nodes]


def _find(chain, text):
    """-> (Match or None for an empty line, the node it was found in); else the
    ParseError that got furthest into the line."""
    best = None
    for node, grammar in chain:
        try:
            return grammar.parse(text, node), node
        except ParseError as err:
            if best is None or err.position > best.position:
                best = err
    raise best


def _resolve(ctx, text):
    try:
        return _find(_chain(ctx), text)
    except ParseError as err:
        try:
            _find(_chain(ctx, restrict=False), text)
        except ParseError:
            raise err from None
    # the line is a command, only not one for this user or mode: say so
    if ctx.privilege != ADMIN:
        audit.warning("refused %s (privilege %s): %s", ctx.user, ctx.privilege, text.strip())
        raise CommandError(f"Permission denied: user {ctx.user} has {ctx.privilege} privilege")
    if ctx.node == VIEW:
        raise CommandError("this is a privileged command: `enable` first")
    raise CommandError("this command changes the configuration: enter configuration mode "
                       "first (configure)")


def _move(ctx, found) -> None:
    """The session follows a line found in a parent node, as vtysh; the shell's exec
    modes and configuration mode stay, a section is left for configuration mode."""
    if found == ctx.node:
        return
    if found != ROOT or not (ctx.shell or ctx.configuring):
        ctx.node = found
    elif ctx.node not in (*EXEC_MODES, CONFIG):
        ctx.node = CONFIG
    if ctx.node in (CONFIG, ROOT, *EXEC_MODES):
        ctx.section = None


# Subsets of a node's commands: READONLY for view users and the view mode (lb>); EXEC
# for the privileged exec mode (lb#): the shows, the tools that apply at once as in
# `rlb -c`, the operational commands (`clear ip vs counters`), entering configuration
# mode and saving it.
# DO for `do` in configuration mode: the shows, the operational commands (clear, flush,
# zero) and saving.
READONLY, EXEC, DO = "readonly", "exec", "exec-do"
EXEC_WORDS = ("dpip", "ipvsadm", "configure", "write", "copy")
DO_WORDS = ("write", "copy")     # exec commands `do` runs: they change no configuration
DO_NOT = ("configure",)         # a change of mode, not a command to run from another one


@functools.cache
def _subset(node: str, kind: str) -> Grammar:
    """Some of a node's commands as a grammar of their own, built from `g` (nothing is
    declared twice): parsing, `?` and Tab then know nothing else."""
    sub = Grammar()
    sub.node(node)
    sub.words(g._words)
    for name, values in g._completers.items():
        sub.completer(name, values)
    for cmd in g.commands(node):
        first = cmd.definition.split()[0]
        if cmd.readonly or (kind == EXEC and (first in EXEC_WORDS or cmd.operational)) or \
                (kind == DO and first not in DO_NOT and (cmd.operational or first in DO_WORDS)):
            sub.command(cmd.definition, node, help=cmd.help, readonly=cmd.readonly,
                        operational=cmd.operational)(cmd.handler)
    return sub


# -- the socket -----------------------------------------------------------------

def _peer(writer) -> tuple[str, int | None]:
    """The connecting process's user name and pid, from SO_PEERCRED (for the audit log
    and `show users`)."""
    try:
        sock = writer.get_extra_info("socket")
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _ = struct.unpack("3i", creds)
    except (OSError, AttributeError, struct.error):
        return "unknown", None
    try:
        return pwd.getpwuid(uid).pw_name, pid
    except KeyError:
        return f"uid{uid}", pid


class ControlServer:
    def __init__(self, model: Model, path: str, host: str | None = None):
        self.model = model
        self.path = path
        self.host = host or os.path.basename(path).removesuffix(".sock")
        self.server = None
        self.clients: dict = {}     # connection task -> its writer, closed at stop

    async def start(self) -> None:
        if os.path.exists(self.path):
            os.unlink(self.path)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.server = await asyncio.start_unix_server(self._client, path=self.path,
                                                      limit=MAX_REQUEST)
        os.chmod(self.path, 0o660)
        try:
            os.chown(self.path, 0, grp.getgrnam("rlb").gr_gid)
        except (KeyError, PermissionError):
            pass

    async def stop(self) -> None:
        """No more connections; the open ones (a shell, say) closed and their tasks ended,
        so that nothing is left to cancel when the loop goes."""
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for writer in self.clients.values():
            writer.close()
        if self.clients:
            await asyncio.wait(list(self.clients), timeout=5)
        if os.path.exists(self.path):
            os.unlink(self.path)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        user, pid = _peer(writer)
        ctx = Context(self.model, user=user, host=self.host, via="socket")
        entry = accounts(self.model).open_session(user, ctx.privilege, f"pid {pid or '?'}",
                                                  ctx=ctx, line="socket")
        task = asyncio.current_task()
        self.clients[task] = writer
        sessions = self.model.store.sessions if self.model.store is not None else set()

        def tell(text):             # an interactive session is told what happened to all
            if not writer.is_closing():
                writer.write(json.dumps({"notice": text}).encode() + b"\n")
        try:
            while not ctx.closed:
                try:
                    raw = await reader.readline()
                except (asyncio.LimitOverrunError, ValueError):
                    await self._send(writer, {"ok": False, "error": "% request too long"})
                    break
                if not raw:
                    break
                try:
                    reply = self._answer(ctx, json.loads(raw))
                except (ValueError, KeyError, TypeError, RecursionError):
                    reply = {"ok": False, "error": "% malformed request"}
                if asyncio.iscoroutine(reply):
                    reply = await self._waiting(writer, reply)
                await self._send(writer, reply)
                if ctx.shell:
                    sessions.add(tell)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # the loop is going; ending normally spares asyncio 3.11's stream callback,
            # which logs a traceback for a cancelled connection task
            pass
        finally:
            accounts(self.model).close_session(entry)
            self.clients.pop(task, None)
            sessions.discard(tell)
            if self.model.store is not None:
                self.model.store.flush(ctx)     # this connection's lines: a commit now
            writer.close()

    @staticmethod
    def _answer(ctx: Context, req) -> dict:
        """One request; TypeError or KeyError for one that is not of the protocol."""
        if not isinstance(req, dict):
            raise TypeError
        if "cmd" in req or "complete" in req:
            line = req["cmd"] if "cmd" in req else req["complete"]
            if not isinstance(line, str):
                raise TypeError
            return execute(ctx, line) if "cmd" in req else {"ok": True,
                                                            "data": complete(ctx, line)}
        if req.get("shell") is True:
            tty = req.get("tty")
            if tty is not None and not (isinstance(tty, str) and len(tty) <= 64
                                        and tty.isprintable()):
                raise TypeError
            return open_shell(ctx, tty)
        if "load" in req:
            text, source = req["load"], req.get("source", "<load>")
            replace, keepalived = req.get("replace", False), req.get("keepalived", False)
            if not isinstance(source, str) or not isinstance(replace, bool) or \
                    not isinstance(keepalived, bool):
                raise TypeError
            if not (isinstance(text, str) if not keepalived else _numbered(text)):
                raise TypeError
            return load(ctx, text, source, replace, keepalived)
        raise KeyError("not a request")

    @staticmethod
    async def _waiting(writer, reply) -> dict:
        """Await a command that takes time; meanwhile a {"progress": seconds} line every
        PROGRESS seconds tells the client (its socket timeout) that it is under way."""
        task = asyncio.ensure_future(reply)
        start = time.monotonic()
        while True:
            done, _ = await asyncio.wait({task}, timeout=PROGRESS)
            if done:
                return task.result()
            if not writer.is_closing():
                writer.write(json.dumps({"progress": round(time.monotonic() - start)})
                             .encode() + b"\n")

    @staticmethod
    async def _send(writer, obj) -> None:
        writer.write(json.dumps(obj, default=str).encode() + b"\n")
        await writer.drain()
