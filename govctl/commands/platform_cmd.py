"""govctl up / status / down / logs: the whole platform as one (services/ is the engine).

These are top-level commands, not a group: govctl/cli.py adds every function in ROOT_COMMANDS to the
root app."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

import typer

from core.errors import BadInput, GovctlError
from core.paths import ROOT, STATE
from ..ui import console, err_console, print_json
from ._trail import trailed

_COMPONENTS = typer.Option(None, "--components", help="Components file (default services/components.yaml; "
                           "schema services/components.schema.yaml).")
_JSON = typer.Option(False, "--json", help="Print one JSON document.")
LAUNCHER = (sys.executable, "-m", "govctl")  # how the platform runs govctl commands


def _platform():
    from rich.markup import escape

    from services.control import Platform
    from services.layout import Layout

    return Platform(Layout(STATE), LAUNCHER, ROOT,
                    progress=lambda m: err_console.print(f"[dim]govctl:[/] {escape(m)}", highlight=False))


_MARK = {"up": "[green]up[/]", "degraded": "[yellow]degraded[/]", "down": "[red]down[/]"}


def _show(report: dict) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table("component", "kind", "state", "why")
    for name, c in report["components"].items():
        table.add_row(name, c["kind"], _MARK[c["state"]], escape(c["why"]))
    console.print(table)
    signing = report["signing"]
    console.print(f"signing: {_MARK[signing['state']]} {escape(signing['why'])}", highlight=False)
    console.print(f"console: [bold]{report['console_url']}[/]", highlight=False)
    if report.get("ca_certificate"):
        console.print(f"CA certificate (trust it in the browser, or curl --cacert): "
                      f"{report['ca_certificate']}", highlight=False)
    if report["credentials_file"]:
        console.print(f"first administrator's credentials: {report['credentials_file']} (mode 0600)",
                      highlight=False)
    else:
        console.print("console users: managed with `govctl users` (the first administrator's file was removed)",
                      highlight=False)


def _finish(report: dict, json_out: bool) -> None:
    if json_out:
        print_json(report)
    else:
        _show(report)
    if not report["up"]:
        bad = [n for n, c in report["components"].items() if c["state"] != "up"]
        if report["signing"]["state"] != "up":
            bad.append("signing")
        raise GovctlError(f"not up: {', '.join(bad)} (govctl logs COMPONENT shows why)")


@trailed("platform.up", "platform", ("stack", "store", "host", "port"))
def up(
    stack: Optional[str] = typer.Option(None, "--stack", help="The stack to run on (default: the last "
                                        "`up`'s, else lab)."),
    store: Optional[str] = typer.Option(None, "--store", help="SecOps store: sqlite or elasticsearch "
                                        "(default: the last `up`'s, else sqlite)."),
    host: Optional[str] = typer.Option(None, "--host", help="Address the console binds (default "
                                       "127.0.0.1)."),
    port: Optional[int] = typer.Option(None, "--port", help="The console's port (default 8443)."),
    plain_http: bool = typer.Option(False, "--plain-http", hidden=True,
                                    help="Serve the console without TLS (tests; only on 127.0.0.1)."),
    components: Optional[Path] = _COMPONENTS,
    json_out: bool = _JSON,
) -> None:
    """Bring up (or find up) everything: the lab, the hardening baseline, monitoring, the SecOps daemon
    enforcing on the lab's firewalls, and the API + console server. Idempotent.

    The long-running parts run in the background under govctl's supervisor (restart on crash with
    back-off; `govctl logs COMPONENT`). The first `up` creates the platform CA, the keystore's root key
    (state/keys/root.key) and the first administrator's credentials file. Exit 0 when all is up.

    Example: govctl up   (then open the console URL it prints)
    """
    from services.control import Options
    from services.layout import Layout, read_json
    from services.spec import load_spec

    last = (read_json(Layout(STATE).platform) or {}).get("options", {})
    if store is not None and store not in ("sqlite", "elasticsearch"):
        raise BadInput(f"--store {store!r}: use sqlite or elasticsearch")
    options = Options(stack=stack or last.get("stack") or "lab", store=store or last.get("store", "sqlite"),
                      host=host if host is not None else last.get("host", "127.0.0.1"),
                      port=port if port is not None else last.get("port", 8443),
                      plain_http=plain_http)
    spec = load_spec(components or (read_json(Layout(STATE).platform) or {}).get("spec"))
    report = _platform().up(options, spec)
    _finish(report, json_out)
    if not json_out:
        err_console.print(f"platform up in {report['seconds']} s", highlight=False)


def status(json_out: bool = _JSON) -> None:
    """Every component's health: up, degraded or down, and why. Exit 1 unless all are up.

    Example: govctl status --json
    """
    _finish(_platform().status(), json_out)


@trailed("platform.down", "platform", ("keep_lab",))
def down(
    keep_lab: bool = typer.Option(False, "--keep-lab", help="Leave the lab running (stop only "
                                  "what runs on it)."),
    json_out: bool = _JSON,
) -> None:
    """Stop everything `govctl up` started: the services, monitoring, Elasticsearch and the lab.

    Example: govctl down --keep-lab
    """
    result = _platform().down(keep_lab)
    if json_out:
        print_json(result)
    else:
        console.print(f"stopped: {', '.join(result['stopped']) or 'nothing'}"
                      + (f"; kept: {', '.join(result['kept'])}" if result["kept"] else ""), highlight=False)
    if result["failed"]:
        raise GovctlError("; ".join(f"{n}: {why}" for n, why in result["failed"].items()))


def logs(
    component: str = typer.Argument(..., help="A component (see `govctl status`) or `supervisor`."),
    lines: int = typer.Option(50, "--lines", "-n", help="How many of the last lines (1 to 100000)."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing what is appended."),
) -> None:
    """The log of one component (its output, and the supervisor's restarts of it).

    Example: govctl logs secops -n 100
    """
    from services.layout import Layout, read_json

    layout = Layout(STATE)
    known = [c["name"] for c in (read_json(layout.platform) or {}).get("components", [])] + ["supervisor"]
    if component not in known:
        raise BadInput(f"no component {component[:64]!r}; use one of {', '.join(known)}")
    if not 1 <= lines <= 100_000:
        raise BadInput(f"--lines {lines}: give 1 to 100000")
    path = layout.log(component)
    if not path.exists():
        raise GovctlError(f"{component} has no log yet ({path})")
    with path.open("rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(size - 4096 * lines // 16 - 65536, 0))  # enough for the last lines, not the file
        tail = f.read().decode("utf-8", "replace").splitlines()[-lines:]
        sys.stdout.write("\n".join(tail) + ("\n" if tail else ""))
        sys.stdout.flush()
        while follow:
            chunk = f.read()
            if chunk:
                sys.stdout.write(chunk.decode("utf-8", "replace"))
                sys.stdout.flush()
            else:
                time.sleep(0.5)


def supervise() -> None:
    """Run the supervisor in the foreground (`govctl up` starts it in the background)."""
    from services.layout import Layout
    from services.supervisor import Supervisor

    def log(message: str) -> None:
        print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}", flush=True)

    raise typer.Exit(Supervisor(Layout(STATE), ROOT, log).run())


# (name, function, hidden) — added to the root app by govctl/cli.py
ROOT_COMMANDS = [("up", up, False), ("status", status, False), ("down", down, False),
                 ("logs", logs, False), ("supervise", supervise, True)]
