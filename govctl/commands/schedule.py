"""govctl schedule: the platform's scheduled collection (issue 19) — services/schedule.py is the engine.

The supervisor that `govctl up` starts runs the jobs of the components file's `schedules:` section on
their cadence; these commands show them and run one now."""
from __future__ import annotations

import typer

from core.errors import BadInput
from core.paths import ROOT, STATE
from ..ui import console, err_console, print_json

app = typer.Typer(name="schedule", no_args_is_help=True,
                  help="Scheduled collection under the platform's supervisor: host audit daily, compliance "
                       "evidence weekly, availability report and backup-restore drill monthly (the "
                       "`schedules:` section of services/components.yaml). Every run is recorded.\n\n"
                       "Example: govctl schedule list")
_JSON = typer.Option(False, "--json", help="Print one JSON document.")


def _jobs():
    """(jobs, planned): the plan's jobs when `govctl up` planned them, else the components file's."""
    from services.layout import Layout, read_json
    from services.schedule import planned_jobs, spec_jobs
    from services.spec import load_spec

    layout = Layout(STATE)
    jobs = planned_jobs(layout)
    if jobs:
        return layout, jobs, True
    spec = load_spec((read_json(layout.platform) or {}).get("spec"))
    return layout, spec_jobs(spec), False


@app.command("list")
def list_jobs(json_out: bool = _JSON) -> None:
    """Every scheduled job: cadence, next due (or due now), the last run and its result.

    Example: govctl schedule list --json
    """
    from rich.markup import escape
    from rich.table import Table

    from services.schedule import overview, utc_now
    from services.supervisor import supervisor_pid

    layout, jobs, planned = _jobs()
    rows = overview(layout, jobs, utc_now())
    if json_out:
        print_json({"planned": planned, "supervisor_pid": supervisor_pid(layout),
                    "journal": str(layout.schedule_journal), "jobs": rows})
        return
    table = Table("job", "cadence", "next due", "last run", "result", "exit", "output")
    for row in rows:
        last = row["last_run"] or {}
        if not row["enabled"]:
            due = "disabled"
        elif row["running"]:
            due = "running"
        else:
            due = f"now (since {row['next_due']})" if row["due_now"] else row["next_due"]
        table.add_row(row["name"], row["cadence"], due, last.get("start", "never"), escape(last.get("result", "")),
                      "" if last.get("exit") is None else str(last["exit"]), escape(last.get("output", "")))
    console.print(table)
    if not planned:
        err_console.print("not planned: `govctl up` hands these jobs to the supervisor", highlight=False)


@app.command("run")
def run_job(
    name: str = typer.Argument(..., help="A job of `govctl schedule list`."),
    json_out: bool = _JSON,
) -> None:
    """Run one job now and wait for it; it is recorded like a scheduled run (journal, output, audit
    trail) and counts for the current period. Exit 1 when it fails or a run of it is under way.

    Example: govctl schedule run host-audit
    """
    from core.errors import GovctlError
    from crypto.keystore import actor
    from services.schedule import Scheduler

    layout, jobs, planned = _jobs()
    job = next((j for j in jobs if j.name == name), None)
    if job is None:
        raise BadInput(f"no scheduled job {name[:64]!r}; use one of {', '.join(j.name for j in jobs) or '(none)'}")
    if not planned:
        raise GovctlError(f"{job.name} is not planned: run `govctl up` first (it fills in the job's command "
                          "line and hands the jobs to the supervisor)")
    scheduler = Scheduler(layout, ROOT, log=lambda m: err_console.print(f"[dim]govctl:[/] {m}", highlight=False,
                                                                           markup=False))
    record = scheduler.run_now(job, actor())
    if json_out:
        print_json(record)
    else:
        console.print(f"{job.name}: {record['result']} (exit code {record['exit']}, {record['seconds']} s); "
                      f"output {record['output']}", highlight=False, markup=False)
    if record["result"] != "ok":
        raise GovctlError(f"{job.name}: {record['result']} (exit code {record['exit']}); see {record['output']}")
