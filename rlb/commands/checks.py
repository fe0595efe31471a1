"""A `check KIND ...` clause in the grammar: its definition derived from the checkers'
settings (rlb.health), and the conversions between a line's bindings and a Clause.

The clause is one part of a line, `real-server A:P ... check http path /health rise 2`
or a service's default `check tcp interval 1`: the settings of every kind are offered
after `check` (a new checker is a module in rlb/health/checkers and appears here), and
a setting the kind does not take is refused when the clause is made, with the list of
those it takes.
"""
from __future__ import annotations

from rlb.errors import CommandError
from rlb.health import checkers
from rlb.health.config import Clause, clause, clause_settings, quote

# every setting any kind takes, once, in the order a clause prints
SETTINGS = tuple({st.name: st for kind in checkers.CHECKERS
                  for st in clause_settings(kind)}.values())
# the maintenance words of a real server's line
DISABLED, ENABLED = "disabled", "enabled"


# the keyword help of a clause's words (rlb.commands.configure declares it before the
# real-server line that uses them)
WORDS = {word: text for word, text in (
    ("check", "How the real servers' health is checked"),
    (DISABLED, "Out of service (maintenance): weight 0, checks go on"),
    (ENABLED, "Back in service after maintenance"),
    *((c.name, c.help) for c in checkers.CHECKERS.values()),
    *((st.name, st.help) for st in SETTINGS))}


def bind(name: str) -> str:
    """A setting's binding in a definition: `slow-start` binds $slow_start."""
    return name.replace("-", "_")


# `check (tcp|http|...)$kind` then the settings in any order; each value a WORD (or a
# "quoted" one) that the setting's own type parses, so the reason of a refusal is its
CLAUSE_DEF = ("check (" + "|".join(checkers.CHECKERS) + ")$kind [{"
              + "|".join(f"{st.name} WORD${bind(st.name)}" for st in SETTINGS) + "}]")
# ...and as members of a set ({a|b|...}), where the settings may come in any order
CLAUSE_SET = ("check (" + "|".join(checkers.CHECKERS) + ")$kind|"
              + "|".join(f"{st.name} WORD${bind(st.name)}" for st in SETTINGS))


def values(bindings: dict) -> dict:
    """The settings a line gave, by setting name."""
    return {st.name: bindings[bind(st.name)] for st in SETTINGS
            if bindings.get(bind(st.name)) is not None}


def clause_of(kind: str | None, bindings: dict, have: Clause | None) -> Clause | None:
    """The clause a line makes: with a KIND, the whole clause from its settings; settings
    without a KIND change those of the clause there is (`real-server A:P rise 3`);
    neither: None (nothing to change)."""
    given = values(bindings)
    if kind is not None:
        return clause(kind, given)
    if not given:
        return None
    if have is None:
        raise CommandError(f"{', '.join(given)}: no check to set it on; give the checker "
                           f"first: check ({'|'.join(checkers.CHECKERS)}) ...")
    return clause(have.kind, {**dict(have.words()), **given})


class Quoted(str):
    """A value that prints quoted (running-config fills `{binding!s}` with str())."""

    def __str__(self):
        return quote(str.__str__(self))


def shown(c: Clause | None) -> dict:
    """The bindings that print a clause (none when there is no clause)."""
    if c is None:
        return {}
    return {"kind": c.kind, **{bind(name): Quoted(text) for name, text in c.words()}}
