"""`update`: a stale candidate's changes merged onto the running configuration (3-way).

base   the running configuration the candidate was made from (`configure`),
ours   the candidate,
theirs the running configuration now (another session's commit, an exec-mode change,
       an automatic rollback).

The configuration is text (rlb.commands.running): stanzas, and the lines of a section.
Each stanza and each line is an object with a key, what names it (`real-server
192.168.100.2:80`, `scheduler`, `ip route 10.0.0.0/16`); its value is its text. An
object the candidate did not change is taken from the running configuration; one only
the candidate changed (added, removed, edited) is the candidate's; one both changed the
same way is that; one both changed differently is a conflict, unless it is a section
both kept, whose lines are then merged the same way.
"""
from __future__ import annotations

from rlb.commands.running import Running, Stanza
from rlb.commands.running import object_key as key


class Conflict(Exception):
    """Objects both sides changed differently: (where, candidate's, running's) each."""

    def __init__(self, items: list[tuple[str, str, str]]):
        super().__init__(f"{len(items)} conflict(s)")
        self.items = items


def merge(base: Running, ours: Running, theirs: Running) -> Running:
    """The candidate's changes from `base` made on `theirs`; Conflict when they overlap."""
    conflicts: list = []
    keyed = [{key(st.head): st for st in r.stanzas} for r in (base, ours, theirs)]
    order = _order([key(st.head) for st in ours.stanzas], [key(st.head) for st in theirs.stanzas])
    out = []
    for k in order:
        b, o, t = (d.get(k) for d in keyed)
        st = _stanza(k, b, o, t, conflicts)
        if st is not None:
            out.append(st)
    if conflicts:
        raise Conflict(conflicts)
    return Running(out)


def _pick(b, o, t):
    """-> (True, value) when one side's change (or none) decides, else (False, None)."""
    if o == b:
        return True, t
    if t == b or o == t:
        return True, o
    return False, None


def _stanza(k, b, o, t, conflicts):
    done, st = _pick(b, o, t)
    if done:
        return st
    if o is None or t is None or o.head != t.head or (b is not None and b.head != o.head):
        conflicts.append((k, _text(o), _text(t)))
        return o
    keyed = [{key(line, s.head): line for line in s.body} if s else {} for s in (b, o, t)]
    body = []
    for lk in _order([key(line, o.head) for line in o.body],
                     [key(line, t.head) for line in t.body]):
        lb, lo, lt = (d.get(lk) for d in keyed)
        done, line = _pick(lb, lo, lt)
        if not done:
            conflicts.append((f"{o.head} / {lk}", lo or "(removed)", lt or "(removed)"))
            line = lo
        if line is not None:
            body.append(line)
    return Stanza(o.head, tuple(body))


def _text(st) -> str:
    if st is None:
        return "(removed)"
    return "; ".join([st.head, *st.body])


def _order(ours: list, theirs: list) -> list:
    """Theirs' order, with what only ours has placed after what comes before it in ours:
    both are orders the text can be read in (rlb.commands.running.render)."""
    out = list(theirs)
    seen = set(out)
    for i, k in enumerate(ours):
        if k in seen:
            continue
        before = next((p for p in reversed(ours[:i]) if p in seen), None)
        out.insert(out.index(before) + 1 if before is not None else 0, k)
        seen.add(k)
    return out
