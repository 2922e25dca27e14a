"""The ops pages (issue #19) in a real browser, signed in as ops: 拓扑 shows the three centers of the lab's stack
outputs with their hosts and health from a real Prometheus (a degraded host, a cut primary link, a standby that
does not stream, the center serving the service address); 可用性 right after monitoring started shows the
budget chart, each row's coverage and 数据不足, and the page alert firing."""
from __future__ import annotations

import pytest

import infra.engine
from console.app import DEFAULT_STATIC, create_console_app
from monitors import api as ops_api
from monitors.slo import DEFAULT_SPEC
from tests.monitors.ops_monitoring import DeployedLab, running_prometheus

from .browser import IMG, chromium, served_in_thread  # noqa: F401 (chromium: the module's browser fixture)
from .conftest import add_users, seed_store
from .test_browser import page, sign_in, watched  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ops_server(tmp_path_factory):
    """The console with the ops routes for stack "lab" (the fixture's outputs) and a Prometheus just started."""
    assert (DEFAULT_STATIC / "index.html").exists(), "the console is not built: npm run build"
    folder = tmp_path_factory.mktemp("ops-console")
    engine = seed_store(folder)
    users = add_users(folder / "console" / "users.yaml")
    with pytest.MonkeyPatch.context() as patch, running_prometheus(folder / "prometheus") as prometheus:
        patch.setattr(infra.engine, "Engine", DeployedLab)
        app = create_console_app(engine.store, folder / "tokens.yaml", users, engine.decisions,
                                 extensions=[ops_api.extension("lab", prometheus, DEFAULT_SPEC)])
        with served_in_thread(app) as base:
            yield base
    engine.store.close()


def health(page, testid: str) -> str:
    return page.get_by_test_id(testid).get_attribute("data-health")


def test_ops_sees_the_topology_with_live_health(ops_server, watched):
    page, watch = watched
    IMG.mkdir(parents=True, exist_ok=True)
    sign_in(page, ops_server, "wang.fang")
    page.get_by_test_id("nav-topology").click()
    for center, role in (("prod", "生产中心"), ("samecity", "同城灾备中心"), ("remote", "异地灾备中心")):
        card = page.get_by_test_id(f"center-{center}")
        card.wait_for()
        assert role in card.inner_text()
        for host in ("web-1", "db-1", "bastion-1"):
            assert card.get_by_test_id(f"host-{host}.{center}").is_visible()
    assert health(page, "host-web-1.samecity") == "up"
    assert health(page, "host-web-1.remote") == "degraded"
    assert "部分故障 (3/5)" in page.get_by_test_id("host-web-1.remote").inner_text()
    assert health(page, "host-bastion-1.prod") == "unknown"
    assert health(page, "link-prod-remote-a") == "down" and "故障" in page.get_by_test_id("link-prod-remote-a").inner_text()
    assert health(page, "link-prod-samecity-a") == "up" and health(page, "link-prod-samecity-b") == "up"
    assert health(page, "link-prod-remote-b") == "down"  # a standby link measured on its own
    assert page.get_by_test_id("served-by").inner_text() == "prod"
    assert page.get_by_test_id("center-prod").get_by_test_id("serving-center").count() == 1
    replication = page.get_by_test_id("replication").inner_text()
    assert "prod → samecity" in replication and "0.4 s" in replication and "prod → remote" in replication
    page.screenshot(path=IMG / "console-topology.png", full_page=True)
    watch.assert_clean()


def test_ops_sees_insufficient_data_right_after_monitoring_starts(ops_server, watched):
    page, watch = watched
    sign_in(page, ops_server, "wang.fang")
    page.get_by_test_id("nav-availability").click()
    verdict = page.get_by_test_id("availability-verdict")
    verdict.wait_for(timeout=60_000)  # a 30-day report took 22 s at load 28 on the shared 2-core machine
    assert verdict.get_attribute("data-verdict") == "insufficient_data" and verdict.inner_text() == "数据不足"
    rows = page.get_by_test_id("availability-rows").locator("tbody tr")
    assert rows.count() == 3
    for row in rows.all():
        assert "数据不足" in row.inner_text() and "/ 518,401 (0.00 %)" in row.inner_text()
    assert page.get_by_test_id("chart-budget").locator("canvas").count() == 1
    alerts = page.get_by_test_id("firing-alerts").inner_text()
    assert "SLOPageBurnRate" in alerts and "remote" in alerts
    assert "进行中" in page.get_by_test_id("outages").inner_text()  # remote's SLI is failing now
    page.screenshot(path=IMG / "console-availability.png", full_page=True)
    page.get_by_test_id("period-now-1d").click()  # a day: 17,281 steps expected
    page.get_by_test_id("availability-rows").filter(has_text="/ 17,281").wait_for()
    watch.assert_clean()


def test_with_monitoring_down_health_is_unknown_and_said_so_in_english_too(tmp_path, watched, monkeypatch):
    """Prometheus unreachable: the topology still shows every center and host, each health 未知 / unknown,
    and the page says why; availability has no verdict but 未知 / unknown (never 达标 met)."""
    from tests.monitors.helpers import free_port
    monkeypatch.setattr(infra.engine, "Engine", DeployedLab)
    engine = seed_store(tmp_path)
    users = add_users(tmp_path / "console" / "users.yaml")
    app = create_console_app(engine.store, tmp_path / "tokens.yaml", users, engine.decisions,
                             extensions=[ops_api.extension("lab", f"http://127.0.0.1:{free_port()}", DEFAULT_SPEC)])
    page, watch = watched
    try:
        with served_in_thread(app) as base:
            sign_in(page, base, "zhao.lei")  # an auditor reads the ops pages too
            page.get_by_test_id("nav-topology").click()
            page.get_by_test_id("monitoring-unreadable").filter(has_text="无法读取监控").wait_for()
            assert "cannot reach" in page.get_by_test_id("monitoring-unreadable").inner_text()
            hosts = page.locator("[data-testid^='host-']")
            assert hosts.count() == 9
            assert {hosts.nth(i).get_attribute("data-health") for i in range(9)} == {"unknown"}
            assert "未知" in page.get_by_test_id("host-web-1.prod").inner_text()
            page.get_by_test_id("lang").click()
            page.get_by_test_id("nav-availability").filter(has_text="Availability").click()
            verdict = page.get_by_test_id("availability-verdict")
            verdict.wait_for()
            assert verdict.inner_text() == "unknown"
            assert "Monitoring (Prometheus) cannot be read" in page.get_by_test_id("monitoring-unreadable").inner_text()
            watch.assert_clean()
    finally:
        engine.store.close()
