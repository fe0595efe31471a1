"""The DR and tunnel topologies as data: what the builder and the lab get from them."""
from rlb.lab import procs, topologies


def test_dr_and_tunnel_topologies_are_consistent():
    for name in ("dr-one-arm", "dr-two-arm", "tunnel-one-arm"):
        topo = topologies.get(name)
        assert topologies.check(topo) == [], name
        assert topo.node("lb").sysctls == ()
        for rs in ("rs1", "rs2"):
            node = topo.node(rs)
            assert ("lo", f"{topo.vip}/32") in node.addrs     # the VIP on lo
            assert ("net.ipv4.conf.all.arp_ignore", "1") in node.sysctls
            assert node.decap == name.startswith("tunnel")


def test_tunnel_one_arm_is_the_tutorial_network():
    topo = topologies.get("tunnel-one-arm")
    assert topo.vip == "10.140.31.48" and topo.ports == (("dpdk0", "veth-dpdk0"),)
    assert topo.node("rs1").addrs[0] == ("eth0", "10.140.18.33/20")
    assert topo.node("rs2").addrs[0] == ("eth0", "10.40.84.170/24")
    router = topo.node("router")
    assert router.hidden and ("net.ipv4.ip_forward", "1") in router.sysctls
    assert ("eth0", "10.140.31.254/20") in router.addrs
    # rs2 reaches the LAN (and the client) only through the router
    assert topo.node("rs2").routes == ("default via 10.40.84.254",)
    assert "dpip route add default via 10.140.31.254 src 10.140.16.48 dev dpdk0" in topo.lb_script
    assert topo.lb_script[-1] == "dpip addr add 10.140.31.48/32 dev dpdk0"   # the VIP last
    assert "rlb-router" in topologies.all_namespaces()


def test_dr_two_arm_lb_routes_the_replies():
    assert procs.lb_config(topologies.get("dr-two-arm"), 1).splitlines()[-2:] == \
        [" forwarding", "!"]
    for name in ("fnat-two-arm", "dr-one-arm", "tunnel-one-arm"):
        assert " forwarding" not in procs.lb_config(topologies.get(name), 1)
