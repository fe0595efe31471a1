"""The workers' nogil loop: bursts in, out, and between bursts the messages and timers.

Runs on the worker lcores with no Python object in sight (tests/unit/core/test_hot_path.py
checks the generated C): the whole per-packet path is this module's functions and the
`cdef inline` ones of the .pxd files it cimports, so no call goes through another
extension module's exported functions (the modes' and schedulers' ops are called
through the pointers they registered). The control plane (dataplane.pyx) reaches a worker only through
fixed-size messages in its ring (types.pxd) and reads its counters (stats.pyx).
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, uintptr_t
from libc.string cimport memset, memcpy

from rlb.core.dpdk.eal cimport rte_rdtsc, rte_smp_wmb, rte_delay_us_sleep
from rlb.core.dpdk.mbuf cimport rte_mbuf
from rlb.core.dpdk.ring cimport (rte_ring_dequeue_burst, rte_ring_dequeue_elem,
                                 rte_ring_dequeue_burst_elem)
from rlb.core.dpdk.lpm cimport rte_lpm_add, rte_lpm_delete
from rlb.core.dpdk.ethdev cimport rte_eth_rx_burst, rte_eth_tx_burst, rte_ether_hdr
from rlb.core.dpdk.net cimport rte_be_to_cpu_16
from rlb.core.types cimport *
from rlb.core.dpdk.mbuf cimport rlb_vlan_pop, RTE_MBUF_F_RX_VLAN_STRIPPED
from rlb.core.packet cimport tx_flush, tx_kni, drop, eth_hdr, mac_is_multicast, mac_eq, \
    ETHER_TYPE_IPV4, ETHER_TYPE_ARP, ETHER_TYPE_VLAN, ETHER_TYPE_QINQ, ETH_HLEN, NO_PORT
from rlb.core.neigh cimport (neigh_find, neigh_insert, neigh_remove, neigh_confirm,
                             neigh_timer, arp_send, ARP_REQUEST, ZERO_MAC, BCAST)
from rlb.core.ipv4 cimport ipv4_input, arp_input
from rlb.core.lb cimport conn_timer, svc_rehash, svc_find, dest_count, conn_free
from rlb.core.conn cimport (conn_find, conn_alloc, conn_hash_add, wheel_link,
                            conn_set_timeout, DIR_IN, DIR_OUT)
from rlb.core.sync cimport sync_fill
from rlb.core.capture cimport CAP_IN, capture_burst, capture_frame
from rlb.core.probe cimport kni_output, probe_send


cdef inline void frame_input(engine_t *e, worker_t *w, uint8_t port, rte_mbuf *m) noexcept nogil:
    cdef rte_ether_hdr *eh
    cdef uint16_t et
    w.pstats[port][PORT_RX_PKTS] += 1
    w.pstats[port][PORT_RX_BYTES] += m.pkt_len
    if m.data_len < ETH_HLEN:
        drop(w, m, R_TRUNCATED)
        return
    eh = eth_hdr(m)
    if not mac_is_multicast(eh.dst_addr.addr_bytes) and \
            not mac_eq(eh.dst_addr.addr_bytes, e.ports[port].mac):
        drop(w, m, R_L2_OTHER_HOST)
        return
    et = rte_be_to_cpu_16(eh.ether_type)
    if et == ETHER_TYPE_VLAN or et == ETHER_TYPE_QINQ or m.ol_flags & RTE_MBUF_F_RX_VLAN_STRIPPED:
        port = vlan_input(e, w, port, m)
        if port == NO_PORT:
            return
        et = rte_be_to_cpu_16(eth_hdr(m).ether_type)
    if et == ETHER_TYPE_IPV4:
        ipv4_input(e, w, port, m)
    elif et == ETHER_TYPE_ARP:
        arp_input(e, w, port, m)
    else:
        w.reasons[R_ETHERTYPE_KNI] += 1
        tx_kni(e, w, port, m)


cdef uint8_t vlan_input(engine_t *e, worker_t *w, uint8_t port, rte_mbuf *m) noexcept nogil:
    """A tagged frame of a port: untagged, it goes on as its VLAN interface's (the index
    returned), counted there; a VLAN no interface has is dropped (NO_PORT). A priority
    tag (VLAN 0) leaves the frame the port's."""
    cdef uint16_t proto = 0
    cdef int vid = rlb_vlan_pop(m, &proto)
    cdef uint8_t vif
    if vid <= 0:
        if vid < 0:                     # an 802.1Q type with no room for the tag
            drop(w, m, R_TRUNCATED)
            return NO_PORT
        return port
    vif = e.vlan_if[<uint32_t>port * VLAN_IDS + <uint32_t>vid]
    if vif == 0 or e.ports[vif - 1].vlan_proto != proto:
        drop(w, m, R_VLAN_UNKNOWN)
        return NO_PORT
    vif -= 1
    w.pstats[vif][PORT_RX_PKTS] += 1
    w.pstats[vif][PORT_RX_BYTES] += m.pkt_len
    if e.capture.on & CAP_IN and e.capture.port == vif:
        capture_frame(&e.capture, m, CAP_IN, vif)
    return vif


