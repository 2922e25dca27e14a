"""Declared document register (issue 19): items whose evidence is a document are decided from the
register — 符合 when the file is there with its declared SM3 digest, approved and not overdue for review,
不符合 naming the problem — and every such verdict says it rests on a declaration. Hostile registers are
refused naming the file and the field."""
from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml

from core.errors import BadInput
from policies.compliance import COMPLIANT, MANUAL, NON_COMPLIANT, PARTIAL, documents
from policies.compliance.collect import collect_documents

from .conftest import deciding_text, evaluate, fixture_layers, item

EXAMPLE = Path(__file__).parents[3] / "policies" / "documents.example.yaml"
REGISTER = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
ANSWERED = sorted({i for d in REGISTER["documents"] for i in d["answers"]["djcp"]})
TODAY = dt.date(2026, 12, 7)


def register(tmp_path: Path, change=None) -> Path:
    """A copy of the example register and its documents in tmp_path, the register edited by `change`."""
    shutil.copytree(EXAMPLE.parent / "documents.example", tmp_path / "documents.example")
    document = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    if change:
        change(document)
    path = tmp_path / "documents.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def report_with(path: Path | None, today: dt.date = TODAY) -> dict:
    layers = fixture_layers()
    layers["documents"] = collect_documents(path)
    return evaluate("djcp", layers, today=today)


def document_result(entry: dict) -> dict:
    return next(e for e in entry["evidence"] if e["check"] == "document")


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """The saved lab evidence judged without a register, with the example register, and with every
    registered document edited after its approval."""
    intact = register(tmp_path_factory.mktemp("intact"))
    edited = register(tmp_path_factory.mktemp("edited"))
    for path in (edited.parent / "documents.example").iterdir():
        path.write_text(path.read_text(encoding="utf-8") + "\n未经批准的修改 an unapproved edit\n", encoding="utf-8")
    return {"none": evaluate("djcp", fixture_layers(), today=TODAY), "intact": report_with(intact),
            "edited": report_with(edited)}


@pytest.mark.parametrize("item_id", ANSWERED)
def test_a_registered_document_decides_its_item(reports, item_id):
    assert item(reports["none"], item_id)["verdict"] == MANUAL
    entry = item(reports["intact"], item_id)
    document = document_result(entry)
    assert document["verdict"] == COMPLIANT and document["layer"] == "documents"
    assert document["detail"].startswith("由声明决定 decided by declaration") and "SM3 摘要一致" in document["detail"]
    assert "manual" not in [e["check"] for e in entry["evidence"]]


@pytest.mark.parametrize("item_id", ANSWERED)
def test_a_document_changed_after_approval_fails_its_item(reports, item_id):
    entry = item(reports["edited"], item_id)
    assert entry["verdict"] in (NON_COMPLIANT, PARTIAL) and document_result(entry)["verdict"] == NON_COMPLIANT
    assert "SM3 摘要与登记不符" in deciding_text(entry) and "由声明决定" in deciding_text(entry)
    assert any("更新其 SM3 摘要" in r for r in entry["remediation"])


def test_the_example_register_decides_the_items_whose_other_evidence_is_there(reports):
    left = {i["id"] for i in reports["intact"]["items"] if i["verdict"] == MANUAL}
    # the saved collection had no availability report (CN-ARCH-A/B) and no SecOps configuration (CL-CN-E):
    # those still wait for that evidence, not for the document
    assert left & set(ANSWERED) == {"CN-ARCH-A", "CN-ARCH-B", "CL-CN-E"}
    assert reports["none"]["counts"][MANUAL] - reports["intact"]["counts"][MANUAL] == len(ANSWERED) - 3 == 16
    assert {"AB-ACL-E", "AB-IPS-C", "AB-MAL-A", "AB-AUD-D", "CL-CE-IP-A"} <= left   # technical controls: no document


def test_a_missing_file_fails_naming_it(tmp_path):
    path = register(tmp_path)
    (tmp_path / "documents.example" / "migration-plan.md").unlink()
    entry = item(report_with(path), "CL-CE-BAK-D")
    assert entry["verdict"] == PARTIAL       # its automated check (the topology policy) passes
    assert "documents.example/migration-plan.md）不存在（missing file）" in deciding_text(entry)


def test_an_overdue_review_fails_and_a_current_one_passes(tmp_path):
    path = register(tmp_path)
    assert item(report_with(path, dt.date(2027, 2, 28)), "AB-ACL-B")["verdict"] == COMPLIANT   # due that day
    entry = item(report_with(path, dt.date(2027, 3, 1)), "AB-ACL-B")
    assert entry["verdict"] == PARTIAL and "复审逾期（review overdue：应于 2027-02-28 前复审）" in deciding_text(entry)


