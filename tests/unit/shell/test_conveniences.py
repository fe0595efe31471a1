"""What an IOS/FRR user types without thinking: `| count`, `| begin`, `| section`, `do CMD`,
`show version`, `show startup-config`, `clear ip vs counters`, `show users` of every
session, and `?` explaining each mode and scheduler (issue 9, item 12)."""
import asyncio
import json
import re

from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from test_repl import make_model, socket_server  # noqa: F401  (a fixture)

from rlb import plugins
from rlb.control.client import Client
from rlb.control.commit import Store
from rlb.control.server import complete, execute, open_shell
from rlb.commands import render, show
from rlb.commands.base import Context
from rlb.commands.grammar import Grammar
from rlb.shell.repl import Shell, SocketTransport
from support.engine import FakeEngine

RUNNING = """\
interface dpdk0
 ip address 192.168.100.200/24
!
interface dpdk1
 ip address 10.0.0.100/32
!
virtual-server tcp 10.0.0.100:80
 scheduler rr
 real-server 192.168.100.2:80 mode fnat weight 1
!"""


def shell(model=None, tmp_path=None):
    m = model or make_model()
    if tmp_path is not None:
        m.store = Store(str(tmp_path / "commits"), startup=str(tmp_path / "rlb.conf"))
    ctx = Context(m, host="lb", user="tester")
    open_shell(ctx)
    return ctx


def ok(ctx, *lines):
    for line in lines:
        reply = execute(ctx, line)
        assert reply["ok"], f"{line}: {reply.get('error')}"
    return reply


# ------------------------------------------------------------------ the filters


def test_section_keeps_the_matching_lines_and_what_is_indented_under_them():
    assert render.section(RUNNING, "interface dpdk1").splitlines() == [
        "interface dpdk1", " ip address 10.0.0.100/32"]
    assert render.section(RUNNING, "^virtual") == "\n".join(RUNNING.splitlines()[6:9])
    # a matching child brings only itself (and its own children)
    assert render.section(RUNNING, "real-server") == " real-server 192.168.100.2:80 mode fnat weight 1"
    assert render.section(RUNNING, "nothing") == ""


def test_begin_starts_at_the_first_match():
    assert render.begin(RUNNING, "dpdk1").splitlines()[0] == "interface dpdk1"
    assert render.begin(RUNNING, "dpdk") == RUNNING
    assert render.begin(RUNNING, "nothing") == ""


def test_count_counts_lines_or_matching_lines():
    assert render.count(RUNNING) == 10
    assert render.count(RUNNING, "^ ") == 4
    assert render.count("") == 0


def test_filters_compose_in_the_shell():
    ctx = shell()
    ok(ctx, "enable", "ipvsadm -A -t 10.0.0.100:80 -s rr",
       "ipvsadm -a -t 10.0.0.100:80 -r 192.168.100.2:80 -b")
    text = ok(ctx, "show running-config")["text"]
    got = ok(ctx, "show running-config | section virtual-server")
    assert got["text"] == render.section(text, "virtual-server") and "scheduler rr" in got["text"]
    assert ok(ctx, "show running-config | section virtual | count")["text"] == \
        str(len(got["text"].splitlines()))
    assert ok(ctx, "show running-config | begin virtual | include real-server")["text"] == \
        " real-server 192.168.100.2:80 mode fnat weight 1"
    counted = ok(ctx, "show running-config | count | json")
    assert json.loads(counted["text"]) == len(text.splitlines())
    assert ok(ctx, "show running-config | count ^ [a-z]")["text"] == \
        str(render.count(text, "^ [a-z]")) != "0"
    assert ok(ctx, "dpip addr show | exclude . | count")["text"] == "0"


def test_bad_filters_are_refused_before_anything_runs():
    ctx = shell()
    ok(ctx, "enable")
    for line in ("dpip addr add 10.0.0.9/24 dev dpdk0 | begin (", "show ip vs | section",
                 "dpip addr add 10.0.0.9/24 dev dpdk0 | count (a*)*"):
        reply = execute(ctx, line)
        assert not reply["ok"] and "Traceback" not in reply["error"], line
    assert "10.0.0.9/24" not in [str(a.iface) for a in ctx.model.addresses]


# ------------------------------------------------------------------------ do


def test_do_runs_exec_commands_in_every_configuration_node(tmp_path):
    ctx = shell(tmp_path=tmp_path)
    ok(ctx, "enable", "configure")
    for node_line, prompt in (("interface dpdk0", "lb(config-if)#"),
                              ("virtual-server tcp 10.0.0.100:80", "lb(config-vs)#"),
                              ("exit", "lb(config)#"), ("dataplane", "lb(dataplane)#")):
        ok(ctx, node_line)
        reply = ok(ctx, "do show ip address")
        assert "10.0.0.100/32" in reply["text"] and reply["prompt"] == prompt
        assert ok(ctx, "do show ip address | include inet | count")["text"] == "2"


