"""govctl secops: replay logs through detection, run the ingest daemon, inspect rules and the store."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from core.errors import BadInput, GovctlError
from ._secops_store import CONFIG_OPTION, load_enforcing

app = typer.Typer(name="secops", help=(
    "Security operations: ingest logs, normalize to ECS, detect with Sigma rules, intercept attackers.\n\n"
    "Example: govctl secops replay /var/log/auth.log --allow 10.20.0.0/16 --json"), no_args_is_help=True)

_CONFIG = CONFIG_OPTION


_STACK = typer.Option(None, "--stack", help="Deployed stack (e.g. lab): enforce in every center's boundary "
                     "firewall from its outputs, allowlist its management networks, tail its hosts' sshd logs.")


def _config(path: Optional[Path]):
    from ._secops_store import load
    return load(path)


def _rules_and_allowlist(cfg, rules: list[Path], allow: list[str]):
    from secops.config import ConfigError
    from secops.wiring import build_allowlist, build_rules
    try:
        return build_rules(cfg, [str(r) for r in rules]), build_allowlist(cfg, allow)
    except ConfigError as exc:
        raise BadInput(str(exc)) from None


def _warn_refused(ruleset) -> None:
    from govctl.ui import err_console
    for path, reason in ruleset.errors:
        err_console.print(f"[yellow]rule refused:[/] {path}: {reason}", highlight=False, markup=False)


@app.command()
def replay(
    files: List[Path] = typer.Argument(..., help="Log files to replay (syslog, nginx, auditd, PostgreSQL, JSON lines)."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="YAML ground truth: `malicious: [CIDR…]`, optional `rules: {name: [CIDR…]}`; adds precision/recall per rule."),
    rules: List[Path] = typer.Option([], "--rules", help="Extra Sigma rule file or folder (repeatable)."),
    allow: List[str] = typer.Option([], "--allow", help="Extra CIDR never blocked, e.g. ops networks (repeatable)."),
    fmt: str = typer.Option("auto", "--format", help="auto, syslog, nginx, auditd, postgresql or json."),
    encoding: str = typer.Option("auto", "--encoding", help="auto (UTF-8, else GB18030), utf-8, gbk or gb18030."),
    year: Optional[int] = typer.Option(None, "--year", help="Year for syslog dates without one (default: this year)."),
    tz: float = typer.Option(0.0, "--tz", help="Hours east of UTC for dates without a zone (e.g. 8 for CST)."),
    store: Optional[Path] = typer.Option(None, "--store", help="Also write events, quarantine and alerts to this SQLite file."),
    config: Optional[Path] = _CONFIG,
    stack: Optional[str] = typer.Option(None, "--stack", help="Deployed stack (e.g. lab): never block what "
                                        "`secops run --stack` never blocks (its management networks, allowlist "
                                        "output and ops address)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Replay files through normalize → Sigma detection → interception (dry run); report what fired.

    Example: govctl secops replay auth.log --allow 10.20.0.0/16 --labels truth.yaml --json
    """
    from secops.normalize import ENCODINGS, FORMATS
    from secops.replay import Labels, replay as run_replay
    from secops.store import Store
    from govctl.ui import err_console, print_json

    if fmt not in FORMATS:
        raise BadInput(f"--format {fmt!r} is not known; use one of {', '.join(FORMATS)}")
    if encoding not in ENCODINGS:
        raise BadInput(f"--encoding {encoding!r} is not known; use one of {', '.join(ENCODINGS)}")
    for f in files:
        if not f.is_file():
            raise BadInput(f"log file {f} does not exist or is not a file")
    cfg = load_enforcing(config, stack)  # the stack's allowlist exactly as `secops run --stack` takes it
    ruleset, allowlist = _rules_and_allowlist(cfg, rules, allow)
    _warn_refused(ruleset)
    truth = None
    if labels is not None:
        try:
            truth = Labels(labels)
        except ValueError as exc:
            raise BadInput(str(exc)) from None
    db = Store(store) if store else None
    progress = None if json_out else (lambda n: err_console.print(f"… {n:,} lines", highlight=False))
    try:
        result = run_replay(files, ruleset, allowlist, fmt=fmt, encoding=encoding, year=year,
                            tz_offset=int(tz * 3600), store=db, labels=truth, progress=progress)
    finally:
        if db is not None:
            db.close()
    if json_out:
        print_json(result)
        return
    _print_replay(result)


def _print_replay(result: dict) -> None:
    from rich.table import Table

    from govctl.ui import console
    console.print(f"{result['lines']:,} lines, {result['parsed']:,} parsed, "
                  f"{sum(result['unparsed'].values()):,} quarantined {result['unparsed'] or ''} "
                  f"in {result['seconds']} s ({result['lines_per_second']:,} lines/s)", highlight=False)
    table = Table("rule", "level", "source.ip", "user", "first", "last", "count", title="alerts")
    for a in result["alerts"][:200]:
        table.add_row(a["rule"], a["level"], a["source.ip"] or "", a["user"] or "", a["first"], a["last"], str(a["count"]))
    console.print(table)
    if len(result["alerts"]) > 200:
        console.print(f"… and {len(result['alerts']) - 200} more alerts (use --json)")
    console.print(f"would block {len(result['blocked'])} addresses", highlight=False)
    for rule, pr in (result.get("precision_recall") or {}).items():
        console.print(f"{rule}: precision {pr['precision']} recall {pr.get('recall', '-')}", highlight=False)


