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
