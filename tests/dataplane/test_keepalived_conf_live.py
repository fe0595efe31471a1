"""A daemon started on a keepalived.conf (`rlb daemon -f rlb.conf -k keepalived.conf`) and
reloaded by SIGHUP, as keepalived is: its services come from the file; a reload applies
only the differences, in one commit, and a file rlb refuses changes nothing. Each reload
case of keepalived's and DPVS's bug reports is a test here (the real servers' health set
by MISC checks of flag files) or in tests/lab/ha/test_lab_keepalived_conf.py (traffic).
The tutorial's SNAT trick (quorum_up "dpip addr add ...") runs this instance's dpip."""
import os
import signal
import time

import pytest

from support.netns import Daemon, del_ns, make_ns, two_ports, wait

NS, INSTANCE = "rlbt-kaconf", "rlbt-kaconf"
VIP = "10.0.0.100"
RS = ("192.168.100.2", "192.168.100.3")
NET = ("dpip addr add 10.0.0.100/32 dev dpdk1", "dpip route add 10.0.0.0/16 dev dpdk1",
       "dpip route add 192.168.100.0/24 dev dpdk0")


def ka_conf(flags, weights=(100, 100), servers=RS, check_paths=None, extra=""):
    """A keepalived.conf as DPVS users write one: FNAT, a local address group, MISC
    checks of flag files (a server is up while its file exists)."""
    paths = check_paths or flags
    rs = "".join(f"""
    real_server {ip} 80 {{
        weight {w}
        inhibit_on_failure
        MISC_CHECK {{
            misc_path "test -f {paths[ip]}"
            misc_timeout 1
        }}
    }}
""" for ip, w in zip(servers, weights) if ip in servers)
    return f"""! test file
local_address_group laddr_g1 {{
    192.168.100.200 dpdk0
}}
virtual_server {VIP} 80 {{
    delay_loop 1
    lb_algo wrr
    lb_kind FNAT
    protocol TCP
    laddr_group_name laddr_g1
{extra}{rs}}}
"""


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kaconf")
    flags = {ip: tmp / f"up-{ip}" for ip in RS}
    for f in flags.values():
        f.touch()
    ka = tmp / "keepalived.conf"
    ka.write_text(ka_conf(flags))
    make_ns(NS, [("dp0", "tp0"), ("dp1", "tp1")])
    conf = two_ports() + "".join(f"{line}\n" for line in NET)
    daemon = Daemon(NS, INSTANCE, conf, tmp, args=("-k", str(ka))).start()
    daemon.flags, daemon.ka, daemon.tmp = flags, ka, tmp
    try:
        yield daemon
    finally:
        rc = daemon.stop()
        del_ns(NS)
        assert rc == 0, daemon.log.read_text()


def servers(d):
    """{address: (weight now, configured weight)} of the service."""
    svcs = d.ok("ipvsadm -ln")["data"]["services"]
    return {x["addr"]: (x["weight"], x.get("configured_weight", x["weight"]))
            for x in svcs[0]["dests"]} if svcs else {}


def commits(d):
    return len(d.ok("show configuration commits")["data"])


def reload(d, text):
    """Write the file, SIGHUP the daemon, wait for its log to say the reload's result."""
    mark = d.log.read_text().count("reload of")
    d.ka.write_text(text)
    os.kill(d.proc.pid, signal.SIGHUP)
    assert wait(lambda: d.log.read_text().count("reload of") > mark, 10), d.log.read_text()
    return [line for line in d.log.read_text().splitlines() if "reload of" in line][-1]


def test_the_daemon_runs_the_file_s_service_with_its_checks(d):
    assert wait(lambda: servers(d) == {RS[0]: (100, 100), RS[1]: (100, 100)}), servers(d)
    text = d.ok("ipvsadm -ln")["text"]
    assert f"TCP  {VIP}:80 wrr" in text and "FullNat" in text, text
    run = d.ok("show running-config")["text"]
    assert "local-address 192.168.100.200 dev dpdk0" in run, run
    assert "check misc interval 1" in run, run


def test_a_reload_of_the_same_file_changes_nothing(d):
    n = commits(d)
    said = reload(d, d.ka.read_text())
    assert "No changes" in said, said
    assert commits(d) == n


def test_a_weight_changes_in_place(d):
    """keepalived #1354: a reload must update the weights; dpvs #891: without deleting
    and adding the server again (its connections go on)."""
    said = reload(d, ka_conf(d.flags, weights=(100, 40)))
    assert f"change real server {RS[1]}:80" in said and "delete" not in said, said
    assert wait(lambda: servers(d)[RS[1]] == (40, 40)), servers(d)
    reload(d, ka_conf(d.flags))
    assert wait(lambda: servers(d)[RS[1]] == (100, 100)), servers(d)


def test_a_weight_changed_while_the_server_is_down_applies_when_it_is_up(d):
    """keepalived #187: a server down (inhibit: weight 0) whose weight a reload changes
    stays at 0 while down, and comes up with the new weight."""
    d.flags[RS[1]].unlink()
    try:
        assert wait(lambda: servers(d)[RS[1]][0] == 0), servers(d)
        reload(d, ka_conf(d.flags, weights=(100, 9)))
        time.sleep(1.5)
        assert servers(d)[RS[1]] == (0, 9), servers(d)
    finally:
        d.flags[RS[1]].touch()
    assert wait(lambda: servers(d)[RS[1]] == (9, 9)), servers(d)
    reload(d, ka_conf(d.flags))
    assert wait(lambda: servers(d)[RS[1]] == (100, 100)), servers(d)


