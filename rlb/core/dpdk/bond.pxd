# DPDK's bonding PMD (net_bonding): what `show interface BOND` reads of a bond and its slaves.
from libc.stdint cimport uint8_t, uint16_t
from rlb.core.dpdk.ethdev cimport rte_ether_addr

cdef extern from "rte_eth_bond.h" nogil:
    int rte_eth_bond_mode_get(uint16_t bonded_port_id)
    int rte_eth_bond_primary_get(uint16_t bonded_port_id)
    int rte_eth_bond_slaves_get(uint16_t bonded_port_id, uint16_t *slaves, uint16_t len)
    int rte_eth_bond_active_slaves_get(uint16_t bonded_port_id, uint16_t *slaves, uint16_t len)
    int rte_eth_bond_xmit_policy_get(uint16_t bonded_port_id)
    int rte_eth_bond_slave_add(uint16_t bonded_port_id, uint16_t slave_port_id)
    int rte_eth_bond_slave_remove(uint16_t bonded_port_id, uint16_t slave_port_id)

cdef extern from "rte_eth_bond_8023ad.h" nogil:
    enum rte_bond_8023ad_selection:
        UNSELECTED
        STANDBY
        SELECTED
    struct port_params:
        uint16_t system_priority
        rte_ether_addr system
        uint16_t key
        uint16_t port_priority
        uint16_t port_number
    struct lacp_slave_info "rte_eth_bond_8023ad_slave_info":
        rte_bond_8023ad_selection selected
        uint8_t actor_state
        port_params actor
        uint8_t partner_state
        port_params partner
        uint16_t agg_port_id
    int rte_eth_bond_8023ad_slave_info(uint16_t port_id, uint16_t slave_id,
                                       lacp_slave_info *conf)
