"""The shell's IOS/FRR conveniences against a real daemon and data plane: `| count`,
`| begin`, `| section` (also through `rlb -c`), `terminal length`, `do`, `show version`,
`show startup-config`, `clear ip vs counters` zeroing the engine's counters, `show users`
with every open session, and `?` explaining each mode and scheduler.

The tester plays the client on dpdk1's wire (tp1), as in test_commit_live.py."""
import asyncio
import re
import subprocess
import sys
import time

import asyncssh
from functools import partial

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from support import netns
from rlb.lab.topologies import RS1, get
from support.netns import Daemon, Wire, del_ns, fnat_two_port, in_netns, lines, make_ns, sh

from rlb import plugins

NS, INSTANCE = "rlbt-shell", "rlbt-shell"
VIP, CLIENT = "10.0.0.100", "10.0.0.48"
# the tutorial's FNAT two-arm with one real server, and a wrr service on port 8080
BASE = fnat_two_port(servers=(RS1,)) + lines(get("fnat-two-arm").script(
    net=False, vport=8080, sched="wrr", servers=(RS1,), rs_port=80,
    laddrs=("192.168.100.201",)))


Session = partial(netns.Session, INSTANCE)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    make_ns(NS, [("dp0", "tp0"), ("dp1", "tp1")])
    mac = lambda dev: sh("cat", f"/sys/class/net/{dev}/address", ns=NS).stdout.strip()
    conf = BASE + (f"dpip neigh add 192.168.100.2 lladdr {mac('tp0')} dev dpdk0\n"
                   f"dpip neigh add 10.0.0.48 lladdr {mac('tp1')} dev dpdk1\n")
    d = Daemon(NS, INSTANCE, conf, tmp_path_factory.mktemp("shell")).start()
    d.macs = {dev: mac(dev) for dev in ("dp1", "tp1")}
    try:
        yield d
    finally:
        rc = d.stop()
        del_ns(NS)
        assert rc == 0, d.log.read_text()


def rlb_c(*commands):
    args = [a for c in commands for a in ("-c", c)]
    return subprocess.run([sys.executable, "-m", "rlb", "-N", INSTANCE, *args],
                          capture_output=True, text=True, timeout=60, check=False)


def svc_stats(d):
    return {s["port"]: s["stats"] for s in d.ok("ipvsadm -ln")["data"]["services"]}


def syns(d, port, n):
    """n SYNs from the client to VIP:port; -> the service's inpkts once they are counted."""
    wire = Wire(NS, "tp1")
    try:
        before = svc_stats(d)[port]["inpkts"]
        for i in range(n):
            wire.send(bytes(Ether(src=d.macs["tp1"], dst=d.macs["dp1"]) /
                            IP(src=CLIENT, dst=VIP) / TCP(sport=42000 + i, dport=port,
                                                          flags="S", seq=1)))
        end = time.monotonic() + 5
        while svc_stats(d)[port]["inpkts"] < before + n and time.monotonic() < end:
            time.sleep(0.05)
        return svc_stats(d)[port]["inpkts"]
    finally:
        wire.close()


def test_filters_in_the_shell_and_with_rlb_c(lab):
    s = Session()
    try:
        text = s.ok("show running-config")["text"]
        vs = s.ok("show running-config | section virtual-server tcp 10.0.0.100:8080")["text"]
        assert vs.splitlines() == ["virtual-server tcp 10.0.0.100:8080", " scheduler wrr",
                                   " local-address 192.168.100.201 dev dpdk0",
                                   " real-server 192.168.100.2:80 mode fnat weight 1"]
        begun = s.ok("show running-config | begin ^virtual-server")["text"]
        assert begun == text[text.index("virtual-server"):].rstrip("\n")
        assert s.ok("show running-config | count")["text"] == str(len(text.splitlines()))
    finally:
        s.close()
    r = rlb_c("show running-config | section ^virtual | include real-server | count",
              "show running-config | begin ^interface dpdk1 | count ^ ip address")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["2", "1"]


def test_terminal_length_and_do(lab):
    s = Session()
    try:
        r = s.ok("terminal length 0")
        assert r["rows"] == 0
        assert s.ok("terminal width 132")["columns"] == 132
        s.ok("enable", "configure", "virtual-server tcp 10.0.0.100:80")
        r = s.ok("do show ip vs | include 10.0.0.100:8080")
        assert r["prompt"].endswith("(config-vs)#") and "10.0.0.100:8080 wrr" in r["text"]
        assert "change no configuration" in s("do dpip addr add 10.0.0.101/32 dev dpdk1")["error"]
        assert "10.0.0.101" not in s.ok("do show ip address")["text"]
        r = s.ok("do show running-config | section virtual | count")
        assert int(r["text"]) > 4 and r["rows"] == 0
        s.ok("end")
    finally:
        s.close()


def test_show_version(lab):
    r = lab.ok("show version")
    data = r["data"]
    # rte_version() of the DPDK the daemon runs: the Debian package's
    pkg = sh("pkg-config", "--modversion", "libdpdk").stdout.strip()
    assert data["dpdk"] == f"DPDK {pkg}" or data["dpdk"].startswith(f"DPDK {pkg}."), data
    assert data["dataplane"] is True and data["workers"] == 1
    assert [p["name"] for p in data["ports"]] == ["dpdk0", "dpdk1"]
    assert re.search(r"instance rlbt-shell uptime is 0 day\(s\), 00:0\d:\d\d", r["text"])
    assert "1 worker(s)\n" in r["text"] and "net_af_packet1,iface=dp1" in r["text"]


