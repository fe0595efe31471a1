"""The control socket: one Unix socket per instance, one JSON request per line.

Request  {"cmd": "dpip addr show", "json": false}
Reply    {"ok": true, "text": "...", "data": ...}  or  {"ok": false, "error": "..."}
Each connection keeps its own command node (for sections such as `dataplane`).
"""
from __future__ import annotations

import asyncio
import grp
import json
import logging
import os

from rlb.control.config import run
from rlb.control.model import CommandError, Model
from rlb.shell.commands import Context
from rlb.shell.grammar import ParseError

log = logging.getLogger("rlb.control")
MAX_REQUEST = 64 * 1024


def execute(ctx: Context, line: str) -> dict:
    """Run one command; every failure becomes an error reply, never an exception."""
    try:
        reply = run(ctx, line)
    except ParseError as err:
        return {"ok": False, "error": str(err)}
    except CommandError as err:
        return {"ok": False, "error": f"% {err}"}
    except Exception as err:                    # a bug: keep the daemon up, say so
        log.exception("command failed: %r", line)
        return {"ok": False, "error": f"% internal error: {err}"}
    return {"ok": True, "text": reply.text, "data": reply.data}


class ControlServer:
    def __init__(self, model: Model, path: str):
        self.model = model
        self.path = path
        self.server = None

    async def start(self) -> None:
        if os.path.exists(self.path):
            os.unlink(self.path)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.server = await asyncio.start_unix_server(self._client, path=self.path,
                                                      limit=MAX_REQUEST)
        os.chmod(self.path, 0o660)
        try:
            os.chown(self.path, 0, grp.getgrnam("rlb").gr_gid)
        except (KeyError, PermissionError):
            pass

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        if os.path.exists(self.path):
            os.unlink(self.path)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        ctx = Context(self.model)
        try:
            while True:
                try:
                    raw = await reader.readline()
                except (asyncio.LimitOverrunError, ValueError):
                    await self._send(writer, {"ok": False, "error": "% request too long"})
                    break
                if not raw:
                    break
                try:
                    req = json.loads(raw)
                    line = req["cmd"]
                    if not isinstance(line, str):
                        raise TypeError
                except (ValueError, KeyError, TypeError, RecursionError):
                    await self._send(writer, {"ok": False, "error": "% malformed request"})
                    continue
                await self._send(writer, execute(ctx, line))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    @staticmethod
    async def _send(writer, obj) -> None:
        writer.write(json.dumps(obj, default=str).encode() + b"\n")
        await writer.drain()
