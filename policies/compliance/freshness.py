"""How fresh each evidence layer of a report is: the age limit per layer is data
(policies/catalogs/freshness.yaml, or state/compliance/freshness.yaml when present), validated by
freshness.schema.json. A layer older than its limit is stale; engine.py keeps stale evidence from
showing an item 符合."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from core import paths, yamlfile
from core.errors import BadInput

from .assessment import schema_problems
from .catalog import CATALOGS

SCHEMA = CATALOGS / "freshness.schema.json"
DEFAULTS = CATALOGS / "freshness.yaml"


def default_path() -> Path:
    """The site's own limits when it wrote them, else the bundled defaults."""
    own = paths.STATE / "compliance" / "freshness.yaml"
    return own if own.exists() else DEFAULTS


@dataclass(frozen=True)
class Limits:
    default_days: int
    layers: dict

    def days(self, layer: str) -> int:
        return self.layers.get(layer, self.default_days)


def load(path: Path | None = None) -> Limits:
    path = Path(path) if path else default_path()
    try:
        document = yamlfile.load(path)
    except yamlfile.YamlInputError as exc:
        raise BadInput(f"freshness limits {exc}") from None
    problems = schema_problems(document, SCHEMA)
    if problems:
        raise BadInput(f"freshness limits {path}: " + "; ".join(problems[:5])
                       + " (see policies/catalogs/freshness.yaml for the shape)")
    return Limits(document["default_days"], dict(document.get("layers") or {}))


def layer_ages(layers: dict[str, dict], limits: Limits, today: dt.date | None = None) -> dict[str, dict]:
    """{layer: {collected, age_days, max_age_days, stale}}; a layer without a readable collection time
    is stale (nothing says when it was true)."""
    today = today or dt.datetime.now(dt.timezone.utc).date()
    result = {}
    for name, doc in layers.items():
        limit = limits.days(name)
        try:
            collected = dt.datetime.fromisoformat(str(doc.get("collected"))).astimezone(dt.timezone.utc).date()
        except (TypeError, ValueError):
            result[name] = {"collected": doc.get("collected"), "age_days": None, "max_age_days": limit, "stale": True}
            continue
        age = (today - collected).days
        result[name] = {"collected": doc.get("collected"), "age_days": age, "max_age_days": limit, "stale": age > limit}
    return result
