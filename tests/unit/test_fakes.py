"""The unit tests' data plane fakes against the real compiled Engine: every fake is a
support.engine.FakeEngine, and each of its methods is an Engine method with its signature."""
import ast
import inspect
from pathlib import Path

import pytest

from rlb.core import dataplane
from support import engine

TESTS = Path(__file__).resolve().parents[1]


def test_the_compiled_engine_gives_its_signatures():
    """What the comparison reads: Cython built with binding, so inspect sees parameters."""
    sig = inspect.signature(dataplane.Engine.route_set)
    assert list(sig.parameters)[:4] == ["self", "index", "prefix", "plen"]
    assert sig.parameters["mtu"].default == 1500


def test_the_base_fake_is_the_engine_interface():
    assert engine.mismatches(engine.FakeEngine) == []


def fakes_in_tests():
    """(file, class name, base names) of every class in tests/ named like an engine."""
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Engine"):
                bases = [ast.unparse(b) for b in node.bases]
                yield path.relative_to(TESTS).as_posix(), node.name, bases


def test_every_engine_fake_derives_from_the_checked_one():
    """A fake Engine outside support/engine.py subclasses its FakeEngine, whose
    __init_subclass__ compares it with the real Engine when the test module loads."""
    found = list(fakes_in_tests())
    assert ("support/engine.py", "FakeEngine", []) in found
    loose = [f"{path}: class {name}({', '.join(bases)})" for path, name, bases in found
             if path != "support/engine.py"
             and not any(b.endswith("FakeEngine") for b in bases)]
    assert not loose, "fakes not held to the real Engine:\n" + "\n".join(loose)


def test_a_fake_unlike_the_engine_is_refused():
    with pytest.raises(TypeError, match=r"Engine has no push_everything"):
        type("Odd", (engine.FakeEngine,), {"push_everything": lambda self: None})
    with pytest.raises(TypeError, match=r"Engine has route_del\(self, index, prefix, plen\)"):
        type("Odd", (engine.FakeEngine,), {"route_del": lambda self, index, prefix: None})
    with pytest.raises(TypeError, match="dest_set"):      # a default that differs
        type("Odd", (engine.FakeEngine,), {
            "dest_set": lambda self, slot, *, svc, addr, port, mode, weight, u_threshold=1,
            l_threshold=0, available=True: None})
    with pytest.raises(TypeError, match="__getattr__"):
        type("Odd", (engine.FakeEngine,), {"__getattr__": lambda self, name: None})


def test_a_call_the_engine_would_refuse_fails_on_the_fake():
    fake = engine.FakeEngine()
    fake.route_set(0, 1, 24, port=1)
    assert fake.calls == [("route_set", (0, 1, 24), {"port": 1})]
    with pytest.raises(TypeError):
        fake.route_set(0, 1, 24, 1)                       # port is keyword-only
    with pytest.raises(TypeError):
        fake.dest_set(0, svc=0, addr=1, port=80, mode=0)  # weight missing
    fake.failing["svc_del"] = lambda slot: slot == 3
    fake.svc_del(2)
    with pytest.raises(RuntimeError, match="refused svc_del"):
        fake.svc_del(3)
