"""rlb.logs: the journal's priority prefixes, syslog over a real unix socket, a file that
logrotate moves, levels, the audit in its own stream, a failed apply that changes
nothing, problems() in words, and sd_notify."""
import logging
import os
import re
import socket

import pytest

from rlb import logs as rlogs

PID = os.getpid()
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"


@pytest.fixture
def logs(monkeypatch, tmp_path):
    """rlb.logs with no state of a previous setup; what it attached to the root and
    audit loggers is taken off again after the test (pytest's own handlers stay)."""
    root, audit = logging.getLogger(), logging.getLogger(rlogs.AUDIT)
    levels = root.level, audit.level
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setattr(rlogs, "_state", None)
    monkeypatch.setattr(rlogs, "_notify_address", None)
    monkeypatch.setattr(rlogs, "SYSLOG_ADDRESS", str(tmp_path / "no-dev-log"))
    yield rlogs
    st = rlogs._state
    if st is not None:
        for h in {*st.base, *st.current}:
            root.removeHandler(h)
            audit.removeHandler(h)
            h.close()
    root.setLevel(levels[0])
    audit.setLevel(levels[1])


@pytest.fixture
def syslog(tmp_path, monkeypatch):
    """A syslog socket of the test's own: a unix datagram socket, as /dev/log is."""
    path = str(tmp_path / "dev-log")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(2)
    monkeypatch.setattr(rlogs, "SYSLOG_ADDRESS", path)
    yield s
    s.close()


def received(sock) -> list[str]:
    out = []
    sock.setblocking(False)
    try:
        while True:
            out.append(sock.recv(65536).decode())
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(2)
    return out


def journal_stream(tmp_path, monkeypatch, matching=True):
    """A file standing for the journal stream: JOURNAL_STREAM names its device and
    inode, as systemd sets it for a service's stderr (or another file's, matching=False)."""
    f = open(tmp_path / "journal", "w")
    other = tmp_path / "other"
    other.write_text("")
    st = os.fstat(f.fileno()) if matching else os.stat(other)
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    return f


def lines(path) -> list[str]:
    return path.read_text().splitlines() if os.path.exists(path) else []


def test_under_systemd_lines_carry_the_priority_and_no_time(logs, tmp_path, monkeypatch,
                                                            syslog):
    f = journal_stream(tmp_path, monkeypatch)
    logs.setup("lb1", stream=f)
    log = logging.getLogger("rlb.test")
    log.debug("hidden at info")
    log.info("instance lb1 up")
    log.warning("careful")
    log.error("bad")
    log.critical("worse")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it failed")
    f.flush()
    got = lines(tmp_path / "journal")
    assert got[:5] == ["<6>lb1: instance lb1 up", "<4>lb1: careful", "<3>lb1: bad",
                       "<2>lb1: worse", "<3>lb1: it failed"]
    # the traceback: a line each, every one with the priority and the instance
    assert len(got) > 6 and all(x.startswith("<3>lb1:   ") for x in got[5:])
    assert any("ValueError: boom" in x for x in got[5:])


def test_a_journal_stream_that_is_not_stderr_is_not_the_journal(logs, tmp_path,
                                                                monkeypatch):
    f = journal_stream(tmp_path, monkeypatch, matching=False)   # stderr redirected
    logs.setup("lb1", stream=f)
    logging.getLogger("rlb.test").info("hello")
    f.flush()
    assert re.fullmatch(STAMP + rf" rlb\[{PID}\]: lb1: info: hello",
                        lines(tmp_path / "journal")[0])


def test_under_systemd_the_audit_goes_to_syslog_as_rlb_audit_authpriv(logs, tmp_path,
                                                                      monkeypatch, syslog):
    f = journal_stream(tmp_path, monkeypatch)
    logs.setup("lb1", stream=f)
    logging.getLogger("rlb.audit").info("%s: commit %s", "alice", 12)
    logging.getLogger("rlb.control").info("not audit")
    f.flush()
    # authpriv (10) * 8 + info (6) = 86
    assert received(syslog) == [f"<86>rlb-audit[{PID}]: lb1: alice: commit 12"]
    assert lines(tmp_path / "journal") == ["<6>lb1: not audit"]


def test_under_systemd_without_a_syslog_socket_the_audit_is_marked(logs, tmp_path,
                                                                    monkeypatch):
    f = journal_stream(tmp_path, monkeypatch)
    logs.setup("lb1", stream=f)                  # SYSLOG_ADDRESS: nothing there
    logging.getLogger("rlb.audit").info("alice: commit 12")
    f.flush()
    got = lines(tmp_path / "journal")
    assert got[0].startswith("<4>lb1: no syslog socket")
    assert got[1:] == ["<6>lb1: audit: alice: commit 12"]


