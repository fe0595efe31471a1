"""rlb.lab.ovs for real: Open vSwitch's userspace datapath in namespaces of ours, as the
peer of an LACP bond, a VLAN trunk and a GRE tunnel (root; no bonding, 8021q or gre
module here, so the far ends that are not OVS read and write raw frames)."""
from __future__ import annotations

import os
import subprocess
import tempfile
import time

import pytest
from scapy.layers.inet import GRE, ICMP, IP
from scapy.layers.l2 import ARP, Dot1Q, Ether

from rlb.lab.ovs import Ovs, installed, parse_bond_show, parse_lacp_show
from support.netns import Wire
from support.tagged_wire import TaggedWire

PREFIX = "rlbovs-"          # every namespace and directory of this file


def sh(*cmd, ns=None, check=True, timeout=20):
    if ns:
        cmd = ("ip", "netns", "exec", ns, *cmd)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode:
        raise AssertionError(f"{' '.join(cmd)}: {p.stderr or p.stdout}")
    return p


def namespaces() -> set[str]:
    out = sh("ip", "netns", "list").stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def host_links() -> set[str]:
    out = sh("ip", "-o", "link").stdout
    return {line.split(":")[1].strip() for line in out.splitlines()}


def veth(ns_a, a, ns_b, b):
    """A veth pair born with its ends in their namespaces (nothing in the host's)."""
    sh("ip", "-n", ns_a, "link", "add", a, "type", "veth", "peer", "name", b, "netns", ns_b)


def plain_end(ns, dev, cidr=None):
    """A veth end the namespace's kernel (not OVS) owns: the lab's offloads off, up."""
    sh("ethtool", "-K", dev, "tx", "off", "gro", "off", ns=ns)
    sh("sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1", ns=ns)
    if cidr:
        sh("ip", "-n", ns, "addr", "add", cidr, "dev", dev)
    sh("ip", "-n", ns, "link", "set", dev, "up")


def ping(ns, ip, count=3):
    """Echo replies received out of `count` (0.2 s apart, 1 s for the last)."""
    p = sh("ping", "-n", "-q", "-c", str(count), "-i", "0.2", "-W", "1", ip, ns=ns,
           check=False)
    for line in p.stdout.splitlines():
        if "received" in line:
            return int(line.split(",")[1].split()[0])
    return 0


