"""Range bans, forgetting escalation and the signed blocklist exchange (issue #18, "Interception"), as a
user checks them: what is refused and why (CLI exit 2, API 422), what the decision trail says, what a
blocklist file holds and what an import blocks or skips. The real nft set is in test_ranges_netns.py."""
from __future__ import annotations

import io
import json
import time

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from govctl.cli import app as cli_app
from secops.address import AddressError, blockable_target
from secops.exchange import BlocklistRefused, export_blocklist, import_blocklist, read_blocklist, trusted_key
from secops.respond import Allowlist, DecisionEngine
from secops.store import Store
from tests.secops.conftest import _attack

BAD_RANGES = {
    "203.0.113.5/24": "host bits set; the range is 203.0.113.0/24",
    "0.0.0.0/0": "/0 is broader than the smallest range allowed",
    "::/0": "/0 is broader than the smallest range allowed",
    "10.0.0.0/8": "/8 is broader",
    "2001:db8::/32": "/32 is broader",
    "2001:db8:1::%eth0/64": "zone ids",
    "::ffff:203.0.113.0/120": "give it as IPv4: 203.0.113.0/24",
    "127.0.0.0/16": "overlaps 127.0.0.0/8",
    "169.254.0.0/16": "overlaps 169.254.0.0/16",
    "224.1.0.0/16": "overlaps 224.0.0.0/4",
    "fe80::/64": "overlaps fe80::/10",
    "203.0.113.0/024": "prefix length after / must be a plain number",
    "203.0.113.0/": "prefix length after / must be a plain number",
    "203.0.113.0/33": "is not a CIDR range",
    "not-a-range/24": "is not a CIDR range",
}


@pytest.mark.parametrize("text,why", BAD_RANGES.items())
def test_bad_ranges_are_refused_naming_the_input_and_why(text, why):
    with pytest.raises(AddressError) as refused:
        blockable_target(text)
    assert why in str(refused.value) and text in str(refused.value)


def test_ranges_are_canonical_and_the_minimum_prefix_is_configurable():
    assert blockable_target("203.0.113.0/24") == "203.0.113.0/24"
    assert blockable_target("2001:DB8:1::/64") == "2001:db8:1::/64"
    assert blockable_target("203.0.113.9/32") == "203.0.113.9"  # a one-address range is that address
    assert blockable_target("198.18.0.0/15", {4: 15, 6: 48}) == "198.18.0.0/15"
    with pytest.raises(AddressError, match="/15 is broader than the smallest range allowed for IPv4 \\(/16\\)"):
        blockable_target("198.18.0.0/15")


def test_a_range_holding_an_allowlisted_address_is_carved_and_says_so(tmp_path):
    store = Store(tmp_path / "s.db")
    engine = DecisionEngine(Allowlist(["203.0.113.7/32", "10.20.0.0/16"]), store, None, dry_run=True)
    decision = engine.block("203.0.113.0/24", "scanner farm")
    assert decision.address == "203.0.113.0/24"
    assert "[carved: 203.0.113.7/32 allowlisted, never blocked]" in decision.reason
    pieces = engine.elements("203.0.113.0/24")
    assert "203.0.113.7" not in pieces and "203.0.113.6" in pieces and "203.0.113.8/29" in pieces
    assert sum(2 ** (32 - int(p.partition("/")[2] or 32)) for p in pieces) == 255  # everything but .7
    with pytest.raises(AddressError, match="inside the allowlisted 10.20.0.0/16"):
        engine.block("10.20.4.0/24", "ops network")
    assert [b["address"] for b in store.active_bans()] == ["203.0.113.0/24"]
    # an address inside a range in force is blocked already: no second decision
    assert engine._covered("203.0.113.40", time.time())
    lifted = engine.unblock("203.0.113.0/24", "done")
    assert lifted.action == "unblock" and store.active_bans() == []
    store.close()


