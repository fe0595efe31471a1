"""rlb.model.services without a data plane: what each change records and refuses (a
refused change leaves the model as it was), the slots, and with a recording fake engine
the exact data-plane calls, in order. Modes and schedulers are the real plugins
(rlb.plugins), their own checks included."""
import copy
import ctypes
import re
import types
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import pytest

from rlb import plugins
from rlb.model import services as services_mod
from rlb.model import services_engine
from rlb.model.model import CommandError, Model
from rlb.model.services import (
    DEFAULT_TIMEOUTS,
    F_PERSISTENT,
    HOST_MASK,
    TCP,
    UDP,
    Services,
)
from support import engine as fake_engine

ROOT = Path(__file__).resolve().parents[3]


def ip(text):
    return IPv4Address(text)


def i(text):
    return int(IPv4Address(text))


# ------------------------------------------------------------ the registries

# The real mode and scheduler plugins (rlb.plugins, the compiled modules) and the indexes
# the data plane knows them by: their order in the registry.
MODES, SCHEDS = plugins.modes(), plugins.schedulers()
MODE = {name: i for i, name in enumerate(MODES)}
SCHED = {name: i for i, name in enumerate(SCHEDS)}


def capsule_name(capsule):
    """The name a PyCapsule was made with (rlb.mode_ops_t, rlb.sched_ops_t)."""
    get = ctypes.pythonapi.PyCapsule_GetName
    get.restype, get.argtypes = ctypes.c_char_p, [ctypes.py_object]
    return get(capsule).decode()


class FakeEngine(fake_engine.FakeEngine):
    """Records the Engine calls the model makes, as (name, its arguments), and reports the
    counters a test sets; support.engine holds it to rlb.core.dataplane.Engine's interface."""

    def __init__(self):
        super().__init__()
        self.svc = {}
        self.dest = {}
        self.laddr = {}
        self.conns = []

    # the parts of the engine the address and route model uses
    def route_set(self, index, prefix, plen, *, gw=0, src=0, port=0, scope=0, mtu=1500,
                  sapool=False, kni_arp=False):
        self.calls.append(("route_set", index, prefix, plen))

    def route_del(self, index, prefix, plen):
        self.calls.append(("route_del", index, prefix, plen))

    def port_addr(self, port, ip):
        self.calls.append(("port_addr", port, ip))

    def garp(self, ip, port):
        self.calls.append(("garp", ip, port))

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

    # the services interface
    def register_mode(self, index, capsule):
        self.calls.append(("register_mode", index, capsule_name(capsule)))

    def register_sched(self, index, capsule):
        self.calls.append(("register_sched", index, capsule_name(capsule)))

    def dest_set(self, slot, *, svc, addr, port, mode, weight, u_threshold=0, l_threshold=0,
                 available=True):
        self.calls.append(("dest_set", slot, svc, addr, port, mode, weight, u_threshold,
                           l_threshold, available))

    def dest_del(self, slot, drain=True):
        self.calls.append(("dest_del", slot))

    def svc_set(self, slot, *, proto, vaddr, vport, sched, flags=0, timeout=0,
                netmask=4294967295, dests=(), laddrs=(), match=None):
        self.calls.append(("svc_set", slot, proto, vaddr, vport, sched, flags, timeout, netmask,
                           tuple(dests), tuple(laddrs)))

    def svc_table(self, slot, table):
        self.calls.append(("svc_table", slot, tuple(table)))

    def svc_del(self, slot):
        self.calls.append(("svc_del", slot))

    def set_timeout(self, name, seconds):
        self.calls.append(("set_timeout", name, seconds))

    def svc_stats(self, slot):
        return dict(services_engine.ZERO_SVC_STATS, **self.svc.get(slot, {}))

    def dest_stats(self, slot):
        return dict(services_engine.ZERO_DEST_STATS, **self.dest.get(slot, {}))

    def laddr_stats(self, svc_slot):
        return self.laddr[svc_slot]

    def zero_stats(self, svc_slot=None):
        self.calls.append(("zero_stats", svc_slot))

    def connections(self, limit=10000):
        return self.conns[:limit]


SERVICE_API = ["register_mode", "register_sched", "dest_set", "dest_del", "svc_set", "svc_table",
               "svc_del", "set_timeout", "svc_stats", "dest_stats", "laddr_stats",
               "zero_stats", "connections"]


# ------------------------------------------------------------------- helpers

VIP = ip("10.0.0.100")
WEB = (TCP, VIP, 80)
DNS = (UDP, VIP, 53)


def model(engine=None, dr=True, lan=False, **kw):
    """Two ports; with `lan` the LB's 192.168.100.1/24 on dpdk0, where the real servers are
    (the real DR and NAT want them on-link, a tunnel a route). `dr=False`: a build whose
    registry lacks DR, the default mode."""
    m = Model()
    m.add_port("dpdk0", "net_tap0")
    m.add_port("dpdk1", "net_tap1")
    if lan:
        m.add_address(IPv4Interface("192.168.100.1/24"), "dpdk0")
    modes = {name: mode for name, mode in MODES.items() if dr or name != "dr"}
    m.services = Services(m, modes, SCHEDS, **kw)
    m.engine = engine
    return m


