"""govctl lab: the embedded two-site-three-center cloud on this machine (the `lab` stack)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import typer

from core.errors import BadInput, GovctlError
from ..ui import console, err_console, print_json
from ._trail import trailed

app = typer.Typer(
    name="lab",
    help="Bring up, check and tear down the lab: the default topology as a real "
         "two-site-three-center cloud in network namespaces on this machine (needs root).\n\n"
         "Example: govctl lab up && ssh web-1.prod hostname",
    no_args_is_help=True,
)

STACK = "lab"
# Another lab-backend stack (e.g. lab-30, the 30-host lab of issue 20); one lab per GOVCTL_LAB_PREFIX.
STACK_OPTION = typer.Option(STACK, "--stack", help="Lab-backend stack to use (infra/stacks/<name>.yaml), "
                                                    "e.g. lab-30 for the 30-host lab.")


def _lab_stack(stack: str) -> str:
    """The stack, refused before anything is touched unless the lab backend renders it."""
    from infra.engine import StackDefinition

    definition = StackDefinition.load(stack)
    if definition.backend != "lab":
        raise BadInput(f"--stack {stack}: its backend is {definition.backend!r}, not lab; "
                       "`govctl lab` brings up lab-backend stacks only (use `govctl infra` for the others)")
    return definition.name


def _require_root() -> None:
    if os.geteuid() != 0:
        raise GovctlError("the lab needs root (network namespaces, nftables, mounts); "
                          "run `sudo govctl lab …` — nothing was changed")


def _show(status: dict) -> None:
    from rich.table import Table

    hosts = Table(title="hosts", show_lines=False)
    for col in ("host", "address", "ssh"):
        hosts.add_column(col)
    for h in status["hosts"]:
        hosts.add_row(h["fqdn"], h["address"], "[green]ok[/]" if h["ssh"] else f"[red]{h['detail']}[/]")
    console.print(hosts)
    repl = Table(title=f"replication from {status['replication']['primary']['host']}")
    for col in ("standby", "state", "sync", "lag bytes", "lag s"):
        repl.add_column(col)
    for r in status["replication"]["standbys"]:
        repl.add_row(r["standby"], r["state"], r["sync_state"], str(r["lag_bytes"]),
                     f"{r['lag_seconds']:.3f}")
    console.print(repl)
    if status["replication"]["error"]:
        console.print(f"[red]replication: {status['replication']['error']}[/]")
    svc = status["service"]
    if svc.get("url"):
        console.print(f"service {svc['name']} {svc['url']} → active center "
                      f"[bold]{svc['active_center']}[/], served by {svc['served_by'] or '[red]nobody[/]'}")
    console.print("[green]healthy[/]" if status["healthy"] else "[red]not healthy[/]")


def _refuse_foreign_state(stack: str) -> None:
    """A state copied or moved from another checkout describes that checkout's lab: converging it from
    here would boot a second set of hosts into the same namespaces (stop 24's CI), and destroying it from
    here would delete that checkout's host folders and namespaces, which Pulumi reaches by their recorded
    paths and names."""
    from core.paths import STATE
    from infra.lab.cleanup import LAB_DIR, foreign_hosts
    from infra.outputs import StackNotDeployed, read_stack_outputs

    try:
        recorded = read_stack_outputs(stack)
    except StackNotDeployed:
        return
    foreign = foreign_hosts(recorded)
    if foreign:
        raise GovctlError(
            f"stack {stack!r}: its state records its hosts under {Path(foreign[0]).parent}, not under this "
            f"checkout's {LAB_DIR / 'hosts'} — the state was copied or moved from another checkout, and that "
            f"lab belongs there. Take it down where it was made (`govctl lab down`), then remove {STATE} here "
            "(or point GOVCTL_STATE at a new folder) for a lab of this checkout's own; nothing was changed")


@app.command()
@trailed("lab.up", lambda a: f"lab:{a['stack']}", ("stack",))
def up(json_output: bool = typer.Option(False, "--json", help="Print the status as JSON."),
       stack: str = STACK_OPTION):
    """Create (or converge) the lab with the real Pulumi engine, then print its status.

    Builds the hosts' Debian root filesystem once (cached), then `pulumi up` on the `lab` stack.
    A second run reports no changes. Example: govctl lab up
    """
    stack = _lab_stack(stack)
    _require_root()
    from infra.lab.rootfs import ensure_base
    from infra.lab.status import lab_status
    from infra.outputs import read_stack_outputs

    from infra.engine import Engine

    _refuse_foreign_state(stack)
    started = time.monotonic()
    ensure_base(log=lambda m: err_console.print(f"[dim]lab:[/] {m}", highlight=False))
    engine = Engine(stack)
    engine.up(["--skip-preview"], quiet=json_output)
    status = lab_status(read_stack_outputs(stack))
    status["seconds"] = round(time.monotonic() - started, 1)
    status["resource_changes"] = engine.last_update().get("resourceChanges", {})
    if json_output:
        print_json(status)
    else:
        _show(status)
        err_console.print(f"lab up in {status['seconds']} s; try: ssh web-1.prod", highlight=False)
    if not status["healthy"]:
        raise typer.Exit(1)


@app.command()
def status(json_output: bool = typer.Option(False, "--json", help="Print the status as JSON."),
           stack: str = STACK_OPTION):
    """Check every host over SSH, the replication state and lag, and the service address.

    Exit code 1 when anything is unhealthy. Example: govctl lab status --json
    """
    stack = _lab_stack(stack)
    _require_root()
    from infra.lab.status import lab_status
    from infra.outputs import read_stack_outputs

    result = lab_status(read_stack_outputs(stack))
    if json_output:
        print_json(result)
    else:
        _show(result)
    if not result["healthy"]:
        raise typer.Exit(1)


@app.command()
@trailed("lab.down", lambda a: f"lab:{a['stack']}", ("stack",))
def down(json_output: bool = typer.Option(False, "--json", help="Print a JSON summary."),
         stack: str = STACK_OPTION):
    """Destroy the lab and everything it made: namespaces, links, firewalls, hosts, processes.

    Example: govctl lab down
    """
    stack = _lab_stack(stack)
    _require_root()
    from infra.lab.cleanup import leftovers, sweep

    from infra.engine import Engine

    _refuse_foreign_state(stack)
    started = time.monotonic()
    engine = Engine(stack)
    try:
        engine.destroy(quiet=json_output)
        swept = sweep()  # anything a crashed run left outside the state
    except GovctlError as exc:
        # A resource that would not go cleanly: remove everything by name, then let the engine
        # forget the (now absent) resources so state and machine agree.
        err_console.print(f"[yellow]destroy stopped ({exc}); sweeping the lab by name[/]")
        swept = sweep()
        engine.destroy(quiet=json_output)
    left = leftovers()
    summary = {"seconds": round(time.monotonic() - started, 1), "swept": swept, "left": left}
    if json_output:
        print_json(summary)
    elif left:
        console.print(f"[red]left behind:[/] {left}")
    else:
        err_console.print(f"lab down in {summary['seconds']} s; nothing left behind", highlight=False)
    if left:
        raise typer.Exit(1)
