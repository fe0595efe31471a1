"""Every checker up and down against real servers (root): a namespace with a veth pair,
nginx (http, https with a self-signed certificate), the lab's rs_server and udp_echo,
a silent listener; the probes run inside the namespace."""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rlb
from rlb.health import checkers
from support.netns import del_ns, in_netns, make_ns, sh


NS = "rlbhc"
LOCAL, RS, UNUSED = "10.251.0.1", "10.251.0.2", "10.251.0.99"
APP, NGINX_HTTP, NGINX_TLS, SILENT, UDP_ECHO, CLOSED = 80, 8080, 8443, 8081, 9999, 9998
HEALTH_BODY = "healthy\n"

NGINX_CONF = """\
daemon off;
master_process off;
user root;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen {rs}:{http};
        listen {rs}:{tls} ssl;
        ssl_certificate {d}/cert.pem;
        ssl_certificate_key {d}/key.pem;
        default_type text/plain;
        location = /health {{ return 200 "{body}"; }}
        location = /sni {{ return 200 "sni=$ssl_server_name\\n"; }}
        location = /host {{ return 200 "host=$host\\n"; }}
        location / {{ return 404; }}
    }}
}}
"""


def spawn(*argv, log):
    env = dict(os.environ, PYTHONPATH=str(Path(rlb.__file__).resolve().parent.parent))
    return subprocess.Popen(["ip", "netns", "exec", NS, *argv], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT, env=env)


def wait_listening(port, proto="tcp", timeout=10.0):
    flag = "-ltnH" if proto == "tcp" else "-lunH"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if f":{port} " in sh("ss", flag, ns=NS).stdout:
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {proto} {port} in {NS}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    d = tmp_path_factory.mktemp("health")
    make_ns(NS, [("hc0", "hc1")])
    sh("ip", "addr", "add", f"{LOCAL}/24", "dev", "hc0", ns=NS)
    sh("ip", "addr", "add", f"{RS}/24", "dev", "hc1", ns=NS)
    sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
       "-subj", "/CN=rs.test", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"))
    (d / "nginx.conf").write_text(NGINX_CONF.format(d=d, rs=RS, http=NGINX_HTTP,
                                                    tls=NGINX_TLS, body=HEALTH_BODY.replace("\n", "\\n")))
    log = open(d / "servers.log", "wb")
    procs = [spawn("/usr/sbin/nginx", "-c", str(d / "nginx.conf"), "-e", str(d / "error.log"),
                   log=log),
             spawn(sys.executable, "-m", "rlb.lab.rs_server", "--addr", RS, "--port", str(APP),
                   log=log),
             spawn(sys.executable, "-m", "rlb.lab.udp_echo", "--addr", RS, "--port",
                   str(UDP_ECHO), log=log)]
    # accepts connections (the kernel completes them) and never answers: a hung server
    with in_netns(NS):
        silent = socket.socket()
        silent.bind((RS, SILENT))
        silent.listen(16)
    try:
        for port in (NGINX_HTTP, NGINX_TLS, APP):
            wait_listening(port)
        wait_listening(UDP_ECHO, "udp")
        yield d
    finally:
        silent.close()
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.kill()                            # by the PID we started
            p.wait()
        log.close()
        del_ns(NS)


def probe(kind, addr=RS, port=APP, **given):
    given = {"timeout": 1.0} | {name.replace("_", "-"): v for name, v in given.items()}
    check = checkers.configure(kind, given)
    with in_netns(NS):                # every socket the probe opens is the namespace's
        return asyncio.run(check.run(addr, port))


def test_tcp(lab):
    assert probe("tcp").ok
    r = probe("tcp", port=CLOSED)
    assert (r.ok, r.error) == (False, "connection refused")
    assert probe("tcp", source=LOCAL).ok
    r = probe("tcp", source="10.251.7.7")
    assert not r.ok and "assign requested address" in r.error
    r = probe("tcp", addr=UNUSED, timeout=0.5)
    assert not r.ok and r.error.startswith("timeout after 0.5 s") and r.latency < 0.7


def test_http_status_codes_and_path(lab):
    assert probe("http", port=NGINX_HTTP, path="/health").ok
    r = probe("http", port=NGINX_HTTP, path="/missing")
    assert (r.ok, r.error) == (False, "http status 404")
    assert probe("http", port=NGINX_HTTP, path="/missing", status="200 400-404").ok
    assert not probe("http", port=NGINX_HTTP, path="/missing", status="200-399").ok
    assert probe("http", port=CLOSED).error == "connection refused"
    assert 0 < probe("http", port=NGINX_HTTP, path="/health").latency < 1.0


def test_http_body_regex_digest_and_host(lab):
    good = hashlib.md5(HEALTH_BODY.encode()).hexdigest()
    assert probe("http", port=NGINX_HTTP, path="/health", digest=good).ok
    r = probe("http", port=NGINX_HTTP, path="/health", digest="0" * 32)
    assert not r.ok and r.error == f"body digest {good} is not {'0' * 32}"
    assert probe("http", port=NGINX_HTTP, path="/health", regex="^healthy$").ok
    r = probe("http", port=NGINX_HTTP, path="/health", regex="^sick")
    assert (r.ok, r.error) == (False, "body does not match")
    r = probe("http", port=NGINX_HTTP, path="/health", regex="^healthy$", regex_no_match=True)
    assert (r.ok, r.error) == (False, "body matches")
    assert probe("http", port=NGINX_HTTP, path="/host", host="www.example.test",
                 regex="host=www.example.test").ok
    assert not probe("http", port=NGINX_HTTP, path="/host", regex="host=www").ok


