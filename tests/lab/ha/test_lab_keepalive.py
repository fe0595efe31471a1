"""Master/backup for real ("fnat-keepalive"): lb1 and lb2 each run stock keepalived from
their `vrrp instance VI_1` on dpdk0.kni; lb1 (priority 100) is MASTER and holds the VIP
and the local addresses (the kernel on its kni answers ARP for them), lb2 is BACKUP.
curl from the client is served by lb1; kill -9 of lb1's daemon takes its keepalived
with it and lb2 takes over (gratuitous ARP: the client's entry moves to lb2's MAC);
lb1 back preempts. A section keepalived or rlb refuses changes nothing; a change is a
reload of the running keepalived."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlb import lab
from rlb.control import paths
from rlb.lab import manage, state
from rlb.lab.topologies import KA_VIP, get
from rlb.routing.frr import alive
from support.cluster import in_node, pair_up, rlb, roles, until, vrrp

TOPO = get("fnat-keepalive-rlb")
LIPS = ["192.168.100.200", "192.168.100.201"]


@pytest.fixture(scope="module")
def ka_lab():
    with pair_up(TOPO):
        yield


def kni_addrs(node):
    out = in_node(node, "ip", "-j", "addr", "show", "dev", "dpdk0.kni").stdout
    return {a["local"] for i in json.loads(out) for a in i["addr_info"] if a["family"] == "inet"}


def mac(node):
    out = in_node(node, "ip", "-j", "link", "show", "dev", "veth-dpdk0").stdout
    return json.loads(out)[0]["address"]


def client_mac_of_vip():
    out = in_node("client", "ip", "-j", "neigh", "show", KA_VIP).stdout
    got = json.loads(out or "[]")
    return got[0].get("lladdr") if got else None


def curl():
    return in_node("client", "curl", "-s", "-m", "2", f"http://{KA_VIP}/").stdout


def keepalived_pid(node):
    pidfile = Path(paths.ha_dir(state.instance(node))) / "keepalived.pid"
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


WHO_HAS = f"""
from scapy.all import ARP, Ether, sendp
for lip in {LIPS!r}:
    sendp(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, psrc="192.168.100.2", pdst=lip),
          iface="eth0", verbose=0)
"""


def arp_to_kni(node):
    return rlb(node, "dpip link show -s", as_json=True)["reasons"]["arp_vrrp_kni"]


def test_lb1_is_master_holds_the_addresses_and_serves(ka_lab):
    v = vrrp("lb1")["instances"][0]
    assert (v["name"], v["vrid"], v["priority"]) == ("VI_1", 123, 100)
    assert v["addresses"] == [KA_VIP, *LIPS]
    assert {KA_VIP, *LIPS} <= kni_addrs("lb1")
    assert not {KA_VIP, *LIPS} & kni_addrs("lb2")          # the BACKUP holds none
    # a real server asks for the local addresses (broadcast: both LBs see it); each
    # data plane passes that ARP to its kni, where only the MASTER's kernel answers
    before = {n: arp_to_kni(n) for n in TOPO.lbs}
    r = in_node("rs1", sys.executable, "-c", WHO_HAS)
    assert r.returncode == 0, r.stderr
    assert until(lambda: all(arp_to_kni(n) >= before[n] + 2 for n in TOPO.lbs), 5)
    for _ in range(2):                                  # rr: one connection to each
        assert curl().startswith("Your ip:port : 192.168.100.146:")
    seen = [n.get("lladdr") for rs in ("rs1", "rs2")
            for n in json.loads(in_node(rs, "ip", "-j", "neigh").stdout)
            if n["dst"] in LIPS and n.get("lladdr")]
    assert seen and set(seen) == {mac("lb1")}, seen     # the servers answer the MASTER
    assert client_mac_of_vip() == mac("lb1")
    assert "MASTER" in rlb("lb1", "show vrrp").upper()


def test_an_incomplete_section_is_refused_at_commit_and_nothing_changes(ka_lab):
    before = rlb("lb1", "show running-config")
    r = subprocess.run([sys.executable, "-m", "rlb", "-N", state.instance("lb1"),
                        "-c", "configure", "-c", "vrrp instance VI_2", "-c", "interface dpdk0",
                        "-c", "commit"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "vrrp instance VI_2: no virtual-router-id" in r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    assert rlb("lb1", "show running-config") == before


def test_a_change_is_a_reload_and_a_rollback_puts_it_back(ka_lab):
    pid = keepalived_pid("lb2")
    conf = Path(paths.ha_dir(state.instance("lb2"))) / "keepalived.conf"
    rlb("lb2", "configure", "vrrp instance VI_1", "priority 90", "commit")
    assert until(lambda: "priority 90" in conf.read_text(), 10)
    assert keepalived_pid("lb2") == pid                     # reloaded, not restarted
    assert until(lambda: roles() == ("master", "backup"), 10)
    rlb("lb2", "configure", "rollback 1", "commit")
    assert until(lambda: "priority 80" in conf.read_text(), 10)
    assert roles() == ("master", "backup")


def test_kill_9_of_the_master_lb2_takes_over_and_lb1_back_preempts(ka_lab):
    assert until(lambda: roles() == ("master", "backup"), 10)
    ka1 = keepalived_pid("lb1")
    os.kill(lab.status()["processes"]["lb1"]["pid"], signal.SIGKILL)
    t0 = time.monotonic()
    assert until(lambda: curl().startswith("Your ip"), 5, step=0.05)
    took = time.monotonic() - t0
    print(f"\nkill -9 of the master's daemon -> answered through lb2 in {took:.3f} s")
    assert took <= 1.5, took             # VRRPv3, advert 0.2 s: priority 0 at once
    assert vrrp("lb2")["instances"][0]["state"] == "master"
    assert {KA_VIP, *LIPS} <= kni_addrs("lb2")
    assert client_mac_of_vip() == mac("lb2")                # lb2's gratuitous ARP
    assert until(lambda: not alive(ka1), 5)                 # keepalived went with lb1
    manage.restart_lb(node="lb1")
    assert until(lambda: roles() == ("master", "backup"), 15), (vrrp("lb1"), vrrp("lb2"))
    assert until(lambda: client_mac_of_vip() == mac("lb1"), 5)
    assert curl().startswith("Your ip:port : 192.168.100.146:")
    assert not {KA_VIP, *LIPS} & kni_addrs("lb2")
