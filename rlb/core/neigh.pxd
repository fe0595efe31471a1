# Neighbour (ARP) table of one worker: open addressing, aging, packets held while resolving.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from rlb.core.dpdk.eal cimport rte_rdtsc
from rlb.core.dpdk.mbuf cimport rte_mbuf, rte_pktmbuf_alloc, rte_pktmbuf_free, rlb_mtod
from rlb.core.dpdk.ring cimport rte_ring_enqueue_elem
from rlb.core.dpdk.ethdev cimport rte_ether_hdr
from rlb.core.dpdk.net cimport (rte_arp_hdr, rte_be_to_cpu_16, rte_be_to_cpu_32,
                                rte_cpu_to_be_16, rte_cpu_to_be_32)
from rlb.core.types cimport *
from rlb.core.tunnel cimport tunnel_output
from rlb.core.packet cimport (tx_port, tx_kni, drop, eth_hdr, mac_copy, ETH_HLEN,
                              ETHER_TYPE_IPV4, ETHER_TYPE_ARP)

cdef enum:
    ARP_REQUEST = 1
    ARP_REPLY = 2
    ARP_LEN = 28

cdef extern from "shim.h" nogil:
    const uint8_t *BCAST "rlb_bcast_mac"
    const uint8_t *ZERO_MAC "rlb_zero_mac"

cdef inline uint32_t neigh_slot(worker_t *w, uint32_t ip) noexcept nogil:
    return (ip * <uint32_t>2654435761u) & w.neigh_mask

cdef inline neigh_t *neigh_find(worker_t *w, uint32_t ip) noexcept nogil:
    cdef uint32_t i = neigh_slot(w, ip)
    cdef uint32_t n
    for n in range(w.neigh_mask + 1):
        if w.neigh[i].ip == ip:
            return &w.neigh[i]
        if w.neigh[i].ip == 0:
            return NULL
        i = (i + 1) & w.neigh_mask
    return NULL

cdef inline neigh_t *neigh_insert(worker_t *w, uint32_t ip) noexcept nogil:
    """The entry for ip, created empty (state EMPTY) if absent; NULL when the table is full.
    At most 3/4 full so that probes stay short."""
    cdef uint32_t i = neigh_slot(w, ip)
    cdef uint32_t n, used = 0
    for n in range(w.neigh_mask + 1):
        if w.neigh[i].ip == ip:
            return &w.neigh[i]
        if w.neigh[i].ip == 0:
            break
        i = (i + 1) & w.neigh_mask
    else:
        return NULL
    # count lazily only on insert: tables are small and inserts rare
    for n in range(w.neigh_mask + 1):
        if w.neigh[n].ip != 0:
            used += 1
    if used * 4 >= (w.neigh_mask + 1) * 3:
        return NULL
    memset(&w.neigh[i], 0, sizeof(neigh_t))
    w.neigh[i].ip = ip
    return &w.neigh[i]

cdef inline void neigh_remove(worker_t *w, neigh_t *entry, int reason) noexcept nogil:
    """Delete with backward shift (no tombstones), dropping any held packets."""
    cdef uint32_t i = <uint32_t>(entry - w.neigh)
    cdef uint32_t j, home
    cdef uint8_t k
    for k in range(entry.npending):
        drop(w, entry.pending[k], reason)
    entry.npending = 0
    j = i
    while True:
        j = (j + 1) & w.neigh_mask
        if w.neigh[j].ip == 0:
            break
        home = neigh_slot(w, w.neigh[j].ip)
        # move j back to i if its home is not cyclically within (i, j]
        if (j > i and (home <= i or home > j)) or (j < i and (home <= i and home > j)):
            memcpy(&w.neigh[i], &w.neigh[j], sizeof(neigh_t))
            i = j
    memset(&w.neigh[i], 0, sizeof(neigh_t))

cdef inline void eth_fill(engine_t *e, rte_mbuf *m, uint8_t port, const uint8_t *dst,
                          uint16_t ether_type) noexcept nogil:
    cdef rte_ether_hdr *eh = eth_hdr(m)
    mac_copy(eh.dst_addr.addr_bytes, dst)
    mac_copy(eh.src_addr.addr_bytes, e.ports[port].mac)
    eh.ether_type = rte_cpu_to_be_16(ether_type)

cdef inline void neigh_confirm(engine_t *e, worker_t *w, neigh_t *n, const uint8_t *mac,
                               uint8_t port, uint8_t static_) noexcept nogil:
    """A neighbour's MAC is known: record it and release the packets held for it."""
    cdef uint8_t k
    if n.state == NEIGH_STATIC and not static_:
        return
    mac_copy(n.mac, mac)
    n.port = port
    n.state = NEIGH_STATIC if static_ else NEIGH_REACHABLE
    n.updated = rte_rdtsc()
    n.probes = 0
    for k in range(n.npending):
        eth_fill(e, n.pending[k], port, mac, ETHER_TYPE_IPV4)
        tx_port(e, w, port, n.pending[k])
    n.npending = 0

