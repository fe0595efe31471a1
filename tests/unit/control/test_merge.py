"""rlb.control.merge and `update`: a stale candidate's changes merged onto the running
configuration (after another session's commit, an exec-mode change, an automatic
rollback), refused with the conflicting lines when both changed the same object."""
import asyncio
import textwrap

import pytest

from rlb.control.merge import Conflict, merge
from rlb.commands.running import Running, Stanza, object_key, render
from test_commit import K80, err, lb, ok, session  # noqa: F401  (lb: fixture)


def text(*stanzas):
    return Running([Stanza(h, tuple(b)) for h, *b in stanzas])


VS = "virtual-server tcp 10.0.0.100:80"


def test_object_keys():
    assert object_key("real-server 192.168.100.2:80 mode fnat weight 3") == \
        "real-server 192.168.100.2:80"
    assert object_key("ip address 10.0.0.1/16 sapool") == "ip address 10.0.0.1"
    assert object_key("ip route 0.0.0.0/0 via 10.0.0.254 dev dpdk1") == "ip route 0.0.0.0/0"
    assert object_key("ip vs timeout tcp 90 tcpfin 7 udp 300") == "ip vs timeout"
    assert object_key("scheduler wrr") == "scheduler"
    assert object_key("idle-sleep 50") == "idle-sleep"
    assert object_key("local-address 192.168.100.200 dev dpdk0") == \
        "local-address 192.168.100.200 dev dpdk0"
    assert object_key("username bob privilege view") == "username bob privilege"
    assert object_key("username bob key ssh-ed25519 AAAA x") == "username bob key ssh-ed25519 AAAA x"


def test_changes_of_both_sides_in_one_section_are_kept():
    base = text((VS, "scheduler rr", "real-server 1.1.1.1:80 mode fnat weight 1"))
    ours = text((VS, "scheduler wlc", "real-server 1.1.1.1:80 mode fnat weight 1"),
                ("ip route 10.9.0.0/16 dev dpdk0",))
    theirs = text(("ip route 10.8.0.0/16 dev dpdk0",),
                  (VS, "scheduler rr", "real-server 1.1.1.1:80 mode fnat weight 1",
                   "real-server 1.1.1.2:80 mode fnat weight 1"))
    out = merge(base, ours, theirs)
    assert [(st.head, st.body) for st in out.stanzas] == [
        ("ip route 10.8.0.0/16 dev dpdk0", ()),
        (VS, ("scheduler wlc", "real-server 1.1.1.1:80 mode fnat weight 1",
              "real-server 1.1.1.2:80 mode fnat weight 1")),
        ("ip route 10.9.0.0/16 dev dpdk0", ())]


@pytest.mark.parametrize("ours, theirs, where", [
    ((VS, "scheduler wlc"), (VS, "scheduler wrr"), f"{VS} / scheduler"),
    (None, (VS, "scheduler wrr"), VS),                     # we removed what they changed
    ((VS, "scheduler rr", "real-server 1.1.1.1:80 mode fnat weight 2"),
     (VS, "scheduler rr", "real-server 1.1.1.1:80 mode fnat weight 3"),
     f"{VS} / real-server 1.1.1.1:80"),
])
def test_both_changing_one_object_differently_is_a_conflict(ours, theirs, where):
    base = text((VS, "scheduler rr"))
    with pytest.raises(Conflict) as info:
        merge(base, text(*[ours] if ours else []), text(theirs))
    assert [c[0] for c in info.value.items] == [where]


def test_the_same_change_on_both_sides_is_no_conflict():
    base = text(("ip route 10.8.0.0/16 dev dpdk0",))
    same = text(("ip route 10.8.0.0/16 dev dpdk1",))
    assert merge(base, same, same) == same


# ----------------------------------------------------------------- `update`

def test_update_after_another_sessions_commit(lb):
    a = session(lb, "alice", "configure", "virtual-server tcp 10.0.0.100:80", "scheduler wlc",
                "exit", "ip route 172.16.0.0/12 dev dpdk0")
    b = session(lb, "bob", "configure", "virtual-server tcp 10.0.0.100:80",
                "real-server 192.168.100.3:80 mode fnat", "exit", "no ip route 10.0.0.0/16",
                "interface dpdk1", "ip address 10.0.0.1/16", "commit")
    error = err(a, "commit")
    assert "changed since" in error and "`update`" in error
    assert ok(a, "update")["text"].startswith("Candidate updated")
    diff = ok(a, "show configuration diff")["text"].splitlines()
    assert [line for line in diff if line[:1] in "+-" and line[:3] not in ("---", "+++")] == \
        ["+ip route 172.16.0.0/12 dev dpdk0", "- scheduler rr", "+ scheduler wlc"]
    ok(a, "commit")
    running = render(lb).lines()
    for line in ("ip route 172.16.0.0/12 dev dpdk0", " scheduler wlc", " ip address 10.0.0.1/16",
                 " real-server 192.168.100.3:80 mode fnat weight 1"):
        assert line in running
    assert "ip route 10.0.0.0/16 dev dpdk1" not in running
    assert ok(a, "update")["text"] == "The candidate is up to date."
    ok(b, "end")


