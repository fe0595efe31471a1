"""The lab real servers' UDP service: answers every datagram with the client it sees,
`Your ip:port : ADDR:PORT`, taking the address from UOA (IPv4 option 31) when the LB
sent it (FNAT) and from the datagram's source otherwise (DR, NAT, tunnel)."""
from __future__ import annotations

import argparse
import signal
import socket
import sys

from rlb import uoa

MAX_DATAGRAM = 65535


def answer(sock: socket.socket) -> None:
    """Read one datagram and answer it."""
    _data, peer, client = uoa.recvfrom(sock, MAX_DATAGRAM)
    who = client or peer
    try:
        sock.sendto(f"Your ip:port : {who[0]}:{who[1]}\n".encode(), peer)
    except OSError:
        pass                               # no route or buffer full: UDP, drop it


def serve(addr: str, port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    uoa.enable(sock)
    sock.bind((addr, port))
    with sock:
        while True:
            answer(sock)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="rlb-udp-echo", description=__doc__)
    p.add_argument("--addr", default="0.0.0.0")
    p.add_argument("--port", type=int, default=9999)
    args = p.parse_args(argv)
    # SIGTERM (`rlb lab down`) ends the process like ^C: through SystemExit, sockets closed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        serve(args.addr, args.port)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