def wait(cond, timeout=10.0, every=0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if got := cond():
            return got
        time.sleep(every)
    return cond()


@pytest.fixture
def lab():
    """make(tag) -> a fresh namespace rlbovs-TAG-PID; ovs(ns) -> a started Ovs there.
    Afterwards, whatever happened: every Ovs stopped (by its pid files), nothing left
    running in the namespaces, the namespaces gone, the host's links as they were."""
    if os.geteuid() != 0:
        pytest.fail("the lab tests run as root")
    if installed():
        pytest.fail(f"Open vSwitch is missing: {installed()} (make deps installs it)")
    before = host_links()
    made, switches = [], []

    class Lab:
        def make(self, tag):
            ns = f"{PREFIX}{tag}-{os.getpid()}"
            sh("ip", "netns", "add", ns)
            made.append(ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            return ns

        def ovs(self, ns):
            o = Ovs(ns, tempfile.mkdtemp(prefix=PREFIX))
            switches.append(o)
            t = time.monotonic()
            o.start()
            o.started_in = time.monotonic() - t
            return o

    try:
        yield Lab()
    finally:
        logs = []
        for o in switches:
            if o.procs and not all(o.pid(d) for d in o.procs):
                logs.append(o.log_tail())    # a daemon died on its own: say so below
            o.stop()
        left = {ns: sh("ip", "netns", "pids", ns, check=False).stdout.split() for ns in made}
        for ns in made:
            sh("ip", "netns", "del", ns, check=False)
        assert not any(left.values()), f"processes left in our namespaces: {left}"
        assert not (set(made) & namespaces())
        assert not any(o.rundir.exists() for o in switches)
        assert host_links() == before, "the host's namespace gained or lost interfaces"
        assert not logs, "an ovs-vswitchd died during the test:\n" + "\n".join(logs)


# --- the daemons -------------------------------------------------------------------------


def test_start_stop_by_pid_files(lab):
    ns = lab.make("d")
    o = lab.ovs(ns)
    assert o.started_in < 5.0, f"OVS took {o.started_in:.1f}s to start"
    pids = {d: o.pid(d) for d in ("ovsdb-server", "ovs-vswitchd")}
    assert all(pids.values()), pids
    # The daemons live in our namespace, not the host's.
    in_ns = set(sh("ip", "netns", "pids", ns).stdout.split())
    assert {str(p) for p in pids.values()} <= in_ns
    assert "ovs_version" in o.vsctl("list", "Open_vSwitch")
    assert "Open vSwitch" in o.appctl("version")
    o.bridge("br0")
    assert "datapath_type: netdev" in o.vsctl("show")
    # A second start on the same directory is refused while the first runs.
    with pytest.raises(Exception, match="already runs"):
        Ovs(ns, o.rundir).start()
    # Stopping one OVS leaves another (another namespace, another directory) alone.
    other = lab.ovs(lab.make("d2"))
    o.stop()
    assert not o.running() and not o.rundir.exists()
    assert not sh("ip", "netns", "pids", ns).stdout.split()
    assert other.running() and "Open vSwitch" in other.appctl("version")
    # A pid file naming a process that is not this directory's daemon (here: this
    # very test) is not ours to signal.
    o.rundir.mkdir()
    for name in ("vs.pid", "db.pid"):
        (o.rundir / name).write_text(f"{os.getpid()}\n")
    assert o.pid("ovs-vswitchd") is None and not o.running()
    o.stop()                                    # and we are still here
    assert not o.rundir.exists()


# --- LACP -----------------------------------------------------------------------------


def _bonded(o: Ovs, partner: Ovs):
    st = o.lacp_status("bond0")
    want = partner.lacp_status("bond0")["sys_id"]
    ok = st["negotiated"] and all(
        m["status"] == "current" and m["attached"] and m["partner_sys_id"] == want
        for m in st["members"].values())
    return st if ok and len(st["members"]) == 2 else None


@pytest.mark.parametrize("mode", ["balance-tcp", "active-backup"])
def test_lacp_bond_between_two_ovs(lab, mode):
    a, b = lab.make("la"), lab.make("lb")
    for dev in ("b0", "b1"):
        veth(a, dev, b, dev)
    oa, ob = lab.ovs(a), lab.ovs(b)
    for o, addr in ((oa, "10.77.0.1/24"), (ob, "10.77.0.2/24")):
        o.bridge("br0")
        o.bond("br0", "bond0", ["b0", "b1"], mode=mode)
        o.internal("br0", "p0", addr)
    # Fast LACP: both ends agree within a few LACPDUs.
    assert wait(lambda: _bonded(oa, ob) and _bonded(ob, oa), timeout=15), \
        (oa.appctl("lacp/show", "bond0"), ob.appctl("lacp/show", "bond0"))
    for o in (oa, ob):
        st = o.bond_status("bond0")
        assert st["bond_mode"] == mode and st["lacp_status"] == "negotiated", st
        assert all(m["enabled"] for m in st["members"].values()), st
        assert st["active_member"] in ("b0", "b1"), st
    assert wait(lambda: ping(a, "10.77.0.2", 1) == 1), "no ping over the bond"
    assert ping(a, "10.77.0.2", 5) == 5
    # A learnt B's internal port, not a member's MAC (attach(): arp_ignore on members).
    assert ob.mac("p0") in sh("ip", "-n", a, "neigh", "show", "10.77.0.2").stdout

    # One link down (its carrier goes on both ends): the other carries everything.
    active = oa.bond_status("bond0")["active_member"]
    sh("ip", "-n", a, "link", "set", active, "down")
    other = "b1" if active == "b0" else "b0"

    def failed_over():
        sa, sb = oa.bond_status("bond0"), ob.bond_status("bond0")
        return (not sa["members"][active]["enabled"] and sa["members"][other]["enabled"]
                and not sb["members"][active]["enabled"] and sa["active_member"] == other)
    assert wait(failed_over, timeout=10), oa.appctl("bond/show", "bond0")
    assert ping(a, "10.77.0.2", 5) == 5
    # B's LACP hears nothing on the dead link any more: it is no longer "current" there.
    assert wait(lambda: ob.lacp_status("bond0")["members"][active]["status"] != "current",
                timeout=10), ob.appctl("lacp/show", "bond0")
    assert ob.lacp_status("bond0")["members"][other]["status"] == "current"

    # And back: the link is aggregated again.
    sh("ip", "-n", a, "link", "set", active, "up")
    assert wait(lambda: _bonded(oa, ob) and _bonded(ob, oa), timeout=15)
    assert ping(a, "10.77.0.2", 3) == 3


# --- VLAN trunk -------------------------------------------------------------------------


def test_vlan_trunk_tags_frames(lab):
    a, b = lab.make("va"), lab.make("vb")
    veth(a, "tr0", b, "tr0")
    plain_end(b, "tr0")
    oa = lab.ovs(a)
    oa.bridge("br0")
    oa.trunk("br0", "tr0", [100, 200])
    oa.internal("br0", "v100", "10.100.0.1/24", tag=100)
    oa.internal("br0", "v200", "10.200.0.1/24", tag=200)
    mac100, mac200 = oa.mac("v100"), oa.mac("v200")
    wire = TaggedWire(b, "tr0")
    try:
        def tagged(vid, kind):
            def match(raw):
                f = Ether(raw)
                return Dot1Q in f and f[Dot1Q].vlan == vid and kind in f
            return match

        # A's kernel asks for 10.100.0.2 on v100: the request leaves tagged 100 ...
        wire.drain()
        sh("ping", "-c", "1", "-W", "1", "10.100.0.2", ns=a, check=False)
        got = wire.recv(tagged(100, ARP), timeout=3)
        assert got, "no ARP tagged 100 on the trunk"
        f = Ether(got)
        assert (f[ARP].psrc, f[ARP].pdst, f.src) == ("10.100.0.1", "10.100.0.2", mac100)
        # ... and 10.200.0.2 on v200 tagged 200.
        sh("ping", "-c", "1", "-W", "1", "10.200.0.2", ns=a, check=False)
        got = wire.recv(tagged(200, ARP), timeout=3)
        assert got and Ether(got)[ARP].psrc == "10.200.0.1" and Ether(got).src == mac200

        # ICMP from VLAN 100's port, its neighbour known: tagged 100 too.
        sh("ip", "-n", a, "neigh", "replace", "10.100.0.2", "lladdr", "02:00:00:00:01:02",
           "dev", "v100")
        wire.drain()
        sh("ping", "-c", "1", "-W", "1", "10.100.0.2", ns=a, check=False)
        got = wire.recv(tagged(100, ICMP), timeout=3)
        assert got and Ether(got)[IP].src == "10.100.0.1" \
            and Ether(got).dst == "02:00:00:00:01:02"

        # Into the trunk: a who-has 10.100.0.1 tagged 100 is answered, tagged 100.
        me = "02:00:00:00:01:03"
        def who_has(vid, ip="10.100.0.1", src="10.100.0.3"):
            return bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=me) / Dot1Q(vlan=vid)
                         / ARP(op=1, hwsrc=me, psrc=src, pdst=ip))

        def reply_to(vid):
            def match(raw):
                f = Ether(raw)
                return (Dot1Q in f and f[Dot1Q].vlan == vid and ARP in f and f[ARP].op == 2
                        and f[ARP].pdst == "10.100.0.3")
            return match
        wire.drain()
        wire.send(who_has(100))
        got = wire.recv(reply_to(100), timeout=3)
        assert got, "no ARP reply tagged 100"
        assert Ether(got)[ARP].hwsrc == mac100 and Ether(got)[ARP].psrc == "10.100.0.1"

        # An echo request tagged 100 gets its reply tagged 100.
        wire.drain()
        wire.send(bytes(Ether(dst=mac100, src=me) / Dot1Q(vlan=100)
                        / IP(src="10.100.0.3", dst="10.100.0.1") / ICMP(id=9, seq=1)))
        got = wire.recv(lambda raw: Dot1Q in Ether(raw) and ICMP in Ether(raw)
                        and Ether(raw)[ICMP].type == 0, timeout=3)
        assert got and Ether(got)[Dot1Q].vlan == 100 and Ether(got)[IP].src == "10.100.0.1"

        # The trunk carries 100 and 200 only: untagged and VLAN 300 frames are dropped.
        for frame in (bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=me)
                            / ARP(op=1, hwsrc=me, psrc="10.100.0.3", pdst="10.100.0.1")),
                      who_has(300)):
            wire.drain()
            wire.send(frame)
            assert wire.recv(lambda raw: ARP in Ether(raw) and Ether(raw)[ARP].op == 2,
                             timeout=1) is None
    finally:
        wire.close()


