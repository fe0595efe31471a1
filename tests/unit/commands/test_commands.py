"""rlb.commands.base and the modules it loads: every command of the one grammar, checked
against its handler, its help, the tutorial's lines, and the rule that command words are
written only here."""
import ast
import inspect
from ipaddress import IPv4Interface
from pathlib import Path

import pytest

from rlb.control.config import check, handler_params, run
from rlb.model.model import PORT, SCOPES, CommandError, Model
from rlb.commands import (base as commands, configure, dpip, ha, health, ipvsadm, ops, routing,
                          show, users)
from rlb.commands.base import Context, Reply, g
from rlb.commands.definition import _Kw, _terminals, _Var
from rlb.commands.grammar import ParseError
from support import samples

ROOT = Path(__file__).resolve().parents[3]

ALL = [cmd for node in g.nodes for cmd in g.commands(node)]
def each_command():
    return [pytest.param(c, id=f"{c.node}: {c.definition}") for c in ALL]


def test_grammar_self_check():
    g.check()


def test_nodes():
    assert {n: g.nodes[n].parent for n in g.nodes} == {
        "exec": None, "dataplane": "exec", "view": "exec", "enable": "exec", "config": "exec",
        "config-if": "config", "config-vs": "config", "config-router": "config",
        "config-router-bgp": "config", "config-vrrp": "config", "pipe": None}
    assert all(g.commands(n) for n in g.nodes)


def test_lineage_is_the_one_walk_up():
    """Where a line is looked for: the declared parents; in the shell and configuration
    mode a section's way up is configuration mode, exec's commands last."""
    assert commands.lineage("config-vs") == ["config-vs", "config", "exec"]
    assert commands.lineage("dataplane") == ["dataplane", "exec"]
    assert commands.lineage("dataplane", True) == ["dataplane", "config", "exec"]
    assert commands.lineage("config-if", True) == ["config-if", "config", "exec"]
    assert commands.lineage("enable", True) == ["enable", "exec"]


@pytest.mark.parametrize("cmd", each_command())
def test_handler_parameters_are_bindings(cmd):
    params = list(inspect.signature(cmd.handler).parameters.values())
    assert params and params[0].name == "ctx"
    # **values: a handler that takes every binding of a derived part of its definition
    # (a check clause's settings, rlb/commands/checks.py), by the bindings' names
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params[:-1])
    assert params[-1].kind in (params[-1].POSITIONAL_OR_KEYWORD, params[-1].VAR_KEYWORD)
    assert handler_params(cmd.handler) <= set(cmd.bindings), (
        f"{cmd.handler.__name__} wants {sorted(handler_params(cmd.handler) - set(cmd.bindings))},"
        f" which {cmd.definition!r} never binds")


def test_handlers_are_distinct_functions_of_the_module():
    # the one exception: `exit` and `end` of the sections are one handler each
    # and `do`, the same in every configuration node
    handlers = [c.handler for c in ALL if c.handler not in (configure._section_exit,
                                                             configure._section_end,
                                                             commands.do_exec)]
    assert len(set(handlers)) == len(handlers)
    assert all(h.__module__ in (commands.__name__, dpip.__name__, ipvsadm.__name__,
                                users.__name__, configure.__name__, show.__name__, health.__name__,
                                routing.__name__, ha.__name__, ops.__name__)
               for h in handlers)


def test_every_keyword_has_help_and_every_help_a_keyword():
    used = {t.word for c in ALL for t in _terminals(c.root) if isinstance(t, _Kw)}
    described = set(g._words)
    assert used <= described, sorted(used - described)
    assert described <= used, f"help for words no command uses: {sorted(described - used)}"
    assert all(g._words[w].strip() for w in described)


def test_every_variable_has_help():
    for c in ALL:
        for t in _terminals(c.root):
            if isinstance(t, _Var):
                assert t.help.strip(), (c.definition, t.bind)


def test_scope_choice_is_the_model_scopes():
    """The scope names are written in the model (= RouteScope) and in the route grammar:
    they must be the same set."""
    for c in ALL:
        words = {t.word for t in _terminals(c.root) if isinstance(t, _Kw) and t.bind == "scope"}
        if words:
            assert words == set(SCOPES), c.definition


# ----------------------------------------------------------- every command runs

