"""What CI tested is what a user builds: every requirement has a tested range in
pyproject.toml and an exact version in constraints.txt, which `make setup` installs."""
import importlib.metadata
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CONSTRAINTS = ROOT / "constraints.txt"


def requirements(kind: str) -> list[Requirement]:
    if kind == "build":
        lines = PYPROJECT["build-system"]["requires"]
    elif kind == "runtime":
        lines = PYPROJECT["project"]["dependencies"]
    else:
        lines = [r for extra in PYPROJECT["project"]["optional-dependencies"].values()
                 for r in extra]
    return [Requirement(line) for line in lines]


ALL = requirements("build") + requirements("runtime") + requirements("optional")


def pins() -> dict[str, Version]:
    out = {}
    for n, line in enumerate(CONSTRAINTS.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9._-]+)==([0-9][0-9A-Za-z.+!-]*)", line)
        assert m, f"constraints.txt:{n}: not NAME==VERSION: {line!r}"
        name = canonicalize_name(m[1])
        assert name not in out, f"constraints.txt:{n}: {m[1]} pinned twice"
        out[name] = Version(m[2])
    return out


def test_every_requirement_is_bounded_above():
    for req in ALL:
        ops = {spec.operator for spec in req.specifier}
        assert ops & {"<", "<=", "==", "~=", "==="}, f"{req}: no upper bound"
        assert ops & {">=", ">", "==", "~=", "==="}, f"{req}: no lower bound"


def test_every_requirement_is_pinned_inside_its_range():
    pinned = pins()
    for req in ALL:
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} is not pinned in constraints.txt"
        assert req.specifier.contains(pinned[name], prereleases=True), (
            f"constraints.txt pins {req.name}=={pinned[name]}, outside pyproject's {req}")


def test_the_tested_venv_has_exactly_the_pins():
    """What is installed around this very test run (the venv `make setup` made): every
    installed distribution that constraints.txt names has its pinned version, and every
    one the project pulls in is named there."""
    pinned = pins()
    build = {canonicalize_name(r.name) for r in requirements("build")}
    installed = {canonicalize_name(d.metadata["Name"]): Version(d.version)
                 for d in importlib.metadata.distributions()}
    for name, version in pinned.items():
        if name in build and name not in {canonicalize_name(r.name) for r in
                                          requirements("runtime") + requirements("optional")}:
            continue                    # lives in the isolated build environment only
        assert installed.get(name) == version, f"{name}: installed {installed.get(name)}, " \
                                               f"pinned {version}"
    needed = _closure(["rlb[test]"], installed)
    unpinned = sorted(needed - set(pinned) - {"rlb"})
    assert not unpinned, f"installed for rlb but not in constraints.txt: {unpinned}"


def _closure(roots: list[str], installed: dict) -> set[str]:
    """rlb's dependencies as installed, followed transitively (markers honoured)."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in roots]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen or name not in installed:
            continue
        seen.add(name)
        for line in importlib.metadata.requires(req.name) or []:
            dep = Requirement(line)
            env = {"extra": next(iter(req.extras))} if req.extras else {"extra": ""}
            if dep.marker is None or dep.marker.evaluate(env):
                todo.append(dep)
    return seen


def test_make_installs_with_the_pins():
    text = (ROOT / "Makefile").read_text()
    installs = [line for line in text.splitlines() if "/bin/pip install" in line]
    assert installs
    for line in installs:
        assert "-c constraints.txt" in line or "$(PINS)" in line, line
    assert "PINS  := -c constraints.txt --build-constraint constraints.txt" in text
