# The kni -> port path, and on it the health probes: a frame the kernel sends on
# <port>.kni to the port's own MAC, from one of the data plane's own addresses, is a
# probe (rlb.health.path routes it so, through a gateway whose permanent neighbour entry
# is that MAC). The data plane takes it along its real server's data path: routed to
# RIP:port (FNAT, NAT), or, to a VIP, through the transmit of the mode of the real
# server its local port names (DR: to the server's MAC; Tunnel: inside IPIP).
#
# TCP checks have a faster way, with no kernel socket at all: the data plane's own
# prober. The control plane writes a check into engine.probes[slot] and queues the slot
# (engine.probe_todo); worker 0 sends the SYN along the same path (probe_send); the
# worker that gets the answer knows it by its acknowledgement number (the SYN's
# sequence number names the slot and the round), reports it (engine.probe_done), and
# resets the server's half-open connection (tcp_probe_answer). What it costs per check
# is a frame built and one parsed, on a worker; the kernel's connect() took ~100 us of
# the daemon's thread, asyncio's bookkeeping twice that (bench/health.py).
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from libc.string cimport memset
from rlb.core.dpdk.eal cimport rte_rdtsc
from rlb.core.dpdk.mbuf cimport rte_mbuf, rte_pktmbuf_alloc, rte_pktmbuf_free
from rlb.core.dpdk.ring cimport rte_ring_enqueue_elem
from rlb.core.dpdk.ethdev cimport rte_ether_hdr
from rlb.core.dpdk.net cimport (rte_ipv4_hdr, rte_tcp_hdr, rte_ipv4_udptcp_cksum,
                                rte_be_to_cpu_16, rte_be_to_cpu_32, rte_cpu_to_be_16,
                                rte_cpu_to_be_32)
from rlb.core.types cimport *
from rlb.core.packet cimport (tx_port, drop, eth_hdr, ip_hdr, ip_set_csum, mac_eq, ETH_HLEN,
                              ETHER_TYPE_IPV4, IPPROTO_ICMP, IP_MF_OFFSET_MASK)
from rlb.core.route cimport route_lookup, is_own
from rlb.core.neigh cimport neigh_output
from rlb.core.lb cimport IPPROTO_TCP, IPPROTO_UDP, ICMP_ECHO, vip_known

cdef enum:
    TH_FIN_ = 0x01
    TH_SYN_ = 0x02
    TH_RST_ = 0x04
    TH_ACK_ = 0x10
    PROBE_TTL = 64
    PROBE_MSS = 1460
    SYN_LEN = 20 + 24          # IP + TCP with the MSS option
    RST_LEN = 20 + 20
    IP_DF = 0x4000

cdef inline void kni_output(engine_t *e, worker_t *w, uint8_t port, rte_mbuf *m) noexcept nogil:
    """A frame the kernel sent on the port's kni: out of the port as it is (ARP, OSPF,
    VRRP, ssh answers), unless it is a probe. Not the packet fast path: one MAC compare."""
    cdef rte_ether_hdr *eh
    w.pstats[port][PORT_FROM_KNI] += 1
    if e.ports[port].kind == PORT_TUNNEL:
        neigh_output(e, w, port, 0, 0, m)      # in its outer header, or dropped
        return
    if m.data_len >= ETH_HLEN:
        eh = eth_hdr(m)
        if rte_be_to_cpu_16(eh.ether_type) == ETHER_TYPE_IPV4 and \
                mac_eq(eh.dst_addr.addr_bytes, e.ports[port].mac):
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
    # to a VIP: only a real server that holds it answers, the one the port's slot names
    # (a probe to RIP:port is routed, whatever real server its port's slot is now)
    if not (lport >= PROBE_PORT_MIN and slot < e.dest_cap and vip_known(w, dst)):
        slot = NONE32
    probe_route(e, w, port, m, ip.next_proto_id, src, lport, dst, slot)


cdef inline void probe_route(engine_t *e, worker_t *w, uint8_t port, rte_mbuf *m,
                             uint8_t proto, uint32_t src, uint16_t lport, uint32_t dst,
                             uint32_t slot) noexcept nogil:
    """A probe from our address src:lport on its way to dst: through the transmit of the
    mode of real server `slot` when that mode's servers hold the VIP (DR, Tunnel), else
    routed (FNAT from a local address, NAT from our address toward the server)."""
    cdef dest_t *d
    cdef route_t *r
    cdef conn_t c
    if slot != NONE32:
        d = &w.dests[slot]
        if d.used and e.modes[d.mode] != NULL and e.modes[d.mode].direct_reply:
            # the mode's own transmit, with the probe as the client of a connection to
            # this real server (DR and Tunnel read its server address and client port)
            memset(&c, 0, sizeof(c))
            c.proto = proto
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
    r = route_lookup(w, dst)
    if r == NULL or r.scope >= SCOPE_HOST:
        drop(w, m, R_NO_ROUTE)
        return
    neigh_output(e, w, r.port, r.gw if r.gw else dst, src, m)


