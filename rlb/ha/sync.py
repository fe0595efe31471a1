"""Connection sync with the peer LB (`sync peer A.B.C.D`): what IPVS's sync daemon does,
both ways, with the bulk sync it lacks.

The data plane queues an event when one of its connections becomes worth the peer's
knowing (TCP established, a UDP flow), changes state after that, or ends (sync.pxd);
this task takes the queue every TICK seconds, one call for all of it, and sends it to
the peer in UDP datagrams of up to RECORDS events (40 bytes each) through the kni. The
peer's datagrams go to the data plane the same way, one call per datagram, each event
into the table of the worker that will see the flow (`Engine.sync_put`): the
connection waits there, inactive (no packet of it reaches a BACKUP), and carries on
after a takeover. No Python per packet or per connection.

Both LBs run the same code: each tells the other of its own connections and holds the
other's; the VRRP roles decide only which one has any. When sync starts, and each time
the peer is heard again after a silence (a restart, a cut), each side asks the other
for its whole table (bulk sync); every REFRESH seconds each sends its whole table again,
so that a long idle connection outlives its timeout at the peer and a lost datagram is
made good. A HELLO every second says the sender's table size.

Wire (little endian, both LBs alike): a header (MAGIC, version, kind, event count,
sequence, send time, the sender's connection count), then the events.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import struct
import time
from collections import deque

log = logging.getLogger("rlb.ha")

MAGIC, VERSION = b"RLBS", 1
HEADER = struct.Struct("<4sBBHIdI")
EVENTS, BULK, HELLO, ASK = 1, 2, 3, 4       # header kinds (ASK: send me your table)
RECORDS = 34                 # events per datagram: 24 + 34 x 40 = 1384 bytes, under the MTU
TICK = 0.01                  # seconds between two takes of the data plane's queue
HELLO_EVERY = 1.0
SILENT = 3.5                 # seconds without a datagram: the peer is down
REFRESH = 60.0               # seconds between two whole tables sent
BULK_PER_TICK = 64           # datagrams of a bulk sync sent per tick (paced)
LAGS = 2048                  # lag samples kept (ms, receive time - send time)


class Sync:
    """The daemon's connection sync. `await run()` follows the configuration."""

    def __init__(self, model) -> None:
        self.model = model
        self.peer = None                     # the SyncPeer being served
        self.sock: socket.socket | None = None
        self.seq = 0
        self.started = 0.0
        self.heard = 0.0                     # monotonic time of the peer's last datagram
        self.up_since: float | None = None
        self.peer_conns: int | None = None
        self.problem: str | None = None
        self.counts = {k: 0 for k in ("sent_events", "sent_datagrams", "sent_bytes",
                                      "received_events", "received_datagrams", "dropped")}
        self.bulk_sent = [0, None]           # events, monotonic time
        self.bulk_received = [0, None]
        self.lags: deque[float] = deque(maxlen=LAGS)
        self._bulk: deque[bytes] = deque()   # records of a bulk sync still to send
        self._next_hello = self._next_refresh = 0.0
        self._wake = asyncio.Event()
        model.ha.listeners.append(self._wake.set)
        model.syncer = self

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            try:
                self._follow()
                if self.sock is None:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                self._tick()
            except Exception as e:               # never let the sync end
                self.problem = str(e) or type(e).__name__
                log.exception("sync: %s", self.problem)
            await asyncio.sleep(TICK)

    def _follow(self) -> None:
        """Open, move or close the socket as `sync peer` says."""
        want = self.model.ha.sync
        if want == self.peer:
            return
        self._close()
        self.peer = want
        if want is None:
            if self.model.engine is not None:
                self.model.engine.sync_enable(False)
            return
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        try:
            s.bind(("0.0.0.0", want.port))
        except OSError as e:
            s.close()
            self.problem = f"port {want.port}: {e.strerror}"
            log.error("sync: cannot listen on UDP %d: %s", want.port, e.strerror)
            return
        s.setblocking(False)
        self.sock = s
        asyncio.get_running_loop().add_reader(s.fileno(), self._readable)
        self.problem, self.started = None, time.monotonic()
        self.heard, self.up_since, self.peer_conns = 0.0, None, None
        self.model.engine.sync_enable(True)
        self._send(ASK, b"")
        log.info("sync: with %s port %d", want.peer, want.port)

    def _close(self) -> None:
        if self.sock is not None:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None
        self._bulk.clear()
        self.up_since = None

    def _tick(self) -> None:
        engine, now = self.model.engine, time.monotonic()
        records = engine.sync_take()
        size = engine.SYNC_RECORD
        step = RECORDS * size
        for i in range(0, len(records), step):
            self._send(EVENTS, records[i:i + step])
        for _ in range(min(BULK_PER_TICK, len(self._bulk))):
            self._send(BULK, self._bulk.popleft())
        if now >= self._next_hello:
            self._next_hello = now + HELLO_EVERY
            self._send(HELLO, b"")
        if now >= self._next_refresh and self.up_since is not None:
            self._next_refresh = now + REFRESH
            self._queue_table()
        if self.up_since is not None and now - self.heard > SILENT:
            log.warning("sync: %s is silent (%.1f s): down", self.peer.peer, now - self.heard)
            self.up_since = None

    def _queue_table(self) -> None:
        """Our whole table, paced out over the next ticks (a bulk sync)."""
        engine = self.model.engine
        records = engine.sync_dump()
        step = RECORDS * engine.SYNC_RECORD
        self._bulk.extend(records[i:i + step] for i in range(0, len(records), step))
        self.bulk_sent = [len(records) // engine.SYNC_RECORD, time.monotonic()]

    def _send(self, kind: int, payload: bytes) -> None:
        if self.sock is None:
            return
        n = len(payload) // self.model.engine.SYNC_RECORD
        self.seq = (self.seq + 1) & 0xffffffff
        conns = self.model.engine.conn_summary()["conns"] if kind == HELLO else 0
        data = HEADER.pack(MAGIC, VERSION, kind, n, self.seq, time.time(), conns) + payload
        try:
            self.sock.sendto(data, (str(self.peer.peer), self.peer.port))
        except OSError as e:                 # no route yet, buffer full: counted, not fatal
            self.counts["dropped"] += 1
            if self.problem != f"send: {e.strerror}":
                self.problem = f"send: {e.strerror}"
                log.warning("sync: sending to %s: %s", self.peer.peer, e.strerror)
            return
        if n:
            self.counts["sent_events"] += n
        self.counts["sent_datagrams"] += 1
        self.counts["sent_bytes"] += len(data)

    # -- the peer's datagrams ----------------------------------------------------------------

    def _readable(self) -> None:
        for _ in range(256):
            try:
                data, (addr, _port) = self.sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self._datagram(data, addr)

    def _datagram(self, data: bytes, addr: str) -> None:
        engine = self.model.engine
        if self.peer is None or addr != str(self.peer.peer) or len(data) < HEADER.size:
            self.counts["dropped"] += 1
            return
        magic, version, kind, n, _seq, sent, conns = HEADER.unpack_from(data)
        payload = data[HEADER.size:]
        if magic != MAGIC or version != VERSION or len(payload) != n * engine.SYNC_RECORD:
            self.counts["dropped"] += 1
            return
        now = time.monotonic()
        if self.up_since is None:                 # heard again: ask for its whole table
            self.up_since = now
            log.info("sync: %s is heard", self.peer.peer)
            if kind != ASK:
                self._send(ASK, b"")
        self.heard = now
        self.counts["received_datagrams"] += 1
        if kind == HELLO:
            self.peer_conns = conns
        elif kind == ASK:
            self._queue_table()
        elif kind in (EVENTS, BULK) and n:
            self.lags.append(max(0.0, (time.time() - sent) * 1000))
            engine.sync_put(payload)
            self.counts["received_events"] += n
            if kind == BULK:
                self.bulk_received = [self.bulk_received[0] + n, now]

    # -- the daemon's side ---------------------------------------------------------------

    def stop(self) -> None:
        self._close()

    def view(self) -> dict:
        now = time.monotonic()
        peer = self.peer
        summary = self.model.engine.conn_summary() if self.model.engine else {}
        lags = sorted(self.lags)

        def pct(p):
            return round(lags[min(len(lags) - 1, int(p * len(lags)))], 1) if lags else None
        roles = [] if self.model.keepalived is None else \
            [f"{i['name']} {i['state']}" for i in self.model.keepalived.view()["instances"]]
        return {
            "peer": str(peer.peer) if peer else None, "port": peer.port if peer else None,
            "state": "off" if peer is None else "up" if self.up_since is not None else "down",
            "for": round(now - self.up_since, 1) if self.up_since is not None else None,
            "roles": roles,
            "sent": {"events": self.counts["sent_events"],
                     "datagrams": self.counts["sent_datagrams"],
                     "bytes": self.counts["sent_bytes"]},
            "received": {"events": self.counts["received_events"],
                         "datagrams": self.counts["received_datagrams"]},
            "lost": summary.get("sync_lost", 0), "applied": summary.get("sync_applied", 0),
            "refused": summary.get("sync_refused", 0), "dropped": self.counts["dropped"],
            "lag_ms": {"samples": len(lags), "p50": pct(0.5), "p99": pct(0.99),
                       "max": round(lags[-1], 1) if lags else None},
            "conns": summary.get("conns", 0), "peer_conns": self.peer_conns,
            "bulk_sent": {"events": self.bulk_sent[0],
                          "ago": None if self.bulk_sent[1] is None
                          else round(now - self.bulk_sent[1], 1)},
            "bulk_received": {"events": self.bulk_received[0],
                              "ago": None if self.bulk_received[1] is None
                              else round(now - self.bulk_received[1], 1)},
            "record_bytes": self.model.engine.SYNC_RECORD if self.model.engine else None,
            "problem": self.problem,
        }
