#!/usr/bin/env python3
"""Where the time of one Elasticsearch ingest worker goes: read + normalize, building the bulk body
(ECS documents + JSON), and Elasticsearch taking the bulk requests — each phase timed alone, in one process.

usage: .venv/bin/python bench/es_profile.py --url URL [--username U --password-file F] [--lines-per-source 40000]
       [--sources 3] [--batch 5000]

Phase 1 normalizes every line (as a worker does); phase 2 turns the events into bulk bodies with the
store's own code (ElasticStore._operations + the writer's framing); phase 3 sends those prepared bodies
with the writer's in-flight bound (max_in_flight 2), so its figure is the cluster's ingest rate alone.
Prints JSON: seconds and events/s of each phase, and CPU seconds of this process.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.es_ingest import corpus  # noqa: E402
from secops.es.bulk import Batch  # noqa: E402
from secops.es.store import ElasticStore  # noqa: E402
from secops.normalize import Normalizer, Rejected  # noqa: E402
from secops.replay import read_lines  # noqa: E402


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--username")
    ap.add_argument("--password-file")
    ap.add_argument("--lines-per-source", type=int, default=40_000)
    ap.add_argument("--sources", type=int, default=3)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--settings", default="{}", help="JSON index settings over the events template's (experiments)")
    ap.add_argument("--in-flight", type=int, default=2)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="es-profile-"))
    files = corpus(work / "logs", a.sources, a.lines_per_source)
    section = {"url": a.url, "index_prefix": f"prof{int(time.time())}", "spool": str(work / "spool")}
    if a.username:
        section.update(username=a.username, password_file=a.password_file)
    store = ElasticStore(section, apply=False)
    store.layout.templates["events"].setdefault("settings", {}).update(json.loads(a.settings))
    store.apply_templates()
    out: dict = {"lines": 0}

    t, c = time.perf_counter(), cpu()
    batches: list[Batch] = []
    for path in files:
        n = Normalizer(source=path.name, year=2026)
        good: list = []
        for pos, raw in read_lines(path):
            out["lines"] += 1
            e = n.normalize(raw)
            if e.__class__ is not Rejected:
                good.append((pos, e))
            if len(good) >= a.batch:
                batches.append(Batch(str(path), good, [], None, None))
                good = []
        if good:
            batches.append(Batch(str(path), good, [], None, None))
    events = sum(len(b.events) for b in batches)
    out["normalize"] = {"seconds": round(time.perf_counter() - t, 2), "cpu": round(cpu() - c, 2)}

    t, c = time.perf_counter(), cpu()
    bodies = [store.writer.body(store._operations(b)) for b in batches]
    out["build_bulk_bodies"] = {"seconds": round(time.perf_counter() - t, 2), "cpu": round(cpu() - c, 2),
                                "mib": round(sum(len(b) for b in bodies) / 2**20, 1)}

    def send(body: bytes) -> None:
        resp = store.client.bulk(operations=body, filter_path="errors")
        assert not resp.get("errors"), "bulk items failed"

    t, c = time.perf_counter(), cpu()
    with ThreadPoolExecutor(max_workers=a.in_flight) as pool:
        list(pool.map(send, bodies))
    out["elasticsearch_bulk"] = {"seconds": round(time.perf_counter() - t, 2), "cpu": round(cpu() - c, 2)}
    for phase in ("normalize", "build_bulk_bodies", "elasticsearch_bulk"):
        out[phase]["events_per_second"] = round(events / out[phase]["seconds"])
    out["events"] = events
    out["load_average"] = os.getloadavg()
    store.close()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
