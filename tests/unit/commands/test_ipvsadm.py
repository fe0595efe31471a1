"""rlb.commands.ipvsadm: the DPVS tutorial's ipvsadm lines, verbatim, and what rlb prints for
them; every option, short and long; ipvsadm's errors (and the model untouched after one).
Modes and schedulers are the real plugins (rlb.plugins), with their own checks."""
import copy
import inspect
import re
from ipaddress import IPv4Address

import pytest

from rlb import plugins
from rlb.commands import ipvsadm
from rlb.commands.base import Context, Reply, g
from rlb.commands.definition import _Group, _Kw, _terminals, _Var
from rlb.commands.grammar import ParseError
from rlb.control.config import handler_params, run, run_lines
from rlb.lab import topologies
from rlb.model import services_engine
from rlb.model.model import LPORT_RANGE, CommandError, Model
from rlb.model.services import Services
from support.engine import FakeEngine
from support.tutorial import output as tutorial_output
from support.tutorial import text as tutorial_text


def registries():
    """The real mode and scheduler plugins (rlb.plugins: the compiled modules)."""
    return plugins.modes(), plugins.schedulers()


# The LB's address on the real servers' network 192.168.1.0/24, so that the real modes'
# checks pass: DR and NAT want the real server on-link, a tunnel a route with a src.
ON_LAN = """
    dpip addr add 192.168.1.1/24 dev dpdk0
    dpip route add default via 192.168.1.254 src 192.168.1.1 dev dpdk0
"""


def model(*ports, engine=None):
    m = Model()
    for name in ports or ("dpdk0", "dpdk1"):
        m.add_port(name, f"net_tap_{name}")
    m.services = Services(m, *registries())
    m.engine = engine
    return m


def apply(m, text):
    """Run a script's lines (`./` and blank lines dropped) against the model."""
    lines = [line.strip().removeprefix("./") for line in text.strip().splitlines()]
    return run_lines(Context(m), list(enumerate(lines, 1)), "script")


def out(m, line):
    return run(Context(m), line).text


def snapshot(m):
    ms = m.services
    return copy.deepcopy((m.addresses, m.routes, m._free_slots, m._next_slot, ms.table,
                          ms.timeouts, vars(ms._svc_slots), vars(ms._dest_slots), ms._auto))


def refused(m, line, match):
    before = snapshot(m)
    with pytest.raises((CommandError, ParseError)) as info:
        run(Context(m), line)
    assert re.search(match, str(info.value)), str(info.value)
    assert snapshot(m) == before, "a command that fails changed the model"
    return info.value


# ----------------------------------------------------------- tutorial lines

# Every ipvsadm line of the tutorial, its two typos fixed (`-s rr`, real servers with -a).
TUTORIAL_LINES = [
    ("ipvsadm -A -t 10.0.0.100:80 -s rr", "vs_add_service", {"tcp": "10.0.0.100:80", "sched": "rr"}),
    ("ipvsadm -a -t 10.0.0.100:80 -r 192.168.100.2 -b", "vs_add_server",
     {"server": "192.168.100.2", "fwd": "-b"}),
    ("ipvsadm -a -t 10.0.0.100:80 -r 192.168.100.3 -b", "vs_add_server", {}),
    ("ipvsadm --add-laddr -z 192.168.100.200 -t 10.0.0.100:80 -F dpdk0", "vs_add_laddr",
     {"laddr": "192.168.100.200", "tcp": "10.0.0.100:80", "dev": "dpdk0"}),
    ("ipvsadm  -ln", "vs_list", {"lst_n": "-ln"}),
    ("ipvsadm  -G", "vs_get_laddr", {"tcp": None}),
    ("ipvsadm -A -t 123.1.2.3:80 -s rr", "vs_add_service", {}),
    ("ipvsadm -a -t 123.1.2.3:80 -r 192.168.100.2 -b", "vs_add_server", {}),
    ("ipvsadm -a -t 123.1.2.3:80 -r 192.168.100.3 -b", "vs_add_server", {}),
    ("ipvsadm --add-laddr -z 192.168.100.200 -t 123.1.2.3:80 -F dpdk0", "vs_add_laddr", {}),
    ("ipvsadm --add-laddr -z 192.168.100.201 -t 123.1.2.3:80 -F dpdk0", "vs_add_laddr", {}),
    ("ipvsadm  -ln", "vs_list", {"lst_n": "-ln"}),           # the keepalived section's
    ("ipvsadm  -G", "vs_get_laddr", {}),
    ("ipvsadm -A -t 192.168.100.254:80 -s rr", "vs_add_service", {}),
    ("ipvsadm -a -t 192.168.100.254:80 -r 192.168.100.2 -g", "vs_add_server", {"fwd": "-g"}),
    ("ipvsadm -a -t 192.168.100.254:80 -r 192.168.100.3 -g", "vs_add_server", {}),
    ("ipvsadm -A -t 10.140.31.48:80 -s rr", "vs_add_service", {}),
    ("ipvsadm -a -t 10.140.31.48:80 -r 10.140.18.33 -i", "vs_add_server", {"fwd": "-i"}),
    ("ipvsadm -a -t 10.140.31.48:80 -r 10.40.84.170 -i", "vs_add_server", {}),
    ("ipvsadm -A -t 192.168.0.89:80 -s rr", "vs_add_service", {}),
    ("ipvsadm -a -t 192.168.0.89:80 -r 10.140.18.33 -m", "vs_add_server", {"fwd": "-m"}),
    ("ipvsadm -a -t 192.168.0.89:80 -r 10.140.18.34 -m", "vs_add_server", {}),
    ("ipvsadm -A -s rr -H proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1",
     "vs_add_service", {"match": "proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1"}),
    ("ipvsadm -a -H proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1 -r 123.1.2.3:0 "
     "-w 100 -J", "vs_add_server", {"server": "123.1.2.3:0", "weight": 100, "fwd": "-J"}),
    ("ipvsadm -A -s rr -H proto=icmp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1",
     "vs_add_service", {}),
    ("ipvsadm -a -H proto=icmp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1 -r 123.1.2.3:0 "
     "-w 100 -J", "vs_add_server", {}),
]


