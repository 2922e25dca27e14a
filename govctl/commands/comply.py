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
    from core.errors import BadInput
    from policies.compliance import collect

    if level not in (2, 3, 4):  # before the slow collection
        raise BadInput(f"--level {level} is not a protection level the catalogs cover; use 2, 3 or 4")

    if evidence is not None:
        return collect.load(evidence)
    if host_audit is not None and not host_audit.is_file():
        raise BadInput(f"--host-audit {host_audit} does not exist; write it with `govctl audit --json --out FILE`")
    return collect.collect(stack, host_audit, host_limit, level, progress=_progress)


def _assess(standards: list[str], level: int, layers: dict, assessment_file: Optional[Path]) -> tuple[list[dict], object]:
    from policies.compliance import STANDARDS, assessment, catalog, engine
    from policies.compliance.checks import Evidence

    catalogs = [catalog.load(s, level) for s in standards]
    known = {s: {i["id"] for i in catalog.load_document(s)["items"]} for s in STANDARDS}
    inputs = assessment.load(assessment_file, known)
    evidence = Evidence(layers, level)
    return [engine.evaluate(c, evidence, inputs) for c in catalogs], inputs


def _check_standard(standard: str) -> None:
    from core.errors import BadInput
    from policies.compliance import STANDARDS

    if standard not in STANDARDS:
        raise BadInput(f"--standard {standard!r} is unknown; use one of: {', '.join(STANDARDS)}")


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
    (document,), _ = _assess([standard], level, layers, assessment_file)
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
    documents, inputs = _assess(list(dict.fromkeys(standard)), level, layers, assessment_file)
    manifest = packs.write(out, documents, layers, inputs, keystore, key)
    if json_out:
        print_json(manifest)
    else:
        console.print(f"sealed {len(manifest['files'])} files in {out} (SM3 manifest, SM2 key {key!r}); "
                      f"check with: govctl comply verify {out}")


@app.command("verify")
def verify(
    pack_dir: Path = typer.Argument(..., metavar="PACK", help="The directory `govctl comply pack` wrote."),
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
