"""bench/forward.py's and bench/fnat.py's virtual-device peers (issue 15): the rlb configs
they write (a VLAN on either side, a mode-0 bond of two af_packet slaves), the links the
generators use, the summed report of two generators, and the ratios device / plain port.
No root, no namespaces: only what the scripts build before they run anything."""
import json
import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "bench"))

import forward  # noqa: E402


def fwd_opts(names: str):
    return forward.parse_args(["--quick", "--forwarders", names])


def test_forward_accepts_the_device_forwarders():
    opts = fwd_opts("rlb,rlb-vlan,rlb-vlan2,rlb-bond")
    assert opts.forwarders == ["rlb", "rlb-vlan", "rlb-vlan2", "rlb-bond"]


def test_forward_plain_rlb_config_is_unchanged():
    r = forward.Rlb(fwd_opts("rlb"), "/tmp", "rlb")
    conf = r.config()
    assert "vlan" not in conf and "bond" not in conf and "dpdk2" not in conf
    assert f"dpip addr add {forward.IN_IP}/24 dev dpdk0" in conf
    assert r.gen_links == ((forward.GEN_IF, None),) and r.in_ifs == (forward.IN_IF,)


def test_forward_vlan_in_tagged_out_untagged():
    r = forward.Rlb(fwd_opts("rlb-vlan"), "/tmp", "rlb-vlan")
    conf = r.config().splitlines()
    assert "dpip vlan add dpdk0.100 link dpdk0 proto 802.1q id 100" in conf
    assert f"dpip addr add {forward.IN_IP}/24 dev dpdk0.100" in conf
    assert f"dpip addr add {forward.OUT_IP}/24 dev dpdk1" in conf
    assert not any(line.startswith("dpip vlan add dpdk1") for line in conf)
    # the vlan is declared before the addresses on it
    assert conf.index("dpip vlan add dpdk0.100 link dpdk0 proto 802.1q id 100") < \
        conf.index(f"dpip addr add {forward.IN_IP}/24 dev dpdk0.100")
    assert r.gen_links == ((forward.GEN_IF, 100),)
    assert (r.in_port, r.out_port) == ("dpdk0.100", "dpdk1")


def test_forward_vlan_tagged_both_sides():
    r = forward.Rlb(fwd_opts("rlb-vlan2"), "/tmp", "rlb-vlan2")
    conf = r.config()
    assert "dpip vlan add dpdk1.200 link dpdk1 proto 802.1q id 200" in conf
    assert f"dpip neigh add {forward.SINK_IP} lladdr {forward.SINK_MAC} dev dpdk1.200" in conf
    assert (r.in_port, r.out_port) == ("dpdk0.100", "dpdk1.200")


def test_forward_bond_takes_both_links():
    r = forward.Rlb(fwd_opts("rlb-bond"), "/tmp", "rlb-bond")
    conf = r.config().splitlines()
    assert f" port dpdk2 net_af_packet2,iface={forward.IN2_IF}" in conf
    assert " bond bond0 mode 0 slaves dpdk0 dpdk2 primary dpdk0" in conf
    # the bond is declared in the dataplane section, before its end
    assert conf.index(" bond bond0 mode 0 slaves dpdk0 dpdk2 primary dpdk0") < conf.index("!")
    assert f"dpip addr add {forward.IN_IP}/24 dev bond0" in conf
    assert r.gen_links == ((forward.GEN_IF, None), (forward.GEN2_IF, None))
    assert r.in_ifs == (forward.IN_IF, forward.IN2_IF) and r.in_port == "bond0"


class FakeGen:
    def __init__(self, line: dict):
        self.line = line
        self.pid = 1

    def stdout(self):
        return "noise\n" + json.dumps(self.line) + "\n"


def test_two_generators_report_as_one():
    g = forward.Generators([FakeGen({"queued": 10, "seconds": 3.0, "kicks": 2,
                                     "kick_errors": 0, "ring_full": 0}),
                            FakeGen({"queued": 5, "seconds": 3.2, "kicks": 1,
                                     "kick_errors": 1, "ring_full": 0})])
    assert g.report() == {"queued": 15, "seconds": 3.2, "kicks": 3, "kick_errors": 1,
                          "ring_full": 0, "generators": 2}


