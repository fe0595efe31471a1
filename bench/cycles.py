#!/usr/bin/env python3
"""Cycles per packet of rlb's per-packet paths, every forwarding mode, on in-memory ports,
side by side with bench/cfwd on the same ports: the figure that compares across machines.

No kernel, no generator, no second process: both data ports are DPDK pcap vdevs of
Debian's DPDK 22.11. The port the packets come in by replays a pcap file forever from
mbufs (`net_pcapN,rx_pcap=FILE,infinite_rx=1`: the file is loaded into mbufs of the
port's pool at start, each receive copies one into a fresh mbuf); the other port reads an
empty pcap, and what either port sends is freed and counted (the PMD's tx_drop, used when
no tx_pcap/tx_iface is given). The worker is never short of packets, so its loop is always
busy: what it costs per packet is what it can do per core.

Kinds of packets (pcaps written with scapy before the runs; FNAT, DR, Tunnel and NAT take
the same ones, to the VIP; SNAT's come from the LAN):

  est    one TCP flow from a client to the mode's virtual service: its SYN then 4095 data
         segments (6 bytes of payload, TCP timestamps as Linux sends them), replayed: after
         the first pass the connection exists and is ESTABLISHED, so nearly every packet
         takes the established path (connection lookup, state, rewrite, transmit); the SYN
         comes again once a pass (1 packet in 4096). Window: --seconds after --warmup.
  new    --new-flows distinct SYNs (client address and port; for SNAT also the
         destination), with Linux's SYN options. The daemon starts with the service and
         its real servers at weight 0 (the SYNs are dropped: no_dest); the bench then
         gives them their weights (`ipvsadm -e`, one commit), and from the moment the
         worker has them the next --new-flows packets are each a new connection
         (schedule, FNAT/SNAT local port, table insert, the mode's first-packet work such
         as TOA). The worker's counters are polled every --poll s; the window runs between
         the first and the last poll inside that first pass (0 < created < --new-flows)
         and must show one connection created per packet.
  again  the same daemon, later passes: each SYN finds its connection among the
         --new-flows (a lookup in a table bigger than the caches; SYN_RECV kept; FNAT puts
         TOA into every SYN). Window: --again-seconds.

Peers: cfwd, and rlb in each mode (the tutorial's commands from rlb/lab/scripts.py,
two-arm: clients on dpdk1, real servers on dpdk0, SNAT the other way round; static
neighbours; `workers 1`, `busy-poll`, the <port>.kni taps as deployed; FNAT with --lips
local addresses); on request (--nokni) a mode also without kni taps. cfwd is
the smallest C DPDK loop on the same pcap (rx burst, TTL and checksum, MACs, tx burst):
the floor of these ports. Runs are interleaved, --runs rounds; rows with noisy runs get
--retries extra rounds while --budget lasts; the medians leave noisy runs out when a row
has clean ones.

Measured: rlb from its worker counters (`show dataplane`): raw cycles/packet = delta
busy_cycles / delta rx_packets over the window; cfwd from its port counters (DPDK
telemetry, /ethdev/stats): TSC Hz / packets per second, its loop being always busy
(infinite_rx never leaves a poll empty: its exit counters give the share of empty polls);
TSC Hz from rlb's counters (busy + idle cycles over wall time). Both raw figures count the
cycles during which the worker thread was preempted (a shared 2-CPU machine): the figure
reported is raw x the thread's share of the window on its CPU (schedstat). A run is noisy
when that share is under --min-on-cpu or other processes used more than --max-noise % of
a CPU.

Must run as root:  /work/main/.venv/bin/python bench/cycles.py [--quick]
Writes bench/results/cycles-<timestamp>.{json,md}.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import ipaddress
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (HERE, BenchError, Proc, RlbDaemon, Window, add_output_options,  # noqa: E402
                    finish, install_signal_unwind, log, make_namespaces, remove_namespaces,
                    wait_for)

NS = "rlbb-cyc"
NAMESPACES = (NS,)
INSTANCE = "benchcyc"
CFWD_DIR = os.path.join(HERE, "cfwd")
CFWD_PREFIX = "rlbb-cyc-cfwd"
TELEMETRY = f"/var/run/dpdk/{CFWD_PREFIX}/dpdk_telemetry.v2"

MODES = ("fnat", "dr", "tunnel", "nat", "snat")
KINDS = ("est", "new", "again")
KIND_TITLE = {
    "est": "Established flow (one TCP flow: SYN + 4095 data segments, replayed)",
    "new": "New flows (distinct SYNs, each one a new connection)",
    "again": "The same SYNs again (each finds its connection among the new ones)"}
EST_PACKETS = 4096
DPVS_CYCLES = 760            # DPVS v1.9.2 performance report: 2.9 Mpps/worker, ~2.2 GHz
GOAL_CYCLES = 400            # rlb's goal for an established FNAT flow

# addresses: fnat.py's two-arm lab (clients on the WAN dpdk1, real servers on the LAN dpdk0)
VIP, CLIENT, WAN_IP = "10.0.0.100", "10.0.0.48", "10.0.0.1/16"
LAN_GW, RS = "192.168.100.1", ("192.168.100.2", "192.168.100.3")
RS_MAC = {"192.168.100.2": "02:bb:00:00:01:02", "192.168.100.3": "02:bb:00:00:01:03"}
LIP = "192.168.100.200"
SNAT_WAN, SNAT_GW, SNAT_GW_MAC = "10.0.0.3", "10.0.0.254", "02:bb:00:00:00:fe"
SNAT_CLIENT, CLIENT_MAC = "192.168.100.46", "02:bb:00:00:00:48"
NEW_SRC = "10.0.16.0"        # new flows: client address NEW_SRC + i // PORTS_PER_ADDR
SNAT_DST = "172.16.0.0"      # SNAT new flows: destination SNAT_DST + i % SNAT_DSTS (by the gateway)
SNAT_DSTS = 256
PORTS_PER_ADDR = 60000
PEER_MAC = "02:bb:00:00:00:02"   # cfwd's destination MAC (nobody reads it)


def pcap_mac(index: int) -> str:
    """The MAC DPDK 22.11's pcap PMD gives its index-th device (02:70:63:61:70 = "\\x02pcap")."""
    return f"02:70:63:61:70:{index:02x}"


def in_port(mode: str) -> int:
    """dpdk0 (LAN) or dpdk1 (WAN): where the mode's client traffic comes in."""
    return 0 if mode == "snat" else 1


# ------------------------------------------------------------------ configs


def _scripts():
    """rlb.lab.scripts (it imports the compiled mode plugins: wait out a rebuild)."""
    for attempt in range(3):
        try:
            from rlb.lab import scripts, topologies
            return scripts, topologies
        except ImportError as err:
            if attempt == 2:
                raise
            log(f"importing rlb.lab.scripts: {err}; a rebuild? again in 60 s")
            time.sleep(60)