cdef void apply_msg(engine_t *e, worker_t *w, msg_t *msg) noexcept nogil:
    cdef route_t *r
    cdef neigh_t *n
    cdef neigh_t *out
    cdef uint32_t i, k
    if msg.type == MSG_ROUTE_SET:
        r = &w.routes[msg.a]
        r.prefix = msg.b
        r.gw = msg.c
        r.src = msg.d
        r.plen = msg.plen
        r.scope = msg.scope
        r.port = <uint8_t>msg.port
        r.mtu = msg.mtu
        r.sapool = msg.flags & 1
        r.kni_arp = (msg.flags >> 1) & 1
        r.used = 1
        if msg.plen == 0:
            w.default_route = msg.a
        else:
            rte_lpm_add(w.lpm, msg.b, msg.plen, msg.a)
    elif msg.type == MSG_ROUTE_DEL:
        if msg.plen == 0:
            w.default_route = NONE32
        else:
            rte_lpm_delete(w.lpm, msg.b, msg.plen)
        w.routes[msg.a].used = 0
    elif msg.type == MSG_NEIGH_SET or msg.type == MSG_NEIGH_LEARN:
        n = neigh_find(w, msg.b)
        if n == NULL:
            n = neigh_insert(w, msg.b)
        if n == NULL:
            w.reasons[R_NEIGH_TABLE_FULL] += 1
        elif msg.type == MSG_NEIGH_SET:
            n.state = NEIGH_INCOMPLETE          # let a static entry replace anything
            neigh_confirm(e, w, n, msg.mac, <uint8_t>msg.port, msg.flags & 1)
        elif n.state != NEIGH_STATIC:
            neigh_confirm(e, w, n, msg.mac, <uint8_t>msg.port, 0)
    elif msg.type == MSG_NEIGH_DEL:
        n = neigh_find(w, msg.b)
        if n != NULL:
            neigh_remove(w, n, R_NEIGH_UNRESOLVED)
    elif msg.type == MSG_NEIGH_FLUSH:
        i = 0
        while i <= w.neigh_mask:
            n = &w.neigh[i]
            if n.ip != 0 and n.state != NEIGH_STATIC and (msg.port == 0xffff or n.port == msg.port):
                neigh_remove(w, n, R_NEIGH_UNRESOLVED)
                continue
            i += 1
    elif msg.type == MSG_NEIGH_DUMP:
        out = <neigh_t *><uintptr_t>msg.ptr
        k = 0
        for i in range(w.neigh_mask + 1):
            if w.neigh[i].ip != 0 and k < msg.a:
                memcpy(&out[k], &w.neigh[i], sizeof(neigh_t))
                k += 1
        out[k].ip = 0
    elif msg.type == MSG_GARP:
        if w.id == 0:
            arp_send(e, w, <uint8_t>msg.port, ARP_REQUEST, msg.b, ZERO_MAC, msg.b, BCAST)
    elif msg.type == MSG_PORT_ADDR:
        w.port_addr[msg.port] = msg.b
    elif msg.type == MSG_SVC_SET:
        svc_apply(e, w, msg.a, <svc_t *><uintptr_t>msg.ptr)
    elif msg.type == MSG_SVC_DEL:
        w.svcs[msg.a].used = 0
        w.svcs[msg.a].table = NULL
        svc_rehash(e, w)
    elif msg.type == MSG_SVC_TABLE:
        w.svcs[msg.a].table = <uint32_t *><uintptr_t>msg.ptr
        w.svcs[msg.a].table_size = msg.b
    elif msg.type == MSG_DEST_SET:
        dest_apply(w, msg.a, <dest_t *><uintptr_t>msg.ptr)
    elif msg.type == MSG_DEST_DEL:
        # out of the schedulers. b=1 (a real server taken from its service): its
        # connections drain (LVS's expire_nodest_conn 0) and end only if another real
        # server takes the slot (dest_apply); b=0 (its service went): they end at their
        # next packet
        w.dests[msg.a].used = 0
        if msg.b:
            w.dests[msg.a].flags = DEST_F_DELETED | DEST_F_DRAINING
        else:
            w.dests[msg.a].flags = DEST_F_DELETED
            w.dests[msg.a].gen += 1
    elif msg.type == MSG_CONN_DUMP:
        conn_dump(e, w, <conn_t *><uintptr_t>msg.ptr, msg.a)
    elif msg.type == MSG_ZERO:
        zero_counters(e, w, msg.a)
    elif msg.type == MSG_SYNC_IN:
        sync_apply(e, w, <sync_rec_t *><uintptr_t>msg.ptr, msg.a)
    elif msg.type == MSG_SYNC_DUMP:
        sync_dump(e, w, <sync_rec_t *><uintptr_t>msg.ptr, msg.a, msg.b)
    if msg.seq:
        rte_smp_wmb()
        w.applied_seq = msg.seq


