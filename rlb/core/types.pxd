# Shared C structures of the packet core: ports, routes, neighbours, workers, messages, counters.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t
from rlb.core.capture cimport capture_t
from rlb.core.dpdk.mbuf cimport rte_mbuf, rte_mempool
from rlb.core.dpdk.ring cimport rte_ring
from rlb.core.dpdk.lpm cimport rte_lpm

cdef enum:
    MAX_PORTS = 32             # interfaces: data ports, bonds, VLANs (port index < 255)
    VLAN_IDS = 4096
    MAX_WORKERS = 16
    BURST = 32
    NEIGH_PENDING = 4          # packets held per unresolved neighbour
    NEIGH_MAX_PROBES = 3       # ARP requests before giving up (1 s apart)
    MSG_SIZE = 48              # bytes per ring element (multiple of 4)
    MSG_RING_SIZE = 1024
    ICMP_ERRORS_PER_SEC = 1000 # per worker

# The counters' slots (R_* drop reasons, PORT_*, SVC_*, DEST_*, WORKER_*, CT_*): enums
# generated from the one table of counters, rlb/core/counters.py, by setup.py.
include "counters.pxi"

cdef enum RouteScope:
    SCOPE_GLOBAL = 0
    SCOPE_LINK = 1
    SCOPE_HOST = 2             # own address: local delivery
    SCOPE_KNI_HOST = 3         # deliver to the kernel through kni
    SCOPE_COUNT

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
    MSG_NEIGH_DUMP = 6         # ptr=neigh_t array, a=capacity; worker ends its entries with ip 0
    MSG_GARP = 7               # b=ip port: gratuitous ARP (worker 0 only)
    MSG_PORT_ADDR = 8          # b=ip port: source for ARP requests on the port
    MSG_NEIGH_FLUSH = 9        # drop learned neighbours (port or all)
    MSG_SVC_SET = 10           # a=slot ptr=svc_t (configuration part)
    MSG_SVC_DEL = 11           # a=slot
    MSG_DEST_SET = 12          # a=slot ptr=dest_t (configuration part)
    MSG_DEST_DEL = 13          # a=slot b=1: its connections drain (else they end)
    MSG_SVC_TABLE = 14         # a=slot ptr=uint32_t[b] (shared, read only) or 0
    MSG_CONN_DUMP = 15         # ptr=conn_t array, a=capacity; worker writes count to the array's end marker
    MSG_ZERO = 16              # a=service slot or NONE32: zero its (or all) counters
    MSG_SYNC_IN = 17           # ptr=sync_rec_t array, a=count: the peer's connections, for
                               # this worker's table (rlb.ha.sync)
    MSG_SYNC_DUMP = 18         # ptr=sync_rec_t array, a=capacity, b=first slot: this worker's
                               # connections the peer should know (bulk sync); the count
                               # goes to the array's end marker, c=the next slot (0: done)
    MSG_BARRIER = 19           # nothing: once applied, the worker's passes begun before are over

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

cdef enum PortKind:
    PORT_ETH = 0               # a DPDK port the workers receive from: a device or a bond
    PORT_VLAN = 1              # a VLAN on one: its frames tagged on `parent`
    PORT_TUNNEL = 2            # an IPIP or GRE tunnel: its packets leave encapsulated, by
                               # the route to its remote end

cdef enum:                     # port_t.tun_flags
    TUN_CSUM = 1               # GRE with a checksum
    TUN_KEY = 2                # GRE with a key

