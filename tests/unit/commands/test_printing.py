"""Tests for rlb.commands.printing: a line from its command's definition and bindings."""

import ipaddress

import pytest

from rlb.commands.definition import GrammarError
from rlb.commands.printing import lead, name_of, unparse
from test_grammar import build, handler


@pytest.fixture
def g():
    return build()


def _cmd(g, definition, node="exec"):
    return next(c for c in g.commands(node) if c.definition == definition)


def test_unparse_fills_the_definition_in_its_order(g):
    route = _cmd(g, "dpip route add A.B.C.D/M$prefix {via A.B.C.D$via|src A.B.C.D$src|dev "
                    "WORD$dev|scope (host|link|global|kni_host)$scope|mtu (68-9000)$mtu}")
    net = ipaddress.IPv4Network("10.0.0.0/8")
    # the set's given elements in definition order, whatever order the dict has
    assert unparse(route, {"mtu": 1400, "dev": "dpdk0", "prefix": net}) == \
        "dpip route add 10.0.0.0/8 dev dpdk0 mtu 1400"
    assert unparse(route, {"prefix": net, "scope": "kni_host", "via": None}) == \
        "dpip route add 10.0.0.0/8 scope kni_host"
    addr = _cmd(g, "dpip addr add A.B.C.D/M$prefix dev WORD$dev [sapool]")
    iface = ipaddress.IPv4Interface("10.0.0.1/24")
    assert unparse(addr, {"prefix": iface, "dev": "d0", "sapool": True}) == \
        "dpip addr add 10.0.0.1/24 dev d0 sapool"
    assert unparse(addr, {"prefix": iface, "dev": "d0", "sapool": False}) == \
        "dpip addr add 10.0.0.1/24 dev d0"


def test_unparse_reads_back(g):
    for line in ["dpip addr add 10.0.0.1/24 dev d0 sapool", "show ip vs 10.0.0.1 json",
                 "show ip vs", "dpip route add 10.0.0.0/8 via 10.0.0.254 src 10.0.0.1 mtu 99"]:
        m = g.parse(line, "exec")
        assert unparse(m.command, m.args) == line


def test_unparse_refuses_what_the_definition_cannot_show(g):
    addr = _cmd(g, "dpip addr add A.B.C.D/M$prefix dev WORD$dev [sapool]")
    with pytest.raises(GrammarError):
        unparse(addr, {"dev": "d0"})                          # a required value missing
    with pytest.raises(GrammarError):
        unparse(addr, {"prefix": "10.0.0.1/24", "dev": "d0", "vip": "x"})   # not of it
    route = _cmd(g, "dpip route add A.B.C.D/M$prefix {via A.B.C.D$via|src A.B.C.D$src|dev "
                    "WORD$dev|scope (host|link|global|kni_host)$scope|mtu (68-9000)$mtu}")
    with pytest.raises(GrammarError):
        unparse(route, {"prefix": "10.0.0.0/8", "scope": "nowhere"})


def test_name_of_a_line_is_its_key():
    g = build()
    g.command("dpip neigh add A.B.C.D$ip mac MAC$mac dev WORD$dev", node="exec",
              key=("ip",), show=lambda m, s: [])(handler)
    g.command("dpip neigh del A.B.C.D$ip mac MAC$mac dev WORD$dev", node="exec",
              key={"ip": lambda ip: ip.packed.hex()}, show=lambda m, s: [])(handler)
    add, rm = g.commands("exec")[-2:]
    args = {"ip": ipaddress.IPv4Address("10.0.0.9"), "mac": "00:11:22:33:44:55", "dev": "d0"}
    assert name_of(add, args) == "dpip neigh add 10.0.0.9"       # `mac` labels a value
    assert name_of(rm, args) == "dpip neigh del 0a000009"
    route = _cmd(g, "dpip route add A.B.C.D/M$prefix {via A.B.C.D$via|src A.B.C.D$src|dev "
                    "WORD$dev|scope (host|link|global|kni_host)$scope|mtu (68-9000)$mtu}")
    assert name_of(route, {"prefix": "10.0.0.0/8", "dev": "d0"}) == \
        "dpip route add 10.0.0.0/8 dev d0"                          # no key: the whole line
    with pytest.raises(GrammarError, match="key names no binding"):
        g.command("dpip link set WORD$dev mac MAC$mac detail", node="exec",
                  key=("ip",))(handler)


def test_lead_is_the_words_every_line_starts_with(g):
    assert lead(_cmd(g, "show ip vs [A.B.C.D$vip] [json]")) == ["show", "ip", "vs"]
