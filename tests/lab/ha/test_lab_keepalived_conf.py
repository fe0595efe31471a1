"""The tutorial's keepalived.conf on both LBs ("fnat-keepalive" --tutorial, `rlb keepalived
load`): VRRP elects lb1, the service, its local addresses and checks are the file's, curl
answers as the tutorial shows. Reloads of the file under traffic (16 keep-alive
sessions): keepalived #1228 (a removed real server broke its requests) and dpvs #891 (a
changed service was deleted and added again) lose nothing; keepalived #2159 (a reload
that removes one VRRP instance moved the others' addresses) leaves VI_1 where it is."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rlb.control import paths
from rlb.lab import state
from rlb.lab.topologies import KA_VIP, get
from support.cluster import Sessions, failures, in_node, pair_up, rlb, until, vrrp

TOPO = get("fnat-keepalive")


@pytest.fixture(scope="module")
def ka_lab():
    with pair_up(TOPO):
        yield


def load(node, text):
    """The LB's keepalived.conf rewritten and loaded again (`rlb keepalived load`)."""
    path = state.lb_keepalived(node)
    path.write_text(text)
    r = subprocess.run([sys.executable, "-m", "rlb", "-N", state.instance(node), "keepalived",
                        "load", str(path)], capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout + r.stderr


def original(node):
    return TOPO.node(node).keepalived


def test_the_tutorial_s_file_runs_as_the_tutorial_shows(ka_lab):
    text = rlb("lb1", "ipvsadm -ln")
    assert f"TCP  {KA_VIP}:80 rr" in text, text
    for rs in ("192.168.100.2:80", "192.168.100.3:80"):
        assert f"-> {rs}" in text and "FullNat 100" in text, text
    for _ in range(2):
        r = in_node("client", "curl", "-s", "-m", "3", f"http://{KA_VIP}/")
        assert r.stdout.startswith("Your ip:port : 192.168.100.146:"), r.stdout + r.stderr
    v = vrrp("lb1")["instances"][0]
    assert (v["name"], v["vrid"], v["priority"]) == ("VI_1", 123, 100)
    assert vrrp("lb2")["instances"][0]["priority"] == 80
    conf = (Path(paths.ha_dir(state.instance("lb1"))) / "keepalived.conf").read_text()
    assert "advert_int 1" in conf and "version 2" in conf and "auth_pass ****" in conf
    health = rlb("lb1", "show ip vs health", as_json=True)[0]
    assert [s["state"] for s in health["servers"]] == ["UP", "UP"], health


def test_a_reload_that_removes_a_real_server_drains_it(ka_lab):
    """keepalived #1228: requests on the removed server's connections go on."""
    with Sessions(8, 45000, vip=KA_VIP) as s:
        without = original("lb1").split("    real_server 192.168.100.3 80")[0] + "}\n"
        rc, said = load("lb1", without)
        assert rc == 0 and "delete real server 192.168.100.3:80" in said, said
        res = s.result()
    assert res["failed"] == 0 and res["connections"] == 16, failures(res)
    rc, said = load("lb1", original("lb1"))
    assert rc == 0, said


def test_a_reload_that_changes_the_service_keeps_its_connections(ka_lab):
    """dpvs #891: scheduler and weights changed in place, no delete/add."""
    changed = original("lb1").replace("lb_algo rr", "lb_algo wrr").replace("weight 100",
                                                                            "weight 60")
    with Sessions(6, 45100, vip=KA_VIP) as s:
        rc, said = load("lb1", changed)
        done = [line.split()[0] for line in said.splitlines() if line.startswith("  ")]
        assert rc == 0 and done and set(done) == {"change"}, said
        res = s.result()
    assert res["failed"] == 0 and res["connections"] == 16, failures(res)
    assert f"TCP  {KA_VIP}:80 wrr" in rlb("lb1", "ipvsadm -ln")
    rc, said = load("lb1", original("lb1"))
    assert rc == 0, said


def test_removing_another_vrrp_instance_leaves_vi_1_alone(ka_lab):
    """keepalived #2159: a reload removing one instance moved every instance's
    addresses. Here VI_2 comes and goes; VI_1 stays MASTER all along."""
    since = vrrp("lb1")["instances"][0]["for"]
    second = original("lb1") + """
vrrp_instance VI_2 {
    state BACKUP
    interface dpdk0.kni
    virtual_router_id 124
    priority 50
    advert_int 1
    virtual_ipaddress {
        192.168.100.253
    }
}
"""
    with Sessions(6, 45200, vip=KA_VIP) as s:
        rc, said = load("lb1", second)
        assert rc == 0, said
        assert until(lambda: len(vrrp("lb1")["instances"]) == 2, 10)
        rc, said = load("lb1", original("lb1"))
        assert rc == 0, said
        res = s.result()
    assert res["failed"] == 0, failures(res)
    v = vrrp("lb1")["instances"]
    assert [i["name"] for i in v] == ["VI_1"] and v[0]["state"] == "master", v
    assert v[0]["for"] >= since, (since, v)           # no transition since
    out = in_node("lb1", "ip", "-j", "addr", "show", "dev", "dpdk0.kni").stdout
    have = {a["local"] for i in json.loads(out) for a in i["addr_info"]}
    assert KA_VIP in have and "192.168.100.253" not in have, have


def test_a_file_rlb_refuses_changes_nothing(ka_lab):
    before = rlb("lb1", "show running-config")
    rc, said = load("lb1", original("lb1").replace("    advert_int 1\n",
                                                   "    advert_int 1\n    track_script chk\n"))
    line = original("lb1").splitlines().index("    advert_int 1") + 2
    assert rc == 1 and f"lb1-keepalived.conf:{line}: keyword track_script is not supported" \
        in said, said
    assert "Traceback" not in said
    assert rlb("lb1", "show running-config") == before
    state.lb_keepalived("lb1").write_text(original("lb1"))
