"""Streaming Sigma evaluation: base rules, v2 correlations on sliding event-time windows, alerts.

Rules are Sigma YAML files read with pySigma. A file that does not parse, or that uses something this
evaluator does not implement, is refused with its path and reason (`RuleSet.errors`); the other
rules keep running. Correlations (event_count, value_count, temporal, temporal_ordered) keep per
group-by key a window of the events in [t − timespan, t], one entry per distinct time — sliding, so
an attack split across two fixed buckets is still seen. An event exactly `timespan` seconds older than
the newest still counts; a late event counts in the window of the newest event if it falls inside it,
and is dropped if it is more than a whole window late.

Trusted pairs (govctl's custom attributes, schemas/rule-trust.schema.yaml): a base rule with
`earns_trust: {pair, window}` makes the values of `pair` in each event it matches trusted for `window`
after that event; a correlation with `trust: {earned_by, counts}` counts only the events whose pair
is (`trusted`) or is not (`untrusted`) trusted at the event's time. docs/secops.md says why.
"""
from __future__ import annotations

import bisect
import collections
import copy
import functools
import operator
import re
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from core import yamlfile

from .normalize import LOGSOURCES, line_numbers
from .sigma_compile import Screen, compile_condition, index_key, literal_screen
from .sigma_tree import UnsupportedRule

BUNDLED_RULES = Path(__file__).parent / "rules"
DEFAULT_PIPELINE = Path(__file__).parent / "pipelines" / "ecs.yaml"
EVIDENCE_PER_ALERT = 10
DEFAULT_AGGREGATION_SECONDS = 300.0  # base-rule matches of one entity closer than this form one alert
TRUST_SCHEMA = Path(__file__).parent / "schemas" / "rule-trust.schema.yaml"
_NEVER = float("-inf")


@dataclass
class RuleInfo:
    """What an alert says about the rule that raised it."""

    name: str
    id: str
    title: str
    level: str
    tags: list[str]
    path: str
    response: str | None  # "block": interception may act on the alert's source address

    @property
    def attack(self) -> list[str]:
        return [t for t in self.tags if t.startswith("attack.")]

    @property
    def djcp(self) -> list[str]:
        return [t for t in self.tags if t.startswith("djcp.")]


@dataclass
class BaseRule:
    info: RuleInfo
    logsource: dict[str, str]
    predicate: Callable[[dict], bool]
    index: tuple[str, frozenset[str]] | None
    generates: bool = True
    downstream: list["Correlation"] = field(default_factory=list)
    earns_trust: "TrustedPairs | None" = None  # each match makes its pair trusted
    # when some downstream correlations count only trusted or only untrusted pairs (_trust_routes)
    routes: "tuple[TrustedPairs | None, tuple[Correlation, ...], tuple[Correlation, ...]] | None" = None
    screen: Screen | None = None  # texts one of which the rule needs (sigma_compile.literal_screen)


class TrustedPairs:
    """The pairs (e.g. account, source address) a base rule matched within the last `window` seconds:
    the newest match time per pair. Memory stays bounded by the pairs of about one window: whenever the
    table has doubled, pairs older than the window are forgotten."""

    def __init__(self, rule: str, pair: tuple[str, ...], window: float):
        self.rule, self.pair, self.window = rule, pair, float(window)
        self.last: dict[Any, float] = {}
        self._key = operator.itemgetter(*pair)  # in C: a tuple of the values (the value, for one field)
        self._several = len(pair) > 1
        self._prune_at = 4096

    def earn(self, event: dict) -> None:
        try:
            key = self._key(event)
            if key is None or self._several and None in key:
                return
            t = event["@timestamp"]
            last = self.last
            if t > last.get(key, _NEVER):
                last[key] = t
                if len(last) > self._prune_at:
                    self._forget_before(t - self.window)
        except (KeyError, TypeError):  # a value missing, or an ECS array among them: no pair to trust
            return

    def _forget_before(self, horizon: float) -> None:
        self.last = {k: v for k, v in self.last.items() if v >= horizon}
        self._prune_at = max(4096, 2 * len(self.last))

    def state(self) -> list:
        """The trusted pairs as JSON-able data (a restart must not make administrators strangers)."""
        return [[list(k) if self._several else k, v] for k, v in self.last.items()]

    def restore(self, state: list) -> None:
        self.last.update((tuple(k) if self._several else k, v) for k, v in state)
        self._prune_at = max(4096, 2 * len(self.last))

    def trusted(self, event: dict) -> bool:
        """Did the pair of `event` match the earning rule at most `window` seconds before it? (Only the
        newest match is kept: a late event older than it is not trusted, the cautious answer.)"""
        try:
            last = self.last.get(self._key(event))
        except (KeyError, TypeError):
            return False
        return last is not None and 0 <= event["@timestamp"] - last <= self.window


