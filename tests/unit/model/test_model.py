"""rlb.model.model without a data plane: what each change records, what it refuses,
and that a refused change leaves everything as it was; a recording fake engine checks
what is pushed to the data plane."""
import copy
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest

from rlb.control.config import run
from rlb.commands.base import Context
from rlb.model.model import SCOPE_CODE, SCOPES, CommandError, Model
from support import engine as fake_engine


def ip(text):
    return IPv4Address(text)


def ifc(text):
    return IPv4Interface(text)


def net(text):
    return IPv4Network(text)


class FakeEngine(fake_engine.FakeEngine):
    """Records every call of the Engine interface the model uses, in the order made, as
    (name, its arguments); support.engine holds it to rlb.core.dataplane.Engine's."""

    def __init__(self, learned=()):
        super().__init__()
        self.learned = list(learned)      # what neighbours() reports as learned

    def set_forwarding(self, on):
        self.calls.append(("set_forwarding", on))

    def set_idle(self, busy_poll, idle_sleep_us):
        self.calls.append(("set_idle", busy_poll, idle_sleep_us))

    def set_neigh_timeout(self, seconds):
        self.calls.append(("set_neigh_timeout", seconds))

    def set_vip_miss_kni(self, on):
        self.calls.append(("set_vip_miss_kni", on))

    def set_kni_rate(self, pps):
        self.calls.append(("set_kni_rate", pps))

    def route_set(self, index, prefix, plen, *, gw=0, src=0, port=0, scope=0, mtu=1500,
                  sapool=False, kni_arp=False):
        self.calls.append(("route_set", index, prefix, plen, gw, src, port, scope, mtu))

    def route_del(self, index, prefix, plen):
        self.calls.append(("route_del", index, prefix, plen))

    def neigh_set(self, ip, mac, port, static=True):
        self.calls.append(("neigh_set", ip, mac, port, static))

    def neigh_del(self, ip):
        self.calls.append(("neigh_del", ip))

    def neigh_flush(self, port=-1):
        self.calls.append(("neigh_flush", port))

    def garp(self, ip, port):
        self.calls.append(("garp", ip, port))

    def port_addr(self, port, ip):
        self.calls.append(("port_addr", port, ip))

    def neighbours(self):
        return list(self.learned)


def test_scope_codes_are_the_data_plane_enum():
    """A route's scope reaches the engine as the compiled data plane's RouteScope code,
    and every code has its word (SCOPES in code order)."""
    from rlb.core import consts
    m = two_ports()
    m.engine = FakeEngine()
    m.add_address(ifc("10.0.0.1/24"), "dpdk1")
    assert [c[7] for c in m.engine.calls if c[0] == "route_set"] == \
        [consts.SCOPE_CODE["host"], consts.SCOPE_CODE["link"]]
    assert [SCOPE_CODE[s] for s in SCOPES] == list(range(len(SCOPES)))


# ------------------------------------------------------------------ helpers


def two_ports(**settings):
    m = Model()
    for k, v in settings.items():
        setattr(m.settings, k, v)
    m.add_port("dpdk0", "net_af_packet0,iface=eth0")
    m.add_port("dpdk1", "net_af_packet1,iface=eth1")
    return m


def snapshot(m):
    """Everything a command may change (the data plane aside)."""
    return copy.deepcopy((m.settings, m.ports, m.addresses, m.routes, m.neighbours,
                          m._free_slots, m._next_slot))


def refused(m, fn, *args, match=None, **kw):
    """fn(*args) raises CommandError, and the model (and its engine) is left unchanged."""
    before = snapshot(m)
    calls = list(m.engine.calls) if isinstance(m.engine, FakeEngine) else None
    with pytest.raises(CommandError, match=match) as info:
        fn(*args, **kw)
    assert snapshot(m) == before, "a command that fails changed the model"
    if calls is not None:
        assert m.engine.calls == calls, "a command that fails called the data plane"
    return str(info.value)


