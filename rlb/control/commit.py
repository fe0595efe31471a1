"""Candidate configurations and commits, as Junos has them.

`configure` gives a session a Candidate: a model of its own, built by running the
running configuration's text (rlb.commands.running) through the grammar, with no data
plane. Configuration commands change the candidate only. `commit` checks the candidate
against a scratch copy of the running model, then changes the running model into it
(`transform`): only the objects that differ are touched, so a service that did not
change keeps its connections. It fails whole: a step the data plane refuses puts back
what was there. A commit is refused when the running configuration moved under the
candidate (another session's commit, an exec-mode `dpip` or `ipvsadm`); `update`
(rlb.control.merge) brings the candidate's changes onto it.

The commits kept on disk, `commit confirmed` and the startup file are rlb.control.history.
"""
from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from ipaddress import IPv4Address

from rlb.control.history import KEEP, Store, atomic_write, now  # noqa: F401  (their home)
from rlb.model.model import BOND, PORT, RUNTIME, TUNNEL, VLAN, CommandError, Model
from rlb.commands.base import PORT_ONLY, VIA, WITH_SRC, laddr_made, route_group
from rlb.commands.running import Running, render

log = logging.getLogger("rlb.commit")


# ----------------------------------------------------------------- building models

def build(lines, source: str = "<running-config>") -> Model:
    """A model, without a data plane, from a configuration's numbered lines; a ConfigError
    (FILE:LINE: reason) for a line that does not apply."""
    from rlb.control.config import check
    return check(lines, source)


def candidate_model(lines, source: str = "<running-config>") -> Model:
    """A model to edit as a candidate of the running instance: what the data plane
    reads at start is refused when typed (Model.started)."""
    model = build(lines, source)
    model.started = True
    return model


@dataclass
class Candidate:
    """One session's configuration being edited, and what it was made from."""
    base: Running
    model: Model

    @classmethod
    def of(cls, running: Model) -> Candidate:
        base = render(running)
        return cls(base, candidate_model(base.numbered()))

    def changed(self) -> bool:
        return render(self.model).canonical() != self.base.canonical()


def diff(old: Running, new: Running) -> str:
    """A unified diff of two configurations' text, headers aside."""
    lines = difflib.unified_diff(old.lines()[2:-1], new.lines()[2:-1], "running", "candidate",
                                 lineterm="", n=2)
    return "\n".join(lines)


# ----------------------------------------------------------------- the transformation

def transform(running: Model, target: Model, wide: bool = False) -> list[str]:
    """Change `running` into `target`, touching only what differs; returns what was done.
    Removals go first (services, neighbours, routes, addresses: what depends on something
    before it), then additions in the opposite order, then what is edited in place.

    wide: also take down and make again what depends on addresses and routes (real
    servers other than FNAT's, routes with a gateway or a src, the addresses of a port
    whose ARP source changes), for changes that cannot be made under them."""
    done: list[str] = []
    _check_startup(running, target)
    rs, ts = running.services, target.services
    _owners(rs, target)
    if wide:
        _take_down(running, target, done)

    # -- what goes away
    for key in [k for k in rs.table if k not in ts.table]:
        done.append(f"delete {rs.table[key]}")
        rs.del_service(key)
    for key, svc in rs.table.items():
        want = ts.table[key]
        keep = {(la.addr, la.dev) for la in want.laddrs}
        for la in [la for la in svc.laddrs if (la.addr, la.dev) not in keep]:
            rs.del_laddr(key, la.addr, la.dev)
            done.append(f"delete local address {la.addr} of {svc}")
        for d in list(svc.dests):
            if want.dest(d.addr, d.port) is None:
                rs.del_dest(key, d.addr, d.port)
                done.append(f"delete real server {d.addr}:{d.port} of {svc}")
    for ip, n in list(running.neighbours.items()):
        if target.neighbours.get(ip) != n:
            running.del_neighbour(ip)
            done.append(f"delete neighbour {ip}")
    for key, r in list(running.routes.items()):
        # an address's own routes go with it; the operator's route for the network of an
        # address gives the address's route back when deleted (Model.del_route), and an
        # address's route gives way to the operator's (Model.add_route)
        if not r.auto and _route(target.routes.get(key)) != _route(r):
            running.del_route(r.prefix, r.port)
            done.append(f"delete route {r.prefix}")
    have, want = _addresses(running), _addresses(target)
    for ip, (iface, port, sapool) in have.items():
        if want.get(ip) != (iface, port, sapool):
            running.del_address(iface, port)
            done.append(f"delete address {iface} on {port}")
    for name, v in list(running.ports.items()):
        if v.kind in (VLAN, TUNNEL) and _vlan(target.ports.get(name)) != _vlan(v):
            running.del_iface(name, v.kind)
            done.append(f"delete {'VLAN' if v.kind == VLAN else v.kind} {name}")

    # -- what comes
    for name, v in target.ports.items():
        if name in running.ports:
            if v.kind == TUNNEL and running.ports[name].tunnel != v.tunnel:
                running.change_tunnel(name, v.tunnel)
                done.append(f"change tunnel {name}")
        elif v.kind == VLAN:
            running.add_vlan(name, v.link, v.vid, v.proto)
            done.append(f"add VLAN {name}")
        elif v.kind == TUNNEL:
            running.add_tunnel(name, v.tunnel)
            done.append(f"add tunnel {name}")
    # routes that need only their port first, as the text has them: an address must not
    # make the network route the operator's is (rlb.commands.running.render)
    _add_routes(running, target, done, (PORT_ONLY,))
    for ip, (iface, port, sapool) in want.items():
        a = running.find_address(ip)
        # one --add-laddr made stays as it is (the candidate writes it when a route uses it)
        if a is None or (a.iface, a.port, a.sapool) != (iface, port, sapool):
            running.add_address(iface, port, sapool)
            done.append(f"add address {iface} on {port}")
    _add_routes(running, target, done, (WITH_SRC,))
    _add_routes(running, target, done, (VIA,))
    for ip, n in target.neighbours.items():
        if ip not in running.neighbours:
            running.add_neighbour(ip, n.mac, n.port)
            done.append(f"add neighbour {ip}")
    if rs.timeouts != ts.timeouts:
        rs.set_timeouts(**ts.timeouts)
        done.append("set timeouts " + " ".join(f"{k} {v}" for k, v in ts.timeouts.items()))
    for key, want in ts.table.items():
        _service(rs, key, want, done)

    # -- settings the data plane takes at run time, and the shell's users
    _settings(running, target, done)
    _accounts(running, target, done)
    _arp_sources(running, target, done)
    _routing(running, target, done)
    _ha(running, target, done)
    _ops(running, target, done)
    return done


