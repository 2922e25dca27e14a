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
import contextlib
import datetime as dt
import hashlib
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import orjson

from core import yamlfile

from ..normalize import iso, to_document
from ..model import Decision
from .bulk import Batch, BulkWriter, Spool, source_key
from .client import connect, settings
from .query import Converter

TEMPLATES = Path(__file__).parent / "templates.yaml"
MIN_SECURITY_RETENTION_DAYS = 180  # as secops.store: 等保 2.0 asks six months of security logs


def _day(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y.%m.%d")


def epoch(value: Any) -> float:
    """An ES date (ISO 8601 string or epoch millis) as epoch seconds."""
    if isinstance(value, (int, float)):
        return value / 1000.0
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _equal_as_given(value: Any, wanted: str) -> bool:
    """An event's value (or one of its values) is `wanted`, case included."""
    return any(str(v) == wanted for v in value) if isinstance(value, list) else str(value) == wanted


def from_document(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored ECS document (nested, or with dotted keys as ingest writes them) back as the flat event the
    normalizers produce (`@timestamp` in epoch seconds, `message` restored where ingest left it out)."""
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
    if flat.pop(MESSAGE_IS_ORIGINAL, False):
        flat["message"] = flat.get("event.original")
    return flat


MESSAGE_IS_ORIGINAL = "govctl.message_is_original"  # `message` was equal to event.original and left out
_ADDED_FIELDS = ("event.ingested", "govctl.source", "govctl.position", MESSAGE_IS_ORIGINAL)
_SHAPES_MAX = 4096


def _dotted_keys_are_safe(keys) -> bool:
    """Can an event with these keys (plus the fields ingest adds) be sent with dotted keys as they are?
    Not if one key is the parent object of another (`event` and `event.dataset`, from a JSON-lines
    source): Elasticsearch would refuse the document, so such an event is nested as to_document does."""
    names = set(keys) | set(_ADDED_FIELDS)
    return not any(name[:i] in names for name in names for i, c in enumerate(name) if c == ".")


def _json_bytes(doc: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(doc, default=str)
    except TypeError:  # an integer beyond 64 bits from a JSON-lines source: the standard library writes it
        return json.dumps(doc, ensure_ascii=False, default=str).encode()


_INCIDENT_TIMES = ("created", "updated", "first", "last")


def _incident_doc(record: dict) -> dict:
    """Incident fields for the index (times as ISO 8601), with what the search derives from them."""
    from ..model import SEVERITY, STATES
    doc = {k: (iso(v) if k in _INCIDENT_TIMES and v is not None else v) for k, v in record.items()}
    if record.get("severity") in SEVERITY:
        doc["severity_rank"] = SEVERITY.index(record["severity"])
    if record.get("state") in STATES:
        doc["state_rank"] = STATES.index(record["state"])
    if record.get("entity_kind") == "source.ip":
        from ..address import canonical
        doc["source_address"] = canonical(str(record.get("entity"))) or None
    return doc


def _decision_dict(src: dict) -> dict:
    """A stored decision as Decision.to_dict() gives it (the same shape as the SQLite store's)."""
    return Decision(address=src["address"], action=src["action"], reason=src["reason"], actor=src["actor"],
                    created=epoch(src["created"]), ttl=src.get("ttl"),
                    until=epoch(src["until"]) if src.get("until") else None, rule=src.get("rule"),
                    alert_id=src.get("alert_id"), enforced=bool(src.get("enforced")), offence=src.get("offence") or 0,
                    id=src["sequence"], centers=list(src.get("centers") or ())).to_dict()


class Layout:
    """Index names and templates for one prefix (templates.yaml)."""

    def __init__(self, prefix: str):
        spec = yamlfile.load(TEMPLATES)
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

    def index_templates(self, replicas: int, events_index: dict | None = None) -> dict[str, dict]:
        """Composable templates; `events_index` (refresh_interval, durability, shards) for the daily event indices."""
        out = {}
        for name, t in self.templates.items():
            settings = {"number_of_shards": 1, "number_of_replicas": replicas, **t.get("settings", {})}
            if name == "events" and events_index:
                settings.update({"refresh_interval": events_index["refresh_interval"],
                                 "translog.durability": events_index["durability"],
                                 "number_of_shards": events_index["shards"]})
            body = {"index_patterns": [p.format(prefix=self.prefix) for p in t["index_patterns"]],
                    "priority": 200,
                    "template": {"settings": settings,
                                 "mappings": t["mappings"]},
                    "_meta": {"managed_by": "govctl", "file": "secops/es/templates.yaml"}}
            if t.get("aliases"):
                body["template"]["aliases"] = {a.format(prefix=self.prefix): {} for a in t["aliases"]}
            out[f"{self.prefix}-{name}"] = body
        return out


class ElasticStore:
    """Events, quarantine, alerts, decisions and incidents on an Elasticsearch cluster (the interface of
    secops/stores.py). Triage writes (incidents, notes, decisions, alert links) refresh their small index,
    so the next command or API call sees them."""

    kind = "elasticsearch"

    def __init__(self, section: dict[str, Any], *, check: bool = True, apply: bool = True,
                 log: Callable[[str], None] | None = None):
        """`check`: prove the cluster is reachable and accepts us now; `apply`: (re)write the index templates."""
        self.cfg = settings(section)
        self.client = connect(self.cfg, check=check)
        self.layout = Layout(self.cfg["index_prefix"])
        self._event_fields = Converter.for_mappings(self.layout.templates["events"]["mappings"])  # types, normalizers
        self._safe_shapes: dict[tuple, bool] = {}  # event key tuple → can be sent with dotted keys
        self.lock = threading.RLock()
        spool_dir = Path(self.cfg["spool"])
        self.positions_dir = spool_dir / "positions"
        self.positions_dir.mkdir(parents=True, exist_ok=True)
        if check and apply:
            self.apply_templates()
            self._add_incident_search_fields()
        self.writer = BulkWriter(self.client, self.cfg["bulk"], Spool(spool_dir), self._operations,
                                 self._quarantine_op, self._save_position, log)

    # ------------------------------------------------------------ set-up
    def apply_templates(self) -> list[str]:
        names = []
        for name, body in self.layout.index_templates(self.cfg["replicas"], self.cfg["events_index"]).items():
            self.client.indices.put_index_template(name=name, **body)
            names.append(name)
        return names

    def close(self) -> None:
        try:
            self.writer.close()
        finally:
            self.client.close()

    @contextlib.contextmanager
    def transaction(self):
        """The same call as secops.store.Store's. A cluster has no transaction over several documents:
        this only keeps other threads of this process out. What is derived from a batch stays safe to
        write again: alerts have deterministic ids, an alert already linked keeps its incident."""
        with self.lock:
            yield

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
        """Bulk `create` operations for a batch; ids are (source, position), so a resend is a no-op.

        Documents keep the normalizer's dotted keys (Elasticsearch maps `source.ip` as the object path it
        names) and are written with orjson: nesting and the standard json module took longer than
        normalizing (bench/es_profile.py). `message` equal to event.original is sent once."""
        skey = source_key(batch.source)
        ingested = int(time.time() * 1000)
        event_index = self.layout.event_index
        safe_shapes = self._safe_shapes
        ops = []
        for pos, event in batch.events:
            shape = tuple(event)
            safe = safe_shapes.get(shape)
            if safe is None:
                if len(safe_shapes) >= _SHAPES_MAX:  # JSON-lines sources can bring endless shapes
                    safe_shapes.clear()
                safe = safe_shapes[shape] = _dotted_keys_are_safe(shape)
            if safe:
                doc = dict(event)
                doc["@timestamp"] = int(event["@timestamp"] * 1000)
                if "message" in doc and doc["message"] == doc.get("event.original"):
                    del doc["message"]
                    doc[MESSAGE_IS_ORIGINAL] = True
                doc["event.ingested"] = ingested
                doc["govctl.source"] = batch.source
                doc["govctl.position"] = pos
            else:
                doc = to_document(event)
                if not isinstance(doc.get("event"), dict):  # a JSON-lines source with a scalar `event`
                    doc["event"] = {} if doc.get("event") is None else {"value": doc["event"]}
                doc["event"]["ingested"] = ingested
                doc["govctl"] = {"source": batch.source, "position": pos}
            ops.append((event_index(event.get("event.dataset"), event["@timestamp"]), f"{skey}-{pos}",
                        _json_bytes(doc), True))
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

    def search_event_index(self, attempts: int = 8, **kwargs) -> dict:
        """A search of the events alias that outlasts a daily index being created meanwhile: its shard
        is briefly unassigned (503 `no_shard_available_action_exception`, seen even right after the
        health call reported the primaries active), so wait for it, back off and ask again."""
        from elasticsearch import ApiError
        for attempt in range(attempts):
            try:
                return self.client.search(index=self.layout.events, ignore_unavailable=True,
                                          allow_no_indices=True, **kwargs)
            except ApiError as exc:
                if exc.meta.status != 503 or "no_shard_available" not in json.dumps(exc.body) or attempt == attempts - 1:
                    raise
                self.wait_searchable()
                time.sleep(0.1 * 2 ** attempt)  # 0.1 … 6.4 s, 12.7 s in all
        raise AssertionError("unreachable")

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
        range, e.g. {"source.ip": "203.0.113.0/24", "event.outcome": "failure"}), as flat events.
        Keyword fields are lowercase-normalized for Sigma (templates.yaml), so their terms match any case;
        the hits are kept only where the value is equal as given, as the SQLite store compares."""
        filters = filters or {}
        clauses: list[dict] = [{"term": {f: v}} for f, v in filters.items()]
        if since is not None or until is not None:
            rng: dict[str, Any] = {"format": "epoch_millis"}
            if since is not None:
                rng["gte"] = int(since * 1000)
            if until is not None:
                rng["lte"] = int(until * 1000)
            clauses.append({"range": {"@timestamp": rng}})
        exact = {f: str(v) for f, v in filters.items() if isinstance(v, str) and self._normalized(f)}
        out: list[dict] = []
        sort = [{"@timestamp": "desc"}, {"govctl.source": "asc"}, {"govctl.position": "asc"}]
        after = None
        while len(out) < limit:
            kwargs: dict[str, Any] = {"search_after": after} if after else {}
            resp = self.search_event_index(size=limit, query={"bool": {"filter": clauses}}, sort=sort, **kwargs)
            hits = resp["hits"]["hits"]
            for hit in hits:
                event = from_document(hit["_source"])
                if all(_equal_as_given(event.get(f), v) for f, v in exact.items()):
                    out.append(event)
            if len(hits) < limit or not exact:
                break
            after = hits[-1]["sort"]
        return out[:limit]

    def _normalized(self, field: str) -> bool:
        fields = self._event_fields
        return fields.type_of(field) == "keyword" and fields.is_normalized(field)

    # ------------------------------------------------------------ alerts
    @staticmethod
    def alert_id(alert) -> str:
        """Deterministic: the same alert found again by an overlapping or repeated search is one document."""
        return hashlib.sha1(alert.key.encode()).hexdigest()[:24]

    def save_alert(self, alert) -> str:
        doc = {"rule": alert.rule.name, "rule_id": alert.rule.id, "title": alert.rule.title,
               "level": alert.rule.level, "tags": alert.rule.tags, "source": {"ip": alert.source_ip},
               "user": {"name": alert.user}, "host": {"hostname": alert.host}, "group": alert.group,
               "first": iso(alert.first), "last": iso(alert.last), "count": alert.count,
               "evidence": [to_document({k: v for k, v in e.items() if not k.startswith("_")})
                            for e in alert.evidence]}
        alert.id = self.alert_id(alert)
        # a partial update: an alert saved again (it grew) keeps the incident it was linked to
        self.client.update(index=self.layout.alerts, id=alert.id, doc=json.loads(json.dumps(doc, default=str)),
                           doc_as_upsert=True)
        return alert.id

    def load_alerts(self, ids: list) -> dict:
        """Stored alerts by id: {id: {rule, group, first, last, count, evidence}} (a detector restoring its state)."""
        out = {}
        for i in range(0, len(ids), 1000):
            resp = self.client.mget(index=self.layout.alerts, ids=[str(x) for x in ids[i:i + 1000]])
            for doc in resp["docs"]:
                if doc.get("found"):
                    s = doc["_source"]
                    out[doc["_id"]] = {"rule": s["rule"], "group": s.get("group") or {}, "first": epoch(s["first"]),
                                       "last": epoch(s["last"]), "count": s["count"],
                                       "evidence": [from_document(e) for e in s.get("evidence") or []]}
        return out

    # ------------------------------------------------------------ detector checkpoint (secops.daemon.Engine)
    _ENGINE_STATE = "engine-state"

    def save_detector_state(self, state: dict) -> int:
        """Keep the detector's state (one document of the detection index, kept in _source only);
        `events_since_detector_state()` gives the events ingested after it. Returns its size in bytes."""
        text = json.dumps(state, default=str)
        self.client.options(ignore_status=400).indices.create(index=self.layout.detection)  # exists already: fine
        self.client.indices.put_mapping(index=self.layout.detection, properties={
            "engine_state": {"type": "keyword", "index": False, "doc_values": False}})
        self.client.index(index=self.layout.detection, id=self._ENGINE_STATE, refresh=True,
                          document={"engine_state": text, "updated": iso(time.time())})
        return len(text)

    def _engine_state_doc(self) -> dict | None:
        from elasticsearch import NotFoundError
        try:
            return self.client.get(index=self.layout.detection, id=self._ENGINE_STATE)["_source"]
        except NotFoundError:
            return None

    def detector_state(self) -> dict | None:
        doc = self._engine_state_doc()
        return json.loads(doc["engine_state"]) if doc else None

    def events_since_detector_state(self, page: int = 5000):
        """The events ingested after the detector's checkpoint (all if there is none), in ingest order
        (ingest time, then source and position: batches written at the same moment may come in another
        order than they were detected in)."""
        doc = self._engine_state_doc()
        self.flush()
        self.refresh()
        query = {"range": {"event.ingested": {"gt": int(epoch(doc["updated"]) * 1000), "format": "epoch_millis"}}} \
            if doc else {"match_all": {}}
        sort = [{"event.ingested": "asc"}, {"govctl.source": "asc"}, {"govctl.position": "asc"}]
        after = None
        while True:
            kwargs: dict[str, Any] = {"search_after": after} if after else {}
            hits = self.search_event_index(size=page, query=query, sort=sort, **kwargs)["hits"]["hits"]
            for hit in hits:
                yield from_document(hit["_source"])
            if len(hits) < page:
                return
            after = hits[-1]["sort"]

    def has_events(self) -> bool:
        return self.client.count(index=self.layout.events, ignore_unavailable=True, allow_no_indices=True)["count"] > 0

    def alerts(self, limit: int = 10000) -> list[dict]:
        resp = self.client.search(index=self.layout.alerts, size=limit, ignore_unavailable=True,
                                  allow_no_indices=True, sort=[{"first": "asc"}])
        return [{"id": h["_id"], **h["_source"]} for h in resp["hits"]["hits"]]

    # ------------------------------------------------------------ incidents
    def _search_all(self, index: str, query: dict, sort: list, size: int = 10000, **kwargs) -> list[dict]:
        resp = self.client.search(index=index, query=query, sort=sort, size=size, ignore_unavailable=True,
                                  allow_no_indices=True, **kwargs)
        return resp["hits"]["hits"]

    def alert_incident(self, alert_id) -> int | None:
        from elasticsearch import NotFoundError
        try:
            doc = self.client.get(index=self.layout.alerts, id=str(alert_id), source_includes=["incident_id"])
        except NotFoundError:
            return None
        value = doc["_source"].get("incident_id")
        return int(value) if value else None

    def open_incident(self, kind: str, entity: str, since: float, closed: tuple[str, ...]) -> dict | None:
        hits = self._search_all(self.layout.incidents, {"bool": {
            "filter": [{"term": {"entity_kind": kind}}, {"term": {"entity": entity}},
                       {"range": {"last": {"gte": int(since * 1000), "format": "epoch_millis"}}}],
            "must_not": [{"terms": {"state": list(closed)}}]}}, [{"last": "desc"}], size=1)
        return self._incident_records(hits)[0] if hits else None

    def create_incident(self, record: dict) -> int:
        from elasticsearch import ConflictError
        top = self._search_all(self.layout.incidents, {"match_all": {}}, [{"number": "desc"}], size=1)
        number = top[0]["_source"]["number"] + 1 if top else 1
        while True:  # another writer may take the number first: create fails, take the next
            try:
                self.client.create(index=self.layout.incidents, id=str(number), refresh=True,
                                   document={"number": number, **_incident_doc(record), "notes": []})
                return number
            except ConflictError:
                number += 1

    def update_incident(self, incident_id, changes: dict) -> None:
        self.client.update(index=self.layout.incidents, id=str(incident_id), doc=_incident_doc(changes), refresh=True)

    def link_alert(self, alert_id, incident_id) -> None:
        self.client.update(index=self.layout.alerts, id=str(alert_id), doc={"incident_id": str(incident_id)},
                           refresh=True)

    def incident(self, incident_id) -> dict | None:
        from elasticsearch import NotFoundError
        try:
            doc = self.client.get(index=self.layout.incidents, id=str(incident_id))
        except NotFoundError:
            return None
        return self._incident_records([doc])[0]

    def incidents(self, state: str | None = None, limit: int = 100) -> list[dict]:
        from ..model import IncidentQuery
        return self.search_incidents(IncidentQuery(states=(state,) if state else (), limit=limit, counted=False))["items"]

    def _incident_records(self, hits: list[dict]) -> list[dict]:
        """Incident documents as records (epoch seconds) with their number of alerts."""
        if not hits:
            return []
        ids = [str(h["_source"]["number"]) for h in hits]
        resp = self.client.search(index=self.layout.alerts, size=0, ignore_unavailable=True, allow_no_indices=True,
                                  query={"terms": {"incident_id": ids}},
                                  aggs={"n": {"terms": {"field": "incident_id", "size": len(ids)}}})
        counts = {b["key"]: b["doc_count"] for b in (resp.get("aggregations") or {}).get("n", {}).get("buckets", [])}
        out = []
        for h in hits:
            src = h["_source"]
            out.append({"id": src["number"], "entity_kind": src["entity_kind"], "entity": src["entity"],
                        "title": src["title"], "severity": src["severity"], "state": src["state"],
                        "assignee": src.get("assignee"), **{k: epoch(src[k]) for k in _INCIDENT_TIMES},
                        "alerts": counts.get(str(src["number"]), 0), "rules": sorted(src.get("rules") or ()),
                        "centers": sorted(src.get("centers") or ())})
        return out

    def incident_alerts(self, incident_id) -> list[dict]:
        hits = self._search_all(self.layout.alerts, {"term": {"incident_id": str(incident_id)}},
                                [{"first": "asc"}])
        out = []
        for h in hits:
            s = h["_source"]
            out.append({"id": h["_id"], "rule": s["rule"], "title": s["title"], "level": s["level"],
                        "tags": s.get("tags") or [], "source.ip": (s.get("source") or {}).get("ip"),
                        "user": (s.get("user") or {}).get("name"), "host": (s.get("host") or {}).get("hostname"),
                        "first": epoch(s["first"]), "last": epoch(s["last"]), "count": s["count"],
                        "evidence": [from_document(e) for e in s.get("evidence") or []]})
        return out

    def incident_notes(self, incident_id) -> list[dict]:
        from elasticsearch import NotFoundError
        try:
            doc = self.client.get(index=self.layout.incidents, id=str(incident_id), source_includes=["notes"])
        except NotFoundError:
            return []
        return [{**n, "created": epoch(n["created"])} for n in doc["_source"].get("notes") or []]

    def add_incident_note(self, incident_id, created: float, author: str, kind: str, text: str) -> None:
        """Read-modify-write with optimistic concurrency: a note added meanwhile by someone else is kept."""
        from elasticsearch import ConflictError
        note = {"created": iso(created), "author": author, "kind": kind, "text": text}
        for _ in range(20):
            doc = self.client.get(index=self.layout.incidents, id=str(incident_id), source_includes=["notes"])
            try:
                self.client.update(index=self.layout.incidents, id=str(incident_id), refresh=True,
                                   if_seq_no=doc["_seq_no"], if_primary_term=doc["_primary_term"],
                                   doc={"notes": [*(doc["_source"].get("notes") or []), note]})
                return
            except ConflictError:
                continue
        raise RuntimeError(f"incident {incident_id} kept changing while a note was added; try again")

    # ------------------------------------------------------------ decisions
    def record_decision(self, decision) -> int:
        """Store a secops.model.Decision; its id is a nanosecond sequence that orders the trail."""
        from elasticsearch import ConflictError
        with self.lock:
            sequence = self._last_sequence = max(time.time_ns(), getattr(self, "_last_sequence", 0) + 1)
        doc = {"created": iso(decision.created), "address": decision.address, "action": decision.action,
               "ttl": decision.ttl, "until": iso(decision.until) if decision.until else None,
               "reason": decision.reason, "rule": decision.rule,
               "alert_id": None if decision.alert_id is None else str(decision.alert_id), "actor": decision.actor,
               "enforced": bool(decision.enforced), "offence": decision.offence, "sequence": sequence,
               "centers": sorted(decision.centers)}
        while True:
            try:
                self.client.create(index=self.layout.decisions, id=str(sequence), document=doc, refresh=True)
                return sequence
            except ConflictError:  # another writer in the same nanosecond
                sequence += 1
                doc["sequence"] = sequence

    def allowlisted_alerts(self) -> set[tuple[str, str]]:
        """(address, rule) pairs already recorded as allowlisted (each is recorded once)."""
        return {(d["address"], d["rule"]) for d in self._decisions({"term": {"action": "allowlisted"}}, "asc")}

    def block_counts(self) -> dict[str, int]:
        """Blocks ever decided per address (escalation counts earlier offences)."""
        counts: dict[str, int] = {}
        after = None
        while True:
            composite: dict[str, Any] = {"size": 10000, "sources": [{"a": {"terms": {"field": "address"}}}]}
            if after:
                composite["after"] = after
            resp = self.client.search(index=self.layout.decisions, size=0, ignore_unavailable=True,
                                      allow_no_indices=True, query={"term": {"action": "block"}},
                                      aggs={"c": {"composite": composite}})
            agg = (resp.get("aggregations") or {}).get("c")
            if not agg or not agg["buckets"]:
                return counts
            counts.update({b["key"]["a"]: b["doc_count"] for b in agg["buckets"]})
            after = agg.get("after_key")
            if after is None:
                return counts

    def _decisions(self, query: dict, sort: str, size: int = 10000) -> list[dict]:
        hits = self._search_all(self.layout.decisions, query, [{"sequence": sort}], size=size)
        return [_decision_dict(h["_source"]) for h in hits]

    def decisions_for_alerts(self, alert_ids: list) -> list[dict]:
        if not alert_ids:
            return []
        return self._decisions({"terms": {"alert_id": [str(a) for a in alert_ids]}}, "asc")

    def decision_trail(self, limit: int = 200) -> list[dict]:
        return self._decisions({"match_all": {}}, "desc", size=limit)

    def active_bans(self, now: float | None = None) -> list[dict]:
        """Blocks in force: the address's latest block/unblock is a block whose time has not run out."""
        now = time.time() if now is None else now
        blocks = self._decisions({"bool": {"filter": [
            {"term": {"action": "block"}},
            {"range": {"until": {"gt": int(now * 1000), "format": "epoch_millis"}}}]}}, "desc")
        latest: dict[str, dict] = {}
        for d in blocks:
            latest.setdefault(d["address"], d)
        if not latest:
            return []
        lifted = self._decisions({"bool": {"filter": [{"term": {"action": "unblock"}},
                                                      {"terms": {"address": list(latest)}}]}}, "desc")
        for d in lifted:
            ban = latest.get(d["address"])
            if ban is not None and d["id"] > ban["id"]:
                del latest[d["address"]]
        return sorted(latest.values(), key=lambda d: d["until"], reverse=True)

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

    # ------------------------------------------------------------ incident search and overview (issue #17)
    def _add_incident_search_fields(self) -> None:
        """On indices created before the incident search: add its fields to their mappings and derive them
        for every incident lacking them (ranks, source address, the rules of its alerts), once."""
        from elasticsearch import NotFoundError
        for name in ("incidents", "decisions"):
            index = getattr(self.layout, name)
            try:
                self.client.indices.put_mapping(index=index, properties=self.layout.templates[name]["mappings"]["properties"])
            except NotFoundError:
                continue  # created from the template when first written
        while True:
            hits = self._search_all(self.layout.incidents, {"bool": {"must_not": [{"exists": {"field": "severity_rank"}}]}},
                                    [{"number": "asc"}], size=500)
            if not hits:
                return
            numbers = [str(h["_source"]["number"]) for h in hits]
            resp = self.client.search(index=self.layout.alerts, size=0, ignore_unavailable=True, allow_no_indices=True,
                                      query={"terms": {"incident_id": numbers}},
                                      aggs={"n": {"terms": {"field": "incident_id", "size": len(numbers)},
                                                  "aggs": {"rules": {"terms": {"field": "rule", "size": 1000}}}}})
            rules = {b["key"]: [r["key"] for r in b["rules"]["buckets"]]
                     for b in (resp.get("aggregations") or {}).get("n", {}).get("buckets", [])}
            body = ""
            for h in hits:
                src = h["_source"]
                doc = _incident_doc({k: src.get(k) for k in ("severity", "state", "entity_kind", "entity")})
                doc.update(rules=sorted(rules.get(h["_id"], [])), centers=src.get("centers") or [])
                doc.setdefault("severity_rank", 0)  # a severity outside the scale sorts lowest; marks it done
                body += json.dumps({"update": {"_index": h["_index"], "_id": h["_id"]}}) + "\n" + \
                    json.dumps({"doc": doc}) + "\n"
            answer = self.client.bulk(operations=body, refresh=True)
            if answer.get("errors"):  # else the same incidents would come back forever
                failed = next(i["update"] for i in answer["items"] if i["update"].get("error"))
                raise RuntimeError(f"incident {failed['_id']} could not get the search fields: {failed['error']}")

    @staticmethod
    def _incident_filters(query) -> tuple[list[dict], dict[str, dict | None]]:
        """(filters, facet filters {"states": …, "severities": …}) of an IncidentQuery, as secops.store reads it."""
        filters: list[dict] = []
        for field, value in (("rules", query.rule), ("centers", query.center)):
            if value is not None:
                filters.append({"term": {field: value}})
        if query.source is not None:  # a term on an ip field takes a CIDR range too
            filters.append({"term": {"source_address": query.source}})
        if query.since is not None:
            filters.append({"range": {"last": {"gte": int(query.since * 1000), "format": "epoch_millis"}}})
        if query.until is not None:
            filters.append({"range": {"first": {"lte": int(query.until * 1000), "format": "epoch_millis"}}})
        if query.text:
            escaped = "".join("\\" + c if c in "*?\\" else c for c in query.text)
            filters.append({"wildcard": {"title.raw": {"value": f"*{escaped}*", "case_insensitive": True}}})
        facets = {"states": {"terms": {"state": list(query.states)}} if query.states else None,
                  "severities": {"terms": {"severity": list(query.severities)}} if query.severities else None}
        return filters, facets

    def search_incidents(self, query) -> dict:
        filters, facets = self._incident_filters(query)
        field = {"id": "number", "title": "title.raw", "severity": "severity_rank", "state": "state_rank",
                 "entity": "entity", "first": "first", "last": "last", "updated": "updated"}[query.sort]
        direction = "desc" if query.descending else "asc"
        chosen = [f for f in facets.values() if f is not None]

        def facet(skip: str, field_name: str) -> dict:
            others = [f for name, f in facets.items() if f is not None and name != skip]
            return {"filter": {"bool": {"filter": others}},
                    "aggs": {"n": {"terms": {"field": field_name, "size": 100}}}}

        resp = self.client.search(
            index=self.layout.incidents, ignore_unavailable=True, allow_no_indices=True,
            track_total_hits=query.counted, query={"bool": {"filter": filters}}, post_filter={"bool": {"filter": chosen}},
            sort=[{field: {"order": direction, "unmapped_type": "long"}}, {"number": direction}],
            from_=query.offset, size=query.limit,
            aggs={"by_state": facet("states", "state"), "by_severity": facet("severities", "severity")}
            if query.counted else None)
        aggs = resp.get("aggregations") or {}
        counts = {name: {b["key"]: b["doc_count"] for b in aggs.get(name, {}).get("n", {}).get("buckets", [])}
                  for name in ("by_state", "by_severity")}
        return {"total": resp["hits"]["total"]["value"] if query.counted else 0,
                "items": self._incident_records(resp["hits"]["hits"]),
                "counts": counts}

    def incident_overview(self, bounds: list[float], top: int = 10) -> dict:
        from ..model import CLOSED, STATES, IncidentQuery
        ranges = [{"from": str(int(a * 1000)), "to": str(int(b * 1000))} for a, b in zip(bounds, bounds[1:])]
        resp = self.client.search(
            index=self.layout.decisions, size=0, ignore_unavailable=True, allow_no_indices=True,
            query={"bool": {"filter": [{"term": {"action": "block"}}, {"range": {"created": {
                "gte": int(bounds[0] * 1000), "lt": int(bounds[-1] * 1000), "format": "epoch_millis"}}}]}},
            aggs={"days": {"date_range": {"field": "created", "format": "epoch_millis", "ranges": ranges},
                           "aggs": {"centers": {"terms": {"field": "centers", "size": 1000}},
                                    "rules": {"terms": {"field": "rule", "size": 1000, "missing": "manual"}}}},
                  "top": {"terms": {"field": "address", "size": top, "order": [{"_count": "desc"}, {"_key": "asc"}]}}})
        aggs = resp.get("aggregations") or {}
        buckets = aggs.get("days", {}).get("buckets", [])
        days = [{"blocks": b["doc_count"], "by_center": {c["key"]: c["doc_count"] for c in b["centers"]["buckets"]},
                 "by_rule": {r["key"]: r["doc_count"] for r in b["rules"]["buckets"]}} for b in buckets] \
            or [{"blocks": 0, "by_center": {}, "by_rule": {}} for _ in ranges]
        open_states = tuple(s for s in STATES if s not in CLOSED)
        facets = self.search_incidents(IncidentQuery(states=open_states, limit=0))
        return {"days": days, "top_sources": [{"address": b["key"], "blocks": b["doc_count"]}
                                              for b in aggs.get("top", {}).get("buckets", [])],
                "open_incidents": facets["total"], "open_by_severity": facets["counts"]["by_severity"],
                "by_state": facets["counts"]["by_state"]}

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

    # ------------------------------------------------------------ cases: observables (secops.cases, secops.incidents)
    # Kept on the alert document as keywords "kind|value": they follow the alert when it moves between
    # incidents (merge, split), and one terms query finds every alert, hence incident, showing a value.
    def _observables_mapping(self) -> None:
        # an alerts index made before cases lacks the field (the template adds it only to new indices)
        if not getattr(self, "_has_observables", False):
            self.client.options(ignore_status=404).indices.put_mapping(
                index=self.layout.alerts, properties={"observables": {"type": "keyword"}})
            self._has_observables = True

    def save_observables(self, alert_id, pairs) -> None:
        """Index (kind, value) pairs seen in an alert's evidence (the alert keeps the union)."""
        new = {f"{k}|{v}" for k, v in pairs}
        if not new:
            return
        self._observables_mapping()
        from elasticsearch import NotFoundError
        try:
            doc = self.client.get(index=self.layout.alerts, id=str(alert_id), source_includes=["observables"])
        except NotFoundError:
            return
        known = set(doc["_source"].get("observables") or [])
        if not new <= known:
            self.client.update(index=self.layout.alerts, id=str(alert_id), refresh=True,
                               doc={"observables": sorted(known | new)})

    def incident_observables(self, incident_id) -> list[tuple[str, str]]:
        hits = self._search_all(self.layout.alerts, {"term": {"incident_id": str(incident_id)}}, [{"first": "asc"}],
                                source_includes=["observables"])
        found = {tuple(o.split("|", 1)) for h in hits for o in h["_source"].get("observables") or []}
        return sorted(found)

    def observable_incidents(self, pairs, limit: int = 20) -> dict[tuple[str, str], list[int]]:
        """For each (kind, value): the incidents whose alerts show it, newest first (at most `limit` each)."""
        pairs = list(pairs)
        out: dict[tuple[str, str], list[int]] = {p: [] for p in pairs}
        if not pairs:
            return out
        hits = self._search_all(self.layout.alerts, {"terms": {"observables": [f"{k}|{v}" for k, v in pairs]}},
                                [{"last": "desc"}], source_includes=["observables", "incident_id"])
        for h in hits:
            incident = h["_source"].get("incident_id")
            if not incident:
                continue
            for o in h["_source"].get("observables") or []:
                key = tuple(o.split("|", 1))
                if key in out and int(incident) not in out[key]:
                    out[key].append(int(incident))
        return {k: sorted(v, reverse=True)[:limit] for k, v in out.items()}

    def notes_of_incidents(self, incident_ids: list) -> dict:
        """{incident id: its notes as incident_notes gives them} for many incidents in one pass."""
        out: dict = {i: [] for i in incident_ids}
        for start in range(0, len(incident_ids), 1000):
            chunk = [str(i) for i in incident_ids[start:start + 1000]]
            resp = self.client.mget(index=self.layout.incidents, ids=chunk, source_includes=["notes", "number"])
            for doc in resp["docs"]:
                if doc.get("found"):
                    out[doc["_source"]["number"]] = [{**n, "created": epoch(n["created"])}
                                                     for n in doc["_source"].get("notes") or []]
        return out

    # ------------------------------------------------------------ interception: range bans, forgetting escalation
    def latest_blocks(self) -> dict[str, tuple[int, float]]:
        """Per address (or range): (offence count of its latest block, when that block ends, epoch seconds)."""
        latest: dict[str, tuple[int, float]] = {}
        after = None
        while True:
            composite: dict[str, Any] = {"size": 1000, "sources": [{"a": {"terms": {"field": "address"}}}]}
            if after:
                composite["after"] = after
            top = {"top_hits": {"size": 1, "sort": [{"sequence": "desc"}], "_source": ["offence", "until"]}}
            resp = self.client.search(index=self.layout.decisions, size=0, ignore_unavailable=True,
                                      allow_no_indices=True, query={"term": {"action": "block"}},
                                      aggs={"c": {"composite": composite, "aggs": {"last": top}}})
            agg = (resp.get("aggregations") or {}).get("c")
            if not agg or not agg["buckets"]:
                return latest
            for bucket in agg["buckets"]:
                src = bucket["last"]["hits"]["hits"][0]["_source"]
                if src.get("until"):
                    latest[bucket["key"]["a"]] = (src.get("offence") or 0, epoch(src["until"]))
            after = agg.get("after_key")
            if after is None:
                return latest