cdef struct port_t:            # an interface of the data plane (index = its number)
    uint16_t port_id           # DPDK port of the data port (a VLAN: its parent's)
    uint16_t kni_id            # DPDK port of its tap (<port>.kni)
    uint8_t has_kni
    uint8_t mac[6]
    uint16_t mtu
    uint8_t kind               # PortKind
    uint8_t parent             # the interface whose port carries its frames (itself for
                               # PORT_ETH)
    uint8_t used               # 0: a deleted VLAN's slot (its frames dropped)
    uint8_t lacp               # an 802.3ad bond: its LACP frames leave on a send call, so
                               # each worker makes one every tick even with nothing to send
    uint16_t vlan_proto        # PORT_VLAN: 0x8100 (802.1Q) or 0x88a8 (802.1ad), host order
    uint16_t vlan_id
    uint32_t tun_local         # PORT_TUNNEL: its ends (host order)
    uint32_t tun_remote
    uint32_t tun_key
    uint8_t tun_proto          # 4 (IPIP) or 47 (GRE)
    uint8_t tun_flags          # TUN_*
    uint8_t tun_ttl            # 0: the inner packet's

cdef struct route_t:
    uint32_t prefix            # host byte order
    uint32_t gw                # 0: on-link
    uint32_t src
    uint16_t mtu
    uint8_t plen
    uint8_t scope
    uint8_t port
    uint8_t used
    uint8_t sapool             # a local address pool (FNAT/SNAT): replies find their worker by port
    uint8_t kni_arp            # an own address whose ARP the kernel answers (VRRP moves it)

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

# ------------------------------------------------- virtual services and connections

cdef enum:
    MAX_MODES = 8
    MAX_SCHEDS = 16
    MAX_DESTS_PER_SVC = 256
    MAX_LADDRS_PER_SVC = 16
    NONE32 = 0xffffffff
    WHEEL_SLOTS = 4096         # timer wheel, one slot per tick
    TICKS_PER_SEC = 10
    REDIRECT_RING_SIZE = 4096
    DEFAULT_SVC_CAP = 256      # service slots (Engine's svc_cap)
    DEFAULT_DEST_CAP = 4096    # real server slots, all services together (dest_cap)
    KNI_POLL_EVERY = 8         # loops between polls of the kni taps (a power of two)
    MAX_MATCH_SVCS = 64        # SNAT match services (-H), tried in order
    # Health probes leave the kernel from a local port PROBE_PORT_MIN + the real server's
    # dest slot (rlb.health.path): a range no FNAT/SNAT local port takes (xmit.pxd's
    # LPORT_MAX is below it) and right above Linux's ephemeral ports (32768-60999), so a
    # probe never shares a connection's tuple, and its port says which real server it is
    # for. It ends before 65535, which no kernel rule's port range may hold
    PROBE_PORT_MIN = 61000
    PROBE_PORTS = 4096         # = DEFAULT_DEST_CAP: every real server of a default table
    # The data plane's own TCP prober (probe.pxd): a SYN per check, sent by worker 0 from
    # the slots the control plane queues, and the answer (SYN-ACK or reset) of each
    # reported back; the sequence number names the check (slot, round) so that any
    # worker knows an answer as one of ours
    PROBE_ROUND_BITS = 12
    PROBE_MAX_SLOTS = 1 << 20  # slots the sequence number can name (32 - PROBE_ROUND_BITS)
    PROBE_RING_SIZE = 16384    # probes queued or answers waiting, at most
    SYNC_RING_SIZE = 16384     # connection events waiting for the control plane (rlb.ha.sync)

cdef enum:                     # sync_rec_t.event
    SYNC_STATE = 1             # a connection the peer should hold (new, or its state changed)
    SYNC_FREE = 2              # ended: the peer forgets it

cdef enum:                     # conn_t.sync
    CONN_SYNC_KNOWN = 1        # the peer holds it (sent, or received from it): say its end

cdef struct sync_rec_t:        # one connection event, as the wire carries it (little endian)
    uint32_t caddr
    uint32_t vaddr
    uint32_t laddr
    uint32_t daddr
    uint16_t cport
    uint16_t vport
    uint16_t lport
    uint16_t dport
    uint32_t seq_delta
    uint32_t ts_delta
    uint8_t proto
    uint8_t state
    uint8_t flags
    uint8_t event
    uint8_t wid                # the worker that holds it
    uint8_t cport_in
    uint16_t pad

