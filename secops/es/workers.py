"""Scale-out ingestion: N worker processes, each tailing a share of the configured sources, normalizing
to ECS and bulk-writing to the cluster. The scheduled detection runs in the parent process.

Sources are dealt out by position in the configured list (worker i takes sources i, i+N, …), so
one source is read by exactly one process and its read position (kept beside the spool) has one
writer. Each worker has its own bounded bulk writer and spool file; a worker that died leaves its
spool to the next writer that drains.
"""
from __future__ import annotations

import multiprocessing as mp
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

from ..ingest import FileTail
from ..normalize import Normalizer, Rejected

DEFAULT_MAX_LINES = 5000


def share(sources: list[dict], workers: int, index: int) -> list[dict]:
    return sources[index::workers]


def ingest_sources(es_section: dict, sources: list[dict], *, once: bool, max_lines: int = DEFAULT_MAX_LINES,
                   year: int | None = None, stop: Callable[[], bool] = lambda: False,
                   idle_sleep: float = 0.2, catch_up_seconds: float = 600.0,
                   log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Tail `sources` into the cluster until they are exhausted (`once`) or `stop()`; returns counts.
    Batches spooled during an outage are replayed before returning (waiting up to `catch_up_seconds`)."""
    from .store import ElasticStore

    store = ElasticStore(es_section, check=True, apply=False, log=log)  # log: outage and recovery
    inputs = []
    for src in sources:
        tail = FileTail(src["name"], src["path"])
        tail.resume(store.position(src["name"]))
        normalizer = Normalizer(source=src["name"], fmt=src.get("format", "auto"), encoding=src.get("encoding", "auto"),
                                tz_offset=int(src.get("timezone_offset_hours", 0) * 3600), year=year)
        inputs.append((src["name"], tail, normalizer))
    lines = events = quarantined = 0
    started = time.perf_counter()
    try:
        while not stop():
            done = 0
            for name, tail, normalizer in inputs:
                batch = tail.read(max_lines)
                if batch is None:
                    continue
                normalize = normalizer.normalize
                good: list[tuple[int, dict]] = []
                bad: list[tuple[int, str, str, bytes]] = []
                for pos, raw in batch.lines:
                    event = normalize(raw)
                    if event.__class__ is Rejected:
                        bad.append((pos, event.reason, event.detail, raw))
                    else:
                        good.append((pos, event))
                store.commit_batch(batch.key, good, bad, batch.position, name)
                done += len(batch.lines)
                events += len(good)
                quarantined += len(bad)
            lines += done
            if done == 0:
                if once:
                    break
                time.sleep(idle_sleep)
        if stop():
            store.flush()  # stopping: what the cluster did not take stays spooled for the next run
        else:
            store.catch_up(catch_up_seconds)
    finally:
        for _, tail, _ in inputs:
            tail.close()
        counters = store.ingest_counters()
        store.close()
    seconds = time.perf_counter() - started
    return {"sources": [s["name"] for s in sources], "lines": lines, "events": events, "quarantined": quarantined,
            "seconds": round(seconds, 3), **counters}


def _worker_main(es_section: dict, sources: list[dict], once: bool, max_lines: int, year: int | None,
                 stop_event, results) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops workers through stop_event
    try:
        name = mp.current_process().name
        out = ingest_sources(es_section, sources, once=once, max_lines=max_lines, year=year,
                             stop=stop_event.is_set, log=lambda msg: print(f"{name}: {msg}", file=sys.stderr,
                                                                          flush=True))
        results.put(("ok", out))
    except BaseException as exc:  # reported to the parent, which fails the run
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def run_workers(cfg: dict[str, Any], workers: int, *, once: bool = False, max_lines: int = DEFAULT_MAX_LINES,
                year: int | None = None, stop: Callable[[], bool] = lambda: False,
                detection=None, log: Callable[[str], None] = lambda m: None,
                on_started: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Ingest cfg["sources"] into cfg["elasticsearch"] with `workers` processes.

    `once`: read every source to its end, then return; otherwise run until `stop()` is true. With a
    `detection` (secops.es.detect.ScheduledDetection), the parent runs its scheduled searches meanwhile
    and once more at the end. `on_started` runs in the parent once the workers are forked (start threads
    and listening sockets there, not before: a forked child must not inherit them). Returns totals, events
    per second and per-worker counts.
    """
    from .client import ClusterError
    from .store import ElasticStore

    if workers < 1:
        raise ValueError(f"--workers must be at least 1 (got {workers})")
    sources = [s for s in cfg.get("sources") or [] if s.get("path")]
    if not sources:
        raise ValueError("no sources with a `path` in the secops config; add `sources: [{name: auth, path: "
                         "/var/log/auth.log}]`")
    missing = [s["path"] for s in sources if not Path(s["path"]).exists()]
    if missing:
        raise ValueError(f"source file(s) not found: {', '.join(missing)}")
    setup = ElasticStore(cfg["elasticsearch"], check=True)  # fails fast on URL/credentials; applies templates
    setup.close()
    workers = min(workers, len(sources))
    # fork: workers start with the modules already imported. The parent has no threads yet (its detection
    # client has none; on_started starts listeners after the fork)
    ctx = mp.get_context("fork")
    stop_event, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_worker_main, name=f"govctl-ingest-{i}",
                         args=(cfg["elasticsearch"], share(sources, workers, i), once, max_lines, year, stop_event,
                               results)) for i in range(workers)]
    started = time.perf_counter()
    for p in procs:
        p.start()
    outcomes: list[tuple[str, Any]] = []
    try:
        on_started()
        while len(outcomes) < workers:
            if stop():
                stop_event.set()
            if detection is not None and not once:
                found = detection.run_once()
                if found["alerts_stored"]:
                    log(f"detection: {found['events']} matching events, {found['alerts_stored']} alerts stored")
            try:
                outcomes.append(results.get(timeout=0.5 if detection is None else detection.opts["interval_seconds"]))
            except Exception:  # queue.Empty: nobody finished yet
                if all(not p.is_alive() for p in procs) and results.empty():
                    break
    finally:
        stop_event.set()
        for p in procs:
            p.join(timeout=60)
    seconds = time.perf_counter() - started
    errors = [o[1] for o in outcomes if o[0] == "error"]
    lost = workers - len(outcomes)
    if errors or lost:
        raise ClusterError("ingest worker(s) failed: " + "; ".join(errors + [f"{lost} exited without a report"] * bool(lost)))
    per_worker = [o[1] for o in outcomes]
    total = {k: sum(w[k] for w in per_worker) for k in ("lines", "events", "quarantined", "indexed", "duplicates",
                                                         "rejected_by_cluster", "retries", "spooled_batches",
                                                         "replayed_batches")}
    result: dict[str, Any] = {"workers": workers, **total, "seconds": round(seconds, 3),
                              "events_per_second": round(total["events"] / seconds) if seconds else None,
                              "per_worker": per_worker}
    if detection is not None:
        detection.store.refresh()
        result["detection"] = detection.run_once()
    return result
