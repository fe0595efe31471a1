"""Client side of the control socket, used by `rlb -c` and the shell.

Besides the reply to each request, an interactive session may get notices, lines
{"notice": "text"} that the daemon sends when something happened to every session (an
unconfirmed commit rolled back): they come between replies or before one, and go to
`on_notice` (else they are kept in `notices`). `poll()` reads those that arrived while
no request was pending (the shell calls it when the socket is readable)."""
from __future__ import annotations

import json
import socket

from rlb.control.paths import socket_path


class ControlError(Exception):
    """The instance cannot be reached."""


class Client:
    def __init__(self, instance: str, timeout: float = 30.0):
        self.path = socket_path(instance)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(self.path)
        except OSError as err:
            raise ControlError(f"cannot reach instance {instance!r} at {self.path}: "
                               f"{err.strerror or err} (is `rlb daemon -N {instance}` running?)")
        self._buf = bytearray()
        self._seen = 0              # how far _buf is known to hold no newline
        self.on_notice = None
        self.notices: list[str] = []

    def call(self, cmd: str) -> dict:
        return self.request({"cmd": cmd})

    def request(self, req: dict) -> dict:
        """One request of the protocol (rlb/control/server.py), its reply."""
        self.sock.sendall(json.dumps(req).encode() + b"\n")
        while True:
            raw = self._line()
            if raw is None:
                raise ControlError("the daemon closed the connection")
            reply = json.loads(raw)
            if not isinstance(reply, dict):
                raise ControlError("the daemon sent something that is not a reply")
            if "progress" in reply and len(reply) == 1:
                continue                # a command that takes time is under way
            if not self._notice(reply):
                return reply

    def poll(self) -> bool:
        """Take what arrived unasked (notices); False once the daemon closed the socket."""
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return True
        if not data:
            return False
        self._buf += data
        while (raw := self._line(wait=False)) is not None:
            try:
                self._notice(json.loads(raw))
            except ValueError:
                pass
        return True

    def _notice(self, msg) -> bool:
        if not (isinstance(msg, dict) and isinstance(msg.get("notice"), str) and len(msg) == 1):
            return False
        if self.on_notice is not None:
            self.on_notice(msg["notice"])
        else:
            self.notices.append(msg["notice"])
        return True

    def _line(self, wait: bool = True) -> bytes | None:
        """The next line; None at the end of the stream (or, not waiting, when no whole
        line is there yet)."""
        while (end := self._buf.find(b"\n", self._seen)) < 0:
            self._seen = len(self._buf)
            if not wait:
                return None
            data = self.sock.recv(1 << 20)
            if not data:
                return None
            self._buf += data
        line = bytes(self._buf[:end])
        del self._buf[:end + 1]
        self._seen = 0
        return line

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
