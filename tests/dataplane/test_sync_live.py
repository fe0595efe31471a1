"""Connection sync through the real core, the test playing the peer LB: a UDP socket on an
address of the test namespace's lo (`sync peer 10.99.0.2`) that hears what the daemon
says and says what a peer would. DR (dpdk0, the tutorial's dr-one-arm) and NAT (dpdk1,
its nat-one-arm): the daemon's own established connections reach the peer as events;
the peer's connections are held and carry a mid-flow segment to their real server (a
segment of a flow nobody told it of is dropped: the control); an end is applied; a
bulk request is answered with the table; malformed datagrams and strangers are dropped
and change nothing."""
import os
import signal
import socket
import struct
import time
from ipaddress import IPv4Address

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from rlb.lab.topologies import get
from support.netns import Daemon, Session, Wire, del_ns, in_netns, lines, make_ns, sh, wait

NS = "rlbt-sync"
PEER, PORT = "10.99.0.2", 8848
ME = "10.99.0.1"                          # the daemon's socket, as the peer reaches it
HEADER = struct.Struct("<4sBBHIdI")
RECORD = struct.Struct("<IIIIHHHHIIBBBBBBH")
EVENTS, BULK, HELLO, ASK = 1, 2, 3, 4
STATE, FREE = 1, 2
ES, SYN_RECV = 1, 3                      # LVS's states' numbers (rlb.core.consts)
DR_VIP, DR_CLIENT = "192.168.100.254", "192.168.100.46"
DR_RS = {"192.168.100.2": "02:00:00:00:01:02", "192.168.100.3": "02:00:00:00:01:03"}
NAT_VIP, NAT_CLIENT = "192.168.0.89", "192.168.0.88"
NAT_RS = {"10.140.18.33": "02:00:00:00:03:33", "10.140.18.34": "02:00:00:00:03:34"}


def ip(a):
    return int(IPv4Address(a))


def record(caddr, cport, vaddr, vport, daddr, dport, state=ES, event=STATE, laddr=None,
           lport=None):
    return RECORD.pack(ip(caddr), ip(vaddr), ip(laddr or caddr), ip(daddr), cport, vport,
                       lport or cport, dport, 0, 0, 6, state, 0, event, 0, 0, 0)


def mac_of(dev):
    return sh("cat", f"/sys/class/net/{dev}/address", ns=NS).stdout.strip()


class Peer:
    """The peer LB's socket, in the test namespace."""

    def __init__(self):
        with in_netns(NS):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((PEER, PORT))
        self.sock.settimeout(0.2)
        self.seq = 0

    def send(self, kind, payload=b"", magic=b"RLBS", n=None, to=ME):
        self.seq += 1
        n = len(payload) // RECORD.size if n is None else n
        self.sock.sendto(HEADER.pack(magic, 1, kind, n, self.seq, time.time(), 0) + payload,
                         (to, PORT))

    def records(self, kinds=(EVENTS,), seconds=2.0):
        """The records of the datagrams of these kinds heard within `seconds`."""
        out, end = [], time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            _, _, kind, n, *_ = HEADER.unpack_from(data)
            if kind in kinds:
                out += [RECORD.unpack_from(data, HEADER.size + i * RECORD.size)
                        for i in range(n)]
        return out

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def sync(tmp_path_factory):
    make_ns(NS, [("dp0", "tp0"), ("dp1", "tp1")])
    for a in (PEER, ME):
        sh("ip", "addr", "add", f"{a}/32", "dev", "lo", ns=NS)
    sh("ip", "link", "set", "lo", "up", ns=NS)
    neigh = "".join(f"dpip neigh add {a} lladdr {m} dev dpdk0\n" for a, m in DR_RS.items())
    neigh += "".join(f"dpip neigh add {a} lladdr {m} dev dpdk1\n" for a, m in NAT_RS.items())
    conf = ("dataplane\n port dpdk0 net_af_packet0,iface=dp0\n"
            " port dpdk1 net_af_packet1,iface=dp1\n!\n"
            + lines(get("dr-one-arm").lb_script, get("nat-one-arm").script(dev="dpdk1"))
            + neigh + f"sync peer {PEER}\n")
    d = Daemon(NS, "rlbt-sync", conf, tmp_path_factory.mktemp("sync")).start()
    peer = Peer()
    d.peer, d.lan, d.nat = peer, Wire(NS, "tp0"), Wire(NS, "tp1")
    d.lb0, d.t0, d.lb1, d.t1 = mac_of("dp0"), mac_of("tp0"), mac_of("dp1"), mac_of("tp1")
    try:
        def heard():                    # (the daemon binds its port once it runs)
            peer.send(HELLO)
            return d.ok("show sync")["data"]["state"] == "up"
        assert wait(heard), d.ok("show sync")["text"]
        yield d
    finally:
        for x in (peer, d.lan, d.nat):
            x.close()
        rc = d.stop()
        del_ns(NS)
        assert rc == 0, d.log.read_text()


