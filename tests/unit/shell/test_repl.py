"""rlb.shell.repl: whole shell sessions through prompt_toolkit's pipe input, in-process and over
a real control socket; completion with bare Documents; `?`, Tab, filters, paging, history."""
import asyncio
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from ipaddress import IPv4Interface, IPv4Network

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from rlb.control import paths
from rlb.control.client import Client
from rlb.model.model import Model
from rlb.control.server import ControlServer, execute, open_shell
from rlb.commands.base import VIEWER, Context, g
from rlb.shell.repl import (LocalTransport, QuietFileHistory, Shell, SocketTransport, _Completer,
                            script)

CTRL_U, CTRL_Z, UP = "\x15", "\x1a", "\x1b[A"


def make_model():
    m = Model()
    m.add_port("dpdk0", "net_tap0")
    m.add_port("dpdk1", "net_tap1")
    m.add_address(IPv4Interface("10.0.0.100/32"), "dpdk1")
    m.add_address(IPv4Interface("192.168.100.200/24"), "dpdk0")
    return m


class Recorder:
    """A transport that keeps every line sent and every reply."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def start(self):
        return self.inner.start()

    def call(self, line):
        reply = self.inner.call(line)
        self.calls.append((line, reply))
        return reply

    def complete(self, line):
        return self.inner.complete(line)

    def listen(self, tell):
        return self.inner.listen(tell)


def session(text, model=None, *, privilege="admin", pager=False, history=None, ctx=None):
    """Type `text` into a whole shell session (then end of input); -> (printed, recorder, ctx)."""
    ctx = ctx or Context(model or make_model(), host="lb", user="tester", privilege=privilege)
    printed, rec = [], Recorder(LocalTransport(ctx))

    async def main():
        with create_pipe_input() as inp:
            shell = Shell(rec, input=inp, output=DummyOutput(), write=printed.append,
                          pager=pager, history=history)
            inp.send_text(text)
            task = asyncio.ensure_future(shell.run())
            await asyncio.sleep(0.3)            # everything typed is read before EOF
            inp.close()
            assert await asyncio.wait_for(task, 10) == 0
    asyncio.run(main())
    return printed, rec, ctx


def prompts(rec):
    return [reply["prompt"] for _, reply in rec.calls]


# ------------------------------------------------------------------ modes


def test_modes_and_their_prompts():
    _, rec, ctx = session("enable\rconfigure terminal\rdataplane\rexit\rdataplane\rend\r"
                          "disable\rexit\r")
    assert [line for line, _ in rec.calls] == ["enable", "configure terminal", "dataplane", "exit",
                                               "dataplane", "end", "disable", "exit"]
    assert prompts(rec) == ["lb#", "lb(config)#", "lb(dataplane)#", "lb(config)#",
                            "lb(dataplane)#", "lb#", "lb>", "lb>"]
    assert rec.calls[-1][1]["closed"] is True and ctx.closed


def test_exit_at_the_top_ends_the_session_and_what_follows_is_not_run():
    _, rec, _ = session("exit\rdpip addr show\r")
    assert [line for line, _ in rec.calls] == ["exit"]


def test_exec_applies_at_once_and_configuration_mode_commits(tmp_path):
    from rlb.control.commit import Store
    m = make_model()
    m.store = Store(str(tmp_path / "commits"), startup=str(tmp_path / "rlb.conf"))
    printed, rec, ctx = session("dpip addr add 10.0.0.7/24 dev dpdk1\renable\r"
                                "dpip addr add 10.0.0.7/24 dev dpdk1\r"
                                "conf t\rdpip route add 10.1.0.0/16 via 10.0.0.1 dev dpdk1\r"
                                "show configuration diff\rend\rcommit\rend\r", m)
    assert "`enable` first" in rec.calls[0][1]["error"]             # lb> changes nothing
    addrs = [str(a.iface) for a in m.addresses]
    assert addrs.count("10.0.0.7/24") == 1                         # lb#: at once
    diff = rec.calls[5][1]["text"]
    assert "+ip route 10.1.0.0/16 via 10.0.0.1 dev dpdk1" in diff.splitlines()
    assert "uncommitted changes" in rec.calls[6][1]["error"]       # `end` keeps the candidate
    assert rec.calls[7][1]["data"]["changes"] == ["add route 10.1.0.0/16"]
    assert IPv4Network("10.1.0.0/16") in {r.prefix for r in m.routes.values()}
    assert ctx.node == "enable" and ctx.model is m


def test_show_commands_work_in_every_mode():
    _, rec, _ = session("sh ip\rdpip addr show\ren\rdpip addr show\rconf t\rdpip addr show\r"
                        "dataplane\rdpip addr show\r")
    shows = [reply for line, reply in rec.calls if line == "dpip addr show"]
    assert len(shows) == 4 and all(r["ok"] for r in shows)
    assert rec.calls[0][1]["ok"] is False                         # `sh ip`: no such command
    assert rec.calls[-1][1]["prompt"] == "lb(dataplane)#"         # a show keeps the section


def test_ctrl_z_ends_configuration_mode():
    _, rec, ctx = session(f"enable\rconfigure\rdataplane\r{CTRL_Z}configure\r{CTRL_Z}")
    assert [line for line, _ in rec.calls] == ["enable", "configure", "dataplane", "end",
                                               "configure", "end"]
    assert ctx.node == "enable"


def test_ctrl_z_in_exec_modes_does_nothing():
    _, rec, _ = session(f"{CTRL_Z}enable\r{CTRL_Z}")
    assert [line for line, _ in rec.calls] == ["enable"]


# --------------------------------------------------------------- ? and Tab


def test_question_mark_lists_what_may_come_next_without_inserting_it():
    printed, rec, _ = session("dpip ?addr show ?\r")
    help_out = [p for p in printed if p.startswith("lb> dpip")]
    assert len(help_out) == 2
    first = help_out[0].splitlines()
    assert first[0] == "lb> dpip ?"
    assert any(line.split()[:1] == ["addr"] and "address management" in line for line in first)
    second = help_out[1].splitlines()
    assert "<cr>" in second[-1] and any(line.split()[:1] == ["|"] for line in second)
    assert [line for line, _ in rec.calls] == ["dpip addr show "]     # no "?" got in


def test_question_mark_in_view_mode_hides_configuration_commands():
    printed, _, _ = session("?" + CTRL_U + "dpip addr ?" + CTRL_U)
    top = [line.split()[0] for line in printed[0].splitlines()[1:]]
    assert "enable" in top and "show" in top and "dpip" in top
    assert "dataplane" not in top and "username" not in top
    assert [line.split()[0] for line in printed[1].splitlines()[1:]] == ["show"]


def test_question_mark_after_a_bad_word():
    printed, _, _ = session("frob ?" + CTRL_U)
    assert printed[0].splitlines()[1] == "% Unrecognized command"


def test_question_mark_inside_quotes_is_a_question_mark():
    _, rec, _ = session('dpip addr show dev "a?b"\r')
    assert rec.calls[0][0] == 'dpip addr show dev "a?b"'


def test_tab_completes_words_and_port_names():
    _, rec, _ = session("dp\tad\tsh\tdev dp\t1\r")
    assert rec.calls[0][0] == "dpip addr show dev dpdk1"
    assert rec.calls[0][1]["ok"]


@pytest.fixture
def admin_config():
    m = make_model()
    ctx = Context(m, host="lb")
    open_shell(ctx)
    for line in ("enable", "configure", "ipvsadm -A -t 10.0.0.100:80 -s rr",
                 "ipvsadm -A -u 10.0.0.100:53",
                 "ipvsadm -a -t 10.0.0.100:80 -r 192.168.100.2:80 -b",
                 "ipvsadm -a -t 10.0.0.100:80 -r 192.168.100.3:8080 -b",
                 "dpip addr add 192.168.100.254/32 dev dpdk0 sapool"):
        assert execute(ctx, line)["ok"], line
    return ctx


def test_completion_offers_names_that_exist(admin_config):
    ctx = admin_config
    shell = Shell(LocalTransport(ctx), output=DummyOutput(), write=lambda t: None)
    comp = _Completer(shell)

    def texts(text):
        return [c.text.strip() for c in comp.get_completions(Document(text), CompleteEvent())]
    assert texts("dpip addr show dev ") == ["dpdk0", "dpdk1"]                # no WORD placeholder
    assert texts("dpip addr show dev dpdk") == ["dpdk0", "dpdk1"]
    assert texts("ipvsadm -L -t ") == ["10.0.0.100:80"]
    assert texts("ipvsadm -L -u ") == ["10.0.0.100:53"]
    assert texts("ipvsadm -d -t 10.0.0.100:80 -r ") == ["192.168.100.2:80", "192.168.100.3:8080"]
    assert texts("ipvsadm -P -t 10.0.0.100:80 -z ") == ["192.168.100.254"]
    assert texts("dpip addr del ") == ["10.0.0.100/32", "192.168.100.200/24",
                                       "192.168.100.254/32"]
    assert texts("sh") == ["show"]
    assert texts("show ") == ["bfd", "bgp", "configuration", "dataplane", "interface", "ip",
                              "metrics",
                              "privilege", "routing", "running-config", "ssh",
                              "startup-config", "sync", "users", "version", "vrrp"]
    assert texts("sh ip vs ") == ["connections", "health", "rate", "stats", "timeout", "|"]
    assert texts("dpip addr show |") == ["|"]
    assert texts("dpip addr show | ") == ["begin", "count", "exclude", "include", "json",
                                          "section"]
    assert texts("dpip addr show dev \"dp") == []
    assert texts("frobnicate ") == []


def test_sections_complete_what_they_edit(admin_config):
    ctx = admin_config
    shell = Shell(LocalTransport(ctx), output=DummyOutput(), write=lambda t: None)
    comp = _Completer(shell)

    def texts(text):
        return [c.text.strip() for c in comp.get_completions(Document(text), CompleteEvent())]
    assert texts("virtual-server tcp ") == ["10.0.0.100:80"]
    assert texts("virtual-server udp ") == ["10.0.0.100:53"]
    assert texts("interface ") == ["dpdk0", "dpdk1"]
    assert execute(ctx, "virtual-server udp 10.0.0.100:53")["prompt"] == "lb(config-vs)#"
    assert execute(ctx, "real-server 192.168.100.9:53 mode fnat")["ok"]
    assert texts("no real-server ") == ["192.168.100.9:53"]             # this service's only
    assert execute(ctx, "virtual-server tcp 10.0.0.100:80")["ok"]
    assert texts("no real-server ") == ["192.168.100.2:80", "192.168.100.3:8080"]
    assert set(texts("real-server 192.168.100.5:80 mode ")) == set(ctx.model.services.modes)
    assert set(texts("scheduler ")) == set(ctx.model.services.schedulers)
    assert {"real-server", "scheduler", "local-address", "persistent", "exit", "end"} <= \
        set(texts(""))
    assert execute(ctx, "exit")["prompt"] == "lb(config)#"


def test_a_typed_session_through_the_sections(tmp_path):
    """Whole lines typed into prompt_toolkit: sections, `?` in one, a commit, the diff."""
    from rlb.control.commit import Store
    m = make_model()
    m.store = Store(str(tmp_path / "commits"))
    printed, rec, _ = session(
        "enable\rconfigure\rvirtual-server tcp 10.0.0.100:80\rreal-server ?" + CTRL_U +
        "scheduler rr\rreal-server 192.168.100.2 mode fnat weight 2\r"
        "local-address 192.168.100.201 dev dpdk0\rexit\rinterface dpdk1\r"
        "ip neighbor 10.0.0.9 52:54:00:00:00:09\rshow configuration diff\rcommit\r"
        + CTRL_Z + "show running-config\r", m)
    assert prompts(rec) == ["lb#", "lb(config)#", "lb(config-vs)#", "lb(config-vs)#",
                            "lb(config-vs)#", "lb(config-vs)#", "lb(config)#",
                            "lb(config-if)#", "lb(config-if)#", "lb(config-if)#",
                            "lb(config-if)#", "lb#", "lb#"]         # commit stays in the section
    helped = next(p for p in printed if p.startswith("lb(config-vs)# real-server ?"))
    assert "A.B.C.D:PORT" in helped
    assert all(reply["ok"] for _, reply in rec.calls), rec.calls
    running = rec.calls[-1][1]["text"].splitlines()
    i = running.index("virtual-server tcp 10.0.0.100:80")
    assert running[i + 1:i + 4] == [" scheduler rr", " local-address 192.168.100.201 dev dpdk0",
                                    " real-server 192.168.100.2:80 mode fnat weight 2"]
    assert " ip neighbor 10.0.0.9 52:54:00:00:00:09" in running
    assert m.services.table[(6, IPv4Interface("10.0.0.100/32").ip, 80)].sched == "rr"


def test_completion_carries_the_help(admin_config):
    shell = Shell(LocalTransport(admin_config), output=DummyOutput(), write=lambda t: None)
    got = {c.text: c.display_meta_text for c in
           _Completer(shell).get_completions(Document("ipvsadm -"), CompleteEvent())}
    assert got["-A "] == "Add a virtual service" and got["-L "] == "List the table"


# ------------------------------------------------------------------ filters


def test_include_exclude_json():
    printed, rec, ctx = session("dpip addr show | include dpdk0\r"
                                "dpip addr show | exclude valid_lft\r"
                                "dpip addr show | json\r"
                                "dpip addr show | json | include \"addr\"\r")
    assert printed[0] == "inet 192.168.100.200/24 scope global dpdk0"
    assert printed[1].splitlines() == ["inet 10.0.0.100/32 scope global dpdk1",
                                       "inet 192.168.100.200/24 scope global dpdk0"]
    data = execute(Context(ctx.model), "dpip addr show")["data"]
    assert printed[2] == json.dumps(data, indent=2, sort_keys=True)
    assert json.loads(printed[2]) == data
    assert printed[3].splitlines() == ['    "addr": "10.0.0.100/32",',
                                       '    "addr": "192.168.100.200/24",']


SHOW_LINES = ["dpip addr show", "dpip route show", "dpip neigh show", "dpip link show",
              "dpip -s link show", "ipvsadm", "ipvsadm -Ln", "ipvsadm -L --stats", "ipvsadm -Lnc",
              "ipvsadm -L --timeout", "ipvsadm -G", "show users", "show ssh", "show privilege",
              "show startup-config", "terminal length 24"]


@pytest.mark.parametrize("line", SHOW_LINES)
def test_json_of_every_show_is_its_data_sorted(admin_config, line):
    plain = execute(admin_config, line)
    assert plain["ok"], plain
    piped = execute(admin_config, line + " | json")
    assert piped["ok"] and piped["data"] == plain["data"]
    assert piped["text"] == json.dumps(plain["data"], indent=2, sort_keys=True, default=str)
    assert json.loads(piped["text"]) == json.loads(json.dumps(plain["data"], default=str))


def test_every_readonly_command_is_in_the_list_above():
    """The json test covers each show command (a new one must be added there)."""
    heads = {line.split()[0] for line in SHOW_LINES}
    for cmd in g.commands("exec"):
        if cmd.readonly:
            assert cmd.definition.split()[0] in heads, cmd.definition


# ---------------------------------------------------------------- bad input

BAD = ["frobnicate", "dpip addr ad", "dpip", '"unterminated', "\x01\x02 dpip", "x" * 5000,
       "dpip addr show | frob", "dpip addr show |", "| json", "dpip addr show | include (a+)+$",
       "dpip addr show | include [", "dpip addr show | include " + "a" * 300,
       "enable", "configure", "dpip addr add 999.1.1.1/24 dev dpdk0", "end",
       "dpip addr add 10.0.0.100/32 dev dpdk1", "\ufffd\ufeff\u202e",
       "dpip addr show | json | json",
       "\x1b\x1b[99~\x00garbage\x7f"]


def test_bad_input_gets_a_router_message_never_a_traceback():
    printed, rec, ctx = session("".join(line + "\r" for line in BAD))
    # control characters are keys to the line editor: what reaches the daemon may differ
    assert len(rec.calls) == len(BAD) - 1                 # the 5000-char line never left
    for text in printed:
        assert "Traceback" not in text and "internal error" not in text, text
    errors = [reply["error"] for _, reply in rec.calls if not reply["ok"]]
    assert all(e.startswith("%") for e in errors), errors
    caret = rec.calls[1][1]["error"].splitlines()
    assert caret == ["% Invalid input detected at '^' marker.", "dpip addr ad", " " * 10 + "^"]
    pipe = [r["error"] for line, r in rec.calls if line == "dpip addr show | frob"][0]
    assert pipe.splitlines()[1:] == ["dpip addr show | frob", " " * 17 + "^"]
    assert any("too costly" in e for e in errors) and any("Line too long" in p for p in printed)
    assert [str(a.iface) for a in ctx.model.addresses] == ["10.0.0.100/32", "192.168.100.200/24"]


def test_a_line_that_fails_leaves_the_model_as_it_was():
    m = make_model()
    before = (list(m.addresses), dict(m.routes))
    session("enable\rconfigure\rdpip route add 10.9.0.0/16 via 9.9.9.9 dev dpdk0\r"
            "dpip addr add 10.0.0.1/24 dev dpdk9\rdpip addr add 10.0.0.1/24 dev dpdk0 | frob\r"
            "dpip addr add 10.0.0.1/24 dev dpdk0 | include [\r"
            "dpip addr add 10.0.0.1/24 dev dpdk0 | include (foo|bar)*z\r", m)
    assert (list(m.addresses), dict(m.routes)) == before


# ------------------------------------------------------------------ privilege


def test_view_user_may_look_but_not_enable_or_change():
    printed, rec, ctx = session("enable\rdpip addr add 10.0.0.7/24 dev dpdk1\r"
                                "show privilege\rdpip addr show | include dpdk1\r?",
                                privilege=VIEWER)
    errors = [reply.get("error") for _, reply in rec.calls]
    assert errors[0] == errors[1] == "% Permission denied: user tester has view privilege"
    assert rec.calls[2][1]["text"] == "Current privilege level is view (user tester)"
    assert rec.calls[3][1]["text"] == "inet 10.0.0.100/32 scope global dpdk1"
    assert ctx.node == "view" and len(ctx.model.addresses) == 2
    offered = [line.split()[0] for line in printed[-1].splitlines()[1:]]
    assert offered == ["dpip", "exit", "ipvsadm", "show", "terminal"]


# ------------------------------------------------------------- paging, history


def long_model(n=100):
    m = make_model()
    for i in range(n):
        m.add_route(IPv4Network(f"10.{i}.0.0/16"), "dpdk0")
    return m


def test_long_output_is_paged():
    # DummyOutput is 40 rows of 80 columns: 39 rows a page, and a route line (95
    # characters) wraps onto two; space: next page, Enter: one line, q: stop
    printed, _, _ = session("dpip route show\r \rq", long_model(), pager=True)
    assert [len(p.splitlines()) for p in printed] == [19, 19, 1]


def test_terminal_length_and_width_set_the_page():
    printed, rec, ctx = session("terminal width 200\rterminal length 11\rdpip route show\r \rq",
                                long_model(), pager=True)
    assert (ctx.length, ctx.width) == (11, 200)
    assert rec.calls[1][1]["rows"] == 11 and rec.calls[1][1]["columns"] == 200
    assert [len(p.splitlines()) for p in printed] == [10, 10, 1]


def test_terminal_length_0_is_no_paging():
    printed, _, _ = session("terminal length 0\rdpip route show\r", long_model(), pager=True)
    assert len(printed) == 1 and len(printed[0].splitlines()) == 103


def test_a_page_counts_the_rows_that_long_lines_wrap_to():
    # 100 characters on DummyOutput's 80 columns: two rows a line, 19 lines a page
    printed = []

    async def main():
        with create_pipe_input() as inp:
            shell = Shell(None, input=inp, output=DummyOutput(), write=printed.append)
            inp.send_text(" \rq")
            await asyncio.wait_for(shell.show("\n".join(["x" * 100] * 50)), 10)
    asyncio.run(main())
    assert [len(p.splitlines()) for p in printed] == [19, 19, 1]


def test_without_pager_everything_at_once():
    printed, _, _ = session("dpip route show\r", long_model(), pager=False)
    assert len(printed) == 1 and len(printed[0].splitlines()) == 103


def test_history_persists_across_sessions(tmp_path):
    path = str(tmp_path / "hist")
    session("dpip route show\r", history=QuietFileHistory(path))
    assert "dpip route show" in open(path).read()
    _, rec, _ = session(UP + "\r", history=QuietFileHistory(path))
    assert [line for line, _ in rec.calls] == ["dpip route show"]


def test_history_that_cannot_be_written_costs_only_the_history(tmp_path):
    _, rec, _ = session("dpip route show\r", history=QuietFileHistory(str(tmp_path / "no/such")))
    assert rec.calls[0][1]["ok"]


# ------------------------------------------------- over the real control socket


@pytest.fixture
def socket_server(monkeypatch):
    """A ControlServer on RUN_DIR/t.sock in a thread of its own (the shell's client blocks)."""
    d = tempfile.mkdtemp(prefix="rlbt-", dir="/tmp")
    monkeypatch.setattr(paths, "RUN_DIR", d)
    from rlb.control.commit import Store
    model, loop, ready = make_model(), asyncio.new_event_loop(), threading.Event()
    model.store = Store(os.path.join(d, "commits"), startup=os.path.join(d, "rlb.conf"))
    server = ControlServer(model, os.path.join(d, "t.sock"), host="lb")

    def run():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert ready.wait(5)
    yield model, d
    asyncio.run_coroutine_threadsafe(server.stop(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    t.join(5)
    shutil.rmtree(d, ignore_errors=True)


def test_a_session_over_the_socket(socket_server):
    model, _ = socket_server
    printed = []
    with Client("t", 5) as client:
        rec = Recorder(SocketTransport(client))

        async def main():
            with create_pipe_input() as inp:
                shell = Shell(rec, input=inp, output=DummyOutput(), write=printed.append,
                              pager=False)
                inp.send_text("en\rconf t\rdpip addr add 10.0.0.8/24 dev dp\t1\rdpip ?"
                              + CTRL_U + "commit\rend\rexit\r")
                assert await asyncio.wait_for(shell.run(), 10) == 0
        asyncio.run(main())
        assert [line for line, _ in rec.calls] == [
            "en", "conf t", "dpip addr add 10.0.0.8/24 dev dpdk1", "commit", "end", "exit"]
        assert prompts(rec) == ["lb#", "lb(config)#", "lb(config)#", "lb(config)#", "lb#", "lb#"]
        assert rec.calls[-1][1]["closed"] is True
        with pytest.raises(Exception):
            client.call("dpip addr show")         # the daemon closed the session
    assert "10.0.0.8/24" in [str(a.iface) for a in model.addresses]
    assert any(p.startswith("lb(config)# dpip ?") for p in printed)


def test_protocol_shell_and_complete_requests(socket_server):
    with Client("t", 5) as client:
        assert client.request({"complete": "dpip addr sh"}) == {
            "ok": True, "data": [["show", "Show entries"]]}
        assert client.call("dpip addr add 10.0.0.9/24 dev dpdk1")["ok"]     # -c style: exec
        hello = client.request({"shell": True})
        assert hello["ok"] and hello["node"] == "view" and hello["prompt"] == "lb>"
        assert hello["privilege"] == "admin" and hello["user"]
        reply = client.call("dpip addr add 10.0.0.10/24 dev dpdk1")
        assert not reply["ok"] and reply["prompt"] == "lb>"
        assert [c[0] for c in client.request({"complete": ""})["data"]] == [
            "dpip", "enable", "exit", "ipvsadm", "show", "terminal"]
        for bad in ({"complete": 5}, {"shell": 1}, {"other": "x"}):
            assert client.request(bad) == {"ok": False, "error": "% malformed request"}


def test_rlb_without_a_command_runs_stdin_as_a_session(socket_server):
    model, run_dir = socket_server
    env = dict(os.environ, RLB_RUN_DIR=run_dir)
    lines = ("show privilege\ndpip addr add 10.0.0.11/24 dev dpdk1\nenable\n"
             "dpip addr add 10.0.0.11/24 dev dpdk1\ndpip addr show | include 10.0.0.11\n")
    r = subprocess.run([sys.executable, "-m", "rlb", "-N", "t"], input=lines.encode() + b"\xff\n",
                       capture_output=True, timeout=60, env=env)
    out, err = r.stdout.decode(), r.stderr.decode()
    assert r.returncode == 1, err
    assert "Current privilege level is admin" in out
    assert "inet 10.0.0.11/24 scope global dpdk1" in out
    assert "`enable` first" in err and "Invalid character" in err
    assert "Traceback" not in err
    assert "10.0.0.11/24" in [str(a.iface) for a in model.addresses]


def test_rlb_shell_to_an_instance_that_is_not_running(tmp_path):
    env = dict(os.environ, RLB_RUN_DIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "rlb", "-N", "nosuch"], capture_output=True,
                       text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and "cannot reach instance 'nosuch'" in r.stderr


def test_script_reads_bytes_and_stops_at_exit(capsys):
    ctx = Context(make_model(), host="lb")
    rc = script(LocalTransport(ctx), io.BytesIO(b"dpip addr show | include dpdk0\n\nexit\n"
                                                b"dpip route show\n"))
    out = capsys.readouterr()
    assert rc == 0 and out.out == "inet 192.168.100.200/24 scope global dpdk0\n"


# ------------------------------------------------- notices from the daemon (issue 9, item 8)

ROLLED_BACK = "commit confirmed by tester was not confirmed"


def test_the_rollback_of_commit_confirmed_is_printed_at_the_prompt(tmp_path):
    """In the daemon (the ssh shell's transport): the session sits at its prompt when
    the unconfirmed commit rolls back; the notice is printed above the prompt."""
    from rlb.control.commit import Store
    m = make_model()
    m.store = Store(str(tmp_path / "commits"))
    ctx = Context(m, host="lb", user="tester")
    printed = []

    async def main():
        with create_pipe_input() as inp:
            shell = Shell(Recorder(LocalTransport(ctx)), input=inp, output=DummyOutput(),
                          write=printed.append, pager=False)
            inp.send_text("enable\rconfigure\rip route 172.16.0.0/12 dev dpdk0\r"
                          "commit confirmed 1 seconds\r")
            task = asyncio.ensure_future(shell.run())
            await asyncio.sleep(1.8)
            inp.send_text("abort\rexit\r")
            assert await asyncio.wait_for(task, 10) == 0
    asyncio.run(main())
    notice = [p for p in printed if ROLLED_BACK in p]
    assert len(notice) == 1 and "`update`" in notice[0]
    assert m.store.sessions == set()                # the session is gone: not told any more
    assert ctx.via == "ssh" and m.store.history()[-1]["source"] == "ssh"


def test_a_session_over_the_socket_is_told_while_it_waits(socket_server):
    model, _ = socket_server
    printed = []
    with Client("t", 5) as waiting, Client("t", 5) as other:
        async def main():
            with create_pipe_input() as inp:
                shell = Shell(SocketTransport(waiting), input=inp, output=DummyOutput(),
                              write=printed.append, pager=False)
                task = asyncio.ensure_future(shell.run())
                await asyncio.sleep(0.3)
                # another session commits, unconfirmed; this one only waits at its prompt
                assert other.request({"shell": True})["ok"]
                for line in ("enable", "configure", "ip route 172.16.0.0/12 dev dpdk0",
                             "commit confirmed 1 seconds"):
                    assert other.call(line)["ok"], line
                await asyncio.sleep(2)
                assert any("was not confirmed" in p for p in printed), printed
                inp.send_text("enable\rshow ip route\rexit\r")
                assert await asyncio.wait_for(task, 10) == 0
        asyncio.run(main())
        # the other session got it in the stream too, before its next reply
        assert other.call("show running-config")["ok"]
        assert any("was not confirmed" in n for n in other.notices)
    assert sum("was not confirmed" in p for p in printed) == 1
    assert "172.16.0.0" not in "".join(str(r.prefix) for r in model.routes.values())


def test_an_ssh_session_is_told_on_its_terminal_while_it_waits(tmp_path):
    """Over real ssh (asyncssh client, the daemon's ssh server): alice waits at lb#;
    another session's unconfirmed commit rolls back; the notice appears on her screen
    with nothing typed, and her prompt is drawn again after it."""
    from test_ssh import connect, run, term

    async def scenario(svc):
        async with connect(svc) as conn:
            t = await term(conn)
            await t.line("enable", "lb#")
            other = Context(svc.model, host="lb", user="carol")
            open_shell(other)
            for line in ("enable", "configure", "ip route 172.16.0.0/12 dev dpdk0",
                         "commit confirmed 1 seconds"):
                assert execute(other, line)["ok"], line
            screen = await t.until("was not confirmed", timeout=5)
            assert "commit confirmed by carol" in screen, screen
            after = screen.split("was not confirmed", 1)[1]
            assert "lb#" in after or "lb#" in await t.until("lb#", timeout=5)   # prompt again
            await t.line("show ip route", "lb#")                    # and it still works
            t.type("exit\r")
            await asyncio.wait_for(t.proc.wait_closed(), 5)
        assert svc.model.store.sessions == set()
    run(tmp_path, scenario)
