# Connection table of one worker: both directions hashed, timer wheel, LVS TCP states.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t
from libc.string cimport memset
from rlb.core.types cimport *

cdef enum:
    DIR_IN = 0                 # client -> real server (the client side tuple)
    DIR_OUT = 1                # real server -> client (the server side tuple)
    TH_FIN = 0x01
    TH_SYN = 0x02
    TH_RST = 0x04
    TH_ACK = 0x10
    EV_SYN = 0
    EV_FIN = 1
    EV_ACK = 2
    EV_RST = 3

# LVS's TCP state machine (ip_vs_proto_tcp.c): next[dir][event][state], states in
# ConnState order NONE ES SYN_SENT SYN_RECV FIN_WAIT TIME_WAIT CLOSE CLOSE_WAIT LAST_ACK
# LISTEN SYNACK. The LB sees both directions, so it follows the handshake and the close.
# (unused: a module that cimports this file for its declarations only, such as the
# engine's table setup, does not compile the state machine in.)
cdef extern from *:
    """
    static const unsigned char rlb_tcp_next[2][4][11] __attribute__((unused)) = {
      { /* client -> server */
        /* syn */ {3, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3},
        /* fin */ {6, 7, 2, 5, 5, 5, 6, 7, 8, 9, 5},
        /* ack */ {1, 1, 2, 1, 4, 5, 6, 7, 6, 9, 1},
        /* rst */ {6, 6, 6, 3, 6, 6, 6, 6, 8, 9, 3},
      },
      { /* server -> client */
        /* syn */ {2, 1, 2, 3, 2, 2, 2, 2, 2, 9, 3},
        /* fin */ {5, 4, 2, 5, 4, 5, 6, 5, 8, 9, 5},
        /* ack */ {1, 1, 2, 1, 4, 5, 6, 7, 8, 1, 1},
        /* rst */ {6, 6, 2, 6, 6, 5, 6, 6, 6, 6, 6},
      },
    };
    """
    const uint8_t rlb_tcp_next[2][4][11]

cdef inline uint32_t conn_hash(worker_t *w, uint8_t proto, uint32_t saddr, uint16_t sport,
                               uint32_t daddr, uint16_t dport) noexcept nogil:
    cdef uint32_t h = saddr * <uint32_t>0x9E3779B1u
    h ^= daddr * <uint32_t>0x85EBCA77u
    h ^= ((<uint32_t>sport << 16) | dport) * <uint32_t>0xC2B2AE3Du
    h ^= proto
    h ^= h >> 15
    h *= <uint32_t>0x2C1B3C6Du
    h ^= h >> 12
    return h & w.conn_hash_mask

cdef inline int conn_matches(conn_t *c, uint8_t dir, uint8_t proto, uint32_t saddr,
                             uint16_t sport, uint32_t daddr, uint16_t dport) noexcept nogil:
    if c.proto != proto:
        return 0
    if dir == DIR_IN:
        return c.caddr == saddr and c.cport == sport and c.vaddr == daddr and c.vport == dport
    return c.daddr == saddr and c.dport == sport and c.laddr == daddr and c.lport == dport

cdef inline uint32_t conn_find(worker_t *w, uint8_t proto, uint32_t saddr, uint16_t sport,
                               uint32_t daddr, uint16_t dport, uint8_t *dir) noexcept nogil:
    """The slot of the connection this tuple belongs to (and which side it is), or NONE32."""
    cdef uint32_t link = w.conn_hash[conn_hash(w, proto, saddr, sport, daddr, dport)]
    cdef conn_t *c
    while link != NONE32:
        c = &w.conns[link >> 1]
        if not (c.flags & CONN_F_TEMPLATE) and \
                conn_matches(c, link & 1, proto, saddr, sport, daddr, dport):
            dir[0] = link & 1
            return link >> 1
        link = c.hnext[link & 1]
    return NONE32