def _range_engine(tmp_path, addresses: int):
    from secops.config import load_config
    from secops.daemon import Engine
    from secops.stores import open_store
    cfgfile = tmp_path / "secops.yaml"
    cfgfile.write_text(json.dumps({"store": str(tmp_path / "s.db"), "enforcer": {"kind": "none"}, "topology": None,
                                   "response": {"range_bans": {"enabled": True, "addresses": addresses,
                                                               "window": 600, "ttl": 1800}}}))
    cfg = load_config(cfgfile)
    store = open_store(cfg)
    return Engine(cfg, store, dry_run=True), store


@pytest.mark.parametrize("attackers,expect_range", [(3, False), (4, True)])
def test_the_range_is_blocked_at_n_distinct_attackers_and_not_at_n_minus_1(tmp_path, attackers, expect_range):
    from secops.daemon import ingest_stream
    engine, store = _range_engine(tmp_path, addresses=4)
    lines = b"".join(_attack(f"198.51.100.{10 + i}", i) for i in range(attackers))
    ingest_stream(engine, io.BytesIO(lines), "test", "auto", "auto", 1000)
    bans = {b["address"]: b for b in store.active_bans()}
    assert {f"198.51.100.{10 + i}" for i in range(attackers)} <= set(bans)
    assert ("198.51.100.0/24" in bans) is expect_range
    if expect_range:
        assert bans["198.51.100.0/24"]["ttl"] == 1800
        assert bans["198.51.100.0/24"]["reason"].startswith("range: 4 addresses of 198.51.100.0/24")
    store.close()


def test_escalation_forgets_one_offence_per_quiet_period(tmp_path):
    store = Store(tmp_path / "s.db")
    engine = DecisionEngine(Allowlist(), store, None, ttl=60, escalation=4, quiet_period=3600, dry_run=True)
    t0 = 1_800_000_000.0
    assert engine.block("203.0.113.9", "1st", now=t0).ttl == 60
    assert engine.block("203.0.113.9", "2nd", now=t0 + 61).ttl == 240   # right after: escalated
    assert engine.block("203.0.113.9", "3rd", now=t0 + 302).ttl == 960
    end = t0 + 302 + 960
    assert engine.block("203.0.113.9", "4th", now=end + 3599).ttl == 3840  # quiet < 1 period: still ×4³
    end = end + 3599 + 3840
    assert engine.block("203.0.113.9", "5th", now=end + 2 * 3600 + 1).ttl == 960  # 4 offences, 2 forgotten
    end = end + 2 * 3600 + 1 + 960
    # a restarted engine continues from the stored count and the block's end, and forgets the same way
    later = DecisionEngine(Allowlist(), store, None, ttl=60, escalation=4, quiet_period=3600, dry_run=True)
    assert later.offences["203.0.113.9"] == 3 and later.last_until["203.0.113.9"] == end
    assert later.block("203.0.113.9", "6th", now=end + 3600).ttl == 960  # 3 offences, 1 forgotten
    end = end + 3600 + 960
    assert later.block("203.0.113.9", "7th", now=end + 10 * 3600).ttl == 60  # long quiet: all forgotten
    never = DecisionEngine(Allowlist(), store, None, ttl=60, escalation=4, quiet_period=0, dry_run=True)
    assert never.block("203.0.113.9", "8th", now=end + 365 * 86400).ttl == 240  # quiet_period 0: never forgets
    store.close()


@pytest.fixture(scope="module")
def keystore_state(tmp_path_factory):
    """A keystore in a state folder of its own (opened once per module: its key derivation is slow by design)."""
    from core import paths
    state = tmp_path_factory.mktemp("ranges") / "state"
    (state / "crypto").mkdir(parents=True)
    (state / "crypto" / "config.yaml").write_text("suite: gm\nkdf_iterations: 100000\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(paths, "STATE", state)
        patch.setenv("GOVCTL_STATE", str(state))
        patch.setenv("GOVCTL_CRYPTO_PASSPHRASE", "blocklist test 测试")
        for name in ("GOVCTL_CRYPTO_PASSPHRASE_FILE", "GOVCTL_CRYPTO_ROOT_KEY_FILE", "GOVCTL_CRYPTO_CONFIG"):
            patch.delenv(name, raising=False)
        from crypto.keystore import Keystore
        yield Keystore.open(events=None)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, keystore_state):
    """A list exported by "hangzhou": an address, a range, and an ops address of the importing city."""
    store = Store(tmp_path_factory.mktemp("hangzhou") / "hz.db")
    engine = DecisionEngine(Allowlist(), store, None, dry_run=True)
    engine.block("203.0.113.9", "ssh brute force", ttl=3600)
    engine.block("198.51.100.0/24", "scanner farm", ttl=7200)
    engine.block("192.0.2.10", "web attack", ttl=600)
    doc = export_blocklist(store, keystore_state, "hangzhou", valid_for=3600)
    store.close()
    data = json.dumps(doc, ensure_ascii=False, indent=1).encode()
    return data, doc["signature"]["public_key"]


