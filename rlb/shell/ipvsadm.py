"""The DPVS `ipvsadm` commands on the one grammar: services, real servers, local addresses.

Options come in any order after the command option, as getopt allows (`{...}` sets);
what getopt cannot say (a compulsory option, two exclusive ones) is checked here with
ipvsadm's own words. Listings print what ipvsadm/DPVS print (tools/ipvsadm/ipvsadm.c).
"""
from __future__ import annotations

import re
from ipaddress import IPv4Address

from rlb.control.model import CommandError
from rlb.control.services import HOST_MASK, PERSISTENT_TIMEOUT, PROTO_NAMES, TCP, UDP, svc_key
from rlb.shell.commands import Reply, g

# (short, long, help): one line per option, the only place its words are described
_OPTIONS = [
    ("-A", "--add-service", "Add a virtual service"),
    ("-E", "--edit-service", "Edit a virtual service (only the options given change)"),
    ("-D", "--delete-service", "Delete a virtual service"),
    ("-C", "--clear", "Clear the whole table"),
    ("-a", "--add-server", "Add a real server to a service"),
    ("-e", "--edit-server", "Edit a real server (only the options given change)"),
    ("-d", "--delete-server", "Delete a real server"),
    ("-Z", "--zero", "Zero the counters of a service, or of all"),
    ("-P", "--add-laddr", "Add a local address (FNAT) to a service"),
    ("-Q", "--del-laddr", "Delete a local address from a service"),
    ("-G", "--get-laddr", "List local addresses"),
    ("-t", "--tcp-service", "TCP virtual service VIP:port"),
    ("-u", "--udp-service", "UDP virtual service VIP:port"),
    ("-H", "--match", "SNAT match service: proto=,src-range=,dst-range=,iif=,oif="),
    ("-p", "--persistent", "Persistent service [timeout in seconds, default 300]"),
    ("-M", "--netmask", "Persistence granularity mask"),
    ("-r", "--real-server", "Real server address[:port] (port: the service's)"),
    ("-w", "--weight", "Real server capacity (0: no new connections)"),
    ("-x", "--u-threshold", "Upper connection threshold (0: none)"),
    ("-y", "--l-threshold", "Lower connection threshold"),
    ("-b", "--fullnat", "Full NAT forwarding (needs local addresses)"),
    ("-g", "--gatewaying", "Direct routing forwarding (the default)"),
    ("-i", "--ipip", "IP-in-IP tunnel forwarding"),
    ("-m", "--masquerading", "NAT (masquerading) forwarding"),
    ("-J", "--snat", "SNAT forwarding"),
    ("-n", "--numeric", "Numeric addresses and ports (rlb always is)"),
    ("-c", "--connection", "List the connection table"),
    ("-X", "--exact", "Exact numbers (no K, M, G)"),
    ("-z", "--laddr", "Local address"),
    ("-F", "--ifname", "Port of the local address"),
]
g.words({w: h for short, long, h in _OPTIONS for w in (short, long)})
g.words({
    "ipvsadm": "IPVS virtual server administration (DPVS ipvsadm)",
    # -s is also dpip's statistics option; its help is in rlb/shell/commands.py
    "--scheduler": "Scheduling method (default wlc)",
    "-L": "List the table", "-l": "List the table", "--list": "List the table",
    "-ln": "List the table (-l -n)", "-Ln": "List the table (-L -n)",
    "-lnc": "List the connections (-l -n -c)", "-Lnc": "List the connections (-L -n -c)",
    "-lcn": "List the connections (-l -c -n)", "-Lcn": "List the connections (-L -c -n)",
    "-lc": "List the connections (-l -c)", "-Lc": "List the connections (-L -c)",
    "--stats": "List with counters", "--rate": "List with rates",
    "--timeout": "List the connection timeouts",
    "--set": "Set the connection timeouts (tcp tcpfin udp; 0 leaves one unchanged)",
})

SVC = "(-t|--tcp-service) A.B.C.D:PORT$tcp|(-u|--udp-service) A.B.C.D:PORT$udp|(-H|--match) WORD$match"
SVC_OPTS = ("(-s|--scheduler) WORD$sched|(-p|--persistent)$persistent [(1-2678400)$timeout]"
            "|(-M|--netmask) A.B.C.D$netmask")
RS = "(-r|--real-server) A.B.C.D:PORT$server"
RS_OPTS = ("(-b|-g|-i|-m|-J|--fullnat|--gatewaying|--ipip|--masquerading|--snat)$fwd"
           "|(-w|--weight) (0-65535)$weight|(-x|--u-threshold) (0-2147483647)$upper"
           "|(-y|--l-threshold) (0-2147483647)$lower")
