"""The ssh shell and `rlb` without a terminal, against a real daemon in a namespace, with
the real OpenSSH client and keys made here: an exec request runs as `rlb -c`, lines piped
to `ssh -T` as lines piped to `rlb` (same output, same status), a view user changes
nothing; `rlb -c ... | head -1` ends quietly; a bad line's control characters come back
escaped; SIGTERM with sessions open logs no traceback. Traffic: the namespace's loopback."""
import os
import select
import signal
import socket
import subprocess
import sys
import time

import pytest

from rlb.control.client import Client
from support.netns import Daemon, del_ns, in_netns, make_ns

NS = INSTANCE = "rlbt-ssh"
PORT = 2222
CONFIG = """\
dataplane
 workers 1
 port dpdk0 net_af_packet0,iface=sd0
!
dpip addr add 10.1.0.1/24 dev dpdk0
username alice privilege admin
username alice key {alice}
username bob key {bob}
ssh listen 127.0.0.1 {port}
"""
TIMEOUT = 20            # every ssh and rlb call is bounded


class Lab:
    def __init__(self, d, keys):
        self.d, self.keys = d, keys

    def ssh(self, user, *args, input=None, timeout=TIMEOUT):
        cmd = ["ip", "netns", "exec", NS, "ssh", "-F", "/dev/null", "-p", str(PORT),
               "-i", str(self.keys[user]), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
               "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "LogLevel=ERROR", f"{user}@127.0.0.1", *args]
        return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)

    def rlb(self, *args, input=None, timeout=TIMEOUT):
        return subprocess.run([sys.executable, "-m", "rlb", "-N", INSTANCE, *args], input=input,
                              capture_output=True, text=True, timeout=timeout)


def wait_for_ssh(timeout=15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with in_netns(NS):
            s = socket.socket()
        try:
            s.settimeout(1)
            s.connect(("127.0.0.1", PORT))
            return
        except OSError:
            time.sleep(0.1)
        finally:
            s.close()
    raise RuntimeError("the ssh shell did not listen")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ssh")
    keys, pub = {}, {}
    for user in ("alice", "bob"):
        keys[user] = tmp / f"id_{user}"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", user, "-f",
                        str(keys[user])], check=True)
        pub[user] = (tmp / f"id_{user}.pub").read_text().strip()
    make_ns(NS, [("sd0", "st0")])
    d = Daemon(NS, INSTANCE, CONFIG.format(port=PORT, **pub), tmp).start()
    try:
        wait_for_ssh()
        yield Lab(d, keys)
    finally:
        rc = d.stop()
        del_ns(NS)
        assert rc == 0, d.log.read_text()


def read_until(proc, text: bytes, timeout=10) -> bytes:
    seen, end = b"", time.monotonic() + timeout
    while text not in seen and (left := end - time.monotonic()) > 0:
        if select.select([proc.stdout], [], [], left)[0]:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            seen += chunk
    assert text in seen, seen
    return seen


def same(a, b):
    assert (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr)


def test_an_exec_request_is_rlb_c(lab):
    r = lab.ssh("alice", "show ip address")
    assert r.returncode == 0 and "inet 10.1.0.1/24 scope global dpdk0" in r.stdout, r.stderr
    same(r, lab.rlb("-c", "show ip address"))
    # several commands, a newline between them, as `rlb -c` (and vtysh -c) takes them
    many = "dpip addr add 10.1.0.7/24 dev dpdk0\nshow ip address | include 10.1.0.7"
    r = lab.ssh("alice", many)
    assert r.returncode == 0 and "inet 10.1.0.7/24" in r.stdout, r.stderr
    # a failure stops what follows: status 1, the error and the command on stderr
    bad = "show ip address\nshow ip nonsense\ndpip addr del 10.1.0.7/24 dev dpdk0"
    r = lab.ssh("alice", bad)
    assert "\nshow ip nonsense" not in lab.d.log.read_text()   # no line of the user's in the log
    assert r.returncode == 1 and "inet 10.1.0.7/24" in r.stdout
    assert "% Invalid input detected at '^' marker." in r.stderr
    assert r.stderr.endswith("rlb: command failed: show ip nonsense\n")
    same(r, lab.rlb("-c", bad))
    assert "inet 10.1.0.7/24" in lab.d.ok("show ip address")["text"]
    assert lab.ssh("alice", "dpip addr del 10.1.0.7/24 dev dpdk0").returncode == 0


def test_a_view_user_may_look_only(lab):
    r = lab.ssh("bob", "dpip addr add 10.1.0.8/24 dev dpdk0")
    assert r.returncode == 1
    assert "% Permission denied: user bob has view privilege" in r.stderr
    r = lab.ssh("bob", "-T", input="enable\ndpip addr add 10.1.0.8/24 dev dpdk0\n")
    assert r.returncode == 1 and r.stderr.count("Permission denied: user bob") == 2
    r = lab.ssh("bob", "show ip address")
    assert r.returncode == 0 and "10.1.0.1/24" in r.stdout
    assert "10.1.0.8" not in lab.d.ok("show ip address")["text"]


