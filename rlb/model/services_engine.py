"""The IPVS table and the data plane: services and real servers pushed, counters and rates read back."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, NamedTuple

from rlb.core import consts, counters

if TYPE_CHECKING:   # services.py imports this module for its base class
    from rlb.model.services import Dest, Service

# svc_t.flags the push sets from the table (F_PERSISTENT is the service's own, services.py)
F_MATCH, F_CLIENT_OWNER = consts.SVC_F_MATCH, consts.SVC_F_CLIENT_OWNER
CONN_LIST_LIMIT = 100_000         # rows `ipvsadm -lnc` asks the data plane for
RATE_MIN_INTERVAL = 1.0           # seconds: a `--rate` asked sooner reuses the newest sample

ZERO_SVC_STATS = counters.SVC.zero()       # what svc_stats() returns without a data plane
ZERO_DEST_STATS = counters.DEST.zero()
# rate name -> the counter it is the per-second derivative of
RATES = {"cps": "conns", "inpps": "inpkts", "outpps": "outpkts", "inbps": "inbytes",
         "outbps": "outbytes"}
ZERO_RATES = dict.fromkeys(RATES, 0)
RATE_COUNTERS = tuple(RATES.values())


class TableDest(NamedTuple):
    """What a table scheduler (Scheduler.table) is given per real server."""
    slot: int
    addr: int                        # host order, like every address given to the engine
    port: int
    weight: int
    available: bool


class ServicesEngine:
    """What Services does with `self.engine` (None until a data plane is attached):
    the table it has validated is pushed here, and what ipvsadm shows of the running
    table (--stats, --rate, -lnc) and clears (-Z) is read here."""

    # Grows at each change of the table or of what the data plane was told of it (a
    # health decision, an address SNAT waits for): what is built from the table, and
    # kept while it stays the same, is built again (the metrics' rows).
    version = 0

    def zero(self, key: tuple | None = None) -> None:
        """ipvsadm -Z [service]."""
        svc = self.get(key) if key is not None else None
        if self.engine is not None:
            self.engine.zero_stats(svc.slot if svc else None)
        self._samples.clear()

    def svc_stats(self, svc: Service) -> dict:
        return dict(self.engine.svc_stats(svc.slot)) if self.engine is not None else dict(ZERO_SVC_STATS)

    def dest_stats(self, d: Dest) -> dict:
        return dict(self.engine.dest_stats(d.slot)) if self.engine is not None else dict(ZERO_DEST_STATS)

    def laddr_stats(self, svc: Service) -> list[dict]:
        """Per local address, in the service's order: used (connections), miss (conflicts)."""
        got = list(self.engine.laddr_stats(svc.slot)) if self.engine and svc.laddrs else []
        return [dict(dict(addr=int(la.addr), used=0, miss=0), **(got[k] if k < len(got) else {}))
                for k, la in enumerate(svc.laddrs)]

    def sapool_usage(self, addr) -> tuple[int, int]:
        """(connections holding a local port of addr, ports not found) over all services:
        `dpip addr show`'s sa_used and sa_miss."""
        used = miss = 0
        for svc in self.table.values():
            for la, row in zip(svc.laddrs, self.laddr_stats(svc)):
                if la.addr == addr:
                    used += row["used"]
                    miss += row["miss"]
        return used, miss

    def connections(self, limit: int = CONN_LIST_LIMIT) -> list[dict]:
        return list(self.engine.connections(limit)) if self.engine is not None else []

    def sample_rates(self, now: float | None = None) -> None:
        """Take one sample of every service's and real server's counters. The daemon calls
        this every 2 s; `ipvsadm -L --rate` takes one too when the newest is older than 1 s.
        Rates are the difference of the last two samples over their interval."""
        if self.engine is None:
            return
        svcs = list(self.table.values())
        counters = self._counts("svc", svcs)
        counters.update(self._counts("dest", [d for svc in svcs for d in svc.dests]))
        self._samples.append((time.monotonic() if now is None else now, counters))

    def _counts(self, kind: str, objs: list) -> dict:
        """{(kind, slot): the RATES counters, a tuple}: one bulk read of the data plane
        (16,000 real servers a dict each held the event loop 100 ms or more, every 2 s)."""
        engine = self.engine
        bulk = getattr(engine, f"{kind}_bulk", None)
        if bulk is None:                    # an engine without bulk reads (tests' fakes)
            stats = engine.svc_stats if kind == "svc" else engine.dest_stats
            return {(kind, o.slot): tuple(stats(o.slot)[c] for c in RATE_COUNTERS)
                    for o in objs}
        from rlb.core.stats import DEST_BULK, SVC_BULK
        names = SVC_BULK if kind == "svc" else DEST_BULK
        width, cols = len(names), [names.index(c) for c in RATE_COUNTERS]
        a = bulk([o.slot for o in objs])
        return {(kind, o.slot): tuple(a[k * width + c] for c in cols)
                for k, o in enumerate(objs)}

    def rates(self, now: float | None = None) -> dict:
        """{("svc"|"dest", slot): {cps, inpps, outpps, inbps, outbps}}; absent: 0."""
        if self.engine is None:
            return {}
        now = time.monotonic() if now is None else now
        if not self._samples or now - self._samples[-1][0] >= RATE_MIN_INTERVAL:
            self.sample_rates(now)
        if len(self._samples) < 2:
            return {}
        (t0, old), (t1, new) = self._samples
        if t1 <= t0:
            return {}
        out = {}
        for key, cur in new.items():
            prev = old.get(key)
            if prev is not None:
                # a counter that went down was zeroed (-Z): no rate for that interval
                out[key] = {r: int(max(0, cur[j] - prev[j]) / (t1 - t0))
                            for j, r in enumerate(RATES)}
        return out

    def _forget(self, *keys) -> None:
        """A freed slot's samples go, so that its next user starts without a history
        (and a freed real server's health placement)."""
        for _, counters in self._samples:
            for key in keys:
                counters.pop(key, None)
        for kind, slot in keys:
            if kind == "dest":
                self.placement.pop(slot, None)

    # ------------------------------------------------------------ health

    def changed(self) -> None:
        """The table changed, or a route (the path of a probe): the listeners (the
        health monitor) are told."""
        self.version += 1
        for listener in self.listeners:
            listener()

    def placed(self, d: Dest) -> tuple[bool, int]:
        """(in the scheduler's list, weight now) of a real server: what health decided,
        else its configuration (a disabled one at weight 0, a sorry server out)."""
        return self.placed_all((d,))[0]

    def placed_all(self, dests) -> list[tuple[bool, int]]:
        """placed() of many real servers (a metrics scrape asks for 16,000 at once)."""
        placement, modes, model = self.placement, self.modes, self.model
        out = []
        for d in dests:
            got = placement.get(d.slot)
            if got is None:
                got = (not d.sorry, 0 if d.disabled else d.weight)
            if got[1] and not modes[d.mode].usable(d, model):
                got = (got[0], 0)           # SNAT: its WAN address is not ours (yet)
            out.append(got)
        return out

    def weight_now(self, d: Dest) -> int:
        return self.placed(d)[1]

    def listed(self, svc: Service) -> list[Dest]:
        """The real servers the scheduler has now (ipvsadm -ln lists these)."""
        return [d for d in svc.dests if self.placed(d)[0]]

    def place(self, svc: Service, changes: list[tuple[Dest, tuple[bool, int] | None]]) -> None:
        """Health's decisions for real servers of one service (None: back to its
        configuration): each one that moves is pushed, then the service once."""
        moved = False
        for d, placement in changes:
            before = self.placed(d)
            if placement is None:
                self.placement.pop(d.slot, None)
            else:
                self.placement[d.slot] = placement
            if self.engine is not None and self.placed(d) != before:
                self._push_dest(self.engine, svc, d)
                moved = True
        if moved:
            self._push_service(self.engine, svc)

    def addresses_changed(self) -> None:
        """The LB's addresses changed: real servers of modes that need one of them (SNAT's
        WAN address) are pushed again, with the weight they can have now."""
        if self.engine is None:
            return
        for svc in self.table.values():
            mine = [d for d in svc.dests if self.modes[d.mode].needs_own_address]
            for d in mine:
                self._push_dest(self.engine, svc, d)
            if mine:
                self._push_service(self.engine, svc)

    def _ensure_registered(self, engine) -> None:
        """Give the data plane every mode's and scheduler's C ops, once per engine, before the
        first service needs them (so a data plane without services never loads plugins)."""
        if self._registered is engine:
            return
        self._tabled: set[int] = set()         # service slots this engine holds a table of
        for i, mode in enumerate(self.modes.values()):
            if mode.ops is not None:
                engine.register_mode(i, mode.ops())
        for i, sched in enumerate(self.schedulers.values()):
            if sched.ops is not None:
                engine.register_sched(i, sched.ops())
        self._registered = engine

    def _push_dest(self, engine, svc: Service, d: Dest) -> None:
        self.version += 1
        weight = self.weight_now(d)
        engine.dest_set(d.slot, svc=svc.slot, addr=int(d.addr), port=d.port,
                        mode=self.mode_index(d.mode), weight=weight,
                        u_threshold=d.u_threshold, l_threshold=d.l_threshold,
                        available=weight > 0)

    def _push_service(self, engine, svc: Service) -> None:
        self.version += 1
        sched = self.schedulers[svc.sched]
        flags = svc.flags
        if svc.match is not None:
            flags |= F_MATCH
        if any(getattr(self.modes[d.mode], "steer_by_client", False) for d in svc.dests):
            flags |= F_CLIENT_OWNER
        listed = self.listed(svc)
        if sched.table is not None:
            dests = [TableDest(d.slot, int(d.addr), d.port, w, w > 0)
                     for d in listed for w in (self.weight_now(d),)]
            table = sched.table(dests, svc.hash_target) if sched.targets else sched.table(dests)
            engine.svc_table(svc.slot, list(table))
            self._tabled.add(svc.slot)
        elif svc.slot in self._tabled:
            # a scheduler without a table (mh -> rr): the old table goes, or the data
            # plane would still adopt mid-flow segments by it (rlb.core.lb: lb_adopts)
            engine.svc_table(svc.slot, [])
            self._tabled.discard(svc.slot)
        engine.svc_set(svc.slot, proto=svc.proto, vaddr=int(svc.vaddr), vport=svc.vport,
                       sched=self.sched_index(svc.sched), flags=flags,
                       timeout=svc.timeout if svc.persistent else 0, netmask=int(svc.netmask),
                       dests=[d.slot for d in listed],
                       laddrs=[(int(la.addr), self.model.ports[la.dev].index)
                               for la in svc.laddrs],
                       match=None if svc.match is None else svc.match.engine_dict(
                           lambda name: self.model.ports[name].index))
