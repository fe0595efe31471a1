"""Readonly commands and privileges: Grammar.command(readonly=...), which commands are marked,
the shell's modes and view users on the daemon side (rlb.control.server), the audit log."""
import logging
from ipaddress import IPv4Interface

import pytest

from rlb.model.model import Model
from rlb.control.server import complete, execute, open_shell
from rlb.commands.base import VIEWER, Context, g
from rlb.commands.grammar import Grammar


def test_readonly_is_kept_and_defaults_to_false():
    gr = Grammar()
    gr.node("exec")
    gr.words(show="Show", set="Set", x="X")

    def look(ctx):
        """Look."""
    h = gr.command("show x", node="exec", readonly=True)(look)
    assert h is look
    gr.command("set x", node="exec")(lambda ctx: None)
    by_def = {c.definition: c for c in gr.commands("exec")}
    assert by_def["show x"].readonly is True and by_def["set x"].readonly is False
    assert gr.parse("sh x", "exec").command.readonly is True
    gr.check()


READONLY = {
    "show ip vs health [(tcp A.B.C.D:PORT$tcp|udp A.B.C.D:PORT$udp|match WORD$match)]",
    "dpip addr show [dev WORD$dev]", "dpip route show [dev WORD$dev]",
    "dpip neigh show [dev WORD$dev]", "dpip link show [WORD$dev] [-s$stats]",
    "dpip vlan show [WORD$name]", "dpip tunnel show [WORD$name]",
    "dpip -s$stats link show [WORD$dev]", "show dataplane", "show users", "show ssh",
    "show privilege", "ipvsadm", "show running-config", "show configuration",
    "show configuration diff", "show configuration commits",
    "show ip vs [stats|rate|connections|timeout]", "show ip route", "show ip neighbor",
    "show ip address", "show interface [WORD$dev] [stats]", "show version",
    "show startup-config", "terminal length (0-512)$n", "terminal width (0-512)$n",
    "show routing vip", "show ip ospf neighbor", "show ip ospf route", "show ip route ospf",
    "show bfd peers",
    "show bgp summary",
    "show vrrp",
    "show sync",
    "show metrics",
}


def test_the_readonly_commands_of_exec_are_the_shows():
    marked = {c.definition for c in g.commands("exec") if c.readonly}
    ipvsadm_lists = {d for d in marked if d.startswith("ipvsadm (")}
    assert marked - ipvsadm_lists == READONLY
    # -L/-l/--list, -G and -S, nothing else of ipvsadm
    assert len(ipvsadm_lists) == 3
    assert all("-L" in d or "-G" in d or "-S" in d for d in ipvsadm_lists)
    for c in g.commands("exec"):
        if not c.readonly:
            assert not c.definition.startswith("show "), c.definition


def test_mode_commands():
    ro = {(c.node, c.definition): c.readonly
          for n in ("exec", "view", "enable", "config", "dataplane", "config-if", "config-vs")
          for c in g.commands(n) if c.definition in ("enable", "disable", "configure [terminal]",
                                                      "exit", "end", "commit", "abort")}
    assert ro == {("view", "enable"): False, ("view", "exit"): True,
                  ("enable", "disable"): True, ("exec", "configure [terminal]"): False,
                  ("enable", "exit"): True, ("config", "exit"): True, ("config", "end"): True,
                  ("config", "abort"): False,
                  **{(n, w): True for n in ("dataplane", "config-if", "config-vs")
                     for w in ("exit", "end")}}


def model():
    m = Model()
    m.add_port("dpdk0", "net_tap0")
    m.add_address(IPv4Interface("10.0.0.1/24"), "dpdk0")
    return m


def shell(privilege="admin", m=None):
    ctx = Context(m or model(), host="lb", user="carol", privilege=privilege)
    open_shell(ctx)
    return ctx


CHANGES = ["dpip addr add 10.0.0.2/24 dev dpdk0", "dpip addr del 10.0.0.1/24 dev dpdk0",
           "dpip route add 10.5.0.0/16 dev dpdk0", "dpip neigh add 10.0.0.9 lladdr "
           "52:54:00:00:00:09 dev dpdk0", "ipvsadm -A -t 10.0.0.1:80", "ipvsadm -C",
           "ipvsadm -Z", "ipvsadm --set 1 2 3", "dataplane", "username eve privilege admin",
           "ssh listen 0.0.0.0 22", "no username carol", "dpip neigh flush"]


