"""Tests for rlb.commands.grammar: definitions, typed matching, errors, completion and install checks."""

import ipaddress
import random
import time

import pytest

from rlb.commands.definition import GrammarError
from rlb.commands.grammar import CR, Grammar, Match, ParseError

WORDS = {
    "dpip": "DPVS-compatible interface tool", "addr": "Protocol address management",
    "add": "Add an object", "del": "Delete an object", "dev": "Port", "sapool": "Use an SA pool",
    "route": "Routing table management", "via": "Next hop", "src": "Preferred source",
    "scope": "Route scope", "host": "Host scope", "link": "Link scope", "global": "Global scope",
    "kni_host": "KNI host scope", "mtu": "Route MTU", "show": "Show state", "ip": "IPv4",
    "ipv6": "IPv6", "vs": "Virtual servers", "json": "JSON output", "stats": "Statistics",
    "shutdown": "Stop the data plane", "service": "Services", "summary": "One line per service",
    "set": "Change", "mac": "Hardware address", "neigh": "Neighbours", "ping": "Send echo requests",
    "-A": "Add a virtual service", "-D": "Delete a virtual service", "-t": "TCP service",
    "--stats": "With counters", "ipvsadm": "IPVS-compatible tool", "exit": "Leave the node",
    "foo": "Foo", "bar": "Bar", "x": "X", "y": "Y", "a": "A", "b": "B", "detail": "Details",
    "log": "Logging",
}


def build(**extra_nodes):
    g = Grammar()
    g.node("exec", prompt="{host}>")
    g.node("config", parent="exec", prompt="{host}(config)#")
    g.node("dataplane", parent="config", prompt="{host}(config-dp)#")
    g.words(WORDS)
    c = g.command
    c("dpip addr add A.B.C.D/M$prefix dev WORD$dev [sapool]", node="exec",
      help={"dev": "Port name (e.g. dpdk0)"})(handler)
    c("dpip addr del A.B.C.D/M$prefix dev WORD$dev", node="exec")(handler)
    c("dpip route add A.B.C.D/M$prefix {via A.B.C.D$via|src A.B.C.D$src|dev WORD$dev"
      "|scope (host|link|global|kni_host)$scope|mtu (68-9000)$mtu}", node="exec")(handler)
    c("dpip link set WORD$dev mac MAC$mac", node="exec")(handler)
    c("show ip vs [A.B.C.D$vip] [json]", node="exec")(handler)
    c("show ip vs stats", node="exec")(handler)
    c("show ipv6 neigh [X:X::X:X$addr]", node="exec")(handler)
    c("show service WORD$name", node="exec")(handler)
    c("show service A.B.C.D$vip", node="exec")(handler)
    c("show service summary [detail [json]]", node="exec")(handler)
    c("shutdown", node="exec")(handler)
    c("ping LINE$args", node="exec")(handler)
    c("ipvsadm (-A|-D)$op -t WORD$service [--stats]", node="exec")(handler)
    c("ipv6 addr X:X::X:X/M$prefix", node="config")(handler)
    c("exit", node="dataplane")(handler)
    return g


def handler(ctx, **args):
    """Do the thing."""
    return args


@pytest.fixture
def g():
    return build()


def args(g, line, node="exec"):
    m = g.parse(line, node=node)
    assert isinstance(m, Match)
    return m.args


def error(g, line, node="exec"):
    with pytest.raises(ParseError) as info:
        g.parse(line, node=node)
    return info.value


# -- declaration -----------------------------------------------------------------

def test_nodes_and_commands_are_data(g):
    assert g.nodes["config"].parent == "exec"
    assert g.nodes["exec"].parent is None
    assert g.nodes["dataplane"].prompt == "{host}(config-dp)#"
    assert [c.definition for c in g.commands("dataplane")] == ["exit"]
    cmd = g.commands("exec")[0]
    assert cmd.node == "exec" and cmd.handler is handler and cmd.doc == "Do the thing."
    assert cmd.bindings == ("prefix", "dev", "sapool")


def test_command_returns_the_function_unchanged(g):
    def f(ctx):
        pass
    assert g.command("foo bar", node="exec")(f) is f
    assert g.parse("foo bar", node="exec").command.handler is f