SNAT_MATCH = "src-range=192.168.100.0-192.168.100.254,oif=dpdk1"


def test_every_ipvsadm_line_of_the_tutorial_is_listed():
    """TUTORIAL_LINES is the tutorial's own list (with its typos fixed), none left out."""
    text = tutorial_text().replace("$MATCH0", f"proto=tcp,{SNAT_MATCH}")
    text = text.replace("$MATCH1", f"proto=icmp,{SNAT_MATCH}")
    text = text.replace("$WAN_IP", "123.1.2.3").replace("-s -rr", "-s rr")
    found = []
    for line in text.splitlines():
        line = line.strip().removeprefix("$ ")
        if re.match(r"\./ipvsadm\b", line):
            line = line.removeprefix("./")
            found.append(re.sub(r"^(ipvsadm -)A( -t \S+ -r)", r"\1a\2", line))
    assert found == [t[0] for t in TUTORIAL_LINES]


@pytest.mark.parametrize("line, handler, args", TUTORIAL_LINES, ids=[t[0] for t in TUTORIAL_LINES])
def test_tutorial_lines_parse(line, handler, args):
    m = g.parse(line, node="exec")
    assert m.command.handler.__name__ == handler
    for k, v in args.items():
        got = m.args[k]
        assert (str(got) if got is not None and not isinstance(got, (bool, int)) else got) == v, k


def script(name, **knobs):
    """A lab topology's tutorial lines (rlb/lab/topologies.py) as a script's text."""
    return "".join(f"{line}\n" for line in topologies.get(name).script(**knobs))


FNAT_TWO_ARM = script("fnat-two-arm")


@pytest.fixture
def tutorial():
    tutorial_text()


def test_fnat_two_arm_prints_what_the_tutorial_shows(tutorial):
    m = model()
    apply(m, FNAT_TWO_ARM)
    sa_free = LPORT_RANGE[1] - LPORT_RANGE[0] + 1
    assert out(m, "dpip addr show") == tutorial_output("dpip addr show").replace(
        "sa_free 1032176", f"sa_free {sa_free}")
    assert out(m, "dpip route show") == tutorial_output("dpip route show")
    assert out(m, "ipvsadm  -ln") == tutorial_output("ipvsadm  -ln")
    assert out(m, "ipvsadm  -G") == tutorial_output("ipvsadm  -G")


def test_fnat_keepalived_prints_what_the_tutorial_shows(tutorial):
    """The keepalived section, its configuration said with ipvsadm lines."""
    m = model()
    apply(m, script("fnat-one-arm", rs_port=80, weight=100))   # keepalived's weight 100
    after = "Check if parameters just set are correct:"
    assert out(m, "ipvsadm  -ln") == tutorial_output("ipvsadm  -ln", after)
    assert out(m, "ipvsadm  -G") == tutorial_output("ipvsadm  -G", after)
    # DPVS lists addresses in its hash order
    sa_free = LPORT_RANGE[1] - LPORT_RANGE[0] + 1
    shown = tutorial_output("dpip addr show", after).replace("1032176", str(sa_free))
    def pairs(text):
        lines = text.splitlines()
        return sorted(zip(lines[::2], lines[1::2], strict=True))
    assert pairs(out(m, "dpip addr show")) == pairs(shown)


def test_fnat_ospf_applies():
    m = model()
    apply(m, """
        ./dpip route add 192.168.100.0/24 dev dpdk0
        ./ipvsadm -A -t 123.1.2.3:80 -s rr
        ./ipvsadm -a -t 123.1.2.3:80 -r 192.168.100.2 -b
        ./ipvsadm -a -t 123.1.2.3:80 -r 192.168.100.3 -b
        ./ipvsadm --add-laddr -z 192.168.100.200 -t 123.1.2.3:80 -F dpdk0
        ./ipvsadm --add-laddr -z 192.168.100.201 -t 123.1.2.3:80 -F dpdk0
        ./dpip route add 172.10.0.2/32 dev dpdk1 scope kni_host
    """)
    assert out(m, "ipvsadm -G").splitlines()[1:] == [
        "123.1.2.3:80         2",
        "                              192.168.100.200      0          0",
        "                              192.168.100.201      0          0"]


