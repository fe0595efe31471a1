"""The interactive shell: prompt_toolkit on an instance's control socket, or in the daemon (ssh).

The shell knows no command: what a line means, what `?` and Tab offer, and the prompt
all come from the daemon's session (rlb/control/server.py), through a transport.
"""
from __future__ import annotations

import asyncio
import contextvars
import os
import re
import sys

from prompt_toolkit import PromptSession, print_formatted_text
from prompt_toolkit.application import Application, run_in_terminal
from prompt_toolkit.completion import Completer, Completion
from prompt_toolkit.history import FileHistory, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.layout import Layout, Window
from prompt_toolkit.layout.controls import FormattedTextControl
from prompt_toolkit.shortcuts import CompleteStyle
from prompt_toolkit.utils import get_cwidth

from rlb.commands.base import CTRL_Z, ENABLE, SSH, VIEW
from rlb.commands.grammar import CR, MAX_LINE
from rlb.commands.render import as_json, printable
from rlb.commands.values import _TYPES

HISTORY = "~/.rlb_history"
_RANGE = re.compile(r"\([0-9]+-[0-9]+\)")


# -- transports: how a session reaches the daemon -----------------------------------

class SocketTransport:
    """A session over the control socket (`rlb`, `rlb -N INSTANCE`)."""

    def __init__(self, client, tty: str | None = None):
        self.client, self.tty = client, tty

    def start(self) -> dict:
        req = {"shell": True}
        if self.tty:
            req["tty"] = self.tty       # `show users` calls this session the console
        return self.client.request(req)

    def call(self, line: str) -> dict:
        return self.client.call(line)

    def complete(self, line: str) -> list[tuple[str, str]]:
        reply = self.client.request({"complete": line})
        data = reply.get("data") if reply.get("ok") else None
        return [(str(c[0]), str(c[1])) for c in data or [] if isinstance(c, list) and len(c) == 2]

    def listen(self, tell):
        """Notices from the daemon go to tell(text), also while the prompt waits; -> the
        function that stops it."""
        loop, fd = asyncio.get_running_loop(), self.client.sock.fileno()
        self.client.on_notice = tell

        def readable():
            if not self.client.poll():      # the daemon went away: say so once
                loop.remove_reader(fd)
                tell("% the connection to the daemon is lost")
        loop.add_reader(fd, readable)

        def stop():
            self.client.on_notice = None
            loop.remove_reader(fd)
        return stop


class LocalTransport:
    """A session inside the daemon (the ssh shell): the socket's own functions, no socket."""

    def __init__(self, ctx):
        from rlb.control import server
        self.ctx, self.server = ctx, server

    def start(self) -> dict:
        self.ctx.via = SSH
        return self.server.open_shell(self.ctx)

    def call(self, line: str) -> dict:
        return self.server.execute(self.ctx, line)

    def complete(self, line: str) -> list[tuple[str, str]]:
        return self.server.complete(self.ctx, line)

    def listen(self, tell):
        store = self.ctx.running.store
        if store is None:
            return None
        store.sessions.add(tell)

        def stop():
            store.sessions.discard(tell)
            store.flush(self.ctx)           # this session's exec-mode lines: a commit now
        return stop


class QuietFileHistory(FileHistory):
    """~/.rlb_history; a home that cannot be written costs the history, not the shell."""

    def load_history_strings(self):
        try:
            yield from super().load_history_strings()
        except (OSError, UnicodeError):
            return

    def store_string(self, string: str) -> None:
        try:
            super().store_string(string)
        except OSError:
            pass


def placeholder(token: str) -> bool:
    """A candidate that names what to type (A.B.C.D, WORD, (1-16), <cr>), not a word to insert."""
    return token == CR[0] or token in _TYPES or _RANGE.fullmatch(token) is not None


def help_text(candidates, typed: str) -> str:
    """What `?` prints: one candidate a line, its help aligned."""
    if not candidates:
        return "% Unrecognized command" if typed.strip() else "% No command here"
    width = max(len(t) for t, _ in candidates)
    return "\n".join(f"  {t:<{width}}  {h}" for t, h in candidates)


class _Completer(Completer):
    def __init__(self, shell):
        self.shell = shell

    def get_completions(self, document, complete_event):
        text = document.text_before_cursor
        partial = "" if not text or text[-1] in " \t" else text.split()[-1]
        if partial.startswith('"'):
            return
        for token, help in self.shell.candidates(text):
            if not placeholder(token):
                yield Completion(token + " ", start_position=-len(partial), display=token,
                                 display_meta=help)


# -- the session --------------------------------------------------------------------

