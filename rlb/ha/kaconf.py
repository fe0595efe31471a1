"""keepalived.conf (DPVS's fork's, as the tutorial writes it) read into rlb's configuration.

`rlb keepalived import FILE` prints what `translate` makes of a file: rlb's own commands
(`vrrp instance`, `virtual-server`, `real-server ... check ...`, the health policy),
each line tagged with the keepalived line it came from, so that a line rlb refuses is
reported at FILE:LINE of the keepalived file. Nothing is dropped quietly: a keyword is
translated, or (where it has no effect in rlb, nor in keepalived without something rlb
refuses) printed as a `!` comment that says why, or refused with
`FILE:LINE: keyword X is not supported (reason)`.

Two steps: `parse` reads keepalived's syntax (words, "quoted strings", `{ }` blocks,
`#`/`!` comments, `include`) into Items; `translate` walks them.
"""
from __future__ import annotations

import glob
import os
import shlex
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface

from rlb.errors import ConfigError
from rlb.health.config import quote

# keepalived's own defaults where they differ from rlb's (rlb writes them out)
KA_ADVERT, KA_VERSION, KA_PRIORITY, KA_DELAY_LOOP = 1.0, 2, 100, 60.0
# lb_kind -> rlb's mode name (the others are the same word in lower case)
KINDS = {"FNAT": "fnat", "DR": "dr", "TUN": "tunnel", "NAT": "nat", "SNAT": "snat"}
# keepalived's checkers -> rlb's check kinds
CHECKS = {"TCP_CHECK": "tcp", "HTTP_GET": "http", "SSL_GET": "https", "UDP_CHECK": "udp",
          "MISC_CHECK": "misc", "PING_CHECK": "icmp"}
MAX_INCLUDE_DEPTH = 8


class KaError(ConfigError):
    """FILE:LINE: what is wrong (a ConfigError: rlb's file errors' shape)."""


@dataclass
class Item:
    """One keyword of the file: `key args... [{ body }]` from `source`:`line`."""
    key: str
    args: list[str]
    body: list[Item] | None
    source: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"

    def fail(self, why: str) -> KaError:
        return KaError(f"{self.where}: {why}")

    def unsupported(self, why: str) -> KaError:
        return self.fail(f"keyword {self.key} is not supported ({why})")

    def arg(self, n: int = 0, what: str = "a value") -> str:
        if len(self.args) <= n:
            raise self.fail(f"{self.key}: {what} expected")
        return self.args[n]

    def one(self, what: str = "a value") -> str:
        if len(self.args) != 1:
            raise self.fail(f"{self.key}: one value expected ({what}), "
                            f"{len(self.args)} given")
        return self.args[0]

    def flag(self) -> bool:
        if self.args:
            raise self.fail(f"{self.key} takes no value")
        return True

    def block(self) -> list[Item]:
        if self.body is None:
            raise self.fail(f"{self.key}: a {{ ... }} block expected")
        return self.body

    def number(self, lo: float, hi: float, integer: bool = True) -> float:
        text = self.one("a number")
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            raise self.fail(f"{self.key}: {text!r} is not a number") from None
        if not lo <= value <= hi:
            raise self.fail(f"{self.key}: {text} is out of range ({lo:g}-{hi:g})")
        return value


# --------------------------------------------------------------------------- parse

def _tokens(text: str, source: str):
    """(line, token) for each word, "quoted string" (unquoted), `{`, `}`, and
    (line, None) at each end of line. `#` and `!` start a comment where a word may
    start."""
    for n, raw in enumerate(text.splitlines(), 1):
        i, line = 0, raw
        while i < len(line):
            ch = line[i]
            if ch.isspace():
                i += 1
            elif ch in "#!":
                break
            elif ch in "{}":
                yield n, ch
                i += 1
            elif ch == '"':
                end = line.find('"', i + 1)
                if end < 0:
                    raise KaError(f"{source}:{n}: unterminated quoted string")
                yield n, Word(line[i + 1:end])
                i = end + 1
            else:
                j = i
                while j < len(line) and not line[j].isspace() and line[j] not in '{}"':
                    j += 1
                yield n, Word(line[i:j])
                i = j
        yield n, None


