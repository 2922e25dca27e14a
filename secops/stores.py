"""Which store SecOps uses: `store: sqlite` (the embedded default file), `store: elasticsearch` (with
an `elasticsearch:` section: url, credentials, TLS/CA), or — as before — the path of a SQLite file; and
the event-query and time syntax both stores' searches take.

The interface both stores implement is `secops.model.Store`.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from core.paths import STATE

from .model import ADDRESS_FIELDS, Store

DEFAULT_SQLITE = STATE / "secops" / "secops.db"
_FIELD = re.compile(r"^[A-Za-z0-9_@][A-Za-z0-9_.@-]*$")


def store_kind(cfg: dict[str, Any]) -> str:
    return "elasticsearch" if cfg.get("store") == "elasticsearch" else "sqlite"


def sqlite_path(cfg: dict[str, Any]) -> Path | None:
    """The SQLite file of a `store: sqlite` / path config; None when the store is Elasticsearch."""
    where = cfg.get("store")
    if where == "elasticsearch":
        return None
    return DEFAULT_SQLITE if where in (None, "sqlite") else Path(where)


def open_store(cfg: dict[str, Any], *, check: bool = True) -> Store:
    """The configured store. Elasticsearch is checked at once (`check`): an unreachable URL, a refused
    certificate or wrong credentials raise secops.es.client.ClusterError / SettingsError with what to fix."""
    if store_kind(cfg) == "elasticsearch":
        from .es.store import ElasticStore
        return ElasticStore(cfg.get("elasticsearch") or {}, check=check)
    from .store import Store as SqliteStore
    return SqliteStore(sqlite_path(cfg))


def parse_event_query(text: str | None) -> dict[str, str]:
    """`field:value …` (ECS field names; quote values with spaces; an address field takes a CIDR range)
    as the filters both stores' `search_events` take. Example:
    `source.ip:203.0.113.0/24 event.outcome:failure user.name:"li na"`."""
    filters: dict[str, str] = {}
    try:
        tokens = shlex.split(text or "")
    except ValueError as exc:
        raise ValueError(f"event query {text!r}: {exc} (example: source.ip:203.0.113.0/24 event.outcome:failure)") from None
    for token in tokens:
        name, sep, value = token.partition(":")
        if not sep or not value or not _FIELD.match(name):
            raise ValueError(f"event query term {token!r} must be FIELD:VALUE with an ECS field name "
                             "(example: source.ip:203.0.113.0/24 event.outcome:failure)")
        if name in ADDRESS_FIELDS:
            import ipaddress
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ValueError(f"event query term {token!r}: {value!r} is not an address or CIDR range "
                                 "(example: source.ip:203.0.113.0/24)") from None
        filters[name] = value
    return filters


def parse_time(text: str | None, what: str = "time") -> float | None:
    """An ISO 8601 time (`2026-11-01T00:00:00Z`, a date alone is midnight UTC) or epoch seconds, as epoch seconds."""
    import datetime as dt
    if text is None or text == "":
        return None
    try:
        epoch = float(text)
    except ValueError:
        epoch = None
    try:
        if epoch is not None:
            dt.datetime.fromtimestamp(epoch, dt.timezone.utc)  # refuses inf, nan and years past 9999
            return epoch
        stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=dt.timezone.utc)
        return stamp.timestamp()
    except (ValueError, OverflowError, OSError):
        raise ValueError(f"{what} {text!r} is not an ISO 8601 time or epoch seconds between the years 1 and"
                         " 9999 (example: 2026-11-01T08:00:00+08:00)") from None
