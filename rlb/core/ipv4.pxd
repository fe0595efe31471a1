# IPv4 and ARP input of the packet core: validate, answer, forward or punt to kni.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from rlb.core.dpdk.mbuf cimport (rte_mbuf, rte_pktmbuf_trim, rte_pktmbuf_free, rte_pktmbuf_alloc,
                                 rlb_mtod)
from rlb.core.route cimport route_lookup, arp_is_ours
from rlb.core.tunnel cimport tunnel_input, IPPROTO_IPIP_TUN, IPPROTO_GRE
from rlb.core.dpdk.ethdev cimport rte_ether_hdr
from rlb.core.dpdk.net cimport (rte_ipv4_hdr, rte_arp_hdr, rte_icmp_hdr, rte_raw_cksum,
                                rte_be_to_cpu_16, rte_be_to_cpu_32, rte_cpu_to_be_16,
                                rte_cpu_to_be_32)
from rlb.core.types cimport *
from rlb.core.packet cimport (tx_port, tx_kni, drop, eth_hdr, ip_hdr, ip_set_csum, mac_copy,
                              mac_is_multicast, csum_fold_add, ETH_HLEN, ETHER_TYPE_IPV4,
                              IPPROTO_ICMP, IP_MF_OFFSET_MASK, IP_OFFSET_MASK, NO_PORT)
from rlb.core.lb cimport lb_input, IPPROTO_TCP, IPPROTO_UDP
from rlb.core.probe cimport tcp_probe_answer
from rlb.core.neigh cimport (neigh_find, neigh_insert, neigh_confirm, neigh_share,
                             neigh_output, ARP_REQUEST, ARP_REPLY, ARP_LEN)

cdef enum:
    ICMP_ECHO_REPLY = 0
    ICMP_DEST_UNREACH = 3
    ICMP_ECHO_REQUEST = 8
    ICMP_TIME_EXCEEDED = 11
    ICMP_NET_UNREACH = 0
    ICMP_FRAG_NEEDED = 4
    IP_DF_BIT = 0x4000
    DEFAULT_TTL = 64


cdef inline int l4_check(rte_mbuf *m, rte_ipv4_hdr *ip, uint16_t hl, uint16_t tot) noexcept nogil:
    """-1 when the transport header fits the packet, else the reason to drop it: a TCP
    data offset of at least 5 words with the options inside the segment (RFC 9293
    3.1), a UDP length equal to the IP payload's (RFC 768), a whole 8-byte ICMP header
    (RFC 792). Checked once, before any service, connection, mode or route sees the
    packet: nothing is scheduled for, rewritten in, or given TOA in a header that is
    not there. A header that does not sit in the first segment is left to the callers
    (lb_input passes on it)."""
    cdef uint8_t *l4 = <uint8_t *>ip + hl
    cdef uint16_t l4len = tot - hl
    cdef uint16_t thl
    if ip.next_proto_id == IPPROTO_TCP:
        if l4len < 20:
            return R_TCP_HDRLEN
        if ETH_HLEN + hl + 20 > m.data_len:
            return -1
        thl = (l4[12] >> 4) * 4
        if thl < 20 or thl > l4len:
            return R_TCP_HDRLEN
    elif ip.next_proto_id == IPPROTO_UDP:
        if l4len < 8:
            return R_UDP_LEN
        if ETH_HLEN + hl + 8 > m.data_len:
            return -1
        if rte_be_to_cpu_16((<uint16_t *>l4)[2]) != l4len:
            return R_UDP_LEN
    elif ip.next_proto_id == IPPROTO_ICMP:
        if l4len < 8:
            return R_ICMP_LEN
    return -1

cdef inline int icmp_is_error(rte_ipv4_hdr *ip, uint16_t hl) noexcept nogil:
    cdef uint8_t t
    if ip.next_proto_id != IPPROTO_ICMP:
        return 0
    t = (<uint8_t *>ip)[hl]
    return t != ICMP_ECHO_REQUEST and t != ICMP_ECHO_REPLY and t != 13 and t != 14

