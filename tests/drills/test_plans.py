"""Drill plans as data: validation before anything is touched, reports, GB/T 20988 levels."""
from __future__ import annotations

import pytest

from drills.plans import PlanError, load_plan, shipped_plans
from drills.report import capability_level, metrics, to_html

LAB_NAMES = {"center": {"prod", "samecity", "remote"}, "site": {"site-a", "site-b"},
             "link": {"prod-samecity-a", "prod-samecity-b", "prod-remote-a", "prod-remote-b",
                      "samecity-remote-a", "samecity-remote-b"}}


def test_every_shipped_plan_is_valid_against_the_lab():
    ids = {load_plan(p, LAB_NAMES).id for p in shipped_plans()}
    assert ids == {"samecity-switchover", "production-loss", "site-loss", "link-failure",
                   "backup-restore"}


@pytest.mark.parametrize("step, message", [
    ("{action: explode}", "unknown action 'explode'"),
    ("{action: promote}", "promote: missing argument 'center'"),
    ("{action: promote, center: prod, force: true}", "promote: unknown argument 'force'"),
    ("{action: promote, center: mars}", "promote: center 'mars' is not one of prod, remote, samecity"),
    ("{action: cut_link, link: nowhere}", "cut_link: link 'nowhere' is not one of"),
    ("{action: replication_lag_below, seconds: soon}", "seconds must be a number"),
])
def test_bad_steps_are_refused_with_the_reason(tmp_path, step, message):
    plan = tmp_path / "bad.yaml"
    plan.write_text("id: bad\nname: {zh: 坏, en: bad}\ndescription: {zh: 坏, en: bad}\ntargets: {}\n"
                    f"steps:\n  preflight: []\n  recover:\n    - {step}\n  failback: []\n")
    with pytest.raises(PlanError) as caught:
        load_plan(plan, LAB_NAMES)
    assert message in str(caught.value) and "steps.recover[0]" in str(caught.value)


def test_structure_errors_name_the_field(tmp_path):
    plan = tmp_path / "bad.yaml"
    plan.write_text("id: Bad Id\nname: {zh: x}\ndescription: {zh: x, en: x}\ntargets: {rto: 3}\nsteps: {}\n")
    text = str(pytest.raises(PlanError, load_plan, plan).value)
    for fragment in ("id:", "'en' is a required property", "'rto' was unexpected",
                     "'preflight' is a required property"):
        assert fragment in text


@pytest.mark.parametrize("rpo, rto, level", [(0, 20, 6), (0, 3600, 5), (4.2, 40, 5),
                                              (7200, 40, 4), (None, 40, None)])
def test_gbt20988_level_from_measured_rpo_and_rto(rpo, rto, level):
    found = capability_level({"rpo_seconds": rpo, "rto_seconds": rto})
    assert (found or {}).get("level") == level


def test_report_html_and_metrics():
    result = {"scenario": "production-loss", "name": {"zh": "生产中心整体失效", "en": "Loss"},
              "run_id": "r1", "verdict": "pass", "started": 100.0, "ended": 160.0,
              "targets": {"rto_seconds": 30}, "anomalies": [],
              "measured": {"rto_seconds": 3.5, "rpo_transactions": 0, "rpo_seconds": 0.0,
                           "detection_seconds": 42.0},
              "steps": [{"phase": "fault", "action": "power_off_center", "started": 101.0,
                         "seconds": 0.2, "ok": True, "detail": "center prod: 3 hosts powered off"}]}
    result["gbt20988"] = capability_level(result["measured"])
    page = to_html(result)
    for text in ("灾备演练报告", "恢复时间目标 RTO", "第6级", "power_off_center", "生产中心整体失效"):
        assert text in page
    exposition = metrics(result)
    assert 'govctl_drill_rto_seconds{scenario="production-loss"} 3.5' in exposition
    assert 'govctl_drill_rpo_transactions{scenario="production-loss"} 0' in exposition
    assert 'govctl_drill_success{scenario="production-loss"} 1' in exposition


def test_report_is_sm2_signed_when_the_keystore_unlocks(tmp_path, monkeypatch):
    from crypto.signing import document_signature_valid
    from crypto.keystore import Keystore
    from drills.report import REPORT_KEY, sign

    monkeypatch.setenv("GOVCTL_STATE", str(tmp_path))
    monkeypatch.setenv("GOVCTL_CRYPTO_PASSPHRASE", "drill report test passphrase")
    monkeypatch.setattr("core.paths.STATE", tmp_path)
    import crypto.keystore as ks_module

    path = tmp_path / "keystore.json"
    monkeypatch.setattr(ks_module, "default_path", lambda: path)
    signed = sign({"scenario": "link-failure", "verdict": "pass"})
    assert "unsigned" not in signed, signed.get("unsigned")
    trusted = list(Keystore.open(path, events=None).public_keys(REPORT_KEY).values())
    assert document_signature_valid(signed, trusted)
    tampered = signed | {"verdict": "fail"}
    assert not document_signature_valid(tampered, trusted)


def test_report_without_keystore_says_why_it_is_unsigned(monkeypatch, tmp_path):
    from drills.report import sign

    for var in ("GOVCTL_CRYPTO_PASSPHRASE", "GOVCTL_CRYPTO_PASSPHRASE_FILE",
                "GOVCTL_CRYPTO_ROOT_KEY_FILE"):
        monkeypatch.delenv(var, raising=False)
    # an empty state: no keystore and no root key file (`govctl up` makes state/keys/root.key the default)
    monkeypatch.setenv("GOVCTL_STATE", str(tmp_path))
    monkeypatch.setattr("core.paths.STATE", tmp_path)
    out = sign({"scenario": "x"})
    assert out["unsigned"].startswith("not signed:")