@pytest.fixture
def m():
    return model()


@pytest.fixture
def fm():
    return model(FakeEngine())


@pytest.fixture
def lan():
    """A model whose LB is on the real servers' network: every real mode can take them."""
    return model(lan=True)


@pytest.fixture
def lan_fm():
    return model(FakeEngine(), lan=True)


def snapshot(m):
    ms = m.services
    return copy.deepcopy((m.addresses, m.routes, m._free_slots, m._next_slot, ms.table,
                          ms.timeouts, vars(ms._svc_slots), vars(ms._dest_slots), ms._auto))


def refused(m, fn, *args, match=None, **kw):
    before = snapshot(m)
    calls = list(m.engine.calls) if m.engine is not None else None
    with pytest.raises(CommandError, match=match) as info:
        fn(*args, **kw)
    assert snapshot(m) == before, "a command that fails changed the model"
    if calls is not None:
        assert m.engine.calls == calls, "a command that fails called the data plane"
    return str(info.value)


def web(m, *dests, **kw):
    """The tutorial's FNAT service with real servers 192.168.100.x."""
    ms = m.services
    ms.add_service(WEB, sched="rr", **kw)
    for last in dests:
        ms.add_dest(WEB, ip(f"192.168.100.{last}"), mode="fnat")
    return ms.table[WEB]


def since(engine, mark):
    return engine.calls[mark:]


# ------------------------------------------------------------------ services


def test_add_service_defaults(m):
    svc = m.services.add_service(WEB)
    assert (svc.sched, svc.persistent, svc.timeout, svc.netmask, svc.slot) == (
        "wlc", False, 300, HOST_MASK, 0)
    assert str(svc) == "TCP 10.0.0.100:80" and svc.flags == 0
    assert list(m.services.table) == [WEB]


def test_add_service_persistent_with_mask(m):
    svc = m.services.add_service(WEB, sched="rr", persistent=60, netmask=ip("255.255.255.0"))
    assert (svc.persistent, svc.timeout, svc.netmask, svc.flags) == (
        True, 60, ip("255.255.255.0"), F_PERSISTENT)


@pytest.mark.parametrize("key, kw, match", [
    ((TCP, VIP, 0), {}, "^Zero port specified for no-match and non-persistent service$"),
    ((TCP, VIP, 0), {"persistent": 300}, "port 0"),
    ((1, VIP, 80), {}, "protocol 1 is not supported"),
    ((TCP, ip("0.0.0.0"), 80), {}, "cannot be a virtual service address"),
    ((TCP, ip("224.0.0.5"), 80), {}, "cannot be a virtual service address"),
    (WEB, {"sched": "xyz"}, rf"^Scheduler not found: xyz \(available: {', '.join(SCHEDS)}\)$"),
    (WEB, {"persistent": 0}, "invalid timeout value `0' specified"),
    (WEB, {"persistent": 86400 * 31 + 1}, "invalid timeout value"),
    (WEB, {"netmask": ip("255.0.255.0")}, "^illegal virtual server persistent mask specified$"),
    (WEB, {"netmask": ip("0.0.0.255")}, "illegal virtual server persistent mask"),
])
def test_add_service_refusals(m, key, kw, match):
    refused(m, m.services.add_service, key, match=match, **kw)


def test_add_service_refuses_a_duplicate(fm):
    fm.services.add_service(WEB)
    refused(fm, fm.services.add_service, WEB, sched="rr", match="^Service already exists$")
    fm.services.add_service(DNS)          # same VIP and another protocol: another service


def test_service_table_full():
    m = model(max_services=2)
    m.services.add_service(WEB)
    m.services.add_service(DNS)
    refused(m, m.services.add_service, (TCP, VIP, 443), match=r"service table full \(2 services\)")


def test_edit_service_changes_only_what_is_given(m):
    web(m, 2)
    m.services.edit_service(WEB, persistent=120)
    svc = m.services.table[WEB]
    assert (svc.sched, svc.persistent, svc.timeout) == ("rr", True, 120)
    m.services.edit_service(WEB, sched="wlc")
    assert (svc.sched, svc.persistent, svc.timeout) == ("wlc", True, 120)
    m.services.edit_service(WEB, netmask=ip("255.255.0.0"))
    assert svc.netmask == ip("255.255.0.0") and svc.sched == "wlc"


def test_edit_service_refusals(m):
    web(m)
    refused(m, m.services.edit_service, DNS, sched="rr", match="^No such service$")
    refused(m, m.services.edit_service, WEB, sched="nope", match="Scheduler not found: nope")
    refused(m, m.services.edit_service, WEB, netmask=ip("0.255.0.0"), match="mask")


def test_delete_service(m):
    web(m, 2, 3)
    m.services.del_service(WEB)
    assert m.services.table == {}
    refused(m, m.services.del_service, WEB, match="^No such service$")