def test_show_startup_config_follows_write_memory(lab):
    assert lab.ok("show startup-config")["text"] == lab.conf.read_text().rstrip("\n")
    s = Session()
    try:
        s.ok("enable", "configure", "do write memory", "end")
        assert s.ok("show startup-config")["text"] == s.ok("show running-config")["text"]
    finally:
        s.close()


def test_clear_ip_vs_counters_of_one_service(lab):
    assert syns(lab, 80, 3) >= 3 and syns(lab, 8080, 2) >= 2
    s = Session()
    try:
        # operational: from configuration mode too, on the running instance
        s.ok("enable", "configure", "clear ip vs counters tcp 10.0.0.100:80", "end")
    finally:
        s.close()
    stats = svc_stats(lab)
    assert stats[80]["inpkts"] == 0 and stats[80]["conns"] == 0
    assert stats[8080]["inpkts"] >= 2                      # the other one kept its own
    assert not lab.call("clear ip vs counters tcp 10.0.0.100:81")["ok"]


def test_clear_ip_vs_counters_of_all_services(lab):
    assert syns(lab, 80, 1) >= 1 and syns(lab, 8080, 1) >= 1
    lab.ok("clear ip vs counters")
    assert all(st["inpkts"] == 0 for st in svc_stats(lab).values())


def test_show_users_lists_every_session(lab):
    console, other = Session(tty="pts/9"), Session()
    try:
        console.ok("enable")
        other.ok("enable", "configure")
        time.sleep(1.1)
        r = console.ok("show users")
        rows = r["data"]["sessions"]
        mine = [row for row in rows if row["self"]]
        assert len(mine) == 1 and mine[0]["line"] == "console" and mine[0]["mode"] == "enable"
        assert mine[0]["peer"].startswith("pts/9 pid ") and mine[0]["idle"] == 0
        idle = [row for row in rows if row["mode"] == "config"]
        assert len(idle) == 1 and idle[0]["line"] == "socket" and idle[0]["idle"] >= 1
        assert len(rows) == 2, rows
        assert re.search(r"^\* +console +root +enable +pts/9 pid \d+ ", r["text"], re.MULTILINE)
        # an `rlb -c` is a session too, while it runs: it sees itself and the two others
        out = rlb_c("show users")
        assert out.returncode == 0, out.stderr
        assert re.search(r"^\* +socket +root +exec +pid \d+ ", out.stdout, re.MULTILINE), out.stdout
        assert len([line for line in out.stdout.splitlines() if " pid " in line]) == 3
    finally:
        console.close()
        other.close()


ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Z0-9]|\x1b[=>]|\r|\x07")


def test_show_users_sees_an_ssh_login(lab):
    """A real ssh login (asyncssh as the client, inside the namespace) is a session in
    `show users` of the others, with its peer address and mode."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    r = rlb_c("username alice privilege admin",
              f"username alice key {key.export_public_key().decode().strip()}",
              "ssh listen 127.0.0.1 2222")
    assert r.returncode == 0, r.stderr
    seen = {}

    async def login():
        for _ in range(50):                     # the daemon starts listening
            if "listening" in lab.ok("show ssh")["text"]:
                break
            await asyncio.sleep(0.1)
        async with asyncssh.connect("127.0.0.1", 2222, username="alice", client_keys=[key],
                                    known_hosts=None, agent_path=None) as conn:
            proc = await conn.create_process(term_type="xterm", term_size=(160, 40))
            screen = ""

            async def until(text):
                nonlocal screen
                while text not in ANSI.sub("", screen):
                    screen += await asyncio.wait_for(proc.stdout.read(65536), 10)
            await until("rlbt-shell>")
            proc.stdin.write("enable\r")
            await until("rlbt-shell#")
            seen["other"] = lab.ok("show users")
            proc.stdin.write("show users | include ssh\r")
            await until("alice")
            await until("rlbt-shell#")
            seen["own"] = ANSI.sub("", screen)
            proc.stdin.write("exit\r")
            await asyncio.wait_for(proc.wait_closed(), 10)

    try:
        with in_netns(NS):
            asyncio.run(asyncio.wait_for(login(), 60))
    finally:
        rlb_c("no ssh listen", "no username alice")
    rows = [row for row in seen["other"]["data"]["sessions"] if row["line"] == "ssh"]
    assert len(rows) == 1 and rows[0]["user"] == "alice" and rows[0]["peer"] == "127.0.0.1"
    assert rows[0]["mode"] == "enable" and not rows[0]["self"]
    assert re.search(r"^\* +ssh +alice +enable +127\.0\.0\.1 ", seen["own"], re.MULTILINE), seen["own"]
    assert not [row for row in lab.ok("show users")["data"]["sessions"] if row["line"] == "ssh"]


def test_help_explains_each_mode_and_scheduler(lab):
    s = Session()
    try:
        s.ok("enable", "configure", "virtual-server tcp 10.0.0.100:80")
        modes = s.complete("real-server 192.168.100.9:80 mode ")
        scheds = s.complete("scheduler ")
        s.ok("end")
    finally:
        s.close()
    assert {n: h for n, h in modes.items() if n != "WORD"} == {
        n: f"{m.display} (ipvsadm {m.flag})" for n, m in plugins.modes().items()}
    assert {n: h for n, h in scheds.items() if n != "WORD"} == {
        n: sc.help for n, sc in plugins.schedulers().items()}
