"""The tutorial's "simple FNAT two-arm" on a bond ("bond-two-arm"): the WAN is bond0, an
802.3ad (mode 4) bond of dpdk1 and dpdk2, whose partner is an Open vSwitch (userspace
datapath, in rlb-ovs) with an LACP bond (active, fast, balance-tcp) that also holds the
client. LACP is negotiated with the switch's system id on both slaves, curl through the
VIP reaches both real servers, and one link of the bond taken down on the switch's side
(while keep-alive sessions and a curl loop run) breaks no request."""
import re
import subprocess
import time

import pytest

from rlb import lab
from rlb.lab import procs, state, topologies
from rlb.lab.topologies import OVS_BOND, OVS_NODE, get, ns_name
from support.cluster import Sessions, failures, rlb, until

TOPO = get("bond-two-arm")
VIP = TOPO.vip
LACP_WAIT = 15.0        # fast LACP: both ends agree in a few LACPDUs (1 s apart)
# the LB's slave -> the switch's member at the other end of its veth
MEMBERS = dict(zip(topologies.BOND.slaves, dict(TOPO.node(OVS_NODE).ovs.bonds)[OVS_BOND]))


def client(*cmd, timeout=60):
    return subprocess.run(["ip", "netns", "exec", "rlb-client", *cmd], capture_output=True,
                          text=True, timeout=timeout)


def curl(path="/", port=80, timeout=5):
    return client("curl", "-s", "-m", str(timeout), f"http://{VIP}:{port}{path}")


def bond():
    return rlb("lb", "dpip link show bond0", as_json=True)["ports"][0]["bond"]


def sent():
    """Frames each slave of bond0 sent, by name."""
    return {x["name"]: x["stats"]["opackets"] for x in bond()["slaves"]}


def ovs():
    return procs.ovs_of(OVS_NODE)


def negotiated():
    """Both slaves active, selected, with the switch's bond as their LACP partner; and
    the switch sees both members current and attached (its partner: our bond)."""
    sys_id = ovs().lacp_status(OVS_BOND)["sys_id"]
    slaves = bond()["slaves"]
    ours = len(slaves) == 2 and all(
        s["up"] and s["active"] and s["lacp"]["selected"] == "selected"
        and s["lacp"]["partner"]["system"] == sys_id for s in slaves)
    theirs = ovs().lacp_status(OVS_BOND)
    return ours and theirs["negotiated"] and all(
        m["status"] == "current" and m["attached"] for m in theirs["members"].values())


@pytest.fixture(scope="module")
def bond_lab():
    lab.down()
    try:
        t = time.monotonic()
        lab.up(TOPO.name, tutorial=True)
        assert until(negotiated, LACP_WAIT, step=0.2), (
            bond(), ovs().appctl("lacp/show", OVS_BOND))
        print(f"\nbond-two-arm up and LACP negotiated in {time.monotonic() - t:.1f}s")
        yield
    finally:
        lab.down()


def test_the_switch_runs_in_its_namespace_and_is_in_the_lab_s_state(bond_lab):
    st = state.load()
    recs = {k: v for k, v in st["processes"].items() if k.endswith(f"@{OVS_NODE}")}
    assert set(recs) == {f"ovsdb-server@{OVS_NODE}", f"ovs-vswitchd@{OVS_NODE}"}
    pids = set(subprocess.run(["ip", "netns", "pids", ns_name(OVS_NODE)], capture_output=True,
                              text=True).stdout.split())
    assert all(state.alive(r) and str(r["pid"]) in pids for r in recs.values()), recs
    assert "bond bond0 mode 4 slaves dpdk1 dpdk2" in state.lb_conf().read_text()


