"""govctl es: a local Elasticsearch — one node or a cluster of N — for SecOps (`store: elasticsearch`)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from core.errors import BadInput, GovctlError

app = typer.Typer(name="es", no_args_is_help=True, help=(
    "Run a local Elasticsearch (the minimal distribution from Maven Central, Java 17, bound to 127.0.0.1, "
    "data under state/elasticsearch) for SecOps' Elasticsearch store: one node, or with --nodes N a "
    "cluster of N nodes whose indices keep one replica, so it survives the loss of a node.\n\n"
    "Example: govctl es up --port 9200 && govctl es status --json\n\n"
    "Example: govctl es up --nodes 3 --home /srv/es && govctl es status --home /srv/es --json"))

_HOME = typer.Option(None, "--home", help="Node folder (config, data, logs, password); default state/elasticsearch.")


def _node(home: Optional[Path], port: Optional[int] = None, heap_mb: int = 512, security: bool = True,
          nodes: Optional[int] = None):
    """The single node or the cluster in `home`; `nodes` asks for a cluster of that size."""
    from secops.es.node import DEFAULT_HOME, MAX_NODES, LocalCluster, LocalNode, NodeError, open_local
    if port is not None and not 1024 <= port <= 65535:
        raise BadInput(f"--port {port} is out of range; use 1024–65535 (or leave it out for a free port)")
    if heap_mb < 256:
        raise BadInput(f"--heap {heap_mb} MiB is too small for Elasticsearch; use at least 256")
    folder = Path(home) if home else DEFAULT_HOME
    existing = open_local(folder)
    if nodes is None or nodes == 1:
        if nodes == 1 and isinstance(existing, LocalCluster):
            raise BadInput(f"{folder} holds a {existing.size}-node cluster; choose another --home for one node")
        if isinstance(existing, LocalCluster):
            existing.heap_mb, existing.security = heap_mb, security
            return existing
        return LocalNode(folder, port=port, heap_mb=heap_mb, security=security)
    if not 2 <= nodes <= MAX_NODES:
        raise BadInput(f"--nodes {nodes}: a local cluster has 2 to {MAX_NODES} nodes (1 for a single node)")
    if port is not None:
        raise BadInput("--port applies to a single node; a cluster's nodes choose free ports once and keep them")
    if isinstance(existing, LocalNode) and (existing.info() is not None or (folder / "data").exists()):
        raise BadInput(f"{folder} holds a single node's data; choose another --home for a {nodes}-node cluster")
    try:
        return LocalCluster(folder, nodes=nodes, heap_mb=heap_mb, security=security)
    except NodeError as exc:
        raise BadInput(str(exc)) from None


def _describe(info, running: bool) -> dict:
    return {"running": running, "url": info.url if info else None, "version": info.version if info else None,
            "pid": info.pid if info and running else None, "home": str(info.home) if info else None,
            "secops_config": {"store": "elasticsearch", "elasticsearch": info.client_settings()} if info else None}


def _describe_cluster(cluster, running: bool) -> dict:
    """A cluster's status: every node (running, joined, master) and the cluster's health."""
    info = cluster.info()
    data = _describe(info, running)
    data.update(nodes=cluster.members(info) if info else [], size=cluster.size, urls=info.urls if info else [])
    health = cluster.health(info) if running else None
    data["health"] = health["status"] if health else ("unreachable" if running else None)
    if health:
        data.update(active_shards=health["active_shards"], unassigned_shards=health["unassigned_shards"],
                    relocating_shards=health["relocating_shards"])
    return data


@app.command()
def up(
    home: Optional[Path] = _HOME,
    port: Optional[int] = typer.Option(None, "--port", help="HTTP port on 127.0.0.1 (default: the previous one, else a free one)."),
    nodes: Optional[int] = typer.Option(None, "--nodes", help="A cluster of this many nodes (2–5) in --home; "
                                        "default: what the folder holds, else one node."),
    heap: int = typer.Option(512, "--heap", help="JVM heap in MiB per node (-Xms = -Xmx); 3 nodes × 512 MiB fit "
                             "this 24 GiB machine beside the lab."),
    no_security: bool = typer.Option(False, "--no-security", help="No authentication (tests of anonymous access only)."),
    json_out: bool = typer.Option(False, "--json", help="Print the node's details as JSON."),
) -> None:
    """Fetch (once, with Maven), configure and start the node or the cluster; wait until it answers
    (a cluster: until every node has joined). Idempotent: starts only what is not running.

    The superuser is `govctl`; its generated password is in <home>/password (0600; a cluster:
    <home>/node-1/password). The output shows the `elasticsearch:` section a secops config needs (a
    cluster's lists every node's URL, so the client fails over, and asks for one replica).
    Example: govctl es up --port 9200;  govctl es up --nodes 3 --home /srv/es
    """
    from secops.es.node import LocalCluster, NodeError
    from govctl.ui import console, err_console, print_json
    node = _node(home, port, heap, not no_security, nodes)
    cluster = isinstance(node, LocalCluster)
    if not json_out:
        err_console.print(f"starting Elasticsearch{f' ({node.size} nodes)' if cluster else ''} "
                          "(first start fetches the distribution and takes ~30 s)…")
    try:
        info = node.start()
    except NodeError as exc:
        raise GovctlError(str(exc)) from None
    data = _describe_cluster(node, True) if cluster else _describe(info, True)
    if json_out:
        print_json(data)
        return
    if cluster:
        console.print(f"Elasticsearch {info.version}: {node.size}-node cluster up, health {data['health']}, "
                      f"nodes at {', '.join(info.urls)} (data in {info.home}/node-*/data)", highlight=False)
    else:
        console.print(f"Elasticsearch {info.version} up at {info.url} (pid {info.pid}, data in {info.home / 'data'})",
                      highlight=False)
    if info.user:
        console.print(f"user {info.user}, password in {info.client_settings()['password_file']}", highlight=False)


@app.command()
def down(home: Optional[Path] = _HOME,
         json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Stop the node, or every node of the cluster (the data stays). Example: govctl es down"""
    from govctl.ui import console, print_json
    stopped = _node(home).stop()
    if json_out:
        print_json({"stopped": stopped})
    else:
        console.print("stopped" if stopped else "not running")


@app.command()
def status(home: Optional[Path] = _HOME,
           json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Is the node (or the cluster) running, where, and its health; a cluster lists every node: running,
    joined, master. Exit 1 when nothing runs; a cluster with a node missing is health yellow (or red
    when data is unavailable), exit 0.

    Example: govctl es status --json
    """
    from secops.es.node import LocalCluster
    from govctl.ui import console, print_json
    node = _node(home)
    info, running = node.info(), node.running()
    if isinstance(node, LocalCluster):
        data = _describe_cluster(node, running)
        if json_out:
            print_json(data)
        elif running:
            joined = sum(1 for m in data["nodes"] if m["joined"])
            console.print(f"running: Elasticsearch {info.version}, {joined} of {node.size} nodes joined, health "
                          f"{data['health']}", highlight=False)
            for m in data["nodes"]:
                state = "joined" if m["joined"] else ("running, not joined" if m["running"] else "down")
                console.print(f"  {m['name']}  {m['url']}  {state}{'  (master)' if m['master'] else ''}",
                              highlight=False)
        else:
            console.print(f"not running (cluster folder {node.home})", highlight=False)
        if not running:
            raise typer.Exit(1)
        return
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
