"""Range bans on a real nftables interval set in a private network namespace (root, slow): every address of
the banned /24 is dropped except the allowlisted one carved out of it; an address inside the range is
blocked already; a range replaces the single addresses it covers; lifting the range lets traffic through."""
from __future__ import annotations

import subprocess

import pytest

from secops.respond import Allowlist, DecisionEngine, NftablesEnforcer
from secops.store import Store
from tests.secops.testbed import Testbed, can_run

pytestmark = [pytest.mark.slow, pytest.mark.root]


@pytest.fixture()
def testbed():
    assert can_run() is None, can_run()
    tb = Testbed(attacker_ip="203.0.113.50")
    yield tb
    tb.close()


def test_range_ban_drops_the_range_but_not_the_carved_allowlisted_address(tmp_path, testbed):
    for extra in ("203.0.113.60", "203.0.113.70"):
        testbed.add_attacker_address(extra)
    nft = NftablesEnforcer(table="govctl_ranges", netns=testbed.fw)
    nft.ensure()
    store = Store(tmp_path / "s.db")
    engine = DecisionEngine(Allowlist(["203.0.113.70/32"]), store, nft)
    assert all(testbed.connects_from(a) for a in ("203.0.113.50", "203.0.113.60", "203.0.113.70"))

    engine.block("203.0.113.60", "single address first", ttl=600)
    assert engine.flush() == 1 and "203.0.113.60" in nft.blocked()
    decision = engine.block("203.0.113.0/24", "scanner farm", ttl=600)
    assert engine.flush() == 1 and decision.enforced
    assert "[carved: 203.0.113.70/32" in decision.reason
    held = nft.blocked()
    assert "203.0.113.60" not in held  # the range replaced the address it covers
    assert "203.0.113.70" not in held and "203.0.113.64/30" in held and "203.0.113.71" in held
    assert not testbed.connects_from("203.0.113.50")
    assert not testbed.connects_from("203.0.113.60")
    assert testbed.connects_from("203.0.113.70")  # allowlisted: carved out of the range
    # an address inside the range counts as blocked: the enforcer takes it without an overlap error
    assert nft.block([("203.0.113.99", 60)]) == []

    engine.unblock("203.0.113.0/24", "lifted")
    assert nft.blocked() == {}
    assert testbed.connects_from("203.0.113.50") and testbed.connects_from("203.0.113.60")
    rows = [(d["address"], d["action"], d["enforced"]) for d in reversed(store.decision_trail())]
    assert rows == [("203.0.113.60", "block", True), ("203.0.113.0/24", "block", True),
                    ("203.0.113.0/24", "unblock", True)]
    store.close()


def test_an_ipv6_range_is_an_element_of_the_ipv6_range_set(testbed):
    nft = NftablesEnforcer(table="govctl_ranges6", netns=testbed.fw)
    nft.ensure()
    assert nft.block([("2001:db8:1::/64", 60), ("2001:db8:1::5", 60), ("2001:db8:2::9", 60)]) == []
    held = nft.blocked()
    assert "2001:db8:1::/64" in held and "2001:db8:2::9" in held and "2001:db8:1::5" not in held
    nft.unblock(["2001:db8:1::/64"])
    assert list(nft.blocked()) == ["2001:db8:2::9"]


def test_a_set_made_before_range_bans_keeps_its_blocks_and_gains_a_range_set(testbed):
    subprocess.run(["ip", "netns", "exec", testbed.fw, "nft", "-f", "-"], check=True, text=True, input=(
        "add table inet govctl_old\n"
        "add set inet govctl_old blocklist { type ipv4_addr; flags timeout; }\n"
        "add chain inet govctl_old input { type filter hook input priority -10; policy accept; }\n"
        "add rule inet govctl_old input ip saddr @blocklist drop\n"
        f"add element inet govctl_old blocklist {{ {testbed.attacker_ip} timeout 300s }}\n"))
    nft = NftablesEnforcer(table="govctl_old", netns=testbed.fw)
    nft.ensure()  # the daemon's start with `manage: true`
    assert 290 <= nft.blocked()[testbed.attacker_ip] <= 300
    assert not testbed.connects_from(testbed.attacker_ip)
    assert nft.block([("198.51.100.0/24", 60)]) == [] and "198.51.100.0/24" in nft.blocked()
    nft.ensure()  # and again: nothing to change
    assert set(nft.blocked()) == {testbed.attacker_ip, "198.51.100.0/24"}
