"""The compare and remediation pages (issue #19) in a real browser: the auditor compares two reports on record
where remote administration on every host was broken in between (score down, CE-IA-C 符合 → 不符合 coloured
worse, new high-risk findings), tracks the broken item with an owner and a due date in the past (a bad date
first: told inline) and sees it flagged overdue, then waives a host item (an expiry in the past first: told
inline). Ops reads both pages but has no waiver form."""
from __future__ import annotations

import datetime as dt

import pytest

from console.app import DEFAULT_STATIC, create_console_app
from policies.api_tracking import EXTENSION

from tests.console.browser import IMG, chromium, expect_text, served_in_thread  # noqa: F401 (chromium: the module's browser fixture)
from tests.console.test_browser import page, sign_in, watched  # noqa: F401 (fixtures)
from .test_tracking_api import tracking_state, two_reports  # noqa: F401 (two_reports: a fixture)
from tests.console.conftest import _users_template, seed_store, users_in  # noqa: F401 (the session's hashed users)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory, two_reports, _users_template):
    """The console with the tracking routes on a state folder holding the two reports on record."""
    from crypto.audit import AuditLog

    assert (DEFAULT_STATIC / "index.html").exists(), "the console is not built: cd console/frontend && npm run build"
    folder = tmp_path_factory.mktemp("tracking-console")
    with pytest.MonkeyPatch.context() as patch:
        tracking_state(folder / "state", patch, two_reports)
        engine = seed_store(folder)
        users = users_in(folder, _users_template)
        app = create_console_app(engine.store, folder / "tokens.yaml", users, engine.decisions, extensions=[EXTENSION])
        with served_in_thread(app) as base:
            yield base, folder / "state"
        engine.store.close()
        AuditLog._open_logs.clear()


def test_auditor_compares_tracks_an_overdue_item_and_waives_a_host_item(server, watched):
    base, state = server
    page, watch = watched
    IMG.mkdir(parents=True, exist_ok=True)
    sign_in(page, base, "zhao.lei")

    # compare: the newest against the one before it, chosen by default
    page.get_by_test_id("nav-compare").click()
    page.get_by_test_id("compare-run").click()
    changes = page.get_by_test_id("compare-changes")
    worse = changes.locator("tr.cmp-worse", has_text="CE-IA-C")
    worse.wait_for()
    assert "符合 → 不符合" in worse.inner_text() and "变差" in worse.inner_text() and "高风险" in worse.inner_text()
    assert page.get_by_test_id("compare-score-change").inner_text().startswith("-")
    new_high = page.get_by_test_id("compare-new-high-risk").inner_text()
    assert "CE-IA-C" in new_high and "CN-TRANS-B" in new_high and "远程管理使用 Telnet" in new_high
    assert "web-1.prod" in page.get_by_test_id("compare-evidence").inner_text()
    page.screenshot(path=IMG / "console-compare.png", full_page=True)

    # remediation: track the broken item; a bad date is refused beside the field, a past one flags it overdue
    page.get_by_test_id("nav-remediation").click()
    page.get_by_test_id("rem-track-CE-IA-C").click()
    page.get_by_test_id("rem-edit-owner").fill("运维组 张工")
    page.get_by_test_id("rem-edit-due").fill("2026-02-30")
    page.get_by_test_id("rem-edit-link").fill("https://git.example/fix/12")
    page.get_by_test_id("rem-save").click()
    page.get_by_test_id("rem-error-due").filter(has_text="日期格式为 YYYY-MM-DD").wait_for()
    yesterday = (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)).isoformat()
    page.get_by_test_id("rem-edit-due").fill(yesterday)
    page.get_by_test_id("rem-save").click()
    page.get_by_test_id("rem-overdue-CE-IA-C").filter(has_text="超期").wait_for()
    row = page.get_by_test_id("rem-table").locator("tr.rem-overdue", has_text="CE-IA-C").inner_text()
    assert "运维组 张工" in row and yesterday in row and "待整改" in row
    page.get_by_test_id("rem-filter-overdue").click()
    page.get_by_test_id("rem-overdue-CE-IA-C").wait_for()
    assert "CE-IA-C" not in page.get_by_test_id("rem-untracked").inner_text()

    # a waiver of a host item: an expiry in the past is refused inline, then it is added and listed
    page.get_by_test_id("wv-item").click()
    page.locator(".el-select-dropdown__item", has_text="IA-REMOTE-ADMIN-SSH").first.click()
    page.get_by_test_id("wv-host").fill("web-1.prod")
    page.get_by_test_id("wv-justification").fill("仅经堡垒机专线管理，已另行审批")
    page.get_by_test_id("wv-approver").fill("李主任")
    page.get_by_test_id("wv-expires").fill("2020-01-01")
    page.get_by_test_id("wv-add").click()
    expect_text(page, "有效期须不早于今天")
    page.get_by_test_id("wv-expires").fill("2099-06-30")
    page.get_by_test_id("wv-add").click()
    page.get_by_test_id("wv-added").filter(has_text="已豁免 IA-REMOTE-ADMIN-SSH").wait_for()
    listed = page.get_by_test_id("wv-table").locator("tbody tr").first.inner_text()
    assert "web-1.prod" in listed and "李主任" in listed and "2099-06-30" in listed and "生效" in listed
    page.get_by_test_id("rem-filter-overdue").click()  # every tracked item again, for the picture
    page.screenshot(path=IMG / "console-remediation.png", full_page=True)

    # what the CLI reads: the tracking and the waiver are in the state's files
    text = (state / "compliance" / "remediation.yaml").read_text(encoding="utf-8")
    assert "CE-IA-C" in text and "运维组 张工" in text
    assert "IA-REMOTE-ADMIN-SSH" in (state / "compliance" / "assessment.yaml").read_text(encoding="utf-8")
    watch.assert_clean()


def test_ops_reads_the_pages_but_may_not_waive(server, watched):
    base, _ = server
    page, watch = watched
    sign_in(page, base, "wang.fang")
    page.get_by_test_id("nav-remediation").click()
    page.get_by_test_id("wv-table").wait_for()
    page.get_by_test_id("rem-table").wait_for()
    assert page.get_by_test_id("wv-form").count() == 0
    answer = page.request.post(f"{base}/api/compliance/waivers", data={"item": "IA-REMOTE-ADMIN-SSH"})
    assert answer.status in (403, 401)  # no CSRF token / the role may not waive: refused either way
    watch.assert_clean()