class Word(str):
    """A word of the file (a `{` in quotes is a Word, not a brace)."""


def parse(text: str, source: str, _depth: int = 0) -> list[Item]:
    """The file's items, `include`s read in place. A KaError names the line."""
    items: list[Item] = []
    stack: list[tuple[list[Item], Item | None]] = []
    cur: Item | None = None           # the item whose line is being read
    body = items
    last = 0
    for n, tok in _tokens(text, source):
        last = n
        if tok is None:                   # end of line: the next word starts an item
            cur = None
        elif isinstance(tok, Word):
            if cur is None:
                cur = Item(str(tok), [], None, source, n)
                body.append(cur)
            else:
                cur.args.append(str(tok))
        elif tok == "{":                  # opens the block of this line's item (or the
            owner = cur if cur is not None else (body[-1] if body else None)   # last one)
            if owner is None or owner.body is not None:
                raise KaError(f"{source}:{n}: '{{' without a keyword before it")
            owner.body = []
            stack.append((body, owner))
            body, cur = owner.body, None
        else:                             # "}"
            if not stack:
                raise KaError(f"{source}:{n}: '}}' without a block to close")
            body, _ = stack.pop()
            cur = None
    if stack:
        _, owner = stack[-1]
        raise KaError(f"{source}:{last}: the block of {owner.key} (line {owner.line}) "
                      "is not closed")
    return _includes(items, source, _depth)


def _includes(items: list[Item], source: str, depth: int) -> list[Item]:
    out = []
    for it in items:
        if it.key != "include":
            if it.body is not None:
                it.body = _includes(it.body, source, depth)
            out.append(it)
            continue
        if depth >= MAX_INCLUDE_DEPTH:
            raise it.fail(f"include: more than {MAX_INCLUDE_DEPTH} levels deep")
        pattern = it.one("a file or glob")
        if not os.path.isabs(pattern):
            pattern = os.path.join(os.path.dirname(os.path.abspath(source)), pattern)
        found = sorted(glob.glob(pattern))
        if not found:
            raise it.fail(f"include: no file matches {pattern}")
        for path in found:
            out += parse(read(path, it.where), path, depth + 1)
    return out


def read(path: str, where: str | None = None) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as err:
        why = getattr(err, "strerror", None) or str(err)
        raise KaError(f"{where + ': ' if where else ''}{path}: {why}") from None


# --------------------------------------------------------------------------- translate

@dataclass
class Out:
    """rlb's lines, each with the keepalived item it came from."""
    lines: list[tuple[Item | None, str]] = field(default_factory=list)

    def add(self, item: Item | None, line: str) -> None:
        self.lines.append((item, line))

    def note(self, item: Item, why: str) -> None:
        self.add(item, f"! {item.where}: {item.key}{' ' + ' '.join(item.args) if item.args else ''}"
                       f": {why}")

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines) + "\n"

    def numbered(self) -> list[tuple[str, int, str]]:
        """(source, line, text) per line, as rlb's file loader takes them."""
        return [(it.source if it else "<import>", it.line if it else 0, line)
                for it, line in self.lines]


@dataclass
class Imported:
    """A keepalived file in rlb's words, and the ports it names."""
    source: str
    out: Out
    ports: frozenset[str]

    def text(self) -> str:
        return self.out.text()

    def numbered(self) -> list[tuple[str, int, str]]:
        return self.out.numbered()


def import_file(path: str) -> Imported:
    """A keepalived file read and translated; a KaError says FILE:LINE. (rlb's grammar
    checks the lines where they are loaded, against that configuration: a SNAT real
    server must be one of its addresses, say.)"""
    return translate(parse(read(path), path), path)


def translate(items: list[Item], source: str) -> Imported:
    t = _Translator(items)
    out = Out()
    out.add(None, f"! rlb configuration from {source} (rlb keepalived import)")
    t.run(out)
    return Imported(source, out, frozenset(t.ports))


