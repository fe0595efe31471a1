"""rlb.modes.fnat.toa (rlb.toa): option 254 found in a saved SYN (scapy builds the headers)."""
import socket

from scapy.layers.inet import IP, TCP

from rlb.modes.fnat import toa


def syn(options):
    return bytes(IP(src="192.168.100.200", dst="192.168.100.2") /
                 TCP(sport=1025, dport=80, flags="S", options=options))


def test_finds_the_client_among_other_options():
    opts = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("NOP", None),
            (254, b"\x91\x39" + socket.inet_aton("10.0.0.48"))]
    assert toa.parse_syn(syn(opts)) == ("10.0.0.48", 0x9139)


def test_none_without_option_or_with_malformed_options():
    assert toa.parse_syn(syn([("MSS", 1460)])) is None
    assert toa.parse_syn(b"") is None
    assert toa.parse_syn(b"\x60" + bytes(40)) is None            # IPv6
    bad = bytearray(syn([("MSS", 1460)]))
    bad[20 + 20 + 1] = 0                                          # option length 0
    assert toa.parse_syn(bytes(bad)) is None
    short = syn([(254, b"\x00\x50\x0a\x00")])                     # wrong length
    assert toa.parse_syn(short) is None


def test_a_real_socket_without_toa_gives_none():
    listener = socket.create_server(("127.0.0.1", 0))
    toa.enable(listener)
    client = socket.create_connection(listener.getsockname())
    conn, _ = listener.accept()
    try:
        assert toa.client_address(conn) is None                   # saved, but no option
    finally:
        for s in (conn, client, listener):
            s.close()


def test_real_servers_import_rlb_toa_and_rlb_uoa_without_the_data_plane():
    """rlb.toa/rlb.uoa are the FNAT package's, re-exported; importing them loads none of
    the compiled data plane (a real server has no DPDK)."""
    import subprocess
    import sys
    code = ("import sys, rlb.toa, rlb.uoa\n"
            "from rlb.modes.fnat import toa, uoa\n"
            "assert rlb.toa.client_address is toa.client_address\n"
            "assert rlb.uoa.recvfrom is uoa.recvfrom\n"
            "print(sorted(m for m in sys.modules if m.endswith('.fast') or 'dataplane' in m))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