cdef inline void icmp_error(engine_t *e, worker_t *w, uint8_t port, rte_mbuf *m, uint8_t type,
                            uint8_t code, uint32_t info) noexcept nogil:
    """Tell the sender why its packet died (RFC 792, RFC 1812 4.3.2.7): its IP header and
    8 bytes of payload back, from our address on the port it came in by. Never about an
    ICMP error, a later fragment, or when this worker's per-second budget is spent.
    The offending packet stays the caller's to drop."""
    cdef rte_ipv4_hdr *ip = ip_hdr(m)
    cdef uint16_t hl = (ip.version_ihl & 0xf) * 4
    cdef uint16_t quote = rte_be_to_cpu_16(ip.total_length)
    cdef uint32_t src = w.port_addr[port]
    cdef uint32_t dst = rte_be_to_cpu_32(ip.src_addr)
    cdef rte_mbuf *n
    cdef rte_ipv4_hdr *oip
    cdef rte_icmp_hdr *ic
    cdef route_t *r
    if src == 0 or dst == 0 or (dst >> 28) >= 0xe or icmp_is_error(ip, hl):
        return
    if rte_be_to_cpu_16(ip.fragment_offset) & IP_OFFSET_MASK:
        return
    if w.icmp_tokens == 0:
        w.reasons[R_ICMP_RATELIMIT] += 1
        return
    r = route_lookup(w, dst)
    if r == NULL or r.scope >= SCOPE_HOST:
        return
    w.icmp_tokens -= 1
    if quote > hl + 8:
        quote = hl + 8
    n = rte_pktmbuf_alloc(e.pool)
    if n == NULL:
        w.reasons[R_NO_MBUF] += 1
        return
    n.data_len = ETH_HLEN + 28 + quote
    n.pkt_len = n.data_len
    oip = ip_hdr(n)
    memset(oip, 0, 28)
    oip.version_ihl = 0x45
    oip.total_length = rte_cpu_to_be_16(28 + quote)
    oip.time_to_live = DEFAULT_TTL
    oip.next_proto_id = IPPROTO_ICMP
    oip.src_addr = rte_cpu_to_be_32(src)
    oip.dst_addr = ip.src_addr
    ip_set_csum(oip)
    ic = <rte_icmp_hdr *>(<uint8_t *>oip + 20)
    ic.icmp_type = type
    ic.icmp_code = code
    info = rte_cpu_to_be_32(info)
    memcpy(&ic.icmp_ident, &info, 4)     # rest of header: unused, or next-hop MTU
    memcpy(<uint8_t *>ic + 8, ip, quote)
    ic.icmp_cksum = ~rte_raw_cksum(ic, 8 + quote)
    neigh_output(e, w, r.port, r.gw if r.gw else dst, src, n)

cdef inline void arp_input(engine_t *e, worker_t *w, uint8_t port, rte_mbuf *m) noexcept nogil:
    """RFC 826: learn the sender, answer requests for our addresses, pass the rest to kni."""
    cdef rte_arp_hdr *a
    cdef rte_ether_hdr *eh
    cdef uint32_t sip, tip
    cdef uint16_t op
    cdef int own
    cdef neigh_t *n
    if m.data_len < ETH_HLEN + ARP_LEN:
        drop(w, m, R_TRUNCATED)
        return
    a = <rte_arp_hdr *>(rlb_mtod(m) + ETH_HLEN)
    op = rte_be_to_cpu_16(a.arp_opcode)
    if (rte_be_to_cpu_16(a.arp_hardware) != 1 or rte_be_to_cpu_16(a.arp_protocol) != ETHER_TYPE_IPV4
            or a.arp_hlen != 6 or a.arp_plen != 4 or (op != ARP_REQUEST and op != ARP_REPLY)
            or mac_is_multicast(a.arp_data.arp_sha.addr_bytes)):
        drop(w, m, R_ARP_BAD)
        return
    sip = rte_be_to_cpu_32(a.arp_data.arp_sip)
    tip = rte_be_to_cpu_32(a.arp_data.arp_tip)
    own = arp_is_ours(w, tip)
    if sip == tip:
        own = 0
    if sip != 0:
        # merge: refresh an entry we have; create one only when the packet is for us
        n = neigh_find(w, sip)
        if n == NULL and own:
            n = neigh_insert(w, sip)
            if n == NULL:
                w.reasons[R_NEIGH_TABLE_FULL] += 1
        if n != NULL and n.state != NEIGH_STATIC:
            neigh_confirm(e, w, n, a.arp_data.arp_sha.addr_bytes, port, 0)
            neigh_share(e, w, n)
    if own != 1:
        w.reasons[R_ARP_FOREIGN_KNI if own == 0 else R_ARP_VRRP_KNI] += 1
        tx_kni(e, w, port, m)
        return
    if op == ARP_REPLY:
        rte_pktmbuf_free(m)          # an answer to our own request: consumed
        return
    # turn the request into the reply in place
    a.arp_opcode = rte_cpu_to_be_16(ARP_REPLY)
    mac_copy(a.arp_data.arp_tha.addr_bytes, a.arp_data.arp_sha.addr_bytes)
    a.arp_data.arp_tip = a.arp_data.arp_sip
    mac_copy(a.arp_data.arp_sha.addr_bytes, e.ports[port].mac)
    a.arp_data.arp_sip = rte_cpu_to_be_32(tip)
    eh = eth_hdr(m)
    mac_copy(eh.dst_addr.addr_bytes, eh.src_addr.addr_bytes)
    mac_copy(eh.src_addr.addr_bytes, e.ports[port].mac)
    tx_port(e, w, port, m)

