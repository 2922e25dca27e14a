"""A 3-node cluster on this machine: `govctl es up --nodes 3`, and an ingest that loses a node to kill -9
half-way (the elected master, the harshest case) and still ends with every line stored exactly once."""
from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from secops.es.node import LocalCluster, _get_json, processors_per_node
from secops.es.store import ElasticStore
from secops.es.workers import run_workers
from tests.conftest import run_govctl
from tests.monitors.helpers import wait_for
from tests.secops.es.corpus import write_corpus

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    home = Path(tempfile.mkdtemp(prefix="govctl-es-cluster-"))
    os.chmod(home, 0o755)  # the unprivileged service user must reach the node folders
    proc = run_govctl("es", "up", "--nodes", "3", "--home", str(home), "--heap", "512", "--json", timeout=400)
    assert proc.returncode == 0, f"govctl es up --nodes 3 failed:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    yield {"home": home, **json.loads(proc.stdout)}
    down = run_govctl("es", "down", "--home", str(home), "--json", timeout=180)
    shutil.rmtree(home, ignore_errors=True)
    assert down.returncode == 0, down.stderr


def _status(home: Path) -> dict:
    proc = run_govctl("es", "status", "--home", str(home), "--json", timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_three_nodes_join_and_status_lists_them(cluster):
    status = _status(cluster["home"])
    assert status["size"] == 3 and status["running"] is True
    assert [n["name"] for n in status["nodes"]] == ["govctl-1", "govctl-2", "govctl-3"]
    assert all(n["joined"] and n["running"] for n in status["nodes"])
    assert sum(n["master"] for n in status["nodes"]) == 1
    assert status["health"] in ("green", "yellow")
    settings = status["secops_config"]["elasticsearch"]
    assert settings["replicas"] == 1 and len(settings["url"]) == 3  # the client knows every node
    # each node sizes its thread pools and GC for its share of the machine's cores, as the nodes report it
    share = processors_per_node(3)
    info = LocalCluster(cluster["home"]).info()
    reported = _get_json(f"{info.url}/_nodes/os,jvm,thread_pool?filter_path=nodes.*.os.allocated_processors,"
                         "nodes.*.jvm.input_arguments,nodes.*.thread_pool.write.size", info, 30)["nodes"].values()
    assert [n["os"]["allocated_processors"] for n in reported] == [share] * 3
    assert all(n["thread_pool"]["write"]["size"] == share for n in reported)
    assert all(f"-XX:ParallelGCThreads={share}" in n["jvm"]["input_arguments"] for n in reported)


def test_losing_a_node_mid_ingest_loses_and_doubles_nothing(cluster, tmp_path):
    files = write_corpus(tmp_path / "logs", background=20_000)
    section = dict(cluster["secops_config"]["elasticsearch"])
    section.update(index_prefix=f"t{uuid.uuid4().hex[:10]}", spool=str(tmp_path / "spool"),
                   bulk={"retry_seconds": 2.0, "probe_seconds": 0.5, "max_in_flight": 2})
    cfg = {"elasticsearch": section, "sources": [{"name": p.stem, "path": str(p)} for p in files]}
    home = cluster["home"]
    outcome: dict = {}

    def ingest():
        try:
            outcome["result"] = run_workers(cfg, 3, once=True, year=2026, max_lines=1000)
        except BaseException as exc:  # reported below
            outcome["error"] = exc

    worker = threading.Thread(target=ingest)
    worker.start()
    probe = None
    try:
        probe = ElasticStore(section)

        def indexed() -> int:
            try:
                probe.refresh()
                return probe.counts()["events"]
            except Exception:  # a daily index created a moment ago may not have its shards yet
                return 0
        wait_for(lambda: indexed() >= 3000 or not worker.is_alive(), 180, "the ingest to get going")
        assert worker.is_alive(), f"the ingest ended before the node loss could be staged: {outcome}"
        master = next(n for n in _status(home)["nodes"] if n["master"])
        os.killpg(master["pid"], signal.SIGKILL)  # kill -9 the launcher's whole group: the JVM goes too
        lost_at = time.monotonic()
        wait_for(lambda: not LocalCluster(home).node(master["name"]).running(), 30, f"{master['name']} to die")
        # The survivors elect a master and answer. Health is yellow, or red for a moment when the killed
        # node held the only started copy of a daily index created a second before (its replica still
        # initializing): writes to that index are spooled and replayed once the node is back.
        def two_joined():
            status = _status(home)
            return status if sum(n["joined"] for n in status["nodes"]) == 2 else None
        survivors = wait_for(two_joined, 120, "the two survivors to elect a master and answer")
        assert not next(n for n in survivors["nodes"] if n["name"] == master["name"])["joined"]
        restarted = run_govctl("es", "up", "--home", str(home), "--json", timeout=300)  # idempotent: starts the lost one
        assert restarted.returncode == 0, restarted.stderr[-2000:]
        rejoined = json.loads(restarted.stdout)
        assert all(n["joined"] for n in rejoined["nodes"])
        recovery = time.monotonic() - lost_at
    finally:
        worker.join(timeout=600)
        if probe is not None:
            probe.close()
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    store = ElasticStore(section)
    try:
        wait_for(lambda: (LocalCluster(home).health() or {}).get("status") == "green", 180, "every replica to be allocated again")
        store.refresh()
        counts = store.counts()
        lines = sum(1 for p in files for _ in open(p, "rb"))
        assert result["lines"] == lines
        assert counts["events"] == result["events"]  # 0 lost, 0 doubled: ids are source + position
        assert counts["events"] + sum(counts["quarantine_by_reason"].values()) == lines
        assert counts["quarantine_by_reason"] == {"binary": 1, "unknown_format": 1}
    finally:
        store.close()
    assert recovery < 300
