"""The data plane's counters, one table: the C slots, stats API, views and exporters use it.

Each group is one kind of object the workers count for (a port, a drop reason, a
service...). A counter is a slot of the group's uint64_t array in the C structures,
indexed by an enum that setup.py generates from this table (rlb/core/counters.pxi,
included by types.pxd: `make` rebuilds when this file changes). The stats API
(rlb/core/stats.pyx) sums each slot over the workers and returns the group's names in
this order, which is also the order `show`, `dpip -s` and `| json` print them in.

Entries whose `source` is not "array" are listed so that the API's output is described
in one place, but live elsewhere: "field" is a struct field of its own that the packet
path reads for decisions (the schedulers' active connections, FNAT's port use, SNAT's
port cursor) or that is combined otherwise than by a sum (the passive check's run and
times), "pmd" a counter of the port's DPDK driver (rte_eth_stats).

This module is plain Python with no rlb import: setup.py runs it before anything is
built, and a metrics exporter can read `GROUPS` (name, help, unit, kind) as is.
"""
from typing import NamedTuple


class Counter(NamedTuple):
    name: str                  # key in the stats API's dicts, shown as is
    help: str
    unit: str = ""             # packets, bytes, conns ("" a plain count)
    kind: str = "counter"      # "counter" only grows (until zeroed), "gauge" goes up and down
    source: str = "array"      # "array" | "field" | "pmd" (see above)
    shown: bool = True         # in the text view (`dpip link show -s`); `| json` has them all


class Group(NamedTuple):
    name: str
    c_prefix: str              # C enum names: prefix + NAME; <prefix>COUNT slots
    per: tuple                 # what one set of these counts for (labels of a metric)
    help: str
    counters: tuple

    def names(self, source=None):
        return tuple(c.name for c in self.counters if source is None or c.source == source)

    def zero(self) -> dict:
        """The group's values before anything happened: 0, and None for a time ago
        (unit SECONDS: never)."""
        return {c.name: None if c.unit == SECONDS else 0 for c in self.counters}


_c = Counter
SECONDS = "seconds"            # the unit of a time ago: None before the first event
CYCLES = "cycles"              # TSC cycles (the engine's tsc_hz a second)


PORT = Group("ports", "PORT_", ("device",), "a data port: its driver's counters and the workers'", (
    _c("ipackets", "frames received by the port (driver)", "packets", source="pmd"),
    _c("opackets", "frames sent by the port (driver)", "packets", source="pmd"),
    _c("ibytes", "bytes received by the port (driver)", "bytes", source="pmd"),
    _c("obytes", "bytes sent by the port (driver)", "bytes", source="pmd"),
    _c("ierrors", "receive errors (driver)", "packets", source="pmd"),
    _c("oerrors", "transmit errors (driver)", "packets", source="pmd"),
    _c("imissed", "frames the port dropped: its receive queue was full (driver)", "packets",
       source="pmd"),
    _c("rx_nombuf", "receive failures for want of an mbuf (driver)", "packets", source="pmd"),
    _c("rx_pkts", "frames the workers took from the port", "packets"),
    _c("rx_bytes", "bytes the workers took from the port", "bytes", shown=False),
    _c("tx_pkts", "frames the workers handed to the port", "packets"),
    _c("tx_bytes", "bytes the workers handed to the port", "bytes", shown=False),
    _c("to_kni", "frames punted to the kernel through the port's kni tap", "packets"),
    _c("from_kni", "frames the kernel sent out through the port's kni tap", "packets"),
    _c("probes", "health probes the kernel sent through the kni tap, taken along the "
       "data path of their real server's mode (rlb.health.path)", "packets"),
))