# --- GRE ------------------------------------------------------------------------------

UNDER_A, UNDER_B = "192.168.60.1", "192.168.60.2"


def _inner(layer3, dst_mac):
    """The tunnel's payload from the far host 10.60.0.2 to A's host port 10.60.0.1."""
    icmp = IP(src="10.60.0.2", dst="10.60.0.1") / ICMP(id=0x60, seq=1) / b"rlb-gre"
    if layer3:
        return GRE(proto=0x0800) / icmp
    return GRE(proto=0x6558) / Ether(src="02:00:00:00:60:02", dst=dst_mac) / icmp


@pytest.mark.parametrize("layer3", [True, False], ids=["ip-over-gre", "eth-over-gre"])
def test_gre_answers_raw_frames(lab, layer3):
    """B has no gre module: it builds the GRE packet itself and reads the answer."""
    a, b = lab.make("ga"), lab.make("gb")
    veth(a, "u0", b, "u0")
    plain_end(b, "u0", f"{UNDER_B}/24")
    oa = lab.ovs(a)
    host = oa.gre_tunnel("u0", f"{UNDER_A}/24", UNDER_B, "10.60.0.1/24", key=None,
                         layer3=layer3)
    assert oa.wait_route(UNDER_B) == "br-phy"
    assert "gre_sys" in oa.appctl("tnl/ports/show")
    if not layer3:      # Ethernet over GRE: A's kernel needs the far host's MAC
        sh("ip", "-n", a, "neigh", "replace", "10.60.0.2", "lladdr", "02:00:00:00:60:02",
           "dev", host)
    phy_mac, host_mac = oa.mac("br-phy"), oa.mac(host)
    wire = Wire(b, "u0")
    b_mac = sh("cat", "/sys/class/net/u0/address", ns=b).stdout.strip()
    frame = bytes(Ether(src=b_mac, dst=phy_mac) / IP(src=UNDER_B, dst=UNDER_A)
                  / _inner(layer3, host_mac))

    def echo_reply(raw):
        f = Ether(raw)
        if GRE not in f or f[IP].src != UNDER_A or f[IP].dst != UNDER_B:
            return False
        inner = f[GRE].payload
        return (ICMP in inner and inner[ICMP].type == 0 and inner[IP].src == "10.60.0.1"
                and inner[IP].dst == "10.60.0.2" and bytes(inner[ICMP].payload) == b"rlb-gre")
    try:
        got = None
        # OVS drops the first answer when it has yet to learn B's MAC (it ARPs for it).
        for _ in range(3):
            wire.drain()
            wire.send(frame)
            if got := wire.recv(echo_reply, timeout=2):
                break
        assert got, (oa.appctl("dpctl/dump-flows"), oa.appctl("tnl/arp/show"))
        f = Ether(got)
        assert f[GRE].proto == (0x0800 if layer3 else 0x6558)
        assert f.dst == b_mac and f.src == phy_mac
        assert oa.tnl_neighbors()[UNDER_B] == (b_mac, "br-phy")
    finally:
        wire.close()