@dataclass
class Alert:
    rule: RuleInfo
    group: dict[str, Any]
    first: float
    last: float
    count: int
    evidence: list[dict] = field(default_factory=list)
    id: int | None = None  # set once stored

    @property
    def source_ip(self) -> str | None:
        return self.group.get("source.ip")

    @property
    def user(self) -> str | None:
        return self.group.get("user.name")

    @property
    def host(self) -> str | None:
        return self.group.get("host.hostname")

    @property
    def key(self) -> str:
        """Deterministic: the same alert derived again (after a restart, or by an overlapping search)
        has the same key, so stores update it instead of keeping it twice. Rule, group and the time of
        its first event never change during an alert's life."""
        import json
        return json.dumps([self.rule.name, sorted(self.group.items()), round(self.first, 3)], default=str)

    def add_evidence(self, event: dict) -> None:
        if len(self.evidence) < EVIDENCE_PER_ALERT:
            self.evidence.append(event)

    def summary(self) -> dict[str, Any]:
        from .normalize import iso
        return {"rule": self.rule.name, "rule_id": self.rule.id, "title": self.rule.title,
                "level": self.rule.level, "source.ip": self.source_ip, "user": self.user,
                "host": self.host, "first": iso(self.first), "last": iso(self.last), "count": self.count}


_THRESHOLD_TESTS: dict[str, Callable[[float], Callable[[float], bool]]] = {
    "gte": lambda t: t.__le__, "gt": lambda t: t.__lt__, "lte": lambda t: t.__ge__,
    "lt": lambda t: t.__gt__, "eq": lambda t: t.__eq__, "neq": lambda t: t.__ne__,
}


class Correlation:
    """One Sigma correlation rule and its per-group sliding windows. A subclass per correlation type
    (`kind`) says what a group's window holds and what it counts; this class groups the events, keeps
    the windows bounded and raises and grows the alerts."""

    kind = ""

    def __init_subclass__(cls, **kwargs):
        # Each type gets its own copy of the per-event code. CPython specialises attribute reads inside a
        # code object for the one class it sees there: code shared by four classes would read every
        # attribute the slow way, on the hot path (measured: +3 % replay instructions).
        super().__init_subclass__(**kwargs)
        for name in ("feed", "count"):
            shared = getattr(cls, name)
            cls_copy = types.FunctionType(shared.__code__.replace(), shared.__globals__, shared.__name__,
                                          shared.__defaults__, shared.__closure__)
            cls_copy.__qualname__, cls_copy.__doc__ = shared.__qualname__, shared.__doc__
            setattr(cls, name, cls_copy)

    def __init__(self, info: RuleInfo, timespan: float, group_by: list[str],
                 op: str, count: float, fieldref: str | None, refs: list[str],
                 aliases: dict[str, dict[str, str]]):
        self.info, self.timespan = info, float(timespan)
        self.group_by, self.op, self.threshold, self.fieldref = group_by, op, count, fieldref
        self.refs = refs  # referenced rule names, in order (temporal_ordered)
        self.aliases = aliases  # alias → {rule name → event field}
        self.downstream: list[Correlation] = []
        self.windows: dict[tuple, Any] = {}
        self.newest_of: dict[tuple, float] = {}  # temporal kinds: newest time per group
        self.open: dict[tuple, Alert] = {}
        self.newest = float("-inf")
        self._since_prune = 0
        self.trust: TrustedPairs | None = None  # set with `counts_trusted` from the rule's `trust:`
        self.counts_trusted = False

        self._holds = _THRESHOLD_TESTS[op](count)
        self._at_least = count if op == "gte" else None  # the usual condition, tested without a call

        # per referenced rule, the event fields that make up the group-by key (aliases resolved)
        self._fields = {r: tuple(aliases.get(f, {}).get(r, f) for f in group_by) for r in refs}
        self._value_field = {r: aliases.get(fieldref, {}).get(r, fieldref) for r in refs} if fieldref else {}
        # one group-by field, the same for every referenced rule (no aliases): the usual case
        distinct = set(self._fields.values())
        self._one_field = next(iter(distinct))[0] if len(distinct) == 1 and len(group_by) == 1 else None

    def _key(self, ref: str, event: dict) -> tuple | None:
        values = []
        for real in self._fields[ref]:
            v = event.get(real)
            if v is None or v.__class__ is list:
                return None  # an event without the group-by field cannot be grouped
            values.append(v)
        return tuple(values)

    # -------------------------------------------------------------- what a subclass says
    def count(self, key, ref: str, event: dict, t: float) -> int | None:
        """Add the event (of referenced rule `ref`, at `t`) to its group's window and drop what fell out of
        it; returns the number the threshold is tested on, or None when the event is later than a whole
        window behind the group's newest one (nothing left to pair it with)."""
        raise NotImplementedError

    def earliest(self, win) -> float:
        raise NotImplementedError

    def latest(self, win) -> float:
        raise NotImplementedError

    def alert_count(self, win, n: int) -> int:
        """What a new alert counts: the events in its window."""
        raise NotImplementedError

    def window_out(self, win) -> Any:
        """A window as JSON-able data (a checkpoint)."""
        raise NotImplementedError

    def window_in(self, data) -> Any:
        raise NotImplementedError

    # -------------------------------------------------------------- the common part
    def feed(self, ref: str, event: dict, sink: "Detector") -> None:
        # The hot path of every correlation: attributes read once into locals, no tuple per event
        # for the usual single group-by field.
        field = self._one_field
        if field is not None:  # every referenced rule groups by the same one field: the value is the key
            key = event.get(field)
            if key is None or key.__class__ is list:
                return
        else:
            key = self._key(ref, event)
            if key is None:
                return
        t = event["@timestamp"]
        if t > self.newest:
            self.newest = t
        self._since_prune += 1
        if self._since_prune >= 4096:
            self._prune()
        n = self.count(key, ref, event, t)
        if n is None:
            return
        at_least = self._at_least
        if at_least is not None:
            if n < at_least:
                return
        elif not self._holds(n):
            return
        ts = self.timespan
        alert = self.open.get(key)
        if alert is not None and t - alert.last <= ts:
            alert.count += 1
            if t > alert.last:
                alert.last = t
            if len(alert.evidence) < EVIDENCE_PER_ALERT:
                alert.evidence.append(event)
            if sink.on_alert is not None:  # the hot path of a long attack: no emit() frame
                sink.on_alert(alert, False)
        else:
            win = self.windows[key]
            group = dict(zip(self.group_by, key if field is None else (key,)))
            alert = Alert(self.info, group, first=max(t - ts, self.earliest(win)), last=max(t, self.latest(win)),
                          count=self.alert_count(win, n))
            alert.add_evidence(event)
            self.open[key] = alert
            sink.emit(alert)
        for corr in self.downstream:
            if corr.trust is None or corr.admits(event):
                corr.feed(self.info.name, event, sink)

    def admits(self, event: dict) -> bool:
        """Does this correlation count the event, given its `trust:` (counts trusted or untrusted pairs)?"""
        return self.trust is None or self.trust.trusted(event) is self.counts_trusted

    def _prune(self) -> None:
        """Drop windows and open alerts nothing can extend any more: memory stays bounded."""
        self._since_prune = 0
        horizon = self.newest - self.timespan
        for key in [k for k, w in self.windows.items() if self.latest(w) < horizon]:
            del self.windows[key]
            self.newest_of.pop(key, None)
        for key in [k for k, a in self.open.items() if a.last < horizon]:
            del self.open[key]

    def state(self, ref: Callable[[Alert], Any]) -> dict:
        """Windows and open alerts as JSON-able data (alerts through `ref`), for a checkpoint."""
        return {"kind": self.kind, "windows": [[_key_out(k), self.window_out(w)] for k, w in self.windows.items()],
                "newest_of": [[_key_out(k), t] for k, t in self.newest_of.items()],
                "open": [[_key_out(k), ref(a)] for k, a in self.open.items()], "newest": self.newest,
                "since_prune": self._since_prune}

    def restore(self, state: dict, alert: Callable[[Any], Alert | None]) -> None:
        """The inverse of state(); a checkpoint of another kind of rule (the rule changed) is ignored."""
        if state.get("kind") != self.kind:
            return
        for k, w in state["windows"]:
            self.windows[_key_in(k)] = self.window_in(w)
        self.newest_of.update((_key_in(k), t) for k, t in state["newest_of"])
        for k, r in state["open"]:
            a = alert(r)
            if a is not None:
                self.open[_key_in(k)] = a
        self.newest, self._since_prune = state["newest"], state["since_prune"]


