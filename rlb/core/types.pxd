# Shared C structures of the packet core: ports, routes, neighbours, workers, messages, counters.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from rlb.core.dpdk.mbuf cimport rte_mbuf, rte_mempool
from rlb.core.dpdk.ring cimport rte_ring
from rlb.core.dpdk.lpm cimport rte_lpm

cdef enum:
    MAX_PORTS = 8
    MAX_WORKERS = 16
    BURST = 32
    NEIGH_PENDING = 4          # packets held per unresolved neighbour
    NEIGH_MAX_PROBES = 3       # ARP requests before giving up (1 s apart)
    MSG_SIZE = 48              # bytes per ring element (multiple of 4)
    MSG_RING_SIZE = 1024
    ICMP_ERRORS_PER_SEC = 1000 # per worker

# Why a packet was dropped or punted. Names for `show` live in dataplane.pyx
# (REASON_NAMES) in this same order.
cdef enum:  # Reason
    R_TRUNCATED = 0            # frame shorter than its headers
    R_IP_VERSION               # IPv4 ethertype, version != 4
    R_IP_HDRLEN                # IHL < 5 or beyond the frame
    R_IP_TOTLEN                # total length < header or > frame
    R_IP_CSUM                  # bad header checksum
    R_IP_OPTIONS               # options present: punted to kni
    R_IP_FRAG                  # fragment for us: punted to kni
    R_L2_OTHER_HOST            # unicast frame for another MAC (promiscuous port)
    R_ETHERTYPE_KNI            # non-IPv4/ARP ethertype: punted to kni
    R_ARP_BAD                  # malformed ARP
    R_ARP_FOREIGN              # ARP for an address we do not own: punted to kni
    R_TTL_EXCEEDED             # forwarding with TTL <= 1
    R_NO_ROUTE                 # forwarding enabled, no route
    R_FWD_DISABLED             # not ours, forwarding off: punted to kni
    R_NEIGH_QUEUE_FULL         # too many packets waiting for one neighbour
    R_NEIGH_UNRESOLVED         # neighbour never answered: its queue dropped
    R_NEIGH_TABLE_FULL         # no room for a new neighbour entry
    R_TX_FULL                  # port transmit queue full
    R_KNI_FULL                 # kni (tap) transmit queue full
    R_NO_MBUF                  # could not allocate an mbuf (ARP, copies)
    R_MSG_RING_FULL            # neighbour update to another worker lost
    R_ICMP_RATELIMIT           # an ICMP error not sent: over the per-second budget
    R_MAX

cdef enum RouteScope:
    SCOPE_GLOBAL = 0
    SCOPE_LINK = 1
    SCOPE_HOST = 2             # own address: local delivery
    SCOPE_KNI_HOST = 3         # deliver to the kernel through kni

cdef enum NeighState:
    NEIGH_EMPTY = 0
    NEIGH_INCOMPLETE = 1
    NEIGH_REACHABLE = 2
    NEIGH_STATIC = 3

cdef enum MsgType:
    MSG_ROUTE_SET = 1          # a=index b=prefix c=gw d=src plen scope port mtu
    MSG_ROUTE_DEL = 2          # a=index b=prefix plen
    MSG_NEIGH_SET = 3          # b=ip mac port flags(static)
    MSG_NEIGH_DEL = 4          # b=ip
    MSG_NEIGH_LEARN = 5        # from another worker: b=ip mac port (no ack)
    MSG_NEIGH_DUMP = 6         # ptr=neigh_t array, a=capacity; worker writes count to d
    MSG_GARP = 7               # b=ip port: gratuitous ARP (worker 0 only)
    MSG_PORT_ADDR = 8          # b=ip port: source for ARP requests on the port
    MSG_NEIGH_FLUSH = 9        # drop learned neighbours (port or all)

cdef struct msg_t:
    uint32_t seq               # 0: no acknowledgement expected
    uint16_t type
    uint16_t port
    uint32_t a
    uint32_t b
    uint32_t c
    uint32_t d
    uint8_t plen
    uint8_t scope
    uint8_t flags
    uint8_t pad
    uint8_t mac[6]
    uint16_t mtu
    uint64_t ptr
    uint64_t pad2

cdef struct port_t:
    uint16_t port_id           # DPDK port of the data port
    uint16_t kni_id            # DPDK port of its tap (<port>.kni)
    uint8_t has_kni
    uint8_t mac[6]
    uint16_t mtu

cdef struct route_t:
    uint32_t prefix            # host byte order
    uint32_t gw                # 0: on-link
    uint32_t src
    uint16_t mtu
    uint8_t plen
    uint8_t scope
    uint8_t port
    uint8_t used

cdef struct neigh_t:
    uint32_t ip                # host byte order, 0 = empty slot
    uint8_t mac[6]
    uint8_t state
    uint8_t port
    uint8_t npending
    uint8_t probes
    uint16_t pad
    uint64_t updated           # tsc of last confirmation
    uint64_t probed            # tsc of last ARP request
    rte_mbuf *pending[NEIGH_PENDING]

cdef struct port_stats_t:
    uint64_t rx_pkts
    uint64_t rx_bytes
    uint64_t tx_pkts
    uint64_t tx_bytes
    uint64_t to_kni
    uint64_t from_kni

cdef struct txbuf_t:
    uint16_t n
    rte_mbuf *pkts[BURST]

cdef struct worker_t:
    uint16_t id
    uint16_t queue             # rx/tx queue index on every port
    unsigned lcore
    volatile uint32_t applied_seq
    volatile int running
    rte_ring *ring             # messages in (control plane and other workers)
    rte_lpm *lpm
    route_t *routes
    neigh_t *neigh
    uint32_t neigh_mask
    uint32_t port_addr[MAX_PORTS]
    uint64_t next_timer
    txbuf_t tx[MAX_PORTS]      # to data ports
    txbuf_t kni[MAX_PORTS]     # to the kernel
    port_stats_t pstats[MAX_PORTS]
    uint64_t reasons[R_MAX]
    uint32_t icmp_tokens       # ICMP errors still allowed this second (RFC 1812 4.3.2.8)
    uint64_t polls
    uint64_t idle_sleeps

cdef struct engine_t:
    volatile int stop
    volatile int ip_forward
    volatile int busy_poll
    volatile uint32_t idle_sleep_us
    uint64_t neigh_timeout     # tsc ticks a learned entry stays valid
    uint64_t tsc_hz
    uint16_t nports
    uint16_t nworkers
    uint32_t route_cap
    uint32_t neigh_cap
    rte_mempool *pool
    port_t ports[MAX_PORTS]
    worker_t *workers[MAX_WORKERS]
