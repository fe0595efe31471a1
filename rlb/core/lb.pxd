# Virtual-service dispatch on a worker: find the connection or schedule a new one, keep
# the LVS state and timers, and hand the packet to the connection's forwarding mode.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t
from libc.string cimport memset
from rlb.core.dpdk.eal cimport rte_rdtsc
from rlb.core.dpdk.mbuf cimport rte_mbuf
from rlb.core.dpdk.ring cimport rte_ring_enqueue
from rlb.core.route cimport route_lookup
from rlb.core.dpdk.net cimport (rte_ipv4_hdr, rte_tcp_hdr, rte_be_to_cpu_16, rte_be_to_cpu_32)
from rlb.core.types cimport *
from rlb.core.packet cimport drop, ETH_HLEN
from rlb.core.conn cimport *
from rlb.core.sync cimport sync_emit

cdef enum:
    IPPROTO_ICMP = 1
    IPPROTO_TCP = 6
    IPPROTO_UDP = 17
    ICMP_ECHOREPLY = 0
    ICMP_ECHO = 8

cdef inline uint32_t svc_slot_hash(uint8_t proto, uint32_t addr, uint16_t port) noexcept nogil:
    cdef uint32_t h = (addr * <uint32_t>0x9E3779B1u) ^ ((<uint32_t>port << 8 | proto) * <uint32_t>0x85EBCA77u)
    return h ^ (h >> 16)

cdef inline svc_t *svc_find(worker_t *w, uint8_t proto, uint32_t addr, uint16_t port) noexcept nogil:
    cdef uint32_t i = svc_slot_hash(proto, addr, port) & w.svc_hash_mask
    cdef uint32_t v
    cdef svc_t *s
    while True:
        v = w.svc_hash[i]
        if v == 0:
            return NULL
        s = &w.svcs[v - 1]
        if s.vaddr == addr and s.vport == port and s.proto == proto:
            return s
        i = (i + 1) & w.svc_hash_mask

cdef inline int vip_known(worker_t *w, uint32_t addr) noexcept nogil:
    cdef uint32_t i = (addr * <uint32_t>0x9E3779B1u >> 8) & w.vip_mask
    while w.vips[i] != 0:
        if w.vips[i] == addr:
            return 1
        i = (i + 1) & w.vip_mask
    return 0

cdef inline uint32_t natdest_hash(uint32_t addr, uint16_t port) noexcept nogil:
    cdef uint32_t h = (addr * <uint32_t>0x9E3779B1u) ^ (<uint32_t>port * <uint32_t>0x85EBCA77u)
    return h ^ (h >> 15)

cdef inline dest_t *natdest_find(worker_t *w, uint32_t addr, uint16_t port) noexcept nogil:
    """A real server of a service whose workers are picked by the client (NAT), or whose
    replies must not come through us (DR, Tunnel)."""
    cdef uint32_t i = natdest_hash(addr, port) & w.vip_mask
    cdef dest_t *d
    while w.natdests[i] != 0:
        d = &w.dests[w.natdests[i] - 1]
        if d.addr == addr and d.port == port:
            return d
        i = (i + 1) & w.vip_mask
    return NULL

cdef inline void natdest_add(worker_t *w, uint32_t slot) noexcept nogil:
    cdef dest_t *d = &w.dests[slot]
    cdef uint32_t i
    if natdest_find(w, d.addr, d.port) != NULL:
        return
    i = natdest_hash(d.addr, d.port) & w.vip_mask
    while w.natdests[i] != 0:
        i = (i + 1) & w.vip_mask
    w.natdests[i] = slot + 1

