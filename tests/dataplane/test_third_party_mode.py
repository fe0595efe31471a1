"""A forwarding mode from the `rlb` entry-point group, end to end: the daemon loads the
toy plugin (tests/support/toy_mode.py, on its PYTHONPATH), `ipvsadm -a ... -X` gives a
real server that mode, and the workers forward with the C the plugin registered."""
from scapy.layers.inet import IP, TCP

from support import toy_mode
from support.netns import Daemon, del_ns, make_ns, sh, two_ports

from test_nat_snat import Wires, checksums_ok

NS = "rlbt-toy"
# the two af_packet ports' dataplane section, then NAT's network (test_nat_snat.py)
SCRIPT = two_ports(1) + """\
dpip addr add 10.0.0.1/16 dev dpdk1
dpip addr add 192.168.100.1/24 dev dpdk0
dpip addr add 10.0.0.100/32 dev dpdk1
ipvsadm -A -t 10.0.0.100:80 -s rr
dpip neigh add 192.168.100.2 lladdr {lan} dev dpdk0
dpip neigh add 10.0.0.48 lladdr {wan} dev dpdk1
"""


def test_a_plugin_mode_forwards_through_the_data_plane(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(toy_mode.install(tmp_path)))   # the daemon's
    make_ns(NS, [("dp0", "tp0"), ("dp1", "tp1")])
    mac = lambda dev: sh("cat", f"/sys/class/net/{dev}/address", ns=NS).stdout.strip()
    d = Daemon(NS, NS, SCRIPT.format(lan=mac("tp0"), wan=mac("tp1")), tmp_path).start()
    w = Wires(NS, d, 1)
    try:
        d.ok(f"ipvsadm -a -t 10.0.0.100:80 -r 192.168.100.2:8080 {toy_mode.FLAG}")
        w.from_wan(IP(src="10.0.0.48", dst="10.0.0.100") / TCP(sport=40000, dport=80, flags="S"))
        syn = w.got(w.lan, lambda p: TCP in p and p[TCP].sport == 40000)
        assert syn is not None, "the toy mode's real server got nothing"
        assert (syn[IP].src, syn[IP].dst, syn[TCP].dport) == ("10.0.0.48", "192.168.100.2", 8080)
        assert checksums_ok(syn)
        w.from_lan(IP(src="192.168.100.2", dst="10.0.0.48") /
                   TCP(sport=8080, dport=40000, flags="SA", ack=syn[TCP].seq + 1))
        sa = w.got(w.wan, lambda p: TCP in p and p[TCP].dport == 40000)
        assert sa is not None and (sa[IP].src, sa[TCP].sport) == ("10.0.0.100", 80)
        rows = [line.split() for line in d.ok("ipvsadm -ln")["text"].splitlines() if "->" in line]
        assert [r[2] for r in rows if r[1] == "192.168.100.2:8080"] == [toy_mode.DISPLAY]
        dests = d.ok("ipvsadm -ln")["data"]["services"][0]["dests"]
        assert dests[0]["mode"] == toy_mode.NAME
    finally:
        w.close()
        rc = d.stop()
        del_ns(NS)
    assert rc == 0, d.log.read_text()