# ------------------------------------------------------------- real servers


def test_add_dest_defaults_port_mode_weight(lan):
    m = lan
    m.services.add_service(WEB)
    d = m.services.add_dest(WEB, ip("192.168.100.2"))
    assert (d.port, d.mode, d.weight, d.u_threshold, d.l_threshold, d.available, d.slot) == (
        80, "dr", 1, 0, 0, True, 0)


def test_add_dest_explicit(m):
    m.services.add_service(WEB)
    d = m.services.add_dest(WEB, ip("192.168.100.2"), 8080, mode="fnat", weight=0,
                            u_threshold=100, l_threshold=50)
    assert (d.port, d.mode, d.weight, d.available, d.u_threshold, d.l_threshold) == (
        8080, "fnat", 0, False, 100, 50)
    m.services.add_dest(WEB, ip("192.168.100.2"), 8081, mode="fnat")   # another port: another dest
    assert [(str(x.addr), x.port) for x in m.services.table[WEB].dests] == [
        ("192.168.100.2", 8080), ("192.168.100.2", 8081)]


@pytest.mark.parametrize("args, kw, match", [
    (((UDP, VIP, 80), ip("192.168.100.9")), {}, "^Service not defined$"),
    ((WEB, ip("192.168.100.2")), {}, "^Destination already exists$"),
    ((WEB, ip("192.168.100.2"), 80), {"mode": "dr"}, "^Destination already exists$"),
    ((WEB, ip("192.168.100.9")), {"mode": "lblc"}, "forwarding mode lblc is not available"),
    ((WEB, ip("0.0.0.0")), {}, "cannot be a real server address"),
    ((WEB, ip("192.168.100.9")), {"weight": 65536}, "^illegal weight specified$"),
    ((WEB, ip("192.168.100.9")), {"u_threshold": -1}, "^illegal u_threshold specified$"),
    ((WEB, ip("192.168.100.9")), {"u_threshold": 10, "l_threshold": 20}, "lower threshold 20"),
    ((WEB, ip("10.0.0.1")), {}, "is one of our own addresses"),
])
def test_add_dest_refusals(m, args, kw, match):
    m.add_address(IPv4Interface("10.0.0.1/24"), "dpdk1")
    web(m, 2)
    refused(m, m.services.add_dest, *args, match=match, **kw)


def test_mode_for_flag(m):
    ms = m.services
    assert [ms.mode_for_flag(f) for f in ("-b", "--fullnat", "-g", "--ipip", "-m", "-J",
                                          None)] == ["fnat", "fnat", "dr", "tunnel", "nat",
                                                     "snat", "dr"]
    flags = ", ".join(f"{m.flag} ({m.name})" for m in MODES.values())
    with pytest.raises(CommandError, match=rf"^forwarding mode -X is not available \(available: "
                                           rf"{re.escape(flags)}\)$"):
        ms.mode_for_flag("-X")


def test_default_mode_missing_is_said():
    m = model(dr=False)
    m.services.add_service(WEB)
    with pytest.raises(CommandError, match="forwarding mode dr \\(the default\\) is not available"):
        m.services.mode_for_flag(None)
    refused(m, m.services.add_dest, WEB, ip("192.168.100.2"), match="the default")


def test_per_service_limits_of_the_data_plane(m, monkeypatch):
    monkeypatch.setattr(services_mod, "MAX_DESTS_PER_SVC", 2)
    monkeypatch.setattr(services_mod, "MAX_LADDRS_PER_SVC", 1)
    web(m, 2, 3)
    refused(m, m.services.add_dest, WEB, ip("192.168.100.4"),
            match="at most 2 real servers per service")
    m.services.add_laddr(WEB, ip("192.168.100.200"), "dpdk0")
    refused(m, m.services.add_laddr, WEB, ip("192.168.100.201"), "dpdk0",
            match="at most 1 local addresses per service")


def test_limits_are_the_data_planes():
    """The model takes as many real servers and local addresses per service as the
    compiled data plane holds, and refuses the next; its default table sizes are those
    the Engine is built with."""
    consts = pytest.importorskip("rlb.core.consts")
    m = model()
    svc = web(m)
    base = int(ip("192.168.100.2"))
    for k in range(consts.MAX_DESTS_PER_SVC):
        m.services.add_dest(WEB, IPv4Address(base + k), mode="fnat")
    assert len(svc.dests) == consts.MAX_DESTS_PER_SVC
    refused(m, m.services.add_dest, WEB, ip("192.168.110.1"), match="at most")
    for k in range(consts.MAX_LADDRS_PER_SVC):
        m.services.add_laddr(WEB, ip(f"192.168.120.{1 + k}"), "dpdk0")
    refused(m, m.services.add_laddr, WEB, ip("192.168.120.250"), "dpdk0", match="at most")
    assert (services_mod.MAX_SERVICES, services_mod.MAX_DESTS) == (consts.DEFAULT_SVC_CAP,
                                                                   consts.DEFAULT_DEST_CAP)
    from rlb.model.model import Settings
    assert (Settings().service_table_size, Settings().dest_table_size) == \
        (services_mod.MAX_SERVICES, services_mod.MAX_DESTS)
    daemon = (ROOT / "rlb/daemon.py").read_text()
    assert "svc_cap=s.service_table_size, dest_cap=s.dest_table_size" in daemon


