"""FNAT between a real Linux client and a real Linux server, each in a namespace of its
own, through the real daemon: connections spread over every local address whatever
ports the client's kernel picks, and the operational commands (`ipvsadm -Z`, `dpip
neigh flush`, `ipvsadm --set`, `ipvsadm -C`) act on the running data plane."""
import re
import resource
import select
import socket
import subprocess
import sys
import threading
import time

import pytest

from rlb.lab import scripts
from rlb.lab.topologies import get
from support.netns import Daemon, del_ns, fnat_two_port, in_netns, lines, sh

LB, CL, RS = "rlbt-lip", "rlbt-lipc", "rlbt-lipr"
VIP, CLIENT, SERVER = "10.0.0.100", "10.0.0.48", "192.168.100.2"
LIPS = [f"192.168.100.{200 + i}" for i in range(4)]
LIP_8080 = "192.168.100.210"
WEB, ALT = 80, 8080


def config(workers):
    """The tutorial's FNAT two-arm with one real server and no local address yet, a service
    on 8080 with its own, then LIPS for port 80 (after it: the order the test wants)."""
    return (fnat_two_port(workers, servers=(SERVER,), laddrs=()) +
            lines(get("fnat-two-arm").script(net=False, vport=ALT, servers=(SERVER,),
                                              rs_port=ALT, laddrs=(LIP_8080,)),
                  [scripts.laddr(ip, VIP, WEB) for ip in LIPS]))


def namespaces():
    """The LB's namespace with two veths; their other ends in the client's and the server's."""
    for ns in (LB, CL, RS):
        sh("ip", "netns", "del", ns, check=False)
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    for mine, peer, ns, addr in (("dp0", "rs0", RS, f"{SERVER}/24"),
                                 ("dp1", "cl0", CL, f"{CLIENT}/16")):
        sh("ip", "-n", LB, "link", "add", mine, "type", "veth", "peer", "name", peer, "netns", ns)
        for where, dev in ((LB, mine), (ns, peer)):
            sh("ethtool", "-K", dev, "tx", "off", "gro", "off", ns=where, check=False)
            sh("sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1", ns=where, check=False)
            sh("ip", "-n", where, "link", "set", dev, "up")
        sh("ip", "-n", ns, "addr", "add", addr, "dev", peer)


class Server:
    """Listening sockets in the server's namespace; a thread accepts, says b"x" and keeps
    each connection until drop()."""

    def __init__(self, ports):
        self.listen, self.held, self.accepted = [], [], 0
        with in_netns(RS):
            for port in ports:
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("0.0.0.0", port))
                s.listen(4096)
                self.listen.append(s)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            for s in select.select(self.listen, [], [], 0.1)[0]:
                c, _ = s.accept()
                c.sendall(b"x")
                with self.lock:
                    self.held.append(c)
                    self.accepted += 1

    def drop(self):
        with self.lock:
            for c in self.held:
                c.close()
            self.held.clear()

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.drop()
        for s in self.listen:
            s.close()


def connect(port, n, deadline=60.0):
    """n TCP connections from the client's kernel to VIP:port, each answered end to end;
    returned open."""
    out, end = [], time.monotonic() + deadline
    try:
        with in_netns(CL):
            for _ in range(n):
                assert time.monotonic() < end, f"only {len(out)} of {n} connections in {deadline}s"
                s = socket.create_connection((VIP, port), timeout=3)
                out.append(s)
                assert s.recv(1) == b"x"
    except BaseException:
        close(out)
        raise
    return out


def close(socks):
    for s in socks:
        s.close()


class Peers:
    def __init__(self, d, server, workers):
        self.d, self.server, self.workers = d, server, workers

    def stats(self):
        """{port: (service counters, its real server's counters)} from ipvsadm -ln --stats."""
        rows = self.d.ok("ipvsadm -ln --stats")["data"]["services"]
        return {r["port"]: (r["stats"], r["dests"][0]["stats"]) for r in rows}

    def traffic(self, port, n=3):
        """n connections opened, answered and closed both ways, quiet afterwards."""
        close(connect(port, n))
        time.sleep(0.1)
        self.server.drop()
        time.sleep(0.4)               # the last FIN and ACK are through

    def neighbours(self):
        return {r["ip"]: r for r in self.d.ok("dpip neigh show")["data"]}

    def conns(self):
        return self.d.ok("ipvsadm -lnc")["data"]["connections"]


@pytest.fixture(scope="module", params=[1, 2], ids=["1worker", "2workers"])
def peers(request, tmp_path_factory):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 8192), hard), hard))
    namespaces()
    server = None
    d = Daemon(LB, "rlbt-lip", config(request.param),
               tmp_path_factory.mktemp("lip"))
    try:
        d.start()
        server = Server((WEB, ALT))
        yield Peers(d, server, request.param)
    finally:
        if server is not None:
            server.close()
        rc = d.stop()
        for ns in (CL, RS, LB):
            del_ns(ns)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        assert rc == 0, d.log.read_text()


# ------------------------------------------------------------ local addresses


def test_a_thousand_connections_spread_over_every_local_address(peers):
    socks = connect(WEB, 1000)
    try:
        ports = [s.getsockname()[1] for s in socks]
        rows = peers.d.ok(f"ipvsadm -G -t {VIP}:{WEB}")["data"]
        conns = {la["addr"]: la["conns"] for la in rows[0]["laddrs"]}
        text = peers.d.ok(f"ipvsadm -G -t {VIP}:{WEB}")["text"]
        addrs = {r["addr"].split("/")[0]: r for r in peers.d.ok("dpip addr show")["data"]}
    finally:
        close(socks)
        peers.server.drop()
    evens = sum(1 for p in ports if p % 2 == 0)
    assert sorted(conns) == LIPS, text
    assert sum(conns.values()) == 1000, text
    for ip in LIPS:       # within 20% of a quarter each (the client used {evens} even ports)
        assert 200 <= conns[ip] <= 300, f"{ip}: {conns[ip]} ({evens} even client ports)\n{text}"
        assert addrs[ip]["sa_used"] == conns[ip]


