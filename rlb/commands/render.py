"""Output filters after `|` (`include`, `exclude`, `begin`, `section`, `count`, `json`): split
off, checked, applied."""
from __future__ import annotations

import json
import re

from rlb.model.model import CommandError

try:                                    # the regular-expression parser, moved in 3.11
    from re import _constants as _sre
    from re import _parser as _sre_parse
except ImportError:                     # pragma: no cover
    import sre_constants as _sre
    import sre_parse as _sre_parse

_WS = " \t\r\n\f\v"
MAX_REGEX = 256
MAX_REPEATS = 4
_REPEATS = (_sre.MAX_REPEAT, _sre.MIN_REPEAT) + ((_sre.POSSESSIVE_REPEAT,)
                                                 if hasattr(_sre, "POSSESSIVE_REPEAT") else ())

# What must never reach a terminal as it is: C0 controls but newline and tab, DEL, C1
# controls (U+0080-U+009F: CSI is U+009B) and lone surrogates (undecodable bytes).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(text: str) -> str:
    """Text as rlb prints it: each control character written as its escape (`\\x1b`,
    `\\x07`), so that no line a user typed, nor anything else, can drive the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                        else f"\\u{ord(m.group()):04x}", text)


def split_pipes(line: str, partial: bool = False) -> tuple[str, list[tuple[int, str]]]:
    """-> (the command, [(offset, filter text), ...]). A `|` splits when it is a token of
    its own outside "quotes" (the grammar's quoting: a quote opens a token, backslash
    escapes); `a|b` stays one word. partial: a `|` at the very end is still being typed."""
    if line.lstrip(_WS)[:1] in ("!", "#"):
        return line, []                 # a comment: nothing in it is a filter
    cuts, i, n, fresh, quoted = [], 0, len(line), True, False
    while i < n:
        c = line[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c in _WS:
            fresh = True
            i += 1
            continue
        elif fresh and c == '"':
            quoted = True
        elif fresh and c == "|" and (line[i + 1:i + 2] in _WS if i + 1 < n else not partial):
            cuts.append(i)
        fresh = False
        i += 1
    bounds = [-1] + cuts + [n]
    parts = [(a + 1, line[a + 1:b]) for a, b in zip(bounds, bounds[1:])]
    return parts[0][1], parts[1:]


def _risky(pattern, inside: bool) -> int:
    """Count of unbounded repeats; -1 when a repeat holds a repeat or an alternation,
    the shapes whose backtracking can take exponential time."""
    count = 0
    for op, av in pattern:
        subs = ()
        if op in _REPEATS:
            lo, hi, sub = av
            many = hi == _sre.MAXREPEAT or hi > 1
            if inside and many:
                return -1
            count += many
            found = _risky(sub, inside or many)
            if found < 0:
                return -1
            count += found
            continue
        if op is _sre.BRANCH:
            if inside:
                return -1
            subs = av[1]
        elif op is _sre.SUBPATTERN:
            subs = (av[-1],)
        elif op in (_sre.ASSERT, _sre.ASSERT_NOT):
            subs = (av[1],)
        elif op is getattr(_sre, "ATOMIC_GROUP", None):
            subs = (av,)
        elif op is _sre.GROUPREF_EXISTS:
            subs = tuple(s for s in av[1:] if s is not None)
        for sub in subs:
            found = _risky(sub, inside)
            if found < 0:
                return -1
            count += found
    return count


def compile_filter(text: str) -> re.Pattern:
    """A filter's regular expression. Filters run inside the daemon (the ssh shell) and
    Python's re has no time limit, so shapes that can backtrack for ever are refused."""
    if len(text) > MAX_REGEX:
        raise CommandError(f"regular expression longer than {MAX_REGEX} characters")
    try:
        rx = re.compile(text)
        risk = _risky(_sre_parse.parse(text), False)
    except (re.error, RecursionError, OverflowError) as err:
        raise CommandError(f"bad regular expression: {err}") from None
    if risk < 0 or risk > MAX_REPEATS:
        raise CommandError("regular expression too costly: no repetition of a group that "
                           f"repeats or has alternatives, at most {MAX_REPEATS} unbounded repeats")
    return rx


def grep(text: str, regex: str, keep: bool) -> str:
    """The lines of text that match (keep) or do not match the expression."""
    rx = compile_filter(regex)
    return "\n".join(line for line in text.splitlines() if bool(rx.search(line)) == keep)


def begin(text: str, regex: str) -> str:
    """The lines from the first one that matches on (IOS's `| begin`)."""
    rx = compile_filter(regex)
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if rx.search(line)), len(lines))
    return "\n".join(lines[first:])


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def section(text: str, regex: str) -> str:
    """Each line that matches with the lines indented under it (IOS's `| section`): a
    matching `interface dpdk0` brings its ` ip address ...` lines."""
    rx = compile_filter(regex)
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        if not rx.search(lines[i]):
            i += 1
            continue
        depth, j = _indent(lines[i]), i + 1
        while j < len(lines) and lines[j].strip() and _indent(lines[j]) > depth:
            j += 1
        out += lines[i:j]
        i = j
    return "\n".join(out)


def count(text: str, regex: str | None = None) -> int:
    """The number of lines (that match the expression, when one is given)."""
    lines = text.splitlines()
    if regex is None:
        return len(lines)
    rx = compile_filter(regex)
    return sum(1 for line in lines if rx.search(line))


def as_json(data) -> str:
    """Stable JSON of a reply's data: sorted keys, two-space indent, str() for the rest."""
    return json.dumps(data, indent=2, sort_keys=True, default=str)