cdef enum:                     # probe_done_t.kind
    PROBE_OPEN = 1             # SYN-ACK: something listens (we reset the connection)
    PROBE_REFUSED = 2          # reset: nothing listens

cdef struct probe_t:           # one TCP check in flight (slot = its real server's dest slot)
    uint32_t saddr             # host order: our address it leaves from
    uint32_t daddr             # where it goes (the RIP, or the VIP for DR/Tunnel)
    uint16_t sport
    uint16_t dport
    uint32_t dest              # dest slot whose mode's transmit takes it (at a VIP), or NONE32
    volatile uint32_t seq      # the SYN's sequence number; 0: none in flight
    uint16_t rounds            # probes sent from this slot (the seq's low bits)
    uint8_t port               # data port of its source address
    uint8_t pad
    volatile uint64_t sent_tsc

cdef struct probe_done_t:      # an answer, from the worker that received it
    uint32_t slot
    uint32_t seq
    uint32_t kind
    uint32_t pad
    uint64_t tsc

cdef enum ConnState:           # LVS TCP states; UDP uses NONE/ESTABLISHED
    CS_NONE = 0
    CS_ESTABLISHED
    CS_SYN_SENT
    CS_SYN_RECV
    CS_FIN_WAIT
    CS_TIME_WAIT
    CS_CLOSE
    CS_CLOSE_WAIT
    CS_LAST_ACK
    CS_LISTEN
    CS_SYNACK
    CS_UDP                     # UDP "connection"
    CS_MAX

cdef enum:                     # svc_t.flags
    SVC_F_PERSISTENT = 1
    SVC_F_MATCH = 4            # SNAT: found by svc_t.match, not by VIP:port
    SVC_F_CLIENT_OWNER = 8     # NAT: the client's address and port pick the worker, both ways

cdef enum:                     # dest_t.flags
    DEST_F_AVAILABLE = 1       # may take new connections (weight > 0, not overloaded)
    DEST_F_DELETED = 2         # gone: no new connection
    DEST_F_DRAINING = 4        # ... and its connections go on until they end

cdef enum:                     # conn_t.flags
    CONN_F_TOA_SYN = 1         # client address went to the RS in the SYN
    CONN_F_TOA_ACK = 2         # ... and in the first ACK (done)
    CONN_F_ACTIVE = 4          # counted in dest.activeconns (else inactconns)
    CONN_F_TEMPLATE = 8        # persistence template: client (masked) -> dest
    CONN_F_UOA_ONE = 16        # FNAT UDP: UOA sent in 1, 2, 3 datagrams (a 2-bit count)
    CONN_F_UOA_DONE = 48       # ... or no more (3 sent, or the server answered)
    CONN_F_SEQ = 64            # FNAT: seq_delta set (at the first SYN)
    CONN_F_ANSWERED = 128      # the real server's side sent a packet (or its mode's replies
                               # bypass us: DR, Tunnel): not counted unanswered at its end

cdef struct dest_t:            # a real server of one service (each worker has its copy)
    uint32_t addr              # host order
    uint16_t port
    uint8_t used
    uint8_t flags
    uint8_t mode               # forwarding mode index (engine.modes)
    uint8_t gen                # bumped when the slot is deleted or reused
    uint16_t svc
    int32_t weight
    uint32_t u_threshold       # 0: none
    uint32_t l_threshold
    uint32_t activeconns       # this worker's
    uint32_t inactconns
    uint64_t conns             # connections scheduled here (SNAT's local port cursor)
    uint32_t fails_in_row      # passive check: connections unanswered or refused since the
    uint32_t pad               # last answered one (this worker's)
    uint64_t answered_tsc      # rdtsc of the last answer (0: none), of the last failure: the
    uint64_t failed_tsc        # workers' runs are combined by time (stats.pyx)
    uint64_t stats[DEST_COUNT] # counters.py's DEST group

cdef struct laddr_t:           # FNAT local address of a service
    uint32_t addr
    uint8_t port               # data port the RS side is reached by
    uint8_t pad[3]
    uint32_t cursor            # next local port to try (this worker)
    uint64_t used              # connections holding a port of it
    uint64_t miss              # no free port found

