"""Health in the configuration: the check clauses and the service's policy read, print
back byte for byte, go through a commit without touching what did not change, and a
bad one is refused with its reason."""
from __future__ import annotations

import pytest

from rlb.commands.running import render
from rlb.control.commit import apply, build
from rlb.control.config import ConfigError, check
from rlb.health import checkers
from rlb.health.config import Clause, clause, quote

BASE = """dataplane
 no-kni
 port dpdk0 net_tap0
 port dpdk1 net_tap1
!
dpip addr add 10.0.0.100/32 dev dpdk1
dpip route add 192.168.100.0/24 dev dpdk0
ipvsadm -A -t 10.0.0.100:80 -s rr
ipvsadm -a -t 10.0.0.100:80 -r 192.168.100.2:80 -b
ipvsadm -a -t 10.0.0.100:80 -r 192.168.100.3:80 -b
ipvsadm --add-laddr -z 192.168.100.200 -t 10.0.0.100:80 -F dpdk0
"""

HEALTH = """virtual-server tcp 10.0.0.100:80
 real-server 192.168.100.2:80 check tcp interval 1 rise 2 fall 2
 real-server 192.168.100.3:80 disabled check http path /health status 200 interval 2 timeout 1 rise 2 fall 3 slow-start 10
 check https path /ok host www.example.com regex "all (good|fine)" interval 3
 quorum 2 hysteresis 1
 quorum-up dpip addr add 10.0.0.101/32 dev dpdk1
 quorum-down logger -t rlb "quorum lost"
 sorry-server 192.168.100.9:8080 weight 5
 alpha
 omega
 on-failure remove
"""

# what show running-config prints of it (settings at their defaults left out)
PRINTED = """virtual-server tcp 10.0.0.100:80
 scheduler rr
 local-address 192.168.100.200 dev dpdk0
 real-server 192.168.100.2:80 mode fnat weight 1 check tcp interval 1 rise 2
 real-server 192.168.100.3:80 mode fnat weight 1 disabled check http rise 2 fall 3 slow-start 10 path /health status 200
 check https interval 3 path /ok host www.example.com regex "all (good|fine)"
 quorum 2 hysteresis 1
 quorum-up dpip addr add 10.0.0.101/32 dev dpdk1
 quorum-down logger -t rlb "quorum lost"
 alpha
 omega
 on-failure remove
 sorry-server 192.168.100.9:8080 mode fnat weight 5
!"""


def model(text):
    return check(list(enumerate(text.splitlines(), 1)), "t.conf")


def section(m) -> str:
    lines = render(m).lines()
    start = lines.index("virtual-server tcp 10.0.0.100:80")
    return "\n".join(lines[start:lines.index("!", start) + 1])


def test_every_health_line_prints_back_and_reads_back_the_same():
    m = model(BASE + HEALTH)
    assert section(m) == PRINTED
    again = build(render(m).numbered())
    assert render(again).canonical() == render(m).canonical()
    svc = next(iter(m.services.table.values()))
    rs1, rs2, sorry = svc.dests
    assert rs1.check.kind == "tcp" and rs1.check.rise == 2 and rs1.check.interval == 1
    assert rs2.disabled and rs2.check.slowstart == 10 and rs2.check.check.get("status") == \
        ((200, 200),)
    assert sorry.sorry and sorry.weight == 5 and sorry.port == 8080
    p = svc.health
    assert (p.quorum, p.hysteresis, p.alpha, p.omega, p.inhibit) == (2, 1, True, True, False)
    assert p.check.kind == "https" and p.check.check.get("regex").pattern == "all (good|fine)"
    assert p.quorum_down == 'logger -t rlb "quorum lost"'


@pytest.mark.parametrize("kind", list(checkers.CHECKERS))
def test_each_kind_with_every_setting_reads_back(kind):
    values = {"interval": "4", "rise": "3", "fall": "5", "slow-start": "7", "port": "8080",
              "source": "192.168.100.1", "timeout": "2", "path": "/a b", "host": "h.example",
              "status": "200-204,301", "regex": 'x "y" \\d', "regex-no-match": "yes",
              "digest": "0123456789abcdef0123456789abcdef", "payload": "00ff",
              "require-reply": "any", "command": "/bin/sh -c 'exit 0'", "dynamic": "yes"}
    if kind in ("http", "https"):
        values["path"] = "/health"
    names = {st.name for st in checkers.CHECKERS[kind].all_settings} | \
        {"interval", "rise", "fall", "slow-start"}
    c = clause(kind, {k: v for k, v in values.items() if k in names})
    line = f" real-server 192.168.100.2:80 check {c.text}"
    m = model(BASE + "virtual-server tcp 10.0.0.100:80\n" + line + "\n")
    got = next(iter(m.services.table.values())).dests[0]
    assert got.check == c
    assert render(build(render(m).numbered())).canonical() == render(m).canonical()


