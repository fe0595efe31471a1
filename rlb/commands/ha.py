"""Master/backup as the shell has it: `vrrp instance NAME` sections (rlb.model.ha), which
the daemon's keepalived runs (rlb.ha.keepalived), and `show vrrp`."""
from __future__ import annotations

from dataclasses import replace

from rlb.commands.base import CONFIG, HA, ROOT, VRRP, Reply, Shown, g
from rlb.errors import CommandError
from rlb.model.ha import ADVERT, PRIORITY, SYNC_PORT, VERSION, SyncPeer, VrrpInstance

g.words(**{
    "vrrp": "Master/backup by VRRP (stock keepalived on a port's kni, run by rlb)",
    "instance": "A VRRP instance: one virtual router",
    "state": "The state keepalived starts in (the higher priority becomes MASTER)",
    "master": "Start as MASTER",
    "backup": "Start as BACKUP",
    "virtual-router-id": "The virtual router's id, the same on every LB of the pair",
    "priority": "This LB's priority (the higher one is MASTER)",
    "advert-interval": "Seconds between adverts (VRRPv3: down to 0.01)",
    "vrrp-version": "VRRP version (keepalived's version: 2, or 3 for adverts under a second)",
    "authentication": "VRRPv2 simple password",
    "pass": "The password (at most 8 characters)",
    "virtual-address": "An address the MASTER holds (a VIP)",
    "unicast-peer": "Send adverts to this peer (else multicast 224.0.0.18)",
    "unicast-source": "Our source address of unicast adverts (else the kni's)",
    "nopreempt": "A returning higher priority does not take over (flows stay where they are)",
    "preempt-delay": "Seconds a returning higher priority waits before it takes over",
    "garp": "Gratuitous ARPs for the addresses on becoming MASTER",
    "master-delay": "Seconds before the second burst",
    "master-repeat": "Gratuitous ARPs per burst",
    "master-refresh": "Seconds between bursts while MASTER (0: none)",
    "sync": "Connection sync with the peer LB (so that connections survive a takeover)",
    "peer": "The peer LB's address on the LAN (its kni's)",
})
STATES = ("master", "backup")


def _inst(ctx) -> VrrpInstance:
    inst = ctx.model.ha.instance(ctx.section)
    if inst is None:
        raise CommandError(f"no vrrp instance {ctx.section}")
    return inst


def _set(ctx, **changes) -> Reply:
    ctx.model.ha.set_instance(ctx.section, replace(_inst(ctx), **changes))
    return Reply()


def _number(value: float) -> str:
    return f"{value:g}"


@g.command("vrrp instance WORD$name", node=CONFIG, opens=VRRP,
           show=lambda model, _: [Shown({"name": n}, i, (HA,), bare=True)
                                  for n, i in model.ha.instances],
           help={"name": "Its name (keepalived's vrrp_instance)"})
def vrrp_instance(ctx, name):
    """A VRRP virtual router on a port's kni, run by stock keepalived: while MASTER this
    LB holds the virtual addresses (and the local addresses of the services on them),
    while BACKUP its peer does."""
    if not name.replace("_", "").replace("-", "").isalnum() or len(name) > 32:
        raise CommandError(f"bad instance name {name!r}: letters, digits, - and _, at most 32")
    if ctx.model.ha.instance(name) is None:
        ctx.model.ha.set_instance(name, VrrpInstance())
    ctx.node, ctx.section = VRRP, name
    return Reply()


@g.command("no vrrp instance WORD$name", node=CONFIG, help={"name": "Its name"})
def no_vrrp_instance(ctx, name):
    if ctx.model.ha.instance(name) is None:
        raise CommandError(f"no vrrp instance {name}")
    ctx.model.ha.set_instance(name, None)
    return Reply()


@g.command("interface WORD$dev", node=VRRP, key=(),
           show=lambda model, i: [{"dev": i.port}] if i.port else [],
           help={"dev": "Port (VRRP runs on its kni)"})
def vrrp_interface(ctx, dev):
    ctx.model.port(dev)
    return _set(ctx, port=dev)


@g.command("state (master|backup)$state", node=VRRP, key=(),
           show=lambda model, i: [{"state": i.state}])
def vrrp_state(ctx, state):
    return _set(ctx, state=state)


@g.command("virtual-router-id (1-255)$vrid", node=VRRP, key=(),
           show=lambda model, i: [{"vrid": i.vrid}] if i.vrid else [])
def vrrp_vrid(ctx, vrid):
    return _set(ctx, vrid=vrid)


@g.command("priority (1-254)$prio", node=VRRP, key=(),
           show=lambda model, i: [{"prio": i.priority}] if i.priority != PRIORITY else [])
def vrrp_priority(ctx, prio):
    return _set(ctx, priority=prio)


