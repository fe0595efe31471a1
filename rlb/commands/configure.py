"""Configuration mode: the candidate, its router-style commands, commit and rollback.

`configure` gives the session a candidate (rlb.control.commit.Candidate); every command
that changes something then changes the candidate, until `commit` applies it as one
transaction or `abort` drops it. The commands here are the router-style configuration,
the form `show running-config` prints (rlb/commands/running.py):

    interface dpdk0                          (config-if)
     ip address 10.0.0.1/24
     ip neighbor 10.0.0.9 00:11:22:33:44:55
    ip route 0.0.0.0/0 via 10.0.0.254 dev dpdk0
    ip vs timeout tcp 90 tcpfin 7 udp 300
    virtual-server tcp 10.0.0.100:80          (config-vs)
     scheduler rr
     local-address 192.168.100.200 dev dpdk0
     real-server 192.168.100.2:80 mode fnat weight 1

Config files and `rlb -f` run here too, so dpip and ipvsadm lines mix with these.
"""
from __future__ import annotations

import asyncio
from dataclasses import asdict
import logging
import time

from rlb.commands import checks
from rlb.health.config import check_port
from rlb.commands.running import render
from rlb.errors import CommandError, ConfigError
from rlb.model.model import (DOT1AD, DOT1Q, TUNNEL, VLAN, VLAN_NAME, Tunnel, default_scope,
                             parse_mac)
from rlb.model.services import DEFAULT_TIMEOUTS, HOST_MASK, PERSISTENT_TIMEOUT, PROTO_NAMES
from rlb.commands.base import (CONFIG, DATAPLANE, ENABLE, INTERFACES, ROOT, ROUTE_HELP, SETTINGS,
                               ROUTE_OPTS, SERVICES, SSH, VS_DEF, VS_HELP, IF, VS,
                               Context, Reply, Shown,
                               _prefix, _vs_key, g, laddr_made, lineage, route_add, route_group)


g.words(**{
    "tcpfin": "TCP after a FIN",
    "virtual-server": "A virtual service: VIP:port, its scheduler and real servers",
    "scheduler": "How real servers are chosen",
    "hash-target": "What a hashing scheduler hashes",
    "persistent": "Clients stick to their real server",
    "netmask": "Clients in one mask share a real server",
    "real-server": "A real server of this virtual service",
    "weight": "Weight (0: no new connections)",
    "upper": "Connections at which the server stops taking new ones",
    "lower": "Connections at which it takes new ones again",
    "local-address": "A local address (FNAT LIP) of this virtual service",
    "commit": "Apply the candidate configuration as one transaction",
    "confirmed": "Roll back by itself unless confirmed by another commit",
    "comment": "A comment kept with the commit",
    "rollback": "Load an earlier commit into the candidate (0: the latest)",
    "update": "Bring the candidate's changes onto the running configuration as it is now",
    "abort": "Drop the candidate's changes and leave configuration mode",
    "configuration": "The configuration: the candidate in configuration mode",
    "diff": "What the candidate changes",
    "commits": "The commits kept for rollback, with who and when",
    "running-config": "The running configuration, as commands",
    "write": "Save the configuration",
    "copy": "Copy a configuration",
})


# --------------------------------------------------------------- entering, leaving

@g.command("configure [terminal]", node=ROOT, operational=True)
def configure(ctx):
    """A candidate copy of the running configuration for this session."""
    if ctx.configuring:
        raise CommandError("already in configuration mode")
    try:
        ctx.candidate = ctx.control.Candidate.of(ctx.running)
    except ConfigError as err:      # a state exec-mode commands allowed, the text cannot make
        raise CommandError(f"the running configuration does not read back ({err}): fix it "
                           "with dpip or ipvsadm first (show running-config)") from None
    ctx.node = CONFIG
    return Reply("Enter configuration commands, one per line. End with CNTL/Z.")


def leave(ctx):
    """Out of configuration mode; refused while the candidate holds changes."""
    if ctx.configuring and ctx.candidate.changed():
        raise CommandError("the candidate has uncommitted changes: `commit` them, or `abort` "
                           "to drop them (`show configuration diff` lists them)")
    ctx.candidate, ctx.section = None, None
    ctx.model = ctx.running
    ctx.node = ENABLE if ctx.shell else ROOT


