# The built-in schedulers' per-flow choice, in C, on the worker that sees the new flow.
# Counts (lc, wlc, thresholds) are the worker's own: every worker balances its share.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t
from cpython.pycapsule cimport PyCapsule_New
from rlb.core.types cimport *


cdef inline int usable(engine_t *e, worker_t *w, uint32_t slot) noexcept nogil:
    """Takes new flows: weight > 0 and under its upper threshold (-x), which is split
    over the workers since each counts its own connections."""
    cdef dest_t *d = &w.dests[slot]
    if not (d.flags & DEST_F_AVAILABLE) or d.weight <= 0:
        return 0
    if d.u_threshold and (d.activeconns + d.inactconns) * e.nworkers >= d.u_threshold:
        return 0
    return 1


cdef inline uint64_t overhead(dest_t *d) noexcept nogil:
    # LVS: an active connection costs 256 inactive ones
    return (<uint64_t>d.activeconns << 8) + d.inactconns


cdef extern from "shim.h" nogil:
    uint32_t rlb_fetch_inc(uint32_t *p)


cdef uint32_t sched_rr(engine_t *e, worker_t *w, svc_t *s, uint32_t caddr,
                       uint16_t cport) noexcept nogil:
    """One turn shared by all workers (an atomic counter per service), so servers take
    new flows in strict turn whichever worker sees them."""
    cdef uint32_t i, k, start
    if s.ndests == 0:
        return NONE32
    start = rlb_fetch_inc(&e.rr_cursor[s - w.svcs])
    for i in range(s.ndests):
        k = (start + i) % s.ndests
        if usable(e, w, s.dests[k]):
            return s.dests[k]
    return NONE32


cdef inline int32_t gcd(int32_t a, int32_t b) noexcept nogil:
    while b:
        a, b = b, a % b
    return a


