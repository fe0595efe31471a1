"""No package of rlb imports one above it: every import of every module under rlb/, at
the top or inside a function (and every cimport or import of the Cython sources), is
checked against the layer order below."""
import ast
import re
import sys
from pathlib import Path

import rlb

RLB = Path(rlb.__file__).resolve().parent

# Low to high. A module may import its own layer and those below it. A name not listed
# (a new top-level module or package) fails until it is given a layer.
LAYERS = [
    {"rlb.core", "rlb.logs"},
    {"rlb.errors", "rlb.netlink", "rlb.child"},
    {"rlb.sched", "rlb.modes", "rlb.toa", "rlb.uoa"},
    {"rlb.plugins"},
    {"rlb.model"},
    {"rlb.health", "rlb.ops.capture"},
    {"rlb.commands"},
    {"rlb.control"},
    {"rlb.shell"},
    {"rlb.daemon", "rlb.cli", "rlb.__main__", "rlb.lab", "rlb.routing", "rlb.ha",
     "rlb.ops"},
]
LEVEL = {name: i for i, names in enumerate(LAYERS) for name in names}


def layer(module: str) -> int | None:
    """The layer of a dotted name: that of its longest listed prefix (rlb.model.services
    is rlb.model's)."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in LEVEL:
            return LEVEL[".".join(parts[:n])]
    return None


def module_name(path: Path) -> str:
    rel = path.relative_to(RLB.parent)
    rel = rel.with_name(rel.name.split(".")[0])
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


# Cython: `from rlb.x cimport y`, `cimport rlb.x`, and the Python forms, on any line
CY_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+c?import\b|c?import\s+([\w.]+))")


def cython_imports(path: Path):
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        m = CY_IMPORT.match(line.split("#")[0])
        if m:
            yield lineno, m.group(1) or m.group(2)


def imports(path: Path):
    """(line, imported module) for every import in the file, wherever it stands."""
    if path.suffix in (".pyx", ".pxd"):
        yield from cython_imports(path)
        return
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:                      # relative: resolve against the package
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            # `from rlb import plugins` imports rlb.plugins: judge each name it takes
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield node.lineno, full if layer(full) is not None and base == "rlb" else base


def offences():
    found = []
    for path in sorted(p for ext in ("py", "pyx", "pxd") for p in RLB.rglob(f"*.{ext}")):
        name = module_name(path)
        if name == "rlb":
            continue
        own = layer(name)
        if own is None:
            found.append(f"{path.relative_to(RLB.parent)}: {name} has no layer in LAYERS")
            continue
        for lineno, target in sorted(set(imports(path))):
            if not target.startswith("rlb."):       # the bare package rlb holds nothing
                continue
            theirs = layer(target)
            if theirs is None or theirs > own:
                found.append(f"{path.relative_to(RLB.parent)}:{lineno}: {name} imports "
                             f"{target}" + (" (no layer)" if theirs is None else " (above it)"))
    return found


def test_no_package_imports_one_above_it():
    found = offences()
    assert not found, "imports against the layer order:\n" + "\n".join(found)


def test_the_check_sees_function_level_imports(tmp_path, monkeypatch):
    """The walk finds an import inside a function, and an upward one is an offence."""
    src = tmp_path / "rlb" / "model" / "probe.py"
    src.parent.mkdir(parents=True)
    src.write_text('"""probe"""\ndef f():\n    from rlb.control import server\n')
    monkeypatch.setattr(sys.modules[__name__], "RLB", tmp_path / "rlb")
    (src.parent / "probe_fast.pyx").write_text("cdef f():\n    from rlb.shell cimport repl\n")
    assert offences() == ["rlb/model/probe.py:3: rlb.model.probe imports "
                          "rlb.control (above it)",
                          "rlb/model/probe_fast.pyx:2: rlb.model.probe_fast imports "
                          "rlb.shell (above it)"]


def test_every_layer_is_a_real_module():
    for name in LEVEL:
        rel = Path(*name.split(".")[1:])
        assert ((RLB / rel).is_dir() or (RLB / rel).with_suffix(".py").exists()
                or any(RLB.glob(f"{rel}*.so"))), f"{name} in LAYERS does not exist"
