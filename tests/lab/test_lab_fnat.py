"""The tutorial's "simple FNAT two-arm" scenario, verbatim, in the lab: curl and wrk
through the VIP, TOA seen by the real servers, servers quiesced and deleted under load,
with 1, 2 and 4 workers."""
import json
import re
import subprocess
import sys
import time

import pytest

from rlb import lab
from rlb.lab.topologies import get
from support import tutorial

RLB = [sys.executable, "-m", "rlb", "-N", "lb"]
TOPO = get("fnat-two-arm")


def rlb(*cmds, check=True, as_json=False):
    args = RLB + (["--json"] if as_json else [])
    for c in cmds:
        args += ["-c", c]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if check:
        assert r.returncode == 0, f"{cmds}: {r.stderr}"
    return json.loads(r.stdout) if as_json else r.stdout


def client(*cmd, timeout=60):
    return subprocess.run(["ip", "netns", "exec", "rlb-client", *cmd], capture_output=True,
                          text=True, timeout=timeout)


def tutorial_block(after):
    """The tutorial's text printed after a `$ ./<command>` line, up to the next prompt."""
    text = tutorial.text()
    block = text.split(f"$ ./{after}\n", 1)[1]
    return "\n".join(line for line in block.split("\n")
                     if line.strip()).split("\n$ ")[0].split("\nAnd now")[0]


@pytest.fixture(scope="module", params=[1, 2, 4], ids=["1worker", "2workers", "4workers"])
def fnat_lab(request):
    lab.down()
    try:
        # the tutorial's script, line by line, as `rlb -N lb -c "<line without ./>"` would
        lab.up(TOPO.name, workers=request.param, tutorial=True)
        yield request.param
    finally:
        lab.down()


def stats():
    return rlb("ipvsadm -ln --stats", as_json=True)


def test_tutorial_outputs(fnat_lab):
    assert rlb("ipvsadm  -ln").strip() == tutorial_block("ipvsadm  -ln").strip()
    assert rlb("ipvsadm  -G").strip() == tutorial_block("ipvsadm  -G").strip()
    ours = rlb("dpip addr show").strip().splitlines()
    theirs = tutorial_block("dpip addr show").strip().splitlines()
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):    # DPVS counts sa_free over its 16 pools; rlb per LIP
        assert re.sub(r"sa_free \d+", "sa_free N", a) == re.sub(r"sa_free \d+", "sa_free N", b)
    assert rlb("dpip route show").strip().splitlines() == \
        tutorial_block("dpip route show").strip().splitlines()


def test_curl_through_the_vip_shows_the_client_via_toa(fnat_lab):
    before = {d["destination"] if "destination" in d else str(i): d for i, d in enumerate([])}
    for _ in range(6):
        r = client("curl", "-s", "-m", "5", "http://10.0.0.100/")
        assert re.fullmatch(r"Your ip:port : 10\.0\.0\.48:\d+\n", r.stdout), r.stdout + r.stderr
    text = rlb("ipvsadm -ln --stats")
    conns = [int(m) for m in re.findall(r"-> 192\.168\.100\.\d:80\s+(\d+)", text)]
    assert len(conns) == 2 and min(conns) >= 3, text      # both real servers, in turn
    del before


def wrk(seconds, conns=8, close=False, port=8080):
    args = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "2s"]
    if close:
        args += ["-H", "Connection: close"]
    return client(*args, f"http://10.0.0.100:{port}/", timeout=seconds + 30)


def parse_wrk(out):
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return reqs, sum(map(int, errors.groups())) if errors else 0, int(non2xx.group(1)) if non2xx else 0


@pytest.fixture
def nginx_service(fnat_lab):
    rlb(*TOPO.script(net=False, vport=8080))      # the tutorial's service, on nginx's port
    yield
    rlb("ipvsadm -D -t 10.0.0.100:8080")


def test_wrk_keepalive_and_new_connections_without_errors(nginx_service):
    out = wrk(3).stdout
    reqs, errors, non2xx = parse_wrk(out)
    assert reqs > 100 and errors == 0 and non2xx == 0, out
    out = wrk(3, close=True).stdout
    reqs, errors, non2xx = parse_wrk(out)
    assert reqs > 50 and errors == 0 and non2xx == 0, out


def dest_conns(port=8080):
    text = rlb("ipvsadm -ln --stats --exact")
    return {m[0]: int(m[1]) for m in re.findall(rf"-> (192\.168\.100\.\d):{port}\s+(\d+)", text)}


def test_weight_zero_then_delete_under_load(nginx_service):
    load = subprocess.Popen(["ip", "netns", "exec", "rlb-client", "wrk", "-t1", "-c8", "-d6s",
                             "--timeout", "2s", "-H", "Connection: close",
                             "http://10.0.0.100:8080/"], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        rlb("ipvsadm -e -t 10.0.0.100:8080 -r 192.168.100.2 -b -w 0")
        time.sleep(0.5)
        quiesced = dest_conns()["192.168.100.2"]
        time.sleep(1.5)
        assert dest_conns()["192.168.100.2"] == quiesced, "weight 0 must take no new flow"
        rlb("ipvsadm -d -t 10.0.0.100:8080 -r 192.168.100.2")
        out, _ = load.communicate(timeout=30)
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()
    reqs, errors, non2xx = parse_wrk(out)
    assert reqs > 50 and non2xx == 0 and errors <= 8, out     # only flows in flight to rs1
    assert "192.168.100.2" not in dest_conns()
    r = client("curl", "-s", "-m", "5", "http://10.0.0.100:8080/")
    assert r.stdout.startswith("Your ip:port : 192.168.100.200:")   # nginx sees the LIP
    rlb("ipvsadm -a -t 10.0.0.100:8080 -r 192.168.100.2 -b")