cdef inline void svc_rehash(engine_t *e, worker_t *w) noexcept nogil:
    """Rebuild the service, VIP, match and NAT-server lookups from the slots
    (services change rarely)."""
    cdef uint32_t k, i, j
    cdef svc_t *s
    memset(w.svc_hash, 0, sizeof(uint32_t) * (w.svc_hash_mask + 1))
    memset(w.vips, 0, sizeof(uint32_t) * (w.vip_mask + 1))
    memset(w.natdests, 0, sizeof(uint32_t) * (w.vip_mask + 1))
    w.nmatch = 0
    for k in range(e.svc_cap):
        s = &w.svcs[k]
        if not s.used:
            continue
        for j in range(s.ndests):
            if s.flags & SVC_F_CLIENT_OWNER or e.modes[w.dests[s.dests[j]].mode].direct_reply:
                natdest_add(w, s.dests[j])
        if s.flags & SVC_F_MATCH:
            if w.nmatch < MAX_MATCH_SVCS:
                w.match_slots[w.nmatch] = k
                w.nmatch += 1
            continue
        i = svc_slot_hash(s.proto, s.vaddr, s.vport) & w.svc_hash_mask
        while w.svc_hash[i] != 0:
            i = (i + 1) & w.svc_hash_mask
        w.svc_hash[i] = k + 1
        if not vip_known(w, s.vaddr):
            i = (s.vaddr * <uint32_t>0x9E3779B1u >> 8) & w.vip_mask
            while w.vips[i] != 0:
                i = (i + 1) & w.vip_mask
            w.vips[i] = s.vaddr

cdef inline uint32_t owner_of_client(engine_t *e, uint32_t caddr, uint16_t cport) noexcept nogil:
    """The worker of a client (port 0: of its address, for persistence). NAT keeps the
    client's address and port on both sides, so both directions find the same one."""
    cdef uint32_t h = (caddr * <uint32_t>0x9E3779B1u) ^ (<uint32_t>cport * <uint32_t>0x85EBCA77u)
    return ((h ^ (h >> 15)) >> 8) % e.nworkers

cdef inline svc_t *match_find(engine_t *e, worker_t *w, uint8_t port, uint8_t proto,
                              uint32_t saddr, uint16_t sport, uint32_t daddr,
                              uint16_t dport) noexcept nogil:
    """The first SNAT match service (ipvsadm -H) this packet fits, or NULL."""
    cdef uint16_t k
    cdef svc_t *s
    cdef match_t *mt
    cdef route_t *r
    for k in range(w.nmatch):
        s = &w.svcs[w.match_slots[k]]
        mt = &s.match
        if (mt.proto and mt.proto != proto) or saddr < mt.src_lo or saddr > mt.src_hi or \
                daddr < mt.dst_lo or daddr > mt.dst_hi:
            continue
        if proto != IPPROTO_ICMP and (sport < mt.sport_lo or sport > mt.sport_hi or
                                      dport < mt.dport_lo or dport > mt.dport_hi):
            continue
        if mt.iif and mt.iif != port + 1:
            continue
        if mt.oif:
            r = route_lookup(w, daddr)
            if r == NULL or r.port + 1 != mt.oif:
                continue
        return s
    return NULL

cdef inline int redirect(engine_t *e, worker_t *w, uint16_t owner, uint8_t port,
                         rte_mbuf *m) noexcept nogil:
    """Hand a packet to the worker that owns its connection (ports without flow
    steering spread a flow's two directions over workers: DESIGN.md)."""
    m.port = port              # our port index travels with it
    if rte_ring_enqueue(e.workers[owner].redirect, m) != 0:
        drop(w, m, R_REDIRECT_FULL)
    return 1

# ------------------------------------------------------------------ counters

cdef inline void dest_count(worker_t *w, conn_t *c, int delta) noexcept nogil:
    cdef dest_t *d = &w.dests[c.dest & 0xffffff]
    if d.gen != (c.dest >> 24):
        return
    if c.flags & CONN_F_ACTIVE:
        d.activeconns += delta
    else:
        d.inactconns += delta

cdef inline void dest_failed(engine_t *e, dest_t *d, uint32_t slot) noexcept nogil:
    """One more connection of real server `slot` unanswered or refused (the passive
    check). Each worker keeps its own run; one that an answer on another worker has
    ended since its last failure starts afresh, so the runs the stats add up hold only
    failures after the newest answer (stats.pyx). Only while failing: no answer costs it."""
    cdef uint16_t i
    if d.fails_in_row:
        for i in range(e.nworkers):
            if e.workers[i].dests[slot].answered_tsc > d.failed_tsc:
                d.fails_in_row = 0
                break
    d.fails_in_row += 1
    d.failed_tsc = rte_rdtsc()

