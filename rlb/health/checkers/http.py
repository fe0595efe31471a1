"""HTTP check (keepalived's HTTP_GET): GET a path, up when the status is an expected one
and the body matches the regex and the MD5 digest (genhash's) when they are set."""
from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl

from rlb.health.result import Result

from . import settings as s
from .base import Checker, Probe
from .tcp import connected_socket_for

MAX_BODY = 1 << 20          # a health page is small: read no more than this of the body
MAX_HEAD = 16384

SETTINGS = (
    s.Setting("path", s.PATH, "/", "path to GET"),
    s.Setting("host", s.HOST, None, "Host header (and TLS SNI); default: the address probed"),
    s.Setting("status", s.CODES, ((200, 299),),
              "expected status codes: 200, 200-299, 200,301-302 (keepalived's status_code, "
              "whose default is 200-299)"),
    s.Setting("regex", s.REGEX, None, "the body must match this regular expression"),
    s.Setting("regex-no-match", s.FLAG, False,
              "reverse the regex: a body that matches is down (keepalived's regex_no_match)"),
    s.Setting("digest", s.DIGEST, None, "MD5 of the body, as keepalived's genhash prints it"),
)


def request(probe: Probe) -> bytes:
    host = probe.values["host"] or probe.addr
    # HTTP/1.0 with Connection: close, as keepalived: the body ends at EOF, never chunked
    return (f"GET {probe.values['path']} HTTP/1.0\r\nHost: {host}\r\n"
            "User-Agent: rlb-health\r\nConnection: close\r\n\r\n").encode()


async def read_response(reader: asyncio.StreamReader, need_body: bool):
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > MAX_HEAD:
        raise EOFError
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split()
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return None, status_line, b""
    body = b""
    if need_body:
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length" and value.strip().isdigit():
                length = int(value)
        if length is not None:
            body = await reader.readexactly(min(length, MAX_BODY))
        else:
            body = await reader.read(MAX_BODY)
            while len(body) < MAX_BODY and (more := await reader.read(MAX_BODY - len(body))):
                body += more
    return int(parts[1]), status_line, body


def judge(values, status, status_line, body) -> Result:
    if status is None:
        return Result(False, 0.0, f"not an HTTP response: {status_line[:60]!r}")
    if not any(lo <= status <= hi for lo, hi in values["status"]):
        return Result(False, 0.0, f"http status {status}")
    if values["regex"] is not None:
        found = values["regex"].search(body.decode("latin-1")) is not None
        if found == values["regex-no-match"]:
            return Result(False, 0.0, "body matches" if found else "body does not match")
    if values["digest"] is not None:
        got = hashlib.md5(body).hexdigest()
        if got != values["digest"]:
            return Result(False, 0.0, f"body digest {got} is not {values['digest']}")
    return Result(True, 0.0)


def client_context() -> ssl.SSLContext:
    """TLS without certificate checks: keepalived's SSL_GET does not verify by default,
    and a real server's certificate names the service, not the address probed."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def get(probe: Probe, tls: bool) -> Result:
    loop = asyncio.get_running_loop()
    sock = connected_socket_for(probe, socket.SOCK_STREAM)
    writer = None
    try:
        probe.stage = "connect"
        await loop.sock_connect(sock, (probe.addr, probe.port))
        probe.stage = "TLS handshake" if tls else "response"
        reader, writer = await asyncio.open_connection(
            sock=sock, ssl=client_context() if tls else None,
            server_hostname=(probe.values["host"] or "") if tls else None)
        probe.stage = "response"
        writer.write(request(probe))
        need_body = probe.values["regex"] is not None or probe.values["digest"] is not None
        status, line, body = await read_response(reader, need_body)
        return judge(probe.values, status, line, body)
    finally:
        if writer is not None:
            writer.transport.abort()    # the answer is in: no lingering close handshake
        else:
            sock.close()


async def probe(probe: Probe) -> Result:
    return await get(probe, tls=False)


CHECKER = Checker("http", "GET a path; up on an expected status (and body regex or digest)",
                  SETTINGS, probe, wrong_ports=((443, "TLS"),))
