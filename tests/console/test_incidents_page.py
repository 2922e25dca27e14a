"""The incidents page and the overview at scale of a page (issue #17), in Debian's chromium: server-side
filters by severity and center, paging with counts, the filter kept in the URL, sort by a column, bad input
shown inline in the page's language, and the overview's figures per center."""
from __future__ import annotations

import time

import pytest

from console.app import DEFAULT_STATIC, create_console_app
from secops.model import Decision
from secops.store import Store

from .browser import IMG, Watch, chromium, expect_text, served_in_thread  # noqa: F401 (chromium: the module's browser fixture)
from .conftest import PASSWORDS, add_users

pytestmark = pytest.mark.slow

SEVERITIES = ("critical", "high", "medium", "low", "informational")
CENTERS = ("production", "same-city", "remote")
COUNT = 45


def _incident(n: int, now: float) -> dict:
    return {"entity_kind": "source.ip", "entity": f"203.0.113.{n + 1}", "title": f"SSH brute force — 203.0.113.{n + 1}",
            "severity": SEVERITIES[n % 5], "state": ("new", "acknowledged", "contained")[n % 3], "assignee": None,
            "created": now - 3600, "updated": now - n, "first": now - 3600 - n, "last": now - 60 - n,
            "rules": ["ssh_bruteforce_fast"], "centers": [CENTERS[n % 3]]}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The console on a store of 45 incidents spread over severities and centers, and blocks in each center."""
    assert (DEFAULT_STATIC / "index.html").exists(), "the console is not built: run `make setup` (npm ci + vite build)"
    folder = tmp_path_factory.mktemp("console-search")
    store = Store(folder / "secops.db")
    now = time.time()
    for n in range(COUNT):
        store.create_incident(_incident(n, now))
    for n, center in enumerate(("production", "production", "same-city", "remote")):
        store.record_decision(Decision(f"203.0.113.{n + 1}", "block", "ssh_bruteforce_fast: test", "govctl-secops",
                                       now - 120, ttl=600, until=now + 480, rule="ssh_bruteforce_fast",
                                       enforced=True, centers=[center]))
    users = add_users(folder / "console" / "users.yaml")
    app = create_console_app(store, folder / "tokens.yaml", users)
    with served_in_thread(app) as base:
        yield base
    store.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(15000)
    page = context.new_page()
    yield page, Watch(page)
    context.close()


def _sign_in(page, base: str) -> None:
    page.goto(f"{base}/")
    page.get_by_test_id("user").fill("li.na")
    page.get_by_test_id("password").fill(PASSWORDS["li.na"])
    page.get_by_test_id("sign-in").click()
    page.get_by_test_id("overview").wait_for()


def _cells(row) -> list[str]:
    return [text.strip() for text in row.locator("td").all_inner_texts()]


def _rows(page) -> list[list[str]]:
    return [_cells(row) for row in page.locator(".incident-row").all()]


def _wait_total(page, n: int, label: str = "共 {n} 条") -> None:
    page.get_by_test_id("total").filter(has_text=label.format(n=n)).wait_for()


def test_overview_shows_blocks_per_center(server, page):
    page, watch = page
    IMG.mkdir(parents=True, exist_ok=True)
    _sign_in(page, server)
    table = page.get_by_test_id("center-table")
    table.locator("tr", has_text="production").wait_for()
    cells = {cells[0]: cells[1:] for cells in (_cells(r) for r in table.locator("tbody tr").all())}
    assert cells == {"production": ["2", "2"], "remote": ["1", "1"], "same-city": ["1", "1"]}
    assert page.get_by_test_id("blocked-today").inner_text() == "4"
    assert page.get_by_test_id("open-count").inner_text() == str(COUNT)
    page.get_by_test_id("chart-centers").locator("canvas").wait_for()
    page.wait_for_timeout(600)  # the plots' entry animation
    page.screenshot(path=IMG / "console-overview-centers.png", full_page=True)
    watch.assert_clean()


def test_filter_by_severity_and_center_page_sort_and_keep_the_filter_in_the_url(server, page):
    page, watch = page
    _sign_in(page, server)
    page.get_by_test_id("nav-incidents").click()
    _wait_total(page, COUNT)
    assert len(_rows(page)) == 20

    # pages of 20, the total stays
    page.get_by_test_id("pager").locator(".el-pager li", has_text="3").click()
    page.wait_for_url("**page=3**")
    page.locator(".incident-row").nth(4).wait_for()
    assert len(_rows(page)) == COUNT - 40

    # severity high (9 of 45), then center remote: n ≡ 1 (mod 5) and n ≡ 2 (mod 3) → n = 11, 26, 41
    page.get_by_test_id("filter-severity").click()
    page.get_by_test_id("severity-high").click()
    page.keyboard.press("Escape")
    _wait_total(page, 9)
    assert "page=" not in page.url  # a new filter starts at page 1
    page.get_by_test_id("filter-center").fill("remote")
    page.get_by_test_id("filter-center").press("Enter")
    _wait_total(page, 3)
    rows = _rows(page)
    assert len(rows) == 3 and all(r[1] == "高" and r[5] == "remote" for r in rows)
    assert [r[3] for r in rows] == ["203.0.113.12", "203.0.113.27", "203.0.113.42"]  # newest first

    # sorted by id, ascending then descending, from the column header
    page.locator("th", has_text="编号").click()
    page.wait_for_url("**sort=id**")
    page.locator(".incident-row").first.filter(has_text="203.0.113.12").wait_for()
    page.locator("th", has_text="编号").click()
    page.wait_for_url("**sort=-id**")
    page.locator(".incident-row").first.filter(has_text="203.0.113.42").wait_for()
    page.screenshot(path=IMG / "console-incidents-filtered.png")

    # the URL keeps the filter and the sort: a reload shows the same
    assert "severity=high" in page.url and "center=remote" in page.url
    page.reload()
    _wait_total(page, 3)
    page.locator(".incident-row").first.filter(has_text="203.0.113.42").wait_for()
    assert page.get_by_test_id("filter-center").input_value() == "remote"

    # bad input: an inline error in the page's language, the server's reason beside it
    page.get_by_test_id("filter-source").fill("not-an-address")
    page.get_by_test_id("filter-source").press("Enter")
    error = page.get_by_test_id("incidents-error")
    error.filter(has_text="输入无效").wait_for()
    assert "not an IP address" in error.inner_text()
    assert len(watch.errors) == 1 and "422" in watch.errors[0]  # Chromium logs the refused request, nothing else
    watch.errors.clear()

    # the English switch keeps the page and its filter
    page.get_by_test_id("filter-source").fill("203.0.113.0/24")
    page.get_by_test_id("filter-source").press("Enter")
    _wait_total(page, 3)
    page.get_by_test_id("lang").click()
    _wait_total(page, 3, "{n} in all")
    watch.assert_clean()
