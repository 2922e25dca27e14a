"""The bounds on SecOps inputs, read from schemas/limits.yaml (the config schema refers to the same file).

Each definition becomes a `Bound`: the API's pydantic fields and the CLI's options take their figures
from here, so a limit changes in one place.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from core import yamlfile

LIMITS_SCHEMA = Path(__file__).parent / "schemas" / "limits.yaml"


@dataclass(frozen=True)
class Bound:
    name: str
    description: str
    minimum: float | None = None  # numbers
    maximum: float | None = None
    min_length: int | None = None  # strings
    max_length: int | None = None

    def check(self, value, what: str = ""):
        """`value` if within the bound (a text's length, or a number), else ValueError naming `what`."""
        return self.check_text(value, what) if self.max_length is not None else self.check_number(value, what)

    def check_number(self, value: float, what: str) -> float:
        """`value` if finite and within the bound, else ValueError naming `what` and the range."""
        finite = isinstance(value, int) or math.isfinite(value)  # an int of any size compares exactly
        if not finite or not self.minimum <= value <= self.maximum:
            raise ValueError(f"{what} {value!r} is out of range: {self.description}".lstrip())
        return value

    def check_text(self, value: str, what: str) -> str:
        """`value` if its length is within the bound (blank counts as empty), else ValueError naming `what`."""
        if len(value.strip()) < (self.min_length or 0):
            raise ValueError(f"{what} is blank: {self.description}".lstrip())
        if len(value) > self.max_length:
            raise ValueError(f"{what} has {len(value)} characters: {self.description}".lstrip())
        return value


def _load() -> dict[str, Bound]:
    defs = yamlfile.load(LIMITS_SCHEMA)["$defs"]
    return {name: Bound(name, d["description"], d.get("minimum"), d.get("maximum"), d.get("minLength"),
                        d.get("maxLength")) for name, d in defs.items()}


_BOUNDS = _load()
BAN_TTL = _BOUNDS["ban_ttl"]
RECORD_ID = _BOUNDS["record_id"]
LIST_LIMIT = _BOUNDS["list_limit"]
REASON = _BOUNDS["reason"]
NOTE = _BOUNDS["note"]
ASSIGNEE = _BOUNDS["assignee"]
EVENT_QUERY = _BOUNDS["event_query"]
TIME_TEXT = _BOUNDS["time_text"]
REQUEST_BODY = _BOUNDS["request_body"]
# the incident search and the overview (console, issue #17)
LIST_OFFSET = _BOUNDS["list_offset"]
INCIDENT_LABEL = _BOUNDS["incident_label"]
TITLE_QUERY = _BOUNDS["title_query"]
INCIDENT_SOURCE = _BOUNDS["incident_source"]
OVERVIEW_DAYS = _BOUNDS["overview_days"]
TIME_ZONE = _BOUNDS["time_zone"]
