"""secops.model: both stores implement the Store interface that the daemon, detection, the decision
engine, the incidents service, the API and the CLI use."""
from __future__ import annotations

import inspect
import json
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


# ---------------------------------------------------------------- one class per correlation type
# (firing and non-firing cases of each type at their window edges: tests/secops/test_sigma.py)
from secops.detect import CORRELATION_TYPES, Detector, EventCount, Temporal, TemporalOrdered, ValueCount  # noqa: E402

from .test_sigma import BASE, corr, fail, ruleset  # noqa: E402

OK = {"event.outcome": "success", "source.ip": "203.0.113.1"}
CASES = {  # type → (extra condition, referenced rules, events that fire with a split in the middle)
    "event_count": ("  condition: {gte: 3}", "[failure]",
                    [(0, fail()), (10, fail()), (20, fail()), (30, fail()), (200, fail())]),
    "value_count": ("  condition: {gte: 2, field: user.name}", "[failure]",
                    [(0, fail(**{"user.name": "a"})), (10, fail(**{"user.name": "a"})),
                     (20, fail(**{"user.name": "b"})), (30, fail(**{"user.name": "c"}))]),
    "temporal": ("", "[failure, success]", [(0, OK), (10, fail()), (20, fail()), (40, OK)]),
    "temporal_ordered": ("", "[failure, success]", [(0, fail()), (10, fail()), (30, OK), (50, OK)]),
}


def test_each_correlation_type_has_its_class():
    assert CORRELATION_TYPES == {"event_count": EventCount, "value_count": ValueCount, "temporal": Temporal,
                                 "temporal_ordered": TemporalOrdered}


def _feed(detector, events):
    for t, fields in events:
        detector.process({"@timestamp": float(t), "event.dataset": "json", **fields})


@pytest.mark.parametrize("kind", sorted(CASES))
def test_correlation_checkpoint_continues_as_one_run(tmp_path, kind):
    """A detector restored from another's state() mid-stream raises the alerts one uninterrupted run raises."""
    extra, refs, events = CASES[kind]
    rules = ruleset(tmp_path, BASE, corr(kind, extra, rules=refs))
    (loaded,) = rules.correlations
    assert type(loaded) is CORRELATION_TYPES[kind] and loaded.kind == kind

    whole = Detector(rules)
    _feed(whole, events)
    expected = [(a.rule.name, a.group, a.first, a.last, a.count) for a in whole.alerts]
    assert expected, f"the {kind} case must fire"

    half = len(events) // 2
    first = Detector(rules)
    _feed(first, events[:half])
    kept = {id(a): a for a in first.alerts}
    for c in first.rules.correlations:
        kept.update((id(a), a) for a in c.open.values())
    state = json.loads(json.dumps(first.state(lambda a: id(a))))  # as a checkpoint stores it
    second = Detector(rules)
    second.restore(state, kept.get)
    _feed(second, events[half:])
    got = [(a.rule.name, a.group, a.first, a.last, a.count) for a in first.alerts + second.alerts
           if a.rule.name == "c"]
    assert got == [e for e in expected if e[0] == "c"]
