"""The govctl command line: one Typer group per module in govctl/commands."""
from __future__ import annotations

import importlib
import pkgutil

import typer
from rich.markup import escape
from typer.core import TyperGroup

from . import __version__, commands
from core.errors import GovctlError
from .ui import err_console


class _GovctlGroup(TyperGroup):
    """Turns GovctlError from any command into its message on stderr and its exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except GovctlError as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            ctx.exit(exc.exit_code)


app = typer.Typer(
    cls=_GovctlGroup,
    name="govctl",
    help=(
        "Deploy, harden, watch and defend a two-site-three-center (两地三中心) e-government cloud.\n\n"
        "Start with: govctl up   (the whole platform on the local lab cloud; needs root)\n\n"
        "Exit codes: 0 ok, 1 failure, 2 bad input."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"govctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print govctl's version and exit."),
) -> None:
    """govctl"""


for _module in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
    _imported = importlib.import_module(f"{commands.__name__}.{_module.name}")
    _group = getattr(_imported, "app", None)
    if isinstance(_group, typer.Typer):
        app.add_typer(_group, name=_group.info.name or _module.name.replace("_", "-"))
    # plain top-level commands (govctl up, status, down, logs): (name, function, hidden)
    for _name, _function, _hidden in getattr(_imported, "ROOT_COMMANDS", ()):
        app.command(_name, hidden=_hidden)(_function)


def main() -> None:
    app()