class Shell:
    """One interactive session: prompt, `?`, Tab, history, paging; the transport runs lines."""

    def __init__(self, transport, *, history=None, input=None, output=None, write=None,
                 pager: bool = True):
        self.transport = transport
        self.info = {"node": VIEW, "prompt": ">"}
        self.closed = self.lost = False
        self.pager = pager
        self.session = PromptSession(
            history=history if history is not None else InMemoryHistory(),
            completer=_Completer(self), complete_style=CompleteStyle.READLINE_LIKE,
            complete_while_typing=False, key_bindings=self._keys(), input=input, output=output)
        self._write = write or (lambda text: print_formatted_text(text, output=self.session.output))

    def write(self, text: str) -> None:
        self._write(printable(text))

    def notice(self, text: str) -> None:
        """A message the daemon sends every session: above the prompt when one waits."""
        if not self.session.app.is_running:
            self.write(text)
            return
        try:        # in this session's context: prompt_toolkit finds its application there
            self._context.run(run_in_terminal, lambda: self.write(text))
        except RuntimeError:
            run_in_terminal(lambda: self.write(text))

    def candidates(self, text: str) -> list[tuple[str, str]]:
        try:
            return self.transport.complete(text)
        except Exception:   # noqa: BLE001  (no help beats a broken prompt; the next line says why)
            return []

    def _keys(self) -> KeyBindings:
        kb = KeyBindings()

        @kb.add("?")
        def _(event):
            buf = event.current_buffer
            typed = buf.document.text_before_cursor
            if typed.count('"') % 2:                # inside a quoted word: just a "?"
                buf.insert_text("?")
                return
            text = f"{self.info['prompt']} {typed}?\n{help_text(self.candidates(typed), typed)}"
            run_in_terminal(lambda: self.write(text))

        @kb.add("c-z")
        def _(event):
            if self.info["node"] not in (VIEW, ENABLE):
                event.current_buffer.text = CTRL_Z
                event.current_buffer.validate_and_handle()

        return kb

    def _update(self, reply: dict) -> None:
        for key in ("node", "prompt"):
            if isinstance(reply.get(key), str):
                self.info[key] = reply[key]
        for key in ("rows", "columns"):     # `terminal length N`, `terminal width N`
            if isinstance(reply.get(key), int):
                self.info[key] = reply[key]
        if reply.get("closed"):
            self.closed = True

    async def run(self) -> int:
        try:
            hello = self.transport.start()
        except Exception as err:    # noqa: BLE001
            self.write(f"% cannot open a session: {err}")
            return 2
        if not hello.get("ok"):
            self.write(hello.get("error") or "% the daemon refused a session")
            return 2
        self._update(hello)
        self._context = contextvars.copy_context()
        try:
            stop = self.transport.listen(self.notice)
        except AttributeError:      # a transport that has no notices
            stop = None
        try:
            while not self.closed:
                try:
                    line = await self.session.prompt_async(
                        lambda: self.info["prompt"] + " ",
                        # the loop's exception handler stays the daemon's (the ssh shell runs there)
                        set_exception_handler=False)
                except KeyboardInterrupt:
                    continue
                except EOFError:
                    break
                try:
                    await self.execute(line)
                except Exception as err:    # noqa: BLE001  (a shell bug: say it, keep the shell)
                    self.write(f"% internal error: {err!r}")
        finally:
            if stop is not None:
                stop()
        return 1 if self.lost else 0

    async def execute(self, line: str) -> None:
        if not line.strip():
            return
        if len(line) > MAX_LINE:
            self.write(f"% Line too long ({len(line)} characters, limit {MAX_LINE}).")
            return
        try:
            reply = self.transport.call(line)
            if asyncio.iscoroutine(reply):      # the ssh shell: a command that takes time
                reply = await reply
        except Exception as err:    # noqa: BLE001  (ControlError, OSError, a bad reply)
            self.write(f"% the connection to the daemon is lost: {err}")
            self.closed = self.lost = True
            return
        self._update(reply)
        if not reply.get("ok"):
            self.write(reply.get("error") or "% failed")
        elif reply.get("text"):
            await self.show(reply["text"])

    def _size(self) -> tuple[int, int]:
        """(rows, columns) of a page: `terminal length|width` when set, else the terminal's."""
        try:
            size = self.session.output.get_size()
            rows, cols = size.rows, size.columns
        except Exception:   # noqa: BLE001
            rows, cols = 24, 80
        rows = self.info.get("rows") or rows
        cols = self.info.get("columns") or cols
        return max(rows, 3), max(cols, 1)

    async def show(self, text: str) -> None:
        """Print a reply, a screenful at a time when it is longer than the terminal; a line
        wider than the page counts for the rows it wraps onto. `terminal length 0`: no
        paging."""
        lines = text.split("\n")
        rows, cols = self._size()
        page = rows - 1
        tall = [max(1, -(-get_cwidth(line) // cols)) for line in lines]
        if not self.pager or self.info.get("rows") == 0 or sum(tall) <= page:
            self.write(text)
            return
        start, room = 0, page
        while start < len(lines):
            end, used = start, 0
            while end < len(lines) and (end == start or used + tall[end] <= room):
                used += tall[end]
                end += 1
            self.write("\n".join(lines[start:end]))
            start = end
            if start >= len(lines):
                break
            key = await self._more()
            if key == "quit":
                break
            room = 1 if key == "line" else page

    async def _more(self) -> str:
        """The --More-- prompt: space a page, Enter a line, q (or Ctrl-C) stops."""
        kb = KeyBindings()
        for keys, result in ((" ",), "page"), (("enter",), "line"), (("q",), "quit"), \
                (("Q",), "quit"), (("c-c",), "quit"):
            kb.add(*keys)(lambda event, r=result: event.app.exit(result=r))
        kb.add("<any>")(lambda event: None)
        app = Application(layout=Layout(Window(FormattedTextControl(" --More-- "), height=1)),
                          key_bindings=kb, full_screen=False, erase_when_done=True,
                          input=self.session.input, output=self.session.output)
        try:
            return await app.run_async(set_exception_handler=False)
        except (EOFError, KeyboardInterrupt):
            return "quit"


# -- `rlb [-N INSTANCE]` ----------------------------------------------------------------

def main(instance: str) -> int:
    """The shell on an instance; lines from stdin when it is not a terminal."""
    from rlb.control.client import Client, ControlError
    try:
        client = Client(instance)
    except ControlError as err:
        print(f"rlb: {err}", file=sys.stderr)
        return 2
    with client:
        tty = None
        if sys.stdin.isatty():
            try:
                tty = os.ttyname(sys.stdin.fileno()).removeprefix("/dev/")
            except OSError:
                pass
        transport = SocketTransport(client, tty)
        try:
            if not sys.stdin.isatty():
                return script(transport, sys.stdin.buffer)
            shell = Shell(transport, history=QuietFileHistory(os.path.expanduser(HISTORY)),
                          pager=sys.stdout.isatty())
            return asyncio.run(shell.run())
        except BrokenPipeError:
            raise                   # stdout went away (`| head`): rlb.cli says nothing
        except (ControlError, OSError, ValueError) as err:
            print(f"rlb: the connection to the daemon is lost: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 130


def _out(text: str) -> None:
    print(printable(text))


def _err(text: str) -> None:
    print(printable(text), file=sys.stderr)


class Script:
    """Lines run as typed, without a terminal (stdin of `rlb`, `ssh -T`): the session
    starts in view mode; output to out, errors to err; every line runs, and the status
    is the last line's, as a shell script's (0 done, 1 failed), 2 when the daemon
    refused the session."""

    def __init__(self, transport, out=_out, err=_err):
        self.transport, self.out, self.err = transport, out, err
        self.status = 0

    def start(self) -> bool:
        hello = self.transport.start()
        if not hello.get("ok"):
            self.err(hello.get("error") or "% the daemon refused a session")
            self.status = 2
        return self.status == 0

    def line(self, line: str, length: int | None = None) -> bool:
        """One line (length: what it had before it was cut); False once the session ended."""
        if not line.strip():
            return True
        self.status = 0
        length = max(length or 0, len(line))
        if length > MAX_LINE:
            self.err(f"% Line too long ({length} characters, limit {MAX_LINE}).")
            self.status = 1
            return True
        reply = self.transport.call(line)
        if reply.get("ok"):
            if reply.get("text"):
                self.out(reply["text"])
        else:
            self.err(reply.get("error") or "% failed")
            self.status = 1
        return not reply.get("closed")


def script(transport, stream) -> int:
    """The lines of a byte stream (stdin) as a Script."""
    run = Script(transport)
    if run.start():
        for raw in stream:
            # undecodable bytes become lone surrogates, which the grammar refuses by offset
            if not run.line(raw.decode("utf-8", "surrogateescape").rstrip("\r\n")):
                break
    return run.status


def commands(call, cmds, out=_out, err=_err, as_data: bool = False) -> int:
    """`rlb -c` (and an ssh exec request), like vtysh -c: each command in order, a command
    with newlines being several; the first failure stops with status 1, naming it."""
    for cmd in cmds:
        for line in cmd.split("\n"):
            line = line.rstrip("\r")
            if not line.strip():
                continue
            reply = call(line)
            if not reply.get("ok"):
                err(reply.get("error") or "% failed")
                err(f"rlb: command failed: {line}")
                return 1
            if as_data:
                out(as_json(reply.get("data")))
            elif reply.get("text"):
                out(reply["text"])
    return 0
