"""Declared intent: what the customer says its hosts should have — the approved account roster, sudo
rules and package allow-list per host role, the bastion's second factor, the mandatory access
control module, what the system does not contain (wireless, mail), the patch policy and a
vulnerability-scan import. The checks (checks.py) compare the collected evidence with it, so items
that only a person could judge ("is every account on the roster?") are decided: 符合 when the hosts
match, 不符合 naming the difference, still 需人工核查 when nothing is declared.

The file is data (`state/compliance/intent.yaml`, schema `policies/catalogs/intent.schema.json`,
example `policies/intent.example.yaml`); collect.py reads it as the evidence layer `intent`, with
the scan parsed, so a saved collection or a pack carries what the report was judged against.

The scan import is a CSV (one finding per row) because every scanner exports one: Greenbone/OpenVAS
"CSV Results" and Nessus reports are mapped to these columns by a one-line spreadsheet step, and a
fixed small format is easy to parse as the hostile input it is (size, encoding, columns, values and
row count are all bounded; a bad row is refused naming the file and the line).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

from core import paths, yamlfile
from core.errors import BadInput

from .assessment import schema_problems
from .catalog import CATALOGS

SCHEMA = CATALOGS / "intent.schema.json"
SCAN_COLUMNS = ("host", "vulnerability", "severity", "first_seen", "status")
SEVERITIES = ("critical", "high", "medium", "low", "info")
SCAN_STATUSES = ("open", "fixed")
MAX_SCAN_BYTES = 32 * 1024 * 1024
MAX_SCAN_ROWS = 200_000
DEFAULT_MAX_SCAN_AGE_DAYS = 30


def default_path() -> Path:
    return paths.STATE / "compliance" / "intent.yaml"


def _dates_to_text(value):
    """YAML reads an unquoted 2026-12-01 as a date; the schema (and JSON evidence) want text."""
    if isinstance(value, dict):
        return {k: _dates_to_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dates_to_text(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def load(path: Path | None = None) -> dict | None:
    """The validated intent document, or None when no file is declared (the default path absent).
    Bad input names the file and the field."""
    from secops import address

    explicit = path is not None
    path = Path(path) if path else default_path()
    if not path.exists():
        if explicit:
            raise BadInput(f"intent file {path} does not exist; start from policies/intent.example.yaml")
        return None
    try:
        document = yamlfile.load(path)
    except yamlfile.YamlInputError as exc:
        raise BadInput(f"intent file {exc}") from None
    document = _dates_to_text(document)
    problems = schema_problems(document, SCHEMA)
    if problems:
        raise BadInput(f"intent file {path}: " + "; ".join(problems[:5]) + " (see policies/catalogs/intent.schema.json)")
    for i, text in enumerate((document.get("bastion") or {}).get("management_networks", [])):
        try:
            address.network(text)
        except ValueError as exc:
            problems.append(f"bastion.management_networks.{i}: {text!r} is not a CIDR range ({exc})")
    for name, role in document["roles"].items():
        names = [a["name"] for a in role.get("accounts", [])]
        problems += [f"roles.{name}.accounts: {n!r} is listed twice" for n in sorted({n for n in names if names.count(n) > 1})]
    scan = document.get("vulnerability_scan")
    if scan and not (path.parent / scan["path"]).is_file():
        problems.append(f"vulnerability_scan.path: {scan['path']} is not a file (relative to {path.parent})")
    if problems:
        raise BadInput(f"intent file {path}: " + "; ".join(problems[:5]))
    return document


def parse_scan(path: Path) -> list[dict]:
    """The findings of a scan CSV: columns host, vulnerability, severity, first_seen (YYYY-MM-DD),
    status (open|fixed), other columns ignored. Hostile input: bounded and refused naming the line."""
    try:
        raw = path.read_bytes()[:MAX_SCAN_BYTES + 1]
    except OSError as exc:
        raise BadInput(f"vulnerability scan {path}: cannot read it ({exc.strerror})") from None
    if len(raw) > MAX_SCAN_BYTES:
        raise BadInput(f"vulnerability scan {path}: larger than {MAX_SCAN_BYTES // 2**20} MiB; split the export per host")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput(f"vulnerability scan {path}: not UTF-8 at byte {exc.start}; export the CSV as UTF-8") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in SCAN_COLUMNS if c not in header]
    if missing:
        raise BadInput(f"vulnerability scan {path}: line 1 lacks the column(s) {', '.join(missing)}; "
                       f"the header must name {', '.join(SCAN_COLUMNS)}")
    reader.fieldnames = header
    findings = []
    try:
        for row in reader:
            line = reader.line_num
            if len(findings) >= MAX_SCAN_ROWS:
                raise BadInput(f"vulnerability scan {path}: more than {MAX_SCAN_ROWS} rows; split the export per host")
            values = {c: (row.get(c) or "").strip() for c in SCAN_COLUMNS}
            if any(ch < " " for v in values.values() for ch in v):
                raise BadInput(f"vulnerability scan {path}: line {line}: a value holds a control character")
            if not values["host"] or not values["vulnerability"]:
                raise BadInput(f"vulnerability scan {path}: line {line}: host and vulnerability must not be empty")
            severity, status = values["severity"].lower(), values["status"].lower()
            if severity not in SEVERITIES:
                raise BadInput(f"vulnerability scan {path}: line {line}: severity {values['severity']!r} is not one of "
                               f"{', '.join(SEVERITIES)}")
            if status not in SCAN_STATUSES:
                raise BadInput(f"vulnerability scan {path}: line {line}: status {values['status']!r} is not open or fixed")
            try:
                first_seen = dt.date.fromisoformat(values["first_seen"]).isoformat()
            except ValueError:
                raise BadInput(f"vulnerability scan {path}: line {line}: first_seen {values['first_seen']!r} "
                               "is not a date YYYY-MM-DD") from None
            findings.append({"host": values["host"][:253], "vulnerability": values["vulnerability"][:100],
                             "severity": severity, "first_seen": first_seen, "status": status})
    except csv.Error as exc:
        raise BadInput(f"vulnerability scan {path}: line {reader.line_num}: not CSV ({exc})") from None
    return findings


def evidence(path: Path | None = None) -> dict | None:
    """The intent layer's data: the declaration and the parsed scan (None when nothing is declared)."""
    document = load(path)
    if document is None:
        return None
    path = Path(path) if path else default_path()
    scan = document.get("vulnerability_scan")
    findings = parse_scan(path.parent / scan["path"]) if scan else None
    return {"file": str(path), "intent": document, "scan_findings": findings}
