"""Detection on Elasticsearch: the same Sigma rules, run as scheduled searches.

Each base rule becomes one search restricted to the datasets its log source covers: the Lucene
query of pysigma-backend-elasticsearch (`LuceneBackend`, with govctl's ECS processing pipeline) in a
`query_string` query, or, for the rules Elasticsearch cannot express exactly (secops/es/query.py
decides; of the bundled rules only `web_webshell`, for its `re`), govctl's own Query DSL superset whose
hits the rule's compiled predicate confirms. A run reads what was *ingested* since the last run, minus an overlap
(`overlap_seconds`: bulks that were slow or not yet refreshed), so events that arrive late in event
time are still seen; events already evaluated in the previous run's overlap are skipped by id.

Correlations (event_count, value_count, temporal, temporal_ordered) are evaluated by govctl over the
query results, with the embedded engine's own sliding windows (secops.detect.Detector): the
matching events of all rules, merged in event-time order, are fed to a Detector whose base-rule
predicates only ask "did Elasticsearch match this rule?". The alert logic therefore is one piece of
code for both stores. ES|QL could count per fixed bucket, but Sigma windows here slide, and the
minimal distribution has no ES|QL. Alerts are stored with deterministic ids, so an alert found
again (an overlapping run, a restart) is the same document.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from core import yamlfile

from ..detect import DEFAULT_AGGREGATION_SECONDS, DEFAULT_PIPELINE, Alert, Detector, RuleSet
from ..normalize import LOGSOURCES, iso
from .query import MATCH_NONE, Converter
from .store import ElasticStore, epoch, from_document

BACKEND = "pysigma-backend-elasticsearch"
GOVCTL = "govctl"
MATCHED = "_govctl_matched"  # per event: names of the base rules Elasticsearch matched
CANDIDATES_MAX = 10000  # more candidate groups than this: fetch every hit instead
SHARD_GROUPS_MAX = 200_000  # groups per shard counted exactly by the candidate aggregation


@dataclass
class RuleQuery:
    name: str
    query: dict  # Query DSL (datasets included)
    exact: bool  # False: hits are confirmed by the rule's compiled predicate
    engine: str  # BACKEND (the backend's Lucene query) or GOVCTL (secops/es/query.py)
    predicate: Callable[[dict], bool]
    candidates: tuple[str, int, float] | None = None  # (group field, min events, longest timespan), see below


def candidate_filter(rule) -> tuple[str, int, float] | None:
    """For a rule that only feeds count correlations (event_count / value_count with gte or gt, one
    group-by field): a group can reach the threshold only with at least that many matching events, so
    its events need fetching only for groups that have them (a `terms` aggregation with min_doc_count)."""
    if rule.generates or not rule.downstream:
        return None
    fields, needs, spans = set(), [], []
    for corr in rule.downstream:
        if corr.kind not in ("event_count", "value_count") or corr.op not in ("gte", "gt") \
                or len(corr.group_by) != 1 or corr.aliases.get(corr.group_by[0]):
            return None
        fields.add(corr.group_by[0])
        needs.append(math.ceil(corr.threshold) if corr.op == "gte" else math.floor(corr.threshold) + 1)
        spans.append(corr.timespan)
    if len(fields) != 1:
        return None
    return fields.pop(), max(1, min(needs)), max(spans)


def parsed_rules(ruleset: RuleSet) -> dict[str, Any]:
    """The loaded base rules as pySigma parsed them (before any processing pipeline), by rule name.
    secops.detect keeps only compiled predicates, so the files the rules came from are parsed again
    (without resolving correlation references, which would mark the referenced rules as not output)."""
    from sigma.collection import SigmaCollection
    from sigma.correlations import SigmaCorrelationRule

    wanted = {r.info.name for r in ruleset.base}
    rules: dict[str, Any] = {}
    for path in sorted({r.info.path for r in ruleset.base}):
        collection = SigmaCollection.from_dicts(yamlfile.load_all(path), collect_errors=True,
                                                resolve_references=False)
        for rule in collection.rules:
            if isinstance(rule, SigmaCorrelationRule):
                continue
            name = rule.name or (str(rule.id) if rule.id else Path(path).stem)
            if name in wanted and name not in rules:
                rules[name] = rule
    return rules


def _pipeline(pipeline: Path | None):
    from sigma.processing.pipeline import ProcessingPipeline
    return ProcessingPipeline.from_dict(yamlfile.load(pipeline)) if pipeline else ProcessingPipeline()


def rule_trees(ruleset: RuleSet, pipeline: Path | None = DEFAULT_PIPELINE) -> dict[str, list]:
    """Parsed condition trees of the loaded base rules (after the processing pipeline), by rule name."""
    proc = _pipeline(pipeline)
    trees: dict[str, list] = {}
    for name, rule in parsed_rules(ruleset).items():
        rule = proc.apply(copy.deepcopy(rule))  # apply() changes the rule in place
        trees[name] = [c.parsed for c in rule.detection.parsed_condition]
    return trees


def lucene_query(backend, rule) -> dict:
    """The backend's Query DSL for one rule (its `dsl_lucene` format: a query_string per condition, ORed).
    `lenient`: a value of the wrong type for a field (a word compared with a numeric field) matches
    nothing, as in Sigma, instead of failing the whole search."""
    parts = []
    for dsl in backend.convert_rule(copy.deepcopy(rule), "dsl_lucene"):
        query = copy.deepcopy(dsl["query"])
        for clause in query["bool"]["must"]:
            clause["query_string"]["lenient"] = True
        parts.append(query)
    if not parts:
        raise ValueError(f"pysigma-backend-elasticsearch produced no query for rule {rule.name!r}")
    return parts[0] if len(parts) == 1 else {"bool": {"should": parts, "minimum_should_match": 1}}


def datasets_for(logsource: dict[str, str]) -> list[str]:
    """The datasets whose Sigma log sources satisfy a rule's logsource (as the embedded engine plans)."""
    return sorted(ds for ds, sources in LOGSOURCES.items()
                  if all(v in sources.get(k, ()) for k, v in logsource.items()))


