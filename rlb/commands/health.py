"""Health in the virtual-server section (the service's policy: default check, quorum,
sorry server, alpha, omega, what down means) and `show ip vs health`.

A real server's own `check` clause and its maintenance (`disabled`) are part of its
`real-server` line (rlb/commands/configure.py); the clause's grammar is checks.py.

    virtual-server tcp 10.0.0.100:80
     check http path /health interval 2 rise 2 fall 3
     quorum 2 hysteresis 1
     quorum-up dpip addr add 10.0.0.100/32 dev dpdk1
     sorry-server 192.168.100.9:80
     on-failure remove
     real-server 192.168.100.2:80 mode fnat weight 1 check tcp interval 1
"""
from __future__ import annotations

import time
from dataclasses import replace

from rlb.commands import checks
from rlb.commands.base import ROOT, VS, VS_DEF, VS_HELP, Reply, _vs_key, g
from rlb.errors import CommandError
from rlb.health.config import (DEFAULT_HOLD_DOWN, DEFAULT_POLICY, INHIBIT, REMOVE,
                               check_port)

g.words(**{
    "quorum": "Weight of live real servers the service needs to be up",
    "hysteresis": "How far the weight may move around the quorum without changing the state",
    "quorum-up": "Command run when the service gains its quorum",
    "quorum-down": "Command run when the service loses its quorum",
    "sorry-server": "Server that takes the clients while the service has no quorum",
    "alpha": "Real servers start down until their first successful check",
    "omega": "Run quorum-down when the daemon stops",
    "on-failure": "What a failed real server gets",
    INHIBIT: "Weight 0: no new connections, established ones drain",
    REMOVE: "Taken out of the scheduler's list",
    "health": "Health of the real servers and services",
    "announce": "Announce the VIP while the service is up (on a port's kni)",
    "all-services": "Announce the VIP only while all its services with announce are up "
                    "(default: while any is)",
    "hold-down": "Seconds a withdrawn VIP waits before it is announced again",
})


def _policy(model, svc):
    return svc.health or DEFAULT_POLICY


def _set(ctx, **changes) -> Reply:
    ms = ctx.model.services
    svc = ms.get(ctx.section)
    new = replace(_policy(ctx.model, svc), **changes)
    ms.set_health(ctx.section, None if new == DEFAULT_POLICY else new)
    return Reply()


# ------------------------------------------------------------------ the default check

@g.command(checks.CLAUSE_DEF, node=VS, key=(), help={checks.bind(st.name): st.help
                                                     for st in checks.SETTINGS},
           show=lambda model, svc: [checks.shown(c) for c in (_policy(model, svc).check,)
                                    if c is not None])
def vs_check(ctx, kind, **settings):
    """The check of every real server of the service that has none of its own."""
    clause = checks.clause_of(kind, settings, None)
    for d in ctx.model.services.get(ctx.section).dests:
        if d.check is None and not d.sorry:
            check_port(clause, d.port)
    return _set(ctx, check=clause)


@g.command("no check", node=VS)
def vs_no_check(ctx):
    return _set(ctx, check=None)


# ------------------------------------------------------------------ quorum

def _show_quorum(model, svc):
    p = _policy(model, svc)
    if (p.quorum, p.hysteresis) == (DEFAULT_POLICY.quorum, DEFAULT_POLICY.hysteresis):
        return []
    return [{"quorum": p.quorum, "hysteresis": p.hysteresis or None}]


@g.command("quorum (1-4294967295)$quorum [hysteresis (0-4294967295)$hysteresis]", node=VS,
           key=(), show=_show_quorum,
           help={"quorum": "Sum of live weights (default 1)", "hysteresis": "Default 0"})
def vs_quorum(ctx, quorum, hysteresis):
    """keepalived's quorum: the service is up while its live servers' weights reach it."""
    return _set(ctx, quorum=quorum, hysteresis=hysteresis or 0)


@g.command("no quorum", node=VS)
def vs_no_quorum(ctx):
    return _set(ctx, quorum=DEFAULT_POLICY.quorum, hysteresis=DEFAULT_POLICY.hysteresis)