def routes(m):
    """{prefix text: (port, scope, auto, via, src)}"""
    return {str(r.prefix): (r.port, r.scope, r.auto, r.via and str(r.via), r.src and str(r.src))
            for r in m.routes.values()}


@pytest.fixture
def m():
    return two_ports()


# ---------------------------------------------------------------- addresses


def test_addr_add_makes_host_and_connected_routes(m):
    m.add_address(ifc("10.0.0.1/24"), "dpdk0")
    assert [(str(a.iface), a.port, a.sapool) for a in m.addresses] == [("10.0.0.1/24", "dpdk0", False)]
    assert routes(m) == {"10.0.0.1/32": ("dpdk0", "host", True, None, None),
                         "10.0.0.0/24": ("dpdk0", "link", True, None, None)}


def test_addr_add_32_makes_only_the_host_route(m):
    m.add_address(ifc("10.0.0.100/32"), "dpdk1", sapool=True)
    assert m.addresses[0].sapool
    assert routes(m) == {"10.0.0.100/32": ("dpdk1", "host", True, None, None)}


def test_addr_del_keeps_the_network_route_while_another_address_needs_it(m):
    m.add_address(ifc("10.0.0.1/24"), "dpdk0")
    m.add_address(ifc("10.0.0.2/24"), "dpdk0")
    assert set(routes(m)) == {"10.0.0.1/32", "10.0.0.2/32", "10.0.0.0/24"}
    m.del_address(ifc("10.0.0.1/24"), "dpdk0")
    assert set(routes(m)) == {"10.0.0.2/32", "10.0.0.0/24"}
    m.del_address(ifc("10.0.0.2/24"), "dpdk0")
    assert routes(m) == {} and m.addresses == []


def test_addr_del_by_host_address_alone(m):
    """`dpip addr del 10.0.0.1 dev dpdk0` (a /32) deletes 10.0.0.1/24 as DPVS does."""
    m.add_address(ifc("10.0.0.1/24"), "dpdk0")
    m.del_address(ifc("10.0.0.1/32"), "dpdk0")
    assert routes(m) == {} and m.addresses == []


def test_addr_del_leaves_a_configured_network_route(m):
    m.add_route(net("10.0.0.0/24"), "dpdk0")                 # by hand, not auto
    m.add_address(ifc("10.0.0.1/24"), "dpdk0")
    assert routes(m)["10.0.0.0/24"] == ("dpdk0", "link", False, None, None)
    m.del_address(ifc("10.0.0.1/24"), "dpdk0")
    assert routes(m) == {"10.0.0.0/24": ("dpdk0", "link", False, None, None)}


def test_slots_are_reused(m):
    m.add_address(ifc("10.0.0.1/24"), "dpdk0")               # slots 0, 1
    m.add_route(net("172.16.0.0/12"), "dpdk1")                # slot 2
    m.del_address(ifc("10.0.0.1/24"), "dpdk0")                # frees 0, 1
    m.add_route(net("192.168.0.0/16"), "dpdk1")
    m.add_route(net("192.168.1.0/24"), "dpdk1")
    slots = sorted(r.slot for r in m.routes.values())
    assert slots == [0, 1, 2] and m._next_slot == 3


@pytest.mark.parametrize("addr", ["0.0.0.0/8", "224.0.0.1/32", "239.1.2.3/24",
                                  "255.255.255.255/32"])
def test_addr_add_refuses_what_cannot_be_an_interface_address(m, addr):
    refused(m, m.add_address, ifc(addr), "dpdk0", match="cannot be an interface address")


def test_addr_add_refuses_duplicates_on_any_port(m):
    m.add_address(ifc("10.0.0.1/24"), "dpdk0")
    refused(m, m.add_address, ifc("10.0.0.1/24"), "dpdk0", match="already exists")
    refused(m, m.add_address, ifc("10.0.0.1/16"), "dpdk1", match="already exists")


