"""The commits of an instance on disk (who, how, when, the text) for `rollback N`, a
pending `commit confirmed`, and the startup file written atomically (`write memory`).

Every change of the running configuration is a commit here: a `commit` of configuration
mode, a file (`rlb -f`), an automatic rollback, and the lines applied at once in exec
mode (`dpip`, `ipvsadm` in lb#, `rlb -c`, ssh).
"""
from __future__ import annotations

import asyncio
import glob
import logging
import os
import re
import time

from rlb.model.model import CommandError, Model
from rlb.commands.running import Running, render

log = logging.getLogger("rlb.commit")
KEEP = 50                                   # commits kept on disk (Junos keeps 50 too)
BATCH_IDLE = 0.5                            # s: exec-mode lines closer are one commit
_COMMIT_FILE = re.compile(r"commit-([0-9]{6})\.conf")
_META = re.compile(r"! commit (?P<id>[0-9]+) by (?P<user>\S+)(?: via (?P<source>.+?))? "
                   r"at (?P<time>[0-9T:-]+)(?: - (?P<comment>.*))?")


def now() -> str:
    """When, as the history and the conflict messages say it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S")


class Store:
    """The commits of one instance on disk, a pending `commit confirmed`, and the startup
    configuration file that `write memory` replaces."""

    def __init__(self, directory: str, startup: str | None = None):
        self.dir = directory
        self.startup = startup
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.pending: dict | None = None        # {"previous": Running, "timer", "deadline", "user"}
        self.last_change: tuple | None = None   # (user, time, what) of the last change
        self.failed: dict | None = None         # an automatic rollback that did not apply
        self._latest: list[str] | None = None   # the newest commit's lines, once read
        self._open: dict | None = None          # exec-mode lines not yet a commit (changed)
        self.sessions: set = set()              # each open session's way to be told (notify)

    # -- history
    def _files(self) -> list[tuple[int, str]]:
        out = []
        for path in glob.glob(os.path.join(self.dir, "commit-*.conf")):
            m = _COMMIT_FILE.fullmatch(os.path.basename(path))
            if m:
                out.append((int(m.group(1)), path))
        return sorted(out, reverse=True)

    def record(self, running: Running, user: str, comment: str = "", via: str = "") -> int:
        """Keep `running` as the newest commit; its number (one number per commit, for
        good: `rollback N` counts back from the newest)."""
        files = self._files()
        ident = files[0][0] + 1 if files else 1
        stamp = now()
        comment = " ".join(comment.split())     # one line, whatever was typed
        head = f"! commit {ident} by {user}" + (f" via {via}" if via else "") + \
            f" at {stamp}" + (f" - {comment}" if comment else "")
        text = "\n".join([head, *running.lines()]) + "\n"
        atomic_write(os.path.join(self.dir, f"commit-{ident:06d}.conf"), text, keep=False)
        for _, path in files[KEEP - 1:]:
            os.unlink(path)
        self._latest = running.lines()
        self.last_change = (user, stamp, f"commit {ident}")
        return ident

    def changed(self, running: Model, owner, user: str, via: str, line: str) -> None:
        """An exec-mode change (a `dpip` or `ipvsadm` line in lb#, `rlb -c`, ssh) is a
        commit of its own, so that `rollback 1` undoes the last change whatever made it.
        The lines one session sends without a pause (BATCH_IDLE: an `rlb -c` batch, a
        script, a paste) are one commit, made when the batch ends: its session stops or
        pauses, another one changes something, or the history is read."""
        if self._open is not None and self._open["owner"] is not owner:
            self.flush()
        if self._open is None:
            self._open = {"owner": owner, "model": running, "user": user, "how": via,
                          "lines": [], "timer": None}
        batch = self._open
        batch["lines"].append(line)
        if batch["timer"] is not None:
            batch["timer"].cancel()
        try:
            batch["timer"] = asyncio.get_running_loop().call_later(BATCH_IDLE, self.flush)
        except RuntimeError:        # no event loop (a test, a tool): one line, one commit
            self.flush()

    def settle(self, owner) -> None:
        """Before a change by `owner`: another session's open batch is its own commit."""
        if self._open is not None and self._open["owner"] is not owner:
            self.flush()

    def flush(self, owner=None) -> int | None:
        """The open exec-mode batch (of `owner` only, if given) as a commit; None when
        there is none, or when the running configuration did not move."""
        batch = self._open
        if batch is None or owner is not None and batch["owner"] is not owner:
            return None
        self._open = None
        if batch["timer"] is not None:
            batch["timer"].cancel()
        running = render(batch["model"])
        if running.lines() == self.latest():
            return None
        lines = batch["lines"]
        comment = "; ".join(lines)
        if len(comment) > 160:
            comment = f"{lines[0]} (+{len(lines) - 1} more line(s))"
        try:
            ident = self.record(running, batch["user"], comment, batch["how"])
        except OSError as err:      # applied all the same: said in the log
            log.error("%s: `%s` applied, not kept in the history: %s", batch["user"],
                      comment, err)
            return None
        self.last_change = (batch["user"], self.last_change[1], f"commit {ident} (`{comment}`)")
        return ident

    def latest(self) -> list[str]:
        """The newest commit's text (lines), [] when there is none that reads."""
        if self._latest is None:
            files = self._files()
            try:
                with open(files[0][1], encoding="utf-8") as f:
                    self._latest = [line.rstrip("\n") for line in f][1:]
            except (IndexError, OSError, UnicodeError):
                self._latest = []
        return self._latest

    def history(self) -> list[dict]:
        """Newest first; `rollback N` takes entry N, `id` is the commit's own number."""
        self.flush()
        out = []
        for n, (ident, path) in enumerate(self._files()):
            with open(path, encoding="utf-8") as f:
                m = _META.fullmatch(f.readline().rstrip("\n"))
            out.append({"rollback": n, "id": ident, "user": m and m["user"],
                        "source": (m and m["source"]) or "", "time": m and m["time"],
                        "comment": (m and m["comment"]) or ""})
        return out

    def lines(self, n: int) -> tuple[list[tuple[int, str]], str]:
        """Commit `rollback n`'s numbered lines and its file name."""
        path = self._nth(n)[1]
        with open(path, encoding="utf-8") as f:
            return [(i, line.rstrip("\n")) for i, line in enumerate(f, 1)], path

    def ident(self, n: int) -> int:
        """The number of commit `rollback n`."""
        return self._nth(n)[0]

    def _nth(self, n: int) -> tuple[int, str]:
        self.flush()
        files = self._files()
        if not 0 <= n < len(files):
            raise CommandError(f"no commit {n}: {len(files)} kept (show configuration commits)")
        return files[n]

    # -- commit confirmed
    def confirm(self) -> bool:
        """A plain commit confirms a pending `commit confirmed`; True when one was pending."""
        if self.pending is None:
            return False
        self.pending["timer"].cancel()
        self.pending = None
        return True

    def arm(self, running: Model, previous: Running, user: str, seconds: float) -> None:
        """Roll back to `previous` after `seconds` unless confirmed. A second `commit
        confirmed` while one is pending moves the deadline; the way back stays the same."""
        if self.pending is not None:
            self.pending["timer"].cancel()
            previous = self.pending["previous"]
        loop = asyncio.get_running_loop()
        timer = loop.call_later(seconds, self._expire, running)
        self.pending = {"previous": previous, "made": render(running), "timer": timer,
                        "user": user, "deadline": time.time() + seconds}

    def _expire(self, running: Model) -> None:
        pending, self.pending = self.pending, None
        if pending is None:
            return
        log.warning("commit confirmed by %s was not confirmed: rolling back", pending["user"])
        try:
            from rlb.control.commit import STATS, apply
            self.flush()            # exec-mode lines before it are a commit of their own
            apply(running, _way_back(pending, render(running)))
            STATS["rolled_back"] += 1
            ident = self.record(render(running), "rlb", f"rollback: commit confirmed by "
                                                         f"{pending['user']} was not confirmed")
        except Exception as err:     # noqa: BLE001  (said in the log and by show)
            log.exception("the rollback of an unconfirmed commit failed")
            logging.getLogger("rlb.audit").error(
                "rlb: the automatic rollback of the commit confirmed by %s failed: %s",
                pending["user"], err)
            self.failed = {"user": pending["user"], "error": str(err),
                           "time": now()}
            self.notify(f"% rlb: the commit confirmed by {pending['user']} was not "
                        f"confirmed, and rolling it back FAILED: {err} (show configuration "
                        "commits)")
            return
        self.notify(f"% rlb: the commit confirmed by {pending['user']} was not confirmed in "
                    f"time: rolled back (commit {ident}). A candidate made before is stale: "
                    "`update` brings its changes onto the running configuration.")

    def notify(self, text: str) -> None:
        """Tell every open session (shell, ssh): a message on its terminal."""
        log.info("to every session: %s", text)
        for tell in list(self.sessions):
            try:
                tell(text)
            except Exception:            # noqa: BLE001  (one broken session, not the others)
                log.exception("a session could not be told")

    # -- the startup file
    def write_startup(self, running: Running) -> str:
        if not self.startup:
            raise CommandError("this instance was started without a configuration file")
        try:
            atomic_write(self.startup, running.text + "\n")
        except OSError as err:
            raise CommandError(f"cannot write {self.startup}: {err.strerror or err}") from None
        return self.startup


def _way_back(pending: dict, now: Running) -> Model:
    """What an unconfirmed commit rolls back to: its own changes undone, and what exec
    mode changed since kept (the 3-way merge of `update`); the configuration from before
    it, whole, when those later changes touched what it made."""
    from rlb.control.commit import build
    from rlb.control.config import ConfigError
    from rlb.control.merge import Conflict, merge
    try:
        return build(merge(pending["made"], pending["previous"], now).numbered())
    except (Conflict, ConfigError):
        return build(pending["previous"].numbered())


def atomic_write(path: str, text: str, keep: bool = True) -> None:
    """Replace a file so that a crash at any point leaves the old or the new one whole:
    the new text goes to a temporary file that is synced, the old file is kept as
    PATH.bak (a second name of it, also swapped in by rename), then the temporary file
    is renamed over PATH and the directory is synced. A symbolic link is followed (its
    target is replaced); the old file's mode, owner and group are kept."""
    path = os.path.realpath(path)
    directory = os.path.dirname(path)
    for stale in glob.glob(glob.escape(path) + ".tmp*") + glob.glob(glob.escape(path) +
                                                                    ".bak.tmp*"):
        os.unlink(stale)            # left by a writer that was killed
    tmp = f"{path}.tmp{os.getpid()}"
    old = os.stat(path) if os.path.exists(path) else None
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                 old.st_mode & 0o777 if old else 0o640)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            if old is not None and os.geteuid() == 0:
                os.fchown(f.fileno(), old.st_uid, old.st_gid)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if keep and old is not None:
            bak = f"{path}.bak.tmp{os.getpid()}"
            os.link(path, bak)
            os.replace(bak, path + ".bak")
            if os.path.lexists(bak):    # PATH.bak was PATH already: rename(2) did nothing
                os.unlink(bak)
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