# Why a packet was dropped or punted to the kernel (a name ending in _kni: punted).
REASON = Group("reason", "R_", ("reason",), "packets dropped or punted to kni, by reason", tuple(
    _c(name, help, "packets") for name, help in (
        ("truncated", "frame shorter than its headers"),
        ("ip_version", "IPv4 ethertype, version != 4"),
        ("ip_hdrlen", "IHL < 5 or beyond the frame"),
        ("ip_totlen", "total length < header or > frame"),
        ("ip_csum", "bad header checksum"),
        ("ip_options_kni", "options present: punted to kni"),
        ("ip_frag_kni", "fragment for us: punted to kni"),
        ("l2_other_host", "unicast frame for another MAC (promiscuous port)"),
        ("vlan_unknown", "tagged with a VLAN no interface of its port has"),
        ("port_gone", "for an interface that was deleted (a VLAN, a tunnel)"),
        ("tunnel_l2", "a frame for a tunnel that is not IPv4 (ARP, from its kni)"),
        ("tunnel_bad", "IPIP/GRE to us that no tunnel takes, or a GRE header we do not "
                       "read (version, routing, key)"),
        ("tunnel_loop", "a tunnel's packet whose route leads into a tunnel again"),
        ("ethertype_kni", "non-IPv4/ARP ethertype: punted to kni"),
        ("arp_bad", "malformed ARP"),
        ("arp_foreign_kni", "ARP for an address we do not own: punted to kni"),
        ("arp_vrrp_kni", "ARP for a VRRP address (its kernel answers on the MASTER): to kni"),
        ("ttl_exceeded", "forwarding with TTL <= 1"),
        ("no_route", "forwarding enabled, no route"),
        ("fwd_disabled_kni", "not ours, forwarding off: punted to kni"),
        ("neigh_queue_full", "too many packets waiting for one neighbour"),
        ("neigh_unresolved", "neighbour never answered: its queue dropped"),
        ("neigh_table_full", "no room for a new neighbour entry"),
        ("tx_full", "port transmit queue full"),
        ("kni_full", "kni (tap) transmit queue full"),
        ("kni_ratelimit", "bulk frame for the kernel over the kni-rate budget (control "
                          "frames pass: ARP, OSPF, VRRP, BFD, BGP, link-local multicast)"),
        ("no_mbuf", "could not allocate an mbuf (ARP, copies)"),
        ("msg_ring_full", "neighbour update to another worker lost"),
        ("icmp_ratelimit", "an ICMP error not sent: over the per-second budget"),
        ("no_service", "to a VIP, but no service on that protocol/port"),
        ("conn_miss", "TCP segment other than SYN with no connection"),
        ("no_dest", "service has no available real server"),
        ("no_laddr", "FNAT: no local address, or all its ports taken"),
        ("conn_full", "connection table full"),
        ("redirect_full", "could not hand a packet to its connection's worker"),
        ("dest_gone", "real server replaced by another in its slot: its connection ended"),
        ("not_onlink", "DR: the real server is not on a connected network"),
        ("no_src", "tunnel: no source address for the outer header"),
        ("too_big", "tunnel: over the route MTU (with DF: ICMP frag. needed sent)"),
        ("no_headroom", "no room in the mbuf for a header to add (IPIP, a VLAN tag, a "
                        "tunnel's outer header)"),
        ("direct_reply", "DR/tunnel: a real server's reply came back through us"),
        ("tcp_hdrlen", "TCP data offset < 5 words, or header/options beyond the packet"),
        ("udp_len", "UDP length field not the IP payload's length"),
        ("icmp_len", "ICMP message shorter than its 8-byte header"),
        ("probe_answers_full", "a TCP health probe's answer found the answers' ring full "
         "(its check times out)"),
    )))

SVC = Group("svc", "SVC_", ("service",), "a virtual service", (
    _c("conns", "connections scheduled", "conns"),
    _c("inpkts", "packets from clients", "packets"),
    _c("outpkts", "packets to clients", "packets"),
    _c("inbytes", "bytes from clients", "bytes"),
    _c("outbytes", "bytes to clients", "bytes"),
    _c("no_dest", "new flows dropped: no available real server", "conns"),
    _c("no_laddr", "new flows dropped: FNAT without a free local address/port", "conns"),
))

