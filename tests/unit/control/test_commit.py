"""rlb.control.commit and rlb.commands.running without a data plane: the running
configuration reads back as it was written (rich and random configurations), transform()
changes only what differs, apply() is all or nothing, the shell's configuration mode
(commit, rollback, abort, two sessions, commit confirmed), the commit Store,
atomic_write under a killed writer, `| json` of every show, and `rlb -f` (load)."""
import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
from ipaddress import IPv4Address, IPv4Interface

import asyncssh
import pytest

from rlb import plugins
from rlb.control import history as history_mod
from rlb.control import server
from rlb.control.commit import Store, apply, atomic_write, build, transform
from rlb.control.config import run
from rlb.model.model import CommandError, Model
from rlb.commands.running import render
from rlb.control.server import execute, open_shell
from rlb.commands.base import Context, g
from rlb.commands.configure import load as load_lines
from rlb.lab.topologies import get
from rlb.model.services import TCP, UDP, Services
from support import samples
from support.engine import FakeEngine

KEY = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
KEY2 = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()


def numbered(text):
    return list(enumerate(textwrap.dedent(text).strip("\n").splitlines(), 1))


def conf(text, source="t.conf"):
    """A model (no data plane) from a configuration's text."""
    return build(numbered(text), source)


def reads_back(m):
    """render -> build -> render gives the same text; returns that text."""
    first = render(m)
    again = render(build(first.numbered()))
    assert again.text == first.text
    assert again.canonical() == first.canonical()
    return first.text


def key(proto, vip, port):
    return (proto, IPv4Address(vip), port)


K80, K53 = key(TCP, "10.0.0.100", 80), key(UDP, "10.0.0.100", 53)
K443, K8080 = key(TCP, "10.0.0.101", 443), key(TCP, "10.0.0.101", 8080)
SNAT_MATCH = "proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1"
KMATCH = (0, SNAT_MATCH, 0)

# Everything the text can say: addresses (sapool too), routes with every option, the
# default route, a kni_host route, static neighbours, timeouts, every forwarding mode and
# scheduler, persistence with timeout and netmask, local addresses, thresholds, a SNAT
# match service, users with keys, ssh listen, runtime dataplane settings.
FULL = f"""
dataplane
 workers 2
 memory 256
 neigh-timeout 30
 idle-sleep 50
 port dpdk0 net_tap0
 port dpdk1 net_tap1
 busy-poll
 forwarding
 vip-miss-to-kni
!
dpip addr add 192.168.100.1/24 dev dpdk0
dpip addr add 10.0.0.1/16 dev dpdk1
dpip addr add 10.0.0.100/32 dev dpdk1
dpip addr add 10.0.0.101/32 dev dpdk1
dpip addr add 123.1.2.3/32 dev dpdk1 sapool
dpip route add default via 10.0.0.254 src 10.0.0.1 dev dpdk1 mtu 1400 metric 5
dpip route add 10.140.0.0/16 via 192.168.100.254 dev dpdk0 metric 10
dpip route add 172.10.0.2/32 dev dpdk1 scope kni_host
dpip route add 172.16.0.0/12 src 192.168.100.1 dev dpdk0 scope global mtu 9000
dpip route add 172.20.0.0/16 dev dpdk0 mtu 1400
dpip neigh add 192.168.100.9 lladdr 52:54:00:AA:00:09 dev dpdk0
dpip neigh add 10.0.0.254 lladdr 52:54:00:aa:00:fe dev dpdk1
dpip vlan add link dpdk0 id 7
dpip addr add 10.7.0.1/24 dev dpdk0.7
dpip route add 10.77.0.0/16 dev dpdk0.7
ipvsadm --set 100 10 200
ipvsadm -A -t 10.0.0.100:80 -s rr
ipvsadm -a -t 10.0.0.100:80 -r 192.168.100.2 -b -w 3 -x 100 -y 10
ipvsadm -a -t 10.0.0.100:80 -r 192.168.100.3:8080 -b
ipvsadm --add-laddr -z 192.168.100.200 -t 10.0.0.100:80 -F dpdk0
ipvsadm --add-laddr -z 192.168.100.201 -t 10.0.0.100:80 -F dpdk0
ipvsadm -A -u 10.0.0.100:53 -s mh -p 600 -M 255.255.255.0
ipvsadm -a -u 10.0.0.100:53 -r 192.168.100.5 -g -w 0
ipvsadm -A -t 10.0.0.101:443 -s sh -p
ipvsadm -a -t 10.0.0.101:443 -r 10.140.18.33 -i -w 7
ipvsadm -A -t 10.0.0.101:8080 -s wrr
ipvsadm -a -t 10.0.0.101:8080 -r 10.140.18.34:80 -m -x 5
ipvsadm -A -t 10.0.0.101:81 -s lc
ipvsadm -a -t 10.0.0.101:81 -r 192.168.100.6 -b
ipvsadm -A -u 10.0.0.101:82 -s fo
ipvsadm -a -u 10.0.0.101:82 -r 192.168.100.7 -b -w 9
ipvsadm -A -t 10.0.0.101:83
ipvsadm -a -t 10.0.0.101:83 -r 192.168.100.8 -b -w 2 -x 50
ipvsadm -A -s rr -H {SNAT_MATCH}
ipvsadm -a -H {SNAT_MATCH} -r 123.1.2.3:0 -w 100 -J
username alice key {KEY}
username alice privilege admin
username bob privilege view
username carol key {KEY2}
ssh listen 0.0.0.0 2222
"""

# The tutorial's FNAT two-arm example (the lab's topology of that name).
FNAT_TWO_ARM = """
dataplane
 port dpdk0 net_tap0
 port dpdk1 net_tap1
!
""" + "".join(f"{line}\n" for line in get("fnat-two-arm").lb_script)

# Every dataplane setting away from its default.
ALL_SETTINGS = """
dataplane
 workers 3
 memory 1024
 pool-size 8192
 route-table-size 64
 neigh-table-size 256
 conn-table-size 65536
 service-table-size 32
 dest-table-size 128
 neigh-timeout 120
 idle-sleep 0
 no-kni
 port dpdk0 net_af_packet0,iface=eth0
 port dpdk1 0000:06:00.0
 busy-poll
 forwarding
 vip-miss-to-kni
!
"""

# DR, tunnel and NAT, as the tutorial has them; SNAT for TCP, ICMP and UDP with every item.
UDP_MATCH = ("proto=udp,src-range=192.168.100.0-192.168.100.254:1000-2000,"
             "dst-range=8.8.8.8-8.8.8.8:53-53,iif=dpdk0,oif=dpdk1")
DR_TUNNEL_NAT_SNAT = f"""
dataplane
 port dpdk0 net_tap0
 port dpdk1 net_tap1
!
interface dpdk0
 ip address 192.168.100.1/24
 ip address 192.168.100.254/32
 ip neighbor 192.168.100.2 52:54:00:00:00:02
!
interface dpdk1
 ip address 10.140.16.48/20
 ip address 10.140.31.48/32
 ip address 123.1.2.3/24 sapool
!
ip route default via 10.140.31.254 src 10.140.16.48 dev dpdk1
virtual-server tcp 192.168.100.254:80
 scheduler rr
 real-server 192.168.100.2:80 mode dr weight 1
 real-server 192.168.100.3:80 mode dr weight 2 upper 10 lower 2
!
virtual-server tcp 10.140.31.48:80
 scheduler wlc
 persistent 30 netmask 255.255.0.0
 real-server 10.140.18.33:80 mode tunnel weight 1
 real-server 10.40.84.170:80 mode tunnel weight 1
!
virtual-server tcp 10.140.31.48:8080
 scheduler mh
 real-server 10.140.18.33:80 mode nat weight 4
!
virtual-server match {SNAT_MATCH}
 real-server 123.1.2.3:0 mode snat weight 100
!
virtual-server match proto=icmp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1
 scheduler rr
 real-server 123.1.2.3:0 mode snat weight 100
!
virtual-server match {UDP_MATCH}
 real-server 123.1.2.3:0 mode snat weight 1
!
"""

# A route whose src is an address --add-laddr made, and an operator's network route
# added before an address on that network.
LADDR_AS_SRC = """
dataplane
 port dpdk0 net_tap0
 port dpdk1 net_tap1
!
dpip route add 10.0.0.0/16 dev dpdk1 metric 3
dpip addr add 10.0.0.100/16 dev dpdk1
dpip addr add 192.168.100.1/24 dev dpdk0
ipvsadm -A -t 10.0.0.100:80 -s rr
ipvsadm -a -t 10.0.0.100:80 -r 192.168.100.2 -b
ipvsadm --add-laddr -z 192.168.100.200 -t 10.0.0.100:80 -F dpdk0
ipvsadm --add-laddr -z 192.168.100.201 -t 10.0.0.100:80 -F dpdk0
dpip route add 10.9.0.0/16 src 192.168.100.200 dev dpdk0
"""

RICH = {"full": FULL, "fnat-two-arm": FNAT_TWO_ARM, "all-settings": ALL_SETTINGS,
        "dr-tunnel-nat-snat": DR_TUNNEL_NAT_SNAT, "laddr-as-src": LADDR_AS_SRC}


# ======================================================================= 1. round trip

@pytest.mark.parametrize("name", RICH)
def test_rich_configurations_read_back_the_same(name):
    m = conf(RICH[name])
    text = reads_back(m)
    # a second generation too, and the stanzas' data is the text's
    assert reads_back(build(render(m).numbered())) == text
    data = render(m).data()
    assert [d["command"] for d in data] == [st.head for st in render(m).stanzas]
    assert text.splitlines()[0] == "! rlb running configuration" and text.endswith("\nend")


