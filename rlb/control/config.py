"""Configuration files and command batches: the command grammar, applied all or nothing.

A file is first run against a scratch model (no data plane) so that a bad line
stops everything with FILE:LINE: reason before any change is made.
"""
from __future__ import annotations

import functools
import inspect

from rlb.control.machinery import CONTROL
from rlb.errors import CommandError, ConfigError  # noqa: F401  (ConfigError: its home is rlb.errors)
from rlb.model.model import Model
from rlb.commands.base import Context, Reply, g
from rlb.commands.grammar import ParseError

# Files run in configuration mode: its router-style commands, and through its parent
# the dpip and ipvsadm lines.
TOP = "config"


def run(ctx: Context, line: str) -> Reply:
    """Parse one line in the context's node and run its handler with the bindings it
    names (keywords it does not care about are not passed)."""
    m = _parse_up(ctx, line)
    if m is None:
        return Reply()
    ctx.control = ctx.control or CONTROL
    wanted = handler_params(m.command.handler)
    return m.command.handler(ctx, **{k: v for k, v in m.args.items() if k in wanted}) or Reply()


def _parse_up(ctx: Context, line: str):
    """Parse in the current node; a line unknown there is tried in the parent nodes and,
    if one takes it, the session moves there (as in vtysh). When none does, the error is
    the one that got furthest into the line."""
    best = None
    for node in g.ancestors(ctx.node):
        try:
            m = g.parse(line, node=node)
        except ParseError as err:
            if best is None or err.position > best.position:
                best = err
            continue
        ctx.node = node
        return m
    raise best


@functools.cache
class _Every(frozenset):
    """What a handler taking **values wants: every binding of its line."""

    def __contains__(self, item):
        return True


def handler_params(handler) -> frozenset:
    params = list(inspect.signature(handler).parameters.values())[1:]
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return _Every()
    return frozenset(p.name for p in params)


def run_lines(ctx: Context, lines, source: str = "<input>") -> list[Reply]:
    """Run numbered lines as a config file: an indented line belongs to the section
    opened above it (e.g. `dataplane`), `!` or an unindented line closes it. A line is
    (number, text), or (file, number, text) when it came from another file (a
    keepalived.conf translated: its errors name that file's line)."""
    replies, start = [], ctx.node
    for entry in lines:
        where, (lineno, text) = (entry[0], entry[1:]) if len(entry) == 3 else (source, entry)
        stripped = text.strip()
        if not stripped or stripped.startswith(("#", "!")):
            if stripped.startswith("!"):
                ctx.node = TOP
            continue
        if not text[:1].isspace():
            ctx.node, ctx.section = TOP, None
        try:
            replies.append(run(ctx, stripped))
        except ParseError as err:
            raise ConfigError(f"{where}:{lineno}: {_one_line(err)}") from None
        except CommandError as err:
            raise ConfigError(f"{where}:{lineno}: {err}") from None
        except Exception as err:                 # a bug, but still say where
            raise ConfigError(f"{where}:{lineno}: internal error: {err!r}") from err
    ctx.node, ctx.section = start, None
    return replies


def _one_line(err: ParseError) -> str:
    first = str(err).splitlines()[0].lstrip("% ").replace(" detected at '^' marker", "")
    expected = ", ".join(tok for tok, _ in (err.expected or [])[:8])
    where = f" at column {err.position + 1}" if err.position is not None else ""
    return f"{first}{where}" + (f" (expected: {expected})" if expected else "")


def read_file(path: str) -> list[tuple[int, str]]:
    with open(path, encoding="utf-8") as f:
        return [(i, line.rstrip("\n")) for i, line in enumerate(f, 1)]


def check(lines, source: str) -> Model:
    """Validate a whole file against a fresh model; returns that model (settings, ports)."""
    model = Model()
    run_lines(Context(model, node=TOP), lines, source)
    return model
