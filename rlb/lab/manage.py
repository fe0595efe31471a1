"""Lab lifecycle: up, down, status, exec in a node, and the LB daemon on its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from rlb.lab import netns, procs, state, topologies
from rlb.lab.state import LabError
from rlb.lab.topologies import Topology, ns_name

Log = Callable[[str], None]


def _quiet(_msg: str) -> None:
    pass


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("rlb lab needs root (network namespaces, veths, nginx)")


def topology(name: str | Topology) -> Topology:
    if isinstance(name, Topology):
        return name
    try:
        return topologies.get(name)
    except KeyError as e:
        raise LabError(e.args[0]) from None


def _ours(ns: str) -> bool:
    # Only names the lab's own scheme produces: never someone else's namespace.
    return isinstance(ns, str) and ns.startswith(topologies.NS_PREFIX)


def leftovers() -> list[str]:
    """Lab namespaces that exist now (recorded or not)."""
    st = state.load() or {}
    wanted = topologies.all_namespaces() | {n for n in st.get("namespaces", []) if _ours(n)}
    present = netns.existing()
    return sorted(ns for ns in wanted if ns in present)


def is_up() -> bool:
    return state.load() is not None or bool(leftovers())


# --- up / down ------------------------------------------------------------------


def up(name: str | Topology, workers: int = 1, lb: bool = True, force: bool = False,
       log: Log = _quiet, tutorial: bool = False) -> Topology:
    """Build a topology, start its real servers and (unless lb=False) the daemon;
    tutorial: then type the scenario's tutorial lines on it and save them."""
    topo = topology(name)
    if tutorial and not lb:
        raise LabError("--tutorial configures the LB: it does not go with --no-lb")
    require_root()
    problems = topologies.check(topo)
    if problems:
        raise LabError(f"topology {topo.name} is inconsistent: {'; '.join(problems)}")
    missing = procs.missing_tools(topo)
    if missing:
        raise LabError(f"missing tools: {', '.join(missing)}")
    with state.locked():
        if is_up():
            if not force:
                st = state.load() or {}
                what = st.get("topology") or "leftover namespaces " + " ".join(leftovers())
                raise LabError(f"a lab is already up ({what}): run `rlb lab down` "
                               "first, or `rlb lab up --force`")
            _down(log)
        t0 = time.monotonic()
        st = {"topology": topo.name, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "namespaces": [], "processes": {}}
        state.save(st)

        def created(ns: str) -> None:
            st["namespaces"].append(ns)
            state.save(st)

        try:
            netns.build(topo, created)

            def saved(key: str, rec: dict) -> None:
                st["processes"][key] = rec
                state.save(st)
            for node in topo.nodes:         # the switches first: the links go through them
                if node.ovs is not None:
                    procs.start_ovs(node.name, node.ovs, saved)
            for node in topo.nodes:
                if node.decap:
                    rec = procs.start_decap(node.name)
                    if rec is not None:
                        st["processes"][f"decap@{node.name}"] = rec
                        state.save(st)
                if node.nginx:
                    st["processes"][f"nginx@{node.name}"] = procs.start_nginx(node.name)
                    st["processes"][f"rs_app@{node.name}"] = procs.start_rs_app(node.name)
                    st["processes"][f"udp_echo@{node.name}"] = procs.start_udp_echo(node.name)
                    state.save(st)
                if node.frr and node.name not in topo.lbs:     # an LB's: the tutorial's
                    st["processes"].update(procs.start_frr(node.name, node.frr))
                    state.save(st)
        except BaseException:
            # Half a lab is worth nothing: take it all down, then report.
            _down(_quiet)
            raise
        log(f"lab {topo.name} is up in {time.monotonic() - t0:.1f}s: "
            f"{' '.join(st['namespaces'])}")
        if lb:
            for node in topo.lbs:
                try:
                    _start_lb(topo, workers, st, node)
                except LabError as e:
                    raise LabError(f"{e}\nthe lab stays up without its LB: "
                                   "`rlb lab down` removes it") from None
                log(f"rlb daemon up in {ns_name(node)} (control socket "
                    f"{state.lb_sock(node)})")
            if tutorial:
                st["tutorial"] = True
                state.save(st)
                for node in topo.lbs:
                    saved = apply_tutorial(topo, node)
                    what = "the LB" if len(topo.lbs) == 1 else node
                    log(f"the tutorial's {len(topo.script_of(node))} lines applied on {what} "
                        f"(`rlb lab script {topo.name}`), saved by write memory to {saved}")
                    kernel = topo.node(node)
                    if kernel.kni or kernel.frr or kernel.config or kernel.keepalived:
                        _tutorial_kernel(topo, node, st)
                        log(f"{node}'s kernel side: {len(kernel.kni)} ip lines on its kni, "
                            f"FRR {' '.join(d for d, _ in kernel.frr) or 'none'}"
                            + (f"; {len(kernel.config)} lines of rlb configuration "
                               "committed" if kernel.config else "")
                            + (f"; its keepalived.conf loaded ({state.lb_keepalived(node)})"
                               if kernel.keepalived else ""))
    return topo


