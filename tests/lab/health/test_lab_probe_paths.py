"""Health probes follow each mode's data path, through the real daemon of the lab's
tutorial scenarios (root): the daemon's monitor sets its ProbePaths up in the LB's
namespace; probes run there to the targets a model of the same lines gives (as the
monitor runs them), tcpdump on the real servers; and the daemon's own checks.

DR: at the VIP, only the Ethernet header the real server's; a server without the VIP on
lo is down (its kernel drops the SYN). Tunnel: the same inside IPIP, through the lab's
decapsulator. FNAT: from the local address, while FNAT traffic holds ports of the same
address. NAT: RIP:port from our address on its network. Each with 1 and 2 workers.
The kernel side follows the configuration and goes with the daemon; ProbePaths' sync()
and close() on a namespace of their own leave nothing behind.

The labs run under a namespace prefix, run directory and instance of their own (`rlbp-`,
/run/rlb/plab, `plb`), so they never meet another lab on the same machine."""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap

from rlb import lab
from rlb.commands.base import Context
from rlb.control import paths as control_paths
from rlb.control.config import check, run
from rlb.core.consts import PROBE_PORT_MIN, PROBE_PORTS
from rlb.health import checkers
from rlb.health.path import GATEWAY, RULE_PRIORITY, TABLE_BASE, ProbePaths, Target
from rlb.lab import procs, state, topologies
from support import netns
from support.netns import Wire, in_netns

PREFIX = "rlbp-"
RUN = Path("/run/rlb/plab")
INSTANCE = "plb"
RLB = [sys.executable, "-m", "rlb", "-N", INSTANCE]
WAIT = 10.0                        # the bound of every wait: only a stuck test meets it


def ns(node: str) -> str:
    return PREFIX + node


def in_node(node, *cmd, timeout=30):
    return subprocess.run(["ip", "netns", "exec", ns(node), *cmd], capture_output=True,
                          text=True, timeout=timeout)