cdef inline void dest_answered(engine_t *e, conn_t *c, dest_t *d, uint8_t tcp_flags) noexcept nogil:
    """The first packet from a connection's real server side: an answer, or for TCP a
    reset before any SYN-ACK (refused: nothing listening). Once per connection, so the
    clock read costs nothing per packet."""
    c.flags |= CONN_F_ANSWERED
    if c.proto == IPPROTO_TCP and (tcp_flags & (TH_RST | TH_SYN)) == TH_RST:
        d.stats[DEST_REFUSED] += 1
        dest_failed(e, d, c.dest & 0xffffff)
    else:
        d.stats[DEST_ANSWERED] += 1
        d.fails_in_row = 0
        d.answered_tsc = rte_rdtsc()

cdef inline void dest_unanswered(engine_t *e, worker_t *w, conn_t *c) noexcept nogil:
    """A connection ends and its real server never sent a packet back."""
    cdef dest_t *d = &w.dests[c.dest & 0xffffff]
    if d.gen != (c.dest >> 24):
        return                 # its real server went (or the slot is another's now)
    d.stats[DEST_UNANSWERED] += 1
    dest_failed(e, d, c.dest & 0xffffff)

cdef inline void conn_set_state(engine_t *e, worker_t *w, uint32_t slot, uint8_t state) noexcept nogil:
    cdef conn_t *c = &w.conns[slot]
    cdef uint8_t active = state == CS_ESTABLISHED or state == CS_UDP
    if state == c.state:
        return
    if active != ((c.flags & CONN_F_ACTIVE) != 0):
        dest_count(w, c, -1)
        c.flags ^= CONN_F_ACTIVE
        dest_count(w, c, 1)
    c.state = state
    if e.sync_on and (active or (c.sync & CONN_SYNC_KNOWN)):
        sync_emit(e, w, c, SYNC_STATE)      # the peer learns it once established

cdef inline void conn_free(engine_t *e, worker_t *w, uint32_t slot) noexcept nogil:
    """Forget a connection: out of the hash and the wheel, its mode's resources back."""
    cdef conn_t *c = &w.conns[slot]
    conn_hash_del(w, slot, DIR_IN)
    if not (c.flags & CONN_F_TEMPLATE):
        conn_hash_del(w, slot, DIR_OUT)
        if e.modes[c.mode] != NULL and e.modes[c.mode].conn_free != NULL:
            e.modes[c.mode].conn_free(e, w, c)
        dest_count(w, c, -1)
        if not (c.flags & CONN_F_ANSWERED):
            dest_unanswered(e, w, c)
    if c.sync & CONN_SYNC_KNOWN:
        sync_emit(e, w, c, SYNC_FREE)
    wheel_unlink(w, slot)
    conn_release(w, slot)
    w.ct_stats[CT_EXPIRED] += 1

cdef inline void conn_timer(engine_t *e, worker_t *w) noexcept nogil:
    """One tick: expire what is due in this slot, re-file the rest (lazy timeouts)."""
    cdef uint32_t slot, nxt
    cdef uint16_t ws = w.tick % WHEEL_SLOTS
    slot = w.wheel[ws]
    w.wheel[ws] = NONE32
    while slot != NONE32:
        nxt = w.conns[slot].tnext
        if <int32_t>(w.conns[slot].expires - w.tick) <= 0:
            w.conns[slot].wslot = OFF_WHEEL       # the slot's list was taken whole
            conn_free(e, w, slot)
        else:
            wheel_link(w, slot)
        slot = nxt

# ---------------------------------------------------------------- scheduling