def test_commands_stay_in_their_node(g):
    assert g.parse("exit", node="dataplane").command.definition == "exit"
    assert error(g, "exit").kind == "unknown"
    assert args(g, "ipv6 addr 2001:db8::1/64", node="config") == {
        "prefix": ipaddress.IPv6Interface("2001:db8::1/64")}


# -- token types -----------------------------------------------------------------

def test_ipv4_prefix_keeps_host_bits(g):
    a = args(g, "dpip addr add 10.0.0.100/16 dev dpdk1")
    assert a == {"prefix": ipaddress.IPv4Interface("10.0.0.100/16"), "dev": "dpdk1", "sapool": None}
    assert str(a["prefix"]) == "10.0.0.100/16"


@pytest.mark.parametrize("bad", ["10.0.0.1", "10.0.0.1/33", "10.0.0/8", "10.0.0.0/255.0.0.0",
                                 "300.0.0.1/8", "a.b.c.d/8"])
def test_ipv4_prefix_rejects(g, bad):
    e = error(g, f"dpip addr add {bad} dev dpdk1")
    assert (e.kind, e.position) == ("invalid", 14)


def test_ipv4_address(g):
    assert args(g, "show ip vs 192.0.2.1") == {"vip": ipaddress.IPv4Address("192.0.2.1"), "json": None}
    assert error(g, "show ip vs 192.0.2.256").kind == "invalid"


def test_ipv6_address_and_prefix(g):
    assert args(g, "show ipv6 neigh fe80::1")["addr"] == ipaddress.IPv6Address("fe80::1")
    assert error(g, "show ipv6 neigh fe80::1%eth0").kind == "invalid"
    assert error(g, "show ipv6 neigh 10.0.0.1").kind == "invalid"
    assert args(g, "ipv6 addr 2001:db8::5/48", node="config")["prefix"].network.prefixlen == 48
    assert error(g, "ipv6 addr 2001:db8::5/129", node="config").kind == "invalid"


@pytest.mark.parametrize("text", ["AA:BB:CC:00:11:22", "aa-bb-cc-00-11-22"])
def test_mac_is_normalised(g, text):
    assert args(g, f"dpip link set dpdk0 mac {text}")["mac"] == "aa:bb:cc:00:11:22"


@pytest.mark.parametrize("bad", ["aa:bb:cc-00:11:22", "aa:bb:cc:00:11", "aabb.cc00.1122",
                                 "gg:bb:cc:00:11:22"])
def test_mac_rejects(g, bad):
    assert error(g, f"dpip link set dpdk0 mac {bad}").kind == "invalid"


@pytest.mark.parametrize("text,value", [("68", 68), ("9000", 9000), ("1500", 1500), ("0100", 100)])
def test_range_bounds_inclusive(g, text, value):
    assert args(g, f"dpip route add 10.0.0.0/8 mtu {text}")["mtu"] == value


@pytest.mark.parametrize("bad", ["67", "9001", "-70", "+70", "1e3", "99999999999999999999"])
def test_range_out_of_bounds_is_invalid(g, bad):
    e = error(g, f"dpip route add 10.0.0.0/8 mtu {bad}")
    assert (e.kind, e.position) == ("invalid", 30)
    assert e.expected == [("(68-9000)", "Number from 68 to 9000")]


def addr_port_grammar():
    g = Grammar()
    g.node("exec")
    g.words({"x": "X", "-r": "Real server", "-t": "TCP service"})
    g.command("x {-r A.B.C.D:PORT$server|-t A.B.C.D$vip}", node="exec")(handler)
    return g


@pytest.mark.parametrize("text,addr,port", [
    ("10.0.0.1:80", "10.0.0.1", 80), ("10.0.0.1", "10.0.0.1", None), ("10.0.0.1:0", "10.0.0.1", 0),
    ("10.0.0.1:65535", "10.0.0.1", 65535), ("0.0.0.0:8080", "0.0.0.0", 8080),
    ("10.0.0.1:080", "10.0.0.1", 80)])
