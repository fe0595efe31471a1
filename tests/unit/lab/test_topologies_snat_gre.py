"""snat-gre's data: the site's OVS terminates a GRE tunnel on a veth end of its own, the
LB's script makes the tutorial's `dpip tunnel add ... mode gre` and SNATs what comes
through it."""
from dataclasses import replace

from rlb.lab import topologies
from rlb.lab.topologies import GRE_NODE, OvsGre, OvsSwitch

TOPO = topologies.get("snat-gre")


def test_the_site_s_ovs_takes_its_underlay_and_makes_no_switch_bridge():
    spec = TOPO.node(GRE_NODE).ovs
    assert spec.devices() == ("eth0",) and not spec.switched
    assert spec.gre.remote == "10.0.0.1" and spec.gre.local == "10.0.0.2/24"
    assert any(line.startswith("route add default dev gre-host") for line in spec.gre.ip)
    assert OvsSwitch(access=(("x", None),)).switched
    assert topologies.check(TOPO) == []


def test_an_underlay_that_is_no_veth_end_of_the_node_is_a_problem():
    gre = OvsGre(underlay="eth9", local="10.0.0.2/24", remote="10.0.0.1", inner="1.1.1.1/24")
    nodes = tuple(replace(n, ovs=OvsSwitch(gre=gre)) if n.name == GRE_NODE else n
                  for n in TOPO.nodes)
    assert topologies.check(replace(TOPO, nodes=nodes)) == \
        [f"{GRE_NODE}: OVS port eth9 is not a veth end of it"]


def test_the_script_tunnels_then_snats():
    lines = TOPO.lb_script
    assert lines[:6] == (
        "dpip addr add 123.1.2.3/24 dev dpdk1 sapool",
        "dpip addr add 10.0.0.1/24 dev dpdk0",
        "dpip tunnel add gre1 mode gre local 10.0.0.1 remote 10.0.0.2 dev dpdk0",
        "dpip addr add 172.16.0.1/30 dev gre1",
        "dpip route add 192.168.100.0/24 dev gre1",
        "dpip route add default via 123.1.2.1 dev dpdk1")
    for proto in ("tcp", "udp", "icmp"):
        assert f"ipvsadm -A -s rr -H proto={proto},{topologies.SNAT_MATCH}" in lines
    keyed = TOPO.script(key=7)
    assert "dpip tunnel add gre1 mode gre local 10.0.0.1 remote 10.0.0.2 dev dpdk0 key 7" \
        in keyed
