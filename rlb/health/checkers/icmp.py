"""ICMP check (keepalived's PING_CHECK): an echo request, up on the matching echo reply.
One raw socket (root) per source address serves every ICMP check of the event loop: a
reader dispatches replies to the waiting probes by (address, id, sequence)."""
from __future__ import annotations

import asyncio
import itertools
import os
import socket
import struct

from rlb.health.result import Result

from .base import Checker, Probe

ECHO_REQUEST, ECHO_REPLY = 8, 0
PAYLOAD = b"rlb-health-check"


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int) -> bytes:
    head = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident, seq)
    return struct.pack("!BBHHH", ECHO_REQUEST, 0, checksum(head + PAYLOAD), ident, seq) + PAYLOAD


def parse_reply(packet: bytes):
    """(source address, id, seq) of an echo reply in an IPv4 packet, else None."""
    if len(packet) < 28:
        return None
    ihl = (packet[0] & 0x0F) * 4
    if len(packet) < ihl + 8:
        return None
    kind, code, _sum, ident, seq = struct.unpack_from("!BBHHH", packet, ihl)
    if kind != ECHO_REPLY or code != 0:
        return None
    return socket.inet_ntoa(packet[12:16]), ident, seq


class Pinger:
    """A raw ICMP socket with the futures of the probes waiting on it; closed when the
    last one is done."""

    def __init__(self, loop: asyncio.AbstractEventLoop, source: str | None):
        self.loop, self.source = loop, source
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        self.sock.setblocking(False)
        if source:
            self.sock.bind((source, 0))
        self.waiting: dict[tuple[str, int, int], asyncio.Future] = {}
        loop.add_reader(self.sock.fileno(), self.readable)

    def readable(self) -> None:
        while True:
            try:
                packet = self.sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            key = parse_reply(packet)
            fut = self.waiting.get(key) if key else None
            if fut is not None and not fut.done():
                fut.set_result(None)

    def close(self) -> None:
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()


_pingers: dict[tuple[int, str | None], Pinger] = {}
_ids = itertools.count(os.getpid() & 0xFFFF)
_seqs = itertools.count(1)


async def probe(probe: Probe) -> Result:
    loop = asyncio.get_running_loop()
    key = (id(loop), probe.source)
    pinger = _pingers.get(key)
    if pinger is None or pinger.loop is not loop:
        pinger = _pingers[key] = Pinger(loop, probe.source)
    # the data path's local port is the echo identifier (rlb.health.path: it names the
    # real server to the data plane)
    ident, seq = (probe.sport or next(_ids)) & 0xFFFF, next(_seqs) & 0xFFFF
    wait = (probe.addr, ident, seq)
    pinger.waiting[wait] = fut = loop.create_future()
    try:
        probe.stage = "echo reply"
        await loop.sock_sendto(pinger.sock, echo_request(ident, seq), (probe.addr, 0))
        await fut
    finally:
        del pinger.waiting[wait]
        if not pinger.waiting:
            pinger.close()
            del _pingers[key]
    return Result(True, 0.0)


CHECKER = Checker("icmp", "ICMP echo request; up on the echo reply (needs root)", (), probe)
