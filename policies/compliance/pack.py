"""Evidence packs: the reports, the raw evidence of every layer and the attachments, sealed with
crypto.evidence (a manifest of SM3 hashes, SM2-signed with the keystore's key)."""
from __future__ import annotations

import shutil
from pathlib import Path

from core.errors import BadInput, GovctlError

from . import collect
from .assessment import Assessment
from .render import render

REPORT_FORMATS = ("json", "csv", "html", "pdf")


def report_name(report: dict, fmt: str) -> str:
    return f"report-{report['key']}-L{report['level']}.{fmt}"


def write(directory: Path, reports: list[dict], layers: dict[str, dict], assessment: Assessment,
          keystore=None, key: str = "evidence", formats: tuple[str, ...] = REPORT_FORMATS) -> dict:
    """Write the pack into `directory` (new or empty) and seal it; returns the signed manifest."""
    from crypto import evidence

    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise BadInput(f"--out {directory} is not empty; give a new directory for the evidence pack")
    directory.mkdir(parents=True, exist_ok=True)
    for report in reports:
        for fmt in formats:
            (directory / report_name(report, fmt)).write_bytes(render(report, fmt))
    collect.save(layers, directory / "evidence")
    for attachment in assessment.attachments:
        source = assessment.attachment_file(attachment)
        if source is not None:
            target = directory / "attachments" / attachment["standard"] / attachment["item"] / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    if assessment.source is not None:
        shutil.copyfile(assessment.source, directory / "assessment.yaml")
    standards = ", ".join(f"{r['standard']} L{r['level']}" for r in reports)
    manifest = evidence.pack(directory, keystore, key, description=f"govctl compliance evidence pack: {standards}")
    from crypto.audit import record
    from crypto.keystore import actor
    record(actor(), "comply.pack", str(directory), {"standards": standards, "files": len(manifest["files"]),
                                                    "key": key, "signature": manifest["signature"]["value"]})
    return manifest


def verify(directory: Path, trusted: list | None = None, key: str = "evidence"):
    """crypto.evidence.verify; raises GovctlError naming every changed, missing or added file."""
    from crypto import evidence

    directory = Path(directory)
    if not directory.is_dir():
        raise BadInput(f"PACK {directory} is not a directory; give the directory `govctl comply pack` wrote")
    report = evidence.verify(directory, trusted, key=key)
    if not report.ok:
        problems = []
        if not report.signature_valid:
            problems.append("the manifest signature does not verify (manifest altered or signed by another key)")
        problems += [f"changed: {n}" for n in report.changed] + [f"missing: {n}" for n in report.missing]
        problems += [f"added: {n}" for n in report.added]
        raise PackInvalid(f"evidence pack {directory} fails verification: " + "; ".join(problems), report)
    return report


class PackInvalid(GovctlError):
    def __init__(self, message: str, report):
        super().__init__(message)
        self.report = report