def test_dest_table_full():
    m = model(max_dests=1)
    web(m, 2)
    refused(m, m.services.add_dest, WEB, ip("192.168.100.3"), match=r"real server table full \(1")


def test_edit_dest_changes_only_what_is_given(lan):
    m = lan
    web(m, 2)
    ms = m.services
    ms.edit_dest(WEB, ip("192.168.100.2"), weight=0)
    d = ms.table[WEB].dests[0]
    assert (d.mode, d.weight, d.available) == ("fnat", 0, False)
    ms.edit_dest(WEB, ip("192.168.100.2"), 80, mode="dr", u_threshold=9)
    assert (d.mode, d.weight, d.u_threshold) == ("dr", 0, 9)
    refused(m, ms.edit_dest, WEB, ip("192.168.100.3"), weight=2, match="^No such destination$")
    refused(m, ms.edit_dest, WEB, ip("192.168.100.2"), 81, weight=2, match="No such destination")
    refused(m, ms.edit_dest, DNS, ip("192.168.100.2"), weight=2, match="^Service not defined$")
    refused(m, ms.edit_dest, WEB, ip("192.168.100.2"), mode="xx", match="xx is not available")
    refused(m, ms.edit_dest, WEB, ip("192.168.100.2"), l_threshold=10, match="lower threshold")


def test_del_dest(m):
    web(m, 2, 3)
    m.services.del_dest(WEB, ip("192.168.100.2"))
    assert [str(d.addr) for d in m.services.table[WEB].dests] == ["192.168.100.3"]
    refused(m, m.services.del_dest, WEB, ip("192.168.100.2"), match="^No such destination$")
    refused(m, m.services.del_dest, DNS, ip("192.168.100.3"), match="^Service not defined$")


def spy(monkeypatch, mode):
    """Record the real mode's hook calls (as the hooks saw the service), then run them."""
    log = []
    cls = type(mode)
    check_service, check_dest = cls.check_service, cls.check_dest

    def service(self, svc, model):
        log.append(("service", str(svc), [str(d.addr) for d in svc.dests],
                    [str(la.addr) for la in svc.laddrs], svc.sched))
        return check_service(self, svc, model)

    def dest(self, svc, d, model):
        log.append(("dest", str(svc), str(d.addr), d.port, d.weight))
        return check_dest(self, svc, d, model)
    monkeypatch.setattr(cls, "check_service", service)
    monkeypatch.setattr(cls, "check_dest", dest)
    return log


def test_mode_hooks_see_the_service_as_it_would_be(lan, monkeypatch):
    m = lan
    tunnel = types.SimpleNamespace(log=spy(monkeypatch, m.services.modes["tunnel"]))
    m.services.add_service(WEB, sched="rr")
    m.services.add_dest(WEB, ip("192.168.100.2"), mode="tunnel")
    assert tunnel.log == [("dest", "TCP 10.0.0.100:80", "192.168.100.2", 80, 1),
                          ("service", "TCP 10.0.0.100:80", ["192.168.100.2"], [], "rr")]
    tunnel.log.clear()
    m.services.edit_service(WEB, sched="wlc")
    assert tunnel.log == [("service", "TCP 10.0.0.100:80", ["192.168.100.2"], [], "wlc")]
    tunnel.log.clear()
    # local addresses are FNAT's: refused for a tunnel service, before any hook runs
    refused(m, m.services.add_laddr, WEB, ip("192.168.100.200"), "dpdk0",
            match="local addresses are for FNAT services")
    assert tunnel.log == []


def test_a_mode_hook_refuses_and_nothing_changes(lan_fm, monkeypatch):
    fm = lan_fm
    fm.services.add_service(WEB)
    refused(fm, fm.services.add_dest, WEB, ip("192.168.100.2"), 8080, mode="tunnel",
            match="tunnel cannot change ports")           # the real tunnel mode's check
    fm.services.add_dest(WEB, ip("192.168.100.2"), mode="tunnel")
    fm.services.add_dest(WEB, ip("192.168.100.3"), mode="nat")

    def one_worker(self, svc, model):                     # a check NAT could make
        raise CommandError("NAT mode works with one worker only")
    monkeypatch.setattr(type(fm.services.modes["nat"]), "check_service", one_worker)
    refused(fm, fm.services.edit_service, WEB, sched="rr", match="one worker only")
    refused(fm, fm.services.edit_dest, WEB, ip("192.168.100.3"), weight=5, match="one worker")


# ---------------------------------------------------------- local addresses


def addrs(m):
    return [(str(a.iface), a.port, a.sapool) for a in m.addresses]


