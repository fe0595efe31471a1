"""UDP check (keepalived's UDP_CHECK): send the payload on a connected socket; with
`require-reply`, up when a reply comes (equal to the bytes given over the shorter of the
two, as keepalived compares); without, up unless an ICMP error (port unreachable:
ECONNREFUSED) comes back within the timeout."""
from __future__ import annotations

import asyncio
import socket

from rlb.health.result import Result

from . import settings as s
from .base import Checker, Probe
from .tcp import connected_socket_for

MAX_REPLY = 65535
# Without an expected reply, silence until just before the deadline means up: stop
# listening this much earlier so the verdict is ours, not the timeout's.
SILENCE_MARGIN = 0.02

SETTINGS = (
    s.Setting("payload", s.HEX, b"", "datagram to send, in hex (keepalived's payload)"),
    s.Setting("require-reply", s.REPLY, None,
              "a reply is needed: `any`, or the hex bytes it must hold (keepalived's "
              "require_reply)"),
)


async def probe(probe: Probe) -> Result:
    loop = asyncio.get_running_loop()
    sock = connected_socket_for(probe, socket.SOCK_DGRAM)
    want = probe.values["require-reply"]
    try:
        sock.connect((probe.addr, probe.port))      # UDP: no packet, only the peer is set
        await loop.sock_sendall(sock, probe.values["payload"])
        probe.stage = "reply"
        try:
            if want is None:
                async with asyncio.timeout_at(probe.deadline - SILENCE_MARGIN):
                    await loop.sock_recv(sock, MAX_REPLY)
                return Result(True, 0.0)
            reply = await loop.sock_recv(sock, MAX_REPLY)
        except ConnectionRefusedError:
            return Result(False, 0.0, "port unreachable")
        except TimeoutError:
            return Result(True, 0.0)           # silence, no ICMP error: a UDP service up
    finally:
        sock.close()
    n = min(len(reply), len(want)) if want != "any" else 0
    if n and reply[:n] != want[:n]:
        return Result(False, 0.0, f"reply does not match: {reply[:16].hex()}")
    return Result(True, 0.0)


CHECKER = Checker("udp", "send a datagram; down on ICMP port-unreachable or, with "
                  "require-reply, without a reply", SETTINGS, probe)
