# SNAT in C: hosts behind the LB reach the outside from the WAN address. The source
# becomes WANIP:lport (ICMP echo: the identifier), lport % workers = this worker, so
# the replies, addressed to WANIP:lport, are steered back here (lb.pxd, sapool).
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from cpython.pycapsule cimport PyCapsule_New
from rlb.core.dpdk.mbuf cimport rte_mbuf
from rlb.core.types cimport *
from rlb.core.packet cimport ip_hdr
from rlb.core.conn cimport tuple_in_use
from rlb.core.rewrite cimport rewrite, route_out, ttl_step, RW_ICMP

cdef enum:
    LPORT_MIN = 1025
    LPORT_MAX = 65535
    LPORT_TRIES = 256


cdef int snat_conn_init(engine_t *e, worker_t *w, svc_t *s, dest_t *d, conn_t *c,
                        rte_mbuf *m) noexcept nogil:
    """The real server of a SNAT service is the WAN address (ipvsadm -r WANIP:0)."""
    cdef uint32_t base = LPORT_MIN + (w.id + e.nworkers - LPORT_MIN % e.nworkers) % e.nworkers
    cdef uint32_t count = (LPORT_MAX - base) // e.nworkers + 1
    cdef uint32_t k = <uint32_t>(d.conns % count)      # start where the last ones left off
    cdef int tries
    cdef uint16_t lport
    c.laddr = d.addr
    c.daddr = c.vaddr          # the destination the client asked for
    c.dport = c.vport
    for tries in range(LPORT_TRIES):
        k = (k + 1) % count
        lport = <uint16_t>(base + k * e.nworkers)
        if c.proto == RW_ICMP:
            if not tuple_in_use(w, c.proto, c.daddr, lport, c.laddr, lport):
                c.lport = lport
                c.dport = lport  # the reply carries the new identifier in both places
                return 0
        elif not tuple_in_use(w, c.proto, c.daddr, c.dport, c.laddr, lport):
            c.lport = lport
            return 0
    return -1


cdef void snat_xmit_in(engine_t *e, worker_t *w, conn_t *c, rte_mbuf *m) noexcept nogil:
    if ttl_step(e, w, c.cport_in, m) < 0:
        return
    rewrite(m, (ip_hdr(m).version_ihl & 0xf) * 4, c.laddr, c.lport, c.daddr,
            c.lport if c.proto == RW_ICMP else c.dport)
    route_out(e, w, m, c.daddr, c.laddr)


cdef void snat_xmit_out(engine_t *e, worker_t *w, conn_t *c, rte_mbuf *m) noexcept nogil:
    if ttl_step(e, w, c.cport_in, m) < 0:
        return
    rewrite(m, (ip_hdr(m).version_ihl & 0xf) * 4, c.daddr,
            c.cport if c.proto == RW_ICMP else c.dport, c.caddr, c.cport)
    route_out(e, w, m, c.caddr, 0)


cdef mode_ops_t SNAT_OPS
SNAT_OPS.conn_init = snat_conn_init
SNAT_OPS.xmit_in = snat_xmit_in
SNAT_OPS.xmit_out = snat_xmit_out
SNAT_OPS.conn_free = NULL
SNAT_OPS.owner_by_lport = 1
SNAT_OPS.direct_reply = 0


def ops():
    return PyCapsule_New(&SNAT_OPS, b"rlb.mode_ops_t", NULL)