def test_do_sees_the_running_state_and_saves_it(tmp_path):
    ctx = shell(tmp_path=tmp_path)
    ok(ctx, "enable", "configure", "virtual-server tcp 10.0.0.100:80")
    assert "virtual-server" in ok(ctx, "do show configuration")["text"]       # the candidate
    assert "virtual-server" not in ok(ctx, "do show running-config")["text"]
    ok(ctx, "do write memory")
    assert (tmp_path / "rlb.conf").read_text() == ok(ctx, "do show running-config")["text"] + "\n"
    assert ctx.node == "config-vs" and ctx.candidate.changed()


def test_do_refuses_changes_and_says_why():
    ctx = shell()
    ok(ctx, "enable", "configure")
    for line in ("do dpip addr add 10.0.0.9/24 dev dpdk0", "do configure",
                 "do ipvsadm -A -t 10.0.0.100:80"):
        reply = execute(ctx, line)
        assert not reply["ok"] and "change no configuration" in reply["error"], line
    assert len(ctx.running.addresses) == 2 and not ctx.running.services.table
    reply = execute(ctx, "do show frobnicate")
    lines = reply["error"].splitlines()
    assert lines[0] == "% Invalid input detected at '^' marker."
    assert lines[1] == "do show frobnicate" and lines[2].index("^") == len("do show ")
    assert "Incomplete" in execute(ctx, "do show ip")["error"]
    assert not execute(ctx, "do")["ok"]


def test_do_exists_only_in_configuration_modes():
    ctx = shell()
    assert not execute(ctx, "do show version")["ok"]
    ok(ctx, "enable")
    assert not execute(ctx, "do show version")["ok"]


def test_do_completes_exec_commands():
    ctx = shell()
    ok(ctx, "enable", "configure", "interface dpdk0")
    words = [t for t, _ in complete(ctx, "do ")]
    assert {"show", "clear", "write", "terminal"} <= set(words)
    assert "configure" not in words and "interface" not in words
    assert complete(ctx, "do sh") == [("show", "Show entries")]
    assert ("version", show.g._words["version"]) in complete(ctx, "do show ")
    assert ("|", "Output modifiers") in complete(ctx, "do show version ")


# --------------------------------------------------- show version, startup-config


def test_show_version():
    import rlb.core.dataplane  # noqa: F401  (the data plane's DPDK is in this process)
    ctx = shell()
    reply = ok(ctx, "show version")
    data = reply["data"]
    assert re.fullmatch(r"DPDK \d+\.\d+.*", data["dpdk"]), data["dpdk"]
    lines = reply["text"].splitlines()
    assert lines[0].startswith(f"rlb {data['rlb']}") and lines[1] == data["dpdk"]
    assert data["python"] in lines[2]
    assert re.search(r"uptime is \d+ day\(s\), \d\d:\d\d:\d\d", reply["text"])
    assert "data plane not running" in reply["text"]
    assert data["workers"] == ctx.model.settings.workers
    assert [p["name"] for p in data["ports"]] == ["dpdk0", "dpdk1"]


def test_show_startup_config_is_the_file_write_memory_wrote(tmp_path):
    ctx = shell(tmp_path=tmp_path)
    ok(ctx, "enable")
    assert ok(ctx, "show startup-config")["text"] == "% no startup configuration"
    ok(ctx, "ipvsadm -A -t 10.0.0.100:80", "write memory")
    reply = ok(ctx, "show startup-config")
    assert reply["text"] == (tmp_path / "rlb.conf").read_text().rstrip("\n")
    assert "virtual-server tcp 10.0.0.100:80" in reply["text"]
    assert reply["data"]["path"] == str(tmp_path / "rlb.conf")
    ok(ctx, "ipvsadm -D -t 10.0.0.100:80")                  # not saved: the file stays
    assert "virtual-server" in ok(ctx, "show startup-config")["text"]
    no_store = shell()
    assert ok(no_store, "show startup-config")["text"] == "% no startup configuration"


# ------------------------------------------------------------ clear ip vs counters


class ZeroEngine(FakeEngine):
    """Keeps the slots `zero` was given."""

    def __init__(self):
        super().__init__()
        self.zeroed = []

    def zero_stats(self, svc_slot=None):
        self.zeroed.append(svc_slot)