def test_addr_add_refuses_an_existing_host_route(m):
    m.add_route(net("10.9.9.9/32"), "dpdk0")
    refused(m, m.add_address, ifc("10.9.9.9/24"), "dpdk0", match="route 10.9.9.9/32 already exists")


def test_addr_add_unknown_port_lists_the_known_ports(m):
    text = refused(m, m.add_address, ifc("10.0.0.1/24"), "dpdk9")
    assert text == "no such port 'dpdk9' (ports: dpdk0, dpdk1)"
    text = refused(Model(), Model().add_address, ifc("10.0.0.1/24"), "dpdk0")
    assert "none defined" in text


def test_addr_del_refusals(m):
    m.add_address(ifc("10.0.0.1/24"), "dpdk0")
    refused(m, m.del_address, ifc("10.0.0.2/24"), "dpdk0", match="not found on dpdk0")
    refused(m, m.del_address, ifc("10.0.0.1/24"), "dpdk1", match="not found on dpdk1")
    refused(m, m.del_address, ifc("10.0.0.1/16"), "dpdk0", match="is 10.0.0.1/24, not 10.0.0.1/16")
    refused(m, m.del_address, ifc("10.0.0.1/24"), "nope", match="no such port")


# ------------------------------------------------------------------- routes


def test_route_add_records_the_route(m):
    m.add_address(ifc("10.0.0.1/24"), "dpdk0")
    m.add_route(net("0.0.0.0/0"), "dpdk0", via=ip("10.0.0.254"), src=ip("10.0.0.1"),
                mtu=1400, metric=5)
    r = m.routes[(ip("0.0.0.0"), 0)]
    assert (r.port, r.via, r.src, r.scope, r.mtu, r.metric, r.auto) == \
        ("dpdk0", ip("10.0.0.254"), ip("10.0.0.1"), "global", 1400, 5, False)
    m.add_route(net("172.10.0.2/32"), "dpdk1", scope="kni_host")
    assert m.routes[(ip("172.10.0.2"), 32)].scope == "kni_host"
    m.add_route(net("10.1.0.0/16"), "dpdk1")
    assert m.routes[(ip("10.1.0.0"), 16)].scope == "link"


def test_route_dev_is_required():
    m = two_ports()
    before = snapshot(m)
    with pytest.raises(CommandError, match="dev is required"):
        run(Context(m), "dpip route add 10.0.0.0/16")
    assert snapshot(m) == before


def test_route_host_bits_refused():
    m = two_ports()
    before = snapshot(m)
    with pytest.raises(CommandError, match=r"did you mean 10\.0\.0\.0/16"):
        run(Context(m), "dpip route add 10.0.0.1/16 dev dpdk0")
    assert snapshot(m) == before


def test_route_refusals(m):
    m.add_address(ifc("10.0.0.1/24"), "dpdk0")
    m.add_address(ifc("192.168.1.1/24"), "dpdk1")
    m.add_route(net("172.16.0.0/12"), "dpdk1")
    refused(m, m.add_route, net("172.10.0.0/24"), "dpdk1", scope="kni_host", match="must be a /32")
    refused(m, m.add_route, net("172.10.0.0/24"), "dpdk1", scope="host", match="dpip addr add")
    refused(m, m.add_route, net("172.10.0.0/24"), "dpdk1", scope="bogus", match="unknown scope")
    refused(m, m.add_route, net("0.0.0.0/0"), "dpdk0", via=ip("10.0.0.254"), scope="link",
            match="cannot have scope link")
    # a gateway on no connected network, or on another port's
    refused(m, m.add_route, net("0.0.0.0/0"), "dpdk0", via=ip("10.0.1.254"), match="not on a connected")
    refused(m, m.add_route, net("0.0.0.0/0"), "dpdk1", via=ip("10.0.0.254"), match="not on a connected")
    m.add_route(net("8.0.0.0/8"), "dpdk1", via=ip("192.168.1.254"))
    # inside a route through a gateway is not on a connected network
    refused(m, m.add_route, net("0.0.0.0/0"), "dpdk1", via=ip("8.8.8.8"), match="not on a connected")
    refused(m, m.add_route, net("9.0.0.0/8"), "dpdk0", src=ip("10.0.0.2"), match="not one of our")
    refused(m, m.add_route, net("172.16.0.0/12"), "dpdk1", match="already exists")
    refused(m, m.add_route, net("172.16.0.0/12"), "dpdk0", match="already exists")
    refused(m, m.add_route, net("9.0.0.0/8"), "dpdk7", match=r"no such port 'dpdk7' \(ports: dpdk0, dpdk1\)")


