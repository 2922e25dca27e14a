"""govctl incidents: triage grouped alerts (list, show, ack, assign, resolve) and serve the HTTP API."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from core.errors import BadInput, GovctlError
from secops.limits import LIST_LIMIT, RECORD_ID

from ._secops_store import CONFIG_OPTION, load, open_configured, within
from ._secops_store import actor as _actor
from ._serving import TLS_CERTFILE, TLS_KEYFILE, check_transport
from ._serving import serve as serve_app

app = typer.Typer(name="incidents", help=(
    "Security incidents: alerts grouped by source address, user or host and time.\n\n"
    "Example: govctl incidents list --state new"), no_args_is_help=True)

_CONFIG = CONFIG_OPTION
_JSON = typer.Option(False, "--json", help="Print JSON.")
_ID = typer.Argument(..., callback=within(RECORD_ID), help="Incident number.")


def _limit(default: int, what: str):
    return typer.Option(default, "--limit", callback=within(LIST_LIMIT),
                        help=f"At most this many {what} (1 to 10000).")


def _service(config: Optional[Path]):
    from secops.incidents import Incidents
    cfg = load(config)
    return Incidents(open_configured(cfg)), cfg


def _do(config: Optional[Path], fn_name: str, *args, json_out: bool = False):
    from secops.incidents import IncidentError, InvalidInput, NotFound
    from govctl.ui import print_json
    service, _ = _service(config)
    try:
        result = getattr(service, fn_name)(*args)
    except (NotFound, InvalidInput) as exc:
        raise BadInput(str(exc)) from None
    except IncidentError as exc:
        raise GovctlError(str(exc)) from None
    finally:
        service.store.close()
    if json_out:
        print_json(result)
    else:
        _print_incident(result)


def _print_incident(i: dict) -> None:
    from govctl.ui import console
    console.print(f"[bold]#{i['id']}[/] {i['title']}  severity={i['severity']} state={i['state']} "
                  f"assignee={i['assignee'] or '-'}  {i['first']} … {i['last']}", highlight=False)
    for a in i.get("alerts", []) or []:
        if isinstance(a, dict):
            console.print(f"  alert {a['rule']} ({a['level']}) ×{a['count']} {a['first']} … {a['last']}", highlight=False)
            for line in a["evidence"][:5]:
                console.print(f"    {line}", highlight=False, markup=False)
    for n in i.get("notes", []):
        console.print(f"  {n['time']} {n['author']} [{n['kind']}] {n['text']}", highlight=False, markup=False)


@app.command("list")
def list_incidents(
    state: Optional[list[str]] = typer.Option(None, "--state", help="new, acknowledged, contained, resolved or "
                                              "false-positive; repeat for several."),
    severity: Optional[list[str]] = typer.Option(None, "--severity", help="informational, low, medium, high or "
                                                 "critical; repeat for several."),
    rule: Optional[str] = typer.Option(None, "--rule", help="Incidents with an alert of this rule."),
    center: Optional[str] = typer.Option(None, "--center", help="Incidents whose blocks this center's firewall enforced."),
    source: Optional[str] = typer.Option(None, "--source", help="Source address, exact or a CIDR range."),
    since: Optional[str] = typer.Option(None, "--since", help="Active at or after this time (ISO 8601 or epoch seconds)."),
    until: Optional[str] = typer.Option(None, "--until", help="Active at or before this time (ISO 8601 or epoch seconds)."),
    text: Optional[str] = typer.Option(None, "--text", help="Text in the title (any case)."),
    sort: str = typer.Option("-last", "--sort", help="id, title, severity, state, entity, first, last or updated; "
                             "a leading - sorts descending (e.g. --sort=-severity)."),
    page: Optional[int] = typer.Option(None, "--page", min=1, help="Page number (pages of --limit incidents)."),
    offset: Optional[int] = typer.Option(None, "--offset", help="Skip this many incidents (instead of --page)."),
    limit: int = _limit(100, "incidents"),
    config: Optional[Path] = _CONFIG,
    json_out: bool = typer.Option(False, "--json", help="Print the incidents as a JSON list."),
    page_json: bool = typer.Option(False, "--json-page", help="Print JSON as GET /incident-search answers: "
                                   "total, offset, limit, items, counts by state and severity."),
) -> None:
    """Incidents matching every filter given, newest activity first unless --sort says otherwise (the same
    search as the API's GET /incidents).

    Example: govctl incidents list --state new --severity high --source 203.0.113.0/24 --sort=-severity --json
    """
    from secops.incidents import IncidentError
    from govctl.ui import console, print_json
    if page is not None and offset is not None:
        raise BadInput("give --page or --offset, not both")
    skip = offset if offset is not None else ((page or 1) - 1) * limit
    service, _ = _service(config)
    try:
        found = service.search(state or (), severity or (), rule, center, source, since, until, text, sort, skip, limit)
    except IncidentError as exc:
        raise BadInput(str(exc)) from None
    finally:
        service.store.close()
    if page_json:
        print_json(found)
        return
    if json_out:
        print_json(found["items"])
        return
    from rich.table import Table
    table = Table("id", "severity", "state", "entity", "title", "alerts", "assignee", "last")
    for r in found["items"]:
        table.add_row(str(r["id"]), r["severity"], r["state"], r["entity"]["value"], r["title"], str(r["alerts"]),
                      r["assignee"] or "", r["last"])
    console.print(table)
    shown = f"{skip + 1}–{skip + len(found['items'])}" if found["items"] else "none"
    console.print(f"{shown} of {found['total']}; by state: "
                  + ", ".join(f"{k} {v}" for k, v in found["counts"]["by_state"].items() if v), highlight=False)


@app.command()
def events(
    query: str = typer.Argument("", help="FIELD:VALUE terms (ECS fields; an address field takes a CIDR), e.g. "
                                          "'source.ip:203.0.113.0/24 event.outcome:failure'."),
    since: Optional[str] = typer.Option(None, "--since", help="From this time (ISO 8601 or epoch seconds)."),
    until: Optional[str] = typer.Option(None, "--until", help="Up to this time (ISO 8601 or epoch seconds)."),
    limit: int = _limit(100, "events, newest first"),
    config: Optional[Path] = _CONFIG,
    json_out: bool = _JSON,
) -> None:
    """Search the stored events (either store, the same syntax as the API's GET /events).

    Example: govctl incidents events 'source.ip:203.0.113.0/24 event.outcome:failure' --since 2026-11-01
    """
    from secops.normalize import iso
    from secops.stores import parse_event_query, parse_time
    from govctl.ui import console, print_json
    try:
        filters = parse_event_query(query)
        start, end = parse_time(since, "--since"), parse_time(until, "--until")
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    store = open_configured(load(config))
    try:
        found = store.search_events(filters, start, end, limit)
    finally:
        store.close()
    if json_out:
        print_json(found)
        return
    for e in found:
        console.print(f"{iso(e['@timestamp'])} {e.get('event.dataset', '-')} {e.get('source.ip') or '-'} "
                      f"{e.get('user.name') or '-'} {e.get('event.original') or e.get('message', '')}",
                      highlight=False, markup=False)
    console.print(f"{len(found)} events", highlight=False)


@app.command()
def show(incident_id: int = _ID, config: Optional[Path] = _CONFIG,
         json_out: bool = _JSON) -> None:
    """One incident with its alerts, evidence lines, decisions and notes.

    Example: govctl incidents show 12
    """
    _do_case(config, "show", incident_id, json_out=json_out)  # with SLA, observables and checklist (cases)


@app.command()
def ack(incident_id: int = _ID, note: Optional[str] = typer.Option(None, "--note"),
        config: Optional[Path] = _CONFIG, json_out: bool = _JSON) -> None:
    """Acknowledge: someone is looking at it.

    Example: govctl incidents ack 12 --note 'checking with the web team'
    """
    _do(config, "ack", incident_id, _actor(), note, json_out=json_out)


@app.command()
def assign(incident_id: int = _ID, assignee: str = typer.Argument(..., help="Who handles it."),
           config: Optional[Path] = _CONFIG, json_out: bool = _JSON) -> None:
    """Assign to a person.

    Example: govctl incidents assign 12 zhang.wei
    """
    _do(config, "assign", incident_id, assignee, _actor(), json_out=json_out)


@app.command()
def contain(incident_id: int = _ID, note: Optional[str] = typer.Option(None, "--note"),
            config: Optional[Path] = _CONFIG, json_out: bool = _JSON) -> None:
    """Mark as contained (the attacker is blocked or the account locked).

    Example: govctl incidents contain 12 --note 'source blocked, password reset'
    """
    _do(config, "contain", incident_id, _actor(), note, json_out=json_out)


@app.command()
def resolve(incident_id: int = _ID, note: Optional[str] = typer.Option(None, "--note"),
            false_positive: bool = typer.Option(False, "--false-positive", help="Close as a false positive."),
            config: Optional[Path] = _CONFIG, json_out: bool = _JSON) -> None:
    """Close the incident (resolved, or false-positive).

    Example: govctl incidents resolve 12 --note 'password reset, source blocked 7 days'
    """
    _do(config, "resolve", incident_id, _actor(), note, false_positive, json_out=json_out)


@app.command()
def note(incident_id: int = _ID, text: str = typer.Argument(..., help="The note."),
         config: Optional[Path] = _CONFIG, json_out: bool = _JSON) -> None:
    """Add a note to the incident's record.

    Example: govctl incidents note 12 'attacker also probed the VPN'
    """
    _do(config, "note", incident_id, _actor(), text, json_out=json_out)


@app.command()
def token(name: str = typer.Argument(..., help="Who the token is for."),
          role: str = typer.Option(..., "--role", help="ops, security or auditor."),
          config: Optional[Path] = _CONFIG) -> None:
    """Create (or replace) an API token; it is printed once and stored only as a digest.

    Example: govctl incidents token li.na --role security
    """
    from secops.api import ROLES, Tokens
    from core.paths import STATE
    if role not in ROLES:
        raise BadInput(f"--role {role!r} is not one of {', '.join(ROLES)}")
    print(Tokens(STATE / "secops" / "api-tokens.yaml").add(name, role))


@app.command()
def serve(host: str = typer.Option("127.0.0.1", "--host"), port: int = typer.Option(8470, "--port"),
          dry_run: bool = typer.Option(False, "--dry-run", help="Ban changes are recorded but not enforced."),
          tls_certfile: Optional[Path] = TLS_CERTFILE, tls_keyfile: Optional[Path] = TLS_KEYFILE,
          config: Optional[Path] = _CONFIG) -> None:
    """Serve the incidents/bans HTTP API (bearer tokens; roles ops, security, auditor).

    Plain HTTP only on a loopback address; anywhere else give --tls-certfile and --tls-keyfile
    (`govctl up` passes the platform CA's server certificate).

    Example: govctl incidents serve --port 8470
    """
    from secops.api import create_app
    from core.paths import STATE
    from govctl.commands.bans import _engine
    check_transport(host, tls_certfile, tls_keyfile)
    decisions, store = _engine(config, dry_run)
    try:
        serve_app(create_app(store, STATE / "secops" / "api-tokens.yaml", decisions), host, port,
                  tls_certfile, tls_keyfile)
    finally:
        store.close()


# ---- cases (issue #18): SLAs, merge/split/reopen, plan tasks, the incident report
def _print_case(i: dict) -> None:
    from govctl.ui import console
    _print_incident(i)
    sla = i.get("sla") or {}
    for t in sla.get("targets", []):
        console.print(f"  SLA {t['target']}: due {t['due']} {t['status']}"
                      + (f" (reached {t['reached']})" if t["reached"] else ""), highlight=False, markup=False)
    for o in i.get("observables", []):
        others = ", ".join(f"#{n}" for n in o["other_incidents"])
        console.print(f"  observable {o['kind']} {o['value']}" + (f"  seen in {others}" if others else ""),
                      highlight=False, markup=False)
    plan = i.get("checklist")
    if plan:
        console.print(f"  plan {plan['plan']} {plan['name']['zh']} {plan['done']}/{plan['total']}", highlight=False)
        for t in plan["tasks"]:
            mark = f"✔ {t['by']} {t['at']}" if t["done"] else "☐"
            console.print(f"    {mark} {t['id']}: {t['zh']}", highlight=False, markup=False)


def _do_case(config: Optional[Path], fn_name: str, *args, json_out: bool = False) -> None:
    from secops.incidents import IncidentError, InvalidInput, NotFound
    from govctl.ui import print_json
    service, _ = _service(config)
    try:
        result = getattr(service, fn_name)(*args)
    except (NotFound, InvalidInput) as exc:
        raise BadInput(str(exc)) from None
    except IncidentError as exc:
        raise GovctlError(str(exc)) from None
    finally:
        service.store.close()
    print_json(result) if json_out else _print_case(result)


@app.command()
def sla(limit: int = _limit(1000, "open incidents"), config: Optional[Path] = _CONFIG, json_out: bool = _JSON) -> None:
    """SLA figures of the open incidents (due times to acknowledge, contain, resolve; met or breached).
    Breaches now due are recorded on the incident (note kind sla-breach), where notifications read them.

    Example: govctl incidents sla --json
    """
    from secops.incidents import IncidentError
    from govctl.ui import console, print_json
    service, _ = _service(config)
    try:
        rows = service.sla(limit)
    except IncidentError as exc:
        raise BadInput(str(exc)) from None
    finally:
        service.store.close()
    if json_out:
        print_json(rows)
        return
    from rich.table import Table
    table = Table("id", "severity", "state", "class", "acknowledge", "contain", "resolve", "title")
    for r in rows:
        cells = {t["target"]: f"{t['status']} {t['due']}" for t in r["targets"]}
        table.add_row(str(r["id"]), r["severity"], r["state"], r["class"]["zh"], cells.get("acknowledge", "—"),
                      cells.get("contain", "—"), cells.get("resolve", "—"), r["title"])
    console.print(table)


@app.command()
def merge(incident_id: int = _ID, others: list[int] = typer.Argument(..., help="Incidents to merge into it."),
          note: Optional[str] = typer.Option(None, "--note"), config: Optional[Path] = _CONFIG,
          json_out: bool = _JSON) -> None:
    """Merge other incidents into this one: their alerts move here, they close as merged (history kept).

    Example: govctl incidents merge 12 14 15 --note 'one campaign'
    """
    for other in others:
        within(RECORD_ID)(other)
    _do_case(config, "merge", incident_id, others, _actor(), note, json_out=json_out)


@app.command()
def split(incident_id: int = _ID, alerts: list[str] = typer.Argument(..., help="Ids of the alerts to move."),
          note: Optional[str] = typer.Option(None, "--note"), config: Optional[Path] = _CONFIG,
          json_out: bool = _JSON) -> None:
    """Split alerts off into a new incident (printed); both keep the history.

    Example: govctl incidents split 12 31 32
    """
    _do_case(config, "split", incident_id, alerts, _actor(), note, json_out=json_out)  # ids compare as text


@app.command()
def reopen(incident_id: int = _ID, note: Optional[str] = typer.Option(None, "--note"),
           config: Optional[Path] = _CONFIG, json_out: bool = _JSON) -> None:
    """Reopen a resolved or false-positive incident (it becomes acknowledged; its SLA clock restarts).

    Example: govctl incidents reopen 12 --note 'the source came back'
    """
    _do_case(config, "reopen", incident_id, _actor(), note, json_out=json_out)


@app.command()
def task(incident_id: int = _ID, task_id: str = typer.Argument(..., help="A task id of the incident's plan."),
         undo: bool = typer.Option(False, "--undo", help="Mark the task not done again."),
         config: Optional[Path] = _CONFIG, json_out: bool = _JSON) -> None:
    """Tick a task of the incident's response plan (应急预案) off, with who and when.

    Example: govctl incidents task 12 confirm-block
    """
    _do_case(config, "task", incident_id, task_id, _actor(), not undo, json_out=json_out)


@app.command()
def report(incident_id: int = _ID, out: Path = typer.Option(..., "--out", help="File to write."),
           json_out: bool = typer.Option(False, "--json", help="Write JSON instead of the PDF."),
           config: Optional[Path] = _CONFIG) -> None:
    """The incident report for the emergency-command records: a Chinese PDF (or JSON) with timeline,
    evidence, actions, checklist and SLA figures.

    Example: govctl incidents report 12 --out incident-12.pdf
    """
    from secops.case_report import to_json, to_pdf
    from secops.incidents import IncidentError, InvalidInput, NotFound
    from govctl.ui import console
    service, _ = _service(config)
    try:
        document = service.report(incident_id, _actor())
    except (NotFound, InvalidInput) as exc:
        raise BadInput(str(exc)) from None
    except IncidentError as exc:
        raise GovctlError(str(exc)) from None
    finally:
        service.store.close()
    data = to_json(document) if json_out else to_pdf(document)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    except OSError as exc:
        raise BadInput(f"--out {out}: cannot write ({exc.strerror}); give a writable path") from None
    console.print(f"wrote {out} ({len(data)} bytes)", highlight=False)
