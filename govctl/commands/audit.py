"""govctl audit: assess hosts against the 等保 2.0 host baseline, read only."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..ui import console, err_console, print_json

app = typer.Typer(
    name="audit",
    help="Audit hosts against the 等保 2.0 host baseline (GB/T 22239 安全计算环境), read only.\n\n"
         "Per host and item: 符合 / 部分符合 / 不符合 / 不适用 / 需人工核查, observed vs expected, evidence.\n"
         "Exit 1 when an automated item is not met or a host could not be audited.\n\n"
         "Example: govctl audit --level 3 --json --out state/audit.json",
)


@app.callback(invoke_without_command=True)
def audit(
    level: int = typer.Option(3, "--level", help="Protection level of the system: 2, 3 or 4."),
    json_output: bool = typer.Option(False, "--json", help="Print the full report as JSON on stdout."),
    out: Optional[Path] = typer.Option(None, "--out", help="Also write the JSON report to this file."),
    limit: Optional[str] = typer.Option(None, "--limit", help="Ansible host pattern, e.g. center_prod or web-1.prod."),
    stack: str = typer.Option("lab", "--stack", help="Stack whose outputs list the hosts."),
    forks: int = typer.Option(10, "--forks", min=1, max=100, help="Hosts worked on in parallel."),
):
    """Run the baseline in check mode on every host (nothing is changed)."""
    from ..hardening import report as rep
    from ..hardening.runner import baseline

    with rep.live_progress(not json_output) as progress:
        report = baseline("audit", level, limit, check=True, stack=stack, forks=forks, on_progress=progress)
    rep.write_json(report, out)
    if json_output:
        print_json(report)
    else:
        rep.host_tables(report)
        err_console.print(rep.summary(report), highlight=False)
        if out:
            console.print(f"report written to {out}")
    raise typer.Exit(rep.exit_code(report))
