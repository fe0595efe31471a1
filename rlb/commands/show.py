"""Router-style `show` and `clear` commands: the same views as `dpip ... show` and
`ipvsadm -L`, under the names an FRR or Junos user types first (`sh ip vs`, `sh ip route`,
`sh int`), and what IOS and FRR users expect besides (`show version`, `show
startup-config`, `clear ip vs counters`).

Each one calls the handler of the tool it mirrors, so text and `| json` are the same.
"""
from __future__ import annotations

import ctypes
import os
import platform
import subprocess
import time
from importlib import metadata

from rlb.model.model import CommandError
from rlb.commands import dpip, ipvsadm
from rlb.commands.base import ROOT, VS_DEF, VS_HELP, Reply, _vs_key, g

g.words(**{
    "stats": "With packet and byte counters",
    "rate": "With rates (per second)",
    "connections": "The connection table",
    "version": "Versions (rlb, DPDK, Python), uptime, workers and ports",
    "clear": "Reset running state (counters); no configuration change",
    "counters": "Packet, byte and connection counters (as ipvsadm -Z)",
})


@g.command("show ip vs [stats|rate|connections|timeout]", node=ROOT, readonly=True)
def show_ip_vs(ctx, stats, rate, connections, timeout):
    """ipvsadm -ln [--stats|--rate], -lnc, --timeout."""
    return ipvsadm.vs_list(ctx, lst_c=None, tcp=None, udp=None, match=None,
                           connection=connections, stats=stats, rate=rate, exact=None,
                           timeout=timeout)


@g.command("show ip route", node=ROOT, readonly=True)
def show_ip_route(ctx):
    return dpip.route_show(ctx, dev=None)


@g.command("show ip neighbor", node=ROOT, readonly=True)
def show_ip_neighbor(ctx):
    return dpip.neigh_show(ctx, dev=None)


@g.command("show ip address", node=ROOT, readonly=True)
def show_ip_address(ctx):
    return dpip.addr_show(ctx, dev=None)


@g.command("show interface [WORD$dev] [stats]", node=ROOT, readonly=True,
           help={"dev": "Port name"})
def show_interface(ctx, dev, stats):
    return dpip.link_show(ctx, dev=dev, stats=stats)


def dpdk_version() -> str:
    """rte_version() of the DPDK library this process runs (the data plane's), else what
    pkg-config finds, as the build did."""
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as f:
            libs = {line.split()[-1] for line in f if "librte_eal.so" in line}
    except OSError:
        libs = set()
    for lib in sorted(libs):
        try:
            fn = ctypes.CDLL(lib).rte_version
            fn.restype = ctypes.c_char_p
            return fn().decode("ascii", "replace")
        except (OSError, AttributeError):
            continue
    try:
        out = subprocess.run(["pkg-config", "--modversion", "libdpdk"], capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
        return f"DPDK {out} (pkg-config; no data plane in this process)"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def rlb_version() -> str:
    try:
        return metadata.version("rlb")
    except metadata.PackageNotFoundError:
        return "unknown"


def started() -> float:
    """When this process started (seconds since the epoch), from /proc."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            ticks = int(f.read().rpartition(")")[2].split()[19])
        with open("/proc/stat", encoding="ascii") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()


def _uptime(seconds: int) -> str:
    days, rest = divmod(max(seconds, 0), 86400)
    return f"{days} day(s), {time.strftime('%H:%M:%S', time.gmtime(rest))}"


@g.command("show version", node=ROOT, readonly=True)
def show_version(ctx):
    """rlb, DPDK and Python versions, the daemon's uptime, its workers and ports."""
    rlb = rlb_version()
    since = started()
    m = ctx.running
    workers = len(ctx.engine.workers()) if ctx.engine is not None else m.settings.workers
    data = {"rlb": rlb, "dpdk": dpdk_version(), "python": platform.python_version(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)),
            "instance": ctx.host,
            "dataplane": ctx.engine is not None, "workers": workers,
            "ports": [{"name": p.name, "devargs": p.devargs} for p in m.ports.values()]}
    lines = [f"rlb {rlb}, a layer-4 load balancer", f"{data['dpdk']}",
             f"Python {data['python']} ({platform.python_implementation()})",
             (f"instance {ctx.host} uptime is {_uptime(int(time.time() - since))} "
              f"(since {data['started']})"),
             f"{workers} worker(s)" + ("" if ctx.engine is not None
                                       else " (data plane not running)"),
             f"{len(data['ports'])} port(s):"]
    lines += [f"  {p['name']:<10} {p['devargs']}" for p in data["ports"]]
    return Reply("\n".join(lines), data)


@g.command("show startup-config", node=ROOT, readonly=True)
def show_startup(ctx):
    """The file `write memory` writes, which the daemon started from."""
    store = ctx.running.store
    path = getattr(store, "startup", None)
    if not path or not os.path.isfile(path):     # said, as IOS, not a failure
        return Reply("% no startup configuration", {"path": None, "lines": []})
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as err:
        raise CommandError(f"cannot read {path}: {err.strerror or err}") from None
    return Reply(text.rstrip("\n"), {"path": path, "lines": text.splitlines()})


@g.command("clear ip vs counters [" + VS_DEF + "]", node=ROOT, operational=True,
           help=VS_HELP)
def clear_ip_vs_counters(ctx, tcp, udp, match):
    """ipvsadm -Z [SERVICE]: zero the counters, of every service or of one."""
    key = None if tcp is None and udp is None and match is None else _vs_key(tcp, udp, match)
    ctx.model.services.zero(key)
    return Reply("", {"zeroed": "all" if key is None else str(ctx.model.services.table[key])})
