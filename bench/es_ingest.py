#!/usr/bin/env python3
"""Elasticsearch path of SecOps: bulk ingest with 1, 2 and 4 workers, detection latency per rule, and the
embedded (SQLite) path on the same corpus, in one run.

usage: .venv/bin/python bench/es_ingest.py [--lines-per-source 40000] [--sources 12] [--heap 512] [--out r.json]

1. Starts a local node (the distribution of `govctl es up`) in a temp folder, -Xms=-Xmx=--heap MiB.
2. Writes a mixed corpus: --sources files (auth, nginx access and firewall logs of several hosts, with
   the attacks of tests/es/corpus.py).
3. For 1, 2 and 4 workers: a fresh index prefix, `run_workers(once=True)`; wall clock from the first
   worker's start until every batch is acknowledged (fork, normalize, bulk, final flush).
4. Scheduled detection over everything ingested by the last run: seconds per rule search (median of
   3 runs with a fresh detector), and all rules together.
5. Embedded path on the same files: normalize + SQLite store only, and `replay` with detection + store.
Prints JSON and a Markdown table for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from secops.detect import load_rules  # noqa: E402
from secops.es.detect import ScheduledDetection  # noqa: E402
from secops.es.node import LocalNode  # noqa: E402
from secops.es.store import ElasticStore  # noqa: E402
from secops.es.workers import run_workers  # noqa: E402
from secops.normalize import Normalizer, Rejected  # noqa: E402
from secops.replay import read_lines, replay  # noqa: E402
from secops.respond import Allowlist  # noqa: E402
from secops.store import Store  # noqa: E402
from tests.es.corpus import write_corpus  # noqa: E402


def corpus(folder: Path, sources: int, per_source: int) -> list[Path]:
    files: list[Path] = []
    for host in range((sources + 2) // 3):
        files += write_corpus(folder / f"host{host}", background=per_source, seed=100 + host, junk=host == 0)
    return files[:sources]


def embedded(files: list[Path], work: Path) -> dict:
    db = Store(work / "ingest-only.db")
    started = time.perf_counter()
    events = 0
    for path in files:
        n = Normalizer(source=path.name, year=2026)
        good, bad = [], []
        for pos, raw in read_lines(path):
            e = n.normalize(raw)
            if e.__class__ is Rejected:
                bad.append((pos, e.reason, e.detail, raw))
            else:
                good.append((pos, e))
            if len(good) >= 5000:
                db.commit_batch(str(path), good, bad)
                events += len(good)
                good, bad = [], []
        db.commit_batch(str(path), good, bad)
        events += len(good)
    ingest_seconds = time.perf_counter() - started
    db.close()
    db = Store(work / "replay.db")
    started = time.perf_counter()
    result = replay(files, load_rules(), Allowlist([]), year=2026, store=db)
    replay_seconds = time.perf_counter() - started
    db.close()
    return {"ingest_only": {"events": events, "seconds": round(ingest_seconds, 2),
                            "events_per_second": round(events / ingest_seconds)},
            "replay_with_detection": {"lines": result["lines"], "seconds": round(replay_seconds, 2),
                                      "lines_per_second": round(result["lines"] / replay_seconds),
                                      "alerts": len(result["alerts"])}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines-per-source", type=int, default=40_000)
    ap.add_argument("--sources", type=int, default=12)
    ap.add_argument("--heap", type=int, default=512)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="es-bench-"))
    os.chmod(work, 0o755)
    node = LocalNode(work / "node", heap_mb=a.heap)
    try:
        files = corpus(work / "logs", a.sources, a.lines_per_source)
        lines = sum(1 for p in files for _ in open(p, "rb"))
        info = node.start()
        section = info.client_settings()
        runs = []
        for n in [int(x) for x in a.workers.split(",")]:
            # own prefix and spool (read positions live beside it) per run: each run ingests everything
            cfg = {"elasticsearch": {**section, "index_prefix": f"bench{n}", "spool": str(work / f"spool{n}")},
                   "sources": [{"name": f"{p.parent.name}-{p.stem}", "path": str(p)} for p in files]}
            r = run_workers(cfg, n, once=True, year=2026)
            runs.append({"workers": n, "events": r["events"], "seconds": r["seconds"],
                         "events_per_second": r["events_per_second"], "spooled_batches": r["spooled_batches"],
                         "retries": r["retries"]})
            print(f"{n} workers: {r['events']} events in {r['seconds']} s = {r['events_per_second']} events/s",
                  file=sys.stderr)
        store = ElasticStore({**section, "index_prefix": f"bench{runs[-1]['workers']}", "spool": str(work / "spool-d")})
        store.refresh()
        rules = load_rules()
        per_rule: dict[str, list[float]] = {}
        totals = []
        for _ in range(3):
            det = ScheduledDetection(store, rules, name=f"bench-{time.time()}")
            started = time.perf_counter()
            det.run_once()
            totals.append(time.perf_counter() - started)
            for name, samples in det.latency.items():
                per_rule.setdefault(name, []).extend(samples)
        alerts = len(store.alerts())
        store.close()
        detection = {"events_searched": runs[-1]["events"], "all_rules_seconds_median": round(statistics.median(totals), 3),
                     "alerts": alerts,
                     "per_rule_ms_median": {k: round(statistics.median(v) * 1000, 1) for k, v in sorted(per_rule.items())}}
        emb = embedded(files, work)
    finally:
        node.stop()
    out = {"machine": "2 cores, 24 GiB, shared with other engineers' jobs", "elasticsearch": info.version,
           "heap_mb": a.heap, "sources": len(files), "lines": lines, "ingest": runs, "detection": detection,
           "embedded": emb}
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out, indent=2, ensure_ascii=False))
    if a.out:
        a.out.write_text(json.dumps(out, indent=2, ensure_ascii=False))
    print("\n| path | events/s |\n|---|---|", file=sys.stderr)
    for r in runs:
        print(f"| Elasticsearch, {r['workers']} worker(s) | {r['events_per_second']:,} |", file=sys.stderr)
    print(f"| SQLite, normalize + store | {emb['ingest_only']['events_per_second']:,} |", file=sys.stderr)
    print(f"| SQLite, replay with detection + store | {emb['replay_with_detection']['lines_per_second']:,} lines/s |",
          file=sys.stderr)


if __name__ == "__main__":
    main()