cdef inline void icmp_echo(engine_t *e, worker_t *w, uint8_t port, rte_mbuf *m,
                           rte_ipv4_hdr *ip, uint16_t hl, uint16_t tot) noexcept nogil:
    """Answer an echo request to one of our addresses in the data plane (RFC 792)."""
    cdef rte_icmp_hdr *ic
    cdef uint16_t old
    cdef uint32_t src
    cdef route_t *r
    ic = <rte_icmp_hdr *>(<uint8_t *>ip + hl)        # 8 bytes at least: l4_check
    if ic.icmp_type != ICMP_ECHO_REQUEST or ic.icmp_code != 0:
        tx_kni(e, w, port, m)
        return
    old = (<uint16_t *>ic)[0]
    ic.icmp_type = ICMP_ECHO_REPLY
    ic.icmp_cksum = csum_fold_add(ic.icmp_cksum, old, (<uint16_t *>ic)[0])
    src = ip.dst_addr
    ip.dst_addr = ip.src_addr
    ip.src_addr = src
    ip.time_to_live = DEFAULT_TTL
    ip_set_csum(ip)
    r = route_lookup(w, rte_be_to_cpu_32(ip.dst_addr))
    if r == NULL or r.scope >= SCOPE_HOST:
        drop(w, m, R_NO_ROUTE)
        return
    neigh_output(e, w, r.port, r.gw if r.gw else rte_be_to_cpu_32(ip.dst_addr),
                 rte_be_to_cpu_32(src), m)

cdef inline void ipv4_forward(engine_t *e, worker_t *w, uint8_t port, rte_mbuf *m, rte_ipv4_hdr *ip,
                              route_t *r, uint32_t dst) noexcept nogil:
    """Router forwarding: TTL and incremental checksum (RFC 1812 5.3.1, RFC 1624)."""
    cdef uint16_t old
    if ip.time_to_live <= 1:
        icmp_error(e, w, port, m, ICMP_TIME_EXCEEDED, 0, 0)
        drop(w, m, R_TTL_EXCEEDED)
        return
    if e.ports[r.port].kind == PORT_TUNNEL and \
            rte_be_to_cpu_16(ip.total_length) > e.ports[r.port].mtu:
        # into a tunnel, over its MTU (its outer header must fit the underlay's): no
        # fragmentation here; with DF the sender learns the MTU (RFC 1191, RFC 2003 5.1)
        if rte_be_to_cpu_16(ip.fragment_offset) & IP_DF_BIT:
            icmp_error(e, w, port, m, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED,
                       e.ports[r.port].mtu)
        drop(w, m, R_TOO_BIG)
        return
    old = (<uint16_t *>&ip.time_to_live)[0]
    ip.time_to_live -= 1
    ip.hdr_checksum = csum_fold_add(ip.hdr_checksum, old, (<uint16_t *>&ip.time_to_live)[0])
    neigh_output(e, w, r.port, r.gw if r.gw else dst, r.src, m)

