"""The checkers' settings as data: each a name, a type that parses and refuses, a default
and its help, so the grammar and the running configuration can be derived from them."""
from __future__ import annotations

import ipaddress
import re
import shlex
import shutil
from dataclasses import dataclass
from typing import Any, Callable

from rlb.errors import CommandError


@dataclass(frozen=True)
class Type:
    """How a setting's value is written: `name` for help and errors, `parse` turns the
    operator's text (or an already parsed value) into the value, raising ValueError
    with the reason; `text` writes a value back as the operator would type it."""
    name: str
    parse: Callable[[Any], Any]
    text: Callable[[Any], str] = str


@dataclass(frozen=True)
class Setting:
    name: str
    type: Type
    default: Any
    help: str


def _seconds(value):
    try:
        s = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number of seconds") from None
    if not s > 0 or s != s or s == float("inf"):
        raise ValueError(f"{value!r} must be a positive number of seconds")
    return s


def _port(value):
    try:
        p = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a port number") from None
    if not 1 <= p <= 65535:
        raise ValueError(f"{value!r} is not a port number (1-65535)")
    return p


def _ipv4(value):
    try:
        return str(ipaddress.IPv4Address(str(value)))
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 address") from None


def _path(value):
    value = str(value)
    if not value.startswith("/") or any(c.isspace() for c in value):
        raise ValueError(f"{value!r} is not a path (it starts with / and has no spaces)")
    return value


def _host(value):
    value = str(value)
    if not value or any(c.isspace() or c in "/\\" for c in value):
        raise ValueError(f"{value!r} is not a host name")
    return value


def _codes(value):
    """`200`, `200-299`, `200,301-302` (or space-separated, as keepalived's status_code):
    a tuple of (low, high) ranges, both ends in."""
    if isinstance(value, tuple):
        return value
    ranges = []
    for part in str(value).replace(",", " ").split() or [""]:
        low, _, high = part.strip().partition("-")
        try:
            lo, hi = int(low), int(high or low)
        except ValueError:
            raise ValueError(f"{value!r} is not a status code, a range or a list of them "
                             "(200, 200-299, 200,301-302)") from None
        if not 100 <= lo <= hi <= 599:
            raise ValueError(f"{part.strip()!r} is not an HTTP status code (100-599)")
        ranges.append((lo, hi))
    return tuple(ranges)


def _codes_text(ranges):
    return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)


def _regex(value):
    if isinstance(value, re.Pattern):
        return value
    try:
        return re.compile(str(value))
    except re.error as e:
        raise ValueError(f"regex {value!r} does not compile: {e}") from None


def _digest(value):
    value = str(value).lower()
    if not re.fullmatch(r"[0-9a-f]{32}", value):
        raise ValueError(f"{value!r} is not an MD5 digest (32 hex digits, as genhash prints)")
    return value


def _hex(value):
    if isinstance(value, bytes):
        return value
    try:
        return bytes.fromhex(str(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a hex string (as keepalived's payload)") from None


def _reply(value):
    """`any`: a reply is required, whatever it holds; hex: what the reply must hold."""
    return value if value == "any" else _hex(value)


def _command(value):
    argv = tuple(shlex.split(value) if isinstance(value, str) else value)
    if not argv:
        raise ValueError("the command is empty")
    if shutil.which(argv[0]) is None:
        raise ValueError(f"{argv[0]!r} is not an executable program")
    return argv


# A flag's words, as keepalived's <BOOL>
FLAG_TRUE = ("1", "yes", "true", "on")
FLAG_FALSE = ("0", "no", "false", "off")


def _flag(value):
    if isinstance(value, bool):
        return value
    if str(value).lower() in FLAG_TRUE:
        return True
    if str(value).lower() in FLAG_FALSE:
        return False
    raise ValueError(f"{value!r} is not yes or no")


SECONDS = Type("SECONDS", _seconds, lambda s: f"{s:g}")
PORT = Type("PORT", _port)
IPV4 = Type("A.B.C.D", _ipv4)
PATH = Type("PATH", _path)
HOST = Type("HOST", _host)
CODES = Type("CODES", _codes, _codes_text)
REGEX = Type("REGEX", _regex, lambda r: r.pattern)
DIGEST = Type("MD5", _digest)
HEX = Type("HEX", _hex, bytes.hex)
REPLY = Type("HEX|any", _reply, lambda r: r if r == "any" else r.hex())
COMMAND = Type("COMMAND", _command, shlex.join)
FLAG = Type("FLAG", _flag, lambda b: FLAG_TRUE[1] if b else FLAG_FALSE[1])

# Every checker takes these (keepalived's connect_port, bindto/connect_ip's source side,
# connect_timeout); port None: the real server's own port.
COMMON = (
    Setting("port", PORT, None, "port to probe (default: the real server's port)"),
    Setting("source", IPV4, None, "local address the probe leaves from (bound before connecting)"),
    Setting("timeout", SECONDS, 1.0, "seconds a probe may take before it counts as failed"),
)


def parse(kind: str, settings: tuple[Setting, ...], given: dict[str, Any]) -> dict[str, Any]:
    """Every setting's value: the given ones parsed, the others their defaults. A name
    the checker does not take, or a value its type refuses, is a CommandError."""
    known = {s.name: s for s in settings}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise CommandError(f"{kind} check: unknown setting {unknown[0]!r} "
                           f"(it takes {', '.join(known)})")
    values = {}
    for name, setting in known.items():
        if name in given and given[name] is not None:
            try:
                values[name] = setting.type.parse(given[name])
            except ValueError as e:
                raise CommandError(f"{kind} check: {name}: {e}") from None
        else:
            values[name] = setting.default
    return values