def test_stderr_has_a_time_and_the_audit_its_own_identifier(logs, tmp_path):
    f = open(tmp_path / "stderr", "w")
    logs.setup("lb1", stream=f)
    logging.getLogger("rlb.daemon").info("instance lb1 up")
    logging.getLogger("rlb.audit").warning("refused carol (privilege view): enable")
    f.flush()
    got = lines(tmp_path / "stderr")
    assert re.fullmatch(STAMP + rf" rlb\[{PID}\]: lb1: info: instance lb1 up", got[0])
    assert re.fullmatch(STAMP + rf" rlb-audit\[{PID}\]: lb1: warning: refused carol "
                        r"\(privilege view\): enable", got[1])
    assert len(got) == 2                         # the audit line once, not twice


def test_a_message_is_one_line_whatever_it_holds(logs, tmp_path):
    f = open(tmp_path / "stderr", "w")
    logs.setup("lb1", stream=f)
    logging.getLogger("rlb.audit").info("bob: %s", "dpip addr show\nFAKE root: commit\x1b[2J")
    f.flush()
    got = lines(tmp_path / "stderr")
    assert len(got) == 1 and got[0].endswith(r"bob: dpip addr show\nFAKE root: commit\x1b[2J")


def test_syslog_over_the_local_socket(logs, tmp_path, syslog):
    f = open(tmp_path / "stderr", "w")
    logs.setup("lb1", stream=f)
    logs.apply(logs.SYSLOG, "info")
    logging.getLogger("rlb.health").warning("real server down")
    logging.getLogger("rlb.daemon").info("up")
    logging.getLogger("rlb.audit").info("alice: commit 3")
    # daemon (3) * 8 + warning (4) = 28, + info (6) = 30; authpriv (10) * 8 + 6 = 86
    assert received(syslog) == [f"<28>rlb[{PID}]: lb1: real server down",
                                f"<30>rlb[{PID}]: lb1: up",
                                f"<86>rlb-audit[{PID}]: lb1: alice: commit 3"]
    logs.apply(None, "info")                     # back to what setup chose
    logging.getLogger("rlb.daemon").info("back")
    f.flush()
    assert received(syslog) == []
    assert lines(tmp_path / "stderr")[-1].endswith("lb1: info: back")


def test_syslog_without_a_socket_keeps_the_log_and_says_so_once(logs, tmp_path,
                                                                 monkeypatch):
    f = open(tmp_path / "stderr", "w")
    logs.setup("lb1", stream=f)
    logs.apply(logs.SYSLOG, "info")
    logs.apply(logs.SYSLOG, "info")
    logging.getLogger("rlb.daemon").info("still here")
    f.flush()
    got = lines(tmp_path / "stderr")
    assert len([x for x in got if "no syslog socket" in x]) == 1
    assert "warning: log syslog: no syslog socket" in got[0]
    assert got[-1].endswith("lb1: info: still here")
    # the socket appears (rsyslog started): the next apply takes it
    path = tmp_path / "dev-log"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    monkeypatch.setattr(logs, "SYSLOG_ADDRESS", str(path))
    logs.apply(logs.SYSLOG, "info")
    logging.getLogger("rlb.daemon").info("to syslog")
    assert s.recv(4096).decode() == f"<30>rlb[{PID}]: lb1: to syslog"
    s.close()


def test_a_file_that_logrotate_moves_is_opened_again(logs, tmp_path):
    logs.setup("lb1", stream=open(tmp_path / "stderr", "w"))
    path = tmp_path / "rlb.log"
    logs.apply(str(path), "info")
    log, audit = logging.getLogger("rlb.daemon"), logging.getLogger("rlb.audit")
    log.info("one")
    audit.info("alice: commit 1")
    assert os.stat(path).st_mode & 0o777 == logs.FILE_MODE
    os.rename(path, tmp_path / "rlb.log.1")       # logrotate, without copytruncate
    os.rename(tmp_path / "rlb.audit.log", tmp_path / "rlb.audit.log.1")
    log.info("two")
    audit.info("bob: commit 2")
    assert re.fullmatch(STAMP + rf" rlb\[{PID}\]: lb1: info: one",
                        lines(tmp_path / "rlb.log.1")[0])
    assert [x.split(" lb1: ")[1] for x in lines(path)] == ["info: two"]
    assert [x.split(" lb1: ")[1] for x in lines(tmp_path / "rlb.audit.log.1")] == \
        ["info: alice: commit 1"]
    audited = lines(tmp_path / "rlb.audit.log")
    assert len(audited) == 1 and re.fullmatch(
        STAMP + rf" rlb-audit\[{PID}\]: lb1: info: bob: commit 2", audited[0])
    assert os.stat(path).st_mode & 0o777 == logs.FILE_MODE
    assert lines(tmp_path / "stderr") == []       # nothing left on the old target