# what keepalived's global_defs says that has no effect on the LB: said, not dropped
MAIL = "keepalived sends mail only for smtp_alert, which rlb does not take (watch `show vrrp`, the log)"
GLOBAL_NOTES = {
    "notification_email": MAIL, "notification_email_from": MAIL, "smtp_server": MAIL,
    "smtp_connect_timeout": MAIL, "smtp_helo_name": MAIL,
    "router_id": "the name keepalived gives itself in mail and SNMP; rlb's is its instance (-N)",
    "lvs_id": "the name keepalived gives itself in mail and SNMP; rlb's is its instance (-N)",
    "enable_script_security": "rlb runs quorum-up/-down and misc checks as the daemon's user",
}
GARP = ("delay", "repeat", "refresh")
VIRTUAL_SERVER = "virtual_server"


class _Translator:
    def __init__(self, items: list[Item]):
        self.items = items
        self.laddr_groups: dict[str, Item] = {}
        self.vs_groups: dict[str, Item] = {}
        self.garp: dict[str, int] = {}
        self.version = KA_VERSION
        self.ports: set[str] = set()

    def run(self, out: Out) -> None:
        for it in self.items:
            if it.key == "local_address_group":
                self.laddr_groups[it.arg(0, "a group name")] = it
                self._laddr_members(it)         # its errors now, even if unused
            elif it.key == "virtual_server_group":
                self.vs_groups[it.arg(0, "a group name")] = it
        for it in self.items:
            handler = TOP.get(it.key)
            if handler is None:
                raise it.unsupported(TOP_REFUSED.get(it.key, "not a keepalived.conf "
                                                     "section rlb knows"))
            handler(self, it, out)

    # -- global_defs -------------------------------------------------------------------

    def global_defs(self, it: Item, out: Out) -> None:
        for sub in it.block():
            garp = _garp_key(sub.key, "vrrp_garp_master_")
            if sub.key in GLOBAL_NOTES:
                out.note(sub, GLOBAL_NOTES[sub.key])
            elif garp:
                self.garp[garp] = int(sub.number(0, 86400))
            elif sub.key == "vrrp_version":
                self.version = int(sub.number(2, 3))
            else:
                raise sub.unsupported("rlb's own settings replace keepalived's global_defs; "
                                      "it takes router_id, the mail settings, vrrp_version "
                                      "and vrrp_garp_master_*")

    # -- groups --------------------------------------------------------------------------

    def _laddr_members(self, it: Item) -> list[tuple[str, str, Item]]:
        out = []
        for m in it.block():
            if len(m.args) != 1:
                raise m.fail(f"local_address_group {it.args[0]}: `ADDRESS[-LAST] DEVICE` "
                             "expected")
            self.ports.add(m.args[0])
            for ip in _addr_range(m, m.key):
                out.append((ip, m.args[0], m))
        return out

    def _group_members(self, vs: Item, name: str) -> list[tuple[str, int]]:
        grp = self.vs_groups.get(name)
        if grp is None:
            raise vs.fail(f"no virtual_server_group {name}")
        out = []
        for m in grp.block():
            if m.key == "fwmark":
                raise m.unsupported("services by firewall mark: rlb keys services by "
                                    "address and port, or by match")
            if len(m.args) != 1:
                raise m.fail("`ADDRESS[-LAST] PORT` expected")
            port = _port(m, m.args[0])
            out += [(ip, port) for ip in _addr_range(m, m.key)]
        if not out:
            raise grp.fail(f"virtual_server_group {name} is empty")
        return out

    # -- vrrp_instance -------------------------------------------------------------------

    def vrrp_instance(self, it: Item, out: Out) -> None:
        name = it.one("the instance's name")
        body = it.block()
        kv = _last(body)
        port = self._vrrp_port(it, kv)
        out.add(it, f"vrrp instance {name}")
        out.add(kv.get("interface", it), f" interface {port}")
        state = kv.get("state")
        if state is not None:
            word = state.one("MASTER or BACKUP").upper()
            if word not in ("MASTER", "BACKUP"):
                raise state.fail(f"state {state.args[0]}: MASTER or BACKUP")
            out.add(state, f" state {word.lower()}")
        else:
            out.add(it, " state backup")                  # keepalived's default
        vrid = kv.get("virtual_router_id")
        if vrid is None:
            raise it.fail(f"vrrp_instance {name}: no virtual_router_id")
        out.add(vrid, f" virtual-router-id {int(vrid.number(1, 255))}")
        prio = kv.get("priority")
        out.add(prio or it, f" priority {int(prio.number(1, 255)) if prio else KA_PRIORITY}")
        advert = kv.get("advert_int")
        seconds = advert.number(0.01, 255, integer=False) if advert else KA_ADVERT
        out.add(advert or it, f" advert-interval {seconds:g}")
        version = kv.get("version")
        out.add(version or it, f" vrrp-version {int(version.number(2, 3)) if version else self.version}")
        for sub in body:
            handler = VRRP.get(sub.key)
            if handler is None:
                raise sub.unsupported(VRRP_REFUSED.get(sub.key, "not a vrrp_instance keyword "
                                                       "rlb knows"))
            if handler is not _done:
                handler(self, sub, out, port)
        garp = dict(self.garp)
        for sub in body:
            key = _garp_key(sub.key, "garp_master_") or _garp_key(sub.key, "vrrp_garp_master_")
            if key:
                garp[key] = int(sub.number(0, 86400))
        if garp:
            words = " ".join(f"master-{k} {garp[k]}" for k in GARP if k in garp)
            out.add(it, f" garp {words}")
        out.add(it, " exit")

    def _vrrp_port(self, it: Item, kv: dict[str, Item]) -> str:
        iface, dpdk = kv.get("interface"), kv.get("dpdk_interface")
        if iface is None:
            raise it.fail(f"vrrp_instance {it.args[0]}: no interface")
        kni = iface.one("the kni interface")
        port = dpdk.one("the DPDK port") if dpdk else None
        if kni.endswith(".kni"):
            if port is not None and kni != f"{port}.kni":
                raise dpdk.fail(f"dpdk_interface {port} is not the port of interface {kni}")
            self.ports.add(kni[:-len(".kni")])
            return kni[:-len(".kni")]
        raise iface.fail(f"interface {kni}: VRRP runs on a port's kni (PORT.kni), where the "
                         "data plane passes VRRP to the kernel")

    def v_auth(self, sub: Item, out: Out, port: str) -> None:
        kv = _last(sub.block())
        for s in sub.block():
            if s.key not in ("auth_type", "auth_pass"):
                raise s.unsupported("authentication takes auth_type and auth_pass")
        kind = kv.get("auth_type")
        if kind is None or kind.one("PASS").upper() != "PASS":
            raise (kind or sub).fail("authentication: rlb writes auth_type PASS only "
                                     "(AH is deprecated in keepalived and in RFC 3768)")
        pw = kv.get("auth_pass")
        if pw is None:
            raise sub.fail("authentication: no auth_pass")
        out.add(pw, f" authentication pass {pw.one('the password')}")

    def v_addresses(self, sub: Item, out: Out, port: str) -> None:
        for a in sub.block():
            opts = a.args
            if opts[:1] == ["dev"] and len(opts) == 2 and opts[1] in (port, f"{port}.kni"):
                opts = []
            if opts:
                raise a.fail(f"virtual_ipaddress {a.key}: rlb takes ADDRESS[/LEN] [dev "
                             f"{port}.kni] (labels, scopes and other devices are not "
                             "supported)")
            addr = _iface(a, a.key)
            out.add(a, f" virtual-address {addr}")

    def v_peers(self, sub: Item, out: Out, port: str) -> None:
        for p in sub.block():
            if p.args:
                raise p.fail("unicast_peer: one address per line")
            out.add(p, f" unicast-peer {_ip(p, p.key)}")

    def v_src(self, sub: Item, out: Out, port: str) -> None:
        out.add(sub, f" unicast-source {_ip(sub, sub.one('an address'))}")

    def v_nopreempt(self, sub: Item, out: Out, port: str) -> None:
        sub.flag()
        out.add(sub, " nopreempt")

    def v_preempt_delay(self, sub: Item, out: Out, port: str) -> None:
        out.add(sub, f" preempt-delay {int(sub.number(1, 1000))}")

    # -- virtual_server ------------------------------------------------------------------

    def virtual_server(self, it: Item, out: Out) -> None:
        body = it.block()
        kv = _last(body)
        for sub in body:
            if sub.key not in VS_KEYS and sub.key != "real_server":
                raise sub.unsupported(VS_REFUSED.get(sub.key, "not a virtual_server keyword "
                                                     "rlb knows"))
        proto = (kv["protocol"].one("TCP, UDP or ICMP").upper()
                 if "protocol" in kv else "TCP")
        if proto not in ("TCP", "UDP", "ICMP"):
            raise kv["protocol"].fail(f"protocol {proto}: TCP, UDP (or ICMP with match)")
        kind = kv.get("lb_kind") or kv.get("lvs_method")
        if kind is None:
            raise it.fail("virtual_server: no lb_kind (FNAT, DR, TUN, NAT or SNAT)")
        mode = KINDS.get(kind.one("the forwarding mode").upper())
        if mode is None:
            raise kind.fail(f"lb_kind {kind.args[0]}: FNAT, DR, TUN, NAT or SNAT")
        keys = self._vs_keys(it, kv, proto, out)
        for key in keys:
            out.add(it, f"virtual-server {key}")
            self._vs_body(it, kv, body, mode, out)
            out.add(it, " exit")

    def _vs_keys(self, it: Item, kv: dict[str, Item], proto: str, out: Out) -> list[str]:
        how = it.arg(0, "ADDRESS PORT, group NAME or match NAME")
        ranges = [kv[k] for k in ("src-range", "dst-range", "iif", "oif") if k in kv]
        if how == "match":
            if len(it.args) != 2:
                raise it.fail("virtual_server match NAME")
            out.add(it, f"! {it.where}: virtual_server match {it.args[1]}")
            parts = [f"proto={proto.lower()}"]
            parts += [f"{r.key}={r.one()}" for r in ranges]
            self.ports.update(r.args[0] for r in ranges if r.key in ("iif", "oif"))
            return [f"match {','.join(parts)}"]
        if ranges:
            raise ranges[0].fail(f"{ranges[0].key} goes with `virtual_server match NAME` (SNAT)")
        if proto == "ICMP":
            raise kv["protocol"].fail("protocol ICMP goes with `virtual_server match NAME`")
        if how == "group":
            members = self._group_members(it, it.arg(1, "the group's name"))
        elif how == "fwmark":
            raise it.fail("virtual_server fwmark: services by firewall mark are not "
                          "supported (rlb keys services by address and port, or by match)")
        else:
            if len(it.args) != 2:
                raise it.fail("virtual_server ADDRESS PORT expected")
            members = [(str(_ip(it, how)), _port(it, it.args[1]))]
        return [f"{proto.lower()} {ip}:{port}" for ip, port in members]

    def _vs_body(self, it: Item, kv: dict[str, Item], body: list[Item], mode: str,
                 out: Out) -> None:
        algo = kv.get("lb_algo") or kv.get("lvs_sched")
        if algo is not None:
            out.add(algo, f" scheduler {algo.one('a scheduler')}")
        if "persistence_timeout" in kv:
            p = kv["persistence_timeout"]
            line = f" persistent {int(p.number(1, 2678400))}"
            if "persistence_granularity" in kv:
                line += f" netmask {_ip(kv['persistence_granularity'], kv['persistence_granularity'].one())}"
            out.add(p, line)
        elif "persistence_granularity" in kv:
            raise kv["persistence_granularity"].fail("persistence_granularity without "
                                                     "persistence_timeout")
        if "laddr_group_name" in kv:
            g = kv["laddr_group_name"]
            grp = self.laddr_groups.get(g.one("a local_address_group"))
            if grp is None:
                raise g.fail(f"no local_address_group {g.args[0]}")
            for ip, dev, m in self._laddr_members(grp):
                out.add(m, f" local-address {ip} dev {dev}")
        delay = kv["delay_loop"].number(0.01, 86400, integer=False) if "delay_loop" in kv \
            else KA_DELAY_LOOP
        host = kv["virtualhost"].one("a host name") if "virtualhost" in kv else None
        inhibit_vs = "inhibit_on_failure" in kv and kv["inhibit_on_failure"].flag()
        inhibit: set[bool] = set()
        for rs in (s for s in body if s.key == "real_server"):
            has_check, rs_inhibit = self._real_server(rs, mode, delay, host, out)
            if has_check:
                inhibit.add(rs_inhibit or inhibit_vs)
        if len(inhibit) > 1:
            raise it.fail("inhibit_on_failure on some real servers of this virtual_server "
                          "only: rlb's on-failure is the service's (give it to all of them, "
                          "or to the virtual_server)")
        if inhibit or inhibit_vs:
            out.add(kv.get("inhibit_on_failure", it),
                    f" on-failure {'inhibit' if inhibit_vs or True in inhibit else 'remove'}")
        if "quorum" in kv:
            line = f" quorum {int(kv['quorum'].number(1, 4294967295))}"
            if "hysteresis" in kv:
                line += f" hysteresis {int(kv['hysteresis'].number(0, 4294967295))}"
            out.add(kv["quorum"], line)
        elif "hysteresis" in kv:
            raise kv["hysteresis"].fail("hysteresis without quorum")
        for key, word in (("quorum_up", "quorum-up"), ("quorum_down", "quorum-down")):
            if key in kv:
                command = " ".join(kv[key].args).strip()
                if not command:
                    raise kv[key].fail(f"{key}: a command expected")
                out.add(kv[key], f" {word} {command}")
        for key in ("alpha", "omega"):
            if key in kv and kv[key].flag():
                out.add(kv[key], f" {key}")
        if "sorry_server" in kv:
            s = kv["sorry_server"]
            if len(s.args) != 2:
                raise s.fail("sorry_server ADDRESS PORT")
            out.add(s, f" sorry-server {_ip(s, s.args[0])}:{_port(s, s.args[1])} mode {mode}")

    def _real_server(self, rs: Item, mode: str, delay: float, host: str | None,
                     out: Out) -> tuple[bool, bool]:
        if len(rs.args) != 2:
            raise rs.fail("real_server ADDRESS PORT")
        addr, port = _ip(rs, rs.args[0]), _port(rs, rs.args[1])
        line = f" real-server {addr}:{port} mode {mode}"
        body = rs.block() if rs.body is not None else []
        kv = _last(body)
        for sub in body:
            if sub.key not in RS_KEYS and sub.key not in CHECKS:
                raise sub.unsupported(RS_REFUSED.get(
                    sub.key, CHECK_REFUSED if sub.key.endswith("_CHECK")
                    else "not a real_server keyword rlb knows"))
        line += f" weight {int(kv['weight'].number(0, 65535)) if 'weight' in kv else 1}"
        for key, word in (("uthreshold", "upper"), ("lthreshold", "lower")):
            if key in kv:
                line += f" {word} {int(kv[key].number(0, 2147483647))}"
        checks = [s for s in body if s.key in CHECKS]
        if len(checks) > 1:
            raise checks[1].fail("a second check of one real server: rlb checks each "
                                 "real server with one checker")
        if checks:
            line += " " + _check(checks[0], delay, host)
        out.add(rs, line)
        return bool(checks), "inhibit_on_failure" in kv and kv["inhibit_on_failure"].flag()


