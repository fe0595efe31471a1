# What the forwarding modes (rlb/modes/*/fast.pyx) share on the packet path: protocol
# numbers, header length, address/port rewriting with checksums kept right
# incrementally, the TTL step, routed transmit, the local-port formula, the default
# entry points and the capsule that hands a mode's entry points to the core.
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from cpython.pycapsule cimport PyCapsule_New
from rlb.core.dpdk.mbuf cimport rte_mbuf
from rlb.core.dpdk.net cimport rte_ipv4_hdr, rte_cpu_to_be_16, rte_cpu_to_be_32
from rlb.core.types cimport *
from rlb.core.packet cimport ip_hdr, ip_set_csum, drop, csum_fold_add, csum_replace4
from rlb.core.packet cimport IPPROTO_ICMP
from rlb.core.lb cimport IPPROTO_TCP, IPPROTO_UDP
from rlb.core.ipv4 cimport route_lookup, icmp_error, ICMP_TIME_EXCEEDED
from rlb.core.neigh cimport neigh_output

cdef enum:
    IPPROTO_IPIP = 4           # RFC 2003 (the tunnel's outer header)
    # Local ports a mode takes for the server side (FNAT) or the outside (SNAT): each
    # worker owns the ports p with p % workers == its id, so that replies addressed to
    # LIP:p are steered back to it (lb.pxd, sapool)
    LPORT_MIN = 1025
    LPORT_MAX = PROBE_PORT_MIN - 1     # the ports above are the health probes' (types.pxd)
    LPORT_TRIES = 256          # candidates tried per address before giving up on it


cdef inline uint16_t ip_hlen(rte_ipv4_hdr *ip) noexcept nogil:
    return (ip.version_ihl & 0xf) * 4


cdef inline uint32_t lport_base(engine_t *e, worker_t *w) noexcept nogil:
    """The lowest local port this worker owns."""
    return LPORT_MIN + (w.id + e.nworkers - LPORT_MIN % e.nworkers) % e.nworkers


cdef inline uint32_t lport_count(engine_t *e, uint32_t base) noexcept nogil:
    """How many local ports this worker owns from base on."""
    return (LPORT_MAX - base) // e.nworkers + 1


cdef inline uint16_t lport_nth(engine_t *e, uint32_t base, uint32_t k) noexcept nogil:
    """This worker's k-th local port (k < lport_count)."""
    return <uint16_t>(base + k * e.nworkers)


cdef inline void rewrite(rte_mbuf *m, uint16_t hl, uint32_t saddr, uint16_t sport,
                         uint32_t daddr, uint16_t dport) noexcept nogil:
    """New addresses and ports (host order). TCP/UDP checksums cover a pseudo header
    with the addresses; ICMP's covers only the message, where the echo identifier
    stands for both ports (callers pass it as sport == dport)."""
    cdef rte_ipv4_hdr *ip = ip_hdr(m)
    cdef uint8_t *l4 = <uint8_t *>ip + hl
    cdef uint32_t ns = rte_cpu_to_be_32(saddr), nd = rte_cpu_to_be_32(daddr)
    cdef uint16_t nsp = rte_cpu_to_be_16(sport), ndp = rte_cpu_to_be_16(dport)
    cdef uint16_t *ck
    cdef uint16_t *ident
    if ip.next_proto_id == IPPROTO_ICMP:
        ck = <uint16_t *>(l4 + 2)
        ident = <uint16_t *>(l4 + 4)
        ck[0] = csum_fold_add(ck[0], ident[0], nsp)
        ident[0] = nsp
    else:
        ck = <uint16_t *>(l4 + (16 if ip.next_proto_id == IPPROTO_TCP else 6))
        if ck[0] != 0:                         # UDP checksum 0: none was sent
            ck[0] = csum_replace4(ck[0], ip.src_addr, ns)
            ck[0] = csum_replace4(ck[0], ip.dst_addr, nd)
            ck[0] = csum_fold_add(ck[0], (<uint16_t *>l4)[0], nsp)
            ck[0] = csum_fold_add(ck[0], (<uint16_t *>l4)[1], ndp)
            if ck[0] == 0 and ip.next_proto_id == IPPROTO_UDP:
                ck[0] = 0xffff
        (<uint16_t *>l4)[0] = nsp
        (<uint16_t *>l4)[1] = ndp
    ip.src_addr = ns
    ip.dst_addr = nd
    ip_set_csum(ip)


cdef inline int ttl_step(engine_t *e, worker_t *w, uint8_t port, rte_mbuf *m) noexcept nogil:
    """Routers decrement TTL (RFC 1812 5.3.1): 0 when the packet may go on; otherwise it
    is answered with time exceeded and dropped. The header checksum is redone later."""
    cdef rte_ipv4_hdr *ip = ip_hdr(m)
    if ip.time_to_live <= 1:
        icmp_error(e, w, port, m, ICMP_TIME_EXCEEDED, 0, 0)
        drop(w, m, R_TTL_EXCEEDED)
        return -1
    ip.time_to_live -= 1
    return 0


cdef inline route_t *route_to(worker_t *w, rte_mbuf *m, uint32_t dst) noexcept nogil:
    """The route that leads to dst (not our own, not kni), or NULL with m dropped."""
    cdef route_t *r = route_lookup(w, dst)
    if r == NULL or r.scope >= SCOPE_HOST:
        drop(w, m, R_NO_ROUTE)
        return NULL
    return r


cdef inline void route_out(engine_t *e, worker_t *w, rte_mbuf *m, uint32_t dst,
                           uint32_t src) noexcept nogil:
    """Send to dst by the route to it: to its gateway, or on-link; ARP from src (0: the
    port's first address)."""
    cdef route_t *r = route_to(w, m, dst)
    if r != NULL:
        neigh_output(e, w, r.port, r.gw if r.gw else dst, src, m)


# Default entry points, for modes with nothing to take or release per flow
cdef inline int keep_tuple(engine_t *e, worker_t *w, svc_t *s, dest_t *d, conn_t *c,
                           rte_mbuf *m) noexcept nogil:
    """conn_init of a mode whose flow keeps the client's address and port on the server
    side (DR, tunnel, NAT): nothing to take."""
    return 0


cdef inline void direct_reply_out(engine_t *e, worker_t *w, conn_t *c, rte_mbuf *m) noexcept nogil:
    """xmit_out of a mode whose real servers answer clients themselves (DR, tunnel):
    a reply through us is a real server without the VIP on lo."""
    drop(w, m, R_DIRECT_REPLY)


cdef inline object mode_capsule(mode_ops_t *ops, mode_conn_init_t conn_init,
                                mode_xmit_t xmit_in, mode_xmit_t xmit_out,
                                mode_conn_free_t conn_free, uint8_t direct_reply):
    """Fill a mode's ops (conn_free NULL: nothing to release) and wrap them in the
    capsule the core reads once, at registration (Engine.register_mode)."""
    ops.conn_init = conn_init
    ops.xmit_in = xmit_in
    ops.xmit_out = xmit_out
    ops.conn_free = conn_free
    ops.direct_reply = direct_reply
    return PyCapsule_New(ops, b"rlb.mode_ops_t", NULL)
