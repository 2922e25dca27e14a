"""`govctl comply waiver add|list` and `remediation set` from the terminal (issue #19): the same domain
functions as the console's routes — a waiver lands in the assessment file the reports read, bad input exits 2
naming it, and both actions are on the audit trail with the acting person."""
from __future__ import annotations

import json

import pytest

from tests.conftest import run_govctl


@pytest.mark.slow  # six runs of govctl
def test_waiver_add_list_refusals_and_the_trail(tmp_path):
    from crypto import audit

    state = tmp_path / "state"
    (state / "crypto").mkdir(parents=True)
    (state / "crypto" / "config.yaml").write_text("suite: gm\nkdf_iterations: 100000\n")
    env = {"GOVCTL_STATE": str(state), "GOVCTL_ACTOR": "zhao.lei"}
    added = run_govctl("comply", "waiver", "add", "IA-REMOTE-ADMIN-SSH", "--host", "web-1.prod", "--justification",
                       "运维专网内经堡垒机审计的临时例外", "--approver", "李处长", "--expires", "2099-06-30", "--json", env=env)
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout) == {"standard": "host", "item": "IA-REMOTE-ADMIN-SSH", "host": "web-1.prod",
                                        "justification": "运维专网内经堡垒机审计的临时例外", "approver": "李处长",
                                        "expires": "2099-06-30"}
    listed = json.loads(run_govctl("comply", "waiver", "list", "--json", env=env).stdout)
    assert [(w["item"], w["host"], w["active"]) for w in listed["waivers"]] == [("IA-REMOTE-ADMIN-SSH", "web-1.prod", True)]
    expired = json.loads(run_govctl("comply", "waiver", "list", "--json", "--as-of", "2099-07-01", env=env).stdout)
    assert expired["waivers"][0]["active"] is False

    bad = run_govctl("comply", "waiver", "add", "IA-NOPE", "--justification", "不适用于本系统", "--approver", "李处长",
                     "--expires", "2027-02-30", env=env)
    assert bad.returncode == 2 and "IA-NOPE" in bad.stderr and "host-hardening catalog" in bad.stderr
    assert "Traceback" not in bad.stderr
    bad_date = run_govctl("comply", "waiver", "add", "IA-REMOTE-ADMIN-SSH", "--justification", "不适用于本系统",
                          "--approver", "李处长", "--expires", "2027-02-30", env=env)
    assert bad_date.returncode == 2 and "expires '2027-02-30' is not a date" in bad_date.stderr

    tracked = run_govctl("comply", "remediation", "set", "djcp:CE-IA-C", "--owner", "张工", "--due", "2027-01-31", env=env)
    assert tracked.returncode == 0 and "djcp:CE-IA-C: open, owner 张工, due 2027-01-31" in tracked.stdout

    trail = audit.entries(state / "audit", action="comply")["entries"]
    assert [(e["action"], e["target"], e["outcome"], e["actor"]) for e in trail] == [
        ("comply.remediation.set", "djcp:CE-IA-C", "ok", "zhao.lei"),
        ("comply.waiver.add", "host:IA-REMOTE-ADMIN-SSH", "failed", "zhao.lei"),
        ("comply.waiver.add", "host:IA-NOPE", "failed", "zhao.lei"),
        ("comply.waiver.add", "host:IA-REMOTE-ADMIN-SSH", "ok", "zhao.lei")]
