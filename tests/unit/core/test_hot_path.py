"""The packet path compiles to C with no Python object in it (STYLE.md: nogil hot path).

Reads the C that Cython generated for rlb.core.dataplane (made by `make setup`) and
checks that no function on the per-packet path refers to the Python C API.
"""
import re
from pathlib import Path

import pytest

C_FILE = Path(__file__).resolve().parents[3] / "rlb" / "core" / "dataplane.c"
HOT = ["worker_main", "frame_input", "ipv4_input", "arp_input", "icmp_echo", "icmp_error",
       "ipv4_forward", "neigh_output", "neigh_timer", "neigh_probe", "neigh_share", "apply_msg",
       "tx_port", "tx_kni", "tx_flush", "neigh_confirm", "arp_send", "neigh_insert",
       "neigh_remove", "neigh_find", "flush_all"]


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
    refs = set(re.findall(r"\b(Py\w+|__Pyx_\w+)\b", body(C_FILE.read_text(), name)))
    assert not refs, f"{name} touches Python: {sorted(refs)}"
