"""The hardening page's jobs after a console restart (issue #19), in a real browser: an audit job that finished
under an earlier console and a harden --check whose console process was killed mid-run are on record; the page
of a new console shows the newest job (the check) as 已中断 with why, lists both under 历史任务, and opens the
audit job's report from the list. The reports are the real report code's (tests/hardening/test_api.py feeds it
Ansible's events for web-1.prod). Here rather than in tests/console: tests.hardening already reads tests.console's
helpers, and the import-linter contract forbids a cycle."""
from __future__ import annotations

import pytest

from core import paths
from hardening import api as hardening_api
from hardening import runner
from tests.console.browser import chromium, served_in_thread  # noqa: F401 (chromium: the module's browser fixture)
from tests.console.conftest import add_users, seed_store
from tests.console.test_browser import page, sign_in, watched  # noqa: F401 (fixtures)
from tests.monitors.helpers import wait_for

from .test_api import WEB, console_dies_while_a_job_runs, fake_run_playbook, run_on_test_outputs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def restarted_console(tmp_path_factory):
    from console.app import create_console_app

    folder = tmp_path_factory.mktemp("hardening-jobs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(paths, "STATE", folder / "state")
        patch.setattr(runner, "run_playbook", fake_run_playbook)
        earlier = hardening_api.Jobs(run=run_on_test_outputs)  # the earlier console: an audit that finished
        done = earlier.start("audit", 3, WEB, "lab", "wang.fang")
        done = wait_for(lambda: (j := earlier.get(done["id"]))["state"] == "done" and j, 30, "the audit job")
        interrupted = console_dies_while_a_job_runs(folder / "state")  # then a console killed mid-run
        engine = seed_store(folder)
        app = create_console_app(engine.store, folder / "tokens.yaml", add_users(folder / "users.yaml"),
                                 engine.decisions,
                                 extensions=[hardening_api.extension(jobs=hardening_api.Jobs(run=run_on_test_outputs))])
        with served_in_thread(app) as base:
            yield base, done, interrupted
        engine.store.close()


def test_after_a_restart_the_page_lists_past_jobs_and_shows_the_killed_one_interrupted(restarted_console, watched):
    base, done, interrupted = restarted_console
    page, watch = watched
    sign_in(page, base, "wang.fang")
    page.get_by_test_id("nav-hardening").click()
    page.get_by_test_id("hardening-job-state").filter(has_text="已中断").wait_for()
    assert "stopped while this job ran" in page.get_by_test_id("hardening-job-error").inner_text()
    assert page.get_by_test_id("hardening-run-audit").is_enabled()  # nothing runs: a new job may start
    page.get_by_test_id("hardening-jobs").get_by_text("历史任务 (2)").click()
    assert page.get_by_test_id(f"job-{interrupted}").get_attribute("data-state") == "interrupted"
    assert page.get_by_test_id(f"job-{done['id']}").inner_text() == "已完成"
    page.get_by_test_id(f"job-report-{done['id']}").click()
    page.get_by_test_id("hardening-run-info").filter(has_text=done["run_id"]).wait_for()
    assert page.get_by_test_id("hardening-run-info").inner_text().startswith("报告")  # that job's, not "the latest"
    assert page.get_by_test_id(f"hardening-row-{WEB}").is_visible()
    watch.assert_clean()
