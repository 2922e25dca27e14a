"""The streaming engine behind `govctl secops run`: inputs → normalize → detect → decide → store.

Each batch of lines from one input is normalized and evaluated, blocks decided on it are enforced in
one nftables batch, then events, quarantined lines, the input's new position and everything derived
from the batch (alerts, their incidents, decisions) are committed in one transaction. A crash at any
point re-reads at most the uncommitted batch, whose rows the store's unique (source, position) keeps
from being stored twice, and derives its alerts, incidents and decisions once more — for the first time
as far as the store is concerned. Enforcement may be repeated, which is harmless (adding an element a
set holds only renews its timeout).

Detection keeps state between batches (open alerts, correlation windows). So that a restarted engine
continues exactly where the crashed one committed, a checkpoint of that state is written with a batch
now and then (at least CHECKPOINT_MIN_EVENTS events apart, and further apart the bigger the state, so
its cost stays a small share of ingest); on start the detector restores it and is fed again, without
deciding or storing anything, the events committed after it.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO, Callable

from .detect import Alert, Detector
from .ingest import Batch, ChangeWaiter, FileTail, Spool, SyslogReceivers
from .model import Store
from .normalize import UNDATED_FORMATS, Normalizer, Rejected
from .respond import Enforcer
from .wiring import build_allowlist, build_rules, decision_engine_from_config

CHECKPOINT_MIN_EVENTS = 10_000  # a restart feeds the detector again at most about this many stored events
SLA_SWEEP_SECONDS = 60.0  # how often the daemon records SLA breaches now due (cases)
LIST_LIMIT_FOR_SLA = 10000
BAN_SYNC_SECONDS = 5.0  # how often the daemon takes the blocks in force from the store again (people lift some)
CHECKPOINT_BYTES_PER_EVENT = 64  # …or more, when the state is big: one checkpoint per this many bytes per event


class Engine:
    def __init__(self, cfg: dict[str, Any], store: Store, enforcer: Enforcer | None = None,
                 dry_run: bool | None = None, log=None):
        from .incidents import IncidentGrouper
        self.cfg, self.store, self.log = cfg, store, log or (lambda msg: None)
        rules = build_rules(cfg)
        for path, reason in rules.errors:
            self.log(f"rule refused: {path}: {reason}")
        self.decisions = decision_engine_from_config(cfg, store, enforcer, dry_run)
        self.decisions.deferred = True  # recorded with the batch that caused them (process)
        self.detector = Detector(rules, cfg["aggregation_seconds"], on_alert=self._on_alert)
        self.incidents = IncidentGrouper(store, cfg["incidents"]["window_seconds"])
        self._touched: dict[int, Alert] = {}
        self._alert_of: dict[int, Alert] = {}  # id(decision) → the alert that caused it, until it is stored
        self.stats = {"lines": 0, "events": 0, "quarantined": 0, "alerts": 0, "blocks": 0,
                      "refused_elements": 0, "unblockable_sources": 0}  # the last two: DecisionEngine.counts
        self._since_checkpoint = 0
        self._bans_synced = time.monotonic()  # the decision engine loaded them just now
        self._checkpoint_every = CHECKPOINT_MIN_EVENTS
        self._has_checkpoint = self._resume()

    def _on_alert(self, alert: Alert, new: bool) -> None:
        self._touched[id(alert)] = alert
        if new:
            self.stats["alerts"] += 1
        decision = self.decisions.on_alert(alert)
        if decision is not None:
            self._alert_of[id(decision)] = alert
            if decision.action == "block":
                self.stats["blocks"] += 1
                self.log(f"block {decision.address} for {decision.ttl:.0f}s: {decision.reason}")

    def process(self, normalizer: Normalizer, batch: Batch, input_name: str | None) -> None:
        if time.monotonic() - self._bans_synced >= BAN_SYNC_SECONDS:  # lifts and bans made by people meanwhile
            self.decisions.sync_bans()
            self._bans_synced = time.monotonic()
        events: list[tuple[int, dict]] = []
        rejected: list[tuple[int, str, str, bytes]] = []
        normalize, detect = normalizer.normalize, self.detector.process
        for pos, raw in batch.lines:
            event = normalize(raw)
            if event.__class__ is Rejected:
                rejected.append((pos, event.reason, event.detail, raw))
                continue
            detect(event)
            events.append((pos, event))
        try:
            self.decisions.flush()  # enforce first: interception latency matters more than bookkeeping
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            self.log(f"enforcement failed, will retry with the next batch: {exc}")
        store = self.store
        # Derived rows first: on a store without transactions (Elasticsearch) the read position then
        # cannot advance past a batch whose alerts were not written.
        with store.transaction():
            for alert in self._touched.values():
                store.save_alert(alert)
            # decisions the enforcer has answered for (a block still waiting for an unreachable firewall
            # is stored with the batch in which it is finally taken)
            centers: dict[int, list[str]] = {}  # alert → the centers that took its block (the incident keeps them)
            for decision in self.decisions.take_unrecorded():
                alert = self._alert_of.pop(id(decision), None)
                if alert is not None:
                    decision.alert_id = alert.id
                    if decision.centers:
                        centers[id(alert)] = decision.centers
                decision.id = store.record_decision(decision)
            for alert in self._touched.values():
                self.incidents.add(alert, centers.get(id(alert), ()))
            store.commit_batch(batch.key, events, rejected, batch.position if input_name else None, input_name)
            self._since_checkpoint += len(events)
            if self._since_checkpoint >= self._checkpoint_every or not self._has_checkpoint:
                self._checkpoint()
        self._touched.clear()
        self.stats["lines"] += len(batch.lines)
        self.stats["events"] += len(events)
        self.stats["quarantined"] += len(rejected)
        self.stats["refused_elements"] = self.decisions.counts["refused_elements"]
        self.stats["unblockable_sources"] = self.decisions.counts["unblockable_sources"]
        self.detector.alerts.clear()  # stored; open windows keep what can still grow

    def sweep_sla(self, now: float | None = None) -> None:
        """Every SLA_SWEEP_SECONDS: record the SLA breaches now due as incident notes (kind "sla-breach",
        which notifications read from the store), also while no lines arrive."""
        now = time.monotonic() if now is None else now
        if now - getattr(self, "_sla_swept", float("-inf")) < SLA_SWEEP_SECONDS:
            return
        self._sla_swept = now
        from .incidents import Incidents
        try:
            Incidents(self.store).sla(LIST_LIMIT_FOR_SLA)
        except Exception as exc:  # noqa: BLE001 - bookkeeping must not stop interception
            self.log(f"SLA sweep failed, will retry: {type(exc).__name__}: {exc}")

    def _checkpoint(self) -> None:
        store = self.store

        def ref(alert: Alert) -> list:
            if alert.id is None:
                store.save_alert(alert)
            # what the alert is at this point; the store's row grows on, evidence only by appending
            return [alert.id, alert.count, alert.last, len(alert.evidence)]
        size = store.save_detector_state(self.detector.state(ref))
        self._since_checkpoint, self._has_checkpoint = 0, True
        self._checkpoint_every = max(CHECKPOINT_MIN_EVENTS, size // CHECKPOINT_BYTES_PER_EVENT)

    def _resume(self) -> bool:
        """Restore the detector from the store's checkpoint and feed it the events committed since;
        returns whether there was a checkpoint."""
        store = self.store
        state = store.detector_state()
        if state is None:
            if store.has_events():
                self.log("the store holds events but no detector checkpoint (an earlier version or `secops replay`"
                         " wrote them): detection starts with empty windows")
            return False
        infos = self.detector.infos()
        rows = store.load_alerts(sorted({r[0] for r in _alert_refs(state)}))
        restored: dict[Any, Alert] = {}

        def alert(r: list) -> Alert | None:
            alert_id, count, last, evidence = r
            row = rows.get(alert_id)
            if row is None or row["rule"] not in infos:
                return None  # removed by retention, or its rule is no longer loaded
            if alert_id not in restored:
                restored[alert_id] = Alert(infos[row["rule"]], row["group"], row["first"], last, count,
                                           row["evidence"][:evidence], id=alert_id)
            return restored[alert_id]
        self.detector.restore(state, alert)
        on_alert, self.detector.on_alert = self.detector.on_alert, None  # decided and stored already
        fed = 0
        try:
            for event in store.events_since_detector_state():
                self.detector.process(event)
                fed += 1
        finally:
            self.detector.on_alert = on_alert
        with store.transaction():  # alerts derived again: the same rows, now with their ids in memory
            for a in self.detector.alerts:
                store.save_alert(a)
        self.detector.alerts.clear()
        self._since_checkpoint = fed
        self.log(f"detection resumed from its checkpoint: {len(restored)} open alerts, {fed} events fed again")
        return True


def _alert_refs(state: dict):
    """The alert references ([id, count, last, evidence]) in a Detector.state()."""
    for _, _, r in state.get("open", ()):
        yield r
    for corr in state.get("correlations", {}).values():
        for _, r in corr.get("open", ()):
            yield r


class Runner:
    """Owns the inputs of `secops run`: configured files, ad-hoc files and the syslog spool."""

    def __init__(self, engine: Engine, sources: list[dict], syslog_cfg: dict | None):
        self.engine = engine
        self.inputs: list[tuple[str, FileTail, Normalizer]] = []
        self.receivers: SyslogReceivers | None = None
        self.spool: Spool | None = None
        for src in sources:
            fmt = src.get("format", "auto")
            self._add(src["name"], src["path"], fmt, src.get("encoding", "auto"),
                      int(src.get("timezone_offset_hours", 0) * 3600), src.get("host"),
                      src.get("start") or ("end" if fmt in UNDATED_FORMATS else "beginning"))
        if syslog_cfg and (syslog_cfg.get("udp") or syslog_cfg.get("tcp")):
            spool_path = Path(syslog_cfg["spool"]) / "syslog.spool"
            self.spool = Spool(spool_path)
            self.receivers = SyslogReceivers(self.spool, syslog_cfg.get("udp"), syslog_cfg.get("tcp"))
            self._add("syslog", str(spool_path), "syslog", syslog_cfg.get("encoding", "auto"), 0)

    def _add(self, name: str, path: str, fmt: str, encoding: str, tz: int, host: str | None = None,
             start: str = "beginning") -> None:
        tail = FileTail(name, path)
        position = self.engine.store.position(name)
        if position is None and start == "end":
            tail.start_at_end()
        else:
            tail.resume(position)
        self.inputs.append((name, tail, Normalizer(source=name, fmt=fmt, encoding=encoding, tz_offset=tz,
                                                   host=host)))

    def step(self, max_lines: int) -> int:
        """One pass over the inputs; returns how many lines were processed."""
        done = 0
        for name, tail, normalizer in self.inputs:
            batch = tail.read(max_lines)
            if batch is not None:
                self.engine.process(normalizer, batch, name)
                done += len(batch.lines)
        return done

    def run(self, once: bool, idle_sleep: float, max_lines: int, stop=lambda: False, inotify: bool = True) -> None:
        """Process the inputs until stop(); when they hold nothing new, wait for a write (inotify, see
        ChangeWaiter) or `idle_sleep` seconds (polling: inotify off or unavailable)."""
        waiter = None if once else ChangeWaiter([tail.path for _, tail, _ in self.inputs], idle_sleep, inotify)
        if waiter is not None:
            self.engine.log("waiting for new lines by inotify" if waiter.mode == "inotify" else
                            f"polling the inputs every {idle_sleep:g} s ({waiter.why_poll})")
        if self.receivers:
            self.receivers.start()
        try:
            while not stop():
                self.engine.sweep_sla()
                if self.step(max_lines) == 0:
                    if once:
                        return
                    waiter.wait(stop)
        finally:
            if waiter is not None:
                waiter.close()
            if self.receivers:
                self.receivers.stop()
            if self.spool:
                self.spool.close()
            for _, tail, _ in self.inputs:
                tail.close()


def ingest_stream(engine: Engine, stream: BinaryIO, name: str, fmt: str, encoding: str, max_lines: int) -> None:
    """stdin: lines in batches; positions count bytes from the start of this stream (no resume)."""
    key = f"{name}@{int(time.time() * 1000)}"
    normalizer = Normalizer(source=name, fmt=fmt, encoding=encoding)
    pos, lines = 0, []
    for raw in iter(stream.readline, b""):
        line = raw[:-1] if raw.endswith(b"\n") else raw
        lines.append((pos, line))
        pos += len(raw)
        if len(lines) >= max_lines:
            engine.process(normalizer, Batch(lines, (None, pos, None), key), None)
            lines = []
    if lines:
        engine.process(normalizer, Batch(lines, (None, pos, None), key), None)


def run_on_cluster(cfg: dict[str, Any], sources: list[dict], *, open_store: Callable[[], Store],
                   open_enforcer: Callable[[], Enforcer | None], workers: int = 1, dry_run: bool | None = None,
                   once: bool = False, year: int | None = None, stop: Callable[[], bool] = lambda: False,
                   log: Callable[[str], None] = lambda msg: None) -> dict[str, Any]:
    """`secops run` with `store: elasticsearch`: ingest worker processes write to the cluster, the rules run
    there as scheduled searches (secops.es.detect), and each stored alert is decided on and grouped into
    incidents here. The rules and the allowlist are checked first, then the store is opened (`open_store`),
    then the enforcer (`open_enforcer`): a store that cannot be used fails before a firewall is touched.
    Returns the workers' counts, the last search's and `blocks`."""
    from .detect import DEFAULT_PIPELINE
    from .es.detect import ScheduledDetection
    from .es.workers import run_workers
    from .incidents import IncidentGrouper
    ruleset, allowlist = build_rules(cfg), build_allowlist(cfg)
    for path, reason in ruleset.errors:
        log(f"rule refused: {path}: {reason}")
    store = open_store()
    try:
        enforcer = open_enforcer()
    except BaseException:
        store.close()
        raise
    syslog = cfg["syslog"]
    listens = bool(syslog.get("udp") or syslog.get("tcp"))
    receivers: list[tuple[SyslogReceivers, Spool]] = []
    if listens:
        spool_path = Path(syslog["spool"]) / "syslog.spool"
        spool_path.parent.mkdir(parents=True, exist_ok=True)
        spool_path.touch()
        sources = [*sources, {"name": "syslog", "path": str(spool_path), "format": "syslog",
                              "encoding": syslog.get("encoding", "auto")}]

    def start_receivers() -> None:  # after the fork: workers must not hold the listening sockets
        spool = Spool(Path(syslog["spool"]) / "syslog.spool")
        r = SyslogReceivers(spool, syslog.get("udp"), syslog.get("tcp"))
        r.start()
        receivers.append((r, spool))
        for proto, addr in r.addresses:
            log(f"syslog {proto} on {addr[0]}:{addr[1]}")

    try:
        store.apply_retention(cfg["retention_days"], cfg["incident_retention_days"])
        decisions = decision_engine_from_config(cfg, store, enforcer, dry_run, allowlist=allowlist)
        grouper = IncidentGrouper(store, cfg["incidents"]["window_seconds"])

        def on_stored(alert) -> None:
            decision = decisions.on_alert(alert)
            if decision is not None and decision.action == "block":
                log(f"block {decision.address} for {decision.ttl:.0f}s: {decision.reason}")
                decisions.flush()
            grouper.add(alert, decision.centers if decision is not None else ())

        detection = ScheduledDetection(store, ruleset, aggregation_seconds=cfg["aggregation_seconds"],
                                       pipeline=Path(cfg["pipeline"]) if cfg["pipeline"] else DEFAULT_PIPELINE,
                                       on_stored=on_stored)
        log(f"secops running on Elasticsearch: {len(sources)} inputs, {workers} ingest worker(s)")
        result = run_workers({**cfg, "sources": sources}, workers, once=once, year=year, stop=stop,
                             detection=detection, log=log, on_started=start_receivers if listens else lambda: None)
    finally:
        for receiver, spool in receivers:
            receiver.stop()
            spool.close()
        store.close()
    result["blocks"] = sum(1 for d in decisions.decisions if d.action == "block")
    log(f"stopped: {result['events']} events, {result['quarantined']} quarantined, "
        f"{result['detection']['alerts_stored']} alerts in the last search, {result['blocks']} blocks")
    return result


def install_stop_handlers() -> list[bool]:
    flag = [False]

    def handler(signum, frame):
        flag[0] = True
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return flag


def stderr_log(msg: str) -> None:
    sys.stderr.write(time.strftime("%H:%M:%S ") + msg + "\n")
    sys.stderr.flush()
