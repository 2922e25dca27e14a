"""Bulk ingestion into Elasticsearch: bounded in-flight batches, retries with backoff, a disk spool.

Exactly-once rests on deterministic document ids (source, byte position) written with `create`:
sending a batch twice (after a retry, a crash, or a spool replay) stores every document once, and
a second copy answers 409, counted as a duplicate. A batch is *durable* once Elasticsearch
acknowledged every document or once it is fsync'ed to the spool; only then is the source's read
position advanced, in submission order, so a crash anywhere re-reads at most what was not durable.

- Per request: connection errors, timeouts, 429 and 5xx are retried with exponential backoff and
  jitter for `retry_seconds`; then the batch is spooled and the writer spools directly (no waiting)
  until a probe every `probe_seconds` finds the cluster back, when the spool is replayed first.
- Per document: 429/5xx items are retried alone; 409 is a duplicate; any other refusal (a mapping
  conflict, a malformed value) sends the line to quarantine with Elasticsearch's reason.
"""
from __future__ import annotations

import base64
import collections
import fcntl
import hashlib
import json
import os
import random
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REJECTED_BY_CLUSTER = "rejected_by_elasticsearch"


class Unavailable(RuntimeError):
    """The cluster did not take a batch within the retry budget."""


class StoreError(RuntimeError):
    """Elasticsearch refused govctl's own bookkeeping documents: a bug or a broken cluster, never data to drop."""


@dataclass
class Batch:
    """What `commit_batch` received: lines of one source and the read position after them."""

    source: str
    events: list[tuple[int, dict]]
    rejected: list[tuple[int, str, str, bytes]]
    position: tuple[int | None, int, bytes | None] | None
    position_name: str | None
    received: float = field(default_factory=time.time)

    def to_json(self) -> str:
        pos = self.position
        return json.dumps({
            "source": self.source, "received": self.received, "position_name": self.position_name,
            "events": self.events,
            "rejected": [[p, r, d, base64.b64encode(raw).decode()] for p, r, d, raw in self.rejected],
            "position": None if pos is None else [pos[0], pos[1], _b64(pos[2])],
        }, ensure_ascii=False, default=str)

    @classmethod
    def from_json(cls, line: str) -> "Batch":
        d = json.loads(line)
        pos = d["position"]
        return cls(d["source"], [(p, e) for p, e in d["events"]],
                   [(p, r, det, base64.b64decode(raw)) for p, r, det, raw in d["rejected"]],
                   None if pos is None else (pos[0], pos[1], _unb64(pos[2])), d["position_name"], d["received"])


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def source_key(source: str) -> str:
    return hashlib.sha1(source.encode("utf-8", "surrogateescape")).hexdigest()[:16]