cdef struct match_t:           # ipvsadm -H proto=,src-range=,dst-range=,iif=,oif=
    uint32_t src_lo            # host order, inclusive
    uint32_t src_hi
    uint32_t dst_lo
    uint32_t dst_hi
    uint16_t sport_lo
    uint16_t sport_hi
    uint16_t dport_lo
    uint16_t dport_hi
    uint8_t proto              # 0: TCP, UDP and ICMP echo
    uint8_t iif                # port index + 1; 0: any
    uint8_t oif                # port index + 1 of the route to the destination; 0: any
    uint8_t pad

cdef struct svc_t:
    uint32_t vaddr             # host order
    uint16_t vport
    uint8_t proto              # 6 tcp, 17 udp
    uint8_t used
    uint8_t sched              # scheduler index (engine.scheds)
    uint8_t flags
    uint16_t ndests
    uint32_t timeout           # persistence, seconds
    uint32_t netmask           # persistence granularity
    uint16_t nladdrs
    uint16_t pad
    uint32_t sched_cursor      # rr/wrr position (this worker)
    int32_t sched_cw           # wrr current weight
    uint32_t laddr_cursor      # FNAT: local address of the next flow (this worker, in turn)
    uint32_t *table            # sh/mh lookup table of dest slots (shared, read only)
    uint32_t table_size
    uint32_t dests[MAX_DESTS_PER_SVC]       # dest slots
    laddr_t laddrs[MAX_LADDRS_PER_SVC]
    uint64_t stats[SVC_COUNT]  # counters.py's SVC group
    match_t match              # SVC_F_MATCH services

cdef struct conn_t:            # one flow, both directions (bytes per entry: see bench)
    uint32_t caddr             # client
    uint32_t vaddr             # virtual address
    uint32_t laddr             # local (FNAT) address, or caddr
    uint32_t daddr             # real server
    uint16_t cport
    uint16_t vport
    uint16_t lport
    uint16_t dport
    uint32_t hnext[2]          # hash chains: [0] client side, [1] server side (slot<<1|dir)
    uint32_t tnext             # timer wheel list (doubly linked: states shorten timeouts)
    uint32_t tprev
    uint32_t expires           # tick
    uint32_t dest              # dest slot | generation << 24 (a reused slot is not ours)
    uint32_t seq_delta         # FNAT: server-side ISN minus the client's (a fresh ISN per flow)
    uint32_t ts_delta          # FNAT: our timestamp clock minus the client's TSval
    uint16_t svc
    uint16_t wslot             # wheel slot it is linked in
    uint8_t proto
    uint8_t state
    uint8_t flags
    uint8_t mode
    uint8_t cport_in           # data port the client side uses
    uint8_t laddr_idx          # index in the service's laddrs
    uint8_t sync               # CONN_SYNC_*: what the peer LB knows of it (rlb.ha.sync)

ctypedef conn_t *conn_p

cdef struct worker_t
cdef struct engine_t

# A forwarding mode hands the core these, once, in a PyCapsule (rlb/modes/).
ctypedef int (*mode_conn_init_t)(engine_t *e, worker_t *w, svc_t *s, dest_t *d, conn_t *c,
                                 rte_mbuf *m) noexcept nogil
ctypedef void (*mode_xmit_t)(engine_t *e, worker_t *w, conn_t *c, rte_mbuf *m) noexcept nogil
ctypedef void (*mode_conn_free_t)(engine_t *e, worker_t *w, conn_t *c) noexcept nogil

cdef struct mode_ops_t:
    mode_conn_init_t conn_init # 0: ok; <0: cannot (no local address...), packet dropped
    mode_xmit_t xmit_in        # client -> real server
    mode_xmit_t xmit_out       # real server -> client
    mode_conn_free_t conn_free # release what conn_init took
    uint8_t direct_reply       # real servers answer clients themselves (DR, Tunnel): a reply
                               # from one that reaches us is dropped on any worker