@g.command("advert-interval WORD$seconds", node=VRRP, key=(),
           show=lambda model, i: [{"seconds": _number(i.advert)}] if i.advert != ADVERT
           else [], help={"seconds": f"Seconds, 0.01 to 255 (default {ADVERT})"})
def vrrp_advert(ctx, seconds):
    try:
        value = float(seconds)
    except ValueError:
        value = -1.0
    if not 0.01 <= value <= 255 or round(value, 2) != value:
        raise CommandError(f"advert-interval {seconds}: seconds from 0.01 to 255, "
                           "in hundredths")
    return _set(ctx, advert=value)


@g.command("vrrp-version (2-3)$version", node=VRRP, key=(),
           show=lambda model, i: [{"version": i.version}] if i.version != VERSION else [])
def vrrp_version(ctx, version):
    return _set(ctx, version=version)


@g.command("authentication pass WORD$password", node=VRRP, key=(),
           show=lambda model, i: [{"password": i.auth}] if i.auth else [],
           help={"password": "At most 8 characters (VRRPv2's field)"})
def vrrp_auth(ctx, password):
    if len(password) > 8 or not password.isprintable() or '"' in password:
        raise CommandError("the password is at most 8 printable characters, no quote")
    return _set(ctx, auth=password)


@g.command("no authentication", node=VRRP)
def vrrp_no_auth(ctx):
    return _set(ctx, auth=None)


@g.command("virtual-address A.B.C.D/M$addr", node=VRRP, key=("addr",),
           show=lambda model, i: [{"addr": a} for a in i.addresses],
           help={"addr": "Address/prefix length (a VIP: /32)"})
def vrrp_address(ctx, addr):
    if addr.ip.is_multicast or addr.ip.is_unspecified or addr.ip.is_loopback:
        raise CommandError(f"{addr.ip} cannot be a virtual address")
    if ctx.model.find_address(addr.ip) is not None:
        raise CommandError(f"{addr.ip} is an address of this LB (dpip): the MASTER holds a "
                           "virtual address, not both LBs")
    return _set(ctx, addresses=_inst(ctx).with_address(addr, True).addresses)


@g.command("no virtual-address A.B.C.D/M$addr", node=VRRP, help={"addr": "The address"})
def vrrp_no_address(ctx, addr):
    if addr.ip not in {a.ip for a in _inst(ctx).addresses}:
        raise CommandError(f"{addr.ip} is not a virtual address of {ctx.section}")
    return _set(ctx, addresses=_inst(ctx).with_address(addr, False).addresses)


@g.command("unicast-peer A.B.C.D$peer", node=VRRP, key=("peer",),
           show=lambda model, i: [{"peer": p} for p in i.peers],
           help={"peer": "The other LB's kni address"})
def vrrp_peer(ctx, peer):
    return _set(ctx, peers=_inst(ctx).with_peer(peer, True).peers)


@g.command("no unicast-peer A.B.C.D$peer", node=VRRP, help={"peer": "The peer"})
def vrrp_no_peer(ctx, peer):
    if peer not in _inst(ctx).peers:
        raise CommandError(f"{peer} is not a unicast peer of {ctx.section}")
    return _set(ctx, peers=_inst(ctx).with_peer(peer, False).peers)


@g.command("unicast-source A.B.C.D$src", node=VRRP, key=(),
           show=lambda model, i: [{"src": i.source}] if i.source else [],
           help={"src": "This LB's kni address"})
def vrrp_source(ctx, src):
    return _set(ctx, source=src)


@g.command("no unicast-source", node=VRRP)
def vrrp_no_source(ctx):
    return _set(ctx, source=None)


@g.command("nopreempt", node=VRRP, key=(),
           show=lambda model, i: [{}] if not i.preempt else [])
def vrrp_nopreempt(ctx):
    """keepalived's nopreempt (its state must then be backup on both LBs)."""
    return _set(ctx, preempt=False)


@g.command("no nopreempt", node=VRRP)
def vrrp_preempt(ctx):
    return _set(ctx, preempt=True)


@g.command("preempt-delay (1-1000)$delay", node=VRRP, key=(),
           show=lambda model, i: [{"delay": i.preempt_delay}] if i.preempt_delay else [])
def vrrp_preempt_delay(ctx, delay):
    return _set(ctx, preempt_delay=delay)


@g.command("no preempt-delay", node=VRRP)
def vrrp_no_preempt_delay(ctx):
    return _set(ctx, preempt_delay=None)


GARP = ("delay", "repeat", "refresh")


@g.command("garp {master-delay (0-255)$delay|master-repeat (1-255)$repeat|"
           "master-refresh (0-86400)$refresh}", node=VRRP, key=(),
           show=lambda model, i: [a] if (a := {k: getattr(i, f"garp_{k}") for k in GARP
                                               if getattr(i, f"garp_{k}") is not None})
           else [])
