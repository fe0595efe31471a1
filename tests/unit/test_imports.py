"""Every module under rlb/ imports on its own in a fresh interpreter with warnings as
errors (`python -W error`): no DeprecationWarning, no import-order dependency."""
import glob
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import rlb

ROOT = Path(rlb.__file__).resolve().parent.parent

# In the child: import one module with every warning an error. A __main__ module runs
# its command line when imported, so it is imported with `--help` (argparse prints the
# usage and exits 0).
CHILD = r"""
import contextlib, importlib, io, sys, warnings
warnings.simplefilter("error")
name = sys.argv[1]
if name.endswith(".__main__"):
    sys.argv = [name, "--help"]
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            importlib.import_module(name)
        except SystemExit as e:
            if e.code not in (0, None):
                raise
else:
    importlib.import_module(name)
"""

WALK = r"""
import json, pkgutil, sys, warnings
warnings.simplefilter("error")
import rlb
errors = []
names = [m.name for m in pkgutil.walk_packages(rlb.__path__, "rlb.", onerror=errors.append)]
print(json.dumps({"names": names, "errors": errors}))
"""


def child_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.pop("PYTHONWARNINGS", None)
    return env


def python(*args):
    return subprocess.run([sys.executable, "-W", "error", *args], capture_output=True,
                          text=True, cwd=ROOT, env=child_env(), timeout=60)


def dataplane_built():
    return bool(glob.glob(str(ROOT / "rlb/core/dataplane*.so")))


def modules():
    """Every module found by walking the package (it imports the packages, not the
    modules, to find their sub-packages)."""
    return sorted(m.name for m in pkgutil.walk_packages(rlb.__path__, "rlb."))


def module_params():
    out = []
    for name in modules():
        out.append(pytest.param(name, id=name))    # extensions too: make setup builds them
    return out


def test_walk_finds_every_source_file_under_warnings_as_errors():
    r = python("-c", WALK)
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)
    assert found["errors"] == []
    files = set()
    for path in (ROOT / "rlb").rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        files.add(".".join(parts))
    files.discard("rlb")
    for pyx in (ROOT / "rlb").rglob("*.pyx"):       # Cython extensions, built by make setup
        files.add(".".join(pyx.relative_to(ROOT).with_suffix("").parts))
    assert set(found["names"]) == files


@pytest.mark.parametrize("name", module_params())
def test_module_imports_with_warnings_as_errors(name):
    r = python("-c", CHILD, name)
    assert r.returncode == 0, f"import {name} failed:\n{r.stderr}"
    assert r.stderr == "", r.stderr