def test_export_import_round_trip_blocks_as_the_issuer_and_skips_the_never_block_list(tmp_path, exported):
    data, pubkey = exported
    doc = json.loads(data)
    assert doc["format"] == "govctl-blocklist" and doc["signature"]["alg"] == "sm2"
    assert {e["target"] for e in doc["entries"]} == {"203.0.113.9", "198.51.100.0/24", "192.0.2.10"}
    local = Store(tmp_path / "sh.db")
    engine = DecisionEngine(Allowlist(["192.0.2.0/28"]), local, None, dry_run=True)
    result = import_blocklist(read_blocklist(data, [trusted_key(pubkey)]), engine)
    assert sorted(d["address"] for d in result["blocked"]) == ["198.51.100.0/24", "203.0.113.9"]
    assert result["skipped"] == [{"target": "192.0.2.10",
                                  "why": "'192.0.2.10' is on the local never-block list (allowlist)"}]
    bans = {b["address"]: b for b in local.active_bans()}
    assert set(bans) == {"198.51.100.0/24", "203.0.113.9"}
    assert all(b["actor"] == "import:hangzhou" for b in bans.values())
    assert bans["198.51.100.0/24"]["reason"] == "import:hangzhou: scanner farm"
    assert 7100 < bans["198.51.100.0/24"]["ttl"] <= 7200  # the issuer's end, not a new TTL
    local.close()


def test_a_list_changed_by_one_byte_is_refused_and_blocks_nothing(tmp_path, exported):
    data, pubkey = exported
    at = data.index(b"scanner farm")
    tampered = data[:at] + b"S" + data[at + 1:]
    with pytest.raises(BlocklistRefused, match="signature does not verify"):
        read_blocklist(tampered, [trusted_key(pubkey)])
    assert read_blocklist(data, [trusted_key(pubkey)])["issuer"] == "hangzhou"  # untouched: accepted
    from crypto.signing import generate
    stranger = generate("sm2").public_key().to_bytes().hex()
    with pytest.raises(BlocklistRefused, match="signature does not verify"):  # signed, but not by the key trusted
        read_blocklist(data, [trusted_key(stranger)])
    from core.errors import BadInput
    with pytest.raises(BadInput, match="is not JSON"):  # a byte that breaks the JSON
        read_blocklist(data[:10] + b"\x00" + data[11:], [trusted_key(pubkey)])


def test_an_expired_list_is_refused(exported):
    data, pubkey = exported
    with pytest.raises(BlocklistRefused, match="expired at"):
        read_blocklist(data, [trusted_key(pubkey)], now=time.time() + 3601)


def test_cli_refuses_bad_cidr_with_exit_2_and_a_tampered_list_with_exit_1(tmp_path, exported):
    data, pubkey = exported
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps({"store": str(tmp_path / "cli.db"), "enforcer": {"kind": "none"}, "topology": None}))
    runner = CliRunner()
    for bad in ("203.0.113.5/24", "0.0.0.0/0", "fe80::1%eth0/64", "::ffff:203.0.113.0/120"):
        out = runner.invoke(cli_app, ["bans", "add", bad, "--reason", "x", "--dry-run", "--config", str(cfg)])
        assert out.exit_code == 2, (bad, out.output)
        assert bad in out.output and "Traceback" not in out.output
    ok = runner.invoke(cli_app, ["bans", "add", "203.0.113.0/24", "--reason", "farm", "--dry-run", "--config", str(cfg)])
    assert ok.exit_code == 0 and "blocked 203.0.113.0/24" in ok.output
    listed = tmp_path / "list.json"
    listed.write_bytes(data.replace(b"ssh brute force", b"ssh brute forcE"))
    out = runner.invoke(cli_app, ["bans", "import", str(listed), "--pubkey", pubkey, "--dry-run", "--config", str(cfg)])
    assert out.exit_code == 1 and "signature does not verify" in out.output and "Nothing was blocked" in out.output
    out = runner.invoke(cli_app, ["bans", "import", str(listed), "--pubkey", "zz", "--config", str(cfg)])
    assert out.exit_code == 2 and "--pubkey" in out.output


