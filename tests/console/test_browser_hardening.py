"""The hardening page (issue 19) in a real browser on the lab: the matrix of a host audit made by the real audit
code (Ansible on two lab hosts, and one host that does not answer), failing items coloured, a waiver shown as
已豁免, the failures filter, an item's detail; then ops preview a harden (`harden --check`) from the page and
watch its progress and the diffs per host."""
from __future__ import annotations

import pytest

from .browser import IMG, chromium, served_in_thread  # noqa: F401 (chromium: the module's browser fixture)
from .conftest import add_users, seed_store
from .test_browser import page, sign_in, watched  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.slow, pytest.mark.root]

BASTION, WEB, GHOST = "bastion-1.remote", "web-1.prod", "ghost.remote"
WAIVED_ITEM = "AC-DEFAULT-UMASK"


@pytest.fixture(scope="module")
def hardening_console(lab, tmp_path_factory):
    """The console with the hardening routes, its records and assessment in a state folder of its own
    (the lab's Pulumi state stays where `govctl lab up` put it)."""
    from core import paths
    from hardening import records
    from infra.outputs import StackOutputs
    from policies.api_hardening import EXTENSION
    from console.app import create_console_app

    import infra.engine  # noqa: F401 — reads paths.STATE when first imported: the lab's state, not this module's

    folder = tmp_path_factory.mktemp("hardening")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(paths, "STATE", folder / "state")
        ghost = dict(next(h for h in lab["hosts"] if h["fqdn"] == BASTION), fqdn=GHOST, name="ghost")
        report = records.run_and_record("audit", 3, f"{BASTION},{WEB},{GHOST}",
                                        outputs=StackOutputs.from_dict({**lab, "hosts": lab["hosts"] + [ghost]}))
        (paths.STATE / "compliance").mkdir(parents=True)
        (paths.STATE / "compliance" / "assessment.yaml").write_text(
            f"waivers:\n  - {{standard: host, item: {WAIVED_ITEM}, host: {BASTION}, justification: 该堡垒机由厂商镜像统一设置,"
            " approver: 张主任, expires: '2099-12-31'}\n", encoding="utf-8")
        engine = seed_store(folder)
        app = create_console_app(engine.store, folder / "tokens.yaml", add_users(folder / "users.yaml"),
                                 engine.decisions, extensions=[EXTENSION])
        with served_in_thread(app) as base:
            yield base, report
        engine.store.close()


def cells(page):
    return page.locator("[data-testid^='cell-']")


def test_ops_read_the_matrix_filter_failures_and_preview_a_harden(hardening_console, watched):
    base, report = hardening_console
    page, watch = watched
    IMG.mkdir(parents=True, exist_ok=True)
    sign_in(page, base, "wang.fang")
    page.get_by_test_id("nav-hardening").click()
    page.get_by_test_id("hardening-matrix").wait_for()
    assert report["run_id"] in page.get_by_test_id("hardening-run-info").inner_text()
    assert "不可达" in page.get_by_test_id(f"hardening-row-{GHOST}").inner_text()

    # every verdict of the report is in its cell; failing ones are red (不符合) or orange (部分符合)
    for host in (BASTION, WEB):
        for item in report["hosts"][host]["items"]:
            cell = page.get_by_test_id(f"cell-{host}-{item['id']}")
            expected = "已豁免" if (host, item["id"]) == (BASTION, WAIVED_ITEM) else item["verdict"]
            assert cell.inner_text() == expected, (host, item["id"])
    failing = [(h, i["id"]) for h in (BASTION, WEB) for i in report["hosts"][h]["items"]
               if i["verdict"] in ("不符合", "部分符合") and (h, i["id"]) != (BASTION, WAIVED_ITEM)]
    assert failing, "the lab's hosts left no failing item to show"
    for host, item in failing:
        classes = page.get_by_test_id(f"cell-{host}-{item}").get_attribute("class")
        assert "el-tag--danger" in classes or "el-tag--warning" in classes
    assert "el-tag--success" in page.locator("[data-verdict='符合']").first.get_attribute("class")
    page.screenshot(path=IMG / "console-hardening.png", full_page=True)

    # the failures filter: only failing items' columns stay, everything else in them dimmed
    columns_before = page.locator("[data-testid='hardening-matrix'] thead th").count()
    page.get_by_test_id("hardening-failing").click()
    page.wait_for_function("document.querySelectorAll(\"[data-testid='hardening-matrix'] thead th\").length < "
                           f"{columns_before}")
    for i in range(cells(page).count()):
        cell = cells(page).nth(i)
        assert cell.inner_text() in ("不符合", "部分符合") or "dim" in cell.get_attribute("class")

    # an item's detail: expected, found, the 等保 control
    host, item = failing[0]
    page.get_by_test_id(f"cell-{host}-{item}").click()
    detail = next(i for i in report["hosts"][host]["items"] if i["id"] == item)
    page.get_by_test_id("detail-expected").filter(has_text=detail["expected"].splitlines()[0]).wait_for()
    assert detail["clause"] in page.get_by_test_id("hardening-detail").inner_text()
    page.keyboard.press("Escape")

    # a harden --check from the page: running, per-host progress, then the diffs of that host
    page.get_by_test_id("hardening-limit").fill(BASTION)
    page.get_by_test_id("hardening-run-check").click()
    page.locator("[data-testid='hardening-job'], [data-testid='hardening-error']").first.wait_for()
    assert page.get_by_test_id("hardening-error").count() == 0, page.get_by_test_id("hardening-error").inner_text()
    page.get_by_test_id("hardening-job-state").filter(has_text="运行中").wait_for()
    page.get_by_test_id("hardening-job-hosts").filter(has_text=BASTION).wait_for(timeout=300_000)
    page.get_by_test_id("hardening-job-state").filter(has_text="已完成").wait_for(timeout=600_000)
    page.get_by_test_id(f"diff-host-{BASTION}").wait_for()
    diffs = page.request.get(f"{base}/api/hardening/diffs").json()
    changes = diffs["hosts"][BASTION]["changes"]
    assert f"将变更 {len(changes)} 处" in page.get_by_test_id(f"diff-host-{BASTION}").inner_text()
    if changes:  # a host left hardened by an earlier test would need none
        page.get_by_test_id(f"diff-host-{BASTION}").click()
        page.get_by_test_id(f"diff-{BASTION}-{changes[0]['item']}").first.wait_for()
    watch.assert_clean()


def test_an_auditor_reads_the_matrix_but_cannot_run(hardening_console, watched):
    base, _ = hardening_console
    page, watch = watched
    sign_in(page, base, "zhao.lei")
    page.get_by_test_id("nav-hardening").click()
    page.get_by_test_id("hardening-matrix").wait_for()
    assert page.get_by_test_id(f"cell-{BASTION}-{WAIVED_ITEM}").inner_text() == "已豁免"
    assert page.get_by_test_id("hardening-run-audit").count() == 0
    watch.assert_clean()
