# NAT (LVS masquerading) in C: the destination becomes the real server on the way in,
# the source becomes the VIP on the way back; the client's address and port stay, so the
# client's tuple picks the worker in both directions (lb.pxd owner_of_client).
from rlb.core.dpdk.mbuf cimport rte_mbuf
from rlb.core.types cimport *
from rlb.core.packet cimport ip_hdr
from rlb.core.xmit cimport ip_hlen, rewrite, route_out, keep_tuple, mode_capsule


cdef void nat_xmit_in(engine_t *e, worker_t *w, conn_t *c, rte_mbuf *m) noexcept nogil:
    rewrite(m, ip_hlen(ip_hdr(m)), c.caddr, c.cport, c.daddr, c.dport)
    route_out(e, w, m, c.daddr, 0)


cdef void nat_xmit_out(engine_t *e, worker_t *w, conn_t *c, rte_mbuf *m) noexcept nogil:
    rewrite(m, ip_hlen(ip_hdr(m)), c.vaddr, c.vport, c.caddr, c.cport)
    route_out(e, w, m, c.caddr, c.vaddr)


cdef mode_ops_t NAT_OPS


def ops():
    """The capsule the core reads once: NAT's C entry points."""
    return mode_capsule(&NAT_OPS, keep_tuple, nat_xmit_in, nat_xmit_out, NULL, 0)
