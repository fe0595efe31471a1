"""Control packets never starve (issue: routing, item 7; DPVS #383, #457): a flood of
64-byte frames at the data port (bench/cgen, the generator of bench/forward.py, as fast
as it can for FLOOD seconds) while OSPF (hello 1 s, dead 4 s) and BFD (300 ms x 3) run
through the data plane's kni path to a peer FRR. Neither the adjacency nor the BFD
session goes down, and the flood did reach the data plane (its counters say so)."""
import json
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from rlb.routing.frr import Frr
from support.netns import Daemon, del_ns, make_ns, sh, two_ports, wait

NS, PEER, INSTANCE = "rlbt-flood", "rlbt-flood-peer", "rlbt-flood"
FLOOD = 15.0                 # seconds of flood
CGEN_DIR = Path(__file__).resolve().parents[2] / "bench" / "cgen"
OSPF = ("router ospf", " ospf router-id 172.10.0.2", " network 172.10.0.0/30 area 0",
        " interface dpdk1 point-to-point hello-interval 1 dead-interval 4 bfd", "!")
PEER_OSPFD = ("hostname peer\ninterface tp1\n ip ospf network point-to-point\n"
              " ip ospf hello-interval 1\n ip ospf dead-interval 4\n ip ospf bfd\n!\n"
              "router ospf\n ospf router-id 172.10.0.1\n network 172.10.0.0/30 area 0\n!\n")


def mac(ns, dev):
    return json.loads(sh("ip", "-j", "link", "show", dev, ns=ns).stdout)[0]["address"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    r = subprocess.run(["make", "-s", "-C", str(CGEN_DIR)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    d = tmp_path_factory.mktemp("flood")
    base = Path(tempfile.mkdtemp(prefix="rlbt-flood-"))
    base.chmod(0o755)
    make_ns(NS, [("dp0", "tp0"), ("dp1", "tp1")])
    del_ns(PEER)
    sh("ip", "netns", "add", PEER)
    sh("ip", "-n", NS, "link", "set", "tp1", "netns", PEER)
    for cmd in (("addr", "add", "172.10.0.1/30", "dev", "tp1"), ("link", "set", "tp1", "up"),
                ("link", "set", "lo", "up")):
        sh("ip", "-n", PEER, *cmd)
    peer = Frr(base / "peer", PEER, daemons=("bfdd", "ospfd"))
    peer.start({"ospfd": PEER_OSPFD, "bfdd": "bfd\n!\n"})
    conf = two_ports() + "".join(f"{line}\n" for line in (
        "dpip route add 172.10.0.2/32 dev dpdk1 scope kni_host",
        "dpip route add 172.10.0.0/30 dev dpdk1", *OSPF))
    daemon = Daemon(NS, INSTANCE, conf, d).start()
    sh("ip", "-n", NS, "addr", "add", "172.10.0.2/30", "dev", "dpdk1.kni")
    daemon.peer = peer
    try:
        yield daemon
    finally:
        rc = daemon.stop()
        peer.stop()
        del_ns(NS)
        del_ns(PEER)
        shutil.rmtree(base, ignore_errors=True)
        assert rc == 0, daemon.log.read_text()


def dpdk1(stats):
    return next(r["stats"] for r in stats["ports"] if r["name"] == "dpdk1")


def peer_state(peer):
    """(OSPF neighbour state, BFD status, BFD session down events) as the peer sees us."""
    nbrs = json.loads(peer.vtysh("show ip ospf neighbor json")).get("neighbors", {})
    ospf = next((n[0]["state"] for n in nbrs.values()), "none")
    bfd = json.loads(peer.vtysh("show bfd peers json") or "[]")
    counters = json.loads(peer.vtysh("show bfd peers counters json") or "[]")
    return (ospf, bfd[0]["status"] if bfd else "none",
            counters[0].get("session-down", 0) if counters else 0)


def test_ospf_stays_full_and_bfd_up_through_a_flood(lab):
    assert wait(lambda: peer_state(lab.peer)[:2] == ("Full/-", "up"), 40), \
        peer_state(lab.peer)
    downs = peer_state(lab.peer)[2]
    rx0 = dpdk1(lab.stats())
    cmd = ["ip", "netns", "exec", PEER, "taskset", "-c", "0", str(CGEN_DIR / "cgen"), "--iface", "tp1",
           "--src-mac", mac(PEER, "tp1"), "--dst-mac", mac(NS, "dp1"),
           "--src-ip", "10.9.9.1", "--dst-ip", "10.8.8.8", "--flows", "64",
           "--seconds", str(FLOOD), "--mode", "mmsg"]
    seen = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                seen.append(peer_state(lab.peer))
            except Exception as e:            # a vtysh that did not answer: said below
                seen.append(("error", str(e), -1))
            time.sleep(0.3)
    t = threading.Thread(target=sample)
    t.start()
    try:
        gen = subprocess.run(cmd, capture_output=True, text=True, timeout=FLOOD + 30)
    finally:
        stop.set()
        t.join()
    assert gen.returncode == 0, gen.stderr
    sent = json.loads(gen.stdout.strip().splitlines()[-1])
    after = lab.stats()
    rx = dpdk1(after)
    got = rx["ipackets"] - rx0["ipackets"]
    lost = rx.get("lost_before_port", 0) - rx0.get("lost_before_port", 0)
    print(f"\nflood: {sent}; dpdk1 received {got} packets, {lost} lost before the port "
          f"(its ring full); {len(seen)} samples; reasons "
          f"{ {k: v for k, v in after['reasons'].items() if v} }")
    assert got > 100_000 * FLOOD / 10, (sent, got)     # it was a flood
    assert len(seen) >= FLOOD / 2
    assert [s for s in seen if s[:2] != ("Full/-", "up")] == [], seen
    assert peer_state(lab.peer)[2] == downs            # no BFD session went down
