"""The catalogs are data: valid, consistent with the host catalog and the pack, level-aware."""
from __future__ import annotations

import copy
import dataclasses
import re

import pytest

from core.paths import ROOT
from policies.compliance import catalog, engine
from policies.compliance.catalog import CatalogError


def test_both_catalogs_load_at_every_level():
    for standard in ("djcp", "mlps-crypto"):
        for level in (2, 3, 4):
            c = catalog.load(standard, level)
            assert c.items and all(level in i.levels for i in c.items)


def test_level_differences_select_items():
    l2 = {i.id for i in catalog.load("djcp", 2).items}
    l3 = {i.id for i in catalog.load("djcp", 3).items}
    l4 = {i.id for i in catalog.load("djcp", 4).items}
    assert "CE-IA-D" in l3 and "CE-IA-D" not in l2          # two-factor authentication from level 3
    assert not {i for i in l2 if i.startswith("MC-CEN-")}    # 集中管控 only from level 3
    assert {"CN-ARCH-F", "CN-TRANS-C", "CN-TRANS-D"} <= l4 - l3
    assert l3 - {"CN-ARCH-F"} <= l4


def test_level3_djcp_covers_the_four_technical_areas_and_cloud():
    c = catalog.load("djcp", 3)
    areas = {i.area for i in c.items}
    assert {"communication_network", "area_boundary", "computing_environment", "management_center",
            "cloud_communication_network", "cloud_area_boundary", "cloud_computing_environment",
            "cloud_management_center"} == areas
    assert all(i.importance in ("关键", "重要", "一般") for i in c.items)
    assert all(i.requirement["zh"] and i.requirement["en"] for i in c.items)
    assert all(re.match(r"^8\.[12]\.\d+\.\d+ [a-g]\)$", i.clause) for i in c.items)


def test_mlps_crypto_obligations_and_every_shall_item_has_automated_evidence():
    c = catalog.load("mlps-crypto", 3)
    assert {i.obligation for i in c.items} == {"应", "宜", "可"}
    shall = [i for i in c.items if i.obligation == "应"]
    assert shall and all(catalog.automation(i) in ("automated", "partial") for i in shall), \
        [i.id for i in shall if catalog.automation(i) == "manual"]


def test_mlps_crypto_obligation_follows_the_level():
    at = {lvl: {i.id: i.obligation for i in catalog.load("mlps-crypto", lvl).items} for lvl in (2, 3, 4)}
    assert (at[2]["NC-AUTH"], at[3]["NC-AUTH"]) == ("宜", "应")
    assert (at[3]["AD-TRANSIT-INTEGRITY"], at[4]["AD-TRANSIT-INTEGRITY"]) == ("宜", "应")
    assert at[2]["PE-AUTH"] == "可" and at[4]["PE-AUTH"] == "应"
    assert "DC-REMOTE-CHANNEL" not in at[2]


def test_host_items_are_referenced_not_duplicated():
    hosts = catalog.host_catalog()
    referenced = {h for i in catalog.load("djcp", 3).items for c in i.checks if c.kind == "host" for h in c.param}
    assert referenced and referenced <= set(hosts)
    text = (ROOT / "policies" / "catalogs" / "djcp.yaml").read_text(encoding="utf-8")
    assert "pam_pwquality" not in text and "minlen" not in text   # host parameters live in the host catalog only


def _document():
    return copy.deepcopy(catalog.load_document("djcp"))


def test_unknown_host_item_is_refused_naming_it():
    doc = _document()
    doc["items"][0]["checks"] = [{"host": ["IA-NO-SUCH-ITEM"]}]
    with pytest.raises(CatalogError, match="IA-NO-SUCH-ITEM"):
        catalog.validate(doc, "test")


def test_unimplemented_check_and_duplicate_id_are_refused():
    doc = _document()
    doc["items"][0]["checks"] = ["stack.nonexistent"]
    doc["items"][1]["id"] = doc["items"][2]["id"]
    with pytest.raises(CatalogError) as err:
        engine.validate_catalog(doc, "test")  # check names are the engine's to validate
    assert "stack.nonexistent" in str(err.value) and "appears twice" in str(err.value)


def test_every_check_the_shipped_catalogs_name_can_run():
    for standard in ("djcp", "mlps-crypto"):
        assert engine.unrunnable_checks(catalog.load_document(standard)) == [], standard


def test_report_refuses_a_catalog_naming_an_unimplemented_check(layers):
    """What `govctl comply report` does: load the catalog, evaluate it; the error names the file."""
    from policies.compliance.assessment import Assessment
    from policies.compliance.checks import Evidence

    loaded = catalog.load("djcp", 3)
    broken = dataclasses.replace(loaded.items[0], checks=(catalog.Check("stack.nonexistent"),))
    with pytest.raises(CatalogError) as err:
        engine.evaluate(dataclasses.replace(loaded, items=(broken,) + loaded.items[1:]), Evidence(layers, 3), Assessment())
    assert str(err.value) == (f"{ROOT / 'policies' / 'catalogs' / 'djcp.yaml'}: "
                              f"{broken.id}: check 'stack.nonexistent' has no implementation in checks.py")


def test_unknown_pack_rule_and_schema_error_are_refused():
    doc = _document()
    doc["items"][0]["checks"] = [{"pack": ["djcp-not-a-rule"]}]
    with pytest.raises(CatalogError, match="djcp-not-a-rule"):
        catalog.validate(doc, "test")
    doc = _document()
    del doc["items"][0]["requirement"]
    with pytest.raises(CatalogError, match="requirement"):
        catalog.validate(doc, "test")


def test_coverage_figures_in_the_docs_match_the_catalogs():
    """docs/compliance.md states the coverage per standard and level; it must be what the catalogs give."""
    doc = (ROOT / "docs" / "compliance.md").read_text(encoding="utf-8")
    for standard in ("djcp", "mlps-crypto"):
        for level in (2, 3, 4):
            t = catalog.coverage(catalog.load(standard, level))["total"]
            row = f"| {standard} | {level} | {t['items']} | {t['automated']} | {t['partial']} | {t['manual']} |"
            assert row in doc, f"docs/compliance.md lacks the row {row}"