def test_an_approval_dated_in_the_future_is_not_an_approval(tmp_path):
    def later(doc):
        doc["documents"][0].update(approved_on="2026-12-20", next_review="2027-06-20")
    entry = item(report_with(register(tmp_path, later)), "CN-ARCH-A")
    assert entry["verdict"] == NON_COMPLIANT and "批准日期 2026-12-20 晚于今天" in deciding_text(entry)


def test_a_document_too_large_to_digest_is_left_to_a_person(tmp_path, monkeypatch):
    monkeypatch.setattr(documents, "MAX_DOCUMENT_BYTES", 100)
    entry = item(report_with(register(tmp_path)), "CE-PI-A")
    assert entry["verdict"] == MANUAL and "not digested" in " ".join(entry["prompts"])


def test_without_a_register_the_layer_is_unavailable_with_a_prompt(tmp_path, monkeypatch):
    from core import paths

    monkeypatch.setattr(paths, "STATE", tmp_path)
    doc = collect_documents()
    assert doc["status"] == "unavailable" and "policies/documents.example.yaml" in doc["prompt"]["zh"]
    with pytest.raises(BadInput, match="does not exist"):
        collect_documents(tmp_path / "nowhere.yaml")


def test_an_attachment_a_person_examined_comes_before_the_register(tmp_path):
    from policies.compliance.assessment import Assessment

    layers = fixture_layers()
    layers["documents"] = collect_documents(register(tmp_path))
    attachment = {"standard": "djcp", "item": "CE-PI-A", "title": "个人信息清单（现场核查）", "verdict": NON_COMPLIANT,
                  "assessor": "测评师 周工", "date": "2026-12-01"}
    entry = item(evaluate("djcp", layers, assessment=Assessment(attachments=[attachment]), today=TODAY), "CE-PI-A")
    assert entry["verdict"] == NON_COMPLIANT and [e["check"] for e in entry["evidence"]] == ["attachment"]


# ---------------------------------------------------------------- hostile registers
def entry0(**values):
    def change(doc):
        doc["documents"][0].update(values)
    return change


@pytest.mark.parametrize("change, expected", [
    (entry0(colour="red"), "documents.0: Additional properties are not allowed ('colour' was unexpected)"),
    (entry0(sm3=42), "documents.0.sm3: 42 is not of type 'string'"),
    (entry0(sm3="abc"), "documents.0.sm3: 'abc' does not match"),
    (entry0(approved_on="yesterday"), "documents.0.approved_on: 'yesterday' is not a 'date'"),
    (entry0(answers={"djcp": "CN-ARCH-A"}), "documents.0.answers.djcp: 'CN-ARCH-A' is not of type 'array'"),
    (entry0(answers={"iso27001": ["A.5"]}), "documents.0.answers: Additional properties are not allowed"),
    (entry0(path="../../etc/passwd"), "documents.0 (capacity-records).path: '../../etc/passwd' must not contain `..`"),
    (entry0(path="documents.example/../../x.md"), "must not contain `..`"),
    (entry0(path="/etc/passwd"), "documents.0 (capacity-records).path: '/etc/passwd' must be relative"),
    (entry0(answers={"djcp": ["CN-ARCH-Z"]}), "documents.0 (capacity-records).answers.djcp: item CN-ARCH-Z is not in the djcp catalog"),
    (entry0(next_review="2026-01-01"), "documents.0 (capacity-records).next_review: 2026-01-01 is before approved_on 2026-11-15"),
    (entry0(id="network-admission"), "documents: id 'network-admission' is listed twice"),
    (lambda doc: doc.update(documents=[]), "documents: [] should be non-empty"),
    (lambda doc: doc.update(owner="x"), "(document): Additional properties are not allowed ('owner' was unexpected)"),
])
def test_a_hostile_register_is_refused_naming_the_file_and_field(tmp_path, change, expected):
    path = register(tmp_path, change)
    with pytest.raises(BadInput) as refused:
        collect_documents(path)
    assert str(path) in str(refused.value) and expected in str(refused.value)


def test_a_symbolic_link_out_of_the_folder_is_refused(tmp_path):
    path = register(tmp_path)
    (tmp_path / "documents.example" / "outside.md").symlink_to("/etc/hostname")
    path.write_text(path.read_text(encoding="utf-8").replace("documents.example/capacity-records.md",
                                                             "documents.example/outside.md"), encoding="utf-8")
    with pytest.raises(BadInput, match=r"documents.0 \(capacity-records\).path: .* leads outside"):
        collect_documents(path)


@pytest.mark.parametrize("content, expected", [
    (b"documents: [" + b"x" * (2 * 1024 * 1024), "larger than"),
    (b"documents:\n  - {id: a\n", "document register"),
    (b"\xff\xfe\x00", "not UTF-8"),
])
def test_a_huge_or_broken_register_file_is_refused(tmp_path, content, expected):
    path = tmp_path / "documents.yaml"
    path.write_bytes(content)
    with pytest.raises(BadInput) as refused:
        collect_documents(path)
    assert str(path) in str(refused.value) and expected in str(refused.value)