def _tutorial_kernel(topo: Topology, node: str, st: dict) -> None:
    """An LB's kernel side in the tutorial: its kni addresses and routes (`ip` lines in
    its namespace, once the daemon made the taps), then its FRR daemons; then its
    configuration in rlb's words (`router bgp`: exabgp takes its address from the kni)."""
    n = topo.node(node)
    for line in n.kni:
        netns.run("ip", "-n", ns_name(node), *line.split())
    if n.frr:
        st["processes"].update(procs.start_frr(node, n.frr))
        state.save(st)
    if n.config:
        _type(topo, node, ("configure", *n.config, "commit", "end"), "configuration line")
    if n.keepalived:
        _keepalived(topo, node)


def _keepalived(topo: Topology, node: str) -> None:
    """The node's keepalived.conf written beside its rlb configuration and loaded as
    `rlb keepalived load FILE` does; then `write memory`."""
    from rlb.control.client import Client, ControlError
    from rlb.ha import kaconf
    path = state.lb_keepalived(node)
    path.write_text(topo.node(node).keepalived)
    lines = [list(x) for x in kaconf.import_file(str(path)).numbered()]
    try:
        with Client(state.instance(node), timeout=120) as client:
            reply = client.request({"load": lines, "source": str(path), "keepalived": True})
            if reply.get("ok"):
                reply = client.call("write memory")
    except (ControlError, OSError) as err:
        raise LabError(f"cannot reach the lab's LB: {err}") from None
    if not reply.get("ok"):
        raise LabError(f"{path} refused on {node}: {reply.get('error')}\nthe lab stays up: "
                       "`rlb lab down` removes it")


def apply_tutorial(topo: str | Topology, node: str | None = None) -> str:
    """Type the scenario's tutorial lines on one of the lab's LBs (the first) in order,
    as `rlb -N lb -c LINE` does, stopping at the first that fails; then `write memory`,
    so that `lab restart lb` brings them back. Returns where they were saved."""
    topo = topology(topo)
    node = node or topo.lb
    return _type(topo, node, topo.script_of(node), "tutorial line")


def _type(topo: Topology, node: str, lines, what: str) -> str:
    """Lines typed on an LB in one session, then `write memory`; where it saved them."""
    from rlb.control.client import Client, ControlError
    try:
        with Client(state.instance(node)) as client:
            for n, line in enumerate([*lines, "write memory"], 1):
                reply = client.call(line)
                if not reply.get("ok"):
                    raise LabError(f"{what} {n} of {topo.name} failed on {node}: {line}\n"
                                   f"{reply.get('error', '% failed')}\nthe lab stays up: "
                                   "`rlb lab down` removes it")
    except (ControlError, OSError) as err:
        raise LabError(f"cannot reach the lab's LB: {err}") from None
    return (reply.get("data") or {}).get("path") or str(state.lb_conf(node))


def down(log: Log = _quiet) -> bool:
    """Stop what the lab started and delete its namespaces; False if nothing was up."""
    require_root()
    with state.locked():
        return _down(log)


