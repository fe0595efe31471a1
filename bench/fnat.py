#!/usr/bin/env python3
"""FNAT load balancing side by side, one lab, one run: rlb vs nftables DNAT vs HAProxy vs
plain kernel routing, measured by new connections/s, keep-alive requests/s and iperf3.

Topology (namespaces this script creates and removes; the host namespace gets nothing):

    rlbb-client eth0 --veth-- wan0 [rlbb-lb] lan0 --veth-- br0 in rlbb-sw --+-- rlbb-rs1 eth0
    10.0.0.48/16                                                            +-- rlbb-rs2 eth0
                                                  192.168.100.2/24, 192.168.100.3/24

Each real server runs nginx on :80 (`return 200`, 1 worker) and an iperf3 server on
:5201. One peer at a time owns wan0/lan0 in rlbb-lb, VIP 10.0.0.100:

  rlb       `rlb daemon`, FNAT, the tutorial's fnat-two-arm script (ports dpdk1 = wan0,
            dpdk0 = lan0 over af_packet, 1 worker, busy-poll); LIP 192.168.100.200
  rlb-lipsK  the same with K local addresses (192.168.100.200 ...) on the HTTP service
  rlb-idle  with `idle-sleep` instead of busy-poll (200 us; rlb-idleN: N us); combines
            with -lipsK (rlb-idle-lips16)
  nft       kernel forwarding + nftables DNAT (numgen round robin; jhash of the source
            for :5201) and SNAT to 192.168.100.1: full NAT like FNAT
  haproxy   HAProxy `mode tcp`, nbthread 2, roundrobin (source for :5201), from 192.168.100.10
  kernel    no LB: the client talks to the real servers' own addresses, routed by the
            LB namespace (two wrk, one per server; iperf3 to rs1): the ceiling

  rlb-bond[-...]  rlb with its client side a bond (mode 0, round robin) of two af_packet
            slaves, wan0 and wan1; any rlb variant combines with it (rlb-bond-lips16)

With a bond peer in the run the client side becomes a switch for every peer: the client's
eth0, wan0 and wan1 are ports of a Linux bridge in rlbb-csw (a mode-0 bond sends from one
MAC over both links; the bridge takes frames from either, its FDB follows the last), so
that the single-port rlb rows of the same run pay the same extra hop:

    rlbb-client eth0 --veth-- br1 (rlbb-csw) --veth-- wan0 [rlbb-lb]
                                            --veth-- wan1 (second slave; unused by others)

Per peer and run: CPS (`wrk -H "Connection: close"`), keep-alive req/s (`wrk`), iperf3
Gbps; runs interleaved over the peers, medians reported. Load generators on --client-cpu;
rlb's worker lcore lands on CPU 1 (its EAL lcores follow its affinity).

Must run as root:  /work/main/.venv/bin/python bench/fnat.py [--quick]
Writes bench/results/fnat-<timestamp>.{json,md}.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (BenchError, Proc, RlbDaemon, Window, add_output_options,  # noqa: E402
                    finish, install_signal_unwind, iperf3, log, make_namespaces, ns_exists,
                    remove_namespaces, sh, veth, wait_for)
from fnat_report import TESTS, complete, is_noisy, markdown, summarize  # noqa: E402

from rlb.lab import topologies  # noqa: E402

# The lab's "simple FNAT two-arm" (rlb/lab/topologies.py): its addresses and its script
TOPO = topologies.get("fnat-two-arm")

NS_CLIENT, NS_LB, NS_SW = "rlbb-client", "rlbb-lb", "rlbb-sw"
NS_CSW = "rlbb-csw"         # the client-side switch, only with a bond peer
NS_RS = {"rs1": "rlbb-rs1", "rs2": "rlbb-rs2"}
NAMESPACES = (NS_CLIENT, NS_LB, NS_SW, *NS_RS.values())
ALL_NAMESPACES = NAMESPACES + (NS_CSW,)
CLIENT_IF, WAN_IF, LAN_IF, RS_IF, BRIDGE = "eth0", "wan0", "lan0", "eth0", "br0"
WAN2_IF, CLIENT_BRIDGE = "wan1", "br1"
CLIENT_MAC, WAN_MAC, LAN_MAC = "02:bb:10:00:00:30", "02:bb:10:00:00:01", "02:bb:20:00:00:01"
WAN2_MAC = "02:bb:10:00:00:02"
RS_MAC = {"rs1": "02:bb:20:00:00:02", "rs2": "02:bb:20:00:00:03"}
CLIENT_IP, VIP, WAN_GW = "10.0.0.48", TOPO.vip, topologies.WAN_GW
LAN, LAN_GW, HAPROXY_SRC = topologies.LAN, topologies.LAN_GW, "192.168.100.10"
RS_IP = {"rs1": topologies.RS1, "rs2": topologies.RS2}
# FNAT local addresses: 192.168.100.200 (the tutorial's), then .201 ... for -lipsN
LIP_BASE, LIP_FIRST = "192.168.100.", 200
RLB_VARIANT = re.compile(r"rlb(-bond)?(-idle(\d*))?(-lips(\d+))?")
HTTP_PORT, IPERF_PORT = 80, 5201
RLB_INSTANCE = "benchlb"
NFT_TABLE = "rlbb_dnat"
PEERS = ("nft", "haproxy", "kernel")      # and rlb[-idle[N]][-lipsK], see RLB_VARIANT
DEFAULT_PEERS = "rlb,rlb-lips16,rlb-idle-lips16,nft,haproxy,kernel"
# TCP counters of the client and servers worth a look when a peer falls short
NETSTAT_KEYS = ("Tcp:ActiveOpens", "Tcp:PassiveOpens", "Tcp:AttemptFails", "Tcp:EstabResets",
                "Tcp:RetransSegs", "Tcp:InErrs", "Tcp:OutRsts", "TcpExt:ListenOverflows",
                "TcpExt:ListenDrops", "TcpExt:TCPSynRetrans", "TcpExt:TCPTimeWaitOverflow",
                "TcpExt:PAWSEstab", "TcpExt:TCPAbortOnData", "TcpExt:TWRecycled",
                "TcpExt:TCPReqQFullDrop")

NGINX_CONF = """\
# bench/fnat.py: real server {node} (like rlb/lab/procs.py's NGINX_CONF, on port 80)
daemon off;
master_process on;
user root;
worker_processes 1;
worker_rlimit_nofile 65536;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections 16384;
}}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    keepalive_requests 1000000;
    server {{
        listen 0.0.0.0:{port} default_server;
        location / {{
            default_type text/plain;
            return 200 "Your ip:port : $remote_addr:$remote_port\\n";
        }}
    }}
}}
"""

HAPROXY_CONF = """\
# bench/fnat.py: HAProxy in tcp mode, two threads
global
    nbthread 2
    maxconn 8000
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend web
    bind {vip}:{http}
    default_backend web
