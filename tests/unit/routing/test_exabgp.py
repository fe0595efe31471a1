"""rlb/routing/exabgp.py and exabridge.py without a data plane: exabgp's configuration
from `router bgp`, exabgp's own check of it, the API conversation (commands and their
acknowledgements, neighbour events) and the bridge between exabgp's pipes and the
daemon's socket. The real exabgp with a real neighbour: tests/lab/routing/test_lab_bgp.py."""
import asyncio
import json
import socket
import subprocess
import sys
from ipaddress import IPv4Address, IPv4Interface

import pytest

from rlb.control.commit import build
from rlb.errors import CommandError
from rlb.routing import exabgp
from rlb.routing.exabgp import Speaker, check_text, config
from rlb.routing.frr import RoutingError

SECTION = ("router bgp 65001", " neighbor 172.10.0.1 remote-as 65000",
           " neighbor 172.10.0.1 timers 1 3", " neighbor 172.10.0.9 remote-as 65009",
           " neighbor 172.10.0.9 update-source 172.10.0.10", "!")
KNI = [IPv4Interface("127.0.0.1/8"), IPv4Interface("172.10.0.2/30")]


def model(*lines):
    return build(list(enumerate(lines, 1)), "t.conf")


def test_each_neighbour_gets_its_block_with_the_kernel_s_address_on_its_network():
    text = config(model(*SECTION).routing.bgp, "/x/api.sock", KNI)
    first, second = text.split("neighbor ")[1:]
    assert first.startswith("172.10.0.1 {") and "local-address 172.10.0.2;" in first
    assert "peer-as 65000;" in first and "hold-time 3;" in first and "local-as 65001;" in first
    assert "router-id 172.10.0.2;" in first                 # the first neighbour's source
    assert "local-address 172.10.0.10;" in second and "hold-time" not in second
    assert "neighbor-changes;" in second and "processes [ rlb ];" in second
    assert f"run {sys.executable} -m rlb.routing.exabridge /x/api.sock;" in text
    with_rid = config(model(*SECTION[:1], " bgp router-id 9.9.9.9", *SECTION[1:])
                      .routing.bgp, "/x", KNI)
    assert with_rid.count("router-id 9.9.9.9;") == 2


def test_a_neighbour_on_no_network_of_ours_is_said():
    with pytest.raises(RoutingError, match="neighbor 172.10.0.1: no address of this LB's "
                                           "kernel is on its network.*update-source"):
        config(model(*SECTION).routing.bgp, "/x", [IPv4Interface("10.0.0.1/24")])


def test_exabgp_checks_the_text_and_says_why_it_refuses():
    bgp = model(*SECTION).routing.bgp
    check_text(config(bgp, "/x", KNI))                        # fine
    bad = model("router bgp 65001", " neighbor 172.10.0.1 remote-as 65000",
                " neighbor 172.10.0.1 timers 0 2").routing.bgp
    with pytest.raises(RoutingError, match="holdtime must be zero or at least three"):
        check_text(config(bad, "/x", KNI))


def test_exabgp_missing_is_said(monkeypatch, tmp_path):
    monkeypatch.setattr(exabgp, "EXABGP", tmp_path / "exabgp")
    with pytest.raises(RoutingError, match="exabgp is not installed.*make setup"):
        check_text("neighbor 1.2.3.4 { }\n")


def test_timers_are_exabgp_s_keepalive_rule():
    from rlb.commands.base import BGP, CONFIG, Context
    from rlb.control.config import run
    ctx = Context(model(*SECTION), node=BGP)
    with pytest.raises(CommandError, match="hold/3 seconds: timers 3 9"):
        run(ctx, "neighbor 172.10.0.1 timers 5 9")
    with pytest.raises(CommandError, match="give its remote-as first"):
        run(ctx, "neighbor 10.1.1.1 bfd")
    with pytest.raises(CommandError, match="BGP runs as AS 65001"):
        run(Context(ctx.model, node=CONFIG), "router bgp 65002")


# ------------------------------------------------------------------- the API conversation

class FakeModel:
    def __init__(self, bgp):
        from rlb.model.routing import Routing
        self.routing = Routing(bgp=bgp)
        self.speaker = None