def test_addr_port(text, addr, port):
    value = args(addr_port_grammar(), f"x -r {text}")["server"]
    assert (value.addr, value.port) == (ipaddress.IPv4Address(addr), port)
    assert value == (value.addr, value.port)         # a tuple: unpacks as (addr, port)
    assert str(value) == (addr if port is None else f"{addr}:{port}")


@pytest.mark.parametrize("bad", ["10.0.0.1:", "10.0.0.1:65536", "10.0.0.1:8:9", "10.0.0:80",
                                 "300.0.0.1:80", ":80", "10.0.0.1:http", "10.0.0.1/24:80",
                                 "[10.0.0.1]:80", "10.0.0.1:123456"])
def test_addr_port_rejects(bad):
    e = error(addr_port_grammar(), f"x -r {bad}")
    assert (e.kind, e.position) == ("invalid", 5)
    assert e.expected == [("A.B.C.D:PORT", "IPv4 address[:port]")]


def test_addr_port_completion_and_help():
    g = addr_port_grammar()
    assert g.complete("x -r ", node="exec") == [("A.B.C.D:PORT", "IPv4 address[:port]")]
    assert g.complete("x -r 10.0.0.1:8", node="exec") == [("A.B.C.D:PORT", "IPv4 address[:port]")]
    assert g.complete("x -r 10.0.0.1:8x", node="exec") == []
    assert g.complete("x -t 10.0.0.1:8", node="exec") == []      # a bare A.B.C.D has no port


def test_word_takes_any_token(g):
    assert args(g, "show service web-1.example")["name"] == "web-1.example"


def test_line_takes_the_rest_of_the_line_as_typed(g):
    assert args(g, 'ping  -c 3   "a b"  10.0.0.1  ') == {"args": '-c 3   "a b"  10.0.0.1'}
    assert args(g, "ping show")["args"] == "show"


# -- structure ---------------------------------------------------------------------

def test_optional_present_and_absent(g):
    assert args(g, "dpip addr add 10.0.0.1/32 dev dpdk0 sapool")["sapool"] is True
    assert args(g, "show ip vs json") == {"vip": None, "json": True}
    assert args(g, "show ip vs") == {"vip": None, "json": None}


def test_nested_optional(g):
    assert args(g, "show service summary detail json") == {"detail": True, "json": True}
    assert args(g, "show service summary") == {"detail": None, "json": None}
    assert error(g, "show service summary json").kind == "invalid"


def test_bound_alternative_gives_the_full_keyword(g):
    assert args(g, "dpip route add 10.0.0.0/8 scope kni")["scope"] == "kni_host"
    assert args(g, "ipvsadm -D -t web")["op"] == "-D"


def test_unbound_alternative_binds_each_keyword(g):
    g.command("foo (x|y) [bar]", node="exec")(handler)
    assert args(g, "foo y") == {"x": None, "y": True, "bar": None}


def test_unordered_set_any_order_and_subset(g):
    a = args(g, "dpip route add 10.0.0.0/8 mtu 1500 dev dpdk0 via 10.0.0.1 scope link")
    assert a == {"prefix": ipaddress.IPv4Interface("10.0.0.0/8"), "via": ipaddress.IPv4Address("10.0.0.1"),
                 "src": None, "dev": "dpdk0", "scope": "link", "mtu": 1500}
    b = args(g, "dpip route add 10.0.0.0/8 scope link via 10.0.0.1 dev dpdk0 mtu 1500")
    assert a == b
    assert args(g, "dpip route add 10.0.0.0/8")["via"] is None


def test_unordered_set_element_at_most_once(g):
    e = error(g, "dpip route add 10.0.0.0/8 via 10.0.0.1 dev x via 10.0.0.2")
    assert (e.kind, e.position) == ("invalid", 45)
    assert "via" not in [t for t, _ in e.expected]
    assert CR in e.expected


def test_bindings_of_dashed_keywords(g):
    assert args(g, "ipvsadm -A -t web --stats") == {"op": "-A", "service": "web", "stats": True}


def test_keywords_match_case_sensitively(g):
    assert error(g, "ipvsadm -a -t web").position == 8
    assert error(g, "SHOW ip vs").kind == "unknown"