cdef inline void conn_hash_add(worker_t *w, uint32_t slot, uint8_t dir) noexcept nogil:
    cdef conn_t *c = &w.conns[slot]
    cdef uint32_t b
    if dir == DIR_IN:
        b = conn_hash(w, c.proto, c.caddr, c.cport, c.vaddr, c.vport)
    else:
        b = conn_hash(w, c.proto, c.daddr, c.dport, c.laddr, c.lport)
    c.hnext[dir] = w.conn_hash[b]
    w.conn_hash[b] = (slot << 1) | dir

cdef inline void conn_hash_del(worker_t *w, uint32_t slot, uint8_t dir) noexcept nogil:
    cdef conn_t *c = &w.conns[slot]
    cdef uint32_t b, link, me = (slot << 1) | dir
    cdef uint32_t *prev
    if dir == DIR_IN:
        b = conn_hash(w, c.proto, c.caddr, c.cport, c.vaddr, c.vport)
    else:
        b = conn_hash(w, c.proto, c.daddr, c.dport, c.laddr, c.lport)
    prev = &w.conn_hash[b]
    link = prev[0]
    while link != NONE32:
        if link == me:
            prev[0] = c.hnext[dir]
            return
        prev = &w.conns[link >> 1].hnext[link & 1]
        link = prev[0]

cdef inline int tuple_in_use(worker_t *w, uint8_t proto, uint32_t saddr, uint16_t sport,
                             uint32_t daddr, uint16_t dport) noexcept nogil:
    cdef uint8_t dir
    return conn_find(w, proto, saddr, sport, daddr, dport, &dir) != NONE32

# ---------------------------------------------------------------- timer wheel

cdef inline void wheel_link(worker_t *w, uint32_t slot) noexcept nogil:
    cdef conn_t *c = &w.conns[slot]
    cdef uint16_t ws = c.expires % WHEEL_SLOTS
    c.wslot = ws
    c.tprev = NONE32
    c.tnext = w.wheel[ws]
    if c.tnext != NONE32:
        w.conns[c.tnext].tprev = slot
    w.wheel[ws] = slot

cdef enum:
    OFF_WHEEL = 0xffff         # conn_t.wslot of a connection on no wheel slot

cdef inline void wheel_unlink(worker_t *w, uint32_t slot) noexcept nogil:
    cdef conn_t *c = &w.conns[slot]
    cdef uint16_t ws = c.wslot
    if ws == OFF_WHEEL:
        return
    c.wslot = OFF_WHEEL
    if c.tprev != NONE32:
        w.conns[c.tprev].tnext = c.tnext
    else:
        w.wheel[ws] = c.tnext
    if c.tnext != NONE32:
        w.conns[c.tnext].tprev = c.tprev

cdef inline void conn_set_timeout(worker_t *w, uint32_t slot, uint32_t ticks) noexcept nogil:
    """Push expiry out lazily (the wheel re-files it when its slot comes round); move
    it at once only when the new expiry is sooner (a FIN or RST shortens the life)."""
    cdef conn_t *c = &w.conns[slot]
    cdef uint32_t when = w.tick + ticks
    if <int32_t>(when - c.expires) < 0:
        wheel_unlink(w, slot)
        c.expires = when
        wheel_link(w, slot)
    else:
        c.expires = when

# ------------------------------------------------------------------ allocation

cdef inline uint32_t conn_alloc(worker_t *w) noexcept nogil:
    cdef uint32_t slot = w.conn_free
    if slot == NONE32:
        return NONE32
    w.conn_free = w.conns[slot].tnext
    memset(&w.conns[slot], 0, sizeof(conn_t))
    w.nconns += 1
    return slot

cdef inline void conn_release(worker_t *w, uint32_t slot) noexcept nogil:
    w.conns[slot].proto = 0
    w.conns[slot].tnext = w.conn_free
    w.conn_free = slot
    w.nconns -= 1

cdef inline uint8_t tcp_event(uint8_t flags) noexcept nogil:
    if flags & TH_RST:
        return EV_RST
    if flags & TH_SYN:
        return EV_SYN
    if flags & TH_FIN:
        return EV_FIN
    return EV_ACK
