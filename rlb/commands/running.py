"""The running configuration: the commands that rebuild a model, in router style.

`render(model)` gives stanzas: a head line and the indented lines of its section. Their
text is `show running-config`, `write memory`'s file and each commit kept on disk; run
through the grammar (rlb.control.config.run_lines) it rebuilds an equal model, which is
how a candidate configuration starts (rlb.control.commit).

Only what differs from the defaults is written, as FRR does, except the ports: they
are the instance.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from rlb.model.model import Model, Settings, parse_mac
from rlb.model.services import DEFAULT_TIMEOUTS, HOST_MASK, PERSISTENT_TIMEOUT, PROTO_NAMES

HEADER = "! rlb running configuration"



class Stanza(NamedTuple):
    head: str
    body: tuple = ()


@dataclass
class Running:
    stanzas: list[Stanza]

    @property
    def text(self) -> str:
        return "\n".join(self.lines())

    def lines(self) -> list[str]:
        out = [HEADER, "!"]
        for st in self.stanzas:
            out.append(st.head)
            out += [f" {line}" for line in st.body]
            if st.body:
                out.append("!")
        out.append("end")
        return out

    def numbered(self) -> list[tuple[int, str]]:
        return list(enumerate(self.lines(), 1))

    def canonical(self) -> frozenset:
        """What two configurations must share to be the same, whatever their order, but for
        what order means: a port's first address (its ARP source)."""
        def first(st):
            return next((line for line in st.body if line.startswith("ip address ")), None)
        return frozenset((st.head, frozenset(st.body), first(st)) for st in self.stanzas)

    def data(self) -> list[dict]:
        return [{"command": st.head, "section": list(st.body)} for st in self.stanzas]


def render(model: Model) -> Running:
    # Routes that need only their port come before the addresses: an address does not
    # make the network route an operator made first, and must not on the way back.
    # Routes through a gateway come last: the route that puts the gateway on-link may be
    # one with a src (an address of ours) only.
    return Running([*_dataplane(model), *_routes(model, PORT_ONLY), *_interfaces(model),
                    *_routes(model, WITH_SRC), *_routes(model, VIA), *_services(model),
                    *_accounts(model)])


def _dataplane(model):
    from rlb.commands.base import NUMBERS, SWITCHES     # the section's one table
    s, d = model.settings, Settings()
    body = [f"{line.split()[0]} {getattr(s, attr)}" for attr, line in NUMBERS.items()
            if getattr(s, attr) != getattr(d, attr)]
    if not s.kni:
        body.append("no-kni")
    body += [f"port {p.name} {p.devargs}" for p in model.ports.values()]
    body += [line for attr, line in SWITCHES.items() if getattr(s, attr)]
    yield Stanza("dataplane", tuple(body))


def mac_text(mac: str) -> str:
    return ":".join(f"{b:02x}" for b in parse_mac(mac))


def laddr_made(model) -> set:
    """The addresses --add-laddr made that are left out of the text (the local-address lines
    make them again); one that a route has as its src is written, as the route needs it
    first (and the model keeps it as the operator's once its local address goes)."""
    return model.services._auto - {r.src for r in model.routes.values()}


def _interfaces(model):
    auto, made = laddr_made(model), model.services._auto
    for p in model.ports.values():
        # in the order that makes the same ARP source (Model._primary): those --add-laddr
        # made, written because a route needs them, last
        mine = sorted((a for a in model.addresses if a.port == p.name and a.ip not in auto),
                      key=lambda a: a.ip in made)
        body = [f"ip address {a.iface}{' sapool' if a.sapool else ''}" for a in mine]
        body += [f"ip neighbor {n.ip} {mac_text(n.mac)}"
                 for n in model.neighbours.values() if n.port == p.name]
        if body:
            yield Stanza(f"interface {p.name}", tuple(body))


