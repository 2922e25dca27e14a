"""The host control catalog: schema, cross-checks, and that the role implements every automated item."""
from __future__ import annotations

import copy
import re

import pytest
import yaml

from core.errors import BadInput
from hardening import catalog
from core.paths import ROOT

ROLE_TASKS = ROOT / "playbooks" / "roles" / "govctl_baseline" / "tasks"


@pytest.fixture(scope="module")
def document() -> dict:
    return yaml.safe_load(catalog.CATALOG.read_text(encoding="utf-8"))


def test_catalog_validates_and_every_level_has_items(document):
    catalog.validate(document)
    for level in catalog.LEVELS:
        selected = catalog.controls(level)
        assert len(selected) >= 20
        assert {c.automation for c in selected} == {"full", "check", "manual"}
        assert all(c.test_ids[0].startswith(f"L{level}-CES1-") for c in selected)


def test_level_parameters_tighten_with_the_level():
    by_level = {lvl: {c.id: c.params for c in catalog.controls(lvl)} for lvl in catalog.LEVELS}
    assert by_level[3]["IA-PASSWORD-COMPLEXITY"] == {"minlen": 8, "minclass": 3, "retry": 3}
    assert by_level[3]["IA-LOGIN-FAILURE-LOCKOUT"]["deny"] == 5
    assert by_level[3]["IA-LOGIN-FAILURE-LOCKOUT"]["unlock_time"] >= 300
    assert by_level[3]["IA-SESSION-TIMEOUT"]["tmout"] <= 600
    assert by_level[3]["AU-LOG-RETENTION"]["rotate_weeks"] * 7 >= 180
    assert by_level[3]["AC-DEFAULT-UMASK"]["umask"] == "027"
    for lvl_lo, lvl_hi in ((2, 3), (3, 4)):
        assert by_level[lvl_hi]["IA-SESSION-TIMEOUT"]["tmout"] <= by_level[lvl_lo]["IA-SESSION-TIMEOUT"]["tmout"]
        assert (by_level[lvl_hi]["IA-PASSWORD-COMPLEXITY"]["minclass"]
                >= by_level[lvl_lo]["IA-PASSWORD-COMPLEXITY"]["minclass"])
    # two-factor login and security labels are level 3+ requirements
    assert "IA-MULTI-FACTOR" not in by_level[2] and "IA-MULTI-FACTOR" in by_level[3]


def test_expected_values_render_with_the_level_and_host():
    remote_log = next(c for c in catalog.controls(3) if c.id == "AU-REMOTE-LOGGING")
    assert remote_log.expected({"govctl_log_server": "bastion-1.prod"}) == \
        "rsyslog running, *.* forwarded over TCP to bastion-1.prod:514"


def test_the_role_implements_exactly_the_automated_items(document):
    """Every automated item has tasks named after it; every item task names a catalog item."""
    names = []
    for path in ROLE_TASKS.rglob("*.yml"):
        names += re.findall(r'^- name: "([A-Z]{2}-[A-Z0-9-]+) \|', path.read_text(), flags=re.M)
        # the elements of a merged "sub-checks | …" loop name their checks the same way
        names += re.findall(r'^\s+(?:- )?(?:\{id: [A-Z0-9-]+, )?check: "([A-Z]{2}-[A-Z0-9-]+) \|', path.read_text(), flags=re.M)
    implemented = set(names)
    automated = {i["id"] for i in document["items"] if i["automation"] != "manual"}
    assert automated == implemented
    observe = (ROOT / "playbooks/roles/govctl_baseline/templates/observe.sh.j2").read_text()
    probed = set(re.findall(r"^  '([A-Z]{2}-[A-Z0-9-]+)':", observe, flags=re.M))
    assert automated <= probed, "every automated item shows its observed value"
    assert probed <= {i["id"] for i in document["items"]}


def test_role_parameters_carry_only_automated_items_and_their_files():
    params = catalog.role_parameters(3)
    assert "IA-MULTI-FACTOR" in params["manual"] and "IA-MULTI-FACTOR" not in params["items"]
    assert "/etc/ssh/sshd_config" in params["backup_files"]
    assert "/etc/security/faillock.conf" in params["backup_files"]


def _broken(document, mutate):
    doc = copy.deepcopy(document)
    mutate(doc)
    return doc


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["items"][0].pop("remediation"), "remediation"),
    (lambda d: d["items"][0]["levels"][3].update(test_ids=["L3-CES-1"]), "does not match"),
    (lambda d: d["items"][0]["levels"][3].update(test_ids=["L2-CES1-01"]), "belong to another level"),
    (lambda d: d["items"][0]["levels"][3].update(clause="7.1.4.1 a)"), "not in section 8."),
    (lambda d: d["items"][1].update(expected="minlen ≥ {min_length}"), "min_length"),
    (lambda d: d["items"].append(copy.deepcopy(d["items"][0])), "appears twice"),
    (lambda d: d["items"][7].pop("auditor"), "auditor"),
    (lambda d: d["items"][0].update(automation="sometimes"), "is not one of"),
])
def test_bad_catalogs_are_refused_with_the_place_named(document, mutate, message):
    with pytest.raises(BadInput) as err:
        catalog.validate(_broken(document, mutate), source="test-catalog")
    assert "test-catalog" in str(err.value)
    assert message in str(err.value)


def test_unknown_level_is_bad_input():
    with pytest.raises(BadInput, match="--level 5"):
        catalog.controls(5)
