"""The auditors' compliance routes (policies/api.py) on the console's API: who may read and who may run,
clear refusals for a bad request, an unknown or unfinished report, and hostile uploads (not a zip, a path
out of the pack, a zip that inflates past the limit, a body past the route's limit); a pack that verifies
and a tampered one named file by file. The slow test runs a whole report (with its PDF) in the background."""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from console.app import create_console_app
from core import paths
from core.api_extension import ApiExtension
from policies import api as compliance_api
from policies.compliance import records

from tests.console.conftest import PASSWORDS, _users_template  # noqa: F401 (fixture)
from tests.crypto.conftest import PASSPHRASE
from tests.policies.compliance.conftest import FIXTURES, evaluate, fixture_layers


def _app(folder, users, extension=compliance_api.EXTENSION):
    return create_console_app(folder / "secops.db", folder / "tokens.yaml", users,
                              static_dir=folder / "no-assets", extensions=[extension])


def _signed_in(app, name):
    client = TestClient(app)
    answer = client.post("/api/session", json={"name": name, "password": PASSWORDS[name]})
    assert answer.status_code == 200, answer.text
    client.headers["X-CSRF-Token"] = answer.json()["csrf"]
    return client


@pytest.fixture(scope="module")
def served(tmp_path_factory, _users_template):  # noqa: F811
    """One console app with the compliance routes on this module's own state (keystore, reports), and a
    signed-in client per role (argon2 makes each sign-in slow on purpose: once per module)."""
    from crypto.audit import AuditLog

    folder = tmp_path_factory.mktemp("compliance-api")
    state_dir = folder / "state"
    (state_dir / "crypto").mkdir(parents=True)
    (state_dir / "crypto" / "config.yaml").write_text("suite: gm\nkdf_iterations: 100000\n")
    users = folder / "users.yaml"
    shutil.copy2(_users_template, users)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(paths, "STATE", state_dir)
        patch.setenv("GOVCTL_STATE", str(state_dir))
        patch.setenv("GOVCTL_CRYPTO_PASSPHRASE", PASSPHRASE)
        patch.setenv("GOVCTL_ACTOR", "tester")
        AuditLog._open_logs.clear()
        app = _app(folder, users)
        yield SimpleNamespace(app=app, folder=folder, users=users, auditor=_signed_in(app, "zhao.lei"),
                              ops=_signed_in(app, "wang.fang"))
        AuditLog._open_logs.clear()


@pytest.fixture
def sealed_pack(served, tmp_path) -> Path:
    """A pack of the lab fixtures' djcp L3 report (JSON and CSV only: the PDF is the slow test's), signed with
    the test keystore's evidence key."""
    from crypto.audit import open_keystore
    from policies.compliance import pack
    from policies.compliance.assessment import Assessment

    out = tmp_path / "pack"
    pack.write(out, [evaluate("djcp", fixture_layers())], fixture_layers(), Assessment(), open_keystore(),
               formats=("json", "csv"))
    return out


def test_ops_reads_but_may_not_run_and_a_bad_run_request_is_refused_with_its_reason(served):
    assert TestClient(served.app).get("/api/compliance/reports").status_code == 401
    ops, auditor = served.ops, served.auditor
    before = ops.get("/api/compliance/reports")
    assert before.status_code == 200
    refused = ops.post("/api/compliance/reports", json={"standard": "djcp", "level": 3})
    assert refused.status_code == 403 and "comply-run" in refused.json()["detail"]
    bad_level = auditor.post("/api/compliance/reports", json={"standard": "djcp", "level": 5})
    assert bad_level.status_code == 422 and "level" in json.dumps(bad_level.json())
    bad_standard = auditor.post("/api/compliance/reports", json={"standard": "iso27001"})
    assert bad_standard.status_code == 422
    no_evidence = auditor.post("/api/compliance/reports", json={"standard": "djcp", "level": 3, "evidence": "saved"})
    assert no_evidence.status_code == 422 and "govctl comply collect" in no_evidence.json()["detail"]
    assert auditor.get("/api/compliance/reports").json() == before.json()  # nothing recorded when refused


