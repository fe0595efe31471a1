"""TOA for applications on real servers: the client's real address behind FNAT, read
from the SYN that the LB sent (TCP option 254), with no kernel module.

A listener asks the kernel to keep each connection's SYN (TCP_SAVE_SYN); after accept,
`client_address(conn)` reads it back (TCP_SAVED_SYN, once per connection) and finds
option 254, laid out as the LVS toa module expects: kind 254, length 8, port, IPv4.

    listener = socket.create_server(("0.0.0.0", 80))
    rlb.toa.enable(listener)
    conn, peer = listener.accept()
    client = rlb.toa.client_address(conn) or peer
"""
from __future__ import annotations

import socket
import struct

TCP_SAVE_SYN = 27          # linux/tcp.h
TCP_SAVED_SYN = 28
TCPOPT_TOA = 254
TCPOLEN_TOA = 8


def enable(listener: socket.socket) -> None:
    """Keep the SYN of connections accepted from now on (set before listen())."""
    listener.setsockopt(socket.IPPROTO_TCP, TCP_SAVE_SYN, 1)


def parse_syn(headers: bytes) -> tuple[str, int] | None:
    """The address in option 254 of an IPv4+TCP header block, or None."""
    if len(headers) < 20 or headers[0] >> 4 != 4:
        return None
    ihl = (headers[0] & 0x0F) * 4
    if len(headers) < ihl + 20:
        return None
    tcp = headers[ihl:]
    doff = (tcp[12] >> 4) * 4
    opts, i = tcp[20:min(doff, len(tcp))], 0
    while i < len(opts):
        kind = opts[i]
        if kind == 0:                      # end of options
            break
        if kind == 1:                      # no-op
            i += 1
            continue
        if i + 1 >= len(opts) or opts[i + 1] < 2:
            break                          # malformed: stop, do not guess
        length = opts[i + 1]
        if kind == TCPOPT_TOA and length == TCPOLEN_TOA and i + 8 <= len(opts):
            port, addr = struct.unpack_from("!H4s", opts, i + 2)
            return socket.inet_ntoa(addr), port
        i += length
    return None


def client_address(conn: socket.socket) -> tuple[str, int] | None:
    """The client's real (address, port) from the saved SYN, or None (no TOA in it,
    the listener did not save SYNs, or it was read already)."""
    try:
        headers = conn.getsockopt(socket.IPPROTO_TCP, TCP_SAVED_SYN, 512)
    except OSError:
        return None
    return parse_syn(headers)