def test_full_configuration_text():
    m = conf(FULL)
    lines = render(m).lines()
    for line in ("dataplane", " workers 2", " memory 256", " neigh-timeout 30", " idle-sleep 50",
                 " port dpdk0 net_tap0", " busy-poll", " forwarding", " vip-miss-to-kni",
                 "interface dpdk0", " ip address 192.168.100.1/24",
                 " ip neighbor 192.168.100.9 52:54:00:aa:00:09",
                 " ip address 123.1.2.3/32 sapool",
                 "ip route 0.0.0.0/0 via 10.0.0.254 src 10.0.0.1 dev dpdk1 mtu 1400 metric 5",
                 "ip route 10.140.0.0/16 via 192.168.100.254 dev dpdk0 metric 10",
                 "ip route 172.10.0.2/32 dev dpdk1 scope kni_host",
                 "ip route 172.16.0.0/12 src 192.168.100.1 dev dpdk0 scope global mtu 9000",
                 "ip vs timeout tcp 100 tcpfin 10 udp 200",
                 "virtual-server tcp 10.0.0.100:80", " scheduler rr",
                 " local-address 192.168.100.200 dev dpdk0",
                 " real-server 192.168.100.2:80 mode fnat weight 3 upper 100 lower 10",
                 " real-server 192.168.100.3:8080 mode fnat weight 1",
                 "virtual-server udp 10.0.0.100:53", " persistent 600 netmask 255.255.255.0",
                 " real-server 192.168.100.5:53 mode dr weight 0", " persistent",
                 " real-server 10.140.18.33:443 mode tunnel weight 7",
                 " real-server 10.140.18.34:80 mode nat weight 1 upper 5",
                 f"virtual-server match {SNAT_MATCH}",
                 " real-server 123.1.2.3:0 mode snat weight 100",
                 "username alice privilege admin", f"username alice key {KEY}",
                 "username bob privilege view", f"username carol key {KEY2}",
                 "ssh listen 0.0.0.0 2222"):
        assert line in lines, line
    # defaults are not written; addresses --add-laddr made are not `ip address` lines
    assert " workers 1" not in lines and " scheduler wlc" in lines
    assert not any("192.168.100.200/32" in line or "192.168.100.201/32" in line
                   for line in lines)
    assert not [line for line in lines if line.startswith("ip route") and "scope host" in line]
    # the model made again has the same addresses, the local addresses' made again too
    m2 = build(render(m).numbered())
    assert m2.services._auto == {IPv4Address("192.168.100.200"), IPv4Address("192.168.100.201")}
    # (in the order each port has them: a VLAN's stanza comes before the ports')
    def by_port(model):
        return sorted(((a.port, str(a.iface), a.sapool) for a in model.addresses),
                      key=lambda t: t[0])
    assert by_port(m2) == by_port(m)


def test_a_route_whose_src_an_laddr_made_writes_that_address():
    """The route needs its src before the virtual servers make it (fixed: the text did not
    read back)."""
    m = conf(LADDR_AS_SRC)
    lines = render(m).lines()
    assert " ip address 192.168.100.200/32 sapool" in lines
    assert not any("192.168.100.201" in line for line in lines if "ip address" in line)
    assert lines.index("ip route 10.0.0.0/16 dev dpdk1 metric 3") < lines.index("interface dpdk1")
    m2 = build(render(m).numbered())
    # read back, the network route is still the operator's and the address did not make one
    r = m2.routes[(IPv4Address("10.0.0.0"), 16)]
    assert not r.auto and r.metric == 3


# -- random sequences of dpip and ipvsadm commands

PORTS = ("dpdk0", "dpdk1")
ADDRS = ["192.168.100.1/24", "192.168.100.254/32", "192.168.100.200/32", "10.0.0.1/16",
         "10.0.0.100/32", "10.0.0.101/32", "123.1.2.3/32", "172.16.5.1/24", "10.0.0.100/16"]
PREFIXES = ["default", "10.140.0.0/16", "172.10.0.2/32", "192.168.100.0/24", "10.0.0.0/16",
            "172.16.0.0/12", "172.16.5.0/24"]
GWS = ["10.0.0.254", "192.168.100.254", "172.16.5.9", "192.168.100.9"]
VIPS = ["10.0.0.100:80", "10.0.0.100:53", "10.0.0.101:443", "192.168.100.254:80"]
RSS = ["192.168.100.2", "192.168.100.3:8080", "10.140.18.33", "172.16.5.7", "192.168.100.5:80"]
LADDRS = ["192.168.100.200", "192.168.100.201", "10.0.0.50", "123.1.2.3"]
SCHEDS = sorted(plugins.schedulers())    # every registered one
MATCHES = [SNAT_MATCH, "proto=udp,src-range=172.16.5.0-172.16.5.255,iif=dpdk0"]
MACS = ["52:54:00:00:00:09", "52:54:00:aa:bb:cc"]

def random_line(r, m):
    ch, c = r.choice, r.random
    k = r.randrange(16)
    if k == 0:
        addr = ch(ADDRS)
        ip = IPv4Address(addr.split("/")[0])
        return f"dpip addr add {addr} dev {ch(PORTS)}" + (" sapool" if c() < .3 else "")
    if k == 1:
        return f"dpip addr del {ch(ADDRS)} dev {ch(PORTS)}"
    if k == 2:
        w = [f"dpip route add {ch(PREFIXES)}"]
        if c() < .5:
            w.append(f"via {ch(GWS)}")
        if c() < .3:
            w.append(f"src {ch(ADDRS).split('/')[0]}")
        w.append(f"dev {ch(PORTS)}")
        if c() < .2:
            w.append(f"scope {ch(['global', 'link', 'kni_host'])}")
        if c() < .2:
            w.append(f"mtu {ch([1400, 9000])}")
        if c() < .2:
            w.append(f"metric {ch([0, 5, 100])}")
        return " ".join(w)
    if k == 3:
        return f"dpip route del {ch(PREFIXES)}" + (f" dev {ch(PORTS)}" if c() < .5 else "")
    if k in (4, 15):
        return f"dpip neigh add {ch(GWS + RSS[:1])} lladdr {ch(MACS)} dev {ch(PORTS)}"
    if k == 5:
        return f"dpip neigh del {ch(GWS)}"
    match = c() >= .8
    svc = f"-H {ch(MATCHES)}" if match else f"-{ch('tu')} {ch(VIPS)}"
    if k in (6, 7):
        w = f"ipvsadm -{ch('AE')} {svc}"
        if c() < .7:
            w += f" -s {ch(SCHEDS)}"
        if c() < .3:        # a match service refuses it: it is never persistent
            w += " -p" + (f" {ch([60, 600])}" if c() < .5 else "")
        if c() < .2:
            w += " -M 255.255.255.0"
        return w
    if k == 8:
        return f"ipvsadm -D {svc}"
    if k in (9, 10, 11):
        w = f"ipvsadm -{ch('aae')} {svc} -r {ch(RSS + ['123.1.2.3:0'])}"
        if c() < .9:
            w += f" {ch([m.flag for m in plugins.modes().values()])}"
        if c() < .5:
            w += f" -w {ch([0, 1, 5, 100])}"
        if c() < .3:
            w += f" -x {ch([0, 10, 100])}"
        if c() < .3:
            w += f" -y {ch([0, 5])}"
        return w
    if k == 12:
        return f"ipvsadm -d {svc} -r {ch(RSS)}"
    if k == 13:
        what = ch(["add-laddr", "add-laddr", "del-laddr"])
        return f"ipvsadm --{what} -z {ch(LADDRS)} {svc} -F {ch(PORTS)}"
    if k == 14:
        return f"ipvsadm --set {ch([0, 60, 900])} {ch([0, 7, 30])} {ch([0, 300, 10])}"
    return "ipvsadm -C"


def two_ports():
    m = Model()
    for p in PORTS:
        m.add_port(p, f"net_tap_{p}")
    return m


@pytest.mark.parametrize("seed", range(24))
def test_random_command_sequences_read_back_and_transform(seed):
    """Random valid dpip/ipvsadm lines: after each one the text reads back the same, and
    apply() takes a model of the text before to the text after and back."""
    r = random.Random(seed)
    m = two_ports()
    prev = render(m)
    applied = 0
    for _ in range(120):
        line = random_line(r, m)
        if line is None:
            continue
        try:
            run(Context(m, node="config"), line)
        except CommandError:
            continue                    # refused: not a valid line in this state
        cur = render(m)
        back = build(cur.numbered())    # every state the commands reach has a text
        assert render(back).text == cur.text, line
        applied += 1
        for a, b in ((prev, cur), (cur, prev)):
            running = build(a.numbered())
            done = apply(running, build(b.numbered()))
            assert render(running).canonical() == b.canonical(), (line, done)
            assert bool(done) == (a.canonical() != b.canonical()), (line, done)
        prev = cur
    assert applied >= 20


def test_gap_address_over_a_static_neighbour():
    m = two_ports()
    ctx = Context(m, node="config")
    for line in ("dpip neigh add 10.0.0.9 lladdr 52:54:00:00:00:09 dev dpdk0",
                 "dpip addr add 10.0.0.9/24 dev dpdk0"):
        try:
            run(ctx, line)
        except CommandError:
            return                      # refused at the source: fixed
    reads_back(m)


def test_gap_gateway_route_outlives_its_network():
    m = two_ports()
    ctx = Context(m, node="config")
    for line in ("dpip addr add 10.0.0.1/24 dev dpdk0",
                 "dpip route add 10.9.0.0/16 via 10.0.0.254 dev dpdk0",
                 "dpip addr del 10.0.0.1/24 dev dpdk0"):
        try:
            run(ctx, line)
        except CommandError:
            return
    reads_back(m)


def test_gap_route_with_src_before_an_address_on_its_network():
    m = two_ports()
    ctx = Context(m, node="config")
    for line in ("dpip addr add 192.168.100.1/24 dev dpdk0",
                 "dpip route add 10.0.0.0/16 src 192.168.100.1 dev dpdk1",
                 "dpip addr add 10.0.0.1/16 dev dpdk1"):
        run(ctx, line)
    reads_back(m)


def test_gap_persistent_match_service():
    m = conf(FNAT_TWO_ARM)
    try:
        run(Context(m, node="config"), f"ipvsadm -A -H {SNAT_MATCH}")
        run(Context(m, node="config"), f"ipvsadm -E -H {SNAT_MATCH} -p")
    except CommandError:
        return
    running = conf(FNAT_TWO_ARM)
    apply(running, build(render(m).numbered()))