def _down(log: Log) -> bool:
    st = state.load() or {}
    # A hand-edited or torn record must not stop the cleanup: skip what is odd.
    recs = [r for r in (st.get("processes") or {}).values()
            if isinstance(r, dict) and isinstance(r.get("pid"), int)]
    # The daemons first, while their ports still exist, then the rest.
    procs.stop([r for r in recs if r.get("kind") == "lb"], 10.0)
    procs.stop([r for r in recs if r.get("kind") != "lb"], 5.0)
    present = leftovers()
    swept = netns.sweep(present)
    if swept:
        log(f"stopped stray processes in lab namespaces: {' '.join(map(str, swept))}")
    gone = netns.destroy(present)
    _clean_files()
    for lb in {lb for t in topologies.TOPOLOGIES for lb in t.lbs}:
        procs.clear_stale_sock(lb)
    if gone:
        log(f"lab {st.get('topology', '(unrecorded)')} is down: removed {' '.join(gone)}")
    elif st:
        log("lab state removed (its namespaces were already gone)")
    return bool(gone or st)


def _clean_files() -> None:
    # lb.log stays for a post-mortem; `up` overwrites it.
    state.clear()
    for lb in {lb for t in topologies.TOPOLOGIES for lb in t.lbs}:
        state.lb_conf(lb).unlink(missing_ok=True)
        Path(f"{state.lb_conf(lb)}.bak").unlink(missing_ok=True)
        state.lb_keepalived(lb).unlink(missing_ok=True)
        shutil.rmtree(state.lb_state_base(lb), ignore_errors=True)
    for node in {n.name for t in topologies.TOPOLOGIES for n in t.nodes}:
        shutil.rmtree(state.node_dir(node), ignore_errors=True)


# --- the LB daemon ------------------------------------------------------------------


def start_lb(topo: str | Topology, workers: int = 1, node: str | None = None) -> dict:
    """Start the rlb daemon of an LB node (the first) of the lab that is up."""
    topo = topology(topo)
    require_root()
    with state.locked():
        st = state.load()
        if st is None:
            raise LabError("no lab is up: `rlb lab up NAME --no-lb` first")
        if st.get("topology") != topo.name:
            raise LabError(f"the lab that is up is {st.get('topology')}, not {topo.name}")
        return _start_lb(topo, workers, st, node or topo.lb)


def _start_lb(topo: Topology, workers: int, st: dict, node: str) -> dict:
    # the record's key is the node's name: `lb` in most scenarios, lb1/lb2 in a cluster
    old = st["processes"].get(node)
    if old and state.alive(old):
        raise LabError(f"the rlb daemon of {node} already runs (pid {old['pid']})")
    rec = procs.spawn_lb(topo, workers, node=node)
    st["processes"][node] = rec
    state.save(st)
    return rec


def restart_lb(log: Log = _quiet, node: str | None = None) -> dict:
    """Start an LB daemon of the lab again (the first LB's; stopping it first if it still
    runs), with its configuration, in the namespaces that are there: nothing else is
    touched."""
    require_root()
    with state.locked():
        st = state.load()
        if st is None or st.get("topology") not in topologies.BY_NAME:
            raise LabError("no lab is up: `rlb lab up NAME` first")
        topo = topologies.BY_NAME[st["topology"]]
        node = node or topo.lb
        if node == "lb" and node not in topo.lbs:
            node = topo.lb
        if node not in topo.lbs:
            raise LabError(f"{node} is not an LB of {topo.name} ({', '.join(topo.lbs)})")
        old = st.get("processes", {}).get(node)
        if not old:
            raise LabError("this lab runs no LB daemon (up with --no-lb, or it was stopped): "
                           "`rlb lab up NAME --force` builds the lab anew with one")
        missing = [ns for ns in st.get("namespaces", []) if ns not in netns.existing()]
        if missing:
            raise LabError(f"the lab's namespaces {' '.join(missing)} are gone: "
                           "`rlb lab down`, then `rlb lab up` again")
        if state.alive(old):
            procs.stop([old], 10.0)
            log(f"stopped the rlb daemon (pid {old['pid']})")
        source = _restart_source(node)
        rec = procs.respawn_lb(topo, old)
        st["processes"][node] = rec
        state.save(st)
        if st.get("tutorial") and topo.node(node).kni:
            # its kni taps are new: the tutorial's kernel side again (its FRR, still
            # running, finds the interface back)
            for line in topo.node(node).kni:
                netns.run("ip", "-n", ns_name(node), *line.split())
        log(f"rlb daemon up again in {ns_name(node)} (pid {rec['pid']}) with {source}")
        return rec