cdef void svc_apply(engine_t *e, worker_t *w, uint32_t slot, svc_t *cfg) noexcept nogil:
    """New configuration for a service slot; an unchanged service keeps its counters,
    scheduler position and local-port cursors (its connections never notice)."""
    cdef svc_t *s = &w.svcs[slot]
    cdef svc_t old
    cdef int i, j
    memcpy(&old, s, sizeof(svc_t))
    memcpy(s, cfg, sizeof(svc_t))
    s.used = 1
    s.table = old.table
    s.table_size = old.table_size
    if old.used and old.vaddr == cfg.vaddr and old.vport == cfg.vport and old.proto == cfg.proto:
        s.sched_cursor = old.sched_cursor
        s.sched_cw = old.sched_cw
        s.laddr_cursor = old.laddr_cursor
        memcpy(s.stats, old.stats, sizeof(s.stats))
        for i in range(s.nladdrs):
            for j in range(old.nladdrs):
                if old.laddrs[j].addr == s.laddrs[i].addr:
                    s.laddrs[i].cursor = old.laddrs[j].cursor
                    s.laddrs[i].used = old.laddrs[j].used
                    s.laddrs[i].miss = old.laddrs[j].miss
    svc_rehash(e, w)


cdef void dest_apply(worker_t *w, uint32_t slot, dest_t *cfg) noexcept nogil:
    cdef dest_t *d = &w.dests[slot]
    # the same server again (or back after a delete, its connections draining): they
    # go on with it, and its counts with them
    cdef uint8_t same = (d.used or d.flags & DEST_F_DRAINING) and d.addr == cfg.addr and \
        d.port == cfg.port and d.svc == cfg.svc
    d.weight = cfg.weight
    d.u_threshold = cfg.u_threshold
    d.l_threshold = cfg.l_threshold
    d.flags = cfg.flags
    d.mode = cfg.mode
    if same:
        d.used = 1
        return
    d.gen += 1                     # a reused slot: connections of the old one end
    d.addr = cfg.addr
    d.port = cfg.port
    d.svc = cfg.svc
    d.used = 1
    d.activeconns = 0
    d.inactconns = 0
    d.conns = 0
    d.fails_in_row = 0
    d.answered_tsc = 0
    d.failed_tsc = 0
    memset(d.stats, 0, sizeof(d.stats))


