"""Where each mode's probes go (rlb.health.path.ProbePaths.target), on the models the lab's
tutorial scenarios make, without a data plane: DR and Tunnel at the VIP from the address
facing the real server, FNAT from a local address, NAT to RIP:port; the probe's local
port names the real server (PROBE_PORT_MIN + its dest slot); no-kni and a slot past the
range give the plain RIP:port."""
from ipaddress import IPv4Address

import pytest

from rlb.commands.base import Context
from rlb.control.config import check, run
from rlb.core.consts import LPORT_RANGE, PROBE_PORT_MIN, PROBE_PORTS
from rlb.health import path
from rlb.health.path import ProbePaths, Target, probe_port
from rlb.lab import procs, topologies


def model_of(name, *extra, settings=()):
    topo = topologies.get(name)
    text = procs.lb_config(topo, workers=1)
    if settings:
        text = text.replace("dataplane\n", "dataplane\n" + "".join(f" {s}\n" for s in settings))
    text += "".join(f"{line}\n" for line in (*topo.lb_script, *extra))
    return check(list(enumerate(text.splitlines(), 1)), "probe.conf")


def targets(model):
    paths = ProbePaths(model)
    return {str(d.addr): paths.target(svc, d)
            for svc in model.services.table.values() for d in svc.dests}


def port(n):
    return PROBE_PORT_MIN + n


def test_the_probe_range_is_no_local_port_s_and_ends_before_65535():
    assert LPORT_RANGE[1] < PROBE_PORT_MIN            # FNAT/SNAT never take a probe's port
    assert PROBE_PORT_MIN > 60999                     # nor does Linux for its own sockets
    assert PROBE_PORT_MIN + PROBE_PORTS - 1 < 65535   # a kernel rule's range may not hold it
    assert path.SPORT_RANGE == f"{PROBE_PORT_MIN}:{PROBE_PORT_MIN + PROBE_PORTS - 1}"


def test_dr_probes_the_vip_from_the_lan_ip():
    assert targets(model_of("dr-one-arm")) == {
        "192.168.100.2": Target("192.168.100.254", 80, "192.168.100.1", port(0)),
        "192.168.100.3": Target("192.168.100.254", 80, "192.168.100.1", port(1))}
    assert targets(model_of("dr-two-arm"))["192.168.100.3"] == \
        Target("10.0.0.100", 80, "192.168.100.1", port(1))


def test_a_vip_is_never_a_probe_s_source():
    """A VIP whose network holds the real server (a /24 here, the LAN IP's a /25 that
    does not) is no source: the real servers hold it; the port's first address is."""
    lines = ("dpip addr add 192.168.100.1/25 dev dpdk0",
             "dpip addr add 192.168.100.254/24 dev dpdk0",
             "ipvsadm -A -t 192.168.100.254:80 -s rr",
             "ipvsadm -a -t 192.168.100.254:80 -r 192.168.100.200 -g")
    text = procs.lb_config(topologies.get("dr-one-arm"), 1) + "".join(f"{x}\n" for x in lines)
    m = check(list(enumerate(text.splitlines(), 1)), "vip.conf")
    assert targets(m) == {"192.168.100.200": Target("192.168.100.254", 80, "192.168.100.1",
                                                    port(0))}


def test_tunnel_probes_the_vip_from_the_route_s_src():
    """The far real server too, through the default route's gateway."""
    assert targets(model_of("tunnel-one-arm")) == {
        "10.140.18.33": Target("10.140.31.48", 80, "10.140.16.48", port(0)),
        "10.40.84.170": Target("10.140.31.48", 80, "10.140.16.48", port(1))}


def test_fnat_probes_rip_port_from_a_local_address():
    assert targets(model_of("fnat-two-arm")) == {
        "192.168.100.2": Target("192.168.100.2", 80, "192.168.100.200", port(0)),
        "192.168.100.3": Target("192.168.100.3", 80, "192.168.100.200", port(1))}


def test_nat_probes_rip_port_from_our_address_on_its_network():
    """The LB's address on the real servers' network (their gateway), not the port's
    first address (192.168.0.66, the clients' side): as Linux picks a source."""
    assert targets(model_of("nat-one-arm")) == {
        "10.140.18.33": Target("10.140.18.33", 80, "10.140.31.48", port(0)),
        "10.140.18.34": Target("10.140.18.34", 80, "10.140.31.48", port(1))}


def test_a_real_server_s_port_is_its_own_and_its_slot_names_it():
    """A real server with another port than the service's (FNAT) keeps it; a second
    service's real servers get the next slots."""
    m = model_of("fnat-two-arm", "ipvsadm -A -t 10.0.0.100:8080 -s rr",
                 "ipvsadm -a -t 10.0.0.100:8080 -r 192.168.100.2:8081 -b",
                 "ipvsadm --add-laddr -z 192.168.100.201 -t 10.0.0.100:8080 -F dpdk0")
    paths = ProbePaths(m)
    svc = next(s for s in m.services.table.values() if s.vport == 8080)
    assert paths.target(svc, svc.dests[0]) == \
        Target("192.168.100.2", 8081, "192.168.100.201", port(2))
    assert paths.wanted() == {IPv4Address("192.168.100.200"): "dpdk0",
                              IPv4Address("192.168.100.201"): "dpdk0"}


def test_no_kni_gives_the_plain_target_and_sync_touches_nothing(monkeypatch):
    m = model_of("dr-one-arm", settings=["no-kni"])
    assert not m.settings.kni
    assert targets(m) == {"192.168.100.2": Target("192.168.100.2", 80),
                          "192.168.100.3": Target("192.168.100.3", 80)}
    monkeypatch.setattr(path, "_in_thread", lambda work: pytest.fail("netlink used"))
    paths = ProbePaths(m)
    assert paths.wanted() == {}
    paths.sync()
    paths.close()
    assert paths.problems == []


def test_a_slot_past_the_range_and_snat_get_the_plain_target():
    """Past the range a DR probe has no port to name its server by: the plain target;
    an FNAT one needs only a port of the range: the slot wraps."""
    m = model_of("dr-one-arm")
    svc = next(iter(m.services.table.values()))
    d = svc.dests[0]
    d.slot = PROBE_PORTS + 5                   # a real-server table over the default size
    assert probe_port(d) == 0 and probe_port(d, names=False) == port(5)
    assert ProbePaths(m).target(svc, d) == Target("192.168.100.2", 80)
    m = model_of("fnat-two-arm")
    svc = next(iter(m.services.table.values()))
    svc.dests[1].slot = PROBE_PORTS + 5
    assert ProbePaths(m).target(svc, svc.dests[1]) == \
        Target("192.168.100.3", 80, "192.168.100.200", port(5))
    # SNAT's real servers are the outside, on no route of their own: the plain target
    assert set(targets(model_of("snat")).values()) == {Target("123.1.2.3", 0)}


def test_a_real_server_without_a_route_gets_the_plain_target():
    m = model_of("fnat-two-arm")
    svc = next(iter(m.services.table.values()))
    svc.laddrs.clear()      # FNAT without a local address: as NAT, from our address on
    run(Context(m), "dpip addr add 192.168.100.7/24 dev dpdk0")    # the RS's network (the
    assert ProbePaths(m).target(svc, svc.dests[0]).source == "192.168.100.7"   # first one)
    run(Context(m), "ipvsadm -a -t 10.0.0.100:80 -r 172.16.0.9 -b")   # nowhere routed
    d = svc.dests[-1]
    assert ProbePaths(m).target(svc, d) == Target("172.16.0.9", 80)
