"""rlb.modes.fnat: the descriptor the registry holds, and its C behind the capsule."""
import ctypes

from rlb import plugins
from rlb.modes.fnat import FNAT


def test_fnat_needs_local_addresses_and_hands_over_its_capsule():
    assert plugins.modes()["fnat"] is FNAT
    assert FNAT.needs_laddr and not FNAT.steer_by_client and not FNAT.match_only
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    assert get_name(FNAT.ops()) == b"rlb.mode_ops_t"
    assert FNAT.ops.module == "rlb.modes.fnat.fast"
