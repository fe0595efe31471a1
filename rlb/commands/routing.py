"""Routing as the shell shows it: `show routing vip` (rlb.routing.announce), each VIP a
service announces, its state, why, since when and when it may come back."""
from __future__ import annotations

import time

from rlb.commands.base import ROOT, Reply, g
from rlb.errors import CommandError

g.words(**{
    "routing": "Route announcement of the VIPs",
    "vip": "Each VIP a service announces (`announce` in its virtual-server section)",
})


def _vip_text(rows) -> str:
    if not rows:
        return "No VIP is announced (no virtual-server has `announce PORT`)."
    now = time.time()
    out = [f"{'VIP':<16} {'Port':<8} {'State':<10} {'For':>8}  Why"]
    for r in rows:
        why = r["why"]
        if r["next_announce"] is not None:
            why += f"; not before {max(0.0, r['next_announce'] - now):.1f}s"
        out.append(f"{r['vip']:<16} {r['dev']:<8} {r['state']:<10} {r['for']:>7.1f}s  {why}")
    return "\n".join(out)


@g.command("show routing vip", node=ROOT, readonly=True)
def show_routing_vip(ctx):
    """Each VIP announced from its services: announced, withdrawn or held down, and why."""
    announcer = ctx.model.announcer
    if announcer is None:
        raise CommandError("data plane not running")      # announcements run in the daemon
    rows = announcer.view()
    return Reply(_vip_text(rows), rows)
