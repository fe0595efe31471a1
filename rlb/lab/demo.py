"""`make demo`: build a lab, drive the LB with the tutorial's commands, show what happens.

Until the FNAT mode lands this shows the packet core in the fnat-two-arm lab: the LB's
addresses answer pings through a DPDK port, it routes the client to both real
servers, and the kernel serves through the kni interface.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile

from rlb import lab

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
    say("Build the fnat-two-arm lab: client | dpdk1 [LB] dpdk0 | rs1, rs2 (namespaces, veths)")
    lab.up("fnat-two-arm")
    nginx_pid = None
    try:
        say("Give the LB an address on each arm; connected and host routes appear by themselves")
        rlb("dpip addr add 10.0.0.1/16 dev dpdk1", "dpip addr add 192.168.100.1/24 dev dpdk0")
        rlb("dpip addr show", "dpip route show")
        say("The data plane answers ARP and ping for its addresses")
        on("client", "ping", "-c", "3", "-i", "0.2", "10.0.0.1")
        rlb("dpip neigh show")
        say("Forwarding on: the client reaches both real servers through the LB")
        rlb("dataplane", "forwarding")
        on("client", "curl", "-s", "http://192.168.100.2/")
        on("client", "curl", "-s", "http://192.168.100.3/")
        say("The kernel behind dpdk1.kni serves too (the tutorial's kni_host route)")
        with tempfile.TemporaryDirectory() as tmp:
            conf = f"{tmp}/nginx.conf"
            with open(conf, "w") as f:
                f.write(f"daemon on; pid {tmp}/nginx.pid; error_log {tmp}/error.log;\n"
                        "events {} http { access_log off; server { listen 10.0.0.5:8080;\n"
                        "location / { return 200 \"hello from the kernel on dpdk1.kni\\n\"; }}}\n")
            on("lb", "ip", "addr", "add", "10.0.0.5/16", "dev", "dpdk1.kni")
            rlb("dpip route add 10.0.0.5/32 dev dpdk1 scope kni_host")
            on("lb", "nginx", "-c", conf, "-p", tmp)
            nginx_pid = int(open(f"{tmp}/nginx.pid").read())
            on("client", "curl", "-s", "http://10.0.0.5:8080/")
            subprocess.run(["kill", str(nginx_pid)])
            nginx_pid = None
        say("Counters: per port, kni traffic, mbufs, drops by reason")
        rlb("dpip link show -s")
    finally:
        if nginx_pid:
            subprocess.run(["kill", str(nginx_pid)])
        say("Tear the lab down")
        lab.down()
        print("done: no namespace, tap or socket left behind")
    return 0


if __name__ == "__main__":
    sys.exit(main())
