"""rlb.modes.snat: match services only, and a real server that is our own sapool WAN
address, port 0 (ipvsadm -r WANIP:0); one that is not ours yet is kept at weight 0 until
it is (the tutorial's keepalived quorum_up adds it)."""
import pytest

from rlb.errors import CommandError
from rlb.modes.snat import SNAT
from support.mode_model import Address, Dest, ModeModel, Svc, ip

WAN = ModeModel(addresses=[Address(ip("123.1.2.3"), sapool=True), Address(ip("10.0.0.1"))])
MATCH = Svc(match="proto=tcp,oif=dpdk1")


def test_the_sapool_wan_address_is_accepted():
    SNAT.check_dest(MATCH, Dest(ip("123.1.2.3"), 0), WAN)
    assert SNAT.match_only and SNAT.usable(Dest(ip("123.1.2.3"), 0), WAN)


def test_a_wan_address_not_ours_yet_waits_at_weight_0():
    SNAT.check_dest(MATCH, Dest(ip("8.8.8.8"), 0), WAN)
    assert SNAT.needs_own_address and not SNAT.usable(Dest(ip("8.8.8.8"), 0), WAN)


@pytest.mark.parametrize("svc, dest, error", [
    (Svc(ip("10.0.0.100")), Dest(ip("123.1.2.3"), 0), "SNAT needs a match service"),
    (MATCH, Dest(ip("123.1.2.3"), 53), "the port must be 0"),
    (MATCH, Dest(ip("10.0.0.1"), 0), "one of our addresses without sapool"),
])
def test_what_snat_cannot_serve_is_refused(svc, dest, error):
    with pytest.raises(CommandError, match=error):
        SNAT.check_dest(svc, dest, WAN)