# ======================================================================= 2. transform

def objects(m):
    """Each service's object, slot, and its real servers' and local addresses' objects."""
    return {k: (s, s.slot, [(d, d.slot) for d in s.dests], list(s.laddrs))
            for k, s in m.services.table.items()}


def assert_untouched(before, m, edited=()):
    """Every service of `before` still there is the same object in the same slot; those not
    edited have the same real servers and local addresses too."""
    for k, (svc, slot, dests, laddrs) in before.items():
        now = m.services.table.get(k)
        if now is None:
            continue                    # deleted: the caller says which
        assert now is svc and now.slot == slot, k
        if k in edited:
            continue
        assert len(now.dests) == len(dests) and len(now.laddrs) == len(laddrs), k
        for d, (was, dslot) in zip(now.dests, dests):
            assert d is was and d.slot == dslot, (k, d)
        for la, was in zip(now.laddrs, laddrs):
            assert la is was, (k, la)


def edit(text, old, new):
    assert text.count(old) == 1, old
    return text.replace(old, new)


def drop_stanza(text, head):
    lines = text.splitlines()
    i = lines.index(head)
    j = i + 1
    while lines[j].startswith(" "):
        j += 1
    return "\n".join(lines[:i] + lines[j + 1:])


BASE = render(conf(FULL)).text
RS2 = " real-server 192.168.100.2:80 mode fnat weight 3 upper 100 lower 10"
NEW_SVC = ("virtual-server tcp 10.0.0.102:80\n scheduler lc\n"
           " real-server 192.168.100.9:80 mode fnat weight 2\n!\n")

PAIRS = {
    "weight": (edit(BASE, RS2, RS2.replace("weight 3", "weight 5")),
               ["change real server 192.168.100.2:80 of TCP 10.0.0.100:80"], ()),
    "thresholds": (edit(BASE, RS2, " real-server 192.168.100.2:80 mode fnat weight 3"),
                   ["change real server 192.168.100.2:80 of TCP 10.0.0.100:80"], ()),
    "delete real server": (edit(BASE, " real-server 192.168.100.3:8080 mode fnat weight 1\n", ""),
                           ["delete real server 192.168.100.3:8080 of TCP 10.0.0.100:80"], (K80,)),
    "add real server": (edit(BASE, RS2, RS2 + "\n real-server 192.168.100.4:80 mode fnat weight 1"),
                        ["add real server 192.168.100.4:80 to TCP 10.0.0.100:80"], (K80,)),
    "delete service": (drop_stanza(BASE, "virtual-server tcp 10.0.0.101:8080"),
                       ["delete TCP 10.0.0.101:8080"], ()),
    "add service": (edit(BASE, "username alice privilege admin",
                         NEW_SVC + "username alice privilege admin"),
                    ["add TCP 10.0.0.102:80",
                     "add real server 192.168.100.9:80 to TCP 10.0.0.102:80"], ()),
    "scheduler": (edit(BASE, " scheduler sh", " scheduler rr"), ["change TCP 10.0.0.101:443"], ()),
    "persistence off": (edit(BASE, " scheduler sh\n persistent\n", " scheduler sh\n"),
                        ["change TCP 10.0.0.101:443"], ()),
    "persistence on": (edit(BASE, " scheduler wrr\n",
                            " scheduler wrr\n persistent 120 netmask 255.255.0.0\n"),
                       ["change TCP 10.0.0.101:8080"], ()),
    "persistence timeout": (edit(BASE, "persistent 600 netmask", "persistent 60 netmask"),
                            ["change UDP 10.0.0.100:53"], ()),
    "laddr add": (edit(BASE, " local-address 192.168.100.201 dev dpdk0\n",
                       " local-address 192.168.100.201 dev dpdk0\n"
                       " local-address 192.168.100.202 dev dpdk0\n"),
                  ["add local address 192.168.100.202 to TCP 10.0.0.100:80"], (K80,)),
    "laddr remove": (edit(BASE, " local-address 192.168.100.201 dev dpdk0\n", ""),
                     ["delete local address 192.168.100.201 of TCP 10.0.0.100:80"], (K80,)),
    "timeouts": (edit(BASE, "ip vs timeout tcp 100 tcpfin 10 udp 200",
                      "ip vs timeout tcp 100 tcpfin 10 udp 250"),
                 ["set timeouts tcp 100 tcpfin 10 udp 250"], ()),
    "neighbour mac": (edit(BASE, "52:54:00:aa:00:09", "52:54:00:aa:00:10"),
                      ["delete neighbour 192.168.100.9", "add neighbour 192.168.100.9"], ()),
    "route metric": (edit(BASE, "dev dpdk0 metric 10", "dev dpdk0 metric 11"),
                     ["delete route 10.140.0.0/16", "add route 10.140.0.0/16"], ()),
    "port route": (edit(BASE, "ip route 172.20.0.0/16 dev dpdk0 mtu 1400",
                        "ip route 172.20.0.0/16 dev dpdk1 mtu 1400"),
                   ["delete route 172.20.0.0/16", "add route 172.20.0.0/16"], ()),
    "address add": (edit(BASE, " ip address 10.0.0.101/32\n",
                         " ip address 10.0.0.101/32\n ip address 10.0.0.102/32\n"),
                    ["add address 10.0.0.102/32 on dpdk1"], ()),
    "runtime setting": (edit(BASE, " idle-sleep 50", " idle-sleep 70"),
                        ["set dataplane idle-sleep 70"], ()),
    "switch off": (edit(BASE, " forwarding\n", ""), ["set dataplane forwarding False"], ()),
    "user removed": (edit(BASE, "username bob privilege view\n", ""), ["set users"], ()),
    "ssh listen": (edit(BASE, "ssh listen 0.0.0.0 2222", "ssh listen 127.0.0.1 22"),
                   ["set ssh listen"], ()),
    "nothing": (BASE, [], ()),
}


@pytest.mark.parametrize("name", PAIRS)
def test_transform_does_only_what_differs(name):
    after, changes, edited = PAIRS[name]
    running, target = build(numbered(BASE)), build(numbered(after))
    before = objects(running)
    routes = {k: (r, r.slot) for k, r in running.routes.items()}
    done = transform(running, target)
    assert done == changes
    assert render(running).canonical() == render(target).canonical()
    assert_untouched(before, running, edited)
    gone = [k for k in before if k not in running.services.table]
    assert [f"delete {before[k][0]}" for k in gone] == [c for c in changes
                                                        if c.startswith("delete TCP")]
    # routes nobody changed are the same objects, in the same slots
    changed = {c.split()[-1] for c in changes if "route" in c}
    for k, (r, slot) in routes.items():
        if str(r.prefix) not in changed and running.routes.get(k) is not None:
            assert running.routes[k] is r and r.slot == slot
    assert set(routes) - set(running.routes) <= {(r.prefix.network_address, r.prefix.prefixlen)
                                                 for r, _ in routes.values()
                                                 if str(r.prefix) in changed or r.auto}


def test_weight_change_edits_the_real_server_in_place():
    running = build(numbered(BASE))
    d = running.services.table[K80].dest(IPv4Address("192.168.100.2"), 80)
    done = transform(running, build(numbered(PAIRS["weight"][0])))
    assert done == ["change real server 192.168.100.2:80 of TCP 10.0.0.100:80"]
    assert running.services.table[K80].dest(IPv4Address("192.168.100.2"), 80) is d
    assert (d.weight, d.u_threshold, d.l_threshold) == (5, 100, 10)


def test_laddr_add_and_remove_make_and_drop_their_address():
    running = build(numbered(BASE))
    transform(running, build(numbered(PAIRS["laddr add"][0])))
    a = running.find_address(IPv4Address("192.168.100.202"))
    assert a is not None and a.sapool and str(a.iface) == "192.168.100.202/32"
    assert "192.168.100.202/32" not in render(running).text
    transform(running, build(numbered(PAIRS["laddr remove"][0])))
    assert running.find_address(IPv4Address("192.168.100.201")) is None
    assert running.find_address(IPv4Address("192.168.100.202")) is None


def test_transform_back_and_forth_gives_each_text():
    for name, (after, _, _) in PAIRS.items():
        running = build(numbered(BASE))
        apply(running, build(numbered(after)))
        apply(running, build(numbered(BASE)))
        assert render(running).canonical() == render(build(numbered(BASE))).canonical(), name


def test_route_src_on_an_laddr_address_in_a_commit():
    """A route made in the candidate whose src is an address --add-laddr made (fixed:
    the commit tried to add the address a second time)."""
    running = conf(FNAT_TWO_ARM)
    target = build(render(running).numbered())
    run(Context(target, node="config"), "ip route 10.9.0.0/16 src 192.168.100.200 dev dpdk0")
    assert " ip address 192.168.100.200/32 sapool" in render(target).lines()
    assert apply(running, target) == ["add route 10.9.0.0/16"]
    assert render(running).text == render(target).text
    reads_back(running)
    # and back: the route goes, the address stays the local address's
    assert apply(running, conf(FNAT_TWO_ARM)) == ["delete route 10.9.0.0/16"]
    assert render(running).text == render(conf(FNAT_TWO_ARM)).text
    assert IPv4Address("192.168.100.200") in running.services._auto


def test_operator_network_route_replaces_the_addresses_own_and_back():
    """An address's network route and an operator's route for that network are told apart
    (fixed: the commit kept the address's, or added the address before the route)."""
    with_addr = """
        dataplane
         port dpdk0 net_tap0
         port dpdk1 net_tap1
        !
        interface dpdk1
         ip address 10.0.0.1/16
    """
    head = "        interface dpdk1"
    with_route = with_addr.replace(head, "        ip route 10.0.0.0/16 dev dpdk1\n" + head)
    changes = {id(with_route): ["keep route 10.0.0.0/16 (the operator's now)"],
               id(with_addr): ["delete route 10.0.0.0/16"]}     # the address's comes back
    for a, b in ((with_addr, with_route), (with_route, with_addr)):
        running = conf(a)
        assert apply(running, conf(b)) == changes[id(b)]
        assert render(running).text == render(conf(b)).text
        assert running.routes[(IPv4Address("10.0.0.0"), 16)].auto == (b is with_addr)
    # from nothing: the route first, so the address does not make its own
    running = conf(with_addr.split("        interface")[0])
    assert apply(running, conf(with_route)) == ["add route 10.0.0.0/16",
                                                "add address 10.0.0.1/16 on dpdk1"]
    assert not running.routes[(IPv4Address("10.0.0.0"), 16)].auto


