# Direct routing (LVS-DR) in C: the client's packet goes to the real server's MAC as it
# came, addresses, ports and TTL untouched; the real server answers the client itself.
from rlb.core.dpdk.mbuf cimport rte_mbuf
from rlb.core.types cimport *
from rlb.core.packet cimport drop
from rlb.core.ipv4 cimport route_lookup
from rlb.core.neigh cimport neigh_output
from rlb.core.xmit cimport keep_tuple, direct_reply_out, mode_capsule


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


cdef mode_ops_t DR_OPS


def ops():
    """The capsule the core reads once: DR's C entry points."""
    return mode_capsule(&DR_OPS, keep_tuple, dr_xmit_in, direct_reply_out, NULL, 1)