@g.command("exit", node=CONFIG, readonly=True)
def exit_config(ctx):
    if not ctx.configuring:             # a config file's context: nothing to leave
        ctx.node = ROOT
        return Reply()
    leave(ctx)
    return Reply()


@g.command("end", node=CONFIG, readonly=True)
def end_config(ctx):
    return exit_config(ctx)


@g.command("abort", node=CONFIG)
def abort(ctx):
    ctx.candidate = None
    leave(ctx)
    return Reply("Changes dropped.")


def _section_exit(ctx):
    """Up one node; the dataplane section's way up is configuration mode when there is
    one (the shell, a candidate), else exec (`rlb -c dataplane -c ... -c exit`)."""
    ctx.section = None
    ctx.node = lineage(ctx.node, ctx.shell or ctx.configuring)[1]
    return Reply()


def _section_end(ctx):
    reply = exit_config(ctx)        # refused with uncommitted changes: the section stays
    ctx.section = None
    return reply


# every section of configuration mode (base.py declares them) and the dataplane's
for _node in [n.name for n in g.nodes.values() if n.parent == CONFIG] + [DATAPLANE]:
    g.command("exit", node=_node, readonly=True)(_section_exit)
    g.command("end", node=_node, readonly=True)(_section_end)


# ------------------------------------------------------------------ interfaces

# How configuration mode's state prints (`show running-config`): each command's show
# gives the bindings of its lines, in the order the text must be read back in.

def _port_addresses(model, port):
    # in the order that makes the same ARP source (Model._primary): those --add-laddr
    # made, written because a route needs them, last
    auto, made = laddr_made(model), model.services._auto
    return sorted((a for a in model.addresses if a.port == port.name and a.ip not in auto),
                  key=lambda a: a.ip in made)


def mac_text(mac: str) -> str:
    return ":".join(f"{b:02x}" for b in parse_mac(mac))


g.words(**{
    "encapsulation": "The VLAN tag of this interface (a VLAN on a port or a bond)",
    "dot1q": "802.1Q VLAN",
    "dot1ad": "802.1ad VLAN (S-tag, 0x88a8)",
})


def _interfaces(model, _):
    # a VLAN's stanza (its encapsulation makes it) comes before the routes on its port
    return [Shown({"dev": p.name}, p, (SETTINGS, 1) if p.kind in (VLAN, TUNNEL) else
                  (INTERFACES,)) for p in model.ports.values()]


@g.command("interface WORD$dev", node=CONFIG, help={"dev": "Interface name"}, opens=IF,
           show=_interfaces)
def interface(ctx, dev):
    # a new one is made by its first line: `encapsulation dot1q ID` (a VLAN, named
    # LINK.ID or given its link) or `tunnel mode ...`
    if dev not in ctx.model.ports and not VLAN_NAME.fullmatch(dev):
        ctx.model.port(dev)
    ctx.node, ctx.section = IF, dev
    return Reply()


def _encapsulation(model, port):
    if port.kind != VLAN:
        return []
    args = {"dot1q" if port.proto == DOT1Q else "dot1ad": True, "vid": port.vid}
    if port.name != f"{port.link}.{port.vid}":
        args["link"] = port.link
    return [args]


@g.command("encapsulation (dot1q$dot1q|dot1ad$dot1ad) (1-4094)$vid [link WORD$link]", node=IF,
           show=_encapsulation, key=(),
           help={"vid": "VLAN id", "link": "The port or bond it is on (else the name's LINK.ID)"})