@pytest.mark.parametrize("name, rows", [
    ("dr-one-arm", ["TCP  192.168.100.254:80 rr",
                    "  -> 192.168.100.2:80             Route   1      0          0",
                    "  -> 192.168.100.3:80             Route   1      0          0"]),
    ("tunnel-one-arm", ["TCP  10.140.31.48:80 rr",
                        "  -> 10.40.84.170:80              Tunnel  1      0          0",
                        "  -> 10.140.18.33:80              Tunnel  1      0          0"]),
    ("nat-one-arm", ["TCP  192.168.0.89:80 rr",
                     "  -> 10.140.18.33:80              Masq    1      0          0",
                     "  -> 10.140.18.34:80              Masq    1      0          0"]),
])
def test_dr_tunnel_nat_scripts_apply(name, rows):
    topo = topologies.get(name)
    m = model(*(port for port, _ in topo.ports))
    apply(m, script(name))
    assert out(m, "ipvsadm -ln").splitlines()[3:] == rows


def test_snat_match_services_from_the_tutorial():
    m = model()
    apply(m, script("snat", protos=()))                     # its dpip lines
    for line, _, _ in TUTORIAL_LINES[-4:]:
        run(Context(m), line)
    text = out(m, "ipvsadm -ln")
    assert "MATCH proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1 rr" in text
    assert "-> 123.1.2.3:0" in text and "SNAT" in text
    # match services have no local addresses: ipvsadm -G lists only VIP services
    assert out(m, "ipvsadm -G") == "" and run(Context(m), "ipvsadm -G").data == []
    # SNAT needs a match service, a sapool WAN address, port 0; matches are checked
    run(Context(m), "ipvsadm -A -t 10.0.0.1:80 -s rr")
    refused(m, "ipvsadm -a -t 10.0.0.1:80 -r 123.1.2.3:0 -J", "match service")
    refused(m, "ipvsadm -A -s rr -H proto=sctp", "bad proto")
    refused(m, "ipvsadm -A -s rr -H src-range=10.0.0.9-10.0.0.1", "empty range")
    refused(m, "ipvsadm -A -s rr -H oif=dpdk9", "no such port")
    run(Context(m), "ipvsadm -A -s rr -H proto=udp,oif=dpdk1")
    refused(m, "ipvsadm -a -H proto=udp,oif=dpdk1 -r 192.168.100.1:0 -J", "sapool")
    refused(m, "ipvsadm -a -H proto=udp,oif=dpdk1 -r 123.1.2.3:53 -J", "port must be 0")


def test_the_whole_tutorial_fnat_script_as_a_config_file():
    """The script runs as a config file's lines, checked as the daemon checks one."""
    m = model()
    replies = apply(m, FNAT_TWO_ARM + "ipvsadm -ln\nipvsadm -G\n")
    assert all(isinstance(r, Reply) for r in replies)
    assert len(m.services.table) == 1


# ------------------------------------------------------------------ options


def test_persistence_and_mask_are_listed():
    m = model()
    apply(m, """
        ipvsadm -A -t 10.0.0.1:443 -s wlc -p
        ipvsadm -A -t 10.0.0.1:80 -p 60 -M 255.255.255.0 -s rr
        ipvsadm -A -u 10.0.0.1:53
    """)
    assert out(m, "ipvsadm -ln").splitlines()[3:] == [
        "TCP  10.0.0.1:80 rr persistent 60 mask 255.255.255.0",
        "TCP  10.0.0.1:443 wlc persistent 300",
        "UDP  10.0.0.1:53 wlc"]


def test_options_in_any_order():
    m = model()
    apply(m, """
        ipvsadm -A -s rr -p 30 -t 10.0.0.1:80
        ipvsadm -a -w 5 -b -r 192.168.1.2:8080 -t 10.0.0.1:80 -x 100 -y 50
        ipvsadm -P -F dpdk0 -t 10.0.0.1:80 -z 192.168.1.200
    """)
    svc = m.services.table[(6, IPv4Address("10.0.0.1"), 80)]
    d = svc.dests[0]
    assert (svc.sched, svc.timeout, d.port, d.mode, d.weight, d.u_threshold, d.l_threshold) == (
        "rr", 30, 8080, "fnat", 5, 100, 50)
    assert [str(la.addr) for la in svc.laddrs] == ["192.168.1.200"]


def test_edit_service_and_server_set_exactly_what_is_given():
    """As LVS's ipvsadm: -E and -e give the service or real server the options on the line
    and the defaults of -A/-a for the others (no -p: no persistence; no -s: wlc; no -w:
    weight 1; no forwarding flag: -g)."""
    m = model()
    apply(m, ON_LAN + """
        ipvsadm -A -t 10.0.0.1:80 -s rr -p 60 -M 255.255.255.0
        ipvsadm -a -t 10.0.0.1:80 -r 192.168.1.2 -m -w 3 -x 100 -y 10
        ipvsadm -E -t 10.0.0.1:80 -s mh
        ipvsadm -e -t 10.0.0.1:80 -r 192.168.1.2 -m -w 0
    """)
    assert out(m, "ipvsadm -ln").splitlines()[3:] == [
        "TCP  10.0.0.1:80 mh",
        "  -> 192.168.1.2:80               Masq    0      0          0"]
    d = m.services.table[(6, IPv4Address("10.0.0.1"), 80)].dests[0]
    assert (d.u_threshold, d.l_threshold) == (0, 0)
    apply(m, "ipvsadm -E -t 10.0.0.1:80 -p 30\nipvsadm -e -t 10.0.0.1:80 -r 192.168.1.2:80")
    assert out(m, "ipvsadm -ln").splitlines()[3:] == [
        "TCP  10.0.0.1:80 wlc persistent 30",
        "  -> 192.168.1.2:80               Route   1      0          0"]
    apply(m, "ipvsadm -E -t 10.0.0.1:80 -s rr")
    assert out(m, "ipvsadm -ln").splitlines()[3] == "TCP  10.0.0.1:80 rr"


