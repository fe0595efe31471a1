"""`rlb keepalived import`: DPVS's keepalived.conf in rlb's words. The tutorial's files
against golden translations; keepalived's syntax (blocks, quotes, comments, include);
every keyword refused says FILE:LINE and why; the translation runs in rlb's grammar."""
from pathlib import Path

import pytest

from rlb.control.config import check
from rlb.ha import kaconf
from rlb.lab.topologies import ka_conf

DATA = Path(__file__).parent / "data"
TUTORIAL = ("tutorial-keepalived", "tutorial-snat", "tutorial-snat-alpha")


def translate(text: str, name: str = "k.conf") -> str:
    return kaconf.translate(kaconf.parse(text, name), name).text()


def refused(text: str) -> str:
    with pytest.raises(kaconf.KaError) as err:
        translate(text)
    return str(err.value)


@pytest.mark.parametrize("name", TUTORIAL)
def test_the_tutorial_s_files_translate_as_the_golden_files_say(name):
    conf = (DATA / f"{name}.conf").read_text()
    assert translate(conf, f"{name}.conf") == (DATA / f"{name}.rlb").read_text()


def test_the_lab_loads_the_tutorial_s_file_unchanged():
    assert ka_conf("MASTER", 100) == (DATA / "tutorial-keepalived.conf").read_text()


def test_the_tutorial_s_translation_is_a_configuration_rlb_takes():
    imported = kaconf.translate(kaconf.parse(ka_conf(), "k.conf"), "k.conf")
    head = [(1, "dataplane"), (2, " port dpdk0 net_null0"), (3, "!")]
    model = check([*head, *imported.numbered()], "rlb.conf")
    (svc,) = model.services.table.values()
    assert [(str(d.addr), d.port, d.mode, d.weight, d.check.kind, d.check.interval,
             d.check.rise, d.check.fall) for d in svc.dests] == \
        [("192.168.100.2", 80, "fnat", 100, "tcp", 3.0, 1, 3),
         ("192.168.100.3", 80, "fnat", 100, "tcp", 3.0, 1, 3)]
    assert [str(la.addr) for la in svc.laddrs] == ["192.168.100.200", "192.168.100.201"]
    inst = model.ha.instance("VI_1")
    assert (inst.port, inst.vrid, inst.state, inst.advert, inst.version, inst.auth) == \
        ("dpdk0", 123, "master", 1.0, 2, "****")
    assert imported.ports == {"dpdk0"}


def test_an_error_rlb_s_grammar_finds_names_the_keepalived_line():
    text = ka_conf().replace("lb_algo rr", "lb_algo nosuch")
    imported = kaconf.translate(kaconf.parse(text, "k.conf"), "k.conf")
    head = [(1, "dataplane"), (2, " port dpdk0 net_null0"), (3, "!")]
    line = text.splitlines().index(next(x for x in text.splitlines() if "nosuch" in x)) + 1
    with pytest.raises(Exception, match=rf"^k\.conf:{line}: Scheduler not found: nosuch"):
        check([*head, *imported.numbered()], "rlb.conf")


# -- syntax --------------------------------------------------------------------------

def test_blocks_quotes_comments_ranges_and_groups():
    text = """
virtual_server_group web { 10.0.0.1-2 80
  10.0.0.9 8080 }
local_address_group g { 192.168.1.10-11 dpdk1 }
virtual_server group web {   # two services from the group
  lb_algo wlc ! comment
  lb_kind DR
  persistence_timeout 60
  persistence_granularity 255.255.255.0
  real_server 192.168.1.2 80 {
    weight 3
    HTTP_GET { url { path "/a b"
                     status_code 200 }
      connect_timeout 1
      retry 2 } }
  virtualhost example.com
}
"""
    out = translate(text)
    assert out.count("virtual-server tcp ") == 3
    for vip in ("10.0.0.1:80", "10.0.0.2:80", "10.0.0.9:8080"):
        assert f"virtual-server tcp {vip}" in out
    assert " persistent 60 netmask 255.255.255.0" in out
    assert (' real-server 192.168.1.2:80 mode dr weight 3 check http interval 60 fall 3 '
            'timeout 1 path "/a b" host example.com status 200') in out
    assert "on-failure remove" in out        # keepalived's default: out of the list


def test_include_reads_files_in_place(tmp_path):
    (tmp_path / "vs").mkdir()
    (tmp_path / "vs" / "a.conf").write_text("virtual_server 10.0.0.1 80 {\n lb_kind FNAT\n}\n")
    (tmp_path / "vs" / "b.conf").write_text("virtual_server 10.0.0.2 80 {\n lb_kind FNAT\n"
                                            " nosuch_keyword\n}\n")
    main = tmp_path / "keepalived.conf"
    main.write_text("include vs/a.conf\n")
    assert "virtual-server tcp 10.0.0.1:80" in kaconf.import_file(str(main)).text()
    main.write_text("include vs/*.conf\n")
    with pytest.raises(kaconf.KaError, match=r"b\.conf:3: keyword nosuch_keyword"):
        kaconf.import_file(str(main))
    main.write_text("include nothing/*.conf\n")
    with pytest.raises(kaconf.KaError, match=r"keepalived\.conf:1: include: no file"):
        kaconf.import_file(str(main))