def test_add_laddr_adds_the_address_with_sapool(m):
    web(m, 2)
    m.services.add_laddr(WEB, ip("192.168.100.200"), "dpdk0")
    assert addrs(m) == [("192.168.100.200/32", "dpdk0", True)]
    assert ("192.168.100.200", 32) in {(str(k[0]), k[1]) for k in m.routes}
    assert [(str(la.addr), la.dev) for la in m.services.table[WEB].laddrs] == [
        ("192.168.100.200", "dpdk0")]


def test_laddr_shared_by_services_goes_with_its_last_user(m):
    web(m, 2)
    m.services.add_service(DNS)
    m.services.add_laddr(WEB, ip("192.168.100.200"), "dpdk0")
    m.services.add_laddr(DNS, ip("192.168.100.200"), "dpdk0")
    assert len(m.addresses) == 1
    m.services.del_laddr(WEB, ip("192.168.100.200"), "dpdk0")
    assert addrs(m) == [("192.168.100.200/32", "dpdk0", True)]
    m.services.del_laddr(DNS, ip("192.168.100.200"), "dpdk0")
    assert m.addresses == [] and m.routes == {}


def test_laddr_of_an_existing_sapool_address_is_the_operators(m):
    m.add_address(IPv4Interface("192.168.100.200/24"), "dpdk0", sapool=True)
    web(m, 2)
    m.services.add_laddr(WEB, ip("192.168.100.200"), "dpdk0")
    m.services.del_laddr(WEB, ip("192.168.100.200"), "dpdk0")
    assert addrs(m) == [("192.168.100.200/24", "dpdk0", True)]


def test_laddr_refusals(m):
    m.add_address(IPv4Interface("192.168.100.1/24"), "dpdk0")
    m.add_address(IPv4Interface("10.0.0.2/24"), "dpdk1", sapool=True)
    web(m, 2)
    ms = m.services
    refused(m, ms.add_laddr, WEB, ip("192.168.100.1"), "dpdk0", match="has no sapool")
    refused(m, ms.add_laddr, WEB, ip("10.0.0.2"), "dpdk0", match="is an address of dpdk1, not dpdk0")
    refused(m, ms.add_laddr, WEB, ip("192.168.100.200"), "dpdk7", match="no such port 'dpdk7'")
    refused(m, ms.add_laddr, DNS, ip("192.168.100.200"), "dpdk0", match="^Service not defined$")
    refused(m, ms.add_laddr, WEB, ip("224.0.0.1"), "dpdk0", match="cannot be an interface address")
    ms.add_laddr(WEB, ip("192.168.100.200"), "dpdk0")
    refused(m, ms.add_laddr, WEB, ip("192.168.100.200"), "dpdk0",
            match="^Local address already exists$")
    refused(m, ms.del_laddr, WEB, ip("192.168.100.201"), "dpdk0", match="^No such Local address$")
    refused(m, ms.del_laddr, WEB, ip("192.168.100.200"), "dpdk1", match="^No such Local address$")
    refused(m, ms.del_laddr, DNS, ip("192.168.100.200"), "dpdk0", match="^Service not defined$")


def test_an_address_in_use_as_laddr_cannot_be_deleted_with_dpip(m):
    web(m, 2)
    m.services.add_laddr(WEB, ip("192.168.100.200"), "dpdk0")
    refused(m, m.del_address, IPv4Interface("192.168.100.200/32"), "dpdk0",
            match="is a local address of TCP 10.0.0.100:80: remove it with ipvsadm --del-laddr")


def test_delete_service_and_clear_release_local_addresses(m):
    web(m, 2)
    m.services.add_service(DNS)
    m.services.add_laddr(WEB, ip("192.168.100.200"), "dpdk0")
    m.services.add_laddr(DNS, ip("192.168.100.201"), "dpdk0")
    m.services.del_service(WEB)
    assert addrs(m) == [("192.168.100.201/32", "dpdk0", True)]
    m.services.clear()
    assert m.addresses == [] and m.services.table == {}


def test_an_auto_laddr_that_became_a_route_src_stays(m):
    web(m, 2)
    m.services.add_laddr(WEB, ip("192.168.100.200"), "dpdk0")
    m.add_route(IPv4Interface("192.168.0.0/16").network, "dpdk0", src=ip("192.168.100.200"))
    m.services.del_laddr(WEB, ip("192.168.100.200"), "dpdk0")
    assert addrs(m) == [("192.168.100.200/32", "dpdk0", True)]
    assert m.services._auto == set()


# ------------------------------------------------------- timeouts and counters


def test_set_timeouts_zero_leaves_unchanged(fm):
    assert fm.services.timeouts == DEFAULT_TIMEOUTS == {"tcp": 90, "tcpfin": 7, "udp": 300}
    fm.services.set_timeouts(1000, 0, 60)
    assert fm.services.timeouts == {"tcp": 1000, "tcpfin": 7, "udp": 60}
    assert fm.engine.calls == [("set_timeout", "tcp", 1000), ("set_timeout", "udp", 60)]
    refused(fm, fm.services.set_timeouts, 5, 5, 86400 * 31 + 1, match="invalid timeout value")
    refused(fm, fm.services.set_timeouts, -1, 5, 5, match="invalid timeout value `-1'")