def test_explicit_keyword_binding(g):
    g.command("foo [bar$with_bar]", node="exec")(handler)
    assert args(g, "foo bar") == {"with_bar": True}


def test_mandatory_keywords_are_not_arguments(g):
    assert set(args(g, "dpip addr del 10.0.0.1/8 dev d")) == {"prefix", "dev"}


# -- precedence and abbreviation ---------------------------------------------------

def test_unique_prefix_abbreviates(g):
    assert g.parse("sho ip vs st", node="exec").command.definition == "show ip vs stats"
    assert g.parse("shu", node="exec").command.definition == "shutdown"


def test_ambiguous_prefix(g):
    e = error(g, "sh ip vs")
    assert (e.kind, e.position) == ("ambiguous", 0)
    assert e.expected == [("show", "Show state"), ("shutdown", "Stop the data plane")]
    assert str(e) == '% Ambiguous command: "sh"'
    e = error(g, "dpip route add 10.0.0.0/8  s 10.0.0.1")
    assert (e.kind, e.position, [t for t, _ in e.expected]) == ("ambiguous", 27, ["scope", "src"])


def test_exact_keyword_beats_longer_prefix(g):
    # "ip" is a prefix of "ipv6" too, but it is typed in full
    assert g.parse("show ip vs", node="exec").command.definition.startswith("show ip vs")
    assert g.parse("show ipv neigh", node="exec").command.definition.startswith("show ipv6")


def test_keyword_beats_word_and_typed_beats_word(g):
    assert g.parse("show service summary", node="exec").command.definition.startswith("show service summary")
    assert g.parse("show service summ", node="exec").command.definition.startswith("show service summary")
    assert args(g, "show service web") == {"name": "web"}
    assert args(g, "show service 10.1.1.1") == {"vip": ipaddress.IPv4Address("10.1.1.1")}


def test_quoted_token_is_never_a_keyword(g):
    assert args(g, 'show service "summary"') == {"name": "summary"}
    assert args(g, 'show service "my \\"web\\" svc"') == {"name": 'my "web" svc'}
    assert args(g, 'show service ""') == {"name": ""}


def test_equal_matches_are_ambiguous(g):
    g.command("foo [WORD$x] [WORD$y]", node="exec")(handler)
    assert args(g, "foo a b") == {"x": "a", "y": "b"}
    e = error(g, "foo a")
    assert (e.kind, e.position) == ("ambiguous", 0)
    assert str(e) == '% Ambiguous command: "foo a"'
    assert e.expected == [("foo [WORD$x] [WORD$y]", "Do the thing.")]


# -- errors ------------------------------------------------------------------------

def test_invalid_renders_a_caret(g):
    e = error(g, "dpip addr fix 10.0.0.1/32")
    assert (e.kind, e.position) == ("invalid", 10)
    assert str(e) == ("% Invalid input detected at '^' marker.\n"
                      "dpip addr fix 10.0.0.1/32\n"
                      "          ^")
    assert e.expected == [("add", WORDS["add"]), ("del", WORDS["del"])]
    e = error(g, "dpip adr")
    assert (e.kind, e.position) == ("invalid", 5)
    assert e.expected == [("addr", WORDS["addr"]), ("link", WORDS["link"]), ("route", WORDS["route"])]
    assert str(e).splitlines()[1:] == ["dpip adr", "     ^"]


def test_unknown_first_word(g):
    e = error(g, "  frobnicate now")
    assert (e.kind, e.position) == ("unknown", 2)
    assert str(e).splitlines() == ["% Unknown command.", "  frobnicate now", "  ^"]
    assert ("dpip", WORDS["dpip"]) in e.expected


def test_incomplete_lists_what_may_follow(g):
    e = error(g, "dpip addr add 10.0.0.1/32")
    assert (e.kind, e.position) == ("incomplete", 25)
    assert e.expected == [("dev", "Port")]
    assert str(e) == "% Incomplete command.\n  dev  Port"
    e = error(g, "dpip route add ")
    assert e.position == 15
    assert str(e) == "% Incomplete command.\n  A.B.C.D/M  IPv4 address/prefix length"
    assert error(g, "ping").expected == [("LINE", "Text to the end of the line")]