class EventCount(Correlation):
    """`event_count`: how many events of the group fall within the timespan. Window: a TimeTally."""

    kind = "event_count"

    def count(self, key, ref: str, event: dict, t: float) -> int | None:
        win = self.windows.get(key)
        if win is None:
            win = self.windows[key] = TimeTally()
        win.add(t)
        horizon = win.entries[-1][0] - self.timespan
        win.expire(horizon)
        if t < horizon:
            return None
        # Whatever is kept lies in [newest - timespan, newest]: the window that holds this event
        # (late ones included) and the most events.
        return win.total

    def earliest(self, win) -> float:
        return win.entries[0][0]

    def latest(self, win) -> float:
        return win.entries[-1][0] if win.entries else float("-inf")

    def alert_count(self, win, n: int) -> int:
        return n

    def window_out(self, win) -> Any:
        return win.state()

    def window_in(self, data) -> Any:
        return TimeTally.restored(data)


class ValueCount(Correlation):
    """`value_count`: how many distinct values of `condition.field` the group's events within the
    timespan have. Window: (entries, values) — entries `[time, {value: events}]` (see _entry_at), and
    the events per value over the whole window, whose length the rule tests. Plain containers, not a
    class: most groups of a city's firewall drops are sources seen once, and creating their window is
    on the hot path."""

    kind = "value_count"

    def count(self, key, ref: str, event: dict, t: float) -> int | None:
        value = event.get(self._value_field[ref])
        if value is None:
            return None
        value = str(value)
        win = self.windows.get(key)
        if win is None:  # plain dicts: a Counter's missing-key hook is a Python call per new value
            win = self.windows[key] = (collections.deque(), {})
        entries, values = win
        at = _entry_at(entries, t, dict)[1]
        at[value] = at.get(value, 0) + 1
        values[value] = values.get(value, 0) + 1
        horizon = entries[-1][0] - self.timespan
        while entries[0][0] < horizon:  # never empties: the newest entry lies within the timespan
            for gone, n in entries.popleft()[1].items():
                left = values[gone] - n
                if left:
                    values[gone] = left
                else:
                    del values[gone]
        if t < horizon:
            return None
        return len(values)

    def earliest(self, win) -> float:
        return win[0][0][0] if win[0] else float("inf")

    def latest(self, win) -> float:
        return win[0][-1][0] if win[0] else float("-inf")

    def alert_count(self, win, n: int) -> int:
        return sum(sum(at.values()) for _, at in win[0])

    def window_out(self, win) -> Any:
        return {"entries": list(win[0])}

    def window_in(self, data) -> Any:
        """From window_out(); a checkpoint written before entries holds a [time, value] pair per event."""
        if isinstance(data, dict):
            entries = collections.deque([t, dict(at)] for t, at in data["entries"])
        else:
            entries = collections.deque()
            for t, value in data:
                at = _entry_at(entries, t, dict)[1]
                at[value] = at.get(value, 0) + 1
        values: dict[str, int] = {}
        for _, at in entries:
            for value, n in at.items():
                values[value] = values.get(value, 0) + n
        return entries, values