def _done(*_):
    """A keyword its section's handler already read."""


TOP = {"global_defs": _Translator.global_defs, "vrrp_instance": _Translator.vrrp_instance,
       VIRTUAL_SERVER: _Translator.virtual_server,
       "local_address_group": lambda *_: None, "virtual_server_group": lambda *_: None}
TOP_REFUSED = {
    "vrrp_sync_group": "rlb runs each vrrp_instance on its own; a sync group's shared "
                       "state is not supported",
    "vrrp_script": "VRRP tracking scripts are not supported (rlb's services have their "
                   "own health checks)",
    "static_ipaddress": "rlb's addresses are `dpip addr add` lines of its configuration",
    "static_routes": "rlb's routes are `dpip route add` lines of its configuration",
    "static_rules": "policy rules are the kernel's; rlb's routes are its configuration's",
    "linkbeat_use_polling": "rlb's VRRP runs on the kni, whose link is the data plane's",
    "net_namespace": "rlb runs keepalived in the LB's own namespace",
}
VRRP = {
    "state": _done, "interface": _done, "dpdk_interface": _done, "virtual_router_id": _done,
    "priority": _done, "advert_int": _done, "version": _done,
    **{f"{p}garp_master_{k}": _done for p in ("", "vrrp_") for k in GARP},
    "authentication": _Translator.v_auth, "virtual_ipaddress": _Translator.v_addresses,
    "unicast_peer": _Translator.v_peers, "unicast_src_ip": _Translator.v_src,
    "nopreempt": _Translator.v_nopreempt, "preempt_delay": _Translator.v_preempt_delay,
}
_NOTIFY = ("rlb moves the virtual addresses (and the local addresses) itself; scripts on "
           "VRRP transitions are not supported: `show vrrp` and the log say each one")
