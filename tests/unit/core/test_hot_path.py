"""The packet path compiles to C with no Python object in it (STYLE.md: nogil hot path).

Reads the C that Cython generated for rlb.core.worker (made by `make setup`) and
checks that no function on the per-packet path refers to the Python C API.
"""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
C_FILE = ROOT / "rlb" / "core" / "worker.c"      # the worker loop and all it inlines
# the C the workers call in the plugins (modes, schedulers)
PLUGINS = {
    "rlb/modes/_fnat.c": ("fnat_conn_init", "fnat_xmit_in", "fnat_xmit_out", "fnat_conn_free",
                          "toa_insert", "uoa_insert"),
    "rlb/modes/_nat.c": ("nat_conn_init", "nat_xmit_in", "nat_xmit_out"),
    "rlb/modes/_snat.c": ("snat_conn_init", "snat_xmit_in", "snat_xmit_out"),
    "rlb/modes/_dr.c": ("dr_conn_init", "dr_xmit_in", "dr_xmit_out", "dr_conn_free"),
    "rlb/modes/_tunnel.c": ("tun_conn_init", "tun_xmit_in", "tun_xmit_out", "tun_conn_free"),
    "rlb/sched/_builtin.c": ("sched_rr", "sched_wrr", "sched_lc", "sched_wlc", "sched_fo",
                             "sched_table"),
}
HOT = ["worker_main", "frame_input", "ipv4_input", "arp_input", "icmp_echo", "icmp_error",
       "ipv4_forward", "neigh_output", "neigh_timer", "neigh_probe", "neigh_share", "apply_msg",
       "tx_port", "tx_kni", "tx_flush", "neigh_confirm", "arp_send", "neigh_insert",
       "neigh_remove", "neigh_find", "flush_all", "l4_check", "lb_input", "svc_apply",
       "dest_apply", "conn_dump", "zero_counters"]


# C integer types Cython names after Python's; no object behind them
NOT_PYTHON = {"Py_ssize_t"}


def python_refs(text):
    return set(re.findall(r"\b(Py\w+|__Pyx_\w+)\b", text)) - NOT_PYTHON


def body(c, name):
    m = re.search(r"\n(?:static|int|void)[^\n;]*__pyx_f_[0-9A-Za-z_]*_" + name + r"\([^;{]*\)\s*\{", c)
    assert m, f"{name} not found in generated C"
    depth, i = 1, m.end()
    while depth:
        depth += {"{": 1, "}": -1}.get(c[i], 0)
        i += 1
    return re.sub(r"/\*.*?\*/", "", c[m.end():i], flags=re.S)


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


@pytest.mark.parametrize("path,name", [(p, n) for p, ns in PLUGINS.items() for n in ns])
def test_no_python_in_the_plugins_c(path, name):
    c_file = ROOT / path
    assert c_file.exists(), "build first: make setup"
    refs = python_refs(body(c_file.read_text(), name))
    assert not refs, f"{path} {name} touches Python: {sorted(refs)}"
