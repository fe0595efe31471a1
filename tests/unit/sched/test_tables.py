"""Table schedulers built in the control plane: source hash, Maglev, conhash (no root)."""
import random
from collections import Counter
from dataclasses import dataclass

from rlb.sched.builtin import (CONHASH_MAGIC, CONHASH_MAX_NODES, MH_TABLE_SIZE, NONE32, client_hash,
                               conhash_key, conhash_pick, conhash_ring, mh_table, sh_table)


@dataclass
class D:
    slot: int
    addr: int
    port: int = 80
    weight: int = 1
    available: bool = True


def servers(n, weight=1):
    return [D(i, 0xC0A86400 + i + 2, 80, weight) for i in range(n)]


def test_maglev_spreads_evenly():
    for n in (2, 3, 5, 10):
        t = mh_table(servers(n))
        assert len(t) == MH_TABLE_SIZE and NONE32 not in t
        counts = Counter(t)
        ideal = MH_TABLE_SIZE / n
        assert all(abs(c - ideal) / ideal < 0.03 for c in counts.values()), counts


def test_maglev_removing_one_of_n_moves_about_one_nth():
    for n in (3, 5, 10):
        ds = servers(n)
        before = mh_table(ds)
        after = mh_table(ds[:2] + ds[3:])                      # server 2 goes
        # the removed server's entries must move; the others' barely do (Maglev 3.4)
        others_moved = sum(1 for a, b in zip(before, after) if a != b and a != 2)
        assert others_moved / MH_TABLE_SIZE < 0.02, others_moved / MH_TABLE_SIZE
        changed = sum(1 for a, b in zip(before, after) if a != b) / MH_TABLE_SIZE
        assert changed <= 1 / n + 0.02


def test_maglev_weights_and_unavailable():
    ds = servers(3)
    ds[0].weight = 2
    counts = Counter(mh_table(ds))
    assert abs(counts[0] / counts[1] - 2) < 0.1
    ds[1].available = False
    assert 1 not in set(mh_table(ds))
    assert mh_table([]) == []


def test_source_hash_is_stable_and_weighted():
    ds = servers(4)
    t = sh_table(ds)
    assert len(t) == 256 and Counter(t) == {0: 64, 1: 64, 2: 64, 3: 64}
    ds[0].weight = 3
    counts = Counter(sh_table(ds))
    assert counts[0] > counts[1]
    rng = random.Random(1)
    clients = [rng.getrandbits(32) for _ in range(1000)]
    picks = [t[client_hash(c) % len(t)] for c in clients]
    assert picks == [t[client_hash(c) % len(t)] for c in clients]      # same client, same server
    assert len(set(picks)) == 4


# ------------------------------------------------------------------ conhash (DPVS)

def test_conhash_ring_has_160_nodes_per_weight_sorted_with_its_target():
    ds = servers(3)
    ds[2].weight = 2
    ring = conhash_ring(ds, "sip")
    assert ring[0] == CONHASH_MAGIC and conhash_ring(ds, "sip_sport")[0] == CONHASH_MAGIC | 1
    hashes, slots = ring[1::2], ring[2::2]
    assert hashes == sorted(hashes) and Counter(slots) == {0: 160, 1: 160, 2: 320}
    assert conhash_ring([]) == [] and conhash_pick([], 1) == NONE32
    ds[1].available = False
    assert 1 not in conhash_ring(ds)[2::2]


def test_conhash_ring_is_capped_keeping_the_weights():
    ds = servers(300, weight=7)
    ds[0].weight = 70000 // 10
    ring = conhash_ring(ds)
    counts = Counter(ring[2::2])
    assert (len(ring) - 1) // 2 <= CONHASH_MAX_NODES + len(ds)
    assert counts[0] > 100 * counts[1] >= 100


def test_conhash_spreads_and_moves_only_the_lost_servers_clients():
    rng = random.Random(7)
    clients = [rng.getrandbits(32) for _ in range(3000)]
    ds = servers(4)
    ring, less = conhash_ring(ds), conhash_ring(ds[:3])
    before = {c: conhash_pick(ring, c) for c in clients}
    counts = Counter(before.values())
    assert all(500 < n < 1000 for n in counts.values()), counts
    after = {c: conhash_pick(less, c) for c in clients}
    moved = [c for c in clients if before[c] != after[c]]
    assert all(before[c] == 3 for c in moved) and set(after.values()) == {0, 1, 2}


def test_conhash_targets_source_address_or_address_and_port():
    ds = servers(4)
    sip, sport = conhash_ring(ds, "sip"), conhash_ring(ds, "sip_sport")
    client = 0x0A000030
    assert len({conhash_pick(sip, client, p) for p in range(1000, 1100)}) == 1
    by_port = {p: conhash_pick(sport, client, p) for p in range(1000, 1100)}
    assert len(set(by_port.values())) == 4
    assert by_port == {p: conhash_pick(sport, client, p) for p in range(1000, 1100)}
    assert conhash_key(client, 5, "sip") == conhash_key(client, 6, "sip") != \
        conhash_key(client, 5, "sip_sport")


def test_every_lb_builds_the_same_table_whatever_the_order_and_slots():
    """Two LBs with the same real servers, added in another order and holding other
    slots: each bucket names the same server (address, port), so a flow ECMP moves from
    one to the other keeps its server (lb.pxd lb_adopts)."""
    a = servers(5)
    b = [D(100 + i, d.addr, d.port, d.weight) for i, d in enumerate(reversed(a))]
    a[1].weight = b[3].weight = 3                   # the same server, weighted, on both
    for build in (mh_table, sh_table):
        by_slot_a = {d.slot: (d.addr, d.port) for d in a}
        by_slot_b = {d.slot: (d.addr, d.port) for d in b}
        ta, tb = build(a), build(b)
        assert [by_slot_a[x] for x in ta] == [by_slot_b[x] for x in tb], build.__name__