def dr_segment(d, sport, flags):
    return Ether(src=d.t0, dst=d.lb0) / IP(src=DR_CLIENT, dst=DR_VIP) / \
        TCP(sport=sport, dport=80, flags=flags, seq=1000, ack=1)


def nat_segment(d, sport, flags):
    return Ether(src=d.t1, dst=d.lb1) / IP(src=NAT_CLIENT, dst=NAT_VIP) / \
        TCP(sport=sport, dport=80, flags=flags, seq=1000, ack=1)


def conns(d, sport):
    return [c for c in d.ok("ipvsadm -lnc")["data"]["connections"] if c["cport"] == sport]


def misses(d):
    return d.stats()["reasons"].get("conn_miss", 0)


def test_an_established_connection_of_ours_reaches_the_peer(sync):
    d = sync
    d.lan.send(dr_segment(d, 43000, "S"))
    d.lan.send(dr_segment(d, 43000, "A"))
    got = [r for r in d.peer.records() if r[4] == 43000]
    assert got, "no event for the established connection"
    r = got[0]
    assert (IPv4Address(r[0]), IPv4Address(r[1]), r[5], r[10], r[13]) == \
        (IPv4Address(DR_CLIENT), IPv4Address(DR_VIP), 80, 6, STATE)
    assert r[11] == ES and str(IPv4Address(r[3])) in DR_RS
    text = d.ok("show sync")["text"]
    assert f"Peer {PEER} port {PORT}: up" in text and "sent" in text, text


@pytest.mark.parametrize("mode", ["dr", "nat"])
def test_a_peer_s_connection_carries_a_mid_flow_segment_here(sync, mode):
    d = sync
    if mode == "dr":
        rs, sport, wire, seg = "192.168.100.3", 43100, d.lan, dr_segment
        rec = record(DR_CLIENT, sport, DR_VIP, 80, rs, 80)
        mac = DR_RS[rs]
    else:
        rs, sport, wire, seg = "10.140.18.34", 43200, d.nat, nat_segment
        rec = record(NAT_CLIENT, sport, NAT_VIP, 80, rs, 80)
        mac = NAT_RS[rs]
    applied = d.ok("show sync")["data"]["applied"]
    d.peer.send(EVENTS, rec)
    assert wait(lambda: conns(d, sport)), d.ok("show sync")["data"]
    assert d.ok("show sync")["data"]["applied"] == applied + 1
    row = conns(d, sport)[0]
    assert row["destination"].startswith(f"{rs}:") and row["state"] == "ESTABLISHED", row
    wire.drain()
    wire.send(seg(d, sport, "PA"))
    f = wire.recv(lambda f: Ether(f).dst == mac and TCP in Ether(f) and
                  Ether(f)[TCP].sport == sport)
    assert f is not None, f"the {mode} segment did not reach {rs}"
    if mode == "nat":
        assert Ether(f)[IP].dst == rs                  # NAT: the destination rewritten
    # the control: the same segment of a flow nobody told it of is dropped
    before = misses(d)
    wire.send(seg(d, sport + 1, "PA"))
    assert wire.recv(lambda f: TCP in Ether(f) and Ether(f)[TCP].sport == sport + 1 and
                     Ether(f).src == (d.lb0 if mode == "dr" else d.lb1), timeout=0.5) is None
    assert misses(d) == before + 1
    # its end, from the peer: gone here too
    d.peer.send(EVENTS, record(*((DR_CLIENT, sport, DR_VIP, 80, rs, 80) if mode == "dr" else
                                 (NAT_CLIENT, sport, NAT_VIP, 80, rs, 80)), event=FREE))
    assert wait(lambda: not conns(d, sport))