def test_clear_ip_vs_counters_of_all_or_one_service():
    ctx = shell()
    ok(ctx, "enable", "ipvsadm -A -t 10.0.0.100:80", "ipvsadm -A -u 10.0.0.100:53")
    engine = ctx.model.engine = ZeroEngine()
    try:
        assert ok(ctx, "clear ip vs counters")["data"] == {"zeroed": "all"}
        svc = ctx.model.services.table
        one = ok(ctx, "clear ip vs counters udp 10.0.0.100:53")["data"]["zeroed"]
        udp = next(s for s in svc.values() if s.vport == 53)
        assert engine.zeroed == [None, udp.slot] and one == str(udp)
        reply = execute(ctx, "clear ip vs counters tcp 10.0.0.100:81")
        assert not reply["ok"] and engine.zeroed == [None, udp.slot]
        # operational: from configuration mode it acts on the running instance
        ok(ctx, "configure", "clear ip vs counters tcp 10.0.0.100:80")
        assert not ctx.candidate.changed() and len(engine.zeroed) == 3
    finally:
        ctx.running.engine = None
    viewer = Context(ctx.running, user="v", privilege="view")
    open_shell(viewer)
    assert "Permission denied" in execute(viewer, "clear ip vs counters")["error"]


# ------------------------------------------------------------------ show users


def test_show_users_lists_every_session(socket_server):  # noqa: F811
    model, _ = socket_server
    with Client("t", 5) as rlb_c, Client("t", 5) as console:
        assert console.request({"shell": True, "tty": "pts/7"})["ok"]
        assert rlb_c.call("show version")["ok"]
        ok(Context(model), "username alice privilege admin")
        ssh_ctx = Context(model, user="alice", host="lb")
        open_shell(ssh_ctx)
        ssh = model.shell_accounts.open_session("alice", "admin", "10.9.9.9", ctx=ssh_ctx)
        try:
            console.call("enable")
            execute(ssh_ctx, "enable")
            execute(ssh_ctx, "configure")
            reply = console.call("show users")
        finally:
            model.shell_accounts.close_session(ssh)
        rows = reply["data"]["sessions"]
        by_line = {r["line"]: r for r in rows}
        assert sorted(by_line) == ["console", "socket", "ssh"]
        assert by_line["console"]["self"] and not by_line["socket"]["self"]
        assert by_line["console"]["peer"].startswith("pts/7 pid ")
        assert by_line["socket"]["peer"] == f"pid {by_line['console']['peer'].split()[-1]}"
        assert by_line["ssh"]["peer"] == "10.9.9.9" and by_line["ssh"]["mode"] == "config"
        assert by_line["console"]["mode"] == "enable" and by_line["socket"]["mode"] == "exec"
        text = reply["text"].splitlines()
        assert text[0].split() == ["Line", "User", "Mode", "Source", "Since", "Idle"]
        mine = [line for line in text if line.startswith("*")]
        assert len(mine) == 1 and "console" in mine[0] and "enable" in mine[0]
        assert re.search(r"ssh +alice +config +10\.9\.9\.9 .* 00:00:0\d$", reply["text"], re.MULTILINE)
        assert re.search(r"^alice +admin +0 +1$", reply["text"], re.MULTILINE)
    # closed connections leave the list
    for _ in range(50):
        if not model.shell_accounts.sessions:
            break
        asyncio.run(asyncio.sleep(0.02))
    assert model.shell_accounts.sessions == []


def test_a_shell_on_a_terminal_sends_its_tty(socket_server):  # noqa: F811
    with Client("t", 5) as client:
        printed = []

        async def main():
            with create_pipe_input() as inp:
                sh = Shell(SocketTransport(client, "pts/3"), input=inp, output=DummyOutput(),
                           write=printed.append, pager=False)
                inp.send_text("show users | include console\rexit\r")
                assert await asyncio.wait_for(sh.run(), 10) == 0
        asyncio.run(main())
    assert re.match(r"\* +console +\S+ +view +pts/3 pid \d+", printed[0]), printed
    with Client("t", 5) as client:
        assert client.request({"shell": True, "tty": 5}) == {"ok": False,
                                                            "error": "% malformed request"}


# -------------------------------------------------------- help for each choice


def test_mode_and_scheduler_choices_explain_themselves():
    ctx = shell()
    ok(ctx, "enable", "configure", "virtual-server tcp 10.0.0.100:80")
    helps = dict(complete(ctx, "real-server 192.168.100.2:80 mode "))
    for name, mode in plugins.modes().items():
        assert helps[name] == f"{mode.display} (ipvsadm {mode.flag})"
    helps = dict(complete(ctx, "scheduler "))
    for name, sched in plugins.schedulers().items():
        assert helps[name] == sched.help
    assert len(set(helps.values())) == len(helps)       # each its own text, not the list
    assert dict(complete(ctx, "scheduler w")) == {"WORD": "Scheduler name",
                                                  "wrr": "Weighted round robin",
                                                  "wlc": "Weighted least connections"}


def test_a_completer_may_give_each_value_its_help():
    gr = Grammar()
    gr.node("exec")
    gr.words(pick="Pick one")
    gr.command("pick WORD$what", node="exec", help={"what": "A thing"})(lambda ctx, what: None)
    gr.completer("what", lambda ctx: [("apple", "A fruit"), "pear", ("bad",), ("x", 1)])
    assert gr.complete("pick ", "exec") == [("WORD", "A thing"), ("apple", "A fruit"),
                                            ("pear", "A thing")]