def test_netmask_without_persistence_is_no_change():
    """`ipvsadm -A -M` without -p keeps a mask the text does not write: not a change of the
    service at every commit (fixed)."""
    running = conf(FNAT_TWO_ARM + "ipvsadm -A -t 10.0.0.100:81 -s rr -M 255.255.255.0\n")
    target = build(render(running).numbered())
    run(Context(target, node="config"), "ipvsadm -A -t 10.0.0.101:80")
    assert apply(running, target) == ["add TCP 10.0.0.101:80"]


def test_removing_an_address_that_is_a_route_src_fails_cleanly():
    running = build(numbered(BASE))
    # the candidate refuses it at once
    target = build(numbered(BASE))
    ctx = Context(target, node="config")
    run(ctx, "interface dpdk1")
    with pytest.raises(CommandError, match="is the src of route"):
        run(ctx, "no ip address 10.0.0.1/16")
    # a target that has it anyway: apply refuses and changes nothing
    target.addresses.remove(target.find_address(IPv4Address("10.0.0.1")))
    with pytest.raises(CommandError, match="nothing was changed"):
        apply(running, target)
    assert render(running).text == BASE
    with pytest.raises(CommandError, match="is the src of route"):
        transform(running, target)
    assert render(running).text == BASE


@pytest.mark.parametrize("old, new, message", [
    (" workers 2", " workers 4", "dataplane workers is read at start"),
    (" memory 256", " memory 512", "dataplane memory is read at start"),
    (" port dpdk1 net_tap1", " port dpdk1 net_tap7", "ports are read at start"),
    (" port dpdk1 net_tap1", " port dpdk1 net_tap1\n port dpdk2 net_tap2",
     "ports are read at start"),
    (" busy-poll", " busy-poll\n no-kni", "dataplane kni is read at start"),
    (" busy-poll", " busy-poll\n conn-table-size 1024", "dataplane conn-table-size is read"),
])
def test_startup_only_settings_are_refused(old, new, message):
    running = build(numbered(BASE))
    target = build(numbered(edit(BASE, old, new)))
    with pytest.raises(CommandError, match=message) as info:
        apply(running, target)
    assert "restart" in str(info.value)
    assert render(running).text == BASE


# ================================================================ 3. all or nothing

def test_a_refused_step_puts_back_the_previous_configuration(monkeypatch):
    running = build(numbered(BASE))
    before = objects(running)
    after = edit(PAIRS["add service"][0], " real-server 192.168.100.9:80 mode fnat weight 2\n",
                 " real-server 192.168.100.9:80 mode fnat weight 2\n"
                 " real-server 192.168.100.10:80 mode fnat weight 2\n")
    after = edit(after, " ip address 10.0.0.101/32\n",
                 " ip address 10.0.0.101/32\n ip address 10.0.0.102/32\n")
    calls = []
    add_dest = Services.add_dest

    def flaky(self, *args, **kw):
        if self is running.services:        # the scratch copy's calls go through
            calls.append(args)
            if len(calls) == 2:
                raise CommandError("the data plane refused it")
        return add_dest(self, *args, **kw)
    monkeypatch.setattr(Services, "add_dest", flaky)
    with pytest.raises(CommandError, match="the previous configuration is back") as info:
        apply(running, build(numbered(after)))
    assert "the data plane refused it" in str(info.value)
    assert len(calls) == 2
    assert render(running).text == BASE
    assert key(TCP, "10.0.0.102", 80) not in running.services.table
    assert running.find_address(IPv4Address("10.0.0.102")) is None
    assert_untouched(before, running)


def test_a_data_plane_failure_is_undone_in_the_data_plane_too():
    running = build(numbered(BASE))
    engine = FakeEngine()
    running.attach(engine)
    vip = int(IPv4Address("10.0.0.102"))
    # the data plane refuses the new service once it has real servers
    engine.failing["svc_set"] = lambda slot, **kw: kw.get("vaddr") == vip and bool(kw.get("dests"))
    engine.calls.clear()
    with pytest.raises(CommandError, match="the previous configuration is back"):
        apply(running, build(numbered(PAIRS["add service"][0])))
    assert render(running).text == BASE
    names = [c[0] for c in engine.calls]
    # what was pushed for the new service was taken back
    assert "svc_del" in names and "dest_del" in names
    # a runtime setting reaches the data plane
    engine.calls.clear()
    assert apply(running, build(numbered(PAIRS["runtime setting"][0]))) == \
        ["set dataplane idle-sleep 70"]
    assert ("set_idle", (True, 70), {}) in engine.calls


def test_when_putting_back_fails_too_it_says_so():
    running = build(numbered(BASE))
    engine = FakeEngine()
    running.attach(engine)
    engine.failing["route_set"] = lambda *a, **kw: True
    after = edit(BASE, "ip route 10.140.0.0/16 via 192.168.100.254 dev dpdk0 metric 10",
                 "ip route 10.150.0.0/16 via 192.168.100.254 dev dpdk0 metric 10")
    with pytest.raises(CommandError, match="restoring the previous configuration failed too"):
        apply(running, build(numbered(after)))


# =============================================================== 4. the shell's sessions

SHELL_BASE = """
dataplane
 port dpdk0 net_tap0
 port dpdk1 net_tap1
!
dpip addr add 192.168.100.1/24 dev dpdk0
dpip addr add 10.0.0.100/32 dev dpdk1
dpip route add 10.0.0.0/16 dev dpdk1
ipvsadm -A -t 10.0.0.100:80 -s rr
ipvsadm -a -t 10.0.0.100:80 -r 192.168.100.2 -b
ipvsadm --add-laddr -z 192.168.100.200 -t 10.0.0.100:80 -F dpdk0
"""


@pytest.fixture
def lb(tmp_path):
    m = conf(SHELL_BASE)
    m.store = Store(str(tmp_path / "commits"), startup=str(tmp_path / "rlb.conf"))
    m.store.record(render(m), "rlb", "startup")      # as the daemon does
    return m


def session(m, user="carol", *lines):
    ctx = Context(m, host="lb", user=user)
    open_shell(ctx)
    ok(ctx, "enable", *lines)
    return ctx


def ok(ctx, *lines):
    reply = None
    for line in lines:
        reply = execute(ctx, line)
        assert reply["ok"], f"{line}: {reply.get('error')}"
    return reply


def err(ctx, line):
    reply = execute(ctx, line)
    assert not reply["ok"], line
    return reply["error"]


def test_sections_and_their_prompts(lb):
    ctx = session(lb)
    assert ok(ctx, "configure")["prompt"] == "lb(config)#"
    assert ok(ctx, "virtual-server tcp 10.0.0.100:80")["prompt"] == "lb(config-vs)#"
    assert ok(ctx, "real-server 192.168.100.3:80 mode fnat weight 4")["prompt"] == \
        "lb(config-vs)#"
    assert ok(ctx, "exit")["prompt"] == "lb(config)#"
    assert ok(ctx, "interface dpdk0")["prompt"] == "lb(config-if)#"
    # a line of configuration mode in a section leaves the section
    assert ok(ctx, "ip vs timeout tcp 60 tcpfin 5 udp 60")["prompt"] == "lb(config)#"
    ok(ctx, "virtual-server tcp 10.0.0.100:80")
    # `end` is refused with uncommitted changes: the section stays (fixed: it was lost)
    assert "uncommitted changes" in err(ctx, "end")
    assert ctx.node == "config-vs" and ctx.section == K80
    assert ok(ctx, "scheduler wlc")["prompt"] == "lb(config-vs)#"
    # a show typed in a section keeps the session there
    assert ok(ctx, "show running-config")["prompt"] == "lb(config-vs)#"
    assert ok(ctx, "exit")["prompt"] == "lb(config)#"
    assert "uncommitted changes" in err(ctx, "end") and ctx.node == "config"
    ok(ctx, "commit")
    assert ok(ctx, "interface dpdk1", "end")["prompt"] == "lb#"


def test_commit_with_a_comment_and_the_history(lb):
    ctx = session(lb)
    ok(ctx, "configure", "virtual-server tcp 10.0.0.100:80",
       "real-server 192.168.100.3:80 mode fnat weight 2", "exit")
    reply = ok(ctx, "commit comment hello world")
    assert reply["data"]["changes"] == ["add real server 192.168.100.3:80 to TCP 10.0.0.100:80"]
    assert reply["text"].startswith(f"commit {reply['data']['commit']}: 1 change(s)")
    assert " real-server 192.168.100.3:80 mode fnat weight 2" in render(lb).lines()
    h = lb.store.history()
    assert [(e["rollback"], e["user"], e["comment"]) for e in h] == \
        [(0, "carol", "hello world"), (1, "rlb", "startup")]
    shown = ok(ctx, "show configuration commits")
    ident = reply["data"]["commit"]
    assert re.search(rf"^\s+0\s+{ident}\s+\S+\s+carol\s+shell\s+hello world$", shown["text"], re.M)
    assert shown["data"]["commits"][0]["comment"] == "hello world"
    assert shown["data"]["pending_confirm"] is None
    # the session stays in configuration mode with nothing to commit
    assert ctx.node == "config" and ok(ctx, "commit")["text"] == "No changes to commit."
    assert ok(ctx, "end")["prompt"] == "lb#"
    assert ctx.model is lb


