"""Backends render one topology into resources. Each module exposes `deploy(topology, config)`
returning the stack outputs it exports (one documented shape per backend: docs/stack-outputs.md)."""
from __future__ import annotations

import importlib
from typing import Any

BACKENDS = {
    "tiny": "infra.backends.tiny",
    "lab": "infra.lab.backend",
    "alicloud": "infra.backends.alicloud",
    "openstack": "infra.backends.openstack",
}


def deploy_stack(config) -> dict[str, Any]:
    """Entry of the Pulumi program: validate the topology, then hand it to the backend."""
    import pulumi

    from infra.topology import TopologyError, load_topology

    backend = config.require("backend")
    if backend not in BACKENDS:
        raise pulumi.RunError(f"govctl:backend {backend!r} is not one of {', '.join(BACKENDS)}")
    try:
        topology = load_topology(config.require("topology"))
    except TopologyError as err:
        raise pulumi.RunError(err.render()) from None
    outputs = importlib.import_module(BACKENDS[backend]).deploy(topology, config)
    # What the 等保 policy pack's stack rules read, whatever the backend (docs/clouds.md).
    outputs.setdefault("policy_facts", {}).setdefault("topology", topology.to_dict())
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs
