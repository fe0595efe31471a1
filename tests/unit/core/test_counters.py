"""The counter table (rlb/core/counters.py) is one source: C enums and built modules agree."""
import re
from pathlib import Path

import pytest

from rlb.core import counters

ROOT = Path(__file__).resolve().parents[3]


def test_names_are_unique_and_well_formed():
    prefixes = [g.c_prefix for g in counters.GROUPS]
    assert len(set(prefixes)) == len(prefixes)
    for g in counters.GROUPS:
        names = g.names()
        assert len(set(names)) == len(names), g.name
        for c in g.counters:
            assert re.fullmatch(r"[a-z][a-z0-9_]*", c.name), c
            assert c.kind in ("counter", "gauge") and c.source in ("array", "field", "pmd"), c
            assert c.help, c


def test_generated_enums_number_the_array_slots_in_table_order():
    text = counters.pxi()
    for g in counters.GROUPS:
        slots = re.findall(rf"^    {g.c_prefix}(\w+) = (\d+)$", text, flags=re.M)
        want = [n.upper() for n in g.names("array")] + ["COUNT"] if g.names("array") else []
        assert [name for name, _ in slots] == want, g.name
        assert [int(v) for _, v in slots] == list(range(len(want)))   # COUNT: the slots


def test_the_build_used_this_table():
    """setup.py regenerates counters.pxi on every build: a stale one means the compiled
    modules count with another layout than the stats API reads (rebuild: make build)."""
    pxi = ROOT / "rlb" / "core" / "counters.pxi"
    assert pxi.exists(), "build first: make setup"
    assert pxi.read_text() == counters.pxi()
    pytest.importorskip("rlb.core.stats")       # it checks its enums' sizes when loaded



def test_before_anything_a_time_ago_is_never():
    """The passive check's times start as None (no answer yet), not 0 (just now)."""
    zero = counters.DEST.zero()
    assert list(zero) == list(counters.DEST.names())
    assert zero["answered_ago"] is None and zero["failed_ago"] is None
    assert zero["unanswered"] == zero["fails_in_row"] == zero["conns"] == 0
    assert all(v == 0 for v in counters.SVC.zero().values())
