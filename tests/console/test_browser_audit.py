"""The audit log page (issue 19) in a real browser: the auditor signs in (after one wrong password), finds
both sign-ins and the user changes on the 审计日志 page, filters them, is told inline that an entry not yet
under a signed checkpoint has no proof, then downloads a proof that verifies; the ops role has no such page."""
from __future__ import annotations

import json

import pytest

from .browser import IMG, chromium, expect_text  # noqa: F401 (chromium: the module's browser fixture)
from .test_browser import page, server, sign_in, watched  # noqa: F401 (fixtures: a server of this module's own)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trail_state(tmp_path_factory):
    """This module's own state (audit log, keystore), set before the server adds its users."""
    from core import paths
    from crypto.audit import AuditLog

    state = tmp_path_factory.mktemp("state")
    (state / "crypto").mkdir()
    (state / "crypto" / "config.yaml").write_text("suite: gm\nkdf_iterations: 100000\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(paths, "STATE", state)
        patch.setenv("GOVCTL_STATE", str(state))
        patch.setenv("GOVCTL_CRYPTO_PASSPHRASE", "browser test passphrase 审计")
        patch.setenv("GOVCTL_ACTOR", "admin")
        AuditLog._open_logs.clear()
        yield state
        AuditLog._open_logs.clear()


@pytest.fixture(scope="module")
def audited(trail_state, server):
    return server


def rows(page) -> list[str]:
    return [r.inner_text() for r in page.get_by_test_id("audit-table").locator("tbody tr").all()]


def test_auditor_filters_the_trail_and_downloads_a_proof(audited, watched, trail_state):
    from crypto import audit
    from crypto.keystore import Keystore

    base, _ = audited
    page, watch = watched
    wrong = page.request.post(f"{base}/api/session", data={"name": "zhao.lei", "password": "not-the-password"})
    assert wrong.status == 401  # (through the API: the page's own 401 would show as a console error)
    sign_in(page, base, "zhao.lei")

    page.get_by_test_id("nav-audit").click()
    page.get_by_test_id("audit-table").locator("tbody tr").first.wait_for()
    listed = rows(page)
    assert "console.sign-in" in listed[0] and "zhao.lei" in listed[0] and "成功" in listed[0]  # newest first
    assert "console.sign-in" in listed[1] and "失败：bad-credentials" in listed[1]
    page.get_by_test_id("audit-action").fill("user")
    page.get_by_test_id("audit-search").click()
    expect_text(page, "共 3 条")
    assert sorted(r.split("\t")[4].strip() for r in rows(page)) == ["li.na", "wang.fang", "zhao.lei"]
    assert all("user.add" in r and '"role":' in r for r in rows(page))
    page.screenshot(path=IMG / "console-audit.png", full_page=True)

    # a proof needs a signed checkpoint: said inline in the page's language, then it downloads and verifies
    first_index = rows(page)[0].split("\t")[0].strip()
    page.get_by_test_id(f"proof-{first_index}").click()
    page.get_by_test_id("audit-error").filter(has_text="尚未被已签名的检查点覆盖").wait_for()
    expected = "Failed to load resource: the server responded with a status of 409 (Conflict)"
    assert watch.errors == [expected]  # the browser logs the answer it was meant to get; nothing else
    watch.errors.clear()
    audit.checkpoint()
    with page.expect_download() as download:
        page.get_by_test_id(f"proof-{first_index}").click()
    assert download.value.suggested_filename == f"audit-entry-{first_index}-proof.json"
    proof = json.loads(open(download.value.path(), encoding="utf-8").read())
    trusted = list(Keystore.open(events=None).public_keys(audit.AUDIT_KEY).values())
    valid, why = audit.verify_proof(proof, trusted)
    assert valid, why
    watch.assert_clean()


def test_ops_has_no_audit_page(audited, watched):
    base, _ = audited
    page, watch = watched
    sign_in(page, base, "wang.fang")
    assert page.get_by_test_id("nav-audit").count() == 0
    page.goto(f"{base}/#/audit")
    page.get_by_test_id("audit-hidden").filter(has_text="审计日志需要“安全”或“审计”角色").wait_for()
    answer = page.request.get(f"{base}/api/audit")
    assert answer.status == 403
    watch.assert_clean()
