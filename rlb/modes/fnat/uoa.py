"""UOA for applications on real servers: the client's real address behind FNAT for UDP,
read from IPv4 option 31 of a flow's first datagrams (DPVS uoa, "ipo" mode), with no
kernel module.

The LB puts option 31 (DPVS uoa.h: type 31, length 8, port, IPv4 address, network
order) in the first datagrams of each flow only, so this helper remembers, per socket,
which client each peer (the LB's LIP:lport) stood for, and answers from that for the
flow's later datagrams. Linux accepts unknown options on received packets
(ip_options_compile refuses them only in options a socket sets without CAP_NET_RAW)
and hands them over, as received, as ancillary data once IP_RECVOPTS is on (cmsg
IPPROTO_IP / IP_RECVOPTS; IP_RETOPTS would give an empty block: the echo drops them).

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rlb.uoa.enable(sock)
    sock.bind(("0.0.0.0", 9999))
    data, peer, client = rlb.uoa.recvfrom(sock, 2048)
    sock.sendto(answer, peer)          # replies go to the peer (the LB), as always
    who = client or peer
"""
from __future__ import annotations

import socket
import struct
import weakref
from collections import OrderedDict

IP_RECVOPTS = 6            # linux/in.h: the options of received packets, as received
IP_OPTIONS = 4             # the cmsg type some stacks use for the same thing
IPOPT_END = 0
IPOPT_NOOP = 1
IPOPT_UOA = 31             # DPVS uoa.h: 31 | IPOPT_CONTROL, "avoid IANA ip options"
IPOLEN_UOA = 8
MAX_IPOPTLEN = 40
CACHE_SIZE = 4096          # peers remembered per socket (the LB's LIP:lport pairs)

Addr = tuple[str, int]


def enable(sock: socket.socket) -> None:
    """Ask the kernel for the IP options of every datagram this socket receives."""
    sock.setsockopt(socket.IPPROTO_IP, IP_RECVOPTS, 1)


def parse_options(opts: bytes) -> Addr | None:
    """The (address, port) in option 31 of an IPv4 options block, or None."""
    i = 0
    while i < len(opts):
        kind = opts[i]
        if kind == IPOPT_END:
            break
        if kind == IPOPT_NOOP:
            i += 1
            continue
        if i + 1 >= len(opts):
            return None                    # malformed: stop, do not guess
        length = opts[i + 1]
        if length < 2 or i + length > len(opts):
            return None
        if kind == IPOPT_UOA and length == IPOLEN_UOA:
            port, addr = struct.unpack_from("!H4s", opts, i + 2)
            return socket.inet_ntoa(addr), port
        i += length
    return None


class Cache:
    """Peer -> client, bounded, the least recently used peer forgotten first."""

    def __init__(self, size: int = CACHE_SIZE):
        self.size = size
        self._map: OrderedDict[Addr, Addr] = OrderedDict()

    def put(self, peer: Addr, client: Addr) -> None:
        self._map[peer] = client
        self._map.move_to_end(peer)
        while len(self._map) > self.size:
            self._map.popitem(last=False)

    def get(self, peer: Addr) -> Addr | None:
        client = self._map.get(peer)
        if client is not None:
            self._map.move_to_end(peer)
        return client

    def forget(self, peer: Addr) -> None:
        self._map.pop(peer, None)

    def __len__(self) -> int:
        return len(self._map)


_caches: weakref.WeakKeyDictionary[socket.socket, Cache] = weakref.WeakKeyDictionary()


def cache_of(sock: socket.socket) -> Cache:
    """The socket's own cache: one LIP:lport may stand for other clients elsewhere."""
    cache = _caches.get(sock)
    if cache is None:
        cache = _caches[sock] = Cache()
    return cache


def options_from(ancdata) -> bytes | None:
    """The IP options block among recvmsg()'s ancillary data, or None."""
    for level, kind, data in ancdata:
        if level == socket.IPPROTO_IP and kind in (IP_RECVOPTS, IP_OPTIONS):
            return data
    return None


def recvfrom(sock: socket.socket, bufsize: int, flags: int = 0,
             cache: Cache | None = None) -> tuple[bytes, Addr, Addr | None]:
    """Like sock.recvfrom, plus the client behind the peer: from option 31 when the
    datagram carries it (remembered for the peer), else what the peer stood for last
    time, else None (not through an FNAT LB with UOA, or a peer never seen with it)."""
    data, ancdata, _msg_flags, peer = sock.recvmsg(bufsize, socket.CMSG_SPACE(MAX_IPOPTLEN),
                                                   flags)
    peer = peer[:2]
    cache = cache_of(sock) if cache is None else cache
    opts = options_from(ancdata)
    client = parse_options(opts) if opts else None
    if client is not None:
        cache.put(peer, client)
    else:
        client = cache.get(peer)
    return data, peer, client
