# DPDK ethdev: port configuration, bursts, stats.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from rlb.core.dpdk.mbuf cimport rte_mbuf, rte_mempool

cdef extern from "rte_ether.h" nogil:
    struct rte_ether_addr:
        uint8_t addr_bytes[6]
    struct rte_ether_hdr:
        rte_ether_addr dst_addr
        rte_ether_addr src_addr
        uint16_t ether_type

cdef extern from "rte_ethdev.h" nogil:
    struct rte_eth_rxmode:
        uint32_t mtu
    struct rte_eth_conf:
        rte_eth_rxmode rxmode
    struct rte_eth_dev_info:
        const char *driver_name
        uint16_t max_rx_queues
        uint16_t max_tx_queues
    struct rte_eth_stats:
        uint64_t ipackets
        uint64_t opackets
        uint64_t ibytes
        uint64_t obytes
        uint64_t imissed
        uint64_t ierrors
        uint64_t oerrors
        uint64_t rx_nombuf
    struct rte_eth_link:
        uint32_t link_speed
        uint16_t link_status
    int rte_eth_dev_configure(uint16_t port_id, uint16_t nb_rx_q, uint16_t nb_tx_q,
                              const rte_eth_conf *conf)
    int rte_eth_rx_queue_setup(uint16_t port_id, uint16_t rx_queue_id, uint16_t nb_rx_desc,
                               unsigned socket_id, const void *rx_conf, rte_mempool *mb_pool)
    int rte_eth_tx_queue_setup(uint16_t port_id, uint16_t tx_queue_id, uint16_t nb_tx_desc,
                               unsigned socket_id, const void *tx_conf)
    int rte_eth_dev_start(uint16_t port_id)
    int rte_eth_dev_stop(uint16_t port_id)
    int rte_eth_dev_set_link_up(uint16_t port_id)
    int rte_eth_dev_set_link_down(uint16_t port_id)
    int rte_eth_dev_close(uint16_t port_id)
    int rte_eth_dev_info_get(uint16_t port_id, rte_eth_dev_info *info)
    int rte_eth_dev_get_port_by_name(const char *name, uint16_t *port_id)
    int rte_eth_dev_get_name_by_port(uint16_t port_id, char *name)
    int rte_eth_macaddr_get(uint16_t port_id, rte_ether_addr *mac)
    int rte_eth_promiscuous_enable(uint16_t port_id)
    int rte_eth_allmulticast_enable(uint16_t port_id)
    int rte_eth_dev_set_mtu(uint16_t port_id, uint16_t mtu)
    int rte_eth_dev_get_mtu(uint16_t port_id, uint16_t *mtu)
    int rte_eth_stats_get(uint16_t port_id, rte_eth_stats *stats)
    int rte_eth_stats_reset(uint16_t port_id)
    int rte_eth_link_get_nowait(uint16_t port_id, rte_eth_link *link)
    uint16_t rte_eth_rx_burst(uint16_t port_id, uint16_t queue_id, rte_mbuf **rx_pkts,
                              uint16_t nb_pkts)
    uint16_t rte_eth_tx_burst(uint16_t port_id, uint16_t queue_id, rte_mbuf **tx_pkts,
                              uint16_t nb_pkts)
    int rte_eth_dev_socket_id(uint16_t port_id)
