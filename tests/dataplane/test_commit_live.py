"""Configuration mode against a real daemon and data plane: commit keeps what did not
change (an established FNAT connection lives through it), commit confirmed rolls back
by itself, rollback, two sessions, write memory and a restart, `rlb -f`.

The tester plays the client on dpdk1's wire (tp1) and the real servers on dpdk0's
wire (tp0), as in test_fnat.py."""
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time

from functools import partial

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from rlb.control import paths
from support import netns
from support.netns import Daemon, Wire, del_ns, fnat_two_port, make_ns, sh

NS, INSTANCE = "rlbt-commit", "rlbt-commit"
VIP, LIP, CLIENT, RS = "10.0.0.100", "192.168.100.200", "10.0.0.48", "192.168.100.2"
BASE = fnat_two_port(servers=(RS,))           # the tutorial's FNAT two-arm, one real server


Session = partial(netns.Session, INSTANCE)


class Lab:
    def __init__(self, d):
        self.d = d
        mac = lambda dev: sh("cat", f"/sys/class/net/{dev}/address", ns=NS).stdout.strip()
        self.lb_lan, self.lb_wan, self.rs_mac, self.cl_mac = (
            mac("dp0"), mac("dp1"), mac("tp0"), mac("tp1"))
        self.rs, self.cl = Wire(NS, "tp0"), Wire(NS, "tp1")

    def client(self, sport, flags, seq, ack=0, dport=80, payload=b""):
        p = Ether(src=self.cl_mac, dst=self.lb_wan) / IP(src=CLIENT, dst=VIP) / \
            TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack)
        return p / Raw(payload) if payload else p

    def to_rs(self, match, timeout=2):
        lips = {f"192.168.100.{n}" for n in range(200, 205)}    # each service's own
        f = self.rs.recv(lambda f: IP in Ether(f) and Ether(f)[IP].src in lips
                         and match(Ether(f)), timeout=timeout)
        return Ether(f) if f else None

    def handshake(self, sport, dport=80):
        self.cl.send(bytes(self.client(sport, "S", 100, dport=dport)))
        syn = self.to_rs(lambda p: TCP in p and p[TCP].flags == "S")
        assert syn is not None, "SYN did not reach the real server"
        ip, tcp = syn[IP], syn[TCP]
        sa = Ether(src=self.rs_mac, dst=self.lb_lan) / IP(src=ip.dst, dst=ip.src) / \
            TCP(sport=tcp.dport, dport=tcp.sport, flags="SA", seq=9000, ack=tcp.seq + 1)
        self.rs.send(bytes(sa))
        f = self.cl.recv(lambda f: TCP in Ether(f) and Ether(f)[TCP].dport == sport)
        assert f is not None, "SYN-ACK did not reach the client"
        self.cl.send(bytes(self.client(sport, "A", 101, Ether(f)[TCP].seq + 1, dport=dport)))
        # the ACK is on the wire: the connection is established once the worker saw it
        self.rs.recv(lambda f: TCP in Ether(f) and Ether(f)[TCP].flags == "A", timeout=2)
        return syn

    def data_reaches_rs(self, sport, syn, dport=80):
        """A data segment of an established flow goes out on the same local port."""
        self.rs.drain()
        self.cl.send(bytes(self.client(sport, "PA", 101, 0, dport=dport, payload=b"hello")))
        got = self.to_rs(lambda p: Raw in p and p[Raw].load == b"hello")
        return got is not None and got[TCP].sport == syn[TCP].sport

    def close(self):
        self.rs.close()
        self.cl.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    make_ns(NS, [("dp0", "tp0"), ("dp1", "tp1")])
    mac = lambda dev: sh("cat", f"/sys/class/net/{dev}/address", ns=NS).stdout.strip()
    conf = BASE + (f"dpip neigh add 192.168.100.2 lladdr {mac('tp0')} dev dpdk0\n"
                   f"dpip neigh add 192.168.100.3 lladdr {mac('tp0')} dev dpdk0\n"
                   f"dpip neigh add 10.0.0.48 lladdr {mac('tp1')} dev dpdk1\n")
    d = Daemon(NS, INSTANCE, conf, tmp_path_factory.mktemp("commit")).start()
    lab = Lab(d)
    try:
        yield lab
    finally:
        lab.close()
        rc = d.stop()
        del_ns(NS)
        assert rc == 0, d.log.read_text()


