"""`rlb`: a shell on an instance, run commands on it (-c), start one (daemon), or build the lab."""
from __future__ import annotations

import argparse
import re
import os
import sys

from rlb.control.paths import DEFAULT_INSTANCE

USAGE = """\
rlb [-N INSTANCE]                                         the interactive shell
rlb [-N INSTANCE] -c COMMAND [-c COMMAND ...] [--json]   run commands in order (a newline
                                                          in COMMAND separates commands)
rlb [-N INSTANCE] -f FILE [--replace]                     apply a file as one commit
rlb [-N INSTANCE] ipvsadm ARGS...                         an ipvsadm line (-R < FILE: restore)
rlb [-N INSTANCE] dpip ARGS...                            a dpip line
rlb [-N INSTANCE] daemon -f FILE [-k KEEPALIVED_CONF]     run an LB instance (-k: its services
                                                          and VRRP from a keepalived.conf;
                                                          SIGHUP reloads that file)
rlb keepalived import FILE                                a keepalived.conf in rlb's words
rlb [-N INSTANCE] keepalived load FILE                    its services and VRRP instances
                                                          replace the running ones (one commit)
rlb lab list|up NAME [--tutorial]|script NAME|restart lb|down|status|exec NODE -- CMD...
                                                          scenario lab (namespaces)
"""


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        return _pipe_closed()
    except KeyboardInterrupt:
        return 130