def test_zero(fm):
    web(fm, 2)
    fm.services.add_service(DNS)
    mark = len(fm.engine.calls)
    fm.services.zero()
    fm.services.zero(DNS)
    assert since(fm.engine, mark) == [("zero_stats", None), ("zero_stats", 1)]
    refused(fm, fm.services.zero, (TCP, VIP, 443), match="^No such service$")


def test_counters_without_a_data_plane_are_zero(m):
    svc = web(m, 2)
    m.services.add_laddr(WEB, ip("192.168.100.200"), "dpdk0")
    assert m.services.svc_stats(svc)["conns"] == 0
    assert m.services.dest_stats(svc.dests[0])["activeconns"] == 0
    assert m.services.laddr_stats(svc) == [{"addr": i("192.168.100.200"), "used": 0, "miss": 0}]
    assert m.services.rates() == {} and m.services.connections() == []
    m.services.sample_rates()
    m.services.zero()


def test_rates_from_the_last_two_samples(fm):
    svc = web(fm, 2)
    d = svc.dests[0]
    ms, e = fm.services, fm.engine
    ms.sample_rates(now=100.0)
    e.svc[svc.slot] = dict(conns=20, inpkts=400, outpkts=200, inbytes=40000, outbytes=2000)
    e.dest[d.slot] = dict(conns=20, inpkts=400)
    assert ms.rates(now=100.5) == {}                         # too soon: one sample only
    rates = ms.rates(now=102.0)                              # samples 100.0 and 102.0
    assert rates[("svc", svc.slot)] == dict(cps=10, inpps=200, outpps=100, inbps=20000,
                                            outbps=1000)
    assert rates[("dest", d.slot)]["cps"] == 10
    assert ms.rates(now=102.5) == rates                      # within a second: the same samples
    e.svc[svc.slot] = {}                                     # zeroed: counters went down
    assert ms.rates(now=104.0)[("svc", svc.slot)] == dict.fromkeys(rates[("svc", 0)], 0)


def test_rates_forget_a_freed_slot(fm):
    web(fm, 2)
    ms = fm.services
    ms.sample_rates(now=1.0)
    fm.engine.dest[0] = dict(conns=1000)
    ms.del_dest(WEB, ip("192.168.100.2"))
    ms.add_dest(WEB, ip("192.168.100.9"), mode="fnat")           # reuses dest slot 0
    assert ("dest", 0) not in ms.rates(now=3.0)


def test_connections_pass_the_limit(fm):
    fm.engine.conns = [{"n": n} for n in range(5)]
    assert fm.services.connections(limit=3) == [{"n": 0}, {"n": 1}, {"n": 2}]


# ------------------------------------------------------------------- slots


def test_slots_are_reused(lan):
    """Service slots: the freed ones first. Real server slots: fresh ones first, then the
    longest freed, so that a deleted server's connections drain (they end only once its
    slot is another's)."""
    m = lan
    ms = m.services
    m.settings.dest_table_size = 4
    web(m, 2, 3, 4)                                   # service 0, dests 0 1 2
    ms.add_service(DNS)                               # service 1
    ms.del_dest(WEB, ip("192.168.100.3"))             # frees dest 1
    ms.add_dest(DNS, ip("192.168.100.5"))
    assert ms.table[DNS].dests[0].slot == 3           # a fresh one while there is one
    ms.del_service(WEB)                               # frees service 0, dests 0 and 2
    ms.add_service((TCP, VIP, 443))
    ms.add_dest((TCP, VIP, 443), ip("192.168.100.6"))
    ms.add_dest((TCP, VIP, 443), ip("192.168.100.7"))
    assert ms.table[(TCP, VIP, 443)].slot == 0
    assert [d.slot for d in ms.table[(TCP, VIP, 443)].dests] == [1, 0]   # longest freed first
    assert (ms._svc_slots.next, ms._dest_slots.next) == (2, 4)


# -------------------------------------------------------------- data plane


def registration():
    """Every plugin with C entry points, by its registry index, with its ops capsule."""
    return ([("register_mode", i, "rlb.mode_ops_t") for i, mode in enumerate(MODES.values())
             if mode.ops is not None] +
            [("register_sched", i, "rlb.sched_ops_t") for i, s in enumerate(SCHEDS.values())
             if s.ops is not None])


def svc_set(slot=0, vaddr="10.0.0.100", vport=80, proto=TCP, sched="rr", flags=0, timeout=0,
            netmask=HOST_MASK, dests=(), laddrs=()):
    return ("svc_set", slot, proto, i(vaddr), vport, SCHED[sched], flags, timeout, int(netmask),
            tuple(dests), tuple(laddrs))


def dest_set(slot, addr, svc=0, port=80, mode="fnat", weight=1, u=0, lower=0):
    return ("dest_set", slot, svc, i(addr), port, MODE[mode], weight, u, lower, weight > 0)


