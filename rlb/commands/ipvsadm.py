"""The DPVS `ipvsadm` commands on the one grammar: services, real servers, local addresses.

Options come in any order after the command option, as getopt allows (`{...}` sets);
what getopt cannot say (a compulsory option, two exclusive ones) is checked here with
ipvsadm's own words. Listings print what ipvsadm/DPVS print (tools/ipvsadm/ipvsadm.c).
"""
from __future__ import annotations

import io
import re
from collections import Counter
from ipaddress import IPv4Address

from rlb import plugins
from rlb.model.model import CommandError
from rlb.model.services import (DEFAULT_MODE, DEFAULT_SCHEDULER, HOST_MASK, PERSISTENT_TIMEOUT,
                                PROTO_NAMES, TCP, UDP, svc_key)
from rlb.commands.base import Reply, g
from rlb.commands.grammar import ParseError

# (short, long, help): one line per option, the only place its words are described
_OPTIONS = [
    ("-A", "--add-service", "Add a virtual service"),
    ("-E", "--edit-service", "Edit a virtual service (options not given: their defaults)"),
    ("-D", "--delete-service", "Delete a virtual service"),
    ("-C", "--clear", "Clear the whole table"),
    ("-a", "--add-server", "Add a real server to a service"),
    ("-e", "--edit-server", "Edit a real server (options not given: their defaults)"),
    ("-d", "--delete-server", "Delete a real server"),
    ("-Z", "--zero", "Zero the counters of a service, or of all"),
    ("-P", "--add-laddr", "Add a local address (FNAT) to a service"),
    ("-Q", "--del-laddr", "Delete a local address from a service"),
    ("-G", "--get-laddr", "List local addresses"),
    ("-S", "--save", "Print the rules that rebuild the table (ipvsadm -R reads them)"),
    ("-R", "--restore", "Restore rules from standard input: rlb ipvsadm -R < FILE"),
    ("-t", "--tcp-service", "TCP virtual service VIP:port"),
    ("-u", "--udp-service", "UDP virtual service VIP:port"),
    ("-H", "--match", "SNAT match service: proto=,src-range=,dst-range=,iif=,oif="),
    ("-p", "--persistent", "Persistent service [timeout in seconds, default 300]"),
    ("-M", "--netmask", "Persistence granularity mask"),
    ("-r", "--real-server", "Real server address[:port] (port: the service's)"),
    ("-w", "--weight", "Real server capacity (0: no new connections)"),
    ("-x", "--u-threshold", "Upper connection threshold (0: none)"),
    ("-y", "--l-threshold", "Lower connection threshold"),
    ("-n", "--numeric", "Numeric addresses and ports (rlb always is)"),
    ("-c", "--connection", "List the connection table"),
    ("-X", "--exact", "Exact numbers (no K, M, G)"),
    ("-z", "--laddr", "Local address"),
    ("-F", "--ifname", "Port of the local address"),
]
_MODES = list(plugins.modes().values())


def _words(modes) -> dict:
    """Each option's help; the forwarding modes' flags are the registry's (a plugin's
    mode brings its own), and one that is also a listing option (-X) is described as both."""
    helps = {w: h for short, long, h in _OPTIONS for w in (short, long)}
    for m in modes:
        text = (m.help or f"{m.display} forwarding") + (
            " (the default)" if m.name == DEFAULT_MODE else "")
        for w in (m.flag, m.long_flag):
            helps[w] = f"{helps[w]}; with -r: {text}" if w in helps else text
    return helps


g.words(_words(_MODES))
g.words({
    "ipvsadm": "IPVS virtual server administration (DPVS ipvsadm)",
    # -s is also dpip's statistics option; its help is in rlb/commands/base.py
    "--scheduler": f"Scheduling method (default {DEFAULT_SCHEDULER})",
    "-L": "List the table", "-l": "List the table", "--list": "List the table",
    "-ln": "List the table (-l -n)", "-Ln": "List the table (-L -n)",
    "-lnc": "List the connections (-l -n -c)", "-Lnc": "List the connections (-L -n -c)",
    "-lcn": "List the connections (-l -c -n)", "-Lcn": "List the connections (-L -c -n)",
    "-lc": "List the connections (-l -c)", "-Lc": "List the connections (-L -c)",
    "--stats": "List with counters", "--rate": "List with rates",
    "--timeout": "List the connection timeouts",
    "--hash-target": "What a hashing scheduler hashes (" + "; ".join(
        f"{s.name}: {', '.join(s.targets)}, {s.targets[0]} the default"
        for s in plugins.schedulers().values() if s.targets) + ")",
    "--thresholds": "List with the real servers' thresholds",
    "--persistent-conn": "List persistence: templates per real server (with -c: templates)",
    "--sort": "Sort the listing (the default)", "--nosort": "List in the order made",
    "--set": "Set the connection timeouts (tcp tcpfin udp; 0 leaves one unchanged)",
})