LADDR = "(-z|--laddr) A.B.C.D$laddr|(-F|--ifname) WORD$dev"
HELP = {
    "tcp": "VIP:port of a TCP service", "udp": "VIP:port of a UDP service",
    "match": "proto=tcp,src-range=A-B,dst-range=A-B:P1-P2,iif=DEV,oif=DEV",
    "sched": "Scheduler name (rr, wrr, wlc, ...)", "timeout": "Persistence timeout (seconds)",
    "netmask": "Clients in one mask share a real server", "server": "Real server address[:port]",
    "weight": "Weight", "upper": "Connections at which the server stops taking new ones",
    "lower": "Connections at which it takes new ones again", "laddr": "Local address (LIP)",
    "dev": "Port name (dpdk0, ...)",
}


def _command(definition, readonly=False, operational=False):
    """Install an exec-node command with the help of the variables it has."""
    return g.command(definition, node="exec", readonly=readonly, operational=operational,
                     help={k: v for k, v in HELP.items() if re.search(rf"\${k}\b", definition)})


def _service(tcp, udp, match, command, required=True):
    """The service key from -t/-u; ipvsadm's errors for none, two, or -H."""
    given = [(proto, v) for proto, v in ((TCP, tcp), (UDP, udp)) if v is not None]
    if len(given) + (match is not None) > 1:
        raise CommandError("multiple 'service-address' options specified")
    if match is not None:
        from rlb.control.match import parse_match
        from rlb.control.services import match_key
        return match_key(parse_match(match))
    if not given:
        if required:
            raise CommandError(f"You need to supply the 'service-address' option for the "
                               f"'{command}' command")
        return None
    proto, value = given[0]
    return svc_key(proto, value.addr, value.port)


def _need(value, option, command):
    if value is None:
        raise CommandError(f"You need to supply the '{option}' option for the '{command}' command")
    return value


def _svc_data(ms, svc):
    forward = {name: m.display for name, m in ms.modes.items()} if svc.dests else {}
    return {
        "proto": "MATCH" if svc.match is not None else PROTO_NAMES[svc.proto],
        "match": None if svc.match is None else str(svc.match),
        "vip": str(svc.vaddr), "port": svc.vport,
        "scheduler": svc.sched, "persistent": svc.timeout if svc.persistent else None,
        "netmask": str(svc.netmask), "slot": svc.slot,
        "dests": [{"addr": str(d.addr), "port": d.port, "forward": forward[d.mode],
                   "mode": d.mode, "weight": d.weight, "u_threshold": d.u_threshold,
                   "l_threshold": d.l_threshold, "available": d.available, "slot": d.slot}
                  for d in svc.dests],
        "laddrs": [{"addr": str(la.addr), "dev": la.dev} for la in svc.laddrs],
    }


# ------------------------------------------------------------------- services


def _persistence(persistent, timeout):
    if persistent is None:
        return None
    return PERSISTENT_TIMEOUT if timeout is None else timeout


@_command(f"ipvsadm (-A|--add-service) {{{SVC}|{SVC_OPTS}}}")
def vs_add_service(ctx, tcp, udp, match, sched, persistent, timeout, netmask):
    """Add a virtual service."""
    ms = ctx.model.services
    key = _service(tcp, udp, match, "add-service")
    svc = ms.add_service(key, sched=sched, persistent=_persistence(persistent, timeout),
                         netmask=netmask)
    return Reply("", _svc_data(ms, svc))


@_command(f"ipvsadm (-E|--edit-service) {{{SVC}|{SVC_OPTS}}}")
def vs_edit_service(ctx, tcp, udp, match, sched, persistent, timeout, netmask):
    """Edit a virtual service."""
    ms = ctx.model.services
    key = _service(tcp, udp, match, "edit-service")
    svc = ms.edit_service(key, sched=sched, persistent=_persistence(persistent, timeout),
                          netmask=netmask)
    return Reply("", _svc_data(ms, svc))


@_command(f"ipvsadm (-D|--delete-service) {{{SVC}}}")
def vs_delete_service(ctx, tcp, udp, match):
    """Delete a virtual service."""
    ms = ctx.model.services
    svc = ms.del_service(_service(tcp, udp, match, "delete-service"))
    return Reply("", {"deleted": _svc_data(ms, svc)})