DEST = Group("dest", "DEST_", ("service", "real_server"), "a real server of a service", (
    _c("activeconns", "connections established (TCP)", "conns", "gauge", "field"),
    _c("inactconns", "other connections (closing, UDP)", "conns", "gauge", "field"),
    _c("conns", "connections scheduled here (SNAT starts its port search from it)",
       "conns", source="field"),
    _c("inpkts", "packets from clients", "packets"),
    _c("outpkts", "packets to clients", "packets"),
    _c("inbytes", "bytes from clients", "bytes"),
    _c("outbytes", "bytes to clients", "bytes"),
    # The passive check (DPVS's --dest-check): what the real server did with the
    # connections sent to it, seen in the traffic itself. Only modes whose replies come
    # back through the LB (FNAT, NAT, SNAT) see an answer: for DR and Tunnel real
    # servers these are None (n/a). A health check reads fails_in_row (stats.pyx).
    _c("answered", "connections the real server answered (its first packet back came "
       "through us; a reset first counts as refused)", "conns"),
    _c("unanswered", "connections that ended with no packet back from the real server: "
       "TCP SYNs never answered, UDP with no datagram back", "conns"),
    _c("refused", "TCP connections the real server answered with a reset first "
       "(nothing listening)", "conns"),
    _c("fails_in_row", "connections unanswered or refused since the last answered one "
       "(the workers' runs after the newest answer, summed)", "conns", "gauge", "field"),
    _c("answered_ago", "seconds since the real server last answered a connection "
       "(None: never)", SECONDS, "gauge", "field"),
    _c("failed_ago", "seconds since a connection last ended unanswered or refused "
       "(None: never)", SECONDS, "gauge", "field"),
))

LADDR = Group("laddr", "LADDR_", ("service", "local_address"), "an FNAT local address", (
    _c("used", "connections holding a port of it", "conns", "gauge", "field"),
    _c("miss", "no free port found", "conns", source="field"),
))

WORKER = Group("worker", "WORKER_", ("worker",), "a worker lcore", (
    _c("polls", "passes of the worker's loop (busy_polls + idle_polls)"),
    _c("busy_polls", "passes that found work: frames, redirected packets, probes or "
       "messages"),
    _c("idle_polls", "passes that found nothing"),
    _c("busy_cycles", "TSC cycles of the busy passes (receive, process, transmit, timers)",
       CYCLES),
    _c("idle_cycles", "TSC cycles of the idle passes, not counting their sleeps", CYCLES),
    _c("rx_packets", "frames and packets the busy passes took: from the ports, their kni "
       "taps and the other workers", "packets"),
    _c("rx_bursts", "receive bursts that brought at least one of them", "bursts"),
    _c("idle_sleeps", "sleeps for want of packets (not with busy-poll)"),
    _c("probes_sent", "SYNs of TCP health checks the data plane's prober sent (worker 0)",
       "packets"),
    _c("probe_answers", "answers (SYN-ACK or reset) to the prober's SYNs this worker "
       "received", "packets"),
))

CONNS = Group("conns", "CT_", ("worker",), "a worker's connection table", (
    _c("conns", "connections in the table", "conns", "gauge", "field"),
    _c("created", "connections created", "conns"),
    _c("expired", "connections ended by their timer", "conns"),
    _c("adopted", "DR/Tunnel flows taken on mid-flow by a hash scheduler (sh, mh, "
       "conhash): a TCP segment other than a SYN with no connection, sent where the "
       "table says (a flow that ECMP moved here from another LB)", "conns"),
    _c("sync_sent", "connection events queued for the peer LB (new, state, end)", "events"),
    _c("sync_lost", "connection events lost: the queue to the control plane was full",
       "events"),
    _c("sync_applied", "the peer's connection events applied to this table", "events"),
    _c("sync_refused", "the peer's connection events for a service or real server this "
       "LB lacks, or with the table full", "events"),
))

GROUPS = (PORT, REASON, SVC, DEST, LADDR, WORKER, CONNS)


def pxi() -> str:
    """Cython enums of the array slots, for types.pxd (setup.py writes counters.pxi)."""
    out = ["# Generated by setup.py from rlb/core/counters.py: edit that, not this.", ""]
    for g in GROUPS:
        names = g.names("array")
        if not names:
            continue                    # all in fields of their own (LADDR)
        out.append(f"cdef enum:  # {g.name}: {g.help}")
        for i, name in enumerate(names):
            out.append(f"    {g.c_prefix}{name.upper()} = {i}")
        out += [f"    {g.c_prefix}COUNT = {len(names)}", ""]
    return "\n".join(out)


if __name__ == "__main__":
    print(pxi(), end="")