def if_encapsulation(ctx, dot1q, dot1ad, vid, link):
    name = ctx.section
    if name is None:
        raise CommandError("no interface: `interface NAME` first")
    if link is None:
        link, _, tail = name.rpartition(".")
        if not link:
            raise CommandError(f"{name} does not say its link (LINK.ID): give `link PORT`")
    p = ctx.model.ports.get(name)
    proto = DOT1Q if dot1q else DOT1AD
    if p is not None and (p.kind, p.link, p.vid, p.proto) != (VLAN, link, vid, proto):
        raise CommandError(f"{name} is already {'a VLAN' if p.kind == VLAN else 'a ' + p.kind}"
                           ": `no interface` it first" if p.kind == VLAN else
                           f"{name} is a {p.kind}, not a VLAN")
    ctx.model.add_vlan(name, link, vid, proto)
    return Reply()


def _tunnel(model, port):
    if port.kind != TUNNEL:
        return []
    # the bindings are the Tunnel's fields: those at their defaults are not written
    return [{k: v for k, v in asdict(port.tunnel).items() if v not in (None, False, 0)}]


@g.command("tunnel mode (ipip|gre)$mode local A.B.C.D$local remote A.B.C.D$remote "
           "[dev WORD$dev] [key (0-4294967295)$key] [csum$csum] [ttl (0-255)$ttl]", node=IF,
           show=_tunnel, key=(),
           help={"local": "This LB's end", "remote": "The other end",
                 "dev": "The link it leaves by (the routes decide)", "key": "GRE key",
                 "ttl": "Outer TTL (0: the inner packet's)"})
def if_tunnel(ctx, mode, local, remote, dev, key, csum, ttl):
    name = ctx.section
    if name is None:
        raise CommandError("no interface: `interface NAME` first")
    t = Tunnel(mode, local, remote, dev, key, bool(csum), ttl or 0)
    p = ctx.model.ports.get(name)
    if p is None:
        ctx.model.add_tunnel(name, t)
    elif p.kind == TUNNEL:
        ctx.model.change_tunnel(name, t)
    else:
        raise CommandError(f"{name} is a {p.kind}, not a tunnel")
    return Reply()


@g.command("no interface WORD$dev", node=CONFIG, help={"dev": "VLAN or tunnel interface name"})
def no_interface(ctx, dev):
    p = ctx.model.port(dev)
    ctx.model.del_iface(dev, p.kind)
    return Reply()


@g.command("ip address A.B.C.D/M$addr [sapool]", node=IF,
           help={"addr": "Address with prefix length"},
           show=lambda model, port: [{"addr": a.iface, "sapool": a.sapool}
                                     for a in _port_addresses(model, port)],
           key={"addr": lambda iface: iface.ip}, primary=True)
def if_address(ctx, addr, sapool):
    # configuration lines say what is: one already so is no error (`rlb -f` of a text
    # the running configuration already has)
    a = ctx.model.find_address(addr.ip)
    if a is not None and (a.iface, a.port, a.sapool) == (addr, ctx.section, bool(sapool)):
        return Reply()
    ctx.model.add_address(addr, ctx.section, bool(sapool))
    return Reply()


@g.command("no ip address A.B.C.D/M$addr", node=IF, help={"addr": "Address with prefix length"})
def if_no_address(ctx, addr):
    ctx.model.del_address(addr, ctx.section)
    return Reply()


@g.command("ip neighbor A.B.C.D$ip MAC$mac", node=IF,
           help={"ip": "Neighbour address", "mac": "Its MAC address"}, key=("ip",),
           show=lambda model, port: [{"ip": n.ip, "mac": mac_text(n.mac)}
                                     for n in model.neighbours.values() if n.port == port.name])
def if_neighbor(ctx, ip, mac):
    n = ctx.model.neighbours.get(ip)
    if n is not None and (n.mac, n.port) == (mac, ctx.section):
        return Reply()
    ctx.model.add_neighbour(ip, mac, ctx.section)
    return Reply()


@g.command("no ip neighbor A.B.C.D$ip", node=IF, help={"ip": "Neighbour address"})
def if_no_neighbor(ctx, ip):
    if ip not in ctx.model.neighbours:
        raise CommandError(f"no static neighbour {ip}")
    ctx.model.del_neighbour(ip, ctx.section)
    return Reply()


# ---------------------------------------------------------------------- routes