def test_a_down_server_whose_check_a_reload_fixes_comes_back(d):
    """keepalived #1720: a server down by a wrong check, the check fixed by a reload:
    it comes back (keepalived did not re-add it)."""
    wrong = {**d.flags, RS[1]: d.tmp / "no-such-flag"}
    reload(d, ka_conf(d.flags, check_paths=wrong))
    assert wait(lambda: servers(d)[RS[1]][0] == 0), servers(d)
    reload(d, ka_conf(d.flags))
    assert wait(lambda: servers(d)[RS[1]] == (100, 100)), servers(d)


def test_a_down_server_removed_from_the_file_goes(d):
    """dpvs #333: a reload removed only the live servers; a dead one stayed."""
    d.flags[RS[1]].unlink()
    try:
        assert wait(lambda: servers(d)[RS[1]][0] == 0), servers(d)
        said = reload(d, ka_conf(d.flags, servers=RS[:1]))
        assert f"delete real server {RS[1]}:80" in said, said
        assert set(servers(d)) == {RS[0]}
    finally:
        d.flags[RS[1]].touch()
    reload(d, ka_conf(d.flags))
    assert wait(lambda: servers(d) == {RS[0]: (100, 100), RS[1]: (100, 100)}), servers(d)


def test_many_reloads_end_where_the_file_says(d):
    """keepalived #1904: under frequent reloads a service stopped following the file."""
    for i in range(12):
        reload(d, ka_conf(d.flags, weights=(100, 10 + i), servers=RS if i % 2 else RS[:1]))
    reload(d, ka_conf(d.flags, weights=(100, 77)))
    assert wait(lambda: servers(d) == {RS[0]: (100, 100), RS[1]: (77, 77)}), servers(d)
    reload(d, ka_conf(d.flags))


@pytest.mark.parametrize("bad, where", [
    ("virtual_server 10.0.0.100 80 {\n    lb_kind FNAT\n", ":2: the block of virtual_server"),
    ("virtual_server 10.0.0.100 80 {\n lb_kind FNAT\n syn_proxy\n}\n",
     ":3: keyword syn_proxy is not supported"),
    ("virtual_server 10.0.0.100 80 {\n lb_kind FNAT\n lb_algo nosuch\n}\n",
     ":3: Scheduler not found: nosuch"),
])
def test_a_file_rlb_refuses_changes_nothing_and_names_the_line(d, bad, where):
    before, n = d.ok("show running-config")["text"], commits(d)
    said = reload(d, bad)
    assert "refused, nothing changed" in said and f"{d.ka}{where}" in said, said
    assert d.ok("show running-config")["text"] == before
    assert commits(d) == n
    reload(d, ka_conf(d.flags))


def test_quorum_commands_run_this_instance_s_dpip(d):
    """The tutorial's trick: quorum_up "dpip addr add ..." (and quorum_down) in the file;
    the daemon's commands find a dpip that reaches this instance."""
    extra = ('    quorum 150\n    quorum_up "dpip addr add 10.0.9.9/32 dev dpdk1"\n'
             '    quorum_down "dpip addr del 10.0.9.9/32 dev dpdk1"\n')
    reload(d, ka_conf(d.flags, extra=extra))
    addrs = lambda: d.ok("dpip addr show")["text"]      # noqa: E731
    try:
        d.flags[RS[1]].unlink()                 # live weight 100 < 150: quorum lost
        assert wait(lambda: servers(d)[RS[1]][0] == 0), servers(d)
        d.flags[RS[1]].touch()                  # back: quorum_up adds the address
        assert wait(lambda: "10.0.9.9" in addrs(), 15), d.log.read_text()[-2000:]
        d.flags[RS[1]].unlink()                 # lost again: quorum_down removes it
        assert wait(lambda: "10.0.9.9" not in addrs(), 15), d.log.read_text()[-2000:]
    finally:
        d.flags[RS[1]].touch()
        reload(d, ka_conf(d.flags))


SNAT_WAN = "10.0.9.9"
SNAT_ALPHA = f"""
virtual_server match SNAT {{
    protocol UDP
    delay_loop 1
    lb_algo rr
    lb_kind SNAT
    src-range 192.168.100.0-192.168.100.254
    oif dpdk1
    alpha
    omega
    quorum 1
    quorum_up "dpip addr add {SNAT_WAN}/24 dev dpdk1 sapool;"
    quorum_down "dpip addr del {SNAT_WAN}/24 dev dpdk1;"

    real_server {SNAT_WAN} 0 {{
        weight 4
        MISC_CHECK {{
           misc_path "exit 0"
           misc_timeout 1
        }}
    }}
}}
"""


def test_the_tutorial_s_snat_alpha_omega_trick(d):
    """The tutorial's SNAT service whose WAN address comes from quorum_up: the real
    server (the WAN address, not ours yet) waits at weight 0, its check passes, quorum_up
    adds the address with this instance's dpip, and the server takes flows; the service
    removed by a reload, omega runs quorum_down, which takes the address away."""
    said = reload(d, ka_conf(d.flags) + SNAT_ALPHA)
    assert "refused" not in said, said

    def snat_weight():
        for s in d.ok("ipvsadm -ln")["data"]["services"]:
            for x in s["dests"]:
                if x["addr"] == SNAT_WAN:
                    return x["weight"]
        return None
    assert wait(lambda: SNAT_WAN in d.ok("dpip addr show")["text"], 15), \
        d.log.read_text()[-2000:]
    assert wait(lambda: snat_weight() == 4), d.ok("ipvsadm -ln")["text"]   # sapool: usable
    reload(d, ka_conf(d.flags))
    assert wait(lambda: SNAT_WAN not in d.ok("dpip addr show")["text"], 15), \
        d.log.read_text()[-2000:]
