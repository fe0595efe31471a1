# Connection sync, the data plane's side of rlb.ha.sync: a worker queues an event for the
# peer LB when one of its connections becomes worth knowing (TCP established, a UDP
# flow), changes state after that, or ends; the control plane sends the queue over the
# LAN in batches. Nothing when sync is off (one flag read per event, none per packet).
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from rlb.core.dpdk.ring cimport rte_ring_enqueue_elem
from rlb.core.types cimport *

cdef inline void sync_fill(worker_t *w, conn_t *c, uint8_t event, sync_rec_t *r) noexcept nogil:
    r.caddr = c.caddr
    r.vaddr = c.vaddr
    r.laddr = c.laddr
    r.daddr = c.daddr
    r.cport = c.cport
    r.vport = c.vport
    r.lport = c.lport
    r.dport = c.dport
    r.seq_delta = c.seq_delta
    r.ts_delta = c.ts_delta
    r.proto = c.proto
    r.state = c.state
    r.flags = c.flags
    r.event = event
    r.wid = <uint8_t>w.id
    r.cport_in = c.cport_in
    r.pad = 0

cdef inline void sync_emit(engine_t *e, worker_t *w, conn_t *c, uint8_t event) noexcept nogil:
    """Queue `event` of connection c for the peer (sync on, not a template)."""
    cdef sync_rec_t r
    if not e.sync_on or e.sync_out == NULL or (c.flags & CONN_F_TEMPLATE):
        return
    sync_fill(w, c, event, &r)
    if rte_ring_enqueue_elem(e.sync_out, &r, sizeof(sync_rec_t)) != 0:
        w.ct_stats[CT_SYNC_LOST] += 1
        return
    w.ct_stats[CT_SYNC_SENT] += 1
    c.sync |= CONN_SYNC_KNOWN