def test_edit_server_keeps_nothing_fnat_needs_by_accident():
    # -e without -b on a FNAT service with local addresses asks for -g: refused, with why
    m = model()
    apply(m, FNAT_TWO_ARM)
    refused(m, "ipvsadm -e -t 10.0.0.100:80 -r 192.168.100.2 -w 5",
            r"local addresses .* \(-e without a forwarding option means -g, as in LVS: give -b "
            r"to keep it FullNat\)$")
    apply(m, "ipvsadm -e -t 10.0.0.100:80 -r 192.168.100.2 -b -w 5")
    assert m.services.table[(6, IPv4Address("10.0.0.100"), 80)].dests[0].weight == 5


def test_real_server_port_zero_is_the_service_port():
    # LVS sends to the packet's destination port when a real server's port is 0
    m = model()
    apply(m, ON_LAN + """
        ipvsadm -A -t 10.0.0.1:80
        ipvsadm -a -t 10.0.0.1:80 -r 192.168.1.4:0 -m
    """)
    assert out(m, "ipvsadm -ln").splitlines()[4].split()[1] == "192.168.1.4:80"
    refused(m, "ipvsadm -a -t 10.0.0.1:80 -r 192.168.1.4 -m", "Destination already exists")
    apply(m, "ipvsadm -e -t 10.0.0.1:80 -r 192.168.1.4:0 -m -w 4")
    assert m.services.table[(6, IPv4Address("10.0.0.1"), 80)].dests[0].weight == 4
    ctx = Context(m, node="config-vs", section=(6, IPv4Address("10.0.0.1"), 80))
    run(ctx, "real-server 192.168.1.4:0 weight 7")
    assert [(d.port, d.weight) for d in m.services.table[(6, IPv4Address("10.0.0.1"), 80)].dests] \
        == [(80, 7)]
    run(ctx, "no real-server 192.168.1.4:0")
    apply(m, "ipvsadm -a -t 10.0.0.1:80 -r 192.168.1.4:0 -m")
    apply(m, "ipvsadm -d -t 10.0.0.1:80 -r 192.168.1.4:0")
    assert m.services.table[(6, IPv4Address("10.0.0.1"), 80)].dests == []


def test_delete_server_service_clear():
    m = model()
    apply(m, FNAT_TWO_ARM)
    apply(m, "ipvsadm -d -t 10.0.0.100:80 -r 192.168.100.2")
    assert [str(d.addr) for d in m.services.table[(6, IPv4Address("10.0.0.100"), 80)].dests] == [
        "192.168.100.3"]
    apply(m, "ipvsadm -A -u 10.0.0.100:53\nipvsadm -D -t 10.0.0.100:80")
    assert list(m.services.table) == [(17, IPv4Address("10.0.0.100"), 53)]
    assert [str(a.iface) for a in m.addresses] == ["10.0.0.100/32"]     # the LIP went too
    apply(m, "ipvsadm -C")
    assert m.services.table == {} and out(m, "ipvsadm -G") == ""


def test_del_laddr_and_dpip_cannot_take_a_laddr():
    m = model()
    apply(m, FNAT_TWO_ARM)
    refused(m, "dpip addr del 192.168.100.200/32 dev dpdk0", "is a local address of")
    apply(m, "ipvsadm --del-laddr -z 192.168.100.200 -t 10.0.0.100:80 -F dpdk0")
    assert out(m, "ipvsadm -G").splitlines()[1:] == ["10.0.0.100:80        0"]
    assert "192.168.100.200" not in out(m, "dpip addr show")


def test_timeouts():
    m = model()
    assert out(m, "ipvsadm -L --timeout") == "Timeout (tcp tcpfin udp): 90 7 300"
    apply(m, "ipvsadm --set 600 0 60")
    assert out(m, "ipvsadm -ln --timeout") == "Timeout (tcp tcpfin udp): 600 7 60"
    assert run(Context(m), "ipvsadm -L --timeout").data == {"tcp": 600, "tcpfin": 7, "udp": 60}


def test_list_one_service_and_bare_ipvsadm():
    m = model()
    apply(m, FNAT_TWO_ARM + "ipvsadm -A -u 10.0.0.100:53")
    assert out(m, "ipvsadm -L -n -t 10.0.0.100:80") == "\n".join(out(m, "ipvsadm -ln").splitlines()[1:6])
    assert out(m, "ipvsadm -Ln -u 10.0.0.100:53").splitlines()[2:] == ["UDP  10.0.0.100:53 wlc"]
    assert out(m, "ipvsadm") == out(m, "ipvsadm -ln") == out(m, "ipvsadm -L") == out(m, "ipvsadm -l")
    refused(m, "ipvsadm -ln -t 10.0.0.100:81", "^No such service$")


def test_get_laddr_of_one_service():
    m = model()
    apply(m, FNAT_TWO_ARM)
    assert out(m, "ipvsadm -G -t 10.0.0.100:80") == out(m, "ipvsadm --get-laddr")
    refused(m, "ipvsadm -G -t 10.0.0.100:81", "^No such service$")