cdef void conn_dump(engine_t *e, worker_t *w, conn_t *out, uint32_t cap) noexcept nogil:
    """Connections and persistence templates; a template gets its real server's address,
    port and mode (LVS lists it as a connection with client port 0)."""
    cdef uint32_t i, k = 0
    cdef dest_t *d
    for i in range(cap):
        out[i].proto = 0
    for i in range(e.conn_cap):
        if k + 1 >= cap:
            break
        if w.conns[i].proto != 0:
            memcpy(&out[k], &w.conns[i], sizeof(conn_t))
            out[k].expires = w.conns[i].expires - w.tick
            if w.conns[i].flags & CONN_F_TEMPLATE:
                d = &w.dests[w.conns[i].dest & 0xffffff]
                if d.gen == (w.conns[i].dest >> 24):
                    out[k].daddr = d.addr
                    out[k].dport = d.port
                    out[k].mode = d.mode
                else:                   # its real server went: counted for none
                    out[k].dest = NONE32
            k += 1


cdef void sync_apply(engine_t *e, worker_t *w, sync_rec_t *r, uint32_t n) noexcept nogil:
    """The peer's connection events into this worker's table: a connection it holds is
    made (or brought to the peer's state) here, on this LB's service and real server of
    the same addresses, so that it goes on here after a takeover; an ended one goes. No
    event goes back (the peer knows them): CONN_SYNC_KNOWN only says to tell the end."""
    cdef uint32_t i, slot, k, d
    cdef uint8_t dir, active
    cdef conn_t *c
    cdef svc_t *s
    cdef dest_t *dest
    for i in range(n):
        slot = conn_find(w, r[i].proto, r[i].caddr, r[i].cport, r[i].vaddr, r[i].vport, &dir)
        if slot != NONE32 and dir != DIR_IN:
            slot = NONE32
        if r[i].event == SYNC_FREE:
            if slot != NONE32:
                w.conns[slot].sync = 0          # the peer ended it: nothing to tell it
                conn_free(e, w, slot)
            w.ct_stats[CT_SYNC_APPLIED] += 1
            continue
        if slot == NONE32:
            s = svc_find(w, r[i].proto, r[i].vaddr, r[i].vport)
            d = NONE32
            if s != NULL:
                for k in range(s.ndests):
                    dest = &w.dests[s.dests[k]]
                    if dest.used and dest.addr == r[i].daddr and dest.port == r[i].dport:
                        d = s.dests[k]
                        break
            if d == NONE32:
                w.ct_stats[CT_SYNC_REFUSED] += 1
                continue
            slot = conn_alloc(w)
            if slot == NONE32:
                w.ct_stats[CT_SYNC_REFUSED] += 1
                continue
            dest = &w.dests[d]
            c = &w.conns[slot]
            c.proto = r[i].proto
            c.caddr = r[i].caddr
            c.cport = r[i].cport
            c.vaddr = r[i].vaddr
            c.vport = r[i].vport
            c.laddr = r[i].laddr
            c.lport = r[i].lport
            c.daddr = r[i].daddr
            c.dport = r[i].dport
            c.seq_delta = r[i].seq_delta
            c.ts_delta = r[i].ts_delta
            c.dest = d | (<uint32_t>dest.gen << 24)
            c.svc = <uint16_t>(s - w.svcs)
            c.mode = dest.mode
            c.cport_in = r[i].cport_in
            c.state = r[i].state
            c.flags = r[i].flags & ~(CONN_F_ACTIVE | CONN_F_TEMPLATE)
            if c.state == CS_ESTABLISHED or c.state == CS_UDP:
                c.flags |= CONN_F_ACTIVE
            c.laddr_idx = 0xff
            for k in range(s.nladdrs):          # FNAT: the same local address here
                if s.laddrs[k].addr == c.laddr:
                    c.laddr_idx = <uint8_t>k
                    s.laddrs[k].used += 1
                    break
            c.sync = CONN_SYNC_KNOWN
            conn_hash_add(w, slot, DIR_IN)
            conn_hash_add(w, slot, DIR_OUT)
            c.expires = w.tick + e.timeouts[c.state]
            wheel_link(w, slot)
            dest_count(w, c, 1)
            w.ct_stats[CT_CREATED] += 1
        else:
            c = &w.conns[slot]
            active = r[i].state == CS_ESTABLISHED or r[i].state == CS_UDP
            if active != ((c.flags & CONN_F_ACTIVE) != 0):
                dest_count(w, c, -1)
                c.flags ^= CONN_F_ACTIVE
                dest_count(w, c, 1)
            c.state = r[i].state
            c.sync = CONN_SYNC_KNOWN
            conn_set_timeout(w, slot, e.timeouts[c.state])
        w.ct_stats[CT_SYNC_APPLIED] += 1


