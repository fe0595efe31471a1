"""A mode from the `rlb` entry-point group gets its ipvsadm flags, their help and its
listing name from the registry alone (tests/support/toy_mode.py: -X, --toy)."""
import json
import os
import subprocess
import sys

from support import toy_mode

CHILD = r'''
import json
from rlb.control.config import check, run
from rlb.commands.base import Context, g

# a config file as the daemon reads it (the real registry: built-ins and the toy)
text = """dataplane
 port dpdk0 net_tap0
!
dpip addr add 192.168.100.1/24 dev dpdk0
ipvsadm -A -t 10.0.0.100:80 -s rr
ipvsadm -a -t 10.0.0.100:80 -r 192.168.100.2:8080 -X
ipvsadm -a -t 10.0.0.100:80 -r 192.168.100.3:8080 --toy
"""
m = check(list(enumerate(text.splitlines(), 1)), "toy.conf")
print(json.dumps({
    "complete": dict(g.complete("ipvsadm -a -t 10.0.0.100:80 -r 192.168.100.4 ", node="exec")),
    "modes": [d.mode for s in m.services.table.values() for d in s.dests],
    "listing": run(Context(m), "ipvsadm -ln").text,
}))
'''


def run_with_toy(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(toy_mode.install(tmp_path)))
    r = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_the_toy_flags_are_in_the_grammar_with_their_help(tmp_path):
    got = run_with_toy(tmp_path)
    assert got["complete"][toy_mode.LONG_FLAG] == toy_mode.HELP
    # -X is also ipvsadm's --exact: the word says both
    assert got["complete"][toy_mode.FLAG] == f"Exact numbers (no K, M, G); with -r: {toy_mode.HELP}"
    assert got["complete"]["-m"] == "NAT (masquerading) forwarding"


def test_real_servers_added_with_the_toy_flags_use_the_toy_mode(tmp_path):
    got = run_with_toy(tmp_path)
    assert got["modes"] == [toy_mode.NAME, toy_mode.NAME]
    rows = [line.split() for line in got["listing"].splitlines() if "->" in line]
    assert [r[2] for r in rows if r[1].startswith("192.168.100.")] == [toy_mode.DISPLAY] * 2


def test_a_mode_flag_the_real_server_commands_take_is_refused(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(toy_mode.install(tmp_path, flag="-w")))
    r = subprocess.run([sys.executable, "-c", "import rlb.commands.ipvsadm"], capture_output=True,
                       text=True, env=env, timeout=60)
    assert r.returncode != 0
    assert "PluginError: forwarding mode flags ['-w'] are ipvsadm -a options" in r.stderr
