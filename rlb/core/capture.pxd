# Packet capture (`capture PORT ...`, rlb/ops/capture.py): the workers copy the frames a
# port receives (before anything changes them) and sends (as they leave) that the
# filter takes, into a ring of fixed records, and never wait: a full ring drops the
# copy and counts it. With no capture running, a worker tests one word per burst
# received and per frame sent.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy
from rlb.core.dpdk.eal cimport rte_rdtsc
from rlb.core.dpdk.mbuf cimport rte_mbuf, rte_pktmbuf_read
from rlb.core.dpdk.ring cimport rte_ring, rte_ring_enqueue_elem

cdef extern from "capture.h" nogil:
    struct rte_bpf:
        pass
    ctypedef uint64_t (*rlb_bpf_fn)(void *)
    rte_bpf *rlb_bpf_compile(const char *expr, char *err, size_t errlen, rlb_bpf_fn *jit)
    void rte_bpf_destroy(rte_bpf *bpf)
    uint64_t rlb_bpf_run(const rte_bpf *bpf, rlb_bpf_fn jit, void *m)
    void rlb_add64(uint64_t *p, uint64_t v)

cdef enum:
    CAP_IN = 1
    CAP_OUT = 2
    CAP_SNAP = 2032            # bytes kept of a frame (a 1500-byte MTU's frame whole)
    CAP_RING = 2048            # records between the workers and the daemon (4 MiB)

cdef struct cap_rec_t:         # one captured frame: 2048 bytes
    uint64_t tsc               # when (TSC)
    uint32_t len               # its length on the wire
    uint16_t caplen            # bytes kept
    uint8_t dir                # CAP_IN | CAP_OUT
    uint8_t port
    uint8_t data[CAP_SNAP]

cdef struct capture_t:
    volatile int on            # CAP_IN | CAP_OUT; 0: no capture (set last, cleared first)
    uint16_t port              # port index
    rte_bpf *bpf               # NULL: every frame
    rlb_bpf_fn jit             # its native code, or NULL
    rte_ring *ring             # cap_rec_t: workers -> control plane
    uint64_t matched           # frames the filter took (atomic adds)
    uint64_t dropped           # of those, not copied: the ring was full

cdef inline void capture_frame(capture_t *c, rte_mbuf *m, uint8_t dir, uint8_t port) noexcept nogil:
    cdef cap_rec_t rec
    cdef const void *p
    if c.bpf != NULL and rlb_bpf_run(c.bpf, c.jit, m) == 0:
        return
    rlb_add64(&c.matched, 1)
    rec.tsc = rte_rdtsc()
    rec.len = m.pkt_len
    rec.caplen = <uint16_t>(m.pkt_len if m.pkt_len < CAP_SNAP else CAP_SNAP)
    rec.dir = dir
    rec.port = port
    p = rte_pktmbuf_read(m, 0, rec.caplen, rec.data)
    if p == NULL:
        rec.caplen = 0
    elif p != <void *>rec.data:
        memcpy(rec.data, p, rec.caplen)
    if rte_ring_enqueue_elem(c.ring, &rec, sizeof(cap_rec_t)) != 0:
        rlb_add64(&c.dropped, 1)

cdef inline void capture_burst(capture_t *c, rte_mbuf **pkts, uint16_t n, uint8_t port) noexcept nogil:
    cdef uint16_t i
    for i in range(n):
        capture_frame(c, pkts[i], CAP_IN, port)
