"""govctl drill: disaster-recovery drills on the two-site-three-center cloud."""
from __future__ import annotations

import os
from pathlib import Path

import typer

from core.errors import BadInput, GovctlError
from ..ui import console, err_console, print_json

app = typer.Typer(
    name="drill",
    help="Plan, run and report disaster-recovery drills (planned switchover, loss of a center or a "
         "site, link failure, backup restore) with measured RTO, RPO and detection time.\n\n"
         "Example: govctl drill run samecity-switchover --report drill.json",
    no_args_is_help=True,
)


def _load(scenario: str, names=None):
    from drills.plans import PlanError, find_plan, load_plan

    try:
        return load_plan(find_plan(scenario), names)
    except PlanError as exc:
        raise BadInput(str(exc)) from None


@app.command("list")
def list_(json_output: bool = typer.Option(False, "--json", help="Print as JSON.")):
    """List the shipped drill scenarios.

    Example: govctl drill list
    """
    from drills.plans import shipped_plans

    plans = [_load(str(p)) for p in shipped_plans()]
    if json_output:
        print_json([{"id": p.id, "name": p.name, "targets": p.targets} for p in plans])
        return
    for p in plans:
        console.print(f"[bold]{p.id}[/]  {p.name['zh']} — {p.name['en']}  targets {p.targets}",
                      highlight=False)


@app.command()
def show(scenario: str = typer.Argument(..., help="Scenario id or plan file."),
         json_output: bool = typer.Option(False, "--json", help="Print as JSON.")):
    """Show a plan's steps phase by phase.

    Example: govctl drill show production-loss
    """
    from drills.plans import PHASES

    plan = _load(scenario)
    if json_output:
        print_json({"id": plan.id, "name": plan.name, "description": plan.description,
                    "targets": plan.targets, "steps": plan.steps})
        return
    console.print(f"[bold]{plan.name['zh']}[/]\n{plan.name['en']}\n{plan.description['en']}")
    for phase in PHASES:
        for step in plan.steps.get(phase, []):
            args = " ".join(f"{k}={v}" for k, v in step.items() if k != "action")
            console.print(f"  {phase:9} {step['action']} {args}", highlight=False)


@app.command()
def run(scenario: str = typer.Argument(..., help="Scenario id (see `govctl drill list`) or plan file."),
        stack: str = typer.Option("lab", "--stack", help="Stack to drill (the lab by default)."),
        allow_non_lab: bool = typer.Option(False, "--allow-non-lab",
                                           help="Allow drilling a stack other than the lab; you "
                                                "must also type the stack's name to confirm."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Validate and print the steps only."),
        json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."),
        report: Path = typer.Option(None, "--report", help="Write the report: FILE.json and FILE.html.")):
    """Run a drill end to end: preflight, fault, detection, recovery, verification, failback.

    Ctrl-C rolls back to the topology's layout. Exit 0 when the drill met its targets, 1 otherwise.
    Example: govctl drill run production-loss --report reports/production-loss
    """
    from drills.live import DrillBusy, execute, hold_drill_lock
    from drills.plans import stack_names
    from drills.report import finish
    from drills.runner import run_drill
    from infra.outputs import read_stack_outputs

    if stack != "lab":
        if not allow_non_lab:
            raise BadInput(f"refusing to drill stack {stack!r}: drills inject real faults. Use "
                           "--allow-non-lab and type the stack's name when asked.")
        typed = typer.prompt(f"type the stack name ({stack}) to inject faults into it")
        if typed != stack:
            raise BadInput("confirmation did not match; nothing was touched")
    if os.geteuid() != 0 and not dry_run:
        raise GovctlError("drills on the lab need root; nothing was touched")
    outputs = read_stack_outputs(stack)
    plan = _load(scenario, stack_names(outputs))

    def progress(step):
        if not json_output:
            mark = "[green]✔[/]" if step.ok else "[red]✘[/]"
            err_console.print(f"{mark} {step.phase:9} {step.action:22} {step.ended - step.started:6.2f} s  "
                              f"{step.detail}", highlight=False)

    def notice(message: str) -> None:
        if not json_output:
            err_console.print(f"[yellow]…[/] {message}", highlight=False)

    if dry_run:
        result = finish(run_drill(plan, outputs, dry_run=True, on_step=progress, on_notice=notice))
    else:  # the same code as the console's drills page (drills.live); the run is on the audit trail
        try:
            lock = hold_drill_lock()
        except DrillBusy as exc:
            raise GovctlError(f"{exc}; nothing was touched") from None
        with lock:
            result = execute(plan, outputs, report, on_step=progress, on_notice=notice)
    if json_output:
        print_json(result)
    else:
        m = result.get("measured", {})
        console.print(f"verdict: [bold]{result['verdict']}[/]  RTO {m.get('rto_seconds')} s  "
                      f"RPO {m.get('rpo_transactions')} tx / {m.get('rpo_seconds')} s  "
                      f"detection {m.get('detection_seconds')} s  "
                      f"GB/T 20988 level {(result.get('gbt20988') or {}).get('level', '—')}",
                      highlight=False)
        if result.get("blocked_by"):
            console.print("preflight waited on: " + "; ".join(b["description"] for b in result["blocked_by"]),
                          highlight=False)
        for f in result.get("report_files", []):
            console.print(f"report: {f}")
    if result["verdict"] not in ("pass", "dry-run"):
        raise typer.Exit(1)


@app.command()
def restore(stack: str = typer.Option("lab", "--stack", help="Stack to restore (the lab by default).")):
    """Put the cloud back in its topology's layout after an interrupted drill: every center up,
    the original primary writable (the others fenced, re-cloned and streaming), web services and
    the service address pointing at it.

    Example: govctl drill restore
    """
    from drills.lab import DrillError, LabTarget
    from drills.runner import restore_layout
    from infra.lab.system import LabCommandError
    from infra.outputs import read_stack_outputs

    if os.geteuid() != 0:
        raise GovctlError("restoring the lab needs root")
    try:
        console.print(restore_layout(LabTarget(read_stack_outputs(stack), stack)), highlight=False)
    except (DrillError, LabCommandError) as exc:
        raise GovctlError(f"restore stopped: {exc}\nfix that, then run `govctl drill restore` "
                          "again (it is safe to repeat)") from None
