"""The value types a command definition names (A.B.C.D, MAC, WORD...): parse, partial form, help."""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple


def _ip(cls, pattern):
    rx = re.compile(pattern)

    def convert(text):
        # The pattern keeps out what ipaddress would take but a router would
        # not: netmask notation, zone ids, non-ASCII digits.
        if rx.fullmatch(text):
            try:
                return cls(text)
            except ValueError:
                pass
        return None
    return convert


_MAC = re.compile(r"[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(?:\1[0-9a-fA-F]{2}){4}")
_DIGITS = re.compile(r"[0-9]{1,10}")
_ADDR_PORT = re.compile(r"([0-9.]+)(?::([0-9]{1,5}))?")
_ipv4 = _ip(ipaddress.IPv4Address, r"[0-9.]+")


class AddrPort(NamedTuple):
    """An A.B.C.D:PORT value: ipvsadm's host[:port] (port None when not given)."""
    addr: ipaddress.IPv4Address
    port: int | None

    def __str__(self):
        return str(self.addr) if self.port is None else f"{self.addr}:{self.port}"


def _addr_port(text):
    # Numeric only: ipvsadm would also look names up in /etc/hosts and /etc/services.
    m = _ADDR_PORT.fullmatch(text)
    addr = _ipv4(m.group(1)) if m else None
    if addr is None or (m.group(2) is not None and int(m.group(2)) > 65535):
        return None
    return AddrPort(addr, None if m.group(2) is None else int(m.group(2)))


# kind -> (text -> value or None, what a partial value may look like, default help)
_TYPES = {
    "A.B.C.D": (_ipv4, r"[0-9.]*", "IPv4 address"),
    "A.B.C.D:PORT": (_addr_port, r"[0-9.]*(:[0-9]{0,5})?", "IPv4 address[:port]"),
    "A.B.C.D/M": (_ip(ipaddress.IPv4Interface, r"[0-9.]+/[0-9]{1,2}"), r"[0-9./]*",
                  "IPv4 address/prefix length"),
    "X:X::X:X": (_ip(ipaddress.IPv6Address, r"[0-9a-fA-F:.]+"), r"[0-9a-fA-F:.]*", "IPv6 address"),
    "X:X::X:X/M": (_ip(ipaddress.IPv6Interface, r"[0-9a-fA-F:.]+/[0-9]{1,3}"), r"[0-9a-fA-F:./]*",
                   "IPv6 address/prefix length"),
    "MAC": (lambda t: t.lower().replace("-", ":") if _MAC.fullmatch(t) else None,
            r"[0-9a-fA-F:-]*", "MAC address (aa:bb:cc:dd:ee:ff)"),
    "WORD": (str, r".*", "Word"),
    "LINE": (str, r".*", "Text to the end of the line"),
}