SVC = "(-t|--tcp-service) A.B.C.D:PORT$tcp|(-u|--udp-service) A.B.C.D:PORT$udp|(-H|--match) WORD$match"
SVC_OPTS = ("(-s|--scheduler) WORD$sched|(-p|--persistent)$persistent [(1-2678400)$timeout]"
            "|(-M|--netmask) A.B.C.D$netmask|--hash-target WORD$target")
RS = "(-r|--real-server) A.B.C.D:PORT$server"
RS_VALUES = ("(-w|--weight) (0-65535)$weight|(-x|--u-threshold) (0-2147483647)$upper"
             "|(-y|--l-threshold) (0-2147483647)$lower")
_FLAGS = [m.flag for m in _MODES] + [m.long_flag for m in _MODES]
# a mode's flag must not be a word the real-server commands already take
_TAKEN = set(_FLAGS) & set(re.findall(r"--?[A-Za-z][\w-]*", f"-a --add-server -e --edit-server "
                                                              f"{SVC} {RS} {RS_VALUES}"))
if _TAKEN:
    raise plugins.PluginError(f"forwarding mode flags {sorted(_TAKEN)} are ipvsadm -a options")
RS_OPTS = f"({'|'.join(_FLAGS)})$fwd|{RS_VALUES}"
LADDR = "(-z|--laddr) A.B.C.D$laddr|(-F|--ifname) WORD$dev"
HELP = {
    "tcp": "VIP:port of a TCP service", "udp": "VIP:port of a UDP service",
    "match": "proto=tcp,src-range=A-B,dst-range=A-B:P1-P2,iif=DEV,oif=DEV",
    "sched": "Scheduler name", "timeout": "Persistence timeout (seconds)",
    "netmask": "Clients in one mask share a real server", "server": "Real server address[:port]",
    "weight": "Weight", "upper": "Connections at which the server stops taking new ones",
    "lower": "Connections at which it takes new ones again", "laddr": "Local address (LIP)",
    "dev": "Port name (dpdk0, ...)", "target": " or ".join(dict.fromkeys(
        t for s in plugins.schedulers().values() for t in s.targets)),
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
        from rlb.model.match import parse_match
        from rlb.model.services import match_key
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
        "scheduler": svc.sched, "hash_target": svc.hash_target,
        "persistent": svc.timeout if svc.persistent else None,
        "netmask": str(svc.netmask), "slot": svc.slot,
        # the real servers the scheduler has now, at the weight health gives them (as
        # IPVS lists them while keepalived checks); the configured one beside it
        "dests": [{"addr": str(d.addr), "port": d.port, "forward": forward[d.mode],
                   "mode": d.mode, "weight": w, "configured_weight": d.weight,
                   "u_threshold": d.u_threshold, "l_threshold": d.l_threshold,
                   "available": w > 0, "slot": d.slot}
                  for d in ms.listed(svc) for w in (ms.weight_now(d),)],
        "laddrs": [{"addr": str(la.addr), "dev": la.dev} for la in svc.laddrs],
    }


# ------------------------------------------------------------------- services


def _persistence(persistent, timeout):
    if persistent is None:
        return None
    return PERSISTENT_TIMEOUT if timeout is None else timeout


@_command(f"ipvsadm (-A|--add-service) {{{SVC}|{SVC_OPTS}}}")
def vs_add_service(ctx, tcp, udp, match, sched, persistent, timeout, netmask, target):
    """Add a virtual service."""
    ms = ctx.model.services
    key = _service(tcp, udp, match, "add-service")
    svc = ms.add_service(key, sched=sched, persistent=_persistence(persistent, timeout),
                         netmask=netmask, hash_target=target)
    return Reply("", _svc_data(ms, svc))


