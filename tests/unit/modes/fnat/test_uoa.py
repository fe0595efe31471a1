"""rlb.modes.fnat.uoa (rlb.uoa): option 31 found in an IPv4 options block, the per-socket peer cache, and
what this kernel does with option 31 on a real receive path (a veth in a namespace)."""
import socket
import time

import pytest
from scapy.layers.inet import IP, UDP, IPOption
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from rlb.modes.fnat import uoa
from rlb.lab import udp_echo
from support.netns import Wire, del_ns, in_netns, make_ns, sh

CLIENT = socket.inet_aton("10.0.0.48")
UOA = bytes([31, 8]) + (40000).to_bytes(2, "big") + CLIENT


def test_finds_the_option_alone_after_no_ops_and_after_others():
    assert uoa.parse_options(UOA) == ("10.0.0.48", 40000)
    assert uoa.parse_options(b"\x01\x01\x01\x01" + UOA) == ("10.0.0.48", 40000)
    rr = bytes([7, 7, 4]) + bytes(4) + b"\x01"             # record route, one slot, pad
    assert uoa.parse_options(rr + UOA) == ("10.0.0.48", 40000)
    assert uoa.parse_options(UOA + b"\x00" * 4) == ("10.0.0.48", 40000)


def test_none_without_the_option_or_with_malformed_options():
    assert uoa.parse_options(b"") is None
    assert uoa.parse_options(b"\x01\x01\x01\x00") is None
    assert uoa.parse_options(b"\x00" + UOA) is None          # after the end of options
    assert uoa.parse_options(b"\x07") is None                # kind without length
    assert uoa.parse_options(b"\x07\x00" + UOA) is None      # length 0: stop, no guess
    assert uoa.parse_options(b"\x07\x01" + UOA) is None      # length 1
    assert uoa.parse_options(b"\x07\x30" + UOA) is None      # beyond the block
    assert uoa.parse_options(UOA[:6]) is None                # truncated option 31
    assert uoa.parse_options(bytes([31, 6]) + UOA[2:6]) is None   # not the 8-byte layout
    # an option 31 of another length is skipped like any option, not read
    assert uoa.parse_options(bytes([31, 4, 0, 0]) + UOA) == ("10.0.0.48", 40000)


def test_cache_is_bounded_and_forgets_the_least_recently_used():
    c = uoa.Cache(size=2)
    a, b, d = ("192.168.100.200", 1025), ("192.168.100.200", 1027), ("192.168.100.201", 1025)
    c.put(a, ("10.0.0.1", 1))
    c.put(b, ("10.0.0.2", 2))
    assert c.get(a) == ("10.0.0.1", 1)                       # a is now the most recent
    c.put(d, ("10.0.0.3", 3))
    assert len(c) == 2 and c.get(b) is None and c.get(a) == ("10.0.0.1", 1)
    c.put(a, ("10.0.0.9", 9))                                # a new flow on the same lport
    assert c.get(a) == ("10.0.0.9", 9) and len(c) == 2
    c.forget(a)
    assert c.get(a) is None


def test_each_socket_has_its_own_cache():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s1, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s2:
        assert uoa.cache_of(s1) is uoa.cache_of(s1)
        assert uoa.cache_of(s1) is not uoa.cache_of(s2)


def test_a_datagram_without_options_gives_no_client():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        uoa.enable(rx)
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(2)
        tx.bind(("127.0.0.1", 0))
        tx.sendto(b"plain", rx.getsockname())
        data, peer, client = uoa.recvfrom(rx, 100)
        assert data == b"plain" and peer == tx.getsockname() and client is None


# --- the kernel: a frame with option 31 arrives on a veth ---------------------------------

NS = "rlbt-uoa-unit"
RS, LIP = "192.168.100.2", "192.168.100.200"


@pytest.fixture(scope="module")
def veth():
    make_ns(NS, [("ua0", "ub0")])
    try:
        sh("ip", "addr", "add", f"{RS}/24", "dev", "ua0", ns=NS)
        mac = lambda dev: sh("cat", f"/sys/class/net/{dev}/address", ns=NS).stdout.strip()
        # the "LB" is the tester on ub0: no ARP needed to answer it
        sh("ip", "neigh", "add", LIP, "lladdr", mac("ub0"), "dev", "ua0", ns=NS)
        with in_netns(NS):
            rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        uoa.enable(rx)
        rx.bind((RS, 9999))
        rx.settimeout(2)
        wire = Wire(NS, "ub0")
        try:
            yield rx, wire, mac("ua0"), mac("ub0")
        finally:
            wire.close()
            rx.close()
    finally:
        del_ns(NS)


def frame(veth, sport, payload, options=()):
    _, _, rs_mac, lb_mac = veth
    return bytes(Ether(src=lb_mac, dst=rs_mac) /
                 IP(src=LIP, dst=RS, options=[IPOption(o) for o in options]) /
                 UDP(sport=sport, dport=9999) / Raw(payload))


def test_kernel_accepts_option_31_and_hands_it_over_as_ip_recvopts(veth):
    rx, wire, _, _ = veth
    wire.send(frame(veth, 1025, b"first", [UOA]))
    data, anc, _flags, peer = rx.recvmsg(100, socket.CMSG_SPACE(40))
    assert data == b"first" and peer == (LIP, 1025)
    # delivered as received, under the type that asked for it (not IP_OPTIONS/IP_RETOPTS)
    assert anc == [(socket.IPPROTO_IP, uoa.IP_RECVOPTS, UOA)]


def test_recvfrom_reads_the_client_then_remembers_it_for_the_peer(veth):
    rx, wire, _, _ = veth
    wire.send(frame(veth, 1027, b"one", [UOA]))
    assert uoa.recvfrom(rx, 100) == (b"one", (LIP, 1027), ("10.0.0.48", 40000))
    wire.send(frame(veth, 1027, b"two"))                     # later datagrams: no option
    assert uoa.recvfrom(rx, 100) == (b"two", (LIP, 1027), ("10.0.0.48", 40000))
    wire.send(frame(veth, 1029, b"other"))                   # a peer never seen with it
    assert uoa.recvfrom(rx, 100) == (b"other", (LIP, 1029), None)
    # the option among others (NOOP padding before it): still found
    wire.send(frame(veth, 1031, b"nops", [b"\x01\x01\x01\x01", UOA]))
    assert uoa.recvfrom(rx, 100)[2] == ("10.0.0.48", 40000)


def test_udp_echo_answers_the_peer_with_the_client(veth):
    rx, wire, _, _ = veth
    wire.drain()
    wire.send(frame(veth, 1033, b"hello", [UOA]))
    udp_echo.answer(rx)
    end = time.monotonic() + 2
    got = None
    while got is None and time.monotonic() < end:
        f = wire.recv(lambda f: UDP in Ether(f) and Ether(f)[UDP].sport == 9999, timeout=1)
        got = Ether(f) if f else None
    assert got is not None and got[IP].dst == LIP and got[UDP].dport == 1033
    assert bytes(got[Raw]) == b"Your ip:port : 10.0.0.48:40000\n"
