"""The built-in schedulers, registered as a plugin: rr wrr lc wlc fo nq sed in C on the
workers; sh (source hash), mh (Maglev) and conhash (a consistent-hash ring) as tables built
here and followed by the workers."""
from __future__ import annotations

import hashlib
from bisect import bisect_left
from functools import reduce
from math import gcd

from rlb.core.hookspecs import hookimpl
from rlb.sched import Scheduler
from rlb.sched import _builtin

NONE32 = 0xFFFFFFFF
SH_TABLE_SIZE = 256          # IPVS ip_vs_sh: 256 buckets
MH_TABLE_SIZE = 65537        # prime, >> servers: Maglev's spread stays within a few %
CONHASH_REPLICAS = 160       # DPVS ip_vs_conhash.c REPLICA: virtual nodes per weight/gcd
CONHASH_MAX_NODES = 65536    # a ring larger than this is scaled down (keeps weights' ratio)
CONHASH_MAGIC = 0x43480000   # the ring's first word: "CH" | target index (_builtin.pyx)
CONHASH_TARGETS = ("sip", "sip_sport")      # DPVS --hash-target; qid (QUIC) is not parsed

_C = _builtin.capsules()


def client_hash(addr: int) -> int:
    """The workers' hash of a client address (rlb/sched/_builtin.pyx hash_addr)."""
    h = (addr * 0x9E3779B1) & 0xFFFFFFFF
    return h ^ (h >> 16)


def _usable(dests):
    """The servers a table deals buckets to, in the order of their address and port:
    every LB with the same servers builds the same table, whatever order they were
    added in and whatever slots they took (a flow ECMP moves keeps its server)."""
    live = [d for d in dests if d.available and d.weight > 0]
    return sorted(live, key=lambda d: (int(d.addr), d.port))


def sh_table(dests) -> list[int]:
    """IPVS source hashing: buckets dealt to servers in turn, `weight` buckets each."""
    live = _usable(dests)
    if not live:
        return []
    table, i, left = [], 0, live[0].weight
    for _ in range(SH_TABLE_SIZE):
        table.append(live[i].slot)
        left -= 1
        if left <= 0:
            i = (i + 1) % len(live)
            left = live[i].weight
    return table


def _mh_perm(dest, size):
    digest = hashlib.blake2b(f"{dest.addr}:{dest.port}".encode(), digest_size=16).digest()
    offset = int.from_bytes(digest[:8], "little") % size
    skip = int.from_bytes(digest[8:], "little") % (size - 1) + 1
    return offset, skip


def mh_table(dests, size: int = MH_TABLE_SIZE) -> list[int]:
    """Maglev (Eisenbud et al., NSDI 2016, section 3.4): each server walks its own
    permutation of the table and claims the next free entry, `weight/gcd` times a round.
    Removing one of N servers moves only about 1/N of the entries."""
    live = _usable(dests)
    if not live:
        return []
    g = reduce(gcd, (d.weight for d in live))
    turns = [d.weight // g for d in live]
    perms = [_mh_perm(d, size) for d in live]
    nxt = [0] * len(live)
    table = [NONE32] * size
    filled = 0
    while True:
        for i, d in enumerate(live):
            for _ in range(turns[i]):
                offset, skip = perms[i]
                c = (offset + nxt[i] * skip) % size
                while table[c] != NONE32:
                    nxt[i] += 1
                    c = (offset + nxt[i] * skip) % size
                table[c] = d.slot
                nxt[i] += 1
                filled += 1
                if filled == size:
                    return table


def _fmix32(h: int) -> int:
    # MurmurHash3's finaliser; must match rlb/sched/_builtin.pyx fmix32
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    return h ^ (h >> 16)


def conhash_key(addr: int, port: int, target: str = "sip") -> int:
    """Where a client falls on the ring: its address (sip), or address and port."""
    h = _fmix32(addr)
    return _fmix32(h ^ port) if target == "sip_sport" else h


_VNODES: dict[tuple[int, int], list[int]] = {}     # (addr, port) -> its nodes' hashes


def _vnodes(d, n: int) -> list[int]:
    """A server's first n ring positions; kept, so that a ring rebuilt for one change
    hashes only what is new (256 servers: a rebuild in tens of ms, not half a second)."""
    have = _VNODES.setdefault((d.addr, d.port), [])
    if len(_VNODES) > 8192:                         # servers come and go: forget them all
        _VNODES.clear()
        have = _VNODES[d.addr, d.port] = []
    for i in range(len(have), n):
        digest = hashlib.blake2b(f"{d.addr}:{d.port}#{i}".encode(), digest_size=4).digest()
        have.append(int.from_bytes(digest, "little"))
    return have[:n]


def conhash_ring(dests, target: str = "sip") -> list[int]:
    """DPVS's conhash: each server puts weight/gcd x 160 virtual nodes on a ring of 32-bit
    hashes; a client goes to the first node at or after its own hash. Adding or removing a
    server moves only the clients of the arcs it gains or loses. The table is
    [CONHASH_MAGIC | target index, hash, slot, hash, slot, ...] sorted by hash."""
    live = _usable(dests)
    if not live:
        return []
    g = reduce(gcd, (d.weight for d in live))
    want = [d.weight // g * CONHASH_REPLICAS for d in live]
    scale = min(1.0, CONHASH_MAX_NODES / sum(want))
    # one int per node (hash, then slot) sorts several times faster than pairs
    keys = sorted(h << 32 | d.slot for d, n in zip(live, want, strict=True)
                  for h in _vnodes(d, max(1, int(n * scale))))
    table = [0] * (2 * len(keys) + 1)
    table[0] = CONHASH_MAGIC | CONHASH_TARGETS.index(target)
    table[1::2] = [k >> 32 for k in keys]
    table[2::2] = [k & 0xFFFFFFFF for k in keys]
    return table


def conhash_pick(ring: list[int], addr: int, port: int = 0) -> int:
    """The slot the workers pick from a ring for a client (no server overloaded)."""
    if not ring:
        return NONE32
    h = conhash_key(addr, port, CONHASH_TARGETS[ring[0] & 0xFFFF])
    hashes = ring[1::2]
    i = bisect_left(hashes, h)
    return ring[2 + 2 * (i % len(hashes))]


SCHEDULERS = [
    Scheduler("rr", "Round robin", ops=_C["rr"]),
    Scheduler("wrr", "Weighted round robin", ops=_C["wrr"]),
    Scheduler("lc", "Least connections", ops=_C["lc"]),
    Scheduler("wlc", "Weighted least connections", ops=_C["wlc"]),
    Scheduler("fo", "Weighted failover: highest weight available", ops=_C["fo"]),
    Scheduler("sh", "Source hashing: a client sticks to a server", ops=_C["table"], table=sh_table),
    Scheduler("mh", "Maglev hashing: consistent, minimal remapping", ops=_C["table"],
              table=mh_table),
    Scheduler("nq", "Never queue: an idle server first, else shortest expected delay",
              ops=_C["nq"]),
    Scheduler("sed", "Shortest expected delay: least (active + 1) / weight", ops=_C["sed"]),
    Scheduler("conhash", "Consistent hashing of the source address (--hash-target)",
              ops=_C["conhash"], table=conhash_ring, targets=CONHASH_TARGETS),
]


@hookimpl
def rlb_schedulers():
    return SCHEDULERS