backend web
    balance roundrobin
    source {src}
    server rs1 {rs1}:{http}
    server rs2 {rs2}:{http}
frontend iperf
    bind {vip}:{iperf}
    default_backend iperf
backend iperf
    balance source
    source {src}
    server rs1 {rs1}:{iperf}
    server rs2 {rs2}:{iperf}
"""


# ------------------------------------------------------------------ topology


def namespaces(client_switch: bool) -> tuple[str, ...]:
    return ALL_NAMESPACES if client_switch else NAMESPACES


def is_bond_peer(name: str) -> bool:
    m = RLB_VARIANT.fullmatch(name)
    return bool(m and m.group(1))


def build_topology(client_switch: bool = False) -> None:
    make_namespaces(namespaces(client_switch))
    if client_switch:
        # client eth0, wan0 and wan1 on one bridge: a mode-0 bond's two links reach the
        # client, whichever the bond sends on; every peer of the run goes through it
        sh("ip", "-n", NS_CSW, "link", "add", CLIENT_BRIDGE, "type", "bridge", "stp_state", "0")
        sh("ip", "-n", NS_CSW, "link", "set", CLIENT_BRIDGE, "up")
        for end, sw_if, sw_mac in (((NS_CLIENT, CLIENT_IF, CLIENT_MAC), "c-client",
                                    "02:bb:1f:00:00:30"),
                                   ((NS_LB, WAN_IF, WAN_MAC), "c-wan0", "02:bb:1f:00:00:01"),
                                   ((NS_LB, WAN2_IF, WAN2_MAC), "c-wan1", "02:bb:1f:00:00:02")):
            veth(end, (NS_CSW, sw_if, sw_mac))
            sh("ip", "-n", NS_CSW, "link", "set", sw_if, "master", CLIENT_BRIDGE)
        # wan1 carries no address; the kernel must not answer ARP for wan0's (weak host)
        sh("sysctl", "-qw", f"net.ipv4.conf.{WAN2_IF}.arp_ignore=1", ns=NS_LB)
    else:
        veth((NS_CLIENT, CLIENT_IF, CLIENT_MAC), (NS_LB, WAN_IF, WAN_MAC))
    sh("ip", "-n", NS_SW, "link", "add", BRIDGE, "type", "bridge", "stp_state", "0")
    sh("ip", "-n", NS_SW, "link", "set", BRIDGE, "up")
    members = [((NS_LB, LAN_IF, LAN_MAC), "p-lb", "02:bb:2f:00:00:01")]
    members += [((NS_RS[rs], RS_IF, RS_MAC[rs]), f"p-{rs}", f"02:bb:2f:00:00:0{i + 2}")
                for i, rs in enumerate(NS_RS)]
    for end, sw_if, sw_mac in members:
        veth(end, (NS_SW, sw_if, sw_mac))
        sh("ip", "-n", NS_SW, "link", "set", sw_if, "master", BRIDGE)
    sh("ip", "-n", NS_CLIENT, "addr", "add", f"{CLIENT_IP}/16", "dev", CLIENT_IF)
    # the kernel peer routes the client to the servers' own addresses through the LB
    sh("ip", "-n", NS_CLIENT, "route", "add", LAN, "via", WAN_GW)
    for rs, ns in NS_RS.items():
        sh("ip", "-n", ns, "addr", "add", f"{RS_IP[rs]}/24", "dev", RS_IF)
        # FNAT and full-NAT peers need no route (replies go to an on-link LAN address);
        # the kernel-routing peer does
        sh("ip", "-n", ns, "route", "add", "default", "via", LAN_GW)
    # many short connections: client ports reused at once (wrk closes last, so the
    # servers hold the TIME_WAITs); the same for HAProxy's connections to the servers
    for ns in (NS_CLIENT, NS_LB):
        sh("sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65535",
           "net.ipv4.tcp_tw_reuse=1", ns=ns)


def netstat(ns: str) -> dict:
    """TCP counters of a namespace (/proc/net/snmp and netstat: header line, value line)."""
    return parse_netstat(sh("cat", "/proc/net/snmp", "/proc/net/netstat", ns=ns).stdout)


def netstat_of_pid(pid: int) -> dict:
    """The same for the namespace a process lives in, without starting a command."""
    text = ""
    for name in ("snmp", "netstat"):
        with open(f"/proc/{pid}/net/{name}") as f:
            text += f.read()
    return parse_netstat(text, keys=("Tcp:ActiveOpens", "TcpExt:TCPSynRetrans", "Tcp:OutRsts"))


def parse_netstat(raw: str, keys=NETSTAT_KEYS) -> dict:
    text = raw.splitlines()
    out = {}
    for head, vals in zip(text[::2], text[1::2]):
        proto, names = head.split(":", 1)
        _, values = vals.split(":", 1)
        for k, v in zip(names.split(), values.split()):
            key = f"{proto}:{k}"
            if key in keys:
                out[key] = int(v)
    return out


def flush_timewait() -> dict:
    """Forget every TIME_WAIT socket in the lab (`ss -K`), so that no run meets the
    tuples of the one before: a real server keeps TIME_WAIT 60 s, and an LB that reuses
    the tuple of one with a sequence number below the old connection's is refused."""
    out = {}
    for ns in (NS_CLIENT, NS_LB, *NS_RS.values()):
        n = sh("ss", "-Htan", "state", "time-wait", ns=ns).stdout.count("\n")
        if n:
            sh("ss", "-K", "-tan", "state", "time-wait", ns=ns)
            out[ns] = n
    return out


