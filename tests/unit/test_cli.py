"""The `rlb` command's failure paths that need no data plane: config errors stop
`rlb daemon` before DPDK starts, with FILE:LINE: reason; -c to no instance fails."""
import subprocess
import sys

RLB = [sys.executable, "-m", "rlb"]


def run(*args, env=None):
    return subprocess.run(RLB + list(args), capture_output=True, text=True, timeout=60, env=env)


def test_daemon_reports_file_and_line_of_a_bad_line(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("dataplane\n port dpdk0 net_af_packet0,iface=x\n!\n"
                    "dpip addr add 10.0.0.1/24 dev dpdk0\n"
                    "dpip route add 10.1.0.0/16 via 9.9.9.9 dev dpdk0\n")
    r = run("daemon", "-f", str(conf), "-N", "unit-bad")
    assert r.returncode == 2
    assert f"{conf}:5: gateway 9.9.9.9 is not on a connected network of dpdk0" in r.stderr


def test_daemon_reports_a_syntax_error_with_its_line(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("dataplane\n workers 99\n")
    r = run("daemon", "-f", str(conf), "-N", "unit-bad")
    assert r.returncode == 2 and f"{conf}:2:" in r.stderr


def test_daemon_needs_a_port_and_a_readable_file(tmp_path):
    conf = tmp_path / "empty.conf"
    conf.write_text("! nothing\n")
    r = run("daemon", "-f", str(conf), "-N", "unit-bad")
    assert r.returncode == 2 and "no port" in r.stderr
    r = run("daemon", "-f", str(tmp_path / "missing.conf"), "-N", "unit-bad")
    assert r.returncode == 2 and "missing.conf" in r.stderr


def test_commands_to_an_instance_that_is_not_running(tmp_path):
    import os
    env = dict(os.environ, RLB_RUN_DIR=str(tmp_path))
    r = run("-N", "nosuch", "-c", "dpip addr show", env=env)
    assert r.returncode == 2 and "cannot reach instance 'nosuch'" in r.stderr


# -- `rlb -c` and lines on stdin, on a model in this process (the daemon's own functions)

def _session():
    from ipaddress import IPv4Interface

    from rlb.model.model import Model
    from rlb.commands.base import Context
    from rlb.shell.repl import LocalTransport
    m = Model()
    m.add_port("dpdk0", "net_tap0")
    m.add_address(IPv4Interface("10.0.0.1/24"), "dpdk0")
    return m, LocalTransport(Context(m, host="lb"))


def addrs(m):
    return [str(a.iface) for a in m.addresses]


def test_commands_are_vtysh_c_a_newline_separates_them():
    from rlb.shell.repl import commands
    m, t = _session()
    out, err = [], []
    rc = commands(t.call, ["dpip addr add 10.0.0.2/24 dev dpdk0\r\n\nshow ip address | include 2/",
                           "show ip nonsense\ndpip addr add 10.0.0.3/24 dev dpdk0",
                           "dpip addr add 10.0.0.4/24 dev dpdk0"], out.append, err.append)
    assert rc == 1 and out == ["inet 10.0.0.2/24 scope global dpdk0"]
    assert err[-1] == "rlb: command failed: show ip nonsense"
    assert addrs(m) == ["10.0.0.1/24", "10.0.0.2/24"]          # nothing after the failure
    out.clear()
    assert commands(t.call, ["show ip address"], out.append, err.append, as_data=True) == 0
    assert out[0].startswith("[\n  {")


def test_a_bad_line_is_printed_escaped(capsys):
    from rlb.shell.repl import Script, commands
    m, t = _session()
    assert commands(t.call, ["show ip \x1b[31mvs\x07"]) == 1
    err = capsys.readouterr().err
    assert err == ("% Invalid character U+001B at offset 8.\n"
                   "rlb: command failed: show ip \\x1b[31mvs\\x07\n")
    run = Script(t)
    assert run.start() and run.line("show ip vs | include \x1b[31m\x07") and run.status == 1
    assert capsys.readouterr().err == "% Invalid character U+001B at offset 21.\n"
    run.line("show ip vs | include \u009b2J")                   # C1: CSI as one character
    assert capsys.readouterr().err == "% Invalid character U+009B at offset 21.\n"