cdef uint32_t sched_wrr(engine_t *e, worker_t *w, svc_t *s, uint32_t caddr,
                        uint16_t cport) noexcept nogil:
    """Interleaved weighted round robin (LVS ip_vs_wrr): each round lowers the current
    weight by the weights' gcd; a server is picked while its weight reaches it."""
    cdef int32_t mw = 0, g = 0, wt
    cdef uint32_t i, k, steps
    for i in range(s.ndests):
        if usable(e, w, s.dests[i]):
            wt = w.dests[s.dests[i]].weight
            mw = wt if wt > mw else mw
            g = gcd(wt, g)
    if mw == 0:
        return NONE32
    steps = s.ndests * (<uint32_t>(mw // g) + 1)
    for i in range(steps):
        k = s.sched_cursor % s.ndests
        s.sched_cursor = k + 1
        if k == 0:
            s.sched_cw -= g
            if s.sched_cw <= 0:
                s.sched_cw = mw
        if usable(e, w, s.dests[k]) and w.dests[s.dests[k]].weight >= s.sched_cw:
            return s.dests[k]
    return NONE32


cdef uint32_t sched_lc(engine_t *e, worker_t *w, svc_t *s, uint32_t caddr,
                       uint16_t cport) noexcept nogil:
    cdef uint32_t i, best = NONE32
    cdef uint64_t o, bo = 0
    for i in range(s.ndests):
        if not usable(e, w, s.dests[i]):
            continue
        o = overhead(&w.dests[s.dests[i]])
        if best == NONE32 or o < bo:
            best = s.dests[i]
            bo = o
    return best


cdef uint32_t sched_wlc(engine_t *e, worker_t *w, svc_t *s, uint32_t caddr,
                        uint16_t cport) noexcept nogil:
    """Least overhead per weight: o_a / w_a < o_b / w_b compared as o_a * w_b < o_b * w_a."""
    return least_per_weight(e, w, s, LEAST_WLC)


cdef uint32_t sched_fo(engine_t *e, worker_t *w, svc_t *s, uint32_t caddr,
                       uint16_t cport) noexcept nogil:
    """Weighted failover: the usable server of highest weight takes everything."""
    cdef uint32_t i, best = NONE32
    cdef int32_t bw = 0
    for i in range(s.ndests):
        if usable(e, w, s.dests[i]) and w.dests[s.dests[i]].weight > bw:
            best = s.dests[i]
            bw = w.dests[s.dests[i]].weight
    return best


cdef enum:                     # what least_per_weight counts
    LEAST_WLC                  # IPVS wlc: the overhead, active and inactive connections
    LEAST_SED                  # ip_vs_sed.c: active connections only
    LEAST_NQ                   # ip_vs_nq.c: as sed, but an idle server at once


cdef inline uint32_t least_per_weight(engine_t *e, worker_t *w, svc_t *s,
                                      int kind) noexcept nogil:
    """The usable server whose (load + 1) / weight is least, the first on a tie; the load
    is wlc's overhead, or (sed, nq) the active connections: IPVS's expected delay."""
    cdef uint32_t i, best = NONE32
    cdef uint64_t o, bo = 0
    cdef int32_t bw = 1
    cdef dest_t *d
    for i in range(s.ndests):
        if not usable(e, w, s.dests[i]):
            continue
        d = &w.dests[s.dests[i]]
        if kind == LEAST_NQ and d.activeconns == 0:
            return s.dests[i]
        o = (overhead(d) if kind == LEAST_WLC else <uint64_t>d.activeconns) + 1
        if best == NONE32 or o * <uint64_t>bw < bo * <uint64_t>d.weight:
            best = s.dests[i]
            bo = o
            bw = d.weight
    return best


cdef uint32_t sched_sed(engine_t *e, worker_t *w, svc_t *s, uint32_t caddr,
                        uint16_t cport) noexcept nogil:
    return least_per_weight(e, w, s, LEAST_SED)


cdef uint32_t sched_nq(engine_t *e, worker_t *w, svc_t *s, uint32_t caddr,
                       uint16_t cport) noexcept nogil:
    return least_per_weight(e, w, s, LEAST_NQ)


cdef inline uint32_t hash_addr(uint32_t addr) noexcept nogil:
    # must match rlb.sched.builtin.client_hash
    cdef uint32_t h = addr * <uint32_t>0x9E3779B1u
    return h ^ (h >> 16)


cdef uint32_t sched_table(engine_t *e, worker_t *w, svc_t *s, uint32_t caddr,
                          uint16_t cport) noexcept nogil:
    """Follow the control plane's table (source hash, Maglev); when the entry's server
    cannot take the flow, the next entries are tried (IPVS sh-fallback)."""
    cdef uint32_t i, k, d
    if s.table == NULL or s.table_size == 0:
        return NONE32
    i = hash_addr(caddr) % s.table_size
    for k in range(s.table_size if s.table_size < 64 else 64):
        d = s.table[(i + k) % s.table_size]
        # a slot in range: a table and the service that reads it change in two messages
        if d < e.dest_cap and usable(e, w, d):
            return d
    return NONE32


cdef enum:
    CONHASH_MAGIC = 0x43480000      # rlb.sched.builtin.CONHASH_MAGIC
    MAX_FALLBACK = 64               # ring nodes tried past an overloaded server


cdef inline uint32_t fmix32(uint32_t h) noexcept nogil:
    # MurmurHash3's finaliser; must match rlb.sched.builtin._fmix32
    h ^= h >> 16
    h *= <uint32_t>0x85EBCA6Bu
    h ^= h >> 13
    h *= <uint32_t>0xC2B2AE35u
    return h ^ (h >> 16)


cdef uint32_t sched_conhash(engine_t *e, worker_t *w, svc_t *s, uint32_t caddr,
                            uint16_t cport) noexcept nogil:
    """DPVS conhash: the first ring node at or after the client's hash (its address, or
    address and port: rlb.sched.builtin.conhash_ring); past an overloaded server, the next
    nodes clockwise. The ring is [magic | target, hash, slot, ...], sorted by hash."""
    cdef uint32_t n, lo, hi, mid, h, k, d
    cdef uint32_t *ring = s.table
    if ring == NULL or s.table_size < 3 or (ring[0] & 0xFFFF0000u) != CONHASH_MAGIC:
        return NONE32
    n = (s.table_size - 1) // 2
    h = fmix32(caddr)
    if (ring[0] & 0xFFFF) == 1:
        h = fmix32(h ^ cport)
    lo = 0
    hi = n
    while lo < hi:                  # binary search: the first node whose hash >= h
        mid = (lo + hi) >> 1
        if ring[1 + 2 * mid] < h:
            lo = mid + 1
        else:
            hi = mid
    for k in range(n if n < MAX_FALLBACK else MAX_FALLBACK):
        d = ring[2 + 2 * ((lo + k) % n)]
        if d < e.dest_cap and usable(e, w, d):
            return d
    return NONE32


cdef sched_ops_t RR, WRR, LC, WLC, FO, TABLE, NQ, SED, CONHASH
RR.select = sched_rr
WRR.select = sched_wrr
LC.select = sched_lc
WLC.select = sched_wlc
FO.select = sched_fo
TABLE.select = sched_table
NQ.select = sched_nq
SED.select = sched_sed
CONHASH.select = sched_conhash


def capsules():
    """name -> function returning the scheduler's capsule."""
    return {
        "rr": lambda: PyCapsule_New(&RR, b"rlb.sched_ops_t", NULL),
        "wrr": lambda: PyCapsule_New(&WRR, b"rlb.sched_ops_t", NULL),
        "lc": lambda: PyCapsule_New(&LC, b"rlb.sched_ops_t", NULL),
        "wlc": lambda: PyCapsule_New(&WLC, b"rlb.sched_ops_t", NULL),
        "fo": lambda: PyCapsule_New(&FO, b"rlb.sched_ops_t", NULL),
        "table": lambda: PyCapsule_New(&TABLE, b"rlb.sched_ops_t", NULL),
        "nq": lambda: PyCapsule_New(&NQ, b"rlb.sched_ops_t", NULL),
        "sed": lambda: PyCapsule_New(&SED, b"rlb.sched_ops_t", NULL),
        "conhash": lambda: PyCapsule_New(&CONHASH, b"rlb.sched_ops_t", NULL),
    }
