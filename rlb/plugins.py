"""The plugin manager: built-in modes and schedulers first, then the `rlb` entry points."""
from __future__ import annotations

import functools
import importlib

import pluggy

from rlb.core import hookspecs

# Imported and registered at start, like pytest's default_plugins.
BUILTIN = (
    "rlb.modes.fnat",
    "rlb.modes.nat",
    "rlb.modes.snat",
    "rlb.modes.dr",
    "rlb.modes.tunnel",
    "rlb.sched.builtin",
)


class PluginError(Exception):
    """A plugin is broken or clashes with another (same name or flag)."""


@functools.cache
def manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("rlb")
    pm.add_hookspecs(hookspecs)
    for name in BUILTIN:
        pm.register(importlib.import_module(name), name)
    pm.load_setuptools_entrypoints("rlb")
    pm.check_pending()          # an unknown rlb_ hook is an error, not silence
    return pm


def _unique(items, what, *keys):
    seen = {}
    for item in items:
        for key in keys:
            value = getattr(item, key)
            if value is None:
                continue
            if (key, value) in seen:
                raise PluginError(f"two {what} plugins claim {key} {value!r}: "
                                  f"{seen[key, value].__module__} and {type(item).__module__}")
            seen[key, value] = item
    return items


@functools.cache
def modes() -> dict:
    items = [m for ms in manager().hook.rlb_forwarding_modes() for m in ms]
    return {m.name: m for m in _unique(items, "forwarding mode", "name", "flag", "display")}


@functools.cache
def schedulers() -> dict:
    items = [s for ss in manager().hook.rlb_schedulers() for s in ss]
    return {s.name: s for s in _unique(items, "scheduler", "name")}
