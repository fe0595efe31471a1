"""The tutorial's DR (one-arm, two-arm) and tunnel (one-arm) scenarios, verbatim, in the
lab: curl through the VIP shows the client's own address from both real servers, and
what the real servers receive is the client's packet (DR: only the Ethernet header new;
tunnel: inside IPIP from the LB's LAN IP)."""
import json
import re
import subprocess
import sys

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from rlb import lab
from rlb.lab import decap
from rlb.lab.topologies import get
from support import tutorial
from support.netns import Wire, sh

RLB = [sys.executable, "-m", "rlb", "-N", "lb"]
# topology -> (client address, the rs nodes, display name, the LB's source towards them)
SCENARIOS = {
    "dr-one-arm": ("192.168.100.46", ("rs1", "rs2"), "Route", None),
    "dr-two-arm": ("10.0.0.48", ("rs1", "rs2"), "Route", None),
    "tunnel-one-arm": ("10.140.20.46", ("rs1", "rs2"), "Tunnel", "10.140.16.48"),
}
RS_ADDR = {"dr-one-arm": {"rs1": "192.168.100.2", "rs2": "192.168.100.3"},
           "dr-two-arm": {"rs1": "192.168.100.2", "rs2": "192.168.100.3"},
           "tunnel-one-arm": {"rs1": "10.140.18.33", "rs2": "10.40.84.170"}}
PARAMS = [("dr-one-arm", 1), ("dr-two-arm", 1), ("tunnel-one-arm", 1), ("tunnel-one-arm", 2)]
IDS = [f"{t}-{w}w" for t, w in PARAMS]
every_scenario = pytest.mark.parametrize("scenario", PARAMS, ids=IDS, indirect=True)
tunnel_scenarios = pytest.mark.parametrize("scenario", PARAMS[2:], ids=IDS[2:], indirect=True)


def rlb(*cmds, as_json=False):
    args = RLB + (["--json"] if as_json else [])
    for c in cmds:
        args += ["-c", c]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{cmds}: {r.stderr}"
    return json.loads(r.stdout) if as_json else r.stdout


def in_node(node, *cmd, timeout=60):
    return subprocess.run(["ip", "netns", "exec", f"rlb-{node}", *cmd], capture_output=True,
                          text=True, timeout=timeout)


def mac(node, dev):
    return in_node(node, "cat", f"/sys/class/net/{dev}/address").stdout.strip()


@pytest.fixture(scope="module")
def scenario(request):
    name, workers = request.param
    lab.down()
    try:
        yield lab.up(name, workers=workers, tutorial=True)   # the tutorial's lines on the LB
    finally:
        lab.down()
    assert not [n for n in sh("ip", "netns", "list").stdout.split() if n.startswith("rlb-")]


def curl(topo, port=80, *extra):
    r = in_node("client", "curl", "-s", "-m", "5", *extra, f"http://{topo.vip}:{port}/")
    return r.stdout + r.stderr


@every_scenario
def test_curl_shows_the_client_from_both_real_servers(scenario):
    client, _, display, _ = SCENARIOS[scenario.name]
    for _ in range(6):
        out = curl(scenario)
        assert re.fullmatch(rf"Your ip:port : {re.escape(client)}:\d+\n", out), out
    text = rlb("ipvsadm -ln --stats")
    conns = {m[0]: int(m[1]) for m in re.findall(r"-> (\S+):80\s+(\d+)", text)}
    assert set(conns) == set(RS_ADDR[scenario.name].values()), text
    assert min(conns.values()) >= 3, text                    # rr: both, in turn
    listing = rlb("ipvsadm -ln")
    assert len(re.findall(rf"^  -> \S+:80 +{display} ", listing, re.M)) == 2, listing


