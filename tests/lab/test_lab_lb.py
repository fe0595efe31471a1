"""The LB daemon in the lab: addresses answer pings, the kernel serves through kni,
routing across the LB, counters, clean stop, two instances side by side."""
import json
import os
import subprocess
import sys
import time

import pytest

from rlb import lab
from rlb.control.paths import socket_path
from support.netns import Daemon, del_ns, make_ns, sh

RLB = [sys.executable, "-m", "rlb"]


def rlb(*cmds, instance="lb", check=True):
    args = RLB + ["-N", instance]
    for c in cmds:
        args += ["-c", c]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if check:
        assert r.returncode == 0, f"{cmds}: {r.stderr}"
    return r


def in_node(node, *cmd, timeout=30):
    return subprocess.run(["ip", "netns", "exec", f"rlb-{node}", *cmd],
                          capture_output=True, text=True, timeout=timeout)


def stats(instance="lb"):
    out = subprocess.run(RLB + ["-N", instance, "--json", "-c", "dpip link show -s"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def two_arm(request):
    lab.down()
    lab.up("fnat-two-arm", workers=request.param)
    try:
        yield request.param
    finally:
        lab.down()
        assert not [n for n in sh("ip", "netns", "list").stdout.split() if n.startswith("rlb-")]


def test_ping_lb_addresses_from_client(two_arm):
    rlb("dpip addr add 10.0.0.1/16 dev dpdk1", "dpip addr add 192.168.100.1/24 dev dpdk0")
    for addr in ("10.0.0.1", "192.168.100.1"):
        r = in_node("client", "ping", "-c", "3", "-i", "0.2", "-W", "2", addr)
        assert " 0% packet loss" in r.stdout, r.stdout
    show = rlb("dpip neigh show").stdout
    assert "10.0.0.48" in show and "dpdk1" in show


def test_nginx_on_kni_answers_client_through_dpdk_port(two_arm, tmp_path):
    rlb("dpip addr add 10.0.0.1/16 dev dpdk1")
    in_node("lb", "ip", "addr", "add", "10.0.0.5/16", "dev", "dpdk1.kni")
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"""daemon on; pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;
events {{}}
http {{ access_log off; server {{ listen 10.0.0.5:8080;
  location / {{ return 200 "kernel on kni sees $remote_addr\\n"; }} }} }}
""")
    assert in_node("lb", "nginx", "-c", str(conf), "-p", str(tmp_path)).returncode == 0
    try:
        before = stats()["ports"]
        r = in_node("client", "curl", "-s", "-m", "5", "http://10.0.0.5:8080/")
        assert r.stdout == "kernel on kni sees 10.0.0.48\n"
        after = stats()
        wan = next(p for p in after["ports"] if p["name"] == "dpdk1")["stats"]
        wan0 = next(p for p in before if p["name"] == "dpdk1")["stats"]
        assert wan["to_kni"] > wan0["to_kni"] and wan["from_kni"] > wan0["from_kni"]
        assert wan["ipackets"] > wan0["ipackets"] and wan["opackets"] > wan0["opackets"]
        # with forwarding on, the kernel's address needs a kni_host route (tutorial)
        rlb("dataplane", "forwarding", "dpip route add 10.0.0.5/32 dev dpdk1 scope kni_host")
        r = in_node("client", "curl", "-s", "-m", "5", "http://10.0.0.5:8080/")
        assert r.stdout == "kernel on kni sees 10.0.0.48\n"
    finally:
        pid = int((tmp_path / "nginx.pid").read_text())
        os.kill(pid, 15)


def test_routing_through_the_lb_reaches_both_real_servers(two_arm):
    rlb("dpip addr add 10.0.0.1/16 dev dpdk1", "dpip addr add 192.168.100.1/24 dev dpdk0",
        "dataplane", "forwarding")
    for rs in ("192.168.100.2", "192.168.100.3"):
        for _ in range(5):
            r = in_node("client", "curl", "-s", "-m", "5", f"http://{rs}/")
            assert r.stdout.startswith("Your ip:port : 10.0.0.48:"), r.stdout + r.stderr
    r = in_node("client", "ping", "-c", "1", "-t", "1", "-W", "1", "192.168.100.2")
    assert r.returncode != 0          # TTL 1 dies at the LB
    assert stats()["reasons"]["ttl_exceeded"] >= 1


def test_stop_leaves_no_tap_socket_or_namespace():
    lab.down()
    lab.up("fnat-two-arm")
    try:
        assert "dpdk0.kni" in in_node("lb", "ip", "-o", "link").stdout
        assert os.path.exists(socket_path("lb"))
        lab.stop_lb()
        # the kernel unregisters a tap once the last fd of the dead process is closed
        deadline = time.monotonic() + 5
        while "kni" in in_node("lb", "ip", "-o", "link").stdout and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "kni" not in in_node("lb", "ip", "-o", "link").stdout
        assert not os.path.exists(socket_path("lb"))
        assert "rlb_lb" not in in_node("lb", "nft", "list", "tables").stdout
        r = rlb("dpip addr show", check=False)
        assert r.returncode != 0 and "cannot reach instance" in r.stderr
    finally:
        lab.down()
    assert not [n for n in sh("ip", "netns", "list").stdout.split() if n.startswith("rlb-")]


def test_two_instances_on_one_host(tmp_path):
    lab.down()
    lab.up("fnat-two-arm")
    ns = "rlbt-second"
    make_ns(ns, [("sp0", "sq0")])
    second = Daemon(ns, "second", "dataplane\n port dpdk0 net_af_packet0,iface=sp0\n!\n"
                    "dpip addr add 10.7.0.1/24 dev dpdk0\n", tmp_path)
    try:
        second.start()
        sh("ip", "addr", "add", "10.7.0.2/24", "dev", "sq0", ns=ns)
        rlb("dpip addr add 10.0.0.1/16 dev dpdk1")
        assert " 0% packet loss" in sh("ping", "-c", "2", "-i", "0.2", "10.7.0.1", ns=ns).stdout
        assert " 0% packet loss" in in_node("client", "ping", "-c", "2", "-i", "0.2",
                                            "10.0.0.1").stdout
        assert "10.7.0.1/24" in rlb("dpip addr show", instance="second").stdout
        assert "10.7.0.1" not in rlb("dpip addr show").stdout
    finally:
        assert second.stop() == 0
        del_ns(ns)
        lab.down()


def test_bad_commands_change_nothing_and_fail(two_arm):
    rlb("dpip addr add 10.0.0.1/16 dev dpdk1")
    before = rlb("dpip route show").stdout
    for bad in ("dpip addr add 10.0.0.1/16 dev dpdk1", "dpip route add 10.9.0.0/16 dev nosuch",
                "dpip route add 10.9.0.0/16 via 172.16.0.1 dev dpdk1", "dpip addr ad",
                "dpip route add 10.0.0.0/33 dev dpdk1"):
        r = rlb(bad, check=False)
        assert r.returncode == 1 and "command failed" in r.stderr, bad
    # a batch stops at the first failure: the line after it is not run
    r = rlb("dpip route add 10.8.0.0/16 dev nosuch", "dpip route add 10.9.0.0/16 dev dpdk1",
            check=False)
    assert r.returncode == 1
    assert rlb("dpip route show").stdout == before
