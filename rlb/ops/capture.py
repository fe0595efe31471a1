"""`capture PORT [in|out|both] [filter "EXPR"] [count N] [seconds S] file PATH`: a pcap
of what a data port receives and sends, as tcpdump -w writes it.

The filter is tcpdump's language, compiled by libpcap and run by the workers (DPDK's
BPF, native code where its JIT can): the workers copy the frames it takes into a ring
without waiting (a full ring drops the copy and counts it: the capture loses frames,
the port none), and this task takes the ring every TAKE seconds and writes the records
to the file, until `count` frames are written or `seconds` have passed. One capture at
a time. Received frames are copied as they arrive, before anything changes them; sent
frames as they leave.
"""
from __future__ import annotations

import asyncio
import os
import stat
import struct
import time

from rlb.core.consts import CAPTURE_RING as RING, CAPTURE_SNAP as SNAP
from rlb.errors import CommandError

IN, OUT = 1, 2
BOTH = "both"               # the default direction
DIRECTIONS = {"in": IN, "out": OUT, BOTH: IN | OUT}
TAKE = 0.01                 # seconds between two takes of the ring
DEFAULT_SECONDS = 60        # without count or seconds
LINKTYPE_ETHERNET = 1
# pcap's file header (microsecond times, native byte order: the magic says which)
HEADER = struct.pack("=IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, SNAP, LINKTYPE_ETHERNET)
RECORD = struct.Struct("=IIII")


def open_file(path: str, uid: int | None = None):
    """The capture file: a new file (an existing one is not overwritten: the daemon
    writes as root for whoever asks), or a FIFO (`file -`: rlb's client reads it).
    CommandError saying why not."""
    if not os.path.isabs(path):
        raise CommandError(f"{path}: give an absolute path (the daemon writes the file)")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as err:
        raise CommandError(f"{path}: {err.strerror}") from None
    try:
        if st is not None and stat.S_ISFIFO(st.st_mode):
            fd = os.open(path, os.O_WRONLY)
        elif st is not None:
            raise CommandError(f"{path} exists: a capture does not overwrite a file")
        else:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
            if uid is not None:
                try:
                    os.fchown(fd, uid, -1)
                except OSError:
                    pass
    except OSError as err:
        raise CommandError(f"{path}: {err.strerror}") from None
    return os.fdopen(fd, "wb", buffering=1 << 16)


def _write(out, data: bytes) -> None:
    out.write(data)
    out.flush()


def _close(out, data: bytes) -> None:
    try:
        out.write(data)
    finally:
        out.close()


def first(records: bytes, n: int) -> bytes:
    """The first n pcap records of records (the header says each one's length)."""
    at = 0
    for _ in range(n):
        if at >= len(records):
            break
        at += RECORD.size + RECORD.unpack_from(records, at)[2]
    return records[:at]


async def capture(engine, port: int, name: str, dirs: int, expr: str | None,
                  count: int | None, seconds: float | None, opener) -> dict:
    """Run one capture on port index `port` into the file opener() opens (once the
    filter is known good: a refused capture leaves no file); its summary."""
    from rlb.core.dataplane import DataplaneError
    if seconds is None and count is None:
        seconds = DEFAULT_SECONDS
    wall0, tsc0 = time.time(), engine.tsc_now()
    try:
        jit = engine.capture_start(port, dirs, expr)
    except DataplaneError as err:
        raise CommandError(f"capture refused: {err}") from None
    try:
        out = opener()
    except BaseException:
        engine.capture_stop(wall0, tsc0)
        raise
    loop = asyncio.get_running_loop()
    start = loop.time()
    written = 0
    closed = False
    try:
        out.write(HEADER)
        while True:
            want = RING if count is None else count - written
            data, n = engine.capture_take(want, wall0, tsc0)
            if n:                       # a slow reader (file -) waits here, not the
                await asyncio.to_thread(_write, out, data)       # loop: the ring fills
                written += n
            if (count is not None and written >= count) or \
                    (seconds is not None and loop.time() - start >= seconds):
                break
            await asyncio.sleep(TAKE)
    except BrokenPipeError:             # `file -` and its reader went away (| head)
        closed = True
    finally:
        data, n, matched, dropped = engine.capture_stop(wall0, tsc0)
        left = n if count is None else max(0, min(n, count - written))
        try:
            await asyncio.to_thread(_close, out, first(data, left))
        except OSError:                 # a reader that went away (file -)
            pass
        written += left
    return {"port": name, "direction": next(k for k, v in DIRECTIONS.items() if v == dirs),
            "filter": expr, "written": written, "matched": matched, "dropped": dropped,
            "seconds": round(loop.time() - start, 3), "jit": jit, "reader_closed": closed}