cdef inline uint32_t template_find(worker_t *w, svc_t *s, uint32_t caddr) noexcept nogil:
    cdef uint32_t link = w.conn_hash[conn_hash(w, s.proto, caddr, 0, s.vaddr, s.vport)]
    cdef conn_t *c
    while link != NONE32:
        c = &w.conns[link >> 1]
        if (c.flags & CONN_F_TEMPLATE) and c.caddr == caddr and c.vaddr == s.vaddr and \
                c.vport == s.vport and c.proto == s.proto:
            return link >> 1
        link = c.hnext[link & 1]
    return NONE32

cdef inline uint32_t lb_schedule(engine_t *e, worker_t *w, svc_t *s, uint32_t caddr,
                                 uint16_t cport) noexcept nogil:
    """A dest slot (with generation) for a new flow; persistence first (ipvsadm -p)."""
    cdef uint32_t masked = caddr & s.netmask
    cdef uint32_t t = NONE32
    cdef uint32_t d
    cdef conn_t *c
    if s.flags & SVC_F_PERSISTENT:
        t = template_find(w, s, masked)
        if t != NONE32:
            c = &w.conns[t]
            d = c.dest & 0xffffff
            if w.dests[d].gen == (c.dest >> 24) and (w.dests[d].flags & DEST_F_AVAILABLE):
                conn_set_timeout(w, t, s.timeout * TICKS_PER_SEC)
                return c.dest
            conn_free(e, w, t)
            t = NONE32
    d = e.scheds[s.sched].select(e, w, s, caddr, cport)
    if d == NONE32:
        return NONE32
    d = d | (<uint32_t>w.dests[d].gen << 24)
    if s.flags & SVC_F_PERSISTENT:
        t = conn_alloc(w)
        if t != NONE32:
            c = &w.conns[t]
            c.flags = CONN_F_TEMPLATE
            c.proto = s.proto
            c.caddr = masked
            c.vaddr = s.vaddr
            c.vport = s.vport
            c.dest = d
            c.expires = w.tick + s.timeout * TICKS_PER_SEC
            conn_hash_add(w, t, DIR_IN)
            wheel_link(w, t)
    return d

cdef inline int lb_adopts(engine_t *e, worker_t *w, svc_t *s, uint32_t saddr,
                          uint16_t sport, uint8_t flags) noexcept nogil:
    """A TCP segment other than a SYN with no connection: a flow that began elsewhere
    (ECMP moved it from another LB, or this one restarted). A service whose scheduler
    follows a table of the client's hash (sh, mh, conhash: every LB with the same real
    servers builds the same table, rlb/sched/builtin.py) takes it on when the server
    the table names is reached by DR or Tunnel: that server holds the flow, and its
    answers never pass us. Other modes rewrite what the server saw at the SYN (FNAT's
    local port and sequence numbers, NAT's tuple): their flows cannot move, as in LVS.
    Only a plain ACK (with or without data) opens one: a reset or a FIN of a flow we
    never saw is dropped, as before."""
    cdef uint32_t d
    if s.table == NULL or (flags & (TH_SYN | TH_RST | TH_FIN)) or not (flags & TH_ACK):
        return 0
    d = e.scheds[s.sched].select(e, w, s, saddr, sport)
    return d != NONE32 and e.modes[w.dests[d].mode] != NULL and \
        e.modes[w.dests[d].mode].direct_reply

