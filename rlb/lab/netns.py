"""Build a topology out of network namespaces, veth pairs and bridges; tear it down."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections import defaultdict
from collections.abc import Callable

from rlb.lab import state
from rlb.lab.state import LabError
from rlb.lab.topologies import Topology, ns_name


def run(*args: str, stdin: str | None = None, timeout: float = 30.0) -> str:
    """Run a command; a failure becomes a LabError carrying its stderr."""
    try:
        p = subprocess.run(args, input=stdin, capture_output=True, text=True,
                           timeout=timeout)
    except FileNotFoundError:
        raise LabError(f"{args[0]}: command not found") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"`{shlex.join(args)}` did not finish in {timeout:.0f}s") from None
    if p.returncode:
        msg = (p.stderr or p.stdout).strip()
        raise LabError(f"`{shlex.join(args)}` failed: {msg}")
    return p.stdout


def in_ns(ns: str, *args: str) -> str:
    return run("ip", "netns", "exec", ns, *args)


def ip_batch(ns: str, lines: list[str]) -> None:
    """Many `ip` commands in one namespace in one process: a lab up stays fast."""
    if not lines:
        return
    try:
        run("ip", "-n", ns, "-batch", "-", stdin="\n".join(lines) + "\n")
    except LabError as e:
        # ip names the failing line only by number ("Command failed -:3").
        m = re.search(r"Command failed -:(\d+)", str(e))
        if not m or not 0 < int(m.group(1)) <= len(lines):
            raise
        err = str(e).split(" failed: ", 1)[-1].splitlines()[0]
        raise LabError(f"`ip -n {ns} {lines[int(m.group(1)) - 1]}` failed: {err}") from None


SESSION_PORTS = "44000-45999"      # source ports rlb.lab.sessions and the tests bind


def sysctl(ns: str, settings: list[tuple[str, str]]) -> None:
    # sysctl(8) also takes slash-separated keys, which is how a key names an
    # interface holding dots (net/ipv6/conf/dpdk0.100/disable_ipv6).
    if settings:
        in_ns(ns, "sysctl", "-q", "-w", *(f"{k}={v}" for k, v in settings))


def existing() -> set[str]:
    """Names of the network namespaces that exist now."""
    out = run("ip", "netns", "list")
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def ns_pids(ns: str) -> list[int]:
    try:
        out = run("ip", "netns", "pids", ns)
    except LabError:
        return []  # gone meanwhile
    return [int(p) for p in out.split() if p.isdigit() and int(p) != os.getpid()]


# --- build --------------------------------------------------------------------


def build(topo: Topology, created: Callable[[str], None]) -> None:
    """Create every namespace, link, address and route of `topo`.

    `created(ns)` is called as soon as a namespace exists, so the caller can
    record it before anything else can fail.
    """
    for node in topo.nodes:
        ns = ns_name(node.name)
        run("ip", "netns", "add", ns)
        created(ns)
        # Before interfaces exist: `default` sysctls then apply to them too. The lab's
        # keep-alive sessions bind source ports of their own (rlb.lab.sessions): the
        # kernel must not hand them out as ephemeral ones (a session whose port a curl
        # held failed every request, CI saw it)
        sysctl(ns, [("net/ipv4/ip_local_reserved_ports", SESSION_PORTS), *node.sysctls])

    ups: dict[str, list[str]] = defaultdict(list)  # ns -> interfaces to bring up
    for seg in topo.segments:
        sw = ns_name(seg.switch)
        # No STP and no forward delay: a lab port forwards as soon as it is up.
        run("ip", "-n", sw, "link", "add", "name", seg.name, "type", "bridge",
            "stp_state", "0", "forward_delay", "0", "mcast_snooping", "0")
        ups[sw].append(seg.name)

    # Each pair is born with its ends already in their namespaces: nothing
    # ever appears in the host's namespace, not even for a moment.
    for link in topo.links:
        _veth(link.a, link.b)
    for seg in topo.segments:
        for member in seg.members:
            side = seg.switch_side(member)
            _veth(member, (seg.switch, side))
            run("ip", "-n", ns_name(seg.switch), "link", "set", "dev", side,
                "master", seg.name)

    for node, ifname in topo.veth_ends():
        # BASELINE.md: with tx checksum offload on, veth senders emit packets
        # with unfinished checksums that a PMD forwards as they are and the
        # receivers drop. gro off: the af_packet PMD must see wire-size frames.
        in_ns(ns_name(node), "ethtool", "-K", ifname, "tx", "off", "gro", "off")
        ups[ns_name(node)].append(ifname)

    # The LB's data ports belong to DPDK: the kernel must send nothing on them
    # (no IPv6 DAD, router solicitations or MLD) or the data plane sees it.
    for lb in topo.lbs:
        sysctl(ns_name(lb), [(f"net/ipv6/conf/{ifname}/disable_ipv6", "1")
                             for _, ifname in topo.ports])

    for node in topo.nodes:
        ns = ns_name(node.name)
        lines = ["link set dev lo up"]
        lines += [f"addr add {cidr} dev {ifname}" for ifname, cidr in node.addrs]
        lines += [f"link set dev {ifname} up" for ifname in ups[ns]]
        ip_batch(ns, lines)
    # Routes once every link is up on both ends, so gateways are on-link.
    for node in topo.nodes:
        ip_batch(ns_name(node.name), [f"route add {r}" for r in node.routes])


def _veth(a: tuple[str, str], b: tuple[str, str]) -> None:
    run("ip", "-n", ns_name(a[0]), "link", "add", "name", a[1], "type", "veth",
        "peer", "name", b[1], "netns", ns_name(b[0]))


# --- teardown -----------------------------------------------------------------


def sweep(namespaces: list[str], timeout: float = 5.0) -> list[int]:
    """Stop every process still inside our lab namespaces; return their PIDs.

    These are processes living in namespaces the lab created (nginx workers
    orphaned by a crash, a daemon whose record was lost), never the host's.
    """
    recs = [state.record(pid) for ns in namespaces for pid in ns_pids(ns)]
    recs = [r for r in recs if r["start"] is not None]
    state.terminate(recs, timeout)
    return [r["pid"] for r in recs]


def destroy(namespaces: list[str]) -> list[str]:
    """Delete the namespaces that exist (their veths and bridges go with them)."""
    present = existing()
    gone = []
    for ns in namespaces:
        if ns in present:
            run("ip", "netns", "del", ns)
            gone.append(ns)
    return gone