def test_local_ports_still_belong_to_their_worker(peers):
    socks = connect(WEB, 40)
    try:
        rows = [c for c in peers.conns() if c["virtual"] == f"{VIP}:{WEB}"
                and c["state"] == "ESTABLISHED"]
    finally:
        close(socks)
        peers.server.drop()
    assert len(rows) >= 40
    assert {c["local"].split(":")[0] for c in rows} == set(LIPS)
    for c in rows:
        assert c["lport"] % peers.workers == c["worker"], c


# ------------------------------------------------------ operational commands


def test_zero_one_service_then_all(peers):
    peers.traffic(WEB)
    peers.traffic(ALT)
    before = peers.stats()
    assert before[WEB][0]["conns"] >= 3 and before[ALT][0]["conns"] >= 3, before
    assert before[ALT][1]["inpkts"] > 0
    peers.d.ok(f"ipvsadm -Z -t {VIP}:{ALT}")
    after = peers.stats()
    assert all(v == 0 for v in after[ALT][0].values() if v is not None), after[ALT]
    assert after[ALT][1]["conns"] == after[ALT][1]["inpkts"] == 0
    assert after[WEB][0]["conns"] >= before[WEB][0]["conns"], "only the named service is zeroed"
    assert after[WEB][1]["inpkts"] > 0
    for line in ("ipvsadm -Z", "ipvsadm --zero"):
        peers.traffic(WEB)
        peers.traffic(ALT)
        assert all(s[0]["conns"] > 0 for s in peers.stats().values())
        r = peers.d.call(line)
        assert r["ok"], f"{line}: {r.get('error')}"
        for svc, dest in peers.stats().values():
            assert svc["conns"] == svc["inpkts"] == svc["outbytes"] == 0, (line, svc)
            assert dest["conns"] == dest["inpkts"] == dest["outpkts"] == 0, (line, dest)
        text = peers.d.ok("ipvsadm -ln --stats")["text"]
        assert re.search(rf"TCP  {VIP}:{WEB}\s+0\s+0\s+0\s+0\s+0", text), text


def test_zero_from_the_shell(peers):
    peers.traffic(WEB)
    r = subprocess.run([sys.executable, "-m", "rlb", "-N", "rlbt-lip", "-c", "ipvsadm -Z"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "error" not in r.stdout + r.stderr, r.stdout + r.stderr
    assert peers.stats()[WEB][0]["conns"] == 0


def test_neigh_flush_one_port_then_all(peers):
    peers.traffic(WEB)
    learned = peers.neighbours()
    assert learned[CLIENT]["type"] == "auto" and learned[SERVER]["type"] == "auto", learned
    assert learned[SERVER]["dev"] == "dpdk0" and learned[CLIENT]["dev"] == "dpdk1"
    peers.d.ok("dpip neigh flush dev dpdk0")
    left = peers.neighbours()
    assert SERVER not in left and CLIENT in left, left
    peers.d.ok("dpip neigh add 192.168.100.9 lladdr 02:00:00:00:00:09 dev dpdk0")
    try:
        peers.d.ok("dpip neigh flush")
        left = peers.neighbours()
        assert list(left) == ["192.168.100.9"], "a flush keeps static entries only"
    finally:
        peers.d.ok("dpip neigh del 192.168.100.9")
    peers.traffic(WEB)                  # learned again: traffic flows as before
    assert {CLIENT, SERVER} <= set(peers.neighbours())


def test_set_timeouts_reach_the_data_plane(peers):
    peers.d.ok("ipvsadm --set 30 8 40")
    try:
        assert peers.d.ok("ipvsadm -l --timeout")["text"] == "Timeout (tcp tcpfin udp): 30 8 40"
        socks = connect(WEB, 1)
        try:
            time.sleep(0.3)
            est = [c for c in peers.conns() if c["state"] == "ESTABLISHED"]
        finally:
            close(socks)
            peers.server.drop()
        assert est and all(0 < c["expires"] <= 30 for c in est), est   # the default is 90
        peers.d.ok("ipvsadm --set 0 0 50")
        assert peers.d.ok("ipvsadm -l --timeout")["text"] == "Timeout (tcp tcpfin udp): 30 8 50"
    finally:
        peers.d.ok("ipvsadm --set 90 7 300")
    assert peers.d.ok("ipvsadm -l --timeout")["text"] == "Timeout (tcp tcpfin udp): 90 7 300"


def test_clear_removes_every_service_from_the_data_plane(peers):
    peers.traffic(WEB)
    accepted = peers.server.accepted
    peers.d.ok("ipvsadm -C")
    assert peers.d.ok("ipvsadm -ln")["data"]["services"] == []
    assert peers.d.ok("ipvsadm -G")["data"] == []
    with in_netns(CL), socket.socket() as s:
        s.settimeout(2)
        with pytest.raises(OSError):
            s.connect((VIP, WEB))
    time.sleep(0.3)
    assert peers.server.accepted == accepted, "a connection reached the server after -C"
    for ip in LIPS:         # the local addresses --add-laddr made went with their service
        assert ip not in {r["addr"].split("/")[0] for r in peers.d.ok("dpip addr show")["data"]}
