"""The ops pages (issue #19) against the REAL platform: `govctl up` on the lab (tests/services' `platform_on_lab`),
its monitoring probing the lab's hosts and pinging every inter-center link, its console over HTTPS.

Signed in as an ops user in Debian's chromium: 拓扑 shows every web and database host up, every link — the standby
links too, measured by their own pings — up, prod serving the service address and both standbys' replication lag;
可用性 for the last 30 days says 数据不足 (a few minutes of 518,401 steps measured). Then a standby link is cut the
way the drills cut one (drills.lab.LabTarget.set_link) and the topology API reports it down while its primary stays
up; restored, it comes back up.

Run under the shared lock with a lab prefix of its own, e.g.
    flock /tmp/govctl-heavy.lock env GOVCTL_LAB_PREFIX=ho- GOVCTL_SCREENSHOTS=$PWD/docs/img \
        .venv/bin/python -m pytest -m slow tests/services/test_ops_on_lab.py
"""
from __future__ import annotations

import ssl
import time

import httpx
import pytest

from monitors.targets import SERVICE_ADDRESS_CENTER
from tests.conftest import run_govctl
from tests.console.browser import IMG, Watch, chromium  # noqa: F401 (chromium: the module's browser fixture)
from tests.monitors.helpers import wait_for

from .conftest import platform_on_lab  # noqa: F401 (the module's `govctl up` on the lab)

pytestmark = [pytest.mark.slow, pytest.mark.root]

OPS_USER, OPS_PASSWORD = "ops.lab", "Ops-lab-pass-2026"
STANDBY, ITS_PRIMARY = "prod-samecity-b", "prod-samecity-a"


@pytest.fixture(scope="module")
def ops_user(platform_on_lab):  # noqa: F811 (the fixture imported above)
    """An ops engineer in the platform's users file (`govctl users add`, as an administrator adds one)."""
    added = run_govctl("users", "add", OPS_USER, "--role", "ops", "--password-stdin", input=OPS_PASSWORD + "\n")
    if added.returncode != 0:  # left by an earlier run on this state: set the password again
        assert "exists" in added.stderr, added.stderr
        reset = run_govctl("users", "passwd", OPS_USER, "--password-stdin", input=OPS_PASSWORD + "\n")
        assert reset.returncode == 0, reset.stderr
    return OPS_USER


@pytest.fixture(scope="module")
def ops_api(platform_on_lab, ops_user):  # noqa: F811
    """The ops user's API session over HTTPS, the certificate verified against the platform CA."""
    client = httpx.Client(base_url=platform_on_lab["console_url"] + "api/", timeout=30,
                          verify=ssl.create_default_context(cafile=platform_on_lab["ca_certificate"]))
    signin = client.post("session", json={"name": ops_user, "password": OPS_PASSWORD})
    assert signin.status_code == 200, signin.text
    yield client
    client.close()


def settled(api: httpx.Client) -> dict | None:
    """The topology once monitoring measures everything it can: hosts, links, serving center, lag."""
    view = api.get("ops/topology").json()
    hosts = [h for c in view["centers"] for z in c["zones"] for h in z["hosts"]]
    measured = [h for h in hosts if h["health"]["probes"]]
    ready = (view["prometheus"]["reachable"] and measured and all(h["health"]["status"] == "up" for h in measured)
             and all(link["health"]["status"] == "up" for link in view["links"])
             and view["service"]["serving"]
             and all(r["lag_seconds"] is not None for r in view["replication"]))
    return view if ready else None


def sign_in(page, base: str) -> None:
    page.goto(base)
    page.get_by_test_id("user").fill(OPS_USER)
    page.get_by_test_id("password").fill(OPS_PASSWORD)
    page.get_by_test_id("sign-in").click()
    page.get_by_test_id("overview").wait_for()


