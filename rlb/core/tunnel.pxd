# IPIP (RFC 2003) and GRE (RFC 2784, keys RFC 2890) tunnel interfaces: what arrives
# for one of our addresses from a tunnel's remote end is taken out of its outer header
# and goes on as that interface's; what is routed to a tunnel interface is put in an
# outer header to its remote end and routed again (neigh.pxd's neigh_output).
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from libc.string cimport memmove
from rlb.core.dpdk.mbuf cimport rte_mbuf, rte_pktmbuf_adj, rte_pktmbuf_prepend, rlb_mtod
from rlb.core.dpdk.net cimport (rte_ipv4_hdr, rte_raw_cksum, rte_be_to_cpu_16, rte_be_to_cpu_32,
                                rte_cpu_to_be_16, rte_cpu_to_be_32)
from rlb.core.types cimport *
from rlb.core.packet cimport drop, ip_set_csum, mac_copy, ETH_HLEN, ETHER_TYPE_IPV4, NO_PORT
from rlb.core.route cimport route_lookup

cdef enum:
    IPPROTO_IPIP_TUN = 4
    IPPROTO_GRE = 47
    GRE_CSUM = 0x8000
    GRE_ROUTING = 0x4000
    GRE_KEY = 0x2000
    GRE_SEQ = 0x1000
    GRE_VERSION = 0x0007
    TUN_DEFAULT_TTL = 64


cdef inline uint16_t gre_len(uint8_t flags) noexcept nogil:
    return 4 + (4 if flags & TUN_CSUM else 0) + (4 if flags & TUN_KEY else 0)


cdef inline uint8_t tunnel_input(engine_t *e, worker_t *w, rte_mbuf *m, rte_ipv4_hdr *ip,
                                 uint16_t hl, uint16_t tot) noexcept nogil:
    """An IPIP/GRE packet to one of our addresses: the tunnel interface it came in by,
    its outer headers taken off (the frame keeps an Ethernet header, to the tunnel's
    MAC); NO_PORT when no tunnel takes it (m untouched)."""
    cdef uint32_t src = rte_be_to_cpu_32(ip.src_addr), dst = rte_be_to_cpu_32(ip.dst_addr)
    cdef uint8_t *p
    cdef uint16_t flags, off, proto
    cdef uint32_t key = 0
    cdef uint8_t haskey = 0
    cdef int i
    cdef port_t *t
    off = hl
    if ip.next_proto_id == IPPROTO_GRE:
        if tot < hl + 4:
            return NO_PORT
        p = <uint8_t *>ip + hl
        flags = (p[0] << 8) | p[1]
        proto = (p[2] << 8) | p[3]
        if flags & (GRE_ROUTING | GRE_VERSION) or proto != ETHER_TYPE_IPV4:
            return NO_PORT
        off = hl + 4
        if flags & GRE_CSUM:
            off += 4
        if flags & GRE_KEY:
            if tot < off + 4:
                return NO_PORT
            key = rte_be_to_cpu_32((<uint32_t *>(<uint8_t *>ip + off))[0])
            haskey = 1
            off += 4
        if flags & GRE_SEQ:
            off += 4
    if tot < off + 20:
        return NO_PORT
    for i in range(e.nports):
        t = &e.ports[i]
        if t.kind == PORT_TUNNEL and t.used and t.tun_proto == ip.next_proto_id and \
                t.tun_local == dst and t.tun_remote == src and \
                ((t.tun_flags & TUN_KEY) != 0) == haskey and (not haskey or t.tun_key == key):
            p = rlb_mtod(m)
            memmove(p + off, p, ETH_HLEN)          # the Ethernet header, kept in front
            rte_pktmbuf_adj(m, off)
            mac_copy(rlb_mtod(m), t.mac)           # to the tunnel (its kni takes it so)
            w.pstats[i][PORT_RX_PKTS] += 1
            w.pstats[i][PORT_RX_BYTES] += m.pkt_len
            return <uint8_t>i
    return NO_PORT


cdef inline route_t *tunnel_output(engine_t *e, worker_t *w, uint8_t port,
                                   rte_mbuf *m) noexcept nogil:
    """Put an IPv4 packet routed to tunnel interface `port` (its frame's Ethernet header
    in front) in the tunnel's outer headers; the route to the remote end is returned, or
    NULL with m dropped."""
    cdef port_t *t = &e.ports[port]
    cdef uint16_t glen = gre_len(t.tun_flags) if t.tun_proto == IPPROTO_GRE else 0
    cdef uint16_t add = 20 + glen
    cdef uint8_t *p
    cdef rte_ipv4_hdr *inner
    cdef rte_ipv4_hdr *outer
    cdef uint8_t *g
    cdef uint16_t ck
    cdef route_t *r
    if not t.used:
        drop(w, m, R_PORT_GONE)
        return NULL
    if m.data_len < ETH_HLEN + 20 or \
            (rlb_mtod(m)[12] << 8 | rlb_mtod(m)[13]) != ETHER_TYPE_IPV4:
        drop(w, m, R_TUNNEL_L2)
        return NULL
    p = <uint8_t *>rte_pktmbuf_prepend(m, add)
    if p == NULL:
        drop(w, m, R_NO_HEADROOM)
        return NULL
    w.pstats[port][PORT_TX_PKTS] += 1
    w.pstats[port][PORT_TX_BYTES] += m.pkt_len - add
    memmove(p, p + add, ETH_HLEN)
    inner = <rte_ipv4_hdr *>(p + ETH_HLEN + add)
    outer = <rte_ipv4_hdr *>(p + ETH_HLEN)
    outer.version_ihl = 0x45
    outer.type_of_service = inner.type_of_service
    outer.total_length = rte_cpu_to_be_16(<uint16_t>(m.pkt_len - ETH_HLEN))
    outer.packet_id = inner.packet_id
    outer.fragment_offset = 0
    outer.time_to_live = t.tun_ttl if t.tun_ttl else inner.time_to_live
    outer.next_proto_id = t.tun_proto
    outer.src_addr = rte_cpu_to_be_32(t.tun_local)
    outer.dst_addr = rte_cpu_to_be_32(t.tun_remote)
    ip_set_csum(outer)
    if glen:
        g = p + ETH_HLEN + 20
        g[0] = (0x80 if t.tun_flags & TUN_CSUM else 0) | (0x20 if t.tun_flags & TUN_KEY else 0)
        g[1] = 0
        g[2] = 0x08
        g[3] = 0x00
        if t.tun_flags & TUN_CSUM:
            g[4] = g[5] = g[6] = g[7] = 0
            if t.tun_flags & TUN_KEY:
                (<uint32_t *>(g + 8))[0] = rte_cpu_to_be_32(t.tun_key)
            ck = <uint16_t>~rte_raw_cksum(g, m.pkt_len - ETH_HLEN - 20)
            (<uint16_t *>(g + 4))[0] = ck
        elif t.tun_flags & TUN_KEY:
            (<uint32_t *>(g + 4))[0] = rte_cpu_to_be_32(t.tun_key)
    r = route_lookup(w, t.tun_remote)
    if r == NULL or r.scope >= SCOPE_HOST:
        drop(w, m, R_NO_ROUTE)
        return NULL
    if e.ports[r.port].kind == PORT_TUNNEL:
        drop(w, m, R_TUNNEL_LOOP)
        return NULL
    return r