def test_unknown_and_unfinished_reports_answer_404_and_409(served):
    auditor = served.auditor
    assert auditor.get("/api/compliance/reports/20261207T000000Z-djcp-L3-abcdef").status_code == 404
    assert auditor.get("/api/compliance/reports/..%2F..%2Fetc/report").status_code in (404, 422)
    assert auditor.get("/api/compliance/reports/not-an-id/report").status_code == 422
    def on_record(record_id: str, pid: int) -> None:
        directory = records.reports_dir() / record_id
        directory.mkdir(parents=True)
        (directory / "record.json").write_text(json.dumps(
            {"id": record_id, "standard": "djcp", "level": 3, "source": "saved", "as_of": None,
             "requested_by": "zhao.lei", "started": "2026-12-07T00:00:00+00:00", "finished": None,
             "status": "running", "error": None, "pid": pid}))

    on_record("20261207T000000Z-djcp-L3-abcdef", os.getpid())  # being made by a live process (this one)
    gone = subprocess.Popen(["true"])
    gone.wait()
    on_record("20261207T000001Z-djcp-L3-fedcba", gone.pid)  # its maker stopped (the console restarted)
    listed = {r["id"]: r for r in auditor.get("/api/compliance/reports").json()}
    running = listed["20261207T000000Z-djcp-L3-abcdef"]
    assert running["status"] == "running" and running["requested_by"] == "zhao.lei"
    busy = auditor.get(f"/api/compliance/reports/{running['id']}/files/pdf")
    assert busy.status_code == 409 and "running" in busy.json()["detail"]
    interrupted = listed["20261207T000001Z-djcp-L3-fedcba"]
    assert interrupted["status"] == "failed" and "interrupted" in interrupted["error"]
    refused = auditor.get(f"/api/compliance/reports/{interrupted['id']}/report")
    assert refused.status_code == 409 and "run it again" in refused.json()["detail"]


def test_a_sealed_pack_verifies_and_a_tampered_one_names_what_changed(served, sealed_pack, tmp_path):
    auditor = served.auditor
    verified = auditor.post("/api/compliance/verify", content=records.zip_folder(sealed_pack))
    assert verified.status_code == 200, verified.text
    assert verified.json()["ok"] is True and verified.json()["files"] > 5

    report = sealed_pack / "report-djcp-L3.json"
    report.write_text(report.read_text(encoding="utf-8").replace("不符合", "符合"), encoding="utf-8")
    (sealed_pack / "extra.txt").write_text("slipped in")
    (sealed_pack / "evidence" / "hosts.json").unlink()
    tampered = auditor.post("/api/compliance/verify", content=records.zip_folder(sealed_pack)).json()
    assert tampered["ok"] is False and tampered["signature_valid"] is True
    assert tampered["changed"] == ["report-djcp-L3.json"] and tampered["added"] == ["extra.txt"]
    assert tampered["missing"] == ["evidence/hosts.json"]
    assert "changed: report-djcp-L3.json" in tampered["reason"] and str(tmp_path) not in tampered["reason"]

    manifest = sealed_pack / "evidence.manifest.json"
    doc = json.loads(manifest.read_text())
    doc["description"] = "a pack someone re-described"
    manifest.write_text(json.dumps(doc))
    forged = auditor.post("/api/compliance/verify", content=records.zip_folder(sealed_pack)).json()
    assert forged["ok"] is False and forged["signature_valid"] is False
    assert "signature does not verify" in forged["reason"]


