"""rlb.lab.decap: which IPIP packets it decapsulates, and what it hands the kernel."""
from scapy.layers.inet import IP, TCP

from rlb.lab import decap

INNER = IP(src="10.140.20.46", dst="10.140.31.48", id=9) / TCP(sport=40000, dport=80, flags="S")


def ipip(inner=INNER, **outer):
    return bytes(IP(src="10.140.16.48", dst="10.140.18.33", proto=4, **outer) / inner)


def test_the_inner_packet_comes_out_byte_for_byte():
    assert decap.inner_packet(ipip()) == bytes(INNER)
    # an outer header with options is skipped whole
    assert decap.inner_packet(ipip(options=b"\x01\x01\x01\x00")) == bytes(INNER)


def test_unsound_packets_are_refused():
    good = ipip()
    assert decap.inner_packet(good[:30]) is None                      # truncated
    assert decap.inner_packet(bytes(IP(proto=6) / INNER)) is None      # not IPIP
    bad_len = bytearray(good)
    bad_len[22:24] = (999).to_bytes(2, "big")                         # inner length lies
    assert decap.inner_packet(bytes(bad_len)) is None
    v6 = bytearray(good)
    v6[20] = 0x65                                                     # inner is not IPv4
    assert decap.inner_packet(bytes(v6)) is None


def test_ifreq_layout():
    req = decap._ifreq("tunl0", decap.IFF_TUN | decap.IFF_NO_PI)
    assert len(req) == 40 and req[:6] == b"tunl0\0"
    assert int.from_bytes(req[16:18], "little") == 0x1001
