#!/usr/bin/env python3
"""One node against a 3-node cluster on this machine: ingest rate, and recovery after kill -9 of a node.

usage: .venv/bin/python bench/es_cluster.py [--lines-per-source 20000] [--sources 9] [--workers 2]
       [--repeat 2] [--heap 512] [--no-node-loss] [--untuned before|after] [--out r.json]

1. Writes the mixed corpus of bench/es_ingest.py (auth, nginx and firewall logs with known attacks).
2. One node (replicas 0, what `govctl es up` runs) in a temp folder: one unmeasured warm-up ingest, then
   --repeat measured ingests with --workers processes, each into a fresh index prefix; then the node stops.
3. The same on a 3-node cluster (`govctl es up --nodes 3`: replicas 1, the client given every node's URL),
   so each document is written twice — the price of surviving a node loss.
   Each node's node.processors and GC threads are its share of the machine's cores (secops/es/node.py);
   --untuned also measures a second cluster whose nodes size them for every core (as before that change),
   before or after the tuned cluster, for a before/after at similar load.
4. On the cluster (unless --no-node-loss): an ingest during which the elected master is killed with SIGKILL
   once 30 % of the lines are in; recorded: seconds until the two survivors answer with a master again, seconds until the
   killed node is restarted and joined, seconds until health is green (every replica allocated again),
   and whether the final count equals the source (0 lost, 0 doubled).
The load average is recorded with every run. Prints JSON and a Markdown table for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from secops.es.node import LocalCluster, LocalNode, machine_cores  # noqa: E402
from secops.es.store import ElasticStore  # noqa: E402
from secops.es.workers import run_workers  # noqa: E402
from bench.es_ingest import corpus  # noqa: E402


def stored_bytes(section: dict, prefix: str) -> int:
    """Primary store size of the events indices of `prefix` (bytes on disk, after a flush and merge)."""
    store = ElasticStore({**section, "index_prefix": prefix}, apply=False)
    try:
        store.client.indices.flush(index=f"{prefix}-*")
        store.client.indices.forcemerge(index=f"{prefix}-events-*", max_num_segments=1)
        stats = store.client.indices.stats(index=f"{prefix}-events-*", metric="store")
        return stats["_all"]["primaries"]["store"]["size_in_bytes"]
    finally:
        store.close()


_TICK = os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(groups: list[int]) -> float:
    """CPU seconds (user + system) used so far by every process in the given process groups (each node's
    launcher starts a session of its own: the launcher JVM and the server JVM)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[2]) in groups:  # fields after the command: state ppid pgrp … utime(12) stime(13)
            total += int(fields[11]) + int(fields[12])
    return total / _TICK


