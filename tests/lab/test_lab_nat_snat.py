"""The tutorial's NAT one-arm and SNAT scenarios in the lab, with their commands verbatim
(typos fixed), 1 and 2 workers, curl and wrk: what the client and the servers see."""
import re
import subprocess
import sys

import pytest

from rlb import lab

RLB = [sys.executable, "-m", "rlb", "-N", "lb"]


def rlb(*cmds):
    args = list(RLB)
    for c in cmds:
        args += ["-c", c]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{cmds}: {r.stderr}"
    return r.stdout


def on(node, *cmd, timeout=60):
    return subprocess.run(["ip", "netns", "exec", f"rlb-{node}", *cmd], capture_output=True,
                          text=True, timeout=timeout)


def scenario(name, workers):
    lab.down()
    lab.up(name, workers=workers, tutorial=True)      # `workers` brings it down


def wrk_ok(node, url, close=False):
    args = ["wrk", "-t1", "-c8", "-d3s", "--timeout", "2s"] + (["-H", "Connection: close"] if close else [])
    out = on(node, *args, url).stdout
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    assert reqs > 100 and "Socket errors" not in out and "Non-2xx" not in out, out


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def workers(request):
    yield request.param
    lab.down()


def test_nat_one_arm(workers):
    scenario("nat-one-arm", workers)
    seen = set()
    for _ in range(4):
        r = on("client", "curl", "-s", "-m", "5", "http://192.168.0.89/")
        # the real server sees the client itself (NAT keeps the source)
        assert re.fullmatch(r"Your ip:port : 192\.168\.0\.88:\d+\n", r.stdout), r.stdout + r.stderr
    text = rlb("ipvsadm -ln --stats")
    seen = re.findall(r"-> (10\.140\.18\.3[34]):80\s+(\d+)", text)
    assert len(seen) == 2 and all(int(n) == 2 for _, n in seen), text
    assert "Masq" in rlb("ipvsadm -ln")
    wrk_ok("client", "http://192.168.0.89/")
    wrk_ok("client", "http://192.168.0.89/", close=True)


def test_snat(workers):
    scenario("snat", workers)
    r = on("client", "curl", "-s", "-m", "5", "http://123.1.2.1/")
    # the outside server sees only the WAN address
    assert re.fullmatch(r"Your ip:port : 123\.1\.2\.3:\d+\n", r.stdout), r.stdout + r.stderr
    r = on("client", "ping", "-c", "3", "-i", "0.2", "-W", "2", "123.1.2.1")
    assert " 0% packet loss" in r.stdout
    conns = rlb("ipvsadm -lnc")
    assert "ICMP" in conns and "123.1.2.3:" in conns
    wrk_ok("client", "http://123.1.2.1:8080/", close=True)
    # nginx on the server saw the WAN address too
    r = on("client", "curl", "-s", "-m", "5", "http://123.1.2.1:8080/")
    assert r.stdout.startswith("Your ip:port : 123.1.2.3:")