def test_hostile_uploads_are_refused_with_a_reason(served, monkeypatch):
    auditor = served.auditor

    def refusal(body: bytes) -> str:
        answer = auditor.post("/api/compliance/verify", content=body)
        assert answer.status_code == 422, answer.text
        return answer.json()["detail"]

    assert "not a zip file" in refusal(b"%PDF-1.7 not a zip at all")
    assert "not a zip file" in refusal(b"")
    # over the API's usual 64 KiB but a zip of nothing useful: the route's own limit let it through
    assert "not a zip file" in refusal(b"x" * 100_000)

    def zipped(entries: dict[str, bytes]) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in entries.items():
                archive.writestr(name, data)
        return buffer.getvalue()

    assert "points outside the pack" in refusal(zipped({"../../escape.txt": b"x"}))
    assert "points outside the pack" in refusal(zipped({"/etc/cron.d/x": b"x"}))
    assert "no evidence.manifest.json" in refusal(zipped({"notes.txt": b"hello"}))

    link = zipfile.ZipInfo("evidence.manifest.json")
    link.external_attr = (0o120777 << 16)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(link, "/etc/passwd")
    assert "symbolic link" in refusal(buffer.getvalue())

    # a zip bomb, scaled down: the limit on what a zip may inflate to, checked on the sizes it declares; a
    # forged directory entry that under-declares is refused too (inflating stops at the declared size)
    monkeypatch.setattr(records, "MAX_UNPACKED_BYTES", 1_000_000)
    bomb = zipped({"evidence.manifest.json": b"{}", "zeros.bin": bytes(3_000_000)})
    assert len(bomb) < 10_000
    assert "unpacks to more than 1000000 bytes" in refusal(bomb)
    liar = bytearray(bomb)
    for header in (b"PK\x01\x02",):  # the central directory entry of zeros.bin: claim 1 000 bytes
        at = liar.rfind(header)
        liar[at + 24:at + 28] = (1000).to_bytes(4, "little")
    assert "damaged zip file" in refusal(bytes(liar))

    # the body itself: past the route's limit it is refused before it is read
    small = ApiExtension("compliance", compliance_api.build, compliance_api.PERMISSIONS,
                         body_limits={compliance_api.VERIFY_PATH: 4096})
    (served.folder / "other").mkdir()
    limited = TestClient(_app(served.folder / "other", served.users, small))
    too_big = limited.post("/api/compliance/verify", content=b"x" * 5000)
    assert too_big.status_code == 413  # before sign-in is even looked at: the body is never read


@pytest.mark.slow
def test_auditor_runs_a_report_opens_filters_and_downloads_it(served):
    shutil.copytree(FIXTURES, records.saved_evidence_dir())
    auditor = served.auditor
    started = auditor.post("/api/compliance/reports", json={"standard": "djcp", "level": 3, "as_of": "2026-12-07"})
    assert started.status_code == 202, started.text
    record_id = started.json()["id"]
    assert started.json()["status"] == "running" and started.json()["requested_by"] == "zhao.lei"
    deadline = time.monotonic() + 180
    while (status := auditor.get(f"/api/compliance/reports/{record_id}").json())["status"] == "running":
        assert time.monotonic() < deadline, "the report was not ready within 3 minutes"
        time.sleep(0.5)
    assert status["status"] == "ready", status
    assert status["counts"]["不符合"] == 6 and status["high_risk"] == 2 and isinstance(status["score"], (int, float))

    whole = auditor.get(f"/api/compliance/reports/{record_id}/report").json()
    assert whole["total_items"] == len(whole["report"]["items"]) == 110
    assert whole["freshness"]["stack"]["collected"] == json.loads((FIXTURES / "stack.json").read_text())["collected"]
    # collected on 2026-11-22: 15 days before, past the hosts' limit of 7 days, within the others' 30
    assert {name for name, layer in whole["freshness"].items() if layer["stale"]} == {"hosts"}
    found = auditor.get(f"/api/compliance/reports/{record_id}/report",
                        params={"verdict": "不符合", "high_risk": "true"}).json()["report"]["items"]
    assert {i["id"] for i in found} == {"CE-CONF-A", *{i["id"] for i in found}} and len(found) == 2
    assert all(i["verdict"] == "不符合" and i["high_risk"] and i["deciding"] for i in found)
    hosts = auditor.get(f"/api/compliance/reports/{record_id}/report",
                        params={"layer": "hosts", "automation": "partial"}).json()["report"]["items"]
    assert hosts and all(i["automation"] == "partial" and "hosts" in {e["layer"] for e in i["evidence"]} for i in hosts)

    pdf = auditor.get(f"/api/compliance/reports/{record_id}/files/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-") and pdf.headers["content-type"] == "application/pdf"
    csv = auditor.get(f"/api/compliance/reports/{record_id}/files/csv").content.decode("utf-8-sig")
    assert csv.startswith("standard,level,id") and csv.count("\n") == 111
    pack = auditor.get(f"/api/compliance/reports/{record_id}/pack")
    assert pack.headers["content-disposition"] == f'attachment; filename="{record_id}-pack.zip"'
    names = zipfile.ZipFile(io.BytesIO(pack.content)).namelist()
    assert {"evidence.manifest.json", "report-djcp-L3.pdf", "evidence/stack.json"} <= set(names)
    assert auditor.post("/api/compliance/verify", content=pack.content).json()["ok"] is True

    assert record_id in [r["id"] for r in served.ops.get("/api/compliance/reports").json()]  # ops reads it too
