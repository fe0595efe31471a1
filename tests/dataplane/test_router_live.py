"""`router ospf` in a real daemon (rlb/routing/router.py): rlb starts FRR (zebra, ospfd,
bfdd) in its namespace from its own configuration, OSPF comes up Full with a peer FRR
across the data plane's kni path, FRR's shows answer in rlb's shell (`| json` too), a
commit that changes a setting reaches ospfd without restarting it, a rollback takes it
back, a killed ospfd is started again, and `no router ospf` stops FRR.

The peer is an FRR of the test's own (rlb.routing.frr) in a namespace of its own, on
the other end of dpdk1's veth."""
import json
import os
import shutil
import signal
import tempfile
from functools import partial
from pathlib import Path

import pytest

from rlb.routing.frr import Frr
from support import netns
from support.netns import Daemon, del_ns, make_ns, sh, two_ports, wait

NS, PEER, INSTANCE = "rlbt-router", "rlbt-router-peer", "rlbt-router"
Session = partial(netns.Session, INSTANCE)
OSPF = ("router ospf", " ospf router-id 172.10.0.2", " network 172.10.0.0/30 area 0",
        " interface dpdk1 point-to-point hello-interval 1 dead-interval 4", "!")
PEER_OSPFD = ("hostname peer\ninterface tp1\n ip ospf network point-to-point\n"
              " ip ospf hello-interval 1\n ip ospf dead-interval 4\n!\n"
              "router ospf\n ospf router-id 172.10.0.1\n network 172.10.0.0/30 area 0\n"
              " network 10.9.9.0/24 area 0\n!\n")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    d = tmp_path_factory.mktemp("router")
    base = Path(tempfile.mkdtemp(prefix="rlbt-router-"))
    base.chmod(0o755)
    make_ns(NS, [("dp0", "tp0"), ("dp1", "tp1")])
    del_ns(PEER)
    sh("ip", "netns", "add", PEER)
    sh("ip", "-n", NS, "link", "set", "tp1", "netns", PEER)
    for cmd in (("addr", "add", "172.10.0.1/30", "dev", "tp1"), ("link", "set", "tp1", "up"),
                ("link", "set", "lo", "up"), ("addr", "add", "10.9.9.1/24", "dev", "lo")):
        sh("ip", "-n", PEER, *cmd)
    peer = Frr(base / "peer", PEER)
    peer.start({"ospfd": PEER_OSPFD})
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


def full(d):
    r = d.call("show ip ospf neighbor | json")
    if not r["ok"]:
        return False
    nbrs = json.loads(r["text"]).get("neighbors", {})
    return any(n[0]["state"].startswith("Full") for n in nbrs.values())


def frr_pid(daemon_name):
    d = Path(f"/run/rlb/{INSTANCE}-frr")
    return int((d / f"{daemon_name}.pid").read_text().split()[0])


def test_frr_runs_from_the_configuration_and_ospf_comes_up(lab):
    assert wait(lambda: full(lab), 30), lab.call("show ip ospf neighbor")
    text = lab.ok("show ip ospf neighbor")["text"]
    assert "172.10.0.1" in text and "Full" in text
    assert wait(lambda: "10.9.9.1" in lab.ok("show ip ospf route")["text"], 20)
    assert "10.9.9.1" in lab.ok("show ip route ospf")["text"]


def test_a_commit_reaches_ospfd_without_restarting_it_and_rollback_takes_it_back(lab):
    assert wait(lambda: full(lab), 30)
    pid = frr_pid("ospfd")
    mine = Frr(Path(f"/run/rlb/{INSTANCE}-frr"), NS)
    s = Session()
    try:
        s.ok("enable", "configure", "router ospf", "maximum-paths 4")
        s.ok("commit")
        assert wait(lambda: "maximum-paths 4" in mine.vtysh("show running-config"), 15)
        assert frr_pid("ospfd") == pid and full(lab)
        s.ok("rollback 1", "commit")
    finally:
        s.close()
    assert wait(lambda: "maximum-paths 4" not in mine.vtysh("show running-config"), 15)
    assert frr_pid("ospfd") == pid


def test_bfd_on_an_interface_starts_bfdd_and_a_killed_ospfd_comes_back(lab):
    s = Session()
    try:
        s.ok("enable", "configure", "router ospf",
             "interface dpdk1 point-to-point hello-interval 1 dead-interval 4 bfd")
        s.ok("commit")
    finally:
        s.close()
    mine = Frr(Path(f"/run/rlb/{INSTANCE}-frr"), NS, daemons=("bfdd", "ospfd"))
    assert wait(lambda: mine.pid("bfdd") is not None, 15)
    assert wait(lambda: "ip ospf bfd" in mine.vtysh("show running-config"), 15)
    assert lab.call("show bfd peers")["ok"]
    pid = frr_pid("ospfd")
    os.kill(pid, signal.SIGKILL)
    assert wait(lambda: mine.pid("ospfd") not in (None, pid), 20)
    assert wait(lambda: full(lab), 30)