def test_rollback_then_commit_restores_the_previous_configuration(lb):
    start = render(lb).text
    ctx = session(lb)
    ok(ctx, "configure", "no virtual-server tcp 10.0.0.100:80", "ip route default dev dpdk1",
       "commit")
    changed = render(lb).text
    assert changed != start and "virtual-server" not in changed
    assert "Loaded commit 1" in ok(ctx, "rollback 1")["text"]
    diff = ok(ctx, "show configuration diff")["text"].splitlines()
    assert "+virtual-server tcp 10.0.0.100:80" in diff and "-ip route 0.0.0.0/0 dev dpdk1" in diff
    assert render(lb).text == changed                      # nothing until commit
    ok(ctx, "commit comment back")
    assert render(lb).text == start
    # rollback 0 is the running configuration: nothing to commit
    ok(ctx, "rollback 0")
    assert ok(ctx, "commit")["text"] == "No changes to commit."
    assert "no commit 9" in err(ctx, "rollback 9")
    assert err(ctx, "rollback 50").startswith("%")         # beyond what is kept


def test_abort_drops_the_changes(lb):
    start = render(lb).text
    ctx = session(lb)
    ok(ctx, "configure", "no virtual-server tcp 10.0.0.100:80", "interface dpdk0",
       "ip address 192.168.100.9/24")
    assert "uncommitted changes" in err(ctx, "end")
    assert ok(ctx, "exit")["prompt"] == "lb(config)#"          # out of the section
    assert "uncommitted changes" in err(ctx, "exit")
    reply = ok(ctx, "abort")
    assert reply["text"] == "Changes dropped." and reply["prompt"] == "lb#"
    assert render(lb).text == start and ctx.candidate is None and ctx.model is lb


def test_show_configuration_diff_and_show_configuration(lb):
    ctx = session(lb)
    ok(ctx, "configure", "virtual-server tcp 10.0.0.100:80", "scheduler wlc",
       "no real-server 192.168.100.2:80", "exit", "ip route 172.16.0.0/12 dev dpdk0")
    diff = ok(ctx, "show configuration diff")
    lines = diff["text"].splitlines()
    assert lines[:2] == ["--- running", "+++ candidate"]
    assert "+ip route 172.16.0.0/12 dev dpdk0" in lines
    assert "- scheduler rr" in lines and "+ scheduler wlc" in lines
    assert "- real-server 192.168.100.2:80 mode fnat weight 1" in lines
    assert diff["data"]["diff"] == lines
    # show configuration is the candidate, show running-config what runs
    assert " scheduler wlc" in ok(ctx, "show configuration")["text"].splitlines()
    assert " scheduler rr" in ok(ctx, "show running-config")["text"].splitlines()
    ok(ctx, "abort")
    assert ok(ctx, "show configuration diff")["text"] == ""


def test_two_sessions_the_first_commit_wins(lb):
    a = session(lb, "alice", "configure", "ip route 172.16.0.0/12 dev dpdk0")
    b = session(lb, "bob", "configure", "no ip route 10.0.0.0/16", "interface dpdk1",
                "ip address 10.0.0.1/16")
    ok(a, "commit comment alice's")
    after_a = render(lb).text
    error = err(b, "commit")
    assert "changed since" in error and "Nothing was applied" in error
    assert "by alice" in error
    assert render(lb).text == after_a
    assert [e["user"] for e in lb.store.history()] == ["alice", "rlb"]
    # bob's changes are still in his candidate, abort and again works
    assert "+ ip address 10.0.0.1/16" in ok(b, "show configuration diff")["text"]
    ok(b, "abort", "configure", "no ip route 10.0.0.0/16", "interface dpdk1",
       "ip address 10.0.0.1/16", "commit")
    text = render(lb).lines()
    assert "ip route 172.16.0.0/12 dev dpdk0" in text and " ip address 10.0.0.1/16" in text


def test_an_exec_mode_change_refuses_a_pending_candidate(lb):
    a = session(lb, "alice", "configure", "ip route 172.16.0.0/12 dev dpdk0")
    b = session(lb, "bob")
    ok(b, "dpip addr add 10.0.0.9/16 dev dpdk1")             # lb#: at once
    now = render(lb).text
    error = err(a, "commit")
    assert "changed since" in error
    assert "(`dpip addr add 10.0.0.9/16 dev dpdk1`) by bob" in error
    assert render(lb).text == now
    # saving is not a change of the running configuration
    ok(b, "write memory")
    ok(a, "abort", "configure", "ip route 172.16.0.0/12 dev dpdk0", "commit")


def test_commit_needs_a_store_and_config_mode():
    m = conf(SHELL_BASE)
    ctx = session(m, "carol", "configure", "ip route 172.16.0.0/12 dev dpdk0")
    assert "commit store" in err(ctx, "commit")
    assert "commit store" in err(ctx, "show configuration commits")
    assert "commit store" in err(ctx, "write memory")


# ============================================================== 5. commit confirmed

def test_commit_confirmed_rolls_back_unless_confirmed(lb):
    start = render(lb).text

    async def scenario():
        ctx = session(lb, "carol", "configure", "no virtual-server tcp 10.0.0.100:80")
        reply = ok(ctx, "commit confirmed 1 seconds comment try")
        assert "rolled back in 1 second(s)" in reply["text"]
        assert reply["data"]["confirm_within"] == 1
        assert "virtual-server" not in render(lb).text
        shown = ok(ctx, "show configuration commits")
        assert shown["data"]["pending_confirm"]["user"] == "carol"
        assert "commit confirmed by carol: rollback in" in shown["text"]
        await asyncio.sleep(1.5)
        return ctx
    ctx = asyncio.run(scenario())
    assert render(lb).text == start
    assert lb.store.pending is None
    newest = lb.store.history()[0]
    assert newest["user"] == "rlb" and "not confirmed" in newest["comment"]
    assert "carol" in newest["comment"]
    # the session's candidate was of the rolled-back configuration: its commit is refused
    ok(ctx, "no ip route 10.0.0.0/16")
    assert "changed since" in err(ctx, "commit")


def test_a_plain_commit_confirms(lb):
    async def scenario():
        ctx = session(lb, "carol", "configure", "no virtual-server tcp 10.0.0.100:80")
        ok(ctx, "commit confirmed 1 seconds")
        confirmed = render(lb).text
        reply = ok(ctx, "commit")
        assert "automatic rollback is cancelled" in reply["text"]
        assert reply["data"]["confirmed"] is True
        await asyncio.sleep(1.5)
        return confirmed
    confirmed = asyncio.run(scenario())
    assert render(lb).text == confirmed and lb.store.pending is None
    assert [e["user"] for e in lb.store.history()] == ["carol", "rlb"]


def test_a_second_commit_confirmed_keeps_the_way_back(lb):
    start = render(lb).text

    async def scenario():
        ctx = session(lb, "carol", "configure", "no virtual-server tcp 10.0.0.100:80")
        ok(ctx, "commit confirmed 1 seconds")
        ok(ctx, "ip route 172.16.0.0/12 dev dpdk0", "commit confirmed 1 seconds")
        assert "ip route 172.16.0.0/12 dev dpdk0" in render(lb).text
        await asyncio.sleep(1.5)
    asyncio.run(scenario())
    assert render(lb).text == start


def test_commit_confirmed_without_an_event_loop_applies_nothing(lb):
    start = render(lb).text
    ctx = session(lb, "carol", "configure", "no virtual-server tcp 10.0.0.100:80")
    assert "needs the daemon's event loop" in err(ctx, "commit confirmed 1")
    assert render(lb).text == start
    assert len(lb.store.history()) == 1 and lb.store.pending is None
    assert ctx.candidate.changed()


# ========================================================================== 6. Store

def test_the_store_keeps_at_most_keep_commits(tmp_path, monkeypatch):
    monkeypatch.setattr(history_mod, "KEEP", 5)
    store = Store(str(tmp_path / "c"))
    m = conf(SHELL_BASE)
    texts = []
    for i in range(8):
        run(Context(m, node="config"), f"dpip route add 172.16.{i}.0/24 dev dpdk0")
        texts.append(render(m))
        assert store.record(render(m), f"u{i}", f"number {i}") == i + 1
    assert len(os.listdir(tmp_path / "c")) == 5
    h = store.history()
    assert [e["id"] for e in h] == [8, 7, 6, 5, 4]
    assert [e["rollback"] for e in h] == [0, 1, 2, 3, 4]
    assert [(e["user"], e["comment"]) for e in h] == [(f"u{i}", f"number {i}")
                                                      for i in (7, 6, 5, 4, 3)]
    for n in range(5):
        lines, path = store.lines(n)
        assert lines[0][1].startswith(f"! commit {8 - n} by u{7 - n} at ")
        assert [t for _, t in lines[1:]] == texts[7 - n].lines()
        assert path.endswith(f"commit-{8 - n:06d}.conf")
        assert render(build(lines)).text == texts[7 - n].text
    with pytest.raises(CommandError, match=r"no commit 5: 5 kept"):
        store.lines(5)
    with pytest.raises(CommandError, match=r"no commit -1"):
        store.lines(-1)
    # numbering goes on after the oldest went
    assert store.record(render(m), "u") == 9 and len(store.history()) == 5


def test_rollback_beyond_the_history_through_the_shell(lb, monkeypatch):
    monkeypatch.setattr(history_mod, "KEEP", 3)
    ctx = session(lb, "carol", "configure")
    for i in range(4):
        ok(ctx, f"ip route 172.16.{i}.0/24 dev dpdk0", f"commit comment c{i}")
    assert len(lb.store.history()) == 3
    assert "no commit 3: 3 kept" in err(ctx, "rollback 3")
    ok(ctx, "rollback 2", "commit")
    assert "172.16.2.0" not in render(lb).text and "172.16.1.0" in render(lb).text


def test_history_without_a_header_and_a_foreign_file(tmp_path):
    store = Store(str(tmp_path / "c"))
    (tmp_path / "c" / "commit-000003.conf").write_text("dataplane\n")
    (tmp_path / "c" / "commit-x.conf").write_text("junk\n")
    (tmp_path / "c" / "notes.txt").write_text("junk\n")
    h = store.history()
    assert h == [{"rollback": 0, "id": 3, "user": None, "source": "", "time": None,
                  "comment": ""}]
    assert store.record(render(conf(SHELL_BASE)), "rlb") == 4


# ===================================================================== 7. atomic_write

