"""The daemon's health checks: the configuration's clauses scheduled on the event loop,
their results turned into weights in the data plane, every change on the event log.

The Monitor listens to the model's IPVS table (Services.listeners): after a commit, an
exec-mode ipvsadm line or a rollback it syncs once, keeping the state of every check
whose real server is still there. Probes are coroutines bounded by their timeout, so a
hanging server never holds the loop; the control socket and commits share the loop and
are never waited on by a check. What health decides reaches the data plane through
Services.place() (weight 0 or out of the list, the sorry server in), never by changing
the configured weight.

TCP checks go by the data plane's own prober when it can take them (rlb/core/probe.pxd:
a SYN built and sent by worker 0, its answer known by any worker): the checks due at one
wake-up are handed over in one call, the answers read in one call every few ms
(REAP_EVERY), the timeouts found on a heap; no task, socket or system call per check.
The other checkers (and a TCP check the prober cannot take: a source not ours) run as
coroutines with kernel sockets.
"""
from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections import deque
from collections.abc import Hashable
from ipaddress import IPv4Address

from rlb.health.checkers.tcp import CHECKER as TCP
from rlb.health.config import DEFAULT_POLICY, Policy
from rlb.model.services import PROTO_NAMES
from rlb.health.path import ProbePaths
from rlb.health.result import Result
from rlb.health.schedule import Clock, MonotonicClock
from rlb.health.service import SORRY, Changes, ServiceSettings, ServiceTransition
from rlb.health.state import ServerSettings
from rlb.health.table import HealthTable, ServerConfig, ServiceConfig

log = logging.getLogger("rlb.health")

HOOK_TIMEOUT = 30.0       # seconds a quorum-up/-down command may run
RAMP_EVERY = 0.5          # seconds between weight steps of a slow start
# The event loop is watched: when it ran late by half a probe's timeout or more while
# the probe ran, the probe's timeout may be ours (its answer waited for a loop that did
# not turn), so it is not held against the server. A busy machine delays the loop by
# some tens of ms; a checker with more checks than its core can do, by seconds.
LAG_TICK, LAG_LIMIT, LAG_SHARE = 0.05, 0.1, 0.5
OVERLOAD_LOG_EVERY = 10.0   # seconds between two warnings that checks fall behind
REAP_EVERY = 0.005        # seconds between two reads of the prober's answers
PASSIVE = ("answered", "unanswered", "refused", "fails_in_row", "answered_ago", "failed_ago")


def _server_key(d) -> tuple:
    # the address as an int: IPv4Address hashes in Python, thousands of times a sync
    return (int(d.addr), d.port)