def test_route_gateway_on_a_connected_network(m):
    m.add_address(ifc("10.0.0.1/24"), "dpdk0")
    m.add_route(net("0.0.0.0/0"), "dpdk0", via=ip("10.0.0.254"))
    m.add_route(net("192.168.5.0/24"), "dpdk1")                # a link route by hand
    m.add_route(net("8.0.0.0/8"), "dpdk1", via=ip("192.168.5.1"))
    assert {str(r.prefix) for r in m.routes.values()} >= {"0.0.0.0/0", "8.0.0.0/8"}


def test_route_del(m):
    m.add_address(ifc("10.0.0.1/24"), "dpdk0")
    m.add_route(net("172.16.0.0/12"), "dpdk1")
    refused(m, m.del_route, net("10.0.0.1/32"), "dpdk0", match="dpip addr del")
    refused(m, m.del_route, net("10.0.0.1/32"), match="dpip addr del")
    refused(m, m.del_route, net("172.16.0.0/12"), "dpdk0", match="not found")
    refused(m, m.del_route, net("172.16.0.0/16"), match="not found")
    m.del_route(net("172.16.0.0/12"), "dpdk1")
    # an address's network route goes with the address only
    refused(m, m.del_route, net("10.0.0.0/24"), match="dpip addr del")
    assert set(routes(m)) == {"10.0.0.1/32", "10.0.0.0/24"}


def test_route_table_size_limit():
    m = two_ports(route_table_size=16)
    for i in range(15):
        m.add_route(net(f"10.{i}.0.0/16"), "dpdk0")
    # 15 used, 1 free: an address that needs a host and a network route does not fit
    refused(m, m.add_address, ifc("192.168.0.1/24"), "dpdk1", match=r"route table full \(16 routes\)")
    m.add_address(ifc("192.168.0.1/32"), "dpdk1")           # one route: fits
    refused(m, m.add_route, net("172.16.0.0/12"), "dpdk1", match="route table full")
    refused(m, m.add_address, ifc("192.168.0.2/32"), "dpdk1", match="route table full")
    m.del_route(net("10.0.0.0/16"))
    m.add_route(net("172.16.0.0/12"), "dpdk1")
    assert len(m.routes) == 16 and max(r.slot for r in m.routes.values()) == 15


# --------------------------------------------------------------- neighbours


def test_neigh_add_and_del(m):
    m.add_neighbour(ip("10.0.0.2"), "52:54:00:12:34:56", "dpdk0")
    n = m.neighbours[ip("10.0.0.2")]
    assert (n.mac, n.port) == ("52:54:00:12:34:56", "dpdk0")
    m.del_neighbour(ip("10.0.0.2"), "dpdk0")
    assert m.neighbours == {}


@pytest.mark.parametrize("mac", ["01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", "33:33:00:00:00:01",
                                 "00:00:00:00:00:00"])
def test_neigh_unicast_mac_only(m, mac):
    refused(m, m.add_neighbour, ip("10.0.0.2"), mac, "dpdk0", match="not a unicast MAC")


