"""rlb.control.config: sections, FILE:LINE: errors, all or nothing, and the tutorial's
FNAT two-arm `dpip` lines shown as the tutorial prints them."""
import re
from ipaddress import IPv4Address, IPv4Network

import pytest

from rlb.control.config import ConfigError, check, read_file, run, run_lines
from rlb.commands.base import Context
from rlb.lab.topologies import get
from rlb.model.model import LPORT_RANGE, CommandError, Model, Settings
from support import tutorial

GOOD = """\
# rlb instance for the FNAT two-arm example
dataplane
 workers 2
 port dpdk0 net_af_packet0,iface=eth0
 port dpdk1 net_af_packet1,iface=eth1
 pool-size 8192
 route-table-size 64
 neigh-table-size 256
 neigh-timeout 30
 idle-sleep 100
 memory 256
 busy-poll
 forwarding
!

# add VIP to WAN interface
./dpip addr add 10.0.0.100/32 dev dpdk1
"""


def write(tmp_path, text, name="rlb.conf"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def check_text(tmp_path, text):
    path = write(tmp_path, text)
    return check(read_file(path), path), path


def lines(text):
    return list(enumerate(text.splitlines(), 1))


def test_good_file(tmp_path):
    model, _ = check_text(tmp_path, GOOD.replace("./dpip", "dpip"))
    s = model.settings
    assert (s.workers, s.pool_size, s.route_table_size, s.neigh_table_size, s.neigh_timeout,
            s.idle_sleep, s.memory, s.busy_poll, s.forwarding, s.kni) == \
        (2, 8192, 64, 256, 30, 100, 256, True, True, True)
    assert [(p.name, p.devargs, p.index) for p in model.ports.values()] == \
        [("dpdk0", "net_af_packet0,iface=eth0", 0), ("dpdk1", "net_af_packet1,iface=eth1", 1)]
    assert [str(a.iface) for a in model.addresses] == ["10.0.0.100/32"]
    assert model.engine is None


def test_defaults_without_a_dataplane_section():
    model = check([], "empty.conf")
    assert model.settings == Settings() and model.ports == {}


def test_comments_and_blank_lines_anywhere():
    text = ("\n# top\n   \n! bang\ndataplane\n # indented comment\n\n port dpdk0 net_tap0\n"
            "\t# tab comment\n workers 3\n!\n\n# end\n")
    model = check(lines(text), "c.conf")
    assert list(model.ports) == ["dpdk0"] and model.settings.workers == 3


def test_bang_closes_the_section():
    text = "dataplane\n port dpdk0 net_tap0\n!\n workers 2\n"
    with pytest.raises(ConfigError, match=r"^s\.conf:4: Unknown command"):
        check(lines(text), "s.conf")


def test_unindented_line_closes_the_section():
    text = "dataplane\n port dpdk0 net_tap0\ndpip addr add 10.0.0.1/24 dev dpdk0\n workers 2\n"
    with pytest.raises(ConfigError, match=r"^s\.conf:4: Unknown command"):
        check(lines(text), "s.conf")
    # and an unindented setting is not in the section either
    with pytest.raises(ConfigError, match=r"^s\.conf:2: Unknown command"):
        check(lines("dataplane\nworkers 2\n"), "s.conf")


def test_a_section_may_be_reopened():
    text = "dataplane\n port dpdk0 net_tap0\n!\ndataplane\n port dpdk1 net_tap1\n"
    assert list(check(lines(text), "r.conf").ports) == ["dpdk0", "dpdk1"]


def test_run_lines_leaves_the_context_at_the_top():
    ctx = Context(Model())
    run_lines(ctx, lines("dataplane\n port dpdk0 net_tap0\n"), "x")
    assert ctx.node == "exec"


@pytest.mark.parametrize("text, lineno, reason", [
    # unknown command
    ("dataplane\n port dpdk0 net_tap0\n!\nfrobnicate 1\n", 4, r"Unknown command\. at column 1"),
    ("dpip adr add 10.0.0.1/24 dev dpdk0\n", 1, r"Invalid input.* at column 6 \(expected: .*addr"),
    # bad argument
    ("dataplane\n port dpdk0 net_tap0\n!\ndpip addr add 10.0.0.300/24 dev dpdk0\n", 4,
     r"Invalid input.* at column 15"),
    ("dataplane\n port dpdk0 net_tap0\n!\ndpip neigh add 10.0.0.2 lladdr 52:54:00 dev dpdk0\n", 4,
     r"Invalid input.* at column 32"),
    ("dpip route add 10.0.0.0/8 dev dpdk0 mtu 20\n", 1, r"mtu must be 68-9000 at column 41"),
    ("dpip addr add\n", 1, r"Incomplete command\."),
    ('dpip addr add "10.0.0.1/24 dev dpdk0\n', 1, r"Unterminated quoted string"),
    # a CommandError from the model
    ("dataplane\n port dpdk0 net_tap0\n!\n\ndpip addr add 10.0.0.1/24 dev dpdk9\n", 5,
     r"no such port 'dpdk9' \(ports: dpdk0\)$"),
    ("dataplane\n port dpdk0 net_tap0\n port dpdk1 net_tap0\n", 3, r"device net_tap0 already used"),
    ("dataplane\n port dpdk0 net_tap0\n!\ndpip addr add 10.0.0.1/24 dev dpdk0\n"
     "dpip addr add 10.0.0.1/24 dev dpdk0\n", 5, r"address 10\.0\.0\.1 already exists$"),
    ("dataplane\n port dpdk0 net_tap0\n!\ndpip route add 10.0.0.0/16\n", 4, r"dev is required"),
    ("dataplane\n port dpdk0 net_tap0\n!\ndpip route add default via 10.0.0.1 dev dpdk0\n", 4,
     r"gateway 10\.0\.0\.1 is not on a connected network of dpdk0$"),
    # a dataplane setting out of range
    ("dataplane\n workers 17\n", 2, r"workers must be 1-16 at column 9 \(expected: \(1-16\)\)"),
    ("dataplane\n workers 0\n", 2, r"workers must be 1-16 at column 9"),
    ("dataplane\n pool-size 100\n", 2, r"pool-size must be 1024-4194304 at column 11"),
    ("dataplane\n route-table-size 8\n", 2, r"route-table-size must be 16-1048576"),
    ("dataplane\n idle-sleep 100001\n", 2, r"idle-sleep must be 0-100000"),
    ("dataplane\n neigh-timeout 0\n", 2, r"neigh-timeout must be 1-86400"),
    ("dataplane\n memory 32\n", 2, r"memory must be 64-65536"),
    ("dataplane\n workers\n", 2, r"Incomplete command\."),
    # neigh-table-size not a power of two
    ("dataplane\n neigh-table-size 1000\n", 2, r"neigh-table-size must be a power of two$"),
])
def test_bad_lines(tmp_path, text, lineno, reason):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        check(read_file(path), path)
    msg = str(info.value)
    assert msg.startswith(f"{path}:{lineno}: "), msg
    assert "\n" not in msg, "one line per error"
    assert re.search(reason, msg[len(f"{path}:{lineno}: "):]), msg


def test_nothing_half_applied(tmp_path):
    bad = GOOD.replace("./dpip", "dpip") + "dpip addr add 10.0.0.100/32 dev dpdk1\n"
    path = write(tmp_path, bad)
    with pytest.raises(ConfigError, match=rf"^{re.escape(path)}:18: address 10\.0\.0\.100 already"):
        check(read_file(path), path)
    # a fresh check of the good file is not affected by the failed one
    model, _ = check_text(tmp_path, GOOD.replace("./dpip", "dpip"))
    assert [str(a.iface) for a in model.addresses] == ["10.0.0.100/32"]
    assert len(model.routes) == 1


def test_error_after_section_then_good_check(tmp_path):
    with pytest.raises(ConfigError):
        check(lines("dataplane\n port dpdk0 net_tap0\n workers 99\n"), "a.conf")
    assert check(lines("dataplane\n port dpdk0 net_tap0\n"), "a.conf").settings.workers == 1


def test_read_file_numbers_lines_from_one(tmp_path):
    path = write(tmp_path, "a\n\nb")
    assert read_file(path) == [(1, "a"), (2, ""), (3, "b")]


def test_kni_is_on_by_default(tmp_path):
    model, _ = check_text(tmp_path, "dataplane\n port dpdk0 net_tap0\n")
    assert model.settings.kni is True


def test_no_kni_setting(tmp_path):
    model, _ = check_text(tmp_path, "dataplane\n port dpdk0 net_tap0\n no-kni\n")
    assert model.settings.kni is False


def test_table_size_below_what_is_configured(tmp_path):
    text = "dataplane\n port dpdk0 net_tap0\n!\n"
    text += "".join(f"dpip addr add 10.0.0.{n}/32 dev dpdk0\n" for n in range(1, 21))
    text += "dataplane\n route-table-size 16\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"^{re.escape(path)}:25: "):
        check(read_file(path), path)


# ------------------------------------------------------------------ the tutorial

# The tutorial's "FNAT two-arm": the dpip lines of the lab's fnat-two-arm script, then
# `dpip addr show` and `dpip route show` as ../shared/TUTORIAL.md prints them. The LIP
# 192.168.100.200 comes from `ipvsadm --add-laddr` there; `dpip addr add ... sapool`
# stands in for it.
TUTORIAL_FNAT = "".join(f"{line}\n" for line in get("fnat-two-arm").lb_script
                        if line.startswith("dpip "))


@pytest.fixture
def addr_show():
    return tutorial.output("dpip addr show")


@pytest.fixture
def route_show():
    return tutorial.output("dpip route show")


PORTS = "dataplane\n port dpdk0 net_af_packet0,iface=eth0\n port dpdk1 net_af_packet1,iface=eth1\n!\n"


def tutorial_model(with_lip=True):
    text = PORTS + TUTORIAL_FNAT
    if with_lip:
        text += "dpip addr add 192.168.100.200/32 dev dpdk0 sapool\n"
    return check(lines(text), "fnat.conf")


def show(model, line):
    return run(Context(model), line)


def test_tutorial_route_show(route_show):
    reply = show(tutorial_model(), "dpip route show")
    assert reply.text == route_show
    assert reply.data[0] == {"prefix": "10.0.0.100/32", "via": "0.0.0.0", "src": "0.0.0.0",
                             "dev": "dpdk1", "mtu": 1500, "scope": "host", "metric": 0,
                             "proto": "auto"}


def test_tutorial_route_show_without_the_lip(route_show):
    reply = show(tutorial_model(with_lip=False), "dpip route show")
    expected = [ln for ln in route_show.splitlines() if "192.168.100.200" not in ln]
    assert reply.text.splitlines() == expected


def test_route_show_host_routes_first_then_longest_prefix():
    model = tutorial_model()
    model.add_route(IPv4Network("0.0.0.0/0"), "dpdk1",
                    via=IPv4Address("10.0.0.1"))
    model.add_route(IPv4Network("10.0.5.0/24"), "dpdk1")
    text = show(model, "dpip route show").text
    prefixes = [ln.split()[1] for ln in text.splitlines()]
    assert prefixes == ["10.0.0.100/32", "192.168.100.200/32", "192.168.100.0/24",
                        "10.0.5.0/24", "10.0.0.0/16", "0.0.0.0/0"]
    assert text.splitlines()[-1] == ("inet 0.0.0.0/0 via 10.0.0.1 src 0.0.0.0 dev dpdk1 mtu 1500 "
                                     "tos 0 scope global metric 0 proto auto")


def test_route_show_dev(route_show):
    text = show(tutorial_model(), "dpip route show dev dpdk1").text
    assert text.splitlines() == [ln for ln in route_show.splitlines() if "dpdk1" in ln]


def test_tutorial_addr_show(addr_show):
    reply = show(tutorial_model(), "dpip addr show")
    got = reply.text.splitlines()
    want = addr_show.splitlines()
    assert got[:3] == want[:3]
    # sa_free counts the local ports rlb gives a LIP (DPVS's number is per its own pools)
    free = LPORT_RANGE[1] - LPORT_RANGE[0] + 1
    assert got[3] == re.sub(r"sa_free \d+", f"sa_free {free}", want[3])
    assert len(got) == 4
    assert reply.data == [
        {"addr": "10.0.0.100/32", "dev": "dpdk1", "scope": "global", "sapool": False},
        {"addr": "192.168.100.200/32", "dev": "dpdk0", "scope": "global", "sapool": True,
         "sa_used": 0, "sa_free": free, "sa_miss": 0},
    ]


def test_addr_show_dev_and_unknown_dev(addr_show):
    model = tutorial_model()
    assert show(model, "dpip addr show dev dpdk1").text == "\n".join(addr_show.splitlines()[:2])
    with pytest.raises(CommandError, match="no such port 'dpdk7'"):
        show(model, "dpip addr show dev dpdk7")


def test_addr_with_prefix_sets_vip_and_route(route_show):
    """The tutorial's tip: `dpip addr add 10.0.0.100/16 dev dpdk1` sets the VIP and the WAN
    route at once."""
    model = check(lines(PORTS + "dpip addr add 10.0.0.100/16 dev dpdk1\n"), "tip.conf")
    assert show(model, "dpip route show").text.splitlines() == [
        route_show.splitlines()[0], route_show.splitlines()[3]]
    assert show(model, "dpip addr show").text == (
        "inet 10.0.0.100/16 scope global dpdk1\n     valid_lft forever preferred_lft forever")


def test_one_line_error_shows_no_marker_it_lacks():
    with pytest.raises(ConfigError) as info:
        check(lines("dataplane\n workers 17\n"), "m.conf")
    assert "^" not in str(info.value) and "column 9" in str(info.value)