def test_update_refuses_a_conflict_and_changes_nothing(lb):
    a = session(lb, "alice", "configure", "virtual-server tcp 10.0.0.100:80", "scheduler wlc",
                "exit", "ip route 172.16.0.0/12 dev dpdk0")
    before = ok(a, "show configuration")["text"]
    session(lb, "bob", "ipvsadm -E -t 10.0.0.100:80 -s sh")       # exec mode, at once
    error = err(a, "update")
    assert error.startswith("% update refused") and "nothing was changed" in error
    assert f"  {VS} / scheduler\n    candidate: scheduler wlc\n    running:   scheduler sh" \
        in error
    assert "ipvsadm -E -t 10.0.0.100:80 -s sh" in error              # who made it, and how
    assert ok(a, "show configuration")["text"] == before
    assert "changed since" in err(a, "commit")
    ok(a, "abort")


def test_update_keeps_the_section(lb):
    a = session(lb, "alice", "configure", "virtual-server tcp 10.0.0.100:80", "scheduler wlc")
    session(lb, "bob", "dpip route add 172.17.0.0/16 dev dpdk0")
    assert ok(a, "update")["prompt"] == "lb(config-vs)#" and a.section == K80
    ok(a, "commit")
    assert lb.services.table[K80].sched == "wlc"
    assert "ip route 172.17.0.0/16 dev dpdk0" in render(lb).lines()


def test_update_after_an_automatic_rollback_and_every_session_is_told(lb):
    told = []
    lb.store.sessions.add(told.append)

    async def scenario():
        a = session(lb, "alice", "configure", "ip route 172.16.0.0/12 dev dpdk0",
                    "commit confirmed 1 seconds")
        ok(a, "ip route 172.18.0.0/16 dev dpdk0")        # made on the unconfirmed commit
        await asyncio.sleep(1.5)
        return a
    a = asyncio.run(scenario())
    assert "ip route 172.16.0.0/12 dev dpdk0" not in render(lb).lines()
    assert len(told) == 1 and "commit confirmed by alice was not confirmed" in told[0]
    assert "`update`" in told[0]
    assert "changed since" in err(a, "commit")
    ok(a, "update", "commit")
    lines = render(lb).lines()
    assert "ip route 172.18.0.0/16 dev dpdk0" in lines
    # the unconfirmed commit's own change stays rolled back: the candidate only had it
    assert "ip route 172.16.0.0/12 dev dpdk0" not in lines


def test_update_of_a_candidate_that_does_not_apply_changes_nothing(lb):
    a = session(lb, "alice", "configure", "virtual-server tcp 10.0.0.100:80",
                "local-address 192.168.100.201 dev dpdk0")
    before = ok(a, "show configuration")["text"]
    # the address the local address needs goes away under it
    session(lb, "bob", "ipvsadm -D -t 10.0.0.100:80", "dpip addr del 192.168.100.1/24 dev dpdk0")
    error = err(a, "update")
    assert error.startswith("% update refused")
    assert ok(a, "show configuration")["text"] == before


def test_the_merged_text_is_read_in_order(lb):
    """An address and a route with it as src, added by the candidate while the running
    configuration gained a service: the text still reads (routes after addresses)."""
    a = session(lb, "alice", "configure", "interface dpdk0", "ip address 192.168.100.9/24",
                "exit", "ip route 172.30.0.0/16 src 192.168.100.9 dev dpdk0")
    session(lb, "bob", "ipvsadm -A -t 10.0.0.100:81 -s rr")
    ok(a, "update", "commit")
    assert "ip route 172.30.0.0/16 src 192.168.100.9 dev dpdk0" in render(lb).lines()
    assert textwrap.dedent("virtual-server tcp 10.0.0.100:81") in render(lb).lines()


def test_an_automatic_rollback_keeps_later_exec_mode_changes(lb):
    start = render(lb).lines()

    async def scenario():
        a = session(lb, "alice", "configure", "ip route 172.16.0.0/12 dev dpdk0",
                    "virtual-server tcp 10.0.0.100:81", "scheduler rr",
                    "commit confirmed 1 seconds")
        session(lb, "bob", "dpip route add 172.19.0.0/16 dev dpdk0")     # not a confirmation
        await asyncio.sleep(1.5)
        ok(a, "abort")
    asyncio.run(scenario())
    lines = render(lb).lines()
    assert "ip route 172.19.0.0/16 dev dpdk0" in lines                   # bob's is kept
    assert "ip route 172.16.0.0/12 dev dpdk0" not in lines
    assert "virtual-server tcp 10.0.0.100:81" not in lines
    assert [e["user"] for e in lb.store.history()[:3]] == ["rlb", "bob", "alice"]
    assert sorted(set(lines) - set(start)) == ["ip route 172.19.0.0/16 dev dpdk0"]


def test_an_automatic_rollback_goes_all_the_way_when_later_changes_touch_the_commit(lb):
    start = render(lb).text

    async def scenario():
        session(lb, "alice", "configure", "virtual-server tcp 10.0.0.100:81", "scheduler rr",
                "commit confirmed 1 seconds")
        session(lb, "bob", "ipvsadm -E -t 10.0.0.100:81 -s wlc")         # on what it made
        await asyncio.sleep(1.5)
    asyncio.run(scenario())
    assert render(lb).text == start


def test_update_whose_merge_is_clean_but_does_not_apply_says_why(lb):
    """No object changed on both sides, yet the merged text cannot be built: the
    candidate's route goes through a gateway whose network the other session removed."""
    a = session(lb, "alice", "configure", "ip route 172.30.0.0/16 via 10.0.0.254 dev dpdk1")
    before = ok(a, "show configuration")["text"]
    session(lb, "bob", "dpip route del 10.0.0.0/16 dev dpdk1")
    error = err(a, "update")
    assert error.startswith("% update refused: the merged configuration does not apply")
    assert "nothing was changed" in error
    assert ok(a, "show configuration")["text"] == before
    ok(a, "abort")
