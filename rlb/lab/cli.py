"""`rlb lab ...`: list, up, script, restart, down, exec and status of the tutorial's
scenarios."""

from __future__ import annotations

import argparse
import json
import sys

from rlb.lab import manage, state, topologies
from rlb.lab.state import LabError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rlb lab",
        description="The tutorial's scenarios built from network namespaces and veth pairs.")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    sub.add_parser("list", help="the topologies, one line each")
    up = sub.add_parser("up", help="build a topology and start its servers and LB")
    up.add_argument("name", metavar="NAME", help="topology (see `rlb lab list`)")
    up.add_argument("--workers", type=int, default=1, metavar="N",
                    help="data-plane workers of the rlb daemon (default 1)")
    up.add_argument("--no-lb", action="store_true",
                    help="do not start the rlb daemon in the lb namespace")
    up.add_argument("--force", action="store_true",
                    help="tear down a lab that is already up first")
    up.add_argument("--tutorial", action="store_true",
                    help="configure the LB with the scenario's tutorial lines "
                         "(`rlb lab script NAME`) and write memory")
    sc = sub.add_parser("script", help="print a scenario's tutorial lines for the LB")
    sc.add_argument("name", metavar="NAME", help="topology (see `rlb lab list`)")
    rs = sub.add_parser("restart", help="start a node's daemon again (lb: the rlb daemon, "
                                        "with its saved or last committed configuration)")
    lbs = sorted({"lb"} | {lb for t in topologies.TOPOLOGIES for lb in t.lbs})
    rs.add_argument("node", choices=lbs, metavar="lb|LB",
                    help="lb (the first LB), or an LB node's name (lb1, lb2 in a cluster)")
    sub.add_parser("down", help="stop the lab's processes and delete its namespaces")
    ex = sub.add_parser("exec", help="run a command in a node's namespace",
                        usage="rlb lab exec NODE -- CMD [ARG...]")
    ex.add_argument("node", metavar="NODE")
    ex.add_argument("command", nargs=argparse.REMAINDER, metavar="CMD")
    st = sub.add_parser("status", help="what is up")
    st.add_argument("--json", action="store_true", help="machine-readable")
    return p


def main(argv: list[str]) -> int:
    """Entry point of `rlb lab`; returns the process exit status."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # argparse has already printed usage or help
        return e.code if isinstance(e.code, int) else 2
    try:
        return _COMMANDS[args.cmd](args)
    except LabError as e:
        print(f"rlb lab: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rlb lab: interrupted", file=sys.stderr)
        return 130


def _say(msg: str) -> None:
    print(msg, flush=True)


def _list(_args: argparse.Namespace) -> int:
    width = max(len(t.name) for t in topologies.TOPOLOGIES)
    for t in topologies.TOPOLOGIES:
        print(f"{t.name:<{width}}  {t.description}")
    return 0


def _up(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise LabError("--workers must be at least 1")
    topo = manage.up(args.name, workers=args.workers, lb=not args.no_lb,
                     force=args.force, log=_say, tutorial=args.tutorial)
    if not args.tutorial and topo.lb_script:
        _say(f"the LB is not configured yet: `rlb lab script {topo.name}` prints the "
             f"tutorial's lines for it, `rlb lab up {topo.name} --tutorial` applies them")
    client = topo.node("client") if "client" in topo.node_names else None
    if client and topo.vip:
        hint = f"rlb lab exec client -- curl -s http://{topo.vip}/"
        _say(f"try: {hint}" + ("" if args.tutorial else "  (once the LB is configured)"))
    return 0


def _script(args: argparse.Namespace) -> int:
    topo = manage.topology(args.name)
    for node in topo.lbs:
        n = topo.node(node)
        if len(topo.lbs) > 1:
            print(f"! {node} (rlb -N {state.instance(node)})")
        for line in topo.script_of(node):
            print(line)
        if n.kni:
            print(f"! {node}'s kernel (its namespace: `rlb lab exec {node} -- ip ...`)")
            for line in n.kni:
                print(f"! ip {line}")
        if n.keepalived:
            print(f"! {node}'s keepalived.conf (`rlb -N {state.instance(node)} keepalived load "
                  "FILE`):")
            for line in n.keepalived.splitlines():
                print(f"!   {line}")
        for daemon, text in n.frr:
            print(f"! {node}'s FRR {daemon}.conf:")
            for line in text.splitlines():
                print(f"!   {line}")
    return 0


def _restart(args: argparse.Namespace) -> int:
    manage.restart_lb(log=_say, node=args.node)
    return 0


def _down(_args: argparse.Namespace) -> int:
    if not manage.down(log=_say):
        _say("no lab is up")
    return 0


def _exec(args: argparse.Namespace) -> int:
    cmd = list(args.command)
    if cmd[:1] == ["--"]:
        cmd = cmd[1:]
    return manage.exec_node(args.node, cmd)


def _status(args: argparse.Namespace) -> int:
    st = manage.status()
    if args.json:
        print(json.dumps(st, indent=1, sort_keys=True))
        return 0
    if not st["up"]:
        print("no lab is up")
        return 0
    if st["topology"] is None:
        print(f"no lab state, but leftover namespaces: {' '.join(st['namespaces'])} "
              "(`rlb lab down` removes them)")
        return 0
    print(f"topology   {st['topology']} (up since {st.get('started')})")
    print(f"namespaces {' '.join(st['namespaces']) or '-'}")
    if st["missing"]:
        print(f"missing    {' '.join(st['missing'])}")
    for name, rec in sorted(st["processes"].items()):
        print(f"process    {name:<12} pid {rec['pid']:<8} "
              f"{'running' if rec['alive'] else 'dead'}")
    for node, files in st["lbs"].items():
        tag = "" if len(st["lbs"]) == 1 else f" of {node}"
        if node not in st["processes"]:
            print(f"lb daemon{tag}  not started (`rlb lab up NAME` starts it; --no-lb did not)")
        print(f"socket{tag}     {files['socket'] or 'none'}")
        print(f"config{tag}     {files['config'] or 'none'} (the LB's -f file: write memory "
              "saves there)")
        print(f"history{tag}    {files['state_dir'] or 'none'} (RLB_STATE_DIR: removed by "
              "`rlb lab down`)")
    print(f"run dir    {state.RUN_DIR}")
    return 0


_COMMANDS = {"list": _list, "up": _up, "script": _script, "restart": _restart, "down": _down,
             "exec": _exec, "status": _status}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
