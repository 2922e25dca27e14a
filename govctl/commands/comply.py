"""govctl comply: compliance reports for auditors (等保 2.0 GB/T 22239, 密评 GB/T 39786)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    name="comply",
    no_args_is_help=True,
    help=(
        "Compliance reports for auditors: 等保 2.0 (GB/T 22239-2019) and 密评 (GB/T 39786-2021), per item "
        "符合 / 部分符合 / 不符合 / 不适用 / 需人工核查 with the evidence collected from the stack, firewalls, "
        "hosts, monitoring, SecOps, crypto and drills; signed evidence packs.\n\n"
        "Example: govctl comply report --standard djcp --level 3 --format pdf --out djcp.pdf"
    ),
)

STANDARD_HELP = "djcp (等保 2.0, GB/T 22239-2019) or mlps-crypto (密评, GB/T 39786-2021)."


def _progress(layer: str) -> None:
    from govctl.ui import err_console

    err_console.print(f"[dim]collecting {layer} evidence…[/dim]")


def _layers(stack: str, evidence: Optional[Path], host_audit: Optional[Path], level: int,
            host_limit: Optional[str] = None) -> dict:
    from policies.compliance import run

    return run.layers(stack, evidence, host_audit, level, host_limit, progress=_progress)


def _assess(standards: list[str], level: int, layers: dict, assessment_file: Optional[Path],
            as_of: Optional[str] = None) -> tuple[list[dict], object]:
    from policies.compliance import run

    return run.assess(standards, level, layers, assessment_file, as_of)


def _check_standard(standard: str) -> None:
    from policies.compliance import run

    run.check_standard(standard)


def _as_of(text: Optional[str]):
    from policies.compliance import run

    return run.as_of_date(text)


def _known_items() -> dict[str, set[str]]:
    from policies.compliance import run

    return run.known_items()


@app.command("report")
def report(
    standard: str = typer.Option(..., "--standard", help=STANDARD_HELP),
    level: int = typer.Option(3, "--level", help="Protection level: 2, 3 or 4."),
    fmt: str = typer.Option("html", "--format", help="html, pdf (Chinese, for assessors), json or csv (for tools)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write here (default: stdout; pdf needs --out)."),
    stack: str = typer.Option("lab", "--stack", help="Stack whose evidence to collect."),
    evidence: Optional[Path] = typer.Option(None, "--evidence", help="Use a saved evidence directory (`govctl comply collect`) instead of collecting."),
    host_audit: Optional[Path] = typer.Option(None, "--host-audit", help="A saved `govctl audit --json` result instead of auditing the hosts now."),
    assessment_file: Optional[Path] = typer.Option(None, "--assessment", help="Attachments and waivers (YAML; default state/compliance/assessment.yaml)."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Judge waivers, evidence freshness and remediation due dates as of this date (YYYY-MM-DD; default today)."),
) -> None:
    """Assess the stack against a standard and write the report.

    Example: govctl comply report --standard mlps-crypto --level 3 --format csv --out mlps.csv
    """
    import sys

    from core.errors import BadInput
    from govctl.ui import err_console
    from policies.compliance.render import FORMATS, render

    _check_standard(standard)
    if fmt not in FORMATS:
        raise BadInput(f"--format {fmt!r} is unknown; use one of: {', '.join(FORMATS)}")
    if fmt == "pdf" and out is None:
        raise BadInput("--format pdf needs --out FILE (a PDF is not written to a terminal)")
    layers = _layers(stack, evidence, host_audit, level)
    (document,), _ = _assess([standard], level, layers, assessment_file, as_of)
    data = render(document, fmt)
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    c, e = document["counts"], document["estimate"]
    err_console.print(f"{out}: {len(document['items'])} items — " + ", ".join(f"{k} {v}" for k, v in c.items())
                      + f"; high-risk {e['high_risk_findings']}; {e['label']['en']} {e['score']}")
    if document["stale_layers"]:
        err_console.print(f"stale evidence (older than its limit): {', '.join(document['stale_layers'])} — "
                          "collect again with `govctl comply collect`")
    if document["remediation_tracking"]["overdue"]:
        err_console.print(f"overdue remediation: {', '.join(document['remediation_tracking']['overdue'])} — "
                          "see `govctl comply remediation list --overdue`")


@app.command("collect")
def collect_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Directory for the evidence files (<layer>.json)."),
    stack: str = typer.Option("lab", "--stack", help="Stack whose evidence to collect."),
    level: int = typer.Option(3, "--level", help="Protection level the hosts are audited at: 2, 3 or 4."),
    host_audit: Optional[Path] = typer.Option(None, "--host-audit", help="A saved `govctl audit --json` result instead of auditing the hosts now."),
    host_limit: Optional[str] = typer.Option(None, "--host-limit", help="Audit only these hosts (Ansible pattern, e.g. web-1.prod or center_prod)."),
    json_out: bool = typer.Option(False, "--json", help="Print each layer's status as JSON."),
) -> None:
    """Collect the raw evidence of every layer into a directory (reports can be made from it later).

    Example: govctl comply collect --stack lab --out state/compliance/evidence
    """
    from govctl.ui import console, print_json
    from policies.compliance import collect

    layers = _layers(stack, None, host_audit, level, host_limit)
    collect.save(layers, out)
    summary = {n: {"status": d["status"], "prompt": (d.get("prompt") or {}).get("en")} for n, d in layers.items()}
    if json_out:
        print_json(summary)
    else:
        for name, s in summary.items():
            console.print(f"{name:<11} {s['status']}" + (f"  — {s['prompt']}" if s["prompt"] else ""))


@app.command("pack")
def pack(
    out: Path = typer.Option(..., "--out", "-o", help="New directory for the pack."),
    level: int = typer.Option(3, "--level", help="Protection level: 2, 3 or 4."),
    standard: list[str] = typer.Option(["djcp", "mlps-crypto"], "--standard", help=STANDARD_HELP + " Repeatable; default both."),
    stack: str = typer.Option("lab", "--stack", help="Stack whose evidence to collect."),
    evidence: Optional[Path] = typer.Option(None, "--evidence", help="Use a saved evidence directory instead of collecting."),
    host_audit: Optional[Path] = typer.Option(None, "--host-audit", help="A saved `govctl audit --json` result."),
    assessment_file: Optional[Path] = typer.Option(None, "--assessment", help="Attachments and waivers (YAML)."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Judge waivers, evidence freshness and remediation due dates as of this date (YYYY-MM-DD; default today)."),
    key: str = typer.Option("evidence", "--key", help="SM2 signing key of the keystore (created on first use)."),
    json_out: bool = typer.Option(False, "--json", help="Print the signed manifest."),
) -> None:
    """Write an evidence pack: reports (json, csv, html, pdf), raw evidence, attachments, and a
    manifest of SM3 hashes signed with SM2.

    Example: govctl comply pack --out out/assessment-2026 && govctl comply verify out/assessment-2026
    """
    from crypto.audit import open_keystore
    from govctl.ui import console, print_json
    from policies.compliance import pack as packs

    for s in standard:
        _check_standard(s)
    keystore = open_keystore()  # unlock first: a locked keystore fails before the slow collection
    layers = _layers(stack, evidence, host_audit, level)
    documents, inputs = _assess(list(dict.fromkeys(standard)), level, layers, assessment_file, as_of)
    manifest = packs.write(out, documents, layers, inputs, keystore, key)
    if json_out:
        print_json(manifest)
    else:
        console.print(f"sealed {len(manifest['files'])} files in {out} (SM3 manifest, SM2 key {key!r}); "
                      f"check with: govctl comply verify {out}")


@app.command("verify")
def verify(
    pack_dir: Path = typer.Argument(..., metavar="PACK", help="The directory `govctl comply pack` wrote, or the pack's zip the console downloads."),
    pubkey: Optional[list[str]] = typer.Option(None, "--pubkey", help="Trusted SM2 public key (04… hex); default: the keystore's key."),
    key: str = typer.Option("evidence", "--key", help="Keystore key whose public versions are trusted."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Check the pack's signature and every file's SM3 hash; exit 1 naming each changed, missing
    or added file.

    Example: govctl comply verify out/assessment-2026 --pubkey 04ab…
    """
    from crypto.audit import trusted_keys_from_hex
    from crypto.suite import load_settings
    from govctl.ui import console, print_json
    from policies.compliance import pack as packs

    trusted = trusted_keys_from_hex(pubkey, load_settings().suite.signature) if pubkey else None
    if pack_dir.is_file():  # the zip the console downloads: checked as the console checks an upload
        _verify_zip(pack_dir, trusted, key, json_out)
        return
    try:
        report = packs.verify(pack_dir, trusted, key)
    except packs.PackInvalid as invalid:
        if json_out:
            r = invalid.report
            print_json({"ok": False, "signature_valid": r.signature_valid, "changed": r.changed,
                        "missing": r.missing, "added": r.added})
        raise
    if json_out:
        print_json({"ok": True, "files": report.files, "signer": report.signer})
    else:
        console.print(f"{pack_dir}: signature valid, {report.files} files unchanged")


