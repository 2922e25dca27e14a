"""govctl harden: bring hosts to the 等保 2.0 host baseline (or show the diff, or roll back)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._hardening_view import FORKS_OPTION, JSON_OPTION, LEVEL_OPTION, LIMIT_OPTION, OUT_OPTION, STACK_OPTION
from ..ui import console, err_console, print_json

app = typer.Typer(
    name="harden",
    help="Harden hosts to the 等保 2.0 host baseline with Ansible over SSH; idempotent.\n\n"
         "Every changed file is backed up on the host first; settings that would lock out the only admin "
         "path are refused with nothing changed; `--rollback HOST` restores the last backup.\n\n"
         "Examples: govctl harden --check --limit web-1.prod   (diffs only)\n"
         "          govctl harden --level 3\n"
         "          govctl harden --rollback web-1.prod",
)


@app.callback(invoke_without_command=True)
def harden(
    level: int = LEVEL_OPTION,
    check: bool = typer.Option(False, "--check", help="Show what would change (diffs), change nothing."),
    limit: Optional[str] = LIMIT_OPTION,
    rollback: Optional[str] = typer.Option(None, "--rollback", metavar="HOST",
                                           help="Restore the files the last harden run changed on HOST."),
    json_output: bool = JSON_OPTION, out: Optional[Path] = OUT_OPTION, stack: str = STACK_OPTION,
    forks: int = FORKS_OPTION,
):
    """Harden the hosts (or, with --rollback, restore one host's last backup)."""
    from . import _hardening_view as rep
    from hardening.runner import baseline
    from hardening.runner import rollback as do_rollback

    if rollback:
        with rep.live_progress(not json_output) as progress:
            result = do_rollback(rollback, stack=stack, on_progress=progress)
        if json_output:
            print_json(result)
        else:
            for line in result["restored"] or ["nothing differed from the backup"]:
                console.print(f"{rollback}: {line}")
            err_console.print(f"rollback of {rollback} from {result['backup']}: {result['status']} "
                              f"{result['message']}", highlight=False)
        raise typer.Exit(0 if result["status"] == "ok" else 1)

    from hardening.records import run_and_record

    with rep.live_progress(not json_output) as progress:
        if check:  # the diffs are kept on record for the console (hardening.records)
            report = run_and_record("check", level, limit, stack=stack, forks=forks, on_progress=progress)
        else:
            report = baseline("harden", level, limit, check=False, stack=stack, forks=forks, on_progress=progress)
    if check and not json_output:
        _print_diffs(report)
    rep.finish(report, json_output, out, show_compliant=False)


def _print_diffs(report: dict) -> None:
    for host, data in report["hosts"].items():
        for item in data["items"]:
            for ev in item["evidence"]:
                if ev["status"] == "changed":
                    console.print(f"[bold]{host}[/] {ev['task']}", highlight=False)
                    console.print(ev.get("diff") or ev["output"], highlight=False, markup=False)
