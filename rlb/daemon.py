"""`rlb daemon`: check the config, start the DPDK engine, serve the control socket and ssh.

The composition root, above rlb.control and rlb.shell: it starts the control server and
the ssh shell side by side, so neither layer imports the other's service.

SIGTERM or SIGINT stops it cleanly: workers joined, ports closed (their kni taps
disappear), kernel isolation removed, control socket deleted.
"""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sys

from rlb import logs
from rlb.control import paths
from rlb.control.config import ConfigError, check, read_file
from rlb.control.server import ControlServer
from rlb.core import ports as portlib
from rlb.model.model import BOND, PORT

log = logging.getLogger("rlb.daemon")


def eal_args(instance: str, settings, has_pci: bool) -> list[str]:
    """EAL without hugepages (DESIGN.md): one lcore for the control thread, one per
    worker, spread over the CPUs this process may use."""
    cpus = sorted(os.sched_getaffinity(0))
    lcores = ",".join(f"{i}@{cpus[i % len(cpus)]}" for i in range(settings.workers + 1))
    args = ["--no-huge", "-m", str(settings.memory), "--no-shconf",
            "--file-prefix", f"rlb-{instance}", "--lcores", lcores, "--no-telemetry",
            "--log-level", "*:error"]
    if not has_pci:
        args.append("--no-pci")
    return args


def main(config_path: str, instance: str, keepalived: str | None = None) -> int:
    """keepalived: a keepalived.conf whose services and VRRP instances the daemon runs
    beside config_path's lines (SIGHUP reads it again)."""
    if not paths.valid_instance(instance):
        print(f"rlb: bad instance name {instance!r}", file=sys.stderr)
        return 2
    logs.setup(instance)            # the journal under systemd, else stderr (rlb.logs)
    try:
        lines = read_file(config_path)
        if keepalived is not None:
            from rlb.ha import kaconf
            lines += kaconf.import_file(keepalived).numbered()
        model = check(lines, config_path)
    except OSError as err:
        print(f"rlb: {config_path}: {err.strerror}", file=sys.stderr)
        return 2
    except ConfigError as err:
        print(f"rlb: {err}", file=sys.stderr)
        return 2
    if not model.ports:
        print(f"rlb: {config_path}: no port in the dataplane section", file=sys.stderr)
        return 2
    model.store = _store(model, config_path, instance)
    sock = paths.socket_path(instance)
    if os.path.exists(sock):
        from rlb.control.client import Client, ControlError
        try:
            Client(instance, timeout=2).close()
            print(f"rlb: instance {instance!r} is already running ({sock})", file=sys.stderr)
            return 1
        except ControlError:
            os.unlink(sock)                      # left by a crash

    from rlb.core.dataplane import DataplaneError, Engine

    s = model.settings
    devs = [(p.name, portlib.with_queues(p.devargs, s.workers), p.kni if s.kni else None)
            for p in model.ports.values() if p.kind in (PORT, BOND)]
    slaves = [portlib.with_queues(p.devargs, s.workers) for p in model.slaves.values()]
    iso = portlib.KernelIsolation(
        instance, [portlib.kernel_iface(p.devargs)
                   for p in [*model.ports.values(), *model.slaves.values()] if p.kind == PORT])
    iso.apply()
    engine = None
    try:
        pci = any(portlib.is_pci(d) for d in [*slaves, *(d for _, d, _ in devs)])
        engine = Engine(eal_args(instance, s, pci), devs,
                        workers=s.workers, pool_size=s.pool_size,
                        route_cap=s.route_table_size, neigh_cap=s.neigh_table_size,
                        busy_poll=s.busy_poll, idle_sleep_us=s.idle_sleep,
                        neigh_timeout=s.neigh_timeout, ip_forward=s.forwarding,
                        svc_cap=s.service_table_size, dest_cap=s.dest_table_size,
                        conn_cap=s.conn_table_size, slaves=slaves)
        engine.start()
        for _, _, kni in devs:
            if kni:
                portlib.kni_prepare(kni)
        model.attach(engine)
        log.info("instance %s up: %d port(s), %d worker(s)", instance, len(devs), s.workers)
        asyncio.run(_serve(model, sock, instance, keepalived))
        return 0
    except DataplaneError as err:
        print(f"rlb: {err}", file=sys.stderr)
        return 1
    finally:
        if engine is not None:
            engine.stop()
        iso.remove()
        if os.path.exists(sock) and engine is not None:
            try:
                os.unlink(sock)
            except OSError:
                pass
        log.info("instance %s stopped", instance)


