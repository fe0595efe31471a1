"""`make demo`: build a lab, drive the LB with the tutorial's commands, show what happens.

It runs the DPVS tutorial's "simple FNAT two-arm" scenario: the tutorial's commands,
curl through the VIP (the real servers see the client's own address through TOA),
the counters, and tears the lab down.
"""
from __future__ import annotations

import shlex
import subprocess
import sys

from rlb import lab
from rlb.lab.topologies import get

def say(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def rlb(*cmds: str) -> str:
    args = [sys.executable, "-m", "rlb", "-N", "lb"]
    for c in cmds:
        print(f"lb# {c}", flush=True)
        args += ["-c", c]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"demo failed: {r.stderr}")
    if r.stdout.strip():
        print(r.stdout.rstrip(), flush=True)
    return r.stdout


def on(node: str, *cmd: str) -> str:
    print(f"{node}$ {shlex.join(cmd)}", flush=True)
    r = subprocess.run(["ip", "netns", "exec", f"rlb-{node}", *cmd], capture_output=True,
                       text=True, timeout=30)
    print((r.stdout + r.stderr).rstrip(), flush=True)
    if r.returncode:
        raise SystemExit(f"demo failed: {node}: {shlex.join(cmd)}")
    return r.stdout


def main() -> int:
    lab.down()
    topo = get("fnat-two-arm")
    say("Build the fnat-two-arm lab: client | dpdk1 [LB] dpdk0 | rs1, rs2 (namespaces, veths)")
    lab.up(topo.name)
    try:
        say("The DPVS tutorial's FNAT script, line by line, as `rlb -N lb -c LINE`")
        for line in topo.lb_script:
            rlb(line)
        say("What the tutorial shows")
        rlb("dpip addr show")
        rlb("dpip route show")
        rlb("ipvsadm -ln")
        rlb("ipvsadm -G")
        say("curl the VIP: the real servers answer in turn, and see the client itself (TOA)")
        for _ in range(4):
            on("client", "curl", "-s", "http://10.0.0.100/")
        say("The data plane answers ping for the VIP too")
        on("client", "ping", "-c", "2", "-i", "0.2", "10.0.0.100")
        say("Counters and connections")
        rlb("ipvsadm -ln --stats")
        rlb("ipvsadm -lnc")
        rlb("dpip link show -s")
    finally:
        say("Tear the lab down")
        lab.down()
        print("done: no namespace, tap or socket left behind")
    return 0


if __name__ == "__main__":
    sys.exit(main())
