"""The checkers' registry and settings without a network: every kind registered once,
settings parsed or refused with the reason, the verdicts of each checker, and the MISC
checker for real (a program run, its exit codes, a hanging one killed at the timeout)."""
from __future__ import annotations

import asyncio
import dataclasses
import os
import pkgutil
import struct
import sys
import time

import pytest

from rlb.errors import CommandError
from rlb.health import checkers
from rlb.health.checkers import http, icmp, misc, settings
from rlb.health.result import Result


def test_result_is_the_contract():
    fields = [(f.name, f.default) for f in dataclasses.fields(Result)]
    assert fields == [("ok", dataclasses.MISSING), ("latency", dataclasses.MISSING),
                      ("error", ""), ("weight", None), ("timed_out", False)]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Result(True, 0.1).ok = False


def test_every_checker_module_is_registered_once():
    """A new kind is a module and its line in KINDS: a module left out fails here."""
    shared = {"base", "settings"}
    modules = {m.name for m in pkgutil.iter_modules(checkers.__path__)} - shared
    registered = {c.probe.__module__.rpartition(".")[2] for c in checkers.KINDS}
    assert registered == modules
    assert len(checkers.CHECKERS) == len(checkers.KINDS)
    assert set(checkers.CHECKERS) == {"tcp", "http", "https", "udp", "icmp", "misc"}


def test_settings_are_data_and_common_ones_are_shared():
    for checker in checkers.KINDS:
        names = [s.name for s in checker.all_settings]
        assert names[:3] == ["port", "source", "timeout"]
        assert len(names) == len(set(names)), f"{checker.name} repeats a setting"
        assert not {"port", "source", "timeout"} & {s.name for s in checker.settings}
        for s in checker.all_settings:
            assert s.help and s.type.name
    assert checkers.configure("tcp").get("timeout") == 1.0
    assert checkers.configure("http").get("path") == "/"
    assert checkers.configure("http").get("status") == ((200, 299),)     # keepalived's
    assert checkers.configure("http", {"status": "200-299 400-499 503"}).get("status") == \
        ((200, 299), (400, 499), (503, 503))


@pytest.mark.parametrize("kind, given, reason", [
    ("smtp", {}, "unknown checker 'smtp'"),
    ("tcp", {"path": "/"}, "tcp check: unknown setting 'path'"),
    ("tcp", {"timeout": "-1"}, "timeout: '-1' must be a positive number of seconds"),
    ("tcp", {"timeout": "0"}, "must be a positive number"),
    ("tcp", {"timeout": "soon"}, "is not a number of seconds"),
    ("tcp", {"port": "70000"}, "port: '70000' is not a port number"),
    ("tcp", {"source": "10.0.0"}, "source: '10.0.0' is not an IPv4 address"),
    ("http", {"status": "2000"}, "status: '2000' is not an HTTP status code"),
    ("http", {"status": "299-200"}, "is not an HTTP status code"),
    ("http", {"status": "ok"}, "is not a status code, a range or a list"),
    ("http", {"status": ""}, "is not a status code, a range or a list"),
    ("http", {"regex": "a("}, "regex 'a(' does not compile"),
    ("http", {"digest": "abc"}, "is not an MD5 digest"),
    ("http", {"path": "health"}, "is not a path"),
    ("udp", {"payload": "zz"}, "is not a hex string"),
    ("misc", {}, "misc check: command is required"),
    ("misc", {"command": "/no/such/program --x"}, "'/no/such/program' is not an executable"),
    ("misc", {"command": "true", "dynamic": "maybe"}, "is not yes or no"),
])
def test_bad_settings_are_refused_with_the_reason(kind, given, reason):
    with pytest.raises(CommandError, match=None) as e:
        checkers.configure(kind, given)
    assert reason in str(e.value)


def test_values_parse_and_print_back():
    check = checkers.configure("http", {"path": "/health", "status": "200-299,404",
                                        "digest": "D41D8CD98F00B204E9800998ECF8427E",
                                        "timeout": "0.5", "source": "10.0.0.1"})
    assert check.get("status") == ((200, 299), (404, 404))
    assert check.words() == [("source", "10.0.0.1"), ("timeout", "0.5"),
                             ("path", "/health"), ("status", "200-299,404"),
                             ("digest", "d41d8cd98f00b204e9800998ecf8427e")]
    again = checkers.configure("http", dict(check.words()))
    assert again == check                      # the printed words give the same check
    assert again != checkers.configure("http", {"path": "/other"})
    udp = checkers.configure("udp", {"payload": "00ff", "require-reply": "any"})
    assert udp.get("payload") == b"\x00\xff" and udp.words()[-1] == ("require-reply", "any")
    assert checkers.configure("misc", {"command": "true --x 'a b'"}).get("command") == \
        ("true", "--x", "a b")


