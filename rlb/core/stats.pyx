"""The stats API: the workers' counters summed into dicts named as counters.py says.

Engine's observation methods (dataplane.pyx) call these with the engine's state; they
read the workers' memory while the workers run (a counter is one aligned uint64_t, so a
read sees an old or a new value, never a torn one).
"""
from libc.stdint cimport uint32_t, uint64_t, int32_t
from libc.string cimport memset
from cpython cimport array
import array as _array

from rlb.core.dpdk.eal cimport rte_rdtsc
from rlb.core.dpdk.mbuf cimport rte_mempool_in_use_count, rte_mempool_avail_count
from rlb.core.dpdk.ethdev cimport (rte_eth_stats, rte_eth_stats_get, rte_eth_dev_info,
                                   rte_eth_dev_info_get, rte_eth_link, rte_eth_link_get_nowait,
                                   rte_eth_dev_get_name_by_port)
from rlb.core.dpdk.bond cimport *
from rlb.core.types cimport *

from rlb.core import counters
from rlb.core.consts import CONN_STATES, NEIGH_STATES

# The C enums and the table are one source (setup.py generates the first from the
# second): these catch an extension built from an older table.
for _group, _count in ((counters.PORT, PORT_COUNT), (counters.REASON, R_COUNT),
                       (counters.SVC, SVC_COUNT), (counters.DEST, DEST_COUNT),
                       (counters.WORKER, WORKER_COUNT), (counters.CONNS, CT_COUNT)):
    if len(_group.names("array")) != _count:
        raise ImportError(f"rlb.core.stats was built from another counter table "
                          f"({_group.name}): rebuild (make build)")

cdef tuple PORT_ARRAY = counters.PORT.names("array")
cdef tuple PORT_PMD = counters.PORT.names("pmd")
cdef tuple REASONS = counters.REASON.names()
cdef tuple SVC_ARRAY = counters.SVC.names("array")
cdef tuple DEST_ARRAY = counters.DEST.names("array")
cdef tuple WORKER_ARRAY = counters.WORKER.names("array")
cdef tuple CT_ARRAY = counters.CONNS.names("array")


cdef inline void add_array(dict out, tuple names, const uint64_t *a):
    """out[name] += a[k] for the array slot k of each name."""
    cdef Py_ssize_t k
    for k in range(len(names)):
        out[names[k]] += a[k]


cdef dict port_info(engine_t *e, int i, str name):
    cdef rte_eth_dev_info info
    cdef rte_eth_link link
    pid = e.ports[i].port_id
    rte_eth_dev_info_get(pid, &info)
    memset(&link, 0, sizeof(link))
    rte_eth_link_get_nowait(pid, &link)
    vlan = e.ports[i].kind == PORT_VLAN
    if e.ports[i].kind == PORT_TUNNEL:
        return {"name": name, "port_id": None, "driver": "tunnel",
                "mac": bytes(e.ports[i].mac[:6]), "mtu": e.ports[i].mtu, "queues": e.nworkers,
                "speed": 0, "up": bool(e.ports[i].used),
                "kni_port_id": e.ports[i].kni_id if e.ports[i].has_kni else None, "vlan": None}
    return {"name": name, "port_id": pid,
            "driver": "vlan" if vlan else (info.driver_name.decode() if info.driver_name else ""),
            "mac": bytes(e.ports[i].mac[:6]), "mtu": e.ports[i].mtu,
            "queues": e.nworkers, "speed": link.link_speed, "up": bool(link.link_status),
            "kni_port_id": e.ports[i].kni_id if e.ports[i].has_kni else None,
            "vlan": {"id": e.ports[i].vlan_id, "proto": e.ports[i].vlan_proto,
                     "parent": e.ports[i].parent} if vlan else None}


cdef dict pmd_stats(uint16_t pid):
    cdef rte_eth_stats st
    memset(&st, 0, sizeof(st))
    rte_eth_stats_get(pid, &st)
    cdef dict pmd = st                          # the driver's struct, as a dict
    return {name: pmd[name] for name in PORT_PMD}


