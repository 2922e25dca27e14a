"""Which store SecOps writes to: `store: sqlite` (the embedded default), `store: elasticsearch` (with an
`elasticsearch:` section: url, credentials, TLS/CA), or — as before — the path of a SQLite file."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from govctl.paths import STATE

DEFAULT_SQLITE = STATE / "secops" / "secops.db"


def store_kind(cfg: dict[str, Any]) -> str:
    return "elasticsearch" if cfg.get("store") == "elasticsearch" else "sqlite"


def open_store(cfg: dict[str, Any], *, check: bool = True):
    """The configured store. Elasticsearch is checked at once (`check`): an unreachable URL, a refused
    certificate or wrong credentials raise secops.es.client.ClusterError / SettingsError with what to fix."""
    if store_kind(cfg) == "elasticsearch":
        from .es.store import ElasticStore
        return ElasticStore(cfg.get("elasticsearch") or {}, check=check)
    from .store import Store
    where = cfg.get("store")
    return Store(DEFAULT_SQLITE if where in (None, "sqlite") else Path(where))
