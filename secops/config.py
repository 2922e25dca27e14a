"""secops configuration: YAML validated against schemas/config.schema.yaml, merged over defaults.

Validation only; secops.wiring turns a validated configuration into the engine's parts."""
from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

from core import yamlfile
from core.paths import ROOT, STATE

SCHEMA = Path(__file__).parent / "schemas" / "config.schema.yaml"
DEFAULT_CONFIG_PATH = STATE / "secops" / "config.yaml"

DEFAULTS: dict[str, Any] = {
    "store": str(STATE / "secops" / "secops.db"),
    "retention_days": 180,
    "incident_retention_days": 365,
    "topology": str(ROOT / "infra" / "topologies" / "lab.yaml"),
    "stack": None,  # a deployed stack whose firewalls, allowlist and host logs to use (secops/stack.py)
    "allowlist": [],
    "ops_networks": [],
    "rules": [],
    "bundled_rules": True,
    "pipeline": None,  # None: the bundled ECS mapping
    "aggregation_seconds": 300,
    "response": {"ttl": 600, "escalation": 4, "max_ttl": 7 * 86400, "dry_run": False,
                 # range bans and forgetting escalation (secops/respond.py)
                 "quiet_period": 7 * 86400, "min_prefix": {"ipv4": 16, "ipv6": 48},
                 "range_bans": {"enabled": False, "addresses": 5, "window": 600, "prefix_v4": 24, "prefix_v6": 64,
                                "ttl": 3600}},
    "enforcer": {"kind": "nftables", "netns": None, "family": "inet", "table": "govctl", "set": "blocklist",
                 "set6": None, "manage": True},
    "sources": [],
    "syslog": {"udp": None, "tcp": None, "spool": str(STATE / "secops" / "spool"), "encoding": "auto"},
    "batch": {"lines": 2000, "seconds": 0.05, "inotify": True},  # wake on a write; `false` polls every `seconds`
    "incidents": {"window_seconds": 3600},
}


class ConfigError(ValueError):
    pass


class Invalid(ValueError):
    """A document does not match its schema; `problems` are lines naming each setting and what it expects."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@functools.lru_cache(maxsize=None)
def _validator(schema_path: Path):
    """A validator for a YAML JSON-schema file; `$ref`s to other files resolve relative to it
    (the secops schema refers to secops/es/config.schema.yaml for its `elasticsearch:` section and to
    schemas/limits.yaml for its bounds). A `number` is finite: .inf and .nan are refused."""
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    def retrieve(uri: str):
        target = (schema_path.parent / uri).resolve()
        return Resource.from_contents(yamlfile.load(target), default_specification=DRAFT202012)

    schema = yamlfile.load(schema_path)
    return _finite_validator_class()(schema, registry=Registry(retrieve=retrieve))


def _finite_number(checker, instance) -> bool:
    """JSON has no infinity or NaN, but YAML does (.inf, .nan); a setting is never either."""
    import math
    return checker.is_type(instance, "integer") or (isinstance(instance, float) and math.isfinite(instance))


def _finite_validator_class():
    import jsonschema
    base = jsonschema.Draft202012Validator
    return jsonschema.validators.extend(base, type_checker=base.TYPE_CHECKER.redefine("number", _finite_number))


def validate_and_merge(doc: dict[str, Any], schema_path: Path, defaults: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`doc` validated against the schema at `schema_path`, merged over a deep copy of `defaults` (nested
    sections key by key). Raises Invalid with one line per problem: `prefix.path: message (expected: …)`."""
    errors = sorted(_validator(Path(schema_path)).iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        raise Invalid([f"  {prefix}{'.'.join(str(x) for x in e.path) or '(top)'}: {e.message}"
                       + (f" (expected: {e.schema['description']})" if isinstance(e.schema, dict)
                          and e.schema.get("description") else "") for e in errors])
    return _merge(copy.deepcopy(defaults), doc)


def _merge(base: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    for key, value in doc.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def load_config(path: str | Path | None = None) -> dict[str, Any]:
    """The configuration at `path` (or the default file if it exists) over the defaults."""
    cfg = copy.deepcopy(DEFAULTS)
    p = Path(path) if path else DEFAULT_CONFIG_PATH
    if path is None and not p.exists():
        return cfg
    try:
        doc = yamlfile.load(p, allow_empty=True) or {}
    except yamlfile.YamlInputError as exc:
        raise ConfigError(f"secops config {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"secops config {p} must be a mapping of settings (example: `store: sqlite`)")
    try:
        return validate_and_merge(doc, SCHEMA, DEFAULTS)
    except Invalid as exc:
        raise ConfigError(f"secops config {p} is invalid:\n{exc}") from None