@pytest.mark.parametrize("line", CHANGES)
def test_view_user_is_refused_every_change_in_every_mode(line, caplog):
    m = model()
    ctx = shell(VIEWER, m)
    before = (list(m.addresses), dict(m.routes), dict(m.neighbours), dict(m.services.table))
    with caplog.at_level(logging.WARNING, logger="rlb.audit"):
        reply = execute(ctx, line)
    assert reply["error"] == "% Permission denied: user carol has view privilege"
    assert (list(m.addresses), dict(m.routes), dict(m.neighbours), dict(m.services.table)) == before
    assert f"refused carol (privilege view): {line}" in caplog.text


def test_view_user_cannot_enable_and_sees_no_enable():
    ctx = shell(VIEWER)
    for line in ("enable", "en", "enable 15"):
        assert not execute(ctx, line)["ok"]
    assert ctx.node == "view"
    assert "enable" not in [t for t, _ in complete(ctx, "")]
    assert execute(ctx, "dpip addr show")["ok"]
    assert execute(ctx, "exit")["closed"] is True


def test_view_user_outside_the_shell_is_refused_too():
    ctx = Context(model(), user="carol", privilege=VIEWER)
    assert execute(ctx, "dpip addr add 10.0.0.2/24 dev dpdk0")["error"].startswith(
        "% Permission denied")
    assert execute(ctx, "dpip addr show")["ok"]


@pytest.mark.parametrize("line", CHANGES)
def test_admin_changes_nothing_in_view_mode_and_dpip_ipvsadm_apply_in_enable(line):
    """lb> refuses every change; lb# runs dpip and ipvsadm at once (as `rlb -c` does) and
    keeps the rest for configuration mode, where the candidate takes them."""
    ctx = shell()
    reply = execute(ctx, line)
    assert reply["error"] == "% this is a privileged command: `enable` first", reply
    assert ctx.node == "view"
    execute(ctx, "enable")
    reply = execute(ctx, line)
    if line.split()[0] in ("dpip", "ipvsadm"):
        assert "configuration mode" not in reply.get("error", ""), reply
    else:
        assert reply["error"] == ("% this command changes the configuration: enter "
                                  "configuration mode first (configure)"), reply
    assert ctx.node == "enable"
    execute(ctx, "configure")
    reply = execute(ctx, line)
    assert "mode first" not in reply.get("error", "")


def test_changes_are_audited_with_the_user(caplog):
    ctx = shell()
    with caplog.at_level(logging.INFO, logger="rlb.audit"):
        for line in ("enable", "configure", "dpip addr add 10.0.0.2/24 dev dpdk0",
                     "dpip addr show", "dpip addr add 10.0.0.2/24 dev dpdk0"):
            execute(ctx, line)
    audited = [r.getMessage() for r in caplog.records if r.name == "rlb.audit"]
    assert audited == ["carol: enable", "carol: configure",
                       "carol: dpip addr add 10.0.0.2/24 dev dpdk0"]   # no show, no failure


def test_rlb_c_sessions_keep_running_everything_in_exec():
    ctx = Context(model())
    assert execute(ctx, "dpip addr add 10.0.0.2/24 dev dpdk0")["ok"]
    assert execute(ctx, "dataplane")["ok"] and ctx.node == "dataplane"
    assert execute(ctx, "exit")["ok"] and ctx.node == "exec"
    assert not execute(ctx, "enable")["ok"]                   # shell modes are the shell's
    assert set(execute(ctx, "dpip addr show")) == {"ok", "text", "data"}


def test_shell_section_fallback_and_exit():
    ctx = shell()
    for line in ("enable", "configure", "dataplane", "forwarding"):
        assert execute(ctx, line)["ok"], line
    assert ctx.node == "dataplane" and ctx.model.settings.forwarding
    assert execute(ctx, "dpip addr show")["ok"] and ctx.node == "dataplane"     # a show stays
    assert execute(ctx, "ip vs timeout tcp 5 tcpfin 5 udp 5")["ok"] and ctx.node == "config"
    execute(ctx, "dataplane")
    assert "uncommitted changes" in execute(ctx, "end")["error"]     # forwarding, uncommitted
    assert execute(ctx, "abort")["prompt"] == "lb#"
    assert not ctx.model.settings.forwarding