class Temporal(Correlation):
    """`temporal`: how many of the referenced rules matched the group within the timespan. Window: per
    referenced rule, a TimeTally of the times it matched."""

    kind = "temporal"
    ordered = False  # TemporalOrdered: the rules must have matched in their order

    def count(self, key, ref: str, event: dict, t: float) -> int | None:
        win = self.windows.get(key)
        if win is None:
            win = self.windows[key] = {r: TimeTally() for r in self.refs}
        win[ref].add(t)
        newest = self.newest_of.get(key, t)
        if t >= newest:
            newest = self.newest_of[key] = t
        horizon = newest - self.timespan
        complete = True  # does every referenced rule still have a time in the window?
        for tally in win.values():
            tally.expire(horizon)
            if not tally.total:
                complete = False
        if t < horizon:
            return None
        if self.ordered:  # a flag, not another method: this runs for every event the rule references
            return len(self.refs) if complete and _in_order([win[r].entries for r in self.refs]) else 0
        return len(win) if complete else sum(1 for tally in win.values() if tally.total)

    def earliest(self, win) -> float:
        return min((tally.entries[0][0] for tally in win.values() if tally.total), default=float("inf"))

    def latest(self, win) -> float:
        return max((tally.entries[-1][0] for tally in win.values() if tally.total), default=float("-inf"))

    def alert_count(self, win, n: int) -> int:
        return sum(tally.total for tally in win.values())

    def window_out(self, win) -> Any:
        return {r: tally.state() for r, tally in win.items()}

    def window_in(self, data) -> Any:
        return {r: TimeTally.restored(data.get(r, ())) for r in self.refs}


class TemporalOrdered(Temporal):
    """`temporal_ordered`: as temporal, but the referenced rules must have matched in their order:
    the count is all of them or none."""

    kind = "temporal_ordered"
    ordered = True


CORRELATION_TYPES: dict[str, type[Correlation]] = {c.kind: c for c in (EventCount, ValueCount, Temporal,
                                                                         TemporalOrdered)}


def _key_out(key) -> list:
    """A group key as JSON (a tuple for several group-by fields, else the value itself)."""
    return ["t", list(key)] if key.__class__ is tuple else ["v", key]


def _key_in(data: list):
    return tuple(data[1]) if data[0] == "t" else data[1]


def _entry_at(entries: collections.deque, t: float, empty: Callable[[], Any]) -> list:
    """The entry `[t, payload]` of time `t` in a window's entries (ascending, one per distinct time), made
    with payload `empty()` if `t` is new. A flood from one source within a second costs one entry, not one
    per event: a window's memory is bounded by the distinct times in its timespan, not by the rate an
    attacker sends at (tests/secops/test_crash_and_burst.py). A late event takes its place by bisection."""
    if entries:
        last = entries[-1]
        if last[0] == t:
            return last
        if last[0] > t:
            i = bisect.bisect_left(entries, t, key=_entry_time)
            if entries[i][0] == t:
                return entries[i]
            entry = [t, empty()]
            entries.insert(i, entry)
            return entry
    entry = [t, empty()]
    entries.append(entry)
    return entry


def _entry_time(entry: list) -> float:
    return entry[0]


class TimeTally:
    """event_count's and temporal's window: entries `[time, events]` (see _entry_at) and their sum."""

    __slots__ = ("entries", "total")

    def __init__(self):
        self.entries: collections.deque[list] = collections.deque()
        self.total = 0

    def add(self, t: float) -> None:
        _entry_at(self.entries, t, int)[1] += 1
        self.total += 1

    def expire(self, horizon: float) -> None:
        entries = self.entries
        while entries and entries[0][0] < horizon:
            self.total -= entries.popleft()[1]

    def state(self) -> list:
        return list(self.entries)

    @classmethod
    def restored(cls, data) -> "TimeTally":
        """From state(); a checkpoint written before entries holds one time per event."""
        tally = cls()
        for item in data:
            if item.__class__ is list:
                tally.entries.append(list(item))
                tally.total += item[1]
            else:
                tally.add(item)
        return tally