cdef void sync_dump(engine_t *e, worker_t *w, sync_rec_t *out, uint32_t cap,
                    uint32_t first) noexcept nogil:
    """Bulk sync: this worker's connections worth the peer's knowing (established TCP,
    UDP, and those it was told of) from slot `first`, at most cap - 1; the count goes in
    out[cap - 1].caddr, the slot to go on from in out[cap - 1].vaddr (0: the end)."""
    cdef uint32_t i, k = 0
    cdef conn_t *c
    out[cap - 1].vaddr = 0
    for i in range(first, e.conn_cap):
        if k + 1 >= cap:
            out[cap - 1].vaddr = i
            break
        c = &w.conns[i]
        if c.proto == 0 or (c.flags & CONN_F_TEMPLATE):
            continue
        if c.state == CS_ESTABLISHED or c.state == CS_UDP or (c.sync & CONN_SYNC_KNOWN):
            sync_fill(w, c, SYNC_STATE, &out[k])
            c.sync |= CONN_SYNC_KNOWN
            k += 1
    out[cap - 1].caddr = k


cdef void zero_counters(engine_t *e, worker_t *w, uint32_t only) noexcept nogil:
    cdef uint32_t i, k
    cdef svc_t *s
    cdef dest_t *d
    for i in range(e.svc_cap):
        if only != NONE32 and i != only:
            continue
        s = &w.svcs[i]
        memset(s.stats, 0, sizeof(s.stats))
        for k in range(s.nladdrs):
            s.laddrs[k].miss = 0
        if s.used:
            for k in range(s.ndests):
                d = &w.dests[s.dests[k]]
                d.conns = 0
                memset(d.stats, 0, sizeof(d.stats))     # not the passive check's run:
                                                        # a health state, not a count


cdef inline void flush_all(engine_t *e, worker_t *w) noexcept nogil:
    cdef uint16_t p
    cdef uint16_t i
    for p in range(e.nports):
        if e.ports[p].kind == PORT_ETH:
            tx_flush(e, w, &w.tx[p], e.ports[p].port_id, R_TX_FULL)
        if e.ports[p].has_kni:
            tx_flush(e, w, &w.kni[p], e.ports[p].kni_id, R_KNI_FULL)
        elif w.kni[p].n:                # its tap went (a VLAN deleted) with frames queued
            for i in range(w.kni[p].n):
                drop(w, w.kni[p].pkts[i], R_PORT_GONE)
            w.kni[p].n = 0


cdef inline void lacp_tick(engine_t *e, worker_t *w) noexcept nogil:
    """An 802.3ad bond sends its LACP frames from inside a send call: one with nothing to
    send, every tick, keeps them going out when no traffic does (DPDK's bonding PMD)."""
    cdef uint16_t p
    for p in range(e.nports):
        if e.ports[p].lacp:
            rte_eth_tx_burst(e.ports[p].port_id, w.queue, NULL, 0)


