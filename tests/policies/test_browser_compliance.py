"""The compliance page (issue #19) in a real browser: the auditor runs a 等保 L3 report from the saved
evidence, opens it when it is ready, reads the score and the counts by verdict, filters to 不符合 + high risk,
expands an area and an item down to its deciding evidence, downloads the PDF (a PDF) and the signed pack,
uploads the pack and sees it verified, then a tampered copy refused naming the changed file, and a file that
is not a zip refused inline. Ops reads the reports but has no run form."""
from __future__ import annotations

import json
import re
import shutil
import zipfile

import pytest

from console.app import DEFAULT_STATIC, create_console_app
from policies import api as compliance_api
from policies.compliance import records

from tests.console.browser import IMG, chromium, served_in_thread  # noqa: F401 (chromium: the module's browser fixture)
from tests.console.conftest import add_users
from tests.console.test_browser import page, sign_in, watched  # noqa: F401 (fixtures)

from .compliance.conftest import FIXTURES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The console with the compliance extension on its own state (keystore, saved lab evidence)."""
    from core import paths
    from crypto.audit import AuditLog

    assert (DEFAULT_STATIC / "index.html").exists(), "the console is not built: run `make setup` (npm ci + vite build)"
    folder = tmp_path_factory.mktemp("compliance")
    state = folder / "state"
    (state / "crypto").mkdir(parents=True)
    (state / "crypto" / "config.yaml").write_text("suite: gm\nkdf_iterations: 100000\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(paths, "STATE", state)
        patch.setenv("GOVCTL_STATE", str(state))
        patch.setenv("GOVCTL_CRYPTO_PASSPHRASE", "browser test passphrase 合规")
        patch.setenv("GOVCTL_ACTOR", "admin")
        AuditLog._open_logs.clear()
        shutil.copytree(FIXTURES, records.saved_evidence_dir())
        users = add_users(folder / "console" / "users.yaml")
        app = create_console_app(folder / "secops.db", folder / "tokens.yaml", users,
                                 extensions=[compliance_api.EXTENSION])
        with served_in_thread(app) as base:
            yield base
        AuditLog._open_logs.clear()


def choose(page, select_testid: str, option: str) -> None:
    page.get_by_test_id(select_testid).click()
    page.locator(".el-select-dropdown__item:visible").filter(has_text=re.compile(f"^{re.escape(option)}$")).click()


def test_auditor_runs_filters_downloads_and_verifies_a_report(served, watched, tmp_path):
    base = served
    page, watch = watched
    IMG.mkdir(parents=True, exist_ok=True)
    sign_in(page, base, "zhao.lei")
    page.get_by_test_id("nav-compliance").click()
    page.get_by_test_id("comply-reports").filter(has_text="尚无报告记录").wait_for()

    page.get_by_test_id("comply-run").click()  # 等保 2.0, 第3级, saved evidence: the form's defaults
    page.get_by_test_id("comply-notice").filter(has_text="报告已开始生成").wait_for()
    [record_id] = [r["id"] for r in page.request.get(f"{base}/api/compliance/reports").json()]
    page.get_by_test_id(f"comply-status-{record_id}").filter(has_text="已就绪").wait_for(timeout=180_000)
    page.get_by_test_id(f"comply-open-{record_id}").click()

    # the score and the counts by verdict at the top; evidence freshness per layer
    page.get_by_test_id("comply-count-不符合").filter(has_text="不符合 6").wait_for()
    assert page.get_by_test_id("comply-count-符合").inner_text() == "符合 36"
    assert page.get_by_test_id("comply-count-high-risk").inner_text() == "高风险项 2"
    assert re.fullmatch(r"\d+(\.\d+)?", page.get_by_test_id("comply-score").inner_text())
    assert page.get_by_test_id("comply-freshness").get_by_text("2026-11-22").count() == 8
    page.get_by_test_id("comply-shown").filter(has_text="显示 110 / 110 条").wait_for()

    # 不符合 + high risk: the two high-risk findings
    choose(page, "comply-filter-verdict", "不符合")
    page.get_by_test_id("comply-shown").filter(has_text="显示 6 / 110 条").wait_for()
    page.get_by_test_id("comply-filter-high-risk").click()
    page.get_by_test_id("comply-shown").filter(has_text="显示 2 / 110 条").wait_for()

    # area → item → the deciding evidence
    area = page.get_by_test_id("comply-area-computing_environment")
    area.locator(".el-collapse-item__header").click()
    row = page.get_by_test_id("comply-items-computing_environment").locator("tr", has_text="CE-CONF-A").first
    row.wait_for()
    assert "不符合" in row.inner_text() and "高风险项" in row.inner_text()
    row.locator(".el-table__expand-icon").click()
    evidence = page.get_by_test_id("comply-evidence-CE-CONF-A")
    evidence.get_by_test_id("comply-deciding").first.wait_for()
    assert "明文 HTTP" in evidence.inner_text()
    page.screenshot(path=IMG / "console-compliance.png", full_page=True)

    with page.expect_download() as download:
        page.get_by_test_id("comply-download-pdf").click()
    assert download.value.suggested_filename == f"{record_id}.pdf"
    assert open(download.value.path(), "rb").read(5) == b"%PDF-"
    with page.expect_download() as download:
        page.get_by_test_id("comply-download-pack").click()
    pack = tmp_path / download.value.suggested_filename
    download.value.save_as(pack)

    # the signed pack verifies; a copy with one report changed is refused naming it
    page.get_by_test_id("comply-verify-file").set_input_files(str(pack))
    page.get_by_test_id("comply-verify-result").filter(has_text="验证通过：签名有效").wait_for()
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(pack) as source, zipfile.ZipFile(tampered, "w") as target:
        for entry in source.infolist():
            data = source.read(entry)
            if entry.filename == "report-djcp-L3.json":
                report = json.loads(data)
                report["items"][0]["verdict"] = "符合"
                data = json.dumps(report, ensure_ascii=False).encode()
            target.writestr(entry, data)
    page.get_by_test_id("comply-verify-file").set_input_files(str(tampered))
    result = page.get_by_test_id("comply-verify-result").filter(has_text="验证失败")
    result.wait_for()
    assert "被改动：report-djcp-L3.json" in result.inner_text() and "清单签名无效" not in result.inner_text()

    # not a zip: refused inline, in the page's language, with the server's reason beside it
    not_zip = tmp_path / "notes.zip"
    not_zip.write_bytes(b"this is not a zip")
    page.get_by_test_id("comply-verify-file").set_input_files(str(not_zip))
    page.get_by_test_id("comply-verify-error").filter(has_text="输入无效（the upload is not a zip file").wait_for()
    assert watch.errors == ["Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"]
    watch.errors.clear()
    watch.assert_clean()


def test_ops_reads_the_reports_but_has_no_run_form(served, watched):
    page, watch = watched
    sign_in(page, served, "wang.fang")
    page.get_by_test_id("nav-compliance").click()
    page.get_by_test_id("comply-reports").locator("tbody tr").first.wait_for()
    assert page.get_by_test_id("comply-run-form").count() == 0
    csrf = page.request.get(f"{served}/api/session").json()["csrf"]
    refused = page.request.post(f"{served}/api/compliance/reports", data={"standard": "djcp"},
                                headers={"X-CSRF-Token": csrf})
    assert refused.status == 403 and "comply-run" in refused.json()["detail"]
    watch.assert_clean()
