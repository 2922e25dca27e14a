"""The cloud backends' real outputs (mock runtime) parse with the typed reader: their portable
parts typed, their own shapes (resource ids for the operator) kept as exported."""
from __future__ import annotations

import pytest

from infra.outputs import StackOutputs


@pytest.mark.parametrize("backend", ["alicloud", "openstack"])
def test_cloud_outputs_parse_with_centers_typed_and_native_parts_kept(graph, backend):
    g = graph(backend)
    out = StackOutputs.from_dict(g.outputs)
    assert out.backend == backend and out.topology == g.topology.name
    assert {name: c.role for name, c in out.centers.items()} == {c.name: c.role for c in g.topology.centers}
    assert all(c.firewall is None and c.namespace is None for c in out.centers.values())
    assert out.policy_facts["topology"]["name"] == g.topology.name
    assert out.hosts == () and out.links == {}
    assert out.to_dict()["hosts"] == g.outputs["hosts"]