def _ops(running: Model, target: Model, done) -> None:
    """`metrics listen`, `log ...`: the exporter and the log hear the change."""
    r, t = running.ops, target.ops
    if r.metrics != t.metrics:
        r.set(metrics=t.metrics)
        done.append(f"set metrics listen {t.metrics.addr} {t.metrics.port}" if t.metrics
                    else "delete metrics listen")
    if (r.log_target, r.log_level) != (t.log_target, t.log_level):
        r.set(log_target=t.log_target, log_level=t.log_level)
        done.append(f"set log {t.log_target or 'stderr'} level {t.log_level}")


def _ha(running: Model, target: Model, done) -> None:
    """The VRRP sections, each as a whole (rlb.ha.keepalived applies the difference)."""
    have, want = dict(running.ha.instances), dict(target.ha.instances)
    for name in [n for n in have if n not in want]:
        running.ha.set_instance(name, None)
        done.append(f"delete vrrp instance {name}")
    for name, inst in want.items():
        if have.get(name) != inst:
            running.ha.set_instance(name, inst)
            done.append(f"set vrrp instance {name}")
    running.ha.instances = target.ha.instances          # and in the target's order
    if running.ha.sync != target.ha.sync:
        running.ha.set_sync(target.ha.sync)
        done.append("set connection sync" if target.ha.sync else "delete connection sync")


def _routing(running: Model, target: Model, done) -> None:
    """`router ospf`, `router bgp`: the daemon's FRR and exabgp hear the change
    (rlb.routing.router, rlb.routing.exabgp)."""
    if running.routing.ospf != target.routing.ospf:
        running.routing.set_ospf(target.routing.ospf)
        done.append("set router ospf" if target.routing.ospf else "delete router ospf")
    if running.routing.bgp != target.routing.bgp:
        running.routing.set_bgp(target.routing.bgp)
        done.append("set router bgp" if target.routing.bgp else "delete router bgp")
    if running.routing.frr != target.routing.frr:
        running.routing.set_frr(target.routing.frr)
        done.append("set routing frr")
    if running.routing.drain_on_stop != target.routing.drain_on_stop:
        running.routing.drain_on_stop = target.routing.drain_on_stop
        done.append(f"set routing drain-on-stop {target.routing.drain_on_stop}")


def _arp_sources(running: Model, target: Model, done) -> None:
    """Each port's ARP source as the target has it: an address whose maker changed
    (_owners) may have moved it."""
    for port in running.ports:
        want = target._primary(port)
        if running._primary(port) == want:
            continue
        a = running.find_address(IPv4Address(want)) if want else None
        if a is None:
            continue
        running.addresses.remove(a)
        running.addresses.insert(0, a)
        running.services.check_all()
        if running.engine is not None:
            running.engine.port_addr(running.ports[port].index, running._primary(port))
        done.append(f"ARP source of {port}: {a.ip}")


