"""The Elasticsearch store: the public methods of secops.store.Store, on a cluster.

Events go to one index per UTC day per source class, searched through one alias; lines the
normalizer refused and documents the cluster refused go to the quarantine indices with the reason.
Ingest is asynchronous with bounded in-flight bulk requests (secops/es/bulk.py): `commit_batch`
returns once the batch is queued (blocking when `max_in_flight` requests are under way), `flush`
waits until everything queued is durable. Read positions are kept beside the spool, on the ingest
host, and advance only for durable batches.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import yaml

from ..normalize import iso, to_document
from .bulk import Batch, BulkWriter, Spool, source_key
from .client import connect, settings

TEMPLATES = Path(__file__).parent / "templates.yaml"
MIN_SECURITY_RETENTION_DAYS = 180  # as secops.store: 等保 2.0 asks six months of security logs


def _day(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y.%m.%d")


def epoch(value: Any) -> float:
    """An ES date (ISO 8601 string or epoch millis) as epoch seconds."""
    if isinstance(value, (int, float)):
        return value / 1000.0
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def from_document(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored ECS document back as the flat event the normalizers produce (`@timestamp` in epoch seconds)."""
    flat: dict[str, Any] = {}

    def walk(node: dict, prefix: str) -> None:
        for key, value in node.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                walk(value, name + ".")
            else:
                flat[name] = value
    walk(doc, "")
    flat["@timestamp"] = epoch(flat["@timestamp"])
    return flat