@pytest.mark.parametrize("text, said", [
    ("virtual_server 10.0.0.1 80 {\n lb_kind FNAT\n", "k.conf:2: the block of virtual_server "
                                                      "(line 1) is not closed"),
    ("}\n", "k.conf:1: '}' without a block to close"),
    ("{\n", "k.conf:1: '{' without a keyword before it"),
    ('global_defs {\n router_id "DPVS\n}\n', "k.conf:2: unterminated quoted string"),
    ("virtual_server 10.0.0.1 80 {\n}\n", "k.conf:1: virtual_server: no lb_kind"),
    ("virtual_server 10.0.0.1 99999 {\n lb_kind NAT\n}\n", "k.conf:1: '99999' is not a port"),
    ("virtual_server 10.0.0.1 80 {\n lb_kind NAT\n protocol SCTP\n}\n",
     "k.conf:3: protocol SCTP: TCP, UDP"),
    ("virtual_server group nope {\n lb_kind NAT\n}\n", "k.conf:1: no virtual_server_group nope"),
    ("virtual_server 10.0.0.1 80 {\n lb_kind NAT\n laddr_group_name g\n}\n",
     "k.conf:3: no local_address_group g"),
    ("virtual_server 10.0.0.1 80 {\n lb_kind NAT\n real_server 1.1.1.1 80 {\n"
     "  inhibit_on_failure\n  TCP_CHECK {\n  }\n }\n real_server 1.1.1.2 80 {\n  TCP_CHECK {\n"
     "  }\n }\n}\n", "k.conf:1: inhibit_on_failure on some real servers"),
    ("vrrp_instance V {\n interface eth0\n virtual_router_id 1\n}\n",
     "k.conf:2: interface eth0: VRRP runs on a port's kni"),
    ("vrrp_instance V {\n interface dpdk0.kni\n dpdk_interface dpdk1\n virtual_router_id 1\n}\n",
     "k.conf:3: dpdk_interface dpdk1 is not the port of interface dpdk0.kni"),
    ("vrrp_instance V {\n interface dpdk0.kni\n virtual_router_id 300\n}\n",
     "k.conf:3: virtual_router_id: 300 is out of range"),
    ("vrrp_instance V {\n interface dpdk0.kni\n virtual_router_id 1\n authentication {\n"
     "  auth_type AH\n }\n}\n", "k.conf:5: authentication: rlb writes auth_type PASS only"),
    ("vrrp_instance V {\n interface dpdk0.kni\n virtual_router_id 1\n virtual_ipaddress {\n"
     "  10.0.0.1/32 dev eth1\n }\n}\n", "k.conf:5: virtual_ipaddress 10.0.0.1/32"),
])
def test_bad_input_names_its_line(text, said):
    assert said in refused(text)


# -- every keyword refused says why ------------------------------------------------------

VRRP_HEAD = "vrrp_instance V {\n interface dpdk0.kni\n virtual_router_id 1\n"
VS_HEAD = "virtual_server 10.0.0.1 80 {\n lb_kind FNAT\n"
RS_HEAD = VS_HEAD + " real_server 1.1.1.1 80 {\n"
CHECK_HEAD = RS_HEAD + "  TCP_CHECK {\n"
UNSUPPORTED = [
    *((f"{k} {{\n}}\n", 1, k) for k in kaconf.TOP_REFUSED),
    ("global_defs {\n script_user nobody\n}\n", 2, "script_user"),
    *((f"{VRRP_HEAD} {k} x\n}}\n", 4, k) for k in kaconf.VRRP_REFUSED),
    *((f"{VS_HEAD} {k} 1\n}}\n", 3, k) for k in kaconf.VS_REFUSED),
    *((f"{RS_HEAD}  {k} x\n }}\n}}\n", 4, k) for k in kaconf.RS_REFUSED),
    (f"{RS_HEAD}  DNS_CHECK {{\n  }}\n }}\n}}\n", 4, "DNS_CHECK"),
    *((f"{CHECK_HEAD}   {k} x\n  }}\n }}\n}}\n", 5, k) for k in kaconf.CHECK_REFUSED_WORDS),
    ("virtual_server fwmark 1 {\n lb_kind DR\n}\n", 1, None),
]


@pytest.mark.parametrize("text, line, keyword", UNSUPPORTED)
def test_each_unsupported_keyword_is_refused_with_its_reason(text, line, keyword):
    said = refused(text)
    assert said.startswith(f"k.conf:{line}: "), said
    if keyword is not None:
        assert f"keyword {keyword} is not supported (" in said and said.endswith(")"), said


def test_what_has_no_effect_is_said_in_the_output_not_dropped():
    out = translate("global_defs {\n router_id X\n notification_email {\n a@b\n }\n"
                    " enable_script_security\n}\n")
    assert "! k.conf:2: router_id X: " in out
    assert "! k.conf:3: notification_email: " in out
    assert "! k.conf:6: enable_script_security: " in out


def test_keepalived_s_defaults_are_written_where_rlb_s_differ():
    out = translate(VRRP_HEAD + "}\n")
    assert " state backup" in out and " advert-interval 1" in out and " vrrp-version 2" in out
    out = translate("global_defs {\n vrrp_version 3\n vrrp_garp_master_delay 2\n}\n"
                    + VRRP_HEAD + " advert_int 0.2\n garp_master_repeat 3\n}\n")
    assert " vrrp-version 3" in out and " advert-interval 0.2" in out
    assert " garp master-delay 2 master-repeat 3" in out


def test_a_misc_check_runs_its_path_in_a_shell_and_a_longer_timeout_widens_the_grid():
    out = translate(RS_HEAD + '  MISC_CHECK {\n   misc_path "exit 0"\n   misc_timeout 10\n'
                    "   misc_dynamic\n  }\n }\n delay_loop 3\n}\n")
    assert """check misc interval 10 timeout 10 command "/bin/sh -c 'exit 0'" dynamic yes""" \
        in out