def test_list_data_is_structured():
    m = model()
    apply(m, FNAT_TWO_ARM)
    data = run(Context(m), "ipvsadm -ln").data
    assert data["services"][0] | {"dests": None, "stats": None} == {
        "proto": "TCP", "match": None, "vip": "10.0.0.100", "port": 80, "scheduler": "rr",
        "hash_target": None, "persistent": None, "netmask": "255.255.255.255", "slot": 0, "dests": None, "stats": None,
        "laddrs": [{"addr": "192.168.100.200", "dev": "dpdk0"}]}
    assert data["services"][0]["dests"][0]["forward"] == "FullNat"
    assert data["services"][0]["dests"][0]["stats"]["activeconns"] == 0
    g_data = run(Context(m), "ipvsadm -G").data
    assert g_data == [{"proto": "TCP", "vip": "10.0.0.100", "port": 80, "total": 1, "laddrs": [
        {"addr": "192.168.100.200", "dev": "dpdk0", "conflicts": 0, "conns": 0}]}]


# ------------------------------------------------- counters from a data plane


class CountingEngine(FakeEngine):
    """A data plane that reports the counters a test sets (and records what is pushed)."""

    def __init__(self):
        super().__init__()
        self.svc, self.dest, self.conns = {}, {}, []

    def svc_stats(self, slot):
        return dict(services_engine.ZERO_SVC_STATS, **self.svc.get(slot, {}))

    def dest_stats(self, slot):
        return dict(services_engine.ZERO_DEST_STATS, **self.dest.get(slot, {}))

    def laddr_stats(self, svc_slot):
        return [{"addr": 0, "used": 7, "miss": 2}]

    def connections(self, limit=10000):
        return self.conns


def counted():
    m = model(engine=CountingEngine())
    apply(m, FNAT_TWO_ARM)
    return m


def test_active_and_inactive_connections_and_laddr_counters():
    m = counted()
    m.engine.dest[0] = {"activeconns": 12, "inactconns": 3}
    assert out(m, "ipvsadm -ln").splitlines()[4] == (
        "  -> 192.168.100.2:80             FullNat 1      12         3")
    assert out(m, "ipvsadm -G").splitlines()[2] == (
        "                              192.168.100.200      2          7")


def test_stats_with_ipvsadm_suffixes_and_exact():
    m = counted()
    m.engine.svc[0] = dict(conns=12, inpkts=99_999_999, outpkts=100_000_000,
                           inbytes=123_456_789_012, outbytes=10**15)
    m.engine.dest[1] = dict(conns=5, inpkts=999_999_999, outpkts=1_000_000_000)
    assert out(m, "ipvsadm -ln --stats").splitlines() == [
        "IP Virtual Server version 0.0.0 (size=0)",
        "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes",
        "  -> RemoteAddress:Port",
        "TCP  10.0.0.100:80                      12 99999999  100000K     123G    1000T",
        "  -> 192.168.100.2:80                    0        0        0        0        0",
        "  -> 192.168.100.3:80                    5  999999K    1000M        0        0"]
    assert out(m, "ipvsadm -ln --stats --exact").splitlines()[3] == (
        "TCP  10.0.0.100:80                      12 99999999 100000000 123456789012 "
        "1000000000000000")


def test_passive_check_in_the_data_not_the_columns():
    """The passive check's counters reach `| json` through the stats dict (the counter
    table drives it); ipvsadm's text keeps ipvsadm's columns."""
    m = counted()
    text = out(m, "ipvsadm -ln --stats")
    m.engine.dest[0] = dict(conns=4, answered=1, unanswered=3, fails_in_row=3,
                            answered_ago=31.5, failed_ago=0.2)
    assert out(m, "ipvsadm -ln --stats") == text.replace(
        "  -> 192.168.100.2:80                    0", "  -> 192.168.100.2:80                    4")
    rs1, rs2 = run(Context(m), "ipvsadm -ln --stats").data["services"][0]["dests"]
    assert (rs1["stats"]["unanswered"], rs1["stats"]["fails_in_row"],
            rs1["stats"]["answered_ago"], rs1["stats"]["refused"]) == (3, 3, 31.5, 0)
    assert rs2["stats"]["answered_ago"] is None and rs2["stats"]["fails_in_row"] == 0


class Clock:
    def __init__(self, t):
        self.t = t

    def monotonic(self):
        return self.t


def test_rates(monkeypatch):
    m = counted()
    clock = Clock(1000.0)
    monkeypatch.setattr(services_engine, "time", clock)
    m.services.sample_rates()                      # the daemon's periodic sample
    m.engine.svc[0] = dict(conns=20, inpkts=2000, outpkts=1000, inbytes=2_000_000,
                           outbytes=4_000_000_000)
    m.engine.dest[0] = dict(conns=20, inpkts=2000, outpkts=1000, inbytes=2_000_000)
    clock.t = 1002.0
    assert out(m, "ipvsadm -ln --rate").splitlines()[1:] == [
        "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS",
        "  -> RemoteAddress:Port",
        "TCP  10.0.0.100:80                      10     1000      500  1000000    2000M",
        "  -> 192.168.100.2:80                   10     1000      500  1000000        0",
        "  -> 192.168.100.3:80                    0        0        0        0        0"]
    data = run(Context(m), "ipvsadm -ln --rate").data
    assert data["services"][0]["rate"]["cps"] == 10


MODE = {name: i for i, name in enumerate(plugins.modes())}   # the data plane's mode index


