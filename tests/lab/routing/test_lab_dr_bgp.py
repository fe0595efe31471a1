"""DR with the Maglev scheduler in the BGP cluster, for real ("dr-bgp-two-arm"): lb1 and
lb2 announce the VIP by exabgp, the switch spreads flows over them (ECMP per 5-tuple),
the real servers answer the client straight through the switch. A keep-alive client
(rlb.lab.sessions: 16 sessions, a request each every 50 ms) holds its connections
while the switch moves them from one LB to the other and back: a drain, then a rolling
restart of both LBs, and not one request fails; the other LB takes each moved flow on
by the Maglev table (`adopted`). The control: the same drain with round robin breaks
the moved sessions (their segments reach an LB that cannot know their server)."""
import time

import pytest

from rlb.lab import manage
from rlb.lab.topologies import OSPF_VIP, get
from support.cluster import Sessions, cluster_up, failures, in_node, nexthops, rlb, until

TOPO = get("dr-bgp-two-arm")
BOTH = ["172.10.0.2", "172.10.0.6"]
UP_WAIT = 30.0
SVC = f"-t {OSPF_VIP}:80"


@pytest.fixture(scope="module")
def dr_lab():
    with cluster_up(TOPO, BOTH, UP_WAIT):
        yield


def adopted(node: str) -> int:
    return rlb(node, "show dataplane", as_json=True)["connections"]["adopted"]


def drain_and_back() -> None:
    rlb("lb1", "routing drain")
    assert until(lambda: nexthops() == ["172.10.0.6"], 5, step=0.05), nexthops()
    time.sleep(3)                                         # lb2 alone for 3 s
    rlb("lb1", "routing undrain")
    assert until(lambda: nexthops() == BOTH, 15), nexthops()


def test_the_real_servers_answer_the_client_themselves(dr_lab):
    text = rlb("lb1", "ipvsadm -ln")
    assert f"TCP  {OSPF_VIP}:80 mh" in text and "Route" in text, text
    for _ in range(4):
        r = in_node("client", "curl", "-s", "-m", "5", f"http://{OSPF_VIP}/")
        assert r.stdout.startswith("Your ip:port : 10.0.0.48:"), r.stdout + r.stderr
    # the answers bypass the LBs: the switch's LAN leg carries them
    assert "192.168.100.0/24 dev eth3" in in_node("switch", "ip", "route").stdout


def test_keepalive_sessions_keep_their_server_across_a_drain_of_lb1(dr_lab):
    assert until(lambda: nexthops() == BOTH, UP_WAIT)
    taken = adopted("lb2")
    with Sessions(12, 44000) as s:
        drain_and_back()
        res = s.result()
    assert res["failed"] == 0 and res["connections"] == 16, failures(res)
    assert res["answered"] == res["requests"] > 16 * 100
    assert adopted("lb2") > taken          # lb1's flows went to lb2, which took them on


def test_the_control_round_robin_breaks_the_sessions_a_drain_moves(dr_lab):
    """Nothing in the test above passes by itself: with `rr` the flows the drain moves
    reach lb2 with no connection and no table to follow, and those sessions fail."""
    assert until(lambda: nexthops() == BOTH, UP_WAIT)
    try:
        for node in TOPO.lbs:
            rlb(node, f"ipvsadm -E {SVC} -s rr")
        with Sessions(12, 44100) as s:
            drain_and_back()
            res = s.result()
    finally:
        for node in TOPO.lbs:
            rlb(node, f"ipvsadm -E {SVC} -s mh")
    assert res["failed"] > 0 and res["connections"] > 16, res
    assert any("reset" in e.lower() or "timed out" in e.lower()
               for f in failures(res) for e in f["errors"]), failures(res)


def test_a_rolling_restart_of_both_lbs_loses_no_request(dr_lab):
    """Each LB in turn: SIGTERM (withdraw, serve 2 s more: drain-on-stop), start again
    with its configuration, back on the switch; then the other. The sessions' flows
    move away from the stopped LB and back to the new one, which adopts them."""
    assert until(lambda: nexthops() == BOTH, UP_WAIT)
    with Sessions(45, 44200) as s:
        for node in TOPO.lbs:
            manage.restart_lb(node=node)
            assert until(lambda: nexthops() == BOTH, UP_WAIT), \
                rlb(node, "show bgp summary")
        res = s.result()
    print(f"\nrolling restart: {res['requests']} requests, {res['failed']} failed, "
          f"longest gap {res['max_gap_ms']} ms")
    assert res["failed"] == 0 and res["connections"] == 16, failures(res)
    assert res["answered"] == res["requests"]
    assert adopted("lb1") > 0 and adopted("lb2") > 0   # each new daemon took flows on
