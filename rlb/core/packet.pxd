# Packet helpers shared by the core and the mode plugins: headers, checksums, transmit buffers.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy
from rlb.core.dpdk.mbuf cimport rte_mbuf, rte_pktmbuf_free, rlb_mtod, rlb_vlan_push
from rlb.core.capture cimport CAP_OUT, capture_frame
from rlb.core.dpdk.ethdev cimport rte_ether_hdr, rte_eth_tx_burst
from rlb.core.dpdk.net cimport rte_ipv4_hdr, rte_ipv4_cksum, rte_be_to_cpu_16, rte_cpu_to_be_16
from rlb.core.types cimport (engine_t, worker_t, txbuf_t, BURST, R_TX_FULL, R_KNI_FULL,
                             R_KNI_RATELIMIT, R_NO_HEADROOM, R_PORT_GONE, R_TUNNEL_L2,
                             PORT_ETH, PORT_VLAN, PORT_TX_PKTS,
                             PORT_TX_BYTES, PORT_TO_KNI)

cdef enum:
    ETH_HLEN = 14
    ETHER_TYPE_IPV4 = 0x0800
    ETHER_TYPE_ARP = 0x0806
    ETHER_TYPE_VLAN = 0x8100   # 802.1Q
    ETHER_TYPE_QINQ = 0x88a8   # 802.1ad
    NO_PORT = 0xff             # no interface (the frame was dropped)
    ETHER_TYPE_SLOW = 0x8809   # LACP, marker
    ETHER_TYPE_LLDP = 0x88cc
    IPPROTO_IGMP = 2
    IPPROTO_OSPF = 89
    IPPROTO_VRRP = 112
    BGP_PORT = 179
    BFD_PORT = 3784            # single hop; 3785 echo, 4784 multihop (RFC 5881, 5883)
    BFD_ECHO_PORT = 3785
    BFD_MULTIHOP_PORT = 4784
    IPPROTO_ICMP = 1
    IP_MF_OFFSET_MASK = 0x3fff # more fragments + fragment offset: a fragment
    IP_OFFSET_MASK = 0x1fff

cdef inline rte_ether_hdr *eth_hdr(rte_mbuf *m) noexcept nogil:
    return <rte_ether_hdr *>rlb_mtod(m)

cdef inline rte_ipv4_hdr *ip_hdr(rte_mbuf *m) noexcept nogil:
    return <rte_ipv4_hdr *>(rlb_mtod(m) + ETH_HLEN)

cdef inline void ip_set_csum(rte_ipv4_hdr *ip) noexcept nogil:
    ip.hdr_checksum = 0
    ip.hdr_checksum = rte_ipv4_cksum(ip)

cdef inline uint16_t csum_fold_add(uint16_t csum, uint16_t old, uint16_t new) noexcept nogil:
    # RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), on network-order 16-bit words.
    cdef uint32_t s = (<uint16_t>~csum) + (<uint16_t>~old) + new
    s = (s & 0xffff) + (s >> 16)
    s = (s & 0xffff) + (s >> 16)
    return <uint16_t>~s

cdef inline int mac_is_multicast(const uint8_t *mac) noexcept nogil:
    return mac[0] & 1

cdef inline int mac_eq(const uint8_t *a, const uint8_t *b) noexcept nogil:
    cdef int i
    for i in range(6):
        if a[i] != b[i]:
            return 0
    return 1

cdef inline void mac_copy(uint8_t *dst, const uint8_t *src) noexcept nogil:
    memcpy(dst, src, 6)

cdef inline void tx_flush(engine_t *e, worker_t *w, txbuf_t *b, uint16_t dpdk_port,
                          int reason) noexcept nogil:
    cdef uint16_t sent, i
    if b.n == 0:
        return
    sent = rte_eth_tx_burst(dpdk_port, w.queue, b.pkts, b.n)
    if sent < b.n:
        w.reasons[reason] += b.n - sent
        for i in range(sent, b.n):
            rte_pktmbuf_free(b.pkts[i])
    b.n = 0

