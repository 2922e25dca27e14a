"""govctl monitor: Prometheus, Alertmanager, the exporters and the alert webhook on this machine."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(
    name="monitor",
    help="Run and inspect the monitoring platform (Prometheus, Alertmanager, probe and replication "
         "exporters, the alert webhook).\n\n"
         "Example: govctl monitor up --targets targets.yaml;  govctl monitor status",
    no_args_is_help=True,
)
silence_app = typer.Typer(name="silence", help="Alertmanager silences, e.g. for drills.",
                          no_args_is_help=True)
app.add_typer(silence_app)


def _layout():
    from monitors.stack import Layout

    return Layout.default()


@app.command()
def up(
    targets: Optional[Path] = typer.Option(None, "--targets", "-t", help="Monitoring targets YAML "
                                           "(monitors/targets.schema.yaml); default: the last one used."),
    stack_name: Optional[str] = typer.Option(None, "--stack", help="Take the targets from this stack's "
                                        "outputs instead (e.g. lab)."),
    db_passfile: Optional[Path] = typer.Option(None, "--db-passfile", help="With --stack: libpq "
                                               "passfile for the replication exporter (default: the "
                                               "stack's databases.monitor.passfile); without one the "
                                               "databases are probed but not read."),
    db_user: Optional[str] = typer.Option(None, "--db-user", help="With --stack: database user (needs "
                                          "pg_monitor and CREATE on the database; default: the "
                                          "stack's databases.monitor.user)."),
    spec: Optional[Path] = typer.Option(None, "--spec", help="SLO spec (default: the last one used, "
                                        "else monitors/slo.yaml)."),
    json_out: bool = typer.Option(False, "--json", help="Print the process table as JSON."),
) -> None:
    """Generate the configuration and start everything (reload what already runs).

    Example: govctl monitor up --stack lab;  govctl monitor up --targets targets.yaml
    """
    from core.errors import BadInput
    from govctl.ui import console, err_console, print_json
    from monitors import stack
    from monitors.slo import load_slo_spec
    from monitors.targets import load_targets

    layout = _layout()
    if stack_name and targets:
        raise BadInput("give either --targets FILE or --stack NAME, not both")
    if stack_name:
        from infra.outputs import read_stack_outputs
        from monitors.lab import targets_from_stack_outputs
        from monitors.targets import targets_from_dict

        outputs = read_stack_outputs(stack_name)
        monitor_access = outputs.databases.monitor if outputs.databases else None
        db_user = db_user or (monitor_access.user if monitor_access else "postgres")
        db_passfile = db_passfile or (Path(monitor_access.passfile) if monitor_access else None)
        data = targets_from_stack_outputs(outputs, db_user=db_user,
                                          passfile=str(db_passfile) if db_passfile else None)
        if not db_passfile:
            data.pop("databases", None)
            data.pop("replication_netns", None)
        loaded = targets_from_dict(data, f"<stack {stack_name} outputs>")
    else:
        targets = targets or (layout.targets if layout.targets.exists() else None)
        if targets is None:
            raise BadInput("no monitoring targets: pass --targets FILE (centers, services, vantage "
                           "points, databases; see monitors/targets.schema.yaml) or --stack NAME")
        loaded = load_targets(targets)
    spec = spec or (layout.spec if layout.spec.exists() else None)
    table = stack.up(layout, loaded, load_slo_spec(spec),
                     progress=lambda m: err_console.print(f"[dim]{m}[/]"))
    if json_out:
        print_json(table)
    else:
        for name, e in table.items():
            console.print(f"[green]up[/] {name} (pid {e['pid']}) {e['ready_url']}", highlight=False)


@app.command()
def down() -> None:
    """Stop everything `govctl monitor up` started; data and alert records stay under state/monitor.

    Example: govctl monitor down
    """
    from govctl.ui import console, err_console
    from monitors import stack

    stopped = stack.down(_layout(), progress=lambda m: err_console.print(f"[dim]{m}[/]"))
    console.print(f"stopped {len(stopped)} process(es): {', '.join(stopped) or 'none were running'}")


@app.command()
def status(json_out: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Processes, scrape targets, firing alerts and stored alert records. Exit 1 when something is down.

    Example: govctl monitor status --json
    """
    from core.errors import GovctlError
    from govctl.ui import console, print_json
    from monitors import stack

    info = stack.status(_layout())
    if json_out:
        print_json(info)
    else:
        for name, p in info["processes"].items():
            mark = "[green]running[/]" if p["running"] else "[red]stopped[/]"
            console.print(f"{mark} {name} (pid {p['pid']})", highlight=False)
        for t in info["targets"]:
            mark = "[green]up[/]" if t["health"] == "up" else f"[red]{t['health']}[/]"
            console.print(f"  scrape {mark} {t['job']} {t['instance']} {t['error']}", highlight=False)
        for a in info["alerts"]:
            console.print(f"  alert {a['state']} {a['alertname']} {a['labels']}", highlight=False)
        console.print(f"rules loaded: {info.get('rules', 0)}; alert records: {info['records']}")
    if not info["processes"]:
        raise GovctlError("the monitor is not up; start it with `govctl monitor up --targets FILE`")
    down_ = [n for n, p in info["processes"].items() if not p["running"]] + \
            [f"{t['job']}@{t['instance']}" for t in info["targets"] if t["health"] != "up"]
    if down_:
        raise GovctlError(f"not healthy: {', '.join(down_)}")


