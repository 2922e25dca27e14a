"""Replay log files through normalize → detect → decide (dry run), for analysts and benchmarks."""
from __future__ import annotations

import collections
import contextlib
import gc
import ipaddress
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

from core import yamlfile

from .detect import Alert, Detector, RuleSet
from .normalize import NGINX_CARRIERS, Normalizer, Rejected
from .respond import Allowlist, DecisionEngine
from .store import Store

CHUNK = 4 << 20
STORE_BATCH = 5000


def read_blocks(path: Path, start: int = 0) -> Iterator[tuple[int, list[bytes]]]:
    """(byte position of the block's first line, its lines without their newlines) per chunk read; a last
    line without newline counts. The replay's loop runs over a block's list: no generator step per line."""
    with open(path, "rb") as f:
        f.seek(start)
        pos, rest = start, b""
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                break
            data = rest + chunk if rest else chunk
            lines = data.split(b"\n")
            rest = lines.pop()
            if lines:
                yield pos, lines
                pos += len(data) - len(rest)
        if rest:
            yield pos, [rest]


def read_lines(path: Path, start: int = 0) -> Iterator[tuple[int, bytes]]:
    """(byte position, line without its newline) of every line; a last line without newline counts."""
    for pos, lines in read_blocks(path, start):
        for line in lines:
            yield pos, line
            pos += len(line) + 1