HOOK_HELP = {"command": "Shell command line"}


@g.command("quorum-up LINE$command", node=VS, key=(), help=HOOK_HELP,
           show=lambda model, svc: [{"command": c} for c in (_policy(model, svc).quorum_up,) if c])
def vs_quorum_up(ctx, command):
    return _set(ctx, quorum_up=command)


@g.command("no quorum-up", node=VS)
def vs_no_quorum_up(ctx):
    return _set(ctx, quorum_up=None)


@g.command("quorum-down LINE$command", node=VS, key=(), help=HOOK_HELP,
           show=lambda model, svc: [{"command": c} for c in (_policy(model, svc).quorum_down,)
                                    if c])
def vs_quorum_down(ctx, command):
    return _set(ctx, quorum_down=command)


@g.command("no quorum-down", node=VS)
def vs_no_quorum_down(ctx):
    return _set(ctx, quorum_down=None)


# ------------------------------------------------------------------ flags

@g.command("alpha", node=VS, key=(),
           show=lambda model, svc: [{}] if _policy(model, svc).alpha else [])
def vs_alpha(ctx):
    return _set(ctx, alpha=True)


@g.command("no alpha", node=VS)
def vs_no_alpha(ctx):
    return _set(ctx, alpha=False)


@g.command("omega", node=VS, key=(),
           show=lambda model, svc: [{}] if _policy(model, svc).omega else [])
def vs_omega(ctx):
    return _set(ctx, omega=True)


@g.command("no omega", node=VS)
def vs_no_omega(ctx):
    return _set(ctx, omega=False)


@g.command(f"on-failure ({INHIBIT}|{REMOVE})$action", node=VS, key=(),
           show=lambda model, svc: [] if _policy(model, svc).inhibit else [{"action": REMOVE}])
def vs_on_failure(ctx, action):
    """Down means weight 0 (inhibit, the default: connections drain) or out of the list."""
    return _set(ctx, inhibit=action == INHIBIT)


# ------------------------------------------------------------------ announcement

def _show_announce(model, svc):
    p = _policy(model, svc)
    if p.announce is None:
        return []
    args = {"dev": p.announce,
            "hold": None if p.hold_down == DEFAULT_HOLD_DOWN else int(p.hold_down)}
    if p.announce_all:
        args["every"] = True
    return [args]


@g.command("announce WORD$dev [hold-down (1-3600)$hold] [all-services$every]", node=VS,
           key=(), show=_show_announce,
           help={"dev": "Port on whose kni the VIP is put (FRR's redistribute connected "
                        "announces it)",
                 "hold": f"Seconds a withdrawn VIP waits before it comes back (default "
                         f"{DEFAULT_HOLD_DOWN:g})"})
def vs_announce(ctx, dev, hold, every):
    """Announce the VIP while the service is up: on <dev>.kni, withdrawn when it is down
    (rlb.routing.announce). A VIP of several services is announced while any of them is
    up, or (`all-services` on any of them) only while all are."""
    svc = ctx.model.services.get(ctx.section)
    if svc.match is not None:
        raise CommandError(f"{svc} has no VIP to announce (a match service)")
    ctx.model.port(dev)                           # a port of ours, else its error
    return _set(ctx, announce=dev, hold_down=float(hold) if hold else DEFAULT_HOLD_DOWN,
                announce_all=bool(every))


@g.command("no announce", node=VS)
def vs_no_announce(ctx):
    return _set(ctx, announce=None, hold_down=DEFAULT_HOLD_DOWN, announce_all=False)


# ------------------------------------------------------------------ sorry server

def _sorry(svc):
    return next((d for d in svc.dests if d.sorry), None)


def _show_sorry(model, svc):
    d = _sorry(svc)
    if d is None:
        return []
    return [{"server": "%s:%s" % (d.addr, d.port), "mode": d.mode,
             "weight": d.weight if d.weight != 1 else None}]


@g.command("sorry-server A.B.C.D:PORT$server [{mode WORD$mode|weight (0-65535)$weight}]",
           node=VS, key=(), show=_show_sorry,
           help={"server": "Address[:port] (default: the VIP's port)",
                 "mode": "Forwarding mode (default: the real servers')",
                 "weight": "Its weight while it serves (default 1)"})
