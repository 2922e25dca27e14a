"""The drills page (issue #19) in a real browser, on the real lab: ops refuse a start whose typed name is wrong
(inline, nothing sent), start the link-failure drill with the right name and watch its steps arrive while it
runs, find it in the history with its RTO / RPO and GB/T 20988 level beside the trend plots, then start the
loss of the production center and abort it after the fault: the runner's rollback puts the lab back in its
topology's layout. The auditor reads the same page without a start button.

Run under the shared lock with a lab prefix of its own, e.g.
  flock /tmp/govctl-heavy.lock env GOVCTL_LAB_PREFIX=hd- .venv/bin/python -m pytest -m slow tests/console/test_browser_drills.py
"""
from __future__ import annotations

import time

import pytest

from console.app import DEFAULT_STATIC, create_console_app
from drills.api import extension
from drills.lab import LabTarget
from drills.live import DrillDesk
from infra.outputs import StackOutputs

from .browser import IMG, Watch, chromium, served_in_thread  # noqa: F401 (chromium: the module's browser fixture)
from .conftest import add_users, seed_store
from .test_browser import page, sign_in  # noqa: F401 (fixture)

pytestmark = [pytest.mark.slow, pytest.mark.root]


@pytest.fixture(scope="module")
def drills_console(lab, tmp_path_factory):
    """(base URL, desk) of the console with the drills' routes, drilling the running lab."""
    assert (DEFAULT_STATIC / "index.html").exists(), "the console is not built: run `make setup` (npm ci + vite build)"
    folder = tmp_path_factory.mktemp("drills-console")
    engine = seed_store(folder)
    users = add_users(folder / "console" / "users.yaml")
    desk = DrillDesk(stack="lab", folder=folder / "drills")
    app = create_console_app(engine.store, folder / "tokens.yaml", users, engine.decisions,
                             extensions=[extension(desk)])
    with served_in_thread(app) as base:
        yield base, desk
        assert desk.wait(600), "a drill was still running at the end"
    engine.store.close()


@pytest.fixture
def watched(page):
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.context.set_default_timeout(30000)
    return page, Watch(page)


def history_rows(page) -> list[str]:
    return [r.inner_text() for r in page.get_by_test_id("drill-history").locator("tbody tr").all()]


def open_start(page, scenario: str) -> None:
    page.get_by_test_id("drill-start").click()
    page.get_by_test_id("drill-scenario").click()
    page.locator(".el-select-dropdown__item", has_text=f"({scenario})").click()


def wait_finished(page, seconds: float) -> None:
    page.get_by_test_id("drill-live-state").filter(has_text="已结束").wait_for(timeout=seconds * 1000)


def test_ops_start_watch_and_abort_drills_on_the_lab(drills_console, watched, lab):
    base, desk = drills_console
    page, watch = watched
    sign_in(page, base, "wang.fang")
    page.get_by_test_id("nav-drills").click()
    page.get_by_test_id("drill-live").filter(has_text="目前没有正在进行的演练").wait_for()
    assert history_rows(page) == []

    # the name typed again must be the scenario's: refused in the page, nothing sent, nothing started
    open_start(page, "link-failure")
    page.get_by_test_id("drill-confirm").fill("link failure")
    page.get_by_test_id("drill-confirm-start").click()
    page.get_by_test_id("drill-start-error").filter(has_text="输入的名称与场景名称 link-failure 不一致").wait_for()
    assert page.request.get(f"{base}/api/drills/live").json() is None

    # the right name starts it; steps arrive while it runs
    page.get_by_test_id("drill-confirm").fill("link-failure")
    started = time.monotonic()
    page.get_by_test_id("drill-confirm-start").click()
    page.get_by_test_id("drill-step-preflight").first.wait_for()
    print(f"\nstart click → first step shown: {time.monotonic() - started:.1f} s")
    assert page.get_by_test_id("drill-step-running").count() == 1 or desk.current()["state"] != "running"
    wait_finished(page, 180)
    print(f"start click → link-failure finished on the page: {time.monotonic() - started:.1f} s")
    page.get_by_test_id("drill-live-verdict").filter(has_text="达标").wait_for()
    for phase in ("fault", "recover", "verify", "failback"):
        assert page.get_by_test_id(f"drill-step-{phase}").count() >= 1, phase
    page.get_by_test_id("drill-history").locator("tbody tr").first.wait_for()
    [row] = history_rows(page)
    assert "中心间主链路中断" in row and "达标" in row and "第6级" in row
    rto = desk.current()["result"]["rto_seconds"]
    assert rto is not None and rto <= 5  # the plan's target
    page.get_by_test_id("chart-drill-rto").locator("canvas").wait_for()
    report_id = desk.current()["result"]["id"]
    for fmt in ("json", "html"):
        href = page.get_by_test_id(f"drill-report-{report_id}-{fmt}").get_attribute("href")
        assert page.request.get(f"{base}{href}").status == 200

    # the loss of the production center, aborted once its fault is in: the runner's rollback
    open_start(page, "production-loss")
    page.get_by_test_id("drill-confirm").fill("production-loss")
    page.get_by_test_id("drill-confirm-start").click()
    page.get_by_test_id("drill-live-name").filter(has_text="生产中心整体失效").wait_for()  # not the last run's steps
    page.get_by_test_id("drill-step-fault").wait_for(timeout=120000)
    clicked = time.monotonic()
    page.get_by_test_id("drill-abort").click()
    page.get_by_text("wang.fang 已请求中止").wait_for()
    wait_finished(page, 420)
    print(f"\nabort click → rolled back shown: {time.monotonic() - clicked:.1f} s")
    page.get_by_test_id("drill-live-verdict").filter(has_text="已回滚").wait_for()
    page.get_by_test_id("drill-step-rollback").wait_for()
    steps = desk.current()["steps"]
    assert [s["phase"] for s in steps][-1] == "rollback" and steps[-1]["ok"], steps[-1]
    assert "failback" not in [s["phase"] for s in steps]  # stopped: the plan's own failback never came
    assert any("aborted from the console by wang.fang" in a for a in desk.current()["result"]["anomalies"])
    target = LabTarget(StackOutputs.from_dict(lab))
    assert target.primaries() == ["prod"] and target.service_center() == "prod"
    page.get_by_test_id("drill-history").locator("tbody tr").nth(1).wait_for()
    assert "已回滚" in history_rows(page)[0]  # newest first
    page.wait_for_timeout(600)  # the plots' entry animation
    page.screenshot(path=IMG / "console-drills.png", full_page=True)
    watch.assert_clean()


def test_auditor_reads_the_drills_but_cannot_start_one(drills_console, watched):
    base, _ = drills_console
    page, watch = watched
    sign_in(page, base, "zhao.lei")
    page.get_by_test_id("nav-drills").click()
    page.get_by_test_id("drill-live").wait_for()
    page.get_by_test_id("drill-history").locator("tbody tr").first.wait_for()
    assert len(history_rows(page)) >= 1
    assert page.get_by_test_id("drill-start").count() == 0 and page.get_by_test_id("drill-abort").count() == 0
    watch.assert_clean()