def compile_queries(ruleset: RuleSet, store: ElasticStore, pipeline: Path | None = DEFAULT_PIPELINE) -> list[RuleQuery]:
    """One search per base rule: the backend's Lucene query where govctl's converter finds the rule exactly
    expressible, govctl's own (superset) query otherwise."""
    from sigma.backends.elasticsearch import LuceneBackend

    converter = Converter.for_mappings(store.layout.templates["events"]["mappings"])
    backend = LuceneBackend(_pipeline(pipeline))
    rules = parsed_rules(ruleset)
    trees = rule_trees(ruleset, pipeline)
    out = []
    for rule in ruleset.base:
        name = rule.info.name
        query, exact = converter.convert(trees[name])
        engine = GOVCTL
        if exact:
            query, engine = lucene_query(backend, rules[name]), BACKEND
        datasets = datasets_for(rule.logsource)
        if not datasets:
            query = MATCH_NONE
        else:
            query = {"bool": {"filter": [query, {"terms": {"event.dataset": datasets}}]}}
        out.append(RuleQuery(name, query, exact, engine, rule.predicate, candidate_filter(rule)))
    return out


def _es_matched_rules(ruleset: RuleSet) -> RuleSet:
    """The rule set with each base rule's predicate replaced by "Elasticsearch matched it"."""
    rules = copy.deepcopy(ruleset)
    for rule in rules.base:
        name = rule.info.name
        rule.predicate = lambda e, name=name: name in e[MATCHED]
        rule.index = None
    return rules