def test_engine_calls_add_services_and_dests(lan_fm):
    fm = lan_fm
    ms, e = fm.services, fm.engine
    ms.add_service(WEB, sched="rr")
    assert e.calls == registration() + [svc_set()]
    mark = len(e.calls)
    ms.add_service(DNS, sched="wlc", persistent=60, netmask=ip("255.255.255.0"))
    assert since(e, mark) == [svc_set(1, proto=UDP, vport=53, sched="wlc", flags=F_PERSISTENT,
                                      timeout=60, netmask=ip("255.255.255.0"))]
    mark = len(e.calls)
    ms.add_dest(WEB, ip("192.168.100.2"), mode="fnat")
    ms.add_dest(WEB, ip("192.168.100.3"), 8080, mode="fnat", weight=5, u_threshold=7,
                l_threshold=3)
    assert since(e, mark) == [
        dest_set(0, "192.168.100.2"), svc_set(dests=[0]),
        dest_set(1, "192.168.100.3", port=8080, mode="fnat", weight=5, u=7, lower=3),
        svc_set(dests=[0, 1])]


def test_engine_calls_weight_zero_quiesces(fm):
    web(fm, 2, 3)
    mark = len(fm.engine.calls)
    fm.services.edit_dest(WEB, ip("192.168.100.3"), weight=0)
    assert since(fm.engine, mark) == [dest_set(1, "192.168.100.3", weight=0),
                                      svc_set(dests=[0, 1])]
    assert fm.engine.calls[mark][-1] is False


def test_engine_calls_delete_dest_and_service(lan_fm):
    fm = lan_fm
    ms, e = fm.services, fm.engine
    web(fm, 2, 3)
    ms.add_service(DNS)
    ms.add_dest(DNS, ip("192.168.100.4"))
    mark = len(e.calls)
    ms.del_dest(WEB, ip("192.168.100.2"))
    assert since(e, mark) == [svc_set(dests=[1]), ("dest_del", 0)]
    mark = len(e.calls)
    ms.del_service(WEB)
    assert since(e, mark) == [("svc_del", 0), ("dest_del", 1)]
    mark = len(e.calls)
    ms.del_service(DNS)
    assert since(e, mark) == [("svc_del", 1), ("dest_del", 2)]


def test_engine_calls_edit_service(fm):
    web(fm, 2)
    mark = len(fm.engine.calls)
    fm.services.edit_service(WEB, persistent=300)
    assert since(fm.engine, mark) == [svc_set(flags=F_PERSISTENT, timeout=300, dests=[0])]


def test_engine_calls_laddrs(fm):
    ms, e = fm.services, fm.engine
    web(fm, 2)
    mark = len(e.calls)
    ms.add_laddr(WEB, ip("192.168.100.200"), "dpdk0")
    ms.add_laddr(WEB, ip("10.0.0.200"), "dpdk1")
    lips = [(i("192.168.100.200"), 0), (i("10.0.0.200"), 1)]
    assert since(e, mark) == [
        ("route_set", 0, i("192.168.100.200"), 32), ("port_addr", 0, i("192.168.100.200")),
        ("garp", i("192.168.100.200"), 0), ("port_addr", 0, i("192.168.100.200")),
        svc_set(dests=[0], laddrs=lips[:1]),
        ("route_set", 1, i("10.0.0.200"), 32), ("port_addr", 1, i("10.0.0.200")),
        ("garp", i("10.0.0.200"), 1), ("port_addr", 1, i("10.0.0.200")),
        svc_set(dests=[0], laddrs=lips)]
    mark = len(e.calls)
    ms.del_laddr(WEB, ip("192.168.100.200"), "dpdk0")
    assert since(e, mark) == [svc_set(dests=[0], laddrs=lips[1:]),
                              ("route_del", 0, i("192.168.100.200"), 32), ("port_addr", 0, 0)]


def test_engine_calls_clear(fm):
    ms, e = fm.services, fm.engine
    web(fm, 2)
    ms.add_service((TCP, ip("10.0.0.101"), 80))
    ms.add_laddr(WEB, ip("192.168.100.200"), "dpdk0")
    mark = len(e.calls)
    ms.clear()
    assert since(e, mark) == [
        ("svc_del", 0), ("dest_del", 0), ("svc_del", 1),
        ("route_del", 0, i("192.168.100.200"), 32), ("port_addr", 0, 0)]


def test_engine_calls_table_scheduler(lan_fm):
    fm = lan_fm
    ms, e = fm.services, fm.engine
    ms.add_service(WEB, sched="mh")
    assert e.calls[-2:] == [("svc_table", 0, ()), svc_set(sched="mh")]
    ms.add_dest(WEB, ip("192.168.100.2"), weight=2)
    ms.add_dest(WEB, ip("192.168.100.3"))
    mark = len(e.calls)
    ms.edit_dest(WEB, ip("192.168.100.2"), weight=0)
    table = tuple(SCHEDS["mh"].table(ms.table[WEB].dests))     # Maglev's, of dest 1 only
    assert set(table) == {1}
    assert since(e, mark) == [dest_set(0, "192.168.100.2", mode="dr", weight=0),
                              ("svc_table", 0, table),
                              svc_set(sched="mh", dests=[0, 1])]
    mark = len(e.calls)
    ms.edit_service(WEB, sched="rr", persistent=10)             # no table any more:
    assert since(e, mark) == [("svc_table", 0, ()),              # the old one taken away
                              svc_set(flags=F_PERSISTENT, timeout=10, dests=[0, 1])]
    mark = len(e.calls)
    ms.edit_service(WEB, sched="wrr")                             # none to take away
    assert since(e, mark) == [svc_set(sched="wrr", flags=F_PERSISTENT, timeout=10,
                                      dests=[0, 1])]


