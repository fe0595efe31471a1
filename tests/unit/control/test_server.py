"""rlb.control.server: execute() turns every failure into an error reply, and the control
socket answers bad requests with an error and goes on serving."""
import asyncio
import json
import os
import shutil
import socket
import tempfile
from ipaddress import IPv4Interface

import pytest

from rlb.control import paths
from rlb.control.client import Client
from rlb.model.model import Model
from rlb.control.server import MAX_REQUEST, ControlServer, execute
from rlb.commands.base import Context


def make_model():
    m = Model()
    m.add_port("dpdk0", "net_tap0")
    m.add_port("dpdk1", "net_tap1")
    m.add_address(IPv4Interface("10.0.0.100/32"), "dpdk1")
    return m


@pytest.fixture
def ctx():
    return Context(make_model())


def assert_error(reply):
    assert reply["ok"] is False and set(reply) == {"ok", "error"}
    assert isinstance(reply["error"], str) and reply["error"]


# ------------------------------------------------------------------ execute()

BAD_LINES = [
    "frobnicate",
    "dpip",
    "dpip addr add",
    "dpip addr add 10.0.0.1/24 dev",
    "dpip addr add 999.0.0.1/24 dev dpdk0",
    "dpip addr add 10.0.0.1/24 dev dpdk0 sapool sapool",
    "dpip addr add 10.0.0.1/24 dev dpdk7",
    "dpip route add 10.0.0.0/16",
    "dpip neigh del 10.0.0.9",
    "show dataplane",
    "workers 4",                                   # a dataplane setting, outside the section
    '"unterminated',
    'dpip addr show dev "dpdk0"x',
    "\x00\x01\x02\x7f",
    "\x1b[2J\x1b[H dpip addr show",               # terminal escapes
    "dpip addr show \udcff",                       # a lone surrogate
    "\u202e dpip",                                 # bidi override
    "x" * 5000,
    "dpip addr show " + "dev " * 1250,
    "dpip " * 1000,
]


@pytest.mark.parametrize("line", BAD_LINES, ids=range(len(BAD_LINES)))
def test_bad_lines_give_an_error_reply(ctx, line):
    before = (list(ctx.model.addresses), dict(ctx.model.routes))
    reply = execute(ctx, line)
    assert_error(reply)
    assert (list(ctx.model.addresses), dict(ctx.model.routes)) == before
    assert ctx.node == "exec"


@pytest.mark.parametrize("line", [b"\xff\xfe garbage", b"\x00" * 100, bytes(range(256)),
                                  b"dpip addr show \xc3"])
def test_binary_gives_an_error_reply(ctx, line):
    assert_error(execute(ctx, line))


@pytest.mark.parametrize("line", [None, 42, ["dpip", "addr", "show"], {"cmd": "x"}])
def test_not_a_line_gives_an_error_reply(ctx, line):
    assert_error(execute(ctx, line))


def test_long_line_error_is_short(ctx):
    reply = execute(ctx, "y" * 5000)
    assert_error(reply)
    assert "too long" in reply["error"] and len(reply["error"]) < 200


def test_good_commands(ctx):
    reply = execute(ctx, "dpip addr add 192.168.100.200/32 dev dpdk0 sapool")
    assert reply == {"ok": True, "text": "", "data": None}
    reply = execute(ctx, "dpip addr show")
    assert reply["ok"] is True
    assert reply["text"].splitlines()[:2] == ["inet 10.0.0.100/32 scope global dpdk1",
                                              "     valid_lft forever preferred_lft forever"]
    assert [row["addr"] for row in reply["data"]] == ["10.0.0.100/32", "192.168.100.200/32"]
    reply = execute(ctx, "dpip route show")
    assert reply["ok"] and reply["text"].startswith("inet 10.0.0.100/32 via 0.0.0.0")
    assert len(reply["data"]) == 2
    assert execute(ctx, "") == {"ok": True, "text": "", "data": None}
    assert execute(ctx, "! a comment " + "z" * 5000)["ok"] is True
    json.dumps(execute(ctx, "dpip link show"), default=str)


def test_command_error_text(ctx):
    reply = execute(ctx, "dpip addr add 10.0.0.100/32 dev dpdk1")
    assert reply == {"ok": False, "error": "% address 10.0.0.100 already exists"}


def test_parse_error_text_points_at_the_token(ctx):
    reply = execute(ctx, "dpip addr ad 10.0.0.1/24 dev dpdk0 bogus")
    lines = reply["error"].splitlines()
    assert lines[0].startswith("% Invalid input")
    assert lines[1] == "dpip addr ad 10.0.0.1/24 dev dpdk0 bogus"
    assert lines[2] == " " * len("dpip addr ad 10.0.0.1/24 dev dpdk0 ") + "^"


def test_internal_error_is_an_error_reply(ctx, caplog):
    ctx.model.engine = object()          # an engine without the methods a command needs
    reply = execute(ctx, "dpip neigh flush")
    assert_error(reply)
    assert reply["error"].startswith("% internal error:")
    assert "command failed" in caplog.text


def test_sections_keep_their_node(ctx):
    assert execute(ctx, "dataplane")["ok"] and ctx.node == "dataplane"
    assert execute(ctx, "neigh-timeout 5")["ok"] and ctx.model.settings.neigh_timeout == 5
    assert_error(execute(ctx, "neigh-timeout 0"))
    assert ctx.node == "dataplane"
    assert execute(ctx, "dpip addr show")["ok"] and ctx.node == "dataplane"   # a show stays
    assert execute(ctx, "dpip addr add 10.9.0.1/24 dev dpdk0")["ok"] and ctx.node == "exec"


# ---------------------------------------------------------------- the socket