def rlb_json(cmd):
    r = subprocess.run(RLB + ["--json", "-c", cmd], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{cmd}: {r.stderr}"
    return json.loads(r.stdout)


def mac(node, dev):
    return in_node(node, "cat", f"/sys/class/net/{dev}/address").stdout.strip()


def kernel_state(node="lb"):
    """What probe paths can leave in the LB's namespace: rules, routes of our tables,
    the gateway's neighbour entries, IPv4 addresses on the kni taps."""
    def ip(*args):
        r = in_node(node, "ip", "-j", *args)
        return json.loads(r.stdout or "[]")
    rules = [r for r in ip("rule") if str(r.get("table")) not in ("local", "main", "default")]
    routes = [r for r in ip("route", "show", "table", "all")
              if str(r.get("table", "")).isdigit() and int(r["table"]) >= TABLE_BASE]
    neigh = [n for n in ip("neigh") if n.get("dst") == GATEWAY]
    addrs = [(a["ifname"], i["local"]) for a in ip("addr") if a["ifname"].endswith(".kni")
             for i in a.get("addr_info", []) if i.get("family") == "inet"]
    return rules, routes, neigh, addrs


def wait(cond, timeout=WAIT, every=0.1):
    return netns.wait(cond, timeout, every)


class Lab:
    """One scenario up with its tutorial lines, and a model of what the daemon holds (the
    same lines on a fresh model: the same slots) for the targets. The daemon's monitor
    syncs its own ProbePaths after each change: the kernel side is the daemon's."""

    def __init__(self, name: str, workers: int):
        self.name, self.workers = name, workers
        self.topo = lab.up(name, workers=workers, tutorial=True)
        text = procs.lb_config(self.topo, workers) + \
            "".join(f"{line}\n" for line in self.topo.lb_script)
        self.model = check(list(enumerate(text.splitlines(), 1)), f"{name}.conf")
        self.paths = ProbePaths(self.model)
        assert wait(lambda: kernel_state()[0]), "the daemon set up no probe path"

    def dest(self, rip: str, vport: int | None = None):
        for svc in self.model.services.table.values():
            for d in svc.dests:
                if str(d.addr) == rip and vport in (None, svc.vport):
                    return svc, d
        raise AssertionError(f"no real server {rip}")

    def target(self, rip: str) -> Target:
        return self.paths.target(*self.dest(rip))

    def probe(self, rip: str, kind: str = "tcp", **given):
        """One check of the real server, as the monitor runs it: in the LB's namespace,
        to its ProbePaths target."""
        t = self.target(rip)
        check = checkers.configure(kind, {"timeout": 1.0} |
                                   {k.replace("_", "-"): v for k, v in given.items()})
        with in_netns(ns("lb")):
            return asyncio.run(check.run(t.addr, t.port, t.source, t.sport))

    def probes_counted(self) -> int:
        return sum(p["stats"]["probes"] for p in rlb_json("dpip link show -s")["ports"])


class Labs:
    def __init__(self):
        self.now: Lab | None = None

    def use(self, name: str, workers: int = 1) -> Lab:
        if self.now is None or (self.now.name, self.now.workers) != (name, workers):
            self.end()
            lab.down()
            self.now = Lab(name, workers)
        return self.now

    def end(self):
        self.now = None


@pytest.fixture(scope="module")
def labs():
    saved = (topologies.NS_PREFIX, state.RUN_DIR, state.SOCK_DIR, state.LB_INSTANCE,
             control_paths.RUN_DIR, os.environ.get("RLB_RUN_DIR"))
    topologies.NS_PREFIX, state.RUN_DIR, state.SOCK_DIR = PREFIX, RUN, RUN
    state.LB_INSTANCE, control_paths.RUN_DIR = INSTANCE, str(RUN)
    os.environ["RLB_RUN_DIR"] = str(RUN)          # the daemon and every `rlb -c`
    labs = Labs()
    try:
        yield labs
    finally:
        try:
            labs.end()
        finally:
            lab.down()
            (topologies.NS_PREFIX, state.RUN_DIR, state.SOCK_DIR, state.LB_INSTANCE,
             control_paths.RUN_DIR, env) = saved
            if env is None:
                os.environ.pop("RLB_RUN_DIR", None)
            else:
                os.environ["RLB_RUN_DIR"] = env
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert not [n for n in left.split() if n.startswith(PREFIX)], left


class Capture:
    """tcpdump in a node: the first frame matching a filter, written to a pcap."""

    def __init__(self, node: str, bpf: str, pcap: Path, iface: str = "eth0"):
        self.pcap = pcap
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns(node), "tcpdump", "-i", iface, "-n", "-U", "-c", "1",
             "-w", str(pcap), bpf], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        end = time.monotonic() + WAIT
        seen = b""
        while b"listening on" not in seen and time.monotonic() < end:
            if select.select([self.proc.stderr], [], [], 0.2)[0]:
                seen += self.proc.stderr.read1(4096)
            if self.proc.poll() is not None:
                break
        if b"listening on" not in seen:
            self.stop()
            raise AssertionError(f"tcpdump did not start: {seen.decode(errors='replace')}")

    def first(self):
        try:
            self.proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            return None
        finally:
            self.stop()
        frames = rdpcap(str(self.pcap))
        return frames[0] if frames else None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()                    # by the PID we started
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self.proc.stderr.close()


@contextlib.contextmanager
def vip_removed(node: str, vip: str):
    """The tutorial's RS-side step undone: the VIP off the real server's lo."""
    in_node(node, "ip", "addr", "del", f"{vip}/32", "dev", "lo")
    try:
        yield
    finally:
        in_node(node, "ip", "addr", "add", f"{vip}/32", "dev", "lo")


def syn_filter(t: Target, dst: str) -> str:
    return (f"tcp and src port {t.sport} and dst host {dst} and dst port {t.port} "
            "and tcp[tcpflags] & tcp-syn != 0")


# ------------------------------------------------------------------------------ DR