def running(d):
    return d.ok("show running-config")["text"]


def services(d):
    return {f"{s['vip']}:{s['port']}" for s in d.ok("ipvsadm -ln")["data"]["services"]}


def test_startup_is_the_first_commit(lab):
    commits = lab.d.ok("show configuration commits")["data"]["commits"]
    assert commits[-1]["user"] == "rlb" and "startup from" in commits[-1]["comment"]


def test_commit_keeps_an_unchanged_service_and_its_connection(lab):
    syn = lab.handshake(41001)
    before = lab.d.ok("ipvsadm -lnc")["data"]["connections"]
    assert any(c["cport"] == 41001 for c in before)
    s = Session()
    try:
        s.ok("enable", "configure", "virtual-server tcp 10.0.0.100:8080", "scheduler wrr",
             "real-server 192.168.100.3:80 mode fnat weight 2",
             "local-address 192.168.100.201 dev dpdk0", "exit",
             "interface dpdk1", "ip neighbor 10.0.0.49 02:00:00:00:00:49")
        assert services(lab.d) == {"10.0.0.100:80"}                # not yet: a candidate
        diff = s.ok("show configuration diff")["text"]
        assert "+virtual-server tcp 10.0.0.100:8080" in diff
        r = s.ok("commit comment second service")
        assert r["data"]["changes"][0] == "add neighbour 10.0.0.49"
        assert not any("10.0.0.100:80 " in c or c.endswith("10.0.0.100:80")
                       for c in r["data"]["changes"]), r["data"]["changes"]
        s.ok("end")
    finally:
        s.close()
    assert services(lab.d) == {"10.0.0.100:80", "10.0.0.100:8080"}
    after = lab.d.ok("ipvsadm -lnc")["data"]["connections"]
    same = lambda conns: [{k: v for k, v in c.items() if k != "expires"}   # noqa: E731
                          for c in conns if c["cport"] == 41001]
    assert same(after) == same(before) and same(after)
    assert lab.data_reaches_rs(41001, syn)
    # the new service forwards too, through its own local address
    syn2 = lab.handshake(41002, dport=8080)
    assert syn2[TCP].dport == 80 and syn2[IP].src == "192.168.100.201"
    commits = lab.d.ok("show configuration commits")["data"]["commits"]
    assert commits[0]["comment"] == "second service" and commits[0]["user"] == "root"


def test_rollback_one_restores_the_previous_commit(lab):
    s = Session()
    try:
        s.ok("enable", "configure", "no virtual-server tcp 10.0.0.100:8080", "commit")
        assert services(lab.d) == {"10.0.0.100:80"}
        s.ok("rollback 1")
        assert "+virtual-server tcp 10.0.0.100:8080" in s.ok("show configuration diff")["text"]
        s.ok("commit comment back again", "end")
    finally:
        s.close()
    assert services(lab.d) == {"10.0.0.100:80", "10.0.0.100:8080"}
    s = Session()
    try:
        s.ok("enable", "configure", "no virtual-server tcp 10.0.0.100:8080",
             "interface dpdk1", "no ip neighbor 10.0.0.49", "commit", "end")
    finally:
        s.close()


