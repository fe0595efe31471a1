"""Router-style `show` commands: the same views as `dpip ... show` and `ipvsadm -L`, under
the names an FRR or Junos user types first (`sh ip vs`, `sh ip route`, `sh int`).

Each one calls the handler of the tool it mirrors, so text and `| json` are the same.
"""
from __future__ import annotations

from rlb.shell import commands, ipvsadm
from rlb.shell.commands import ROOT, g

g.words(**{
    "stats": "With packet and byte counters",
    "rate": "With rates (per second)",
    "connections": "The connection table",
})


@g.command("show ip vs [stats|rate|connections|timeout]", node=ROOT, readonly=True)
def show_ip_vs(ctx, stats, rate, connections, timeout):
    """ipvsadm -ln [--stats|--rate], -lnc, --timeout."""
    return ipvsadm.vs_list(ctx, lst_c=None, tcp=None, udp=None, match=None,
                           connection=connections, stats=stats, rate=rate, exact=None,
                           timeout=timeout)


@g.command("show ip route", node=ROOT, readonly=True)
def show_ip_route(ctx):
    return commands.route_show(ctx, dev=None)


@g.command("show ip neighbor", node=ROOT, readonly=True)
def show_ip_neighbor(ctx):
    return commands.neigh_show(ctx, dev=None)


@g.command("show ip address", node=ROOT, readonly=True)
def show_ip_address(ctx):
    return commands.addr_show(ctx, dev=None)


@g.command("show interface [WORD$dev] [stats]", node=ROOT, readonly=True,
           help={"dev": "Port name"})
def show_interface(ctx, dev, stats):
    return commands.link_show(ctx, dev=dev, stats=stats)
