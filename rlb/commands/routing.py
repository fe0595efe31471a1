"""Routing as the shell shows it: `show routing vip` (rlb.routing.announce), each VIP a
service announces, its state, why, since when and when it may come back."""
from __future__ import annotations

import time

from rlb.commands.base import ROOT, Reply, g
from rlb.errors import CommandError

g.words(**{
    "routing": "Route announcement of the VIPs",
    "vip": "Each VIP a service announces (`announce` in its virtual-server section)",
    "drain": "Withdraw every VIP of this LB (maintenance); connections drain",
    "undrain": "Announce the VIPs again as their services' health says",
})


def _vip_text(rows) -> str:
    if not rows:
        return "No VIP is announced (no virtual-server has `announce PORT`)."
    now = time.time()
    out = [f"{'VIP':<16} {'Port':<8} {'State':<10} {'For':>8} {'Conns':>7}  Why"]
    for r in rows:
        why = r["why"]
        if r["next_announce"] is not None:
            why += f"; not before {max(0.0, r['next_announce'] - now):.1f}s"
        out.append(f"{r['vip']:<16} {r['dev']:<8} {r['state']:<10} {r['for']:>7.1f}s "
                   f"{r['connections']:>7}  {why}")
    return "\n".join(out)


def _announcer(ctx):
    if ctx.model.announcer is None:
        raise CommandError("data plane not running")      # announcements run in the daemon
    return ctx.model.announcer


@g.command("show routing vip", node=ROOT, readonly=True)
def show_routing_vip(ctx):
    """Each VIP announced from its services: announced, withdrawn or held down, and why."""
    rows = _announcer(ctx).view()
    return Reply(_vip_text(rows), rows)


@g.command("routing drain", node=ROOT)
def routing_drain(ctx):
    """Maintenance: withdraw every VIP now; the data plane serves on while the neighbours
    move the flows away, and `show routing vip` counts the connections left."""
    a = _announcer(ctx)
    a.drain(True)
    rows = a.view()
    left = sum(r["connections"] for r in rows)
    return Reply(f"{len(rows)} VIP(s) withdrawn; {left} connection(s) left "
                 "(show routing vip: until 0, then stop or upgrade)", rows)


@g.command("routing undrain", node=ROOT)
def routing_undrain(ctx):
    """Announce the VIPs again as their services' health says (each after its hold-down)."""
    a = _announcer(ctx)
    a.drain(False)
    return Reply(_vip_text(a.view()), a.view())