def lb_interfaces() -> list[str]:
    return [link["ifname"] for link in json.loads(sh("ip", "-n", NS_LB, "-j", "link").stdout)]


def lb_nft_tables() -> str:
    return sh("nft", "list", "tables", ns=NS_LB, check=False).stdout.strip()


# ------------------------------------------------------------------ servers


class Servers:
    """nginx and iperf3 on each real server, in the foreground under our PIDs."""

    def __init__(self, logdir: str):
        self.logdir = logdir
        self.nginx: dict[str, Proc] = {}
        self.iperf: dict[str, Proc] = {}

    def start(self) -> None:
        for rs, ns in NS_RS.items():
            d = os.path.join(self.logdir, rs)
            os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
            conf = os.path.join(d, "nginx.conf")
            with open(conf, "w") as f:
                f.write(NGINX_CONF.format(node=rs, dir=d, port=HTTP_PORT))
            self.nginx[rs] = Proc(f"nginx-{rs}", ["ip", "netns", "exec", ns, "nginx", "-c", conf,
                                                  "-p", d + "/", "-e", f"{d}/error.log"],
                                  self.logdir)
            self.start_iperf(rs)
        for rs, ns in NS_RS.items():
            for port, proc in ((HTTP_PORT, self.nginx[rs]), (IPERF_PORT, self.iperf[rs])):
                wait_for(lambda: bool(sh("ss", "-Hltn", f"sport = :{port}", ns=ns).stdout.strip()),
                         10, f"{proc.name} listening on :{port}", proc)

    def start_iperf(self, rs: str) -> None:
        self.iperf[rs] = Proc(f"iperf3s-{rs}-{int(time.time())}",
                              ["ip", "netns", "exec", NS_RS[rs], "iperf3", "-s", "-p",
                               str(IPERF_PORT), "--idle-timeout", "30"], self.logdir)

    def restart_iperf(self) -> None:
        """After a failed test an iperf3 server may stay busy with the dead one."""
        for rs in NS_RS:
            self.iperf[rs].stop()
            self.start_iperf(rs)
        for rs, ns in NS_RS.items():
            wait_for(lambda: bool(sh("ss", "-Hltn", f"sport = :{IPERF_PORT}", ns=ns).stdout.strip()),
                     10, "iperf3 server", self.iperf[rs])

    def worker_pids(self) -> dict[str, int | None]:
        """nginx's worker processes (the master only waits) and the iperf3 servers."""
        out: dict[str, int | None] = {}
        for rs, p in self.nginx.items():
            try:
                with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
                    kids = f.read().split()
                out[f"nginx-{rs}"] = int(kids[0]) if kids else None
            except OSError:
                out[f"nginx-{rs}"] = None
        for rs, p in self.iperf.items():
            out[f"iperf3-{rs}"] = p.pid
        return out

    def stop(self) -> None:
        for p in list(self.nginx.values()) + list(self.iperf.values()):
            p.stop(signal.SIGTERM, timeout=10)