def _in_order(entries_per_rule: list[collections.deque]) -> bool:
    """Is there t1 ≤ t2 ≤ … with t_i from rule i's window? (greedy: earliest fitting time each step)"""
    pos = float("-inf")
    for entries in entries_per_rule:
        idx = bisect.bisect_left(entries, pos, key=_entry_time)
        if idx == len(entries):
            return False
        pos = entries[idx][0]
    return True


@dataclass
class RuleSet:
    base: list[BaseRule]
    correlations: list[Correlation]
    errors: list[tuple[str, str]]  # (path, reason) of refused rules

    def all_infos(self) -> list[RuleInfo]:
        return [r.info for r in self.base] + [c.info for c in self.correlations]


def rule_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files.extend(sorted(x for x in p.rglob("*") if x.suffix in (".yml", ".yaml")))
        else:
            files.append(p)
    return files


def load_pipeline(pipeline: Path | None = DEFAULT_PIPELINE):
    """The pySigma processing pipeline (field mapping) at `pipeline`, or None."""
    from sigma.processing.pipeline import ProcessingPipeline
    if not pipeline:
        return None
    doc = yamlfile.load(pipeline)  # YamlInputError (bad input, exit 2) names the file and the fix
    return ProcessingPipeline.from_dict(doc)


def load_rules(paths: Iterable[Path] | None = None, pipeline: Path | None = DEFAULT_PIPELINE) -> RuleSet:
    """Read Sigma rule files (the bundled ones when `paths` is None); refuse bad ones by path."""
    from sigma.collection import SigmaCollection
    from sigma.correlations import SigmaCorrelationRule
    from sigma.exceptions import SigmaError

    proc = load_pipeline(pipeline)
    errors: list[tuple[str, str]] = []
    parsed: list[tuple[Any, str]] = []
    for path in rule_files([BUNDLED_RULES] if paths is None else paths):
        try:
            collection = SigmaCollection.from_dicts(yamlfile.load_all(path), collect_errors=True,
                                                    resolve_references=False)
        except yamlfile.YamlInputError as exc:  # names the file, the line and what to change
            errors.append((str(path), exc.reason if exc.line is None else f"line {exc.line}: {exc.reason}"))
            continue
        except (OSError, UnicodeDecodeError, SigmaError, ValueError) as exc:
            errors.append((str(path), _reason(exc)))
            continue
        except Exception as exc:  # pySigma raises plain errors on some malformed YAML shapes
            errors.append((str(path), f"{type(exc).__name__}: {_reason(exc)}"))
            continue
        bad = [e for r in collection.rules for e in r.errors]  # references are resolved below, across files
        if bad:
            errors.append((str(path), _reason(bad[0])))
            continue
        parsed.extend((r, str(path)) for r in collection.rules)

    everything = SigmaCollection([r for r, _ in parsed], collect_filters=False, resolve_references=False)
    for rule, path in list(parsed):
        if isinstance(rule, SigmaCorrelationRule):
            try:
                rule.resolve_rule_references(everything)
            except SigmaError as exc:
                errors.append((path, f"correlation {rule.title!r}: {_reason(exc)}"))
                parsed.remove((rule, path))
    by_ref: dict[str, tuple[Any, str]] = {}
    for rule, path in parsed:
        for ref in (rule.name, str(rule.id) if rule.id else None):
            if ref:
                by_ref[ref] = (rule, path)

    base: dict[str, BaseRule] = {}
    correlations: dict[str, Correlation] = {}
    referenced_no_generate: set[str] = set()
    pending = [(r, p) for r, p in parsed if isinstance(r, SigmaCorrelationRule)]
    for rule, path in parsed:
        if isinstance(rule, SigmaCorrelationRule):
            continue
        try:
            if proc is not None:
                rule = proc.apply(rule)
            info = _info(rule, path)
            trees = [c.parsed for c in rule.detection.parsed_condition]
            earns = _trust_attributes(rule).get("earns_trust")
            base[info.name] = BaseRule(info, _logsource(rule), compile_condition(trees), index_key(trees),
                                       earns_trust=None if earns is None else TrustedPairs(
                                           info.name, tuple(earns["pair"]), _seconds(earns["window"])),
                                       screen=literal_screen(trees))
        except (UnsupportedRule, SigmaError, ValueError, TypeError) as exc:
            errors.append((path, f"rule {rule.title!r}: {_reason(exc)}"))

    # Correlations may reference correlations: resolve until nothing changes.
    progress = True
    while pending and progress:
        progress = False
        for rule, path in list(pending):
            names = [_ref_name(ref.reference, by_ref) for ref in (rule.rules or [])]
            if not all(n in base or n in correlations for n in names):
                continue
            pending.remove((rule, path))
            progress = True
            try:
                corr = _correlation(rule, path, names)
                _attach_trust(corr, _trust_attributes(rule).get("trust"), base)
            except (UnsupportedRule, ValueError) as exc:
                errors.append((path, f"correlation {rule.title!r}: {_reason(exc)}"))
                continue
            correlations[corr.info.name] = corr
            for name in dict.fromkeys(names):
                upstream = base.get(name) or correlations[name]
                upstream.downstream.append(corr)
                if not rule.generate:
                    referenced_no_generate.add(name)
    for rule, path in pending:
        missing = [ref.reference for ref in (rule.rules or [])
                   if _ref_name(ref.reference, by_ref) not in base and _ref_name(ref.reference, by_ref) not in correlations]
        errors.append((path, f"correlation {rule.title!r}: references rules that are not loaded: {', '.join(missing)}"))
    for name in referenced_no_generate:
        if name in base:
            base[name].generates = False
    for rule in base.values():
        rule.routes = _trust_routes(rule.downstream)
    return RuleSet(list(base.values()), list(correlations.values()), errors)


