"""The control socket: one Unix socket per instance, one JSON request per line.

Request  {"cmd": "dpip addr show"}
Reply    {"ok": true, "text": "...", "data": ...}  or  {"ok": false, "error": "..."}
Request  {"shell": true}: the connection becomes an interactive session, starting in
         the view node (lb>); every reply then also has "node", "prompt", "user",
         "privilege", and "closed": true once `exit` ended the session.
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
import socket
import struct

from rlb.control.config import ConfigError, handler_params
from rlb.control.model import CommandError, Model
from rlb.shell.commands import (ADMIN, CONFIG, ENABLE, PIPE, ROOT, VIEW, Context, Reply,
                                g)
from rlb.shell.configure import load as load_lines
from rlb.shell.configure import KEEPS_SECTION, via
from rlb.shell.grammar import CR, MAX_LINE, Grammar, ParseError
from rlb.shell.render import split_pipes

log = logging.getLogger("rlb.control")
audit = logging.getLogger("rlb.audit")
MAX_REQUEST = 4 * 1024 * 1024       # a whole configuration file (`rlb -f`) is one request
PIPE_HELP = ("|", "Output modifiers")
EXEC_MODES = (VIEW, ENABLE)


def execute(ctx: Context, line) -> dict:
    """Run one command; every failure becomes an error reply, never an exception."""
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
        out = {"ok": True, "text": reply.text, "data": reply.data}
    finally:
        ctx.output = Reply()
    if ctx.shell:
        out.update(ctx.session())
    return out


def open_shell(ctx: Context) -> dict:
    """Make the context an interactive session, in the view node."""
    ctx.shell, ctx.node, ctx.closed = True, VIEW, False
    return {"ok": True, **ctx.session()}


def complete(ctx: Context, line) -> list[tuple[str, str]]:
    """(token, help) pairs that may come next in the session's node, as `?` lists them."""
    if not isinstance(line, str) or len(line) > MAX_LINE:
        return []
    text, pipes = split_pipes(line, partial=True)
    ctx.model = ctx.candidate.model if ctx.configuring else ctx.running
    if pipes:
        return g.complete(pipes[-1][1], PIPE, ctx)
    if text.endswith("|") and (len(text) == 1 or text[-2] in " \t"):
        # a `|` being typed: offered where the command may end
        return [PIPE_HELP] if CR in _complete(ctx, text[:-1]) else []
    out = _complete(ctx, text)
    return out[:-1] + [PIPE_HELP, CR] if out and out[-1] == CR else out


def _complete(ctx, text):
    seen = {}
    for node, grammar in _chain(ctx):
        seen.update(dict.fromkeys(grammar.complete(text, node, ctx)))
    return sorted(seen, key=lambda c: (c == CR, c))


def load(ctx: Context, text: str, source: str, replace: bool = False) -> dict:
    """A whole file as one transaction (`rlb -f`); its errors say FILE:LINE."""
    if ctx.privilege != ADMIN or (ctx.shell and ctx.node == VIEW):
        return {"ok": False, "error": f"% Permission denied: user {ctx.user} has "
                                      f"{ctx.privilege} privilege" if ctx.privilege != ADMIN
                else "% this is a privileged command: `enable` first"}
    if ctx.configuring:
        return {"ok": False, "error": "% leave configuration mode first"}
    # lines as a file read in text mode has them (rlb.control.config.read_file)
    lines = list(enumerate(io.StringIO(text, newline=None).read().split("\n"), 1))
    try:
        reply = load_lines(ctx, lines, source, replace)
    except ConfigError as err:
        return {"ok": False, "error": f"% {err}"}
    except CommandError as err:
        return {"ok": False, "error": f"% {source}: {err}"}
    except Exception as err:                    # a bug: keep the daemon up, say so
        log.exception("load %s failed", source)
        return {"ok": False, "error": f"% internal error: {err}"}
    audit.info("%s: load %s: %s", ctx.user, source, reply.text.splitlines()[0])
    return {"ok": True, "text": reply.text, "data": reply.data}


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
    if len(line) > MAX_LINE:
        g.parse(line, ROOT)         # says "too long"; only a comment gets through
        return Reply()
    text, pipes = split_pipes(line)
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


def _recorded(ctx, line: str) -> None:
    """A change made at once (exec mode, `rlb -c`) is a commit in the history, when it
    moved the running configuration (`write memory`, `enable` do not): Store.changed."""
    ctx.running.store.changed(ctx.running, ctx, ctx.user, via(ctx), line)


def _call(ctx, match) -> Reply:
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
    nodes, node = [], ctx.node
    while node is not None:
        nodes.append(node)
        node = g.nodes[node].parent
    if ctx.shell or ctx.configuring:
        nodes.remove(ROOT)
        if ctx.node not in EXEC_MODES and CONFIG not in nodes:
            nodes.append(CONFIG)
        nodes.append(ROOT)
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
# `rlb -c`, entering configuration mode and saving it.
READONLY, EXEC = "readonly", "exec"
EXEC_WORDS = ("dpip", "ipvsadm", "configure", "write", "copy")


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
        if cmd.readonly or (kind == EXEC and cmd.definition.split()[0] in EXEC_WORDS):
            sub.command(cmd.definition, node, help=cmd.help, readonly=cmd.readonly,
                        operational=cmd.operational)(cmd.handler)
    return sub


# -- the socket -----------------------------------------------------------------

def _peer_user(writer) -> str:
    """The connecting process's user name, from SO_PEERCRED (for the audit log)."""
    try:
        sock = writer.get_extra_info("socket")
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        uid = struct.unpack("3i", creds)[1]
    except (OSError, AttributeError, struct.error):
        return "unknown"
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid{uid}"


class ControlServer:
    def __init__(self, model: Model, path: str, host: str | None = None):
        self.model = model
        self.path = path
        self.host = host or os.path.basename(path).removesuffix(".sock")
        self.server = None

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
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        if os.path.exists(self.path):
            os.unlink(self.path)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        ctx = Context(self.model, user=_peer_user(writer), host=self.host, via="socket")
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
                await self._send(writer, reply)
                if ctx.shell:
                    sessions.add(tell)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
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
            return open_shell(ctx)
        if "load" in req:
            text, source = req["load"], req.get("source", "<load>")
            replace = req.get("replace", False)
            if not isinstance(text, str) or not isinstance(source, str) or \
                    not isinstance(replace, bool):
                raise TypeError
            return load(ctx, text, source, replace)
        raise KeyError("not a request")

    @staticmethod
    async def _send(writer, obj) -> None:
        writer.write(json.dumps(obj, default=str).encode() + b"\n")
        await writer.drain()