def test_ops_see_the_real_platforms_topology_and_insufficient_availability_data(
        platform_on_lab, ops_api, chromium, lab):  # noqa: F811
    view = wait_for(lambda: settled(ops_api), 180, "monitoring to measure every host and link of the lab",
                    interval=2)
    roles = {link["name"]: link["role"] for link in view["links"]}
    assert sorted(roles.values()).count("standby") == len(lab["centers"]) == 3
    assert all(link["health"]["measured_by"] == "pings across the link" for link in view["links"])

    context = chromium.new_context(ignore_https_errors=True, viewport={"width": 1440, "height": 900})
    context.set_default_timeout(20000)
    page = context.new_page()
    watch = Watch(page)
    try:
        IMG.mkdir(parents=True, exist_ok=True)
        sign_in(page, platform_on_lab["console_url"])
        page.get_by_test_id("nav-topology").click()
        for center in lab["centers"]:
            page.get_by_test_id(f"center-{center}").wait_for()
            for host in ("web-1", "db-1"):
                assert page.get_by_test_id(f"host-{host}.{center}").get_attribute("data-health") == "up"
        for name, role in roles.items():
            link = page.get_by_test_id(f"link-{name}")
            assert link.get_attribute("data-health") == "up", name
            assert ("备用链路" if role == "standby" else "主链路") in link.inner_text()
        assert page.get_by_test_id("served-by").inner_text() == "prod"
        assert page.get_by_test_id("service").get_attribute("data-health") == "up"
        replication = page.get_by_test_id("replication").inner_text()
        assert "prod → samecity" in replication and "prod → remote" in replication
        assert " s" in replication  # each standby's lag, in seconds
        page.screenshot(path=IMG / "console-topology-lab.png", full_page=True)

        # a row per center and one for the service address itself (the citizens' view, center "service-address")
        data = ops_api.get("ops/availability", params={"from": "now-30d"}).json()
        assert {row["center"] for row in data["rows"]} == {*lab["centers"], SERVICE_ADDRESS_CENTER}
        assert data["verdict"] == "insufficient_data"
        assert all(0 < row["coverage"] < 0.01 for row in data["rows"]), data["rows"]
        page.get_by_test_id("nav-availability").click()
        verdict = page.get_by_test_id("availability-verdict")
        verdict.wait_for()
        assert verdict.get_attribute("data-verdict") == "insufficient_data" and verdict.inner_text() == "数据不足"
        rows = page.get_by_test_id("availability-rows").locator("tbody tr")
        assert rows.count() == len(data["rows"]) == 4
        expected = f"/ {data['expected_steps']:,} ("  # 30 days of the platform's SLI step (518,401 at 5 s)
        for row in rows.all():
            assert "数据不足" in row.inner_text() and expected in row.inner_text()
        assert page.get_by_test_id("chart-budget").locator("canvas").count() == 1
        page.screenshot(path=IMG / "console-availability-lab.png", full_page=True)
        watch.assert_clean()
    finally:
        context.close()


def test_a_cut_standby_link_is_down_on_the_topology_while_its_primary_stays_up(platform_on_lab, ops_api, lab):  # noqa: F811
    from drills.lab import LabTarget
    from infra.outputs import StackOutputs

    def links() -> dict[str, str]:
        return {link["name"]: link["health"]["status"] for link in ops_api.get("ops/topology").json()["links"]}

    wait_for(lambda: links()[STANDBY] == "up", 120, f"standby link {STANDBY} up", interval=2)
    target = LabTarget(StackOutputs.from_dict(lab))
    target.set_link(STANDBY, up=False)  # what the drills' cut_link does
    cut_at = time.monotonic()
    try:
        cut = wait_for(lambda: (now := links())[STANDBY] == "down" and now, 60, f"{STANDBY} down once cut", interval=2)
        print(f"\n{STANDBY} down on the topology {time.monotonic() - cut_at:.1f} s after the cut")
        assert cut[ITS_PRIMARY] == "up"  # the primary beside it still answers its pings
        health = next(link for link in ops_api.get("ops/topology").json()["links"] if link["name"] == STANDBY)
        assert health["health"]["succeeding"] == 0 and health["health"]["probes"] == 2
    finally:
        target.set_link(STANDBY, up=True)
        target.restore_routes()
    restored_at = time.monotonic()
    wait_for(lambda: links()[STANDBY] == "up", 60, f"{STANDBY} up again once restored", interval=2)
    print(f"{STANDBY} up again {time.monotonic() - restored_at:.1f} s after the restore")