def _route_args(prefix, port, via, src, scope, mtu, metric) -> dict:
    """A route's line: what is not its default."""
    return {"prefix": prefix, "via": via, "src": src, "dev": port,
            "scope": scope if scope != default_scope(via) else None,
            "mtu": mtu if mtu != 1500 else None, "metric": metric or None}


def _show_routes(model, _):
    return [Shown(_route_args(r.prefix, r.port, r.via, r.src, r.scope, r.mtu, r.metric),
                  rank=(route_group(r),)) for r in model.routes.values() if not r.auto]


@g.command("ip route (A.B.C.D/M$prefix|default) " + ROUTE_OPTS, node=CONFIG, help=ROUTE_HELP,
           show=_show_routes, key=("prefix", "default"))
def ip_route(ctx, prefix, default, via, src, dev, scope, mtu, metric):
    net = _prefix(prefix, default)
    r = ctx.model.routes.get((net.network_address, net.prefixlen))
    if r is not None and not r.auto and \
            _route_args(r.prefix, r.port, r.via, r.src, r.scope, r.mtu, r.metric) == \
            _route_args(net, dev, via, src, scope or default_scope(via), mtu or 1500, metric or 0):
        return Reply()
    return route_add(ctx, prefix, default, via, src, dev, scope, mtu, metric)


@g.command("no ip route (A.B.C.D/M$prefix|default)", node=CONFIG,
           help={"prefix": ROUTE_HELP["prefix"]})
def no_ip_route(ctx, prefix, default):
    ctx.model.del_route(_prefix(prefix, default))
    return Reply()


TIMEOUT_HELP = {"tcp": "Established TCP (s)", "tcpfin": "TCP after FIN (s)", "udp": "UDP (s)"}


@g.command("ip vs timeout tcp (1-2678400)$tcp tcpfin (1-2678400)$tcpfin udp (1-2678400)$udp",
           node=CONFIG, help=TIMEOUT_HELP, key=(),
           show=lambda model, _: [Shown(model.services.timeouts, rank=(SERVICES,))]
           if model.services.timeouts != DEFAULT_TIMEOUTS else [])
def ip_vs_timeout(ctx, tcp, tcpfin, udp):
    ctx.model.services.set_timeouts(tcp, tcpfin, udp)
    return Reply()


@g.command("no ip vs timeout", node=CONFIG)
def no_ip_vs_timeout(ctx):
    ctx.model.services.set_timeouts(**DEFAULT_TIMEOUTS)
    return Reply()


# ------------------------------------------------------------- virtual servers

# VS_DEF, VS_HELP, _vs_key: in rlb/commands/base.py, shared with `clear ip vs counters`


def _show_services(model, _):
    # services with local addresses first: the addresses those make may be the ARP or
    # tunnel source that other services' real servers need
    out = []
    for svc in sorted(model.services.table.values(), key=lambda svc: not svc.laddrs):
        name = {"match": str(svc.match)} if svc.match is not None else \
            {PROTO_NAMES[svc.proto].lower(): f"{svc.vaddr}:{svc.vport}"}
        out.append(Shown(name, svc, (SERVICES,)))
    return out


def _show_scheduler(model, svc):
    default = model.services.hash_target(svc.sched, None)
    return [{"sched": svc.sched,
             "target": svc.hash_target if svc.hash_target != default else None}]


def _show_persistent(model, svc):
    if not svc.persistent:
        return []
    return [{"timeout": svc.timeout if svc.timeout != PERSISTENT_TIMEOUT else None,
             "netmask": svc.netmask if svc.netmask != HOST_MASK else None}]


@g.command("virtual-server " + VS_DEF, node=CONFIG, help=VS_HELP, opens=VS,
           show=_show_services)
def virtual_server(ctx, tcp, udp, match):
    """The service's section; a new one starts with the default scheduler."""
    key = _vs_key(tcp, udp, match)
    ms = ctx.model.services
    if key not in ms.table:
        key = ms.add_service(key).key
    ctx.node, ctx.section = VS, key
    return Reply()


@g.command("no virtual-server " + VS_DEF, node=CONFIG, help=VS_HELP)
def no_virtual_server(ctx, tcp, udp, match):
    ctx.model.services.del_service(_vs_key(tcp, udp, match))
    return Reply()