def test_empty_and_comment_lines(g):
    for line in ["", "   ", "\t\n", "! interface", "  # comment", "#" * 10000, b"! x"]:
        assert g.parse(line, node="exec") is None


def test_quote_errors(g):
    e = error(g, 'show service "web')
    assert (e.kind, e.position) == ("invalid", 13)
    assert "Unterminated" in str(e)
    e = error(g, 'show service "web"x')
    assert (e.kind, e.position) == ("invalid", 18)


def test_long_line(g):
    assert g.parse("ping " + "x" * 4091, node="exec").args["args"] == "x" * 4091
    e = error(g, "ping " + "x" * 4092)
    assert (e.kind, e.position) == ("invalid", 4096)
    assert "too long" in str(e)


@pytest.mark.parametrize("line", ["show\x00ip", "\x1b[2Jshow", "show \x7f", "show \udcff", b"\xff\xfeshow"])
def test_garbage_is_a_parse_error(g, line):
    assert error(g, line).kind == "invalid"


def test_random_garbage_never_raises_anything_else(g):
    rnd = random.Random(4)
    alphabet = 'ab sh ow ip vs dpip 10.0.0.1 / " \\ \t{}[]()|$-:' + "".join(map(chr, range(0, 600, 7)))
    for _ in range(3000):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(1, 40)))
        for line in (text, text.encode("utf-8", "surrogatepass"), rnd.randbytes(rnd.randrange(1, 30))):
            try:
                g.parse(line, node="exec")
            except ParseError as e:
                assert e.kind in {"invalid", "incomplete", "ambiguous", "unknown"}
                assert isinstance(str(e), str)
            g.complete(line if isinstance(line, str) else "x", node="exec")


def test_unknown_node(g):
    with pytest.raises(GrammarError):
        g.parse("show ip vs", node="nope")
    with pytest.raises(GrammarError):
        g.complete("", node="nope")


# -- completion --------------------------------------------------------------------

def test_complete_next_tokens(g):
    assert g.complete("dpip ", node="exec") == [
        ("addr", WORDS["addr"]), ("link", WORDS["link"]), ("route", WORDS["route"])]
    assert g.complete("show ip vs ", node="exec") == [
        ("A.B.C.D", "IPv4 address"), ("json", WORDS["json"]), ("stats", WORDS["stats"]), CR]
    first = [t for t, _ in g.complete("", node="exec")]
    assert first == ["dpip", "ipvsadm", "ping", "show", "shutdown"]


def test_complete_partial_word(g):
    assert g.complete("dpip ad", node="exec") == [("addr", WORDS["addr"])]
    assert g.complete("sh", node="exec") == [("show", WORDS["show"]), ("shutdown", WORDS["shutdown"])]
    assert g.complete("show ip vs", node="exec") == [("vs", WORDS["vs"])]    # no <cr> on a partial word
    assert g.complete("show ip vs 10.", node="exec") == [("A.B.C.D", "IPv4 address")]
    assert g.complete("show ip vs j", node="exec") == [("json", WORDS["json"])]
    assert g.complete("zz", node="exec") == []


def test_complete_set_drops_used_elements(g):
    toks = [t for t, _ in g.complete("dpip route add 10.0.0.0/8 via 10.0.0.1 mtu 1500 ", node="exec")]
    assert toks == ["dev", "scope", "src", "<cr>"]


def test_complete_range_prefix(g):
    line = "dpip route add 10.0.0.0/8 mtu "
    assert g.complete(line, node="exec") == [("(68-9000)", "Number from 68 to 9000")]
    assert g.complete(line + "9", node="exec") != []     # 90..99, 900..9000
    assert g.complete(line + "9001", node="exec") == []
    assert g.complete(line + "x", node="exec") == []


def test_complete_cr_when_complete(g):
    assert g.complete("shutdown ", node="exec") == [CR]
    assert g.complete("ping -c 1 ", node="exec") == [("LINE", "Text to the end of the line"), CR]


