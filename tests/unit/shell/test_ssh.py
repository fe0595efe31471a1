"""rlb.shell.ssh: the ssh shell in-process on 127.0.0.1, asyncssh as the client. Keys of
configured users only; view users look but do not touch; failures logged and rate-limited;
a dropped connection or garbage leaves the model and the server as they were."""
import asyncio
import logging
import os
import re
import socket
from ipaddress import IPv4Interface

import asyncssh
import pytest

from rlb.model.model import Model
from rlb.control.server import execute, open_shell
from rlb.commands.base import Context
from rlb.shell.ssh import HOST_KEY, FailureLimiter, SshService, host_key
from rlb.commands.users import accounts

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Z0-9]|\x1b[=>]|\r|\x07")
KEYS = {name: asyncssh.generate_private_key("ssh-ed25519") for name in ("alice", "bob", "eve")}


def make_model():
    m = Model()
    m.add_port("dpdk0", "net_tap0")
    m.add_address(IPv4Interface("10.0.0.1/24"), "dpdk0")
    acc = accounts(m)
    acc.add_key("alice", KEYS["alice"].export_public_key().decode())
    acc.set_privilege("alice", "admin")
    acc.add_key("bob", KEYS["bob"].export_public_key().decode())       # no privilege: view
    return m


def addrs(m):
    return [str(a.iface) for a in m.addresses]


def run(tmp_path, scenario, model=None, limiter=None):
    """Start the ssh server of a model on 127.0.0.1 (any port), run scenario(svc), stop it."""
    async def main():
        from rlb.control.commit import Store
        svc = SshService(model or make_model(), "lb", state_base=str(tmp_path))
        if svc.model.store is None:
            svc.model.store = Store(str(tmp_path / "commits"))
        if limiter is not None:
            svc.limiter = limiter
        svc.accounts.listen = ("127.0.0.1", free_port())
        await svc.apply()
        assert svc.port, svc.accounts.status
        try:
            await asyncio.wait_for(scenario(svc), 30)
        finally:
            await svc.stop()
    asyncio.run(main())


def connect(svc, user="alice", key=None, **kw):
    if "client_keys" not in kw:
        kw["client_keys"] = [key or KEYS[user]]
    return asyncssh.connect("127.0.0.1", svc.port, username=user, known_hosts=None,
                            agent_path=None, **kw)


class Term:
    """A terminal on a shell channel: type, and wait for text on the (de-escaped) screen."""

    def __init__(self, proc):
        self.proc, self.buf = proc, ""

    def type(self, text):
        self.proc.stdin.write(text)

    async def until(self, text, timeout=10):
        while text not in ANSI.sub("", self.buf):
            chunk = await asyncio.wait_for(self.proc.stdout.read(65536), timeout)
            if not chunk:
                raise EOFError(f"closed before {text!r}: {ANSI.sub('', self.buf)!r}")
            self.buf += chunk
        out, self.buf = ANSI.sub("", self.buf), ""
        return out

    async def line(self, command, prompt, timeout=10):
        """Type a command and Enter; -> what it printed, once the next prompt is drawn."""
        self.type(command + "\r")
        done = re.compile(re.escape(command) + r"\n(.*?)" + re.escape(prompt), re.S)
        while not (m := done.search(ANSI.sub("", self.buf))):
            chunk = await asyncio.wait_for(self.proc.stdout.read(65536), timeout)
            if not chunk:
                raise EOFError(f"closed during {command!r}: {ANSI.sub('', self.buf)!r}")
            self.buf += chunk
        self.buf = ""
        return m.group(1)


async def term(conn):
    t = Term(await conn.create_process(term_type="xterm", term_size=(100, 40)))
    await t.until("lb>")
    return t


# ---------------------------------------------------------------- logging in