class Monitor:
    """Health of one instance. `await run()` runs it; the model's `monitor` is it."""

    def __init__(self, model, *, clock: Clock | None = None, paths: ProbePaths | None = None):
        self.model = model
        self.clock = clock or MonotonicClock()
        self.table = HealthTable(self.clock, on_quorum_up=self._quorum_up,
                                 on_quorum_down=self._quorum_down)
        self.paths = paths if paths is not None else ProbePaths(model)
        # the environment of quorum-up/-down commands (the daemon puts this instance's
        # dpip and ipvsadm first in PATH: the tutorial's `quorum_up "dpip addr add ..."`)
        self.hook_env: dict | None = None
        # (svc key, server key) -> (service, real server, its check or None), made at sync
        self.checks: dict[tuple, tuple] = {}
        # each service's policy as last synced: a removed service's quorum-down runs
        # (keepalived runs it when a reload removes the service) with what it had
        self.policies: dict = {}
        # the health table keys a service by a small int (its model key holds an
        # IPv4Address, whose hash is Python code: 10,000 checks a second hash it often)
        self.ids: dict = {}                     # model key -> int
        self.keys: dict[int, tuple] = {}        # int -> model key (a removed one's stays)
        self.running: dict[tuple, asyncio.Task] = {}
        # the data plane's TCP prober: the arguments of each check it takes (made at
        # sync), the checks due this wake-up, and those in flight by slot with their
        # deadline (on a heap: (deadline, slot, key))
        self.prober: dict[tuple, tuple] = {}
        self._batch: list = []
        self.inflight: dict[int, tuple] = {}
        self._deadlines: list = []
        self._reap = asyncio.Event()
        self.hooks: set[asyncio.Task] = set()
        # told (service key, up) of a service's state when it starts and at each change:
        # what the route announcements follow (a VIP withdrawn when its service is down)
        self.service_listeners: list = []
        self.lags: deque = deque(maxlen=256)   # (loop time, how late) of late turns
        self.worst_lag = 0.0
        self.discarded = 0            # timeouts not counted because the loop was late
        self._overload_logged = (-OVERLOAD_LOG_EVERY, 0)
        self._dirty = asyncio.Event()
        self._dirty.set()
        self.wall_offset = time.time() - self.clock.now()
        model.services.listeners.append(self._dirty.set)
        model.monitor = self

    # -- the loop ------------------------------------------------------------------

    async def run(self) -> None:
        tasks = [asyncio.create_task(self.table.scheduler.run(self._launch, flush=self._flush)),
                 asyncio.create_task(self._sync_loop()),
                 asyncio.create_task(self._reap_loop()),
                 asyncio.create_task(self._watch_lag())]
        try:
            await asyncio.gather(*tasks)
        finally:
            probes = list(self.running.values())
            for t in tasks + probes:
                t.cancel()
            # a cancelled probe ends its process or socket before the loop goes
            await asyncio.gather(*tasks, *probes, return_exceptions=True)

    async def _watch_lag(self) -> None:
        """How late the event loop runs (more checks than a core can do, a long sync):
        the time it was last LAG_LIMIT late is what _probe() compares with."""
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(LAG_TICK)
            lag = loop.time() - t - LAG_TICK
            if lag > LAG_LIMIT:
                self.lags.append((loop.time(), lag))
                self.worst_lag = max(self.worst_lag, lag)

    def _overloaded(self, started: float, timeout: float) -> bool:
        """A timeout of a probe started at `started` counts for nothing if the loop ran
        late by half its timeout meanwhile: the server may have answered while we could
        not listen. A saturated checker must not take every server down (it says so in
        the log)."""
        late = max((lag for t, lag in reversed(self.lags) if t >= started), default=0.0)
        if late < LAG_SHARE * timeout:
            return False
        self.discarded += 1
        now = asyncio.get_running_loop().time()
        last, count = self._overload_logged
        if now - last >= OVERLOAD_LOG_EVERY:
            log.warning("health checks fall behind (the event loop ran up to %.0f ms late): "
                        "%d timeout(s) not counted against their servers; fewer checks or "
                        "longer intervals are needed", self.worst_lag * 1000,
                        self.discarded - count)
            self._overload_logged = (now, self.discarded)
            self.worst_lag = 0.0
        return True

    async def _sync_loop(self) -> None:
        while True:
            try:
                async with asyncio.timeout(RAMP_EVERY):
                    await self._dirty.wait()
            except TimeoutError:
                pass
            try:
                if self._dirty.is_set():
                    self._dirty.clear()
                    self.sync()
                else:
                    for key, svc in self.table.services.items():
                        if svc.ramping():
                            self._place(key)
            except Exception:                   # never let a bad sync stop the checks
                log.exception("health sync failed")

    async def stop(self, wait: float = 10.0) -> None:
        """The daemon stops: each service goes down (quorum-down runs with omega, and is
        waited for up to `wait` seconds), the probe paths are removed."""
        for key, t in self.table.shutdown().items():
            log.info("%s %s", self._svc_name(key), t.line("").strip())
        if self.hooks:
            await asyncio.wait(list(self.hooks), timeout=wait)
        try:
            self.paths.close()
        except Exception:
            log.exception("removing the probe paths failed")
        try:
            self.model.services.listeners.remove(self._dirty.set)
        except ValueError:
            pass

    # -- configuration -------------------------------------------------------------

    def sync(self) -> None:
        """Make the health table the configuration's (services with health only) and put
        every real server where its health says."""
        services = self.model.services
        config, checks, made, prober = {}, {}, {}, {}
        for svc in services.table.values():
            if not svc.checked:
                back = [(d, None) for d in svc.dests if d.slot in services.placement]
                if back:
                    services.place(svc, back)
                continue
            policy: Policy = svc.health or DEFAULT_POLICY
            sid = self._id(svc.key)
            sorry = next((d for d in svc.dests if d.sorry), None)
            servers = {}
            for d in svc.dests:
                if d.sorry:
                    continue
                c = d.check if d.check is not None else policy.check
                key = (sid, _server_key(d))
                checks[key] = (svc, d, c)
                if c is not None and c.check.checker is TCP:
                    args = self.paths.prober(svc, d, c.check.get("source"),
                                             c.check.get("port"))
                    if args is not None:
                        prober[key] = args
                # thousands of servers share a few clauses and weights: one config each
                shared = (id(c), d.weight, policy.alpha, policy.inhibit)
                sc = made.get(shared)
                if sc is None:
                    sc = made[shared] = ServerConfig(
                        c.timing if c is not None else None,
                        ServerSettings(d.weight, c.rise if c else 1, c.fall if c else 2,
                                       policy.alpha and c is not None, policy.inhibit,
                                       c.slowstart if c else 0.0))
                servers[key[1]] = sc
            config[sid] = ServiceConfig(
                ServiceSettings(policy.quorum, policy.hysteresis, sorry is not None,
                                sorry.weight if sorry else 1, policy.omega), servers)
        self.checks = checks
        self.prober = prober
        policies = {sid: services.table[self.keys[sid]].health or DEFAULT_POLICY
                    for sid in config}
        self.policies.update(policies)      # a removed service's stays for its quorum-down
        changes = self.table.sync(config)
        self.policies = policies
        for key, ch in changes.items():
            self._report(key, ch)
        for sid, health in self.table.services.items():
            svc = services.table[self.keys[sid]]
            for d in svc.dests:
                s = health.servers.get(_server_key(d))
                if s is not None and s.disabled != d.disabled:
                    log.info("%s %s", self._rs_name(sid, _server_key(d)),
                             "out of service (maintenance)" if d.disabled else "back in service")
                    act = health.disable if d.disabled else health.enable
                    self._report(sid, act(_server_key(d), self.clock.now()))
        for key in self.table.services:
            self._place(key)
        try:
            self.paths.sync()
        except Exception:
            log.exception("setting up the probe paths failed")

    def _id(self, svc_key) -> int:
        sid = self.ids.get(svc_key)
        if sid is None:
            sid = self.ids[svc_key] = len(self.ids)
            self.keys[sid] = svc_key
        return sid

    # -- probes --------------------------------------------------------------------

    def _launch(self, key: Hashable, deadline: float) -> None:
        if key in self.prober:
            self._batch.append(key)
        else:
            self.running[key] = asyncio.create_task(self._probe(key))

    async def _probe(self, key) -> None:
        started = asyncio.get_running_loop().time()
        try:
            result = await self._run_check(key)
        except asyncio.CancelledError:
            raise
        except Exception as e:                  # a checker's bug: a failed check, logged
            log.exception("health check %s failed", key)
            result = Result(False, 0.0, f"internal error: {type(e).__name__}")
        finally:
            self.running.pop(key, None)
        self._conclude(key, result, started)

    def _flush(self) -> None:
        """Hand the TCP checks due at this wake-up to the data plane's prober at once."""
        if not self._batch:
            return
        keys, self._batch = self._batch, []
        loop = asyncio.get_running_loop()
        now = loop.time()
        args, sent = [], []
        for key in keys:
            a, found = self.prober.get(key), self.checks.get(key)
            if a is None or found is None or found[2] is None:
                self.table.skip(key)            # gone at a sync since it fell due
                continue
            old = self.inflight.pop(a[0], None)
            if old is not None:                 # its slot went to another real server
                self.table.skip(old[0])
            args.append(a)
            sent.append((key, a[0], now + found[2].timing.timeout, found[2].timing.timeout))
        try:
            queued = self.model.engine.probe_tcp(args)
        except Exception:
            log.exception("the data plane's prober refused %d probes", len(args))
            queued = 0
        for i, (key, slot, deadline, timeout) in enumerate(sent):
            if i >= queued:                     # not sent (its queue full, no engine)
                self.table.skip(key)
                continue
            self.inflight[slot] = (key, deadline, now, timeout)
            heapq.heappush(self._deadlines, (deadline, slot, key))
        if self.inflight:
            self._reap.set()

    async def _reap_loop(self) -> None:
        """The prober's answers and timeouts, every REAP_EVERY while probes are out."""
        loop = asyncio.get_running_loop()
        while True:
            if not self.inflight:
                self._reap.clear()
                await self._reap.wait()
            await asyncio.sleep(REAP_EVERY)
            try:
                self._reap_once(loop.time())
            except Exception:                   # never let one bad answer stop the checks
                log.exception("reading the prober's answers failed")

    def _reap_once(self, now: float) -> None:
        for slot, is_open, latency in self.model.engine.probe_answers():
            got = self.inflight.pop(slot, None)
            if got is None:
                continue
            key, _, started, _ = got
            try:
                self._conclude(key, Result(True, latency) if is_open else
                               Result(False, latency, "connection refused"), started)
            except Exception:               # one answer's trouble: the others still count
                log.exception("health check %s: its answer could not be counted", key)
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            _, slot, key = heapq.heappop(heap)
            got = self.inflight.get(slot)
            if got is None or got[0] != key or got[1] > now:
                continue                        # answered, or a newer probe of the slot
            del self.inflight[slot]
            self.model.engine.probe_cancel(slot)
            timeout = got[3]
            self._conclude(key, Result(False, timeout,
                                       f"timeout after {timeout} s during connect",
                                       timed_out=True), got[2])

    def _conclude(self, key, result: Result, started: float) -> None:
        """A check's result, started at loop time `started`, moves its server's state."""
        found = self.checks.get(key)
        if result.timed_out and found is not None and found[2] is not None and \
                self._overloaded(started, found[2].timing.timeout):
            self.table.skip(key)                 # next on its grid, the server untouched
            return
        health = self.table.services.get(key[0])
        server = health.servers.get(key[1]) if health is not None else None
        target = server.target if server is not None else None
        changes = self.table.record(key, result)
        if changes:
            self._report(key[0], changes)
        # weights move at a transition, or when a misc_dynamic result moves the target:
        # only then is the service placed again (at 10,000 checks a second, most
        # results change nothing)
        if server is not None and (changes or server.target != target):
            self._place(key[0])

    async def _run_check(self, key) -> Result:
        found = self.checks.get(key)
        # gone from the table since the last sync (the next one drops the check)
        if found is None or found[2] is None or \
                self.model.services.table.get(found[0].key) is not found[0]:
            return Result(False, 0.0, "no longer configured")
        svc, d, clause = found
        target = self.paths.target(svc, d)
        return await clause.check.run(target.addr, target.port, target.source, target.sport)

    # -- what health decides ---------------------------------------------------------

    def _place(self, sid: int) -> None:
        svc = self.model.services.table.get(self.keys[sid])
        health = self.table.services.get(sid)
        if svc is None or health is None:
            return
        placements = health.placements(self.clock.now())
        out = []
        for d in svc.dests:
            p = placements.get(SORRY if d.sorry else _server_key(d))
            if p is not None:
                out.append((d, (p.in_pool, p.weight)))
        self.model.services.place(svc, out)

    def _report(self, sid: int, changes: Changes) -> None:
        for rs, t in changes.servers:
            (log.info if t.up else log.warning)("%s", t.line(self._rs_name(sid, rs)))
        t = changes.service
        if t is not None:
            line = f"{self._svc_name(sid)} {t.state}: {t.reason}"
            (log.info if t.up else log.warning)("%s", line)
            for listener in self.service_listeners:
                listener(self.keys[sid], t.up)

    def service_up(self, svc_key) -> bool | None:
        """Whether a service with health is up (None: it has none; it serves as
        configured)."""
        health = self.table.services.get(self.ids.get(svc_key))
        return None if health is None else health.up

    def _svc_name(self, sid: int) -> str:
        key = self.keys[sid]
        svc = self.model.services.table.get(key)
        if svc is not None:
            return f"service {svc}"
        proto, vaddr, vport = key               # one a commit removed
        return f"service {PROTO_NAMES.get(proto, 'MATCH')} {vaddr}" + (f":{vport}" if proto else "")

    def _rs_name(self, sid: int, rs) -> str:
        return f"{self._svc_name(sid)} real server {IPv4Address(rs[0])}:{rs[1]}"

    # -- quorum commands ---------------------------------------------------------------

    def _quorum_up(self, key, t: ServiceTransition) -> None:
        self._hook(key, "quorum_up")

    def _quorum_down(self, key, t: ServiceTransition) -> None:
        self._hook(key, "quorum_down")

    def _hook(self, key, which: str) -> None:
        command = getattr(self.policies.get(key, DEFAULT_POLICY), which)
        if not command:
            return
        try:
            task = asyncio.get_running_loop().create_task(self._run_hook(key, which, command))
        except RuntimeError:                    # no loop: the daemon is stopping
            return
        self.hooks.add(task)
        task.add_done_callback(self.hooks.discard)

    async def _run_hook(self, key, which: str, command: str) -> None:
        name = f"{self._svc_name(key)} {which.replace('_', '-')}"
        try:
            proc = await asyncio.create_subprocess_shell(
                command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True, env=self.hook_env)
        except OSError as e:
            log.error("%s: %s: %s", name, command, e.strerror)
            return
        try:
            async with asyncio.timeout(HOOK_TIMEOUT):
                out, _ = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            log.error("%s: %s: killed after %g s", name, command, HOOK_TIMEOUT)
            return
        text = out.decode(errors="replace").strip().replace("\n", " | ")[:200]
        (log.info if proc.returncode == 0 else log.error)(
            "%s: %s: exit %d%s", name, command, proc.returncode, f": {text}" if text else "")

    # -- what `show ip vs health` shows ---------------------------------------------------

    def view(self, svc_key=None) -> list[dict]:
        now = self.clock.now()
        out = []
        services = self.model.services
        for key, health in self.table.services.items():
            svc = services.table.get(self.keys[key])
            if svc is None or (svc_key is not None and svc.key != svc_key):
                continue
            row = {"service": str(svc), **health.view(now)}
            row["since"] = self._wall(row["since"])
            row["for"] = round(now - health.since, 1)
            servers = []
            for d in svc.dests:
                if d.sorry:
                    servers.append({"server": f"{d.addr}:{d.port}", "sorry": True,
                                    "in_pool": services.placed(d)[0],
                                    "weight": services.weight_now(d),
                                    "configured_weight": d.weight})
                    continue
                s = health.servers.get(_server_key(d))
                if s is None:
                    continue
                clause = self.checks.get((key, _server_key(d)), (None, None, None))[2]
                v = s.view(now)
                v.update(server=f"{d.addr}:{d.port}", mode=d.mode,
                         check=clause.text if clause is not None else None,
                         since=self._wall(v["since"]), last_at=self._wall(v["last_at"]),
                         weight=services.weight_now(d), in_pool=services.placed(d)[0],
                         **{"for": round(now - s.since, 1)})
                stats = services.dest_stats(d)
                v["passive"] = {k: stats.get(k) for k in PASSIVE}
                servers.append(v)
            row["servers"] = servers
            out.append(row)
        return out

    def _wall(self, t: float | None) -> float | None:
        return None if t is None else round(t + self.wall_offset, 3)