def mode_script(mode: str, lips: int) -> list[str]:
    """The tutorial's commands of a mode, two-arm, and the static neighbours it needs."""
    scripts, topologies = _scripts()
    rs_neigh = [f"dpip neigh add {ip} lladdr {mac} dev dpdk0" for ip, mac in RS_MAC.items()]
    if mode == "fnat":
        laddrs = [str(ipaddress.IPv4Address(LIP) + i) for i in range(lips)]
        return [*scripts.fnat(VIP, laddrs=laddrs), *rs_neigh]
    if mode in ("dr", "tunnel"):
        return [*scripts.dr(VIP, dev="dpdk0", lan_ip=f"{LAN_GW}/24", wan="dpdk1",
                            wan_ip=WAN_IP, mode=mode, servers=RS), *rs_neigh]
    if mode == "nat":
        return [*scripts.nat(VIP, addrs=((WAN_IP, "dpdk1"), (f"{LAN_GW}/24", "dpdk0")),
                             vip_dev="dpdk1", vip_last=False, servers=RS), *rs_neigh]
    if mode == "snat":
        return [*scripts.snat(SNAT_WAN, match=topologies.SNAT_MATCH, wan_plen=16,
                              gateway=SNAT_GW, protos=("proto=tcp",)),
                f"dpip neigh add {CLIENT} lladdr {CLIENT_MAC} dev dpdk1",
                f"dpip neigh add {SNAT_GW} lladdr {SNAT_GW_MAC} dev dpdk1"]
    raise KeyError(mode)


def weight_gate(line: str) -> tuple[str, str] | None:
    """For an `ipvsadm -a` line: the same at weight 0 (the config's: the scheduler then
    has no real server, the SYNs are dropped as no_dest) and the `ipvsadm -e` that gives
    it its weight back (the bench's, once the daemon runs). The servers exist from the
    start, so adding them costs the control plane nothing then (the health probe paths,
    rlb.health.path, are made at startup, not in the window)."""
    if not line.startswith("ipvsadm -a "):
        return None
    words = line.split()
    weight = "1"
    if "-w" in words:
        i = words.index("-w")
        weight = words[i + 1]
        del words[i:i + 2]
    zero = " ".join(words + ["-w", "0"])
    back = " ".join(["ipvsadm", "-e", *words[2:], "-w", weight])
    return zero, back


def pool_for(packets: int) -> int:
    """mbufs: the pcap held in the pool, plus rlb's default for the rest."""
    return packets + 16384


