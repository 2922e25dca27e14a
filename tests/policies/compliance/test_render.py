"""Reports: JSON and CSV for tools, and HTML. The Chinese PDF is checked in test_pack (slow tier),
where the pack renders it."""
from __future__ import annotations

import csv
import io
import json

import pytest

from policies.compliance import render

from .conftest import evaluate, fixture_layers

HEADINGS = ("测评结论摘要", "问题与整改建议", "逐项测评结果", "证据明细")  # also checked in the PDF (test_pack)


@pytest.fixture(scope="module")
def crypto_report() -> dict:
    return evaluate("mlps-crypto", fixture_layers())


def test_json_is_the_whole_assessment(crypto_report):
    doc = json.loads(render.render(crypto_report, "json"))
    assert doc["format"] == "govctl-compliance-report" and doc["standard"] == "GB/T 39786-2021"
    assert len(doc["items"]) == 30 and doc["estimate"]["label"]["zh"].startswith("估算分")
    assert all(i["evidence"] for i in doc["items"])


def test_csv_has_one_row_per_item_readable_by_spreadsheets(crypto_report):
    data = render.render(crypto_report, "csv")
    assert data.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert [r["id"] for r in rows] == [i["id"] for i in crypto_report["items"]]
    shall = next(r for r in rows if r["id"] == "AD-TRANSIT-CONFIDENTIALITY")
    assert shall["verdict"] == "不符合" and shall["obligation"] == "应" and "http://" in shall["deciding_evidence"]


def test_html_escapes_and_carries_the_sections(crypto_report):
    report = json.loads(json.dumps(crypto_report))
    report["system"] = {"name": "<script>x</script>"}
    html = render.to_html(report)
    assert "<script>x</script>" not in html and "&lt;script&gt;" in html
    assert all(h in html for h in HEADINGS)


