"""The compare page with uploaded signed packs (issue #19) in a real browser: the auditor uploads last quarter's
and this quarter's packs, sealed from two real reports where remote administration on every host was broken
in between, and sees CE-IA-C 符合 → 不符合 coloured worse — the diff `govctl comply diff Q3 Q4 --json` prints
for the unzipped packs (run for real here); then one pack against a report on record; then a pack altered after
signing is refused, named with its side, file and changed file in Chinese (and in English after the switch).
The header names the console for every kind of user."""
from __future__ import annotations

import json
import shutil

import pytest

from console.app import DEFAULT_STATIC, create_console_app
from policies.api_tracking import EXTENSION
from policies.compliance import COMPLIANT, NON_COMPLIANT
from policies.compliance.records import zip_folder

from tests.conftest import run_govctl
from tests.console.browser import IMG, chromium, served_in_thread  # noqa: F401 (chromium: the module's browser fixture)
from tests.console.conftest import _users_template, seed_store, users_in  # noqa: F401 (the session's hashed users)
from tests.console.test_browser import page, sign_in, watched  # noqa: F401 (fixtures)
from .test_compare_uploads_api import CHANGED_REPORT, seal
from .test_tracking_api import tracking_state, two_reports  # noqa: F401 (two_reports: a fixture)

pytestmark = pytest.mark.slow
REFUSED_LOAD = "the server responded with a status of 422"  # the tampered upload's answer, as chromium logs it


@pytest.fixture(scope="module")
def server(tmp_path_factory, two_reports, _users_template):  # noqa: F811
    """The console with the tracking routes on a state folder (its own keystore) holding the two reports on
    record, and the two quarters' signed packs as zip files an auditor would upload."""
    from crypto.audit import AuditLog

    assert (DEFAULT_STATIC / "index.html").exists(), "the console is not built: cd console/frontend && npm run build"
    folder = tmp_path_factory.mktemp("compare-packs-console")
    with pytest.MonkeyPatch.context() as patch:
        tracking_state(folder / "state", patch, two_reports)
        packs = {"q3": seal(folder / "djcp-2026Q3-pack", COMPLIANT, "2026-09-01T08:00:00+00:00"),
                 "q4": seal(folder / "djcp-2026Q4-pack", NON_COMPLIANT, "2026-12-01T08:00:00+00:00")}
        uploads = {}
        for name, directory in packs.items():
            uploads[name] = folder / f"{directory.name}.zip"
            uploads[name].write_bytes(zip_folder(directory))
        engine = seed_store(folder)
        users = users_in(folder, _users_template)
        app = create_console_app(engine.store, folder / "tokens.yaml", users, engine.decisions, extensions=[EXTENSION])
        with served_in_thread(app) as base:
            yield base, folder, packs, uploads
        engine.store.close()
        AuditLog._open_logs.clear()


def compare_uploads(page, a, b) -> None:
    """Set each side: a zip file (a path) is uploaded, a name is picked from the reports on record."""
    for side, given in (("a", a), ("b", b)):
        if isinstance(given, str):
            page.get_by_test_id(f"compare-{side}-mode-record").click()
            page.get_by_test_id(f"compare-{side}").click()
            page.locator(".el-select-dropdown__item:visible", has_text=given).first.click()
        else:
            page.get_by_test_id(f"compare-{side}-mode-upload").click()
            page.get_by_test_id(f"compare-{side}-file").set_input_files(str(given))
    page.get_by_test_id("compare-run").click()