cdef inline void tcp_probe_fill(rte_mbuf *m, uint32_t src, uint32_t dst, uint16_t sport,
                                uint16_t dport, uint32_t seq, uint32_t ack,
                                uint8_t flags) noexcept nogil:
    """Write a TCP segment with no payload (network order for the wire, host order in):
    a SYN with the MSS option, or a bare reset. The Ethernet addresses are the
    transmit's."""
    cdef uint16_t l3 = SYN_LEN if flags & TH_SYN_ else RST_LEN
    cdef rte_ipv4_hdr *ip = ip_hdr(m)
    cdef rte_tcp_hdr *th = <rte_tcp_hdr *>(<uint8_t *>ip + 20)
    cdef uint8_t *opt = <uint8_t *>th + 20
    m.data_len = ETH_HLEN + l3
    m.pkt_len = m.data_len
    eth_hdr(m).ether_type = rte_cpu_to_be_16(ETHER_TYPE_IPV4)
    memset(ip, 0, l3)
    ip.version_ihl = 0x45
    ip.total_length = rte_cpu_to_be_16(l3)
    ip.fragment_offset = rte_cpu_to_be_16(IP_DF)
    ip.time_to_live = PROBE_TTL
    ip.next_proto_id = IPPROTO_TCP
    ip.src_addr = rte_cpu_to_be_32(src)
    ip.dst_addr = rte_cpu_to_be_32(dst)
    ip_set_csum(ip)
    th.src_port = rte_cpu_to_be_16(sport)
    th.dst_port = rte_cpu_to_be_16(dport)
    th.sent_seq = rte_cpu_to_be_32(seq)
    th.recv_ack = rte_cpu_to_be_32(ack)
    th.tcp_flags = flags
    if flags & TH_SYN_:
        th.data_off = 6 << 4
        th.rx_win = rte_cpu_to_be_16(65535)
        opt[0] = 2                  # MSS (RFC 9293 3.2)
        opt[1] = 4
        opt[2] = PROBE_MSS >> 8
        opt[3] = PROBE_MSS & 0xff
    else:
        th.data_off = 5 << 4
    th.cksum = rte_ipv4_udptcp_cksum(ip, th)


cdef inline void probe_send(engine_t *e, worker_t *w, uint32_t slot) noexcept nogil:
    """Send the SYN of the check queued in `slot` (worker 0, from engine.probe_todo).
    A slot cancelled meanwhile (seq 0), or no mbuf: nothing is sent, and the check
    times out as one whose SYN was lost."""
    cdef probe_t *p
    cdef uint32_t seq
    cdef rte_mbuf *m
    if slot >= e.probe_cap:
        return
    p = &e.probes[slot]
    seq = p.seq
    if seq == 0:
        return
    m = rte_pktmbuf_alloc(e.pool)
    if m == NULL:
        w.reasons[R_NO_MBUF] += 1
        return
    tcp_probe_fill(m, p.saddr, p.daddr, p.sport, p.dport, seq, 0, TH_SYN_)
    p.sent_tsc = rte_rdtsc()
    w.stats[WORKER_PROBES_SENT] += 1
    probe_route(e, w, p.port, m, IPPROTO_TCP, p.saddr, p.sport, p.daddr, p.dest)


cdef inline int tcp_probe_answer(engine_t *e, worker_t *w, rte_mbuf *m, rte_ipv4_hdr *ip,
                                 uint16_t hl, uint32_t dst) noexcept nogil:
    """A TCP segment to one of our addresses: 1 if it answers a SYN of the prober (then
    it is consumed: reported, and a SYN-ACK turned into the reset that closes the
    server's half-open connection), 0 for the kernel's. Whatever worker it reaches."""
    cdef rte_tcp_hdr *th = <rte_tcp_hdr *>(<uint8_t *>ip + hl)
    cdef uint16_t lport, rport
    cdef uint32_t ack, seq, slot, src
    cdef uint8_t flags
    cdef probe_t *p
    cdef probe_done_t done
    if ETH_HLEN + hl + 20 > m.data_len:
        return 0
    lport = rte_be_to_cpu_16(th.dst_port)
    if lport < PROBE_PORT_MIN or lport >= PROBE_PORT_MIN + PROBE_PORTS:
        return 0
    flags = th.tcp_flags
    if flags & TH_RST_:
        if not flags & TH_ACK_:
            return 0
    elif (flags & (TH_SYN_ | TH_ACK_ | TH_FIN_)) != (TH_SYN_ | TH_ACK_):
        return 0
    ack = rte_be_to_cpu_32(th.recv_ack)
    seq = ack - 1
    slot = (seq ^ e.probe_secret) >> PROBE_ROUND_BITS
    if seq == 0 or slot >= e.probe_cap:
        return 0
    p = &e.probes[slot]
    src = rte_be_to_cpu_32(ip.src_addr)
    rport = rte_be_to_cpu_16(th.src_port)
    if p.seq != seq or p.saddr != dst or p.daddr != src or p.sport != lport or p.dport != rport:
        return 0                    # a late answer, or the kernel's own connection
    done.slot = slot
    done.seq = seq
    done.kind = PROBE_REFUSED if flags & TH_RST_ else PROBE_OPEN
    done.pad = 0
    done.tsc = rte_rdtsc()
    w.stats[WORKER_PROBE_ANSWERS] += 1
    if rte_ring_enqueue_elem(e.probe_done, &done, sizeof(probe_done_t)) != 0:
        w.reasons[R_PROBE_ANSWERS_FULL] += 1
    if flags & TH_RST_:
        rte_pktmbuf_free(m)
        return 1
    # the SYN-ACK becomes our reset (RFC 9293 3.10.7.3: its sequence number is the
    # acknowledgement we got), back along the probe's path
    tcp_probe_fill(m, dst, src, lport, rport, ack, 0, TH_RST_)
    probe_route(e, w, p.port, m, IPPROTO_TCP, dst, lport, src, p.dest)
    return 1