@g.command("scheduler WORD$sched [hash-target WORD$target]", node=VS, show=_show_scheduler,
           key=(),
           help={"sched": "Scheduler name",
                 "target": "What a hashing scheduler hashes"})
def vs_scheduler(ctx, sched, target):
    ctx.model.services.edit_service(ctx.section, sched=sched, hash_target=target)
    return Reply()


@g.command("persistent [(1-2678400)$timeout] [netmask A.B.C.D$netmask]", node=VS,
           show=_show_persistent, key=(),
           help={"timeout": "Seconds (default 300)", "netmask": "Client mask (default /32)"})
def vs_persistent(ctx, timeout, netmask):
    ctx.model.services.edit_service(ctx.section, persistent=timeout or PERSISTENT_TIMEOUT,
                                    netmask=netmask or HOST_MASK)
    return Reply()


@g.command("no persistent", node=VS)
def vs_no_persistent(ctx):
    ctx.model.services.edit_service(ctx.section, no_persistent=True)
    return Reply()


LADDR_HELP = {"laddr": "Local address (LIP)", "dev": "Port it lives on"}


@g.command("local-address A.B.C.D$laddr dev WORD$dev", node=VS, help=LADDR_HELP,
           show=lambda model, svc: [{"laddr": la.addr, "dev": la.dev} for la in svc.laddrs])
def vs_local_address(ctx, laddr, dev):
    svc = ctx.model.services.get(ctx.section)
    if any((la.addr, la.dev) == (laddr, dev) for la in svc.laddrs):
        return Reply()
    ctx.model.services.add_laddr(ctx.section, laddr, dev)
    return Reply()


@g.command("no local-address A.B.C.D$laddr dev WORD$dev", node=VS, help=LADDR_HELP)
def vs_no_local_address(ctx, laddr, dev):
    ctx.model.services.del_laddr(ctx.section, laddr, dev)
    return Reply()


RS_HELP = {"server": "Real server address[:port] (default: the VIP's port)",
           "mode": "Forwarding mode name", "weight": "0 to 65535 (default 1)",
           "upper": "0: no limit", "lower": "0: no limit",
           **{checks.bind(st.name): st.help for st in checks.SETTINGS}}


def _show_real_servers(model, svc):
    # "%s" is str(address): an f-string goes through IPv4Address.__format__ first,
    # a Python call more on each of thousands of lines
    return [{"server": "%s:%s" % (d.addr, d.port), "mode": d.mode, "weight": d.weight,
             "upper": d.u_threshold or None, "lower": d.l_threshold or None,
             "admin": checks.DISABLED if d.disabled else None, **checks.shown(d.check)}
            for d in svc.dests if not d.sorry]


@g.command("real-server A.B.C.D:PORT$server {mode WORD$mode|weight (0-65535)$weight"
           "|upper (0-2147483647)$upper|lower (0-2147483647)$lower|(disabled|enabled)$admin"
           "|" + checks.CLAUSE_SET + "}", node=VS, help=RS_HELP,
           key=("server",), show=_show_real_servers)
def vs_real_server(ctx, server, mode, weight, upper, lower, admin, kind, **settings):
    """Adds the real server, or changes only what is given of one that exists: `check
    KIND ...` gives it its own check (the whole clause), settings without a KIND change
    those of its check, `disabled` takes it out of service (maintenance)."""
    ms = ctx.model.services
    svc = ms.get(ctx.section)
    port = svc.vport if server.port is None else server.port
    have = svc.dest(server.addr, port)
    check = checks.clause_of(kind, settings, have.check if have is not None else None)
    policy = svc.health.check if svc.health is not None else None
    check_port(check or (have.check if have is not None else None) or policy, port)
    given = dict(mode=mode, weight=weight, u_threshold=upper, l_threshold=lower, check=check,
                 disabled=None if admin is None else admin == checks.DISABLED)
    if have is None:
        ms.add_dest(ctx.section, server.addr, server.port, **given)
    else:
        ms.edit_dest(ctx.section, server.addr, server.port, **given)
    return Reply()