cdef inline uint32_t lb_new_conn(engine_t *e, worker_t *w, svc_t *s, uint8_t port, rte_mbuf *m,
                                 uint8_t proto, uint32_t saddr, uint16_t sport, uint32_t daddr,
                                 uint16_t dport) noexcept nogil:
    cdef uint32_t d = lb_schedule(e, w, s, saddr, sport)
    cdef uint32_t slot
    cdef conn_t *c
    cdef dest_t *dest
    if d == NONE32:
        s.stats[SVC_NO_DEST] += 1
        drop(w, m, R_NO_DEST)
        return NONE32
    slot = conn_alloc(w)
    if slot == NONE32:
        drop(w, m, R_CONN_FULL)
        return NONE32
    dest = &w.dests[d & 0xffffff]
    c = &w.conns[slot]
    c.proto = proto            # a match service may take several protocols
    c.caddr = saddr
    c.cport = sport
    c.vaddr = daddr            # the VIP, or (SNAT) the destination the client asked for
    c.vport = dport
    c.laddr = saddr            # modes that rewrite the source (FNAT) change these
    c.lport = sport
    c.daddr = dest.addr
    c.dport = dest.port
    c.dest = d
    c.svc = <uint16_t>(s - w.svcs)
    c.mode = dest.mode
    c.cport_in = port
    c.state = CS_NONE if proto == IPPROTO_TCP else CS_UDP
    if e.modes[c.mode] == NULL or e.modes[c.mode].conn_init(e, w, s, dest, c, m) < 0:
        conn_release(w, slot)
        if e.modes[c.mode] == NULL:
            drop(w, m, R_NO_DEST)
        else:
            s.stats[SVC_NO_LADDR] += 1
            drop(w, m, R_NO_LADDR)
        return NONE32
    if e.modes[c.mode].direct_reply:
        c.flags |= CONN_F_ANSWERED       # its answers bypass us: the passive check is n/a
    conn_hash_add(w, slot, DIR_IN)
    conn_hash_add(w, slot, DIR_OUT)
    c.expires = w.tick + e.timeouts[c.state]
    wheel_link(w, slot)
    if c.state == CS_UDP:
        c.flags |= CONN_F_ACTIVE
        if e.sync_on:
            sync_emit(e, w, c, SYNC_STATE)
    dest_count(w, c, 1)
    dest.conns += 1
    s.stats[SVC_CONNS] += 1
    w.ct_stats[CT_CREATED] += 1
    return slot

# ------------------------------------------------------------------- dispatch