def test_api_range_bans_422_and_the_exchange_endpoints(api_app, exported):
    app, store, keys, _ = api_app
    client = TestClient(app)
    security = {"Authorization": f"Bearer {keys['security']}"}
    auditor = {"Authorization": f"Bearer {keys['auditor']}"}
    for bad in ("203.0.113.5/24", "0.0.0.0/0", "2001:db8::%eth0/64", "::ffff:203.0.113.0/120", "10.20.0.0/24"):
        r = client.post("/bans", json={"address": bad, "reason": "x"}, headers=security)
        assert r.status_code == 422 and bad in r.text, (bad, r.text)
    r = client.post("/bans", json={"address": "203.0.113.0/24", "reason": "farm", "ttl": 600}, headers=security)
    assert r.status_code == 201 and r.json()["address"] == "203.0.113.0/24"
    assert "203.0.113.0/24" in [b["address"] for b in client.get("/bans", headers=auditor).json()]
    assert client.delete("/bans/203.0.113.0/24", headers=auditor).status_code == 403
    r = client.delete("/bans/203.0.113.0/24", params={"reason": "done"}, headers=security)
    assert r.status_code == 200 and r.json()["action"] == "unblock"
    data, pubkey = exported
    assert client.post("/bans/import", json={"blocklist": json.loads(data), "pubkey": pubkey},
                       headers=auditor).status_code == 403
    doc = json.loads(data)
    doc["entries"][0]["until"] = "2099-01-01T00:00:00Z"
    r = client.post("/bans/import", json={"blocklist": doc, "pubkey": pubkey}, headers=security)
    assert r.status_code == 422 and "signature does not verify" in r.text
    r = client.post("/bans/import", json={"blocklist": json.loads(data), "pubkey": pubkey}, headers=security)
    assert r.status_code == 200 and len(r.json()["blocked"]) == 3
    r = client.get("/bans/export", params={"issuer": "shanghai"}, headers=security)
    assert r.status_code == 200 and r.json()["issuer"] == "shanghai" and r.json()["signature"]["alg"] == "sm2"
    assert {e["target"] for e in r.json()["entries"]} >= {"203.0.113.9", "198.51.100.0/24", "192.0.2.10"}
    assert client.get("/bans/export", headers=auditor).status_code == 403


def test_the_range_watch_stays_bounded_under_a_scan_from_everywhere():
    from secops.respond import RangePolicy
    engine = DecisionEngine(Allowlist(), None, None, dry_run=True, range_policy=RangePolicy(addresses=2, window=60))

    class Rule:
        name, title, response = "ssh_bruteforce_fast", "SSH brute force", "block"

    class Alert:
        def __init__(self, ip):
            self.group, self.rule, self.count, self.id = {"source.ip": ip}, Rule, 5, None

    engine.on_alert(Alert("198.51.100.1"), now=0.0)
    assert engine.on_alert(Alert("198.51.100.2"), now=1.0) is not None
    assert "198.51.100.0/24" in engine.active  # the range, from 2 addresses; its watch is empty again
    engine.watch_limit = 50
    for n in range(120):  # one address in each of 120 /24s, each after the window of the one before
        engine.on_alert(Alert(f"10.1.{n}.9"), now=1000.0 + 100 * n)
    assert len(engine._watch) <= 51 and "10.1.119.0/24" in engine._watch and "198.51.100.0/24" not in engine._watch
