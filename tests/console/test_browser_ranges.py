"""The bans page with ranges in a real browser (issue #18): a CIDR is accepted in the add form, a bad prefix
is refused inline before sending, the server's reason (host bits set, too broad) is shown inline in the
page's language, and a range in force is marked as one and can be lifted."""
from __future__ import annotations

import pytest

from .browser import chromium, expect_text  # noqa: F401 (chromium: the module's browser fixture)
from .test_browser import page, server, sign_in, watched  # noqa: F401 (fixtures)
from tests.secops.test_ranges import exported, keystore_state  # noqa: F401 (fixtures: a list signed by another city)

pytestmark = pytest.mark.slow


def test_security_bans_and_lifts_a_range_with_inline_validation(server, watched):
    base, _ = server
    page, watch = watched
    sign_in(page, base, "li.na")
    page.get_by_test_id("nav-bans").click()
    address = page.get_by_test_id("ban-address")
    address.fill("203.0.113.0/33")
    page.get_by_test_id("ban-reason").fill("scanner farm")
    page.get_by_test_id("ban-submit").click()
    expect_text(page, "网段前缀长度须为")
    address.fill("203.0.113.5/24")  # host bits: the server's reason, inline
    page.get_by_test_id("ban-submit").click()
    page.get_by_test_id("ban-error").filter(has_text="host bits set; the range is 203.0.113.0/24").wait_for()
    address.fill("10.0.0.0/8")
    page.get_by_test_id("ban-submit").click()
    page.get_by_test_id("ban-error").filter(has_text="broader than the smallest range").wait_for()
    address.fill("198.51.100.0/24")
    page.get_by_test_id("ban-submit").click()
    row = page.get_by_test_id("bans-table").locator("tr", has_text="198.51.100.0/24")
    row.get_by_test_id("range-tag").filter(has_text="网段").wait_for()
    page.get_by_test_id("lift-198.51.100.0/24").click()
    page.locator(".el-message-box input").fill("farm moved on")
    page.locator(".el-message-box .el-button--primary").click()
    page.get_by_test_id("trail").locator("tr", has_text="farm moved on").wait_for()
    assert page.get_by_test_id("bans-table").locator("tr", has_text="198.51.100.0/24").count() == 0
    # the browser logs the two refused requests (422, shown inline above); nothing else may go wrong
    assert watch.dialogs == []
    assert len(watch.errors) == 2 and all("status of 422" in e for e in watch.errors), watch.errors


def test_security_exports_and_imports_a_signed_blocklist_from_the_bans_page(keystore_state, exported, server,
                                                                            watched, tmp_path):
    """The blocklist exchange from the console (issue #18): the export downloads the blocks in force signed
    with SM2 by the server's keystore; another city's list is imported with its issuer's public key and its
    blocks appear as that city's; a list changed by one byte and a malformed key are refused inline."""
    import json
    base, _ = server
    page, watch = watched
    data, pubkey = exported
    sign_in(page, base, "li.na")
    page.get_by_test_id("nav-bans").click()
    page.get_by_test_id("exchange").wait_for()
    with page.expect_download() as download:
        page.get_by_test_id("export-blocklist").click()
    ours = json.loads(open(download.value.path(), encoding="utf-8").read())
    assert ours["format"] == "govctl-blocklist" and ours["signature"]["alg"] == "sm2"
    assert {e["target"] for e in ours["entries"]} == {b["address"] for b in server[1].store.active_bans()}

    changed = tmp_path / "changed.json"
    changed.write_bytes(data.replace(b"scanner farm", b"scanner farn"))
    page.get_by_test_id("import-file").set_input_files(str(changed))
    page.get_by_test_id("import-pubkey").fill("04zz")
    page.get_by_test_id("import-submit").click()
    page.get_by_test_id("exchange-error").filter(has_text="请输入 SM2 公钥").wait_for()
    page.get_by_test_id("import-pubkey").fill(pubkey)
    page.get_by_test_id("import-submit").click()
    page.get_by_test_id("exchange-error").filter(has_text="signature").wait_for()
    assert page.get_by_test_id("bans-table").locator("tr", has_text="198.51.100.0/24").count() == 0

    good = tmp_path / "hangzhou.json"
    good.write_bytes(data)
    page.get_by_test_id("import-file").set_input_files(str(good))
    page.get_by_test_id("import-submit").click()
    page.get_by_test_id("import-result").filter(has_text="已导入 hangzhou 的").wait_for()
    row = page.get_by_test_id("bans-table").locator("tr", has_text="198.51.100.0/24")
    row.filter(has_text="import:hangzhou").wait_for()
    assert watch.dialogs == []
    assert len(watch.errors) == 1 and "status of 422" in watch.errors[0], watch.errors