@g.command("no real-server A.B.C.D:PORT$server [check$check]", node=VS,
           help={"server": RS_HELP["server"]})
def vs_no_real_server(ctx, server, check):
    """The real server, or with `check` only its own check clause."""
    if check:
        ctx.model.services.edit_dest(ctx.section, server.addr, server.port, no_check=True)
    else:
        ctx.model.services.del_dest(ctx.section, server.addr, server.port)
    return Reply()


# ------------------------------------------------------------ commit, rollback

def _store(ctx):
    store = ctx.running.store
    if store is None:
        raise CommandError("commits need the daemon (this model has no commit store)")
    return store


def _need_candidate(ctx):
    if not ctx.configuring:
        raise CommandError("not in configuration mode (configure)")
    return ctx.candidate




def via(ctx) -> str:
    """How a change reached the daemon, as the history says it."""
    return SSH if ctx.via == SSH else "shell" if ctx.shell else "rlb -c"


def commit_candidate(ctx, comment: str = "", how: str = "") -> Reply:
    """Apply the session's candidate; the session stays in configuration mode with a
    fresh candidate of the new running configuration."""
    cand, store = _need_candidate(ctx), _store(ctx)
    store.flush()                   # exec-mode lines before it are a commit of their own
    now = render(ctx.running)
    if now.canonical() != cand.base.canonical():
        raise CommandError("commit refused: the running configuration changed since this "
                           f"candidate was started{_last_change(store)}. Nothing was "
                           "applied; your changes are still in the candidate (`show "
                           "configuration diff`): `update` brings them onto the running "
                           "configuration, `abort` drops them")
    if not cand.changed():
        return Reply("No changes to commit.", {"changes": []})
    done = ctx.control.apply(ctx.running, cand.model)
    try:
        ident = store.record(render(ctx.running), ctx.user, comment, how or via(ctx))
        head = f"commit {ident}: {len(done)} change(s)"
    except OSError as err:          # applied all the same: say so, and go on
        logging.getLogger("rlb.commit").error("commit applied, not kept in the history: %s",
                                              err)
        ident, head = None, (f"commit applied ({len(done)} change(s)), but not kept for "
                             f"rollback: {err.strerror or err}")
    ctx.candidate = ctx.control.Candidate.of(ctx.running)
    ctx.model = ctx.candidate.model
    text = "\n".join([head, *(f"  {d}" for d in done)])
    return Reply(text, {"commit": ident, "changes": done, "previous": now})


CONFIRM_MINUTES = 10                # `commit confirmed` alone, as Junos


@g.command("commit [confirmed [(1-65535)$n [seconds]]] [comment LINE$comment]", node=CONFIG,
           help={"n": f"Minutes (or seconds) until the automatic rollback (default "
                      f"{CONFIRM_MINUTES} minutes)",
                 "comment": "Text kept with the commit"})
def commit(ctx, confirmed, n, seconds, comment):
    """Apply the candidate; the session stays where it was (KEEPS_SECTION)."""
    n = n or CONFIRM_MINUTES
    store = _store(ctx)
    _need_candidate(ctx)
    was_pending = store.pending is not None
    if confirmed:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise CommandError("commit confirmed needs the daemon's event loop") from None
    reply = commit_candidate(ctx, comment or "")
    previous = (reply.data or {}).pop("previous", None)
    delay = n * (1 if seconds else 60) if confirmed else 0
    if confirmed and (previous is not None or was_pending):
        store.arm(ctx.running, previous or render(ctx.running), ctx.user, delay)
        unit = "second(s)" if seconds else "minute(s)"
        reply.text += (f"\ncommit confirmed: rolled back in {n} {unit} unless confirmed "
                       "(commit again to confirm)")
        reply.data["confirm_within"] = delay
    elif store.confirm():
        reply.text = (reply.text + "\n" if previous is not None else "") + \
            "commit confirmed: the automatic rollback is cancelled"
        reply.data["confirmed"] = True
    if previous is not None:
        logging.getLogger("rlb.audit").info("%s: commit %s", ctx.user, reply.data["commit"])
    return reply


