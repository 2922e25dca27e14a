"""govctl infra: drive the real Pulumi engine over a stack, offline."""
from __future__ import annotations

import time

import typer

from ..ui import console, err_console, print_json
from ._trail import trailed

app = typer.Typer(
    name="infra",
    help="Preview, deploy, refresh and destroy a stack with the Pulumi engine (offline: local state, "
         "passphrase secrets). Stacks are defined in infra/stacks/<name>.yaml.\n\n"
         "Example: govctl infra preview --stack tiny",
    no_args_is_help=True,
)

STACK = typer.Option(..., "--stack", "-s", help="Stack name (infra/stacks/<name>.yaml).")
JSON = typer.Option(False, "--json", help="Print a JSON summary on stdout (Pulumi's own output "
                                          "goes to stderr).")
POLICY = typer.Option(None, "--policy-pack", help="Run a CrossGuard policy pack (folder) as well.")


def _summary(engine, op: str, started: float) -> dict:
    update = engine.last_update()
    return {"stack": engine.stack, "operation": op, "result": update.get("result"),
            "resourceChanges": update.get("resourceChanges", {}),
            "seconds": round(time.monotonic() - started, 2), "outputs": engine.outputs()}


def _run(op: str, stack: str, json_output: bool, policy_pack: str | None = None) -> None:
    from infra.engine import Engine

    engine = Engine(stack)
    extra = ["--policy-pack", policy_pack] if policy_pack else []
    started = time.monotonic()
    if op == "preview" and json_output:
        print_json(engine.preview_json(extra))
        return
    getattr(engine, op)(extra, quiet=json_output)
    if json_output:
        print_json(_summary(engine, op, started))
    else:
        err_console.print(f"{op} of stack {stack!r} finished in {time.monotonic() - started:.1f} s",
                          highlight=False)


@app.command()
def preview(stack: str = STACK, json_output: bool = JSON, policy_pack: str = POLICY):
    """Show what `up` would change, touching nothing.

    Example: govctl infra preview --stack lab --policy-pack policies/djcp_pack
    """
    _run("preview", stack, json_output, policy_pack)


@app.command()
@trailed("infra.up", lambda a: a["stack"], ("policy_pack",))
def up(stack: str = STACK, json_output: bool = JSON, policy_pack: str = POLICY):
    """Create or update the stack's resources (preview, then apply).

    Example: govctl infra up --stack tiny --json
    """
    _run("up", stack, json_output, policy_pack)


@app.command()
@trailed("infra.refresh", lambda a: a["stack"])
def refresh(stack: str = STACK, json_output: bool = JSON):
    """Read the real state of every resource into the stack (drift shows up here).

    Example: govctl infra refresh --stack lab
    """
    _run("refresh", stack, json_output)


@app.command()
@trailed("infra.destroy", lambda a: a["stack"])
def destroy(stack: str = STACK, json_output: bool = JSON):
    """Delete every resource of the stack.

    Example: govctl infra destroy --stack tiny
    """
    _run("destroy", stack, json_output)


@app.command("plan")
def plan_(stack: str = STACK, json_output: bool = typer.Option(False, "--json", help="Print the graph as JSON.")):
    """The resource graph a stack would create, offline, under Pulumi's mock runtime (for review
    in air-gapped change windows): types, names, key properties, which center.

    Example: govctl infra plan --stack alicloud-example --json
    """
    from .infra_plan_cmd import plan

    plan(stack, json_output)


@app.command()
def outputs(stack: str = STACK,
            show_secrets: bool = typer.Option(False, "--show-secrets", help="Reveal secret outputs.")):
    """Print the stack outputs as JSON (what other parts of govctl read).

    Example: govctl infra outputs --stack lab
    """
    from infra.engine import Engine

    print_json(Engine(stack).outputs(show_secrets=show_secrets))


__all__ = ["app", "console"]