class Spool:
    """Batches kept on disk while the cluster is unreachable. One file per live writer (flock'ed);
    files of writers that died are picked up by the next writer that drains."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self._file = None
        self.pending = 0  # batches appended by this writer and not yet replayed

    def _open(self):
        path = self.folder / f"spool-{uuid.uuid4().hex}.jsonl"
        f = open(path, "a+", encoding="utf-8")
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return f

    def append(self, batch: Batch) -> None:
        line = batch.to_json() + "\n"
        with self.lock:
            if self._file is None:
                self._file = self._open()
            self._file.write(line)
            self._file.flush()
            os.fsync(self._file.fileno())
            self.pending += 1

    def has_backlog(self) -> bool:
        return self.pending > 0 or any(self._orphans(peek=True))

    def _orphans(self, peek: bool = False):
        """Open, locked spool files of writers that are gone (their lock is free)."""
        own = self._file.name if self._file is not None else None
        for path in sorted(self.folder.glob("*.jsonl")):
            if str(path) == own:
                continue
            try:
                f = open(path, "r", encoding="utf-8")
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            if peek:
                f.close()
                yield path
                return
            yield f

    def drain(self, send: Callable[[Batch], Any]) -> int:
        """Replay every spooled batch through `send` (which raises Unavailable when the cluster is
        still away); a file is removed only when all its batches went through."""
        with self.lock:  # take our own file out of the append path
            mine, self._file = self._file, None
            replayed_here = self.pending
            self.pending = 0
        files = ([mine] if mine is not None else []) + list(self._orphans())
        replayed = 0
        try:
            while files:
                f = files[0]
                f.seek(0)
                for line in f:
                    if line.strip():
                        send(Batch.from_json(line))
                        replayed += 1
                os.unlink(f.name)
                f.close()
                files.pop(0)
        except BaseException:
            for f in files:  # kept for the next drain; the lock goes with the closed file
                f.close()
            with self.lock:
                self.pending += replayed_here
            raise
        return replayed


@dataclass
class Counters:
    indexed: int = 0
    duplicates: int = 0
    quarantined: int = 0  # lines the normalizer refused, stored in quarantine
    rejected_by_cluster: int = 0  # documents Elasticsearch refused, stored in quarantine
    retries: int = 0
    spooled_batches: int = 0
    replayed_batches: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class BulkWriter:
    """Sends batches with at most `max_in_flight` bulk requests under way; `submit` blocks beyond that."""

    def __init__(self, client, opts: dict, spool: Spool, build: Callable[[Batch], list[tuple[str, str, bytes, bool]]],
                 quarantine_doc: Callable[[Batch, int, str, str, bytes], tuple[str, str, bytes, bool]],
                 on_durable: Callable[[Batch], None], log: Callable[[str], None] | None = None):
        self.client = client
        self.opts = opts
        self.spool = spool
        self.build = build  # batch → [(index, id, document JSON, is_event)]
        self.quarantine_doc = quarantine_doc
        self.on_durable = on_durable
        self.log = log or (lambda msg: None)
        self.counters = Counters()
        self._count_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=opts["max_in_flight"], thread_name_prefix="es-bulk")
        self._pending: collections.deque[tuple[Future, Batch]] = collections.deque()
        self._down_since: float | None = None
        self._last_probe = 0.0
        self._drain_lock = threading.Lock()

    # -------------------------------------------------------------- submission
    def submit(self, batch: Batch) -> None:
        while len(self._pending) >= self.opts["max_in_flight"]:
            self._retire(block=True)
        self._pending.append((self._pool.submit(self._run, batch), batch))
        self._retire(block=False)

    def flush(self) -> None:
        while self._pending:
            self._retire(block=True)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._pool.shutdown(wait=True)

    def _retire(self, block: bool) -> None:
        """Advance positions for finished batches, oldest first (never past an unfinished one)."""
        while self._pending and (block or self._pending[0][0].done()):
            future, batch = self._pending[0]
            future.result()  # a StoreError or bug surfaces here, in the caller's thread
            self._pending.popleft()
            self.on_durable(batch)
            block = False

    # -------------------------------------------------------------- one batch
    def _run(self, batch: Batch) -> None:
        if self._down_since is not None and not self._probe():
            self._to_spool(batch)
            return
        if self.spool.has_backlog():
            self.drain()
        try:
            self.send(batch)
        except Unavailable as exc:
            if self._down_since is None:
                self._down_since = time.monotonic()
                self.log(f"Elasticsearch unavailable ({exc}); spooling to {self.spool.folder}")
            self._to_spool(batch)

    def _to_spool(self, batch: Batch) -> None:
        self.spool.append(batch)
        with self._count_lock:
            self.counters.spooled_batches += 1

    def _probe(self) -> bool:
        """While spooling: is the cluster back? Checked at most every probe_seconds."""
        now = time.monotonic()
        if now - self._last_probe < self.opts["probe_seconds"]:
            return False
        self._last_probe = now
        try:
            self.client.cluster.health(timeout="1s")
        except Exception:  # any failure means: still away
            return False
        try:
            self.drain()
        except Unavailable:
            return False
        self.log("Elasticsearch is back; spool replayed")
        self._down_since = None
        return True

    def drain(self) -> int:
        with self._drain_lock:
            n = self.spool.drain(self.send)
        with self._count_lock:
            self.counters.replayed_batches += n
        return n

    def send(self, batch: Batch) -> None:
        """Store every document of the batch (or quarantine it); raise Unavailable if the cluster is away."""
        ops = self.build(batch)
        deadline = time.monotonic() + self.opts["retry_seconds"]
        attempt = 0
        while ops:
            body = self.body(ops)
            try:
                resp = self.client.bulk(operations=body, filter_path="errors,items.*.status,items.*.error")
            except Exception as exc:  # noqa: BLE001 - sorted below: retryable or not
                if not _retryable(exc):
                    raise StoreError(f"Elasticsearch refused a bulk request: {exc}") from None
                attempt = self._backoff(attempt, deadline, exc)
                continue
            retry, refused = [], []
            indexed = duplicates = 0
            for op, item in zip(ops, resp.get("items", ())):
                result = next(iter(item.values()))
                status = result.get("status", 0)
                if status in (200, 201):
                    indexed += op[3]
                elif status == 409:
                    duplicates += op[3]
                elif status in RETRY_STATUSES:
                    retry.append(op)
                else:
                    refused.append((op, result.get("error") or {}))
            quarantine_ops = []
            for op, error in refused:
                if not op[3]:
                    raise StoreError(f"Elasticsearch refused quarantine document {op[1]} in {op[0]}: "
                                     f"{error.get('type')}: {error.get('reason')}")
                quarantine_ops.append(self._rejected_to_quarantine(batch, op, error))
            with self._count_lock:
                self.counters.indexed += indexed
                self.counters.duplicates += duplicates
                self.counters.rejected_by_cluster += len(quarantine_ops)
            ops = retry + quarantine_ops
            if retry:
                attempt = self._backoff(attempt, deadline, f"{len(retry)} documents answered 429/5xx")
        with self._count_lock:
            self.counters.quarantined += len(batch.rejected)

    @staticmethod
    def body(ops: list[tuple[str, str, bytes, bool]]) -> bytes:
        """The NDJSON body of a bulk request: a `create` line and the document per operation."""
        return b"".join(b'{"create":{"_index":"%s","_id":"%s"}}\n%s\n' % (index.encode(), doc_id.encode(), doc)
                        for index, doc_id, doc, _ in ops)

    def _rejected_to_quarantine(self, batch: Batch, op, error: dict):
        index, doc_id, doc, _ = op
        event = json.loads(doc)  # dotted keys as ingest writes them, or nested (see ElasticStore._operations)
        pos = event.get("govctl.position", (event.get("govctl") or {}).get("position", -1))
        original = event.get("event.original", (event.get("event") or {}).get("original")
                             if isinstance(event.get("event"), dict) else None)
        raw = original.encode() if isinstance(original, str) else doc
        reason = f"{error.get('type', 'error')}: {error.get('reason', '')}"
        caused = error.get("caused_by") or {}
        if caused.get("reason"):
            reason += f" ({caused.get('reason')})"
        return self.quarantine_doc(batch, pos, REJECTED_BY_CLUSTER, reason[:2000], raw)

    def _backoff(self, attempt: int, deadline: float, why) -> int:
        delay = min(self.opts["backoff_max"], self.opts["backoff_initial"] * 2 ** attempt) * random.uniform(0.5, 1.0)
        if time.monotonic() + delay > deadline:
            raise Unavailable(str(why)[:300])
        with self._count_lock:
            self.counters.retries += 1
        time.sleep(delay)
        return attempt + 1


def _retryable(exc: Exception) -> bool:
    from elasticsearch import ApiError, ConnectionError, ConnectionTimeout
    if isinstance(exc, (ConnectionError, ConnectionTimeout)):
        return True
    if isinstance(exc, ApiError):
        return exc.meta.status in RETRY_STATUSES
    return False
