"""The engine's lifecycle and control API: EAL, ports, kni taps, workers, their messages.

One engine per process (DPDK's EAL is process-global), the `Engine` class. Its parts:
worker.pyx runs on the worker lcores (the nogil loop and the messages it applies),
stats.pyx turns the workers' counters into dicts (the table: counters.py), consts.pyx
exports the enums and limits. The control plane talks to the workers only through
fixed-size messages in each worker's ring (types.pxd) and reads their counters.
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, uintptr_t
from libc.string cimport memset, memcpy
from libc.stdlib cimport free, calloc
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid

from rlb.core.dpdk.eal cimport *
from rlb.core.dpdk.mbuf cimport *
from rlb.core.dpdk.ring cimport *
from rlb.core.dpdk.lpm cimport *
from rlb.core.dpdk.ethdev cimport *
from rlb.core.dpdk.bond cimport rte_eth_bond_slave_add, rte_eth_bond_slave_remove
from rlb.core.types cimport *
from rlb.core.neigh cimport neigh_remove
from rlb.core.conn cimport OFF_WHEEL
from rlb.core.worker cimport worker_main
from rlb.core.capture cimport (capture_t, cap_rec_t, rte_bpf, rlb_bpf_fn, rlb_bpf_compile,
                               rte_bpf_destroy, CAP_RING)
from rlb.core cimport stats

import os

from rlb.core.consts import CONN_STATES, DEFAULT_TIMEOUTS, TIMEOUT_NAMES

cdef engine_t g
cdef int g_eal_up = 0
cdef int g_launched = 0
cdef uint32_t g_seq = 0


class DataplaneError(RuntimeError):
    """The DPDK layer refused something; the message says what and why."""


cdef worker_t *worker_new(uint16_t wid) except NULL:
    cdef worker_t *w = <worker_t *>rte_zmalloc(b"rlb_worker", sizeof(worker_t), 64)
    cdef rte_lpm_config cfg
    cdef uint32_t k, hsize
    if w == NULL:
        raise DataplaneError("out of memory for worker state")
    w.id = wid
    w.queue = wid
    w.engine = &g
    name = f"rlb_msg{wid}".encode()
    w.ring = rte_ring_create_elem(name, MSG_SIZE, MSG_RING_SIZE, rte_socket_id(), RING_F_SC_DEQ)
    cfg.max_rules = g.route_cap
    cfg.number_tbl8s = 256
    cfg.flags = 0
    name = f"rlb_lpm{wid}".encode()
    w.lpm = rte_lpm_create(name, rte_socket_id(), &cfg)
    w.routes = <route_t *>rte_zmalloc(b"rlb_routes", sizeof(route_t) * g.route_cap, 64)
    w.neigh = <neigh_t *>rte_zmalloc(b"rlb_neigh", sizeof(neigh_t) * g.neigh_cap, 64)
    w.neigh_mask = g.neigh_cap - 1
    w.default_route = NONE32
    if w.ring == NULL or w.lpm == NULL or w.routes == NULL or w.neigh == NULL:
        raise DataplaneError(f"worker {wid}: cannot allocate tables: {rte_strerror(rte_errno).decode()}")
    hsize = _pow2(g.svc_cap * 2)
    w.svcs = <svc_t *>rte_zmalloc(b"rlb_svcs", sizeof(svc_t) * g.svc_cap, 64)
    w.svc_hash = <uint32_t *>rte_zmalloc(b"rlb_svch", sizeof(uint32_t) * hsize, 64)
    w.svc_hash_mask = hsize - 1
    hsize = _pow2(max(g.svc_cap, g.dest_cap) * 2)        # VIPs and NAT servers share a size
    w.vips = <uint32_t *>rte_zmalloc(b"rlb_vips", sizeof(uint32_t) * hsize, 64)
    w.natdests = <uint32_t *>rte_zmalloc(b"rlb_natd", sizeof(uint32_t) * hsize, 64)
    w.vip_mask = hsize - 1
    w.dests = <dest_t *>rte_zmalloc(b"rlb_dests", sizeof(dest_t) * g.dest_cap, 64)
    w.conns = <conn_t *>rte_zmalloc(b"rlb_conns", sizeof(conn_t) * g.conn_cap, 64)
    hsize = _pow2(g.conn_cap * 2)
    w.conn_hash = <uint32_t *>rte_zmalloc(b"rlb_connh", sizeof(uint32_t) * hsize, 64)
    w.conn_hash_mask = hsize - 1
    name = f"rlb_redir{wid}".encode()
    w.redirect = rte_ring_create(name, REDIRECT_RING_SIZE, rte_socket_id(), RING_F_SC_DEQ)
    if (w.svcs == NULL or w.svc_hash == NULL or w.vips == NULL or w.natdests == NULL
            or w.dests == NULL
            or w.conns == NULL or w.conn_hash == NULL or w.redirect == NULL):
        raise DataplaneError(f"worker {wid}: cannot allocate the connection tables "
                             f"({g.conn_cap} connections): raise `memory` in the dataplane section")
    memset(w.conn_hash, 0xff, sizeof(uint32_t) * hsize)
    memset(w.wheel, 0xff, sizeof(w.wheel))
    for k in range(g.conn_cap):
        w.conns[k].tnext = k + 1
        w.conns[k].wslot = OFF_WHEEL
    w.conns[g.conn_cap - 1].tnext = NONE32
    w.conn_free = 0
    return w


cdef int _prober_new() except -1:
    """The TCP prober's table and rings (probe.pxd). A dest table too large for the
    sequence number to name every slot has none: its checks use kernel sockets."""
    if g.dest_cap > PROBE_MAX_SLOTS:
        return 0
    g.probes = <probe_t *>rte_zmalloc(b"rlb_probes", sizeof(probe_t) * g.dest_cap, 64)
    g.probe_todo = rte_ring_create_elem(b"rlb_probe_todo", sizeof(uint32_t), PROBE_RING_SIZE,
                                        rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ)
    g.probe_done = rte_ring_create_elem(b"rlb_probe_done", sizeof(probe_done_t),
                                        PROBE_RING_SIZE, rte_socket_id(), RING_F_SC_DEQ)
    if g.probes == NULL or g.probe_todo == NULL or g.probe_done == NULL:
        raise DataplaneError("out of memory for the health prober's tables")
    g.probe_secret = int.from_bytes(os.urandom(4), "little")
    g.probe_cap = g.dest_cap
    return 0


def tunnel_mtu(int proto, key, bint csum):
    """A tunnel's MTU on a 1500-byte underlay: less its outer IPv4 header and GRE's."""
    return 1500 - 20 - (0 if proto == 4 else 4 + (4 if key is not None else 0) +
                        (4 if csum else 0))


def _pow2(n):
    p = 1
    while p < n:
        p <<= 1
    return p


def _check(int rc, what):
    if rc < 0:
        raise DataplaneError(f"{what}: {rte_strerror(-rc).decode()} ({rc})")


cdef class Engine:
    """The process's DPDK engine. Create once; start(); send messages; stop()."""
    cdef public list port_names
    cdef public int nworkers
    cdef dict _tables

    def __init__(self, eal_args, ports, *, workers=1, pool_size=16384, route_cap=1024,
                 neigh_cap=1024, busy_poll=False, idle_sleep_us=200, neigh_timeout=60,
                 ip_forward=False, svc_cap=DEFAULT_SVC_CAP, dest_cap=DEFAULT_DEST_CAP,
                 conn_cap=65536, slaves=()):
        """ports: [(name, devargs, kni_iface or None)]; devargs is a PCI address or a vdev
        string such as 'net_af_packet0,iface=veth0', or a bond of slaves
        ('net_bonding_bond0,mode=4,slave=net_af_packet0,slave=...'). slaves: the devargs
        of the devices bonds take (EAL probes them; the bond drives them, not rlb)."""
        global g_eal_up
        cdef char **argv
        cdef int i, rc, argc
        if g_eal_up:
            raise DataplaneError("the DPDK engine is already running in this process")
        if not 1 <= workers <= MAX_WORKERS:
            raise DataplaneError(f"workers must be 1..{MAX_WORKERS}")
        if not 1 <= len(ports) <= MAX_PORTS:
            raise DataplaneError(f"1..{MAX_PORTS} ports are supported")
        if neigh_cap & (neigh_cap - 1) or route_cap < 16:
            raise DataplaneError("neighbour table size must be a power of two, routes >= 16")
        memset(&g, 0, sizeof(g))
        args = [b"rlb"] + [a.encode() for a in eal_args]
        for devargs in [*slaves, *(p[1] for p in ports)]:      # a bond after its slaves
            args += [b"-a" if _is_pci(devargs) else b"--vdev", devargs.encode()]
        argv = <char **>PyMem_Malloc(sizeof(char *) * (len(args) + 1))
        for i, a in enumerate(args):
            argv[i] = a
        argc = len(args)
        argv[argc] = NULL
        with nogil:
            rc = rte_eal_init(argc, argv)
        PyMem_Free(argv)
        if rc < 0:
            raise DataplaneError(f"EAL init failed: {rte_strerror(rte_errno).decode()}")
        g_eal_up = 1
        self.port_names = [p[0] for p in ports]
        self._tables = {}
        self.nworkers = workers
        g.nworkers = workers
        g.nports = len(ports)
        g.route_cap = route_cap
        g.neigh_cap = neigh_cap
        g.svc_cap = svc_cap
        g.dest_cap = dest_cap
        g.conn_cap = conn_cap
        for i, name in enumerate(CONN_STATES):
            g.timeouts[i] = DEFAULT_TIMEOUTS[name] * TICKS_PER_SEC
        g.tsc_hz = rte_get_tsc_hz()
        g.neigh_timeout = g.tsc_hz * neigh_timeout
        g.busy_poll = 1 if busy_poll else 0
        g.idle_sleep_us = idle_sleep_us
        g.ip_forward = 1 if ip_forward else 0
        if rte_lcore_count() < workers + 1:
            raise DataplaneError(f"EAL has {rte_lcore_count()} lcores, need {workers + 1}")
        g.pool = rte_pktmbuf_pool_create(b"rlb_pool", pool_size, 256, 0,
                                         RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id())
        if g.pool == NULL:
            raise DataplaneError(f"mbuf pool of {pool_size}: {rte_strerror(rte_errno).decode()}")
        g.rr_cursor = <uint32_t *>rte_zmalloc(b"rlb_rr", sizeof(uint32_t) * svc_cap, 64)
        g.vlan_if = <uint8_t *>rte_zmalloc(b"rlb_vlans", MAX_PORTS * VLAN_IDS, 64)
        if g.rr_cursor == NULL or g.vlan_if == NULL:
            raise DataplaneError("out of memory for the service table")
        for i, (name, devargs, kni) in enumerate(ports):
            self._open_port(i, name, devargs, kni)
        for i in range(workers):
            g.workers[i] = worker_new(i)
        _prober_new()
        g.sync_out = rte_ring_create_elem(b"rlb_sync_out", sizeof(sync_rec_t), SYNC_RING_SIZE,
                                          rte_socket_id(), RING_F_SC_DEQ)
        if g.sync_out == NULL:
            raise DataplaneError("out of memory for the connection sync queue")

    cdef _open_port(self, int i, str name, str devargs, kni):
        cdef uint16_t pid
        cdef rte_ether_addr mac
        devname = devargs.split(",")[0]
        if rte_eth_dev_get_port_by_name(devname.encode(), &pid) != 0:
            raise DataplaneError(f"port {name}: no DPDK device {devname!r} (check its devargs)")
        g.ports[i].port_id = pid
        g.ports[i].kind = PORT_ETH
        g.ports[i].parent = i
        g.ports[i].used = 1
        g.ports[i].lacp = devname.startswith("net_bonding") and ",mode=4" in devargs
        g.ports[i].mtu = 1500
        self._setup_queues(pid, name, 1024)     # a bond takes its slaves (and their MAC) here
        _check(rte_eth_macaddr_get(pid, &mac), f"port {name}: MAC")
        memcpy(g.ports[i].mac, mac.addr_bytes, 6)
        if kni:
            self._open_kni(i, name, kni)
            g.ports[i].has_kni = 1              # its workers are not running yet

    cdef _open_kni(self, int i, str name, str kni):
        """The interface's tap (<name>.kni), with its MAC."""
        cdef uint16_t pid
        macs = ":".join(f"{b:02x}" for b in g.ports[i].mac[:6])
        tapname = f"net_tap_{name}"
        _check(rte_dev_probe(f"{tapname},iface={kni},mac={macs}".encode()), f"{name}: kni tap")
        if rte_eth_dev_get_port_by_name(tapname.encode(), &pid) != 0:
            raise DataplaneError(f"{name}: kni tap did not appear")
        g.ports[i].kni_id = pid
        self._setup_queues(pid, kni, 256)
        return pid

    cdef _setup_queues(self, uint16_t pid, str name, uint16_t ndesc):
        cdef rte_eth_conf conf
        cdef uint16_t q
        memset(&conf, 0, sizeof(conf))
        _check(rte_eth_dev_configure(pid, g.nworkers, g.nworkers, &conf), f"{name}: configure")
        sock = rte_eth_dev_socket_id(pid)
        if sock < 0:
            sock = 0
        for q in range(g.nworkers):
            _check(rte_eth_rx_queue_setup(pid, q, ndesc, sock, NULL, g.pool), f"{name}: rx queue")
            _check(rte_eth_tx_queue_setup(pid, q, ndesc, sock, NULL), f"{name}: tx queue")

    def start(self):
        """Start the ports and launch one worker per lcore after the main one."""
        global g_launched
        cdef unsigned lcore = rte_get_main_lcore()
        cdef int i
        for i in range(g.nports):
            _check(rte_eth_dev_start(g.ports[i].port_id), f"port {self.port_names[i]}: start")
            rte_eth_promiscuous_enable(g.ports[i].port_id)
            if g.ports[i].has_kni:
                _check(rte_eth_dev_start(g.ports[i].kni_id), f"{self.port_names[i]}.kni: start")
        for i in range(g.nworkers):
            lcore = rte_get_next_lcore(lcore, 1, 0)
            g.workers[i].lcore = lcore
            _check(rte_eal_remote_launch(worker_main, g.workers[i], lcore), "launch worker")
        g_launched = 1

    def stop(self):
        """Stop workers, drop held packets, close ports (their taps disappear), free EAL."""
        global g_eal_up, g_launched
        cdef int i
        cdef uint32_t k
        cdef worker_t *w
        cdef rte_mbuf *mb
        if not g_eal_up:
            return
        g.stop = 1
        g.capture.on = 0
        if g_launched:
            with nogil:
                rte_eal_mp_wait_lcore()
            g_launched = 0
        _capture_free()
        for i in range(g.nworkers):
            w = g.workers[i]
            if w == NULL:
                continue
            k = 0
            while k < g.neigh_cap:
                if w.neigh[k].ip and w.neigh[k].npending:
                    neigh_remove(w, &w.neigh[k], R_NEIGH_UNRESOLVED)
                    continue
                k += 1
            while rte_ring_dequeue_burst(w.redirect, <void **>&mb, 1, NULL) == 1:
                rte_pktmbuf_free(mb)
        for i in range(g.nports):
            if g.ports[i].has_kni:
                rte_eth_dev_stop(g.ports[i].kni_id)
                rte_eth_dev_close(g.ports[i].kni_id)
            if g.ports[i].kind == PORT_ETH:
                rte_eth_dev_stop(g.ports[i].port_id)
                rte_eth_dev_close(g.ports[i].port_id)
        rte_eal_cleanup()
        g_eal_up = 0

    # -- messages

    def send(self, int mtype, *, int port=0, uint32_t a=0, uint32_t b=0, uint32_t c=0,
             uint32_t d=0, int plen=0, int scope=0, int flags=0, bytes mac=None, int mtu=0,
             uintptr_t ptr=0, double timeout=2.0, int only=-1):
        """Send one message to every worker (or worker `only`) and wait until each has
        applied it."""
        global g_seq
        cdef msg_t msg
        cdef int i
        cdef uint64_t deadline
        memset(&msg, 0, sizeof(msg))
        g_seq += 1
        msg.seq = g_seq
        msg.type = mtype
        msg.port = port
        msg.a = a
        msg.b = b
        msg.c = c
        msg.d = d
        msg.plen = plen
        msg.scope = scope
        msg.flags = flags
        msg.mtu = mtu
        msg.ptr = ptr
        if mac is not None:
            memcpy(msg.mac, <const char *>mac, 6)
        deadline = rte_rdtsc() + <uint64_t>(timeout * g.tsc_hz)
        cdef int first = 0, last = g.nworkers
        if only >= 0:
            first, last = only, only + 1
        with nogil:
            for i in range(first, last):
                while rte_ring_enqueue_elem(g.workers[i].ring, &msg, MSG_SIZE) != 0:
                    if rte_rdtsc() > deadline:
                        break
                    rte_delay_us_sleep(100)
            for i in range(first, last):
                while g.workers[i].applied_seq < msg.seq and rte_rdtsc() < deadline:
                    rte_delay_us_sleep(20)
        for i in range(first, last):
            if g.workers[i].applied_seq < msg.seq:
                raise DataplaneError(f"worker {i} did not apply the change in {timeout}s")

    def route_set(self, int index, uint32_t prefix, int plen, *, uint32_t gw=0, uint32_t src=0,
                  int port=0, int scope=0, int mtu=1500, bint sapool=False,
                  bint kni_arp=False):
        """kni_arp: an own address whose ARP requests go to the kni, where the kernel
        answers them while keepalived holds the address there (VRRP MASTER)."""
        if index < 0 or <uint32_t>index >= g.route_cap:
            raise DataplaneError("route table full")
        self.send(MSG_ROUTE_SET, a=index, b=prefix, c=gw, d=src, plen=plen, scope=scope,
                  port=port, mtu=mtu, flags=(1 if sapool else 0) | (2 if kni_arp else 0))

    def route_del(self, int index, uint32_t prefix, int plen):
        self.send(MSG_ROUTE_DEL, a=index, b=prefix, plen=plen)

    def neigh_set(self, uint32_t ip, bytes mac, int port, bint static=True):
        self.send(MSG_NEIGH_SET, b=ip, mac=mac, port=port, flags=1 if static else 0)

    def neigh_del(self, uint32_t ip):
        self.send(MSG_NEIGH_DEL, b=ip)

    def neigh_flush(self, int port=-1):
        self.send(MSG_NEIGH_FLUSH, port=0xffff if port < 0 else port)

    def garp(self, uint32_t ip, int port):
        self.send(MSG_GARP, b=ip, port=port)

    def port_addr(self, int port, uint32_t ip):
        self.send(MSG_PORT_ADDR, port=port, b=ip)

    def neighbours(self):
        """All workers' neighbour entries, merged (freshest wins): list of dicts."""
        cdef neigh_t *buf = <neigh_t *>calloc(g.neigh_cap + 1, sizeof(neigh_t))
        cdef int i
        merged = {}
        now = rte_rdtsc()
        try:
            for i in range(g.nworkers):
                self.send(MSG_NEIGH_DUMP, a=g.neigh_cap, ptr=<uintptr_t>buf, only=i)
                stats.neigh_rows(&g, buf, i, merged, now)
                buf[0].ip = 0
        finally:
            free(buf)
        return list(merged.values())

    # -- settings a worker reads on each loop

    def set_forwarding(self, bint on):
        g.ip_forward = 1 if on else 0

    def set_idle(self, bint busy_poll, int idle_sleep_us):
        g.busy_poll = 1 if busy_poll else 0
        g.idle_sleep_us = idle_sleep_us

    def set_vip_miss_kni(self, bint on):
        g.vip_miss_kni = 1 if on else 0

    def set_kni_rate(self, unsigned int pps):
        """Bulk frames each worker may hand the kernel a second (0: no limit); the
        routing and HA protocols' frames are not counted (packet.pxd, kni_control)."""
        g.kni_per_tick = (pps + TICKS_PER_SEC - 1) // TICKS_PER_SEC if pps else 0
        for i in range(g.nworkers):     # the budget from now, not from the next tick (a
            if g.workers[i] != NULL:    # daemon's first frames for the kernel were dropped)
                g.workers[i].kni_tokens = g.kni_per_tick

    def set_neigh_timeout(self, int seconds):
        g.neigh_timeout = g.tsc_hz * seconds

    # -- observation

    def port_info(self, int i):
        return stats.port_info(&g, i, self.port_names[i])

    def port_stats(self, int i):
        """Counters of port i: the PMD's and the workers' (summed)."""
        return stats.port_stats(&g, i)

    def bond_info(self, int i):
        """A bond's mode and slaves (their state, LACP partner, counters), or None for
        an interface that is not one."""
        return stats.bond_info(&g, i)

    def bond_slave(self, int bond, str device, bint present):
        """Take a slave out of a bond (its link went down: af_packet does not tell the
        bond, which would go on sending on it) or put it back (the link is up again)."""
        cdef uint16_t pid
        if not 0 <= bond < g.nports or g.ports[bond].kind != PORT_ETH:
            raise DataplaneError(f"interface {bond} is not a bond")
        if rte_eth_dev_get_port_by_name(device.encode(), &pid) != 0:
            raise DataplaneError(f"no DPDK device {device!r}")
        if present:
            _check(rte_eth_bond_slave_add(g.ports[bond].port_id, pid), f"{device}: back in its bond")
        else:
            _check(rte_eth_bond_slave_remove(g.ports[bond].port_id, pid), f"{device}: out of its bond")

    # -- VLAN interfaces (rlb/model/model.py drives these)

    cdef port_t *_new_iface(self, int index, str name, int kind) except NULL:
        """A fresh slot for a VLAN or a tunnel interface (not seen by the workers yet)."""
        cdef int k
        if not 0 <= index < MAX_PORTS:
            raise DataplaneError(f"at most {MAX_PORTS} interfaces")
        if index < g.nports and (g.ports[index].used or g.ports[index].kind == PORT_ETH):
            raise DataplaneError(f"interface slot {index} is taken")
        cdef port_t *p = &g.ports[index]
        memset(p, 0, sizeof(port_t))
        p.kind = kind
        p.parent = index
        p.mtu = 1500
        for k in range(g.nworkers):
            memset(g.workers[k].pstats[index], 0, sizeof(g.workers[k].pstats[index]))
        while len(self.port_names) <= index:
            self.port_names.append(None)
        self.port_names[index] = name
        return p

    cdef _publish(self, int index, kni):
        """The interface's kni tap, then the interface itself to the workers."""
        cdef port_t *p = &g.ports[index]
        if kni:
            self._open_kni(index, self.port_names[index], kni)
            _check(rte_eth_dev_start(p.kni_id), f"{kni}: start")
        p.used = 1
        p.has_kni = 1 if kni else 0
        rte_smp_wmb()                   # the workers see it whole before they see it
        if index >= g.nports:
            g.nports = index + 1

    def vlan_add(self, int index, str name, int parent, int vid, int proto=0x8100, kni=None):
        """A VLAN interface `index` on interface `parent` (a port or a bond): frames of
        VLAN `vid` (802.1Q or 802.1ad by `proto`) received there are its, its frames leave
        there tagged. kni: its tap's name, or None."""
        if not 0 <= parent < g.nports or g.ports[parent].kind != PORT_ETH:
            raise DataplaneError("a VLAN goes on a port or a bond")
        if not 1 <= vid < VLAN_IDS - 1 or proto not in (0x8100, 0x88a8):
            raise DataplaneError("VLAN id 1-4094, protocol 802.1q or 802.1ad")
        if g.vlan_if[parent * VLAN_IDS + vid]:
            raise DataplaneError(f"VLAN {vid} is already on that port")
        cdef port_t *p = self._new_iface(index, name, PORT_VLAN)
        p.port_id = g.ports[parent].port_id
        p.parent = parent
        memcpy(p.mac, g.ports[parent].mac, 6)
        p.mtu = g.ports[parent].mtu
        p.vlan_proto = proto
        p.vlan_id = vid
        self._publish(index, kni)
        g.vlan_if[parent * VLAN_IDS + vid] = index + 1

    def tunnel_add(self, int index, str name, int proto, uint32_t local, uint32_t remote, *,
                   key=None, bint csum=False, int ttl=0, bytes mac, kni=None):
        """A tunnel interface: IPIP (proto 4) or GRE (47) between local (one of our
        addresses) and remote; GRE with a key and/or a checksum; ttl 0: the inner
        packet's. mac: its kni's and its frames' (a tunnel has none of its own)."""
        if proto not in (4, 47) or not 0 <= ttl <= 255 or len(mac) != 6:
            raise DataplaneError("tunnel: proto 4 or 47, ttl 0-255, a MAC")
        cdef port_t *p = self._new_iface(index, name, PORT_TUNNEL)
        self._tunnel_fill(p, proto, local, remote, key, csum, ttl)
        memcpy(p.mac, <const char *>mac, 6)
        p.mtu = tunnel_mtu(proto, key, csum)
        self._publish(index, kni)

    def tunnel_set(self, int index, int proto, uint32_t local, uint32_t remote, *, key=None,
                   bint csum=False, int ttl=0):
        """`dpip tunnel change`: new ends or options (between two of a worker's packets
        it may see half of them: a packet or two of the change may be dropped)."""
        cdef port_t *p = &g.ports[index]
        if not 0 <= index < g.nports or p.kind != PORT_TUNNEL or not p.used:
            raise DataplaneError(f"interface {index} is not a tunnel")
        p.used = 0                      # the workers drop its packets while it changes
        self.barrier()
        self._tunnel_fill(p, proto, local, remote, key, csum, ttl)
        rte_smp_wmb()
        p.used = 1

    cdef _tunnel_fill(self, port_t *p, int proto, uint32_t local, uint32_t remote, key,
                      bint csum, int ttl):
        p.tun_proto = proto
        p.tun_local = local
        p.tun_remote = remote
        p.tun_key = key or 0
        p.tun_flags = (TUN_KEY if key is not None else 0) | (TUN_CSUM if csum else 0)
        p.tun_ttl = ttl

    def iface_del(self, int index):
        """Take a VLAN or a tunnel interface away: its frames are dropped from now on
        and its tap goes once no worker can be using it."""
        cdef port_t *p = &g.ports[index]
        if not 0 <= index < g.nports or p.kind == PORT_ETH or not p.used:
            raise DataplaneError(f"interface {index} is not a VLAN or a tunnel")
        if p.kind == PORT_VLAN:
            g.vlan_if[p.parent * VLAN_IDS + p.vlan_id] = 0
        had_kni = p.has_kni
        p.used = 0
        p.has_kni = 0
        self.barrier()
        if had_kni:
            rte_eth_dev_stop(p.kni_id)
            rte_eth_dev_close(p.kni_id)
        self.port_names[index] = None

    def tunnel_mtu(self, int proto, key=None, bint csum=False):
        return tunnel_mtu(proto, key, csum)

    def barrier(self):
        """Return once every worker has finished the passes it had begun."""
        if g_launched:
            self.send(MSG_BARRIER)

    def reasons(self):
        """Drop and punt counters by reason, summed over workers."""
        return stats.reasons(&g)

    def workers(self):
        return stats.workers(&g)

    def pool(self):
        return stats.pool(&g)

    @property
    def tsc_hz(self):
        """TSC cycles a second: the workers' cycle counters in seconds."""
        return g.tsc_hz

    # -- virtual services (rlb/model/services.py drives these)

    def register_mode(self, int index, capsule):
        if not 0 <= index < MAX_MODES:
            raise DataplaneError(f"at most {MAX_MODES} forwarding modes")
        if not PyCapsule_IsValid(capsule, b"rlb.mode_ops_t"):
            raise DataplaneError("not a rlb.mode_ops_t capsule")
        g.modes[index] = <mode_ops_t *>PyCapsule_GetPointer(capsule, b"rlb.mode_ops_t")

    def register_sched(self, int index, capsule):
        if not 0 <= index < MAX_SCHEDS:
            raise DataplaneError(f"at most {MAX_SCHEDS} schedulers")
        if not PyCapsule_IsValid(capsule, b"rlb.sched_ops_t"):
            raise DataplaneError("not a rlb.sched_ops_t capsule")
        g.scheds[index] = <sched_ops_t *>PyCapsule_GetPointer(capsule, b"rlb.sched_ops_t")

    def _slot(self, int slot, uint32_t cap, what):
        if slot < 0 or <uint32_t>slot >= cap:
            raise DataplaneError(f"{what} table full ({cap})")

    def dest_set(self, int slot, *, int svc, uint32_t addr, int port, int mode, int weight,
                 int u_threshold=0, int l_threshold=0, bint available=True):
        cdef dest_t d
        self._slot(slot, g.dest_cap, "real server")
        if g.modes[mode] == NULL:
            raise DataplaneError(f"forwarding mode {mode} is not registered")
        memset(&d, 0, sizeof(d))
        d.svc = svc
        d.addr = addr
        d.port = port
        d.mode = mode
        d.weight = weight
        d.u_threshold = u_threshold
        d.l_threshold = l_threshold
        d.flags = DEST_F_AVAILABLE if available else 0
        self.send(MSG_DEST_SET, a=slot, ptr=<uintptr_t>&d)

    def dest_del(self, int slot, bint drain=True):
        """A real server out of its service; drain: its connections go on (else, as
        when its service is deleted, they end at their next packet)."""
        self._slot(slot, g.dest_cap, "real server")
        self.send(MSG_DEST_DEL, a=slot, b=1 if drain else 0)

    def svc_set(self, int slot, *, int proto, uint32_t vaddr, int vport, int sched, int flags=0,
                int timeout=0, uint32_t netmask=0xffffffff, dests=(), laddrs=(), match=None):
        """match (SNAT, flags has 4): dict with src_lo src_hi dst_lo dst_hi sport_lo sport_hi
        dport_lo dport_hi proto iif oif (ports as index + 1, 0 any)."""
        cdef svc_t *s
        cdef int i
        self._slot(slot, g.svc_cap, "service")
        if not 0 <= sched < MAX_SCHEDS or g.scheds[sched] == NULL:
            raise DataplaneError(f"scheduler {sched} is not registered")
        if len(dests) > MAX_DESTS_PER_SVC or len(laddrs) > MAX_LADDRS_PER_SVC:
            raise DataplaneError(f"at most {MAX_DESTS_PER_SVC} real servers and "
                                 f"{MAX_LADDRS_PER_SVC} local addresses per service")
        s = <svc_t *>calloc(1, sizeof(svc_t))
        try:
            s.proto = proto
            s.vaddr = vaddr
            s.vport = vport
            s.sched = sched
            s.flags = flags
            s.timeout = timeout
            s.netmask = netmask
            s.ndests = len(dests)
            for i, d in enumerate(dests):
                s.dests[i] = d
            s.nladdrs = len(laddrs)
            for i, (addr, port) in enumerate(laddrs):
                s.laddrs[i].addr = addr
                s.laddrs[i].port = port
            if match:
                s.match.src_lo, s.match.src_hi = match["src_lo"], match["src_hi"]
                s.match.dst_lo, s.match.dst_hi = match["dst_lo"], match["dst_hi"]
                s.match.sport_lo, s.match.sport_hi = match["sport_lo"], match["sport_hi"]
                s.match.dport_lo, s.match.dport_hi = match["dport_lo"], match["dport_hi"]
                s.match.proto = match["proto"]
                s.match.iif = match["iif"]
                s.match.oif = match["oif"]
            self.send(MSG_SVC_SET, a=slot, ptr=<uintptr_t>s)
        finally:
            free(s)

    def svc_table(self, int slot, table):
        """A lookup table of dest slots (source hash, Maglev): shared by the workers,
        swapped in with one message, the old one freed once all have moved."""
        cdef uint32_t *t = NULL
        cdef uint32_t i
        self._slot(slot, g.svc_cap, "service")
        if not table and slot not in self._tables:
            return                      # none to take away: no message
        if table:
            t = <uint32_t *>rte_zmalloc(b"rlb_table", sizeof(uint32_t) * len(table), 64)
            if t == NULL:
                raise DataplaneError("out of memory for a scheduler table")
            for i, v in enumerate(table):
                t[i] = v
        self.send(MSG_SVC_TABLE, a=slot, b=len(table) if table else 0, ptr=<uintptr_t>t)
        old = self._tables.pop(slot, 0)
        if old:
            rte_free(<void *><uintptr_t>old)
        if t != NULL:
            self._tables[slot] = <uintptr_t>t

    def svc_del(self, int slot):
        self._slot(slot, g.svc_cap, "service")
        self.send(MSG_SVC_DEL, a=slot)
        old = self._tables.pop(slot, 0)
        if old:
            rte_free(<void *><uintptr_t>old)

    def set_timeout(self, name, int seconds):
        """ipvsadm --set: tcp (ESTABLISHED), tcpfin (FIN_WAIT), udp; or an LVS state name."""
        state = TIMEOUT_NAMES.get(name, name)
        if state not in CONN_STATES or seconds <= 0:
            raise DataplaneError(f"bad timeout {name}={seconds}")
        g.timeouts[CONN_STATES.index(state)] = seconds * TICKS_PER_SEC

    def timeouts(self):
        return {name: g.timeouts[i] // TICKS_PER_SEC for i, name in enumerate(CONN_STATES)}

    def svc_stats(self, int slot):
        return stats.svc_stats(&g, slot)

    def dest_stats(self, int slot):
        return stats.dest_stats(&g, slot)

    def laddr_stats(self, int svc_slot):
        return stats.laddr_stats(&g, svc_slot)

    def svc_bulk(self, list slots):
        """Counters of many service slots: a flat array('Q'), stats.SVC_BULK a slot."""
        return stats.svc_bulk(&g, slots)

    def dest_bulk(self, list slots):
        """Counters of many real server slots: a flat array('Q'), stats.DEST_BULK a slot."""
        return stats.dest_bulk(&g, slots)

    def zero_stats(self, svc_slot=None):
        """ipvsadm -Z: the counters of service slot svc_slot, or (None) of every service.
        The message's "all" is NONE32 set in C: an anonymous enum reaches Python as a
        C int, and 0xffffffff as an int is -1, which no uint32_t argument accepts."""
        cdef uint32_t which = NONE32
        if svc_slot is not None:
            self._slot(svc_slot, g.svc_cap, "service")
            which = svc_slot
        self.send(MSG_ZERO, a=which)

    def connections(self, int limit=10000):
        """Connections of every worker (for ipvsadm -lnc), at most `limit`."""
        cdef conn_t *buf = <conn_t *>calloc(limit + 1, sizeof(conn_t))
        out = []
        try:
            for i in range(g.nworkers):
                self.send(MSG_CONN_DUMP, a=limit + 1, ptr=<uintptr_t>buf, only=i)
                stats.conn_rows(buf, i, out, limit)
        finally:
            free(buf)
        return out

    def conn_summary(self):
        return stats.conn_summary(&g)

    # -- connection sync with the peer LB (sync.pxd, worker.pyx; rlb/ha/sync.py drives it)

    SYNC_RECORD = sizeof(sync_rec_t)

    def sync_enable(self, bint on):
        """Workers queue their connections' events for the peer (or stop)."""
        g.sync_on = 1 if on else 0

    def sync_take(self, int most=8192):
        """The connection events queued since the last call, at most `most` records as
        one bytes (sync_rec_t each, in the order the workers queued them)."""
        cdef sync_rec_t *buf
        cdef unsigned n = 0, got
        if g.sync_out == NULL or most <= 0:
            return b""
        buf = <sync_rec_t *>calloc(most, sizeof(sync_rec_t))
        if buf == NULL:
            raise MemoryError
        try:
            with nogil:
                while n < <unsigned>most:
                    got = rte_ring_dequeue_burst_elem(g.sync_out, &buf[n], sizeof(sync_rec_t),
                                                      most - n, NULL)
                    if got == 0:
                        break
                    n += got
            return (<char *>buf)[:n * sizeof(sync_rec_t)]
        finally:
            free(buf)

    def sync_put(self, bytes records):
        """The peer's connection events (sync_rec_t each) into the workers' tables: each
        to the worker of the same number as the peer's (FNAT: the one its local port
        names), applied before this returns. Returns how many were handed over."""
        cdef Py_ssize_t size = sizeof(sync_rec_t)
        cdef uint32_t n = <uint32_t>(len(records) // size), i, k, wid
        cdef const sync_rec_t *src = <const sync_rec_t *><const char *>records
        cdef sync_rec_t *buf
        if len(records) % size:
            raise DataplaneError(f"sync: {len(records)} bytes is no whole number of records")
        if n == 0 or not g_launched:
            return 0
        buf = <sync_rec_t *>calloc(n, sizeof(sync_rec_t))
        if buf == NULL:
            raise MemoryError
        try:
            for wid in range(g.nworkers):
                k = 0
                for i in range(n):
                    if _sync_worker(&src[i]) == wid:
                        buf[k] = src[i]
                        k += 1
                if k:
                    self.send(MSG_SYNC_IN, a=k, ptr=<uintptr_t>buf, only=wid)
        finally:
            free(buf)
        return n

    def sync_dump(self, int chunk=4096):
        """Bulk sync: every connection the peer should hold, as sync_take's bytes."""
        cdef sync_rec_t *buf = <sync_rec_t *>calloc(chunk + 1, sizeof(sync_rec_t))
        cdef uint32_t nxt, count
        if buf == NULL:
            raise MemoryError
        out = []
        try:
            for i in range(g.nworkers):
                nxt = 0
                while True:
                    self.send(MSG_SYNC_DUMP, a=chunk + 1, b=nxt, ptr=<uintptr_t>buf, only=i)
                    count, nxt = buf[chunk].caddr, buf[chunk].vaddr
                    out.append((<char *>buf)[:count * sizeof(sync_rec_t)])
                    if nxt == 0:
                        break
        finally:
            free(buf)
        return b"".join(out)

    # -- packet capture (capture.pxd; rlb/ops/capture.py drives it)

    def capture_start(self, int port, int dirs, expr=None):
        """Copy the frames port index `port` receives (dirs & 1) and sends (dirs & 2)
        that the tcpdump expression takes (None: every frame) into the capture ring. One
        capture at a time. DataplaneError with libpcap's message for an expression that
        is no filter. Returns whether the filter runs as native code (DPDK's BPF JIT)."""
        cdef char err[512]
        cdef rlb_bpf_fn jit = NULL
        cdef rte_bpf *bpf = NULL
        cdef rte_ring *ring
        if not g_launched:
            raise DataplaneError("the data plane is not running")
        if g.capture.ring != NULL:
            raise DataplaneError("a capture is running (one at a time)")
        if not 0 <= port < g.nports or not 1 <= dirs <= 3:
            raise DataplaneError("capture: no such port or direction")
        if expr is not None:
            raw = expr.encode()
            if b"\0" in raw:
                raise DataplaneError("capture: the filter has a NUL character")
            bpf = rlb_bpf_compile(raw, err, sizeof(err), &jit)
            if bpf == NULL:
                raise DataplaneError(err.decode("utf-8", "replace"))
        ring = rte_ring_create_elem(b"rlb_capture", sizeof(cap_rec_t), CAP_RING,
                                    rte_socket_id(), RING_F_SC_DEQ)
        if ring == NULL:
            if bpf != NULL:
                rte_bpf_destroy(bpf)
            raise DataplaneError("out of memory for the capture ring")
        g.capture.port = port
        g.capture.bpf = bpf
        g.capture.jit = jit
        g.capture.ring = ring
        g.capture.matched = 0
        g.capture.dropped = 0
        rte_smp_wmb()
        g.capture.on = dirs                # the workers look from here on
        return jit != NULL

    def capture_take(self, unsigned most, double wall0, uint64_t tsc0):
        """Up to `most` captured frames as pcap records (16-byte header, then the bytes
        kept), their times from the pair (wall0 seconds, tsc0) read at the start: (bytes,
        count)."""
        if g.capture.ring == NULL or most == 0:
            return b"", 0
        return _capture_records(most, wall0, tsc0)

    def capture_stop(self, double wall0, uint64_t tsc0):
        """Stop copying; once no worker can be in the middle of a copy, what is left in
        the ring as capture_take gives it, then the filter and ring are freed. Returns
        (bytes, count, matched, dropped)."""
        if g.capture.ring == NULL:
            return b"", 0, 0, 0
        g.capture.on = 0
        _quiesce()
        data, n = _capture_records(CAP_RING, wall0, tsc0)
        matched, dropped = g.capture.matched, g.capture.dropped
        _capture_free()
        return data, n, matched, dropped

    def tsc_now(self):
        """The TSC now (the workers' clock: capture times are taken from it)."""
        return rte_rdtsc()

    def capture_counts(self):
        """(matched, dropped) of the running capture (0, 0 without one)."""
        return g.capture.matched, g.capture.dropped

    # -- the TCP prober of the health checks (probe.pxd; rlb/health/monitor.py drives it)

    @property
    def probe_capacity(self):
        """Dest slots the prober can probe from (0: it has no table)."""
        return g.probe_cap

    def probe_tcp(self, list batch):
        """Queue TCP probes: (slot, saddr, daddr, sport, dport, dest, port) each, slot the
        real server's dest slot, dest the slot whose mode's transmit takes the probe (a
        VIP for DR/Tunnel) or -1 to route it, port the source address's data port.
        Returns how many were queued (in order; the rest found the queue full)."""
        cdef uint32_t slots[256]
        cdef uint32_t n = 0, queued = 0, slot, seq, rnd
        cdef probe_t *p
        cdef int dest
        if g.probe_todo == NULL or not g_launched:
            return 0
        for item in batch:
            slot, saddr, daddr, sport, dport, dest, port = item
            if slot >= g.probe_cap or dest >= <int>g.dest_cap or not 0 <= port < g.nports:
                raise DataplaneError(f"probe slot {slot}, dest {dest} or port {port} out of "
                                     f"range ({g.probe_cap}, {g.dest_cap}, {g.nports})")
            p = &g.probes[slot]
            p.seq = 0
            p.rounds += 1
            rnd = p.rounds & ((1 << PROBE_ROUND_BITS) - 1)
            if rnd == 0:
                p.rounds += 1
                rnd = 1
            seq = ((slot << PROBE_ROUND_BITS) | rnd) ^ g.probe_secret
            if seq == 0 or seq == 0xffffffffu:      # 0 means none; the answer acks seq + 1
                seq ^= 1 << (PROBE_ROUND_BITS - 1)
            p.saddr = saddr
            p.daddr = daddr
            p.sport = sport
            p.dport = dport
            p.dest = NONE32 if dest < 0 else <uint32_t>dest
            p.port = port
            p.sent_tsc = 0
            rte_smp_wmb()
            p.seq = seq
            slots[n] = slot
            n += 1
            if n == 256:
                queued += self._probe_queue(slots, n)
                n = 0
        if n:
            queued += self._probe_queue(slots, n)
        return queued

    cdef uint32_t _probe_queue(self, uint32_t *slots, uint32_t n):
        cdef uint32_t k = rte_ring_enqueue_burst_elem(g.probe_todo, slots, sizeof(uint32_t), n,
                                                      NULL)
        cdef uint32_t i
        for i in range(k, n):
            g.probes[slots[i]].seq = 0       # not sent: no answer may count
        return k

    def probe_cancel(self, uint32_t slot):
        """The probe of slot timed out: a late answer goes to the kernel (which resets it)."""
        if slot < g.probe_cap:
            g.probes[slot].seq = 0

    def probe_answers(self):
        """The answers received since the last call, each (slot, open, seconds): open True
        for a SYN-ACK, False for a reset; an answer to a probe cancelled meanwhile is
        left out."""
        cdef probe_done_t done[256]
        cdef uint32_t n, i
        cdef probe_t *p
        out = []
        if g.probe_done == NULL:
            return out
        while True:
            n = rte_ring_dequeue_burst_elem(g.probe_done, done, sizeof(probe_done_t), 256, NULL)
            for i in range(n):
                p = &g.probes[done[i].slot]
                if p.seq != done[i].seq:
                    continue
                p.seq = 0
                out.append((done[i].slot, done[i].kind == PROBE_OPEN,
                            (done[i].tsc - p.sent_tsc) / <double>g.tsc_hz
                            if p.sent_tsc and done[i].tsc > p.sent_tsc else 0.0))
            if n < 256:
                return out


cdef inline uint32_t _sync_worker(const sync_rec_t *r) noexcept nogil:
    """The worker that should hold a synced connection: FNAT's (and SNAT's) replies reach
    the worker its local port names; the others, the peer's worker of that number."""
    if g.nworkers <= 1:
        return 0
    if r.laddr != r.caddr or r.lport != r.cport:
        return r.lport % g.nworkers
    return r.wid % g.nworkers


cdef void _quiesce():
    """Wait until every running worker has started a new pass of its loop twice (so none
    is still inside what it read before the caller's last write), at most 1 s."""
    cdef uint64_t seen[MAX_WORKERS]
    cdef int i, left
    cdef uint64_t deadline = rte_rdtsc() + g.tsc_hz
    for i in range(g.nworkers):
        seen[i] = g.workers[i].stats[WORKER_POLLS]
    with nogil:
        while rte_rdtsc() < deadline:
            left = 0
            for i in range(g.nworkers):
                if g.workers[i].running and g.workers[i].stats[WORKER_POLLS] < seen[i] + 2:
                    left += 1
            if left == 0:
                break
            rte_delay_us_sleep(100)


cdef object _capture_records(unsigned most, double wall0, uint64_t tsc0):
    cdef cap_rec_t *recs
    cdef unsigned n = 0, got, i
    cdef size_t total = 0, at = 0
    cdef char *out
    cdef uint32_t *h
    cdef double t
    cdef uint64_t sec
    if most > CAP_RING:
        most = CAP_RING
    recs = <cap_rec_t *>calloc(most, sizeof(cap_rec_t))
    if recs == NULL:
        raise MemoryError
    try:
        with nogil:
            while n < most:
                got = rte_ring_dequeue_burst_elem(g.capture.ring, &recs[n], sizeof(cap_rec_t),
                                                  most - n, NULL)
                if got == 0:
                    break
                n += got
        for i in range(n):
            total += 16 + recs[i].caplen
        data = bytearray(total)
        out = data
        for i in range(n):
            t = wall0 + (<double>(recs[i].tsc - tsc0) / g.tsc_hz if recs[i].tsc > tsc0 else 0.0)
            sec = <uint64_t>t
            h = <uint32_t *>&out[at]
            h[0] = <uint32_t>sec
            h[1] = <uint32_t>((t - sec) * 1000000.0)
            h[2] = recs[i].caplen
            h[3] = recs[i].len
            memcpy(&out[at + 16], recs[i].data, recs[i].caplen)
            at += 16 + recs[i].caplen
        return bytes(data), n
    finally:
        free(recs)


cdef void _capture_free():
    g.capture.on = 0
    if g.capture.bpf != NULL:
        rte_bpf_destroy(g.capture.bpf)
        g.capture.bpf = NULL
    g.capture.jit = NULL
    if g.capture.ring != NULL:
        rte_ring_free(g.capture.ring)
        g.capture.ring = NULL


def _is_pci(devargs):
    head = devargs.split(",")[0]
    return not head.startswith("net_") and ":" in head
