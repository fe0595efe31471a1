"""rlb/lab/scripts.py: every topology's tutorial lines, and the variants tests and benchmarks
ask of them, run whole (ipvsadm lines too) on a model with the topology's ports."""
import pytest

from rlb import plugins
from rlb.control.config import check, run
from rlb.ha import kaconf
from rlb.lab import procs, scripts, topologies
from rlb.commands.base import Context
from support import tutorial


def model_after(topo, lines, ports=None, extra=()):
    """The model a daemon of this topology holds once `lines` ran (config.check), then
    `extra` (numbered lines from another file)."""
    text = procs.lb_config(topo, workers=1) if ports is None else (
        "dataplane\n" + "".join(f" port {p} net_af_packet{i},iface=v{i}\n"
                                for i, p in enumerate(ports)) + "!\n")
    text += "".join(f"{line}\n" for line in lines)
    return check([*enumerate(text.splitlines(), 1), *extra], "script.conf")


def services(model):
    return run(Context(model), "ipvsadm -ln").text.splitlines()[3:]


@pytest.mark.parametrize("name", topologies.BY_NAME)
def test_every_topology_script_runs_whole(name):
    """The LB's lines, and its keepalived.conf where it has one (rlb keepalived load)."""
    topo = topologies.get(name)
    ka = topo.node(topo.lb).keepalived
    extra = kaconf.translate(kaconf.parse(ka, "keepalived.conf"),
                             "keepalived.conf").numbered() if ka else []
    model = model_after(topo, topo.lb_script, extra=extra)
    assert services(model)                      # a service with its real servers


@pytest.mark.parametrize("name", topologies.BY_NAME)
def test_flags_are_the_mode_registry_s(name):
    """The forwarding flag of every `ipvsadm -a` is a registered mode's flag."""
    flags = {m.flag for m in plugins.modes().values()}
    for line in topologies.get(name).lb_script:
        if line.startswith("ipvsadm -a "):
            assert line.split()[-1] in flags or line.split()[-3] in flags, line


def test_fnat_variants():
    topo = topologies.get("fnat-two-arm")
    one = topo.script(servers=(scripts.RS1,), laddrs=())
    assert not any("192.168.100.3" in line or "laddr" in line for line in one)
    udp = topo.script(net=False, udp=True, vport=53, sched="wrr", rs_port=5353, weight=3)
    assert udp == ("ipvsadm -A -u 10.0.0.100:53 -s wrr",
                   "ipvsadm -a -u 10.0.0.100:53 -r 192.168.100.2:5353 -b -w 3",
                   "ipvsadm -a -u 10.0.0.100:53 -r 192.168.100.3:5353 -b -w 3",
                   "ipvsadm --add-laddr -z 192.168.100.200 -u 10.0.0.100:53 -F dpdk0")
    model = model_after(topo, topo.lb_script + udp)
    assert "UDP  10.0.0.100:53 wrr" in services(model)
    assert scripts.laddr("192.168.100.9", "10.0.0.100", 53, udp=True) == \
        "ipvsadm --add-laddr -z 192.168.100.9 -u 10.0.0.100:53 -F dpdk0"


def test_port_names_follow_the_knob():
    """A test that puts the tunnel on dpdk1 gets every line on dpdk1, and it runs."""
    lines = topologies.get("tunnel-one-arm").script(dev="dpdk1")
    assert all("dpdk0" not in line for line in lines)
    assert sum("dev dpdk1" in line for line in lines) == 3
    model_after(None, lines, ports=("dpdk0", "dpdk1"))
    snat = topologies.get("snat").script(wan="dpdk0", lan="dpdk1", match="oif=dpdk0")
    assert all("dpdk1 sapool" not in line for line in snat)
    model_after(None, snat, ports=("dpdk0", "dpdk1"))


def test_net_false_leaves_only_the_services():
    """(none where the services are a keepalived.conf's)"""
    for name in topologies.BY_NAME:
        topo = topologies.get(name)
        lines = topo.script(net=False)
        if topo.node(topo.lb).keepalived:
            assert lines == (), name
            continue
        assert lines and all(line.startswith("ipvsadm ") for line in lines), name


def test_nat_two_arm_variant_runs():
    lines = scripts.nat("10.0.0.100", addrs=(("10.0.0.1/16", "dpdk1"),
                                             ("192.168.100.1/24", "dpdk0")),
                        vip_dev="dpdk1", vip_last=False, routes=("10.1.0.0/16 dev dpdk1",),
                        servers=(scripts.RS1,), rs_port=8080)
    assert lines[2:4] == ("dpip addr add 10.0.0.100/32 dev dpdk1",
                          "dpip route add 10.1.0.0/16 dev dpdk1")
    model = model_after(None, lines, ports=("dpdk0", "dpdk1"))
    assert services(model)[1].split()[1] == "192.168.100.2:8080"


@pytest.mark.parametrize("name", ["fnat-two-arm", "dr-one-arm", "tunnel-one-arm"])
def test_verbatim_scenarios_are_the_tutorial_s_lines_in_its_order(name):
    """The scenarios the tutorial spells out whole: each line is there as `./LINE`, in
    order (the others fill in its variables or fix its typos: test_ipvsadm checks them)."""
    text, at = tutorial.text(), 0
    for line in topologies.get(name).lb_script:
        at = text.index(f"./{line}\n", at)     # ValueError: not there after the line before