@app.command()
def health(json_out: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Center health: which center serves the service address, which is primary, DR readiness of
    each standby, the SLI now and the error budget left (all from Prometheus).

    Example: govctl monitor health
    """
    from govctl.ui import console, print_json
    from monitors.availability import center_health
    from monitors.stack import prometheus_address

    info = center_health(prometheus_address(_layout()))
    if json_out:
        print_json(info)
        return
    console.print(f"service address served by: {', '.join(info['serving']) or 'unknown'}")
    console.print(f"database primary: {', '.join(info['primary']) or 'unknown'}")
    for s in info["standbys"]:
        mark = "[green]ready[/]" if s["dr_ready"] else "[red]not ready[/]"
        console.print(f"standby {s['standby']} ({s['mode']}): {mark} lag {s.get('lag_seconds')} s",
                      highlight=False)
    for s in info["slo"]:
        console.print(f"SLO {s['service']} {s['center']}: failing now={s['failing']} "
                      f"budget left={s.get('budget_remaining')}", highlight=False)


@app.command()
def alerts(
    since: float = typer.Option(0, "--since", help="Only records received after this Unix time."),
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Alert records the webhook stored (page and ticket notifications from Alertmanager).

    Example: govctl monitor alerts --json
    """
    from govctl.ui import console, print_json
    from monitors.webhook import read_records

    records = [r for r in read_records(_layout().records) if r["received_at"] > since]
    if json_out:
        print_json(records)
        return
    for r in records:
        console.print(f"{r['received_at']:.0f} {r['receiver']} {r['status']} {r['alertname']} "
                      f"{r['labels'].get('center', '')}", highlight=False)


@silence_app.command("add")
def silence_add(
    match: List[str] = typer.Option(..., "--match", "-m", help="label=value (repeatable)."),
    duration: str = typer.Option("1h", "--for", help="How long, e.g. 30m."),
    comment: str = typer.Option(..., "--comment", help="Why (e.g. the drill's name)."),
    author: str = typer.Option("govctl", "--author"),
) -> None:
    """Silence alerts matching every --match for a while (a drill must not page anyone).

    Example: govctl monitor silence add -m center=prod -m severity=page --for 30m --comment "drill 7"
    """
    import datetime as dt

    from core.errors import BadInput
    from govctl.ui import console
    from monitors import prom_api
    from monitors.durations import parse_duration
    from monitors.stack import alertmanager_address

    matchers = []
    for m in match:
        name, sep, value = m.partition("=")
        if not sep or not name:
            raise BadInput(f"--match {m!r}: write it as label=value, e.g. --match center=prod")
        matchers.append({"name": name, "value": value, "isRegex": False, "isEqual": True})
    try:
        seconds = parse_duration(duration)
    except ValueError as exc:
        raise BadInput(f"--for: {exc}") from None
    now = dt.datetime.now(dt.timezone.utc)
    body = {"matchers": matchers, "startsAt": now.isoformat(),
            "endsAt": (now + dt.timedelta(seconds=seconds)).isoformat(),
            "createdBy": author, "comment": comment}
    result = prom_api.post_json(alertmanager_address(_layout()), "/api/v2/silences", body)
    console.print(result["silenceID"])


@silence_app.command("list")
def silence_list(json_out: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Silences Alertmanager knows (active, pending and expired).

    Example: govctl monitor silence list
    """
    from govctl.ui import console, print_json
    from monitors import prom_api
    from monitors.stack import alertmanager_address

    silences = prom_api.get_json(alertmanager_address(_layout()), "/api/v2/silences")
    if json_out:
        print_json(silences)
        return
    for s in silences:
        m = ",".join(f"{x['name']}={x['value']}" for x in s["matchers"])
        console.print(f"{s['id']} {s['status']['state']} {m} until {s['endsAt']} — {s['comment']}",
                      highlight=False)


@silence_app.command("expire")
def silence_expire(silence_id: str = typer.Argument(..., help="The silence's id.")) -> None:
    """End a silence now.

    Example: govctl monitor silence expire 5f0c…
    """
    from govctl.ui import console
    from monitors import prom_api
    from monitors.stack import alertmanager_address

    prom_api.delete(alertmanager_address(_layout()), f"/api/v2/silence/{silence_id}")
    console.print(f"expired {silence_id}")