# ------------------------------------------------------------------ peers


class Peer:
    """One LB at a time in rlbb-lb, on wan0/lan0."""
    name = "?"
    proc: Proc | None = None

    def __init__(self, opts, logdir: str, name: str):
        self.opts, self.logdir, self.name = opts, logdir, name

    @property
    def http_targets(self) -> list[str]:
        return [VIP]

    @property
    def iperf_target(self) -> str:
        return VIP

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> None: ...

    def stop(self) -> dict:
        return {}

    def counters(self) -> dict | None:
        """Cheap counters taken around each test."""
        return None

    def report(self) -> dict:
        """Text and counters after the peer's tests, before it stops."""
        return {}


def kernel_lb(addrs: dict[str, list[str]], forward: bool) -> None:
    """Give the LB namespace's kernel the interfaces: only once rlb is gone from them."""
    left = [i for i in lb_interfaces() if i not in ("lo", WAN_IF, WAN2_IF, LAN_IF)]
    if left or f"rlb_{RLB_INSTANCE}" in lb_nft_tables():
        raise BenchError(f"rlb left something in {NS_LB}: interfaces {left}, nft tables "
                         f"{lb_nft_tables()!r}")
    for dev, lst in addrs.items():
        for a in lst:
            sh("ip", "-n", NS_LB, "addr", "add", a, "dev", dev)
    sh("sysctl", "-qw", f"net.ipv4.ip_forward={1 if forward else 0}", ns=NS_LB)


def kernel_lb_clear() -> None:
    sh("sysctl", "-qw", "net.ipv4.ip_forward=0", ns=NS_LB, check=False)
    sh("nft", "delete", "table", "ip", NFT_TABLE, ns=NS_LB, check=False)
    for dev in (WAN_IF, LAN_IF):
        sh("ip", "-n", NS_LB, "addr", "flush", "dev", dev, check=False)
        sh("ip", "-n", NS_LB, "neigh", "flush", "dev", dev, check=False)