def test_a_key_of_a_user_logs_in_and_an_admin_configures(tmp_path):
    async def scenario(svc):
        async with connect(svc) as conn:
            t = await term(conn)
            await t.line("enable", "lb#")
            assert "Enter configuration commands" in await t.line("conf t", "lb(config)#")
            await t.line("dpip addr add 10.0.0.5/24 dev dpdk0", "lb(config)#")
            assert "10.0.0.5/24" not in addrs(svc.model)              # in the candidate
            assert "commit" in await t.line("commit", "lb(config)#")
            assert "10.0.0.5/24" in addrs(svc.model)
            out = await t.line("show users | include alice", "lb(config)#")
            assert re.search(r"alice +admin +1 +1", out), out
            await t.line("end", "lb#")
            t.type("exit\r")
            await asyncio.wait_for(t.proc.wait_closed(), 5)
        await asyncio.sleep(0.1)
        assert svc.accounts.sessions == []
    run(tmp_path, scenario)


def test_the_host_key_is_made_once_and_private(tmp_path):
    async def scenario(svc):
        path = tmp_path / "lb" / HOST_KEY
        assert path.stat().st_mode & 0o777 == 0o600
        assert (tmp_path / "lb").stat().st_mode & 0o777 == 0o700
        async with connect(svc) as conn:
            seen = conn.get_server_host_key().get_fingerprint()
        assert seen == svc.accounts.host_key
        os.chmod(path, 0o644)
        assert host_key(str(tmp_path / "lb")).get_fingerprint() == seen      # kept, not remade
        assert path.stat().st_mode & 0o777 == 0o600                        # and made private
    run(tmp_path, scenario)


def test_passwords_are_refused(tmp_path):
    async def scenario(svc):
        for user in ("alice", "root"):
            with pytest.raises(asyncssh.PermissionDenied):
                async with connect(svc, user, client_keys=None, password="secret",
                                   kbdint_auth=False):
                    pass
    run(tmp_path, scenario)


def test_unknown_keys_and_someone_elses_key_are_refused(tmp_path, caplog):
    async def scenario(svc):
        with caplog.at_level(logging.WARNING, logger="rlb.ssh"):
            with pytest.raises(asyncssh.PermissionDenied):
                async with connect(svc, "alice", KEYS["eve"]):
                    pass
            with pytest.raises(asyncssh.PermissionDenied):
                async with connect(svc, "alice", KEYS["bob"]):
                    pass
            with pytest.raises(asyncssh.PermissionDenied):
                async with connect(svc, "nobody", KEYS["alice"]):
                    pass
            await asyncio.sleep(0.2)
        assert "failed login for user 'alice' from 127.0.0.1" in caplog.text
        assert "failed login for user 'nobody' from 127.0.0.1" in caplog.text
    run(tmp_path, scenario, limiter=FailureLimiter(limit=100))


def test_failed_logins_turn_the_address_away(tmp_path, caplog):
    async def scenario(svc):
        for _ in range(2):
            with pytest.raises(asyncssh.PermissionDenied):
                async with connect(svc, "alice", KEYS["eve"]):
                    pass
            await asyncio.sleep(0.1)
        with caplog.at_level(logging.WARNING, logger="rlb.ssh"):
            with pytest.raises((asyncssh.Error, OSError)):
                async with connect(svc):                     # even with the right key
                    pass
            await asyncio.sleep(0.1)
        assert "127.0.0.1 turned away: too many failed logins" in caplog.text
    run(tmp_path, scenario, limiter=FailureLimiter(limit=2))


def test_the_limiter_forgets_after_its_window():
    now = [0.0]
    lim = FailureLimiter(limit=2, window=60, clock=lambda: now[0], max_addrs=2)
    assert lim.delay("a", 0) == 0.2 and not lim.blocked("a")
    lim.fail("a")
    assert lim.delay("a", 1) == 0.8
    lim.fail("a")
    assert lim.blocked("a") and lim.delay("a", 10) == 5.0
    assert lim.warn_once("a") and not lim.warn_once("a")
    lim.fail("b")
    lim.fail("c")                                   # memory is bounded: the stalest goes
    assert set(lim.failures) == {"b", "c"}
    now[0] = 61
    assert not lim.blocked("b") and lim.recent("c") == 0


# ------------------------------------------------------------------ privilege


