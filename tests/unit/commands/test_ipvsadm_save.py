"""rlb.commands.ipvsadm, LVS's listing and table options: -S/-R (save, restore as one commit),
--thresholds, --persistent-conn, --nosort, persistence templates in -lnc, --hash-target."""
from ipaddress import IPv4Address

import pytest

from rlb.control import server
from rlb.control.commit import Store
from rlb.commands import ipvsadm
from rlb.commands.base import Context
from rlb.commands.running import render

from test_ipvsadm import CountingEngine, apply, model, out, refused

SVC = (6, IPv4Address("10.0.0.100"), 80)
TABLE = """
./dpip addr add 10.0.0.100/32 dev dpdk1
./dpip route add 10.0.0.0/16 dev dpdk1
./dpip route add 192.168.100.0/24 dev dpdk0
./ipvsadm -A -u 10.0.0.100:53 -s conhash --hash-target sip_sport
./ipvsadm -a -u 10.0.0.100:53 -r 192.168.100.5 -m -w 2
./ipvsadm -A -t 10.0.0.100:80 -s rr -p 60 -M 255.255.255.0
./ipvsadm -a -t 10.0.0.100:80 -r 192.168.100.3 -b -w 3 -x 100 -y 10
./ipvsadm -a -t 10.0.0.100:80 -r 192.168.100.2:8080 -b
./ipvsadm --add-laddr -z 192.168.100.200 -t 10.0.0.100:80 -F dpdk0
./ipvsadm -A -t 10.0.0.100:443 -s conhash
"""


def table_model(engine=None):
    m = model(engine=engine)                # the real plugins: conhash among them
    apply(m, TABLE)
    return m


SAVED = [
    "-A -t 10.0.0.100:80 -s rr -p 60 -M 255.255.255.0",
    "-a -t 10.0.0.100:80 -r 192.168.100.2:8080 -b -w 1",
    "-a -t 10.0.0.100:80 -r 192.168.100.3:80 -b -w 3 -x 100 -y 10",
    "--add-laddr -z 192.168.100.200 -t 10.0.0.100:80 -F dpdk0",
    "-A -t 10.0.0.100:443 -s conhash",
    "-A -u 10.0.0.100:53 -s conhash --hash-target sip_sport",
    "-a -u 10.0.0.100:53 -r 192.168.100.5:53 -m -w 2",
]


def test_save_prints_the_rules_that_rebuild_the_table():
    m = table_model()
    assert out(m, "ipvsadm -S") == out(m, "ipvsadm --save -n") == "\n".join(SAVED)
    assert ipvsadm.save_lines(model().services) == []


def loader(tmp_path, m):
    m.store = Store(str(tmp_path / "commits"), startup=str(tmp_path / "rlb.conf"))
    return Context(m, user="carol")


def routes_only():
    m = model()
    apply(m, "\n".join(line for line in TABLE.splitlines() if "dpip" in line))
    return m


def test_restore_of_a_save_rebuilds_the_same_table(tmp_path):
    ctx = loader(tmp_path, routes_only())
    reply = server.load(ctx, ipvsadm.restore_text("\n".join(SAVED) + "\n"), "<stdin>")
    assert reply["ok"], reply
    assert out(ctx.running, "ipvsadm -S").splitlines() == SAVED
    # the same running configuration (real servers in -S's order)
    assert sorted(render(ctx.running).lines()) == sorted(render(table_model()).lines())
    assert [e["comment"] for e in ctx.running.store.history()] == ["load <stdin>"]


def test_restore_is_all_or_nothing_and_names_the_failing_line(tmp_path):
    ctx = loader(tmp_path, routes_only())
    start = render(ctx.running).text
    text = "\n".join(SAVED[:3] + ["", "-a -t 10.0.0.100:80 -r 192.168.100.9 -b -w 70000"])
    reply = server.load(ctx, ipvsadm.restore_text(text), "<stdin>")
    assert not reply["ok"] and reply["error"].startswith("% <stdin>:5: "), reply
    assert render(ctx.running).text == start and ctx.running.store.history() == []


def test_restore_text_keeps_line_numbers_and_ipvsadm_lines():
    assert ipvsadm.restore_text("-C\n\n# saved\nipvsadm -A -t 10.0.0.1:80\n -Z\n") == (
        "ipvsadm -C\n\n# saved\nipvsadm -A -t 10.0.0.1:80\nipvsadm  -Z\n")


def test_restore_over_the_socket_says_how_and_the_grammar_knows_it():
    m = model()
    refused(m, "ipvsadm -R", r"rlb \[-N INSTANCE\] ipvsadm -R < FILE")
    assert ipvsadm.is_restore("ipvsadm -R") and ipvsadm.is_restore("ipvsadm --restore")
    assert not ipvsadm.is_restore("ipvsadm -S") and not ipvsadm.is_restore("ipvsadm -X")


def counted():
    m = table_model(CountingEngine())
    return m


