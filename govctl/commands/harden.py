"""govctl harden: bring hosts to the 等保 2.0 host baseline (or show the diff, or roll back)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

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
    level: int = typer.Option(3, "--level", help="Protection level of the system: 2, 3 or 4."),
    check: bool = typer.Option(False, "--check", help="Show what would change (diffs), change nothing."),
    limit: Optional[str] = typer.Option(None, "--limit", help="Ansible host pattern, e.g. center_prod or web-1.prod."),
    rollback: Optional[str] = typer.Option(None, "--rollback", metavar="HOST",
                                           help="Restore the files the last harden run changed on HOST."),
    json_output: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
    out: Optional[Path] = typer.Option(None, "--out", help="Also write the JSON report to this file."),
    stack: str = typer.Option("lab", "--stack", help="Stack whose outputs list the hosts."),
    forks: int = typer.Option(10, "--forks", min=1, max=100, help="Hosts worked on in parallel."),
):
    """Harden the hosts (or, with --rollback, restore one host's last backup)."""
    from ..hardening import report as rep
    from ..hardening.runner import baseline
    from ..hardening.runner import rollback as do_rollback

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

    with rep.live_progress(not json_output) as progress:
        report = baseline("harden", level, limit, check=check, stack=stack, forks=forks, on_progress=progress)
    rep.write_json(report, out)
    if json_output:
        print_json(report)
    else:
        if check:
            _print_diffs(report)
        rep.host_tables(report, show_compliant=False)
        for host, data in report["hosts"].items():
            if data.get("backup") and data["backup"]["files"]:
                console.print(f"{host}: backed up {len(data['backup']['files'])} changed files in "
                              f"{data['backup']['dir']}")
        err_console.print(rep.summary(report), highlight=False)
    raise typer.Exit(rep.exit_code(report))


def _print_diffs(report: dict) -> None:
    for host, data in report["hosts"].items():
        for item in data["items"]:
            for ev in item["evidence"]:
                if ev["status"] == "changed":
                    console.print(f"[bold]{host}[/] {ev['task']}", highlight=False)
                    console.print(ev.get("diff") or ev["output"], highlight=False, markup=False)