def test_connections():
    m = counted()
    def i(text):
        return int(IPv4Address(text))
    m.engine.conns = [
        dict(proto=6, caddr=i("10.0.0.48"), cport=37177, vaddr=i("10.0.0.100"), vport=80,
             laddr=i("192.168.100.200"), lport=1042, daddr=i("192.168.100.2"), dport=80,
             state="ESTABLISHED", expires=899.6, mode=MODE["fnat"], worker=0),
        dict(proto=17, caddr=i("10.0.0.48"), cport=5353, vaddr=i("10.0.0.100"), vport=53,
             laddr=0, lport=0, daddr=i("192.168.100.3"), dport=53, state="UDP", expires=61.0,
             mode=MODE["dr"], worker=1)]
    assert out(m, "ipvsadm -lnc").splitlines() == [
        "IPVS connection entries",
        "pro expire state       source             virtual            local              "
        "destination",
        "TCP 14:59  ESTABLISHED 10.0.0.48:37177    10.0.0.100:80      192.168.100.200:1042 "
        "192.168.100.2:80",
        "UDP 01:01  UDP         10.0.0.48:5353     10.0.0.100:53      10.0.0.48:5353     "
        "192.168.100.3:53"]
    rows = run(Context(m), "ipvsadm -L -n -c").data["connections"]
    assert [r["mode"] for r in rows] == ["fnat", "dr"]
    assert out(m, "ipvsadm -Lnc") == out(m, "ipvsadm --list --connection") == out(m, "ipvsadm -lc")


def test_zero():
    m = counted()
    m.engine.calls.clear()
    apply(m, "ipvsadm -Z\nipvsadm -Z -t 10.0.0.100:80\nipvsadm --zero")
    assert [c[1] for c in m.engine.calls if c[0] == "zero_stats"] == [(None,), (0,), (None,)]
    refused(m, "ipvsadm -Z -t 10.0.0.100:81", "^No such service$")


# ------------------------------------------------------------------- errors


@pytest.mark.parametrize("line, match", [
    ("ipvsadm -A -s rr", "^You need to supply the 'service-address' option for the "
                         "'add-service' command$"),
    ("ipvsadm -A -t 10.0.0.1:80 -u 10.0.0.1:80", "^multiple 'service-address' options specified$"),
    ("ipvsadm -A -t 10.0.0.100:80", "^Service already exists$"),
    ("ipvsadm -A -t 10.0.0.1", "^Zero port specified for no-match and non-persistent service$"),
    ("ipvsadm -A -t 10.0.0.1:80 -s lblc", "^Scheduler not found: lblc"),
    ("ipvsadm -A -t 10.0.0.1:80 -M 255.0.255.0", "illegal virtual server persistent mask"),
    ("ipvsadm -E -t 10.0.0.1:80 -s rr", "^No such service$"),
    ("ipvsadm -D -t 10.0.0.1:80", "^No such service$"),
    ("ipvsadm -a -t 10.0.0.100:80", "^You need to supply the 'real-server' option for the "
                                    "'add-server' command$"),
    ("ipvsadm -a -t 10.0.0.1:80 -r 192.168.100.9", "^Service not defined$"),
    ("ipvsadm -a -t 10.0.0.100:80 -r 192.168.100.2 -b", "^Destination already exists$"),
    ("ipvsadm -a -t 10.0.0.100:80 -r 192.168.100.9 -J", "match service"),
    ("ipvsadm -a -t 10.0.0.100:80 -r 192.168.100.9 --snat", "match service"),
    ("ipvsadm -a -t 10.0.0.100:80 -r 192.168.100.9 -x 5 -y 6", "lower threshold 6"),
    ("ipvsadm -e -t 10.0.0.100:80 -r 192.168.100.9 -w 2", "^No such destination$"),
    ("ipvsadm -d -t 10.0.0.100:80 -r 192.168.100.2:81", "^No such destination$"),
    ("ipvsadm -d -t 10.0.0.1:80 -r 192.168.100.2", "^Service not defined$"),
    ("ipvsadm --add-laddr -z 192.168.100.201 -t 10.0.0.100:80", "^You need to supply the "
                                                                "'ifname' option"),
    ("ipvsadm --add-laddr -t 10.0.0.100:80 -F dpdk0", "'local-address' option for the "
                                                      "'add-laddr' command"),
    ("ipvsadm -P -z 192.168.100.200 -t 10.0.0.100:80 -F dpdk0", "^Local address already exists$"),
    ("ipvsadm -P -z 10.0.0.100 -t 10.0.0.100:80 -F dpdk0", "is an address of dpdk1, not dpdk0"),
    ("ipvsadm -P -z 192.168.100.201 -t 10.0.0.100:80 -F dpdk9", "no such port 'dpdk9'"),
    ("ipvsadm -Q -z 192.168.100.201 -t 10.0.0.100:80 -F dpdk0", "^No such Local address$"),
    ("ipvsadm -Q -z 192.168.100.200 -t 10.0.0.1:80 -F dpdk0", "^Service not defined$"),
    ("ipvsadm -L -c --stats", "^options conflicts in the list command$"),
    ("ipvsadm -ln --timeout --rate", "^options conflicts in the list command$"),
    ("ipvsadm -L -c -t 10.0.0.100:80", "^The option 'service-address' conflicts with the "
                                       "'connection' option in the 'list' command$"),
    ("ipvsadm -lnc --timeout", "^The option 'timeout' conflicts with the 'connection' option"),
    ("ipvsadm -A -t 10.0.0.1:80 -s rr -s wlc", "Invalid input"),           # one -s only
    ("ipvsadm -a -t 10.0.0.100:80 -r 192.168.100.9 -b -g", "Invalid input"),
    ("ipvsadm -a -t 10.0.0.100:80 -r 192.168.100.9 -w 65536", "^% weight must be 0-65535\n"),
    ("ipvsadm -A -t 10.0.0.1:65536", "Invalid input"),
    ("ipvsadm -A -t 10.0.0.1:http", "Invalid input"),
    ("ipvsadm --set 1 2", "Incomplete command"),
    ("ipvsadm --set 1 2 2678401", "^% udp must be 0-2678400\n"),
    ("ipvsadm -A -t 10.0.0.1:80 -p 0", "^% timeout must be 1-2678400\n"),
    ("ipvsadm --add-ser -t 10.0.0.1:80", "Ambiguous command"),           # --add-server/-service
])
def test_errors_change_nothing(line, match):
    m = model()
    apply(m, FNAT_TWO_ARM)
    refused(m, line, match)


