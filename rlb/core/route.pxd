# Route lookup of a worker: the LPM table, then the default route (rte_lpm takes
# depths 1..32 only, so 0.0.0.0/0 lives beside it).
from libc.stdint cimport uint32_t
from rlb.core.dpdk.lpm cimport rte_lpm_lookup
from rlb.core.types cimport worker_t, route_t, NONE32, SCOPE_HOST

cdef inline route_t *route_lookup(worker_t *w, uint32_t ip) noexcept nogil:
    cdef uint32_t idx
    if rte_lpm_lookup(w.lpm, ip, &idx) == 0:
        return &w.routes[idx]
    if w.default_route != NONE32:
        return &w.routes[w.default_route]
    return NULL

cdef inline int is_own(worker_t *w, uint32_t ip) noexcept nogil:
    """One of the data plane's own addresses (a host route of its own)."""
    cdef route_t *r = route_lookup(w, ip)
    return r != NULL and r.scope == SCOPE_HOST and r.prefix == ip


cdef inline int arp_is_ours(worker_t *w, uint32_t ip) noexcept nogil:
    """An own address whose ARP the data plane answers: 1; one whose ARP the kernel
    answers (a VRRP address, held on the kni by keepalived on the MASTER only): 2;
    not ours: 0."""
    cdef route_t *r = route_lookup(w, ip)
    if r == NULL or r.scope != SCOPE_HOST or r.prefix != ip:
        return 0
    return 2 if r.kni_arp else 1