@pytest.mark.parametrize("layer3", [True, False], ids=["ip-over-gre", "eth-over-gre"])
def test_gre_between_two_ovs(lab, layer3):
    a, b = lab.make("ta"), lab.make("tb")
    veth(a, "u0", b, "u0")
    oa, ob = lab.ovs(a), lab.ovs(b)
    oa.gre_tunnel("u0", f"{UNDER_A}/24", UNDER_B, "10.60.0.1/24", key=42, layer3=layer3)
    ob.gre_tunnel("u0", f"{UNDER_B}/24", UNDER_A, "10.60.0.2/24", key=42, layer3=layer3)
    wire = Wire(b, "u0")
    try:
        assert wait(lambda: ping(a, "10.60.0.2", 1) == 1), \
            (oa.appctl("dpctl/dump-flows"), oa.appctl("tnl/arp/show"))
        wire.drain()
        assert ping(a, "10.60.0.2", 5) == 5
        # It really went through GRE on the underlay, with the key.
        seen = wire.recv(lambda raw: GRE in Ether(raw) and ICMP in Ether(raw)[GRE].payload,
                         timeout=0.1) or wire.recv(lambda raw: GRE in Ether(raw), timeout=2)
        assert seen and Ether(seen)[GRE].key == 42
        assert Ether(seen)[GRE].proto == (0x0800 if layer3 else 0x6558)
    finally:
        wire.close()