# ---------------------------------------------------------------- reports on record (issue #19)
@app.command("record")
def record_cmd(
    standard: str = typer.Option(..., "--standard", help=STANDARD_HELP),
    level: int = typer.Option(3, "--level", help="Protection level: 2, 3 or 4."),
    source: str = typer.Option("saved", "--source", help="saved: the evidence in state/compliance/evidence "
                               "(`govctl comply collect --out state/compliance/evidence`); collect: collect it now."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Judge waivers, evidence freshness and remediation due dates as of this date (YYYY-MM-DD; default today)."),
    json_out: bool = typer.Option(False, "--json", help="Print the record as JSON."),
) -> None:
    """Put a report on record: a signed pack of one standard and level in state/compliance/reports/ID,
    which the console's compliance page lists, opens and downloads (the page's 生成报告 does the same).

    Example: govctl comply record --standard djcp --level 3 && govctl comply reports
    """
    from core.errors import GovctlError
    from crypto.keystore import actor
    from govctl.ui import console, print_json
    from policies.compliance import records

    made = records.start(standard, level, source, actor(), as_of, background=False)
    if json_out:
        print_json(records.status(made["id"]))
    if made["status"] != records.READY:
        raise GovctlError(f"report {made['id']} failed: {made['error']}")
    if not json_out:
        console.print(f"{made['id']}: ready in {records.reports_dir() / made['id'] / records.PACK}")


@app.command("reports")
def reports_cmd(json_out: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """List the reports on record, newest first (`govctl comply record`, the console's compliance page).

    Example: govctl comply reports --json
    """
    from govctl.ui import console, print_json
    from policies.compliance import records

    listed = records.listing()
    if json_out:
        print_json(listed)
        return
    if not listed:
        console.print("no reports on record; make one with `govctl comply record --standard djcp`")
    for r in listed:
        score = f"score {r['score']}, high-risk {r['high_risk']}" if r["status"] == records.READY else (r["error"] or "")
        console.print(f"{r['id']}  {r['status']:<7}  by {r['requested_by']}  {score}", highlight=False)


def _verify_zip(path: Path, trusted, key: str, json_out: bool) -> None:
    from core.errors import GovctlError
    from govctl.ui import console, print_json
    from policies.compliance import records

    result = records.verify_upload(path.read_bytes(), trusted, key)
    if json_out:
        print_json(result)
    if not result["ok"]:
        raise GovctlError(result["reason"].replace("the uploaded pack", str(path)))
    if not json_out:
        console.print(f"{path}: signature valid, {result['files']} files unchanged")


@app.command("coverage")
def coverage(
    level: int = typer.Option(3, "--level", help="Protection level: 2, 3 or 4."),
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """How many catalog items are automated, partly automated or manual, per standard and area.

    Example: govctl comply coverage --level 3
    """
    from govctl.ui import console, print_json
    from policies.compliance import STANDARDS, catalog

    result = [catalog.coverage(catalog.load(s, level)) for s in STANDARDS]
    if json_out:
        print_json(result)
        return
    for c in result:
        t = c["total"]
        console.print(f"{c['standard']} L{c['level']}: {t['items']} items — automated {t['automated']}, "
                      f"partly {t['partial']}, manual {t['manual']}")
        for area, row in c["areas"].items():
            console.print(f"  {area:<28} {row['items']:>3}  auto {row['automated']:>2}  partly {row['partial']:>2}  manual {row['manual']:>2}")


@app.command("diff")
def diff_cmd(
    a: Path = typer.Argument(..., metavar="A", help="The earlier report (JSON) or signed evidence pack (directory, or the zip the console downloads)."),
    b: Path = typer.Argument(..., metavar="B", help="The later report (JSON) or signed evidence pack (directory, or the zip the console downloads)."),
    pubkey: Optional[list[str]] = typer.Option(None, "--pubkey", help="Trusted SM2 public key for packs (04… hex); default: the keystore's key."),
    key: str = typer.Option("evidence", "--key", help="Keystore key whose public versions are trusted for packs."),
    json_out: bool = typer.Option(False, "--json", help="Print the difference as JSON."),
) -> None:
    """Compare two assessments over time: items whose verdict changed, new high-risk findings,
    evidence that changed and the score's movement. Packs (directories or zips) are verified before
    they are read.

    Example: govctl comply diff out/djcp-2026Q3.json out/djcp-2026Q4.json
    """
    import zipfile

    from crypto.audit import trusted_keys_from_hex
    from crypto.suite import load_settings
    from govctl.ui import console, print_json
    from policies.compliance import diff, history, records

    def side(path: Path):  # a pack's zip is checked and verified as the console's compare page does it
        if path.is_file() and zipfile.is_zipfile(path):
            with open(path, "rb") as f:
                return history.Upload(path.name, f.read(records.MAX_UPLOAD_BYTES + 1))
        return path

    trusted = None
    if pubkey and any(p.is_dir() or zipfile.is_zipfile(p) for p in (a, b)):
        trusted = trusted_keys_from_hex(pubkey, load_settings().suite.signature)
    result = history.compare(side(a), side(b), trusted=trusted, key=key)
    if json_out:
        print_json(result)
    else:
        console.print(diff.to_text(result), end="", highlight=False, markup=False, soft_wrap=True)


# ---------------------------------------------------------------- remediation tracking (issue #19)
remediation_app = typer.Typer(
    name="remediation", no_args_is_help=True,
    help="Track the fixing of 不符合 / 部分符合 items: owner, due date, status, link to the fix "
         "(state/compliance/remediation.yaml; carried over from one report to the next).",
)
app.add_typer(remediation_app)


@remediation_app.command("list")
def remediation_list(
    overdue: bool = typer.Option(False, "--overdue", help="Only the items past their due date and not done."),
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Judge due dates as of this date (YYYY-MM-DD; default today)."),
    no_notify: bool = typer.Option(False, "--no-notify", help="Do not notify the auditors of overdue items."),
) -> None:
    """List the tracked items, overdue ones first; overdue items are notified to the auditors through
    the notification channels (once per item and due date within notify's window).

    Example: govctl comply remediation list --overdue
    """
    from govctl.ui import console, print_json
    from policies.compliance import remediation

    rows = remediation.load().listing(_as_of(as_of), overdue)
    notified = [] if no_notify else remediation.notify_overdue(rows)
    if json_out:
        print_json({"as_of": _as_of(as_of).isoformat(), "items": rows, "notified": notified})
        return
    if not rows:
        console.print("没有超期的整改项 no overdue items" if overdue else
                      "尚无整改跟踪 nothing tracked yet: govctl comply remediation set ITEM --owner … --due …")
        return
    for r in rows:
        flag = "超期 OVERDUE " if r["overdue"] else ""
        console.print(f"{flag}{r['standard']}:{r['item']}  {r['status_zh']} {r['status']}  负责人 {r['owner']}  "
                      f"期限 {r['due']}" + (f"  {r['link']}" if r.get("link") else ""), highlight=False, markup=False, soft_wrap=True)


@remediation_app.command("set")
def remediation_set(
    item: str = typer.Argument(..., metavar="ITEM", help="The item, e.g. djcp:CE-IA-C (or CE-IA-C when one catalog has it)."),
    standard: Optional[str] = typer.Option(None, "--standard", help=STANDARD_HELP),
    owner: Optional[str] = typer.Option(None, "--owner", help="Who fixes it (person or team)."),
    due: Optional[str] = typer.Option(None, "--due", help="Due date, YYYY-MM-DD."),
    status: Optional[str] = typer.Option(None, "--status", help="open, in-progress, done or accepted-risk (new entries: open)."),
    link: Optional[str] = typer.Option(None, "--link", help="The fix: change, ticket or document."),
    json_out: bool = typer.Option(False, "--json", help="Print the entry as JSON."),
) -> None:
    """Track an item: a new one needs --owner and --due; later calls change any of the fields.

    Example: govctl comply remediation set djcp:CE-IA-C --owner 张工 --due 2027-01-31 --link https://git.example/fix/12
    """
    from crypto.keystore import actor
    from govctl.ui import console, print_json
    from policies.compliance import remediation

    entry = remediation.track(item, standard, owner=owner, due=due, status=status, link=link, actor=actor(),
                              today=_as_of(None))
    if json_out:
        print_json(entry)
    else:
        console.print(f"{entry['standard']}:{entry['item']}: {entry['status']}, owner {entry['owner']}, due {entry['due']}"
                      + (f", {entry['link']}" if entry.get("link") else ""), highlight=False, markup=False)


# ---------------------------------------------------------------- waivers of host audit items (issue #19)
waiver_app = typer.Typer(
    name="waiver", no_args_is_help=True,
    help="Waivers of host-hardening items (justification, approver, expiry) in the assessment file "
         "(state/compliance/assessment.yaml): a waived item is 不适用 on that host until it expires.",
)
app.add_typer(waiver_app)


@waiver_app.command("list")
def waiver_list(
    assessment_file: Optional[Path] = typer.Option(None, "--assessment", help="The assessment file (default state/compliance/assessment.yaml)."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Judge expiry as of this date (YYYY-MM-DD; default today)."),
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List the waivers of host items, active or expired.

    Example: govctl comply waiver list --json
    """
    from govctl.ui import console, print_json
    from policies.compliance import assessment

    rows = assessment.host_waiver_rows(assessment.load(assessment_file, _known_items()), _as_of(as_of))
    if json_out:
        print_json({"as_of": _as_of(as_of).isoformat(), "waivers": rows})
        return
    if not rows:
        console.print("没有主机条目豁免 no host-item waivers: govctl comply waiver add ITEM --justification … --approver … --expires …")
    for w in rows:
        console.print(f"{'生效 active ' if w['active'] else '已过期 expired'}  host:{w['item']}  {w['host'] or '所有主机 every host'}  "
                      f"至 until {w['expires']}  批准人 {w['approver']}  {w['justification']}",
                      highlight=False, markup=False, soft_wrap=True)


@waiver_app.command("add")
def waiver_add(
    item: str = typer.Argument(..., metavar="ITEM", help="The host-hardening item, e.g. IA-REMOTE-ADMIN-SSH."),
    host: Optional[str] = typer.Option(None, "--host", help="Waive it on this host only (default: every host)."),
    justification: str = typer.Option(..., "--justification", help="Why the item does not apply (at least 5 characters)."),
    approver: str = typer.Option(..., "--approver", help="Who approved the waiver."),
    expires: str = typer.Option(..., "--expires", help="Last day the waiver holds, YYYY-MM-DD."),
    assessment_file: Optional[Path] = typer.Option(None, "--assessment", help="The assessment file (default state/compliance/assessment.yaml)."),
    json_out: bool = typer.Option(False, "--json", help="Print the waiver as JSON."),
) -> None:
    """Waive a host item (replacing a waiver of the same item and host); recorded on the audit trail.

    Example: govctl comply waiver add AU-REMOTE-LOG --host db-1.prod --justification "集中日志经专线转发" --approver 李主任 --expires 2027-06-30
    """
    from crypto.keystore import actor
    from govctl.ui import console, print_json
    from policies.compliance import assessment

    waiver = assessment.add_host_waiver(item, host=host, justification=justification, approver=approver,
                                        expires=expires, actor=actor(), today=_as_of(None), path=assessment_file)
    if json_out:
        print_json(waiver)
    else:
        console.print(f"host:{item} waived on {waiver.get('host') or 'every host'} until {waiver['expires']} "
                      f"(approver {waiver['approver']})", highlight=False, markup=False)