class Rlb(Peer):
    def __init__(self, opts, logdir, name):
        super().__init__(opts, logdir, name)
        self.daemon = RlbDaemon(opts.python, RLB_INSTANCE, NS_LB, logdir, name)
        m = RLB_VARIANT.fullmatch(name)
        self.bond = bool(m.group(1))
        self.idle_us = (int(m.group(3)) if m.group(3) else 200) if m.group(2) else None
        self.lips = [f"{LIP_BASE}{LIP_FIRST + i}" for i in range(int(m.group(5) or 1))]
        self.wan = "bond0" if self.bond else "dpdk1"

    @property
    def pid(self):
        return self.daemon.pid

    def config(self) -> str:
        lines = ["dataplane", " workers 1",
                 f" port dpdk0 net_af_packet0,iface={LAN_IF}",
                 f" port dpdk1 net_af_packet1,iface={WAN_IF}"]
        if self.bond:
            # DPDK's bonding PMD, round robin over wan0 and wan1; the bond has wan0's MAC
            lines += [f" port dpdk2 net_af_packet2,iface={WAN2_IF}",
                      " bond bond0 mode 0 slaves dpdk1 dpdk2 primary dpdk1"]
        lines += [" busy-poll" if self.idle_us is None else f" idle-sleep {self.idle_us}", "!"]
        servers = [RS_IP[rs] for rs in NS_RS]
        lines += TOPO.script(vport=HTTP_PORT, servers=servers, rs_port=HTTP_PORT,
                             laddrs=self.lips, wan=self.wan)
        # iperf3's control and data connections must meet the same server: source hash
        lines += TOPO.script(net=False, vport=IPERF_PORT, sched="sh", servers=servers,
                             rs_port=IPERF_PORT, laddrs=self.lips[:1], wan=self.wan)
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        if lb_nft_tables() or any(sh("ip", "-n", NS_LB, "-j", "addr", "show", "dev", d).stdout
                                  .count('"local"') for d in (WAN_IF, LAN_IF)):
            raise BenchError(f"{NS_LB} is not clean before rlb: {lb_nft_tables()!r}")
        self.daemon.start(self.config(), ready_cmd="ipvsadm -ln")
        self.proc = self.daemon.proc

    def counters(self) -> dict | None:
        try:
            link = self.daemon.call("dpip link show -s")
            dp = self.daemon.call("show dataplane")
        except (OSError, ValueError, BenchError) as err:
            return {"error": str(err)}
        out = {"ports": {p["name"]: {k: v for k, v in p.get("stats", {}).items()
                                     if isinstance(v, int)} for p in link.get("ports", [])},
               # a bond's slaves, "bond0/dpdk1" ...: does round robin use both links?
               "slaves": {f"{p['name']}/{sl['name']}":
                          {k: v for k, v in (sl.get("stats") or {}).items() if isinstance(v, int)}
                          for p in link.get("ports", [])
                          for sl in (p.get("bond") or {}).get("slaves", [])},
               "reasons": link.get("reasons", {}),
               "polls": sum(w.get("polls", 0) for w in dp.get("workers", [])),
               "idle_sleeps": sum(w.get("idle_sleeps", 0) for w in dp.get("workers", []))}
        c = dp.get("connections") or {}
        out["conns"] = {k: c.get(k) for k in ("conns", "created", "expired", "capacity")}
        return out

    def report(self) -> dict:
        return {"text": self.daemon.text("dpip link show -s", "show dataplane",
                                         "ipvsadm -ln --stats", "ipvsadm -G")}

    def stop(self) -> dict:
        out = self.daemon.stop()
        # its isolation table and kni taps must be gone before a kernel peer runs
        out["lb_interfaces_after"] = lb_interfaces()
        out["lb_nft_tables_after"] = lb_nft_tables()
        return out


class Nft(Peer):
    def start(self) -> None:
        kernel_lb({WAN_IF: [f"{VIP}/16"], LAN_IF: [f"{LAN_GW}/24"]}, forward=True)
        rs = f"{{ 0 : {RS_IP['rs1']}, 1 : {RS_IP['rs2']} }}"
        sh("nft", "-f", "-", ns=NS_LB, input=(
            f"table ip {NFT_TABLE} {{\n"
            "  chain pre { type nat hook prerouting priority dstnat; policy accept;\n"
            f"    ip daddr {VIP} tcp dport {HTTP_PORT} dnat to numgen inc mod 2 map {rs}\n"
            # both iperf3 connections must reach the same server: hash of the source
            f"    ip daddr {VIP} tcp dport {IPERF_PORT} dnat to jhash ip saddr mod 2 map {rs}\n"
            "  }\n"
            "  chain post { type nat hook postrouting priority srcnat; policy accept;\n"
            f"    oifname \"{LAN_IF}\" ip daddr {LAN} snat to {LAN_GW}\n"
            "  }\n}\n"))

    def counters(self) -> dict | None:
        r = sh("cat", "/proc/sys/net/netfilter/nf_conntrack_count", ns=NS_LB, check=False)
        return {"conntrack_count": int(r.stdout) if r.returncode == 0 else None}

    def report(self) -> dict:
        r = sh("sysctl", "net.netfilter.nf_conntrack_count", "net.netfilter.nf_conntrack_max",
               ns=NS_LB, check=False)
        return {"text": r.stdout.strip()}

    def stop(self) -> dict:
        kernel_lb_clear()
        return {}