cdef dict port_stats(engine_t *e, int i):
    """An interface's counters: its driver's (none for a VLAN: its frames are its
    port's) and the workers'."""
    cdef int wi
    out = dict.fromkeys(counters.PORT.names(), 0)
    if e.ports[i].kind == PORT_ETH:
        out.update(pmd_stats(e.ports[i].port_id))
    for wi in range(e.nworkers):
        add_array(out, PORT_ARRAY, e.workers[wi].pstats[i])
    return out


SELECTION = {UNSELECTED: "unselected", STANDBY: "standby", SELECTED: "selected"}
LACP_STATE = ((0x01, "active"), (0x02, "short_timeout"), (0x04, "aggregation"),
              (0x08, "synchronization"), (0x10, "collecting"), (0x20, "distributing"),
              (0x40, "defaulted"), (0x80, "expired"))


def _lacp_flags(int state):
    return [name for bit, name in LACP_STATE if state & bit]


def _be16(int v):
    """A 16-bit field as LACP carries it (network order) in the bond's slave info."""
    return ((v & 0xff) << 8) | (v >> 8)


def _mac(const uint8_t *b):
    return ":".join(f"{b[k]:02x}" for k in range(6))


cdef object bond_info(engine_t *e, int i):
    """A bond's mode, primary and slaves: each one's link, whether the bond uses it
    (active), its driver's counters and, in mode 4, its LACP actor and partner."""
    cdef uint16_t pid = e.ports[i].port_id
    cdef uint16_t slaves[32]
    cdef uint16_t active[32]
    cdef char name[64]
    cdef rte_eth_link link
    cdef lacp_slave_info lacp
    cdef int n, na, k, mode
    if e.ports[i].kind != PORT_ETH:
        return None
    mode = rte_eth_bond_mode_get(pid)
    if mode < 0:
        return None
    n = rte_eth_bond_slaves_get(pid, slaves, 32)
    na = rte_eth_bond_active_slaves_get(pid, active, 32)
    on = {active[k] for k in range(max(na, 0))}
    rows = []
    for k in range(max(n, 0)):
        memset(&link, 0, sizeof(link))
        rte_eth_link_get_nowait(slaves[k], &link)
        name[0] = 0
        rte_eth_dev_get_name_by_port(slaves[k], name)
        row = {"port_id": slaves[k], "device": name.decode(), "up": bool(link.link_status),
               "active": slaves[k] in on, "stats": pmd_stats(slaves[k])}
        if mode == 4 and rte_eth_bond_8023ad_slave_info(pid, slaves[k], &lacp) == 0:
            row["lacp"] = {
                "selected": SELECTION.get(lacp.selected, str(lacp.selected)),
                "actor": {"system": _mac(lacp.actor.system.addr_bytes),
                          "key": _be16(lacp.actor.key), "port": _be16(lacp.actor.port_number),
                          "state": _lacp_flags(lacp.actor_state)},
                "partner": {"system": _mac(lacp.partner.system.addr_bytes),
                            "key": _be16(lacp.partner.key),
                            "port": _be16(lacp.partner.port_number),
                            "state": _lacp_flags(lacp.partner_state)}}
        rows.append(row)
    return {"mode": mode, "primary": rte_eth_bond_primary_get(pid),
            "xmit_policy": rte_eth_bond_xmit_policy_get(pid), "slaves": rows}


cdef dict reasons(engine_t *e):
    cdef int wi
    out = dict.fromkeys(REASONS, 0)
    for wi in range(e.nworkers):
        add_array(out, REASONS, e.workers[wi].reasons)
    return out


cdef list workers(engine_t *e):
    cdef worker_t *w
    out = []
    for i in range(e.nworkers):
        w = e.workers[i]
        row = {"id": i, "lcore": w.lcore}
        row.update(dict.fromkeys(WORKER_ARRAY, 0))
        add_array(row, WORKER_ARRAY, w.stats)
        row.update(running=w.running, match_services=w.nmatch)
        out.append(row)
    return out