def test_a_view_user_may_look_but_not_enable_or_configure(tmp_path):
    async def scenario(svc):
        async with connect(svc, "bob") as conn:
            t = await term(conn)
            out = await t.line("enable", "lb>")
            assert "% Permission denied: user bob has view privilege" in out
            out = await t.line("dpip addr add 10.0.0.6/24 dev dpdk0", "lb>")
            assert "% Permission denied" in out
            out = await t.line("configure", "lb>")
            assert "Permission denied" in out or "Unknown command" in out
            out = await t.line("show privilege", "lb>")
            assert "Current privilege level is view (user bob)" in out
            out = await t.line("dpip addr show", "lb>")
            assert "inet 10.0.0.1/24 scope global dpdk0" in out
        assert addrs(svc.model) == ["10.0.0.1/24"]
    run(tmp_path, scenario)


# ------------------------------------------------------- what must not hurt


def test_a_dropped_connection_mid_command_changes_nothing(tmp_path):
    async def scenario(svc):
        conn = await connect(svc)
        t = await term(conn)
        await t.line("enable", "lb#")
        await t.line("configure", "lb(config)#")
        await t.line("dpip addr add 10.0.0.78/24 dev dpdk0", "lb(config)#")   # uncommitted
        t.type("dpip addr add 10.0.0.77/24 dev dpd")             # no Enter
        await asyncio.sleep(0.2)
        conn.abort()
        await asyncio.sleep(0.5)
        assert addrs(svc.model) == ["10.0.0.1/24"]
        assert svc.accounts.sessions == [] and not svc.connections
        async with connect(svc) as conn2:                      # the server goes on
            t = await term(conn2)
            assert "10.0.0.1/24" in await t.line("dpip addr show", "lb>")
    run(tmp_path, scenario)


def test_garbage_and_an_endless_line_are_survived(tmp_path):
    async def scenario(svc):
        async with connect(svc) as conn:
            proc = await conn.create_process(term_type="xterm", term_size=(100, 40),
                                             encoding=None)
            t = Term(proc)
            t.buf = b""

            async def until(text):
                while text.encode() not in t.buf:
                    chunk = await asyncio.wait_for(proc.stdout.read(65536), 10)
                    assert chunk, t.buf[-500:]
                    t.buf += chunk
                t.buf = b""
            await until("lb>")
            # every byte but Ctrl-D (which ends a session on an empty line, as it should)
            proc.stdin.write(bytes(b for b in range(256) if b != 4) + b"\xff\xfe\xc3\r")
            proc.stdin.write(b"\x03\x15")
            proc.stdin.write(b"a" * 100_000)
            proc.stdin.write(b"b" * 100_000 + b"\r")
            proc.stdin.write(b"\x15show privilege\r")
            await until("Current privilege level is admin")
        assert addrs(svc.model) == ["10.0.0.1/24"]
    run(tmp_path, scenario)


# ------------------------------------------------------- without a terminal


def test_an_exec_request_runs_like_rlb_c(tmp_path):
    async def scenario(svc):
        async with connect(svc) as conn:
            r = await conn.run("show ip address")
            assert r.exit_status == 0 and "inet 10.0.0.1/24 scope global dpdk0" in r.stdout
            assert "\r" not in r.stdout and r.stderr == ""
            # newlines separate commands, as in `rlb -c`; no `enable` needed, as there
            r = await conn.run("dpip addr add 10.0.0.9/24 dev dpdk0\n"
                               "show ip address | include 10.0.0.9")
            assert r.exit_status == 0 and "inet 10.0.0.9/24" in r.stdout, r.stderr
            # the first failure stops the rest, status 1, the failing command named
            r = await conn.run("show ip address\nshow nonsense\n"
                               "dpip addr add 10.0.0.10/24 dev dpdk0")
            assert r.exit_status == 1 and "inet 10.0.0.1/24" in r.stdout
            assert "% Invalid input detected" in r.stderr, r.stderr
            assert "rlb: command failed: show nonsense" in r.stderr
            r = await conn.run("show ip address", term_type="xterm")     # ssh -t: a pty
            assert r.exit_status == 0 and "inet 10.0.0.1/24 scope global dpdk0\r\n" in r.stdout
        assert addrs(svc.model) == ["10.0.0.1/24", "10.0.0.9/24"]
        assert svc.accounts.sessions == [] and not svc.sessions
    run(tmp_path, scenario)