class Labels:
    """Ground truth for precision/recall: which sources are malicious, which rule should catch which."""

    def __init__(self, path: Path):
        try:
            doc = yamlfile.load(path, allow_empty=True) or {}
        except yamlfile.YamlInputError as exc:
            raise ValueError(f"labels file {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("malicious"), list):
            raise ValueError(f"labels file {path}: needs a list `malicious:` of addresses or CIDR ranges "
                             "(and optionally `rules: {{rule name: [ranges]}}`)")
        try:
            self.malicious = [ipaddress.ip_network(str(n), strict=False) for n in doc["malicious"]]
            self.rules = {str(k): [ipaddress.ip_network(str(n), strict=False) for n in v]
                          for k, v in (doc.get("rules") or {}).items()}
        except ValueError as exc:
            raise ValueError(f"labels file {path}: {exc}") from None

    @staticmethod
    def _in(address: str, nets: list) -> bool:
        try:
            a = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(a.version == n.version and a in n for n in nets)

    def score(self, alerts: list[Alert], seen_sources: set[str]) -> dict[str, dict]:
        by_rule: dict[str, set[str]] = collections.defaultdict(set)
        for a in alerts:
            if a.source_ip:
                by_rule[a.rule.name].add(a.source_ip)
        out = {}
        for rule in sorted(set(by_rule) | set(self.rules)):
            alerted = by_rule.get(rule, set())
            expected_nets = self.rules.get(rule)
            tp = sum(1 for s in alerted if self._in(s, self.malicious))
            entry: dict[str, Any] = {"alerted_sources": len(alerted), "true_positives": tp,
                                     "false_positives": len(alerted) - tp,
                                     "precision": round(tp / len(alerted), 4) if alerted else None}
            if expected_nets is not None:
                expected = {s for s in seen_sources if self._in(s, expected_nets)}
                caught = len(expected & alerted)
                entry.update({"expected_sources": len(expected), "missed": len(expected) - caught,
                              "recall": round(caught / len(expected), 4) if expected else None})
            out[rule] = entry
        return out


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Python's cycle collector runs every 700 new containers and then walks the young ones: a replay makes an
    event dictionary per line and keeps windows of them, so at the default it spent ≈ 9 % of a city day's
    replay there (docs/benchmarks.md). The engine's events, windows and alerts hold no reference cycles (they
    are freed as their counts drop), so collecting 100 times less often loses no memory to them."""
    before = gc.get_threshold()
    gc.set_threshold(70_000, before[1], before[2])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def replay(paths: Iterable[Path], rules: RuleSet, allowlist: Allowlist, *, fmt: str = "auto",
           encoding: str = "auto", year: int | None = None, tz_offset: int = 0, store: Store | None = None,
           labels: Labels | None = None, progress=None) -> dict[str, Any]:
    """`progress(lines)`, if given, is called with the count of lines read each time it passes a multiple of
    100,000 (once per block read: the count is that block's end, not the multiple)."""
    decisions = DecisionEngine(allowlist, dry_run=True, actor="replay")
    blocked_until, decide = decisions.active, decisions.on_alert

    def on_alert(alert: Alert, new: bool) -> None:
        # Decide in event time. While an attack goes on, its address is usually blocked already:
        # that test is done here, without two more calls per event.
        if blocked_until.get(alert.group.get("source.ip"), 0) <= alert.last:
            decide(alert, alert.last)

    detector = Detector(rules, on_alert=on_alert)

    lines = parsed = 0
    unparsed: collections.Counter = collections.Counter()
    sources_seen: set[str] = set()
    started = time.perf_counter()
    process = detector.process
    alerts, trimmed = detector.alerts, 0
    with fewer_collections():  # the replay's own objects: see there
        for path in paths:
            path = Path(path)
            normalizer = Normalizer(source=str(path), fmt=fmt, encoding=encoding, year=year, tz_offset=tz_offset)
            normalize = normalizer.normalize
            # Web lines no rule can match are counted without building their events (most of a city's day);
            # the store keeps every event, so with a store each line is normalized.
            web_screens = detector.carried_screens("nginx.access", NGINX_CARRIERS) if store is None else None
            quiet = normalizer.quiet_web(web_screens) if web_screens is not None else None
            events: list[tuple[int, dict]] = []
            rejected: list[tuple[int, str, str, bytes]] = []
            for next_pos, block in read_blocks(path):
                counted, lines = lines, lines + len(block)  # every line counts, quiet and refused ones too
                if counted // 100_000 != lines // 100_000:
                    if progress is not None:
                        progress(lines)
                    if store is None:  # evidence is only stored, never reported: memory stays with the open alerts
                        for alert in alerts[trimmed:]:
                            alert.evidence.clear()
                        trimmed = len(alerts)
                if quiet is not None:
                    read = len(block)
                    block = quiet(block, sources_seen if labels is not None else None)
                    parsed += read - len(block)
                for raw in block:  # the day's hot loop: one list, no generator step per line
                    if store is not None:  # positions are kept with the events (no quiet path with a store)
                        pos, next_pos = next_pos, next_pos + len(raw) + 1
                    event = normalize(raw)
                    if event.__class__ is Rejected:
                        unparsed[event.reason] += 1
                        if store is not None:
                            rejected.append((pos, event.reason, event.detail, raw))
                        continue
                    parsed += 1
                    if labels is not None:  # recall needs every source seen
                        ip = event.get("source.ip")
                        if ip is not None:
                            sources_seen.add(ip)
                    process(event)
                    if store is not None:
                        events.append((pos, event))
                        if len(events) >= STORE_BATCH:
                            store.commit_batch(str(path.resolve()), events, rejected)
                            events, rejected = [], []
            if store is not None:
                store.commit_batch(str(path.resolve()), events, rejected)
    seconds = time.perf_counter() - started
    if store is not None:
        for alert in detector.alerts:
            store.save_alert(alert)
    result: dict[str, Any] = {
        "lines": lines, "parsed": parsed, "unparsed": dict(sorted(unparsed.items())),
        "seconds": round(seconds, 3), "lines_per_second": round(lines / seconds) if seconds else None,
        "alerts": [a.summary() for a in detector.alerts],
        "blocked": decisions.blocked_addresses(),
        "allowlisted_alerts": sorted({d.address for d in decisions.decisions if d.action == "allowlisted"}),
        "rules_refused": [{"path": p, "reason": r} for p, r in rules.errors],
    }
    if labels is not None:
        result["precision_recall"] = labels.score(detector.alerts, sources_seen)
    return result
