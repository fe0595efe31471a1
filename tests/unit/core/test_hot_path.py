"""The packet path compiles to C with no Python object in it (STYLE.md: nogil hot path).

Reads the C that Cython generated (made by `make setup`) for rlb.core.worker and for
every compiled plugin the registry holds (each mode's <package>.fast, the built-in
schedulers), and checks that no function on the per-packet path refers to the Python
C API. A plugin's functions are its `noexcept nogil` ones, read from its .pyx, and those
of rlb/core/xmit.pxd that it compiles in.
"""
import re
from pathlib import Path

import pytest

from rlb import plugins

ROOT = Path(__file__).resolve().parents[3]
C_FILE = ROOT / "rlb" / "core" / "worker.c"      # the worker loop and all it inlines
SHARED = ROOT / "rlb" / "core" / "xmit.pxd"      # the modes' shared helpers
HOT = ["worker_main", "frame_input", "ipv4_input", "arp_input", "icmp_echo", "icmp_error",
       "ipv4_forward", "neigh_output", "neigh_timer", "neigh_probe", "neigh_share", "apply_msg",
       "tx_port", "tx_kni", "tx_flush", "neigh_confirm", "arp_send", "neigh_insert",
       "neigh_remove", "neigh_find", "flush_all", "l4_check", "lb_input", "svc_apply",
       "dest_apply", "conn_dump", "zero_counters", "kni_output", "probe_output", "probe_lport"]
# a C function Cython writes from `cdef [inline] TYPE [*]NAME(ARGS) noexcept nogil:`
NOGIL_DEF = re.compile(r"^cdef (inline )?[\w ]+?[ *](\w+)\(([^()]|\([^()]*\))*\)\s*noexcept nogil:",
                       re.M)


# C integer types Cython names after Python's; no object behind them
NOT_PYTHON = {"Py_ssize_t"}


def python_refs(text):
    return set(re.findall(r"\b(Py\w+|__Pyx_\w+)\b", text)) - NOT_PYTHON


def find(c, name):
    return re.search(r"\n(?:static|int|void)[^\n;]*__pyx_f_[0-9A-Za-z_]*_" + name +
                     r"\([^;{]*\)\s*\{", c)


def body(c, name):
    m = find(c, name)
    assert m, f"{name} not found in generated C"
    depth, i = 1, m.end()
    while depth:
        depth += {"{": 1, "}": -1}.get(c[i], 0)
        i += 1
    return re.sub(r"/\*.*?\*/", "", c[m.end():i], flags=re.S)


def compiled_module(ops) -> str:
    """The module an `ops` callable is C of: rlb.modes.Compiled names it, a function of
    a Cython module is its own."""
    return getattr(ops, "module", None) or ops.__module__


def plugin_modules() -> set[str]:
    """The built-in compiled plugins, from the registry: the modes' and schedulers'."""
    items = list(plugins.modes().values()) + list(plugins.schedulers().values())
    names = {compiled_module(x.ops) for x in items if x.ops is not None}
    return {n for n in names if n.startswith("rlb.")}


def nogil_functions(pyx: Path):
    """(name, inline) of each `noexcept nogil` function defined in a .pyx or .pxd."""
    return [(m.group(2), bool(m.group(1))) for m in NOGIL_DEF.finditer(pyx.read_text())]


def plugin_functions():
    for module in sorted(plugin_modules()):
        src = ROOT / (module.replace(".", "/") + ".pyx")
        c = (ROOT / (module.replace(".", "/") + ".c")).read_text()
        yield module, [(n, i) for n, i in nogil_functions(src)]
        # the shared helpers that this module compiles in (an inline one not used by
        # it Cython leaves out)
        yield module, [(n, True) for n, _ in nogil_functions(SHARED) if find(c, n)]


def test_every_mode_package_is_registered_with_its_fast_path():
    """The layout and the registry agree: each rlb/modes/<mode>/fast.pyx is the C of a
    registered mode, and each built-in mode's C is its package's fast.pyx."""
    layout = {".".join(p.relative_to(ROOT).with_suffix("").parts)
              for p in (ROOT / "rlb" / "modes").glob("*/fast.pyx")}
    registry = {compiled_module(m.ops) for m in plugins.modes().values()
                if m.ops is not None and compiled_module(m.ops).startswith("rlb.modes.")}
    assert layout and layout == registry


def test_the_plugins_have_packet_functions():
    """The scan sees what it checks: every compiled plugin has some, FNAT its TOA."""
    found = {}
    for module, fns in plugin_functions():
        found.setdefault(module, set()).update(n for n, _ in fns)
    assert {"toa_insert", "uoa_insert", "rewrite", "route_out"} <= found["rlb.modes.fnat.fast"]
    assert "sched_rr" in found["rlb.sched._builtin"]
    assert all(found.values()) and set(found) == plugin_modules()


@pytest.mark.parametrize("name", HOT)
def test_no_python_on_the_packet_path(name):
    assert C_FILE.exists(), "build first: make setup"
    refs = python_refs(body(C_FILE.read_text(), name))
    assert not refs, f"{name} touches Python: {sorted(refs)}"


def test_the_worker_loop_calls_no_other_extension_module():
    """The per-packet path is one module: a C function cimported from another extension
    is an indirect call through a pointer set at import (only the plugins' ops are)."""
    assert C_FILE.exists(), "build first: make setup"
    assert not re.search(r"__Pyx_ImportFunction\w*\(", C_FILE.read_text())


@pytest.mark.parametrize("module", sorted(plugin_modules()))
def test_no_python_in_the_plugins_c(module):
    c_file = ROOT / (module.replace(".", "/") + ".c")
    assert c_file.exists(), "build first: make setup"
    c = c_file.read_text()
    touched = {}
    for mod, fns in plugin_functions():
        if mod != module:
            continue
        for name, inline in fns:
            if inline and not find(c, name):
                continue            # an inline function nothing here calls: not compiled
            refs = python_refs(body(c, name))
            if refs:
                touched[name] = sorted(refs)
    assert not touched, f"{module} touches Python: {touched}"