def test_a_view_user_s_exec_request_changes_nothing(tmp_path):
    async def scenario(svc):
        async with connect(svc, "bob") as conn:
            r = await conn.run("dpip addr add 10.0.0.9/24 dev dpdk0")
            assert r.exit_status == 1
            assert "% Permission denied: user bob has view privilege" in r.stderr
            r = await conn.run("enable")            # as with `rlb -c`: no such mode there
            assert r.exit_status == 1 and "rlb: command failed: enable" in r.stderr
            r = await conn.run("show privilege")
            assert r.exit_status == 0 and "view (user bob)" in r.stdout
        assert addrs(svc.model) == ["10.0.0.1/24"]
    run(tmp_path, scenario)


def test_lines_piped_to_a_shell_without_a_pty_run_until_eof(tmp_path):
    async def scenario(svc):
        async with connect(svc) as conn:
            # as `printf ... | rlb`: view mode first, every line runs, the last line's status
            r = await asyncio.wait_for(conn.run(input=(
                "show ip address\r\ndpip addr add 10.0.0.9/24 dev dpdk0\nenable\n"
                "dpip addr add 10.0.0.11/24 dev dpdk0\n\nshow ip address | include 10.0.0.11")),
                10)
            assert r.exit_status == 0, (r.stdout, r.stderr)     # the last line went well
            assert r.stderr.strip() == "% this is a privileged command: `enable` first"
            assert r.stdout.count("inet 10.0.0.1/24") == 1 and "inet 10.0.0.11/24" in r.stdout
            r = await asyncio.wait_for(conn.run(input="show privilege\nexit\nshow ip vs\n"), 10)
            assert r.exit_status == 0 and "IP Virtual Server" not in r.stdout    # ended at exit
            r = await asyncio.wait_for(conn.run(stdin=asyncssh.DEVNULL), 10)     # < /dev/null
            assert (r.exit_status, r.stdout, r.stderr) == (0, "", "")
            r = await asyncio.wait_for(conn.run(input="show ip vs " + "x" * 100_000), 10)
            assert r.exit_status == 1 and "% Line too long (100011 characters" in r.stderr
        assert addrs(svc.model) == ["10.0.0.1/24", "10.0.0.11/24"]
        assert svc.accounts.sessions == [] and not svc.sessions
    run(tmp_path, scenario)


def test_control_characters_of_a_bad_line_come_back_escaped(tmp_path):
    bad = "show ip \x1b[31mvs\x07 \x9b2J"
    async def scenario(svc):
        async with connect(svc) as conn:
            r = await conn.run(bad)
            assert r.exit_status == 1
            assert "rlb: command failed: show ip \\x1b[31mvs\\x07 \\x9b2J" in r.stderr
            r = await conn.run(input=f"show ip vs | include {bad}\n")
            assert r.exit_status == 1 and "Invalid character U+001B at offset 29" in r.stderr
            for out in (r.stdout, r.stderr):
                assert not set(out) & {"\x1b", "\x07", "\x9b"}, repr(out)
            t = await term(conn)                        # the shell, and its `?`
            t.type("\x1b[200~show \x07ip \x1b[31m\x1b[201~?")     # pasted, then `?`
            out = await t.until("% Unrecognized command")
            assert "show \\x07ip \\x1b[31m?" in out, repr(out)
            t.type("\r")
            out = await t.until("offset 5")
            assert "% Invalid character U+0007 at offset 5" in out
    run(tmp_path, scenario)


def test_the_session_ends_with_an_exit_status(tmp_path):
    async def scenario(svc):
        async with connect(svc) as conn:
            t = await term(conn)
            t.type("exit\r")
            await asyncio.wait_for(t.proc.wait_closed(), 5)
            assert t.proc.exit_status == 0          # ssh exits 0, not 255
    run(tmp_path, scenario)


def test_typed_ahead_on_a_pty_without_a_size_is_kept(tmp_path):
    async def scenario(svc):
        async with connect(svc) as conn:
            # `ssh -tt` from a script: a pty of 0x0, input written before the prompt is up
            t = Term(await conn.create_process(term_type="xterm", term_size=(0, 0)))
            t.type("show privilege\r")
            out = await t.until("(user alice)")
            assert "lb> show privilege\nCurrent privilege level is admin" in out, out
    run(tmp_path, scenario)