cdef inline void tx_port(engine_t *e, worker_t *w, uint8_t port, rte_mbuf *m) noexcept nogil:
    """Queue a finished frame for an interface; flushed at the end of the burst. A VLAN's
    frame is tagged and leaves by its parent's port."""
    cdef txbuf_t *b
    if e.capture.on & CAP_OUT and e.capture.port == port:
        capture_frame(&e.capture, m, CAP_OUT, port)
    w.pstats[port][PORT_TX_PKTS] += 1
    w.pstats[port][PORT_TX_BYTES] += m.pkt_len
    if e.ports[port].kind != PORT_ETH:
        if not e.ports[port].used:
            drop(w, m, R_PORT_GONE)
            return
        if e.ports[port].kind != PORT_VLAN:    # a tunnel's go by neigh_output
            drop(w, m, R_TUNNEL_L2)
            return
        if rlb_vlan_push(m, e.ports[port].vlan_proto, e.ports[port].vlan_id) != 0:
            drop(w, m, R_NO_HEADROOM)
            return
        port = e.ports[port].parent
        if e.capture.on & CAP_OUT and e.capture.port == port:
            capture_frame(&e.capture, m, CAP_OUT, port)
        w.pstats[port][PORT_TX_PKTS] += 1
        w.pstats[port][PORT_TX_BYTES] += m.pkt_len
    b = &w.tx[port]
    b.pkts[b.n] = m
    b.n += 1
    if b.n == BURST:
        tx_flush(e, w, b, e.ports[port].port_id, R_TX_FULL)

cdef inline bint kni_control(rte_mbuf *m) noexcept nogil:
    """A frame of the routing and HA protocols the kernel must see whatever the load:
    ARP, LACP, LLDP; IPv4 link-local multicast (224.0.0.0/24), IGMP, OSPF, VRRP and
    single-hop BFD with TTL 255 (what their RFCs send: a flood from afar cannot pass for
    them); BGP and multihop BFD by port. A fragment or a short frame is not one."""
    cdef const uint8_t *p = <const uint8_t *>rlb_mtod(m)
    cdef uint16_t et, sport, dport
    cdef uint32_t hl
    cdef uint8_t proto
    if m.data_len < ETH_HLEN:
        return 0
    et = (p[12] << 8) | p[13]
    if et == ETHER_TYPE_ARP or et == ETHER_TYPE_SLOW or et == ETHER_TYPE_LLDP:
        return 1
    if et != ETHER_TYPE_IPV4 or m.data_len < ETH_HLEN + 20:
        return 0
    p += ETH_HLEN
    proto = p[9]
    if proto == IPPROTO_VRRP:
        return p[8] == 255                 # RFC 5798: sent with TTL 255, else not VRRP's
    if proto == IPPROTO_OSPF or proto == IPPROTO_IGMP or \
            (p[16] == 224 and p[17] == 0 and p[18] == 0):
        return 1
    if proto != 6 and proto != 17:
        return 0
    hl = (p[0] & 0x0f) * 4
    if ((p[6] << 8 | p[7]) & IP_OFFSET_MASK) or m.data_len < ETH_HLEN + hl + 4:
        return 0
    sport = p[hl] << 8 | p[hl + 1]
    dport = p[hl + 2] << 8 | p[hl + 3]
    if proto == 6:
        return sport == BGP_PORT or dport == BGP_PORT
    if dport == BFD_PORT or dport == BFD_ECHO_PORT:
        return p[8] == 255                 # RFC 5881 (GTSM): single hop comes with TTL 255
    return dport == BFD_MULTIHOP_PORT

cdef inline void tx_kni(engine_t *e, worker_t *w, uint8_t port, rte_mbuf *m) noexcept nogil:
    """Hand a frame to the kernel through the port's tap (<port>.kni). A tap write is a
    system call: bulk frames get `kni-rate` a second (a flood of traffic for the kernel
    would take the worker's time and the tap's room, and the routing protocols' frames
    with it); the routing and HA protocols' frames always pass (DPVS #383, #457)."""
    cdef txbuf_t *b
    if not e.ports[port].has_kni:
        rte_pktmbuf_free(m)
        return
    if e.kni_per_tick != 0 and not kni_control(m):
        if w.kni_tokens == 0:
            drop(w, m, R_KNI_RATELIMIT)
            return
        w.kni_tokens -= 1
    b = &w.kni[port]
    w.pstats[port][PORT_TO_KNI] += 1
    b.pkts[b.n] = m
    b.n += 1
    if b.n == BURST:
        tx_flush(e, w, b, e.ports[port].kni_id, R_KNI_FULL)

cdef inline void drop(worker_t *w, rte_mbuf *m, int reason) noexcept nogil:
    w.reasons[reason] += 1
    rte_pktmbuf_free(m)

cdef inline uint16_t csum_replace4(uint16_t csum, uint32_t old, uint32_t new) noexcept nogil:
    """Incremental checksum update for a 32-bit field, values as stored in the packet."""
    csum = csum_fold_add(csum, <uint16_t>(old & 0xffff), <uint16_t>(new & 0xffff))
    return csum_fold_add(csum, <uint16_t>(old >> 16), <uint16_t>(new >> 16))
