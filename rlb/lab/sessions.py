"""Keep-alive HTTP sessions, the lab's client of a long-lived connection: N sessions, each
one TCP connection from its own source port that asks `GET /` every INTERVAL seconds
for SECONDS. A failed request (an error, no answer within TIMEOUT, not a 200) is
counted and the session connects again. Prints `ready` once every session has an
answer (the caller acts after that line), then one JSON object: per session its
requests, answers, failures, connections opened and the longest time between two
answers. What a rolling upgrade or an ECMP change must not break.

    ip netns exec rlb-client python -m rlb.lab.sessions 123.1.2.3 --sessions 16 \\
        --first-port 44000 --interval 0.05 --seconds 30
"""
from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time

MAX_ERRORS = 5      # the first errors of a session, kept in its record


class Session:
    def __init__(self, host: str, port: int, sport: int, timeout: float) -> None:
        self.host, self.port, self.sport, self.timeout = host, port, sport, timeout
        self.conn: http.client.HTTPConnection | None = None
        self.rec = {"source_port": sport, "requests": 0, "answered": 0, "failed": 0,
                    "connections": 0, "max_gap_ms": 0, "errors": []}
        self.last = 0.0
        self.tried = False                # a connection was attempted from self.sport

    def ask(self) -> bool:
        """One request on the session's connection (opened first if there is none)."""
        self.rec["requests"] += 1
        try:
            if self.conn is None:
                # the first connection from the session's port; another after a failure
                # from any port (the old one may linger in TIME_WAIT)
                sport = self.sport if not self.tried else 0
                self.tried = True
                self.conn = http.client.HTTPConnection(self.host, self.port,
                                                       timeout=self.timeout,
                                                       source_address=("", sport))
                self.conn.connect()
                self.rec["connections"] += 1
            self.conn.request("GET", "/")
            resp = self.conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise http.client.HTTPException(f"HTTP {resp.status}")
            if resp.will_close:               # the server ends it politely: not a failure
                self._drop()
        except (OSError, http.client.HTTPException) as err:
            self.rec["failed"] += 1
            if len(self.rec["errors"]) < MAX_ERRORS:
                self.rec["errors"].append(f"{time.time():.3f} {type(err).__name__}: {err}")
            self._drop()
            return False
        now = time.monotonic()
        if self.last:
            gap = round((now - self.last) * 1000)
            self.rec["max_gap_ms"] = max(self.rec["max_gap_ms"], gap)
        self.last = now
        self.rec["answered"] += 1
        return True

    def _drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def run(s: Session, interval: float, end: float, first: threading.Barrier) -> None:
    s.ask()
    try:
        first.wait(timeout=max(0.1, end - time.monotonic()))
    except threading.BrokenBarrierError:
        pass
    nxt = time.monotonic() + interval
    while nxt < end:
        time.sleep(max(0.0, nxt - time.monotonic()))
        s.ask()
        nxt += interval


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("host")
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--sessions", type=int, default=16)
    ap.add_argument("--first-port", type=int, default=44000)
    ap.add_argument("--interval", type=float, default=0.05)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--timeout", type=float, default=2.0)
    opts = ap.parse_args(argv)
    if not (1 <= opts.sessions <= 1000 and 0.001 <= opts.interval <= 60
            and 0 < opts.seconds <= 3600):
        ap.error("sessions 1-1000, interval 0.001-60 s, seconds up to 3600")
    sessions = [Session(opts.host, opts.port, opts.first_port + i, opts.timeout)
                for i in range(opts.sessions)]
    end = time.monotonic() + opts.seconds
    first = threading.Barrier(opts.sessions + 1)
    threads = [threading.Thread(target=run, args=(s, opts.interval, end, first), daemon=True)
               for s in sessions]
    for t in threads:
        t.start()
    try:
        first.wait(timeout=opts.seconds)
    except threading.BrokenBarrierError:
        pass
    print("ready", flush=True)
    for t in threads:
        t.join(timeout=max(0.0, end - time.monotonic()) + opts.timeout + 5)
    out = {"sessions": [s.rec for s in sessions]}
    for key in ("requests", "answered", "failed", "connections"):
        out[key] = sum(s.rec[key] for s in sessions)
    out["max_gap_ms"] = max(s.rec["max_gap_ms"] for s in sessions)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