# A scheduler picks a dest slot for a new flow, or NONE32.
ctypedef uint32_t (*sched_select_t)(engine_t *e, worker_t *w, svc_t *s, uint32_t caddr,
                                    uint16_t cport) noexcept nogil

cdef struct sched_ops_t:
    sched_select_t select

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
    uint32_t default_route     # slot of 0.0.0.0/0 (not in the LPM), or NONE32
    neigh_t *neigh
    uint32_t neigh_mask
    uint32_t port_addr[MAX_PORTS]
    uint64_t next_timer
    txbuf_t tx[MAX_PORTS]      # to data ports
    txbuf_t kni[MAX_PORTS]     # to the kernel
    uint64_t pstats[MAX_PORTS][PORT_COUNT]   # counters.py's PORT group (the workers' part)
    uint64_t reasons[R_COUNT]
    uint32_t icmp_tokens       # ICMP errors still allowed this second (RFC 1812 4.3.2.8)
    uint32_t kni_tokens        # bulk frames to the kernel still allowed this tick (kni-rate)
    # virtual services (copies, changed by messages) and this worker's connections
    svc_t *svcs
    uint32_t *svc_hash         # open addressing: svc slot + 1, 0 empty
    uint32_t svc_hash_mask
    uint32_t *vips             # addresses that are some service's VIP, 0 empty
    uint32_t vip_mask
    uint32_t *natdests         # dest slot + 1: RSs of CLIENT_OWNER services, direct_reply modes
    uint16_t nmatch
    uint16_t match_slots[MAX_MATCH_SVCS]
    dest_t *dests
    conn_t *conns
    uint32_t *conn_hash        # chain heads: slot<<1|dir, NONE32 empty
    uint32_t conn_hash_mask
    uint32_t conn_free         # free list through tnext
    uint32_t nconns
    uint32_t wheel[WHEEL_SLOTS]
    uint32_t tick              # current timer tick
    uint64_t next_tick
    rte_ring *redirect         # mbufs another worker received for our connections
    uint64_t ct_stats[CT_COUNT]              # counters.py's CONNS group
    uint64_t stats[WORKER_COUNT]             # counters.py's WORKER group
    engine_t *engine           # the one it works for (set at creation)

cdef struct engine_t:
    volatile int stop
    volatile int ip_forward
    volatile int busy_poll
    volatile uint32_t idle_sleep_us
    volatile int vip_miss_kni  # a VIP port without service: to kni instead of dropped
    volatile uint32_t kni_per_tick  # bulk frames a worker may hand the kernel a tick (0: any)
    uint64_t neigh_timeout     # tsc ticks a learned entry stays valid
    uint64_t tsc_hz
    uint16_t nports
    uint16_t nworkers
    uint32_t svc_cap
    uint32_t dest_cap
    uint32_t conn_cap          # per worker
    uint32_t timeouts[CS_MAX]  # ticks per state (ipvsadm --set)
    uint32_t *rr_cursor        # per service slot, shared: rr alternates over all workers
    mode_ops_t *modes[MAX_MODES]
    sched_ops_t *scheds[MAX_SCHEDS]
    uint32_t route_cap
    uint32_t neigh_cap
    rte_mempool *pool
    port_t ports[MAX_PORTS]
    uint8_t *vlan_if           # [port * VLAN_IDS + vid]: the VLAN interface's index + 1, 0 none
    worker_t *workers[MAX_WORKERS]
    probe_t *probes            # TCP prober: per dest slot (probe_cap = dest_cap)
    uint32_t probe_cap
    uint32_t probe_secret      # xor'ed into the sequence numbers
    rte_ring *probe_todo       # dest slots to probe: control plane -> worker 0
    rte_ring *probe_done       # probe_done_t: workers -> control plane
    volatile int sync_on       # connection events go to sync_out (rlb.ha.sync)
    rte_ring *sync_out         # sync_rec_t: workers -> control plane
    capture_t capture          # the port being captured, if any (capture.pxd)