VRRP_REFUSED = {
    **{k: _NOTIFY for k in ("notify", "notify_master", "notify_backup", "notify_fault",
                            "notify_stop", "notify_deleted", "notify_master_rx_lower_pri")},
    **{k: "VRRP tracking is not supported (rlb's services have their own health checks)"
       for k in ("track_interface", "track_script", "track_process", "track_file",
                 "track_bfd")},
    "smtp_alert": MAIL,
    "virtual_ipaddress_excluded": "rlb writes it itself: the local addresses of the "
                                  "services on the virtual addresses",
    "virtual_routes": "rlb's routes are its configuration's (`dpip route add`)",
    "virtual_rules": "policy rules are not supported",
    "lvs_sync_daemon_interface": "IPVS's sync daemon does not exist in rlb",
    "garp_master_refresh_repeat": "rlb writes master-delay, master-repeat and master-refresh",
}
VS_KEYS = {"delay_loop", "lb_algo", "lvs_sched", "lb_kind", "lvs_method", "protocol",
           "persistence_timeout", "persistence_granularity", "laddr_group_name", "alpha",
           "omega", "quorum", "hysteresis", "quorum_up", "quorum_down", "inhibit_on_failure",
           "sorry_server", "virtualhost", "src-range", "dst-range", "iif", "oif"}
