# Address and port rewriting shared by the NAT-like modes (FNAT, NAT, SNAT): checksums
# kept right incrementally.
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from rlb.core.dpdk.mbuf cimport rte_mbuf
from rlb.core.dpdk.net cimport (rte_ipv4_hdr, rte_ipv4_udptcp_cksum, rte_cpu_to_be_16,
                                rte_cpu_to_be_32)
from rlb.core.types cimport *
from rlb.core.packet cimport ip_hdr, ip_set_csum, drop, csum_fold_add, csum_replace4
from rlb.core.ipv4 cimport route_lookup, icmp_error, ICMP_TIME_EXCEEDED
from rlb.core.neigh cimport neigh_output

cdef enum:
    RW_ICMP = 1
    RW_TCP = 6
    RW_UDP = 17

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
    if ip.next_proto_id == RW_ICMP:
        ck = <uint16_t *>(l4 + 2)
        ident = <uint16_t *>(l4 + 4)
        ck[0] = csum_fold_add(ck[0], ident[0], nsp)
        ident[0] = nsp
    else:
        ck = <uint16_t *>(l4 + (16 if ip.next_proto_id == RW_TCP else 6))
        if ck[0] != 0:                         # UDP checksum 0: none was sent
            ck[0] = csum_replace4(ck[0], ip.src_addr, ns)
            ck[0] = csum_replace4(ck[0], ip.dst_addr, nd)
            ck[0] = csum_fold_add(ck[0], (<uint16_t *>l4)[0], nsp)
            ck[0] = csum_fold_add(ck[0], (<uint16_t *>l4)[1], ndp)
            if ck[0] == 0 and ip.next_proto_id == RW_UDP:
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


cdef inline void route_out(engine_t *e, worker_t *w, rte_mbuf *m, uint32_t dst,
                           uint32_t src) noexcept nogil:
    cdef route_t *r = route_lookup(w, dst)
    if r == NULL or r.scope >= SCOPE_HOST:
        drop(w, m, R_NO_ROUTE)
        return
    neigh_output(e, w, r.port, r.gw if r.gw else dst, src, m)