WRITER = """
import sys
from rlb.control.commit import atomic_write
path = sys.argv[1]
texts = ("A" * {size}, "B" * {size})
sys.stdout.write("go\\n")
sys.stdout.flush()
i = 0
while True:
    atomic_write(path, texts[i % 2])
    i += 1
"""


def test_atomic_write_survives_a_killed_writer(tmp_path):
    size = 2 * 1024 * 1024
    path = str(tmp_path / "rlb.conf")
    whole = {"A" * size, "B" * size}
    umask = os.umask(0o022)
    try:
        atomic_write(path, "A" * size)
    finally:
        os.umask(umask)
    r = random.Random(7)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    seen_bak = mid_write = 0
    for _ in range(30):
        proc = subprocess.Popen([sys.executable, "-c", WRITER.format(size=size), path],
                                stdout=subprocess.PIPE, env=env)
        try:
            assert proc.stdout.readline() == b"go\n"
            time.sleep(r.uniform(0, 0.06))
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
        mid_write += any(n.startswith("rlb.conf.tmp") for n in os.listdir(tmp_path))
        with open(path) as f:
            assert f.read() in whole
        if os.path.exists(path + ".bak"):
            seen_bak += 1
            with open(path + ".bak") as f:
                assert f.read() in whole
    assert seen_bak
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o640)       # as the first write made it
    # some kills did land in the middle of a write: its temporary file was left behind
    # (the next write removes it)
    assert mid_write
    atomic_write(path, "C")
    assert sorted(os.listdir(tmp_path)) == ["rlb.conf", "rlb.conf.bak"]


def test_write_memory_keeps_the_previous_file(lb, tmp_path):
    startup = tmp_path / "rlb.conf"
    old = os.umask(0o022)
    try:
        ctx = session(lb)
        reply = ok(ctx, "write memory")
        assert reply["data"]["path"] == str(startup) and "[OK]" in reply["text"]
        first = startup.read_text()
        assert first == render(lb).text + "\n"
        assert oct(startup.stat().st_mode & 0o777) == oct(0o640)
        assert not (tmp_path / "rlb.conf.bak").exists()
        ok(ctx, "dpip route add 172.16.0.0/12 dev dpdk0", "copy running-config startup-config")
        assert startup.read_text() == render(lb).text + "\n" != first
        assert (tmp_path / "rlb.conf.bak").read_text() == first
        # the file reads back as the running configuration
        assert render(conf(startup.read_text())).text == render(lb).text
        # a mode the operator gave stays
        os.chmod(startup, 0o600)
        ok(ctx, "write memory")
        assert oct(startup.stat().st_mode & 0o777) == oct(0o600)
        assert sorted(os.listdir(tmp_path)) == ["commits", "rlb.conf", "rlb.conf.bak"]
    finally:
        os.umask(old)


def test_write_memory_without_a_startup_file(tmp_path):
    m = conf(SHELL_BASE)
    m.store = Store(str(tmp_path / "commits"))
    assert "without a configuration file" in err(session(m), "write memory")


# ============================================================== 8. `| json` of every show

SAMPLES = {"A.B.C.D": "10.0.0.100", "A.B.C.D/M": "10.0.0.0/16", "MAC": "52:54:00:00:00:02",
           "A.B.C.D:PORT": "10.0.0.100:80", "LINE": "text"}
WORD_SAMPLES = {"dev": "dpdk0", "match": SNAT_MATCH, "sched": "rr", "mode": "fnat",
                "name": "dpdk0.7",
                "where": "/run/frr-op"}
# -t is given: -u and -H would be a second service; -c and --timeout exclude the rest
EXCLUSIVE = {"udp", "match", "connection", "timeout"}


def sample_line(node, full):
    return samples.sample_line(node, full, SAMPLES, WORD_SAMPLES, EXCLUSIVE)


MORE_SHOWS = ["ipvsadm -L -c", "ipvsadm -lnc", "ipvsadm -L --timeout", "ipvsadm -Ln --rate",
              f"ipvsadm -L -H {SNAT_MATCH} --stats", "ipvsadm -L -u 10.0.0.100:53 -n",
              "ipvsadm -G -t 10.0.0.100:80", "dpip route show dev dpdk1"]


def shows():
    out = [pytest.param(line, id=line) for line in MORE_SHOWS]
    for cmd in g.commands("exec"):
        if cmd.readonly and cmd.definition.split()[0] in ("show", "ipvsadm", "dpip"):
            for full in (False, True):
                line = " ".join(sample_line(cmd.root, full))
                if line not in [p.values[0] for p in out]:
                    out.append(pytest.param(line, id=line))
    return out


@pytest.fixture(scope="module")
def json_model(tmp_path_factory):
    m = conf(FULL)
    d = tmp_path_factory.mktemp("json")
    m.store = Store(str(d / "commits"), startup=str(d / "rlb.conf"))
    m.store.record(render(m), "rlb", "startup")
    return m


NEEDS_DATA_PLANE = "% data plane not running"


@pytest.mark.parametrize("line", shows())
def test_every_show_gives_stable_json(line, json_model):
    assert g.parse(line, "exec").command.readonly
    for ctx in (Context(json_model, user="carol"), session(json_model)):
        first = execute(ctx, f"{line} | json")
        if not first["ok"]:
            assert first["error"] == NEEDS_DATA_PLANE, first
            continue
        second = execute(ctx, f"{line} | json")
        assert second["ok"] and second["text"] == first["text"], line
        data = json.loads(first["text"])
        assert data is not None, f"{line}: no data"
        plain = execute(ctx, line)
        assert plain["ok"] and json.loads(first["text"]) == \
            json.loads(json.dumps(plain["data"], default=str)), line


def test_the_shows_are_all_found():
    lines = [p.values[0] for p in shows()]
    for want in ("show running-config", "show configuration diff", "show configuration commits",
                 "dpip addr show", "ipvsadm -L", "ipvsadm -G", "show dataplane"):
        assert want in lines
    assert len(lines) >= 20


def test_json_of_the_configuration_in_configuration_mode(json_model):
    ctx = session(json_model, "carol", "configure", "no ip vs timeout")
    data = json.loads(ok(ctx, "show configuration | json")["text"])
    assert {"command": "ip vs timeout tcp 100 tcpfin 10 udp 200", "section": []} not in data
    running = json.loads(ok(ctx, "show running-config | json")["text"])
    assert {"command": "ip vs timeout tcp 100 tcpfin 10 udp 200", "section": []} in running
    diff = json.loads(ok(ctx, "show configuration diff | json")["text"])
    assert "-ip vs timeout tcp 100 tcpfin 10 udp 200" in diff["diff"]
    ok(ctx, "abort")


# =========================================================================== 9. load

GOOD_FILE = """\
# a file as rlb -f takes it
dataplane
 port dpdk0 net_tap0
 port dpdk1 net_tap1
!
dpip addr add 192.168.100.1/24 dev dpdk0
interface dpdk1
 ip address 10.0.0.100/32
 ip neighbor 10.0.0.254 52:54:00:00:00:fe
!
dpip route add 10.0.0.0/16 dev dpdk1
ip route default via 10.0.0.254 dev dpdk1
ipvsadm -A -t 10.0.0.100:80 -s rr
virtual-server tcp 10.0.0.100:80
 real-server 192.168.100.2:80 mode fnat weight 2
 local-address 192.168.100.200 dev dpdk0
!
ipvsadm -a -t 10.0.0.100:80 -r 192.168.100.3 -b
virtual-server udp 10.0.0.100:53
 scheduler sh
 persistent 60
 real-server 192.168.100.5:53 mode dr
ip vs timeout tcp 60 tcpfin 5 udp 30
"""


def loader(tmp_path, text=None):
    m = conf(text or """
        dataplane
         port dpdk0 net_tap0
         port dpdk1 net_tap1
        !
    """)
    m.store = Store(str(tmp_path / "commits"), startup=str(tmp_path / "rlb.conf"))
    return m, Context(m, user="carol")


def test_load_a_good_file_is_one_commit(tmp_path):
    m, ctx = loader(tmp_path)
    reply = server.load(ctx, GOOD_FILE, "f.conf")
    assert reply["ok"], reply
    assert reply["data"]["commit"] == 1 and "previous" not in reply["data"]
    assert [(e["user"], e["comment"]) for e in m.store.history()] == [("carol", "load f.conf")]
    lines = render(m).lines()
    for line in (" ip address 192.168.100.1/24", " ip neighbor 10.0.0.254 52:54:00:00:00:fe",
                 "ip route 10.0.0.0/16 dev dpdk1", "ip route 0.0.0.0/0 via 10.0.0.254 dev dpdk1",
                 " local-address 192.168.100.200 dev dpdk0",
                 " real-server 192.168.100.2:80 mode fnat weight 2",
                 " real-server 192.168.100.3:80 mode fnat weight 1",
                 "virtual-server udp 10.0.0.100:53", " persistent 60",
                 " real-server 192.168.100.5:53 mode dr weight 1",
                 "ip vs timeout tcp 60 tcpfin 5 udp 30"):
        assert line in lines, line
    assert ctx.candidate is None and ctx.model is m
    reads_back(m)
    # the same file again: its first dpip line finds its address there, nothing changes
    text = render(m).text
    again = server.load(ctx, GOOD_FILE, "f.conf")
    assert again["error"] == "% f.conf:6: address 192.168.100.1 already exists"
    assert render(m).text == text and len(m.store.history()) == 1
    # a file of router-style lines that are there already: nothing to commit
    again = server.load(ctx, "virtual-server tcp 10.0.0.100:80\n scheduler rr\n", "g.conf")
    assert again["ok"] and again["text"] == "No changes to commit."
    assert len(m.store.history()) == 1