def route_line(r) -> str:
    words = [f"ip route {r.prefix}"]
    if r.via is not None:
        words.append(f"via {r.via}")
    if r.src is not None:
        words.append(f"src {r.src}")
    words.append(f"dev {r.port}")
    if r.scope != ("global" if r.via else "link"):
        words.append(f"scope {r.scope}")
    if r.mtu != 1500:
        words.append(f"mtu {r.mtu}")
    if r.metric:
        words.append(f"metric {r.metric}")
    return " ".join(words)


# How many leading words of a line name its object; a line not listed is named by all
# of it (a section head, `local-address A dev D`, `username N key ...`, a switch).
_NAMED_BY = {"ip route": 3, "ip vs": 3, "ip address": 3, "ip neighbor": 3,
             "real-server": 2, "port": 2, "ssh listen": 2, "scheduler": 1, "persistent": 1}


def object_key(line: str) -> str:
    """What names the object a line of the text is (rlb.control.merge)."""
    words = line.split()
    if words[:2] == ["ip", "address"]:      # an address is its IP, whatever its mask
        return f"ip address {words[2].split('/')[0]}"
    if words[:1] == ["username"]:           # its privilege; each of its keys
        return line if words[2:3] == ["key"] else " ".join(words[:3])
    n = _NAMED_BY.get(" ".join(words[:2])) or _NAMED_BY.get(words[0], 0)
    if not n and len(words) == 2 and words[1].isdigit():
        n = 1                               # a number of the dataplane section
    return " ".join(words[:n]) if n else line


PORT_ONLY, WITH_SRC, VIA = range(3)


def route_group(r) -> int:
    """What a route needs before it: only its port, an address (its src), or a route that
    puts its gateway on-link."""
    return VIA if r.via is not None else WITH_SRC if r.src is not None else PORT_ONLY


def _routes(model, group: int):
    for r in model.routes.values():
        if not r.auto and route_group(r) == group:
            yield Stanza(route_line(r))


def service_head(svc) -> str:
    if svc.match is not None:
        return f"virtual-server match {svc.match}"
    return f"virtual-server {PROTO_NAMES[svc.proto].lower()} {svc.vaddr}:{svc.vport}"


def real_server_line(d) -> str:
    line = f"real-server {d.addr}:{d.port} mode {d.mode} weight {d.weight}"
    if d.u_threshold:
        line += f" upper {d.u_threshold}"
    if d.l_threshold:
        line += f" lower {d.l_threshold}"
    return line


def _services(model):
    ms = model.services
    if ms.timeouts != DEFAULT_TIMEOUTS:
        t = ms.timeouts
        yield Stanza(f"ip vs timeout tcp {t['tcp']} tcpfin {t['tcpfin']} udp {t['udp']}")
    # services with local addresses first: the addresses those make may be the ARP or
    # tunnel source that other services' real servers need
    for svc in sorted(ms.table.values(), key=lambda svc: not svc.laddrs):
        body = [f"scheduler {svc.sched}"]
        if svc.hash_target != ms.hash_target(svc.sched, None):
            body[0] += f" hash-target {svc.hash_target}"
        if svc.persistent:
            line = "persistent" if svc.timeout == PERSISTENT_TIMEOUT else \
                f"persistent {svc.timeout}"
            if svc.netmask != HOST_MASK:
                line += f" netmask {svc.netmask}"
            body.append(line)
        body += [f"local-address {la.addr} dev {la.dev}" for la in svc.laddrs]
        body += [real_server_line(d) for d in svc.dests]
        yield Stanza(service_head(svc), tuple(body))


def _accounts(model):
    from rlb.commands.users import accounts
    acc = accounts(model)
    for u in acc.users.values():
        lines = [f"username {u.name} privilege {u.privilege}"] if u.privilege else []
        lines += [f"username {u.name} key {line}" for line, _ in u.keys]
        for line in lines:
            yield Stanza(line)
    if acc.listen is not None:
        yield Stanza(f"ssh listen {acc.listen[0]} {acc.listen[1]}")
