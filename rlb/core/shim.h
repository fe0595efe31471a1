/* C shims for DPDK macros Cython cannot express (type arguments). */
#ifndef RLB_SHIM_H
#define RLB_SHIM_H
#include <string.h>
#include <rte_mbuf.h>
#include <rte_ether.h>

static inline uint8_t *rlb_mtod(struct rte_mbuf *m) { return rte_pktmbuf_mtod(m, uint8_t *); }

static const uint8_t rlb_bcast_mac[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t rlb_zero_mac[6] = {0, 0, 0, 0, 0, 0};

/* A counter shared by the workers (round robin over all of them). */
static inline uint32_t rlb_fetch_inc(uint32_t *p) { return __atomic_fetch_add(p, 1, __ATOMIC_RELAXED); }

/* 802.1Q / 802.1ad: the VLAN id of a tagged frame (host order), its tag taken out of it
   (the one in the data, or the one the driver stripped into the mbuf), the tag's type in
   *proto; -1 for an untagged frame, which stays as it was. */
static inline int rlb_vlan_pop(struct rte_mbuf *m, uint16_t *proto)
{
    uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);
    uint16_t et;
    if (m->ol_flags & RTE_MBUF_F_RX_VLAN_STRIPPED) {
        m->ol_flags &= ~(RTE_MBUF_F_RX_VLAN_STRIPPED | RTE_MBUF_F_RX_VLAN);
        *proto = RTE_ETHER_TYPE_VLAN;
        return m->vlan_tci & 0xfff;
    }
    if (m->data_len < 18)
        return -1;
    et = (uint16_t)(p[12] << 8 | p[13]);
    if (et != RTE_ETHER_TYPE_VLAN && et != RTE_ETHER_TYPE_QINQ)
        return -1;
    *proto = et;
    et = (uint16_t)((p[14] << 8 | p[15]) & 0xfff);
    memmove(p + 4, p, 12);
    rte_pktmbuf_adj(m, 4);
    return et;
}

/* Tag a frame (proto, id host order; priority 0): -1 when it has no headroom left. */
static inline int rlb_vlan_push(struct rte_mbuf *m, uint16_t proto, uint16_t id)
{
    uint8_t *p = (uint8_t *)rte_pktmbuf_prepend(m, 4);
    if (p == NULL)
        return -1;
    memmove(p, p + 4, 12);
    p[12] = (uint8_t)(proto >> 8);
    p[13] = (uint8_t)proto;
    p[14] = (uint8_t)(id >> 8);
    p[15] = (uint8_t)id;
    return 0;
}

#endif