def test_http_verdicts():
    values = checkers.configure("http", {"status": "200,301-302"}).values
    v = dict(values)
    assert http.judge(v, 200, "HTTP/1.1 200 OK", b"").ok
    assert http.judge(v, 302, "HTTP/1.1 302 Found", b"").ok
    assert http.judge(v, 404, "HTTP/1.1 404", b"").error == "http status 404"
    assert "not an HTTP response" in http.judge(v, None, "SSH-2.0", b"").error
    v = dict(checkers.configure("http", {"regex": r"ok\b"}).values)
    assert http.judge(v, 200, "", b"all ok").ok
    assert http.judge(v, 200, "", b"broken").error == "body does not match"
    v = dict(checkers.configure("http", {"regex": r"error", "regex-no-match": "yes"}).values)
    assert http.judge(v, 200, "", b"all ok").ok
    assert http.judge(v, 200, "", b"error 42").error == "body matches"
    v = dict(checkers.configure("http", {"digest": "5d41402abc4b2a76b9719d911017c592"}).values)
    assert http.judge(v, 200, "", b"hello").ok                     # md5("hello")
    assert "body digest" in http.judge(v, 200, "", b"hello!").error


def test_request_sends_path_and_host():
    check = checkers.configure("http", {"path": "/h?x=1", "host": "www.example.com"})
    probe = checkers.Probe("10.0.0.2", 80, dict(check.values), 0.0)
    assert http.request(probe).startswith(b"GET /h?x=1 HTTP/1.0\r\nHost: www.example.com\r\n")
    probe = checkers.Probe("10.0.0.2", 80, dict(checkers.configure("http").values), 0.0)
    assert b"Host: 10.0.0.2\r\n" in http.request(probe)


def test_error_words():
    import errno
    import ssl
    assert checkers.describe(ConnectionRefusedError(errno.ECONNREFUSED, "Connect call "
                                                    "failed ('1.2.3.4', 80)")) == "connection refused"
    assert checkers.describe(OSError(errno.EHOSTUNREACH, "x")) == "no route to host"
    e = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    e.reason = "WRONG_VERSION_NUMBER"
    assert checkers.describe(e) == "TLS handshake failed: wrong version number"
    assert checkers.describe(ConnectionResetError(errno.ECONNRESET, "x"), "TLS handshake") \
        == "TLS handshake failed: connection reset by peer"


def test_icmp_packets():
    req = icmp.echo_request(0x1234, 7)
    assert icmp.checksum(req) == 0                 # a correct checksum sums to zero
    assert struct.unpack_from("!BBHHH", req)[::4] == (8, 7)
    reply = bytearray(req)
    reply[0] = 0
    ip = bytes([0x45]) + bytes(11) + bytes([10, 0, 0, 2]) + bytes([10, 0, 0, 1])
    assert icmp.parse_reply(ip + bytes(reply)) == ("10.0.0.2", 0x1234, 7)
    assert icmp.parse_reply(ip + req) is None      # our own request, seen on lo
    assert icmp.parse_reply(ip[:10]) is None


@pytest.mark.parametrize("code, dynamic, ok, weight", [
    (0, False, True, None), (1, False, False, None), (2, False, False, None),
    (0, True, True, None), (1, True, False, None), (2, True, True, 0),
    (12, True, True, 10), (255, True, True, 253), (-9, True, False, None),
])
def test_misc_exit_codes_as_keepalived(code, dynamic, ok, weight):
    r = misc.verdict(code, dynamic, "")
    assert (r.ok, r.weight) == (ok, weight)


def run(kind, **given):
    return asyncio.run(checkers.configure(kind, given).run("10.0.0.2", 80))


def test_misc_runs_the_program():
    assert run("misc", command="true").ok
    r = run("misc", command=[sys.executable, "-c", "import sys; sys.stderr.write('disk full\\n'); sys.exit(1)"])
    assert (r.ok, r.error) == (False, "exit 1: disk full")
    r = run("misc", command=[sys.executable, "-c", "raise SystemExit(7)"], dynamic=True)
    assert (r.ok, r.weight) == (True, 5)
    r = run("misc", command=[sys.executable, "-c", "raise SystemExit(7)"])
    assert (r.ok, r.error) == (False, "exit 7")


def test_misc_hanging_program_is_killed_at_the_timeout(tmp_path):
    """A shell whose child sleeps and holds stderr: both die at the timeout, the loop
    is free meanwhile."""
    pidfile = tmp_path / "pid"
    script = f"sleep 30 & echo $! > {pidfile}; wait"

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1
        t = asyncio.ensure_future(ticker())
        r = await checkers.configure("misc", {"command": ["sh", "-c", script],
                                              "timeout": 0.5}).run("x", 0)
        t.cancel()
        return r, ticks

    start = time.monotonic()
    r, ticks = asyncio.run(main())
    assert time.monotonic() - start < 1.5
    assert not r.ok and r.error.startswith("timeout after 0.5 s")
    assert ticks >= 5                               # the event loop kept running
    sleeper = int(pidfile.read_text())
    time.sleep(0.1)
    assert not alive(sleeper)                       # the grandchild went with the group


def alive(pid: int) -> bool:
    """Running, not a zombie left for a PID 1 that does not reap."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False
