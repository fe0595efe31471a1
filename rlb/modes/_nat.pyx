# NAT (LVS masquerading) in C: the destination becomes the real server on the way in,
# the source becomes the VIP on the way back; the client's address and port stay, so the
# client's tuple picks the worker in both directions (lb.pxd owner_of_client).
from cpython.pycapsule cimport PyCapsule_New
from rlb.core.dpdk.mbuf cimport rte_mbuf
from rlb.core.types cimport *
from rlb.core.packet cimport ip_hdr
from rlb.core.rewrite cimport rewrite, route_out


cdef int nat_conn_init(engine_t *e, worker_t *w, svc_t *s, dest_t *d, conn_t *c,
                       rte_mbuf *m) noexcept nogil:
    return 0                   # the server-side tuple is server <-> client: nothing to take


cdef void nat_xmit_in(engine_t *e, worker_t *w, conn_t *c, rte_mbuf *m) noexcept nogil:
    rewrite(m, (ip_hdr(m).version_ihl & 0xf) * 4, c.caddr, c.cport, c.daddr, c.dport)
    route_out(e, w, m, c.daddr, 0)


cdef void nat_xmit_out(engine_t *e, worker_t *w, conn_t *c, rte_mbuf *m) noexcept nogil:
    rewrite(m, (ip_hdr(m).version_ihl & 0xf) * 4, c.vaddr, c.vport, c.caddr, c.cport)
    route_out(e, w, m, c.caddr, c.vaddr)


cdef mode_ops_t NAT_OPS
NAT_OPS.conn_init = nat_conn_init
NAT_OPS.xmit_in = nat_xmit_in
NAT_OPS.xmit_out = nat_xmit_out
NAT_OPS.conn_free = NULL
NAT_OPS.owner_by_lport = 0
NAT_OPS.direct_reply = 0


def ops():
    return PyCapsule_New(&NAT_OPS, b"rlb.mode_ops_t", NULL)