class Layout:
    """Index names and templates for one prefix (templates.yaml)."""

    def __init__(self, prefix: str):
        spec = yaml.safe_load(TEMPLATES.read_text(encoding="utf-8"))
        self.prefix = prefix
        self.classes: dict[str, str] = spec["source_classes"]
        self.default_class: str = spec["default_class"]
        self._daily = spec["daily"]
        self.templates = spec["templates"]
        self.events = f"{prefix}-events"
        self.quarantine = f"{prefix}-quarantine"
        self.alerts = f"{prefix}-alerts"
        self.decisions = f"{prefix}-decisions"
        self.incidents = f"{prefix}-incidents"
        self.detection = f"{prefix}-detection"
        self._event_index_cache: dict[tuple[str, int], str] = {}

    def event_index(self, dataset: str | None, ts: float) -> str:
        cls = self.classes.get(dataset or "", self.default_class)
        key = (cls, int(ts // 86400))
        name = self._event_index_cache.get(key)
        if name is None:
            name = self._daily["events"].format(prefix=self.prefix, cls=cls, day=_day(ts))
            self._event_index_cache[key] = name
        return name

    def quarantine_index(self, received: float) -> str:
        return self._daily["quarantine"].format(prefix=self.prefix, day=_day(received))

    def index_templates(self, replicas: int) -> dict[str, dict]:
        out = {}
        for name, t in self.templates.items():
            body = {"index_patterns": [p.format(prefix=self.prefix) for p in t["index_patterns"]],
                    "priority": 200,
                    "template": {"settings": {"number_of_shards": 1, "number_of_replicas": replicas,
                                              **t.get("settings", {})},
                                 "mappings": t["mappings"]},
                    "_meta": {"managed_by": "govctl", "file": "secops/es/templates.yaml"}}
            if t.get("aliases"):
                body["template"]["aliases"] = {a.format(prefix=self.prefix): {} for a in t["aliases"]}
            out[f"{self.prefix}-{name}"] = body
        return out


class ElasticStore:
    """Events, quarantine, alerts (and the decision/incident indices) on an Elasticsearch cluster."""

    def __init__(self, section: dict[str, Any], *, check: bool = True, apply: bool = True,
                 log: Callable[[str], None] | None = None):
        """`check`: prove the cluster is reachable and accepts us now; `apply`: (re)write the index templates."""
        self.cfg = settings(section)
        self.client = connect(self.cfg, check=check)
        self.layout = Layout(self.cfg["index_prefix"])
        self.lock = threading.RLock()
        spool_dir = Path(self.cfg["spool"])
        self.positions_dir = spool_dir / "positions"
        self.positions_dir.mkdir(parents=True, exist_ok=True)
        if check and apply:
            self.apply_templates()
        self.writer = BulkWriter(self.client, self.cfg["bulk"], Spool(spool_dir), self._operations,
                                 self._quarantine_op, self._save_position, log)

    # ------------------------------------------------------------ set-up
    def apply_templates(self) -> list[str]:
        names = []
        for name, body in self.layout.index_templates(self.cfg["replicas"]).items():
            self.client.indices.put_index_template(name=name, **body)
            names.append(name)
        return names

    def close(self) -> None:
        try:
            self.writer.close()
        finally:
            self.client.close()

    # ------------------------------------------------------------ ingest
    def commit_batch(self, source: str, events: list[tuple[int, dict]], rejected: list[tuple[int, str, str, bytes]],
                     position: tuple[int | None, int, bytes | None] | None = None,
                     position_name: str | None = None) -> None:
        """Queue events [(pos, event)] and rejected lines [(pos, reason, detail, raw)] of `source`; the read
        position (inode, pos, head) of `position_name` (default: source) advances once they are durable."""
        self.writer.submit(Batch(source, events, rejected, position, position_name))

    def flush(self) -> None:
        """Wait until every queued batch is stored, quarantined or spooled."""
        self.writer.flush()

    def drain_spool(self) -> int:
        """Replay batches spooled while the cluster was away (raises bulk.Unavailable if it still is)."""
        return self.writer.drain()

    def catch_up(self, timeout: float) -> int:
        """Wait up to `timeout` seconds for the cluster to take every spooled batch; returns how many were
        replayed. Raises bulk.Unavailable if it is still away (the batches stay on disk for the next run)."""
        from .bulk import Unavailable
        self.flush()
        deadline = time.monotonic() + timeout
        replayed = 0
        while True:
            try:
                replayed += self.drain_spool()
                return replayed
            except Unavailable as exc:
                if time.monotonic() >= deadline:
                    raise Unavailable(f"the cluster is still unavailable after {timeout:.0f} s ({exc}); spooled "
                                      f"batches stay in {self.cfg['spool']} and are replayed by the next run") from None
                time.sleep(self.cfg["bulk"]["probe_seconds"])

    def ingest_counters(self) -> dict[str, int]:
        return self.writer.counters.as_dict()

    def _operations(self, batch: Batch) -> list[tuple[str, str, bytes, bool]]:
        """Bulk `create` operations for a batch; ids are (source, position), so a resend is a no-op."""
        skey = source_key(batch.source)
        ingested = iso(time.time())
        event_index = self.layout.event_index
        dumps = json.dumps
        ops = []
        for pos, event in batch.events:
            doc = to_document(event)
            if not isinstance(doc.get("event"), dict):  # a JSON-lines source with a scalar `event`
                doc["event"] = {} if doc.get("event") is None else {"value": doc["event"]}
            doc["event"]["ingested"] = ingested
            doc["govctl"] = {"source": batch.source, "position": pos}
            ops.append((event_index(event.get("event.dataset"), event["@timestamp"]), f"{skey}-{pos}",
                        dumps(doc, ensure_ascii=False, default=str).encode(), True))
        for pos, reason, detail, raw in batch.rejected:
            ops.append(self._quarantine_op(batch, pos, reason, detail, raw))
        return ops

    def _quarantine_op(self, batch: Batch, pos: int, reason: str, detail: str, raw: bytes):
        doc = {"received": iso(batch.received), "source": batch.source, "position": pos, "reason": reason,
               "detail": detail, "preview": raw[:200].decode("utf-8", "replace"),
               "raw": base64.b64encode(raw).decode()}
        return (self.layout.quarantine_index(batch.received), f"{source_key(batch.source)}-{pos}",
                json.dumps(doc, ensure_ascii=False).encode(), False)

    # ------------------------------------------------------------ positions (on the ingest host)
    def _position_file(self, name: str) -> Path:
        return self.positions_dir / (hashlib.sha1(name.encode("utf-8", "surrogateescape")).hexdigest() + ".json")

    def _save_position(self, batch: Batch) -> None:
        if batch.position is None:
            return
        name = batch.position_name or batch.source
        inode, pos, head = batch.position
        data = json.dumps({"name": name, "inode": inode, "pos": pos,
                           "head": base64.b64encode(head).decode() if head is not None else None})
        fd, tmp = tempfile.mkstemp(dir=self.positions_dir, prefix=".pos-")
        with os.fdopen(fd, "w") as f:
            f.write(data)
        os.replace(tmp, self._position_file(name))

    def position(self, source: str) -> tuple[int | None, int, bytes | None] | None:
        path = self._position_file(source)
        if not path.exists():
            return None
        d = json.loads(path.read_text())
        return d["inode"], d["pos"], base64.b64decode(d["head"]) if d["head"] is not None else None

    # ------------------------------------------------------------ reading
    def wait_searchable(self, timeout: str = "30s") -> None:
        """Wait until every govctl index has its primary shards (a daily index just created by a
        bulk write is briefly unsearchable: `no_shard_available_action_exception`)."""
        self.client.cluster.health(index=f"{self.layout.prefix}-*", wait_for_status="yellow",
                                   timeout=timeout)

    def refresh(self) -> None:
        self.wait_searchable()
        self.client.indices.refresh(index=f"{self.layout.prefix}-*", ignore_unavailable=True, allow_no_indices=True)

    def counts(self) -> dict[str, Any]:
        events = self.client.count(index=self.layout.events, ignore_unavailable=True, allow_no_indices=True)["count"]
        resp = self.client.search(index=self.layout.quarantine, size=0, ignore_unavailable=True,
                                  allow_no_indices=True, aggs={"r": {"terms": {"field": "reason", "size": 100}}})
        buckets = (resp.get("aggregations") or {}).get("r", {}).get("buckets", [])
        reasons = {b["key"]: b["doc_count"] for b in buckets}
        return {"events": events, "quarantined": sum(reasons.values()), "quarantine_by_reason": reasons}

    def quarantined(self, limit: int = 50) -> list[dict]:
        resp = self.client.search(index=self.layout.quarantine, size=limit, ignore_unavailable=True,
                                  allow_no_indices=True, sort=[{"received": "desc"}, {"position": "desc"}])
        out = []
        for hit in resp["hits"]["hits"]:
            s = hit["_source"]
            out.append({"id": hit["_id"], "received": s["received"], "source": s["source"], "position": s["position"],
                        "reason": s["reason"], "detail": s["detail"], "raw": s["preview"]})
        return out

    def search_events(self, filters: dict[str, Any] | None = None, since: float | None = None,
                      until: float | None = None, limit: int = 100) -> list[dict]:
        """Newest events first whose ECS fields equal the given values (an address field also takes a CIDR
        range, e.g. {"source.ip": "203.0.113.0/24", "event.outcome": "failure"}), as flat events."""
        clauses: list[dict] = [{"term": {f: v}} for f, v in (filters or {}).items()]
        if since is not None or until is not None:
            rng: dict[str, Any] = {"format": "epoch_millis"}
            if since is not None:
                rng["gte"] = int(since * 1000)
            if until is not None:
                rng["lte"] = int(until * 1000)
            clauses.append({"range": {"@timestamp": rng}})
        resp = self.client.search(index=self.layout.events, size=limit, ignore_unavailable=True,
                                  allow_no_indices=True, query={"bool": {"filter": clauses}},
                                  sort=[{"@timestamp": "desc"}])
        return [from_document(h["_source"]) for h in resp["hits"]["hits"]]

    # ------------------------------------------------------------ alerts
    @staticmethod
    def alert_id(alert) -> str:
        """Deterministic: the same alert found again by an overlapping or repeated search is one document."""
        key = json.dumps([alert.rule.name, sorted(alert.group.items()), round(alert.first, 3)], default=str)
        return hashlib.sha1(key.encode()).hexdigest()[:24]

    def save_alert(self, alert) -> str:
        doc = {"rule": alert.rule.name, "rule_id": alert.rule.id, "title": alert.rule.title,
               "level": alert.rule.level, "tags": alert.rule.tags, "source": {"ip": alert.source_ip},
               "user": {"name": alert.user}, "host": {"hostname": alert.host}, "group": alert.group,
               "first": iso(alert.first), "last": iso(alert.last), "count": alert.count,
               "evidence": [to_document({k: v for k, v in e.items() if not k.startswith("_")})
                            for e in alert.evidence]}
        alert.id = self.alert_id(alert)
        self.client.index(index=self.layout.alerts, id=alert.id, document=json.loads(json.dumps(doc, default=str)))
        return alert.id

    def alerts(self, limit: int = 10000) -> list[dict]:
        resp = self.client.search(index=self.layout.alerts, size=limit, ignore_unavailable=True,
                                  allow_no_indices=True, sort=[{"first": "asc"}])
        return [{"id": h["_id"], **h["_source"]} for h in resp["hits"]["hits"]]

    # ------------------------------------------------------------ retention
    def apply_retention(self, event_days: float, incident_days: float | None = None, now: float | None = None) -> dict:
        """Drop daily event and quarantine indices older than `event_days` (whole days), and alerts and
        decisions older than max(incident_days, event_days)."""
        if event_days < MIN_SECURITY_RETENTION_DAYS:
            raise ValueError(f"retention of {event_days} days is below the {MIN_SECURITY_RETENTION_DAYS} days"
                             " 等保 2.0 asks for security logs")
        now = time.time() if now is None else now
        cutoff_day = _day(now - event_days * 86400)
        removed: dict[str, Any] = {"indices": []}
        for alias in (self.layout.events, self.layout.quarantine):
            for index in self.client.indices.get(index=f"{alias}-*", ignore_unavailable=True, allow_no_indices=True):
                if index.rsplit("-", 1)[-1] < cutoff_day:
                    self.client.indices.delete(index=index)
                    removed["indices"].append(index)
        if incident_days is not None:
            cutoff = int((now - max(incident_days, event_days) * 86400) * 1000)
            removed["alerts"] = self._delete_matching(self.layout.alerts, {"range": {"last": {"lt": cutoff, "format": "epoch_millis"}}})
            removed["decisions"] = self._delete_matching(self.layout.decisions, {"bool": {"filter": [
                {"range": {"created": {"lt": cutoff, "format": "epoch_millis"}}},
                {"range": {"until": {"lt": int(now * 1000), "format": "epoch_millis"}}}]}})
        return removed

    def _delete_matching(self, index: str, query: dict) -> int:
        """Delete by ids page by page (this distribution has no delete-by-query)."""
        total = 0
        while True:
            resp = self.client.search(index=index, query=query, size=1000, source=False, ignore_unavailable=True,
                                      allow_no_indices=True)
            hits = resp["hits"]["hits"]
            if not hits:
                return total
            body = "".join(json.dumps({"delete": {"_index": h["_index"], "_id": h["_id"]}}) + "\n" for h in hits)
            self.client.bulk(operations=body, refresh=True)
            total += len(hits)
