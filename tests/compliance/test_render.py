"""Reports: JSON and CSV for tools, HTML, and the Chinese PDF (rasterized with pdftoppm, text read
back with pdftotext; slow tier: WeasyPrint takes 5-20 s on the shared machine)."""
from __future__ import annotations

import csv
import io
import json
import subprocess

import pytest

from policies.compliance import render

from .conftest import evaluate, fixture_layers

HEADINGS = ("测评结论摘要", "问题与整改建议", "逐项测评结果", "证据明细")


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


@pytest.mark.slow
def test_pdf_in_chinese_rasterizes_and_reads_back(crypto_report, tmp_path):
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(render.render(crypto_report, "pdf"))
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")], check=True)
    images = sorted(tmp_path.glob("page-*.png"))
    assert len(images) == pages >= 4
    assert all(p.stat().st_size > 2000 for p in images)           # drawn pages, not blank ones
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "CJK" in fonts                                          # Chinese glyphs from Noto CJK, embedded
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert all(h in text for h in HEADINGS)
    assert "信息系统密码应用基本要求" in text and "估算分" in text
    for item_id in ("NC-AUTH", "AD-TRANSIT-CONFIDENTIALITY", "KM-ROTATION"):
        assert item_id in text