@pytest.mark.parametrize("bad, reason", [
    ("dpip addr add 10.0.0.1/33 dev dpdk0", "f.conf:3: "),
    ("dpip addr add 10.0.0.1/24 dev dpdk9", "f.conf:3: no such port 'dpdk9'"),
    ("ipvsadm -a -t 10.0.0.77:80 -r 192.168.100.3 -b", "f.conf:3: Service not defined"),
    (" real-server 192.168.100.3:80", "f.conf:3: "),
])
def test_load_with_a_bad_line_changes_nothing(tmp_path, bad, reason):
    m, ctx = loader(tmp_path, SHELL_BASE)
    start = render(m).text
    text = "dpip addr add 10.0.0.9/16 dev dpdk1\nipvsadm -A -t 10.0.0.9:80\n" + bad + \
        "\ndpip route add 172.16.0.0/12 dev dpdk0\n"
    reply = server.load(ctx, text, "f.conf")
    assert not reply["ok"]
    assert reply["error"].startswith("% " + reason), reply["error"]
    assert render(m).text == start and m.store.history() == []
    assert ctx.candidate is None and ctx.model is m


def test_load_refusals(tmp_path):
    m, ctx = loader(tmp_path, SHELL_BASE)
    start = render(m).text
    reply = server.load(ctx, "dataplane\n workers 4\n", "w.conf")
    assert reply["error"].startswith("% w.conf:2: workers is read at start")
    viewer = Context(m, user="vic", privilege="view")
    assert "Permission denied" in server.load(viewer, GOOD_FILE, "f.conf")["error"]
    shell = session(m, "carol", "configure")
    assert server.load(shell, GOOD_FILE, "f.conf")["error"] == "% leave configuration mode first"
    assert render(m).text == start


# ================================================= commits that need a wide transform

DP = "dataplane\n port dpdk0 net_tap0\n port dpdk1 net_tap1\n!\n"


def store(m, tmp_path):
    m.store = Store(str(tmp_path / "commits"), startup=str(tmp_path / "rlb.conf"))
    m.store.record(render(m), "rlb", "startup")
    return m


def test_dr_lan_ip_changed_under_its_real_server(tmp_path):
    """The LAN IP (the ARP source) of a DR port changes: the real server and the VIP are
    taken down and made again, in the candidate's order."""
    m = store(conf(DP + "dpip addr add 192.168.100.1/24 dev dpdk0\n"
                        "dpip addr add 192.168.100.254/32 dev dpdk0\n"
                        "ipvsadm -A -t 192.168.100.254:80 -s rr\n"
                        "ipvsadm -a -t 192.168.100.254:80 -r 192.168.100.2 -g\n"), tmp_path)
    ctx = session(m, "a", "configure", "interface dpdk0", "ip address 192.168.100.5/24",
                  "no ip address 192.168.100.254/32", "no ip address 192.168.100.1/24",
                  "ip address 192.168.100.254/32")
    changes = ok(ctx, "commit")["data"]["changes"]
    assert "delete real server 192.168.100.2:80 of TCP 192.168.100.254:80 (made again)" in changes
    assert m._primary("dpdk0") == int(IPv4Address("192.168.100.5"))
    assert render(m).canonical() == render(ctx.candidate.model).canonical()


def test_snat_wan_address_changed_under_its_default_route(tmp_path):
    m = store(conf(DP + "dpip addr add 123.1.2.3/24 dev dpdk1 sapool\n"
                        "dpip addr add 192.168.100.1/24 dev dpdk0\n"
                        "dpip route add default via 123.1.2.1 dev dpdk1\n"
                        f"ipvsadm -A -s rr -H {SNAT_MATCH}\n"
                        f"ipvsadm -a -H {SNAT_MATCH} -r 123.1.2.3:0 -w 100 -J\n"), tmp_path)
    ctx = session(m, "a", "configure", "interface dpdk1")
    assert "on-link only by address" in err(ctx, "no ip address 123.1.2.3/24")
    ok(ctx, f"virtual-server match {SNAT_MATCH}", "no real-server 123.1.2.3:0", "exit",
       "no ip route default", "interface dpdk1", "no ip address 123.1.2.3/24",
       "ip address 123.1.2.3/25 sapool", "exit", "ip route default via 123.1.2.1 dev dpdk1",
       f"virtual-server match {SNAT_MATCH}", "real-server 123.1.2.3:0 mode snat weight 100")
    changes = ok(ctx, "commit")["data"]["changes"]
    assert "delete route 0.0.0.0/0 (made again)" in changes
    assert "ip address 123.1.2.3/25 sapool" in render(m).text
    # the same as a whole file (`rlb -f --replace`)
    text = render(m).text.replace("123.1.2.3/25", "123.1.2.3/24")
    ok(ctx, "end")
    reply = load_lines(session(m, "b"), numbered(text), "wan.conf", replace=True)
    assert "add address 123.1.2.3/24 on dpdk1" in reply.data["changes"]


def test_a_service_turns_from_dr_to_fnat(tmp_path):
    m = store(conf(DP + "dpip addr add 192.168.100.1/24 dev dpdk0\n"
                        "dpip addr add 10.0.0.100/32 dev dpdk1\n"
                        "ipvsadm -A -t 10.0.0.100:80 -s rr\n"
                        "ipvsadm -a -t 10.0.0.100:80 -r 192.168.100.2 -g\n"), tmp_path)
    ctx = session(m, "a", "configure", "virtual-server tcp 10.0.0.100:80",
                  "no real-server 192.168.100.2:80", "real-server 192.168.100.2:80 mode fnat",
                  "local-address 192.168.100.200 dev dpdk0")
    assert ok(ctx, "commit")["data"]["changes"] == [
        "change real server 192.168.100.2:80 of TCP 10.0.0.100:80",
        "add local address 192.168.100.200 to TCP 10.0.0.100:80"]


def test_an_unconfirmed_commit_that_cannot_be_undone_in_place_still_rolls_back(lb):
    async def main():
        ctx = session(lb, "a", "configure", "virtual-server tcp 10.0.0.100:80",
                      "no local-address 192.168.100.200 dev dpdk0",
                      "no real-server 192.168.100.2:80", "real-server 192.168.100.2:80 mode dr")
        before = render(lb)
        ok(ctx, "commit confirmed 1 seconds")
        assert "mode dr" in render(lb).text
        await asyncio.sleep(1.5)
        assert "mode fnat" in render(lb).text and lb.store.failed is None
        assert render(lb).canonical() == before.canonical()
    asyncio.run(main())


def test_a_load_confirms_a_pending_commit(lb, tmp_path):
    async def main():
        ctx = session(lb, "a", "configure", "ip vs timeout tcp 60 tcpfin 5 udp 60")
        ok(ctx, "commit confirmed 1 seconds", "end")
        reply = load_lines(session(lb, "b"), numbered("ip vs timeout tcp 61 tcpfin 5 udp 60"),
                           "f.conf")
        assert "automatic rollback is cancelled" in reply.text
        await asyncio.sleep(1.5)
        assert "ip vs timeout tcp 61 tcpfin 5 udp 60" in render(lb).text
    asyncio.run(main())


def test_a_failed_automatic_rollback_is_shown(lb, monkeypatch):
    import rlb.control.commit as commit_mod

    async def main():
        ctx = session(lb, "a", "configure", "ip vs timeout tcp 60 tcpfin 5 udp 60")
        ok(ctx, "commit confirmed 1 seconds", "end")

        def refuse(*args, **kw):
            raise CommandError("refused for the test")
        monkeypatch.setattr(commit_mod, "apply", refuse)
        await asyncio.sleep(1.5)
        reply = ok(ctx, "show configuration commits")
        assert reply["data"]["failed_rollback"]["error"] == "refused for the test"
        assert "automatic rollback of the commit confirmed by a failed" in reply["text"]
    asyncio.run(main())


def test_a_comment_is_one_line_in_the_history(lb):
    ctx = session(lb, "a", "configure", "ip vs timeout tcp 60 tcpfin 5 udp 60")
    ok(ctx, "commit comment hi\rusername eve privilege admin")
    assert lb.store.history()[0]["comment"] == "hi username eve privilege admin"
    ok(ctx, "rollback 0")
    assert "username eve" not in render(ctx.candidate.model).text


def test_a_commit_not_kept_for_rollback_is_still_applied(lb, monkeypatch):
    ctx = session(lb, "a", "configure", "ip vs timeout tcp 60 tcpfin 5 udp 60")

    def full(*args, **kw):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(lb.store, "record", full)
    reply = ok(ctx, "commit")
    assert "not kept for rollback: No space left on device" in reply["text"]
    assert "ip vs timeout tcp 60" in render(lb).text
    assert execute(ctx, "show configuration diff")["text"] == ""
    ok(ctx, "end")


def test_write_memory_to_a_place_it_cannot_write_says_so(lb, tmp_path):
    lb.store.startup = str(tmp_path / "no" / "such" / "dir" / "rlb.conf")
    assert err(session(lb, "a"), "write memory").startswith("% cannot write ")


def test_write_memory_follows_a_symbolic_link(lb, tmp_path):
    real = tmp_path / "real.conf"
    real.write_text("old\n")
    link = tmp_path / "link.conf"
    link.symlink_to(real)
    lb.store.startup = str(link)
    ok(session(lb, "a"), "write memory")
    assert link.is_symlink() and real.read_text() == render(lb).text + "\n"
    assert (tmp_path / "real.conf.bak").read_text() == "old\n"


def test_the_running_text_merged_again_is_no_change(lb):
    reply = load_lines(session(lb, "a"), render(lb).numbered(), "same.conf")
    assert reply.data["changes"] == []


def test_operational_commands_act_on_the_running_instance_in_configuration_mode(lb):
    ctx = session(lb, "a", "dpip addr add 10.9.0.1/24 dev dpdk1")
    change = lb.store.last_change
    ok(ctx, "configure", "dpip neigh flush", "ipvsadm -Z")
    assert execute(ctx, "show configuration diff")["text"] == ""
    assert lb.store.last_change == change            # not a configuration change
    ok(ctx, "end")


# ============================================ issue 9: router semantics (items 7, 9-11)

TUTORIAL_EXEC = [                   # the tutorial's FNAT lines, typed in lb#
    "dpip addr add 10.0.0.101/32 dev dpdk1",
    "dpip route add 192.168.200.0/24 dev dpdk0",
    "ipvsadm -A -t 10.0.0.101:80 -s rr",
    "ipvsadm -a -t 10.0.0.101:80 -r 192.168.100.5 -b",
    "ipvsadm -a -t 10.0.0.101:80 -r 192.168.100.6 -b",
    "ipvsadm --add-laddr -z 192.168.100.210 -t 10.0.0.101:80 -F dpdk0",
    "dpip neigh add 192.168.100.5 lladdr 52:54:00:00:00:05 dev dpdk0",
]