def test_neigh_refusals(m):
    m.add_address(ifc("10.0.0.1/24"), "dpdk0")
    m.add_neighbour(ip("10.0.0.2"), "52:54:00:12:34:56", "dpdk0")
    refused(m, m.add_neighbour, ip("10.0.0.1"), "52:54:00:00:00:01", "dpdk0", match="our own address")
    refused(m, m.add_neighbour, ip("10.0.0.1"), "52:54:00:00:00:01", "dpdk1", match="our own address")
    refused(m, m.add_neighbour, ip("10.0.0.2"), "52:54:00:00:00:02", "dpdk0", match="already exists")
    refused(m, m.add_neighbour, ip("10.0.0.3"), "52:54:00:00:00:02", "nope", match="no such port")
    refused(m, m.del_neighbour, ip("10.0.0.3"), match="not found")
    refused(m, m.del_neighbour, ip("10.0.0.3"), "dpdk0", match="not found")
    refused(m, m.del_neighbour, ip("10.0.0.2"), "dpdk1", match="not found")


def test_neigh_table_limit():
    m = two_ports(neigh_table_size=16)
    for i in range(8):
        m.add_neighbour(ip(f"10.0.0.{i + 2}"), "52:54:00:00:00:01", "dpdk0")
    refused(m, m.add_neighbour, ip("10.0.0.99"), "52:54:00:00:00:01", "dpdk0", match="too many")


# -------------------------------------------------------------------- ports


def test_ports_get_indexes_in_order():
    m = two_ports()
    assert [(p.name, p.index, p.kni) for p in m.ports.values()] == \
        [("dpdk0", 0, "dpdk0.kni"), ("dpdk1", 1, "dpdk1.kni")]


@pytest.mark.parametrize("name", ["dpdk0.1", "a b", "", "-", "twelve_chars", "dpdk/0", "x:y"])
def test_port_bad_names(name):
    m = Model()
    refused(m, m.add_port, name, "net_tap0", match="bad port name")


def test_port_good_names():
    m = Model()
    for name in ["dpdk0", "wan", "lan-1", "bond_0", "elevenchars"]:
        m.add_port(name, f"net_tap{len(m.ports)}")
    assert len(m.ports) == 5


def test_port_duplicates_and_device_reuse(m):
    refused(m, m.add_port, "dpdk0", "net_tap9", match="port dpdk0 already defined")
    refused(m, m.add_port, "dpdk2", "net_af_packet0,iface=eth9", match="device net_af_packet0 already used")
    m.add_port("pci0", "0000:06:00.0")
    refused(m, m.add_port, "pci1", "0000:06:00.0,rx_queues=2", match="device 0000:06:00.0 already used")


def test_at_most_8_ports():
    m = Model()
    for i in range(8):
        m.add_port(f"dpdk{i}", f"net_tap{i}")
    refused(m, m.add_port, "dpdk8", "net_tap8", match="at most 8")


def test_port_name_ascii_only():
    m = Model()
    refused(m, m.add_port, "ééééééééééé", "net_tap0", match="bad port name")


def test_port_same_kernel_interface_twice(m):
    refused(m, m.add_port, "dpdk2", "net_af_packet2,iface=eth1", match="already used")


# ----------------------------------------------------------- the data plane


@pytest.fixture
def fm():
    m = two_ports()
    m.engine = FakeEngine()
    return m


HOST, LINK, GLOBAL, KNI_HOST = (SCOPE_CODE[s] for s in ("host", "link", "global", "kni_host"))


def i(text):
    return int(IPv4Address(text))