@_command(f"ipvsadm (-E|--edit-service) {{{SVC}|{SVC_OPTS}}}")
def vs_edit_service(ctx, tcp, udp, match, sched, persistent, timeout, netmask, target):
    """Edit a virtual service: as LVS's ipvsadm, the service gets exactly the options given,
    the others their defaults as with -A (no -s: DEFAULT_SCHEDULER; no -p: not persistent)."""
    ms = ctx.model.services
    key = _service(tcp, udp, match, "edit-service")
    persistent, sched = _persistence(persistent, timeout), sched or DEFAULT_SCHEDULER
    ms.get(key)
    svc = ms.edit_service(key, sched=sched, persistent=persistent,
                          netmask=(netmask or HOST_MASK) if persistent else None,
                          no_persistent=persistent is None,
                          hash_target=ms.hash_target(sched, target))
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
    """Edit a real server: as LVS's ipvsadm (and DPVS's), it gets exactly the options
    given, the others their defaults as with -a (-g, weight 1, no thresholds)."""
    ms, key, server, mode = _dest_args(ctx, tcp, udp, match, server, fwd, "edit-server")
    try:
        ms.edit_dest(key, server.addr, server.port, mode=mode or ms.mode_for_flag(None),
                     weight=1 if weight is None else weight, u_threshold=upper or 0,
                     l_threshold=lower or 0)
    except CommandError as err:
        d = ms.get(key, "Service not defined").dest(server.addr, server.port)
        if mode is not None or d is None or d.mode == ms.mode_for_flag(None):
            raise
        m = ms.modes[d.mode]
        raise CommandError(f"{err} (-e without a forwarding option means "
                           f"{ms.modes[ms.mode_for_flag(None)].flag}, as in LVS: give {m.flag} "
                           f"to keep it {m.display})") from None
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


def _sorted(ms, nosort=False):
    # ipvsadm sorts services by protocol, address, port (ipvs_cmp_services); --nosort
    # lists them in the order they were made
    svcs = list(ms.table.values())
    return svcs if nosort else sorted(svcs, key=lambda s: (s.proto, s.vaddr, s.vport))


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
# ipvsadm's print_title: the first format given of these wins
TITLES = {
    "stats": f"{'Prot LocalAddress:Port':<33} {'Conns':>8} {'InPkts':>8} {'OutPkts':>8} "
             f"{'InBytes':>8} {'OutBytes':>8}\n  -> RemoteAddress:Port",
    "rate": f"{'Prot LocalAddress:Port':<33} {'CPS':>8} {'InPPS':>8} {'OutPPS':>8} "
            f"{'InBPS':>8} {'OutBPS':>8}\n  -> RemoteAddress:Port",
    "thresholds": f"{'Prot LocalAddress:Port':<33} {'Uthreshold':<10} {'Lthreshold':<10} "
                  f"{'ActiveConn':<10} {'InActConn':<10}\n  -> RemoteAddress:Port",
    "persistent_conn": f"{'Prot LocalAddress:Port':<33} {'Weight':<9} {'PersistConn':<11} "
                       f"{'ActiveConn':<10} {'InActConn':<10}\n  -> RemoteAddress:Port",
    "": "Prot LocalAddress:Port Scheduler Flags\n"
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
}


def _flags(svc):
    """What follows the scheduler on a service's line (ipvsadm's print_service_entry)."""
    words = [svc.sched] + ([svc.hash_target] if svc.hash_target else [])
    if svc.persistent:
        words.append(f"persistent {svc.timeout}")
        if svc.netmask != HOST_MASK:
            words.append(f"mask {svc.netmask}")
    return " ".join(words)


def _dest_line(fmt, name, d, st, r, pc, exact, forward, weight):
    if fmt == "stats":
        return f"  -> {name:<28}" + "".join(_num(st[k], exact) for k in COUNTERS)
    if fmt == "rate":
        return (f"  -> {name:<28} {r['cps']:>8} {r['inpps']:>8} {r['outpps']:>8}"
                + _num(r["inbps"], exact) + _num(r["outbps"], exact))
    if fmt == "thresholds":
        return (f"  -> {name:<28} {d.u_threshold:<10} {d.l_threshold:<10} "
                f"{st['activeconns']:<10} {st['inactconns']:<10}")
    if fmt == "persistent_conn":
        return (f"  -> {name:<28} {weight:<9} {pc:<11} {st['activeconns']:<10} "
                f"{st['inactconns']:<10}")
    return (f"  -> {name:<28} {forward:<7} {weight:<6} {st['activeconns']:<10} "
            f"{st['inactconns']:<10}")


