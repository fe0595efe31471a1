"""The ssh shell's users and listener: the `username` and `ssh` commands and what they set.

Users log in by public key only (rlb/shell/ssh.py); one without a `privilege` line is a
viewer. The accounts live with the model, so a config file's lines are checked with it
and `show users` sees what the ssh server uses.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from rlb.model.model import CommandError
from rlb.commands.base import ACCOUNTS, SSH, VIEWER, Reply, Shown, g

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
MAX_KEYS = 64                   # per user: a bound on what a config line can make us keep


@dataclass
class User:
    name: str
    privilege: str | None = None                  # None: never given, which means view
    keys: list = field(default_factory=list)      # (line as given, asyncssh public key)

    def fingerprints(self) -> list[str]:
        return [key.get_fingerprint() for _, key in self.keys]


@dataclass(eq=False)
class Session:
    """One open session: a control-socket client (`rlb -c`, or `rlb` on a terminal: the
    console), or an ssh login; with its Context, for the mode and the idle time."""
    user: str
    privilege: str
    source: str                                   # "pid 4242", the ssh peer's address
    kind: str = SSH                               # socket | ssh
    ctx: object = None
    since: float = field(default_factory=time.time)

    @property
    def line(self) -> str:
        if self.kind == "socket" and self.ctx is not None and self.ctx.shell and self.ctx.tty:
            return "console"
        return self.kind

    def row(self) -> dict:
        ctx = self.ctx
        row = {"line": self.line, "user": ctx.user if ctx else self.user,
               "privilege": ctx.privilege if ctx else self.privilege, "peer": self.source,
               "since": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))}
        if self.line == "console":
            row["peer"] = f"{ctx.tty} {self.source}"
        if ctx is not None:
            row["mode"] = ctx.node
            row["idle"] = int(time.monotonic() - ctx.active)
        return row


class Accounts:
    """Users, the listen address, and what the ssh server reports back for `show`."""

    def __init__(self):
        self.users: dict[str, User] = {}
        self.listen: tuple[str, int] | None = None
        self.status = "not listening"
        self.host_key = ""                        # its fingerprint, once the server has one
        self.sessions: list[Session] = []         # every open session, ssh or socket
        self.watchers: list = []                  # called when `listen` changes

    def _user(self, name: str) -> User:
        if not NAME.fullmatch(name):
            raise CommandError(f"bad user name {name!r}: letters, digits, '.', '_', '-' "
                               "(up to 32, not starting with a digit, '.' or '-')")
        return self.users.setdefault(name, User(name))

    def set_privilege(self, name: str, level: str) -> None:
        self._user(name).privilege = level

    def add_key(self, name: str, line: str) -> None:
        key = parse_key(line)
        user = self._user(name)
        if any(k.public_data == key.public_data for _, k in user.keys):
            return
        if len(user.keys) >= MAX_KEYS:
            raise CommandError(f"user {name} already has {MAX_KEYS} keys")
        user.keys.append((" ".join(line.split()), key))

    def remove(self, name: str) -> None:
        if self.users.pop(name, None) is None:
            raise CommandError(f"no user {name}")

    def authorized(self, name: str, key) -> User | None:
        """The user when `key` is one of theirs, else None."""
        user = self.users.get(name)
        if user is not None and any(k.public_data == key.public_data for _, k in user.keys):
            return user
        return None

    def privilege_of(self, user: User) -> str:
        return user.privilege or VIEWER

    def open_session(self, name: str, privilege: str, peer: str, ctx=None,
                     line: str = SSH) -> Session:
        entry = Session(name, privilege, peer, line, ctx)
        self.sessions.append(entry)
        return entry

    def close_session(self, entry: Session) -> None:
        if entry in self.sessions:
            self.sessions.remove(entry)

    def set_listen(self, addr: str | None, port: int | None) -> None:
        new = None if addr is None else (addr, port)
        if new != self.listen:
            self.listen = new
            for notify in list(self.watchers):
                notify()


def parse_key(line: str):
    """An OpenSSH public key line -> asyncssh's key; CommandError for anything else."""
    try:
        import asyncssh
    except ImportError:
        raise CommandError("ssh keys need the asyncssh package") from None
    try:
        return asyncssh.import_public_key(line.strip())
    except Exception as err:    # noqa: BLE001  (a parser fed garbage may raise anything)
        raise CommandError(f"not an OpenSSH public key line: {err}") from None


def accounts(model) -> Accounts:
    """The model's accounts; an attribute of it until rlb.model.model has a field for them."""
    acc = getattr(model, "shell_accounts", None)
    if acc is None:
        acc = model.shell_accounts = Accounts()
    return acc


