"""exabgp's API process for rlb: exabgp runs it (`process rlb { run ... }`) and talks
to it on its stdin and stdout; it hands those lines to and from the rlb daemon on a
unix socket (rlb.routing.exabgp.Speaker), so that the daemon, not a child of exabgp's,
decides what is announced. Standard library only: exabgp starts it with rlb's Python.

    python -m rlb.routing.exabridge SOCKET

It ends when either side closes (exabgp starts it again; the daemon takes the new one).
"""
from __future__ import annotations

import os
import socket
import sys
import threading
import time

CONNECT_WAIT = 10.0       # seconds to wait for the daemon's socket


def connect(path: str, wait: float | None = None) -> socket.socket:
    end = time.monotonic() + (CONNECT_WAIT if wait is None else wait)
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m rlb.routing.exabridge SOCKET", file=sys.stderr)
        return 2
    try:
        s = connect(argv[0])
    except OSError as e:
        print(f"rlb exabridge: {argv[0]}: {e}", file=sys.stderr)
        return 1

    def to_daemon():               # exabgp's events and acks
        try:
            for line in sys.stdin.buffer:
                s.sendall(line)
        except OSError:
            pass
        try:
            s.shutdown(socket.SHUT_RDWR)        # exabgp went: so does this side
        except OSError:
            pass

    threading.Thread(target=to_daemon, daemon=True).start()
    out = sys.stdout.buffer
    for line in s.makefile("rb"):    # the daemon's commands
        out.write(line)
        out.flush()
    return 0


if __name__ == "__main__":
    code = 1
    try:
        code = main(sys.argv[1:])
        sys.stdout.flush()
    except OSError:                  # either side gone mid-line: the end all the same
        pass
    finally:
        # at once: the thread still blocked reading stdin would abort a normal shutdown
        os._exit(code)
