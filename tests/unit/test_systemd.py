"""contrib/rlb@.service and `make install`: the files land where the unit says,
`systemd-analyze verify` passes on the installed unit and fails on a broken copy, and
the daemon reports READY=1/STOPPING=1 where Type=notify needs them."""
import configparser
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "contrib" / "rlb@.service"
ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"


def make_install(destdir: Path, *args: str) -> subprocess.CompletedProcess:
    """`make install DESTDIR=...`, as a packager runs it. `-o setup`: the Debian packages
    and the build are make test's business, and this tree is shared (a rebuild of the
    extensions under other runs' feet, apt-get from a unit test: no)."""
    r = subprocess.run(["make", "-s", "-C", str(ROOT), "-o", "setup", "install",
                        f"DESTDIR={destdir}", "PREFIX=/usr/local", *args],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    destdir = tmp_path_factory.mktemp("destdir")
    make_install(destdir)
    return destdir


def verify(unit_text: str, where: Path) -> tuple[bool, str]:
    """systemd-analyze verify on a copy of the unit. Passing means exit 0 *and* nothing
    said: it only warns, exit 0, of an unknown key or a value it cannot parse (and then
    ignores the line), so a misspelt Restart= would otherwise pass."""
    assert os.access(ANALYZE, os.X_OK), \
        f"{ANALYZE} missing: apt-get install systemd (the Makefile's DEB_PKGS has it)"
    where.mkdir(parents=True, exist_ok=True)
    path = where / "rlb@.service"
    path.write_text(unit_text)
    r = subprocess.run([ANALYZE, "verify", str(path)], capture_output=True, text=True,
                       timeout=60)
    said = (r.stdout + r.stderr).strip()
    return r.returncode == 0 and not said, said


def staged(installed: Path) -> str:
    """The installed unit with its absolute paths under DESTDIR, where they exist (verify
    checks that ExecStart=/ExecReload= name executables)."""
    text = (installed / "etc/systemd/system/rlb@.service").read_text()
    return text.replace("/usr/local/", f"{installed}/usr/local/")


def test_make_install_puts_the_files_in_place(installed):
    wrapper = installed / "usr/local/bin/rlb"
    unit = installed / "etc/systemd/system/rlb@.service"
    assert wrapper.stat().st_mode & 0o777 == 0o755
    assert unit.stat().st_mode & 0o777 == 0o644
    assert (installed / "etc/rlb").is_dir()
    assert (installed / "usr/local/share/doc/rlb/README.md").read_text() == \
        (ROOT / "README.md").read_text()
    assert unit.read_text() == UNIT.read_text()       # PREFIX /usr/local: as it is
    # the wrapper exec's this checkout's venv (the unit's main PID is rlb itself)
    text = wrapper.read_text()
    assert text.startswith("#!/bin/sh\n") and re.search(r'^exec "\S+/python" -m rlb "\$@"$',
                                                           text, re.M)
    r = subprocess.run([str(wrapper), "-h"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "rlb [-N INSTANCE] daemon -f FILE" in r.stdout


def test_make_install_with_another_prefix_names_it_in_the_unit(tmp_path):
    make_install(tmp_path, "PREFIX=/opt/rlb")
    unit = (tmp_path / "etc/systemd/system/rlb@.service").read_text()
    assert "ExecStart=/opt/rlb/bin/rlb daemon -f /etc/rlb/%i.conf -N %i" in unit
    assert "/usr/local" not in unit
    assert (tmp_path / "opt/rlb/bin/rlb").is_file()


def test_the_unit_passes_systemd_analyze_verify(installed, tmp_path):
    ok, said = verify(staged(installed), tmp_path)
    assert ok, said


@pytest.mark.parametrize("broken", [
    ("Restart=on-failure", "Restrat=on-failure"),                 # a misspelt key
    ("Type=notify", "Type=notfy"),                                # a value it cannot parse
    ("LimitMEMLOCK=infinity", "LimitMEMLOCK=infinty"),
    ("[Service]", "[Servise]"),                                   # a misspelt section
    ("/usr/local/bin/rlb daemon", "/usr/local/bin/rbl daemon"),   # no such program
])
def test_verify_fails_on_a_broken_copy(installed, tmp_path, broken):
    """The check above is honest: each of these breaks the unit, and it says so."""
    good, bad = broken
    text = staged(installed)
    assert good in text
    ok, said = verify(text.replace(good, bad, 1), tmp_path)
    assert not ok and said


def test_the_unit_says_what_an_instance_needs():
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str
    unit.read_string(UNIT.read_text())
    s = unit["Service"]
    assert s["Type"] == "notify"
    assert s["ExecStart"] == "/usr/local/bin/rlb daemon -f /etc/rlb/%i.conf -N %i"
    assert s["ExecReload"] == "/usr/local/bin/rlb -N %i -f /etc/rlb/%i.conf --replace"
    assert s["Restart"] == "on-failure" and s["RestartPreventExitStatus"] == "2"
    assert s["KillMode"] == "mixed" and s["LimitMEMLOCK"] == "infinity"
    assert s["SyslogIdentifier"] == "rlb"
    caps = set(s["CapabilityBoundingSet"].split())
    assert {"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_ADMIN", "CAP_IPC_LOCK",
            "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"} <= caps
    # drain-on-stop (at most 3600 s) ends before systemd's stop timeout
    assert int(s["TimeoutStopSec"].removesuffix("s")) > 3600
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_the_daemon_says_ready_and_stopping():
    """Type=notify: READY=1 once the control socket and ssh answer, STOPPING=1 when a
    stop begins (rlb.logs.notify), and the log set up by rlb.logs (no basicConfig)."""
    src = (ROOT / "rlb" / "daemon.py").read_text()
    serve = src[src.index("async def _serve"):]
    ready = serve.index('logs.notify("READY=1")')
    assert serve.index("await server.start()") < ready
    assert serve.index("await _start_ssh(") < ready
    assert serve.index("await stop.wait()") < serve.index('logs.notify("STOPPING=1")')
    assert "logs.setup(instance)" in src and "basicConfig" not in src