def test_a_bulk_request_is_answered_with_the_table(sync):
    d = sync
    d.peer.send(EVENTS, record(DR_CLIENT, 43300, DR_VIP, 80, "192.168.100.2", 80))
    assert wait(lambda: conns(d, 43300))
    d.peer.send(ASK)
    got = d.peer.records(kinds=(BULK,), seconds=2.0)
    ports = {r[4] for r in got}
    assert 43300 in ports and 43000 in ports, ports      # ours, and the peer's own back
    data = d.ok("show sync")["data"]
    assert data["bulk_sent"]["events"] >= 2 and data["record_bytes"] == RECORD.size


def test_a_service_or_server_this_lb_lacks_is_refused(sync):
    d = sync
    refused = d.ok("show sync")["data"]["refused"]
    d.peer.send(EVENTS, record(DR_CLIENT, 43400, DR_VIP, 80, "192.168.100.77", 80) +
                record(DR_CLIENT, 43401, "192.168.100.250", 80, "192.168.100.2", 80))
    assert wait(lambda: d.ok("show sync")["data"]["refused"] == refused + 2)
    assert not conns(d, 43400) and not conns(d, 43401)


@pytest.mark.parametrize("how", ["magic", "length", "stranger"])
def test_malformed_datagrams_and_strangers_are_dropped(sync, how):
    d = sync
    before = d.ok("show sync")["data"]
    rec = record(DR_CLIENT, 43500, DR_VIP, 80, "192.168.100.2", 80)
    if how == "magic":
        d.peer.send(EVENTS, rec, magic=b"XXXX")
    elif how == "length":
        d.peer.send(EVENTS, rec[:-3], n=1)
    else:
        with in_netns(NS):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(HEADER.pack(b"RLBS", 1, EVENTS, 1, 1, time.time(), 0) + rec,
                 (ME, PORT))
        s.close()
    assert wait(lambda: d.ok("show sync")["data"]["dropped"] == before["dropped"] + 1)
    assert d.ok("show sync")["data"]["applied"] == before["applied"]
    assert not conns(d, 43500)


def test_a_hup_without_a_keepalived_file_changes_nothing(sync):
    """(`rlb daemon` without -k: a stray SIGHUP, logrotate's say, must not stop an LB)"""
    d = sync
    before = d.ok("show running-config")["text"]
    os.kill(d.proc.pid, signal.SIGHUP)
    assert wait(lambda: "SIGHUP: nothing to reload" in d.log.read_text())
    assert d.proc.poll() is None and d.ok("show running-config")["text"] == before


def test_sync_off_stops_the_events(sync):
    d = sync
    s = Session("rlbt-sync")
    try:
        s.ok("enable", "configure", "no sync", "commit")
        assert wait(lambda: d.ok("show sync")["data"]["state"] == "off")
        d.lan.send(dr_segment(d, 43600, "S"))
        d.lan.send(dr_segment(d, 43600, "A"))
        assert not [r for r in d.peer.records(seconds=1.0) if r[4] == 43600]
    finally:
        s.ok(f"sync peer {PEER}", "commit", "end")
        s.close()