VS_REFUSED = {
    "ha_suspend": "rlb serves a service on both LBs; the VIP's owner is VRRP's MASTER",
    "syn_proxy": "SYN proxy is DPVS's, not rlb's",
    "sorry_server_inhibit": "rlb's sorry server takes the clients while the quorum is lost",
    "ops": "one-packet scheduling is not supported",
    "retry": "give the retries in each real server's check (retry N: fall N+1)",
    "delay_before_retry": "rlb's checks run on their grid (interval)",
    "connect_timeout": "give the timeout in each real server's check",
    "warmup": "rlb spreads the first checks of an interval over it by itself",
}
RS_KEYS = {"weight", "inhibit_on_failure", "uthreshold", "lthreshold"}
RS_REFUSED = {
    "notify_up": "scripts on real server transitions are not supported (the log and `show "
                 "ip vs health` say each one)",
    "notify_down": "scripts on real server transitions are not supported (the log and "
                   "`show ip vs health` say each one)",
    "smtp_alert": MAIL,
}
CHECK_REFUSED = "rlb's checkers are TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK, MISC_CHECK, PING_CHECK"

# a check block's keywords -> rlb's setting (None: read by _check itself)
CHECK_WORDS = {"connect_timeout": "timeout", "connect_port": "port", "bindto": "source",
               "misc_timeout": "timeout", "misc_path": None, "misc_dynamic": None,
               "retry": None, "nb_get_retry": None, "nb_sock_retry": None,
               "delay_before_retry": None, "delay_loop": None, "url": None,
               "virtualhost": None, "payload": None, "require_reply": None}
