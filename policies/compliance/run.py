"""One assessment, as `govctl comply report|pack` and the console's compliance page make it: validate the
standard and level, gather the evidence (collected now or a saved directory), then evaluate the catalogs
with the assessment inputs, freshness limits and remediation tracking. The CLI and the console's API
(policies/api.py) call these same functions."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Callable, Optional

from core.errors import BadInput

from . import STANDARDS, assessment, catalog, collect, engine, freshness, remediation
from .checks import Evidence

LEVELS = (2, 3, 4)


def check_standard(standard: str) -> None:
    if standard not in STANDARDS:
        raise BadInput(f"--standard {standard!r} is unknown; use one of: {', '.join(STANDARDS)}")


def check_level(level: int) -> None:
    if level not in LEVELS:  # before the slow collection
        raise BadInput(f"--level {level} is not a protection level the catalogs cover; use 2, 3 or 4")


def layers(stack: str, evidence: Optional[Path], host_audit: Optional[Path], level: int,
           host_limit: Optional[str] = None, progress: Optional[Callable[[str], None]] = None) -> dict:
    """The evidence of every layer: read from `evidence` (a `govctl comply collect` directory) or collected now."""
    check_level(level)
    if evidence is not None:
        return collect.load(evidence)
    if host_audit is not None and not host_audit.is_file():
        raise BadInput(f"--host-audit {host_audit} does not exist; write it with `govctl audit --json --out FILE`")
    return collect.collect(stack, host_audit, host_limit, level, progress=progress)


known_items = catalog.known_items  # one lookup for the CLI, the API and assessments


def as_of_date(text: Optional[str]) -> dt.date:
    if text is None:
        return dt.datetime.now(dt.timezone.utc).date()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise BadInput(f"--as-of {text!r} is not a date; write it as YYYY-MM-DD") from None


def assess(standards: list[str], level: int, evidence_layers: dict, assessment_file: Optional[Path],
           as_of: Optional[str] = None) -> tuple[list[dict], assessment.Assessment]:
    """(one report document per standard, the assessment inputs they used)."""
    today = as_of_date(as_of)
    catalogs = [catalog.load(s, level) for s in standards]
    inputs = assessment.load(assessment_file, known_items())
    limits = freshness.load()
    tracker = remediation.load()
    evidence = Evidence(evidence_layers, level)
    documents = [engine.evaluate(c, evidence, inputs, today, limits) for c in catalogs]
    for document in documents:
        remediation.annotate(document, tracker, today)
    return documents, inputs