cdef int worker_main(void *arg) noexcept nogil:
    cdef worker_t *w = <worker_t *>arg
    cdef engine_t *e = w.engine
    cdef rte_mbuf *pkts[BURST]
    cdef uint16_t n, i, p
    cdef uint32_t got, rx, bursts
    cdef uint32_t idle = 0
    cdef msg_t msg
    cdef uint64_t now, start
    cdef uint32_t ticks
    cdef uint32_t slots[BURST]
    w.next_tick = rte_rdtsc() + e.tsc_hz // TICKS_PER_SEC
    w.running = 1
    while not e.stop:
        # where the cycles go (show dataplane): one TSC read a pass more than the timers'
        start = rte_rdtsc()
        got = 0
        bursts = 0
        for p in range(e.nports):
            if e.ports[p].kind == PORT_ETH:
                n = rte_eth_rx_burst(e.ports[p].port_id, w.queue, pkts, BURST)
                got += n
                bursts += n != 0
                if e.capture.on & CAP_IN and e.capture.port == p and n:
                    capture_burst(&e.capture, pkts, n, <uint8_t>p)
                for i in range(n):
                    frame_input(e, w, <uint8_t>p, pkts[i])
            if e.ports[p].has_kni and (w.stats[WORKER_POLLS] & (KNI_POLL_EVERY - 1)) == 0:
                # what the kernel sends on <port>.kni leaves through the port; a tap
                # poll is a readv() system call, so not on every loop (bench/README.md)
                n = rte_eth_rx_burst(e.ports[p].kni_id, w.queue, pkts, BURST)
                got += n
                bursts += n != 0
                for i in range(n):
                    kni_output(e, w, <uint8_t>p, pkts[i])   # out, or a probe along its path
        n = rte_ring_dequeue_burst(w.redirect, <void **>pkts, BURST, NULL)
        got += n
        bursts += n != 0
        rx = got
        for i in range(n):
            # handed over by another worker: m.port holds our port index
            ipv4_input(e, w, <uint8_t>pkts[i].port, pkts[i])
        if w.id == 0 and e.probe_todo != NULL:
            # the TCP prober's SYNs (probe.pxd): a few dozen per burst at 10,000 checks/s
            n = rte_ring_dequeue_burst_elem(e.probe_todo, slots, sizeof(uint32_t), BURST, NULL)
            got += n
            for i in range(n):
                probe_send(e, w, slots[i])
        flush_all(e, w)
        for i in range(64):
            if rte_ring_dequeue_elem(w.ring, &msg, MSG_SIZE) != 0:
                break
            apply_msg(e, w, &msg)
            got += 1
        flush_all(e, w)
        w.stats[WORKER_POLLS] += 1
        now = rte_rdtsc()
        if now >= w.next_tick:
            ticks = 0
            while now >= w.next_tick and ticks < 64:
                w.tick += 1
                w.next_tick += e.tsc_hz // TICKS_PER_SEC
                conn_timer(e, w)
                ticks += 1
            if now >= w.next_tick:          # far behind (e.g. stopped in a debugger)
                w.next_tick = now + e.tsc_hz // TICKS_PER_SEC
            w.kni_tokens = e.kni_per_tick
            lacp_tick(e, w)
            flush_all(e, w)
            now = rte_rdtsc()
        if now >= w.next_timer:
            w.next_timer = now + e.tsc_hz
            w.icmp_tokens = ICMP_ERRORS_PER_SEC
            neigh_timer(e, w, now)
            flush_all(e, w)
            now = rte_rdtsc()
        if got:
            w.stats[WORKER_BUSY_POLLS] += 1
            w.stats[WORKER_BUSY_CYCLES] += now - start
            w.stats[WORKER_RX_PACKETS] += rx
            w.stats[WORKER_RX_BURSTS] += bursts
            idle = 0
        else:
            w.stats[WORKER_IDLE_POLLS] += 1
            w.stats[WORKER_IDLE_CYCLES] += now - start
            if not e.busy_poll:
                idle += 1
                if idle > 64:
                    # back off so that a small machine stays usable; busy_poll disables it
                    w.stats[WORKER_IDLE_SLEEPS] += 1
                    rte_delay_us_sleep(e.idle_sleep_us)
    flush_all(e, w)
    w.running = 0
    return 0