def vrrp_garp(ctx, delay, repeat, refresh):
    """keepalived's vrrp_garp_master_delay, _repeat and _refresh for this instance: the
    whole line (what it does not say is keepalived's default)."""
    return _set(ctx, garp_delay=delay, garp_repeat=repeat, garp_refresh=refresh)


@g.command("no garp", node=VRRP)
def vrrp_no_garp(ctx):
    return _set(ctx, garp_delay=None, garp_repeat=None, garp_refresh=None)


# --------------------------------------------------------------------------- sync

@g.command("sync peer A.B.C.D$peer [port (1-65535)$port]", node=CONFIG, key=(),
           show=lambda model, _: [{"peer": p.peer, "port": p.port if p.port != SYNC_PORT
                                   else None}] if (p := model.ha.sync) else [],
           help={"peer": "The other LB's kni address", "port": f"UDP port (default {SYNC_PORT})"})
def sync_peer(ctx, peer, port):
    """Tell the peer LB of this one's connections and hold the peer's, inactive, so that
    established FNAT, NAT and DR connections go on after a takeover; each side asks the
    other for its whole table when it starts or hears the peer again (bulk sync)."""
    if peer.is_multicast or peer.is_unspecified or peer.is_loopback:
        raise CommandError(f"{peer} cannot be a peer")
    if ctx.model.find_address(peer) is not None:
        raise CommandError(f"{peer} is an address of this LB, not of its peer")
    ctx.model.ha.set_sync(SyncPeer(peer, port or SYNC_PORT))
    return Reply()


@g.command("no sync", node=CONFIG)
def no_sync(ctx):
    ctx.model.ha.set_sync(None)
    return Reply()


@g.command("show sync", node=ROOT, readonly=True)
def show_sync(ctx):
    """Connection sync: the peer, whether it is heard, events and datagrams each way,
    what was refused or lost, the lag, both tables' sizes, the last bulk syncs."""
    syncer = getattr(ctx.model, "syncer", None)
    if syncer is None:
        raise CommandError("data plane not running")
    data = syncer.view()
    return Reply(_sync_text(data), data)


def _sync_text(d) -> str:
    if d["peer"] is None:
        return "Connection sync is not configured (sync peer A.B.C.D)"
    lag = d["lag_ms"]
    out = [f"Peer {d['peer']} port {d['port']}: {d['state']}"
           + (f" for {d['for']:.1f}s" if d["for"] is not None else "")
           + (f"  (VRRP: {', '.join(d['roles'])})" if d["roles"] else ""),
           f"  sent      {d['sent']['events']} events in {d['sent']['datagrams']} datagrams "
           f"({d['sent']['bytes']} bytes), lost {d['lost']}",
           f"  received  {d['received']['events']} events in {d['received']['datagrams']} "
           f"datagrams, applied {d['applied']}, refused {d['refused']}, dropped "
           f"{d['dropped']}",
           f"  lag       p50 {lag['p50']} ms, p99 {lag['p99']} ms, max {lag['max']} ms"
           if lag["samples"] else "  lag       -",
           f"  table     {d['conns']} here, {d['peer_conns'] if d['peer_conns'] is not None else '-'} "
           "at the peer",
           f"  bulk      sent {d['bulk_sent']['events']} events"
           + (f" {d['bulk_sent']['ago']:.0f}s ago" if d['bulk_sent']['ago'] is not None else "")
           + f", received {d['bulk_received']['events']}"
           + (f" {d['bulk_received']['ago']:.0f}s ago" if d['bulk_received']['ago'] is not None
              else "")]
    if d["problem"]:
        out.append(f"% {d['problem']}")
    return "\n".join(out)


# --------------------------------------------------------------------------- show vrrp

@g.command("show vrrp", node=ROOT, readonly=True)
def show_vrrp(ctx):
    """Each VRRP instance: its state as keepalived last said, since when, its priority,
    the addresses it moves, keepalived's process."""
    ka = ctx.model.keepalived
    if ka is None:
        raise CommandError("data plane not running")        # keepalived runs beside it
    data = ka.view()
    return Reply(_vrrp_text(data), data)


def _vrrp_text(data) -> str:
    if not data["instances"]:
        return "VRRP is not configured (vrrp instance NAME)"
    out = [f"keepalived: {data['process']}"]
    if data["problem"]:
        out.append(f"% {data['problem']}")
    out.append(f"{'Instance':<12} {'Port':<8} {'VRID':>4} {'Prio':>4} {'State':<8} "
               f"{'For':>8}  Addresses")
    for i in data["instances"]:
        since = "-" if i["for"] is None else f"{i['for']:.1f}s"
        out.append(f"{i['name']:<12} {i['port'] or '-':<8} {i['vrid'] or '-':>4} "
                   f"{i['priority']:>4} {i['state']:<8} {since:>8}  "
                   f"{', '.join(i['addresses'])}")
    return "\n".join(out)