@g.command("rollback (0-49)$n", node=CONFIG, help={"n": "0 the latest commit, 1 the one before, ..."})
def rollback(ctx, n):
    """Load an earlier commit into the candidate; `commit` applies it."""
    cand = _need_candidate(ctx)
    store = _store(ctx)
    lines, path = store.lines(n)
    ident = store.ident(n)
    try:
        cand.model = ctx.control.candidate_model(lines, path)
    except ConfigError as err:
        raise CommandError(f"commit {ident} (rollback {n}) does not load: {err}") from None
    ctx.model = cand.model
    _keep_section(ctx)
    return Reply(f"Loaded commit {ident} (rollback {n}) into the candidate: `show "
                 "configuration diff`, then `commit`.", {"commit": ident, "rollback": n})


def _keep_section(ctx) -> None:
    """After the candidate was replaced (rollback, update) the session stays in its
    section, as Junos stays at its edit level, unless the new candidate lacks it."""
    model = ctx.model
    if ctx.node == IF and ctx.section not in model.ports or \
            ctx.node == VS and ctx.section not in model.services.table:
        ctx.node, ctx.section = CONFIG, None


def _last_change(store) -> str:
    who = store.last_change
    return f" (last change: {who[2]} by {who[0]} at {who[1]})" if who else ""


@g.command("update", node=CONFIG)
def update(ctx):
    """The candidate's changes made again on the running configuration as it is now
    (Junos's `update`): refused, changing nothing, when both changed the same object."""
    cand = _need_candidate(ctx)
    _store(ctx).flush()             # the last change, as the refusal names it
    now = render(ctx.running)
    if now.canonical() == cand.base.canonical():
        return Reply("The candidate is up to date.", {"conflicts": []})
    try:
        merged = ctx.control.merge(cand.base, render(cand.model), now)
    except ctx.control.Conflict as c:
        lines = [f"  {where}\n    candidate: {ours}\n    running:   {theirs}"
                 for where, ours, theirs in c.items]
        raise CommandError("update refused: the candidate and the running configuration "
                           f"changed the same objects{_last_change(_store(ctx))}; nothing "
                           "was changed:\n" + "\n".join(lines)) from None
    try:
        model = ctx.control.candidate_model(merged.numbered(), "<update>")
    except ConfigError as err:
        raise CommandError(f"update refused: the merged configuration does not apply ({err}); "
                           "nothing was changed") from None
    cand.base, cand.model, ctx.model = now, model, model
    _keep_section(ctx)
    return Reply("Candidate updated to the running configuration; your changes are kept "
                 "(`show configuration diff`).", {"conflicts": []})


# --------------------------------------------------------------------- showing

@g.command("show running-config", node=ROOT, readonly=True)
def show_running(ctx):
    running = render(ctx.running)
    return Reply(running.text, running.data())


# What leaves the session in its section (as Junos and FRR): rlb.control.server._run
KEEPS_SECTION = frozenset({commit, update, rollback})
CANDIDATE = "! rlb candidate configuration (not committed)"


@g.command("show configuration", node=ROOT, readonly=True)
def show_configuration(ctx):
    """The candidate in configuration mode, else the running configuration."""
    if not ctx.configuring:
        return show_running(ctx)
    conf = render(ctx.candidate.model)
    return Reply("\n".join([CANDIDATE, *conf.lines()[1:]]), conf.data())


@g.command("show configuration diff", node=ROOT, readonly=True)
def show_configuration_diff(ctx):
    if not ctx.configuring:
        return Reply("", {"diff": []})
    text = ctx.control.diff(render(ctx.running), render(ctx.candidate.model))
    return Reply(text, {"diff": text.splitlines()})