def test_commit_confirmed_rolls_back_by_itself(lab):
    before = running(lab.d)
    s = Session()
    try:
        s.ok("enable", "configure", "virtual-server tcp 10.0.0.100:81",
             "real-server 192.168.100.2:80 mode fnat", "local-address 192.168.100.202 dev dpdk0")
        r = s.ok("commit confirmed 2 seconds")
        assert "unless confirmed" in r["text"]
        assert "10.0.0.100:81" in services(lab.d)
        assert lab.d.ok("show configuration commits")["data"]["pending_confirm"]["user"] == "root"
        syn = lab.handshake(41003, dport=81)                    # it forwards meanwhile
        assert syn is not None
        time.sleep(3.5)
        assert "10.0.0.100:81" not in services(lab.d)
        assert running(lab.d) == before
        commits = lab.d.ok("show configuration commits")["data"]
        assert commits["pending_confirm"] is None
        assert commits["commits"][0]["user"] == "rlb"
        assert "not confirmed" in commits["commits"][0]["comment"]
        # the data plane forgot the service: a SYN to it is not forwarded any more
        lab.rs.drain()
        lab.cl.send(bytes(lab.client(41004, "S", 100, dport=81)))
        assert lab.to_rs(lambda p: TCP in p and p[TCP].flags == "S", timeout=1) is None
        # the session's candidate was made before the rollback: its commit is refused
        r = s("commit")
        assert not r["ok"] and "changed since" in r["error"]
        s.ok("abort")
    finally:
        s.close()


def test_commit_confirmed_then_commit_keeps_it(lab):
    s = Session()
    try:
        s.ok("enable", "configure", "ip vs timeout tcp 120 tcpfin 9 udp 60",
             "commit confirmed 2 seconds")
        assert "cancelled" in s.ok("commit")["text"]
        assert lab.d.ok("show configuration commits")["data"]["pending_confirm"] is None
        time.sleep(3)
        assert "ip vs timeout tcp 120 tcpfin 9 udp 60" in running(lab.d)
        s.ok("no ip vs timeout", "commit", "end")
    finally:
        s.close()
    assert "ip vs timeout" not in running(lab.d)


def test_second_session_is_refused_when_running_moved(lab):
    a, b = Session(), Session()
    try:
        a.ok("enable", "configure", "ip route 10.9.0.0/16 via 192.168.100.2 dev dpdk0")
        b.ok("enable", "configure", "ip route 10.8.0.0/16 via 192.168.100.2 dev dpdk0")
        a.ok("commit")
        r = b("commit")
        assert not r["ok"] and "changed since this candidate was started" in r["error"]
        assert "commit" in r["error"] and "root" in r["error"]
        assert "10.8.0.0/16" not in running(lab.d) and "10.9.0.0/16" in running(lab.d)
        b.ok("abort")
        a.ok("no ip route 10.9.0.0/16", "commit", "end")
        # a change made at once (lb#) moves the running configuration as well
        b.ok("configure", "ip route 10.7.0.0/16 via 192.168.100.2 dev dpdk0")
        a.ok("dpip route add 10.6.0.0/16 via 192.168.100.2 dev dpdk0")
        r = b("commit")
        assert not r["ok"] and "`dpip route add 10.6.0.0/16" in r["error"]
        b.ok("abort")
        a.ok("dpip route del 10.6.0.0/16")
    finally:
        a.close()
        b.close()


