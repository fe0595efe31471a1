/* C shims for DPDK macros Cython cannot express (type arguments). */
#ifndef RLB_SHIM_H
#define RLB_SHIM_H
#include <rte_mbuf.h>

static inline uint8_t *rlb_mtod(struct rte_mbuf *m) { return rte_pktmbuf_mtod(m, uint8_t *); }

static const uint8_t rlb_bcast_mac[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t rlb_zero_mac[6] = {0, 0, 0, 0, 0, 0};

/* A counter shared by the workers (round robin over all of them). */
static inline uint32_t rlb_fetch_inc(uint32_t *p) { return __atomic_fetch_add(p, 1, __ATOMIC_RELAXED); }

#endif
