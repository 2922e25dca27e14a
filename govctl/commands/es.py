"""govctl es: a local single-node Elasticsearch for SecOps (`store: elasticsearch`)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from core.errors import BadInput, GovctlError

app = typer.Typer(name="es", no_args_is_help=True, help=(
    "Run a local single-node Elasticsearch (the minimal distribution from Maven Central, Java 17, "
    "bound to 127.0.0.1, data under state/elasticsearch) for SecOps' Elasticsearch store.\n\n"
    "Example: govctl es up --port 9200 && govctl es status --json"))

_HOME = typer.Option(None, "--home", help="Node folder (config, data, logs, password); default state/elasticsearch.")


def _node(home: Optional[Path], port: Optional[int] = None, heap_mb: int = 512, security: bool = True):
    from secops.es.node import DEFAULT_HOME, LocalNode
    if port is not None and not 1024 <= port <= 65535:
        raise BadInput(f"--port {port} is out of range; use 1024–65535 (or leave it out for a free port)")
    if heap_mb < 256:
        raise BadInput(f"--heap {heap_mb} MiB is too small for Elasticsearch; use at least 256")
    return LocalNode(Path(home) if home else DEFAULT_HOME, port=port, heap_mb=heap_mb, security=security)


def _describe(info, running: bool) -> dict:
    return {"running": running, "url": info.url if info else None, "version": info.version if info else None,
            "pid": info.pid if info and running else None, "home": str(info.home) if info else None,
            "secops_config": {"store": "elasticsearch", "elasticsearch": info.client_settings()} if info else None}


@app.command()
def up(
    home: Optional[Path] = _HOME,
    port: Optional[int] = typer.Option(None, "--port", help="HTTP port on 127.0.0.1 (default: the previous one, else a free one)."),
    heap: int = typer.Option(512, "--heap", help="JVM heap in MiB (-Xms = -Xmx)."),
    no_security: bool = typer.Option(False, "--no-security", help="No authentication (tests of anonymous access only)."),
    json_out: bool = typer.Option(False, "--json", help="Print the node's details as JSON."),
) -> None:
    """Fetch (once, with Maven), configure and start the node; wait until it answers. Idempotent.

    The node's superuser is `govctl`; its generated password is in <home>/password (0600). The output
    shows the `elasticsearch:` section a secops config needs. Example: govctl es up --port 9200
    """
    from secops.es.node import NodeError
    from govctl.ui import console, err_console, print_json
    node = _node(home, port, heap, not no_security)
    if not json_out:
        err_console.print("starting Elasticsearch (first start fetches the distribution and takes ~30 s)…")
    try:
        info = node.start()
    except NodeError as exc:
        raise GovctlError(str(exc)) from None
    data = _describe(info, True)
    if json_out:
        print_json(data)
        return
    console.print(f"Elasticsearch {info.version} up at {info.url} (pid {info.pid}, data in {info.home / 'data'})",
                  highlight=False)
    if info.user:
        console.print(f"user {info.user}, password in {info.home / 'password'}", highlight=False)


@app.command()
def down(home: Optional[Path] = _HOME,
         json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Stop the node (its data stays). Example: govctl es down"""
    from govctl.ui import console, print_json
    stopped = _node(home).stop()
    if json_out:
        print_json({"stopped": stopped})
    else:
        console.print("stopped" if stopped else "not running")


@app.command()
def status(home: Optional[Path] = _HOME,
           json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Is the node running, where, and its cluster health; exit 1 when it is not running.

    Example: govctl es status --json
    """
    from govctl.ui import console, print_json
    node = _node(home)
    info, running = node.info(), node.running()
    data = _describe(info, running)
    if running:
        from secops.es.client import ClusterError, connect, settings
        try:
            client = connect(settings(info.client_settings()))
            health = client.cluster.health()
            data["health"] = health["status"]
            data["indices"] = len(client.indices.get(index="*", ignore_unavailable=True, allow_no_indices=True))
        except ClusterError as exc:
            data["health"] = f"unreachable: {exc}"
    if json_out:
        print_json(data)
    elif running:
        console.print(f"running: Elasticsearch {info.version} at {info.url}, pid {info.pid}, health "
                      f"{data.get('health')}, {data.get('indices', 0)} indices", highlight=False)
    else:
        console.print("not running" + (f" (node folder {info.home})" if info else ""), highlight=False)
    if not running:
        raise typer.Exit(1)