def _pipe_closed() -> int:
    """The reader went away (`rlb -c ... | head`): stop quietly with the status of a tool
    that SIGPIPE ended (128 + 13), as cat or grep; nothing more is written."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):
            pass
    return 141


def _main(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["lab"]:
        from rlb.lab.cli import main as lab_main
        return lab_main(argv[1:])
    p = argparse.ArgumentParser(prog="rlb", usage=USAGE)
    p.add_argument("-N", "--instance", default=DEFAULT_INSTANCE)
    p.add_argument("-c", "--command", action="append", dest="commands", default=[])
    p.add_argument("-f", "--file", dest="load")
    p.add_argument("--replace", action="store_true",
                   help="with -f: the file is the whole configuration (load override)")
    p.add_argument("--json", action="store_true", help="print structured data as JSON")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    if args.rest[:1] == ["daemon"]:
        d = argparse.ArgumentParser(prog="rlb daemon")
        d.add_argument("-f", "--config", required=True)
        d.add_argument("-N", "--instance", default=args.instance)
        d.add_argument("-k", "--keepalived", help="keepalived.conf: the services and VRRP")
        dargs = d.parse_args(args.rest[1:])
        from rlb.daemon import main as daemon_main
        return daemon_main(dargs.config, dargs.instance, dargs.keepalived)
    if args.rest[:1] == ["keepalived"]:
        return keepalived(args.instance, args.rest[1:], p)
    if args.rest[:1] == ["ipvsadm"] and not args.commands and args.load is None:
        return ipvsadm(args.instance, args.rest, args.json)
    if args.rest[:1] == ["dpip"] and not args.commands and args.load is None:
        import shlex
        return run_commands(args.instance, [shlex.join(args.rest)], args.json)
    if args.rest:
        p.error(f"unknown arguments: {' '.join(args.rest)}")
    if args.load is not None:
        if args.commands:
            p.error("-f and -c do not go together")
        return load_file(args.instance, args.load, args.replace)
    if not args.commands:
        from rlb.shell.repl import main as shell_main
        return shell_main(args.instance)
    return run_commands(args.instance, args.commands, args.json)


def run_commands(instance: str, cmds: list[str], as_json: bool = False) -> int:
    """Like vtysh -c: in order, stop at the first failure with a non-zero exit."""
    from rlb.control.client import Client, ControlError
    from rlb.shell.repl import commands
    try:
        client = Client(instance)
    except ControlError as err:
        print(f"rlb: {err}", file=sys.stderr)
        return 2
    with client:
        try:
            for k, line in enumerate(cmds):
                if TO_STDOUT.match(line):       # capture ... file -: the pcap on stdout
                    rc = commands(client.call, cmds[:k], as_data=as_json) if k else 0
                    if rc:
                        return rc
                    rc = capture_to_stdout(client, line)
                    if rc or k + 1 == len(cmds):
                        return rc
                    return run_commands(instance, cmds[k + 1:], as_json)
            return commands(client.call, cmds, as_data=as_json)
        except BrokenPipeError:
            raise
        except (ControlError, OSError, ValueError) as err:
            print(f"rlb: the connection to the daemon is lost: {err}", file=sys.stderr)
            return 2


# `capture ... file -`: the daemon writes the pcap into a FIFO this client reads
TO_STDOUT = re.compile(r"\s*capture\s.*\sfile\s+-\s*$")


def capture_to_stdout(client, line: str) -> int:
    """Run a capture whose file is `-`: the pcap goes to standard output (tcpdump -r -
    reads it as it comes), the summary to standard error, as tcpdump -w - does."""
    import os
    import shutil
    import tempfile
    import threading
    where = tempfile.mkdtemp(prefix="rlb-capture-")
    fifo = os.path.join(where, "pcap")
    os.mkfifo(fifo, 0o600)
    os.chmod(where, 0o711)                  # the daemon (root) opens it by its path

    def copy():
        try:
            with open(fifo, "rb") as src:
                while chunk := src.read1(1 << 16):
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.buffer.flush()
        except BrokenPipeError:             # our reader went (| head): the daemon's
            pass                            # next write fails and the capture ends
    reader = threading.Thread(target=copy, daemon=True)
    reader.start()
    try:
        reply = client.call(line[:line.rindex("-")] + fifo)
        if not reply.get("ok"):
            try:                            # the daemon never opened it: let the
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))   # reader's open return
            except OSError:                 # (ENXIO: the reader is gone already)
                pass
        reader.join(10)
    finally:
        shutil.rmtree(where, ignore_errors=True)
    if not reply.get("ok"):
        print(reply.get("error") or "% failed", file=sys.stderr)
        return 1
    print(reply.get("text", ""), file=sys.stderr)
    return 0


def ipvsadm(instance: str, argv: list[str], as_json: bool = False) -> int:
    """`rlb ipvsadm ARGS`: the line as `rlb -c` runs it; `ipvsadm -R` reads ipvsadm -S's
    rules from standard input (or FILE) and applies them as one commit, as `rlb -f` does."""
    import shlex

    from rlb.commands import ipvsadm as vs
    if not vs.is_restore(shlex.join(argv[:2])):       # the grammar says which it is
        return run_commands(instance, [shlex.join(argv)], as_json)
    path = argv[2] if len(argv) == 3 else None
    if len(argv) > 3:
        print("rlb: ipvsadm -R [FILE]: the rules come from standard input or FILE",
              file=sys.stderr)
        return 2
    text = _read(path) if path else sys.stdin.read()
    if text is None:
        return 2
    return _load(instance, vs.restore_text(text), path or "<stdin>")


def keepalived(instance: str, argv: list[str], p: argparse.ArgumentParser) -> int:
    """`keepalived import FILE` prints the file in rlb's words; `keepalived load FILE`
    applies it: its services and VRRP instances replace the running ones, one commit
    (errors at the keepalived file's lines)."""
    from rlb.ha import kaconf
    if len(argv) != 2 or argv[0] not in ("import", "load"):
        p.error("keepalived import FILE | keepalived load FILE")
    try:
        imported = kaconf.import_file(argv[1])
    except kaconf.KaError as err:
        print(f"rlb: {err}", file=sys.stderr)
        return 1
    if argv[0] == "import":
        sys.stdout.write(imported.text())
        return 0
    return _load(instance, imported.numbered(), argv[1], keepalived=True)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as err:
        print(f"rlb: {path}: {getattr(err, 'strerror', None) or err}", file=sys.stderr)
        return None


def load_file(instance: str, path: str, replace: bool = False) -> int:
    """Like `load merge` then `commit`: the file's lines change a candidate of the running
    configuration, applied as one transaction; any bad line and nothing changes. With
    replace (`load override`) the file is the whole candidate."""
    text = _read(path)
    return 2 if text is None else _load(instance, text, path, replace)


def _load(instance: str, text, path: str, replace: bool = False,
          keepalived: bool = False) -> int:
    from rlb.control.client import Client, ControlError
    req = {"load": text, "source": path, "replace": replace}
    if keepalived:
        req["keepalived"] = True
    try:
        with Client(instance, timeout=300) as client:
            reply = client.request(req)
    except (ControlError, OSError) as err:
        print(f"rlb: {err}", file=sys.stderr)
        return 2
    from rlb.commands.render import printable
    if not reply.get("ok"):
        print(printable(reply.get("error", "% failed")), file=sys.stderr)
        return 1
    print(printable(reply.get("text", "")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