g.words(**{
    "username": "A user of the ssh shell",
    "privilege": "Privilege level (view: show commands only; admin: everything)",
    "view": "Show commands only",
    "admin": "Every command, configuration included",
    "ssh": "The ssh server of the shell",
    "users": "Shell users and their sessions",
})


USER_HELP = {"name": "User name (letters, digits, . _ -)"}


# A user's lines go together: its privilege, then its keys (Shown.rank: the user's place)
def _show_privileges(model, _):
    return [Shown({"name": u.name, "level": u.privilege}, rank=(ACCOUNTS, i))
            for i, u in enumerate(accounts(model).users.values()) if u.privilege]


def _show_keys(model, _):
    return [Shown({"name": u.name, "key": line}, rank=(ACCOUNTS, i))
            for i, u in enumerate(accounts(model).users.values()) for line, _ in u.keys]


def _show_listen(model, _):
    acc = accounts(model)
    if acc.listen is None:
        return []
    return [Shown({"addr": acc.listen[0], "port": acc.listen[1]},
                  rank=(ACCOUNTS, len(acc.users)))]


@g.command("username WORD$name privilege (view|admin)$level", node="exec", help=USER_HELP,
           show=_show_privileges, key=("name",))
def username_privilege(ctx, name, level):
    accounts(ctx.model).set_privilege(name, level)
    return Reply()


@g.command("username WORD$name key LINE$key", node="exec", show=_show_keys,
           help={**USER_HELP, "key": "ssh-ed25519 AAAA... [comment]"})
def username_key(ctx, name, key):
    accounts(ctx.model).add_key(name, key)
    return Reply()


@g.command("no username WORD$name", node="exec", help=USER_HELP)
def no_username(ctx, name):
    accounts(ctx.model).remove(name)
    return Reply()


@g.command("ssh listen A.B.C.D$addr (1-65535)$port", node="exec", show=_show_listen, key=(),
           help={"addr": "Address to listen on (0.0.0.0: all)", "port": "TCP port"})
def ssh_listen(ctx, addr, port):
    accounts(ctx.model).set_listen(str(addr), port)
    return Reply()


@g.command("no ssh listen", node="exec")
def no_ssh_listen(ctx):
    accounts(ctx.model).set_listen(None, None)
    return Reply()


def _idle(seconds) -> str:
    return "" if seconds is None else time.strftime("%H:%M:%S", time.gmtime(seconds))


@g.command("show users", node="exec", readonly=True)
def show_users(ctx):
    """Every open session, the own marked *, as IOS; then the ssh users configured."""
    acc = accounts(ctx.running)
    sessions = []
    for s in acc.sessions:
        row = s.row()
        row["self"] = s.ctx is ctx
        sessions.append(row)
    users = [{"name": u.name, "privilege": u.privilege or VIEWER, "keys": u.fingerprints(),
              "sessions": sum(s["user"] == u.name for s in sessions)}
             for u in sorted(acc.users.values(), key=lambda u: u.name)]
    lines = [f"   {'Line':<8} {'User':<16} {'Mode':<10} {'Source':<24} {'Since':<19}  Idle"]
    lines += [f"{'*' if r['self'] else ' ':<2} {r['line']:<8} {r['user']:<16} "
              f"{r.get('mode', '?'):<10} {r['peer']:<24} {r['since']:<19}  "
              f"{_idle(r.get('idle'))}" for r in sessions]
    if users:
        lines += ["", f"{'User':<20} {'Privilege':<10} {'Keys':<5} Sessions"]
        lines += [f"{r['name']:<20} {r['privilege']:<10} {len(r['keys']):<5} {r['sessions']}"
                  for r in users]
    return Reply("\n".join(lines), {"sessions": sessions, "users": users})


@g.command("show ssh", node="exec", readonly=True)
def show_ssh(ctx):
    acc = accounts(ctx.model)
    listen = None if acc.listen is None else {"addr": acc.listen[0], "port": acc.listen[1]}
    ssh = [s.row() for s in acc.sessions if s.kind == SSH]
    data = {"listen": listen, "state": acc.status, "host_key": acc.host_key, "sessions": ssh}
    where = "not configured" if acc.listen is None else f"{acc.listen[0]} port {acc.listen[1]}"
    lines = [f"ssh listen {where}: {acc.status}"]
    if acc.host_key:
        lines.append(f"host key {acc.host_key}")
    lines += [f"  {s['user']} ({s['privilege']}) from {s['peer']} since {s['since']}"
              for s in ssh]
    return Reply("\n".join(lines), data)


@g.command("show privilege", node="exec", readonly=True)
def show_privilege(ctx):
    return Reply(f"Current privilege level is {ctx.privilege} (user {ctx.user})",
                 {"user": ctx.user, "privilege": ctx.privilege})
