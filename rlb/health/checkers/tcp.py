"""TCP check (keepalived's TCP_CHECK): up when the connection is established, closed
right after; nothing is sent."""
from __future__ import annotations

import asyncio
import socket
import struct

from rlb.health.result import Result

from .base import Checker, Probe

LINGER_RESET = struct.pack("ii", 1, 0)     # SO_LINGER on, 0 s: close() sends a reset


def connected_socket_for(probe: Probe, kind: int) -> socket.socket:
    """A non-blocking socket, bound to the check's source address when it has one."""
    sock = socket.socket(socket.AF_INET, kind)
    try:
        sock.setblocking(False)
        local = probe.local_addr()
        if local:
            if probe.sport:     # a fixed port (the data path's): no TIME_WAIT may hold it
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if kind == socket.SOCK_STREAM:
                    # ... and none is left behind: closed with a reset, as HAProxy ends
                    # its checks, so the next probe of the same server may use the
                    # same tuple at once (a TIME_WAIT would refuse the connect)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
            sock.bind(local)
    except OSError:
        sock.close()
        raise
    return sock


async def probe(probe: Probe) -> Result:
    sock = connected_socket_for(probe, socket.SOCK_STREAM)
    try:
        probe.stage = "connect"
        await asyncio.get_running_loop().sock_connect(sock, (probe.addr, probe.port))
    finally:
        sock.close()
    return Result(True, 0.0)


CHECKER = Checker("tcp", "connect to the port; up when the connection is established", (), probe)
