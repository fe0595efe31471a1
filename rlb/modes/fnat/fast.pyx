# Full-NAT in C: client <-> VIP on one side, LIP:lport <-> real server on the other,
# with the client's address carried to the real server in TCP option 254 (TOA) and,
# for UDP, in IPv4 option 31 of a flow's first datagrams (DPVS UOA, "ipo" mode).
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memmove, memcpy
from rlb.core.dpdk.mbuf cimport rte_mbuf, rte_pktmbuf_prepend
from rlb.core.dpdk.eal cimport rte_rdtsc
from rlb.core.dpdk.net cimport (rte_ipv4_hdr, rte_tcp_hdr, rte_ipv4_udptcp_cksum,
                                rte_cpu_to_be_16, rte_cpu_to_be_32, rte_be_to_cpu_16,
                                rte_be_to_cpu_32)
from rlb.core.types cimport *
from rlb.core.packet cimport ip_hdr, csum_replace4, ETH_HLEN
from rlb.core.ipv4 cimport route_lookup
from rlb.core.conn cimport tuple_in_use, TH_SYN, TH_ACK
from rlb.core.xmit cimport (ip_hlen, rewrite, route_out, lport_base, lport_count, lport_nth,
                            mode_capsule, IPPROTO_TCP, IPPROTO_UDP, LPORT_TRIES)

cdef enum:
    TCPOPT_TOA = 254           # LVS/DPVS layout: kind, len 8, port, IPv4 address
    TCPOLEN_TOA = 8
    IPOPT_UOA = 31             # DPVS uoa.h: copied 0, class 0, number 31; len 8, port, IPv4
    IPOLEN_UOA = 8
    # CONN_F_UOA_ONE/DONE (types.pxd): 3 datagrams (DPVS's default uoa_max_trail) or a
    # reply from the real server (DPVS's "acked") end the option


cdef int fnat_conn_init(engine_t *e, worker_t *w, svc_t *s, dest_t *d, conn_t *c,
                        rte_mbuf *m) noexcept nogil:
    """Choose LIP:lport with lport % workers == this worker, so that the real server's
    replies can be steered to us, and the server-side tuple unused. The local addresses
    take new flows in turn (DPVS's laddr round robin): picking one from the client's
    port would leave half of them unused, since Linux clients connect() from even ports."""
    cdef uint32_t base, count, k, i, n, first, idx
    cdef int tries
    cdef uint16_t lport
    cdef laddr_t *la
    if s.nladdrs == 0:
        return -1
    base = lport_base(e, w)
    count = lport_count(e, base)
    n = s.nladdrs
    first = s.laddr_cursor % n
    s.laddr_cursor = first + 1
    for i in range(n):
        idx = (first + i) % n          # the next in turn; if its ports are taken, the others
        la = &s.laddrs[idx]
        for tries in range(LPORT_TRIES):
            k = la.cursor % count
            la.cursor = k + 1
            lport = lport_nth(e, base, k)
            if not tuple_in_use(w, c.proto, c.daddr, c.dport, la.addr, lport):
                c.laddr = la.addr
                c.lport = lport
                c.laddr_idx = <uint8_t>idx
                la.used += 1
                return 0
        la.miss += 1
    return -1


cdef void fnat_conn_free(engine_t *e, worker_t *w, conn_t *c) noexcept nogil:
    cdef svc_t *s = &w.svcs[c.svc]
    if c.laddr_idx < s.nladdrs and s.laddrs[c.laddr_idx].addr == c.laddr and \
            s.laddrs[c.laddr_idx].used > 0:
        s.laddrs[c.laddr_idx].used -= 1


