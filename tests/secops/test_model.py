"""secops.model: both stores implement the Store interface that the daemon, detection, the decision
engine, the incidents service, the API and the CLI use."""
from __future__ import annotations

import inspect
import typing

import pytest

from secops.es.store import ElasticStore
from secops.model import Store
from secops.store import Store as SqliteStore

PROTOCOL_METHODS = sorted(name for name, member in vars(Store).items()
                          if callable(member) and not name.startswith("_"))


def _parameters(function) -> list[tuple[str, object, object]]:
    """(name, kind, default) of each parameter after self: what a caller depends on."""
    params = list(inspect.signature(function).parameters.values())[1:]
    return [(p.name, p.kind, p.default) for p in params]


def test_the_protocol_lists_what_callers_use():
    # the methods the decision engine, the incidents service and the daemon call, among others
    for name in ("record_decision", "active_bans", "decision_trail", "block_counts", "allowlisted_alerts",
                 "transaction", "commit_batch", "save_alert", "save_detector_state", "open_incident",
                 "search_events", "apply_retention"):
        assert name in PROTOCOL_METHODS
    assert {"kind", "lock"} <= set(typing.get_type_hints(Store))


@pytest.mark.parametrize("implementation", [SqliteStore, ElasticStore], ids=["sqlite", "elasticsearch"])
@pytest.mark.parametrize("method", PROTOCOL_METHODS)
def test_store_implements_protocol_method(implementation, method):
    assert callable(getattr(implementation, method, None)), f"{implementation.__name__} has no {method}()"
    assert _parameters(getattr(implementation, method)) == _parameters(getattr(Store, method))


@pytest.mark.parametrize("implementation,kind", [(SqliteStore, "sqlite"), (ElasticStore, "elasticsearch")])
def test_store_kind(implementation, kind):
    assert implementation.kind == kind


def test_an_open_sqlite_store_is_a_store(tmp_path):
    store = SqliteStore(tmp_path / "s.db")
    try:
        assert isinstance(store, Store)
    finally:
        store.close()


def test_a_store_missing_a_method_is_not_a_store(tmp_path):
    class Partial:
        kind = "partial"
        lock = None

        def close(self) -> None: ...

    assert not isinstance(Partial(), Store)
