"""`rlb lab script`, and the errors of `up --tutorial` and `restart` that need no lab."""
from pathlib import Path

import pytest

from rlb.lab import cli, state, topologies

TUTORIAL = Path(__file__).resolve().parents[4] / "shared" / "TUTORIAL.md"


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
    assert out == "".join(f"{line}\n" for line in topologies.get(name).lb_script)
    assert out                                  # every scenario has its lines


def test_fnat_script_is_the_tutorial_text(capsys):
    """The FNAT two-arm lines are the tutorial's, in its order (`./dpip ...`, `./ipvsadm`)."""
    if not TUTORIAL.exists():
        pytest.fail(f"{TUTORIAL} is missing")
    text = TUTORIAL.read_text()
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
    assert f"`lb.conf` is the LB's `-f` file, where `write memory` saves" in readme
    assert str(state.lb_conf()) == "/run/rlb/lab/lb.conf" and "`/run/rlb/lab/`" in readme