def received(topo, n=4):
    """curl n times while listening on every real server's eth0; return, per curl, the
    client port and the first frame of that connection some real server received."""
    client = SCENARIOS[topo.name][0]
    wires = {rs: Wire(f"rlb-{rs}", "eth0") for rs in SCENARIOS[topo.name][1]}
    own = {rs: mac(rs, "eth0") for rs in wires}
    try:
        for w in wires.values():
            w.drain()
        ports = []
        for _ in range(n):
            out = curl(topo)
            m = re.fullmatch(rf"Your ip:port : {re.escape(client)}:(\d+)\n", out)
            assert m, out
            ports.append(int(m.group(1)))
        seen = {}
        for rs, w in wires.items():
            # frames for this real server only (a bridge floods what it has not learned)
            for f in w.recv_all(lambda f: Ether(f).dst == own[rs], timeout=0.3):
                p = Ether(f)
                inner = p[IP].payload if IP in p and p[IP].proto == 4 else p
                if IP in inner and TCP in inner and inner[TCP].sport in ports:
                    seen.setdefault(inner[TCP].sport, (rs, p))
        return ports, seen
    finally:
        for w in wires.values():
            w.close()


@every_scenario
def test_what_the_real_servers_receive(scenario):
    client, rs_nodes, _, tunnel_src = SCENARIOS[scenario.name]
    lb_mac = mac("lb", "veth-dpdk0")
    ports, seen = received(scenario)
    assert sorted(seen) == sorted(ports), "every connection reached a real server"
    assert {rs for rs, _ in seen.values()} == set(rs_nodes)
    for port, (rs, p) in seen.items():
        rs_mac = mac(rs, "eth0")
        assert p.dst == rs_mac
        if tunnel_src is None:
            # DR: the client's own packet, to the real server's MAC from the LB's
            assert p.src == lb_mac and p[IP].proto == 6
            assert (p[IP].src, p[IP].dst, p[TCP].dport) == (client, scenario.vip, 80)
            assert p[IP].ttl == 64, "DR does not route: the client's TTL arrives"
            continue
        # tunnel: IPIP from the LB's LAN IP; rs2 is behind the router (one hop more)
        outer, inner = p[IP], p[IP].payload
        assert (outer.proto, outer.src, outer.dst) == (4, tunnel_src, RS_ADDR[scenario.name][rs])
        assert (inner.src, inner.dst, inner[TCP].dport) == (client, scenario.vip, 80)
        assert inner.ttl == 64
        if rs == "rs1":
            assert p.src == lb_mac and outer.ttl == 64
        else:
            assert p.src == mac("router", "eth1") and outer.ttl == 63


@tunnel_scenarios
def test_tunnel_path_mtu_and_decapsulators(scenario):
    procs = lab.status()["processes"]
    decaps = {k: v for k, v in procs.items() if v.get("kind") == "decap"}
    if not decap.kernel_ipip():
        assert set(decaps) == {"decap@rs1", "decap@rs2"} and all(
            v["alive"] for v in decaps.values()), procs
    # a body bigger than the tunnel's MTU: the LB answers "fragmentation needed" (MTU
    # 1480) to the client's full-size DF segments, the client lowers its path MTU
    rlb(*get("tunnel-one-arm").script(net=False, vport=8080))
    try:
        in_node("client", "ip", "route", "flush", "cache")
        body = "a" * 20000
        for _ in range(2):
            r = in_node("client", "curl", "-s", "-m", "10", "--data-binary", body,
                        "http://10.140.31.48:8080/")
            assert r.stdout.startswith("Your ip:port : 10.140.20.46:"), r.stdout + r.stderr
        assert "mtu 1480" in in_node("client", "ip", "route", "get", "10.140.31.48").stdout
    finally:
        rlb("ipvsadm -D -t 10.140.31.48:8080")


def test_tutorial_scripts_are_the_topologies():
    """The lab's scripts are the tutorial's lines (tutorial order: LAN IP before VIP)."""
    text = tutorial.text()
    for name in ("dr-one-arm", "tunnel-one-arm"):
        for line in get(name).lb_script:
            assert f"./{line}\n" in text, line