cdef int toa_insert(rte_mbuf *m, uint16_t hl, uint32_t caddr, uint16_t cport,
                    uint16_t mtu) noexcept nogil:
    """Insert option 254 after the TCP options: the headers move 8 bytes forward into
    the mbuf's headroom. Not when the options are full or the packet would pass the MTU."""
    cdef rte_ipv4_hdr *ip = ip_hdr(m)
    cdef rte_tcp_hdr *th = <rte_tcp_hdr *>(<uint8_t *>ip + hl)
    cdef uint16_t thl = (th.data_off >> 4) * 4
    cdef uint16_t tot = rte_be_to_cpu_16(ip.total_length)
    cdef uint8_t *opt
    cdef uint8_t *start
    if thl + TCPOLEN_TOA > 60 or tot + TCPOLEN_TOA > mtu or m.nb_segs != 1:
        return -1
    start = <uint8_t *>rte_pktmbuf_prepend(m, TCPOLEN_TOA)
    if start == NULL:
        return -1
    memmove(start, start + TCPOLEN_TOA, ETH_HLEN + hl + thl)
    ip = ip_hdr(m)
    th = <rte_tcp_hdr *>(<uint8_t *>ip + hl)
    opt = <uint8_t *>th + thl
    opt[0] = TCPOPT_TOA
    opt[1] = TCPOLEN_TOA
    (<uint16_t *>(opt + 2))[0] = rte_cpu_to_be_16(cport)
    (<uint32_t *>(opt + 4))[0] = rte_cpu_to_be_32(caddr)
    th.data_off = <uint8_t>(((thl + TCPOLEN_TOA) // 4) << 4)
    ip.total_length = rte_cpu_to_be_16(tot + TCPOLEN_TOA)
    return 0


cdef int uoa_insert(rte_mbuf *m, uint32_t caddr, uint16_t cport, uint16_t mtu) noexcept nogil:
    """Insert IPv4 option 31 after the 20-byte IP header (packets with options went to
    kni before reaching a mode): Ethernet and IP headers move 8 bytes forward into the
    headroom. Not when the packet would pass the MTU or spans segments. The UDP checksum
    does not cover IP options (RFC 768 pseudo-header); the IP checksum is redone later."""
    cdef rte_ipv4_hdr *ip = ip_hdr(m)
    cdef uint16_t tot = rte_be_to_cpu_16(ip.total_length)
    cdef uint8_t *opt
    cdef uint8_t *start
    if (ip.version_ihl & 0xf) != 5 or tot + IPOLEN_UOA > mtu or m.nb_segs != 1:
        return -1
    start = <uint8_t *>rte_pktmbuf_prepend(m, IPOLEN_UOA)
    if start == NULL:
        return -1
    memmove(start, start + IPOLEN_UOA, ETH_HLEN + 20)
    ip = ip_hdr(m)
    opt = <uint8_t *>ip + 20
    opt[0] = IPOPT_UOA
    opt[1] = IPOLEN_UOA
    (<uint16_t *>(opt + 2))[0] = rte_cpu_to_be_16(cport)
    (<uint32_t *>(opt + 4))[0] = rte_cpu_to_be_32(caddr)
    ip.version_ihl = (ip.version_ihl & 0xf0) | ((20 + IPOLEN_UOA) // 4)
    ip.total_length = rte_cpu_to_be_16(tot + IPOLEN_UOA)
    return 0


cdef inline void l4_checksum(rte_mbuf *m, uint16_t hl) noexcept nogil:
    """The whole TCP checksum again, after TOA changed the segment's length."""
    cdef rte_ipv4_hdr *ip = ip_hdr(m)
    cdef uint16_t *ck = <uint16_t *>(<uint8_t *>ip + hl + 16)
    ck[0] = 0
    ck[0] = rte_ipv4_udptcp_cksum(ip, <uint8_t *>ip + hl)


cdef extern from *:
    """
    /* RFC 6528: ISN = M + F(tuple), M a 4-microsecond clock: a tuple used again gets a
       higher ISN than last time, so a real server still in TIME_WAIT for it accepts
       the SYN (RFC 1122 4.2.2.13) instead of answering the old connection's ACK. */
    static inline uint32_t rlb_isn(uint32_t saddr, uint16_t sport, uint32_t daddr,
                                   uint16_t dport, uint64_t tsc, uint64_t tsc_hz) {
        uint32_t h = saddr * 0x9E3779B1u ^ daddr * 0x85EBCA77u ^
                     (((uint32_t)sport << 16) | dport) * 0xC2B2AE3Du;
        h ^= h >> 15; h *= 0x2C1B3C6Du; h ^= h >> 12;
        return h + (uint32_t)(tsc / (tsc_hz / 250000));
    }
    """
    uint32_t rlb_isn(uint32_t saddr, uint16_t sport, uint32_t daddr, uint16_t dport,
                     uint64_t tsc, uint64_t tsc_hz) nogil


cdef enum:
    TCPOPT_EOL = 0
    TCPOPT_NOP = 1
    TCPOPT_SACK = 5
    TCPOPT_TIMESTAMP = 8


cdef inline void opt_word(rte_tcp_hdr *th, uint8_t *at, uint32_t delta, int add) noexcept nogil:
    """Move one 32-bit option field (network order, maybe unaligned) by +/-delta,
    keeping the checksum right incrementally."""
    cdef uint32_t old, new
    memcpy(&old, at, 4)
    if add:
        new = rte_cpu_to_be_32(rte_be_to_cpu_32(old) + delta)
    else:
        new = rte_cpu_to_be_32(rte_be_to_cpu_32(old) - delta)
    memcpy(at, &new, 4)
    th.cksum = csum_replace4(th.cksum, old, new)


cdef inline uint8_t *next_option(uint8_t *p, uint8_t *end) noexcept nogil:
    """The option at p or after its no-ops, or NULL at the end or if malformed."""
    while p < end and p[0] == TCPOPT_NOP:
        p += 1
    if p >= end or p[0] == TCPOPT_EOL or p + 1 >= end or p[1] < 2 or p + p[1] > end:
        return NULL
    return p


cdef inline void tcp_options(rte_tcp_hdr *th, conn_t *c, int to_server) noexcept nogil:
    """The options that carry sequence numbers or clocks, mapped like the header:
    to the server, TSval moves to our clock (per flow; RFC 7323 5.4: a real server in
    TIME_WAIT for a reused LIP:lport then sees a newer timestamp, no PAWS reject);
    to the client, TSecr and the SACK blocks go back into the client's numbers."""
    cdef uint8_t *end = <uint8_t *>th + (th.data_off >> 4) * 4
    cdef uint8_t *p = next_option(<uint8_t *>th + 20, end)
    cdef uint8_t k
    while p != NULL:
        if p[0] == TCPOPT_TIMESTAMP and p[1] == 10:
            if to_server:
                opt_word(th, p + 2, c.ts_delta, 1)
            else:
                opt_word(th, p + 6, c.ts_delta, 0)
        elif p[0] == TCPOPT_SACK and not to_server:
            k = 2
            while k + 8 <= p[1]:
                opt_word(th, p + k, c.seq_delta, 0)
                opt_word(th, p + k + 4, c.seq_delta, 0)
                k += 8
        p = next_option(p + p[1], end)


cdef inline uint32_t syn_tsval(rte_tcp_hdr *th) noexcept nogil:
    cdef uint8_t *end = <uint8_t *>th + (th.data_off >> 4) * 4
    cdef uint8_t *p = next_option(<uint8_t *>th + 20, end)
    cdef uint32_t v
    while p != NULL:
        if p[0] == TCPOPT_TIMESTAMP and p[1] == 10:
            memcpy(&v, p + 2, 4)
            return rte_be_to_cpu_32(v)
        p = next_option(p + p[1], end)
    return 0


cdef inline void seq_in(engine_t *e, conn_t *c, rte_mbuf *m, uint16_t hl,
                        uint8_t flags) noexcept nogil:
    """Client -> server: at the first SYN a fresh ISN (RFC 6528 clock; DPVS
    tcp_in_init_seq) and a millisecond timestamp clock of our own; then every
    segment's sequence number and TSval moved by them."""
    cdef rte_tcp_hdr *th = <rte_tcp_hdr *>(<uint8_t *>ip_hdr(m) + hl)
    cdef uint32_t old = th.sent_seq
    cdef uint64_t now
    if (flags & (TH_SYN | TH_ACK)) == TH_SYN and not (c.flags & CONN_F_SEQ):
        now = rte_rdtsc()
        c.seq_delta = rlb_isn(c.laddr, c.lport, c.daddr, c.dport, now,
                              e.tsc_hz) - rte_be_to_cpu_32(old)
        c.ts_delta = <uint32_t>(now // (e.tsc_hz // 1000)) - syn_tsval(th)
        c.flags |= CONN_F_SEQ
    th.sent_seq = rte_cpu_to_be_32(rte_be_to_cpu_32(old) + c.seq_delta)
    th.cksum = csum_replace4(th.cksum, old, th.sent_seq)
    tcp_options(th, c, 1)


cdef inline void seq_out(conn_t *c, rte_mbuf *m, uint16_t hl) noexcept nogil:
    """Server -> client: acknowledgement, TSecr and SACK blocks back to the client's."""
    cdef rte_tcp_hdr *th = <rte_tcp_hdr *>(<uint8_t *>ip_hdr(m) + hl)
    cdef uint32_t old = th.recv_ack
    if not (c.flags & CONN_F_SEQ):
        return
    th.recv_ack = rte_cpu_to_be_32(rte_be_to_cpu_32(old) - c.seq_delta)
    th.cksum = csum_replace4(th.cksum, old, th.recv_ack)
    tcp_options(th, c, 0)


cdef void fnat_xmit_in(engine_t *e, worker_t *w, conn_t *c, rte_mbuf *m) noexcept nogil:
    cdef rte_ipv4_hdr *ip = ip_hdr(m)
    cdef uint16_t hl = ip_hlen(ip)
    cdef uint8_t flags
    cdef int full = 0
    cdef route_t *r
    if c.proto == IPPROTO_TCP:
        flags = (<rte_tcp_hdr *>(<uint8_t *>ip + hl)).tcp_flags
        r = route_lookup(w, c.daddr)
        if (flags & (TH_SYN | TH_ACK)) == TH_SYN:
            # the SYN: user space on the RS can read it back (TCP_SAVED_SYN, rlb.toa)
            if toa_insert(m, hl, c.caddr, c.cport, r.mtu if r != NULL else 1500) == 0:
                full = 1
                c.flags |= CONN_F_TOA_SYN
        elif (flags & TH_ACK) and not (c.flags & CONN_F_TOA_ACK) and \
                c.state == CS_ESTABLISHED:
            # the first ACK after the handshake: what the LVS toa kernel module reads
            c.flags |= CONN_F_TOA_ACK
            if toa_insert(m, hl, c.caddr, c.cport, r.mtu if r != NULL else 1500) == 0:
                full = 1
        seq_in(e, c, m, hl, flags)
    elif c.proto == IPPROTO_UDP and (c.flags & CONN_F_UOA_DONE) != CONN_F_UOA_DONE:
        # the first datagrams that fit carry the client (rlb.uoa reads them on the RS)
        r = route_lookup(w, c.daddr)
        if uoa_insert(m, c.caddr, c.cport, r.mtu if r != NULL else 1500) == 0:
            c.flags += CONN_F_UOA_ONE
            hl += IPOLEN_UOA
    rewrite(m, hl, c.laddr, c.lport, c.daddr, c.dport)
    if full:
        l4_checksum(m, hl)
    route_out(e, w, m, c.daddr, c.laddr)


cdef void fnat_xmit_out(engine_t *e, worker_t *w, conn_t *c, rte_mbuf *m) noexcept nogil:
    cdef rte_ipv4_hdr *ip = ip_hdr(m)
    cdef uint16_t hl = ip_hlen(ip)
    if c.proto == IPPROTO_UDP:
        c.flags |= CONN_F_UOA_DONE      # the real server answered: it has the client
    elif c.proto == IPPROTO_TCP:
        seq_out(c, m, hl)
    rewrite(m, hl, c.vaddr, c.vport, c.caddr, c.cport)
    route_out(e, w, m, c.caddr, c.vaddr)


cdef mode_ops_t FNAT_OPS


def ops():
    """The capsule the core reads once: FNAT's C entry points."""
    return mode_capsule(&FNAT_OPS, fnat_conn_init, fnat_xmit_in, fnat_xmit_out,
                        fnat_conn_free, 0)