def test_engine_addr_add_and_del(fm):
    fm.add_address(ifc("10.0.0.1/24"), "dpdk1")
    assert fm.engine.calls == [
        ("route_set", 0, i("10.0.0.1"), 32, 0, 0, 1, HOST, 1500),
        ("route_set", 1, i("10.0.0.0"), 24, 0, 0, 1, LINK, 1500),
        ("port_addr", 1, i("10.0.0.1")),
        ("garp", i("10.0.0.1"), 1),
    ]
    fm.engine.calls.clear()
    fm.add_address(ifc("10.0.0.2/24"), "dpdk1")       # network route exists: not pushed again
    assert fm.engine.calls == [
        ("route_set", 2, i("10.0.0.2"), 32, 0, 0, 1, HOST, 1500),
        ("port_addr", 1, i("10.0.0.1")),               # the primary stays the first address
        ("garp", i("10.0.0.2"), 1),
    ]
    fm.engine.calls.clear()
    fm.del_address(ifc("10.0.0.1/24"), "dpdk1")
    assert fm.engine.calls == [
        ("route_del", 0, i("10.0.0.1"), 32),
        ("port_addr", 1, i("10.0.0.2")),
    ]
    fm.engine.calls.clear()
    fm.del_address(ifc("10.0.0.2/24"), "dpdk1")
    assert fm.engine.calls == [
        ("route_del", 2, i("10.0.0.2"), 32),
        ("route_del", 1, i("10.0.0.0"), 24),
        ("port_addr", 1, 0),                           # no address left on the port
    ]


def test_engine_route_add_and_del(fm):
    fm.add_address(ifc("10.0.0.1/24"), "dpdk0")
    fm.engine.calls.clear()
    fm.add_route(net("0.0.0.0/0"), "dpdk0", via=ip("10.0.0.254"), src=ip("10.0.0.1"), mtu=1400)
    fm.add_route(net("172.10.0.2/32"), "dpdk1", scope="kni_host")
    fm.del_route(net("0.0.0.0/0"))
    fm.add_route(net("192.168.0.0/16"), "dpdk1")      # reuses the freed slot
    assert fm.engine.calls == [
        ("route_set", 2, 0, 0, i("10.0.0.254"), i("10.0.0.1"), 0, GLOBAL, 1400),
        ("route_set", 3, i("172.10.0.2"), 32, 0, 0, 1, KNI_HOST, 1500),
        ("route_del", 2, 0, 0),
        ("route_set", 2, i("192.168.0.0"), 16, 0, 0, 1, LINK, 1500),
    ]


def test_engine_neighbours(fm):
    fm.add_neighbour(ip("10.0.0.2"), "52:54:00:12:34:56", "dpdk1")
    fm.del_neighbour(ip("10.0.0.2"), "dpdk1")
    assert fm.engine.calls == [
        ("neigh_set", i("10.0.0.2"), bytes.fromhex("525400123456"), 1, True),
        ("neigh_del", i("10.0.0.2")),
    ]


def test_engine_learned_neighbour_may_be_flushed(fm):
    fm.engine.learned = [{"ip": i("10.0.0.9"), "mac": bytes(6), "port": 0, "state": "REACHABLE",
                          "worker": 0, "age": 1.0}]
    fm.del_neighbour(ip("10.0.0.9"), "dpdk0")
    assert fm.engine.calls == [("neigh_del", i("10.0.0.9"))]
    refused(fm, fm.del_neighbour, ip("10.0.0.8"), "dpdk0", match="not found")


def test_engine_refused_commands_make_no_call(fm):
    fm.add_address(ifc("10.0.0.1/24"), "dpdk0")
    fm.add_neighbour(ip("10.0.0.2"), "52:54:00:12:34:56", "dpdk0")
    fm.engine.calls.clear()
    refused(fm, fm.add_address, ifc("10.0.0.1/24"), "dpdk0")
    refused(fm, fm.add_address, ifc("224.0.0.1/32"), "dpdk0")
    refused(fm, fm.del_address, ifc("10.0.0.9/24"), "dpdk0")
    refused(fm, fm.add_route, net("0.0.0.0/0"), "dpdk1", via=ip("10.0.0.254"))
    refused(fm, fm.del_route, net("10.0.0.1/32"))
    refused(fm, fm.add_neighbour, ip("10.0.0.2"), "52:54:00:12:34:56", "dpdk0")
    refused(fm, fm.add_neighbour, ip("10.0.0.3"), "01:00:5e:00:00:01", "dpdk0")
    refused(fm, fm.del_neighbour, ip("10.0.0.3"), "dpdk0")
    assert fm.engine.calls == []


