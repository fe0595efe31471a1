"""VIPs announced from the services that have them, withdrawn by their health.

A service with `announce PORT` puts its VIP, as a /32, on PORT's kni in the daemon's own
namespace while it is up; the routing daemon there (FRR's ospfd with `redistribute
connected route-map`, research/routing.md 5.4) announces what the kni holds, so the VIP
is written once, in the service, never in a routing file. BGP's speaker (exabgp,
rlb.routing.exabgp) is told each VIP announced, and withdrawn before the kni loses it.
Per VIP (and port): announced
while any of its services with `announce` is up (a service without health checks is
up); withdrawn when none is, and announced again only `hold-down` seconds after it was
withdrawn (an OSPF neighbour ignores an LSA that comes back within MinLSArrival).

Withdrawing removes the address from the kni only: the data plane keeps the service, so
the connections that still arrive while the neighbours converge are served, and drain.
When the daemon stops, every VIP is withdrawn first, before anything else goes; with
`routing drain-on-stop SECONDS` it then waits for the active connections to end. The
LB's own health comes first: a data-plane worker whose loop stops turning (its `polls`
counter still for WATCHDOG seconds) withdraws every VIP until it turns again.

The kernel work is pyroute2's, on the kni the data plane made; the decisions are pure
(`Announcer.step(now)`), so that they are tested with a clock and a fake kernel.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import os
import time
from dataclasses import dataclass
from ipaddress import IPv4Address

from rlb.health.config import DEFAULT_POLICY
from rlb.netlink import in_thread
from rlb.routing.ospf import vip_dev

log = logging.getLogger("rlb.routing")

ANNOUNCED, WITHDRAWN, HELD = "announced", "withdrawn", "held down"
WATCHDOG = 1.0            # seconds a data-plane worker may go without a pass of its loop
LOOK_EVERY = 0.25         # seconds between two looks when nothing else wakes the loop
# the kernel's operations (Kni's methods) and netlink's words for them
ADD, DELETE = "add", "delete"
NL_ADD, NL_DEL = "add", "del"


@dataclass
class Vip:
    """One VIP on one port: what the kernel has now and why."""
    addr: IPv4Address
    port: str
    announced: bool = False
    since: float = 0.0             # monotonic time of the last change
    why: str = ""
    held_until: float = 0.0        # no announcement before this (monotonic)
    hold_down: float = DEFAULT_POLICY.hold_down
    dev: str = ""                  # the interface it was put on


class Kni:
    """Addresses on the kni taps of this namespace (netlink, rlb.netlink)."""

    def add(self, dev: str, addr: IPv4Address) -> None:
        self._do(NL_ADD, dev, addr, errno.EEXIST)        # there already: announced

    def delete(self, dev: str, addr: IPv4Address) -> None:
        self._do(NL_DEL, dev, addr, errno.EADDRNOTAVAIL)  # not there: withdrawn

    @staticmethod
    def _do(op: str, dev: str, addr: IPv4Address, fine: int) -> None:
        def work(ipr) -> list[str]:
            found = ipr.link_lookup(ifname=dev)
            if not found:
                return [f"no interface {dev}"]
            try:
                ipr.addr(op, index=found[0], address=str(addr), prefixlen=32)
            except Exception as e:
                code = getattr(e, "code", None)
                if code != fine:
                    return [os.strerror(code).lower() if code else str(e)]
            return []
        problems = in_thread(work, "rlb-announce")
        if problems:
            raise OSError(problems[0])


class Announcer:
    """The VIP announcements of one instance. `await run()` runs it; `stop()` withdraws."""

    def __init__(self, model, monitor=None, *, kernel=None, clock=time.monotonic):
        self.model = model
        self.monitor = monitor
        self.kernel = kernel
        self.clock = clock
        self.vips: dict[tuple[IPv4Address, str], Vip] = {}
        self.drained = False            # `routing drain`: every VIP withdrawn, whatever health
        self.speakers: list = []        # told each VIP up and down (rlb.routing.exabgp)
        self.stalled: str | None = None  # why the data plane is not healthy (the watchdog)
        self.stopped = False            # the daemon stops: nothing comes back
        self._swept = False
        self._polls: dict[int, tuple[int, float]] = {}   # worker -> (polls, since when)
        self._wake = asyncio.Event()
        if monitor is not None:
            monitor.service_listeners.append(self._changed)
        model.services.listeners.append(self._wake.set)
        model.announcer = self

    def _changed(self, _svc_key, _up) -> None:
        self._wake.set()

    # -- what should be --------------------------------------------------------------

    def wanted(self) -> dict[tuple[IPv4Address, str], tuple[bool, str, float]]:
        """(VIP, port) -> (announce it, why, hold-down) from the services and their health:
        up while any of its services is up, or all of them when one says `all-services`."""
        seen: dict = {}                  # key -> ([(up, service), ...], their policies)
        for svc in self.model.services.table.values():
            policy = svc.health or DEFAULT_POLICY
            if policy.announce is None or svc.match is not None:
                continue
            up = self.monitor.service_up(svc.key) if self.monitor is not None else None
            if up is None:
                # no health (up), or health not known yet: not announced before it is
                up = not (svc.checked and self.monitor is not None)
            ups, policies = seen.setdefault((svc.vaddr, policy.announce), ([], []))
            ups.append((up, svc))
            policies.append(policy)
        out = {}
        for key, (ups, policies) in seen.items():
            hold = max(p.hold_down for p in policies)
            if self.drained or self.stalled:
                out[key] = (False, self.stalled or "drained (routing drain)", hold)
                continue
            every = any(p.announce_all for p in policies)
            up = all(u for u, _ in ups) if every else any(u for u, _ in ups)
            said = [f"service {svc} {'up' if u else 'down'}" for u, svc in ups if u == up]
            out[key] = (up, ", ".join(said) + (" (all-services)" if every else ""), hold)
        return out

    # -- one step ----------------------------------------------------------------------

    def step(self, now: float | None = None) -> float | None:
        """Make the kernel what the services want; when to look again (a hold-down that
        ends), None if nothing waits."""
        if self.stopped:
            return None
        now = self.clock() if now is None else now
        self.watch(now)
        want = self.wanted()
        if not self._swept:
            self._sweep(want)
        nxt = None
        for key in set(self.vips) | set(want):
            v = self.vips.get(key)
            if v is None:
                v = self.vips[key] = Vip(*key, since=now)
            up, why, hold = want.get(key, (False, "no service announces it", v.hold_down))
            v.hold_down = hold
            if v.announced and v.dev != self._dev(v):
                self._move(v)                       # `router ospf` came or went
            if up and not v.announced:
                if now < v.held_until:
                    v.why = f"{why}; held down"
                    nxt = v.held_until if nxt is None else min(nxt, v.held_until)
                    continue
                if self._kernel(ADD, v):
                    v.announced, v.since, v.why = True, now, why
                    log.info("VIP %s announced on %s: %s", v.addr, v.port, why)
                    for speaker in self.speakers:
                        speaker.announce(v.addr)
            elif not up and v.announced:
                self._withdraw_route(v)
                if self._kernel(DELETE, v):
                    v.announced, v.since, v.why = False, now, why
                    v.held_until = now + v.hold_down
                    log.warning("VIP %s withdrawn from %s: %s", v.addr, v.port, why)
            else:
                v.why = why
            if key not in want and not v.announced and now >= v.held_until:
                del self.vips[key]                  # nobody announces it any more
        self._tell_speakers()
        return nxt

    def _tell_speakers(self) -> None:
        announced = {v.addr for v in self.vips.values() if v.announced}
        for speaker in self.speakers:
            speaker.sync(announced)

    def _sweep(self, want) -> None:
        """Once, before the first announcement: a VIP a previous run left on lo (a daemon
        killed; lo outlives it, and FRR would announce it again at once) or on a kni
        goes, so that nothing is announced before its health says so."""
        self._swept = True
        for addr, port in want:
            v = Vip(addr, port)
            for dev in {d for d in (vip_dev(self.model), self._dev(v)) if d}:
                v.dev = dev
                self._kernel(DELETE, v)

    def watch(self, now: float) -> None:
        """The watchdog: `stalled` says which worker's loop stopped turning (its polls
        counter unchanged for WATCHDOG seconds), None while all turn."""
        engine = getattr(self.model, "engine", None)
        if engine is None:
            return
        try:
            polls = [w["polls"] for w in engine.workers()]
        except Exception:                 # the data plane going away: stop() follows
            return
        stalled = None
        for wid, n in enumerate(polls):
            last = self._polls.get(wid)
            if last is None or last[0] != n:
                self._polls[wid] = (n, now)
            elif now - last[1] >= WATCHDOG and stalled is None:
                stalled = f"data plane worker {wid} stopped polling {now - last[1]:.1f}s ago"
        if stalled != self.stalled:
            (log.error if stalled else log.warning)(
                "watchdog: %s", stalled or "every data plane worker polls again")
        self.stalled = stalled

    def _withdraw_route(self, v: Vip) -> None:
        """The speakers withdraw a VIP no other port still announces (first: the route
        goes before the address does)."""
        if not any(o.announced and o.addr == v.addr for o in self.vips.values() if o is not v):
            for speaker in self.speakers:
                speaker.withdraw(v.addr)

    def _dev(self, v: Vip) -> str:
        """Where a VIP goes: the loopback with rlb's own OSPF (rlb.routing.ospf), else its
        port's kni."""
        return vip_dev(self.model) or (self.model.ports[v.port].kni
                                       if v.port in self.model.ports else f"{v.port}.kni")

    def _move(self, v: Vip) -> None:
        old = v.dev
        if self._kernel(ADD, v):
            v.dev, new = old, v.dev
            if self._kernel(DELETE, v):
                v.dev = new

    def _kernel(self, op: str, v: Vip) -> bool:
        if self.kernel is None:
            self.kernel = Kni()
        dev = self._dev(v) if op == ADD or not v.dev else v.dev
        if op == DELETE and any(o.announced and o.addr == v.addr and o.dev == dev
                                for o in self.vips.values() if o is not v):
            return True                  # another port's announcement holds it there too
        try:
            getattr(self.kernel, op)(dev, v.addr)
            if op == ADD:
                v.dev = dev
            return True
        except Exception as e:                      # the kni gone, netlink refused: said
            v.why = f"{op} on {dev} failed: {e}"
            log.error("VIP %s on %s: %s", v.addr, dev, v.why)
            return False

    # -- maintenance --------------------------------------------------------------------

    def drain(self, on: bool = True) -> None:
        """`routing drain`: withdraw every VIP now (the data plane serves on, so the
        connections the neighbours still send drain); `routing undrain` (on=False): back
        as their services' health says, each after its hold-down."""
        if self.stopped:
            return
        self.drained = on
        self.step()
        self._wake.set()

    def connections(self, addr: IPv4Address) -> int:
        """Connections (active and inactive) the services of a VIP hold now."""
        services = self.model.services
        n = 0
        for svc in services.table.values():
            if svc.match is None and svc.vaddr == addr:
                for d in svc.dests:
                    st = services.dest_stats(d)
                    n += (st.get("activeconns") or 0) + (st.get("inactconns") or 0)
        return n

    # -- the loop ---------------------------------------------------------------------

    async def run(self, idle: float = LOOK_EVERY) -> None:
        while True:
            self._wake.clear()
            try:
                nxt = self.step()
            except Exception:                       # never let one bad step stop it
                log.exception("VIP announcement failed")
                nxt = None
            delay = idle if nxt is None else max(0.0, min(idle, nxt - self.clock()))
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def drain_for_stop(self, seconds: float, again: asyncio.Event) -> None:
        """SIGTERM with `routing drain-on-stop`: withdraw every VIP and wait until their
        active connections are gone, `seconds` pass or `again` is set (a second SIGTERM)."""
        self.drain(True)
        end = self.clock() + seconds
        left = self.active()
        log.warning("stopping: every VIP withdrawn; waiting up to %gs for %d active "
                    "connection(s)", seconds, left)
        while left and self.clock() < end and not again.is_set():
            try:
                async with asyncio.timeout(0.5):
                    await again.wait()
            except TimeoutError:
                pass
            left = self.active()
        log.warning("stopping: %d active connection(s) left", left)

    def active(self) -> int:
        """Active connections of the announced services (what a drain waits for)."""
        services = self.model.services
        vips = {v.addr for v in self.vips.values()}
        return sum(services.dest_stats(d).get("activeconns") or 0
                   for svc in services.table.values() if svc.match is None and svc.vaddr in vips
                   for d in svc.dests)

    def stop(self) -> None:
        """The daemon stops: every VIP is withdrawn now, before anything else goes."""
        self.stopped = True
        for v in self.vips.values():
            if v.announced:
                self._withdraw_route(v)
            if v.announced and self._kernel(DELETE, v):
                v.announced = False
                log.warning("VIP %s withdrawn from %s: the daemon stops", v.addr, v.port)
        self._tell_speakers()
        try:
            self.model.services.listeners.remove(self._wake.set)
        except ValueError:
            pass

    # -- what `show routing vip` shows ---------------------------------------------------

    def view(self) -> list[dict]:
        now = self.clock()
        wall = time.time() - now
        out = []
        for (addr, port), v in sorted(self.vips.items(), key=lambda kv: (int(kv[0][0]),
                                                                          kv[0][1])):
            state = ANNOUNCED if v.announced else HELD if now < v.held_until else WITHDRAWN
            out.append({"vip": str(addr), "dev": port, "state": state, "why": v.why,
                        "connections": self.connections(addr),
                        "since": round(v.since + wall, 3), "for": round(now - v.since, 1),
                        "next_announce": round(v.held_until + wall, 3)
                        if now < v.held_until else None})
        return out