@pytest.mark.parametrize("workers", [1, 2])
def test_dr_probes_the_vip_at_the_real_server_s_mac(labs, workers, tmp_path):
    lb = labs.use("dr-one-arm", workers)
    vip, lan_ip = lb.topo.vip, "192.168.100.1"
    if workers == 2:
        # strict reverse-path filtering in the LB: the answers' reverse lookup finds the
        # probe rules too (the kernel dissects the ports for rules with port ranges)
        in_node("lb", "sh", "-c", "for f in /proc/sys/net/ipv4/conf/*/rp_filter; "
                "do echo 1 > $f; done")
    t = lb.target("192.168.100.2")
    assert t == Target(vip, 80, lan_ip, PROBE_PORT_MIN + lb.dest("192.168.100.2")[1].slot)
    before = lb.probes_counted()
    cap = Capture("rs1", syn_filter(t, vip), tmp_path / "dr.pcap")
    assert lb.probe("192.168.100.2").ok
    syn = cap.first()
    assert syn is not None, "no probe SYN reached rs1"
    # the probe as the kernel sent it, to the VIP, only the Ethernet header rs1's
    assert syn[IP].src == lan_ip and syn[IP].dst == vip and syn[TCP].sport == t.sport
    assert syn[Ether].dst == mac("rs1", "eth0")
    assert syn[Ether].src == mac("lb", "veth-dpdk0")
    assert lb.probes_counted() > before                 # taken by the data plane's path
    # the real server saw the probe from the LB's LAN IP at the real server's probe port
    for rip in ("192.168.100.2", "192.168.100.3"):
        port = lb.target(rip).sport
        assert lb.probe(rip, "http", regex=f"Your ip:port : {lan_ip}:{port}").ok, rip
        assert lb.probe(rip, "icmp").ok, rip            # the echo identifier names it
    with vip_removed("rs2", vip):
        r = lb.probe("192.168.100.3")
        assert not r.ok and r.error.startswith("timeout"), r
        assert not lb.probe("192.168.100.3", "http").ok
        assert not lb.probe("192.168.100.3", "icmp").ok
        assert lb.probe("192.168.100.2").ok             # the other one is still up
    assert lb.probe("192.168.100.3").ok                 # and rs2 is back with its VIP


def test_what_the_kernel_sends_to_our_mac_is_checked_and_counted(labs):
    """Frames on the kni to the port's own MAC that are not sound IPv4 are dropped and
    counted, with no mbuf kept; a probe port of no real server is routed like any probe
    (to a VIP: our own, so dropped as no_route); another source leaves as it came."""
    lb = labs.use("dr-one-arm", 2)
    own, lan_ip, vip = mac("lb", "veth-dpdk0"), "192.168.100.1", lb.topo.vip
    wire = Wire(ns("lb"), "dpdk0.kni")
    eth = Ether(src=own, dst=own, type=0x0800)
    bad = {"truncated": bytes(eth) + b"\x45\x00\x00",
           "ip_hdrlen": bytes(eth / IP(src=lan_ip, dst=vip, ihl=4) / TCP()),
           "ip_totlen": bytes(eth / IP(src=lan_ip, dst=vip, len=400) / TCP())}
    first = rlb_json("dpip link show -s")
    before, port0 = first["reasons"], first["ports"][0]["stats"]
    try:
        for _ in range(100):
            for frame in bad.values():
                wire.send(frame)
        wire.send(eth / IP(src=lan_ip, dst=vip) / TCP(sport=PROBE_PORT_MIN + 999, dport=80))
        wire.send(eth / IP(src="192.168.100.77", dst="192.168.100.2") / TCP(sport=1, dport=80))
    finally:
        wire.close()
    end = time.monotonic() + WAIT
    while time.monotonic() < end:
        after = rlb_json("dpip link show -s")
        if after["ports"][0]["stats"]["from_kni"] - port0["from_kni"] >= 302:
            break
        time.sleep(0.2)
    assert {k: after["reasons"][k] - before[k] for k in bad} == {k: 100 for k in bad}
    assert after["reasons"]["no_route"] - before["no_route"] == 1
    stats = after["ports"][0]["stats"]
    assert stats["probes"] - port0["probes"] == 1      # only the one from our own address
    assert stats["tx_pkts"] > port0["tx_pkts"]         # the other source's: out as it came
    assert after["pool"]["in_use"] - first["pool"]["in_use"] < 100   # 300 dropped, none kept