def test_stopping_the_server_ends_every_session(tmp_path):
    async def scenario(svc):
        conn = await connect(svc)
        t = await term(conn)
        piped = await conn.create_process()         # a shell without a pty, input pending
        piped.stdin.write("show privilege\n")
        assert "admin" in await asyncio.wait_for(piped.stdout.readline(), 5)
        assert len(svc.sessions) == 2
        await svc.stop()
        assert not svc.sessions and svc.accounts.sessions == []
        await asyncio.wait_for(conn.wait_closed(), 5)
        assert t.proc.exit_status is None
    run(tmp_path, scenario)


# --------------------------------------------------- configured like the rest


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ssh_listen_in_configuration_mode_starts_and_stops_the_server(tmp_path, monkeypatch):
    monkeypatch.setenv("RLB_STATE_DIR", str(tmp_path))
    port = free_port()

    async def main():
        from rlb.control.commit import Store
        m = make_model()
        m.store = Store(str(tmp_path / "commits"))
        svc = SshService(m, "lb")
        ctx = Context(m, host="lb")
        open_shell(ctx)
        for line in ("enable", "configure", f"ssh listen 127.0.0.1 {port}", "commit"):
            assert execute(ctx, line)["ok"], line
        for _ in range(50):
            if svc.port:
                break
            await asyncio.sleep(0.05)
        assert svc.port == port
        assert execute(ctx, "show ssh")["text"].startswith(
            f"ssh listen 127.0.0.1 port {port}: listening on 127.0.0.1 port {port}")
        async with asyncssh.connect("127.0.0.1", port, username="alice", known_hosts=None,
                                    client_keys=[KEYS["alice"]], agent_path=None):
            pass
        assert execute(ctx, "no ssh listen")["ok"] and execute(ctx, "commit")["ok"]
        await asyncio.sleep(0.3)
        with pytest.raises(OSError):
            await asyncssh.connect("127.0.0.1", port, username="alice", known_hosts=None,
                                   client_keys=[KEYS["alice"]], agent_path=None)
        assert execute(ctx, "show ssh | json")["text"].count('"state": "not listening"') == 1
        await svc.stop()
    asyncio.run(asyncio.wait_for(main(), 30))


def test_user_lines_of_a_config_file():
    from rlb.control.config import check
    key = KEYS["alice"].export_public_key().decode().strip()
    m = check(list(enumerate([f"username alice key {key}", "username alice privilege admin",
                              "username bob privilege view", "ssh listen 0.0.0.0 2222"], 1)), "t")
    acc = accounts(m)
    assert acc.listen == ("0.0.0.0", 2222)
    assert acc.users["alice"].privilege == "admin" and len(acc.users["alice"].keys) == 1
    assert acc.authorized("alice", KEYS["alice"].convert_to_public()) is acc.users["alice"]
    assert acc.authorized("bob", KEYS["alice"].convert_to_public()) is None
    from rlb.control.config import ConfigError
    for bad in ("username alice key ssh-ed25519 AAAAnotakey", "username 9x privilege view",
                "username a/b privilege view", "ssh listen 0.0.0.0 0"):
        with pytest.raises(ConfigError):
            check([(1, bad)], "t")


def test_the_daemon_starts_the_ssh_server_of_its_config(tmp_path, monkeypatch):
    from rlb import daemon
    monkeypatch.setenv("RLB_STATE_DIR", str(tmp_path))
    m = make_model()
    accounts(m).set_listen("127.0.0.1", free_port())

    async def main():
        svc = await daemon._start_ssh(m, "lb")
        try:
            assert svc.port == accounts(m).listen[1]
            async with connect(svc) as conn:
                t = await term(conn)
                assert "admin" in await t.line("show privilege", "lb>")
        finally:
            await svc.stop()
        assert accounts(m).status == "not listening" and not accounts(m).watchers
    asyncio.run(asyncio.wait_for(main(), 30))
    assert (tmp_path / "lb" / HOST_KEY).exists()