def _vlan(p):
    """What a VLAN or tunnel interface is (a tunnel whose ends change stays: it changes)."""
    return None if p is None else (p.kind, p.link, p.vid, p.proto,
                                   p.kind == TUNNEL and p.tunnel.mode)


def _fixed_ports(m: Model) -> list:
    """The data ports and bonds, which the data plane opens at start (VLANs and tunnels
    come and go), in no order: a bond's place among them is its first slave's, which the
    text read back does not keep."""
    return sorted((p.name, p.devargs) for p in [*m.ports.values(), *m.slaves.values()]
                  if p.kind in (PORT, BOND))


def _check_startup(running: Model, target: Model) -> None:
    if _fixed_ports(running) != _fixed_ports(target):
        raise CommandError("ports are read at start: change them in the startup configuration "
                           "and restart the instance")
    for name in vars(running.settings):
        if name not in RUNTIME and getattr(running.settings, name) != getattr(target.settings,
                                                                              name):
            raise CommandError(f"dataplane {name.replace('_', '-')} is read at start: change it "
                               "in the startup configuration and restart the instance")


def _take_down(running: Model, target: Model, done) -> None:
    rs = running.services
    for key, svc in rs.table.items():
        for d in list(svc.dests):
            if not rs.modes[d.mode].needs_laddr:
                rs.del_dest(key, d.addr, d.port)
                done.append(f"delete real server {d.addr}:{d.port} of {svc} (made again)")
    for r in list(running.routes.values()):
        if not r.auto and (r.via is not None or r.src is not None):
            running.del_route(r.prefix, r.port)
            done.append(f"delete route {r.prefix} (made again)")
    have, want = _addresses(running), _addresses(target)
    for port in running.ports:
        mine = [ip for ip, a in have.items() if a[1] == port]
        theirs = [ip for ip, a in want.items() if a[1] == port]
        if mine[:1] != theirs[:1]:
            for ip in mine:
                if not rs.laddr_users(ip):
                    running.del_address(*have[ip][:2])
                    done.append(f"delete address {have[ip][0]} on {port} (made again)")


def _owners(rs, target: Model) -> None:
    """An address both have stays; whether --add-laddr made it (and removes it with its
    last local address) follows the target. A text read back makes an address a route
    has as src the operator's (rlb.commands.base.laddr_made)."""
    for a in rs.model.addresses:
        t = target.find_address(a.ip)
        if t is not None and (t.iface, t.port, t.sapool) == (a.iface, a.port, a.sapool):
            if a.ip in target.services._auto:
                rs._auto.add(a.ip)
            else:
                rs._auto.discard(a.ip)


def _add_routes(running: Model, target: Model, done, groups) -> None:
    for key, r in target.routes.items():
        have = running.routes.get(key)
        if not r.auto and (have is None or have.auto) and route_group(r) in groups:
            if have is not None and _route(have)[:-1] == _route(r)[:-1]:
                have.auto = False       # the same route, now the operator's: nothing to push
                done.append(f"keep route {r.prefix} (the operator's now)")
                continue
            running.add_route(r.prefix, r.port, r.via, r.src, r.scope, r.mtu, r.metric)
            done.append(f"add route {r.prefix}")


def _route(r):
    return None if r is None else (r.port, r.via, r.src, r.scope, r.mtu, r.metric, r.auto)


def _addresses(model: Model) -> dict:
    """The addresses an operator made (not the ones --add-laddr made), by IP."""
    auto = laddr_made(model)
    return {a.ip: (a.iface, a.port, a.sapool) for a in model.addresses if a.ip not in auto}


def _service(rs, key, want, done) -> None:
    svc = rs.table.get(key)
    persistent = want.timeout if want.persistent else None
    netmask = want.netmask if want.persistent else None
    if svc is None:
        rs.add_service(key, sched=want.sched, persistent=persistent, netmask=netmask,
                       hash_target=want.hash_target)
        svc = rs.table[key]
        done.append(f"add {svc}")
    elif _persistence(svc) != _persistence(want):
        if want.persistent:
            rs.edit_service(key, sched=want.sched, persistent=persistent, netmask=netmask,
                            hash_target=want.hash_target)
        else:
            rs.edit_service(key, sched=want.sched, no_persistent=True,
                            hash_target=want.hash_target)
        done.append(f"change {svc}")
    if svc.health != want.health:
        rs.set_health(key, want.health)
        done.append(f"set health of {svc}")
    for d in want.dests:
        have = svc.dest(d.addr, d.port)
        given = dict(mode=d.mode, weight=d.weight, u_threshold=d.u_threshold,
                     l_threshold=d.l_threshold, check=d.check, disabled=d.disabled,
                     sorry=d.sorry)
        if have is None:
            rs.add_dest(key, d.addr, d.port, **given)
            done.append(f"add real server {d.addr}:{d.port} to {svc}")
        elif (have.mode, have.weight, have.u_threshold, have.l_threshold,
              *have.health_fields()) != tuple(given.values()):
            # a check clause that stays equal keeps its state (the monitor's sync)
            rs.edit_dest(key, d.addr, d.port, **given, no_check=d.check is None)
            done.append(f"change real server {d.addr}:{d.port} of {svc}")
    # after the real servers: a service that turns FNAT has them FNAT first
    for la in want.laddrs:
        if not any((x.addr, x.dev) == (la.addr, la.dev) for x in svc.laddrs):
            rs.add_laddr(key, la.addr, la.dev)
            done.append(f"add local address {la.addr} to {svc}")