# -------------------------------------------------------------------------- Tunnel

@pytest.mark.parametrize("workers", [1, 2])
def test_tunnel_probes_the_vip_inside_ipip(labs, workers, tmp_path):
    lb = labs.use("tunnel-one-arm", workers)
    vip, lan_ip, rs1 = lb.topo.vip, "10.140.16.48", "10.140.18.33"
    t = lb.target(rs1)
    assert (t.addr, t.port, t.source) == (vip, 80, lan_ip)
    cap = Capture("rs1", f"ip proto 4 and src host {lan_ip} and dst host {rs1}",
                  tmp_path / "tun.pcap")
    assert lb.probe(rs1).ok
    outer = cap.first()
    assert outer is not None, "no IPIP packet reached rs1"
    inner = outer[IP].payload
    assert outer[IP].proto == 4 and outer[IP].src == lan_ip and outer[IP].dst == rs1
    assert isinstance(inner, IP) and inner.src == lan_ip and inner.dst == vip
    assert inner[TCP].sport == t.sport and inner[TCP].dport == 80 and inner[TCP].flags.S
    for rip in (rs1, "10.40.84.170"):                   # on-link, and through the gateway
        port = lb.target(rip).sport
        assert lb.probe(rip, "http", regex=f"Your ip:port : {lan_ip}:{port}").ok, rip
    with vip_removed("rs1", vip):
        r = lb.probe(rs1)
        assert not r.ok and r.error.startswith("timeout"), r
        assert lb.probe("10.40.84.170").ok
    assert lb.probe(rs1).ok


# ---------------------------------------------------------------------------- FNAT

