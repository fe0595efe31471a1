# Direct routing (LVS-DR) in C: the client's packet goes to the real server's MAC as it
# came, addresses, ports and TTL untouched; the real server answers the client itself.
from cpython.pycapsule cimport PyCapsule_New
from rlb.core.dpdk.mbuf cimport rte_mbuf
from rlb.core.types cimport *
from rlb.core.packet cimport drop
from rlb.core.ipv4 cimport route_lookup
from rlb.core.neigh cimport neigh_output

# Route scope codes (RouteScope; rlb.model.model.SCOPE_CODE maps the names to these):
# the validation in dr.py / tunnel.py asks what the data plane asks here.
SCOPE_LINK_CODE = SCOPE_LINK
SCOPE_HOST_CODE = SCOPE_HOST


cdef int dr_conn_init(engine_t *e, worker_t *w, svc_t *s, dest_t *d, conn_t *c,
                      rte_mbuf *m) noexcept nogil:
    # nothing to take: the flow keeps the client's own address and port on both sides
    return 0


cdef void dr_conn_free(engine_t *e, worker_t *w, conn_t *c) noexcept nogil:
    pass


cdef void dr_xmit_in(engine_t *e, worker_t *w, conn_t *c, rte_mbuf *m) noexcept nogil:
    """To the real server's MAC on its connected network (it holds the VIP on lo): only
    the Ethernet header changes (LVS-DR; tutorial: "the RS and DPVS must in same
    sub-network")."""
    cdef route_t *r = route_lookup(w, c.daddr)
    if r == NULL or r.scope != SCOPE_LINK or r.gw != 0:
        drop(w, m, R_NOT_ONLINK)
        return
    # ARP for the RS from the route's src, else the port's first address: that is why
    # the LAN IP must come before the VIP (an RS drops ARP from its own VIP)
    neigh_output(e, w, r.port, c.daddr, r.src, m)


cdef void dr_xmit_out(engine_t *e, worker_t *w, conn_t *c, rte_mbuf *m) noexcept nogil:
    # replies go from the RS to the client directly, from the VIP; one from the RS's own
    # address is a real server without the VIP on lo
    drop(w, m, R_DIRECT_REPLY)


cdef mode_ops_t DR_OPS
DR_OPS.conn_init = dr_conn_init
DR_OPS.xmit_in = dr_xmit_in
DR_OPS.xmit_out = dr_xmit_out
DR_OPS.conn_free = dr_conn_free
DR_OPS.owner_by_lport = 0
DR_OPS.direct_reply = 1


def ops():
    """The capsule the core reads once: DR's C entry points."""
    return PyCapsule_New(&DR_OPS, b"rlb.mode_ops_t", NULL)

