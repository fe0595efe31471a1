"""A stand-in for the data plane in unit tests, held to the real Engine's interface.

FakeEngine has the Engine methods the control plane calls, each with the signature
`rlb.core.dataplane.Engine` has (compiled with binding, so inspect reads it); a call is
bound to that signature (a wrong argument fails as it would on the real one) and recorded
as (name, args, kwargs). A test's own fake subclasses it; a subclass that declares a method
the Engine lacks, with another signature, or a catch-all __getattr__, fails at import.
"""
from __future__ import annotations

import functools
import inspect

from array import array

from rlb.model import services_engine
from rlb.core import counters, dataplane, stats

REAL = dataplane.Engine


def mismatches(cls) -> list[str]:
    """What in `cls` (its own attributes) is not the real Engine's interface."""
    found = []
    for name, value in vars(cls).items():
        if name in ("__getattr__", "__getattribute__"):
            found.append(f"{cls.__name__}.{name}: a fake answers only the Engine's names")
        if name.startswith("_"):
            continue
        real = getattr(REAL, name, None)
        if real is None:
            found.append(f"{cls.__name__}.{name}: Engine has no {name}")
        elif isinstance(value, property) or not callable(value):
            if callable(real):
                found.append(f"{cls.__name__}.{name}: a method on Engine")
        else:
            want, got = inspect.signature(real), inspect.signature(value)
            if _params(want) != _params(got):
                found.append(f"{cls.__name__}.{name}{got}: Engine has {name}{want}")
    return found


def _params(sig):
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


def recorded(fn):
    """The method records its call (once bound to its own, the real, signature) and raises
    when `self.failing[name](*args, **kw)` says so; then it runs its body."""
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def call(self, *args, **kw):
        sig.bind(self, *args, **kw)
        self.calls.append((fn.__name__, args, kw))
        when = self.failing.get(fn.__name__)
        if when is not None and when(*args, **kw):
            raise RuntimeError(f"data plane refused {fn.__name__}")
        return fn(self, *args, **kw)
    return call


class FakeEngine:
    """Records the pushes; counters read as zero, nothing learned, no connections."""

    def __init__(self):
        self.calls = []
        self.failing = {}         # method name -> when(*args, **kw): raise on that call

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if problems := mismatches(cls):
            raise TypeError("a fake Engine differs from rlb.core.dataplane.Engine:\n"
                            + "\n".join(problems))

    @recorded
    def set_forwarding(self, on): pass

    @recorded
    def set_idle(self, busy_poll, idle_sleep_us): pass

    @recorded
    def set_neigh_timeout(self, seconds): pass

    @recorded
    def set_vip_miss_kni(self, on): pass

    @recorded
    def set_kni_rate(self, pps): pass

    @recorded
    def set_timeout(self, name, seconds): pass

    @recorded
    def route_set(self, index, prefix, plen, *, gw=0, src=0, port=0, scope=0, mtu=1500,
                  sapool=False, kni_arp=False): pass

    @recorded
    def route_del(self, index, prefix, plen): pass

    @recorded
    def neigh_set(self, ip, mac, port, static=True): pass

    @recorded
    def neigh_del(self, ip): pass

    @recorded
    def neigh_flush(self, port=-1): pass

    @recorded
    def garp(self, ip, port): pass

    @recorded
    def port_addr(self, port, ip): pass

    @recorded
    def vlan_add(self, index, name, parent, vid, proto=0x8100, kni=None): pass

    @recorded
    def iface_del(self, index): pass

    def tunnel_mtu(self, proto, key=None, csum=False):
        return 1476

    @recorded
    def tunnel_add(self, index, name, proto, local, remote, *, key=None, csum=False, ttl=0,
                   mac, kni=None): pass

    @recorded
    def tunnel_set(self, index, proto, local, remote, *, key=None, csum=False, ttl=0): pass

    def bond_info(self, i):
        return None

    @recorded
    def register_mode(self, index, capsule): pass

    @recorded
    def register_sched(self, index, capsule): pass

    @recorded
    def dest_set(self, slot, *, svc, addr, port, mode, weight, u_threshold=0, l_threshold=0,
                 available=True): pass

    @recorded
    def dest_del(self, slot, drain=True): pass

    @recorded
    def svc_set(self, slot, *, proto, vaddr, vport, sched, flags=0, timeout=0,
                netmask=4294967295, dests=(), laddrs=(), match=None): pass

    @recorded
    def svc_table(self, slot, table): pass

    @recorded
    def svc_del(self, slot): pass

    @recorded
    def zero_stats(self, svc_slot=None): pass

    def svc_stats(self, slot):
        return dict(services_engine.ZERO_SVC_STATS)

    def dest_stats(self, slot):
        return dict(services_engine.ZERO_DEST_STATS)

    def laddr_stats(self, svc_slot):
        return []

    def svc_bulk(self, slots):
        return array("Q", [self.svc_stats(s)[n] or 0 for s in slots for n in stats.SVC_BULK])

    def dest_bulk(self, slots):
        return array("Q", [self.dest_stats(s)[n] or 0 for s in slots for n in stats.DEST_BULK])

    # what the metrics read besides (rlb.ops.metrics): a port, one worker, nothing counted
    tsc_hz = 2_000_000_000

    def port_stats(self, i):
        return dict.fromkeys(counters.PORT.names(), 0)

    def reasons(self):
        return dict.fromkeys(counters.REASON.names(), 0)

    def pool(self):
        return {"size": 16384, "in_use": 0, "available": 16384}

    def workers(self):
        return [{"id": 0, "lcore": 1, **dict.fromkeys(counters.WORKER.names(), 0),
                 "running": 1, "match_services": 0}]

    def conn_summary(self):
        return {"capacity": 65536, "entry_bytes": 64, "hash_bytes": 8,
                **dict.fromkeys(counters.CONNS.names(), 0), "per_worker": [0]}

    def connections(self, limit=10000):
        return []

    def neighbours(self):
        return []


