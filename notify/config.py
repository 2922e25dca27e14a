"""The notification configuration: channels and routes as YAML, checked against config.schema.yaml.

Where it is read from: the path given, else $GOVCTL_NOTIFY_CONFIG, else state/notify/config.yaml,
else the bundled notify/notify.yaml (the console's bell only). Every problem names the file and line
(monitors.specfile, the one schema-checked YAML reader of the monitoring files, reused here).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core import paths
from monitors.durations import parse_duration
from monitors.specfile import load_document

SCHEMA = Path(__file__).with_name("config.schema.yaml")
BUNDLED = Path(__file__).with_name("notify.yaml")
SEVERITIES = ("informational", "low", "medium", "high", "critical")
PUSH_TYPES = ("email", "dingtalk", "wecom", "webhook")
SECRET_FIELDS = {"email": ("password_secret",), "dingtalk": ("token_secret", "sign_secret"),
                 "wecom": ("key_secret",), "webhook": ("signing_secret",), "console": ()}
DEFAULT_RATE = {"count": 10, "per": "1m"}
DEFAULT_RETRIES = {"attempts": 3, "backoff": "1s"}
# URL query parameters that are credentials: they belong in the keystore, never in the file
_CREDENTIAL_QUERY = re.compile(r"[?&](access_token|key|sign|secret|token)=", re.I)


@dataclass(frozen=True)
class Channel:
    name: str
    type: str
    spec: dict
    rate_count: int
    rate_per: float
    attempts: int
    backoff: float
    timeout: float

    @property
    def secrets(self) -> dict[str, str]:
        """field → the name of the sealed secret it refers to."""
        return {f: self.spec[f] for f in SECRET_FIELDS[self.type] if f in self.spec}

    def public(self) -> dict:
        """What `govctl notify channels` shows: the settings and the secrets' names, never a value."""
        return {"name": self.name, "type": self.type, **{k: v for k, v in self.spec.items() if k != "type"},
                "rate_limit": {"count": self.rate_count, "per_seconds": self.rate_per},
                "retries": {"attempts": self.attempts, "backoff_seconds": self.backoff}}


@dataclass(frozen=True)
class Route:
    name: str
    match: dict
    channels: tuple[str, ...]
    quiet: dict | None


@dataclass
class Config:
    source: str
    timezone: ZoneInfo
    dedup_window: float
    console_url: str | None
    channels: dict[str, Channel]
    routes: list[Route] = field(default_factory=list)


def default_path() -> Path:
    if os.environ.get("GOVCTL_NOTIFY_CONFIG"):
        return Path(os.environ["GOVCTL_NOTIFY_CONFIG"])
    configured = paths.STATE / "notify" / "config.yaml"
    return configured if configured.exists() else BUNDLED


def load_config(path: str | Path | None = None, *, text: str | None = None) -> Config:
    """The configuration, or monitors.specfile.SpecError (a BadInput: exit 2) naming file:line."""
    path = Path(path) if path else default_path()
    doc = load_document(path, SCHEMA, text=text)
    data = doc.data
    try:
        zone = ZoneInfo(data.get("timezone", "Asia/Shanghai"))
    except (ZoneInfoNotFoundError, ValueError):
        doc.problem("timezone", f"unknown time zone {data.get('timezone')!r}; use an IANA name such as Asia/Shanghai")
        zone = ZoneInfo("Asia/Shanghai")
    channels = {}
    for name, spec in data["channels"].items():
        if spec["type"] in ("dingtalk", "wecom", "webhook") and _CREDENTIAL_QUERY.search(spec["url"]):
            doc.problem(f"channels.{name}.url", "the URL carries a credential (access_token/key/sign); "
                        "remove it from the URL and seal it with `govctl notify secret set NAME`, then name it in "
                        + " or ".join(f"`{f}`" for f in SECRET_FIELDS[spec["type"]]))
        rate = spec.get("rate_limit", DEFAULT_RATE)
        retries = {**DEFAULT_RETRIES, **spec.get("retries", {})}
        channels[name] = Channel(name, spec["type"], spec, rate["count"], parse_duration(rate["per"]),
                                 retries["attempts"], parse_duration(retries["backoff"]),
                                 parse_duration(spec.get("timeout", "10s")))
    routes = []
    for index, route in enumerate(data["routes"]):
        for position, channel in enumerate(route["channels"]):
            if channel not in channels:
                doc.problem(f"routes[{index}].channels[{position}]",
                            f"no channel named {channel!r}; define it under `channels:` or use one of "
                            f"{', '.join(sorted(channels))}")
        routes.append(Route(route["name"], route.get("match", {}), tuple(route["channels"]), route.get("quiet_hours")))
    doc.raise_if_problems()
    return Config(str(path), zone, parse_duration(data.get("dedup_window", "10m")), data.get("console_url"),
                  channels, routes)


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else SEVERITIES.index("medium")


def as_dict(config: Config) -> dict[str, Any]:
    return {"source": config.source, "timezone": str(config.timezone), "dedup_window_seconds": config.dedup_window,
            "channels": [c.public() for c in config.channels.values()],
            "routes": [{"name": r.name, "match": r.match, "channels": list(r.channels), "quiet_hours": r.quiet}
                       for r in config.routes]}