@_command("ipvsadm (-C|--clear)")
def vs_clear(ctx):
    """Clear the whole table."""
    ms = ctx.model.services
    return Reply("", {"deleted": [_svc_data(ms, s) for s in ms.clear()]})


# --------------------------------------------------------------- real servers


def _dest_args(ctx, tcp, udp, match, server, fwd, command):
    ms = ctx.model.services
    key = _service(tcp, udp, match, command)
    server = _need(server, "real-server", command)
    return ms, key, server, (ms.mode_for_flag(fwd) if fwd is not None else None)


@_command(f"ipvsadm (-a|--add-server) {{{SVC}|{RS}|{RS_OPTS}}}")
def vs_add_server(ctx, tcp, udp, match, server, fwd, weight, upper, lower):
    """Add a real server."""
    ms, key, server, mode = _dest_args(ctx, tcp, udp, match, server, fwd, "add-server")
    if mode is None:
        mode = ms.mode_for_flag(None)
    ms.add_dest(key, server.addr, server.port, mode=mode, weight=weight, u_threshold=upper,
                l_threshold=lower)
    return Reply("", _svc_data(ms, ms.table[key]))


@_command(f"ipvsadm (-e|--edit-server) {{{SVC}|{RS}|{RS_OPTS}}}")
def vs_edit_server(ctx, tcp, udp, match, server, fwd, weight, upper, lower):
    """Edit a real server."""
    ms, key, server, mode = _dest_args(ctx, tcp, udp, match, server, fwd, "edit-server")
    ms.edit_dest(key, server.addr, server.port, mode=mode, weight=weight, u_threshold=upper,
                 l_threshold=lower)
    return Reply("", _svc_data(ms, ms.table[key]))


@_command(f"ipvsadm (-d|--delete-server) {{{SVC}|{RS}}}")
def vs_delete_server(ctx, tcp, udp, match, server):
    """Delete a real server."""
    ms, key, server, _ = _dest_args(ctx, tcp, udp, match, server, None, "delete-server")
    ms.del_dest(key, server.addr, server.port)
    return Reply("", _svc_data(ms, ms.table[key]))


# ------------------------------------------------------------ local addresses


def _laddr_args(ctx, tcp, udp, match, laddr, dev, command):
    key = _service(tcp, udp, match, command)
    return key, _need(laddr, "local-address", command), _need(dev, "ifname", command)


@_command(f"ipvsadm (-P|--add-laddr) {{{SVC}|{LADDR}}}")
def vs_add_laddr(ctx, tcp, udp, match, laddr, dev):
    """Add a local address to a service."""
    ms = ctx.model.services
    key, laddr, dev = _laddr_args(ctx, tcp, udp, match, laddr, dev, "add-laddr")
    ms.add_laddr(key, laddr, dev)
    return Reply("", _svc_data(ms, ms.table[key]))


@_command(f"ipvsadm (-Q|--del-laddr) {{{SVC}|{LADDR}}}")
def vs_del_laddr(ctx, tcp, udp, match, laddr, dev):
    """Delete a local address from a service."""
    ms = ctx.model.services
    key, laddr, dev = _laddr_args(ctx, tcp, udp, match, laddr, dev, "del-laddr")
    ms.del_laddr(key, laddr, dev)
    return Reply("", _svc_data(ms, ms.table[key]))


@_command(f"ipvsadm (-G|--get-laddr) {{{SVC}}}", readonly=True)
def vs_get_laddr(ctx, tcp, udp, match):
    """List local addresses: of one service, or of all."""
    ms = ctx.model.services
    key = _service(tcp, udp, match, "get-laddr", required=False)
    # SNAT match services cannot have local addresses (and have no VIP:VPORT to show)
    svcs = [ms.get(key)] if key is not None else [s for s in _sorted(ms) if s.match is None]
    lines, rows = [], []
    for svc in svcs:
        # DPVS's columns: CONFLICTS counts local ports found in use, CONNS those in use now
        laddrs = [{"addr": str(la.addr), "dev": la.dev, "conflicts": st["miss"],
                   "conns": st["used"]}
                  for la, st in zip(svc.laddrs, ms.laddr_stats(svc), strict=True)]
        lines.append(f"{f'{svc.vaddr}:{svc.vport}':<20} {len(laddrs):<8}")
        lines += [f"{'':<20} {'':<8} {la['addr']:<20} {la['conflicts']:<10} {la['conns']:<10}"
                  for la in laddrs]
        rows.append({"proto": PROTO_NAMES[svc.proto], "vip": str(svc.vaddr), "port": svc.vport,
                     "total": len(laddrs), "laddrs": laddrs})
    if svcs:    # DPVS prints the title with the first service, so nothing when there is none
        lines.insert(0, f"{'VIP:VPORT':<20} {'TOTAL':<8} {'SNAT_IP':<20} {'CONFLICTS':<10} "
                        f"{'CONNS':<10}")
    return Reply("\n".join(line.rstrip() for line in lines), rows)


