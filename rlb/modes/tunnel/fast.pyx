# IP-in-IP tunnel (LVS-TUN) in C: the client's packet, untouched, inside an outer IPv4
# header (RFC 2003) from the LB's LAN address to the real server, which may be anywhere
# routes reach; the real server decapsulates and answers the client itself.
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from rlb.core.dpdk.mbuf cimport rte_mbuf, rte_pktmbuf_prepend
from rlb.core.dpdk.net cimport (rte_ipv4_hdr, rte_cpu_to_be_16, rte_cpu_to_be_32,
                                rte_be_to_cpu_16)
from rlb.core.types cimport *
from rlb.core.packet cimport ip_hdr, ip_set_csum, drop
from rlb.core.ipv4 cimport icmp_error, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED
from rlb.core.neigh cimport neigh_output
from rlb.core.xmit cimport (route_to, keep_tuple, direct_reply_out, mode_capsule,
                            IPPROTO_IPIP)

cdef enum:
    OUTER_HLEN = 20
    OUTER_TTL = 64
    IP_DF = 0x4000


cdef void tun_xmit_in(engine_t *e, worker_t *w, conn_t *c, rte_mbuf *m) noexcept nogil:
    """Encapsulate (RFC 2003 3.1) and send to the route's gateway, or to the RS on-link."""
    cdef rte_ipv4_hdr *inner = ip_hdr(m)
    cdef rte_ipv4_hdr *outer
    cdef uint16_t tot = rte_be_to_cpu_16(inner.total_length)
    cdef uint16_t df = rte_be_to_cpu_16(inner.fragment_offset) & IP_DF
    cdef uint32_t src
    cdef uint8_t *start
    cdef route_t *r = route_to(w, m, c.daddr)
    if r == NULL:
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


cdef mode_ops_t TUNNEL_OPS


def ops():
    """The capsule the core reads once: the tunnel's C entry points."""
    return mode_capsule(&TUNNEL_OPS, keep_tuple, tun_xmit_in, direct_reply_out, NULL, 1)
