"""govctl evidence: signed evidence packs (SM3 manifest, SM2 signature)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    name="evidence",
    no_args_is_help=True,
    help=(
        "Seal a directory of evidence with an SM2-signed manifest of SM3 hashes, and verify it "
        "later, naming every changed, missing or added file.\n\n"
        "Example: govctl evidence pack out/assessment && govctl evidence verify out/assessment"
    ),
)


@app.command("pack")
def pack(
    directory: Path = typer.Argument(..., help="Directory whose files to seal."),
    key: str = typer.Option("evidence", "--key", help="Signing key (created on first use)."),
    description: str = typer.Option("", "--description", help="What this pack is evidence of."),
    json_out: bool = typer.Option(False, "--json", help="Print the manifest."),
) -> None:
    """Write DIRECTORY/evidence.manifest.json, signed.

    Example: govctl evidence pack out/drill-2026-11 --description "failover drill"
    """
    from crypto import audit, evidence
    from govctl.commands._crypto_io import show
    from crypto.audit import open_keystore
    from crypto.keystore import actor

    keystore = open_keystore()
    manifest = evidence.pack(directory, keystore, key, description)
    audit.append(actor(), "evidence.pack", {"directory": str(directory), "files": len(manifest["files"]),
                                            "signature": manifest["signature"]["value"]})
    audit.checkpoint(keystore)
    show(manifest, json_out, f"sealed {len(manifest['files'])} files in {directory / evidence.MANIFEST}")


@app.command("verify")
def verify(
    directory: Path = typer.Argument(..., help="Directory holding evidence.manifest.json."),
    pubkey: Optional[list[str]] = typer.Option(None, "--pubkey",
                                               help="Trusted public key, hex 04||x||y (repeatable); default: the keystore key."),
    alg: str = typer.Option("sm2", "--alg", help="Algorithm of --pubkey: sm2 or ecdsa-p256."),
    key: str = typer.Option("evidence", "--key", help="Keystore signing key to trust when no --pubkey."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Check the signature and every file. Exit 0 intact, 1 changed.

    Example: govctl evidence verify out/drill-2026-11 --pubkey 04ab…
    """
    from crypto import evidence, signing
    from govctl.ui import console, print_json

    trusted = [signing.load_public(alg, signing.parse_hex(p, "--pubkey")) for p in pubkey] if pubkey else None
    report = evidence.verify(directory, trusted, key=key)
    if json_out:
        print_json({"ok": report.ok, "signature_valid": report.signature_valid, "files": report.files,
                    "changed": report.changed, "missing": report.missing, "added": report.added,
                    "signer": report.signer})
    else:
        if not report.signature_valid:
            console.print("[bold red]manifest signature INVALID[/] (not signed by a trusted key, or edited)")
        for label, names in (("changed", report.changed), ("missing", report.missing), ("added", report.added)):
            for name in names:
                console.print(f"[bold red]{label}:[/] {name}", highlight=False)
        if report.ok:
            console.print(f"evidence intact: {report.files} files, signature valid")
    raise typer.Exit(0 if report.ok else 1)
