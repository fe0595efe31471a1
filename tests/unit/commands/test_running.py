"""Tests for rlb.commands.running: the text comes from the commands' declarations."""
from __future__ import annotations

from rlb.control.config import check
from rlb.commands.running import object_key, render
from rlb.commands import configure
from rlb.commands.base import CONFIG, g
from rlb.commands.grammar import ParseError
from rlb.commands.printing import unparse

KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl "
       "bob@x")

# Every kind of line the running configuration has, in the order it writes them (the
# text as rlb wrote it before the declarations: it must stay byte for byte).
TEXT = f"""! rlb running configuration
!
dataplane
 workers 2
 idle-sleep 50
 no-kni
 port dpdk0 net_tap0
 port dpdk1 net_tap1
 busy-poll
 vip-miss-to-kni
!
ip route 10.0.0.0/16 dev dpdk1
ip route 172.10.0.2/32 dev dpdk1 scope kni_host
interface dpdk0
 ip address 192.168.100.1/24
!
interface dpdk1
 ip address 10.0.0.100/16
 ip address 10.0.0.2/24 sapool
 ip neighbor 10.0.0.9 00:11:22:33:44:55
!
ip route 172.10.0.0/24 src 10.0.0.100 dev dpdk1 mtu 1400
ip route 0.0.0.0/0 via 10.0.0.1 dev dpdk1 metric 5
ip vs timeout tcp 900 tcpfin 120 udp 300
virtual-server tcp 10.0.0.100:80
 scheduler wrr
 persistent 600 netmask 255.255.255.0
 local-address 10.0.0.2 dev dpdk1
 real-server 192.168.100.2:80 mode fnat weight 3 upper 100 lower 10
 real-server 192.168.100.3:80 mode fnat weight 0
!
virtual-server udp 10.0.0.100:53
 scheduler conhash hash-target sip_sport
 persistent
 real-server 192.168.100.2:53 mode nat weight 1
!
virtual-server match proto=tcp,src-range=10.0.0.1-10.0.0.5
 scheduler rr
!
username bob privilege admin
username bob key {KEY}
username alice privilege view
ssh listen 0.0.0.0 2222
end"""


def model():
    return check(list(enumerate(TEXT.splitlines(), 1)), "every.conf")


def test_every_kind_of_line_reads_back_the_same():
    assert render(model()).text == TEXT


def _parse_top(line):
    """A top line as a config file reads it: in configuration mode, else above it."""
    for node in g.ancestors(CONFIG):
        try:
            return g.parse(line, node)
        except ParseError:
            continue
    raise AssertionError(f"{line!r} does not parse")


def test_each_line_is_its_commands_definition_filled_in():
    """Each printed line reads back as a command that declares how it prints, and
    printing what it read gives the line again."""
    for st in render(model()).stanzas:
        head = _parse_top(st.head)
        assert head.command.show is not None, st.head
        assert unparse(head.command, head.args) == st.head
        for line in st.body:
            m = g.parse(line, head.command.opens)
            assert m.command.show is not None, line
            assert unparse(m.command, m.args) == line


def test_configuration_commands_declare_how_they_print():
    """A command that changes the configuration prints its state, but for the `no`
    forms (their state is the absence of a line) and those that work the candidate."""
    candidate = {configure.abort, configure.commit, configure.rollback, configure.update}
    nodes = {c.opens for c in g.commands(CONFIG) if c.opens} | {CONFIG, "dataplane"}
    for node in nodes:
        for c in g.commands(node):
            if c.readonly or c.operational or c.handler in candidate:
                continue
            assert c.show is not None or c.definition.startswith("no "), c.definition


def test_object_keys_with_and_without_the_head():
    st = {s.head: s for s in render(model()).stanzas}
    assert object_key("ip address 10.0.0.2/24 sapool", "interface dpdk1") == \
        "ip address 10.0.0.2"
    assert object_key("port dpdk0 net_tap0", "dataplane") == "port dpdk0"
    assert object_key("real-server 192.168.100.2:80 mode fnat weight 3",
                      "virtual-server tcp 10.0.0.100:80") == "real-server 192.168.100.2:80"
    assert object_key("ip route 172.10.0.2/32 dev dpdk1 scope kni_host") == \
        "ip route 172.10.0.2/32"
    assert object_key("persistent 600 netmask 255.255.255.0") == "persistent"
    assert object_key("! a comment") == "! a comment"           # no command: all of it
    assert "interface dpdk1" in st


def test_the_canonical_form_keeps_a_ports_first_address():
    one = render(model())
    swapped = [s._replace(body=(s.body[1], s.body[0], *s.body[2:]))
               if s.head == "interface dpdk1" else s for s in one.stanzas]
    two = type(one)(swapped)
    assert one.canonical() != two.canonical()
    neighbours_first = [s._replace(body=tuple(sorted(s.body, key=lambda line: "neighbor"
                                                                       not in line)))
                        if s.head == "interface dpdk1" else s for s in one.stanzas]
    # the neighbour line first: the first *address* is the same, so is the configuration
    assert type(one)(neighbours_first).canonical() == one.canonical()