def test_levels_filter_and_never_the_audit(logs, tmp_path):
    f = open(tmp_path / "stderr", "w")
    logs.setup("lb1", stream=f)
    log, audit = logging.getLogger("rlb.health"), logging.getLogger("rlb.audit")
    log.debug("d1")                               # info: the default
    log.info("i1")
    logs.apply(None, "warning")
    log.info("i2")
    log.warning("w2")
    audit.info("alice: commit 4")                 # the audit whatever the level
    logs.apply(None, "debug")
    log.debug("d3")
    f.flush()
    said = [x.split(" lb1: ")[1] for x in lines(tmp_path / "stderr")]
    assert said == ["info: i1", "warning: w2", "info: alice: commit 4", "debug: d3"]
    with pytest.raises(ValueError, match="one of debug, info, warning"):
        logs.apply(None, "verbose")


def test_a_failed_apply_keeps_the_previous_target(logs, tmp_path):
    logs.setup("lb1", stream=open(tmp_path / "stderr", "w"))
    good = tmp_path / "rlb.log"
    logs.apply(str(good), "info")
    with pytest.raises(OSError, match="/no/such/dir/rlb.log: No such file or directory"):
        logs.apply("/no/such/dir/rlb.log", "debug")
    (tmp_path / "x.audit.log").mkdir()           # the main file opens, its audit's does not
    with pytest.raises(OSError, match="x.audit.log: Is a directory"):
        logs.apply(str(tmp_path / "x.log"), "debug")
    with pytest.raises(OSError, match="not an absolute path"):
        logs.apply("rlb.log", "info")
    logging.getLogger("rlb.daemon").debug("not at info")
    logging.getLogger("rlb.daemon").info("still to the good file")
    logging.getLogger("rlb.audit").info("alice: commit 5")
    assert [x.split(" lb1: ")[1] for x in lines(good)] == ["info: still to the good file"]
    assert lines(tmp_path / "rlb.audit.log")[0].endswith("lb1: info: alice: commit 5")
    assert lines(tmp_path / "x.log") == []
    root = logging.getLogger()
    assert [h for h in root.handlers if isinstance(h, rlogs._File)] == \
        [rlogs._state.current[0]]                # nothing of the failed ones attached


def test_problems_in_words(logs, tmp_path):
    assert logs.problems(None) == [] and logs.problems(logs.SYSLOG) == []
    assert logs.problems(str(tmp_path / "rlb.log")) == []
    assert logs.problems("var/log/rlb.log") == ["var/log/rlb.log: not an absolute path"]
    assert logs.problems("/no/such/dir/rlb.log") == [
        "/no/such/dir/rlb.log: its directory /no/such/dir does not exist"]
    (tmp_path / "afile").write_text("")
    assert logs.problems(str(tmp_path / "afile" / "rlb.log")) == [
        f"{tmp_path}/afile/rlb.log: its directory {tmp_path}/afile is not a directory"]
    assert logs.problems(str(tmp_path) + "/") == [f"{tmp_path}/: names a directory, not a file"]
    (tmp_path / "d.log").mkdir()
    (tmp_path / "e.audit.log").mkdir()
    assert logs.problems(str(tmp_path / "d.log")) == [f"{tmp_path}/d.log: is a directory"]
    assert logs.problems(str(tmp_path / "e.log")) == [
        f"{tmp_path}/e.audit.log: is a directory"]
    assert logs.audit_path("/var/log/rlb/lb1.log") == "/var/log/rlb/lb1.audit.log"
    assert logs.audit_path("/var/log/rlb.d/lb1") == "/var/log/rlb.d/lb1.audit"


def test_problems_of_a_file_that_cannot_be_written(logs, tmp_path, monkeypatch):
    (tmp_path / "ro.log").write_text("")
    real = os.access                              # root passes modes: the kernel's answer
    monkeypatch.setattr(os, "access", lambda p, m: False if str(p).endswith(("ro.log", "sub"))
                        else real(p, m))
    assert logs.problems(str(tmp_path / "ro.log")) == [f"{tmp_path}/ro.log: not writable"]
    (tmp_path / "sub").mkdir()
    assert logs.problems(str(tmp_path / "sub" / "x.log")) == [
        f"{tmp_path}/sub/x.log: cannot be made: {tmp_path}/sub is not writable",
        f"{tmp_path}/sub/x.audit.log: cannot be made: {tmp_path}/sub is not writable"]


def test_notify_reaches_systemd_and_not_the_children(logs, tmp_path, monkeypatch):
    assert logs.notify("READY=1") is False        # not under systemd: nothing, quietly
    path = str(tmp_path / "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    logs.setup("lb1", stream=open(tmp_path / "stderr", "w"))
    assert "NOTIFY_SOCKET" not in os.environ      # keepalived would say READY=1 for us
    assert logs.notify("READY=1") and s.recv(100) == b"READY=1"
    assert logs.notify("STOPPING=1") and s.recv(100) == b"STOPPING=1"
    s.close()
    abstract = f"rlb-test-notify-{PID}"           # systemd's usual: the abstract namespace
    a = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.bind("\0" + abstract)
    a.settimeout(2)
    monkeypatch.setattr(logs, "_notify_address", "@" + abstract)
    assert logs.notify("READY=1") and a.recv(100) == b"READY=1"
    a.close()
