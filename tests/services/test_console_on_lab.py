"""The console on the platform `govctl up` brings up on the lab, in a real browser, against a real attack.

A brute force from an attacker namespace on the internet against the production DMZ host's real sshd
(the `exposed_sshd` and `attacker` fixtures of tests/conftest.py, as in tests/secops/test_interception_lab.py);
the SecOps daemon that `govctl up` runs tails that host's sshd log, blocks the source in every center's
firewall by itself and opens an incident. In Debian's chromium (Playwright, tests/console/browser.py) the
first administrator — signed in with the credentials file `up` wrote — has the incidents page open before
the attack starts: the incident appears without a reload (server-sent events), and is acknowledged,
assigned to the administrator, contained (the address is then in the blocked set of every center's
firewall, read with nft in each firewall namespace the stack outputs name) and resolved; the API then
reports the final state. The browser console shows no errors and no dialog opens.

HTTPS: Chromium takes no CA file, so the browser context ignores certificate errors
(`ignore_https_errors=True`) and the test separately asserts, with httpx and the platform CA file that
`up` reported, that the console's certificate verifies — every API call of the test goes through that
verifying client.
"""
from __future__ import annotations

import random
import ssl
import time

import httpx
import pytest

from tests.conftest import lab_block_sets
from tests.console.browser import IMG, Watch, chromium, expect_state  # noqa: F401 (chromium: the browser fixture)
from tests.secops.testbed import attack_until_blocked, ssh_banner

from .conftest import admin_credentials, platform_on_lab  # noqa: F401 (platform_on_lab: `govctl up` for the module)

pytestmark = [pytest.mark.slow, pytest.mark.root]


@pytest.fixture()
def attacker_host_number() -> int:
    """A fresh attacker address per run: the daemon's store outlives a run (the platform's state), and its
    slow brute-force rule would add this run's failures to an earlier run's alert, whose incident is
    already resolved, instead of opening a new incident."""
    return random.randint(100, 199)


def _api(report: dict, creds: dict) -> httpx.Client:
    """The admin's API session over HTTPS, the certificate verified against the platform CA."""
    client = httpx.Client(base_url=report["console_url"] + "api/", timeout=15,
                          verify=ssl.create_default_context(cafile=report["ca_certificate"]))
    signin = client.post("session", json={"name": creds["user"], "password": creds["password"]})
    assert signin.status_code == 200, signin.text
    client.headers["X-CSRF-Token"] = client.get("session").json()["csrf"]
    return client


def _lift(api: httpx.Client, address: str, sets: dict, reason: str) -> None:
    if any(address in s.blocked() for s in sets.values()):
        lifted = api.delete(f"bans/{address}", params={"reason": reason})
        assert lifted.status_code == 200, lifted.text


def _clear_earlier_runs(api: httpx.Client, address: str, sets: dict) -> None:
    """An open incident of the attacker's address left by an earlier run would take this run's alert.
    A block left by an interrupted run is lifted too, but the daemon that `up` started after it keeps
    that block in memory until its TTL and does not block the address again before (see the report)."""
    _lift(api, address, sets, "test: left by an earlier run")
    for incident in api.get("incidents", params={"limit": 1000}).json():
        if incident["entity"]["value"] == address and incident["state"] not in ("resolved", "false-positive"):
            closed = api.post(f"incidents/{incident['id']}/resolve",
                              json={"note": "test: left open by an earlier run"})
            assert closed.status_code == 200, closed.text


def test_brute_force_on_the_lab_is_triaged_live_in_the_console(
        platform_on_lab, lab, exposed_sshd, attacker, chromium, tmp_path):
    report, host, atk = platform_on_lab, exposed_sshd, attacker
    creds = admin_credentials(report["credentials_file"])
    api = _api(report, creds)  # raises if the console's certificate does not verify with the platform CA
    sets = lab_block_sets(lab)
    assert len(sets) == len(lab["centers"]) >= 2
    _clear_earlier_runs(api, atk["address"], sets)
    assert ssh_banner(atk["namespace"], host["ipv4"]), "the exposed sshd should answer the internet"

    context = chromium.new_context(ignore_https_errors=True, viewport={"width": 1440, "height": 900})
    context.set_default_timeout(15000)
    page = context.new_page()
    watch = Watch(page)
    try:
        page.goto(report["console_url"])
        page.get_by_test_id("user").fill(creds["user"])
        page.get_by_test_id("password").fill(creds["password"])
        page.get_by_test_id("sign-in").click()
        page.get_by_test_id("overview").wait_for()
        page.get_by_test_id("nav-incidents").click()
        page.get_by_test_id("live").wait_for()  # the page's event stream is open
        page.evaluate("window.loadedBeforeTheAttack = true")  # gone if the page reloads

        tries = attack_until_blocked(atk["namespace"], atk["address"], host["ipv4"], sets[host["center"]],
                                     tmp_path)
        assert tries is not None, "the daemon under `govctl up` did not block the brute force"
        attacked = time.monotonic()
        row = page.locator(".incident-row", has_text=atk["address"]).filter(has_text="新建")
        row.wait_for(timeout=20000)
        print(f"\nblocked after {tries} failed logins; the incident was on screen "
              f"{time.monotonic() - attacked:.1f} s after the block")
        assert page.evaluate("window.loadedBeforeTheAttack === true"), "the page reloaded"
        row.click()
        # the detail frame shows before its data arrives: wait for the attacker's address in it
        page.get_by_test_id("incident-detail").filter(has_text=atk["address"]).wait_for()
        incident_id = int(page.url.rsplit("/", 1)[1])

        page.get_by_test_id("act-ack").click()
        expect_state(page, "已确认")
        page.get_by_test_id("assignee-input").fill(creds["user"])
        page.get_by_test_id("act-assign").click()
        page.get_by_test_id("assignee").filter(has_text=creds["user"]).wait_for()
        page.get_by_test_id("act-contain").click()
        expect_state(page, "已遏制")
        # contained: the source is in the blocked set of every center's boundary firewall (nft in each)
        missing = [center for center, s in sets.items() if atk["address"] not in s.blocked()]
        assert not missing, f"{atk['address']} is not blocked in the firewall of {missing}"
        assert not ssh_banner(atk["namespace"], host["ipv4"]), "a contained attacker still reaches sshd"
        IMG.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=IMG / "console-incident-lab.png", full_page=True)
        page.get_by_test_id("resolve-note").fill("brute force from the internet; sshd exposure closed")
        page.get_by_test_id("act-resolve").click()
        expect_state(page, "已解决")
        watch.assert_clean()

        final = api.get(f"incidents/{incident_id}").json()
        assert final["state"] == "resolved" and final["assignee"] == creds["user"]
        assert final["entity"] == {"kind": "source.ip", "value": atk["address"]}
        changes = [(n["author"], n["text"]) for n in final["notes"]]
        for text in ("new → acknowledged", f"assigned to {creds['user']}", "acknowledged → contained",
                     "contained → resolved: brute force from the internet; sshd exposure closed"):
            assert (creds["user"], text) in changes, changes
        assert any(d["address"] == atk["address"] and d["action"] == "block" for d in final["decisions"])
    finally:
        context.close()
        # the block would outlive the test (600 s) in the firewalls other lab tests check
        _lift(api, atk["address"], sets, "test: the console's lab test is over")
