"""The address chokepoint (secops/address.py) as users meet it: `govctl bans add/remove`, the API's
POST /bans and DELETE /bans/{address}, the allowlist and the decision engine — one canonical form,
special addresses never blocked, the reason given (exit 2 on the CLI, 422 on the API)."""
from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from govctl.cli import app as cli
from secops.address import AddressError, blockable, parse
from secops.api import Tokens, create_app
from secops.respond import Allowlist, DecisionEngine
from secops.store import Store

MGMT = "10.11.4.10"  # inside the allowlisted management network of these tests

# (address given, words the refusal must contain)
REFUSED = [
    ("fe80::1%eth0", "zone id"),
    (f"::ffff:{MGMT}", "allowlist"),
    ("0.0.0.0", "unspecified"),
    ("127.0.0.1", "loopback"),
    ("::", "unspecified"),
    ("ff02::1", "multicast"),
    ("::1", "loopback"),
    ("169.254.10.1", "link-local"),
    ("fe80::1", "link-local"),
    ("224.0.0.5", "multicast"),
    ("255.255.255.255", "broadcast"),
    ("240.0.0.1", "reserved"),
    ("0.1.2.3", "this network"),
    (MGMT, "allowlist"),
    ("203.0.113.999", "not an IP address"),
    ("1" * 80, "longer than"),
]


@pytest.mark.parametrize("text, canonical", [
    ("::ffff:10.11.4.10", "10.11.4.10"),  # IPv4-mapped
    ("::ffff:0a0b:040a", "10.11.4.10"),
    ("::203.0.113.9", "203.0.113.9"),  # IPv4-compatible
    ("2001:DB8:0:0::9", "2001:db8::9"),
    ("203.0.113.9", "203.0.113.9"),
])
def test_one_canonical_form(text, canonical):
    assert str(parse(text)) == canonical


@pytest.mark.parametrize("text", ["fe80::1%x", "2001:db8::1%1", 3232235777, "010.0.0.1", " 1.2.3.4"])
def test_unusable_spellings_are_refused(text):
    with pytest.raises(AddressError):
        parse(text)


def test_public_and_private_unicast_may_be_blocked():
    for text in ("203.0.113.9", "198.51.100.7", "2001:db8::9", "10.1.2.3", "100.64.0.1"):
        assert str(blockable(text)) == text


def test_allowlist_compares_canonical_forms():
    allow = Allowlist(["10.11.4.0/24", "::ffff:192.0.2.0/120"])  # a mapped range is the IPv4 range
    assert MGMT in allow and f"::ffff:{MGMT}" in allow and "::10.11.4.10" in allow
    assert "192.0.2.77" in allow and "::ffff:192.0.2.77" in allow
    assert "10.11.5.1" not in allow and "fe80::1%x" not in allow and "junk" not in allow


def _engine(tmp_path):
    store = Store(tmp_path / "s.db")
    return DecisionEngine(Allowlist(["10.11.4.0/24"]), store, None, dry_run=True), store


@pytest.mark.parametrize("text, words", REFUSED)
def test_engine_refuses_with_the_reason(tmp_path, text, words):
    engine, store = _engine(tmp_path)
    with pytest.raises(ValueError, match=words):
        engine.block(text, "manual")
    assert store.decision_trail() == [] and engine.blocked_addresses() == []
    store.close()


def test_engine_records_the_canonical_address(tmp_path):
    engine, store = _engine(tmp_path)
    assert engine.block("::ffff:203.0.113.9", "manual").address == "203.0.113.9"
    assert engine.unblock("::ffff:203.0.113.9", "lifted").address == "203.0.113.9"
    assert [d["address"] for d in store.decision_trail()] == ["203.0.113.9", "203.0.113.9"]
    store.close()


# ------------------------------------------------------------------ the CLI
@pytest.fixture()
def cli_config(tmp_path):
    cfg = tmp_path / "secops.yaml"
    cfg.write_text(json.dumps({"store": str(tmp_path / "s.db"), "enforcer": {"kind": "none"},
                               "allowlist": ["10.11.4.0/24"]}))
    return cfg


def _govctl(*args):
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize("text, words", [
    ("fe80::1%eth0", "zone id"), (f"::ffff:{MGMT}", "allowlist"), ("0.0.0.0", "unspecified"),
    ("127.0.0.1", "loopback"), ("::", "unspecified"), ("ff02::1", "multicast")])
@pytest.mark.parametrize("mode", [["--dry-run"], []])  # --dry-run, and a config whose enforcer kind is none
def test_cli_bans_add_refuses_with_exit_2(cli_config, text, words, mode):
    result = _govctl("bans", "add", text, "--reason", "test", "--config", str(cli_config), *mode)
    assert result.exit_code == 2, result.output
    assert words in result.stderr and text in result.stderr
    listed = _govctl("bans", "list", "--trail", "--json", "--config", str(cli_config))
    assert json.loads(listed.stdout) == []  # nothing decided


def test_cli_bans_add_accepts_a_public_address_in_any_spelling(cli_config):
    for text in ("203.0.113.9", "::ffff:198.51.100.7", "2001:db8::9"):
        result = _govctl("bans", "add", text, "--reason", "test", "--config", str(cli_config), "--json")
        assert result.exit_code == 0, result.output
    bans = json.loads(_govctl("bans", "list", "--json", "--config", str(cli_config)).stdout)
    assert sorted(b["address"] for b in bans) == ["198.51.100.7", "2001:db8::9", "203.0.113.9"]
    lifted = _govctl("bans", "remove", "::ffff:198.51.100.7", "--config", str(cli_config), "--json")
    assert lifted.exit_code == 0 and json.loads(lifted.stdout)["address"] == "198.51.100.7"
    refused = _govctl("bans", "remove", "fe80::1%eth0", "--config", str(cli_config))
    assert refused.exit_code == 2 and "zone id" in refused.stderr


# ------------------------------------------------------------------ the API
@pytest.fixture()
def api(tmp_path):
    store = Store(tmp_path / "s.db")
    tokens = Tokens(tmp_path / "tokens.yaml")
    key = tokens.add("sec", "security")
    decisions = DecisionEngine(Allowlist(["10.11.4.0/24"]), store, None, dry_run=True)
    yield TestClient(create_app(store, tmp_path / "tokens.yaml", decisions)), {"Authorization": f"Bearer {key}"}
    store.close()


@pytest.mark.parametrize("text, words", REFUSED)
def test_api_post_bans_refuses_with_422(api, text, words):
    client, auth = api
    response = client.post("/bans", headers=auth, json={"address": text, "reason": "test", "ttl": 60})
    assert response.status_code == 422 and words in response.json()["detail"]
    assert client.get("/bans", headers=auth).json() == []


def test_api_canonical_ban_and_lift(api):
    client, auth = api
    made = client.post("/bans", headers=auth, json={"address": "::ffff:203.0.113.9", "reason": "t", "ttl": 60})
    assert made.status_code == 201 and made.json()["address"] == "203.0.113.9" and made.json()["id"] is not None
    assert [b["address"] for b in client.get("/bans", headers=auth).json()] == ["203.0.113.9"]
    bad = client.delete("/bans/fe80::1%25x", headers=auth)  # %25: the URL spelling of %
    assert bad.status_code == 422 and "zone id" in bad.json()["detail"]
    assert client.delete("/bans/not-an-address", headers=auth).status_code == 422
    assert client.delete("/bans/::ffff:203.0.113.9", headers=auth).json()["address"] == "203.0.113.9"
    assert client.get("/bans", headers=auth).json() == []