def _restart_source(node: str = "lb") -> str:
    """The configuration a restarted LB comes back with: the newer of what `write memory`
    saved (lb.conf) and the last commit in the lab's history. A newer commit is written
    over lb.conf first (the old file kept as lb.conf.bak): the daemon starts from its
    -f file, and `write memory` keeps saving there."""
    from rlb.control.commit import Store, atomic_write
    from rlb.model.model import CommandError
    from rlb.control.paths import commits_dir
    conf = state.lb_conf(node)
    try:
        _, path = Store(commits_dir(state.instance(node),
                                    str(state.lb_state_base(node)))).lines(0)
        newest = Path(path)
    except CommandError:
        newest = None
    written = conf.stat().st_mtime_ns if conf.exists() else -1
    if newest is None or newest.stat().st_mtime_ns <= written:
        if written < 0:
            raise LabError(f"{conf} is gone and the lab's history has no commit: "
                           "nothing to restart with")
        return f"{conf} (what write memory saved)"
    atomic_write(str(conf), newest.read_text())
    return f"the last commit of its history ({newest}, newer than what {conf} held)"


def stop_lb(node: str = "lb") -> bool:
    """Stop an rlb daemon of the lab (node `lb`: the first LB's); False if none was
    recorded."""
    require_root()
    with state.locked():
        st = state.load()
        if node == "lb" and st and st.get("topology") in topologies.BY_NAME:
            node = topologies.BY_NAME[st["topology"]].lb
        rec = st and st.get("processes", {}).pop(node, None)
        if not rec:
            return False
        procs.stop([rec], 10.0)
        state.save(st)
        return True


# --- status / exec ------------------------------------------------------------------


def status() -> dict:
    """What is up: topology, namespaces, processes (alive or not), control socket."""
    st = state.load()
    present = leftovers()
    if st is None:
        return {"up": bool(present), "topology": None, "namespaces": present,
                "missing": [], "processes": {}, "socket": None}
    recorded = st.get("namespaces", [])
    topo = topologies.BY_NAME.get(st.get("topology"))
    lbs = {node: _lb_files(node) for node in (topo.lbs if topo else ("lb",))}
    return {
        "up": True,
        "topology": st.get("topology"),
        "started": st.get("started"),
        "namespaces": [ns for ns in recorded if ns in present],
        "missing": [ns for ns in recorded if ns not in present],
        "processes": {name: {**rec, "alive": state.alive(rec)}
                      for name, rec in st.get("processes", {}).items()},
        **next(iter(lbs.values())),             # the first LB's, as a one-LB lab has them
        "lbs": lbs,
    }


def _lb_files(node: str) -> dict:
    sock, conf, base = state.lb_sock(node), state.lb_conf(node), state.lb_state_base(node)
    return {"socket": str(sock) if sock.exists() else None,
            "config": str(conf) if conf.exists() else None,
            "state_dir": str(base) if base.exists() else None}


def nodes_up() -> list[str]:
    """Nodes one can exec in: the recorded topology's, else any leftover's."""
    st = state.load()
    present = set(netns.existing())
    if st and st.get("topology") in topologies.BY_NAME:
        names = topologies.BY_NAME[st["topology"]].node_names
    else:
        names = tuple(ns[len(topologies.NS_PREFIX):] for ns in leftovers())
    return [n for n in names if ns_name(n) in present]


def exec_node(node: str, cmd: list[str]) -> int:
    """Run cmd in a node's namespace with our stdio; return its exit status."""
    require_root()
    if not cmd:
        raise LabError("exec: no command given (rlb lab exec NODE -- CMD...)")
    nodes = nodes_up()
    if not nodes:
        raise LabError("no lab is up")
    if node not in nodes:
        raise LabError(f"unknown node {node!r} (nodes up: {', '.join(nodes)})")
    proc = subprocess.Popen(["ip", "netns", "exec", ns_name(node), *cmd])
    while True:
        try:
            code = proc.wait()
            break
        except KeyboardInterrupt:
            # The command got the same ^C; its own exit status is the answer.
            continue
    # Shell convention for a command killed by a signal.
    return 128 + -code if code < 0 else code
