"""Stop the node in the middle of an ingest, start it again: every line is stored or quarantined once."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from secops.es.node import LocalNode
from secops.es.store import ElasticStore
from secops.es.workers import ingest_sources
from tests.secops.es.corpus import write_corpus

pytestmark = pytest.mark.slow


def _spooled(folder: Path) -> int:
    return sum(1 for f in folder.glob("*.jsonl") for line in open(f) if line.strip()) if folder.exists() else 0


def _events(store: ElasticStore) -> int:
    from elasticsearch import ApiError
    try:
        store.refresh()  # count what is indexed now, not what the 5 s refresh has made visible
        return store.counts()["events"]
    except ApiError as exc:  # a daily index created a moment ago may not have its shard started yet
        if exc.meta.status != 503:
            raise
        return 0


def test_outage_mid_ingest_spools_then_catches_up_without_loss_or_duplicates(es_node, es_section, tmp_path):
    files = write_corpus(tmp_path / "logs", background=30_000)
    sources = [{"name": p.stem, "path": str(p)} for p in files]
    node = LocalNode(es_node["home"])
    spool = Path(es_section["spool"])
    outcome: dict = {}

    def ingest():
        try:
            outcome["result"] = ingest_sources(es_section, sources, once=True, year=2026, max_lines=1000,
                                               catch_up_seconds=240)
        except BaseException as exc:  # reported below
            outcome["error"] = exc

    store = ElasticStore(es_section)  # applies the templates before the ingest starts
    store.close()
    worker = threading.Thread(target=ingest)
    worker.start()
    try:
        deadline = time.monotonic() + 120
        probe = ElasticStore(es_section)
        while _events(probe) < 2000:
            assert time.monotonic() < deadline and worker.is_alive(), f"ingest did not get going: {outcome}"
            time.sleep(0.2)
        probe.close()
        assert node.stop(), "the node was not running"
        deadline = time.monotonic() + 120
        while _spooled(spool) == 0:
            assert time.monotonic() < deadline, "nothing was spooled while the node was down"
            time.sleep(0.2)
        time.sleep(2)  # let more batches pile up on disk
        spooled_while_down = _spooled(spool)
        node.start()
    finally:
        worker.join(timeout=300)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert spooled_while_down >= 1
    assert result["spooled_batches"] >= spooled_while_down and result["replayed_batches"] >= spooled_while_down
    assert _spooled(spool) == 0  # the spool is empty once caught up

    store = ElasticStore(es_section)
    try:
        store.refresh()
        counts = store.counts()
        assert counts["events"] == result["events"]  # no loss, no duplicates (ids are source + position)
        assert counts["quarantine_by_reason"] == {"binary": 1, "unknown_format": 1}
        assert result["lines"] == sum(1 for p in files for _ in open(p, "rb"))
        assert result["indexed"] + result["duplicates"] == result["events"]  # replayed copies answer 409
    finally:
        store.close()