def test_lines_piped_to_ssh_t_run_as_lines_piped_to_rlb(lab):
    lines = ("show ip address\ndpip addr add 10.1.0.9/24 dev dpdk0\nenable\n"
             "dpip addr add 10.1.0.9/24 dev dpdk0\nshow ip address | include 10.1.0.9\n"
             "dpip addr del 10.1.0.9/24 dev dpdk0\n")
    r = lab.ssh("alice", "-T", input=lines)             # ends with EOF: no hang
    assert r.returncode == 0, r.stderr                   # the last line's status
    assert r.stderr == "% this is a privileged command: `enable` first\n"
    assert "inet 10.1.0.9/24" in r.stdout
    same(r, lab.rlb(input=lines))
    r = lab.ssh("alice", "-T", input="enable\nshow ip nonsense\n")    # the last one fails
    assert r.returncode == 1 and "% Invalid input" in r.stderr
    same(r, lab.rlb(input="enable\nshow ip nonsense\n"))
    r = lab.ssh("alice", "-T", input="show privilege\n")
    assert (r.returncode, r.stderr) == (0, "") and "admin (user alice)" in r.stdout
    r = lab.ssh("alice", "-T", input="")                # nothing at all, then EOF
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert "10.1.0.9" not in lab.d.ok("show ip address")["text"]


BAD = "show ip \x1b[31mvs\x07"
ESCAPED = "show ip \\x1b[31mvs\\x07"


def test_a_bad_line_comes_back_escaped_never_raw(lab):
    for r in (lab.rlb("-c", BAD), lab.ssh("alice", BAD)):
        assert r.returncode == 1
        assert f"rlb: command failed: {ESCAPED}" in r.stderr, repr(r.stderr)
    pipe = f"show ip vs | include {BAD}\n"
    for r in (lab.rlb(input=pipe), lab.ssh("alice", "-T", input=pipe),
              lab.rlb("-c", pipe.strip())):
        assert r.returncode == 1
        assert "% Invalid character U+001B at offset 29." in r.stderr, repr(r.stderr)
    for r in (lab.rlb("-c", BAD), lab.ssh("alice", BAD), lab.rlb(input=pipe),
              lab.ssh("alice", "-T", input=pipe)):
        assert not set(r.stdout + r.stderr) & {"\x1b", "\x07"}, repr(r.stderr)


def test_rlb_c_into_head_ends_quietly(lab, tmp_path):
    # more output than a pipe holds, so that rlb is still writing when head has gone
    one = len(lab.rlb("-c", "show running-config | json").stdout)
    n = 200_000 // one + 1
    args = " ".join(['-c "show running-config | json"'] * n)
    r = subprocess.run(["bash", "-c", f"{sys.executable} -m rlb -N {INSTANCE} {args} | head -1;"
                        " echo status=${PIPESTATUS[0]} >&2"], capture_output=True, text=True,
                       timeout=60)
    assert r.stdout == "[\n"
    assert r.stderr == "status=141\n", r.stderr          # as cat or grep ended by SIGPIPE
    # piped lines into a closed pipe: the same
    r = subprocess.run(["bash", "-c", f"yes 'show running-config | json' | head -{n} | "
                        f"{sys.executable} -m rlb -N {INSTANCE} | head -1;"
                        " echo status=${PIPESTATUS[2]} >&2"], capture_output=True, text=True,
                       timeout=60)
    assert (r.stdout, r.stderr) == ("[\n", "status=141\n")


def test_sigterm_with_sessions_open_logs_no_traceback(lab):
    """Last: it stops the daemon. Open: a shell on the socket in configuration mode, an ssh
    shell on a pty in configuration mode, an ssh shell without one, its stdin open."""
    sock = Client(INSTANCE)
    assert sock.request({"shell": True})["ok"]
    assert sock.call("enable")["ok"] and sock.call("configure")["ok"]
    shell = ssh_process(lab, "alice", "-tt")
    piped = ssh_process(lab, "bob", "-T")
    try:
        wait_log(lab, "ssh: alice (admin) logged in")
        shell.stdin.write(b"enable\rconfigure\rvirtual-server tcp 10.1.0.100:80\r")
        shell.stdin.flush()
        wait_log(lab, "ssh: bob (view) logged in")
        piped.stdin.write(b"show privilege\n")
        piped.stdin.flush()
        wait_log(lab, "alice: virtual-server tcp 10.1.0.100:80")
        time.sleep(0.5)
        lab.d.proc.send_signal(signal.SIGTERM)
        assert lab.d.proc.wait(15) == 0
        log = lab.d.log.read_text()
        assert "instance rlbt-ssh stopped" in log
        for bad in ("Traceback", "CancelledError", "Unhandled", "Task was destroyed",
                    "Exception", "Warning"):
            assert bad not in log, log
        # the ssh sessions ran, and were told
        read_until(shell, b"rlbt-ssh(config-vs)#")
        read_until(piped, b"Current privilege level is view")
        assert shell.wait(10) == 255 and piped.wait(10) == 255     # ssh: disconnected
    finally:
        for p in (shell, piped):
            if p.poll() is None:
                p.kill()
                p.wait()
        sock.close()


def ssh_process(lab, user, tty):
    return subprocess.Popen(
        ["ip", "netns", "exec", NS, "ssh", tty, "-F", "/dev/null", "-p", str(PORT), "-i",
         str(lab.keys[user]), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o",
         "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", f"{user}@127.0.0.1"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_log(lab, text, timeout=10):
    end = time.monotonic() + timeout
    while text not in lab.d.log.read_text():
        assert time.monotonic() < end, f"not in the log: {text}"
        time.sleep(0.1)