def test_lacp_partner_is_the_switch_s_bond(bond_lab):
    b = bond()
    assert b["mode"] == 4 and b["primary"] == "dpdk1"
    sys_id = ovs().lacp_status(OVS_BOND)["sys_id"]
    by = {s["name"]: s for s in b["slaves"]}
    assert set(by) == {"dpdk1", "dpdk2"}
    for s in by.values():
        assert s["up"] and s["active"], s
        assert s["lacp"]["selected"] == "selected", s
        assert s["lacp"]["partner"]["system"] == sys_id, s
        assert {"collecting", "distributing"} <= set(s["lacp"]["partner"]["state"]), s
    # and the switch's side: both members in the aggregate, their partner our bond
    theirs = ovs().lacp_status(OVS_BOND)
    bond_mac = rlb("lb", "dpip link show bond0", as_json=True)["ports"][0]["mac"].lower()
    for m in theirs["members"].values():
        assert m["partner_sys_id"] == bond_mac, theirs
    assert ovs().bond_status(OVS_BOND)["lacp_status"] == "negotiated"


def test_curl_through_the_vip_over_the_bond(bond_lab):
    for _ in range(6):
        r = curl()
        assert re.fullmatch(r"Your ip:port : 10\.0\.0\.48:\d+\n", r.stdout), r.stdout + r.stderr
    text = rlb("lb", "ipvsadm -ln --stats")
    conns = [int(m) for m in re.findall(r"-> 192\.168\.100\.\d:80\s+(\d+)", text)]
    assert len(conns) == 2 and min(conns) >= 3, text      # both real servers, in turn


def test_one_link_down_on_the_switch_breaks_no_request(bond_lab):
    """Keep-alive sessions (spread over both links by balance-tcp and layer34) and a curl
    loop run while the switch's member facing dpdk1 goes down, and come back up."""
    assert until(negotiated, LACP_WAIT, step=0.2)
    down = MEMBERS["dpdk1"]
    loop = subprocess.Popen(
        ["ip", "netns", "exec", "rlb-client", "sh", "-c",
         f"for i in $(seq 40); do curl -s -m 5 -o /dev/null -w '%{{http_code}}\\n' "
         f"http://{VIP}/ || echo fail; sleep 0.1; done"],
        stdout=subprocess.PIPE, text=True)
    try:
        with Sessions(8, 45000, count=8, vip=VIP) as s:
            before = sent()
            time.sleep(2)
            # both links carry the sessions' answers (layer34): the one going down too
            assert all(n - before[k] > 20 for k, n in sent().items()), (before, sent())
            subprocess.run(["ip", "-n", ns_name(OVS_NODE), "link", "set", down, "down"],
                           check=True)
            t = time.monotonic()
            # the LB's dpdk1 lost its carrier: out of the bond, dpdk2 carries everything
            # (DPDK moves the primary to dpdk2 and lists it first)
            assert until(lambda: {x["name"]: x["active"] for x in bond()["slaves"]}
                         == {"dpdk1": False, "dpdk2": True}, 10, step=0.1), bond()
            gone = time.monotonic() - t
            res = s.result()
        codes, _ = loop.communicate(timeout=60)
    finally:
        if loop.poll() is None:
            loop.kill()
            loop.wait()
        subprocess.run(["ip", "-n", ns_name(OVS_NODE), "link", "set", down, "up"])
    print(f"\ndpdk1 out of bond0 {gone:.2f}s after the switch's link went down")
    assert res["failed"] == 0 and res["connections"] == 8, failures(res)
    assert res["answered"] == res["requests"] > 8 * 50
    assert codes.split() == ["200"] * 40, codes
    # later curls succeed, on one link ...
    for _ in range(4):
        assert curl().stdout.startswith("Your ip:port : 10.0.0.48:")
    # ... and with the link back, LACP takes it into the aggregate again
    t = time.monotonic()
    assert until(negotiated, LACP_WAIT, step=0.2), (bond(), ovs().appctl("lacp/show", OVS_BOND))
    print(f"dpdk1 back in bond0 {time.monotonic() - t:.2f}s after its link came up")
    for _ in range(4):
        assert curl().stdout.startswith("Your ip:port : 10.0.0.48:")
