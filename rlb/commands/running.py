"""The running configuration: the commands that rebuild a model, in router style.

`render(model)` gives stanzas: a head line and the indented lines of its section. Their
text is `show running-config`, `write memory`'s file and each commit kept on disk; run
through the grammar (rlb.control.config.run_lines) it rebuilds an equal model, which is
how a candidate configuration starts (rlb.control.commit).

Nothing here names a command: each configuration command declares how its state prints
(`show=`: the bindings of its lines; `opens=`: the section under it; `key=`: what names
its object, for the 3-way merge; `primary=`: its first line means something), and a
line is its definition filled in (rlb.commands.printing.unparse). The stanzas go in the
order of their `Shown.rank`, then of declaration; a section's lines in the order its
commands are declared. Only what differs from the defaults is written, as FRR does,
except the ports: they are the instance. The grammar is fixed once imported, so what
is read of it is kept.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

from rlb.model.model import Model
from rlb.commands.grammar import ParseError
from rlb.commands.printing import Shown, lead, name_of, unparse, unparse_each

HEADER = "! rlb running configuration"


class Stanza(NamedTuple):
    head: str
    body: tuple = ()


@dataclass
class Running:
    stanzas: list[Stanza]

    @property
    def text(self) -> str:
        return "\n".join(self.lines())

    def lines(self) -> list[str]:
        out = [HEADER, "!"]
        for st in self.stanzas:
            out.append(st.head)
            out += [f" {line}" for line in st.body]
            if st.body:
                out.append("!")
        out.append(_end())
        return out

    def numbered(self) -> list[tuple[int, str]]:
        return list(enumerate(self.lines(), 1))

    def canonical(self) -> frozenset:
        """What two configurations must share to be the same, whatever their order, but for
        what order means: the first line of a command declared `primary` (a port's first
        address: its ARP source)."""
        leads = _primary_leads()

        def first(st):
            return next((line for line in st.body if line.startswith(leads)
                         and getattr(_command(line, st.head), "primary", False)), None)
        return frozenset((st.head, frozenset(st.body), first(st)) for st in self.stanzas)

    def data(self) -> list[dict]:
        return [{"command": st.head, "section": list(st.body)} for st in self.stanzas]


@functools.cache
def _vocabulary():
    """The grammar and the node the text's top lines are read in (configuration mode):
    imported when first used, as the command modules import this one's users."""
    from rlb.commands.base import CONFIG, g
    return g, tuple(g.ancestors(CONFIG))


def _end() -> str:
    """The text's last line: the command that leaves configuration mode (Ctrl-Z's)."""
    from rlb.commands.base import CTRL_Z
    return CTRL_Z


@functools.cache
def _top() -> list:
    """The commands whose lines stand at the top of the text: configuration mode's, and
    those of the nodes above it."""
    g, nodes = _vocabulary()
    return [cmd for node in nodes for cmd in g.commands(node) if cmd.show]


@functools.cache
def _primary_leads() -> tuple:
    """The leading keywords of the commands declared `primary`: the lines canonical()
    reads (the rest of the text need not be parsed for it)."""
    g = _vocabulary()[0]
    leads = []
    for node in g.nodes:
        for cmd in g.commands(node):
            if cmd.primary:
                leads.append(" ".join(lead(cmd)) + " ")
    return tuple(leads)


def _shown(cmd, model, section) -> list[Shown]:
    return [s if isinstance(s, Shown) else Shown(s) for s in cmd.show(model, section)]


@functools.cache
def _section(node: str) -> tuple:
    """The commands whose lines print under a section's head, in declaration order."""
    return tuple(c for c in _vocabulary()[0].commands(node) if c.show)


def render(model: Model) -> Running:
    heads = [(s.rank, i, cmd, s) for i, cmd in enumerate(_top())
             for s in _shown(cmd, model, None)]
    stanzas = []
    for _, _, cmd, s in sorted(heads, key=lambda h: (h[0], h[1])):
        body = ()
        if cmd.opens is not None:
            body = tuple(line for c in _section(cmd.opens)
                         for line in unparse_each(c, c.show(model, s.section)))
            if not body and not s.bare:
                continue
        stanzas.append(Stanza(unparse(cmd, s.args), body))
    return Running(stanzas)


@functools.lru_cache(maxsize=8192)
def _parsed(line: str, head: str | None):
    """The command and bindings of a line of the text (of the section under `head`), or
    None for one that no printing command reads."""
    if head is None:
        return _parse(line, _vocabulary()[1])
    opener = _command(head, None)
    return _parse(line, (opener.opens,)) if opener is not None and opener.opens else None


def _parse(line: str, nodes) -> tuple | None:
    g = _vocabulary()[0]
    for node in nodes:
        try:
            m = g.parse(line, node)
        except ParseError:
            continue
        if m is not None and m.command.show is not None:
            return m.command, m.args
    return None


def _command(line: str, head: str | None):
    parsed = _parsed(line, head)
    return parsed[0] if parsed else None


def object_key(line: str, head: str | None = None) -> str:
    """What names the object a line of the text is (rlb.control.merge): printing.name_of
    of its command; a line that no printing command reads is named by all of it."""
    parsed = _parsed(line, head)
    if parsed is None and head is None:         # a section's line, its head not given
        sections = tuple(dict.fromkeys(c.opens for c in _top() if c.opens))
        parsed = _parse(line, sections)
    return line if parsed is None else name_of(*parsed)
