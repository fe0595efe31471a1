# SNAT in C: hosts behind the LB reach the outside from the WAN address. The source
# becomes WANIP:lport (ICMP echo: the identifier), lport % workers = this worker, so
# the replies, addressed to WANIP:lport, are steered back here (lb.pxd, sapool).
from libc.stdint cimport uint16_t, uint32_t
from rlb.core.dpdk.mbuf cimport rte_mbuf
from rlb.core.types cimport *
from rlb.core.packet cimport ip_hdr
from rlb.core.conn cimport tuple_in_use
from rlb.core.xmit cimport (ip_hlen, rewrite, route_out, ttl_step, lport_base, lport_count,
                            lport_nth, mode_capsule, IPPROTO_ICMP, LPORT_TRIES)


cdef int snat_conn_init(engine_t *e, worker_t *w, svc_t *s, dest_t *d, conn_t *c,
                        rte_mbuf *m) noexcept nogil:
    """The real server of a SNAT service is the WAN address (ipvsadm -r WANIP:0)."""
    cdef uint32_t base = lport_base(e, w)
    cdef uint32_t count = lport_count(e, base)
    cdef uint32_t k = <uint32_t>(d.conns % count)      # start where the last ones left off
    cdef int tries
    cdef uint16_t lport
    c.laddr = d.addr
    c.daddr = c.vaddr          # the destination the client asked for
    c.dport = c.vport
    for tries in range(LPORT_TRIES):
        k = (k + 1) % count
        lport = lport_nth(e, base, k)
        if c.proto == IPPROTO_ICMP:
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
    rewrite(m, ip_hlen(ip_hdr(m)), c.laddr, c.lport, c.daddr,
            c.lport if c.proto == IPPROTO_ICMP else c.dport)
    route_out(e, w, m, c.daddr, c.laddr)


cdef void snat_xmit_out(engine_t *e, worker_t *w, conn_t *c, rte_mbuf *m) noexcept nogil:
    if ttl_step(e, w, c.cport_in, m) < 0:
        return
    rewrite(m, ip_hlen(ip_hdr(m)), c.daddr,
            c.cport if c.proto == IPPROTO_ICMP else c.dport, c.caddr, c.cport)
    route_out(e, w, m, c.caddr, 0)


cdef mode_ops_t SNAT_OPS


def ops():
    """The capsule the core reads once: SNAT's C entry points."""
    return mode_capsule(&SNAT_OPS, snat_conn_init, snat_xmit_in, snat_xmit_out, NULL, 0)