def _persist_counts(ms):
    """Persistence templates per real server slot (PersistConn)."""
    return Counter(c["dest"] for c in ms.connections() if c.get("template"))


def _list(ms, svcs, fmt, exact, nosort=False):
    rates = ms.rates() if fmt == "rate" else {}
    persist = _persist_counts(ms) if fmt == "persistent_conn" else Counter()
    lines, rows = TITLES[fmt].split("\n"), []
    for svc in svcs:
        row = _svc_data(ms, svc)
        row["stats"] = ms.svc_stats(svc)
        if fmt == "stats":
            lines.append(f"{_svc_head(svc):<33}" + "".join(_num(row["stats"][k], exact)
                                                          for k in COUNTERS))
        elif fmt == "rate":
            row["rate"] = rates.get(("svc", svc.slot), dict.fromkeys(RATES, 0))
            lines.append(f"{_svc_head(svc):<33}" + "".join(_num(row["rate"][k], exact)
                                                          for k in RATES))
        else:
            lines.append(f"{_svc_head(svc)} {_flags(svc)}")
        # and real servers by address and port (ipvs_cmp_dests)
        pairs = list(zip(ms.listed(svc), row["dests"], strict=True))
        if not nosort:
            pairs.sort(key=lambda p: (p[0].addr, p[0].port))
        for d, drow in pairs:
            drow["stats"] = st = ms.dest_stats(d)
            r = rates.get(("dest", d.slot), dict.fromkeys(RATES, 0))
            if fmt == "rate":
                drow["rate"] = r
            if fmt == "persistent_conn":
                drow["persistconns"] = persist[d.slot]
            lines.append(_dest_line(fmt, f"{d.addr}:{d.port}"[:28], d, st, r, persist[d.slot],
                                    exact, drow["forward"], drow["weight"]))
        row["dests"] = [drow for _, drow in pairs]
        rows.append(row)
    return lines, rows


def _addr(ip, port):
    return f"{IPv4Address(ip)}:{port}"


def _connections(ms, templates_only=False):
    """The connection table; persistence templates are entries with client port 0 and
    state NONE, as in LVS (`--persistent-conn`: those only, as DPVS)."""
    lines = ["IPVS connection entries",
             f"pro expire {'state':<11} {'source':<18} {'virtual':<18} {'local':<18} destination"]
    names = list(ms.modes) if ms.table else []
    rows = []
    for c in ms.connections():
        template = bool(c.get("template"))
        if templates_only and not template:
            continue
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
                     "worker": c.get("worker"), "template": template})
    return lines, rows


LIST = ("ipvsadm ((-L|-l|--list)$lst|(-ln|-Ln)$lst_n|(-lnc|-Lnc|-lcn|-Lcn|-lc|-Lc)$lst_c) "
        f"{{{SVC}|(-n|--numeric)$numeric|(-c|--connection)$connection|--stats|--rate"
        "|(-X|--exact)$exact|--timeout|--thresholds|--persistent-conn|--sort|--nosort}")


@_command(LIST, readonly=True)
def vs_list(ctx, lst_c, tcp, udp, match, connection, stats, rate, exact, timeout,
            thresholds=None, persistent_conn=None, nosort=None):
    """List the table, one service, the connections or the timeouts."""
    ms = ctx.model.services
    key = _service(tcp, udp, match, "list", required=False)
    connection = connection or lst_c
    # ipvsadm's own conflicts (process_options, CMD_LIST)
    if ((connection or timeout) and (stats or rate or thresholds)) or \
            (timeout and persistent_conn):
        raise CommandError("options conflicts in the list command")
    # exclusive options, in ipvsadm's option order (generic_opt_check)
    given = [name for name, on in (("connection", connection), ("service-address", key),
                                   ("timeout", timeout)) if on]
    if len(given) > 1:
        raise CommandError(f"The option '{given[1]}' conflicts with the '{given[0]}' option "
                           "in the 'list' command")
    if connection:
        lines, rows = _connections(ms, templates_only=bool(persistent_conn))
        return Reply("\n".join(lines), {"connections": rows})
    if timeout:
        t = ms.timeouts
        return Reply(f"Timeout (tcp tcpfin udp): {t['tcp']} {t['tcpfin']} {t['udp']}", dict(t))
    fmt = next((name for name, on in (("stats", stats), ("rate", rate),
                                      ("thresholds", thresholds),
                                      ("persistent_conn", persistent_conn)) if on), "")
    if key is not None:
        # one service: no version line (ipvsadm's list_service)
        lines, rows = _list(ms, [ms.get(key)], fmt, exact, bool(nosort))
        return Reply("\n".join(line.rstrip() for line in lines), {"services": rows})
    lines, rows = _list(ms, _sorted(ms, bool(nosort)), fmt, exact, bool(nosort))
    # DPVS reports no IPVS version or table size: its ipvsadm prints zeros
    lines.insert(0, "IP Virtual Server version 0.0.0 (size=0)")
    return Reply("\n".join(line.rstrip() for line in lines), {"services": rows})