# ------------------------------------------------------- timeouts and counters


@g.command("ipvsadm --set (0-2678400)$tcp (0-2678400)$tcpfin (0-2678400)$udp", node="exec",
           help={"tcp": "TCP session timeout (seconds; 0: unchanged)",
                 "tcpfin": "TCP timeout after a FIN (seconds; 0: unchanged)",
                 "udp": "UDP session timeout (seconds; 0: unchanged)"})
def vs_set(ctx, tcp, tcpfin, udp):
    """Set the connection timeouts."""
    return Reply("", ctx.model.services.set_timeouts(tcp, tcpfin, udp))


@_command(f"ipvsadm (-Z|--zero) {{{SVC}}}", operational=True)
def vs_zero(ctx, tcp, udp, match):
    """Zero counters."""
    key = _service(tcp, udp, match, "zero", required=False)
    ctx.model.services.zero(key)
    return Reply("", {"zeroed": "all" if key is None else str(ctx.model.services.table[key])})


# -------------------------------------------------------------------- listing


def _sorted(ms):
    # ipvsadm sorts services by protocol, address, port (ipvs_cmp_services)
    return sorted(ms.table.values(), key=lambda s: (s.proto, s.vaddr, s.vport))


def _num(i, exact):
    """ipvsadm's print_largenum: 9 columns, K/M/G/T past 100 million unless --exact."""
    if exact:
        return f"{i:>{max(9, len(str(i)) + 1)}}"
    if i < 10**8:
        return f"{i:>9}"
    for limit, div, suffix in ((10**9, 10**3, "K"), (10**11, 10**6, "M"), (10**14, 10**9, "G")):
        if i < limit:
            return f"{i // div:>8}{suffix}"
    return f"{i // 10**12:>8}T"


def _svc_head(svc):
    if svc.match is not None:
        return f"MATCH {svc.match}"
    return f"{PROTO_NAMES[svc.proto]}  {svc.vaddr}:{svc.vport}"[:33]


COUNTERS = ("conns", "inpkts", "outpkts", "inbytes", "outbytes")
RATES = ("cps", "inpps", "outpps", "inbps", "outbps")


def _list(ms, svcs, stats, rate, exact):
    rates = ms.rates() if rate and not stats else None
    if stats:
        lines = [f"{'Prot LocalAddress:Port':<33} {'Conns':>8} {'InPkts':>8} {'OutPkts':>8} "
                 f"{'InBytes':>8} {'OutBytes':>8}", "  -> RemoteAddress:Port"]
    elif rates is not None:
        lines = [f"{'Prot LocalAddress:Port':<33} {'CPS':>8} {'InPPS':>8} {'OutPPS':>8} "
                 f"{'InBPS':>8} {'OutBPS':>8}", "  -> RemoteAddress:Port"]
    else:
        lines = ["Prot LocalAddress:Port Scheduler Flags",
                 "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn"]
    rows = []
    for svc in svcs:
        row = _svc_data(ms, svc)
        row["stats"] = ms.svc_stats(svc)
        if stats:
            lines.append(f"{_svc_head(svc):<33}" + "".join(_num(row["stats"][k], exact)
                                                          for k in COUNTERS))
        elif rates is not None:
            row["rate"] = rates.get(("svc", svc.slot), dict.fromkeys(RATES, 0))
            lines.append(f"{_svc_head(svc):<33}" + "".join(_num(row["rate"][k], exact)
                                                          for k in RATES))
        else:
            head = f"{_svc_head(svc)} {svc.sched}"
            if svc.persistent:
                head += f" persistent {svc.timeout}"
                if svc.netmask != HOST_MASK:
                    head += f" mask {svc.netmask}"
            lines.append(head)
        # and real servers by address and port (ipvs_cmp_dests)
        pairs = sorted(zip(svc.dests, row["dests"], strict=True),
                       key=lambda p: (p[0].addr, p[0].port))
        for d, drow in pairs:
            drow["stats"] = st = ms.dest_stats(d)
            name = f"{d.addr}:{d.port}"[:28]
            if stats:
                lines.append(f"  -> {name:<28}" + "".join(_num(st[k], exact) for k in COUNTERS))
            elif rates is not None:
                drow["rate"] = r = rates.get(("dest", d.slot), dict.fromkeys(RATES, 0))
                lines.append(f"  -> {name:<28} {r['cps']:>8} {r['inpps']:>8} {r['outpps']:>8}"
                             + _num(r["inbps"], exact) + _num(r["outbps"], exact))
            else:
                lines.append(f"  -> {name:<28} {drow['forward']:<7} {d.weight:<6} "
                             f"{st['activeconns']:<10} {st['inactconns']:<10}")
        row["dests"] = [drow for _, drow in pairs]
        rows.append(row)
    return lines, rows