SAMPLES = {"A.B.C.D": "10.0.0.2", "A.B.C.D/M": "10.9.0.0/16", "MAC": "52:54:00:00:00:02",
           "A.B.C.D:PORT": "10.0.0.2:80",
           "X:X::X:X": "2001:db8::1", "X:X::X:X/M": "2001:db8::/32", "LINE": "some text"}
WORD_SAMPLES = {"dev": "dpdk0", "name": "dpdk9", "devargs": "net_tap9", "sched": "rr",
                "match": "proto=tcp", "mode": "fnat", "target": "sip",
                # a check clause's settings (rlb/commands/checks.py)
                "interval": "1", "rise": "2", "fall": "2", "slow_start": "5", "port": "80",
                "source": "10.0.0.1", "timeout": "0.5", "path": "/health", "host": "example",
                "status": "200", "regex": "ok", "regex_no_match": "no", "digest": "0" * 32,
                "payload": "00", "require_reply": "any", "command": "true", "dynamic": "no",
                "where": "/run/frr-op", "seconds": "0.5", "password": "secret",
                "expr": "\"tcp port 80\"", "link": "dpdk0", "s1": "dpdk0", "s2": "dpdk1",
                "s3": "dpdk2", "s4": "dpdk3", "primary": "dpdk0"}


def sample_line(node, full):
    """A line of the command's own definition: every optional part (full) or none."""
    return samples.sample_line(node, full, SAMPLES, WORD_SAMPLES)


def fresh_model():
    m = Model()
    m.add_port("dpdk0", "net_tap0")
    m.add_port("dpdk1", "net_tap1")
    m.add_address(IPv4Interface("10.0.0.1/24"), "dpdk0")
    return m


@pytest.mark.parametrize("full", [False, True], ids=["minimal", "full"])
@pytest.mark.parametrize("cmd", each_command())
def test_every_command_runs(cmd, full):
    """A line built from the definition parses to that command and runs without a data
    plane: it succeeds or is refused with a CommandError, never anything else."""
    line = " ".join(sample_line(cmd.root, full))
    match = g.parse(line, node=cmd.node)
    assert match.command is cmd, line
    ctx = Context(fresh_model(), node=cmd.node)
    try:
        reply = run(ctx, line)
    except CommandError:
        return
    except ParseError:          # `do some text`: the line after `do` is no command
        assert cmd.handler is commands.do_exec
        return
    assert isinstance(reply, Reply) and isinstance(reply.text, str)


# ------------------------------------------------------------------ the tutorial

# The `dpip` lines of ../shared/TUTORIAL.md that rlb implements (vlan and tunnel
# devices are not), shell variables replaced by values.
TUTORIAL = [
    ("dpip addr add 10.0.0.100/32 dev dpdk1", "addr_add", {"addr": "10.0.0.100/32", "dev": "dpdk1"}),
    ("dpip route add 10.0.0.0/16 dev dpdk1", "route_add", {"prefix": "10.0.0.0/16", "dev": "dpdk1"}),
    ("dpip route add 192.168.100.0/24 dev dpdk0", "route_add", {"prefix": "192.168.100.0/24"}),
    ("dpip addr add 10.0.0.100/16 dev dpdk1", "addr_add", {"addr": "10.0.0.100/16"}),
    ("dpip route add 172.10.0.2/32 dev dpdk1 scope kni_host", "route_add", {"scope": "kni_host"}),
    ("dpip addr add 192.168.100.254/32 dev dpdk0", "addr_add", {"dev": "dpdk0"}),
    ("dpip addr add 192.168.100.1/24 dev dpdk0", "addr_add", {"addr": "192.168.100.1/24"}),
    ("dpip addr add 10.140.16.48/20 dev dpdk0", "addr_add", {"addr": "10.140.16.48/20"}),
    ("dpip route add default via 10.140.31.254 src 10.140.16.48 dev dpdk0", "route_add",
     {"default": True, "prefix": None, "via": "10.140.31.254", "src": "10.140.16.48"}),
    ("dpip addr add 10.140.31.48/32 dev dpdk0", "addr_add", {}),
    ("dpip addr add 192.168.0.66/24 dev bond0", "addr_add", {"dev": "bond0"}),
    ("dpip addr add 10.140.31.48/20 dev bond0", "addr_add", {}),
    ("dpip addr add 192.168.0.89/32 dev bond0", "addr_add", {}),
    ("dpip addr add 10.0.0.2/24 dev dpdk1 sapool", "addr_add", {"sapool": True}),
    ("dpip addr add 192.168.100.1/24 dev dpdk0", "addr_add", {"sapool": None}),
    ("dpip route add default via 10.0.0.1 dev dpdk1", "route_add", {"via": "10.0.0.1"}),
    ("dpip addr show", "addr_show", {"dev": None}),
    ("dpip route show", "route_show", {"dev": None}),
]


