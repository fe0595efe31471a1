"""A real rlb daemon on two af_packet ports in a namespace, and raw wires to its ports."""
import pytest
from scapy.layers.l2 import Ether

from support.netns import Daemon, Wire, del_ns, make_ns, sh

NS = "rlbt-dp"
CONFIG = """\
dataplane
 workers {workers}
 port dpdk0 {pmd}0,iface=dp0
 port dpdk1 {pmd}1,iface=dp1
 forwarding
 neigh-timeout 30
!
dpip addr add 10.1.0.1/24 dev dpdk0
dpip addr add 10.2.0.1/24 dev dpdk1
"""


class Bench:
    """Everything a data-plane test needs: the daemon, a wire per port and per kni."""

    def __init__(self, daemon, pmd, workers):
        self.d = daemon
        self.pmd = pmd
        self.workers = workers
        self.w0 = Wire(NS, "tp0")          # the peer of dpdk0
        self.w1 = Wire(NS, "tp1")          # the peer of dpdk1
        self.k0 = Wire(NS, "dpdk0.kni")    # what the data plane gives the kernel
        self.mac0 = self.link_mac("dp0")
        self.mac1 = self.link_mac("dp1")
        self.tmac0 = self.link_mac("tp0")
        self.tmac1 = self.link_mac("tp1")

    @staticmethod
    def link_mac(dev):
        return sh("cat", f"/sys/class/net/{dev}/address", ns=NS).stdout.strip()

    def eth0(self, **kw):
        """An Ethernet header from the tester on port 0 to the LB."""
        return Ether(src=self.tmac0, dst=self.mac0, **kw)

    def reasons(self):
        return self.d.stats()["reasons"]

    def drain(self):
        for w in (self.w0, self.w1, self.k0):
            w.drain()

    def close(self):
        for w in (self.w0, self.w1, self.k0):
            w.close()


# af_packet with one and two workers (its sockets fan out by flow hash, so the two
# workers share the traffic); pcap on the same veths because af_packet sockets
# reassemble IP fragments before the PMD sees them (PACKET_FANOUT_FLAG_DEFRAG).
PORTS = [("net_af_packet", 1), ("net_af_packet", 2), ("net_pcap", 1)]


@pytest.fixture(scope="module", params=PORTS, ids=[f"{p[4:]}-{w}w" for p, w in PORTS])
def bench(request, tmp_path_factory):
    pmd, workers = request.param
    make_ns(NS, [("dp0", "tp0"), ("dp1", "tp1")])
    d = Daemon(NS, "rlbt-dp", CONFIG.format(pmd=pmd, workers=workers),
               tmp_path_factory.mktemp("dp")).start()
    b = Bench(d, pmd, workers)
    try:
        yield b
    finally:
        b.close()
        rc = d.stop()
        left = sh("ip", "-o", "link", ns=NS).stdout
        del_ns(NS)
        assert rc == 0, d.log.read_text()
        assert "kni" not in left, "kni taps must disappear with the daemon"
