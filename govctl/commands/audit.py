"""govctl audit: assess hosts against the 等保 2.0 host baseline, read only."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._hardening_view import FORKS_OPTION, JSON_OPTION, LEVEL_OPTION, LIMIT_OPTION, OUT_OPTION, STACK_OPTION

app = typer.Typer(
    name="audit",
    help="Audit hosts against the 等保 2.0 host baseline (GB/T 22239 安全计算环境), read only.\n\n"
         "Per host and item: 符合 / 部分符合 / 不符合 / 不适用 / 需人工核查, observed vs expected, evidence.\n"
         "Exit 1 when an automated item is not met or a host could not be audited.\n"
         "Each report is kept in state/harden/reports/ (the console's hardening page reads the latest).\n\n"
         "Example: govctl audit --level 3 --json --out state/audit.json",
)


@app.callback(invoke_without_command=True)
def audit(level: int = LEVEL_OPTION, json_output: bool = JSON_OPTION, out: Optional[Path] = OUT_OPTION,
          limit: Optional[str] = LIMIT_OPTION, stack: str = STACK_OPTION, forks: int = FORKS_OPTION):
    """Run the baseline in check mode on every host (nothing is changed)."""
    from . import _hardening_view as rep
    from hardening.records import run_and_record

    with rep.live_progress(not json_output) as progress:  # kept on record for the console (hardening.records)
        report = run_and_record("audit", level, limit, stack=stack, forks=forks, on_progress=progress)
    rep.finish(report, json_output, out)