class Haproxy(Peer):
    def start(self) -> None:
        kernel_lb({WAN_IF: [f"{VIP}/16"], LAN_IF: [f"{LAN_GW}/24", f"{HAPROXY_SRC}/24"]},
                  forward=False)
        conf = os.path.join(self.logdir, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write(HAPROXY_CONF.format(vip=VIP, http=HTTP_PORT, iperf=IPERF_PORT,
                                        src=HAPROXY_SRC, rs1=RS_IP["rs1"], rs2=RS_IP["rs2"]))
        sh("haproxy", "-c", "-q", "-f", conf)
        # -db: foreground, no daemon, so the PID is HAProxy's
        self.proc = Proc(self.name, ["ip", "netns", "exec", NS_LB, "haproxy", "-db", "-f", conf],
                         self.logdir)
        wait_for(lambda: bool(sh("ss", "-Hltn", f"sport = :{IPERF_PORT}", ns=NS_LB).stdout.strip()),
                 15, "haproxy listening", self.proc)

    def stop(self) -> dict:
        rc = self.proc.stop(signal.SIGTERM) if self.proc else None
        kernel_lb_clear()
        return {"exit": rc, "log_tail": self.proc.stderr().strip().splitlines()[-5:]
                if self.proc else []}


class Kernel(Peer):
    @property
    def http_targets(self) -> list[str]:
        return [RS_IP["rs1"], RS_IP["rs2"]]

    @property
    def iperf_target(self) -> str:
        return RS_IP["rs1"]

    def start(self) -> None:
        kernel_lb({WAN_IF: [f"{WAN_GW}/16"], LAN_IF: [f"{LAN_GW}/24"]}, forward=True)

    def stop(self) -> dict:
        kernel_lb_clear()
        return {}


def make_peer(name: str, opts, logdir: str) -> Peer:
    if name.startswith("rlb"):
        return Rlb(opts, logdir, name)
    return {"nft": Nft, "haproxy": Haproxy, "kernel": Kernel}[name](opts, logdir, name)


# ------------------------------------------------------------------ load generators


def parse_wrk(out: str) -> dict:
    r: dict = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", out)
    if m:
        r["requests"] = int(m.group(1))
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"Latency\s+([\d.]+)(us|ms|s)\b", out)
    if m:
        r["latency_ms"] = float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"),
                                  map(int, m.groups()))) if m else {}
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    return r


def client_cmd(opts, *cmd: str) -> list[str]:
    return ["ip", "netns", "exec", NS_CLIENT, "taskset", "-c", str(opts.client_cpu), *cmd]


