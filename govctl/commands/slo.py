"""govctl slo: the availability SLO spec → Prometheus rules, proven with promtool."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    name="slo",
    help="The SLO spec (monitors/slo.yaml) → recording rules and burn-rate alerts.\n\n"
         "Example: govctl slo render > rules.yml;  govctl slo test",
    no_args_is_help=True,
)

SPEC_HELP = "SLO spec YAML (default: monitors/slo.yaml)."


@app.command()
def render(
    spec: Optional[Path] = typer.Argument(None, help=SPEC_HELP),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the rule file here instead of stdout."),
) -> None:
    """Print the Prometheus rule file generated from the spec.

    Example: govctl slo render monitors/slo.yaml -o state/monitor/rules/slo.yml
    """
    from monitors.slo import load_slo_spec, render_rules_text

    text = render_rules_text(load_slo_spec(spec))
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    else:
        typer.echo(text, nl=False)


@app.command()
def test(
    spec: Optional[Path] = typer.Argument(None, help=SPEC_HELP),
    keep: Optional[Path] = typer.Option(None, "--keep", help="Write the rule and test files to this folder "
                                                              "and keep them (default: a temporary folder)."),
    json_out: bool = typer.Option(False, "--json", help="Print the outcomes as JSON."),
) -> None:
    """Run `promtool check rules` and the generated `promtool test rules` cases on the spec.

    Example: govctl slo test --keep /tmp/slo-tests
    """
    import tempfile

    from core.errors import GovctlError
    from govctl.ui import console, print_json
    from monitors.promtool import test_rules
    from monitors.slo import load_slo_spec

    loaded = load_slo_spec(spec)
    with tempfile.TemporaryDirectory(prefix="govctl-slo-") as tmp:
        folder = keep or Path(tmp)
        with console.status("promtool: checking rules and running the generated tests…"):
            outcomes, notes = test_rules(loaded, folder)
    if json_out:
        print_json({"outcomes": [{"name": o.name, "ok": o.ok, "seconds": round(o.seconds, 2),
                                  "output": o.output} for o in outcomes], "notes": notes})
    else:
        for o in outcomes:
            mark = "[green]PASS[/]" if o.ok else "[red]FAIL[/]"
            console.print(f"{mark} {o.name} ({o.seconds:.1f} s)", highlight=False)
            if not o.ok:
                console.print(o.output, markup=False, highlight=False)
        for note in notes:
            console.print(f"[yellow]note[/] {note}", highlight=False)
    failed = [o.name for o in outcomes if not o.ok]
    if failed:
        raise GovctlError(f"{len(failed)} of {len(outcomes)} promtool step(s) failed: {'; '.join(failed)}")