def test_delta_sums_a_bonds_links():
    a = {"fwd": {"f0": {"rx_packets": 10}, "f2": {"rx_packets": 100}}}
    b = {"fwd": {"f0": {"rx_packets": 15}, "f2": {"rx_packets": 107}}}
    assert forward.delta(a, b, ("fwd", "f0"), "rx_packets") == 5
    assert forward.delta(a, b, ("fwd", ("f0", "f2")), "rx_packets") == 12


def test_device_ratios_are_against_plain_rlb():
    assert set(forward.DEVICE_RATIOS) == {("rlb-vlan", "rlb"), ("rlb-vlan2", "rlb"),
                                          ("rlb-bond", "rlb")}


# ------------------------------------------------------------------ fnat.py


def test_fnat_bond_variant_parses_with_the_others():
    import fnat
    opts = fnat.parse_args(["--quick", "--peers", "rlb-lips16,rlb-bond-lips16,rlb-idle-lips16"])
    bond = fnat.Rlb(opts, "/tmp", "rlb-bond-lips16")
    assert bond.bond and bond.idle_us is None and len(bond.lips) == 16 and bond.wan == "bond0"
    idle = fnat.Rlb(opts, "/tmp", "rlb-idle-lips16")
    assert not idle.bond and idle.idle_us == 200 and len(idle.lips) == 16
    assert fnat.Rlb(opts, "/tmp", "rlb-bond-idle50").idle_us == 50
    assert fnat.is_bond_peer("rlb-bond") and not fnat.is_bond_peer("rlb-lips16")
    assert not fnat.is_bond_peer("haproxy")


def test_fnat_bond_config():
    import fnat
    opts = fnat.parse_args(["--quick", "--peers", "rlb-bond"])
    conf = fnat.Rlb(opts, "/tmp", "rlb-bond").config().splitlines()
    assert f" port dpdk2 net_af_packet2,iface={fnat.WAN2_IF}" in conf
    assert " bond bond0 mode 0 slaves dpdk1 dpdk2 primary dpdk1" in conf
    assert f"dpip addr add {fnat.VIP}/32 dev bond0" in conf
    assert not any(line.endswith("dev dpdk1") for line in conf)
    plain = fnat.Rlb(opts, "/tmp", "rlb").config()
    assert "bond" not in plain and f"dpip addr add {fnat.VIP}/32 dev dpdk1" in plain


def test_fnat_ratio_bond_over_single_port():
    import fnat_report
    opts = SimpleNamespace(peers=["rlb-lips16", "rlb-bond-lips16"], runs=1, tests=["cps"],
                           max_noise=15)
    results = [{"peer": p, "run": 1, "tests": {"cps": {"value": v, "other_load": {}}}}
               for p, v in (("rlb-lips16", 10000.0), ("rlb-bond-lips16", 8000.0))]
    s = fnat_report.summarize(results, opts)
    assert s["ratios"] == {"rlb-bond-lips16/rlb-lips16": {"cps": 0.8}}


def test_paired_ratios_round_by_round():
    opts = fwd_opts("rlb,rlb-vlan,rlb-bond")
    res = [{"forwarder": n, "run": i, "rx_pps": v, "cycles_per_packet": {"on_cpu": c}}
           for n, i, v, c in (("rlb", 1, 100, 1000.0), ("rlb-vlan", 1, 90, 1100.0),
                              ("rlb", 2, 200, 1000.0), ("rlb-vlan", 2, 220, 1200.0),
                              ("rlb", 3, 50, 1000.0), ("rlb-vlan", 3, 40, 1300.0))]
    res.append({"forwarder": "rlb-bond", "run": 1, "error": "x"})
    out = forward.paired_ratios(res, opts)
    assert set(out) == {"rlb-vlan/rlb"}
    v = out["rlb-vlan/rlb"]
    assert v["rounds"] == 3 and v["median"] == 0.9 and v["min"] == 0.8 and v["max"] == 1.1
    assert v["cycles_median"] == 1.2


def test_cycles_per_packet_of_the_worker():
    res = {"window": {"ports": {"workers": {"busy_cycles": 2_000_000, "rx_packets": 1000}}},
           "threads": {"forwarder": [{"user": 10, "system": 70}, {"user": 1, "system": 0}]}}
    assert forward.cycles_per_packet(res) == {"raw": 2000.0, "on_cpu": 1600.0,
                                              "worker_share": 0.8}
    assert forward.cycles_per_packet({"window": {}}) is None
