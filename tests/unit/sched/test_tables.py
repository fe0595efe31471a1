"""Table schedulers built in the control plane: source hash and Maglev (no root)."""
import random
from collections import Counter
from dataclasses import dataclass

from rlb.sched.builtin import MH_TABLE_SIZE, NONE32, client_hash, mh_table, sh_table


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
