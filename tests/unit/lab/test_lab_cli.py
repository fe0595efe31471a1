"""`rlb lab script`, and the errors of `up --tutorial` and `restart` that need no lab."""
from pathlib import Path

import pytest

from rlb.lab import cli, state, topologies
from support import tutorial


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    """The lab's files in a scratch directory: nothing of a real lab is read or made."""
    monkeypatch.setattr(state, "RUN_DIR", tmp_path / "lab")
    monkeypatch.setattr(state, "SOCK_DIR", tmp_path)
    return tmp_path / "lab"


@pytest.mark.parametrize("name", topologies.BY_NAME)
def test_script_prints_the_scenario_lines(name, capsys):
    assert cli.main(["script", name]) == 0
    out = capsys.readouterr().out
    topo = topologies.get(name)
    if len(topo.lbs) == 1 and not topo.node(topo.lb).kni:
        assert out == "".join(f"{line}\n" for line in topo.lb_script)
    # each LB's lines in turn; what is not for the LB's shell (a header, the kernel's
    # lines, FRR's files) is a comment
    lines = [line for line in out.splitlines() if not line.startswith("!")]
    assert lines == [line for node in topo.lbs for line in topo.script_of(node)]
    assert out                                  # every scenario has its lines


def test_ospf_scripts_are_the_tutorial_s_with_the_way_back(capsys):
    """fnat-ospf-two-arm: lb1's lines and kernel lines are the tutorial's, in its order;
    what follows them is the route back to the clients that the tutorial leaves out."""
    text = tutorial.text()
    topo = topologies.get("fnat-ospf-two-arm")
    ours = topo.script_of("lb1")
    at = [text.index(f"./{line}\n") for line in ours[:7]]
    assert at == sorted(at)
    assert ours[7:] == ("dpip route add 172.10.0.0/30 dev dpdk1",
                        "dpip route add default via 172.10.0.1 dev dpdk1")
    for line in topo.node("lb1").kni:
        assert f"$ ip {line}" in text
    cli.main(["script", "fnat-ospf-two-arm"])
    out = capsys.readouterr().out
    assert "! lb2 (rlb -N lb2)" in out and "!    redistribute connected route-map VIPS" in out


def test_fnat_script_is_the_tutorial_text(capsys):
    """The FNAT two-arm lines are the tutorial's, in its order (`./dpip ...`, `./ipvsadm`)."""
    text = tutorial.text()
    cli.main(["script", "fnat-two-arm"])
    at = [text.index(f"./{line}\n") for line in capsys.readouterr().out.splitlines()]
    assert at == sorted(at)


def test_script_of_an_unknown_scenario(capsys):
    assert cli.main(["script", "nosuch"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("rlb lab: error: unknown topology 'nosuch' (known: fnat-two-arm")
    assert "Traceback" not in err


def test_tutorial_without_lb_is_refused_before_anything(run_dir, capsys):
    assert cli.main(["up", "fnat-two-arm", "--tutorial", "--no-lb"]) == 1
    assert capsys.readouterr().err == ("rlb lab: error: --tutorial configures the LB: it does "
                                       "not go with --no-lb\n")
    assert not run_dir.exists()


def test_restart_without_a_lab(run_dir, capsys, monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert cli.main(["restart", "lb"]) == 1
    assert capsys.readouterr().err == "rlb lab: error: no lab is up: `rlb lab up NAME` first\n"


def test_restart_knows_only_the_lb(capsys):
    assert cli.main(["restart", "rs1"]) == 2
    assert "invalid choice: 'rs1'" in capsys.readouterr().err


def test_readme_says_what_answers_on_each_real_server_port():
    from rlb.lab import procs
    readme = " ".join((Path(__file__).resolve().parents[3] / "README.md").read_text().split())
    assert f"on TCP port {procs.RS_APP_PORT} rlb's server" in readme
    assert f"on {procs.NGINX_PORT} nginx" in readme
    assert f"listen 0.0.0.0:{procs.NGINX_PORT} default_server;" in procs.nginx_conf("rs1")
    assert f"on UDP {procs.UDP_ECHO_PORT} an echo" in readme
    for name in topologies.BY_NAME:
        assert f"| {name} |" in readme, f"README: no row for {name}"
    assert "`lb.conf` is the LB's `-f` file, where `write memory` saves" in readme
    assert str(state.lb_conf()) == "/run/rlb/lab/lb.conf" and "`/run/rlb/lab/`" in readme


def test_restart_takes_the_newer_of_written_and_committed(run_dir):
    """`lab restart lb` comes back with what write memory saved, unless the history holds
    a newer commit: that one is written over lb.conf first (the old file kept as .bak)."""
    import os

    from rlb.control.commit import Store
    from rlb.control.paths import commits_dir
    from rlb.commands.running import Running, Stanza
    from rlb.lab import manage
    run_dir.mkdir(parents=True)
    conf = state.lb_conf()
    with pytest.raises(state.LabError, match="nothing to restart with"):
        manage._restart_source()
    conf.write_text("dataplane\n port dpdk0 net_af_packet0,iface=veth-dpdk0\n!\n")
    assert manage._restart_source() == f"{conf} (what write memory saved)"
    store = Store(commits_dir(state.LB_INSTANCE, str(state.lb_state_base())))

    def commit(iface, at):          # file times set, not waited for: they are coarse
        port = f"port dpdk0 net_af_packet0,iface={iface}"
        store.record(Running([Stanza("dataplane", (port,))]), "alice", iface)
        os.utime(store.lines(0)[1], ns=(at, at))

    os.utime(conf, ns=(10**12, 10**12))
    commit("v", 10**12 - 1)                         # write memory came after this commit
    assert manage._restart_source().endswith("(what write memory saved)")
    commit("u", 10**12)                             # as old: what was written wins
    assert manage._restart_source().endswith("(what write memory saved)")
    assert "iface=veth-dpdk0" in conf.read_text()
    written = conf.read_text()
    commit("w", 10**12 + 1)
    assert manage._restart_source().startswith("the last commit of its history")
    assert " port dpdk0 net_af_packet0,iface=w\n" in conf.read_text()
    assert Path(f"{conf}.bak").read_text() == written