def test_every_line_of_the_section_and_its_no_form_reaches_ospfd(lab):
    mine = Frr(Path(f"/run/rlb/{INSTANCE}-frr"), NS)

    def has(text):
        return text in mine.vtysh("show running-config")
    s = Session()
    try:
        s.ok("enable", "configure", "router ospf", "network 10.7.0.0/24 area 0.0.0.1",
             "maximum-paths 2", "ospf router-id 172.10.0.22", "interface dpdk0 passive cost 7")
        s.ok("commit")
        assert wait(lambda: has("network 10.7.0.0/24 area 0.0.0.1") and
                    has("maximum-paths 2") and has(" ip ospf passive") and has(" ip ospf cost 7"), 15)
        s.ok("router ospf", "no network 10.7.0.0/24", "no maximum-paths", "no ospf router-id",
             "no interface dpdk0")
        s.ok("commit")
        assert wait(lambda: not has("10.7.0.0/24") and not has("maximum-paths 2") and
                    not has(" ip ospf passive"), 15)
        # back as it was (FRR keeps a router-id until ospfd restarts: `clear ip ospf`)
        s.ok("router ospf", "ospf router-id 172.10.0.2")
        s.ok("commit")
        for line, why in (("interface dpdk7", "dpdk7"), ("interface dpdk1 hello-interval 5 "
                          "dead-interval 5", "longer than hello-interval"),
                          ("network 10.8.0.0/24 area 1.2.3", "Invalid input"),
                          ("no network 10.9.0.0/24", "not in router ospf")):
            r = s(line)
            assert not r["ok"] and why in r["error"], (line, r)
    finally:
        s.close()
    assert wait(lambda: full(lab), 30)


def test_frr_lines_reach_ospfd_and_a_line_frr_refuses_is_refused_at_commit(lab):
    """`frr LINE` passes FRR's own words under `router ospf`; one FRR does not take is
    refused at commit with FRR's message (vtysh --dryrun), and nothing changes."""
    mine = Frr(Path(f"/run/rlb/{INSTANCE}-frr"), NS)
    before = lab.ok("show running-config")["text"]
    s = Session()
    try:
        s.ok("enable", "configure", "router ospf", "frr area 0.0.0.1 stubby")
        r = s("commit")
        assert not r["ok"], r
        assert "FRR refused the configuration" in r["error"] and \
            "Unknown command" in r["error"] and "area 0.0.0.1 stubby" in r["error"], r
        assert "Traceback" not in r["error"]
        s.ok("rollback 0")
    finally:
        s.close()
    assert lab.ok("show running-config")["text"] == before
    assert "stubby" not in mine.vtysh("show running-config")
    s = Session()
    try:
        s.ok("enable", "configure", "router ospf", "frr auto-cost reference-bandwidth 1000",
             "commit")
        assert wait(lambda: "auto-cost reference-bandwidth 1000" in
                    mine.vtysh("show running-config"), 15)
        assert " frr auto-cost reference-bandwidth 1000" in \
            lab.ok("show running-config")["text"]
        s.ok("router ospf", "no frr auto-cost reference-bandwidth 1000", "commit")
        assert wait(lambda: "reference-bandwidth 1000" not in
                    mine.vtysh("show running-config"), 15)
    finally:
        s.close()


def test_no_router_ospf_stops_frr(lab):
    assert lab.ok("show running-config")["text"].count("router ospf") == 1
    s = Session()
    try:
        s.ok("enable", "configure", "no router ospf", "commit")
    finally:
        s.close()
    mine = Frr(Path(f"/run/rlb/{INSTANCE}-frr"), NS, daemons=("bfdd", "ospfd"))
    assert wait(lambda: mine.dead() == ["zebra", "bfdd", "ospfd"], 15)
    assert wait(lambda: "no routing daemon runs" in
                lab.call("show ip ospf neighbor").get("error", ""), 10)


def test_the_operator_s_own_frr_answers_and_router_ospf_is_refused_beside_it(lab):
    """`routing frr vty-socket DIR`: rlb runs no FRR of its own and FRR's shows ask the
    operator's (here the peer's daemons, a vty socket directory like any other); a
    `router ospf` beside it is refused at commit, in words, and nothing changes."""
    s = Session()
    try:
        s.ok("enable", "configure", "no router ospf", f"routing frr vty-socket {lab.peer.dir}",
             "commit")
        assert wait(lambda: "10.9.9.1/32" in lab.call("show ip ospf route").get("text", ""),
                    15), (lab.call("show ip ospf route"), lab.peer.vtysh("show ip ospf route"))
        assert f" routing frr vty-socket {lab.peer.dir}" not in \
            lab.ok("show running-config")["text"]          # top level, not indented
        assert f"routing frr vty-socket {lab.peer.dir}" in lab.ok("show running-config")["text"]
        before = lab.ok("show running-config")["text"]
        s.ok("router ospf", "ospf router-id 172.10.0.2")
        r = s("commit")
        assert not r["ok"] and "FRR is the operator's (routing frr vty-socket" in r["error"], r
        s.ok("rollback 0")
        assert lab.ok("show running-config")["text"] == before
        assert not Path(f"/run/rlb/{INSTANCE}-frr/zebra.pid").exists() or \
            Frr(Path(f"/run/rlb/{INSTANCE}-frr"), NS).pid("zebra") is None
        s.ok("no routing frr", "commit")
    finally:
        s.close()
    assert wait(lambda: "no routing daemon runs" in
                lab.call("show ip ospf route").get("error", ""), 10)
