"""`capture` on a real daemon: a tcpdump filter run by the workers (libpcap compiles it,
DPDK's BPF runs it), the frames it takes in a pcap that tcpdump -r reads; a bad filter
refused with libpcap's words and no file made; a reader that does not keep up (a FIFO
nobody reads) costs the capture frames, counted, and the port none; `rlb -c ... file -`
writes the pcap to standard output."""
import os
import subprocess
import sys
import threading
import time

import pytest
from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.l2 import Ether

from support.netns import Daemon, Wire, del_ns, make_ns, sh

NS = "rlbt-capture"
CONFIG = """\
dataplane
 workers 2
 port dpdk0 net_af_packet0,iface=dp0
 port dpdk1 net_af_packet1,iface=dp1
!
dpip addr add 10.1.0.1/24 dev dpdk0
dpip addr add 10.2.0.1/24 dev dpdk1
"""
TESTER = "10.1.0.8"


@pytest.fixture(scope="module")
def lb(tmp_path_factory):
    make_ns(NS, [("dp0", "tp0"), ("dp1", "tp1")])
    sh("ip", "addr", "add", f"{TESTER}/24", "dev", "tp0", ns=NS)
    d = Daemon(NS, "rlbt-capture", CONFIG, tmp_path_factory.mktemp("capture")).start()
    try:
        yield d
    finally:
        rc = d.stop()
        del_ns(NS)
        assert rc == 0, d.log.read_text()


def in_background(lb, line):
    """Run a capture line on the daemon in a thread: (thread, result holder)."""
    box = {}

    def run():
        box["reply"] = lb.call(line)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    time.sleep(1.0)                 # the capture runs before the traffic starts
    return t, box


def tcpdump(path, *expr):
    r = subprocess.run(["tcpdump", "-nn", "-r", str(path), *expr], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return [line for line in r.stdout.splitlines() if line.strip()]


def test_ten_icmp_echoes_among_tcp_traffic(lb, tmp_path):
    path = tmp_path / "icmp.pcap"
    t, box = in_background(lb, f'capture dpdk0 in filter "icmp" count 10 seconds 30 '
                               f"file {path}")
    mac = sh("cat", "/sys/class/net/dp0/address", ns=NS).stdout.strip()
    w = Wire(NS, "tp0")
    try:
        for k in range(10):
            for port in (22, 80, 443):          # TCP for the kernel, around each echo
                w.send(Ether(dst=mac) / IP(src=TESTER, dst="10.1.0.1") /
                       TCP(sport=40000 + k, dport=port, flags="S"))
            w.send(Ether(dst=mac) / IP(src=TESTER, dst="10.1.0.1") / ICMP(id=5, seq=k))
        for k in range(5):                      # more of both after the tenth
            w.send(Ether(dst=mac) / IP(src=TESTER, dst="10.1.0.1") / ICMP(id=6, seq=k))
    finally:
        w.close()
    t.join(40)
    reply = box["reply"]
    assert reply["ok"], reply
    assert reply["data"]["written"] == 10 and reply["data"]["matched"] >= 10
    lines = tcpdump(path)
    assert len(lines) == 10
    assert all("ICMP echo request" in line and f"{TESTER} > 10.1.0.1" in line
               for line in lines)
    assert [int(line.split("seq ")[1].split(",")[0]) for line in lines] == list(range(10))
    assert tcpdump(path, "tcp") == []


def test_both_directions_see_the_echo_and_its_reply(lb, tmp_path):
    path = tmp_path / "both.pcap"
    t, box = in_background(lb, f"capture dpdk0 filter \"icmp and host {TESTER}\" "
                               f"count 6 seconds 30 file {path}")
    sh("ping", "-c", "3", "-i", "0.2", "-W", "2", "10.1.0.1", ns=NS)
    t.join(40)
    assert box["reply"]["ok"], box["reply"]
    lines = tcpdump(path)
    assert sum("echo request" in line for line in lines) == 3
    assert sum("echo reply" in line for line in lines) == 3


def test_a_bad_filter_is_refused_with_libpcaps_words(lb, tmp_path):
    path = tmp_path / "bad.pcap"
    r = lb.call(f'capture dpdk0 filter "tcp prot 80" count 1 file {path}')
    assert not r["ok"] and "capture refused" in r["error"] and "syntax error" in r["error"]
    assert not path.exists()
    for line, why in ((f"capture dpdk9 count 1 file {path}", "no such port"),
                      ("capture dpdk0 count 1 file relative.pcap", "absolute path"),
                      (f"capture dpdk0 count 1 file {tmp_path}", "exists")):
        r = lb.call(line)
        assert not r["ok"] and why in r["error"], r
    # nothing left running: a good capture works next
    r = lb.call(f"capture dpdk0 seconds 1 file {path}")
    assert r["ok"], r


def test_a_reader_that_does_not_keep_up_costs_frames_not_the_port(lb, tmp_path):
    """A FIFO nobody reads for a while: the daemon's writes wait, the ring fills, the
    workers drop copies (counted) and go on forwarding: a flood ping loses nothing."""
    fifo = tmp_path / "slow"
    os.mkfifo(fifo)
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)      # a reader that reads later
    try:
        t, box = in_background(lb, f"capture dpdk0 seconds 4 file {fifo}")
        ping = sh("ping", "-f", "-c", "4000", "-w", "10", "10.1.0.1", ns=NS).stdout
        t.join(0.1)
        assert "4000 received" in ping, ping                # the port lost nothing
        got = 0
        end = time.monotonic() + 30
        while t.is_alive() and time.monotonic() < end:     # now read it all
            try:
                got += len(os.read(rfd, 1 << 20))
            except BlockingIOError:
                time.sleep(0.01)
        t.join(5)
    finally:
        os.close(rfd)
    reply = box["reply"]
    assert reply["ok"], reply
    d = reply["data"]
    assert d["dropped"] > 0 and d["written"] + d["dropped"] == d["matched"]
    assert d["written"] > 0 and got > 0


def test_rlb_c_writes_the_pcap_to_stdout(lb, tmp_path):
    env = dict(os.environ, RLB_STATE_DIR=str(lb.state))
    p = subprocess.Popen(
        [sys.executable, "-m", "rlb", "-N", lb.instance, "-c",
         'capture dpdk0 in filter "icmp" count 4 seconds 20 file -'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    time.sleep(1.0)
    sh("ping", "-c", "4", "-i", "0.2", "10.1.0.1", ns=NS)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert b"4 frame(s) written" in err
    path = tmp_path / "stdout.pcap"
    path.write_bytes(out)
    assert len(tcpdump(path, "icmp")) == 4
