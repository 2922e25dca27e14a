"""Drill plans: YAML files in drills/plans/, validated (schema, actions, arguments, names in the
stack) before anything is touched."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema

from core import yamlfile

from .actions import check_step

if TYPE_CHECKING:
    from infra.outputs import StackOutputs

PLANS_DIR = Path(__file__).with_name("plans")
SCHEMA = Path(__file__).with_name("plan.schema.yaml")
# Recovery does not wait for the page: detection is measured from the alert's own start time.
PHASES = ("preflight", "fault", "recover", "detect", "verify", "failback")


class PlanError(ValueError):
    pass


@dataclass(frozen=True)
class Plan:
    id: str
    name: dict
    description: dict
    targets: dict
    expected_alerts: tuple[str, ...]
    steps: dict[str, list[dict]]
    path: Path


@lru_cache(maxsize=1)
def _schema() -> dict:
    return yamlfile.load(SCHEMA)


def load_plan(path: Path, names: dict[str, set[str]] | None = None) -> Plan:
    """Read and check a plan; `names` (centers, links, sites of the stack) checks references."""
    try:
        doc: Any = yamlfile.load(path)
    except yamlfile.YamlInputError as exc:
        raise PlanError(str(exc)) from None
    problems = [f"{'.'.join(map(str, e.absolute_path)) or '(plan)'}: {e.message}"
                for e in jsonschema.Draft202012Validator(_schema()).iter_errors(doc)]
    if not problems:
        for phase in PHASES:
            for i, step in enumerate(doc["steps"].get(phase, [])):
                problems += [f"steps.{phase}[{i}]: {p}" for p in check_step(step, names or {})]
    if problems:
        raise PlanError(f"{path}: " + "; ".join(problems))
    return Plan(doc["id"], doc["name"], doc["description"], doc["targets"],
                tuple(doc.get("expected_alerts", ())),
                {phase: doc["steps"].get(phase, []) for phase in PHASES}, path)


def shipped_plans() -> list[Path]:
    return sorted(PLANS_DIR.glob("*.yaml"))


def find_plan(scenario: str) -> Path:
    path = Path(scenario)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    candidate = PLANS_DIR / f"{scenario}.yaml"
    if not candidate.exists():
        known = ", ".join(p.stem for p in shipped_plans())
        raise PlanError(f"no drill scenario {scenario!r}; shipped scenarios: {known} "
                        "(or give the path of a plan file)")
    return candidate


def stack_names(outputs: StackOutputs) -> dict[str, set[str]]:
    return {"center": set(outputs.centers), "link": set(outputs.links),
            "site": {c.site for c in outputs.centers.values() if c.site}}
