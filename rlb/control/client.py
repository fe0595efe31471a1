"""Client side of the control socket, used by `rlb -c` and the shell."""
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
        self.file = self.sock.makefile("rwb")

    def call(self, cmd: str) -> dict:
        return self.request({"cmd": cmd})

    def request(self, req: dict) -> dict:
        """One request of the protocol (rlb/control/server.py), its reply."""
        self.file.write(json.dumps(req).encode() + b"\n")
        self.file.flush()
        raw = self.file.readline()
        if not raw:
            raise ControlError("the daemon closed the connection")
        reply = json.loads(raw)
        if not isinstance(reply, dict):
            raise ControlError("the daemon sent something that is not a reply")
        return reply

    def close(self) -> None:
        try:
            self.file.close()
        except OSError:         # the daemon went first (`exit`, or it stopped): nothing to flush
            pass
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