@app.command("rules")
def rules_cmd(
    rules: List[Path] = typer.Option([], "--rules", help="Extra Sigma rule file or folder (repeatable)."),
    config: Optional[Path] = _CONFIG,
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the loaded Sigma rules with their ATT&CK and 等保 tags; refused files exit 2.

    Example: govctl secops rules --rules ./my-rules --json
    """
    from govctl.ui import console, print_json
    cfg = _config(config)
    ruleset, _ = _rules_and_allowlist(cfg, rules, [])
    infos = [{"name": i.name, "id": i.id, "title": i.title, "level": i.level, "attack": i.attack,
              "djcp": i.djcp, "response": i.response, "path": i.path} for i in ruleset.all_infos()]
    refused = [{"path": p, "reason": r} for p, r in ruleset.errors]
    if json_out:
        print_json({"rules": infos, "refused": refused})
    else:
        from rich.table import Table
        table = Table("name", "level", "ATT&CK", "等保", "response")
        for i in infos:
            table.add_row(i["name"], i["level"], " ".join(i["attack"]), " ".join(i["djcp"]), i["response"] or "")
        console.print(table)
        _warn_refused(ruleset)
    if refused:
        raise typer.Exit(2)


@app.command()
def quarantine(
    config: Optional[Path] = _CONFIG,
    limit: int = typer.Option(50, "--limit", help="How many of the newest quarantined lines to show."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Counts by reason and the newest lines kept aside because they did not parse.

    Example: govctl secops quarantine --limit 10
    """
    from secops.stores import sqlite_path
    from govctl.ui import console, print_json

    from ._secops_store import open_configured
    cfg = _config(config)
    db_file = sqlite_path(cfg)
    if db_file is not None and not db_file.exists():
        raise GovctlError(f"no store at {db_file} yet; run `govctl secops run` or `replay --store` first")
    db = open_configured(cfg)
    try:
        data = {**db.counts(), "newest": db.quarantined(limit)}
    finally:
        db.close()
    if json_out:
        print_json(data)
        return
    console.print(f"events {data['events']:,}, quarantined {data['quarantined']:,} {data['quarantine_by_reason']}")
    for q in data["newest"]:
        console.print(f"{q['received']} {q['reason']:<14} {q['source']}:{q['position']} {q['raw']!r}",
                      highlight=False, markup=False)


def _enforcer(cfg, dry_run: Optional[bool]):
    from secops.wiring import make_enforcer
    if dry_run if dry_run is not None else cfg["response"]["dry_run"]:
        return None
    try:
        return make_enforcer(cfg)
    except (RuntimeError, OSError) as exc:
        raise GovctlError(f"cannot set up the nftables enforcer ({exc}); run as root, or use --dry-run") from None


def _open_engine(cfg, dry_run: Optional[bool], enforce: bool, log):
    """The streaming engine on the configured store (SQLite or Elasticsearch)."""
    from secops.daemon import Engine

    from ._secops_store import open_configured
    store = open_configured(cfg)  # first: a store that cannot be used must fail before a firewall is touched
    try:
        enforcer = _enforcer(cfg, dry_run) if enforce else None
        store.apply_retention(cfg["retention_days"], cfg["incident_retention_days"])
        return Engine(cfg, store, enforcer, dry_run=dry_run, log=log), store
    except Exception:
        store.close()
        raise


@app.command()
def run(
    config: Optional[Path] = _CONFIG,
    source: List[str] = typer.Option([], "--source", help="Extra input NAME=PATH to tail (repeatable); format auto-detected."),
    dry_run: Optional[bool] = typer.Option(None, "--dry-run/--enforce", help="Decide without enforcing (default: the config's response.dry_run)."),
    once: bool = typer.Option(False, "--once", help="Process what the inputs hold now, then exit."),
    stack: Optional[str] = _STACK,
    workers: Optional[int] = typer.Option(None, "--workers", help="Ingest worker processes, each tailing a share of the sources (store: elasticsearch; default 1)."),
    year: Optional[int] = typer.Option(None, "--year", help="Year for syslog dates without one (default: this year)."),
    json_out: bool = typer.Option(False, "--json", help="With store: elasticsearch, print the final counts as JSON."),
) -> None:
    """The streaming daemon: tail files and the syslog spool, detect, intercept, record incidents.

    Positions are committed with the events, so a restart (even after kill -9) resumes without losing
    or repeating a line. Stop with SIGTERM or Ctrl-C. With `store: elasticsearch`, N ingest worker
    processes bulk-write to the cluster and the Sigma rules run there as scheduled searches.

    Example: govctl secops run --stack lab   (or --config FILE --source auth=/var/log/auth.log)
    """
    from secops.daemon import Runner, install_stop_handlers, stderr_log
    from secops.stores import store_kind
    from secops.config import ConfigError
    from secops.effective import effective_config
    try:  # the same function gives the compliance evidence this daemon's configuration (secops/effective.py)
        cfg = effective_config(config, stack, source)
    except ConfigError as exc:
        raise BadInput(str(exc)) from None
    sources = list(cfg["sources"])
    if not sources and not (cfg["syslog"].get("udp") or cfg["syslog"].get("tcp")):
        raise BadInput("no inputs: add `sources:` or `syslog:` to the config, or pass --source NAME=PATH")
    if workers is not None and workers < 1:
        raise BadInput(f"--workers {workers}: give at least 1")
    if store_kind(cfg) == "elasticsearch":
        _run_on_cluster(cfg, sources, workers or 1, dry_run, once, year, json_out)
        return
    if workers not in (None, 1):
        raise BadInput("--workers needs `store: elasticsearch` in the secops config: the SQLite store has one "
                       "writer process (see docs/elasticsearch.md)")
    if year is not None:
        raise BadInput("--year is for `store: elasticsearch`; the embedded daemon dates lines as they arrive")
    engine, store = _open_engine(cfg, dry_run, enforce=True, log=stderr_log)
    stop = install_stop_handlers()
    runner = Runner(engine, sources, cfg["syslog"])
    if runner.receivers:
        for proto, addr in runner.receivers.addresses:
            stderr_log(f"syslog {proto} on {addr[0]}:{addr[1]}")
    for fw in (cfg["enforcer"].get("firewalls") or []) if engine.decisions.enforcer is not None else []:
        stderr_log(f"enforcing in {fw['netns']}: {fw['family']} {fw['table']} sets {fw['set']}, {fw.get('set6')}")
    stderr_log(f"secops running: {len(runner.inputs)} inputs, store {cfg['store']}")
    try:
        runner.run(once=once, idle_sleep=cfg["batch"]["seconds"], max_lines=cfg["batch"]["lines"],
                   stop=lambda: stop[0], inotify=cfg["batch"]["inotify"])
    finally:
        store.close()
    stderr_log(f"stopped: {engine.stats}")


def _run_on_cluster(cfg, sources: list[dict], workers: int, dry_run: Optional[bool], once: bool,
                    year: Optional[int], json_out: bool) -> None:
    """`secops run` with store: elasticsearch (secops.daemon.run_on_cluster), with govctl's exit codes."""
    from secops.daemon import install_stop_handlers, run_on_cluster, stderr_log
    from secops.es.bulk import StoreError, Unavailable
    from secops.es.client import ClusterError
    from govctl.ui import print_json

    from ._secops_store import open_configured
    stop = install_stop_handlers()
    try:
        result = run_on_cluster(cfg, sources, open_store=lambda: open_configured(cfg),
                                open_enforcer=lambda: _enforcer(cfg, dry_run), workers=workers, dry_run=dry_run,
                                once=once, year=year, stop=lambda: stop[0], log=stderr_log)
    except ValueError as exc:  # a config error (secops.config.ConfigError) among them
        raise BadInput(str(exc)) from None
    except (ClusterError, Unavailable, StoreError) as exc:
        raise GovctlError(str(exc)) from None
    if json_out:
        print_json(result)


@app.command()
def ingest(
    name: str = typer.Option("stdin", "--name", help="Source name recorded with the events."),
    fmt: str = typer.Option("auto", "--format", help="auto, syslog, nginx, auditd, postgresql or json."),
    encoding: str = typer.Option("auto", "--encoding", help="auto, utf-8, gbk or gb18030."),
    dry_run: Optional[bool] = typer.Option(None, "--dry-run/--enforce", help="Decide without enforcing."),
    config: Optional[Path] = _CONFIG,
    stack: Optional[str] = _STACK,
    json_out: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
) -> None:
    """Read log lines from stdin through the engine into the store.

    Example: journalctl -o short -u ssh | govctl secops ingest --name journal --dry-run
    """
    import sys

    from secops.daemon import ingest_stream, stderr_log
    from secops.normalize import ENCODINGS, FORMATS
    from govctl.ui import console, print_json
    if fmt not in FORMATS or encoding not in ENCODINGS:
        raise BadInput(f"--format must be one of {', '.join(FORMATS)}; --encoding one of {', '.join(ENCODINGS)}")
    cfg = load_enforcing(config, stack)
    engine, store = _open_engine(cfg, dry_run, enforce=True, log=stderr_log)
    try:
        ingest_stream(engine, sys.stdin.buffer, name, fmt, encoding, cfg["batch"]["lines"])
    finally:
        store.close()
    if json_out:
        print_json(engine.stats)
    else:
        console.print(engine.stats)