def test_the_speaker_announces_withdraws_first_and_reads_neighbour_events(tmp_path):
    """A client standing for exabgp's API process: it acknowledges every command with
    `done`, and sends the state events exabgp sends."""
    async def go():
        sp = Speaker(FakeModel(model(*SECTION).routing.bgp), "t", directory=str(tmp_path))
        server = await asyncio.start_unix_server(sp._client, path=str(tmp_path / "api.sock"))
        reader, writer = await asyncio.open_unix_connection(str(tmp_path / "api.sock"))
        got = []

        async def exabgp_side():
            while line := await reader.readline():
                got.append(line.decode().strip())
                writer.write(b"done\n")
                await writer.drain()
        side = asyncio.create_task(exabgp_side())
        event = {"exabgp": "4.2.25", "type": "state", "neighbor": {
            "address": {"local": "172.10.0.2", "peer": "172.10.0.1"}, "state": "up"}}
        writer.write(json.dumps(event).encode() + b"\n")
        await writer.drain()
        await asyncio.sleep(0.1)
        sp.announce(IPv4Address("123.1.2.3"))
        sp.announce(IPv4Address("123.1.2.4"))
        await sp._push()
        sp.withdraw(IPv4Address("123.1.2.3"))
        sp.announce(IPv4Address("123.1.2.5"))
        await sp._push()
        s = sp.summary()
        side.cancel()
        writer.close()
        server.close()
        return got, s
    got, s = asyncio.run(go())
    assert got == ["announce route 123.1.2.3/32 next-hop self",
                   "announce route 123.1.2.4/32 next-hop self",
                   "withdraw route 123.1.2.3/32 next-hop self",      # withdrawals first
                   "announce route 123.1.2.5/32 next-hop self"]
    assert s["announced"] == ["123.1.2.4", "123.1.2.5"]
    first, second = s["neighbors"]
    assert first["peer"] == "172.10.0.1" and first["state"] == "Established"
    assert first["prefixes_sent"] == 2 and first["for"] is not None
    assert second["state"] == "Idle" and second["for"] is None
    assert s["process"] == "not running"


def test_an_unacknowledged_command_is_not_counted_as_sent(tmp_path, monkeypatch):
    monkeypatch.setattr(exabgp, "ACK_WAIT", 0.2)

    async def go():
        sp = Speaker(FakeModel(model(*SECTION).routing.bgp), "t", directory=str(tmp_path))
        server = await asyncio.start_unix_server(sp._client, path=str(tmp_path / "api.sock"))
        reader, writer = await asyncio.open_unix_connection(str(tmp_path / "api.sock"))
        await asyncio.sleep(0.05)
        sp.announce(IPv4Address("123.1.2.3"))
        await sp._push()                                   # nobody answers
        line = await reader.readline()
        writer.write(b"error\n")                            # a late answer: ignored
        await writer.drain()
        writer.close()
        server.close()
        return line, sp.sent
    line, sent = asyncio.run(go())
    assert line == b"announce route 123.1.2.3/32 next-hop self\n" and sent == set()


def test_the_bridge_carries_lines_both_ways(tmp_path):
    path = str(tmp_path / "api.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    p = subprocess.Popen([sys.executable, "-m", "rlb.routing.exabridge", path],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        srv.settimeout(10)
        conn, _ = srv.accept()
        conn.settimeout(10)
        conn.sendall(b"announce route 1.2.3.4/32 next-hop self\n")
        assert p.stdout.readline() == b"announce route 1.2.3.4/32 next-hop self\n"
        p.stdin.write(b"done\n")
        p.stdin.flush()
        assert conn.recv(100) == b"done\n"
        conn.close()                                    # the daemon goes: the bridge ends
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        srv.close()


def test_the_bridge_without_a_daemon_says_so(tmp_path):
    from rlb.routing import exabridge
    r = subprocess.run([sys.executable, "-c", "import sys; from rlb.routing import exabridge; "
                        f"exabridge.CONNECT_WAIT = 0.2; sys.exit(exabridge.main(["
                        f"{str(tmp_path / 'none.sock')!r}]))"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "none.sock" in r.stderr and "Traceback" not in r.stderr
    assert exabridge.main([]) == 2