def _store(model, config_path: str, instance: str):
    """The commit history; the configuration the daemon starts with is its newest commit
    (recorded unless it already is), so that `rollback 1` after a commit gets back to it."""
    from rlb.control.commit import Store
    from rlb.commands.running import render
    store = Store(paths.commits_dir(instance), startup=os.path.abspath(config_path))
    now = render(model)
    if store.latest() != now.lines():       # none yet, unreadable, or another file
        store.record(now, "rlb", f"startup from {os.path.abspath(config_path)}")
    return store


async def _serve(model, sock: str, instance: str, keepalived: str | None = None) -> None:
    # SIGTERM must stop us cleanly from the moment the socket says we are up
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if keepalived is not None:
        loop.add_signal_handler(signal.SIGHUP, _reload_keepalived, model, keepalived)
    else:                 # (a stray HUP, logrotate's, must not stop an LB)
        loop.add_signal_handler(signal.SIGHUP, log.info,
                                "SIGHUP: nothing to reload (no -k keepalived.conf)")
    from rlb.ha.keepalived import Keepalived
    from rlb.ha.sync import Sync
    from rlb.health.monitor import Monitor
    from rlb.commands.show import rlb_version
    from rlb.ops.metrics import Exporter
    from rlb.routing.announce import Announcer
    from rlb.routing.exabgp import Speaker
    from rlb.routing.router import Router
    monitor = Monitor(model)
    monitor.hook_env = _tools(instance)
    announcer = Announcer(model, monitor)
    router = Router(model, instance)
    speaker = Speaker(model, instance)
    announcer.speakers.append(speaker)
    keepalived = Keepalived(model, instance)
    syncer = Sync(model)
    exporter = Exporter(model, instance, rlb_version())
    model.ops.listeners.append(lambda: _apply_log(model))
    _apply_log(model)
    exporter.apply()
    server = ControlServer(model, sock, host=instance)
    await server.start()
    ssh = await _start_ssh(model, instance)
    logs.notify("READY=1")          # Type=notify: the socket and ssh answer from now on
    rates = asyncio.create_task(_sample_rates(model))
    links = asyncio.create_task(_watch_links(model))
    checks = asyncio.create_task(monitor.run())
    announcing = asyncio.create_task(announcer.run())
    routing = asyncio.create_task(router.run())
    bgp = asyncio.create_task(speaker.run())
    vrrp = asyncio.create_task(keepalived.run())
    syncing = asyncio.create_task(syncer.run())
    try:
        await stop.wait()
        logs.notify("STOPPING=1")
        if model.routing.drain_on_stop:        # withdraw, and let the connections end
            stop.clear()                        # a second SIGTERM: at once
            await announcer.drain_for_stop(model.routing.drain_on_stop, stop)
    finally:
        # the routes go first: the neighbours move the flows away while we still serve;
        # each step runs whatever the one before did
        announcing.cancel()
        vrrp.cancel()
        syncing.cancel()
        bgp.cancel()
        routing.cancel()
        checks.cancel()
        rates.cancel()
        links.cancel()
        steps = [("stop the metrics endpoint", exporter.stop),   # it reads the data plane
                 ("withdraw the VIPs", announcer.stop),
                 ("leave VRRP (the peer takes over)", keepalived.stop),
                 ("stop the connection sync", syncer.stop),
                 ("stop exabgp", speaker.stop),
                 ("stop FRR", lambda: asyncio.to_thread(router.stop)),
                 ("stop the health checks", monitor.stop),
                 ("stop the ssh shell", ssh.stop if ssh is not None else None),
                 ("stop the control socket", server.stop),
                 ("keep the last exec lines", model.store.flush),
                 ("remove the quorum commands' dpip/ipvsadm",
                  lambda: shutil.rmtree(paths.tools_dir(instance), ignore_errors=True))]
        for what, step in steps:
            if step is None:
                continue
            try:
                done = step()
                if asyncio.iscoroutine(done):
                    await done
            except Exception:
                log.exception("stopping: %s failed", what)


