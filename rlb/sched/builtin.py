"""The built-in schedulers, registered as a plugin: rr wrr lc wlc fo in C on the workers;
sh (source hash) and mh (Maglev) as tables built here and followed by the workers."""
from __future__ import annotations

import hashlib
from functools import reduce
from math import gcd

from rlb.core.hookspecs import hookimpl
from rlb.sched import Scheduler
from rlb.sched import _builtin

NONE32 = 0xFFFFFFFF
SH_TABLE_SIZE = 256          # IPVS ip_vs_sh: 256 buckets
MH_TABLE_SIZE = 65537        # prime, >> servers: Maglev's spread stays within a few %

_C = _builtin.capsules()


def client_hash(addr: int) -> int:
    """The workers' hash of a client address (rlb/sched/_builtin.pyx hash_addr)."""
    h = (addr * 0x9E3779B1) & 0xFFFFFFFF
    return h ^ (h >> 16)


def _usable(dests):
    return [d for d in dests if d.available and d.weight > 0]


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


SCHEDULERS = [
    Scheduler("rr", "Round robin", ops=_C["rr"]),
    Scheduler("wrr", "Weighted round robin", ops=_C["wrr"]),
    Scheduler("lc", "Least connections", ops=_C["lc"]),
    Scheduler("wlc", "Weighted least connections", ops=_C["wlc"]),
    Scheduler("fo", "Weighted failover: highest weight available", ops=_C["fo"]),
    Scheduler("sh", "Source hashing: a client sticks to a server", ops=_C["table"], table=sh_table),
    Scheduler("mh", "Maglev hashing: consistent, minimal remapping", ops=_C["table"],
              table=mh_table),
]


@hookimpl
def rlb_schedulers():
    return SCHEDULERS
