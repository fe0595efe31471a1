"""What the command handlers use of rlb.control, handed to them on the Context.

The commands sit below control (control runs them; they do not import it), yet
configuration mode's `configure`, `commit`, `rollback`, `update`, `rlb -f` and `do`
need candidates, commits, the three-way merge and the exec dispatcher. Where control
calls into the commands (rlb.control.config.run, rlb.control.server._call and load)
it sets `ctx.control` to CONTROL when the session has none.
"""
from __future__ import annotations

from rlb.control import commit, merge


class Control:
    """The commit machinery, as a handler reaches it: `ctx.control.apply(...)`."""
    Candidate = commit.Candidate
    Conflict = merge.Conflict
    candidate_model = staticmethod(commit.candidate_model)
    apply = staticmethod(commit.apply)
    diff = staticmethod(commit.diff)
    merge = staticmethod(merge.merge)

    @staticmethod
    def run_lines(ctx, lines, source: str = "<input>"):
        from rlb.control.config import run_lines    # it imports this module
        return run_lines(ctx, lines, source)

    @staticmethod
    def run_exec(ctx, line: str):
        from rlb.control.server import run_exec     # it imports this module
        return run_exec(ctx, line)


CONTROL = Control()
