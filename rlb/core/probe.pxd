# The kni -> port path, and on it the health probes: a frame the kernel sends on
# <port>.kni to the port's own MAC, from one of the data plane's own addresses, is a
# probe (rlb.health.path routes it so, through a gateway whose permanent neighbour entry
# is that MAC). The data plane takes it along its real server's data path: routed to
# RIP:port (FNAT, NAT), or, to a VIP, through the transmit of the mode of the real
# server its local port names (DR: to the server's MAC; Tunnel: inside IPIP).
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from libc.string cimport memset
from rlb.core.dpdk.mbuf cimport rte_mbuf
from rlb.core.dpdk.ethdev cimport rte_ether_hdr
from rlb.core.dpdk.net cimport rte_ipv4_hdr, rte_be_to_cpu_16, rte_be_to_cpu_32
from rlb.core.types cimport *
from rlb.core.packet cimport (tx_port, drop, eth_hdr, ip_hdr, ETH_HLEN, ETHER_TYPE_IPV4,
                              IPPROTO_ICMP)
from rlb.core.route cimport route_lookup
from rlb.core.neigh cimport neigh_output
from rlb.core.lb cimport IPPROTO_TCP, IPPROTO_UDP, ICMP_ECHO, vip_known
from rlb.core.ipv4 cimport is_own, IP_MF_OFFSET_MASK


cdef inline int mac_is(const uint8_t *a, const uint8_t *b) noexcept nogil:
    cdef int i
    for i in range(6):
        if a[i] != b[i]:
            return 0
    return 1


cdef inline void kni_output(engine_t *e, worker_t *w, uint8_t port, rte_mbuf *m) noexcept nogil:
    """A frame the kernel sent on the port's kni: out of the port as it is (ARP, OSPF,
    VRRP, ssh answers), unless it is a probe. Not the packet fast path: one MAC compare."""
    cdef rte_ether_hdr *eh
    w.pstats[port][PORT_FROM_KNI] += 1
    if m.data_len >= ETH_HLEN:
        eh = eth_hdr(m)
        if rte_be_to_cpu_16(eh.ether_type) == ETHER_TYPE_IPV4 and \
                mac_is(eh.dst_addr.addr_bytes, e.ports[port].mac):
            probe_output(e, w, port, m)
            return
    tx_port(e, w, port, m)


cdef inline uint16_t probe_lport(rte_mbuf *m, rte_ipv4_hdr *ip, uint16_t hl,
                                 uint16_t tot) noexcept nogil:
    """The probe's local port: TCP/UDP source port, ICMP echo identifier; 0 for none
    (a later fragment, a header that does not fit, another protocol)."""
    cdef uint8_t *l4 = <uint8_t *>ip + hl
    if rte_be_to_cpu_16(ip.fragment_offset) & IP_MF_OFFSET_MASK or hl + 8 > tot or \
            ETH_HLEN + hl + 8 > m.data_len:
        return 0
    if ip.next_proto_id == IPPROTO_TCP or ip.next_proto_id == IPPROTO_UDP:
        return rte_be_to_cpu_16((<uint16_t *>l4)[0])
    if ip.next_proto_id == IPPROTO_ICMP and l4[0] == ICMP_ECHO:
        return rte_be_to_cpu_16((<uint16_t *>l4)[2])
    return 0


cdef inline void probe_output(engine_t *e, worker_t *w, uint8_t port, rte_mbuf *m) noexcept nogil:
    """Send a frame of the kernel's addressed to our own MAC: a probe from one of our
    addresses goes to its real server as its mode's packets do; one from another
    source is not ours to route and leaves as it came (as before probes existed)."""
    cdef rte_ipv4_hdr *ip
    cdef uint16_t hl, tot, lport
    cdef uint32_t src, dst, slot
    cdef dest_t *d
    cdef route_t *r
    cdef conn_t c
    if m.data_len < ETH_HLEN + 20:
        drop(w, m, R_TRUNCATED)
        return
    ip = ip_hdr(m)
    hl = (ip.version_ihl & 0xf) * 4
    if (ip.version_ihl >> 4) != 4 or hl < 20 or ETH_HLEN + hl > m.data_len:
        drop(w, m, R_IP_HDRLEN)
        return
    tot = rte_be_to_cpu_16(ip.total_length)
    if tot < hl or <uint32_t>tot + ETH_HLEN > m.pkt_len:
        drop(w, m, R_IP_TOTLEN)
        return
    src = rte_be_to_cpu_32(ip.src_addr)
    dst = rte_be_to_cpu_32(ip.dst_addr)
    if not is_own(w, src):
        tx_port(e, w, port, m)
        return
    w.pstats[port][PORT_PROBES] += 1
    lport = probe_lport(m, ip, hl, tot)
    slot = <uint32_t>lport - PROBE_PORT_MIN
    if lport >= PROBE_PORT_MIN and slot < e.dest_cap and vip_known(w, dst):
        # to a VIP: only a real server that holds it answers (a probe to RIP:port is
        # routed below, whatever real server its port's slot is now)
        d = &w.dests[slot]
        if d.used and e.modes[d.mode] != NULL and e.modes[d.mode].direct_reply:
            # the mode's own transmit, with the probe as the client of a connection to
            # this real server (DR and Tunnel read its server address and client port)
            memset(&c, 0, sizeof(c))
            c.proto = ip.next_proto_id
            c.caddr = src
            c.laddr = src
            c.cport = lport
            c.lport = lport
            c.vaddr = dst
            c.daddr = d.addr
            c.dport = d.port
            c.dest = slot | (<uint32_t>d.gen << 24)
            c.svc = d.svc
            c.mode = d.mode
            c.cport_in = port
            e.modes[d.mode].xmit_in(e, w, &c, m)
            return
    # to RIP:port (FNAT from a local address, NAT from our address toward it): routed
    r = route_lookup(w, dst)
    if r == NULL or r.scope >= SCOPE_HOST:
        drop(w, m, R_NO_ROUTE)
        return
    neigh_output(e, w, r.port, r.gw if r.gw else dst, src, m)
