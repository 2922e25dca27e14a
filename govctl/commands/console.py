"""govctl console: serve the security console (the SecOps API + sign-in + the web pages)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from core.errors import BadInput, GovctlError

from ._secops_store import CONFIG_OPTION

app = typer.Typer(name="console", help=(
    "The web console for security staff (zh-CN first, English beside it), on the same FastAPI application\n"
    "as the incidents API.\n\nExample: govctl console serve --port 8471"), no_args_is_help=True)


@app.command()
def serve(host: str = typer.Option("127.0.0.1", "--host", help="Plain HTTP is for 127.0.0.1 only."),
          port: int = typer.Option(8471, "--port"),
          dry_run: bool = typer.Option(False, "--dry-run", help="Ban changes are recorded but not enforced."),
          config: Optional[Path] = CONFIG_OPTION) -> None:
    """Serve the console on http://127.0.0.1:PORT/ (users: `govctl users add`; API at /api, /api/openapi.json).

    Example: govctl console serve --dry-run
    """
    import uvicorn

    from console.app import DEFAULT_STATIC, create_console_app
    from govctl.commands.bans import _engine
    from govctl.commands.users import users_path
    from core.paths import STATE
    if host not in ("127.0.0.1", "::1", "localhost"):
        raise BadInput(f"--host {host}: the console serves plain HTTP on the loopback address only "
                       "(HTTPS with the platform's CA comes with `govctl up`)")
    if not (DEFAULT_STATIC / "index.html").exists():
        raise GovctlError("the console's pages are not built; run `make setup` (npm ci + vite build)")
    if not users_path().exists():
        raise BadInput("no console users yet; add one: govctl users add NAME --role security")
    decisions, store = _engine(config, dry_run)
    try:
        app_ = create_console_app(store, STATE / "secops" / "api-tokens.yaml", users_path(), decisions)
        uvicorn.run(app_, host=host, port=port, log_level="info", timeout_graceful_shutdown=3)
    finally:
        store.close()
