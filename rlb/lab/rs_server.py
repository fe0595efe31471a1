"""The lab's real-server application: answers every HTTP request with the client it
sees, `Your ip:port : ADDR:PORT`, taking the address from TOA when the LB sent it
(FNAT) and from the connection otherwise (DR, NAT, tunnel)."""
from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import sys

from rlb import toa

MAX_HEADER = 16384


async def serve_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    client = toa.client_address(sock) or writer.get_extra_info("peername")[:2]
    body = f"Your ip:port : {client[0]}:{client[1]}\n".encode()
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > MAX_HEADER:
                break
            close = b"connection: close" in head.lower() or head.startswith(b"GET / HTTP/1.0")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                         b"Content-Length: %d\r\n%s\r\n" %
                         (len(body), b"Connection: close\r\n" if close else b"") + body)
            await writer.drain()
            if close:
                break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass
    finally:
        writer.close()


async def main_async(addr: str, port: int) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    toa.enable(listener)
    listener.bind((addr, port))
    listener.listen(1024)
    server = await asyncio.start_server(serve_conn, sock=listener, limit=MAX_HEADER)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="rlb-rs-server", description=__doc__)
    p.add_argument("--addr", default="0.0.0.0")
    p.add_argument("--port", type=int, default=80)
    args = p.parse_args(argv)
    asyncio.run(main_async(args.addr, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