cdef inline void ipv4_input(engine_t *e, worker_t *w, uint8_t port, rte_mbuf *m) noexcept nogil:
    """Validate (RFC 1812 5.2.2), then: our address, kni, or forward along a route."""
    cdef rte_ipv4_hdr *ip
    cdef uint16_t hl, tot, frag
    cdef uint32_t dst, l3len
    cdef int why
    cdef route_t *r
    cdef uint8_t tp
    if m.data_len < ETH_HLEN + 20:
        drop(w, m, R_TRUNCATED)
        return
    ip = ip_hdr(m)
    if (ip.version_ihl >> 4) != 4:
        drop(w, m, R_IP_VERSION)
        return
    hl = (ip.version_ihl & 0xf) * 4
    if hl < 20 or ETH_HLEN + hl > m.data_len:
        drop(w, m, R_IP_HDRLEN)
        return
    tot = rte_be_to_cpu_16(ip.total_length)
    l3len = m.pkt_len - ETH_HLEN
    if tot < hl or tot > l3len:
        drop(w, m, R_IP_TOTLEN)
        return
    if rte_raw_cksum(ip, hl) != 0xffff:
        drop(w, m, R_IP_CSUM)
        return
    if l3len > tot:
        rte_pktmbuf_trim(m, <uint16_t>(l3len - tot))     # Ethernet padding
    dst = rte_be_to_cpu_32(ip.dst_addr)
    if mac_is_multicast(eth_hdr(m).dst_addr.addr_bytes) or (dst >> 28) == 0xe or dst == <uint32_t>0xffffffffu:
        tx_kni(e, w, port, m)      # OSPF, VRRP, broadcasts: the kernel's business
        return
    if hl > 20:
        w.reasons[R_IP_OPTIONS_KNI] += 1
        tx_kni(e, w, port, m)
        return
    frag = rte_be_to_cpu_16(ip.fragment_offset) & IP_MF_OFFSET_MASK
    if not frag:
        why = l4_check(m, ip, hl, tot)
        if why >= 0:
            drop(w, m, why)
            return
    r = route_lookup(w, dst)
    if not frag and lb_input(
            e, w, port, m, ip, hl, tot, r != NULL and r.sapool and r.prefix == dst,
            r != NULL and r.scope == SCOPE_HOST and r.prefix == dst):
        return
    if r != NULL and r.scope == SCOPE_HOST and r.prefix == dst:
        if frag:
            w.reasons[R_IP_FRAG_KNI] += 1
            tx_kni(e, w, port, m)          # the kernel reassembles
        elif ip.next_proto_id == IPPROTO_ICMP:
            icmp_echo(e, w, port, m, ip, hl, tot)
        elif ip.next_proto_id == IPPROTO_TCP and e.probes != NULL and \
                tcp_probe_answer(e, w, m, ip, hl, dst):
            pass                           # an answer to the data plane's TCP prober
        elif ip.next_proto_id == IPPROTO_IPIP_TUN or ip.next_proto_id == IPPROTO_GRE:
            tp = tunnel_input(e, w, m, ip, hl, tot)
            if tp == NO_PORT:
                drop(w, m, R_TUNNEL_BAD)
            else:
                ipv4_input(e, w, tp, m)    # as the tunnel interface's
        else:
            tx_kni(e, w, port, m)
        return
    if r != NULL and r.scope == SCOPE_KNI_HOST:
        tx_kni(e, w, port, m)
        return
    if not e.ip_forward:
        w.reasons[R_FWD_DISABLED_KNI] += 1
        tx_kni(e, w, port, m)
        return
    if r == NULL or r.scope == SCOPE_HOST:
        icmp_error(e, w, port, m, ICMP_DEST_UNREACH, ICMP_NET_UNREACH, 0)
        drop(w, m, R_NO_ROUTE)
        return
    ipv4_forward(e, w, port, m, ip, r, dst)