cdef dict pool(engine_t *e):
    return {"size": e.pool.size, "in_use": rte_mempool_in_use_count(e.pool),
            "available": rte_mempool_avail_count(e.pool)}


cdef dict svc_stats(engine_t *e, int slot):
    out = dict.fromkeys(counters.SVC.names(), 0)
    for i in range(e.nworkers):
        add_array(out, SVC_ARRAY, e.workers[i].svcs[slot].stats)
    return out


# The passive check's names (None together for DR/Tunnel): the table's, or stale
cdef tuple PASSIVE = ("answered", "unanswered", "refused", "fails_in_row", "answered_ago",
                      "failed_ago")
if not set(PASSIVE) <= set(counters.DEST.names()):
    raise ImportError("rlb.core.stats: the passive check's counters are not in the table")


cdef dict dest_stats(engine_t *e, int slot):
    cdef dest_t *d
    out = counters.DEST.zero()
    for i in range(e.nworkers):
        d = &e.workers[i].dests[slot]
        out["activeconns"] += d.activeconns     # fields the schedulers read
        out["inactconns"] += d.inactconns
        out["conns"] += d.conns
        add_array(out, DEST_ARRAY, d.stats)
    out.update(passive(e, slot))
    return out


cdef dict passive(engine_t *e, int slot):
    """The passive check of a real server slot: its counters, and its run of failures.

    Each worker counts the connections it holds, in a run of its own that starts afresh
    at its first failure after an answer on any worker (lb.pxd dest_failed); the newest
    answer ends them all: the run is the sum of the runs of the workers whose last
    failure came after it (TSC times, one clock for all cores). A DR or Tunnel real server answers clients directly: all None (n/a)."""
    cdef dest_t *d
    cdef uint64_t answered = 0, failed = 0, now = rte_rdtsc()
    cdef uint64_t run = 0
    cdef int i
    mode = e.modes[e.workers[0].dests[slot].mode]
    if mode != NULL and mode.direct_reply:
        return dict.fromkeys(PASSIVE)
    out = {"answered": 0, "unanswered": 0, "refused": 0}
    for i in range(e.nworkers):
        d = &e.workers[i].dests[slot]
        out["answered"] += d.stats[DEST_ANSWERED]
        out["unanswered"] += d.stats[DEST_UNANSWERED]
        out["refused"] += d.stats[DEST_REFUSED]
        answered = max(answered, d.answered_tsc)
        failed = max(failed, d.failed_tsc)
    for i in range(e.nworkers):
        d = &e.workers[i].dests[slot]
        if d.failed_tsc > answered:
            run += d.fails_in_row
    out["fails_in_row"] = run
    out["answered_ago"] = _ago(e, now, answered)
    out["failed_ago"] = _ago(e, now, failed)
    return out


cdef object _ago(engine_t *e, uint64_t now, uint64_t tsc):
    """Seconds from a TSC time to now (ms steps), None for never."""
    if tsc == 0:
        return None
    return round((now - tsc if now > tsc else 0) / <double>e.tsc_hz, 3)


cdef list laddr_stats(engine_t *e, int svc_slot):
    cdef svc_t *s = &e.workers[0].svcs[svc_slot]
    zero = dict.fromkeys(counters.LADDR.names(), 0)
    out = [{"addr": s.laddrs[k].addr, **zero} for k in range(s.nladdrs)]
    for i in range(e.nworkers):
        s = &e.workers[i].svcs[svc_slot]
        for k in range(min(s.nladdrs, len(out))):
            out[k]["used"] += s.laddrs[k].used  # fields FNAT's port search keeps
            out[k]["miss"] += s.laddrs[k].miss
    return out


# Many slots at once, for an exporter (rlb.ops.metrics): one flat array of uint64, per
# slot its group's names in this order (SVC_BULK, DEST_BULK), summed over the workers.
# 16,000 real servers cost a few milliseconds (a dict per slot cost 100 or more).
SVC_BULK = SVC_ARRAY
DEST_BULK = ("activeconns", "inactconns", "conns") + DEST_ARRAY
cdef array.array _U64 = _array.array("Q")


