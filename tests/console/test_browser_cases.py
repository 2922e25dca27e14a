"""Cases in the console (issue #18), in a real browser against its own console server (the seeded attack
corpus): the incident detail shows the SLA, the observables with links to the other incidents, the
response plan's checklist; security merges, splits and reopens; the report downloads as a PDF; the
auditor gets none of the buttons. Each page is watched for console errors, exceptions and dialogs."""
from __future__ import annotations

import pytest

from .browser import IMG, chromium, expect_state, expect_text  # noqa: F401 (chromium: the module's browser fixture)
from .test_browser import page, server, sign_in, watched  # noqa: F401 (fixtures: a server of this module's own)

pytestmark = pytest.mark.slow


def _incident_of(page, base: str, address: str) -> int:
    return next(i["id"] for i in page.request.get(f"{base}/api/incidents").json() if i["entity"]["value"] == address)


def test_security_sees_sla_observables_checklist_and_merges_splits_reopens(server, watched):
    base, _ = server
    page, watch = watched
    sign_in(page, base, "li.na")
    first, second = _incident_of(page, base, "203.0.113.5"), _incident_of(page, base, "203.0.113.6")
    page.goto(f"{base}/#/incidents/{first}")
    page.get_by_test_id("sla").wait_for()
    assert page.get_by_test_id("sla-acknowledge").inner_text() == "进行中"
    assert "重大网络安全事件" in page.get_by_test_id("sla").inner_text()
    # observables, and where else they were seen (the host web-1 is in every sshd incident)
    observables = page.get_by_test_id("observables")
    expect_text(page, "203.0.113.5")
    assert "root" in observables.inner_text()
    host = page.get_by_test_id("observable").filter(has_text="web-1")
    assert "在其他" in host.inner_text() and f"#{second}" in host.inner_text()
    # the response plan: tick a task off, who and when shown
    checklist = page.get_by_test_id("checklist")
    assert "暴力破解应急预案" in checklist.inner_text() and "(0/5)" in checklist.inner_text()
    page.get_by_test_id("task-confirm-block").click()
    checklist.filter(has_text="li.na 于").wait_for()
    assert "(1/5)" in checklist.inner_text()
    page.screenshot(path=IMG / "console-incident-case.png", full_page=True)
    # merge: bad input refused inline in the page's language, then the other incident's alerts move here
    page.get_by_test_id("merge-input").fill("abc")
    page.get_by_test_id("act-merge").click()
    expect_text(page, "请输入事件编号")
    alerts_before = page.locator("[data-testid=split-pick]").count()
    page.get_by_test_id("merge-input").fill(str(second))
    page.get_by_test_id("act-merge").click()
    page.get_by_test_id("history").filter(has_text=f"merged #{second}").wait_for()
    assert page.locator("[data-testid=split-pick]").count() > alerts_before
    # split them off again: tick the moved alerts (the last ones) and split
    page.get_by_test_id("act-split").click()
    expect_text(page, "请先在时间线中勾选要拆分的告警")
    for pick in page.locator("[data-testid=split-pick]").all()[alerts_before:]:
        pick.click()
    page.get_by_test_id("act-split").click()
    page.get_by_test_id("history").filter(has_text="split into #").wait_for()
    assert page.locator("[data-testid=split-pick]").count() == alerts_before
    # the merged incident links to where it went
    page.goto(f"{base}/#/incidents/{second}")
    page.get_by_test_id("merged-into").filter(has_text=f"#{first}").wait_for()
    assert page.get_by_test_id("act-reopen").count() == 0
    # resolve, then reopen
    page.goto(f"{base}/#/incidents/{first}")
    page.get_by_test_id("act-resolve").click()
    expect_state(page, "已解决")
    page.get_by_test_id("act-reopen").click()
    expect_state(page, "已确认")
    assert "resolved → acknowledged: reopened" in page.get_by_test_id("history").inner_text()
    # the report, as the button's link downloads it with the session
    href = page.get_by_test_id("report-pdf").get_attribute("href")
    pdf = page.request.get(f"{base}{href}")
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf" and pdf.body()[:5] == b"%PDF-"
    watch.assert_clean()


def test_auditor_sees_cases_but_no_case_buttons(server, watched):
    base, _ = server
    page, watch = watched
    sign_in(page, base, "zhao.lei")
    page.goto(f"{base}/#/incidents/{_incident_of(page, base, '198.51.100.7')}")
    page.get_by_test_id("sla").wait_for()
    page.get_by_test_id("checklist").wait_for()
    for action in ("act-merge", "act-split", "act-reopen", "merge-input", "split-pick"):
        assert page.get_by_test_id(action).count() == 0, action
    assert page.get_by_test_id("task-confirm-block").is_disabled() or \
        page.get_by_test_id("task-confirm-block").locator("input").is_disabled()
    assert page.get_by_test_id("report-pdf").count() == 1
    watch.assert_clean()