@functools.lru_cache(maxsize=1)
def _trust_validator():
    import jsonschema
    return jsonschema.Draft202012Validator(yamlfile.load(TRUST_SCHEMA))


def _trust_attributes(rule) -> dict[str, Any]:
    """The rule's `earns_trust` / `trust` attributes, checked against schemas/rule-trust.schema.yaml."""
    custom = getattr(rule, "custom_attributes", None) or {}
    doc = {k: custom[k] for k in ("earns_trust", "trust") if k in custom}
    if not doc:
        return doc
    for error in sorted(_trust_validator().iter_errors(doc), key=lambda e: list(map(str, e.path))):
        where = ".".join(str(x) for x in error.path) or "(rule)"
        hint = error.schema.get("description") if isinstance(error.schema, dict) else None
        raise UnsupportedRule(f"{where}: {error.message}" + (f" (expected: {hint})" if hint else ""))
    return doc


def _seconds(timespan: str) -> float:
    from sigma.correlations import SigmaCorrelationTimespan
    return float(SigmaCorrelationTimespan(timespan).seconds)


def _trust_routes(downstream: list["Correlation"]):
    """A base rule's downstream split by the trust of an event's pair, so that the usual case (one
    TrustedPairs) looks each event up once: (pairs, correlations for a trusted event, for an untrusted
    one); with several TrustedPairs, (None, …): each correlation asks. None: no correlation asks."""
    pairs = {id(c.trust): c.trust for c in downstream if c.trust is not None}
    if not pairs:
        return None
    if len(pairs) > 1:
        return None, (), ()
    (only,) = pairs.values()
    return (only, tuple(c for c in downstream if c.trust is None or c.counts_trusted),
            tuple(c for c in downstream if c.trust is None or not c.counts_trusted))


def _attach_trust(corr: "Correlation", trust: dict[str, Any] | None, base: dict[str, BaseRule]) -> None:
    if trust is None:
        return
    earner = base.get(trust["earned_by"])
    if earner is None or earner.earns_trust is None:
        raise UnsupportedRule(f"trust.earned_by: {trust['earned_by']!r} is not a loaded base rule with "
                              "earns_trust (example: earned_by: ssh_login_success)")
    corr.trust, corr.counts_trusted = earner.earns_trust, trust["counts"] == "trusted"


def _ref_name(reference: str, by_ref: dict) -> str:
    hit = by_ref.get(reference)
    return _info(hit[0], hit[1]).name if hit else reference


