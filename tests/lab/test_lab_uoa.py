"""UOA in the lab: the tutorial's "simple FNAT two-arm" plus a UDP service on the VIP
for the real servers' echo app (rlb/lab/udp_echo.py); the client's datagrams come back
with `Your ip:port : 10.0.0.48:<its port>`, the client the real server read from IPv4
option 31 (first datagrams) or remembered for the LB's LIP:lport (later ones)."""
import json
import re
import subprocess
import sys

import pytest

from rlb import lab
from rlb.lab.procs import UDP_ECHO_PORT
from rlb.lab.topologies import get

RLB = [sys.executable, "-m", "rlb", "-N", "lb"]
TOPO = get("fnat-two-arm")
VIP = TOPO.vip
UDP_SERVICE = TOPO.script(net=False, udp=True, vport=UDP_ECHO_PORT)  # the tutorial's, on UDP
# The client: one socket per flow, N datagrams each, every answer printed with the
# socket's own port, as JSON.
CLIENT = """
import json, socket, sys
vip, port, flows, per_flow = sys.argv[1], *map(int, sys.argv[2:5])
out = []
for _ in range(flows):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.bind(("0.0.0.0", 0))
        for i in range(per_flow):
            s.sendto(b"hello %d" % i, (vip, port))
            try:
                out.append([s.getsockname()[1], s.recv(512).decode()])
            except socket.timeout:
                out.append([s.getsockname()[1], None])
print(json.dumps(out))
"""


def rlb(*cmds, as_json=False):
    args = RLB + (["--json"] if as_json else [])
    for c in cmds:
        args += ["-c", c]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{cmds}: {r.stderr}"
    return json.loads(r.stdout) if as_json else r.stdout


def client(flows, per_flow):
    r = subprocess.run(["ip", "netns", "exec", "rlb-client", sys.executable, "-c", CLIENT,
                        VIP, str(UDP_ECHO_PORT), str(flows), str(per_flow)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module", params=[1, 2], ids=["1worker", "2workers"])
def uoa_lab(request):
    lab.down()
    try:
        lab.up("fnat-two-arm", workers=request.param, tutorial=True)
        rlb(*UDP_SERVICE)
        yield request.param
    finally:
        lab.down()


def test_the_echo_app_runs_on_every_real_server(uoa_lab):
    procs = lab.status()["processes"]
    for node in ("rs1", "rs2"):
        rec = procs[f"udp_echo@{node}"]
        assert rec["kind"] == "udp_echo" and rec["alive"]


def test_datagrams_to_the_vip_show_the_client(uoa_lab):
    # 4 flows (rr: both real servers) of 5 datagrams: the first ones carry option 31,
    # the real server's answer ends it, the rest are answered from its cache
    answers = client(4, 5)
    assert len(answers) == 20
    for port, text in answers:
        assert text == f"Your ip:port : 10.0.0.48:{port}\n", answers
    text = rlb("ipvsadm -ln --stats")
    conns = [int(m) for m in re.findall(rf"-> 192\.168\.100\.\d:{UDP_ECHO_PORT}\s+(\d+)", text)]
    assert len(conns) == 2 and min(conns) >= 2, text      # both real servers, in turn


def test_tcp_still_shows_the_client_via_toa(uoa_lab):
    r = subprocess.run(["ip", "netns", "exec", "rlb-client", "curl", "-s", "-m", "5",
                        f"http://{VIP}/"], capture_output=True, text=True, timeout=30)
    assert re.fullmatch(r"Your ip:port : 10\.0\.0\.48:\d+\n", r.stdout), r.stdout + r.stderr