def test_ports_are_fixed_once_running(fm):
    refused(fm, fm.add_port, "dpdk2", "net_tap2", match="fixed once the data plane runs")


def test_startup_settings_are_refused_once_running(fm):
    ctx = Context(fm)
    run(ctx, "dataplane")
    before = snapshot(fm)
    for line in ["workers 2", "port dpdk2 net_tap2", "pool-size 4096", "route-table-size 64",
                 "neigh-table-size 64", "memory 1024"]:
        with pytest.raises(CommandError, match="restart"):
            run(ctx, line)
    assert snapshot(fm) == before and fm.engine.calls == []
    run(ctx, "neigh-timeout 30")
    run(ctx, "idle-sleep 50")
    run(ctx, "busy-poll")
    run(ctx, "forwarding")
    run(ctx, "no forwarding")
    assert fm.engine.calls == [("set_neigh_timeout", 30), ("set_idle", False, 50),
                               ("set_idle", True, 50), ("set_forwarding", True),
                               ("set_forwarding", False)]


def test_attach_replays_the_whole_state():
    m = two_ports(forwarding=True, idle_sleep=7, neigh_timeout=99)
    m.add_address(ifc("10.0.0.1/24"), "dpdk0")
    m.add_address(ifc("192.168.1.1/32"), "dpdk1", sapool=True)
    m.add_route(net("0.0.0.0/0"), "dpdk0", via=ip("10.0.0.254"))
    m.add_neighbour(ip("10.0.0.254"), "52:54:00:00:00:fe", "dpdk0")
    before = snapshot(m)
    engine = FakeEngine()
    m.attach(engine)
    assert m.engine is engine and snapshot(m) == before
    assert engine.calls == [
        ("set_forwarding", True),
        ("set_idle", False, 7),
        ("set_neigh_timeout", 99),
        ("set_vip_miss_kni", False),
        ("set_kni_rate", 10000),
        ("route_set", 0, i("10.0.0.1"), 32, 0, 0, 0, HOST, 1500),
        ("route_set", 1, i("10.0.0.0"), 24, 0, 0, 0, LINK, 1500),
        ("route_set", 2, i("192.168.1.1"), 32, 0, 0, 1, HOST, 1500),
        ("route_set", 3, 0, 0, i("10.0.0.254"), 0, 0, GLOBAL, 1500),
        ("neigh_set", i("10.0.0.254"), bytes.fromhex("5254000000fe"), 0, True),
        ("port_addr", 0, i("10.0.0.1")),
        ("port_addr", 1, i("192.168.1.1")),
        ("garp", i("10.0.0.1"), 0),
        ("garp", i("192.168.1.1"), 1),
    ]


def test_attach_gives_what_a_running_model_would_have_pushed():
    """Checking a config without a data plane then attaching pushes the same routes and
    neighbours as running the same commands with the data plane attached."""
    def build(m):
        m.add_address(ifc("10.0.0.1/24"), "dpdk0")
        m.add_route(net("172.16.0.0/12"), "dpdk1")
        m.del_route(net("172.16.0.0/12"))
        m.add_route(net("0.0.0.0/0"), "dpdk0", via=ip("10.0.0.254"))
        m.add_neighbour(ip("10.0.0.254"), "52:54:00:00:00:fe", "dpdk0")

    live = two_ports()
    live.engine = FakeEngine()
    build(live)
    checked = two_ports()
    build(checked)
    replay = FakeEngine()
    checked.attach(replay)

    def state(calls):
        tables = {}
        for c in calls:
            if c[0] == "route_set":
                tables[("route", c[1])] = c
            elif c[0] == "route_del":
                tables.pop(("route", c[1]))
            elif c[0] == "neigh_set":
                tables[("neigh", c[1])] = c
        return tables

    assert state(replay.calls) == state(live.engine.calls)