def _reason(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _info(rule, path: str) -> RuleInfo:
    custom = getattr(rule, "custom_attributes", {}) or {}
    return RuleInfo(name=rule.name or (str(rule.id) if rule.id else Path(path).stem), id=str(rule.id or ""),
                    title=rule.title, level=str(rule.level.name.lower()) if rule.level else "medium",
                    tags=[str(t) for t in rule.tags], path=path, response=custom.get("response"))


def _logsource(rule) -> dict[str, str]:
    ls = rule.logsource
    return {k: v for k, v in (("product", ls.product), ("category", ls.category), ("service", ls.service)) if v}


def _correlation(rule, path: str, names: list[str]) -> Correlation:
    from sigma.correlations import SigmaCorrelationCondition
    if not isinstance(rule.condition, SigmaCorrelationCondition):
        raise UnsupportedRule("extended (boolean) correlation conditions are not supported")
    kind = rule.type.name.lower()
    if kind not in CORRELATION_TYPES:
        raise UnsupportedRule(f"correlation type {kind} is not supported "
                              f"(supported: {', '.join(CORRELATION_TYPES)})")
    cond = rule.condition
    if kind == "value_count" and not cond.fieldref:
        raise UnsupportedRule("value_count needs condition.field")
    aliases = {a.alias: {_ref_name_of(ref): fld for ref, fld in a.mapping.items()} for a in rule.aliases}
    return CORRELATION_TYPES[kind](_info(rule, path), rule.timespan.seconds, list(rule.group_by or []),
                       cond.op.name.lower(), cond.count, cond.fieldref if isinstance(cond.fieldref, str) else None,
                       names, aliases)


def _ref_name_of(ref) -> str:
    rule = getattr(ref, "rule", None)
    return (rule.name or str(rule.id)) if rule is not None else ref.reference


class FieldScreen:
    """One search for all the texts that a dataset's screened rules need in one field (lower-cased texts in
    the lower-cased value, "nocase" texts under re.IGNORECASE, as the rules' own tests compare); the answer is
    remembered per value (user agents, paths and queries repeat line after line), for at most SCREEN_MEMORY
    values at a time."""

    __slots__ = ("field", "seen", "_lower", "_nocase", "_in_bytes")

    def __init__(self, field: str, texts: set[tuple[str, str]]):
        self.field = field
        self.seen: dict[str, bool] = {}
        self._lower = _alternation(t for how, t in texts if how == "lower")
        self._nocase = _alternation((t for how, t in texts if how == "nocase"), re.IGNORECASE | re.DOTALL)
        # The same searches over bytes, for lines_found; none when a text is not printable ASCII (case
        # folding could find it in an ASCII value, and a newline in it could join two lines).
        printable = all(" " <= ch <= "~" for _, t in texts for ch in t)
        self._in_bytes = None if not printable else tuple(
            re.compile(p.pattern.encode(), p.flags & ~re.UNICODE) if p is not None else None
            for p in (self._lower, self._nocase))

    def search(self, value: str) -> bool:
        found = self.finds(value)
        if len(self.seen) >= SCREEN_MEMORY:
            self.seen.clear()
        self.seen[value] = found
        return found

    def finds(self, value: str) -> bool:
        """Whether one of the texts occurs in the value (not remembered)."""
        return (self._lower is not None and self._lower.search(value.lower()) is not None
                or self._nocase is not None and self._nocase.search(value) is not None)

    def lines_found(self, text: bytes) -> set[int] | None:
        """By index, the lines of `text` (values joined by newlines) in which one of the texts occurs: what
        `finds` says of each value that is printable ASCII, in one search of the whole text. None when the texts
        cannot be searched so."""
        if self._in_bytes is None:
            return None
        lower, nocase = self._in_bytes
        at = [m.start() for m in lower.finditer(text.lower())] if lower is not None else []
        if nocase is not None:
            at += [m.start() for m in nocase.finditer(text)]
        return line_numbers(text, at)


def _alternation(texts: Iterable[str], flags: int = 0) -> re.Pattern | None:
    """One pattern finding any of the texts. Written as a trie (common prefixes once: `\\.(?:php|jsp)`), not as
    `a|b|c…`: Python's regex engine tries every branch of an alternation at every position, so a flat one of
    60 texts costs ≈ 2.4× the trie on a URL. The same texts are found either way."""
    texts = set(texts)
    if not texts:
        return None
    trie: dict = {}
    for text in texts:
        node = trie
        for ch in text:
            node = node.setdefault(ch, {})
        node[""] = {}  # a text ends here
    try:
        return re.compile(_trie_pattern(trie), flags)
    except (RecursionError, re.error):  # texts nested past the engine's depth (none of the bundled rules')
        return re.compile("|".join(re.escape(t) for t in sorted(texts)), flags)


def _trie_pattern(node: dict) -> str:
    branches = []
    for ch, rest in sorted(node.items()):
        if not ch:
            continue
        run = [ch]
        while len(rest) == 1 and "" not in rest:  # a chain without a fork: one literal, no recursion
            (ch, rest), = rest.items()
            run.append(ch)
        branches.append(re.escape("".join(run)) + _trie_pattern(rest))
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if "" in node else body


SCREEN_MEMORY = 16384


class Detector:
    """Feeds events through the rule set; collects alerts (new ones also go to `on_alert`)."""

    def __init__(self, rules: RuleSet, aggregation_seconds: float = DEFAULT_AGGREGATION_SECONDS,
                 on_alert: Callable[[Alert, bool], None] | None = None):
        self.rules = copy.deepcopy(rules)  # correlation windows are per detector
        self.aggregation = aggregation_seconds
        self.on_alert = on_alert
        self.alerts: list[Alert] = []
        self._by_dataset: dict[str, tuple[tuple[BaseRule, ...], tuple[tuple[str, dict[str, list[BaseRule]]], ...]]] = {}
        self._open: dict[tuple, Alert] = {}

    def emit(self, alert: Alert, new: bool = True) -> None:
        """A new alert, or (new=False) one that grew by an event."""
        if new:
            self.alerts.append(alert)
        if self.on_alert is not None:
            self.on_alert(alert, new)

    def _plan(self, dataset: str):
        """The rules whose log source fits the dataset: always-checked ones, those of them that need no text
        (checked even when the dataset's screens find none), the screens, and the indexed ones."""
        sources = LOGSOURCES.get(dataset, {})
        always: list[BaseRule] = []
        indexed: dict[str, dict[str, list[BaseRule]]] = {}
        for rule in self.rules.base:
            if not all(v in sources.get(k, ()) for k, v in rule.logsource.items()):
                continue
            if rule.index is None:
                always.append(rule)
            else:
                fld, values = rule.index
                for v in values:
                    indexed.setdefault(fld, {}).setdefault(v, []).append(rule)
        texts: dict[str, set[tuple[str, str]]] = {}
        for rule in always:
            for fld, needed in (rule.screen or {}).items():
                texts.setdefault(fld, set()).update(needed)
        screens = tuple((s.field, s.seen, s.search) for s in (FieldScreen(f, t) for f, t in texts.items()))
        plan = (tuple(always), tuple(r for r in always if r.screen is None), screens, tuple(indexed.items()))
        self._by_dataset[dataset] = plan
        return plan

    def carried_screens(self, dataset: str, carriers: dict[str, str]) -> dict[str, FieldScreen] | None:
        """For a reader that can tell, before building an event of `dataset`, that no rule can match it:
        `carriers` maps each field the reader vouches for to a text that holds the field's value whenever the
        field is present (a raw URL holds url.path and url.query when nothing in it is encoded). Gives, per
        carrier, a FieldScreen for every text the dataset's screened rules need in the fields it carries: when
        none finds anything, `process` would run no rule on the event. None when that cannot be told from
        the carriers: a rule of the dataset needs no text (or is indexed by a field's value), or screens a
        field no carrier holds."""
        plan = self._by_dataset.get(dataset) or self._plan(dataset)
        always, unscreened, screens, indexed = plan
        if unscreened or indexed:
            return None
        texts: dict[str, set[tuple[str, str]]] = {}
        for rule in always:
            for fld, needed in rule.screen.items():
                if fld not in carriers:
                    return None
                texts.setdefault(carriers[fld], set()).update(needed)
        return {carrier: FieldScreen(carrier, needed) for carrier, needed in texts.items()}

    def process(self, event: dict) -> None:
        dataset = event.get("event.dataset")
        plan = self._by_dataset.get(dataset)
        if plan is None:
            plan = self._plan(dataset)
        always, unscreened, screens, indexed = plan
        # Most events carry none of the texts the screened rules need: then only the others are checked.
        # On any find every rule is checked, in the rules' order, as without screens.
        for fld, seen, search in screens:
            v = event.get(fld)
            if v is None:
                continue
            if v.__class__ is not str:  # a number, an ECS array: the rules' own tests decide
                break
            found = seen.get(v)
            if found is None:
                found = search(v)
            if found:
                break
        else:
            always = unscreened
        for rule in always:
            if rule.predicate(event):
                self._matched(rule, event)
        for fld, table in indexed:
            v = event.get(fld)
            if v.__class__ is str:
                candidates = table.get(v) or table.get(v.lower())
            elif isinstance(v, (list, tuple)):  # ECS arrays: any element may select a rule
                candidates = list({id(r): r for x in v if isinstance(x, str)
                                   for r in table.get(x.lower(), ())}.values())
            else:
                continue
            if candidates:
                for rule in candidates:
                    if rule.predicate(event):
                        self._matched(rule, event)

    def _matched(self, rule: BaseRule, event: dict) -> None:
        if rule.earns_trust is not None:
            rule.earns_trust.earn(event)
        if rule.downstream:
            name = rule.info.name
            routes = rule.routes
            if routes is None:
                targets = rule.downstream
            elif routes[0] is None:  # correlations trusting different rules: each asks for itself
                targets = [c for c in rule.downstream if c.admits(event)]
            else:
                targets = routes[1] if routes[0].trusted(event) else routes[2]
            for corr in targets:
                corr.feed(name, event, self)
        if not rule.generates:
            return
        group = {k: event[k] for k in ("source.ip", "user.name", "host.hostname") if k in event}
        key = (rule.info.name, tuple(group.items()))
        t = event["@timestamp"]
        alert = self._open.get(key)
        if alert is not None and t - alert.last <= self.aggregation:
            alert.count += 1
            alert.last = max(alert.last, t)
            alert.add_evidence(event)
            self.emit(alert, new=False)
            return
        if len(self._open) > 100_000:
            self._open = {k: a for k, a in self._open.items() if t - a.last <= self.aggregation}
        alert = Alert(rule.info, group, first=t, last=t, count=1, evidence=[event])
        self._open[key] = alert
        self.emit(alert)

    def state(self, ref: Callable[[Alert], Any]) -> dict:
        """Everything detection keeps between events (open alerts, correlation windows) as JSON-able data;
        `ref(alert)` says how an alert is referred to (a store keeps the alerts themselves)."""
        return {"open": [[name, [list(kv) for kv in group], ref(a)] for (name, group), a in self._open.items()],
                "correlations": {c.info.name: c.state(ref) for c in self.rules.correlations},
                "trusted_pairs": {r.info.name: r.earns_trust.state() for r in self.rules.base
                                  if r.earns_trust is not None}}

    def restore(self, state: dict, alert: Callable[[Any], Alert | None]) -> None:
        """Continue from a state() (after a restart); `alert(ref)` gives back a referred alert or None
        (gone, or of a rule no longer loaded). Rules not in the state start empty."""
        for name, group, r in state.get("open", ()):
            a = alert(r)
            if a is not None:
                self._open[(name, tuple(tuple(kv) for kv in group))] = a
        saved = state.get("correlations", {})
        for corr in self.rules.correlations:
            if corr.info.name in saved:
                corr.restore(saved[corr.info.name], alert)
        trusted = state.get("trusted_pairs", {})
        for rule in self.rules.base:
            if rule.earns_trust is not None and rule.info.name in trusted:
                rule.earns_trust.restore(trusted[rule.info.name])

    def infos(self) -> dict[str, RuleInfo]:
        """Rule name → what alerts say about it, for the loaded rules."""
        return {i.name: i for i in self.rules.all_infos()}
