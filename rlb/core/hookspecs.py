"""rlb's plugin API: pluggy hook specifications, and only those (pytest's hookspec.py idea).

Built-in forwarding modes and schedulers are plugins like any third-party one: a
package adds its own through the `rlb` entry-point group. Every hook starts `rlb_`.
"""
import pluggy

hookspec = pluggy.HookspecMarker("rlb")
hookimpl = pluggy.HookimplMarker("rlb")


@hookspec
def rlb_forwarding_modes():
    """Return a list of `rlb.modes.Mode` this plugin provides.

    A Mode carries its name (`fnat`), its ipvsadm flag (`-b`), the name `ipvsadm -ln`
    shows (`FullNat`), whether it needs local addresses, validation of service and
    real-server settings against the model, and `ops()`: a PyCapsule named
    "rlb.mode_ops_t" holding a `mode_ops_t *` (rlb/core/types.pxd) whose C functions
    the workers call per packet. The capsule is read once, at registration. Its flags
    become `ipvsadm -a/-e` alternatives (with `help`); a module provides its modes as
    `rlb_forwarding_modes = rlb.modes.provides(MODE)`.
    """


@hookspec
def rlb_schedulers():
    """Return a list of `rlb.sched.Scheduler` this plugin provides.

    A Scheduler has a name (`rr`, `mh` ...), help text, and either `ops()` (a PyCapsule
    "rlb.sched_ops_t" holding a `sched_ops_t *` whose `select` picks a real server
    per new flow on the worker) or a table builder run in the control plane whose
    table the workers follow (source hash, Maglev, conhash's ring), or both. A
    Scheduler with `targets` (what it hashes: `--hash-target`) has its table built as
    `table(dests, target)`, else `table(dests)`.
    """
