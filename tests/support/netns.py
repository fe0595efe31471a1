"""Test helpers: namespaces with veth pairs, raw sockets inside them, a daemon to drive."""
from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import socket
import subprocess
import sys
import time

from rlb.control.client import Client
from rlb.control.paths import socket_path
from rlb.lab.topologies import get

CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003
_libc = ctypes.CDLL(None, use_errno=True)


def sh(*cmd, check=True, ns=None):
    if ns:
        cmd = ("ip", "netns", "exec", ns) + cmd
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


@contextlib.contextmanager
def in_netns(name):
    """Run the block with this thread in namespace `name` (sockets made there stay there)."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        yield
    finally:
        _libc.setns(own, CLONE_NEWNET)
        os.close(own)
        os.close(target)


class Wire:
    """A raw socket on one interface of a namespace: send frames, wait for frames."""

    def __init__(self, ns, iface):
        with in_netns(ns):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            self.sock.bind((iface, 0))
        self.sock.setblocking(False)
        self.iface = iface

    def send(self, frame: bytes) -> None:
        self.sock.send(bytes(frame))

    def drain(self) -> None:
        while select.select([self.sock], [], [], 0)[0]:
            self.sock.recv(65535)

    def recv(self, match=lambda f: True, timeout=2.0):
        """First incoming frame (as bytes) for which match(frame) is true, else None."""
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            if not select.select([self.sock], [], [], left)[0]:
                break
            data, addr = self.sock.recvfrom(65535)
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            if match(data):
                return data
        return None

    def recv_all(self, match=lambda f: True, timeout=0.5):
        out = []
        while (f := self.recv(match, timeout)) is not None:
            out.append(f)
        return out

    def close(self):
        self.sock.close()


def make_ns(name, pairs):
    """A namespace with veth pairs [(a, b)], both ends inside, offloads off (BASELINE.md)."""
    sh("ip", "netns", "del", name, check=False)
    sh("ip", "netns", "add", name)
    sh("ip", "-n", name, "link", "set", "lo", "up")
    for a, b in pairs:
        sh("ip", "-n", name, "link", "add", a, "type", "veth", "peer", "name", b)
        for dev in (a, b):
            sh("ethtool", "-K", dev, "tx", "off", "gro", "off", ns=name, check=False)
            sh("sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1", ns=name, check=False)
            sh("ip", "-n", name, "link", "set", dev, "up")


def del_ns(name):
    for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    sh("ip", "netns", "del", name, check=False)


class Daemon:
    """An `rlb daemon` started by a test inside a namespace, stopped by its PID."""

    def __init__(self, ns, instance, config_text, tmp_path, args=()):
        self.ns, self.instance, self.args = ns, instance, tuple(args)
        self.conf = tmp_path / f"{instance}.conf"
        self.conf.write_text(config_text)
        self.log = tmp_path / f"{instance}.log"
        self.state = tmp_path / "state"         # RLB_STATE_DIR: commits, ssh host key
        self.proc = None

    def start(self, timeout=30):
        """Start and wait for the control socket. On failure the test's namespace goes
        too, since the fixture that made it never reaches its teardown."""
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            del_ns(self.ns)
            raise

    def _start(self, timeout):
        logf = open(self.log, "a")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, sys.executable, "-m", "rlb", "daemon",
             "-f", str(self.conf), "-N", self.instance, *self.args], stdout=logf,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, RLB_STATE_DIR=str(self.state)))
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited {self.proc.returncode}:\n{self.log.read_text()}")
            if os.path.exists(socket_path(self.instance)):
                try:
                    Client(self.instance, timeout=5).close()
                    return self
                except Exception:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"daemon did not come up:\n{self.log.read_text()}")

    def call(self, cmd):
        with Client(self.instance) as c:
            return c.call(cmd)

    def ok(self, cmd):
        r = self.call(cmd)
        assert r["ok"], f"{cmd}: {r.get('error')}"
        return r

    def stats(self):
        return self.ok("dpip link show -s")["data"]

    def stop(self, timeout=15):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


def two_ports(workers=1, *settings):
    """A daemon's dataplane section: two af_packet ports, dpdk0 on dp0 (the real servers'
    LAN) and dpdk1 on dp1 (the clients' side), and any further settings lines."""
    return "".join(f"{line}\n" for line in (
        "dataplane", f" workers {workers}", " port dpdk0 net_af_packet0,iface=dp0",
        " port dpdk1 net_af_packet1,iface=dp1", *(f" {s}" for s in settings), "!"))


def lines(*scripts):
    """Command lines (tuples of them, as rlb/lab/scripts.py makes) as config text."""
    return "".join(f"{line}\n" for script in scripts for line in script)


def fnat_two_port(workers=1, *settings, **knobs):
    """two_ports() with the lab's "simple FNAT two-arm" script (its topology's definition),
    `knobs` as rlb.lab.scripts.fnat takes them (one real server, other local addresses)."""
    return two_ports(workers, *settings) + lines(get("fnat-two-arm").script(**knobs))


class Session:
    """An interactive session on a daemon's control socket, as the shell (`rlb`) opens it."""

    def __init__(self, instance, tty=None):
        self.client = Client(instance, timeout=30)
        req = {"shell": True, **({"tty": tty} if tty else {})}
        assert self.client.request(req)["ok"]

    def __call__(self, line):
        return self.client.call(line)

    def ok(self, *lines):
        for line in lines:
            r = self.client.call(line)
            assert r["ok"], f"{line}: {r.get('error')}"
        return r

    def complete(self, line):
        return dict(map(tuple, self.client.request({"complete": line})["data"]))

    def close(self):
        self.client.close()


def wait(cond, timeout=8.0, every=0.1):
    """cond()'s first true value within `timeout` seconds (polled every `every`), else its
    last value: for what a daemon does on its own clock (a check, a timer)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = cond()
        if got:
            return got
        time.sleep(every)
    return cond()
