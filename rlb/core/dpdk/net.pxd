# DPDK protocol headers and checksum helpers (rte_ip.h, rte_arp.h, rte_icmp.h).
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from rlb.core.dpdk.ethdev cimport rte_ether_addr

cdef extern from "rte_ip.h" nogil:
    struct rte_ipv4_hdr:
        uint8_t version_ihl
        uint8_t type_of_service
        uint16_t total_length
        uint16_t packet_id
        uint16_t fragment_offset
        uint8_t time_to_live
        uint8_t next_proto_id
        uint16_t hdr_checksum
        uint32_t src_addr
        uint32_t dst_addr
    uint16_t rte_ipv4_cksum(const rte_ipv4_hdr *ipv4_hdr)
    uint16_t rte_raw_cksum(const void *buf, size_t len)

cdef extern from "rte_arp.h" nogil:
    struct rte_arp_ipv4:
        rte_ether_addr arp_sha
        uint32_t arp_sip
        rte_ether_addr arp_tha
        uint32_t arp_tip
    struct rte_arp_hdr:
        uint16_t arp_hardware
        uint16_t arp_protocol
        uint8_t arp_hlen
        uint8_t arp_plen
        uint16_t arp_opcode
        rte_arp_ipv4 arp_data

cdef extern from "rte_icmp.h" nogil:
    struct rte_icmp_hdr:
        uint8_t icmp_type
        uint8_t icmp_code
        uint16_t icmp_cksum
        uint16_t icmp_ident
        uint16_t icmp_seq_nb

cdef extern from "rte_byteorder.h" nogil:
    uint16_t rte_be_to_cpu_16(uint16_t x)
    uint32_t rte_be_to_cpu_32(uint32_t x)
    uint16_t rte_cpu_to_be_16(uint16_t x)
    uint32_t rte_cpu_to_be_32(uint32_t x)

cdef extern from "rte_ip.h" nogil:
    uint16_t rte_ipv4_udptcp_cksum(const rte_ipv4_hdr *ipv4_hdr, const void *l4_hdr)

cdef extern from "rte_tcp.h" nogil:
    struct rte_tcp_hdr:
        uint16_t src_port
        uint16_t dst_port
        uint32_t sent_seq
        uint32_t recv_ack
        uint8_t data_off
        uint8_t tcp_flags
        uint16_t rx_win
        uint16_t cksum
        uint16_t tcp_urp

cdef extern from "rte_udp.h" nogil:
    struct rte_udp_hdr:
        uint16_t src_port
        uint16_t dst_port
        uint16_t dgram_len
        uint16_t dgram_cksum