def memory_mib(pool: int, conns: int = 0) -> int:
    """EAL memory (no hugepages) for the pool, the connection table (~80 bytes an entry
    with its hash) and the rest. Without hugepages the pages are 4 KiB and a mempool
    object may not cross one: each 2.4 KiB mbuf takes a page of its own."""
    return 384 + (pool * 4096 * 21 // 20 + conns * 100) // (1 << 20)


def split_peer(peer: str) -> tuple[str, bool]:
    """rlb's peer name: its mode, and whether it keeps its kni taps ("fnat-nokni": not)."""
    return peer.removesuffix("-nokni"), not peer.endswith("-nokni")


def rlb_config(opts, peer: str, kind: str, pcaps: dict) -> tuple[str, list[str]]:
    """The daemon's config, and the lines the bench sends once it runs (new flows: the
    real servers' weights, so that no SYN makes a connection before the window)."""
    mode, kni = split_peer(peer)
    kni = kni and opts.kni
    port_pcap = [pcaps["empty"], pcaps["empty"]]
    port_pcap[in_port(mode)] = pcaps[(mode, "new" if kind == "again" else kind)]
    ports = []
    for i, path in enumerate(port_pcap):
        dev = f"net_pcap{i},rx_pcap={path}" + (",infinite_rx=1" if i == in_port(mode) else "")
        ports.append(f" port dpdk{i} {dev}")
    head = ["dataplane", " workers 1", *ports, " busy-poll"]
    if kind != "est":
        conns = opts.new_flows + 65536
        pool = pool_for(opts.new_flows)
        head += [f" pool-size {pool}", f" conn-table-size {conns}",
                 f" memory {memory_mib(pool, conns)}"]
    if not kni:
        head.append(" no-kni")
    body, later = [], []
    for ln in mode_script(mode, opts.lips):
        gate = weight_gate(ln) if kind != "est" else None
        body.append(gate[0] if gate else ln)
        if gate:
            later.append(gate[1])
    return "\n".join([*head, "!", *body, ""]), later


# ------------------------------------------------------------------ pcaps


PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


def write_pcap(path: str, frames) -> int:
    n = 0
    with open(path, "wb") as f:
        f.write(PCAP_HEADER)
        for fr in frames:
            f.write(struct.pack("<IIII", n // 1000000, n % 1000000, len(fr), len(fr)))
            f.write(fr)
            n += 1
    return n


def syn_options(ts: int):
    return [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (ts, 0)), ("NOP", None),
            ("WScale", 7)]


def flow_ends(mode: str) -> tuple[str, str, int]:
    """(client, destination, destination port) of the mode's established flow."""
    if mode == "snat":
        return SNAT_CLIENT, CLIENT, 80
    return CLIENT, VIP, 80


def est_frames(mode: str, ts: bool) -> list[bytes]:
    """The flow's SYN, then data segments built from one scapy template: the sequence
    number and TSval move on, the TCP checksum is computed again."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    src, dst, dport = flow_ends(mode)
    eth = Ether(src=CLIENT_MAC, dst=pcap_mac(in_port(mode)))
    ip = IP(src=src, dst=dst, id=1, flags="DF", ttl=64)
    isn, sport, payload = 1000000, 40000, b"GET / "
    out = [bytes(eth / ip / TCP(sport=sport, dport=dport, flags="S", seq=isn, window=64240,
                                options=syn_options(5000) if ts else []))]
    opt = [("NOP", None), ("NOP", None), ("Timestamp", (5001, 7000))] if ts else []
    t = bytearray(bytes(eth / ip / TCP(sport=sport, dport=dport, flags="PA", seq=isn + 1,
                                       ack=9000001, window=502, options=opt) / Raw(payload)))
    tcp = 14 + (t[14] & 0xF) * 4
    pseudo = bytes(t[26:34]) + struct.pack("!HH", 6, len(t) - tcp)
    for k in range(EST_PACKETS - 1):
        struct.pack_into("!I", t, tcp + 4, isn + 1 + k * len(payload))
        if ts:
            struct.pack_into("!I", t, tcp + 24, 5001 + k)
        t[tcp + 16:tcp + 18] = b"\0\0"
        struct.pack_into("!H", t, tcp + 16, SynPatcher._fold(SynPatcher._sum(
            pseudo + bytes(t[tcp:]))))
        out.append(bytes(t))
    return out


class SynPatcher:
    """Many SYNs from one scapy-built template: addresses and ports patched in, the IP
    and TCP checksums computed incrementally from the template's (RFC 1071 sums)."""

    def __init__(self, template: bytes):
        self.t = bytearray(template)
        ihl = (self.t[14] & 0xF) * 4
        self.tcp = 14 + ihl
        tcp_len = len(self.t) - self.tcp
        ip = bytearray(self.t[14:14 + ihl])
        ip[10:12] = b"\0\0"
        ip[12:20] = b"\0" * 8
        self.ip_base = self._sum(ip)
        seg = bytearray(self.t[self.tcp:])
        seg[0:4] = b"\0" * 4
        seg[16:18] = b"\0\0"
        self.tcp_base = self._sum(seg) + 6 + tcp_len

    @staticmethod
    def _sum(b) -> int:
        if len(b) % 2:
            b = bytes(b) + b"\0"
        return sum(struct.unpack(f"!{len(b) // 2}H", bytes(b)))

    @staticmethod
    def _fold(s: int) -> int:
        while s >> 16:
            s = (s & 0xFFFF) + (s >> 16)
        return ~s & 0xFFFF

    def frame(self, src: int, dst: int, sport: int, dport: int) -> bytes:
        t, tcp = self.t, self.tcp
        a = (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF)
        struct.pack_into("!HII", t, 24, self._fold(self.ip_base + a), src, dst)
        struct.pack_into("!HH", t, tcp, sport, dport)
        struct.pack_into("!H", t, tcp + 16, self._fold(self.tcp_base + a + sport + dport))
        return bytes(t)


def new_tuples(mode: str, n: int):
    """(client, client port, destination, destination port) of the i-th new flow."""
    if mode == "snat":
        # destinations in turn: one destination's flows are SNAT_DSTS apart in any order
        # of creation, so its sapool ports (taken in turn, rlb/modes/snat) never meet
        c, d = int(ipaddress.IPv4Address(SNAT_CLIENT)), int(ipaddress.IPv4Address(SNAT_DST))
        for i in range(n):
            yield c, 1024 + (i // SNAT_DSTS) % PORTS_PER_ADDR, d + i % SNAT_DSTS, 80
    else:
        c, v = int(ipaddress.IPv4Address(NEW_SRC)), int(ipaddress.IPv4Address(VIP))
        for i in range(n):
            yield c + i // PORTS_PER_ADDR, 1024 + i % PORTS_PER_ADDR, v, 80


def new_frames(mode: str, n: int, ts: bool, only=None):
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    src, dst, dport = flow_ends(mode)
    tmpl = bytes(Ether(src=CLIENT_MAC, dst=pcap_mac(in_port(mode))) /
                 IP(src=src, dst=dst, id=1, flags="DF", ttl=64) /
                 TCP(sport=1024, dport=dport, flags="S", seq=1000000, window=64240,
                     options=syn_options(5000) if ts else []))
    p = SynPatcher(tmpl)
    for i, (c, cp, d, dp) in enumerate(new_tuples(mode, n)):
        if only is None or i in only:
            yield p.frame(c, d, cp, dp)


def check_frames(frames: list[bytes]) -> None:
    """scapy recomputes the checksums of a few: the patched ones must match."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    for raw in frames:
        p = Ether(raw)
        del p[IP].chksum
        del p[TCP].chksum
        if bytes(p.__class__(bytes(p))) != raw:
            raise BenchError(f"bad checksums in a generated frame: {raw.hex()}")


def make_pcaps(opts, d: str) -> dict:
    """One pcap per kind and side: the modes with clients on dpdk1 (FNAT, DR, Tunnel, NAT)
    take the same packets to the VIP; SNAT's come in by dpdk0. cfwd replays the first
    mode's (it reads no address: only the number and size of the packets matter)."""
    t0 = time.monotonic()
    out = {"empty": os.path.join(d, "empty.pcap")}
    write_pcap(out["empty"], [])
    written: dict = {}
    for mode in opts.modes:
        side = "lan" if in_port(mode) == 0 else "wan"
        for kind in ("est", "new"):
            if kind == "new" and "new" not in opts.kinds or kind == "est" and "est" not in opts.kinds:
                continue
            path = os.path.join(d, f"{kind}-{side}.pcap")
            if path not in written:
                if kind == "est":
                    frames = est_frames(mode, opts.tcp_ts)
                    check_frames([frames[0], frames[1], frames[-1]])
                    written[path] = write_pcap(path, frames)
                else:
                    n = opts.new_flows
                    check_frames(list(new_frames(mode, n, opts.tcp_ts, only={0, 1, n // 2, n - 1})))
                    written[path] = write_pcap(path, new_frames(mode, n, opts.tcp_ts))
            out[(mode, kind)] = path
    for kind in ("est", "new"):
        if (opts.modes[0], kind) in out:
            out[("cfwd", kind)] = out[(opts.modes[0], kind)]
    log(f"pcaps written in {time.monotonic() - t0:.1f} s: "
        + ", ".join(f"{os.path.basename(p)} {n} packets" for p, n in written.items()))
    return out


# ------------------------------------------------------------------ rlb


class Rlb(RlbDaemon):
    """The daemon, ready when its control socket answers (no `rlb -c` process per try)."""

    def start(self, config: str, timeout: float = 90) -> None:
        super().start(config, timeout=timeout)

    def ready(self, ready_cmd: str) -> bool:
        try:
            self.call("show dataplane", timeout=5)
            return True
        except (OSError, ValueError, BenchError):
            return False


class Poller:
    """One control connection, kept open: `show dataplane` and `dpip link show -s` read
    back to back, each reading stamped with the monotonic clock."""

    def __init__(self, sock_path: str):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(10)
        self.s.connect(sock_path)
        self.f = self.s.makefile("rwb")

    def call(self, cmd: str) -> dict:
        self.f.write(json.dumps({"cmd": cmd}).encode() + b"\n")
        self.f.flush()
        return self._reply(cmd)

    def _reply(self, what: str) -> dict:
        while True:
            reply = json.loads(self.f.readline())
            if "notice" not in reply and "progress" not in reply:
                break
        if not reply.get("ok"):
            raise BenchError(f"rlb {what!r}: {reply.get('error')}")
        return reply.get("data") or {}

    def load(self, lines: list[str]) -> dict:
        """Lines as one commit (what `rlb -f` sends): all of them reach the workers in one
        go."""
        self.f.write(json.dumps({"load": "\n".join(lines) + "\n",
                                 "source": "bench/cycles.py"}).encode() + b"\n")
        self.f.flush()
        return self._reply(f"load {lines}")

    def settle(self, timeout: float = 8) -> float:
        """Wait until the control loop answers at once (after a start, the daemon still
        imports and starts its services for a second or so): five replies under 5 ms in
        a row. Returns the seconds waited."""
        t0 = time.monotonic()
        fast = 0
        while fast < 5 and time.monotonic() - t0 < timeout:
            t = time.monotonic()
            self.call("show dataplane")
            fast = fast + 1 if time.monotonic() - t < 0.005 else 0
            time.sleep(0.02)
        return round(time.monotonic() - t0, 2)

    def snap(self, ports: bool = True) -> dict:
        t0 = time.monotonic()
        dp = self.call("show dataplane")
        t1 = time.monotonic()
        w = dp["workers"][0]
        out = {"t": (t0 + t1) / 2, "call_ms": round(1000 * (t1 - t0), 2),
               "worker": {k: v for k, v in w.items() if isinstance(v, int)},
               "created": dp["connections"]["created"], "conns": dp["connections"]["conns"],
               "reasons": dict(dp["reasons"])}
        if ports:
            link = self.call("dpip link show -s")
            out["ports"] = {p["name"]: {k: v for k, v in p.get("stats", {}).items()
                                        if isinstance(v, int)} for p in link.get("ports", [])}
        return out

    def close(self) -> None:
        try:
            self.f.close()
            self.s.close()
        except OSError:
            pass


def worker_tid(pid: int) -> int | None:
    """The DPDK worker lcore thread of a process (rte-worker-N)."""
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                if f.read().strip().startswith(("rte-worker", "lcore-worker")):
                    return int(tid)
    except OSError:
        pass
    return None


def on_cpu_ns(pid: int, tid: int | None) -> int | None:
    """Nanoseconds the thread has run on a CPU (/proc/.../schedstat, first field)."""
    if tid is None:
        return None
    try:
        with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class OnCpu:
    """The worker thread's share of wall time on its CPU over a window: busy cycles (and
    cfwd's TSC Hz / pps) also count the time it was preempted, which this takes out."""

    def __init__(self, pid: int):
        self.pid, self.tid = pid, worker_tid(pid)
        self.a = (time.monotonic_ns(), on_cpu_ns(pid, self.tid))

    def close(self) -> float | None:
        t, ns = time.monotonic_ns(), on_cpu_ns(self.pid, self.tid)
        if ns is None or self.a[1] is None or t <= self.a[0]:
            return None
        return round(min(1.0, (ns - self.a[1]) / (t - self.a[0])), 5)


def window_figures(a: dict, b: dict, mode: str) -> dict:
    """What a window between two snapshots says: cycles per packet, rates, checks."""
    wa, wb = a["worker"], b["worker"]
    rx = wb["rx_packets"] - wa["rx_packets"]
    busy = wb["busy_cycles"] - wa["busy_cycles"]
    idle = wb["idle_cycles"] - wa["idle_cycles"]
    dt = b["t"] - a["t"]
    res = {"seconds": round(dt, 4), "rx_packets": rx, "busy_cycles": busy, "idle_cycles": idle,
           "cycles_raw": round(busy / rx, 1) if rx else None,
           "pps": round(rx / dt) if dt > 0 else None,
           "busy_share": round(busy / (busy + idle), 5) if busy + idle else None,
           "tsc_hz": round((busy + idle) / dt) if dt > 0 else None,
           "packets_per_burst": round(rx / max(1, wb["rx_bursts"] - wa["rx_bursts"]), 2),
           "created": b["created"] - a["created"],
           "reasons": {k: v - a["reasons"].get(k, 0) for k, v in b["reasons"].items()
                       if v - a["reasons"].get(k, 0)}}
    if "ports" in a and "ports" in b:
        def d(port, key):
            return b["ports"][port].get(key, 0) - a["ports"][port].get(key, 0)
        pin, pout = f"dpdk{in_port(mode)}", f"dpdk{1 - in_port(mode)}"
        res["port_rx"], res["port_tx"] = d(pin, "ipackets"), d(pout, "opackets")
        res["forwarded"] = round(res["port_tx"] / res["port_rx"], 5) if res["port_rx"] else None
    return res


def check_macs(p: Poller) -> None:
    link = p.call("dpip link show")
    for port in link.get("ports", []):
        i = int(port["name"][-1])
        if port.get("mac", "").lower() != pcap_mac(i):
            raise BenchError(f"{port['name']} has MAC {port.get('mac')}, the pcaps were "
                             f"written for {pcap_mac(i)}: the pcap PMD names MACs otherwise")


def run_rlb(opts, peer: str, kind: str, pcaps: dict, logdir: str, tag: str) -> dict:
    config, later = rlb_config(opts, peer, kind, pcaps)
    mode = split_peer(peer)[0]
    d = Rlb(opts.python, INSTANCE, NS, logdir, name=f"rlb-{tag}")
    res: dict = {"peer": peer, "kind": kind}
    poller = None
    try:
        t0 = time.monotonic()
        try:
            d.start(config)
        except BenchError as err:
            if "ImportError" in str(err) or "ModuleNotFoundError" in str(err) or \
                    "undefined symbol" in str(err):
                log(f"rlb-{mode}: {str(err)[-300:]}: a rebuild? again in 60 s")
                d.stop()
                time.sleep(60)
                d = Rlb(opts.python, INSTANCE, NS, logdir, name=f"rlb-{tag}-retry")
                d.start(config)
            else:
                raise
        res["startup_s"] = round(time.monotonic() - t0, 2)
        poller = Poller(d.sock_path)
        check_macs(poller)
        if kind == "est":
            measure_est(opts, d, poller, mode, res)
            res["conn_states"] = conn_states(poller)       # one connection, established
        else:
            measure_new(opts, d, poller, mode, kind, later, res)
    finally:
        if poller is not None:
            poller.close()
        t = time.monotonic()
        res["stop"] = d.stop()
        res["stop_s"] = round(time.monotonic() - t, 2)
    return res


def conn_states(p: Poller) -> dict:
    """Connection states of the table (ipvsadm -lnc)."""
    try:
        rows = p.call("ipvsadm -lnc").get("connections", [])
    except BenchError:
        return {}
    out: dict = {}
    for r in rows:
        out[r.get("state", "?")] = out.get(r.get("state", "?"), 0) + 1
    return out


def measure_est(opts, d: Rlb, p: Poller, mode: str, res: dict) -> None:
    time.sleep(opts.warmup)
    win = Window(NAMESPACES, {"fwd": d.pid})
    a = p.snap()
    oc = OnCpu(d.pid)
    time.sleep(opts.seconds)
    on_cpu = oc.close()
    b = p.snap()
    res["cpu"] = win.close()
    res["window"] = window_figures(a, b, mode)
    res["window"]["conns"] = b["conns"]
    res["window"]["on_cpu"] = on_cpu


def measure_new(opts, d: Rlb, p: Poller, mode: str, kind: str, later: list[str],
                res: dict) -> None:
    """The real servers get their weights (one commit, sent on a second connection while
    this one polls: the commit holds the control loop for tens of ms); from the moment the
    worker has them, the next --new-flows packets are each a new connection (distinct
    tuples, none in the table). A poll inside that first pass is one with 0 < created <
    --new-flows (every packet since the weights made one); the window runs from the first
    such poll to the last, and is kept only if it made a connection per packet."""
    k = opts.new_flows
    res["settle_s"] = p.settle()
    s0 = p.snap()
    res["before"] = {"reasons": s0["reasons"], "created": s0["created"]}
    if s0["created"]:
        raise BenchError(f"{s0['created']} connections before the real servers had weight")
    tid = worker_tid(d.pid)
    win = Window(NAMESPACES, {"fwd": d.pid})
    gate = Poller(d.sock_path)
    done: dict = {}

    def give_weights():
        t = time.monotonic()
        try:
            gate.load(later)
        except (BenchError, OSError, ValueError) as err:
            done["error"] = err
        done["ms"] = round(1000 * (time.monotonic() - t), 1)
    th = threading.Thread(target=give_weights, name="weights")
    th.start()
    snaps = []
    limit = time.monotonic() + 10
    try:
        while time.monotonic() < limit:
            snaps.append(p.snap())
            snaps[-1]["on_cpu_ns"] = on_cpu_ns(d.pid, tid)
            if snaps[-1]["created"] - s0["created"] >= k or "error" in done:
                break
            time.sleep(opts.poll)
    finally:
        th.join(30)
        gate.close()
    if "error" in done:
        raise BenchError(f"giving the real servers their weights: {done['error']}")
    res["add_ms"] = done.get("ms")
    res["polls"] = len(snaps)
    res["poll_call_ms"] = round(statistics.median(s["call_ms"] for s in snaps), 2)
    first = [s for s in snaps if 0 < s["created"] - s0["created"] < k]
    if len(first) < 2:
        raise BenchError(
            f"fewer than two polls inside the first pass of {k} new flows (weights took "
            f"{done.get('ms')} ms; created by poll: "
            f"{[s['created'] - s0['created'] for s in snaps]}; poll calls "
            f"{[s['call_ms'] for s in snaps]} ms): raise --new-flows")
    res["cpu"] = win.close()
    new = window_figures(first[0], first[-1], mode)
    if first[0].get("on_cpu_ns") is not None and first[-1].get("on_cpu_ns") is not None:
        new["on_cpu"] = round(min(1.0, (first[-1]["on_cpu_ns"] - first[0]["on_cpu_ns"]) /
                                  1e9 / new["seconds"]), 5)
    new["first_pass_share"] = round(new["rx_packets"] / k, 3)
    new["polls_in_window"] = len(first)
    res["windows"] = {"new": new}
    if "again" in opts.kinds:
        time.sleep(0.05)
        win = Window(NAMESPACES, {"fwd": d.pid})
        c = p.snap()
        oc = OnCpu(d.pid)
        time.sleep(opts.again_seconds)
        on_cpu = oc.close()
        e = p.snap()
        res["cpu_again"] = win.close()
        res["windows"]["again"] = window_figures(c, e, mode)
        res["windows"]["again"]["conns"] = e["conns"]
        res["windows"]["again"]["on_cpu"] = on_cpu
    res["window"] = res["windows"][kind] if kind in res["windows"] else res["windows"]["new"]


# ------------------------------------------------------------------ cfwd


def cfwd_rx(sock) -> tuple[float, int]:
    sock.send(b"/ethdev/stats,0")
    data = json.loads(sock.recv(1 << 16))
    return time.monotonic(), data["/ethdev/stats"]["ipackets"]


def run_cfwd(opts, kind: str, pcaps: dict, logdir: str, tag: str) -> dict:
    pcap = pcaps[("cfwd", kind)]
    n = EST_PACKETS if kind == "est" else opts.new_flows
    mbufs = n + 8192
    mem = memory_mib(mbufs)
    cmd = ["ip", "netns", "exec", NS, os.path.join(CFWD_DIR, "cfwd"), "--no-huge", "-m", str(mem),
           "--no-pci", "--no-shconf", "--file-prefix", CFWD_PREFIX,
           "--lcores", f"0@{opts.main_cpu},1@{opts.fwd_cpu}", "--log-level", "*:error",
           "--vdev", f"net_pcap0,rx_pcap={pcap},infinite_rx=1",
           "--vdev", f"net_pcap1,rx_pcap={pcaps['empty']}",
           "--", "--dst-mac", PEER_MAC, "--mbufs", str(mbufs)]
    res: dict = {"peer": "cfwd", "kind": kind, "cmd": cmd}
    t0 = time.monotonic()
    proc = Proc(f"cfwd-{tag}", cmd, logdir)
    try:
        wait_for(lambda: "forwarding" in proc.stderr(), 60, "cfwd", proc)
        res["startup_s"] = round(time.monotonic() - t0, 2)
        wait_for(lambda: os.path.exists(TELEMETRY), 10, "cfwd telemetry socket", proc)
        time.sleep(opts.warmup)
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
            s.settimeout(5)
            s.connect(TELEMETRY)
            s.recv(4096)
            win = Window(NAMESPACES, {"fwd": proc.pid})
            ta, ra = cfwd_rx(s)
            oc = OnCpu(proc.pid)
            time.sleep(opts.seconds if kind == "est" else opts.again_seconds)
            on_cpu = oc.close()
            tb, rb = cfwd_rx(s)
            res["cpu"] = win.close()
        dt = tb - ta
        res["window"] = {"seconds": round(dt, 4), "rx_packets": rb - ra,
                         "pps": round((rb - ra) / dt), "on_cpu": on_cpu}
    finally:
        rc = proc.stop(signal.SIGTERM, timeout=15)
        res["exit"] = rc
        try:
            res["stats"] = json.loads(proc.stdout().strip().splitlines()[-1])
        except (ValueError, IndexError):
            res["stats"] = None
            res["stderr"] = proc.stderr()[-2000:]
    st = res.get("stats") or {}
    if st.get("polls"):
        res["window"]["empty_poll_share"] = round(st["empty_polls"] / st["polls"], 6)
        res["window"]["forwarded"] = round(st["tx"] / max(1, st["rx"]), 5)
    return res


# ------------------------------------------------------------------ runs


def worker_thread(r: dict, key: str = "cpu") -> dict | None:
    rows = ((r.get(key) or {}).get("threads") or {}).get("fwd") or []
    if not rows:
        return None
    t = max(rows, key=lambda t: t["user"] + t["system"])
    return {"thread": t["thread"], "cpu_pct": round(t["user"] + t["system"], 1),
            "kernel_share": round(t["system"] / max(0.1, t["user"] + t["system"]), 4),
            "preempted": t["preempted"]}


def noise_of(r: dict, opts, key: str = "cpu") -> list[str]:
    """Why a run's figure may be off: something else ran on the worker's CPU."""
    why = []
    cpu = r.get(key) or {}
    ol = (cpu.get("other_load") or {}).get("total_pct")
    if ol is not None and opts.max_noise and ol > opts.max_noise:
        why.append(f"other load {ol:.0f}%")
    oc = (r.get("window") or {}).get("on_cpu")
    if oc is not None and oc < opts.min_on_cpu:
        why.append(f"worker thread on its CPU {100 * oc:.0f}% of the time")
    return why


def one_run(opts, peer: str, kind: str, pcaps: dict, logdir: str, idx: int) -> list[dict]:
    """One run of a peer for a kind; a rlb new-flows run also gives the `again` row."""
    tag = f"{peer}-{kind}-{idx}"
    try:
        if peer == "cfwd":
            r = run_cfwd(opts, "est" if kind == "est" else "new", pcaps, logdir, tag)
            r["kind"] = kind
            out = [r]
        else:
            r = run_rlb(opts, peer, "est" if kind == "est" else "new", pcaps, logdir, tag)
            out = [dict(r, kind="new", window=r["windows"]["new"])] if kind != "est" else [r]
            if kind != "est" and "again" in r.get("windows", {}):
                out.append(dict(r, kind="again", window=r["windows"]["again"],
                                cpu=r.get("cpu_again")))
    except (BenchError, OSError, subprocess.SubprocessError, ValueError, KeyError) as err:
        log(f"{tag} failed: {type(err).__name__}: {err}")
        kinds = ["new", "again"] if kind == "new" and "again" in opts.kinds else [kind]
        return [{"peer": peer, "kind": k, "run": idx, "error": f"{type(err).__name__}: {err}"}
                for k in kinds]
    for x in out:
        x["run"] = idx
        x["worker_thread"] = worker_thread(x)
        w = x["window"]
        if peer != "cfwd" and w.get("tsc_hz") and w["seconds"] >= 0.9:
            TSC["rlb"].append(w["tsc_hz"])
        figures(x, tsc_estimate())
        x["noisy"] = noise_of(x, opts)
        log(f"{peer} {x['kind']} run {idx}: {fmt_cpp(w.get('cycles_per_packet'))} cycles/packet "
            f"on CPU ({fmt_cpp(w.get('cycles_raw'))} raw, worker on CPU "
            f"{100 * (w.get('on_cpu') or 0):.1f}%), {w['pps'] / 1e6:.3f} Mpps"
            + (f", created {w['created']}" if "created" in w else "")
            + (f" (noisy: {', '.join(x['noisy'])})" if x["noisy"] else ""))
    return out


TSC: dict = {"rlb": []}


def tsc_estimate() -> float:
    """TSC Hz: the median of what rlb's counters gave so far (busy + idle cycles over
    wall time), else /proc/cpuinfo's MHz."""
    if TSC["rlb"]:
        return statistics.median(TSC["rlb"])
    mhz = cpuinfo_mhz()
    return mhz * 1e6 if mhz else 1e9


def figures(r: dict, tsc_hz: float) -> None:
    """A run's cycles per packet: raw (rlb: busy cycles / packets; cfwd: TSC Hz / pps,
    its loop being always busy) and on CPU (raw x the worker thread's share of the
    window on its CPU: cycles while preempted are no packet's)."""
    w = r["window"]
    if r["peer"] == "cfwd":
        w["cycles_raw"] = round(tsc_hz / w["pps"], 1) if w.get("pps") else None
    raw, oc = w.get("cycles_raw"), w.get("on_cpu")
    w["cycles_per_packet"] = round(raw * oc, 1) if raw and oc else raw


def fmt_cpp(v) -> str:
    return "-" if v is None else f"{v:.0f}"


def cpuinfo_mhz() -> float | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    return float(line.split(":")[1])
    except (OSError, ValueError):
        pass
    return None


def summarize(results: list[dict], opts, tsc_hz: float) -> dict:
    """Per kind and peer: the median, min and max of the runs' cycles per packet (over the
    clean runs when there are any), Mpps, ratios to cfwd of the same kind."""
    out: dict = {}
    for r in results:
        if "error" not in r:
            figures(r, tsc_hz)
    for kind in opts.kinds:
        rows = {}
        for peer in peer_list(opts):
            k = "new" if peer == "cfwd" and kind == "again" else kind
            runs = [r for r in results if r["peer"] == peer and r["kind"] == k]
            ok = [r for r in runs if "error" not in r and r["window"].get("cycles_per_packet")]
            clean = [r for r in ok if not r["noisy"]]
            use = clean or ok
            if not use:
                if runs:
                    rows[peer] = {"runs": 0, "failed": len(runs)}
                continue
            cpp = [r["window"]["cycles_per_packet"] for r in use]
            raw = [r["window"]["cycles_raw"] for r in use]
            pps = [r["window"]["pps"] for r in use]
            oncpu = [r["window"].get("on_cpu") for r in use if r["window"].get("on_cpu")]
            row = {"runs": len(use), "failed": len(runs) - len(ok),
                   "noisy_used": not clean,
                   "cycles_all": cpp, "cycles_median": statistics.median(cpp),
                   "cycles_min": min(cpp), "cycles_max": max(cpp),
                   "raw_all": raw, "raw_median": statistics.median(raw),
                   "on_cpu_min": min(oncpu) if oncpu else None,
                   "pps_all": pps, "pps_median": statistics.median(pps)}
            ks = [r["worker_thread"]["kernel_share"] for r in use
                  if (r.get("worker_thread") or {}).get("kernel_share") is not None]
            if ks and kind == "est":
                row["kernel_share"] = statistics.median(ks)
            fw = [r["window"].get("forwarded") for r in use if r["window"].get("forwarded")
                  is not None]
            if fw:
                row["forwarded_min"] = min(fw)
            bs = [r["window"].get("busy_share") for r in use if r["window"].get("busy_share")]
            if bs:
                row["busy_share_min"] = min(bs)
            if kind != "est" and peer != "cfwd":
                row["created_per_packet"] = [round(r["window"]["created"] /
                                                   max(1, r["window"]["rx_packets"]), 4)
                                             for r in use]
            reasons: dict = {}
            for r in use:
                for k, v in (r["window"].get("reasons") or {}).items():
                    reasons[k] = reasons.get(k, 0) + v
            row["reasons"] = reasons
            rows[peer] = row
        ref = rows.get("cfwd", {}).get("cycles_median")
        for peer, row in rows.items():
            if ref and row.get("cycles_median"):
                row["vs_cfwd"] = round(row["cycles_median"] / ref, 2)
                row["above_cfwd"] = round(row["cycles_median"] - ref, 1)
        out[kind] = rows
    return out


# ------------------------------------------------------------------ report


def markdown(summary: dict, results: list[dict], opts, meta: dict) -> str:
    ghz = meta["tsc_hz"] / 1e9
    L = [f"# Cycles per packet: rlb's modes vs cfwd on in-memory ports ({meta['started']})", "",
         f"`bench/cycles.py{' --quick' if opts.quick else ''}`, kernel {meta['kernel']}, "
         f"{meta['cpu_model']} ({os.cpu_count()} CPUs), TSC {ghz:.3f} GHz (from rlb's counters); "
         f"DPDK pcap PMD ports (`infinite_rx=1` in, tx dropped), 1 worker on CPU "
         f"{opts.fwd_cpu}, busy-poll, {'kni taps' if opts.kni else 'no-kni'}; "
         f"{opts.runs} run(s) per row, interleaved; est: {opts.warmup:g} s warm-up + "
         f"{opts.seconds:g} s window; new: the first {opts.new_flows} SYNs after the real "
         f"servers got their weights, window between polls inside them; again: "
         f"{opts.again_seconds:g} s; "
         f"TCP timestamps {'on' if opts.tcp_ts else 'off'}; FNAT {opts.lips} local "
         f"addresses.", ""]
    for kind in opts.kinds:
        rows = summary.get(kind) or {}
        L += [f"## {KIND_TITLE[kind]}", "",
              "| peer | cycles/packet (median) | min - max | runs used | raw (median) | worker on "
              "CPU (min) | Mpps (median) | vs cfwd | above cfwd | forwarded | notes |",
              "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|"]
        for peer, row in rows.items():
            name = peer if peer == "cfwd" else \
                f"rlb {split_peer(peer)[0]}" + ("" if split_peer(peer)[1] else ", no kni")
            if not row.get("runs"):
                L.append(f"| {name} | failed | | | | | | | | {row.get('failed', 0)} failed |")
                continue
            notes = []
            if row.get("failed"):
                notes.append(f"{row['failed']} failed")
            if row.get("noisy_used"):
                notes.append("all runs noisy")
            if row.get("created_per_packet") and kind == "new":
                notes.append(f"created/rx >= {min(row['created_per_packet']):.3f}")
            if row.get("reasons"):
                notes.append("drops: " + ", ".join(f"{k} {v}" for k, v in
                                                   sorted(row["reasons"].items())))
            if row.get("kernel_share") is not None and row["kernel_share"] >= 0.005:
                notes.append(f"worker in the kernel {100 * row['kernel_share']:.1f}% "
                             f"(~{row['kernel_share'] * row['cycles_median']:.0f} cycles/packet)")
            if row.get("busy_share_min") is not None and row["busy_share_min"] < 0.999:
                notes.append(f"busy share {100 * row['busy_share_min']:.1f}%")
            oc = f"{100 * row['on_cpu_min']:.1f}%" if row.get("on_cpu_min") else "-"
            fw = f"{100 * row['forwarded_min']:.1f}%" if "forwarded_min" in row else "-"
            ratio = f"{row['vs_cfwd']:.2f}x" if "vs_cfwd" in row else "-"
            above = f"{row['above_cfwd']:+.0f}" if "above_cfwd" in row else "-"
            L.append(f"| {name} | **{row['cycles_median']:.0f}** | {row['cycles_min']:.0f} - "
                     f"{row['cycles_max']:.0f} | "
                     f"{', '.join(f'{v:.0f}' for v in row['cycles_all'])} | "
                     f"{row['raw_median']:.0f} | {oc} | {row['pps_median'] / 1e6:.2f} | "
                     f"{ratio} | {above} | {fw} | {'; '.join(notes)} |")
        L.append("")
    fn = (summary.get("est") or {}).get("fnat") or {}
    if fn.get("cycles_median"):
        c = fn["cycles_median"]
        L += [f"**FNAT established: {c:.0f} cycles/packet** (goal <= {GOAL_CYCLES}: "
              f"{'met' if c <= GOAL_CYCLES else 'NOT met'}); DPVS v1.9.2's report: 2.9 Mpps "
              f"per worker on a ~2.2 GHz core, ~{DPVS_CYCLES} cycles/packet "
              f"({c / DPVS_CYCLES:.2f}x of it). At this TSC, {GOAL_CYCLES} cycles/packet is "
              f"{meta['tsc_hz'] / GOAL_CYCLES / 1e6:.2f} Mpps.", ""]
        if fn.get("kernel_share") is not None:
            L += [f"FNAT's worker spends {100 * fn['kernel_share']:.1f}% of its time in the "
                  f"kernel (~{fn['kernel_share'] * c:.0f} cycles/packet): the readv() on each "
                  f"port's kni tap every 8th pass of the loop (nothing else it does is a "
                  f"system call here)."
                  + (f" Measured without the taps: {nk['cycles_median']:.0f} cycles/packet."
                     if (nk := (summary.get("est") or {}).get("fnat-nokni") or {}).get(
                         "cycles_median") else ""), ""]
        cf = (summary.get("est") or {}).get("cfwd") or {}
        if cf.get("cycles_median"):
            L += [f"The ports alone cost about cfwd's {cf['cycles_median']:.0f} cycles/packet "
                  f"(pcap PMD: an mbuf allocated and the frame copied in at each receive, "
                  f"freed at transmit): FNAT's own work is ~{c - cf['cycles_median']:.0f} "
                  f"cycles/packet above it.", ""]
    L += ["Method: raw = delta busy_cycles / delta rx_packets of rlb's worker over the "
          "window (`show dataplane`), and TSC Hz / packets per second for cfwd (its loop is "
          "never idle: share of empty polls "
          + ", ".join(sorted({f"{r['window'].get('empty_poll_share', 0):.4f}" for r in results
                              if r.get('peer') == 'cfwd' and 'error' not in r}))
          + "). Both count the cycles during which the worker thread was preempted; the "
          "headline figure is raw x the thread's share of the window on its CPU "
          "(/proc/PID/task/TID/schedstat). Noisy runs (other processes above "
          f"{opts.max_noise:g}% of a CPU, or the worker on its CPU less than "
          f"{100 * opts.min_on_cpu:g}% of the time) "
          "are left out of the medians when a row has clean ones.", ""]
    failed = [r for r in results if "error" in r]
    if failed:
        L += ["Failed runs:", ""] + [f"- {r['peer']} {r['kind']} run {r['run']}: {r['error']}"
                                     for r in failed] + [""]
    noisy = [r for r in results if r.get("noisy")]
    if noisy:
        L += ["Noisy runs:", ""] + [f"- {r['peer']} {r['kind']} run {r['run']}: "
                                    f"{', '.join(r['noisy'])}" for r in noisy] + [""]
    return "\n".join(L)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Cycles per packet of rlb's modes (established flow, new flows, existing "
                    "flows again) on in-memory pcap ports, side by side with cfwd. Needs root.")
    p.add_argument("--modes", default=",".join(MODES), help=f"default {','.join(MODES)}")
    p.add_argument("--kinds", default=",".join(KINDS),
                   help="est, new, again (again comes with new; default all)")
    p.add_argument("--runs", type=int, default=3, help="runs per row (default 3)")
    p.add_argument("--seconds", type=float, default=3, help="est window (default 3)")
    p.add_argument("--warmup", type=float, default=1, help="est warm-up (default 1)")
    p.add_argument("--again-seconds", type=float, default=0.5,
                   help="window of the `again` row and of cfwd's new-flows row (default 0.5)")
    p.add_argument("--new-flows", type=int, default=300000,
                   help="distinct SYNs of the new-flows pcap (default 300000; each takes a "
                        "4 KiB page of mbuf while a new-flows daemon runs: ~1.3 GB)")
    p.add_argument("--poll", type=float, default=0.02,
                   help="seconds between counter polls in the new-flows window (default 0.02)")
    p.add_argument("--lips", type=int, default=16, help="FNAT local addresses (default 16)")
    p.add_argument("--no-tcp-ts", dest="tcp_ts", action="store_false",
                   help="segments without TCP timestamps (the smallest frames)")
    p.add_argument("--no-kni", dest="kni", action="store_false",
                   help="rlb without its <port>.kni taps (default: with them, as deployed)")
    p.add_argument("--no-cfwd", dest="cfwd", action="store_false", help="skip cfwd")
    p.add_argument("--nokni", default="",
                   help="modes also measured without kni taps, established flow only (e.g. "
                        "fnat; default none: the worker's time in the kernel, reported for "
                        "each row, is what polling the taps costs)")
    p.add_argument("--max-noise", type=float, default=50,
                   help="other processes above this %% of a CPU (both CPUs together) make a "
                        "run noisy (default 50; 0: never)")
    p.add_argument("--min-on-cpu", type=float, default=0.95,
                   help="a worker thread on its CPU less than this share of the window makes "
                        "a run noisy (default 0.95)")
    p.add_argument("--retries", type=int, default=1,
                   help="extra rounds for rows with noisy or failed runs (default 1)")
    p.add_argument("--budget", type=float, default=270,
                   help="no extra run starts after this many seconds (default 270)")
    p.add_argument("--fwd-cpu", type=int, default=1, help="cfwd's worker CPU (default 1; "
                   "rlb puts its worker on the second CPU of its affinity)")
    p.add_argument("--main-cpu", type=int, default=0, help="cfwd's main lcore CPU (default 0)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1 run, 1 s windows, 200000 new flows")
    add_output_options(p)
    opts = p.parse_args(argv)
    if opts.quick:
        opts.runs, opts.seconds, opts.warmup, opts.again_seconds = 1, 1, 0.5, 0.3
        opts.new_flows = min(opts.new_flows, 200000)
        opts.retries = 0
    opts.modes = [m for m in opts.modes.split(",") if m]
    opts.nokni = [m for m in opts.nokni.split(",") if m]
    opts.kinds = [k for k in opts.kinds.split(",") if k]
    if "again" in opts.kinds and "new" not in opts.kinds:
        opts.kinds.insert(opts.kinds.index("again"), "new")
    bad = [m for m in opts.modes + opts.nokni if m not in MODES] + \
        [k for k in opts.kinds if k not in KINDS]
    if bad or not opts.modes:
        p.error(f"unknown: {', '.join(bad) or 'no mode'}")
    opts.kinds = [k for k in KINDS if k in opts.kinds]
    return opts


def peer_list(opts) -> list[str]:
    """cfwd, each mode, and the modes also measured without kni taps (est only)."""
    return (["cfwd"] if opts.cfwd else []) + list(opts.modes) + \
        [f"{m}-nokni" for m in opts.nokni if m in opts.modes and opts.kni]


def build_cfwd() -> None:
    r = subprocess.run(["make", "-s", "-C", CFWD_DIR], capture_output=True, text=True)
    if r.returncode or not os.path.exists(os.path.join(CFWD_DIR, "cfwd")):
        raise BenchError(f"building cfwd: {r.stdout}{r.stderr}")


def main(argv=None) -> int:
    opts = parse_args(argv)
    if os.geteuid() != 0:
        print("cycles.py: must run as root (namespaces, DPDK)", file=sys.stderr)
        return 2
    install_signal_unwind()
    t_start = time.monotonic()
    started = _dt.datetime.now()
    logdir = tempfile.mkdtemp(prefix="rlbb-cycles-")
    results: list[dict] = []
    meta: dict = {"bench": "cycles", "started": started.strftime("%Y-%m-%d %H:%M:%S"),
                  "kernel": platform.release(), "options": vars(opts)}
    try:
        with open("/proc/cpuinfo") as f:
            meta["cpu_model"] = next((ln.split(":", 1)[1].strip() for ln in f
                                      if ln.startswith("model name")), "?")
    except OSError:
        meta["cpu_model"] = "?"
    made = False
    try:
        if opts.cfwd:
            build_cfwd()
        make_namespaces(NAMESPACES)
        made = True
        pcaps = make_pcaps(opts, logdir)
        meta["rlb_configs"] = {f"{m}-{k}": rlb_config(opts, m, k, pcaps)[0] +
                               "".join(f"# later: {ln}\n" for ln in rlb_config(opts, m, k, pcaps)[1])
                               for m in opts.modes for k in ("est", "new") if (m, k) in pcaps}
        peers = peer_list(opts)
        plan = [k for k in opts.kinds if k != "again"]

        def rnd(idx: int, todo, budget: float | None = None) -> None:
            for kind in plan:
                for peer in peers:
                    if (peer, kind) not in todo:
                        continue
                    if budget is not None and time.monotonic() - t_start > budget:
                        log(f"budget of {budget:.0f} s spent: no more extra runs")
                        return
                    results.extend(one_run(opts, peer, kind, pcaps, logdir, idx))

        everything = {(p, k) for p in peers for k in plan
                      if not (p.endswith("-nokni") and k != "est")}
        for i in range(opts.runs):
            log(f"round {i + 1} of {opts.runs}")
            rnd(i, everything)
        for extra in range(opts.retries):
            redo = set()
            for p_, k in everything:
                rs = [r for r in results if r["peer"] == p_ and r["kind"] == k]
                good = [r for r in rs if "error" not in r and not r.get("noisy")]
                if len(good) < opts.runs:
                    redo.add((p_, k))
            if not redo or time.monotonic() - t_start > opts.budget:
                break
            log(f"extra round for {', '.join(f'{p_} {k}' for p_, k in sorted(redo))}")
            rnd(opts.runs + extra, redo, opts.budget)
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        meta["interrupted"] = True
    except BenchError as err:
        log(f"cycles.py: {err}")
        meta["error"] = str(err)
    finally:
        if made:
            remove_namespaces(NAMESPACES)
    if not results:
        shutil.rmtree(logdir, ignore_errors=True)
        return 130 if meta.get("interrupted") else 1
    tsc = tsc_estimate()
    meta["tsc_hz_source"] = ("rlb worker counters (busy + idle cycles over wall time), median "
                             f"of {len(TSC['rlb'])} windows") if TSC["rlb"] else "/proc/cpuinfo"
    meta["tsc_hz"] = tsc
    meta["cpuinfo_mhz"] = cpuinfo_mhz()
    meta["summary"] = {"kinds": summarize(results, opts, tsc)}
    meta["results"] = results
    meta["elapsed_s"] = round(time.monotonic() - t_start, 1)
    md = markdown(meta["summary"]["kinds"], results, opts, meta)
    md += f"\nTotal time {meta['elapsed_s']:.0f} s.\n"
    finish(opts, f"cycles-{started.strftime('%Y%m%d-%H%M%S')}", meta, md, logdir)
    return 130 if meta.get("interrupted") else 1 if meta.get("error") else 0


if __name__ == "__main__":
    sys.exit(main())