class ScheduledDetection:
    """Runs the rule searches over what was ingested since the last run (persisted checkpoint)."""

    def __init__(self, store: ElasticStore, ruleset: RuleSet, *, pipeline: Path | None = DEFAULT_PIPELINE,
                 name: str = "default", aggregation_seconds: float = DEFAULT_AGGREGATION_SECONDS,
                 on_alert: Callable[[Alert, bool], None] | None = None,
                 on_stored: Callable[[Alert], None] | None = None):
        """`on_alert(alert, new)`: as the embedded Detector's, while a run feeds its windows; `on_stored(alert)`:
        after the alert is saved (it has its id), e.g. to decide on a block and group it into an incident."""
        self.store = store
        self._on_stored = on_stored
        self.name = name
        self.queries = compile_queries(ruleset, store, pipeline)
        self.opts = store.cfg["detection"]
        self._touched: dict[int, Alert] = {}
        self._user_on_alert = on_alert
        self.detector = Detector(_es_matched_rules(ruleset), aggregation_seconds, on_alert=self._on_alert)
        self.seen: dict[str, dict[str, float]] = {q.name: {} for q in self.queries}  # rule → event id → ingested
        self.tracked: dict[str, dict[Any, float]] = {q.name: {} for q in self.queries}  # rule → group → last run
        self.latency: dict[str, list[float]] = {q.name: [] for q in self.queries}  # seconds per search
        self.max_timespan = max((c.timespan for c in ruleset.correlations), default=0.0)
        self.checkpoint = self._load_checkpoint()
        self._fresh = True

    def _on_alert(self, alert: Alert, new: bool) -> None:
        self._touched[id(alert)] = alert
        if self._user_on_alert is not None:
            self._user_on_alert(alert, new)

    # -------------------------------------------------------------- checkpoint
    def _load_checkpoint(self) -> float | None:
        from elasticsearch import NotFoundError
        try:
            doc = self.store.client.get(index=self.store.layout.detection, id=self.name)
        except NotFoundError:
            return None
        return epoch(doc["_source"]["checkpoint"])

    def _save_checkpoint(self, until: float) -> None:
        self.store.client.index(index=self.store.layout.detection, id=self.name,
                                document={"checkpoint": iso(until), "updated": iso(time.time())})

    # -------------------------------------------------------------- one run
    def run_once(self, now: float | None = None) -> dict[str, Any]:
        """Search every rule over [checkpoint − overlap, now); feed new matches; store touched alerts."""
        until = time.time() if now is None else now
        self.store.refresh()  # everything acknowledged so far is searchable (also with refresh_interval -1)
        lookback = self.opts["overlap_seconds"]
        if self._fresh and self.checkpoint is not None:
            lookback += self.max_timespan  # after a restart: rebuild correlation windows
        since = None if self.checkpoint is None else self.checkpoint - lookback
        ingested: dict[str, Any] = {"lt": int(until * 1000), "format": "epoch_millis"}
        if since is not None:
            ingested["gte"] = int(since * 1000)
        matched: dict[str, dict] = {}
        hits_total = 0
        for rq in self.queries:
            started = time.perf_counter()
            query, window = self._narrow(rq, ingested, until)
            seen = self.seen[rq.name]
            for hit in (self._search(query, window) if query is not None else ()):
                hits_total += 1
                doc_id = hit["_id"]
                if doc_id in seen:  # fed for this rule by an earlier run (the overlap)
                    continue
                event = matched.get(doc_id)
                if event is None:
                    event = from_document(hit["_source"])
                    event[MATCHED] = set()
                    matched[doc_id] = event
                if rq.exact or rq.predicate(event):
                    event[MATCHED].add(rq.name)
                    seen[doc_id] = epoch(event["event.ingested"]) if "event.ingested" in event else until
            self.latency[rq.name].append(time.perf_counter() - started)
        ordered = sorted(((e["@timestamp"], e.get("govctl.source", ""), e.get("govctl.position", 0), i, e)
                          for i, e in matched.items() if e[MATCHED]), key=lambda x: x[:3])
        process = self.detector.process
        for *_, doc_id, event in ordered:
            process(event)
        horizon = until - lookback - self.opts["overlap_seconds"]
        for name, seen in self.seen.items():
            self.seen[name] = {k: t for k, t in seen.items() if t >= horizon}
        stored = 0
        for alert in self._touched.values():
            self.store.save_alert(alert)
            stored += 1
            if self._on_stored is not None:
                self._on_stored(alert)
        self._touched.clear()
        self.detector.alerts.clear()
        self.checkpoint = until
        self._fresh = False
        self._save_checkpoint(until)
        return {"since": iso(since) if since is not None else None, "until": iso(until), "hits": hits_total,
                "events": len(ordered), "alerts_stored": stored}

    def _narrow(self, rq: RuleQuery, ingested: dict, until: float) -> tuple[dict | None, dict]:
        """The rule's query and ingest window, restricted to candidate groups where that is safe.

        A group becomes a candidate when it has enough matching events within the correlations' longest
        timespan (of ingest time) before this run; its events are then fetched from that far back once
        (none were fed before), and from then on, while it stays active, like every other rule's (the
        run's window, overlap deduplicated by id). Falls back to every hit when the aggregation is not
        exact or finds too many groups."""
        if rq.candidates is None:
            return rq.query, ingested
        field, min_count, span = rq.candidates
        tracked = self.tracked[rq.name]
        for key in [k for k, last in tracked.items() if last < until - span - self.opts["overlap_seconds"]]:
            del tracked[key]
        wide = dict(ingested)
        if "gte" in wide:
            wide["gte"] = int(wide["gte"] - span * 1000)
        resp = self.store.search_event_index(
            size=0, query={"bool": {"filter": [rq.query, {"range": {"event.ingested": wide}}]}},
            # shard_size: a shard that returns all its groups makes the counts exact (error bound 0)
            aggs={"k": {"terms": {"field": field, "min_doc_count": min_count, "size": CANDIDATES_MAX,
                                  "shard_size": SHARD_GROUPS_MAX}}})
        agg = (resp.get("aggregations") or {}).get("k")
        if agg is None:
            return None, ingested  # no index yet
        keys = [b["key"] for b in agg["buckets"]]
        if agg.get("doc_count_error_upper_bound", 0) or len(keys) + len(tracked) >= CANDIDATES_MAX:
            tracked.clear()
            return rq.query, ingested
        new = [k for k in keys if k not in tracked]
        old = list(tracked)
        for key in keys:
            tracked[key] = until
        parts = []
        if new:
            parts.append({"bool": {"filter": [{"terms": {field: new}}, {"range": {"event.ingested": wide}}]}})
        if old:
            parts.append({"bool": {"filter": [{"terms": {field: old}}, {"range": {"event.ingested": ingested}}]}})
        if not parts:
            return None, ingested
        return {"bool": {"filter": [rq.query], "should": parts, "minimum_should_match": 1}}, wide

    def _search(self, query: dict, ingested: dict):
        """All hits of a rule in the ingest window, paged with search_after on a unique sort."""
        size = self.opts["page_size"]
        body_query = {"bool": {"filter": [query, {"range": {"event.ingested": ingested}}]}}
        sort = [{"event.ingested": "asc"}, {"govctl.source": "asc"}, {"govctl.position": "asc"}]
        after = None
        while True:
            kwargs: dict[str, Any] = {"search_after": after} if after else {}
            resp = self.store.search_event_index(query=body_query, sort=sort, size=size, track_total_hits=False, **kwargs)
            hits = resp["hits"]["hits"]
            yield from hits
            if len(hits) < size:
                return
            after = hits[-1]["sort"]
