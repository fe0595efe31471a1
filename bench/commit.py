"""What configuration mode costs the control plane as the configuration grows.

For tables of S services with R real servers each (FNAT, one local address each), it
times, as medians of N runs in one process:
- render:    `show running-config` (the model to text)
- configure: a session's candidate (the text read back through the grammar)
- commit:    one real server's weight changed and committed (the dry run on a scratch
             copy, the read-back check, the change itself, the history file)
- load:      the whole text as a fresh model (a daemon's start, `rollback N`)
beside the classic way of making the same change, one `ipvsadm -e` line.

No data plane and no root are needed: this is the Python side only; the data plane
sees one dest_set and one svc_set for the commit, as for the ipvsadm line.

    python bench/commit.py [--sizes 16x16,64x64,256x16] [--runs 5]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rlb.control.commit import Store, build  # noqa: E402
from rlb.control.config import check  # noqa: E402
from rlb.commands.running import render  # noqa: E402
from rlb.control.server import execute, open_shell  # noqa: E402
from rlb.commands.base import Context  # noqa: E402


def config(services: int, dests: int) -> str:
    lines = ["dataplane", " port dpdk0 net_tap0", " port dpdk1 net_tap1",
             f" service-table-size {max(services, 256)}",
             f" dest-table-size {max(services * dests, 4096)}", "!",
             "dpip addr add 10.0.0.1/16 dev dpdk1", "dpip addr add 192.168.0.1/16 dev dpdk0"]
    for s in range(services):
        vip = f"10.0.{1 + s // 250}.{1 + s % 250}:80"
        lines.append(f"ipvsadm -A -t {vip} -s wrr")
        lines.append(f"ipvsadm --add-laddr -z 192.168.{200 + s // 250}.{1 + s % 250} "
                     f"-t {vip} -F dpdk0")
        for d in range(dests):
            lines.append(f"ipvsadm -a -t {vip} -r 192.168.{1 + d // 250}.{1 + d % 250}:80 -b")
    return "\n".join(lines) + "\n"


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure(services: int, dests: int, runs: int) -> dict:
    text = config(services, dests)
    model = check(list(enumerate(text.splitlines(), 1)), "bench.conf")
    tmp = tempfile.mkdtemp(prefix="rlbb-commit-")
    model.store = Store(os.path.join(tmp, "commits"), startup=os.path.join(tmp, "rlb.conf"))
    running = render(model)
    out = {"services": services, "dests": dests, "lines": len(running.lines())}
    times = {k: [] for k in ("render", "configure", "commit", "load", "ipvsadm_e")}

    async def session():
        ctx = Context(model, user="bench")
        open_shell(ctx)
        execute(ctx, "enable")
        for i in range(runs):
            times["render"].append(timed(lambda: render(model)))
            times["load"].append(timed(lambda: build(render(model).numbered())))
            times["configure"].append(timed(lambda: execute(ctx, "configure")))
            assert execute(ctx, "virtual-server tcp 10.0.1.1:80")["ok"]
            assert execute(ctx, f"real-server 192.168.1.1:80 weight {2 + i}")["ok"]
            reply = {}
            times["commit"].append(timed(lambda: reply.update(execute(ctx, "commit"))))
            assert reply["ok"] and reply["data"]["changes"] == [
                "change real server 192.168.1.1:80 of TCP 10.0.1.1:80"], reply
            assert execute(ctx, "end")["ok"]
            times["ipvsadm_e"].append(timed(lambda: execute(
                ctx, f"ipvsadm -e -t 10.0.1.1:80 -r 192.168.1.1:80 -w {100 + i}")))
    try:
        asyncio.run(session())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out.update({k: round(statistics.median(v) * 1000, 2) for k, v in times.items()})
    out["runs_ms"] = {k: [round(t * 1000, 3) for t in v] for k, v in times.items()}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="16x16,64x64,256x16",
                   help="SERVICESxDESTS,... (default %(default)s)")
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    rows = [measure(*map(int, size.split("x")), args.runs) for size in args.sizes.split(",")]
    print("| services x real servers | config lines | render ms | configure ms | commit ms "
          "| load ms | ipvsadm -e ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['services']} x {r['dests']} | {r['lines']} | {r['render']} | "
              f"{r['configure']} | {r['commit']} | {r['load']} | {r['ipvsadm_e']} |")
    os.makedirs(os.path.join(os.path.dirname(__file__), "results"), exist_ok=True)
    path = os.path.join(os.path.dirname(__file__), "results",
                        f"commit-{time.strftime('%Y%m%d-%H%M%S')}.json")
    with open(path, "w") as f:
        json.dump(rows, f, indent=2)
    print(f"results: {path}")
    from charts import bench_charts     # PNGs beside the JSON: ms per size, each operation
    for png in bench_charts(path):
        print(f"chart: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