def test_complete_after_error_is_empty(g):
    assert g.complete("frob ", node="exec") == []
    assert g.complete("sh ip ", node="exec") == []
    assert g.complete("# comment ", node="exec") == []
    assert g.complete("x" * 5000, node="exec") == []


def test_complete_quoted_partial_offers_no_keywords(g):
    assert g.complete('show service "su', node="exec") == [("WORD", "Word")]
    assert g.complete('show service su', node="exec") == [("WORD", "Word"), ("summary", WORDS["summary"])]


def test_dynamic_completer(g):
    seen = []

    def ports(ctx):
        seen.append(ctx)
        return ["dpdk0", "dpdk1", "kni0"]
    g.completer("dev", ports)
    assert g.complete("dpip addr add 10.0.0.1/8 dev ", node="exec", ctx="C") == [
        ("WORD", "Port name (e.g. dpdk0)"), ("dpdk0", "Port name (e.g. dpdk0)"),
        ("dpdk1", "Port name (e.g. dpdk0)"), ("kni0", "Port name (e.g. dpdk0)")]
    assert [t for t, _ in g.complete("dpip addr add 10.0.0.1/8 dev dp", node="exec")] == [
        "WORD", "dpdk0", "dpdk1"]
    assert seen[0] == "C"


def test_dynamic_completer_values_must_fit_the_type(g):
    g.completer("vip", lambda ctx: ["10.0.0.1", "not-an-address", "10.0.0.2"])
    assert g.complete("show ip vs 10.0.0.", node="exec") == [
        ("10.0.0.1", "IPv4 address"), ("10.0.0.2", "IPv4 address"), ("A.B.C.D", "IPv4 address")]


def test_failing_completer_is_ignored(g):
    def broken(ctx):
        raise RuntimeError("dataplane down")
    g.completer("dev", broken)
    assert g.complete("dpip addr add 10.0.0.1/8 dev ", node="exec") == [("WORD", "Port name (e.g. dpdk0)")]


# -- install-time checks -------------------------------------------------------------

@pytest.mark.parametrize("definition,why", [
    ("foo [bar", "unclosed"),
    ("foo bar]", "unbalanced"),
    ("foo (x|y]", "unbalanced"),
    ("foo (x|)", "empty alternative"),
    ("foo []", "empty alternative"),
    ("foo | bar", "outside a group"),
    ("", "empty"),
    ("foo FOO$x", "unknown type"),
    ("foo Bar", "unknown type"),
    ("foo b@r", "invalid keyword"),
    ("ping LINE$x foo", "LINE must be last"),
    ("foo {LINE$x|bar}", "LINE must be last"),
    ("foo WORD", "needs a $name"),
    ("foo (1-10)", "needs a $name"),
    ("foo WORD$x A.B.C.D$x", "duplicate binding $x"),
    ("foo [x] [x]", "duplicate binding $x"),
    ("foo (10-1)$n", "empty range"),
    ("foo (x|y WORD$w)$z", "plain keywords"),
    ("foo [x|y]$z", "may only follow"),
    ("foo (x|del)", "no usable name"),
    ("foo WORD$class", "Python keyword"),
    ("foo $x", "unexpected"),
])
def test_malformed_definitions(g, definition, why):
    with pytest.raises(GrammarError, match=why.replace("$", r"\$").replace("[", r"\[")):
        g.command(definition, node="exec")(handler)


def test_names_may_repeat_across_alternatives(g):
    g.command("foo (x WORD$v|y (1-5)$v)", node="exec")(handler)
    assert args(g, "foo x a") == {"v": "a", "x": True, "y": None}
    assert args(g, "foo y 3") == {"v": 3, "x": None, "y": True}


def test_bound_choice_with_python_keyword(g):
    g.command("foo (x|del)$op", node="exec")(handler)
    assert args(g, "foo del") == {"op": "del"}


def test_unknown_node_at_install(g):
    with pytest.raises(GrammarError, match="unknown node 'nope'"):
        g.command("foo", node="nope")(handler)


def test_keyword_without_help_is_named(g):
    with pytest.raises(GrammarError, match="frobnicate"):
        g.command("show frobnicate", node="exec")(handler)
    g.words(frobnicate="Frobnicate")
    g.command("show frobnicate", node="exec")(handler)


