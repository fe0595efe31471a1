# DPDK rings with fixed-size elements (control and worker messages).
cdef extern from "rte_ring.h" nogil:
    struct rte_ring:
        pass
    rte_ring *rte_ring_create_elem(const char *name, unsigned esize,
                                   unsigned count, int socket_id, unsigned flags)
    void rte_ring_free(rte_ring *r)
    int rte_ring_enqueue_elem(rte_ring *r, void *obj, unsigned esize)
    int rte_ring_dequeue_elem(rte_ring *r, void *obj, unsigned esize)
    unsigned rte_ring_count(const rte_ring *r)
    enum: RING_F_SC_DEQ
    rte_ring *rte_ring_create(const char *name, unsigned count, int socket_id, unsigned flags)
    int rte_ring_enqueue(rte_ring *r, void *obj)
    unsigned rte_ring_dequeue_burst(rte_ring *r, void **obj_table, unsigned n, unsigned *available)
    unsigned rte_ring_enqueue_burst_elem(rte_ring *r, const void *obj_table, unsigned esize,
                                         unsigned n, unsigned *free_space)
    unsigned rte_ring_dequeue_burst_elem(rte_ring *r, void *obj_table, unsigned esize,
                                         unsigned n, unsigned *available)
    enum: RING_F_SP_ENQ
