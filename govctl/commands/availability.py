"""govctl availability: achieved availability, outages and error budget, from Prometheus."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(name="availability", help="Availability reports for auditors (from Prometheus).\n\n"
                  "Example: govctl availability report --from now-30d --to now --format html -o report.html",
                  no_args_is_help=True)


@app.command()
def report(
    start: str = typer.Option(..., "--from", help="Start: now-30d, Unix seconds or ISO 8601."),
    end: str = typer.Option("now", "--to", help="End (default now)."),
    fmt: str = typer.Option("json", "--format", help="json or html (Chinese and English)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write to this file instead of stdout."),
    spec: Optional[Path] = typer.Option(None, "--spec", help="SLO spec (default: the one the monitor "
                                        "runs with)."),
    prometheus: Optional[str] = typer.Option(None, "--prometheus", help="Prometheus address "
                                             "(default: the one `govctl monitor up` runs)."),
) -> None:
    """Per service and center: achieved availability, outages with start/end/duration, error budget
    used and remaining. Every figure states its coverage (measured / expected SLI steps); below the
    spec's min_coverage (95 %) the verdict is 数据不足 insufficient data, never 达标 met.

    Example: govctl availability report --from 2026-11-01T00:00:00+08:00 --to now --format html -o r.html
    """
    import json

    from core.errors import BadInput
    from monitors.availability import render_html, report_between

    if fmt not in ("json", "html"):
        raise BadInput(f"--format {fmt!r}: use json or html")
    data = report_between(start, end, spec, prometheus)
    text = render_html(data) if fmt == "html" else json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if out:
        out.write_text(text, encoding="utf-8")
    else:
        typer.echo(text, nl=False)