def test_long_option_abbreviations_as_getopt():
    m = model()
    apply(m, "ipvsadm --add-servi --tcp 10.0.0.1:80 --sched rr")
    assert m.services.table[(6, IPv4Address("10.0.0.1"), 80)].sched == "rr"


# ------------------------------------------------------ long options round trip

PAIRS = [
    ("ipvsadm -A -t 10.0.0.1:80 -s rr -p 60 -M 255.255.255.0",
     "ipvsadm --add-service --tcp-service 10.0.0.1:80 --scheduler rr --persistent 60 "
     "--netmask 255.255.255.0"),
    ("ipvsadm -A -u 10.0.0.1:53 -p", "ipvsadm --add-service --udp-service 10.0.0.1:53 --persistent"),
    ("ipvsadm -E -t 10.0.0.1:80 -s wlc", "ipvsadm --edit-service --tcp-service 10.0.0.1:80 "
                                         "--scheduler wlc"),
    ("ipvsadm -a -t 10.0.0.1:80 -r 192.168.1.2:8080 -b -w 3 -x 100 -y 10",
     "ipvsadm --add-server --tcp-service 10.0.0.1:80 --real-server 192.168.1.2:8080 --fullnat "
     "--weight 3 --u-threshold 100 --l-threshold 10"),
    ("ipvsadm -a -t 10.0.0.1:80 -r 192.168.1.3 -g", "ipvsadm --add-server --tcp-service "
                                                     "10.0.0.1:80 --real-server 192.168.1.3 --gatewaying"),
    ("ipvsadm -a -t 10.0.0.1:80 -r 192.168.1.4 -i", "ipvsadm --add-server --tcp-service "
                                                     "10.0.0.1:80 --real-server 192.168.1.4 --ipip"),
    ("ipvsadm -a -u 10.0.0.1:53 -r 192.168.1.5 -m", "ipvsadm --add-server --udp-service "
                                                     "10.0.0.1:53 --real-server 192.168.1.5 --masquerading"),
    ("ipvsadm -e -t 10.0.0.1:80 -r 192.168.1.3 -w 0", "ipvsadm --edit-server --tcp-service "
                                                       "10.0.0.1:80 --real-server 192.168.1.3 --weight 0"),
    ("ipvsadm -d -t 10.0.0.1:80 -r 192.168.1.4", "ipvsadm --delete-server --tcp-service "
                                                  "10.0.0.1:80 --real-server 192.168.1.4"),
    ("ipvsadm -Z -t 10.0.0.1:80", "ipvsadm --zero --tcp-service 10.0.0.1:80"),
    ("ipvsadm -A -t 10.0.0.3:80 -s rr", "ipvsadm --add-service --tcp-service 10.0.0.3:80 "
                                        "--scheduler rr"),
    ("ipvsadm -a -t 10.0.0.3:80 -r 192.168.1.6 -b", "ipvsadm --add-server --tcp-service "
                                                     "10.0.0.3:80 --real-server 192.168.1.6 --fullnat"),
    ("ipvsadm -P -z 192.168.1.200 -t 10.0.0.3:80 -F dpdk0",
     "ipvsadm --add-laddr --laddr 192.168.1.200 --tcp-service 10.0.0.3:80 --ifname dpdk0"),
    ("ipvsadm -P -z 192.168.1.201 -t 10.0.0.3:80 -F dpdk0",
     "ipvsadm --add-laddr --laddr 192.168.1.201 --tcp-service 10.0.0.3:80 --ifname dpdk0"),
    ("ipvsadm -Q -z 192.168.1.201 -t 10.0.0.3:80 -F dpdk0",
     "ipvsadm --del-laddr --laddr 192.168.1.201 --tcp-service 10.0.0.3:80 --ifname dpdk0"),
    ("ipvsadm -A -t 10.0.0.2:80", "ipvsadm --add-service --tcp-service 10.0.0.2:80"),
    ("ipvsadm -D -t 10.0.0.2:80", "ipvsadm --delete-service --tcp-service 10.0.0.2:80"),
]
LISTS = [("ipvsadm -L -n", "ipvsadm --list --numeric"),
         ("ipvsadm -l -n --stats -X", "ipvsadm --list --numeric --stats --exact"),
         ("ipvsadm -L --rate", "ipvsadm --list --rate"),
         ("ipvsadm -L -c", "ipvsadm --list --connection"),
         ("ipvsadm -L -t 10.0.0.1:80", "ipvsadm --list --tcp-service 10.0.0.1:80"),
         ("ipvsadm -L -u 10.0.0.1:53", "ipvsadm --list --udp-service 10.0.0.1:53"),
         ("ipvsadm -G -t 10.0.0.3:80", "ipvsadm --get-laddr --tcp-service 10.0.0.3:80")]