def test_rlb_f_applies_a_file_as_one_commit(lab, tmp_path):
    env = dict(os.environ, RLB_RUN_DIR=paths.RUN_DIR)
    good = tmp_path / "more.conf"
    good.write_text("ipvsadm -A -t 10.0.0.100:82 -s rr\n"
                    "virtual-server tcp 10.0.0.100:82\n"
                    " real-server 192.168.100.3:80 mode fnat\n"
                    " local-address 192.168.100.203 dev dpdk0\n")
    bad = tmp_path / "bad.conf"
    bad.write_text("ipvsadm -A -t 10.0.0.100:83 -s rr\n!\n"
                   "ipvsadm -a -t 10.0.0.100:83 -r 192.168.100.3:80 -b -w 70000\n")
    before = running(lab.d)
    r = subprocess.run([sys.executable, "-m", "rlb", "-N", INSTANCE, "-f", str(bad)],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 1 and f"{bad}:3:" in r.stderr, r.stderr
    assert running(lab.d) == before
    r = subprocess.run([sys.executable, "-m", "rlb", "-N", INSTANCE, "-f", str(good)],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert "10.0.0.100:82" in services(lab.d)
    commits = lab.d.ok("show configuration commits")["data"]["commits"]
    assert commits[0]["comment"] == f"load {good}"
    r = subprocess.run([sys.executable, "-m", "rlb", "-N", INSTANCE, "-c", "dpip addr show",
                        "-c", "ipvsadm -D -t 10.0.0.100:82", "-c", "ipvsadm -D -t 10.0.0.100:82",
                        "-c", "dpip route show"], capture_output=True, text=True, timeout=60,
                       env=env)
    assert r.returncode == 1 and "command failed: ipvsadm -D -t 10.0.0.100:82" in r.stderr
    assert "inet 10.0.0.100/32" in r.stdout and "proto auto" not in r.stdout
    # configuration mode from a script: one connection, one candidate
    r = subprocess.run([sys.executable, "-m", "rlb", "-N", INSTANCE, "-c", "configure",
                        "-c", "virtual-server tcp 10.0.0.100:84", "-c", "scheduler rr",
                        "-c", "commit"], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0 and "commit" in r.stdout, r.stderr
    assert "10.0.0.100:84" in services(lab.d)
    lab.d.ok("ipvsadm -D -t 10.0.0.100:84")


def rlb_c(*lines):
    args = [a for line in lines for a in ("-c", line)]
    return subprocess.run([sys.executable, "-m", "rlb", "-N", INSTANCE, *args],
                          capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, RLB_RUN_DIR=paths.RUN_DIR))


def service(d, vip_port):
    return next(s for s in d.ok("ipvsadm -ln")["data"]["services"]
                if f"{s['vip']}:{s['port']}" == vip_port)


EXEC_LINES = ("ipvsadm -A -t 10.0.0.100:85 -s rr",
              "ipvsadm -a -t 10.0.0.100:85 -r 192.168.100.3:80 -b",
              "ipvsadm --add-laddr -z 192.168.100.204 -t 10.0.0.100:85 -F dpdk0")


def test_exec_mode_changes_are_commits_and_rollback_1_undoes_only_the_last(lab):
    """Issue 9 item 7: lines applied at once (an rlb -c batch, a line in lb#) are commits
    of their own, so `rollback 1` after a commit undoes that commit only, not the lines
    typed before."""
    first = lab.d.ok("show configuration commits")["data"]["commits"][0]["id"]
    r = rlb_c(*EXEC_LINES)
    assert r.returncode == 0, r.stderr
    s = Session()
    try:
        s.ok("enable", "dpip route add 10.5.0.0/16 via 192.168.100.2 dev dpdk0")
        h = lab.d.ok("show configuration commits")["data"]["commits"]
        assert [(e["id"], e["user"], e["source"], e["comment"]) for e in h[:2]] == [
            (first + 2, "root", "shell", "dpip route add 10.5.0.0/16 via 192.168.100.2 dev dpdk0"),
            (first + 1, "root", "rlb -c", "; ".join(EXEC_LINES))]          # one batch
        time.sleep(1)                   # a pause: the next line is a commit of its own
        s.ok("dpip route add 10.6.0.0/16 via 192.168.100.2 dev dpdk0")
        s.ok("dpip neigh flush", "ipvsadm -Z -t 10.0.0.100:80", "write memory")   # not changes
        assert lab.d.ok("show configuration commits")["data"]["commits"][0]["id"] == first + 3
        s.ok("configure", "ip vs timeout tcp 100 tcpfin 8 udp 30")
        assert s.ok("commit")["text"].startswith(f"commit {first + 4}: ")
        loaded = s.ok("rollback 1")
        assert loaded["data"] == {"commit": first + 3, "rollback": 1}
        diff = s.ok("show configuration diff")["text"].splitlines()
        assert [line for line in diff if line[:1] in "+-" and line[:3] not in ("---", "+++")] \
            == ["-ip vs timeout tcp 100 tcpfin 8 udp 30"]
        s.ok("commit", "end")
    finally:
        s.close()
    text = running(lab.d)
    assert "virtual-server tcp 10.0.0.100:85" in text and "ip vs timeout" not in text
    assert "ip route 10.5.0.0/16 via 192.168.100.2 dev dpdk0" in text
    # the data plane has the service typed in exec mode: it forwards through its LIP
    syn = lab.handshake(41020, dport=85)
    assert syn[IP].src == "192.168.100.204" and syn[IP].dst == "192.168.100.3"
    assert "ip route 10.6.0.0/16 via 192.168.100.2 dev dpdk0" in text
    r = rlb_c("ipvsadm -D -t 10.0.0.100:85", "dpip route del 10.5.0.0/16",
              "dpip route del 10.6.0.0/16")
    assert r.returncode == 0, r.stderr


def test_update_brings_a_stale_candidate_onto_another_sessions_commit(lab):
    """Issue 9 item 8: the second session's candidate is refused at commit, `update`
    merges its changes onto the new running configuration, and both land."""
    a, b = Session(), Session()
    try:
        a.ok("enable", "configure", "virtual-server tcp 10.0.0.100:80", "scheduler wlc", "exit",
             "ip route 10.4.0.0/16 via 192.168.100.2 dev dpdk0")
        b.ok("enable", "configure", "virtual-server tcp 10.0.0.100:80",
             "real-server 192.168.100.3:80 mode fnat weight 2", "commit", "end")
        r = a("commit")
        assert not r["ok"] and "`update`" in r["error"]
        assert service(lab.d, "10.0.0.100:80")["scheduler"] == "rr"
        assert a.ok("update")["text"].startswith("Candidate updated")
        r = a.ok("commit")
        assert sorted(r["data"]["changes"]) == ["add route 10.4.0.0/16",
                                                "change TCP 10.0.0.100:80"], r["data"]
        svc = service(lab.d, "10.0.0.100:80")
        assert svc["scheduler"] == "wlc"
        assert {(d["addr"], d["weight"]) for d in svc["dests"]} == {("192.168.100.2", 1),
                                                                   ("192.168.100.3", 2)}
        assert "ip route 10.4.0.0/16 via 192.168.100.2 dev dpdk0" in running(lab.d)
        # a conflict: both change the scheduler; refused, nothing changes
        a.ok("virtual-server tcp 10.0.0.100:80", "scheduler sh")
        b.ok("ipvsadm -E -t 10.0.0.100:80 -s lc")
        r = a("update")
        assert not r["ok"] and "candidate: scheduler sh" in r["error"]
        assert "running:   scheduler lc" in r["error"]
        assert service(lab.d, "10.0.0.100:80")["scheduler"] == "lc"
        a.ok("abort", "configure", "virtual-server tcp 10.0.0.100:80", "scheduler rr",
             "no real-server 192.168.100.3:80", "exit", "no ip route 10.4.0.0/16", "commit",
             "end")
    finally:
        a.close()
        b.close()
    assert service(lab.d, "10.0.0.100:80")["scheduler"] == "rr"


def test_every_session_is_told_of_an_automatic_rollback(lab):
    """Issue 9 item 8: a session that only waits gets the notice on its own, when the
    rollback happens; a stale candidate is brought up to date with `update`."""
    waiting, s, c = Session(), Session(), Session()
    try:
        waiting.ok("enable")
        s.ok("enable", "configure", "ip route 10.3.0.0/16 via 192.168.100.2 dev dpdk0",
             "commit confirmed 2 seconds")
        # a candidate made on the unconfirmed commit
        c.ok("enable", "configure", "virtual-server tcp 10.0.0.100:80", "scheduler wlc")
        assert not select.select([waiting.client.sock], [], [], 1)[0]       # not yet
        assert select.select([waiting.client.sock], [], [], 6)[0], "no notice came"
        assert waiting.client.poll()
        assert len(waiting.client.notices) == 1
        assert "commit confirmed by root was not confirmed" in waiting.client.notices[0]
        assert "10.3.0.0/16" not in running(lab.d)
        r = c("commit")
        assert not r["ok"] and "changed since" in r["error"]
        assert any("was not confirmed" in n for n in c.client.notices)     # told too
        c.ok("update", "commit")
        assert service(lab.d, "10.0.0.100:80")["scheduler"] == "wlc"
        c.ok("virtual-server tcp 10.0.0.100:80", "scheduler rr", "commit", "end")
        s.ok("abort")
    finally:
        for x in (waiting, s, c):
            x.close()


def read_pty(fd, want, timeout):
    """What the terminal showed until `want` appeared (escape sequences removed)."""
    out, end = b"", time.monotonic() + timeout
    while want not in re.sub(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\r", b"", out):
        left = end - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError(f"{want!r} not shown: {out[-500:]!r}")
        try:
            out += os.read(fd, 65536)
        except OSError:             # the shell ended
            raise AssertionError(f"{want!r} not shown: {out[-500:]!r}") from None
    return re.sub(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\r", b"", out).decode()


def test_the_interactive_shell_prints_the_rollback_notice_while_it_waits(lab):
    """The real `rlb` shell on a terminal (a pty): it waits at its prompt, another
    session's unconfirmed commit rolls back, the notice is printed above the prompt."""
    main, sub = pty.openpty()
    home = tempfile.mkdtemp(prefix="rlbt-home-")            # its ~/.rlb_history
    shell = subprocess.Popen([sys.executable, "-m", "rlb", "-N", INSTANCE], stdin=sub,
                             stdout=sub, stderr=sub, close_fds=True,
                             env=dict(os.environ, RLB_RUN_DIR=paths.RUN_DIR, TERM="xterm",
                                      HOME=home))
    os.close(sub)
    s = Session()
    try:
        read_pty(main, f"{INSTANCE}>".encode(), 30)
        s.ok("enable", "configure", "ip route 10.2.0.0/16 via 192.168.100.2 dev dpdk0",
             "commit confirmed 2 seconds")
        screen = read_pty(main, b"was not confirmed", 10)
        assert "commit confirmed by root" in screen and "`update`" in screen
        os.write(main, b"show ip route\r")
        assert "inet 10.0.0.0/16" in read_pty(main, b"inet 10.0.0.0/16", 10)  # still works
        os.write(main, b"exit\r")
        assert shell.wait(10) == 0
        s.ok("abort")
    finally:
        s.close()
        if shell.poll() is None:
            shell.kill()
            shell.wait()
        os.close(main)
        shutil.rmtree(home, ignore_errors=True)
    assert "10.2.0.0/16" not in running(lab.d)


def test_write_memory_and_restart_give_the_same_running_config(lab):
    d = lab.d
    s = Session()
    try:
        s.ok("enable", "configure", "dataplane", "idle-sleep 150", "exit",
             "virtual-server udp 10.0.0.100:53", "scheduler sh", "persistent 60",
             "real-server 192.168.100.2:53 mode fnat weight 5 upper 100 lower 10",
             "local-address 192.168.100.204 dev dpdk0", "exit",
             "interface dpdk0", "ip address 192.168.100.1/24", "exit",
             "ip route 172.16.0.0/12 via 192.168.100.2 dev dpdk0 mtu 1400 metric 5",
             "ip vs timeout tcp 100 tcpfin 8 udp 30", "commit", "end")
        before = running(d)
        old_conf = d.conf.read_text()
        r = s.ok("write memory")
        assert str(d.conf) in r["text"]
    finally:
        s.close()
    assert d.conf.read_text() == before + "\n"
    assert (d.conf.parent / (d.conf.name + ".bak")).read_text() == old_conf
    assert d.stop() == 0
    d.start()
    assert running(d) == before
    assert "real-server 192.168.100.2:53 mode fnat weight 5 upper 100 lower 10" in before
    # the restarted data plane forwards with it: the FNAT service on :80 still works
    syn = lab.handshake(41010)
    assert syn[IP].src == LIP
    # edit the startup file, apply it whole (load override): only the difference changes
    d.conf.write_text(d.conf.read_text().replace(" idle-sleep 150", " idle-sleep 160")
                      .replace(" persistent 60\n", ""))
    r = subprocess.run([sys.executable, "-m", "rlb", "-N", INSTANCE, "-f", str(d.conf),
                        "--replace"], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, RLB_RUN_DIR=paths.RUN_DIR))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1:] == ["  change UDP 10.0.0.100:53",
                                         "  set dataplane idle-sleep 160"], r.stdout
    assert running(d) == d.conf.read_text().rstrip("\n")
    assert lab.data_reaches_rs(41010, syn)