# --- the parsers, on OVS 3.1's texts --------------------------------------------------

LACP_SHOW = """\
---- bond0 ----
  status: active negotiated
  sys_id: 3a:d5:ff:b6:5f:49
  sys_priority: 65534
  aggregation key: 1
  lacp_time: fast

member: b0: current attached
  port_id: 2
  port_priority: 65535
  may_enable: true

  actor sys_id: 3a:d5:ff:b6:5f:49
  actor state: activity timeout aggregation synchronized collecting distributing

  partner sys_id: 42:f7:a6:d5:4b:49
  partner state: activity timeout aggregation synchronized collecting distributing

member: b1: defaulted detached
  port_id: 1
  may_enable: false

  partner sys_id: 00:00:00:00:00:00
  partner state:
"""

BOND_SHOW = """\
---- bond0 ----
bond_mode: balance-tcp
bond may use recirculation: yes, Recirc-ID : 1
lacp_status: negotiated
lacp_fallback_ab: false
active-backup primary: <none>
active member mac: 2e:0a:7b:f0:b3:1f(b1)

member b0: disabled
  may_enable: false

member b1: enabled
  active member
  may_enable: true
"""


def test_parse_lacp_show():
    st = parse_lacp_show(LACP_SHOW)
    assert st["active"] and st["negotiated"] and st["sys_id"] == "3a:d5:ff:b6:5f:49"
    assert st["lacp_time"] == "fast" and st["aggregation_key"] == "1"
    b0, b1 = st["members"]["b0"], st["members"]["b1"]
    assert (b0["status"], b0["attached"], b0["partner_sys_id"]) == \
        ("current", True, "42:f7:a6:d5:4b:49")
    assert "distributing" in b0["partner_state"]
    assert (b1["status"], b1["attached"], b1["partner_state"]) == ("defaulted", False, [])


def test_parse_bond_show():
    st = parse_bond_show(BOND_SHOW)
    assert st["bond_mode"] == "balance-tcp" and st["lacp_status"] == "negotiated"
    assert st["active_member"] == "b1"
    assert st["members"] == {"b0": {"enabled": False, "active": False, "may_enable": False},
                             "b1": {"enabled": True, "active": True, "may_enable": True}}
    assert parse_bond_show(BOND_SHOW.replace("2e:0a:7b:f0:b3:1f(b1)",
                                             "00:00:00:00:00:00(none)"))["active_member"] is None


def test_no_leftovers():
    """Nothing of this file's tests outlives them: no namespace, no directory of theirs."""
    assert not {ns for ns in namespaces() if ns.startswith(PREFIX)
                and ns.endswith(f"-{os.getpid()}")}
    tmp = tempfile.gettempdir()
    assert not [d for d in os.listdir(tmp) if d.startswith(PREFIX)
                and os.path.exists(os.path.join(tmp, d, "conf.db"))]