def test_quote_round_trips_what_the_tokenizer_reads():
    for text in ("plain", "two words", 'a "quoted" one', "back\\slash", ""):
        assert quote(text) == text or quote(text).startswith('"')


def test_settings_without_a_kind_change_the_servers_clause():
    m = model(BASE + HEALTH + " real-server 192.168.100.2:80 fall 4 interval 0.5\n")
    rs1 = next(iter(m.services.table.values())).dests[0]
    assert (rs1.check.kind, rs1.check.rise, rs1.check.fall, rs1.check.interval) == \
        ("tcp", 2, 4, 0.5)
    assert rs1.check.timing.timeout == 0.5          # the timeout's default fits the interval


@pytest.mark.parametrize("line, why", [
    (" real-server 192.168.100.2:80 check tcp interval 0", "interval"),
    (" real-server 192.168.100.2:80 check tcp interval 1 timeout 1.5", "longer than interval"),
    (" real-server 192.168.100.2:80 check tcp path /x", "unknown setting 'path'"),
    (" real-server 192.168.100.2:80 check nosuch", "Invalid input"),
    (" real-server 192.168.100.2:80 rise 2", "no check to set it on"),
    (" real-server 192.168.100.2:80 check http status 99", "status"),
    (" real-server 192.168.100.2:80 check udp payload xyz", "hex"),
    (" real-server 192.168.100.2:80 check misc", "command"),
    (" check tcp fall 0", "fall"),
    (" quorum 0", "quorum"),
    (" real-server 192.168.100.2:80 check https", "port 80, which speaks plain HTTP"),
    (" check https path /", "port 80, which speaks plain HTTP"),
    (" sorry-server 192.168.100.2:80", "is a real server"),
])
def test_bad_clauses_are_refused_with_the_reason(line, why):
    with pytest.raises(ConfigError) as e:
        model(BASE + "virtual-server tcp 10.0.0.100:80\n" + line + "\n")
    assert why in str(e.value) and ":13:" in str(e.value)


def test_no_forms_take_back_what_they_set():
    m = model(BASE + HEALTH + "\n".join([
        "virtual-server tcp 10.0.0.100:80", " no real-server 192.168.100.2:80 check",
        " real-server 192.168.100.3:80 enabled", " no check", " no quorum", " no quorum-up",
        " no quorum-down", " no sorry-server", " no alpha", " no omega",
        " on-failure inhibit", ""]))
    svc = next(iter(m.services.table.values()))
    assert [d.check for d in svc.dests][0] is None and not svc.dests[1].disabled
    assert len(svc.dests) == 2 and svc.health is None
    assert svc.checked                      # rs2's own check stays


def test_the_sorry_server_moves_and_is_no_ipvsadm_rule():
    m = model(BASE + "virtual-server tcp 10.0.0.100:80\n sorry-server 192.168.100.9:80\n"
              " sorry-server 192.168.100.10:80\n")
    svc = next(iter(m.services.table.values()))
    assert [str(d.addr) for d in svc.dests if d.sorry] == ["192.168.100.10"]
    assert m.services.listed(svc) == [d for d in svc.dests if not d.sorry]
    from rlb.commands.ipvsadm import save_lines
    assert not any("192.168.100.10" in line for line in save_lines(m.services))


def test_a_commit_changes_only_the_health_that_changed():
    running = model(BASE + HEALTH)
    target = model(BASE + HEALTH + "virtual-server tcp 10.0.0.100:80\n"
                   " real-server 192.168.100.3:80 fall 4\n")
    done = apply(running, target)
    assert done == ["change real server 192.168.100.3:80 of TCP 10.0.0.100:80"]
    target = model(BASE + HEALTH + "virtual-server tcp 10.0.0.100:80\n"
                   " real-server 192.168.100.3:80 fall 4\n quorum 3\n")
    assert apply(running, target) == ["set health of TCP 10.0.0.100:80"]


def test_ipvsadm_lines_keep_the_check():
    m = model(BASE + HEALTH + "ipvsadm -e -t 10.0.0.100:80 -r 192.168.100.2:80 -b -w 7\n")
    rs1 = next(iter(m.services.table.values())).dests[0]
    assert rs1.weight == 7 and isinstance(rs1.check, Clause) and rs1.check.kind == "tcp"