def _addr(ip, port):
    return f"{IPv4Address(ip)}:{port}"


def _connections(ms):
    lines = ["IPVS connection entries",
             f"pro expire {'state':<11} {'source':<18} {'virtual':<18} {'local':<18} destination"]
    names = list(ms.modes) if ms.table else []
    rows = []
    for c in ms.connections():
        proto = {**PROTO_NAMES, 1: "ICMP"}.get(c["proto"], "--")
        left = max(0, int(c["expires"]))
        src, vip = _addr(c["caddr"], c["cport"]), _addr(c["vaddr"], c["vport"])
        # modes without a local address: DPVS shows the client's there
        local = _addr(c["laddr"], c["lport"]) if c["laddr"] or c["lport"] else src
        dst = _addr(c["daddr"], c["dport"])
        mode = c.get("mode")
        if isinstance(mode, int) and 0 <= mode < len(names):
            mode = names[mode]
        state = proto if c["state"] == "UDP" else c["state"]      # UDP, ICMP: no TCP state
        lines.append(f"{proto:<3} {left // 60:02d}:{left % 60:02d}  {state:<11} {src:<18} "
                     f"{vip:<18} {local:<18} {dst}")
        rows.append({"proto": proto, "expires": c["expires"], "state": c["state"],
                     "source": src, "virtual": vip, "local": local, "destination": dst,
                     "mode": mode, "cport": c["cport"], "lport": c["lport"],
                     "worker": c.get("worker")})
    return lines, rows


LIST = ("ipvsadm ((-L|-l|--list)$lst|(-ln|-Ln)$lst_n|(-lnc|-Lnc|-lcn|-Lcn|-lc|-Lc)$lst_c) "
        f"{{{SVC}|(-n|--numeric)$numeric|(-c|--connection)$connection|--stats|--rate"
        "|(-X|--exact)$exact|--timeout}")


@_command(LIST, readonly=True)
def vs_list(ctx, lst_c, tcp, udp, match, connection, stats, rate, exact, timeout):
    """List the table, one service, the connections or the timeouts."""
    ms = ctx.model.services
    key = _service(tcp, udp, match, "list", required=False)
    connection = connection or lst_c
    if (connection or timeout) and (stats or rate):
        raise CommandError("options conflicts in the list command")
    # exclusive options, in ipvsadm's option order (generic_opt_check)
    given = [name for name, on in (("connection", connection), ("service-address", key),
                                   ("timeout", timeout)) if on]
    if len(given) > 1:
        raise CommandError(f"The option '{given[1]}' conflicts with the '{given[0]}' option "
                           "in the 'list' command")
    if connection:
        lines, rows = _connections(ms)
        return Reply("\n".join(lines), {"connections": rows})
    if timeout:
        t = ms.timeouts
        return Reply(f"Timeout (tcp tcpfin udp): {t['tcp']} {t['tcpfin']} {t['udp']}", dict(t))
    if key is not None:
        # one service: no version line (ipvsadm's list_service)
        lines, rows = _list(ms, [ms.get(key)], stats, rate, exact)
        return Reply("\n".join(line.rstrip() for line in lines), {"services": rows})
    lines, rows = _list(ms, _sorted(ms), stats, rate, exact)
    # DPVS reports no IPVS version or table size: its ipvsadm prints zeros
    lines.insert(0, "IP Virtual Server version 0.0.0 (size=0)")
    return Reply("\n".join(line.rstrip() for line in lines), {"services": rows})


@_command("ipvsadm", readonly=True)
def vs_list_all(ctx):
    """List the table (ipvsadm without arguments)."""
    return vs_list(ctx, lst_c=None, tcp=None, udp=None, match=None, connection=None, stats=None,
                   rate=None, exact=None, timeout=None)