def _persistence(svc) -> tuple:
    """What the text says of a service: its timeout and netmask count when persistent
    (`ipvsadm -M` without -p keeps a mask that is not written)."""
    return (svc.sched, svc.hash_target, svc.persistent) + ((svc.timeout, svc.netmask) if svc.persistent else ())


def _settings(running: Model, target: Model, done) -> None:
    s, t = running.settings, target.settings
    changed = [n for n in sorted(RUNTIME) if getattr(s, n) != getattr(t, n)]
    for name in changed:
        setattr(s, name, getattr(t, name))
        done.append(f"set dataplane {name.replace('_', '-')} {getattr(t, name)}")
    if changed and running.engine is not None:
        running.push_settings(changed)


def _accounts(running: Model, target: Model, done) -> None:
    from rlb.commands.users import accounts
    have, want = accounts(running), accounts(target)
    mine = {n: (u.privilege, [k for k, _ in u.keys]) for n, u in have.users.items()}
    theirs = {n: (u.privilege, [k for k, _ in u.keys]) for n, u in want.users.items()}
    if mine != theirs:
        have.users = dict(want.users)
        done.append("set users")
    if have.listen != want.listen:
        have.set_listen(*(want.listen or (None, None)))
        done.append("set ssh listen")


# ----------------------------------------------------------------- commits

# What commits did in this process (the metrics): applied; refused (nothing changed);
# failed (the data plane refused a step, the previous configuration was put back);
# rolled_back (a `commit confirmed` not confirmed in time: rlb.control.history).
STATS = dict.fromkeys(("applied", "refused", "failed", "rolled_back"), 0)


def apply(running: Model, target: Model) -> list[str]:
    """All or nothing: tried on a scratch copy of the running model first (so a refusal
    changes nothing), then done; if the data plane refuses a step, the old configuration
    is put back and the error raised."""
    try:
        done = _apply(running, target)
    except _Failed as err:
        STATS["failed"] += 1
        raise err.args[0] from err.__cause__
    except Exception:
        STATS["refused"] += 1
        raise
    STATS["applied"] += 1
    return done


class _Failed(Exception):
    """A commit that failed half-way (its CommandError is args[0])."""


def _apply(running: Model, target: Model) -> list[str]:
    old, new = render(running), render(target)
    try:
        if render(build(new.numbered())).canonical() != new.canonical():
            raise CommandError("it would read back differently")
    except Exception as err:
        raise CommandError(f"internal error: the candidate would not survive a restart "
                           f"({err}); nothing was changed") from err
    want = new.canonical()
    wide = _rehearse(old, target, want)
    running.routing.check(target)        # FRR and exabgp on their sections, in their words
    running.ha.check(target)             # the VRRP sections, then keepalived's parser
    running.ops.check(target)            # the log file, the metrics endpoint
    try:
        done = transform(running, target, wide)
    except Exception as err:
        log.error("commit failed half-way (%s): restoring the previous configuration", err)
        try:
            try:
                transform(running, build(old.numbered()))
            except CommandError:
                transform(running, build(old.numbered()), wide=True)
        except Exception:
            log.exception("restoring the previous configuration failed")
            raise _Failed(CommandError(
                f"commit failed: {err}; restoring the previous configuration failed too: "
                "see the log and `show configuration diff`")) from err
        raise _Failed(CommandError(f"commit failed: {err}; the previous configuration is "
                                   "back")) from err
    if render(running).canonical() != want:
        log.error("after commit the running configuration differs from the candidate")
    return done


def _rehearse(old: Running, target: Model, want) -> bool:
    """The commit on a scratch copy of the running model: in place if that can be done,
    else wide (transform); a CommandError when neither gives the candidate."""
    first = None
    for wide in (False, True):
        scratch = build(old.numbered())
        try:
            transform(scratch, target, wide)
        except CommandError as err:
            first = first or err
            continue
        if render(scratch).canonical() == want:
            return wide
        first = first or CommandError("internal error: the commit would not give the "
                                      "candidate (nothing was changed)")
    raise first

