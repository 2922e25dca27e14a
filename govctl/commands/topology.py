"""govctl topology: validate and show a topology file."""
from __future__ import annotations

from pathlib import Path

import typer

from core.errors import BadInput
from ..ui import console, print_json

app = typer.Typer(
    name="topology",
    help="Validate and show a two-site-three-center topology (YAML).\n\n"
         "Example: govctl topology validate infra/topologies/lab.yaml",
    no_args_is_help=True,
)

FILE = typer.Argument(None, help="Topology YAML; default: the lab topology shipped with govctl.",
                      show_default=False)


def _load(path: Path | None):
    from infra.topology import TopologyError, load_topology

    try:
        return load_topology(path)
    except TopologyError as err:
        raise BadInput(err.render()) from None


@app.command()
def validate(file: Path = FILE,
             json_output: bool = typer.Option(False, "--json", help="Print the result as JSON.")):
    """Check a topology without touching anything; every problem names its line and path.

    Example: govctl topology validate my-city.yaml
    """
    from infra.topology import TopologyError, load_topology

    try:
        topo = load_topology(file)
    except TopologyError as err:
        if json_output:
            print_json({"valid": False, "file": err.source, "problems": [
                {"line": p.line, "path": p.path, "message": p.message} for p in err.problems]})
            raise typer.Exit(2)
        raise BadInput(err.render()) from None
    if json_output:
        print_json({"valid": True, "file": topo.source, "centers": len(topo.centers),
                    "hosts": len(topo.hosts)})
    else:
        console.print(f"[green]ok[/] {topo.source}: {len(topo.centers)} centers, "
                      f"{sum(len(c.zones) for c in topo.centers)} zones, {len(topo.hosts)} hosts, "
                      f"{len(topo.links)} links (等保 level {topo.level})", highlight=False)


@app.command()
def show(file: Path = FILE,
         json_output: bool = typer.Option(False, "--json", help="Print the whole model as JSON.")):
    """Print the topology as a tree: sites → centers → zones → subnets → hosts.

    Example: govctl topology show --json | jq '.centers[].name'
    """
    from rich.tree import Tree

    from infra.topology import ROLE_LABELS, ZONE_LABELS

    topo = _load(file)
    if json_output:
        print_json(topo.to_dict())
        return
    root = Tree(f"[bold]{topo.name}[/] — 等保 level {topo.level}"
                + (f" — {topo.description}" if topo.description else ""))
    for site in topo.sites:
        site_node = root.add(f"[bold cyan]site {site.name}[/] ({site.city})")
        for center in (c for c in topo.centers if c.site == site.name):
            c_node = site_node.add(f"[bold]{center.name}[/] {ROLE_LABELS[center.role]} "
                                   f"{center.ipv4} {center.ipv6 or ''}")
            for zone in center.zones:
                nets = ", ".join(f"{s.ipv4}" + (f" {s.ipv6}" if s.ipv6 else "") for s in zone.subnets)
                z_node = c_node.add(f"{zone.name}: {ZONE_LABELS[zone.kind]} [dim]{nets}[/]")
                for host in (h for h in center.hosts if h.zone == zone.name):
                    z_node.add(f"[green]{host.fqdn}[/] {host.ipv4} {host.ipv6 or ''} "
                               f"[dim]{','.join(host.roles)}[/]")
    links = root.add("[bold]links[/]")
    for link in topology_links(topo):
        links.add(link)
    repl = root.add("[bold]replication[/]")
    for r in topo.replication:
        repl.add(f"{r.name}: {r.source} → {r.target} ({r.mode})")
    if topo.service:
        root.add(f"[bold]service[/] {topo.service.name} at {topo.service.ipv4}:{topo.service.port}")
    console.print(root, highlight=False)


def topology_links(topo) -> list[str]:
    return [f"{l.name}: {l.between[0]} ⇄ {l.between[1]} ({l.role}) {l.ipv4}" for l in topo.links]
