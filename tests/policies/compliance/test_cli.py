"""`govctl comply` as a user runs it: bad input exits 2 naming the input; reports from saved evidence."""
from __future__ import annotations

import csv
import io
import json

from .conftest import FIXTURES
from tests.conftest import run_govctl


def test_bad_inputs_exit_2_and_say_what_to_do(tmp_path):
    cases = [
        (["report", "--standard", "pci", "--evidence", str(FIXTURES)], "--standard 'pci' is unknown"),
        (["report", "--standard", "djcp", "--format", "docx", "--evidence", str(FIXTURES)], "--format 'docx' is unknown"),
        (["report", "--standard", "djcp", "--format", "pdf", "--evidence", str(FIXTURES)], "needs --out"),
        (["report", "--standard", "djcp", "--level", "5", "--evidence", str(FIXTURES)], "--level 5"),
        (["report", "--standard", "djcp", "--evidence", str(tmp_path / "none")], "is not a directory"),
        (["report", "--standard", "djcp", "--evidence", str(FIXTURES), "--assessment", str(tmp_path / "a.yaml")], "does not exist"),
        (["verify", str(tmp_path / "nopack")], "is not a directory"),
    ]
    for args, message in cases:
        proc = run_govctl("comply", *args, env={"GOVCTL_STATE": str(tmp_path)})
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in " ".join(proc.stderr.split()), (args, proc.stderr)


def test_invalid_assessment_file_names_the_problem(tmp_path):
    bad = tmp_path / "a.yaml"
    bad.write_text("waivers:\n  - {standard: djcp, item: NO-SUCH-ITEM, justification: because so, approver: x, expires: 2030-01-01}\n"
                   "  - {standard: djcp, item: CE-IA-A, justification: short}\n", encoding="utf-8")
    proc = run_govctl("comply", "report", "--standard", "djcp", "--evidence", str(FIXTURES), "--assessment", str(bad))
    assert proc.returncode == 2 and "approver" in proc.stderr
    bad.write_text("waivers:\n  - {standard: djcp, item: NO-SUCH-ITEM, justification: because so, approver: x, expires: 2030-01-01}\n")
    proc = run_govctl("comply", "report", "--standard", "djcp", "--evidence", str(FIXTURES), "--assessment", str(bad))
    assert proc.returncode == 2 and "NO-SUCH-ITEM is not in the djcp catalog" in " ".join(proc.stderr.split())


def test_csv_and_json_reports_from_saved_evidence(tmp_path):
    out = tmp_path / "r.csv"
    proc = run_govctl("comply", "report", "--standard", "djcp", "--level", "3", "--format", "csv", "--out", str(out),
                      "--evidence", str(FIXTURES))
    assert proc.returncode == 0, proc.stderr
    assert "110 items" in proc.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert len(rows) == 110 and {r["verdict"] for r in rows} <= {"符合", "部分符合", "不符合", "不适用", "需人工核查"}
    proc = run_govctl("comply", "report", "--standard", "mlps-crypto", "--format", "json", "--evidence", str(FIXTURES))
    doc = json.loads(proc.stdout)
    assert doc["level"] == 3 and len(doc["items"]) == 30


def test_coverage_json():
    proc = run_govctl("comply", "coverage", "--level", "3", "--json")
    assert proc.returncode == 0
    djcp, crypto = json.loads(proc.stdout)
    assert djcp["total"]["items"] == 110 and crypto["total"]["items"] == 30
    assert sum(djcp["total"][k] for k in ("automated", "partial", "manual")) == 110
