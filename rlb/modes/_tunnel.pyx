# IP-in-IP tunnel (LVS-TUN) in C: the client's packet, untouched, inside an outer IPv4
# header (RFC 2003) from the LB's LAN address to the real server, which may be anywhere
# routes reach; the real server decapsulates and answers the client itself.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from cpython.pycapsule cimport PyCapsule_New
from rlb.core.dpdk.mbuf cimport rte_mbuf, rte_pktmbuf_prepend
from rlb.core.dpdk.net cimport (rte_ipv4_hdr, rte_cpu_to_be_16, rte_cpu_to_be_32,
                                rte_be_to_cpu_16)
from rlb.core.types cimport *
from rlb.core.packet cimport ip_hdr, ip_set_csum, drop, ETH_HLEN
from rlb.core.ipv4 cimport route_lookup, icmp_error, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED
from rlb.core.neigh cimport neigh_output

cdef enum:
    IPPROTO_IPIP = 4
    OUTER_HLEN = 20
    OUTER_TTL = 64
    IP_DF = 0x4000

cdef int tun_conn_init(engine_t *e, worker_t *w, svc_t *s, dest_t *d, conn_t *c,
                       rte_mbuf *m) noexcept nogil:
    # nothing to take: the flow keeps the client's own address and port on both sides
    return 0


cdef void tun_conn_free(engine_t *e, worker_t *w, conn_t *c) noexcept nogil:
    pass


cdef void tun_xmit_in(engine_t *e, worker_t *w, conn_t *c, rte_mbuf *m) noexcept nogil:
    """Encapsulate (RFC 2003 3.1) and send to the route's gateway, or to the RS on-link."""
    cdef rte_ipv4_hdr *inner = ip_hdr(m)
    cdef rte_ipv4_hdr *outer
    cdef uint16_t tot = rte_be_to_cpu_16(inner.total_length)
    cdef uint16_t df = rte_be_to_cpu_16(inner.fragment_offset) & IP_DF
    cdef uint32_t src
    cdef uint8_t *start
    cdef route_t *r = route_lookup(w, c.daddr)
    if r == NULL or r.scope >= SCOPE_HOST:
        drop(w, m, R_NO_ROUTE)
        return
    # tutorial: "config default route, `src` must be set for tunnel mode"
    src = r.src if r.src else w.port_addr[r.port]
    if src == 0:
        drop(w, m, R_NO_SRC)
        return
    if <uint32_t>tot + OUTER_HLEN > r.mtu:
        if df:
            # RFC 1191: tell the client the MTU left inside the tunnel (RFC 2003 5.1)
            icmp_error(e, w, c.cport_in, m, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED,
                       r.mtu - OUTER_HLEN)
            drop(w, m, R_TOO_BIG)
        else:
            drop(w, m, R_TOO_BIG)
        return
    start = <uint8_t *>rte_pktmbuf_prepend(m, OUTER_HLEN)
    if start == NULL:
        drop(w, m, R_NO_HEADROOM)
        return
    # [eth 14][outer 20][inner ...]: the old Ethernet header's bytes become the outer
    # header's; neigh_output writes the new Ethernet header
    outer = ip_hdr(m)
    outer.version_ihl = 0x45
    outer.type_of_service = inner.type_of_service       # RFC 2003 3.1: copied
    outer.total_length = rte_cpu_to_be_16(tot + OUTER_HLEN)
    outer.packet_id = inner.packet_id
    outer.fragment_offset = rte_cpu_to_be_16(df)        # DF copied, never fragmented
    outer.time_to_live = OUTER_TTL
    outer.next_proto_id = IPPROTO_IPIP
    outer.src_addr = rte_cpu_to_be_32(src)
    outer.dst_addr = rte_cpu_to_be_32(c.daddr)
    ip_set_csum(outer)
    neigh_output(e, w, r.port, r.gw if r.gw else c.daddr, src, m)


cdef void tun_xmit_out(engine_t *e, worker_t *w, conn_t *c, rte_mbuf *m) noexcept nogil:
    # replies go from the RS to the client directly, from the VIP
    drop(w, m, R_DIRECT_REPLY)


cdef mode_ops_t TUNNEL_OPS
TUNNEL_OPS.conn_init = tun_conn_init
TUNNEL_OPS.xmit_in = tun_xmit_in
TUNNEL_OPS.xmit_out = tun_xmit_out
TUNNEL_OPS.conn_free = tun_conn_free
TUNNEL_OPS.owner_by_lport = 0
TUNNEL_OPS.direct_reply = 1


def ops():
    """The capsule the core reads once: the tunnel's C entry points."""
    return PyCapsule_New(&TUNNEL_OPS, b"rlb.mode_ops_t", NULL)