cdef inline int arp_send(engine_t *e, worker_t *w, uint8_t port, uint16_t op, uint32_t sip,
                         const uint8_t *tha, uint32_t tip, const uint8_t *eth_dst) noexcept nogil:
    """Build and queue one ARP packet (addresses in host order)."""
    cdef rte_mbuf *m = rte_pktmbuf_alloc(e.pool)
    cdef rte_arp_hdr *a
    if m == NULL:
        w.reasons[R_NO_MBUF] += 1
        return -1
    # minimum Ethernet payload: pad to 60 bytes
    m.data_len = 60
    m.pkt_len = 60
    memset(rlb_mtod(m), 0, 60)
    eth_fill(e, m, port, eth_dst, ETHER_TYPE_ARP)
    a = <rte_arp_hdr *>(rlb_mtod(m) + ETH_HLEN)
    a.arp_hardware = rte_cpu_to_be_16(1)
    a.arp_protocol = rte_cpu_to_be_16(ETHER_TYPE_IPV4)
    a.arp_hlen = 6
    a.arp_plen = 4
    a.arp_opcode = rte_cpu_to_be_16(op)
    mac_copy(a.arp_data.arp_sha.addr_bytes, e.ports[port].mac)
    a.arp_data.arp_sip = rte_cpu_to_be_32(sip)
    mac_copy(a.arp_data.arp_tha.addr_bytes, tha)
    a.arp_data.arp_tip = rte_cpu_to_be_32(tip)
    tx_port(e, w, port, m)
    return 0

cdef inline void neigh_probe(engine_t *e, worker_t *w, neigh_t *n, uint32_t src) noexcept nogil:
    if src == 0:
        src = w.port_addr[n.port]
    n.probed = rte_rdtsc()
    n.probes += 1
    if n.state == NEIGH_REACHABLE:
        arp_send(e, w, n.port, ARP_REQUEST, src, n.mac, n.ip, n.mac)   # unicast refresh
    else:
        arp_send(e, w, n.port, ARP_REQUEST, src, ZERO_MAC, n.ip, BCAST)

cdef inline void neigh_share(engine_t *e, worker_t *w, neigh_t *n) noexcept nogil:
    """Tell the other workers what this one learned (their tables are their own)."""
    cdef msg_t msg
    cdef uint16_t i
    if e.nworkers < 2:
        return
    memset(&msg, 0, sizeof(msg))
    msg.type = MSG_NEIGH_LEARN
    msg.b = n.ip
    msg.port = n.port
    mac_copy(msg.mac, n.mac)
    for i in range(e.nworkers):
        if i != w.id and rte_ring_enqueue_elem(e.workers[i].ring, &msg, MSG_SIZE) != 0:
            w.reasons[R_MSG_RING_FULL] += 1

cdef inline void neigh_output(engine_t *e, worker_t *w, uint8_t port, uint32_t nexthop,
                              uint32_t src, rte_mbuf *m) noexcept nogil:
    """Send an IPv4 packet (Ethernet header room included) to nexthop on port,
    resolving it with ARP first when needed; to a tunnel interface, in its outer header
    along the route to its remote end."""
    cdef neigh_t *n
    cdef uint64_t now
    cdef route_t *r
    if e.ports[port].kind == PORT_TUNNEL:
        r = tunnel_output(e, w, port, m)
        if r == NULL:
            return
        src = e.ports[port].tun_local
        nexthop = r.gw if r.gw else e.ports[port].tun_remote
        port = r.port
    n = neigh_find(w, nexthop)
    if n != NULL and n.state >= NEIGH_REACHABLE:
        eth_fill(e, m, n.port, n.mac, ETHER_TYPE_IPV4)
        tx_port(e, w, n.port, m)
        if n.state == NEIGH_REACHABLE:
            now = rte_rdtsc()
            # half-way through its life a used entry is refreshed, at most once a second
            if now - n.updated > e.neigh_timeout / 2 and now - n.probed > e.tsc_hz:
                neigh_probe(e, w, n, src)
        return
    if n == NULL:
        n = neigh_insert(w, nexthop)
        if n == NULL:
            drop(w, m, R_NEIGH_TABLE_FULL)
            return
        n.state = NEIGH_INCOMPLETE
        n.port = port
        n.updated = rte_rdtsc()
        neigh_probe(e, w, n, src)
    if n.npending >= NEIGH_PENDING:
        drop(w, m, R_NEIGH_QUEUE_FULL)
        return
    n.pending[n.npending] = m
    n.npending += 1

cdef inline void neigh_timer(engine_t *e, worker_t *w, uint64_t now) noexcept nogil:
    """Once a second: retry or give up unresolved entries, expire old learned ones."""
    cdef uint32_t i = 0
    cdef neigh_t *n
    while i <= w.neigh_mask:
        n = &w.neigh[i]
        if n.state == NEIGH_INCOMPLETE and now - n.probed >= e.tsc_hz:
            if n.probes >= NEIGH_MAX_PROBES:
                neigh_remove(w, n, R_NEIGH_UNRESOLVED)
                continue        # slot i now holds a shifted entry: look again
            neigh_probe(e, w, n, 0)
        elif n.state == NEIGH_REACHABLE and now - n.updated > e.neigh_timeout:
            neigh_remove(w, n, R_NEIGH_UNRESOLVED)
            continue
        i += 1
