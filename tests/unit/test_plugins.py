"""The plugin registry: built-ins, a third-party mode through the `rlb` entry-point
group, clashes and unknown hooks refused."""
import subprocess
import sys
import textwrap

import pluggy
import pytest

from rlb import plugins
from rlb.core import hookspecs
from rlb.modes import Mode


def test_builtins():
    modes = plugins.modes()
    assert modes["fnat"].flag == "-b" and modes["fnat"].display == "FullNat"
    assert modes["fnat"].needs_laddr and callable(modes["fnat"].ops)
    assert set(plugins.schedulers()) >= {"rr", "wrr", "lc", "wlc", "sh", "mh", "fo"}
    assert all(s.ops is not None for s in plugins.schedulers().values())


def test_capsules_have_the_names_the_core_checks():
    import ctypes
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    assert get_name(plugins.modes()["fnat"].ops()) == b"rlb.mode_ops_t"
    assert get_name(plugins.schedulers()["rr"].ops()) == b"rlb.sched_ops_t"


THIRD_PARTY = '''
from rlb.core.hookspecs import hookimpl
from rlb.modes import Mode

@hookimpl
def rlb_forwarding_modes():
    return [Mode(name="demo", flag="-X", long_flag="--demo", display="Demo")]
'''


def test_a_third_party_mode_arrives_through_the_entry_point_group(tmp_path):
    (tmp_path / "rlb_demo_mode.py").write_text(THIRD_PARTY)
    dist = tmp_path / "rlb_demo_mode-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: rlb-demo-mode\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[rlb]\ndemo = rlb_demo_mode\n")
    r = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import sys; sys.path.insert(0, sys.argv[1])
        from rlb import plugins
        print(sorted(plugins.modes()))"""), str(tmp_path)],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    names = eval(r.stdout)
    assert "demo" in names and "fnat" in names


def test_clashing_plugins_are_refused():
    a = Mode(name="x", flag="-b", long_flag="--x", display="X")
    with pytest.raises(plugins.PluginError, match="flag '-b'"):
        plugins._unique([plugins.modes()["fnat"], a], "forwarding mode", "name", "flag", "display")


def test_an_unknown_hook_is_an_error():
    class Bogus:
        @hookspecs.hookimpl
        def rlb_not_a_hook(self):
            return []

    pm = pluggy.PluginManager("rlb")
    pm.add_hookspecs(hookspecs)
    pm.register(Bogus())
    with pytest.raises(pluggy.PluginValidationError):
        pm.check_pending()
