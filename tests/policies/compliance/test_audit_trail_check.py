"""crypto.audit_trail (issue 19): the security-audit items 8.1.4.3 b) and 8.1.5.2 a)/b) read their evidence
from the trail of platform actions: entries over the period, the kinds of actions covered, the log verifies."""
from __future__ import annotations

import pytest

from policies.compliance import COMPLIANT, NON_COMPLIANT, PARTIAL
from policies.compliance.checks import CHECKS, Evidence, Missing

from .conftest import evaluate, fixture_layers

check = CHECKS["crypto.audit_trail"]


def test_a_covering_verified_recent_trail_is_compliant():
    outcome = check(Evidence(fixture_layers()))
    assert outcome.verdict == COMPLIANT and "操作审计日志 412 条" in outcome.detail and "日志验证通过" in outcome.detail
    report = evaluate("djcp", fixture_layers())
    items = {i["id"]: i for i in report["items"]}
    for item in ("CE-AU-B", "MC-AUD-A", "MC-AUD-B"):
        [trail] = [e for e in items[item]["evidence"] if e["check"] == "crypto.audit_trail"]
        assert trail["verdict"] == COMPLIANT and trail["source"] == "crypto.json#trail", item


def test_gaps_silence_tampering_and_an_empty_trail():
    layers = fixture_layers()
    trail = layers["crypto"]["data"]["trail"]
    del trail["kinds"]["ban"], trail["kinds"]["harden"]
    outcome = check(Evidence(layers))
    assert outcome.verdict == PARTIAL and "未见主机加固、拦截封禁类操作的记录" in outcome.detail

    layers = fixture_layers()
    layers["crypto"]["data"]["trail"]["last"] = "2026-11-01T00:00:00+00:00"  # collected 2026-11-22
    assert "最近 21 天无记录" in check(Evidence(layers)).detail

    layers = fixture_layers()
    layers["crypto"]["data"]["audit_log"].update(ok=False, problems=["entries 3..9 do not match the checkpoint"])
    outcome = check(Evidence(layers))
    assert outcome.verdict == NON_COMPLIANT and "entries 3..9" in outcome.detail

    layers = fixture_layers()
    layers["crypto"]["data"]["trail"] = {"entries": 0, "first": None, "last": None, "kinds": {}, "failed": 0}
    with pytest.raises(Missing, match="the audit trail is empty"):
        check(Evidence(layers))
