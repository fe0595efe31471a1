"""Where the daemon's log goes: the journal under systemd, syslog, a file, or stderr; and
the audit of configuration changes, a stream of its own.

`setup(instance)` at start chooses by how the daemon was started: under systemd (its
stderr is the journal stream JOURNAL_STREAM names, as sd_journal_stream_fd(3) says to
check) lines go to stderr with the sd-daemon(3) priority prefix ("<6>") and no time of
our own (journald stamps them, keeps the levels, and adds `rlb[PID]:` from the unit's
SyslogIdentifier=rlb); otherwise to stderr with a time. `apply(target, level)` follows
the configuration's `log` lines: syslog (the local socket, facility daemon), a file
(reopened when logrotate moves it), or back to what setup chose; and the level.

One line per event, the instance's name on every one, the same `rlb[PID]: INSTANCE: `
in each form (control characters of a message are escaped, so a newline in something
a user typed cannot forge a line; a traceback's lines follow, each with the same head):

  journal (stderr)  <6>lb1: instance lb1 up: 2 port(s), 1 worker(s)
                    (journalctl: ... rlb[1234]: lb1: instance lb1 up: ...)
  syslog            <30>rlb[1234]: lb1: instance lb1 up: ...
  file, stderr      2025-01-02 03:04:05,678 rlb[1234]: lb1: info: instance lb1 up: ...

The audit (logger rlb.audit: who changed what, who was refused) is never mixed into
these nor filtered by `log level`: it has the identifier rlb-audit, and under systemd
and with `log syslog` it goes to the syslog socket with facility authpriv, as sudo's
and sshd's records of who did what as whom do: Debian's rsyslog keeps it in
/var/log/auth.log with theirs, where a security review looks and under its own
retention, not in /var/log/syslog among the daemon's lines; the journal keeps it under
the unit too (`journalctl -u rlb@lb1 -t rlb-audit`). With
`log file PATH` it goes to PATH with ".audit" before the suffix (rlb.log: rlb.audit.log)
in the file's format; on plain stderr, in stderr's with `rlb-audit[PID]:`.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import socket
import sys
import threading

SYSLOG = "syslog"                     # apply()'s target: the local syslog socket
SYSLOG_ADDRESS = "/dev/log"           # where it is (a test binds its own)
IDENT, AUDIT_IDENT = "rlb", "rlb-audit"
AUDIT = "rlb.audit"                   # the audit's logger (rlb.control.server, ...)
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
AUDIT_LEVEL = logging.INFO            # whatever `log level` says
FILE_MODE = 0o640                     # a log file we create: root and group (adm) only
AUDIT_INFIX = ".audit"

# sd-daemon(3): the priority a journal stream line starts with
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
             logging.CRITICAL: 2}
_ESCAPES = {**{c: f"\\x{c:02x}" for c in range(32) if c != 9}, 10: "\\n", 13: "\\r",
            0x7f: "\\x7f"}
JOURNAL, TEXT, PLAIN = range(3)       # the forms of a line: journal stream, with a time, syslog

log = logging.getLogger("rlb.daemon")


def _priority(levelno: int) -> int:
    for level in sorted(_PRIORITY, reverse=True):
        if levelno >= level:
            return _PRIORITY[level]
    return 7


class _Line(logging.Formatter):
    """A record as one line in one of the forms above (a traceback's lines after it)."""

    def __init__(self, instance: str, ident: str, form: int, tag: str = "") -> None:
        super().__init__()
        self.instance, self.ident, self.form, self.tag = instance, ident, form, tag

    def head(self, record: logging.LogRecord) -> str:
        if self.form == JOURNAL:
            return f"<{_priority(record.levelno)}>{self.instance}: {self.tag}"
        if self.form == PLAIN:
            return f"{self.ident}[{record.process}]: {self.instance}: "
        return (f"{self.formatTime(record)} {self.ident}[{record.process}]: {self.instance}: "
                f"{record.levelname.lower()}: ")

    def format(self, record: logging.LogRecord) -> str:
        head = self.head(record)
        text = head + record.getMessage().translate(_ESCAPES)
        extra = ""
        if record.exc_info:
            extra = self.formatException(record.exc_info)
        if record.stack_info:
            extra = (extra + "\n" if extra else "") + self.formatStack(record.stack_info)
        if extra:
            if self.form == PLAIN:        # one datagram: syslog keeps or escapes its lines
                return f"{text}\n{extra}"
            text += "".join(f"\n{head}  {line}" for line in extra.splitlines())
        return text


class _NotAudit(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == AUDIT or record.name.startswith(AUDIT + "."))


class _File(logging.handlers.WatchedFileHandler):
    """Appends; opened again when the file was moved or removed (logrotate without
    copytruncate, no signal needed); created with FILE_MODE."""

    def _open(self):
        return open(self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors,
                    opener=lambda path, flags: os.open(path, flags, FILE_MODE))


class _State:
    def __init__(self, instance: str, stream, journal: bool, base: tuple) -> None:
        self.instance, self.stream, self.journal = instance, stream, journal
        self.base = base                    # (main, audit): what setup chose
        self.current = base
        self.target = None                  # what apply was last given
        self.fell_back = False              # syslog asked for, /dev/log missing


_state: _State | None = None
_lock = threading.Lock()
_notify_address: str | None = None


def under_journal(stream=None) -> bool:
    """Whether stream (stderr) is the journal stream systemd set up: JOURNAL_STREAM is
    "DEVICE:INODE" of that stream, and a child with stderr redirected has another."""
    stream = sys.stderr if stream is None else stream
    try:
        dev, ino = (int(x) for x in os.environ.get("JOURNAL_STREAM", "").split(":"))
        st = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


def audit_path(path: str) -> str:
    """The audit's file beside the log file PATH: ".audit" before its suffix."""
    root, ext = os.path.splitext(path)
    return f"{root}{AUDIT_INFIX}{ext}"


def setup(instance: str, stream=None) -> None:
    """Once, at the daemon's start (stream: stderr): the log and the audit as the way
    the daemon was started says, at level info."""
    global _state, _notify_address
    stream = sys.stderr if stream is None else stream
    journal = under_journal(stream)
    if "NOTIFY_SOCKET" in os.environ:    # ours (notify), not our children's: keepalived
        _notify_address = os.environ.pop("NOTIFY_SOCKET")    # would say READY=1 for us
    main = _stream(stream, _Line(instance, IDENT, JOURNAL if journal else TEXT))
    audit, no_syslog = None, None
    if journal:
        try:
            audit = _syslog(instance, AUDIT_IDENT, logging.handlers.SysLogHandler.LOG_AUTHPRIV)
        except OSError as err:
            no_syslog = err
            audit = _stream(stream, _Line(instance, AUDIT_IDENT, JOURNAL, tag="audit: "))
    else:
        audit = _stream(stream, _Line(instance, AUDIT_IDENT, TEXT))
    with _lock:
        old = _state
        _state = _State(instance, stream, journal, (main, audit))
        gone = (*old.current, *old.base) if old else ()
        _install(gone, (main, audit), logging.INFO)
        for h in gone:                      # a second setup (tests): the first's go
            h.close()
    if no_syslog is not None:
        log.warning("no syslog socket %s (%s): the audit goes to the journal stream, "
                    "marked audit:", SYSLOG_ADDRESS, no_syslog.strerror or no_syslog)


def apply(target: str | None, level: str) -> None:
    """The configuration's `log` lines: target None (what setup chose), SYSLOG, or an
    absolute file path; level one of LEVELS. All or nothing: a file that cannot be
    opened raises OSError (saying which and why) and leaves everything as it was. A
    missing syslog socket is no error: the log stays where setup put it, and says so
    once (until syslog works again)."""
    if level not in LEVELS:
        raise ValueError(f"log level {level!r}: one of {', '.join(LEVELS)}")
    if _state is None:
        raise RuntimeError("rlb.logs.setup() was not called")
    st = _state
    if target == st.target and not st.fell_back:    # the level alone changed
        with _lock:
            logging.getLogger().setLevel(LEVELS[level])
        return
    warn = None
    if target is None:
        handlers = st.base
    elif target == SYSLOG:
        try:
            handlers = (_syslog(st.instance, IDENT, logging.handlers.SysLogHandler.LOG_DAEMON),
                        _syslog(st.instance, AUDIT_IDENT,
                                logging.handlers.SysLogHandler.LOG_AUTHPRIV))
        except OSError as err:
            handlers = st.base
            if not st.fell_back:
                warn = err
    elif isinstance(target, str):
        if not os.path.isabs(target):
            raise OSError(f"{target}: not an absolute path")
        main = _open_file(target, st.instance, IDENT)
        try:
            audit = _open_file(audit_path(target), st.instance, AUDIT_IDENT)
        except OSError:
            main.close()
            raise
        handlers = (main, audit)
    else:
        raise TypeError(f"log target {target!r}: None, {SYSLOG!r} or a file's path")
    with _lock:
        old = st.current
        _install(old, handlers, LEVELS[level])
        st.current, st.target = handlers, target
        st.fell_back = target == SYSLOG and handlers is st.base
        _close(st, old)
    if warn is not None:
        log.warning("log %s: no syslog socket %s (%s): logging as before", SYSLOG,
                    SYSLOG_ADDRESS, warn.strerror or warn)


def problems(target) -> list[str]:
    """What keeps target from being applied, in words, each starting with the path
    ([] if nothing: None and SYSLOG always pass, a missing syslog socket only falls
    back). A file is checked with its audit sibling (audit_path)."""
    if target is None or target == SYSLOG:
        return []
    if not isinstance(target, str) or not target:
        return [f"{target!r}: not a file's path"]
    if not os.path.isabs(target):
        return [f"{target}: not an absolute path"]
    if target.endswith("/") or os.path.basename(target) in (".", ".."):
        return [f"{target}: names a directory, not a file"]
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        why = "is not a directory" if os.path.exists(directory) else "does not exist"
        return [f"{target}: its directory {directory} {why}"]
    out = []
    for path in (target, audit_path(target)):
        if os.path.isdir(path):
            out.append(f"{path}: is a directory")
        elif os.path.exists(path):
            if not os.access(path, os.W_OK):
                out.append(f"{path}: not writable")
        elif not os.access(directory, os.W_OK | os.X_OK):
            out.append(f"{path}: cannot be made: {directory} is not writable")
    return out


def notify(state: str) -> bool:
    """sd_notify(3) without libsystemd: state ("READY=1", "STOPPING=1", ...) to the
    socket systemd gave in NOTIFY_SOCKET (taken by setup); False if none or it failed."""
    address = _notify_address or os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):                          # the abstract namespace
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.sendto(state.encode(), address)
    except OSError as err:
        log.warning("sd_notify %s: %s", state.split("\n")[0], err)
        return False
    return True