@g.command("show configuration commits", node=ROOT, readonly=True)
def show_commits(ctx):
    store = _store(ctx)
    rows = store.history()
    lines = [f"{'#':>3}  {'Commit':>6}  {'When':<19}  {'User':<12} {'Source':<7} Comment"]
    lines += [f"{r['rollback']:>3}  {r['id']:>6}  {r['time'] or '?':<19}  "
              f"{r['user'] or '?':<12} {r['source'] or '-':<7} {r['comment']}".rstrip()
              for r in rows]
    data = {"commits": rows, "pending_confirm": None}
    if store.pending is not None:
        left = max(0, int(store.pending["deadline"] - time.time()))
        lines.append(f"commit confirmed by {store.pending['user']}: rollback in {left} s "
                     "unless confirmed")
        data["pending_confirm"] = {"user": store.pending["user"], "seconds_left": left}
    data["failed_rollback"] = store.failed
    if store.failed is not None:
        f = store.failed
        lines.append(f"% the automatic rollback of the commit confirmed by {f['user']} failed "
                     f"at {f['time']}: {f['error']} (the unconfirmed configuration runs: "
                     "rollback 1, then commit)")
    return Reply("\n".join(lines), data)


@g.command("write memory", node=ROOT, operational=True)
def write_memory(ctx):
    """Save the running configuration as the startup file (atomically, previous kept)."""
    store = _store(ctx)
    store.flush()                   # the changes it saves are in the history before it
    path = store.write_startup(render(ctx.running))
    return Reply(f"Building configuration...\n[OK] {path}", {"path": path})


@g.command("copy running-config startup-config", node=ROOT, operational=True)
def copy_running_startup(ctx):
    return write_memory(ctx)


def load(ctx, lines, source: str, replace: bool = False, keepalived: bool = False) -> Reply:
    """`rlb -f FILE`: the file's lines on a candidate of the running configuration (or,
    replace, the file alone is the candidate, as Junos's `load override`), then one
    commit; a line that does not apply stops it all (FILE:LINE: reason). keepalived: the
    lines are a keepalived.conf's (rlb.ha.kaconf), whose services and VRRP instances
    replace the running ones."""
    cand = ctx.control.Candidate.of(ctx.running)
    if keepalived:
        cand.model = ctx.control.candidate_model(_replacing(cand.base.numbered(), lines),
                                                 source)
    elif replace:
        cand.model = ctx.control.candidate_model(lines, source)
    else:
        ctx.control.run_lines(Context(cand.model, user=ctx.user, control=ctx.control), lines,
                              source)
    ctx.candidate = cand
    try:
        how = "keepalived " if keepalived else "replace " if replace else ""
        reply = commit_candidate(ctx, f"load {how}{source}",
                                 "rlb keepalived load" if keepalived else "rlb -f")
        if reply.data.pop("previous", None) is not None and _store(ctx).confirm():
            reply.text += "\ncommit confirmed: the automatic rollback is cancelled"
        return reply
    finally:
        ctx.candidate, ctx.model = None, ctx.running


# the sections of the configuration a keepalived.conf holds: `rlb keepalived load` and
# the daemon's reload of its -k file replace them all, and leave the rest (ports,
# addresses, routes) as they are
KEEPALIVED_OWNS = ("virtual-server ", "vrrp instance ")
RENDERED_END = "end"                # a rendered configuration's last line


def _replacing(base, imported) -> list:
    """The lines of a configuration whose services and VRRP instances are the keepalived
    file's (its lines in rlb's words, rlb.ha.kaconf), the rest being base's (a rendered
    running configuration)."""
    keep, skipping = [], False
    for n, text in base:
        if not text[:1].isspace():
            skipping = text.startswith(KEEPALIVED_OWNS)
        if not skipping and text.strip() != RENDERED_END:
            keep.append((n, text))
    return [*keep, *imported]


# Tab offers what exists: ports for interface (dev), modes for real-server
# each with its help from its registration: the mode's display name, the scheduler's help
g.completer("mode", lambda ctx: [(n, f"{m.display} (ipvsadm {m.flag})")
                                 for n, m in ctx.model.services.modes.items()])
g.completer("sched", lambda ctx: [(n, s.help) for n, s in ctx.model.services.schedulers.items()])
g.completer("match", lambda ctx: [str(s.match) for s in ctx.model.services.table.values()
                                  if s.match is not None])


# the service's health lines go in its section, after the real servers' (and use their words)
import rlb.commands.health  # noqa: E402,F401