def vs_sorry_server(ctx, server, mode, weight):
    """The server clients go to while the service has lost its quorum (keepalived)."""
    ms = ctx.model.services
    svc = ms.get(ctx.section)
    port = svc.vport if server.port is None else server.port
    old = _sorry(svc)
    other = svc.dest(server.addr, port)
    if other is not None and not other.sorry:
        raise CommandError(f"{server.addr}:{port} is a real server of {svc}")
    mode = mode or (old.mode if old is not None else None) or next(
        (d.mode for d in svc.dests if not d.sorry), None)
    if old is not None and (old.addr, old.port) != (server.addr, port):
        ms.del_dest(ctx.section, old.addr, old.port)
        old = None
    if old is None:
        ms.add_dest(ctx.section, server.addr, server.port, mode=mode, weight=weight, sorry=True)
    else:
        ms.edit_dest(ctx.section, server.addr, server.port, mode=mode, weight=weight)
    return Reply()


@g.command("no sorry-server", node=VS)
def vs_no_sorry_server(ctx):
    d = _sorry(ctx.model.services.get(ctx.section))
    if d is not None:
        ctx.model.services.del_dest(ctx.section, d.addr, d.port)
    return Reply()


# ------------------------------------------------------------------ show ip vs health

def _ago(t, now):
    if t is None:
        return "never"
    s = max(0.0, now - t)
    return f"{s:.1f}s" if s < 60 else f"{int(s // 60)}m{int(s % 60):02d}s"


def _health_text(rows) -> str:
    now = time.time()
    if not rows:
        return "No service has health checks."
    out = []
    for row in rows:
        out.append(f"{row['service']}  {row['state']} for {_ago(row['since'], now)}  quorum "
                   f"{row['quorum']} hysteresis {row['hysteresis']}  live weight "
                   f"{row['weight_sum']}" + ("  sorry server active" if row["sorry_active"]
                                             else ""))
        out.append(f"  {'Real server':<22} {'State':<9} {'Since':>8} {'Weight':>11} "
                   f"{'OK':>6} {'Fail':>6} {'Latency':>8}  Last result")
        for s in row["servers"]:
            if s.get("sorry"):
                state = "SERVING" if s["in_pool"] else "STANDBY"
                out.append(f"  {s['server']:<22} {state:<9} {'':>8} "
                           f"{s['weight']:>5}/{s['configured_weight']:<5} {'':>6} {'':>6} "
                           f"{'':>8}  sorry server")
                continue
            state = "DISABLED" if s["disabled"] else s["state"]
            lat = "" if s["latency"] is None else f"{s['latency'] * 1000:.1f}ms"
            last = "no check" if s["check"] is None else (
                "not run yet" if s["last"] is None else
                s["last"] + (f": {s['error']}" if s["error"] else ""))
            out.append(f"  {s['server']:<22} {state:<9} {_ago(s['since'], now):>8} "
                       f"{s['weight']:>5}/{s['configured_weight']:<5} {s['successes']:>6} "
                       f"{s['failures']:>6} {lat:>8}  {last}")
            p = s["passive"]
            if s["check"] is not None:
                out.append(f"      check {s['check']}")
            if p.get("answered") is not None:
                out.append(f"      passive: answered {p['answered']} unanswered "
                           f"{p['unanswered']} refused {p['refused']} fails in a row "
                           f"{p['fails_in_row']}")
    return "\n".join(out)


@g.command("show ip vs health [" + VS_DEF + "]", node=ROOT, readonly=True, help=VS_HELP)
def show_health(ctx, tcp, udp, match):
    """Health of every service with checks, or of one: state, since, last result, weights."""
    key = None
    if tcp or udp or match:
        key = _vs_key(tcp, udp, match)
        ctx.model.services.get(key)
    monitor = ctx.model.monitor
    if monitor is None:
        raise CommandError("data plane not running")     # health checks run in the daemon
    rows = monitor.view(key)
    return Reply(_health_text(rows), rows)