def test_auditor_compares_two_uploaded_packs_and_a_tampered_one_is_named(server, watched, tmp_path):
    import os

    base, folder, packs, uploads = server
    page, watch = watched
    IMG.mkdir(parents=True, exist_ok=True)
    sign_in(page, base, "zhao.lei")
    assert page.get_by_text("govctl 政务云平台控制台").count() >= 1  # the header serves auditors and ops too

    page.get_by_test_id("nav-compare").click()
    compare_uploads(page, uploads["q3"], uploads["q4"])
    worse = page.get_by_test_id("compare-changes").locator("tr.cmp-worse", has_text="CE-IA-C")
    worse.wait_for()
    assert "符合 → 不符合" in worse.inner_text() and "变差" in worse.inner_text() and "高风险" in worse.inner_text()
    sources = page.get_by_test_id("compare-sources").inner_text()
    assert "djcp-2026Q3-pack.zip（已验签证据包）" in sources and "djcp-2026Q4-pack.zip（已验签证据包）" in sources
    # the page shows what the CLI prints for the same packs (unzipped directories), verdict change by change
    cli = run_govctl("comply", "diff", str(packs["q3"]), str(packs["q4"]), "--json",
                     env={"GOVCTL_STATE": os.environ["GOVCTL_STATE"],
                          "GOVCTL_CRYPTO_PASSPHRASE": os.environ["GOVCTL_CRYPTO_PASSPHRASE"]})
    assert cli.returncode == 0, cli.stderr
    [report] = json.loads(cli.stdout)["reports"]
    shown = page.get_by_test_id("compare-changes").locator("tbody tr")
    assert shown.count() == len(report["verdict_changes"]) > 0
    assert [row.split("\t")[0].strip() for row in shown.all_inner_texts()] == [c["id"] for c in report["verdict_changes"]]
    assert page.get_by_test_id("compare-score").inner_text().count(str(report["score"]["to"])) >= 1
    new_high = page.get_by_test_id("compare-new-high-risk").inner_text()
    assert all(f["id"] in new_high for f in report["new_high_risk"])
    page.screenshot(path=IMG / "console-compare-packs.png", full_page=True)

    # one uploaded pack against the later report on record: the same item, listed the same way
    compare_uploads(page, uploads["q3"], "djcp-L3-2026Q4.json")
    page.get_by_test_id("compare-sources").filter(has_text="B djcp-L3-2026Q4.json（报告）").wait_for()
    page.get_by_test_id("compare-changes").locator("tr.cmp-worse", has_text="CE-IA-C").wait_for()

    # this quarter's pack made to look better after it was sealed: refused, named, in the page's language
    tampered_dir = tmp_path / "tampered"
    shutil.copytree(packs["q4"], tampered_dir)
    report_file = tampered_dir / CHANGED_REPORT
    report_file.write_text(report_file.read_text(encoding="utf-8").replace(NON_COMPLIANT, COMPLIANT), encoding="utf-8")
    tampered = tmp_path / "djcp-2026Q4-tampered.zip"
    tampered.write_bytes(zip_folder(tampered_dir))
    compare_uploads(page, uploads["q3"], tampered)
    error = page.get_by_test_id("compare-error")
    error.filter(has_text="验签失败").wait_for()
    text = error.inner_text()
    assert "证据包 B（djcp-2026Q4-tampered.zip）验签失败，未做对比" in text and f"被改动的文件：{CHANGED_REPORT}" in text
    assert page.get_by_test_id("compare-changes").count() == 0  # nothing compared is shown
    page.screenshot(path=IMG / "console-compare-tampered.png", full_page=True)
    page.get_by_test_id("lang").click()  # the page is drawn anew in English (its choices start over)
    compare_uploads(page, uploads["q3"], tampered)
    error.filter(has_text="fails verification").wait_for()
    assert f"Pack B (djcp-2026Q4-tampered.zip) fails verification; nothing compared: changed: {CHANGED_REPORT}" \
        in error.inner_text()
    assert page.get_by_text("govctl e-government cloud console").count() >= 1
    page.get_by_test_id("lang").click()  # back to Chinese for the next test (the choice is kept in localStorage)

    watch.errors = [e for e in watch.errors if REFUSED_LOAD not in e]  # the refusals the test asked for
    watch.assert_clean()