def test_modes_and_schedulers_are_registered_once_per_engine(fm):
    assert registration()                   # the compiled plugins all have C entry points
    web(fm, 2)
    fm.services.add_service(DNS)
    assert [c for c in fm.engine.calls if c[0].startswith("register")] == registration()
    fresh = FakeEngine()
    fm.attach(fresh)
    assert [c for c in fresh.calls if c[0].startswith("register")] == registration()


def test_failed_commands_call_nothing(fm):
    web(fm, 2)
    refused(fm, fm.services.add_dest, WEB, ip("192.168.100.2"), match="already exists")
    refused(fm, fm.services.del_service, DNS, match="No such service")


def test_attach_of_an_unconfigured_table_pushes_nothing():
    m = model()
    m.services.attach(FakeEngine())
    e = FakeEngine()
    m.attach(e)
    assert not [c for c in e.calls if c[0] in SERVICE_API]


def test_attach_pushes_changed_timeouts_without_loading_plugins():
    m = Model()
    m.services = Services(m, modes=None, schedulers=None)       # registries never asked
    m.services.set_timeouts(0, 60, 0)
    e = FakeEngine()
    m.services.attach(e)
    assert e.calls == [("set_timeout", "tcp", 90), ("set_timeout", "tcpfin", 60),
                       ("set_timeout", "udp", 300)]
    assert m.services._modes is None


def test_attach_replays_the_whole_table(lan):
    m = lan
    web(m, 2, 3)
    m.services.add_service(DNS, sched="mh")
    m.services.add_dest(DNS, ip("192.168.100.4"), weight=3)
    m.services.add_laddr(WEB, ip("192.168.100.200"), "dpdk0")
    m.services.set_timeouts(0, 60, 0)
    e = FakeEngine()
    m.attach(e)                                     # Model.attach replays services last
    calls = [c for c in e.calls if c[0] in SERVICE_API]
    assert calls == [("set_timeout", "tcp", 90), ("set_timeout", "tcpfin", 60),
                     ("set_timeout", "udp", 300)] + registration() + [
        dest_set(0, "192.168.100.2"), dest_set(1, "192.168.100.3"),
        svc_set(dests=[0, 1], laddrs=[(i("192.168.100.200"), 0)]),
        dest_set(2, "192.168.100.4", svc=1, port=53, mode="dr", weight=3),
        ("svc_table", 1, tuple(SCHEDS["mh"].table(m.services.table[DNS].dests))), svc_set(1, proto=UDP, vport=53,
                                                                   sched="mh", dests=[2])]


def test_attach_gives_what_a_running_model_would_have_pushed():
    def build(m):
        ms = m.services
        web(m, 2, 3, 4)
        ms.add_service(DNS, sched="mh")
        ms.add_dest(DNS, ip("192.168.100.9"))
        ms.del_dest(WEB, ip("192.168.100.3"))
        ms.edit_dest(WEB, ip("192.168.100.4"), weight=0)
        ms.add_laddr(WEB, ip("192.168.100.200"), "dpdk0")
        ms.add_service((TCP, ip("10.0.0.101"), 80))
        ms.del_service((TCP, ip("10.0.0.101"), 80))
        ms.edit_service(WEB, persistent=30)

    def state(calls):
        tables = {}
        for c in calls:
            if c[0] in ("dest_set", "svc_set", "svc_table"):
                tables[(c[0], c[1])] = c
            elif c[0] == "dest_del":
                tables.pop(("dest_set", c[1]))
            elif c[0] == "svc_del":
                tables.pop(("svc_set", c[1]))
                tables.pop(("svc_table", c[1]), None)
        return tables

    live = model(FakeEngine(), lan=True)
    build(live)
    checked = model(lan=True)
    build(checked)
    replay = FakeEngine()
    checked.attach(replay)
    assert state(replay.calls) == state(live.engine.calls)


def test_model_services_load_the_plugins_only_when_needed(monkeypatch):
    from rlb import plugins

    def broken():
        raise ImportError("no plugins in this test")
    monkeypatch.setattr(plugins, "modes", broken)
    monkeypatch.setattr(plugins, "schedulers", broken)
    m = Model()
    m.services.set_timeouts(1, 2, 3)
    m.services.zero()
    assert m.services.table == {}
    with pytest.raises(ImportError):
        m.services.add_service(WEB)
