"""The smallest stack that still exercises the real engine: one Python dynamic resource.

It writes a marker file describing the topology under state/tiny/, so `govctl infra preview|up`
can be tried (and tested) end to end in seconds without root.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult


class _MarkerProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        path = Path(props["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(props["content"], ensure_ascii=False, sort_keys=True))
        return CreateResult(id_=str(path), outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in ("path", "content") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=["path"] if "path" in changed else [],
                          delete_before_replace=True)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        Path(news["path"]).write_text(json.dumps(news["content"], ensure_ascii=False, sort_keys=True))
        return UpdateResult(outs=news)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        Path(props["path"]).unlink(missing_ok=True)


class Marker(Resource):
    path: pulumi.Output[str]

    def __init__(self, name: str, path: str, content: dict[str, Any],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(_MarkerProvider(), name, {"path": path, "content": content}, opts)


def deploy(topology, config) -> dict[str, Any]:
    from core.paths import STATE

    summary = {
        "topology": topology.name,
        "centers": {c.name: c.role for c in topology.centers},
        "hosts": len(topology.hosts),
    }
    marker = Marker("topology-marker", str(STATE / "tiny" / f"{pulumi.get_stack()}.json"), summary)
    return {"marker": marker.path, "centers": summary["centers"]}