def test_thresholds_listing():
    m = counted()
    m.engine.dest[1] = {"activeconns": 4, "inactconns": 2}
    lines = out(m, "ipvsadm -ln --thresholds -t 10.0.0.100:80").splitlines()
    assert lines == [
        "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn",
        "  -> RemoteAddress:Port",
        "TCP  10.0.0.100:80 rr persistent 60 mask 255.255.255.0",
        "  -> 192.168.100.2:8080           0          0          0          0",
        "  -> 192.168.100.3:80             100        10         4          2"]


def i(text):
    return int(IPv4Address(text))


def template(caddr, dest, daddr, expires=50.0):
    return dict(proto=6, caddr=i(caddr), cport=0, vaddr=i("10.0.0.100"), vport=80, laddr=0,
                lport=0, daddr=i(daddr), dport=80, state="NONE", expires=expires, mode=0,
                worker=0, template=True, dest=dest)


def test_persistent_conn_counts_templates_and_lnc_lists_them():
    m = counted()
    conn = dict(proto=6, caddr=i("10.0.0.48"), cport=37177, vaddr=i("10.0.0.100"), vport=80,
                laddr=i("192.168.100.200"), lport=1042, daddr=i("192.168.100.3"), dport=80,
                state="ESTABLISHED", expires=899.6, mode=0, worker=0, template=False, dest=0)
    slot = m.services.table[SVC].dests[0].slot            # 192.168.100.3
    m.engine.conns = [conn, template("10.0.0.0", slot, "192.168.100.3", 116.2),
                      template("10.0.1.0", slot, "192.168.100.3")]
    lines = out(m, "ipvsadm -ln --persistent-conn -t 10.0.0.100:80").splitlines()
    assert lines == [
        "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn",
        "  -> RemoteAddress:Port",
        "TCP  10.0.0.100:80 rr persistent 60 mask 255.255.255.0",
        "  -> 192.168.100.2:8080           1         0           0          0",
        "  -> 192.168.100.3:80             3         2           0          0"]
    lnc = out(m, "ipvsadm -lnc").splitlines()
    assert lnc[3] == ("TCP 01:56  NONE        10.0.0.0:0         10.0.0.100:80      "
                      "10.0.0.0:0         192.168.100.3:80")
    assert len(lnc) == 5
    only = out(m, "ipvsadm -lnc --persistent-conn").splitlines()
    assert only[2:] == lnc[3:]


def test_list_option_conflicts():
    m = counted()
    refused(m, "ipvsadm -lnc --thresholds", "options conflicts in the list command")
    refused(m, "ipvsadm -L --timeout --persistent-conn", "options conflicts")


def test_sort_is_the_default_and_nosort_lists_in_the_order_made():
    m = counted()
    heads = [line for line in out(m, "ipvsadm -ln --sort").splitlines()
             if line.startswith(("TCP", "UDP"))]
    assert heads == ["TCP  10.0.0.100:80 rr persistent 60 mask 255.255.255.0",
                     "TCP  10.0.0.100:443 conhash sip", "UDP  10.0.0.100:53 conhash sip_sport"]
    assert out(m, "ipvsadm -ln --sort") == out(m, "ipvsadm -ln")
    lines = out(m, "ipvsadm -ln --nosort").splitlines()
    assert [line.split()[1] for line in lines if line.startswith(("TCP", "UDP", "  -> 1"))][:4] == [
        "10.0.0.100:53", "192.168.100.5:53", "10.0.0.100:80", "192.168.100.3:80"]


def test_hash_target_belongs_to_conhash():
    m = table_model()
    refused(m, "ipvsadm -A -t 10.0.0.100:81 -s rr --hash-target sip",
            r"hash target can only be set when the scheduler hashes \(conhash\)")
    refused(m, "ipvsadm -A -t 10.0.0.100:81 -s conhash --hash-target qid",
            r"hash target qid not supported \(sip, sip_sport\)")
    svc = m.services.table[(17, IPv4Address("10.0.0.100"), 53)]
    apply(m, "ipvsadm -E -u 10.0.0.100:53 -s conhash")         # -E: the default again
    assert svc.hash_target == "sip"
    apply(m, "ipvsadm -E -u 10.0.0.100:53 -s rr")
    assert svc.hash_target is None
    apply(m, "ipvsadm -E -u 10.0.0.100:53 -s conhash --hash-target sip_sport")
    assert svc.hash_target == "sip_sport"


def test_hash_target_in_running_config_reads_back(tmp_path):
    from rlb.control.commit import build
    m = table_model()
    text = render(m).text
    assert "scheduler conhash hash-target sip_sport" in text.splitlines()[-4:] or \
        " scheduler conhash hash-target sip_sport" in text.splitlines()
    again = build(render(m).numbered())
    again_svc = again.services.table[(17, IPv4Address("10.0.0.100"), 53)]
    assert again_svc.hash_target == "sip_sport"


@pytest.mark.parametrize("line", ["ipvsadm -S -t 10.0.0.100:80", "ipvsadm -R -n"])
def test_save_and_restore_take_no_service(line):
    refused(model(), line, "")


def test_tab_offers_the_hash_targets():
    from rlb.commands.base import g
    m = table_model()
    got = [tok for tok, _ in g.complete("ipvsadm -A -t 10.0.0.1:80 -s conhash --hash-target ",
                                        "exec", Context(m))]
    assert "sip" in got and "sip_sport" in got