def test_http_leaves_from_the_source_address(lab):
    """rs_server answers with the client it sees: the bound source address."""
    assert probe("http", source=LOCAL, regex=rf"Your ip:port : {LOCAL}:").ok
    assert not probe("http", source=RS, regex=rf"Your ip:port : {LOCAL}:").ok


def test_http_hung_server_times_out(lab):
    start = time.monotonic()
    r = probe("http", port=SILENT, timeout=0.5)
    assert time.monotonic() - start < 0.8
    assert (r.ok, r.error) == (False, "timeout after 0.5 s during response")


def test_hung_probes_do_not_hold_up_the_others(lab):
    """100 probes into the void and 100 to a live server at once: the live ones answer at
    once, the dead ones all end at their timeout, together, not one after another."""
    async def both():
        dead = checkers.configure("tcp", {"timeout": 0.5})
        live = checkers.configure("http", {"timeout": 0.5})
        start = asyncio.get_running_loop().time()

        async def timed(coro):
            r = await coro
            return r, asyncio.get_running_loop().time() - start
        return await asyncio.gather(*[timed(dead.run(UNUSED, APP)) for _ in range(100)],
                                    *[timed(live.run(RS, APP)) for _ in range(100)])
    with in_netns(NS):
        results = asyncio.run(both())
    assert all(not r.ok and 0.45 < t < 0.7 for r, t in results[:100])
    assert all(r.ok and t < 0.4 for r, t in results[100:])


def test_https(lab):
    assert probe("https", port=NGINX_TLS, path="/health").ok
    assert probe("https", port=NGINX_TLS, path="/missing").error == "http status 404"
    assert probe("https", port=NGINX_TLS, path="/sni", host="rs.test", regex="sni=rs.test").ok
    r = probe("https", port=NGINX_HTTP, path="/health")     # nginx's plain-HTTP port
    assert (r.ok, r.error) == (False, "TLS handshake failed: wrong version number")
    r = probe("https", port=APP, timeout=0.5)                # waits for a request forever
    assert (r.ok, r.error) == (False, "timeout after 0.5 s during TLS handshake")
    assert probe("https", port=CLOSED).error == "connection refused"


def test_udp(lab):
    assert probe("udp", port=UDP_ECHO, payload="70696e67").ok
    assert probe("udp", port=UDP_ECHO, payload="70696e67", require_reply="any").ok
    assert probe("udp", port=UDP_ECHO, payload="00", require_reply=b"Your ip".hex()).ok
    r = probe("udp", port=UDP_ECHO, payload="00", require_reply=b"Their ip".hex())
    assert not r.ok and r.error.startswith("reply does not match")
    # the echo names the client it saw: the source address the probe was bound to
    mine, other = (f"Your ip:port : {a}:".encode().hex() for a in (LOCAL, RS))
    assert probe("udp", port=UDP_ECHO, payload="00", source=LOCAL, require_reply=mine).ok
    assert not probe("udp", port=UDP_ECHO, payload="00", source=LOCAL, require_reply=other).ok
    r = probe("udp", port=CLOSED, payload="00")
    assert (r.ok, r.error) == (False, "port unreachable")
    # a UDP port that never answers: up without require_reply (no ICMP error), down with it
    with in_netns(NS):
        quiet = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        quiet.bind((RS, SILENT))
    try:
        r = probe("udp", port=SILENT, payload="00", timeout=0.3)
        assert r.ok and 0.25 < r.latency < 0.35
        r = probe("udp", port=SILENT, payload="00", require_reply="any", timeout=0.3)
        assert (r.ok, r.error) == (False, "timeout after 0.3 s during reply")
    finally:
        quiet.close()


def test_icmp(lab):
    assert probe("icmp", addr=RS).ok
    assert probe("icmp", addr=RS, source=LOCAL).ok
    r = probe("icmp", addr=UNUSED, timeout=0.5)
    assert (r.ok, r.error) == (False, "timeout after 0.5 s during echo reply")


def test_icmp_many_at_once_share_one_socket(lab):
    async def many():
        live = checkers.configure("icmp", {"timeout": 1.0})
        dead = checkers.configure("icmp", {"timeout": 0.5})
        return await asyncio.gather(*[live.run(RS, 0) for _ in range(20)],
                                    *[dead.run(UNUSED, 0) for _ in range(5)])
    with in_netns(NS):
        results = asyncio.run(many())
    assert [r.ok for r in results] == [True] * 20 + [False] * 5
    from rlb.health.checkers import icmp
    assert not icmp._pingers                         # the socket closed with the last probe


def test_misc_in_the_namespace(lab):
    """The command runs where the daemon runs: here, in the namespace, reaching RS."""
    reach = [sys.executable, "-c", f"import socket; socket.create_connection(('{RS}', {APP}), 1)"]
    assert probe("misc", command=reach).ok
    assert probe("misc", command=reach[:2] + [reach[2].replace(str(APP), str(CLOSED))]).error \
        .endswith("ConnectionRefusedError: [Errno 111] Connection refused")
    r = probe("misc", command=["sh", "-c", "echo no route >&2; exit 1"])
    assert (r.ok, r.error) == (False, "exit 1: no route")
    r = probe("misc", command=["sh", "-c", "exit 42"], dynamic=True)
    assert (r.ok, r.weight) == (True, 40)
    start = time.monotonic()
    r = probe("misc", command=["sleep", "30"], timeout=0.5)
    assert not r.ok and r.error.startswith("timeout after 0.5 s") and time.monotonic() - start < 1.0
