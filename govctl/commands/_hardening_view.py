"""Terminal rendering for `govctl audit` and `govctl harden`: live progress from runner events, tables."""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer

from govctl.ui import console, err_console, print_json
from hardening.verdict import COMPLIANT, MANUAL, NON_COMPLIANT, NOT_APPLICABLE, PARTIAL

# Options shared by `govctl audit` and `govctl harden`.
LEVEL_OPTION = typer.Option(3, "--level", help="Protection level of the system: 2, 3 or 4.")
JSON_OPTION = typer.Option(False, "--json", help="Print the full report as JSON on stdout.")
OUT_OPTION: Optional[Path] = typer.Option(None, "--out", help="Also write the JSON report to this file.")
LIMIT_OPTION: Optional[str] = typer.Option(None, "--limit",
                                           help="Ansible host pattern, e.g. center_prod or web-1.prod.")
STACK_OPTION = typer.Option("lab", "--stack", help="Stack whose outputs list the hosts.")
FORKS_OPTION = typer.Option(10, "--forks", min=1, max=100, help="Hosts worked on in parallel.")

STYLE = {COMPLIANT: "green", PARTIAL: "yellow", NON_COMPLIANT: "red", NOT_APPLICABLE: "dim", MANUAL: "cyan"}


@contextmanager
def live_progress(enabled: bool):
    """A Rich progress line per host (tasks done, current task, changed/failed), fed by runner events."""
    if not enabled:
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(SpinnerColumn(), TextColumn("[bold]{task.fields[host]:<16}"),
                        TextColumn("{task.completed:>3} tasks"),
                        TextColumn("[green]{task.fields[changed]} changed[/] [red]{task.fields[failed]} failed[/]"),
                        TextColumn("[dim]{task.description}"), TimeElapsedColumn(),
                        console=err_console, transient=False)
    rows: dict[str, int] = {}

    def update(run) -> None:
        if run.name not in rows:
            rows[run.name] = progress.add_task("", total=None, host=run.name, changed=0, failed=0)
        status = run.status if run.status != "ok" else run.current_task[:60]
        progress.update(rows[run.name], completed=run.tasks_done, description=status,
                        changed=run.counts["changed"], failed=run.counts["failed"])

    with progress:
        yield update


def _clip(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def host_tables(report: dict, show_compliant: bool = True) -> None:
    from rich.table import Table

    for host, data in report["hosts"].items():
        if data["status"] in ("unreachable", "refused") or not data["items"]:
            console.print(f"[bold]{host}[/]: [red]{data['status']}[/] — {data['message']}")
            continue
        title = f"{host} ({data['center']}, {', '.join(data['roles'] or [])}) — level {report['level']}"
        if data["status"] == "failed":
            title += f" — [red]failed: {_clip(data['message'], 80)}[/]"
        table = Table(title=title, title_justify="left", show_lines=False)
        for col in ("item", "clause / test id", "verdict", "observed", "expected"):
            table.add_column(col, overflow="fold")
        for item in data["items"]:
            if not show_compliant and item["verdict"] == COMPLIANT:
                continue
            table.add_row(item["id"], f"{item['clause'].split()[-2]} {item['clause'].split()[-1]}\n"
                          f"{' '.join(item['test_ids'])}",
                          f"[{STYLE[item['verdict']]}]{item['verdict']}[/]",
                          _clip(item["observed"], 70), _clip(item["expected"], 60))
        console.print(table)


def summary(report: dict) -> str:
    parts = []
    for host, data in report["hosts"].items():
        if data["items"]:
            counts = " ".join(f"{v}{n}" for v, n in data["verdicts"].items())
            parts.append(f"{host}: {data['status']}, {data['changed_tasks']} changed; {counts}")
        else:
            parts.append(f"{host}: {data['status']}")
    tail = []
    if report["unreachable"]:
        tail.append(f"unreachable: {', '.join(report['unreachable'])}")
    if report["failed"]:
        tail.append(f"failed: {', '.join(report['failed'])}")
    return "\n".join(parts + tail + [f"{report['mode']} of {len(report['hosts'])} hosts in "
                                     f"{report['seconds']} s with {report['forks']} forks"])


def finish(report: dict, json_output: bool, out: Path | None, show_compliant: bool = True) -> None:
    """Write --out, print JSON or the tables and summary, and exit with the run's code."""
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    if json_output:
        print_json(report)
    else:
        host_tables(report, show_compliant=show_compliant)
        for host, data in report["hosts"].items():
            if data.get("backup") and data["backup"]["files"]:
                console.print(f"{host}: backed up {len(data['backup']['files'])} changed files in "
                              f"{data['backup']['dir']}")
        err_console.print(summary(report), highlight=False)
        if out:
            console.print(f"report written to {out}")
    raise typer.Exit(exit_code(report))


def exit_code(report: dict) -> int:
    """1 when a host could not be handled or an automated item is not met, else 0."""
    bad = report["unreachable"] or report["failed"]
    failing = any(h["automated_failing"] for h in report["hosts"].values())
    return 1 if bad or failing else 0
