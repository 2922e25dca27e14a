"""Prometheus durations ("90s", "5m", "1h", "3d") to seconds and back."""
from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"(\d+)(ms|s|m|h|d|w)")
PATTERN = r"^((\d+)(ms|s|m|h|d|w))+$"


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration; ValueError names the text when it is not one."""
    parts = _PART.findall(text or "")
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration; write it like 15s, 5m, 1h or 30d")
    return sum(int(n) * _UNITS[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    """The shortest Prometheus spelling: 3600 → 1h, 90 → 90s, 0.5 → 500ms."""
    millis = round(seconds * 1000)
    if millis <= 0:
        raise ValueError(f"a duration must be positive (got {seconds} s)")
    for unit, size in (("d", 86400_000), ("h", 3600_000), ("m", 60_000), ("s", 1000)):
        if millis % size == 0:
            return f"{millis // size}{unit}"
    return f"{millis}ms"
