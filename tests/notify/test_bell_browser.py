"""The console's bell in a real browser (Debian's chromium via Playwright): the badge counts the role's unread
notifications, the drawer lists them in Chinese first, and "mark all read" clears the badge."""
from __future__ import annotations


import pytest

from console.app import DEFAULT_STATIC, create_console_app
from notify.events import Event
from tests.console.browser import IMG, Watch, chromium, served_in_thread  # noqa: F401 (the module's browser fixture)
from tests.console.conftest import PASSWORDS, add_users, seed_store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from notify.config import load_config
    from notify.engine import Notifier
    from notify.journal import Journal
    assert (DEFAULT_STATIC / "index.html").exists(), "the console is not built: run `make setup`"
    folder = tmp_path_factory.mktemp("bell")
    engine = seed_store(folder)
    users = add_users(folder / "console" / "users.yaml")
    journal = Journal(folder / "notify.sqlite")
    notifier = Notifier(load_config(), journal)
    notifier.submit(Event("incident.new", "#7 SSH 暴力破解", "critical", key="k1",
                          link="http://127.0.0.1/#/incidents/1"))
    notifier.submit(Event("sla.breach", "事件 #7 超过确认时限", "high", key="k2"))
    app = create_console_app(engine.store, folder / "tokens.yaml", users, engine.decisions,
                             notify_journal=folder / "notify.sqlite")
    with served_in_thread(app) as base:
        yield base
    journal.close()
    engine.store.close()


def test_the_bell_shows_unread_notifications_in_chinese_and_marks_them_read(chromium, served):  # noqa: F811
    context = chromium.new_context()
    page = context.new_page()
    watch = Watch(page)
    try:
        page.goto(f"{served}/")
        page.get_by_test_id("user").fill("li.na")
        page.get_by_test_id("password").fill(PASSWORDS["li.na"])
        page.get_by_test_id("sign-in").click()
        page.get_by_test_id("overview").wait_for()
        badge = page.get_by_test_id("bell-badge").locator("sup")
        badge.filter(has_text="2").wait_for()
        page.get_by_test_id("bell").click()
        page.get_by_test_id("bell-item").first.wait_for()
        items = page.get_by_test_id("bell-item").all_inner_texts()
        assert "处置时限超期：事件 #7 超过确认时限" in items[0] and "严重" in items[1]
        page.get_by_text("2 条未读").wait_for()
        IMG.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=IMG / "console-bell.png")
        page.get_by_test_id("bell-read-all").click()
        page.get_by_text("0 条未读").wait_for()
        badge.wait_for(state="hidden")
        watch.assert_clean()
    finally:
        context.close()