def run_wrk(opts, logdir: str, targets: list[str], close: bool, tag: str) -> dict:
    """wrk -t1 -c32 (split over the targets) for --seconds; summed over the targets."""
    conns = max(1, opts.connections // len(targets))
    procs = []
    for i, t in enumerate(targets):
        cmd = ["wrk", "-t1", f"-c{conns}", f"-d{opts.seconds:g}s", "--timeout", "2s"]
        if close:
            cmd += ["-H", "Connection: close"]
        procs.append(Proc(f"wrk-{tag}-{i}", client_cmd(opts, *cmd, f"http://{t}:{HTTP_PORT}/"),
                          logdir))
    outs = []
    timeline = []
    try:
        # new connections per second at the client (its namespace's counters, read through
        # the first wrk's /proc entry: no command started during the test)
        prev, t_prev = None, time.monotonic()
        deadline = time.monotonic() + opts.seconds + 30
        client_ns = os.stat(f"/run/netns/{NS_CLIENT}").st_ino
        while time.monotonic() < deadline:    # `ip netns exec` has not switched yet
            try:
                if os.stat(f"/proc/{procs[0].pid}/ns/net").st_ino == client_ns:
                    break
            except OSError:
                break
            time.sleep(0.01)
        while any(p.alive() for p in procs) and time.monotonic() < deadline:
            try:
                cur = netstat_of_pid(procs[0].pid)
            except OSError:
                break
            now = time.monotonic()
            if prev is not None:
                timeline.append({k.split(":")[1]: round((cur[k] - prev[k]) / (now - t_prev))
                                 for k in cur})
            prev, t_prev = cur, now
            time.sleep(1.0)
        for p in procs:
            p.p.wait(max(1, deadline - time.monotonic()))
    finally:
        for p in procs:
            p.stop(signal.SIGTERM, timeout=5)
            outs.append(p.stdout() + p.stderr())
    parsed = [parse_wrk(o) for o in outs]
    if any("rps" not in p for p in parsed):
        raise BenchError(f"wrk failed: {' | '.join(o.strip()[-300:] for o in outs)}")
    errs = {k: sum(p["socket_errors"].get(k, 0) for p in parsed)
            for k in ("connect", "read", "write", "timeout")}
    return {"value": round(sum(p["rps"] for p in parsed), 1),
            "requests": sum(p["requests"] for p in parsed),
            "latency_ms": round(statistics.mean(p.get("latency_ms", 0) for p in parsed), 3),
            "socket_errors": errs, "non2xx": sum(p["non2xx"] for p in parsed),
            "errors": sum(errs.values()) + sum(p["non2xx"] for p in parsed),
            "targets": targets, "connections_each": conns, "timeline": timeline,
            "raw": outs}


def run_iperf(opts, logdir: str, target: str, tag: str) -> dict:
    res = iperf3(client_cmd(opts, "iperf3", "-c", target, "-p", str(IPERF_PORT)), logdir, tag,
                 opts.seconds)
    return {**res, "target": target}


# ------------------------------------------------------------------ one run of one peer


def diff(a, b):
    """b - a over nested dicts of numbers (what changed during a test)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: diff(a.get(k), v) for k, v in b.items() if k in a}
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return b - a
    return b


def run_test(opts, peer: Peer, servers: Servers, test: str, logdir: str, tag: str) -> dict:
    tcp_ns = [NS_CLIENT, *NS_RS.values()]
    before = {ns: netstat(ns) for ns in tcp_ns}
    c0 = peer.counters()
    win = Window(NAMESPACES, {"lb": peer.pid, **servers.worker_pids()})
    try:
        if test == "iperf":
            res = run_iperf(opts, logdir, peer.iperf_target, tag)
        else:
            res = run_wrk(opts, logdir, peer.http_targets, close=(test == "cps"), tag=tag)
    finally:
        w = win.close()
    res.update(w)
    c1 = peer.counters()
    if c0 is not None and c1 is not None and "error" not in c0 and "error" not in c1:
        res["lb_counters"] = diff(c0, c1)
        res["lb_counters_after"] = c1
    res["tcp"] = {ns: {k: v for k, v in diff(before[ns], netstat(ns)).items() if v}
                  for ns in tcp_ns}
    return res


def check_service(peer: Peer) -> None:
    """A request must go through before we measure."""
    for t in peer.http_targets:
        r = sh("curl", "-s", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}",
               f"http://{t}:{HTTP_PORT}/", ns=NS_CLIENT, check=False, timeout=10)
        if r.stdout.strip() != "200":
            raise BenchError(f"{peer.name}: curl http://{t}/ gave {r.stdout.strip() or 'nothing'}"
                             f" {r.stderr.strip()}")


def run_peer(opts, name: str, idx: int, servers: Servers, logdir: str) -> dict:
    peer = make_peer(name, opts, logdir)
    res: dict = {"peer": name, "run": idx, "tests": {}, "timewait_flushed": flush_timewait()}
    try:
        t0 = time.monotonic()
        peer.start()
        res["startup_s"] = round(time.monotonic() - t0, 2)
        check_service(peer)
        for test in TESTS:
            if test not in opts.tests:
                continue
            time.sleep(opts.pause)
            try:
                r = run_test(opts, peer, servers, test, logdir, f"{name}-{idx}-{test}")
            except (BenchError, OSError, subprocess.SubprocessError, ValueError) as err:
                log(f"{name} run {idx} {test} failed: {err}")
                r = {"error": f"{type(err).__name__}: {err}"}
                if test == "iperf":
                    servers.restart_iperf()
            res["tests"][test] = r
            if "value" in r:
                log(f"{name} run {idx}: {test} {r['value']:g}"
                    + (f" ({r['errors']} errors)" if r.get("errors") else "")
                    + f", other processes {r['other_load']['total_pct']:.0f}% of a CPU")
        res["report"] = peer.report()
    finally:
        res["stop"] = peer.stop()
    return res


# ------------------------------------------------------------------ main


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="FNAT load balancing side by side in one lab: rlb vs nftables DNAT vs "
                    "HAProxy vs kernel routing (CPS, keep-alive req/s, iperf3). Needs root.",
        epilog="Peers: rlb (busy-poll), rlb-idle[N] (idle-sleep N us, default 200), "
               "rlb-lipsK, rlb-bond[-...] (client side a mode-0 bond of wan0+wan1 behind a "
               "bridge; with it every peer goes through that bridge), nft, haproxy, kernel. "
               "Results: bench/results/fnat-<ts>.{json,md}.")
    p.add_argument("--seconds", type=float, default=10, help="per test (default 10)")
    p.add_argument("--runs", type=int, default=3, help="runs per peer (default 3)")
    p.add_argument("--quick", action="store_true", help="smoke run: 3 runs of 2 s")
    p.add_argument("--peers", default=DEFAULT_PEERS, help=f"in order (default {DEFAULT_PEERS})")
    p.add_argument("--tests", default="cps,ka,iperf", help="of cps,ka,iperf (default all)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    p.add_argument("--pause", type=float, default=1.0,
                   help="seconds between tests (default 1)")
    p.add_argument("--client-cpu", type=int, default=0,
                   help="CPU of wrk and the iperf3 client (default 0)")
    p.add_argument("--max-noise", type=float, default=15,
                   help="a run during which other processes used more than this %% of a CPU "
                        "is noisy: done again (default 15; 0 disables)")
    p.add_argument("--retries", type=int, default=2,
                   help="extra rounds for peers with noisy runs (default 2)")
    p.add_argument("--budget", type=float, default=0,
                   help="no extra run starts after this many seconds (default 1.5x planned)")
    add_output_options(p)
    opts = p.parse_args(argv)
    if opts.quick:
        opts.seconds, opts.runs = 2, 3
    if opts.max_noise <= 0:
        opts.retries = 0
    opts.peers = [x.strip() for x in opts.peers.split(",") if x.strip()]
    bad = [x for x in opts.peers if x not in PEERS and not RLB_VARIANT.fullmatch(x)]
    if bad:
        p.error(f"unknown peer(s): {', '.join(bad)}")
    for x in opts.peers:
        m = RLB_VARIANT.fullmatch(x)
        if m and m.group(5) and not 1 <= int(m.group(5)) <= 16:
            p.error(f"{x}: 1..16 local addresses (MAX_LADDRS_PER_SVC)")
    opts.tests = [t for t in TESTS if t in opts.tests.split(",")]
    if not opts.tests:
        p.error("no test")
    if not 0 < opts.seconds <= 120 or not 1 <= opts.runs <= 20:
        p.error("--seconds must be in (0, 120], --runs in 1..20")
    if not 0 <= opts.client_cpu < (os.cpu_count() or 1):
        p.error("--client-cpu: no such CPU")
    if not opts.budget:
        per_peer = len(opts.tests) * (opts.seconds + opts.pause + 3) + 10
        opts.budget = 1.5 * opts.runs * len(opts.peers) * per_peer
    return opts


def main(argv=None) -> int:
    opts = parse_args(argv)
    if os.geteuid() != 0:
        print("fnat.py: must run as root (network namespaces, DPDK)", file=sys.stderr)
        return 2
    need = ["ip", "nft", "ethtool", "taskset", "wrk", "iperf3", "nginx", "curl", "ss"]
    if "haproxy" in opts.peers:
        need.append("haproxy")
    missing = [t for t in need if not shutil.which(t)]
    if missing:
        print(f"fnat.py: not found: {', '.join(missing)} (apt-get install "
              f"{' '.join(missing)})", file=sys.stderr)
        return 2
    install_signal_unwind()
    started = _dt.datetime.now()
    logdir = tempfile.mkdtemp(prefix="rlbb-fnat-")
    results: list[dict] = []
    meta = {"started": started.isoformat(timespec="seconds"), "results": results,
            "options": dict(vars(opts)), "kernel": os.uname().release, "logs": logdir,
            "lb_configs": {}}
    rc = 0
    servers = Servers(logdir)
    try:
        client_switch = any(is_bond_peer(n) for n in opts.peers)
        meta["client_switch"] = client_switch
        log(f"topology: {' '.join(namespaces(client_switch))}; logs in {logdir}")
        build_topology(client_switch)
        servers.start()
        t0 = time.monotonic()

        def one(name: str, idx: int) -> None:
            nonlocal rc
            log(f"{name} run {idx} ...")
            try:
                r = run_peer(opts, name, idx, servers, logdir)
            except (BenchError, OSError, subprocess.SubprocessError, ValueError, KeyError) as err:
                log(f"{name} run {idx} failed: {err}")
                r = {"peer": name, "run": idx, "tests": {}, "error": f"{type(err).__name__}: {err}"}
                rc = 1
            results.append(r)

        for i in range(opts.runs):
            for name in opts.peers:
                one(name, i + 1)
        for extra in range(opts.retries):
            redo = [n for n in opts.peers
                    if sum(1 for r in results if r["peer"] == n and complete(r, opts)
                           and not is_noisy(r, opts)) < opts.runs]
            if not redo or time.monotonic() - t0 > opts.budget:
                break
            for name in redo:
                if time.monotonic() - t0 > opts.budget:
                    break
                log(f"{name}: fewer than {opts.runs} quiet, complete runs: one more")
                one(name, opts.runs + extra + 1)
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        rc = 130
    except BenchError as err:
        log(f"error: {err}")
        rc = 1
    finally:
        servers.stop()
        if ns_exists(NS_LB):
            kernel_lb_clear()
        remove_namespaces(ALL_NAMESPACES)
    for name in opts.peers:
        if name.startswith("rlb"):
            meta["lb_configs"][name] = Rlb(opts, logdir, name).config()
    if not results:
        return rc or 1
    summary = summarize(results, opts)
    meta["summary"] = summary
    md = markdown(summary, opts, meta)
    finish(opts, f"fnat-{started.strftime('%Y%m%d-%H%M%S')}", meta, md, logdir)
    return rc


if __name__ == "__main__":
    sys.exit(main())