def own_cpu_seconds() -> float:
    """CPU seconds of this process and its reaped children (the ingest workers)."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


def ingest_runs(section: dict, sources: list[dict], work: Path, label: str, workers: int, repeat: int,
                groups: list[int]) -> list[dict]:
    """--repeat measured ingests after a warm-up; with each, the CPU seconds per 1,000 events of the nodes
    (`groups`: their process groups) and of the ingest workers — figures the machine's load barely moves,
    unlike events/s: at full use of the cores, events/s = cores / CPU seconds per event."""
    runs = []
    for i in range(repeat + 1):
        prefix = f"{label}{i}"
        cfg = {"elasticsearch": {**section, "index_prefix": prefix, "spool": str(work / f"spool-{prefix}")},
               "sources": sources}
        load = os.getloadavg()[0]
        nodes_cpu, workers_cpu = group_cpu_seconds(groups), own_cpu_seconds()
        r = run_workers(cfg, workers, once=True, year=2026)
        nodes_cpu, workers_cpu = group_cpu_seconds(groups) - nodes_cpu, own_cpu_seconds() - workers_cpu
        per_k = 1000 / r["events"]
        if i:  # the first run warms the JVMs up
            runs.append({"events": r["events"], "seconds": r["seconds"], "events_per_second": r["events_per_second"],
                         "load_1min_before": round(load, 1),
                         "cpu_seconds_per_1000_events": {"nodes": round(nodes_cpu * per_k, 4),
                                                         "workers": round(workers_cpu * per_k, 4)}})
        print(f"{label} run {i}: {r['events_per_second']} events/s (load {load:.1f}); CPU s per 1,000 events: "
              f"nodes {nodes_cpu * per_k:.4f}, workers {workers_cpu * per_k:.4f}", file=sys.stderr)
    return runs


def wait(predicate, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.2)
    raise TimeoutError


def node_loss(cluster: LocalCluster, section: dict, sources: list[dict], work: Path, lines: int, workers: int) -> dict:
    cfg = {"elasticsearch": {**section, "index_prefix": "loss", "spool": str(work / "spool-loss"),
                             "bulk": {"retry_seconds": 2.0, "probe_seconds": 0.5, "max_in_flight": 2}},
           "sources": sources}
    outcome: dict = {}
    thread = threading.Thread(target=lambda: outcome.update(r=run_workers(cfg, workers, once=True, year=2026)))
    thread.start()
    probe = ElasticStore(cfg["elasticsearch"])

    def count() -> int:
        try:
            probe.refresh()
            return probe.counts()["events"]
        except Exception:
            return 0
    wait(lambda: count() >= 0.3 * lines, 600)
    master = next(m for m in cluster.members() if m["master"])
    os.killpg(master["pid"], signal.SIGKILL)
    killed = time.monotonic()

    def answered() -> bool:
        health = cluster.health(timeout=1)
        return bool(health) and health["number_of_nodes"] == 2
    to_master = wait(answered, 120)
    cluster.start()
    to_joined = time.monotonic() - killed
    thread.join()
    wait(lambda: (cluster.health() or {}).get("status") == "green", 600)
    to_green = time.monotonic() - killed
    probe.refresh()
    counts = probe.counts()
    probe.close()
    stored = counts["events"] + counts["quarantined"]
    return {"killed": master["name"], "seconds_to_new_master": round(to_master, 1),
            "seconds_to_rejoined": round(to_joined, 1), "seconds_to_green": round(to_green, 1),
            "lines": lines, "stored_or_quarantined": stored, "lost": max(lines - stored, 0),
            "doubled": max(stored - lines, 0), "ingest_events_per_second": outcome["r"]["events_per_second"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines-per-source", type=int, default=20_000)
    ap.add_argument("--sources", type=int, default=9)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--heap", type=int, default=512)
    ap.add_argument("--no-node-loss", action="store_true", help="skip step 4 (the kill -9 of a node)")
    ap.add_argument("--untuned", choices=["before", "after"],
                    help="also measure a cluster whose nodes size thread pools and GC for every core, before or "
                         "after the tuned cluster (alternate the order between runs: the machine's load drifts)")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="es-cluster-bench-"))
    os.chmod(work, 0o755)
    files = corpus(work / "logs", a.sources, a.lines_per_source)
    lines = sum(1 for p in files for _ in open(p, "rb"))
    sources = [{"name": f"{p.parent.name}-{p.stem}", "path": str(p)} for p in files]
    node, cluster = LocalNode(work / "one", heap_mb=a.heap), LocalCluster(work / "three", nodes=3, heap_mb=a.heap)
    untuned = LocalCluster(work / "untuned", nodes=3, heap_mb=a.heap, processors=machine_cores())
    before: list[dict] = []
    try:
        started = time.monotonic()
        single_info = node.start()
        single_start = time.monotonic() - started
        single = ingest_runs(single_info.client_settings(), sources, work, "one", a.workers, a.repeat,
                             [single_info.pid])
        on_disk = stored_bytes(single_info.client_settings(), f"one{a.repeat}")
        node.stop()

        def measure_untuned() -> list[dict]:
            runs = ingest_runs(untuned.start().client_settings(), sources, work, "untuned", a.workers, a.repeat,
                               [n.info().pid for n in untuned.nodes()])
            untuned.stop()
            return runs
        if a.untuned == "before":
            before = measure_untuned()
        started = time.monotonic()
        info = cluster.start()
        cluster_start = time.monotonic() - started
        three = ingest_runs(info.client_settings(), sources, work, "three", a.workers, a.repeat,
                            [n.info().pid for n in cluster.nodes()])
        if a.untuned == "after":
            cluster.stop()
            before = measure_untuned()
            if not a.no_node_loss:
                info = cluster.start()
        loss = None if a.no_node_loss else node_loss(cluster, info.client_settings(), sources, work, lines, a.workers)
    finally:
        node.stop()
        cluster.stop()
        untuned.stop()
        shutil.rmtree(work, ignore_errors=True)
    best_one = max(r["events_per_second"] for r in single)
    best_three = max(r["events_per_second"] for r in three)
    out = {"machine": "2 cores, 24 GiB, shared", "heap_mb_per_node": a.heap, "workers": a.workers, "lines": lines,
           "start_seconds": {"one_node": round(single_start, 1), "three_nodes": round(cluster_start, 1)},
           "one_node": single, "three_nodes": three, "best_events_per_second": {"one_node": best_one,
                                                                               "three_nodes": best_three},
           "three_vs_one": round(best_three / best_one, 2),
           "processors_per_node": cluster.processors, "machine_cores": machine_cores(),
           **({"three_nodes_untuned": before, "untuned_vs_one": round(max(r["events_per_second"] for r in before)
                                                                      / best_one, 2)} if before else {}),
           "bytes_per_event_on_disk": round(on_disk / single[-1]["events"], 1), "node_loss": loss, "load_average_at_end": os.getloadavg()}
    print(json.dumps(out, indent=2))
    if a.out:
        a.out.write_text(json.dumps(out, indent=2))
    print(f"\n| target | events/s (best of {a.repeat}) |\n|---|---|\n| 1 node, 0 replicas | {best_one:,} |\n"
          f"| 3 nodes, 1 replica | {best_three:,} ({out['three_vs_one']}×) |", file=sys.stderr)


if __name__ == "__main__":
    main()