@pytest.fixture
def run_dir(monkeypatch):
    # A short path: a Unix socket path is limited to 107 bytes.
    d = tempfile.mkdtemp(prefix="rlbt-", dir="/tmp")
    monkeypatch.setattr(paths, "RUN_DIR", d)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def serve(run_dir, scenario, model=None):
    """Start a ControlServer on RUN_DIR/t.sock, run scenario(path), stop it."""
    path = os.path.join(run_dir, "t.sock")

    async def main():
        server = ControlServer(model or make_model(), path)
        await server.start()
        try:
            await asyncio.wait_for(scenario(path), 10)
        finally:
            await server.stop()
        assert not os.path.exists(path)

    asyncio.run(main())


async def request(reader, writer, raw: bytes):
    writer.write(raw)
    await writer.drain()
    line = await reader.readline()
    assert line.endswith(b"\n"), line
    return json.loads(line)


def test_socket_is_made_and_private(run_dir):
    async def scenario(path):
        assert os.stat(path).st_mode & 0o777 == 0o660
    serve(run_dir, scenario)


def test_real_client(run_dir):
    async def scenario(path):
        client = await asyncio.to_thread(Client, "t", 5)
        try:
            reply = await asyncio.to_thread(client.call, "dpip addr show")
            assert reply["ok"] and reply["text"].startswith("inet 10.0.0.100/32 scope global dpdk1")
            reply = await asyncio.to_thread(client.call, "dpip addr add 10.0.0.100/32 dev dpdk1")
            assert reply == {"ok": False, "error": "% address 10.0.0.100 already exists"}
            reply = await asyncio.to_thread(client.call, "x" * 5000)
            assert_error(reply)
            reply = await asyncio.to_thread(client.call, "dpip route show")
            assert reply["ok"] and len(reply["data"]) == 1
        finally:
            client.close()
    serve(run_dir, scenario)


MALFORMED = [b"not json\n", b"{\n", b'{"cmd": 42}\n', b'{"command": "dpip addr show"}\n',
             b"[1, 2]\n", b'"dpip addr show"\n', b"null\n", b"\xff\xfe\n", b"1" * 5000 + b"\n",
             b'{"cmd": null}\n', b'{"cmd": ["dpip"]}\n', b"\n"]


def test_malformed_requests_keep_the_connection(run_dir):
    async def scenario(path):
        reader, writer = await asyncio.open_unix_connection(path)
        try:
            for raw in MALFORMED:
                reply = await request(reader, writer, raw)
                assert reply == {"ok": False, "error": "% malformed request"}, raw
                reply = await request(reader, writer, b'{"cmd": "dpip route show"}\n')
                assert reply["ok"] is True, raw
        finally:
            writer.close()
    serve(run_dir, scenario)


def test_each_connection_has_its_own_node(run_dir):
    async def scenario(path):
        r1, w1 = await asyncio.open_unix_connection(path)
        r2, w2 = await asyncio.open_unix_connection(path)
        try:
            assert (await request(r1, w1, b'{"cmd": "dataplane"}\n'))["ok"]
            assert (await request(r1, w1, b'{"cmd": "idle-sleep 10"}\n'))["ok"]
            assert_error(await request(r2, w2, b'{"cmd": "idle-sleep 10"}\n'))
        finally:
            w1.close()
            w2.close()
    serve(run_dir, scenario)


def test_over_long_request(run_dir):
    async def scenario(path):
        other_r, other_w = await asyncio.open_unix_connection(path)
        reader, writer = await asyncio.open_unix_connection(path)
        try:
            big = b'{"cmd": "' + b"a" * (MAX_REQUEST + 1000) + b'"}\n'
            reply = await request(reader, writer, big)
            assert reply == {"ok": False, "error": "% request too long"}
            assert await reader.read() == b""             # that connection is closed
            # the daemon goes on: an open connection and a new one are served
            reply = await request(other_r, other_w, b'{"cmd": "dpip addr show"}\n')
            assert reply["ok"]
            r3, w3 = await asyncio.open_unix_connection(path)
            assert (await request(r3, w3, b'{"cmd": "dpip route show"}\n'))["ok"]
            w3.close()
        finally:
            writer.close()
            other_w.close()
    serve(run_dir, scenario)


def test_over_long_request_without_newline(run_dir):
    """A client that streams bytes and never ends its line is cut off at the limit."""
    async def scenario(path):
        reader, writer = await asyncio.open_unix_connection(path)

        async def flood():          # more than the socket holds: the server closes mid-way
            try:
                writer.write(b"b" * (MAX_REQUEST * 2))
                await writer.drain()
            except ConnectionError:
                pass
        task = asyncio.create_task(flood())
        reply = json.loads(await reader.readline())
        await task
        assert reply == {"ok": False, "error": "% request too long"}
        writer.close()
        ok = await asyncio.to_thread(lambda: Client("t", 5).call("dpip addr show"))
        assert ok["ok"]
    serve(run_dir, scenario)


def test_client_that_vanishes_mid_request(run_dir):
    async def scenario(path):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        s.sendall(b'{"cmd": "dpip addr')                 # no newline, then gone
        s.close()
        reader, writer = await asyncio.open_unix_connection(path)
        assert (await request(reader, writer, b'{"cmd": "dpip addr show"}\n'))["ok"]
        writer.close()
    serve(run_dir, scenario)


def test_deeply_nested_json_is_a_malformed_request(run_dir):
    async def scenario(path):
        reader, writer = await asyncio.open_unix_connection(path)
        try:
            reply = await request(reader, writer, b"[" * 50000 + b"\n")
            assert reply == {"ok": False, "error": "% malformed request"}
            assert (await request(reader, writer, b'{"cmd": "dpip addr show"}\n'))["ok"]
        finally:
            writer.close()
    serve(run_dir, scenario)