def test_long_options_round_trip():
    """Each long form means what its short form means: the same model, the same listings."""
    short, long = model(), model()
    apply(short, ON_LAN)
    apply(long, ON_LAN)
    for s, lng in PAIRS:
        assert g.parse(s, "exec").command is g.parse(lng, "exec").command
        apply(short, s)
        apply(long, lng)
        assert snapshot(short) == snapshot(long), lng
    for s, lng in LISTS:
        assert out(short, s) == out(long, lng), lng
    apply(short, "ipvsadm -C")
    apply(long, "ipvsadm --clear")
    assert snapshot(short) == snapshot(long)
    assert short.services.table == {}


def test_every_option_word_is_used():
    """Each short and long option of ipvsadm.py's table appears in some definition."""
    used = {t.word for c in g.commands("exec") for t in _terminals(c.root) if isinstance(t, _Kw)}
    for short, long, _ in ipvsadm._OPTIONS:
        assert {short, long} <= used


# ----------------------------------------------------------- the grammar itself

IPVSADM = [c for c in g.commands("exec") if c.handler.__module__ == ipvsadm.__name__]
SAMPLES = {"A.B.C.D": "192.168.9.9", "A.B.C.D:PORT": "10.0.0.100:80", "WORD": {
    "sched": "rr", "dev": "dpdk0", "match": "proto=tcp", "target": "sip"}}


def sample(node, full):
    """A line from a definition: every optional part (full) or none; first alternatives."""
    if isinstance(node, _Kw):
        return [node.word]
    if isinstance(node, _Var):
        if node.kind == "RANGE":
            return [str(node.lo)]
        value = SAMPLES[node.kind]
        return [value[node.bind] if isinstance(value, dict) else value]
    assert isinstance(node, _Group)
    if node.kind == "opt":
        return sample(node.items[0], full) if full else []
    if node.kind == "alt":
        return sample(node.items[0], full)
    if node.kind == "set" and not full:
        return []
    return [w for item in node.items for w in sample(item, full)]


def test_ipvsadm_commands_are_installed_once_each():
    assert len(IPVSADM) == 16
    handlers = [c.handler for c in IPVSADM]
    assert len(set(handlers)) == len(handlers)


@pytest.mark.parametrize("cmd", IPVSADM, ids=[c.definition[:60] for c in IPVSADM])
def test_handler_parameters_are_bindings(cmd):
    params = list(inspect.signature(cmd.handler).parameters)
    assert params[0] == "ctx"
    assert handler_params(cmd.handler) <= set(cmd.bindings)
    assert cmd.doc, "a handler's docstring is its help line"


@pytest.mark.parametrize("full", [False, True], ids=["minimal", "full"])
@pytest.mark.parametrize("cmd", IPVSADM, ids=[c.definition[:60] for c in IPVSADM])
def test_every_ipvsadm_command_runs(cmd, full):
    """A line built from the definition parses to that command and, on the tutorial's
    model, succeeds or says why not: a CommandError, never anything else."""
    line = " ".join(sample(cmd.root, full))
    assert g.parse(line, node="exec").command is cmd, line
    m = model()
    apply(m, FNAT_TWO_ARM)
    try:
        reply = run(Context(m), line)
    except CommandError:
        return
    assert isinstance(reply, Reply) and isinstance(reply.text, str)


def test_completion_lists_the_options():
    words = [w for w, _ in g.complete("ipvsadm -a -t 10.0.0.100:80 ", node="exec")]
    assert {"-r", "--real-server", "-b", "--fullnat", "-w", "-x", "-y", "<cr>"} <= set(words)
    assert "-t" not in words                      # given already
    assert g.complete("ipvsadm -a -r ", node="exec") == [("A.B.C.D:PORT", "Real server address[:port]")]


def test_the_fnat_tutorial_with_the_real_plugins():
    """With the built plugins (rlb.plugins): a config file checked as the daemon checks it,
    then attached: every mode and scheduler registered in the registry's order, then the
    service and its real servers."""
    from rlb import plugins
    from rlb.control.config import check
    text = "dataplane\n port dpdk0 net_tap0\n port dpdk1 net_tap1\n!\n" + "\n".join(
        line.strip().removeprefix("./") for line in FNAT_TWO_ARM.strip().splitlines())
    m = check(list(enumerate(text.splitlines(), 1)), "fnat.conf")
    assert out(m, "ipvsadm -ln").splitlines()[4].split()[2] == "FullNat"
    m.attach(engine := FakeEngine())
    calls = engine.calls
    names = [c[0] for c in calls]
    assert [c[1][0] for c in calls if c[0] == "register_mode"] == list(range(len(plugins.modes())))
    assert [c[1][0] for c in calls if c[0] == "register_sched"] == list(
        range(len(plugins.schedulers())))
    assert names[-3:] == ["dest_set", "dest_set", "svc_set"]
    svc = calls[-1][2]
    assert (svc["sched"], svc["dests"], svc["laddrs"]) == (
        list(plugins.schedulers()).index("rr"), [0, 1], [(int(IPv4Address("192.168.100.200")), 0)])
