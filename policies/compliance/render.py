"""The assessment document (engine.evaluate) as JSON, CSV, HTML and a Chinese PDF.

HTML and PDF share one Jinja2 template (report.html.j2): summary with the estimate, per-area tables,
findings with remediation, and the evidence appendix, laid out the way assessors read a 测评报告.
The PDF is WeasyPrint over that HTML with the Noto CJK fonts from Debian (fonts-noto-cjk).
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from core.errors import GovctlError

from . import VERDICTS

HERE = Path(__file__).parent
FORMATS = ("json", "csv", "html", "pdf")
CSV_COLUMNS = ("standard", "level", "id", "clause", "area", "control", "importance", "obligation", "automation",
               "verdict", "verdict_en", "high_risk", "requirement_zh", "requirement_en", "deciding_evidence",
               "remediation", "prompts")


def to_json(report: dict) -> bytes:
    return (json.dumps(report, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def to_csv(report: dict) -> bytes:
    """One row per item. UTF-8 with a byte-order mark so spreadsheet tools read the Chinese."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for item in report["items"]:
        writer.writerow({
            "standard": report["standard"], "level": report["level"], "id": item["id"], "clause": item["clause"],
            "area": item["area_title"]["zh"], "control": item["control"]["zh"], "importance": item["importance"] or "",
            "obligation": item["obligation"] or "", "automation": item["automation"], "verdict": item["verdict"],
            "verdict_en": item["verdict_en"], "high_risk": "yes" if item["high_risk"] else "",
            "requirement_zh": item["requirement"]["zh"], "requirement_en": item["requirement"]["en"],
            "deciding_evidence": " | ".join(item["evidence"][i]["detail"] for i in item["deciding"]),
            "remediation": " | ".join(item["remediation"]), "prompts": " | ".join(item["prompts"]),
        })
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_html(report: dict, for_pdf: bool = False) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    return env.get_template("report.html.j2").render(r=report, verdicts=VERDICTS, for_pdf=for_pdf)


def to_pdf(report: dict) -> bytes:
    try:
        import weasyprint
    except ImportError as exc:
        raise GovctlError(f"PDF output needs WeasyPrint ({exc}); run `make setup`, which installs it with "
                          "Pango and the Noto CJK fonts") from None
    return weasyprint.HTML(string=to_html(report, for_pdf=True), base_url=str(HERE)).write_pdf()


def render(report: dict, fmt: str) -> bytes:
    if fmt == "json":
        return to_json(report)
    if fmt == "csv":
        return to_csv(report)
    if fmt == "html":
        return to_html(report).encode("utf-8")
    if fmt == "pdf":
        return to_pdf(report)
    raise ValueError(fmt)