@_command("ipvsadm", readonly=True)
def vs_list_all(ctx):
    """List the table (ipvsadm without arguments)."""
    return vs_list(ctx, lst_c=None, tcp=None, udp=None, match=None, connection=None, stats=None,
                   rate=None, exact=None, timeout=None)


# ---------------------------------------------------------- save and restore


def save_lines(ms) -> list[str]:
    """ipvsadm -S: the rules that rebuild the services, in the form -R reads. Services
    with local addresses come first (their addresses may be what other services' real
    servers are reached from, as in running-config); a service's local addresses follow
    its real servers (FNAT real servers first, as --add-laddr wants)."""
    out = []
    for svc in sorted(_sorted(ms), key=lambda s: not s.laddrs):
        name = f"-H {svc.match}" if svc.match is not None else \
            f"-{'t' if svc.proto == TCP else 'u'} {svc.vaddr}:{svc.vport}"
        line = f"-A {name} -s {svc.sched}"
        if svc.hash_target not in (None, ms.hash_target(svc.sched, None)):
            line += f" --hash-target {svc.hash_target}"
        if svc.persistent:
            line += f" -p {svc.timeout}"
            if svc.netmask != HOST_MASK:
                line += f" -M {svc.netmask}"
        out.append(line)
        for d in sorted((d for d in svc.dests if not d.sorry), key=lambda d: (d.addr, d.port)):
            line = f"-a {name} -r {d.addr}:{d.port} {ms.modes[d.mode].flag} -w {d.weight}"
            line += f" -x {d.u_threshold}" if d.u_threshold else ""
            line += f" -y {d.l_threshold}" if d.l_threshold else ""
            out.append(line)
        out += [f"--add-laddr -z {la.addr} {name} -F {la.dev}" for la in svc.laddrs]
    return out


@_command("ipvsadm (-S|--save) [(-n|--numeric)$numeric]", readonly=True)
def vs_save(ctx):
    """Print the rules that rebuild the table."""
    lines = save_lines(ctx.model.services)
    return Reply("\n".join(lines), {"rules": lines})


@_command("ipvsadm (-R|--restore)")
def vs_restore(ctx):
    """Restore rules: their text comes from the client (`rlb ipvsadm -R < FILE`)."""
    raise CommandError("ipvsadm -R reads the rules from standard input: run "
                       "`rlb [-N INSTANCE] ipvsadm -R < FILE` (one transaction)")


def is_restore(line: str) -> bool:
    """Whether a command line is `ipvsadm -R` (the grammar says, not the line's letters)."""
    from rlb.commands.base import ROOT
    try:
        found = g.parse(line, ROOT)
    except ParseError:
        return False
    return found is not None and found.command.handler is vs_restore


def restore_text(text: str) -> str:
    """ipvsadm -R's input as a configuration file: every rule line becomes an ipvsadm
    line (one that already starts with `ipvsadm` stays), numbered as in the input, so the
    failing line's number is its own."""
    out = []
    for line in io.StringIO(text, newline=None).read().split("\n"):
        words = line.split()
        keep = not words or words[0] == "ipvsadm" or words[0][0] in "#!"
        out.append(line if keep else f"ipvsadm {line}")
    return "\n".join(out)


# Tab offers the hash targets the schedulers have
g.completer("target", lambda ctx: list(dict.fromkeys(
    t for s in ctx.model.services.schedulers.values() for t in s.targets)))