def test_help_only_for_variables(g):
    with pytest.raises(GrammarError, match=r"\$nme"):
        g.command("foo WORD$name", node="exec", help={"nme": "typo"})(handler)
    with pytest.raises(GrammarError, match=r"\$bar"):
        g.command("foo [bar]", node="exec", help={"bar": "keyword help lives in words()"})(handler)


@pytest.mark.parametrize("first,second", [
    ("foo bar", "foo   bar"),
    ("foo x WORD$a", "foo x WORD$b"),
    ("foo x", "foo x [y]"),
    ("foo (1-10)$a", "foo (5-20)$b"),
    ("foo {x|y}", "foo y x"),
    ("foo WORD$a", "foo LINE$b"),
    ("foo LINE$a", "foo WORD$b WORD$c"),
    ("foo LINE$a", "foo [x] LINE$b"),
])
def test_duplicate_or_ambiguous_commands_fail_at_install(g, first, second):
    g.command(first, node="exec")(handler)
    with pytest.raises(GrammarError, match="duplicate|ambiguous"):
        g.command(second, node="exec")(handler)


def test_conflict_message_names_a_common_line(g):
    g.command("foo x WORD$a", node="exec")(handler)
    with pytest.raises(GrammarError, match="both accept 'foo x WORD'"):
        g.command("foo [x] WORD$b", node="exec")(handler)


@pytest.mark.parametrize("first,second", [
    ("foo (1-10)$a", "foo (11-20)$b"),
    ("foo WORD$a", "foo A.B.C.D$b"),
    ("foo x", "foo x y"),
    ("foo x", "foo x"),
    ("foo LINE$a", "foo WORD$b bar"),      # "foo a bar": the keyword ranks above LINE
])
def test_distinct_commands_install(first, second):
    g = Grammar()
    g.node("exec")
    g.node("other", parent="exec")
    g.words(WORDS)
    g.command(first, node="exec")(handler)
    g.command(second, node="exec" if first != second else "other")(handler)


def test_words_are_described_once(g):
    g.words(show="Show state")                     # same text again is fine
    with pytest.raises(GrammarError, match="show"):
        g.words(show="Display")
    with pytest.raises(GrammarError):
        g.words({"Bad": "x"})
    with pytest.raises(GrammarError):
        g.words(empty=" ")


def test_node_checks(g):
    with pytest.raises(GrammarError, match="parent"):
        g.node("vs", parent="nope")
    with pytest.raises(GrammarError, match="twice"):
        g.node("exec")
    g.node("root2")                                # another root is fine


def test_check(g):
    assert g.check() is None
    def ports(ctx):
        return []
    g.completer("dev", ports)
    g.completer("dev", ports)                       # the same function again is fine
    with pytest.raises(GrammarError, match="twice"):
        g.completer("dev", lambda ctx: [])
    assert g.check() is None
    g.completer("nosuch", lambda ctx: [])
    with pytest.raises(GrammarError, match="nosuch"):
        g.check()


# -- size ------------------------------------------------------------------------------

def test_hundreds_of_commands_stay_fast():
    g = Grammar()
    g.node("exec")
    g.words({f"w{i}": f"word {i}" for i in range(300)}, sub="Sub", other="Other")
    t0 = time.perf_counter()
    for i in range(300):
        g.command(f"w{i} sub WORD$x [other A.B.C.D$y]", node="exec")(handler)
        g.command(f"w{i} {{sub (1-10)$n|other}} other", node="exec")(handler)
    g.check()
    assert args(g, "w299 sub abc other 1.2.3.4") == {
        "x": "abc", "other": True, "y": ipaddress.IPv4Address("1.2.3.4")}
    for line in ["w1 " * 1300, "w150 sub " + "x " * 2000, "zz " * 2000]:
        with pytest.raises(ParseError):
            g.parse(line[:4096], node="exec")
    assert time.perf_counter() - t0 < 5


def test_ancestors_follow_the_declared_parents(g):
    assert g.ancestors("dataplane") == ["dataplane", "config", "exec"]
    assert g.ancestors("exec") == ["exec"]
