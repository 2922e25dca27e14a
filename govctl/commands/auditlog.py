"""govctl auditlog: the tamper-evident log of platform actions (SM3 Merkle tree, SM2 checkpoints)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    name="auditlog",
    no_args_is_help=True,
    help=(
        "Append to, prove and verify the tamper-evident audit log (state/audit): an SM3 Merkle "
        "tree (RFC 6962 layout) with SM2-signed checkpoints.\n\n"
        "Example: govctl auditlog append --action deploy.up --details '{\"stack\": \"lab\"}'"
    ),
)

LOG_DIR = typer.Option(None, "--log-dir", help="Audit log directory (default state/audit).")
PUBKEY = typer.Option(None, "--pubkey",
                      help="Trusted checkpoint public key, hex 04||x||y (repeatable); default: the keystore's audit key.")
ALG = typer.Option("sm2", "--alg", help="Algorithm of --pubkey: sm2 or ecdsa-p256.")
JSON = typer.Option(False, "--json", help="Print JSON.")


def _trusted(pubkeys: Optional[list[str]], alg: str) -> list:
    from crypto import audit
    from crypto.keystore import Keystore

    if pubkeys:
        return audit.trusted_keys_from_hex(pubkeys, alg)
    return list(Keystore.open(events=None).public_keys(audit.AUDIT_KEY).values())


@app.command("append")
def append(
    action: str = typer.Option(..., "--action", help="What was done, e.g. deploy.up, harden.run, ban.add."),
    actor: Optional[str] = typer.Option(None, "--actor", help="Who did it (default $GOVCTL_ACTOR or the login name)."),
    details: str = typer.Option("{}", "--details", help="JSON object with the particulars."),
    checkpoint: bool = typer.Option(True, "--checkpoint/--no-checkpoint",
                                    help="Sign a checkpoint afterwards (needs the keystore)."),
    log_dir: Optional[Path] = LOG_DIR,
    json_out: bool = JSON,
) -> None:
    """Append one entry (and by default sign a checkpoint covering it).

    Example: govctl auditlog append --actor alice --action ban.add --details '{"ip": "203.0.113.9"}'
    """
    from crypto import audit
    from crypto.errors import BadInput
    from govctl.commands._crypto_io import show
    from crypto.keystore import actor as current_actor

    try:
        parsed = json.loads(details)
    except ValueError as exc:
        raise BadInput(f"--details is not JSON ({exc}); give a JSON object") from None
    if not isinstance(parsed, dict):
        raise BadInput("--details must be a JSON object, e.g. '{\"host\": \"web-1\"}'")
    keystore = audit.open_keystore() if checkpoint else None  # unlock first: fail before appending
    log = audit.AuditLog.at(log_dir)
    entry = log.append(actor or current_actor(), action, parsed)
    signed = log.checkpoint(keystore) if keystore else None
    show({"entry": entry, "checkpoint": signed}, json_out, f"entry {entry['index']} appended"
         + (f"; checkpoint signed at size {signed['tree_size']}" if signed else ""))


@app.command("checkpoint")
def checkpoint(log_dir: Optional[Path] = LOG_DIR, json_out: bool = JSON) -> None:
    """Sign the current tree head with the keystore's audit key.

    Example: govctl auditlog checkpoint
    """
    from crypto import audit
    from govctl.commands._crypto_io import show

    signed = audit.AuditLog.at(log_dir).checkpoint()
    show(signed, json_out, f"checkpoint signed: size {signed['tree_size']}, root {signed['root']}")


@app.command("verify")
def verify(
    log_dir: Optional[Path] = LOG_DIR,
    pubkey: Optional[list[str]] = PUBKEY,
    alg: str = ALG,
    proof: Optional[Path] = typer.Option(None, "--proof", help="Verify this proof file instead of the log."),
    witness: Optional[Path] = typer.Option(
        None, "--witness", help="The log's witness file (default: its file in state/crypto/audit-witness/); "
                                "give it when verifying a moved or copied log."),
    no_witness: bool = typer.Option(False, "--no-witness",
                                    help="Do not compare with a witness (a cut tail or an older copy of the log "
                                         "then goes unnoticed); for a copy of a log that came without its witness."),
    json_out: bool = JSON,
) -> None:
    """Verify the whole log offline (or one proof), and compare it with its witness, which records
    every checkpoint outside the log's folder, so a cut tail or an older copy is found.
    Exit 0 intact, 1 tampered or rolled back.

    Example: govctl auditlog verify --pubkey 04ab… --log-dir copy/audit --witness copy/witness.jsonl
    """
    from crypto import audit
    from crypto.errors import BadInput
    from crypto.witness import FileWitness
    from govctl.ui import console, err_console, print_json

    if witness and no_witness:
        raise BadInput("give --witness FILE or --no-witness, not both")
    if witness and not witness.is_file():
        raise BadInput(f"--witness {witness}: no such file; give the witness file that came with the log "
                       "(state/crypto/audit-witness/*.jsonl on its host)")
    trusted = _trusted(pubkey, alg)
    if proof is not None:
        try:
            document = json.loads(proof.read_text())
        except (OSError, ValueError) as exc:
            raise BadInput(f"--proof {proof}: cannot read a JSON proof ({exc})") from None
        valid, why = audit.verify_proof(document, trusted)
        if json_out:
            print_json({"valid": valid, "explanation": why})
        else:
            console.print(("proof valid: " if valid else "[bold red]proof INVALID:[/] ") + why)
        raise typer.Exit(0 if valid else 1)
    with err_console.status("recomputing the Merkle tree…"):
        chosen = None if no_witness else FileWitness(witness) if witness else "default"
        report = audit.verify_log(log_dir, trusted, chosen)
    if json_out:
        print_json({"ok": report.ok, "entries": report.entries, "checkpoints": report.checkpoints,
                    "verified_size": report.verified_size, "unverified_tail": report.unverified_tail,
                    "witness": report.witness, "witness_records": report.witness_records,
                    "witnessed_size": report.witnessed_size, "problems": report.problems})
    else:
        for problem in report.problems:
            console.print(f"[bold red]TAMPERED:[/] {problem}", highlight=False)
        if report.ok:
            console.print(f"audit log intact: {report.entries} entries, {report.checkpoints} signed "
                          f"checkpoints, {report.verified_size} entries covered")
        if report.witness is None:
            console.print("note: not compared with a witness (--no-witness): a cut tail or an older copy "
                          "of the whole log would go unnoticed", highlight=False)
        elif report.witnessed_size is None and report.ok:
            console.print(f"note: no witness record yet ({report.witness}): a new log, or one whose "
                          "checkpoints were signed before witnessing; the next checkpoint records one",
                          highlight=False)
        elif report.ok:
            console.print(f"witness: {report.witness} saw up to size {report.witnessed_size} "
                          f"({report.witness_records} records), consistent with the log", highlight=False)
        if report.unverified_tail:
            console.print(f"note: the last {report.unverified_tail} entries are not yet covered by a "
                          "signed checkpoint (run `govctl auditlog checkpoint`)")
    raise typer.Exit(0 if report.ok else 1)


@app.command("prove")
def prove(
    index: Optional[int] = typer.Option(None, "--index", help="Prove entry INDEX (0-based) is in the log."),
    consistency: Optional[int] = typer.Option(None, "--consistency", metavar="OLD_SIZE",
                                              help="Prove the checkpoint of OLD_SIZE is a prefix of a later one."),
    size: Optional[int] = typer.Option(None, "--size", help="Checkpointed tree size to prove against (default: latest)."),
    log_dir: Optional[Path] = LOG_DIR,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the proof here."),
) -> None:
    """Print an inclusion or consistency proof (JSON, with its signed checkpoints).

    Example: govctl auditlog prove --index 41 -o entry41.proof && govctl auditlog verify --proof entry41.proof
    """
    from crypto import audit
    from crypto.errors import BadInput
    from govctl.ui import err_console

    if (index is None) == (consistency is None):
        raise BadInput("give exactly one of --index INDEX or --consistency OLD_SIZE")
    log = audit.AuditLog.at(log_dir)
    with err_console.status("building the Merkle tree…"):
        document = (log.prove_inclusion(index, size) if index is not None
                    else log.prove_consistency(consistency, size))
    text = json.dumps(document, ensure_ascii=False, indent=1) + "\n"
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        print(text, end="")


# -- the trail of actions (issue 19) -----------------------------------------------------------------
@app.command("list")
def list_entries(
    actor: Optional[str] = typer.Option(None, "--actor", help="Only this actor (exact)."),
    action: Optional[str] = typer.Option(None, "--action", help="An action or a dotted prefix: ban, ban.add, incident."),
    target: Optional[str] = typer.Option(None, "--target", help="Only targets containing this text."),
    outcome: Optional[str] = typer.Option(None, "--outcome", help="ok or failed."),
    since: Optional[str] = typer.Option(None, "--since", help="From this time: ISO 8601 or now-7d / now-12h."),
    until: Optional[str] = typer.Option(None, "--until", help="Up to this time: ISO 8601 or now-1h."),
    limit: int = typer.Option(50, "--limit", help="At most this many entries, newest first (1 to 10000)."),
    log_dir: Optional[Path] = LOG_DIR,
    json_out: bool = JSON,
) -> None:
    """The trail of platform actions, newest first: who did what, on what, with which parameters
    (secrets are never logged) and how it ended.

    Example: govctl auditlog list --action ban --since now-1d --json
    """
    from crypto import audit
    from govctl.ui import console, print_json

    found = audit.entries(log_dir, actor, action, target, since, until, limit, 0, outcome)
    if json_out:
        print_json(found)
        return
    from rich.table import Table

    table = Table("#", "时间 time (UTC)", "操作者 actor", "操作 action", "对象 target", "结果 outcome")
    for column in table.columns[:4]:
        column.no_wrap = True  # index, time, actor and action stay readable; target and outcome wrap
    for e in found["entries"]:
        result = "ok" if e["outcome"] == "ok" else f"[red]failed[/]: {str(e['reason'])[:60]}"
        table.add_row(str(e["index"]), str(e["time"])[:19].replace("T", " "), e["actor"], e["action"],
                      e["target"] or "-", result)
    console.print(table)
    console.print(f"{len(found['entries'])} of {found['total']} matching entries", highlight=False)


@app.command("show")
def show_entry(
    index: int = typer.Argument(..., help="The entry's index (the # of `govctl auditlog list`)."),
    proof: bool = typer.Option(False, "--proof", help="Add its inclusion proof against the latest signed checkpoint."),
    log_dir: Optional[Path] = LOG_DIR,
    json_out: bool = JSON,
) -> None:
    """One entry in full; with --proof, the proof that it is in the signed log (check it offline with
    `govctl auditlog verify --proof FILE`).

    Example: govctl auditlog show 41 --proof --json > entry41.json
    """
    from crypto import audit
    from govctl.ui import console, print_json

    shown = audit.entry(index, log_dir, proof)
    if json_out:
        print_json(shown)
        return
    for name in ("index", "time", "actor", "action", "target", "outcome", "reason"):
        if shown.get(name) is not None:
            console.print(f"{name}: {shown[name]}", highlight=False)
    console.print(f"params: {json.dumps(shown['params'], ensure_ascii=False)}", highlight=False)
    if proof:
        checkpoint = shown["proof"]["checkpoint"]
        console.print(f"proof: included in the tree of size {checkpoint['tree_size']} signed at "
                      f"{checkpoint['time']} (root {checkpoint['root']})", highlight=False)
