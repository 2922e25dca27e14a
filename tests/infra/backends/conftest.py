"""Plans of the cloud backends under Pulumi's mock runtime, each computed once per session on
first use (each plan is its own interpreter: set_mocks is process-global). Plans of the default
topology are in the fast tier; the topology variants are `slow` (a few seconds each)."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from infra.engine import StackDefinition
from infra.plan import PlanError, plan_config
from infra.topology import DEFAULT_TOPOLOGY, load_topology

HERE = Path(__file__).parent / "topologies"
VARIANTS = {
    "default": DEFAULT_TOPOLOGY,
    "extra-zone": HERE / "extra-zone.yaml",
    "ipv6-off": HERE / "ipv6-off.yaml",
    "second-remote": HERE / "second-remote.yaml",
    "invalid": HERE / "invalid-no-remote.yaml",
    # issue 20 (h-lab30): `count: 8` web hosts per center, the 30-host lab's topology
    "hosts-per-role": DEFAULT_TOPOLOGY.with_name("lab-30.yaml"),
}
# What the second remote center (a third region) needs beyond the example stacks' config.
EXTRA_CONFIG = {
    ("alicloud", "second-remote"): {
        "alb_second_zone": {"remote": {"zone": "cn-shanghai-f", "ipv4": "10.13.250.0/24"},
                            "remote2": {"zone": "cn-beijing-g", "ipv4": "10.14.250.0/24"}}},
    ("openstack", "second-remote"): {
        "regions": {"site-a": "RegionOne", "site-b": "RegionTwo", "site-c": "RegionThree"},
        "availability_zones": {"prod": "az-a", "samecity": "az-b", "remote": "nova", "remote2": "nova"}},
}


class Graph:
    """A recorded plan: resources by type and name, and the outputs."""

    def __init__(self, result: dict, topology_path: Path):
        self.resources = result["resources"]
        self.outputs = result["outputs"]
        self.topology = load_topology(topology_path) if topology_path.name != "invalid-no-remote.yaml" else None

    def of(self, suffix: str) -> list[dict]:
        return [r for r in self.resources if r["type"].endswith(suffix)]

    def named(self, name: str, suffix: str = "") -> dict:
        found = [r for r in self.resources if r["name"] == name and r["type"].endswith(suffix)]
        assert len(found) == 1, f"expected one resource {name!r} ({suffix}), found {len(found)}"
        return found[0]

    @staticmethod
    def id(resource: dict) -> str:
        return f"{resource['name']}-id"  # the mock runtime's physical ids


def _config(backend: str, variant: str) -> dict[str, str]:
    config = StackDefinition.load(f"{backend}-example").pulumi_config()
    config["govctl:topology"] = str(VARIANTS[variant])
    for key, value in EXTRA_CONFIG.get((backend, variant), {}).items():
        config[f"govctl:{key}"] = json.dumps(value)
    return config


def _plan(job):
    backend, variant = job
    try:
        return job, plan_config(_config(backend, variant), f"{backend}-{variant}")
    except PlanError as err:
        return job, err


class _Plans(dict):
    """Plans on first use; the two default-topology plans start at once, side by side."""

    def __init__(self):
        super().__init__()
        self._pool = ThreadPoolExecutor(max_workers=2)
        self._pending = {job: self._pool.submit(_plan, job)
                         for job in (("alicloud", "default"), ("openstack", "default"))}

    def __missing__(self, job):
        future = self._pending.pop(job, None)
        self[job] = (future.result() if future else _plan(job))[1]
        return self[job]


@pytest.fixture(scope="session")
def plans():
    return _Plans()


@pytest.fixture(scope="session")
def graph(plans):
    def get(backend: str, variant: str = "default") -> Graph:
        result = plans[(backend, variant)]
        if isinstance(result, PlanError):
            raise AssertionError(f"plan {backend}/{variant} failed: {result}")
        return Graph(result, Path(VARIANTS[variant]))
    return get
