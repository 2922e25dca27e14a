"""govctl console: serve the security console (the SecOps API + sign-in + the web pages)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from core.errors import BadInput, GovctlError

from ._secops_store import CONFIG_OPTION
from .bans import _STACK as STACK_OPTION
from ._serving import TLS_CERTFILE, TLS_KEYFILE, check_transport
from ._serving import serve as serve_app

# Packages whose routes the console serves beside SecOps' (core.api_extension): each module has EXTENSION.
# The console's pages for auditors and ops read their data through these (issue #19).
EXTENSION_MODULES: tuple[str, ...] = (
    "policies.api",  # compliance reports
    "policies.api_tracking",  # compliance compare, remediation, waivers
    "policies.api_hardening",  # hardening: the host × item matrix, audit and harden --check runs
    "monitors.api",  # ops: topology and availability
    "drills.api",  # drills: history, start, live phases, abort
    "services.api",  # scheduled collection: GET /schedule
)


def console_extensions(stack: Optional[str] = None) -> list:
    import importlib
    modules = [importlib.import_module(name) for name in EXTENSION_MODULES]
    # ops: a module whose routes read the deployed stack has extension(stack), built for the console's --stack
    return [m.extension(stack) if hasattr(m, "extension") else m.EXTENSION for m in modules]


app = typer.Typer(name="console", help=(
    "The web console for security staff (zh-CN first, English beside it), on the same FastAPI application\n"
    "as the incidents API.\n\nExample: govctl console serve --port 8471"), no_args_is_help=True)


@app.command()
def serve(host: str = typer.Option("127.0.0.1", "--host", help="Plain HTTP is for loopback only."),
          port: int = typer.Option(8471, "--port"),
          dry_run: bool = typer.Option(False, "--dry-run", help="Ban changes are recorded but not enforced."),
          tls_certfile: Optional[Path] = TLS_CERTFILE, tls_keyfile: Optional[Path] = TLS_KEYFILE,
          stack: Optional[str] = STACK_OPTION, config: Optional[Path] = CONFIG_OPTION) -> None:
    """Serve the console (sign-in, the pages, and the API at /api, /api/openapi.json): plain HTTP on a
    loopback address, HTTPS anywhere else (`govctl up` passes the platform CA's certificate).
    Users: `govctl users add`.

    Example: govctl console serve --dry-run
    """
    from console.app import DEFAULT_STATIC, create_console_app
    from core.paths import STATE
    from govctl.commands.bans import _engine
    from govctl.commands.users import users_path
    check_transport(host, tls_certfile, tls_keyfile)
    if not (DEFAULT_STATIC / "index.html").exists():
        raise GovctlError("the console's pages are not built; run `make setup` (npm ci + vite build)")
    if not users_path().exists():
        raise BadInput("no console users yet; add one: govctl users add NAME --role security")
    decisions, store = _engine(config, dry_run, stack)
    try:
        serve_app(create_console_app(store, STATE / "secops" / "api-tokens.yaml", users_path(), decisions,
                                     extensions=console_extensions(stack)),
                  host, port, tls_certfile, tls_keyfile)
    finally:
        store.close()