async def _watch_links(model, every: float = 0.1) -> None:
    """A bond's slave whose kernel interface lost its carrier leaves its bond (which moves
    its traffic to the others) and comes back when the link does."""
    watch = portlib.LinkWatch([p.devargs for p in model.slaves.values()])
    if not watch.ifaces:
        return
    bond_of = {}
    for p in model.ports.values():
        if p.kind == BOND:
            bond_of.update((model.slaves[sl].devargs, p) for sl in p.bond.slaves)
    names = {p.devargs: p.name for p in model.slaves.values()}
    while True:
        for devargs, up in watch.poll():
            bond = bond_of[devargs]
            try:
                model.engine.bond_slave(bond.index, devargs.split(",")[0], up)
                log.warning("%s: slave %s link %s: %s", bond.name, names[devargs],
                            "up" if up else "down", "back in" if up else "out")
            except Exception as err:            # a DataplaneError says which and why
                log.error("%s: slave %s link %s: %s", bond.name, names[devargs],
                          "up" if up else "down", err)
        await asyncio.sleep(every)


def _apply_log(model) -> None:
    """`log ...` as the running configuration says (a commit checked the file first)."""
    try:
        logs.apply(model.ops.log_target, model.ops.log_level)
    except OSError as err:
        log.error("log: %s: the log goes where it went", err)


TOOLS = ("dpip", "ipvsadm")


def _tools(instance: str) -> dict | None:
    """`dpip` and `ipvsadm` commands that reach this instance (`rlb -N INSTANCE dpip
    ...`), first in the PATH of the commands the daemon runs; None if they cannot be
    written (the commands then find whatever PATH has)."""
    where = paths.tools_dir(instance)
    try:
        os.makedirs(where, exist_ok=True)
        for tool in TOOLS:
            path = os.path.join(where, tool)
            with open(path + ".new", "w") as f:
                f.write(f"#!/bin/sh\n# written by rlb: {tool} on instance {instance}\n"
                        f"exec {sys.executable} -m rlb -N {instance} {tool} \"$@\"\n")
            os.chmod(path + ".new", 0o755)
            os.replace(path + ".new", path)
    except OSError as err:
        log.warning("no dpip/ipvsadm for quorum commands in %s: %s", where, err.strerror)
        return None
    return {**os.environ, "PATH": f"{where}:{os.environ.get('PATH', '/usr/bin:/bin')}"}


def _reload_keepalived(model, path: str) -> None:
    """SIGHUP, as keepalived's reload: the keepalived file read again, its services and
    VRRP instances replacing the running ones in one commit (only the differences are
    applied); a file rlb refuses changes nothing, and the log says why."""
    from rlb.commands.base import Context
    from rlb.control.server import load
    from rlb.ha import kaconf
    try:
        lines = kaconf.import_file(path).numbered()
    except kaconf.KaError as err:
        log.error("reload of %s refused, nothing changed: %s", path, err)
        return
    reply = load(Context(model, user="root", via="signal"), [list(x) for x in lines], path,
                 keepalived=True)
    if reply["ok"]:
        log.info("reload of %s: %s", path, " | ".join(reply["text"].splitlines()))
    else:
        log.error("reload of %s refused, nothing changed: %s", path, reply["error"])


async def _start_ssh(model, instance: str):
    """The ssh shell, listening if the config says `ssh listen` (and later when it does)."""
    try:
        from rlb.shell.ssh import SshService
    except ImportError as err:               # asyncssh missing: everything else still runs
        log.warning("no ssh shell: %s", err)
        return None
    ssh = SshService(model, instance)
    await ssh.apply()
    return ssh


async def _sample_rates(model, every: float = 2.0) -> None:
    """ipvsadm --rate: the estimator samples the counters, as LVS's does every 2 s. It
    also says, in the log, why a service is dropping new flows."""
    seen: dict = {}
    while True:
        try:
            model.services.sample_rates()
            _explain_drops(model, seen)
        except Exception:                       # never let the estimator stop the daemon
            log.exception("rate sampling failed")
        await asyncio.sleep(every)


WHY = {"no_laddr": "it has no local address with a free port (FNAT needs "
                   "`ipvsadm --add-laddr -z LIP -t|-u VIP:PORT -F DEV`)",
       "no_dest": "no real server can take new flows (none, all weight 0 or overloaded)"}


def _explain_drops(model, seen: dict) -> None:
    """Log once per minute per service and reason while new flows are being dropped."""
    import time
    engine = model.engine
    for svc in model.services.table.values():
        stats = engine.svc_stats(svc.slot)
        for reason, why in WHY.items():
            key = (svc.slot, reason)
            count, last_log = seen.get(key, (0, 0.0))
            if stats[reason] > count and time.monotonic() - last_log > 60:
                log.warning("service %s dropped %d new flow(s): %s", svc,
                            stats[reason] - count, why)
                last_log = time.monotonic()
            seen[key] = (stats[reason], last_log)