@pytest.mark.parametrize("workers", [1, 2])
def test_fnat_probes_from_the_local_address_beside_its_traffic(labs, workers, tmp_path):
    lb = labs.use("fnat-two-arm", workers)
    lip, rs1, rs2 = "192.168.100.200", "192.168.100.2", "192.168.100.3"
    t = lb.target(rs1)
    assert (t.addr, t.port, t.source) == (rs1, 80, lip)
    cap = Capture("rs1", syn_filter(t, rs1), tmp_path / "fnat.pcap")
    assert lb.probe(rs1).ok
    syn = cap.first()
    assert syn is not None and syn[IP].src == lip and syn[TCP].sport == t.sport
    # nginx (8080) names the connection's source: the LIP at the probe's port
    assert lb.probe(rs1, "http", port=8080,
                    regex=f"Your ip:port : {lip}:{t.sport}").ok
    # the UDP echo (9999) too, and ICMP (the echo identifier is the probe's port)
    seen = f"Your ip:port : {lip}:{t.sport}".encode().hex()
    assert lb.probe(rs1, "udp", port=9999, payload="00", require_reply=seen).ok
    assert lb.probe(rs1, "icmp").ok
    # FNAT traffic on the same LIP meanwhile: every probe stays up, no port is shared
    wrk = subprocess.Popen(["ip", "netns", "exec", ns("client"), "wrk", "-t1", "-c32", "-d4s",
                            f"http://{lb.topo.vip}/"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        results = []
        end = time.monotonic() + 3
        while time.monotonic() < end:
            for rip in (rs1, rs2):
                results += [lb.probe(rip, timeout=2.0),
                            lb.probe(rip, "http", port=8080, timeout=2.0)]
        conns = [c for c in rlb_json("ipvsadm -lnc")["connections"] if c["local"].startswith(lip + ":")]
        out, _ = wrk.communicate(timeout=WAIT + 5)
    finally:
        if wrk.poll() is None:
            wrk.kill()                                    # by the PID we started
            wrk.wait()
    assert results and all(r.ok for r in results), [r for r in results if not r.ok]
    assert "requests in" in out, out
    assert len(conns) >= 16, len(conns)                  # the traffic held LIP ports
    assert all(c["lport"] < PROBE_PORT_MIN for c in conns)


@pytest.mark.parametrize("workers", [1, 2])
def test_nat_probes_rip_port(labs, workers, tmp_path):
    lb = labs.use("nat-one-arm", workers)
    rs1, src = "10.140.18.33", "10.140.31.48"
    t = lb.target(rs1)
    assert (t.addr, t.port, t.source) == (rs1, 80, src)
    cap = Capture("rs1", syn_filter(t, rs1), tmp_path / "nat.pcap")
    assert lb.probe(rs1, "http", regex=f"Your ip:port : {src}:{t.sport}").ok
    syn = cap.first()
    assert syn is not None and syn[IP].src == src and syn[Ether].dst == mac("rs1", "eth0")
    assert lb.probe("10.140.18.34").ok
    assert lb.probe(rs1, "icmp").ok


# ------------------------------------------------------------- the daemon's own checks

def configure(*lines):
    args = RLB + ["-c", "configure"]
    for line in (*lines, "commit"):
        args += ["-c", line]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{lines}: {r.stdout}{r.stderr}"


def health():
    rows = rlb_json("show ip vs health")
    return {s["server"]: s for s in rows[0]["servers"]}


def test_the_daemon_s_checks_find_a_dr_server_without_the_vip_down(labs):
    """The monitor's probes of a DR service take the path: both servers up; rs2 without
    the VIP on lo goes down (its kernel drops the probes to the VIP), and comes back."""
    lb = labs.use("dr-one-arm", 2)
    vip, rs1, rs2 = lb.topo.vip, "192.168.100.2:80", "192.168.100.3:80"
    configure(f"virtual-server tcp {vip}:80",
              *(f" real-server {rs} check tcp interval 0.5 timeout 0.4 fall 1" for rs in (rs1, rs2)))
    assert wait(lambda: {s["state"] for s in health().values()} == {"UP"}), health()
    with vip_removed("rs2", vip.split(":")[0]):
        assert wait(lambda: health()[rs2]["state"] == "DOWN"), health()
        h = health()
        assert "timeout" in h[rs2]["error"] and h[rs1]["state"] == "UP", h
    assert wait(lambda: health()[rs2]["state"] == "UP"), health()


def local_rule_priorities(node="lb"):
    r = in_node(node, "ip", "-j", "rule")
    return sorted(x["priority"] for x in json.loads(r.stdout or "[]")
                  if str(x.get("table")) == "local")


def test_a_vip_the_lb_s_kernel_holds_does_not_take_the_probes(labs):
    """An announced VIP is on the LB's own kni (rlb.routing.announce): the kernel's
    `local` rule comes after the probe rules, so an HTTP check of a DR server (a kernel
    socket to VIP:80) still goes to the server, not to the LB's own kernel."""
    lb = labs.use("dr-one-arm", 2)
    vip, rs1, rs2 = lb.topo.vip, "192.168.100.2:80", "192.168.100.3:80"
    configure(f"virtual-server tcp {vip}:80",
              *(f" real-server {rs} check http interval 0.5 timeout 0.4 fall 1"
                for rs in (rs1, rs2)))
    assert wait(lambda: local_rule_priorities() == [200]), local_rule_priorities()
    in_node("lb", "ip", "addr", "add", f"{vip}/32", "dev", "dpdk0.kni")
    try:
        time.sleep(1.5)                              # three checks of each server
        assert wait(lambda: {s["state"] for s in health().values()} == {"UP"}), health()
        assert all(s["last"] == "ok" for s in health().values()), health()
    finally:
        in_node("lb", "ip", "addr", "del", f"{vip}/32", "dev", "dpdk0.kni")


# ------------------------------------------------------------------- sync and close

def test_the_kernel_side_follows_the_configuration_and_goes_with_the_daemon(labs):
    lb = labs.use("nat-one-arm", 2)
    rules, routes, neigh, addrs = kernel_state()
    assert len(rules) == 2 and len(routes) == 1 and len(neigh) == 1
    assert addrs == [("bond0.kni", "10.140.31.48")]
    # the service goes: its source goes with it; back, and the probes work again
    line = f"ipvsadm -D -t {lb.topo.vip}:80"
    assert subprocess.run(RLB + ["-c", line], capture_output=True, timeout=60).returncode == 0
    assert wait(lambda: kernel_state() == ([], [], [], [])), kernel_state()
    assert local_rule_priorities() == [0]            # back first, as the kernel had it
    for cmd in lb.topo.lb_script:
        if cmd.startswith("ipvsadm"):
            assert subprocess.run(RLB + ["-c", cmd], capture_output=True,
                                  timeout=60).returncode == 0
    assert wait(lambda: kernel_state() == (rules, routes, neigh, addrs)), kernel_state()
    assert lb.probe("10.140.18.33").ok
    # the daemon stops: its monitor closes the paths (the taps go with the data plane)
    assert lab.stop_lb()
    labs.end()
    assert kernel_state() == ([], [], [], [])


@pytest.fixture
def kni_ns():
    """A namespace of its own with an interface named as a kni (a veth: ProbePaths only
    needs its name and MAC), nothing else."""
    name = ns("kern")
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for cmd in (["link", "add", "dpdk0.kni", "type", "veth", "peer", "name", "kni-peer"],
                    ["link", "set", "dpdk0.kni", "up"], ["link", "set", "kni-peer", "up"]):
            subprocess.run(["ip", "-n", name, *cmd], check=True)
        yield "kern"
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_sync_and_close_leave_nothing_behind(kni_ns):
    topo = topologies.get("fnat-two-arm")
    text = procs.lb_config(topo, 1) + "".join(f"{line}\n" for line in topo.lb_script)
    model = check(list(enumerate(text.splitlines(), 1)), "fnat.conf")
    paths = ProbePaths(model)
    lip, kni_mac = "192.168.100.200", mac(kni_ns, "dpdk0.kni")
    nothing = ([], [], [], [])
    assert kernel_state(kni_ns) == nothing
    with in_netns(ns(kni_ns)):
        paths.sync()
    assert paths.problems == []
    made = kernel_state(kni_ns)
    rules, routes, neigh, addrs = made
    last = PROBE_PORT_MIN + PROBE_PORTS - 1
    assert sorted(((r["src"], r["priority"], r["table"], r.get("sport_start", 0),
                    r.get("sport_end", 0), r.get("ipproto", "")) for r in rules)) == \
        [(lip, RULE_PRIORITY, str(TABLE_BASE), 0, 0, "icmp"),
         (lip, RULE_PRIORITY, str(TABLE_BASE), PROBE_PORT_MIN, last, "")], rules
    assert [(r["dst"], r["gateway"], r["dev"], "onlink" in r.get("flags", []))
            for r in routes] == [("default", GATEWAY, "dpdk0.kni", True)]
    assert [(n["lladdr"], n["state"]) for n in neigh] == [(kni_mac, ["PERMANENT"])]
    assert addrs == [("dpdk0.kni", lip)]
    with in_netns(ns(kni_ns)):
        paths.sync()                                    # again: nothing doubles
    assert kernel_state(kni_ns) == made
    run(Context(model), "ipvsadm -D -t 10.0.0.100:80")  # the service goes, and its source
    with in_netns(ns(kni_ns)):
        paths.sync()
    assert kernel_state(kni_ns) == nothing
    for line in topo.lb_script:
        if line.startswith("ipvsadm"):
            run(Context(model), line)
    with in_netns(ns(kni_ns)):
        paths.sync()
        assert kernel_state(kni_ns) == made
        paths.close()
    assert kernel_state(kni_ns) == nothing
    # an address the kernel had already is the operator's: used, and left there
    in_node(kni_ns, "ip", "addr", "add", f"{lip}/24", "dev", "dpdk0.kni")
    with in_netns(ns(kni_ns)):
        paths.sync()
        assert len(kernel_state(kni_ns)[0]) == 2
        paths.close()
    assert kernel_state(kni_ns) == ([], [], [], [("dpdk0.kni", lip)])
    # no kni at all: said, never raised
    in_node(kni_ns, "ip", "link", "del", "dpdk0.kni")
    with in_netns(ns(kni_ns)):
        paths.sync()
        paths.close()
    assert paths.problems == ["no interface dpdk0.kni: probes of dpdk0 cannot start"]