# ------------------------------------- what depends on what (every state has a text)

def lines(m, *text):
    ctx = Context(m, node="config")
    for line in text:
        run(ctx, line)


def test_an_address_cannot_take_a_neighbour_or_a_real_server_or_another_ports_network(m):
    lines(m, "dpip addr add 10.0.0.1/24 dev dpdk0",
          "dpip neigh add 10.0.0.9 lladdr 52:54:00:00:00:09 dev dpdk0",
          "ipvsadm -A -t 10.0.0.100:80 -s rr", "ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.2 -g")
    refused(m, m.add_address, ifc("10.0.0.9/32"), "dpdk0", match="static neighbour")
    refused(m, m.add_address, ifc("10.0.0.2/32"), "dpdk0", match="real server of TCP")
    refused(m, m.add_address, ifc("10.0.0.7/24"), "dpdk1", match="network 10.0.0.0/24 is on dpdk0")


def test_a_vip_never_becomes_the_arp_source_of_dr_real_servers(m):
    lines(m, "dpip route add 10.0.0.0/24 dev dpdk0", "ipvsadm -A -t 10.0.0.100:80 -s rr",
          "dpip addr add 10.0.0.1/32 dev dpdk0", "ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.2 -g")
    refused(m, m.del_address, ifc("10.0.0.1/32"), "dpdk0", match="DR needs a LAN IP")
    # a service whose VIP is the port's first address, while DR servers send from it
    with pytest.raises(CommandError, match="VIP 10.0.0.1 cannot be added.*is a VIP"):
        m.services.add_service((6, ip("10.0.0.1"), 80))
    assert (6, ip("10.0.0.1"), 80) not in m.services.table


def test_routes_keep_gateways_on_link_and_real_servers_reachable(m):
    lines(m, "dpip addr add 10.0.0.1/24 dev dpdk0", "dpip route add 172.16.0.0/12 via 10.0.0.254 "
          "dev dpdk0", "ipvsadm -A -t 10.0.0.100:80 -s rr", "ipvsadm -a -t 10.0.0.100:80 -r "
          "10.0.0.2 -g")
    refused(m, m.del_address, ifc("10.0.0.1/24"), "dpdk0", match="on-link only by address")
    refused(m, m.add_route, net("10.0.0.0/25"), "dpdk0", via=ip("10.0.0.254"),
            match="route 10.0.0.0/25 cannot be added: real server 10.0.0.2")


def test_an_operators_network_route_takes_the_addresss_place_and_gives_it_back(m):
    lines(m, "dpip addr add 10.0.0.1/24 dev dpdk0")
    m.add_route(net("10.0.0.0/24"), "dpdk0", mtu=1400)
    r = m.routes[(ip("10.0.0.0"), 24)]
    assert not r.auto and r.mtu == 1400
    refused(m, m.add_route, net("10.0.0.0/24"), "dpdk1", match="already exists")
    m.del_route(net("10.0.0.0/24"))
    r = m.routes[(ip("10.0.0.0"), 24)]
    assert r.auto and r.mtu == 1500 and r.port == "dpdk0"


def test_addresses_made_by_local_addresses_are_the_arp_source_last(m):
    lines(m, "ipvsadm -A -t 10.0.0.100:80 -s rr",
          "ipvsadm --add-laddr -z 192.168.100.200 -t 10.0.0.100:80 -F dpdk0")
    assert m._primary("dpdk0") == int(ip("192.168.100.200"))       # the only one
    lines(m, "dpip addr add 192.168.100.1/24 dev dpdk0")
    assert m._primary("dpdk0") == int(ip("192.168.100.1"))
