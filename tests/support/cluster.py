"""What the cluster and master/backup labs' tests ask of them: an LB's shell (`rlb -N
lbX -c ...`), a command in a node, the switch's nexthops for the VIP, the connections an
LB scheduled, the VRRP roles, keep-alive sessions from the client, and a bounded wait."""
import json
import re
import subprocess
import sys
import time
from contextlib import contextmanager

from rlb import lab
from rlb.lab import procs, state
from rlb.lab.topologies import OSPF_VIP


def rlb(node, *cmds, as_json=False):
    args = [sys.executable, "-m", "rlb", "-N", state.instance(node)] + \
        (["--json"] if as_json else [])
    for c in cmds:
        args += ["-c", c]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{node} {cmds}: {r.stdout} {r.stderr}"
    return json.loads(r.stdout) if as_json else r.stdout


def in_node(node, *cmd, timeout=60):
    return subprocess.run(["ip", "netns", "exec", f"rlb-{node}", *cmd], capture_output=True,
                          text=True, timeout=timeout)


def nexthops(vip=OSPF_VIP):
    """The switch's kernel nexthops for the VIP (its zebra installs them)."""
    out = in_node("switch", "ip", "-j", "route", "show", f"{vip}/32").stdout
    routes = json.loads(out or "[]")
    if not routes:
        return []
    r = routes[0]
    return sorted(h["gateway"] for h in r.get("nexthops", [])) or [r.get("gateway")]


def until(pred, timeout, step=0.5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def conns(node, vip=OSPF_VIP):
    """Connections the LB scheduled for the VIP (ipvsadm's Conns column)."""
    text = rlb(node, "ipvsadm -ln --stats --exact")
    m = re.search(rf"^TCP\s+{re.escape(vip)}:80\s+(\d+)", text, re.M)
    assert m, text
    return int(m.group(1))


def curl_codes(ports, vip=OSPF_VIP):
    """One curl from the client per source port (5 s each at most): the HTTP codes."""
    script = (f"for p in $(seq {ports.start} {ports.stop - 1}); do curl -s -m 5 "
              f"--local-port $p -o /dev/null -w '%{{http_code}}\\n' http://{vip}/; done")
    return in_node("client", "sh", "-c", script, timeout=10 + 6 * len(ports)).stdout.split()


@contextmanager
def cluster_up(topo, both, wait=30.0):
    """A BGP cluster lab up with --tutorial until the switch has both nexthops (a
    module fixture's body); down again after, whatever happened."""
    lab.down()
    try:
        lab.up(topo.name, tutorial=True)
        assert until(lambda: nexthops() == both, wait), \
            procs.vtysh("switch", "show bgp summary") + rlb("lb1", "show bgp summary")
        yield
    finally:
        lab.down()


def vrrp(node):
    """`show vrrp` of an LB, as data."""
    return rlb(node, "show vrrp", as_json=True)


def role(node):
    """An LB's VRRP state (its first instance's); None while its daemon is down."""
    try:
        return vrrp(node)["instances"][0]["state"]
    except AssertionError:
        return None


def roles(nodes=("lb1", "lb2")):
    return tuple(role(n) for n in nodes)


@contextmanager
def pair_up(topo, wait=20.0):
    """A master/backup lab up with --tutorial until lb1 is MASTER and lb2 BACKUP (a
    module fixture's body); down again after, whatever happened."""
    lab.down()
    try:
        lab.up(topo.name, tutorial=True)
        assert until(lambda: roles() == ("master", "backup"), wait), roles()
        yield
    finally:
        lab.down()


class Sessions:
    """rlb.lab.sessions in the client's namespace (`count` keep-alive HTTP sessions, a
    request each every 50 ms for `seconds`), started and waited for."""

    def __init__(self, seconds: float, first_port: int, count: int = 16, vip: str = OSPF_VIP):
        self.seconds = seconds
        self.p = subprocess.Popen(
            ["ip", "netns", "exec", "rlb-client", sys.executable, "-m", "rlb.lab.sessions",
             vip, "--sessions", str(count), "--first-port", str(first_port),
             "--interval", "0.05", "--seconds", str(seconds)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.p.stdout.readline().strip() == "ready", self.p.stderr.read()

    def result(self) -> dict:
        out, err = self.p.communicate(timeout=self.seconds + 30)
        assert self.p.returncode == 0, err
        return json.loads(out.strip().splitlines()[-1])

    def __enter__(self):
        return self

    def __exit__(self, *_) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def failures(res: dict) -> list:
    """The sessions that saw a failed request."""
    return [s for s in res["sessions"] if s["failed"]]

