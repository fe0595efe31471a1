# DPDK mbufs and mempools.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

cdef extern from "rte_mempool.h" nogil:
    struct rte_mempool:
        unsigned size
    unsigned rte_mempool_avail_count(const rte_mempool *mp)
    unsigned rte_mempool_in_use_count(const rte_mempool *mp)
    void rte_mempool_free(rte_mempool *mp)

cdef extern from "rte_mbuf.h" nogil:
    struct rte_mbuf:
        uint16_t data_off
        uint16_t nb_segs
        uint16_t port
        uint64_t ol_flags
        uint32_t packet_type
        uint32_t pkt_len
        uint16_t data_len
        uint16_t buf_len
        rte_mbuf *next
    rte_mempool *rte_pktmbuf_pool_create(const char *name, unsigned n,
        unsigned cache_size, uint16_t priv_size, uint16_t data_room_size,
        int socket_id)
    rte_mbuf *rte_pktmbuf_alloc(rte_mempool *mp)
    void rte_pktmbuf_free(rte_mbuf *m)
    char *rte_pktmbuf_append(rte_mbuf *m, uint16_t len)
    char *rte_pktmbuf_prepend(rte_mbuf *m, uint16_t len)
    char *rte_pktmbuf_adj(rte_mbuf *m, uint16_t len)
    int rte_pktmbuf_trim(rte_mbuf *m, uint16_t len)
    int rte_pktmbuf_is_contiguous(const rte_mbuf *m)
    rte_mbuf *rte_pktmbuf_copy(const rte_mbuf *m, rte_mempool *mp, uint32_t off, uint32_t len)
    const void *rte_pktmbuf_read(const rte_mbuf *m, uint32_t off, uint32_t len, void *buf)
    enum: RTE_MBUF_DEFAULT_BUF_SIZE
    enum: RTE_MBUF_F_RX_VLAN_STRIPPED

cdef extern from "shim.h" nogil:
    # rte_pktmbuf_mtod takes a type argument: a one-line C shim returns bytes.
    uint8_t *rlb_mtod(rte_mbuf *m)
    int rlb_vlan_pop(rte_mbuf *m, uint16_t *proto)
    int rlb_vlan_push(rte_mbuf *m, uint16_t proto, uint16_t vid)