@pytest.mark.parametrize("line, handler, args", TUTORIAL, ids=[t[0] for t in TUTORIAL])
def test_tutorial_lines_parse(line, handler, args):
    m = g.parse(line, node="exec")
    assert m.command.handler.__name__ == handler
    for k, v in args.items():
        got = m.args[k]
        assert (str(got) if got is not None and not isinstance(got, bool) else got) == v, k


def test_tutorial_fnat_two_arm_script_applies():
    text = ("dataplane\n port dpdk0 net_tap0\n port dpdk1 net_tap1\n!\n"
            + "\n".join(line for line, _, _ in TUTORIAL[:3]))
    model = check(list(enumerate(text.splitlines(), 1)), "fnat.conf")
    assert len(model.routes) == 3


@pytest.mark.parametrize("line, dev", [
    ("dpip -s link show", None),
    ("dpip -s link show dpdk0", "dpdk0"),
    ("dpip link show dpdk0 -s", "dpdk0"),
    ("dpip link show -s", None),
])
def test_link_show_stats_either_side(line, dev):
    m = g.parse(line, node="exec")
    assert m.args["stats"] is True and m.args["dev"] == dev


def test_link_show_without_stats():
    m = g.parse("dpip link show dpdk1", node="exec")
    assert not m.args["stats"] and m.args["dev"] == "dpdk1"


def test_abbreviations_and_section_lines():
    assert g.parse("dpip ro sh", node="exec").command.handler is dpip.route_show
    assert g.parse("no busy-poll", node="dataplane").args["no"] is True
    assert g.parse("busy-poll", node="dataplane").args["no"] is None


def test_lab_config_passes_check():
    from rlb.lab import procs, topologies
    for topo in topologies.TOPOLOGIES:
        text = procs.lb_config(topo, workers=2)
        text += "".join(f"{line}\n" for line in topo.lb_script if line.startswith("dpip "))
        model = check(list(enumerate(text.splitlines(), 1)), f"{topo.name}.conf")
        # a bond's slaves are ports of the lab, no interfaces of the model
        data = [p.name for p in model.ports.values() if p.kind == PORT] + list(model.slaves)
        assert sorted(p for p, _ in topo.ports) == sorted(data), topo.name
        assert model.settings.workers == 2


def test_demo_command_lines_run():
    """Every rlb(...) call of the demo is one `rlb -c ...` run (one connection, starting in
    exec): its command lines run in order against a model with the lab's two ports."""
    path = ROOT / "rlb/lab/demo.py"
    if not path.exists():
        pytest.skip("no demo")
    nodes = sorted((node for node in ast.walk(ast.parse(path.read_text()))
                    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "rlb"),
                   key=lambda node: (node.lineno, node.col_offset))
    calls = [[a.value for a in node.args if isinstance(a, ast.Constant)] for node in nodes]
    assert calls
    model = Model()
    model.add_port("dpdk0", "net_tap0")
    model.add_port("dpdk1", "net_tap1")
    for cmds in calls:
        ctx = Context(model)
        for line in cmds:
            run(ctx, line)


@pytest.mark.parametrize("cmd", each_command())
def test_every_command_completes_word_by_word(cmd):
    """Typing the command's sample line, every next word is offered (a keyword by its
    name, a value by its type's placeholder) with help, and <cr> at the end."""
    words = sample_line(cmd.root, True)
    for i, word in enumerate(words):
        offered = dict(g.complete(" ".join(words[:i]) + (" " if i else ""), cmd.node))
        assert offered, (cmd.definition, i)
        assert all(text.strip() for text in offered.values()), (cmd.definition, offered)
        kw = word in g._words and word in offered
        placeholder = any(t.startswith(("A.B.C.D", "MAC", "WORD", "LINE", "(", "X:X"))
                          for t in offered)
        assert kw or placeholder, (cmd.definition, words[:i], word, sorted(offered))
    assert "<cr>" in dict(g.complete(" ".join(words) + " ", cmd.node)), cmd.definition