CHECK_REFUSED_WORDS = {
    "connect_ip": "rlb probes the real server itself, along its mode's path",
    "bind_port": "rlb's probes leave from port 61000 + the server's slot",
    "bind_if": "rlb's probes follow the real server's route",
    "fwmark": "marking probes is not supported",
    "warmup": "rlb spreads the first checks of an interval over it by itself",
    "user": "rlb runs misc checks as the daemon's user",
    "alpha": "alpha is the virtual_server's in rlb",
    "log_all_failures": "rlb logs each transition; every failure is in `show ip vs health`",
    "dynamic_sort": "not supported",
}


def _check(chk: Item, delay: float, host: str | None) -> str:
    """A check block -> `check KIND setting value ...` (values as rlb's grammar reads)."""
    kind = CHECKS[chk.key]
    words: dict[str, str] = {"interval": f"{delay:g}"}
    if host and kind in ("http", "https"):
        words["host"] = host
    body = chk.block() if chk.body is not None else []
    for s in body:
        if s.key in CHECK_REFUSED_WORDS:
            raise s.unsupported(CHECK_REFUSED_WORDS[s.key])
        if s.key not in CHECK_WORDS:
            raise s.unsupported(f"not a {chk.key} keyword rlb knows")
        name = CHECK_WORDS[s.key]
        if name is not None:
            words[name] = s.one()
        elif s.key in ("retry", "nb_get_retry", "nb_sock_retry"):
            words["fall"] = str(int(s.number(0, 999)) + 1)
        elif s.key == "delay_loop":
            words["interval"] = f"{s.number(0.01, 86400, integer=False):g}"
        elif s.key == "delay_before_retry":
            s.number(0, 86400, integer=False)   # rlb's checks stay on their grid
        elif s.key == "virtualhost" and kind in ("http", "https"):
            words["host"] = s.one("a host name")
        elif s.key == "misc_path" and kind == "misc":
            # DPVS's keepalived hands misc_path to a shell (the tutorial's "exit 0")
            words["command"] = shlex.join(["/bin/sh", "-c", " ".join(s.args)])
        elif s.key == "misc_dynamic" and kind == "misc":
            s.flag()
            words["dynamic"] = "yes"
        elif s.key == "payload" and kind == "udp":
            words["payload"] = s.one("hex")
        elif s.key == "require_reply" and kind == "udp":
            words["require-reply"] = s.args[0] if s.args else "any"
        elif s.key == "url" and kind in ("http", "https"):
            if "path" in words:
                raise s.fail("a second url: rlb's HTTP check asks one url")
            _url(s, words)
        else:
            raise s.unsupported(f"not a {chk.key} keyword")
    if "timeout" in words:
        # keepalived's connect_timeout may exceed delay_loop (it waits delay_loop after
        # each check); rlb's grid needs timeout <= interval: the interval grows
        if float(words["timeout"]) > float(words["interval"]):
            words["interval"] = words["timeout"]
    order = ["interval", "fall", "timeout", "port", "source", "path", "host", "status",
             "digest", "regex", "payload", "require-reply", "command", "dynamic"]
    text = " ".join(f"{k} {quote(words[k])}" for k in order if k in words)
    return f"check {kind} {text}"