# -- handlers ---------------------------------------------------------------------------

def _stream(stream, line: _Line) -> logging.Handler:
    h = logging.StreamHandler(stream)
    h.setFormatter(line)
    return h


def _syslog(instance: str, ident: str, facility: int) -> logging.Handler:
    """Connected now: a missing socket raises OSError here, not at the first line."""
    h = logging.handlers.SysLogHandler(address=SYSLOG_ADDRESS, facility=facility)
    if h.socket is None or h.socket.fileno() == -1:     # (Python 3.11 keeps quiet: ask why)
        h.close()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect(SYSLOG_ADDRESS)
            except OSError as err:
                raise OSError(err.errno, err.strerror) from None
        raise OSError("cannot connect")
    h.append_nul = False
    h.setFormatter(_Line(instance, ident, PLAIN))
    return h


def _open_file(path: str, instance: str, ident: str) -> logging.Handler:
    try:
        h = _File(path, encoding="utf-8", errors="backslashreplace")
    except OSError as err:          # str(): "PATH: reason", as problems() says it
        said = OSError(f"{path}: {err.strerror or err}")
        said.errno = err.errno
        raise said from err
    h.setFormatter(_Line(instance, ident, TEXT))
    return h


def _install(old: tuple, new: tuple, level: int) -> None:
    """The new handlers in before the old go out: no line is lost in between."""
    root, audit = logging.getLogger(), logging.getLogger(AUDIT)
    main, audit_handler = new
    if not any(isinstance(f, _NotAudit) for f in main.filters):
        main.addFilter(_NotAudit())
    if main not in root.handlers:
        root.addHandler(main)
    if audit_handler not in audit.handlers:
        audit.addHandler(audit_handler)
    for h in old:
        if h not in new:
            root.removeHandler(h)
            audit.removeHandler(h)
    root.setLevel(level)
    audit.setLevel(AUDIT_LEVEL)


def _close(st: _State, handlers: tuple) -> None:
    """Close what is no longer used (setup's own handlers stay open for apply(None))."""
    for h in handlers:
        if h not in st.base and h not in st.current:
            h.close()