cdef inline int lb_input(engine_t *e, worker_t *w, uint8_t port, rte_mbuf *m,
                         rte_ipv4_hdr *ip, uint16_t hl, uint16_t tot,
                         int sapool_dst, int own_dst) noexcept nogil:
    """Return 1 when the packet belonged to a service or connection (consumed)."""
    cdef uint8_t proto = ip.next_proto_id
    cdef uint8_t *l4 = <uint8_t *>ip + hl
    cdef uint16_t sport, dport, owner
    cdef uint32_t saddr, daddr, slot
    cdef uint8_t dir, flags = 0
    cdef svc_t *s
    cdef conn_t *c
    cdef dest_t *d
    # ipv4_input checked the header against the packet (l4_check); what is left is
    # that all of it sits in the first segment, for the modes to read and rewrite
    if proto == IPPROTO_TCP:
        if ETH_HLEN + hl + 20 > m.data_len or \
                ETH_HLEN + hl + ((<rte_tcp_hdr *>l4).data_off >> 4) * 4 > m.data_len:
            return 0
        flags = (<rte_tcp_hdr *>l4).tcp_flags
    elif proto == IPPROTO_UDP:
        if ETH_HLEN + hl + 8 > m.data_len:
            return 0
    elif proto == IPPROTO_ICMP:
        # echo only, for SNAT: the identifier plays both ports (RFC 5508 section 3.1)
        if w.nmatch == 0 or ETH_HLEN + hl + 8 > m.data_len or \
                (l4[0] != ICMP_ECHO and l4[0] != ICMP_ECHOREPLY) or l4[1] != 0:
            return 0
    else:
        return 0
    if proto == IPPROTO_ICMP:
        sport = rte_be_to_cpu_16((<uint16_t *>l4)[2])
        dport = sport
    else:
        sport = rte_be_to_cpu_16((<uint16_t *>l4)[0])
        dport = rte_be_to_cpu_16((<uint16_t *>l4)[1])
    saddr = rte_be_to_cpu_32(ip.src_addr)
    daddr = rte_be_to_cpu_32(ip.dst_addr)
    slot = conn_find(w, proto, saddr, sport, daddr, dport, &dir)
    if slot != NONE32 and dir == DIR_IN and (flags & (TH_SYN | TH_ACK | TH_RST)) == TH_SYN \
            and w.conns[slot].state >= CS_FIN_WAIT and w.conns[slot].state <= CS_LAST_ACK:
        # a client reusing its port while we still remember the closed flow: start
        # afresh (new local port), or the server's TIME_WAIT would eat the SYN (LVS
        # conn_reuse_mode)
        conn_free(e, w, slot)
        slot = NONE32
    if slot == NONE32:
        if sapool_dst and e.nworkers > 1:
            owner = dport % e.nworkers           # FNAT/SNAT chose lport % workers = owner
            if owner != w.id:
                return redirect(e, w, owner, port, m)
        s = svc_find(w, proto, daddr, dport) if proto != IPPROTO_ICMP else NULL
        if s == NULL:
            if vip_known(w, daddr) and proto != IPPROTO_ICMP:
                if e.vip_miss_kni:
                    w.reasons[R_NO_SERVICE] += 1
                    return 0                     # on to the kernel like any other packet
                drop(w, m, R_NO_SERVICE)
                return 1
            d = natdest_find(w, saddr, sport) if not own_dst else NULL
            if d != NULL and e.modes[d.mode].direct_reply:
                # a DR/Tunnel real server answering through us (no VIP on lo): dropped
                # here as the connection's worker would (the mode's xmit_out), whichever
                # worker the port's steering picked; the real server's own mode decides,
                # not its service's (a service may mix modes)
                drop(w, m, R_DIRECT_REPLY)
                return 1
            if d != NULL and w.svcs[d.svc].flags & SVC_F_CLIENT_OWNER and e.nworkers > 1:
                # a NAT real server's reply: its client's worker holds the connection
                owner = owner_of_client(e, daddr, 0 if w.svcs[d.svc].flags & SVC_F_PERSISTENT
                                        else dport)
                if owner != w.id:
                    return redirect(e, w, owner, port, m)
            if w.nmatch == 0 or own_dst:
                return 0
            s = match_find(e, w, port, proto, saddr, sport, daddr, dport)
            if s == NULL:
                return 0
        if (s.flags & (SVC_F_PERSISTENT | SVC_F_CLIENT_OWNER)) and e.nworkers > 1:
            owner = owner_of_client(e, saddr, 0 if s.flags & SVC_F_PERSISTENT else sport)
            if owner != w.id:
                return redirect(e, w, owner, port, m)
        if proto == IPPROTO_TCP and (flags & (TH_SYN | TH_ACK | TH_RST)) != TH_SYN:
            if not lb_adopts(e, w, s, saddr, sport, flags):
                drop(w, m, R_CONN_MISS)
                return 1
            w.ct_stats[CT_ADOPTED] += 1
        slot = lb_new_conn(e, w, s, port, m, proto, saddr, sport, daddr, dport)
        if slot == NONE32:
            return 1
        dir = DIR_IN
    c = &w.conns[slot]
    d = &w.dests[c.dest & 0xffffff]
    if d.gen != (c.dest >> 24):
        conn_free(e, w, slot)
        drop(w, m, R_DEST_GONE)
        return 1
    s = &w.svcs[c.svc]
    if proto == IPPROTO_TCP:
        conn_set_state(e, w, slot, rlb_tcp_next[dir][tcp_event(flags)][c.state])
    conn_set_timeout(w, slot, e.timeouts[c.state])
    if dir == DIR_IN:
        s.stats[SVC_INPKTS] += 1
        s.stats[SVC_INBYTES] += tot
        d.stats[DEST_INPKTS] += 1
        d.stats[DEST_INBYTES] += tot
        e.modes[c.mode].xmit_in(e, w, c, m)
    else:
        s.stats[SVC_OUTPKTS] += 1
        s.stats[SVC_OUTBYTES] += tot
        d.stats[DEST_OUTPKTS] += 1
        d.stats[DEST_OUTBYTES] += tot
        if not (c.flags & CONN_F_ANSWERED):
            dest_answered(e, c, d, flags)
        e.modes[c.mode].xmit_out(e, w, c, m)
    return 1
