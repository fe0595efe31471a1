# DPDK longest-prefix-match table for IPv4 routes.
from libc.stdint cimport uint8_t, uint32_t

cdef extern from "rte_lpm.h" nogil:
    struct rte_lpm:
        pass
    struct rte_lpm_config:
        uint32_t max_rules
        uint32_t number_tbl8s
        int flags
    rte_lpm *rte_lpm_create(const char *name, int socket_id, const rte_lpm_config *config)
    void rte_lpm_free(rte_lpm *lpm)
    int rte_lpm_add(rte_lpm *lpm, uint32_t ip, uint8_t depth, uint32_t next_hop)
    int rte_lpm_delete(rte_lpm *lpm, uint32_t ip, uint8_t depth)
    int rte_lpm_lookup(const rte_lpm *lpm, uint32_t ip, uint32_t *next_hop)