cdef object svc_bulk(engine_t *e, list slots):
    cdef Py_ssize_t n = len(slots), k, j, at
    cdef int i
    cdef uint32_t slot
    cdef array.array out = array.clone(_U64, n * SVC_COUNT, True)
    cdef unsigned long long *o = out.data.as_ulonglongs
    cdef uint64_t *a
    for k in range(n):
        slot = slots[k]
        if slot >= e.svc_cap:
            raise IndexError(f"service slot {slot}")
        at = k * SVC_COUNT
        for i in range(e.nworkers):
            a = e.workers[i].svcs[slot].stats
            for j in range(SVC_COUNT):
                o[at + j] += a[j]
    return out


cdef object dest_bulk(engine_t *e, list slots):
    cdef Py_ssize_t n = len(slots), k, j, at
    cdef Py_ssize_t width = 3 + DEST_COUNT
    cdef int i
    cdef uint32_t slot
    cdef array.array out = array.clone(_U64, n * width, True)
    cdef unsigned long long *o = out.data.as_ulonglongs
    cdef dest_t *d
    for k in range(n):
        slot = slots[k]
        if slot >= e.dest_cap:
            raise IndexError(f"real server slot {slot}")
        at = k * width
        for i in range(e.nworkers):
            d = &e.workers[i].dests[slot]
            o[at] += d.activeconns
            o[at + 1] += d.inactconns
            o[at + 2] += d.conns
            for j in range(DEST_COUNT):
                o[at + 3 + j] += d.stats[j]
    return out


cdef dict conn_summary(engine_t *e):
    cdef worker_t *w
    out = {"capacity": e.conn_cap * e.nworkers, "entry_bytes": sizeof(conn_t),
           "hash_bytes": sizeof(uint32_t) * (e.workers[0].conn_hash_mask + 1) // e.conn_cap}
    out.update(dict.fromkeys(counters.CONNS.names(), 0))
    out["per_worker"] = []
    for i in range(e.nworkers):
        w = e.workers[i]
        out["conns"] += w.nconns
        add_array(out, CT_ARRAY, w.ct_stats)
        out["per_worker"].append(w.nconns)
    return out


cdef void conn_rows(conn_t *buf, int worker, list out, int limit):
    """Append the rows of one worker's connection dump (MSG_CONN_DUMP) to out."""
    cdef conn_t *c
    cdef uint32_t k = 0
    while buf[k].proto != 0 and len(out) < limit:
        c = &buf[k]
        out.append({"proto": c.proto, "caddr": c.caddr, "cport": c.cport,
                    "vaddr": c.vaddr, "vport": c.vport, "laddr": c.laddr,
                    "lport": c.lport, "daddr": c.daddr, "dport": c.dport,
                    "state": CONN_STATES[c.state],
                    "expires": <int32_t>c.expires / <double>TICKS_PER_SEC,
                    "mode": c.mode, "worker": worker,
                    "template": bool(c.flags & CONN_F_TEMPLATE),
                    "dest": c.dest & 0xffffff})
        k += 1


cdef void neigh_rows(engine_t *e, neigh_t *buf, int worker, dict merged, uint64_t now):
    """Merge one worker's neighbour dump (MSG_NEIGH_DUMP) into merged (ip -> row):
    the freshest entry of an address wins."""
    cdef neigh_t *n
    cdef uint32_t k = 0
    while buf[k].ip != 0:
        n = &buf[k]
        ent = {"ip": n.ip, "mac": bytes(n.mac[:6]), "port": n.port,
               "state": NEIGH_STATES.get(n.state, "NONE"), "worker": worker,
               "age": (now - n.updated) / e.tsc_hz, "pending": n.npending}
        old = merged.get(n.ip)
        if old is None or ent["age"] < old["age"]:
            merged[n.ip] = ent
        k += 1