def _url(s: Item, words: dict) -> None:
    for u in s.block():
        if u.key == "path":
            words["path"] = u.one("a path")
        elif u.key == "status_code":
            words["status"] = ",".join(u.args) if u.args else u.one("a status")
        elif u.key == "digest":
            words["digest"] = u.one("an MD5 digest")
        elif u.key == "regex":
            words["regex"] = " ".join(u.args)
        else:
            raise u.unsupported("url takes path, status_code, digest and regex")
    if "path" not in words:
        raise s.fail("url: no path")


def _last(body: list[Item]) -> dict[str, Item]:
    """Keyword -> its item (the last, as keepalived takes a repeated keyword)."""
    return {s.key: s for s in body if s.key != "real_server"}


def _garp_key(key: str, prefix: str) -> str | None:
    if key.startswith(prefix) and key[len(prefix):] in GARP:
        return key[len(prefix):]
    return None


def _ip(it: Item, text: str) -> IPv4Address:
    try:
        return IPv4Address(text)
    except ValueError:
        raise it.fail(f"{text!r} is not an IPv4 address (rlb is IPv4 only)") from None


def _iface(it: Item, text: str) -> IPv4Interface:
    try:
        return IPv4Interface(text)
    except ValueError:
        raise it.fail(f"{text!r} is not an IPv4 address[/length]") from None


def _port(it: Item, text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise it.fail(f"{text!r} is not a port (0-65535)")
    return int(text)


def _addr_range(it: Item, text: str) -> list[str]:
    """`A.B.C.D` or keepalived's range `A.B.C.D-E` (the last byte up to E)."""
    first, dash, last = text.partition("-")
    ip = _ip(it, first)
    if not dash:
        return [str(ip)]
    if not last.isdigit() or not ip.packed[3] <= int(last) <= 255:
        raise it.fail(f"{text!r}: a range is A.B.C.D-E, E from {ip.packed[3]} to 255")
    return [str(ip + i) for i in range(int(last) - ip.packed[3] + 1)]