def test_exec_mode_changes_are_in_the_history_and_rollback_1_undoes_the_last(lb):
    ctx = session(lb, "bob", *TUTORIAL_EXEC)
    typed = render(lb).text
    h = lb.store.history()
    assert [(e["user"], e["source"], e["comment"]) for e in h[:7]] == \
        [("bob", "shell", line) for line in reversed(TUTORIAL_EXEC)]
    assert [e["id"] for e in h] == list(range(8, 0, -1))
    # operational commands, shows, saving, a failing line: no entry
    ok(ctx, "dpip neigh flush", "ipvsadm -Z", "show running-config", "write memory", "disable",
       "enable")
    err(ctx, "ipvsadm -A -t 10.0.0.101:80 -s rr")
    assert len(lb.store.history()) == 8
    ok(ctx, "configure", "ip route 172.16.0.0/12 dev dpdk0", "commit")
    assert "Loaded commit 8 (rollback 1)" in ok(ctx, "rollback 1")["text"]
    ok(ctx, "commit")
    assert render(lb).text == typed          # the VIP, the routes, the service stay
    ok(ctx, "end")
    # each exec line is one commit: rollback 1 now undoes the neighbour only
    ok(ctx, "dpip neigh del 192.168.100.5")
    ok(ctx, "configure", "rollback 1", "commit", "end")
    assert render(lb).text == typed


def test_rlb_c_changes_say_so_in_the_history(lb):
    ctx = Context(lb, user="root", via="socket")           # as the control socket makes it
    assert execute(ctx, "ipvsadm -E -t 10.0.0.100:80 -s wlc")["ok"]
    newest = lb.store.history()[0]
    assert (newest["user"], newest["source"], newest["comment"]) == \
        ("root", "rlb -c", "ipvsadm -E -t 10.0.0.100:80 -s wlc")
    assert execute(ctx, "ipvsadm -E -t 10.0.0.100:80 -s wlc")["ok"]    # no change: no entry
    assert lb.store.history()[0]["id"] == newest["id"]


def test_one_number_per_commit_everywhere(lb):
    ctx = session(lb, "carol", "dpip route add 172.20.0.0/16 dev dpdk0", "configure",
                  "ip route 172.21.0.0/16 dev dpdk0")
    reply = ok(ctx, "commit comment third")
    assert reply["text"].startswith("commit 3: ") and reply["data"]["commit"] == 3
    shown = ok(ctx, "show configuration commits")
    assert shown["text"].splitlines()[0].split()[:3] == ["#", "Commit", "When"]
    rows = [line.split() for line in shown["text"].splitlines()[1:]]
    assert [r[:2] for r in rows] == [["0", "3"], ["1", "2"], ["2", "1"]]
    assert rows[1][3:] == ["carol", "shell", "dpip", "route", "add", "172.20.0.0/16", "dev",
                           "dpdk0"]
    assert ok(ctx, "rollback 2")["data"] == {"commit": 1, "rollback": 2}


def test_commit_stays_in_the_section(lb):
    ctx = session(lb, "carol", "configure", "virtual-server tcp 10.0.0.100:80", "scheduler wlc")
    assert ok(ctx, "commit")["prompt"] == "lb(config-vs)#"
    assert ctx.section == K80
    assert ok(ctx, "scheduler wrr", "commit")["prompt"] == "lb(config-vs)#"
    assert lb.services.table[K80].sched == "wrr"
    ok(ctx, "exit", "interface dpdk0", "ip neighbor 192.168.100.9 52:54:00:00:00:09")
    assert ok(ctx, "commit")["prompt"] == "lb(config-if)#"
    assert ok(ctx, "end")["prompt"] == "lb#"


def test_rollback_stays_in_the_section_it_still_has(lb):
    ctx = session(lb, "carol", "configure", "virtual-server tcp 10.0.0.100:80", "scheduler wlc",
                  "commit", "exit", "virtual-server tcp 10.0.0.100:81", "scheduler rr",
                  "commit")
    assert ok(ctx, "rollback 1")["prompt"] == "lb(config)#"     # :81 is not in commit 1
    ok(ctx, "virtual-server tcp 10.0.0.100:80")
    assert ok(ctx, "rollback 1")["prompt"] == "lb(config-vs)#" and ctx.section == K80
    ok(ctx, "abort")


def test_show_configuration_is_headed_candidate(lb):
    ctx = session(lb, "carol")
    assert ok(ctx, "show configuration")["text"].startswith("! rlb running configuration")
    ok(ctx, "configure", "ip route 172.16.0.0/12 dev dpdk0")
    text = ok(ctx, "show configuration")["text"]
    assert text.splitlines()[0] == "! rlb candidate configuration (not committed)"
    assert "running configuration" not in text and "ip route 172.16.0.0/12 dev dpdk0" in text


def test_commit_confirmed_alone_is_ten_minutes(lb):
    async def scenario():
        ctx = session(lb, "carol", "configure", "ip route 172.16.0.0/12 dev dpdk0")
        reply = ok(ctx, "commit confirmed")
        assert reply["data"]["confirm_within"] == 600
        assert "rolled back in 10 minute(s)" in reply["text"]
        assert 590 < lb.store.pending["deadline"] - time.time() <= 600
        ok(ctx, "commit")                       # confirmed
        assert lb.store.pending is None
    asyncio.run(scenario())


@pytest.mark.parametrize("line", ["workers 4", "memory 128", "pool-size 4096", "no-kni",
                                  "conn-table-size 1024", "port dpdk2 net_tap2",
                                  "port dpdk1 net_tap9"])
def test_startup_settings_are_refused_as_typed_in_configuration_mode(lb, line):
    ctx = session(lb, "carol", "configure", "dataplane")
    error = err(ctx, line)
    assert "read at start" in error or "fixed once the data plane runs" in error
    assert "restart" in error
    assert ok(ctx, "show configuration diff")["text"] == ""
    # what already is, and the settings a running data plane takes, are accepted
    ok(ctx, "port dpdk1 net_tap1", "idle-sleep 70")
    assert ok(ctx, "show configuration diff")["text"].splitlines()[3:] == \
        [" dataplane", "+ idle-sleep 70", "  port dpdk0 net_tap0", "  port dpdk1 net_tap1"]


@pytest.mark.parametrize("line, message", [
    ("real-server 192.168.100.2:80 weight 70000", "% weight must be 0-65535"),
    ("real-server 192.168.100.2:80 upper 99999999999", "% upper must be 0-2147483647"),
    ("persistent 0", "% timeout must be 1-2678400"),
])
def test_out_of_range_says_the_range(lb, line, message):
    ctx = session(lb, "carol", "configure", "virtual-server tcp 10.0.0.100:80")
    error = err(ctx, line)
    assert error.splitlines()[0] == message
    assert error.splitlines()[1] == line and error.splitlines()[2].endswith("^")
    assert ok(ctx, "show configuration diff")["text"] == ""


def test_exec_lines_without_a_pause_are_one_commit(lb, monkeypatch):
    """In the daemon (an event loop): a session's lines sent together (an `rlb -c`
    batch, a paste) are one commit; a pause, another session's change or reading the
    history ends the batch."""
    monkeypatch.setattr(history_mod, "BATCH_IDLE", 0.2)
    routes = [f"dpip route add 172.16.{i}.0/24 dev dpdk0" for i in range(6)]

    async def scenario():
        a, b = session(lb, "alice"), session(lb, "bob")
        ok(a, routes[0], routes[1])
        ok(b, routes[2])                # another session: alice's two lines are a commit
        await asyncio.sleep(0.4)
        ok(b, routes[3])                # after a pause: a commit of its own
        await asyncio.sleep(0.4)
        ok(a, routes[4])
        assert ok(a, "show configuration commits")["data"]["commits"][0]["comment"] == \
            routes[4]                   # read while open: it is there
        ok(a, routes[5], "configure", "ip route 172.17.0.0/16 dev dpdk0", "commit")
    asyncio.run(scenario())
    h = lb.store.history()
    assert [(e["user"], e["comment"]) for e in h[:6]] == [
        ("alice", ""), ("alice", routes[5]), ("alice", routes[4]), ("bob", routes[3]),
        ("bob", routes[2]), ("alice", f"{routes[0]}; {routes[1]}")]
    assert [e["id"] for e in h] == list(range(7, 0, -1))


BONDED = """
dataplane
 port dpdk0 net_tap0
 port dpdk1 net_tap1
 port dpdk2 net_tap2
 bond bond0 mode 4 slaves dpdk0 dpdk1 xmit-policy layer34
!
dpip addr add 10.0.0.1/24 dev dpdk2
dpip addr add 10.1.0.1/24 dev bond0
"""


def test_a_bond_does_not_stop_commits():
    """The running configuration's text puts a bond's line after every port line, so
    the candidate read back from it has the bond elsewhere among the interfaces: still
    the same ports, and VLANs and tunnels come and go on it by commit."""
    running = conf(BONDED)
    target = build(render(running).numbered())
    more = render(target).text.replace("\nend", "") + \
        "\ndpip vlan add link bond0 id 5\ndpip addr add 10.5.0.1/24 dev bond0.5\n" \
        "dpip tunnel add gre1 mode gre local 10.0.0.1 remote 10.0.0.2\n"
    target = conf(more)
    done = transform(running, target)
    assert "add VLAN bond0.5" in done and "add tunnel gre1" in done
    assert reads_back(running) == render(target).text     # the same order, too
    with pytest.raises(CommandError, match="gre1 is a tunnel: a VLAN goes on a port or a bond"):
        running.add_vlan(None, "gre1", 7)
    with pytest.raises(CommandError, match="dpdk0 is a slave of bond0: use bond0"):
        running.add_address(IPv4Interface("10.9.0.1/24"), "dpdk0")
    done = transform(running, conf(BONDED))
    assert "delete VLAN bond0.5" in done and "delete tunnel gre1" in done
