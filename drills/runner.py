"""The drill runner: preflight → fault → detect → recover → verify → failback, measured.

While a drill runs, a heartbeat ledger client writes a monotonic sequence through the service
address from the citizens' side and records every acknowledged commit. RTO is the time from the
fault to the first write that succeeds after the last one that failed; RPO is the acknowledged
sequences missing on the new primary (and the seconds of acknowledged writes they span); detection
is the time to the first page alert monitoring delivers. Any failure, or Ctrl-C, after the
preflight rolls back to the topology's layout (restore_original) and the report says what happened.
"""
from __future__ import annotations

import base64
import functools
import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from core.paths import STATE
from infra.lab import system
from infra.lab.hostops import host_pid
from infra.outputs import StackOutputs

from .actions import ACTIONS
from .lab import DrillError, LabTarget, wait_until
from .plans import PHASES, Plan

DRILL_DIR = STATE / "drills"


class DrillAborted(DrillError):
    """Someone asked the running drill to stop (the console's abort): raised at the next step, so the
    runner's own rollback (the one Ctrl-C takes) puts the cloud back in its layout."""


class Ledger:
    """The heartbeat writer, running inside the citizens' network namespace."""

    def __init__(self, namespace: str, url: str, interval: float = 0.1):
        self.acks: list[dict] = []
        self.failures: list[dict] = []
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(
            ["ip", "netns", "exec", namespace, sys.executable, "-m", "drills.ledger_client",
             url, str(interval)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            cwd=Path(__file__).resolve().parent.parent)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self._proc.stdout:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            with self._lock:
                (self.acks if record.get("acked") else self.failures).append(record)

    def pause(self) -> None:
        self._proc.send_signal(signal.SIGSTOP)
        time.sleep(1.5)  # requests in flight finish (the client's timeout is 1 s)

    def resume(self) -> None:
        self._proc.send_signal(signal.SIGCONT)

    def first_ack_after(self, since: float, timeout: float) -> float | None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            recovered = self.recovered_at(since)
            if recovered is not None:
                return recovered
            time.sleep(0.2)
        return None

    def recovered_at(self, since: float) -> float | None:
        """The ack that ended the outage: the first success sent after the last failure."""
        with self._lock:
            failures = [f["sent"] for f in self.failures if f["sent"] >= since]
            last_failure = max(failures, default=since)
            later = [a["acked"] for a in self.acks if a["sent"] >= last_failure]
        if not later:
            return None
        return min(later) if failures else since  # no failure at all: no interruption

    def failures_since(self, since: float) -> str:
        with self._lock:
            return describe_failures([f for f in self.failures if f["sent"] >= since])

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGCONT)
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._reader.join(timeout=5)

    def acked_before(self, moment: float) -> list[dict]:
        with self._lock:
            return [a for a in self.acks if a["acked"] <= moment]


def describe_failures(failed: list[dict], most: int = 3) -> str:
    """What failed writes got: the commonest distinct errors, each with its count and the center
    that answered (when one did)."""
    counts = Counter((f.get("error"), f.get("center")) for f in failed)
    return "; ".join(f"{n}× {error}" + (f" (from {center})" if center else "")
                     for (error, center), n in counts.most_common(most))


class Detection:
    """Page alerts from govctl's monitoring, read from Alertmanager (silenced ones included, so a
    drill can silence its expected alerts and still measure when they fired)."""

    def __init__(self, expected_alerts: tuple[str, ...] = (), alertmanager: str | None = None,
                 prometheus: str | None = None):
        """Alertmanager and Prometheus are the ones `govctl monitor up` runs unless given."""
        self.expected = expected_alerts
        self.unavailable_reason: str | None = None
        self.silence_id: str | None = None
        self.seen: list[dict] = []
        self.prometheus = prometheus
        self.alertmanager = alertmanager
        if alertmanager:
            return
        try:
            from monitors.stack import Layout, alertmanager_address

            self.alertmanager = alertmanager_address(Layout.default())
        except Exception as exc:  # noqa: BLE001 - any reason monitoring is absent
            self.alertmanager = None
            self.unavailable_reason = f"monitoring is not running ({exc}); detection not measured"

    def page_alerts(self, since: float) -> list[dict]:
        from datetime import datetime, timezone

        from monitors import prom_api

        alerts = prom_api.get_json(self.alertmanager, "/api/v2/alerts",
                                   {"active": "true", "silenced": "true", "inhibited": "true"})
        found = []
        for alert in alerts:
            if alert.get("labels", {}).get("severity") != "page":
                continue
            started = datetime.fromisoformat(alert["startsAt"].replace("Z", "+00:00")).timestamp()
            if started >= since:
                found.append({"alertname": alert["labels"].get("alertname"), "started": started,
                              "since": datetime.fromtimestamp(started, timezone.utc).isoformat(
                                  timespec="seconds"), "labels": alert["labels"],
                              "state": alert["status"]["state"]})
        return found

    def measured_centers(self) -> set[str]:
        """Centers whose SLI Prometheus evaluates right now."""
        from monitors import prom_api
        from monitors.stack import Layout, prometheus_address

        found = prom_api.query(self.prometheus or prometheus_address(Layout.default()),
                               "slo:sli_error:instant")
        return {r["metric"].get("center") for r in found}

    def wait_for_page(self, since: float, seconds: float) -> float | None:
        """When the first page alert that started after `since` fired (None: not within seconds)."""
        if self.alertmanager is None:
            return None
        deadline = time.time() + seconds
        while time.time() < deadline:
            alerts = self.page_alerts(since)
            if alerts:
                self.seen = alerts
                return min(a["started"] for a in alerts)
            time.sleep(1)
        return None

    def silence(self, minutes: int, comment: str) -> None:
        """Silence the plan's expected alerts for the drill (they are still measured)."""
        if self.alertmanager is None or not self.expected:
            return
        from monitors import prom_api

        body = {"matchers": [{"name": "alertname", "value": "|".join(self.expected),
                              "isRegex": True, "isEqual": True}],
                "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + minutes * 60)),
                "createdBy": "govctl drill", "comment": comment}
        try:
            self.silence_id = prom_api.post_json(self.alertmanager, "/api/v2/silences", body).get("silenceID")
        except Exception as exc:  # noqa: BLE001
            self.unavailable_reason = f"could not silence Alertmanager: {exc}"

    def unsilence(self) -> None:
        if self.alertmanager and self.silence_id:
            from monitors import prom_api

            try:
                prom_api.delete(self.alertmanager, f"/api/v2/silence/{self.silence_id}")
            except Exception:  # noqa: BLE001 - it expires by itself
                pass


class Backups:
    """Logical backups of the government database, and the restore check."""

    def __init__(self, target: LabTarget, folder: Path):
        self.target = target
        self.folder = folder
        self.latest: dict | None = None

    def take(self, center: str) -> str:
        pid = host_pid(self.target.db_host(center).folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"gov-{center}-{time.strftime('%Y%m%dT%H%M%S')}.dump"
        # pg_dump's custom format is binary: take it through base64 to keep the pipe text-safe.
        raw = system.host_exec(pid, "sh", "-c", "pg_dump -Fc -d gov | base64 -w0",
                               user="postgres", timeout=300).stdout
        path.write_bytes(base64.b64decode(raw))
        self.latest = {"path": str(path), "center": center, "bytes": path.stat().st_size}
        return f"backup of {center} ({path.stat().st_size} bytes) at {path}"

    def restore_and_compare(self, primary: str) -> str:
        if self.latest is None:
            raise DrillError("no backup was taken in this drill")
        pid = host_pid(self.target.db_host(primary).folder)
        scratch = "gov_restore_check"
        self.target.sql(primary, f"DROP DATABASE IF EXISTS {scratch}", db="postgres")
        self.target.sql(primary, f"CREATE DATABASE {scratch}", db="postgres")
        try:
            data = Path(self.latest["path"]).read_bytes()
            system.host_exec(pid, "sh", "-c", f"base64 -d | pg_restore -d {scratch} --no-owner",
                             user="postgres", input=base64.b64encode(data).decode(), timeout=300)
            # Compare up to the newest row the backup holds: later rows are newer than it.
            bound = self.target.sql(primary, "SELECT coalesce(max(seq), 0) FROM ledger", db=scratch)
            query = ("SELECT count(*) || ':' || coalesce(md5(string_agg(seq::text, ',' ORDER BY seq)), '') "
                     f"FROM ledger WHERE seq <= {bound}")
            restored = self.target.sql(primary, query, db=scratch)
            live = self.target.sql(primary, query)
        finally:
            self.target.sql(primary, f"DROP DATABASE IF EXISTS {scratch}", db="postgres")
        if restored != live:
            raise DrillError(f"restored backup differs from the live database: {restored} vs {live}")
        self.latest["verified_rows"] = int(restored.split(":")[0])
        return (f"restored {Path(self.latest['path']).name} into {scratch}: "
                f"{restored.split(':')[0]} rows identical to the live ledger up to seq {bound}")


@dataclass
class Step:
    phase: str
    action: str
    args: dict
    started: float
    ended: float = 0.0
    ok: bool = False
    detail: str = ""


@dataclass
class Context:
    plan: Plan
    target: LabTarget
    ledger: Ledger | None
    detection: Detection
    backups: Backups
    primary: str
    fault_at: float | None = None
    detected_at: float | None = None
    verification: dict = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    # what a preflight step waits on (page alerts still active, centers not yet measured): printed
    # as it waits, kept in the result and named in the abort report
    notice: Callable[[str], None] = lambda message: None
    blockers: list[dict] = field(default_factory=list)

    def mark_fault(self) -> None:
        self.fault_at = time.time()

    def restore_original(self) -> str:
        notes = restore_layout(self.target, prefer=self.primary)
        self.primary = self.target.original_primary
        return notes


def restore_layout(target: LabTarget, prefer: str | None = None) -> str:
    """Bring every center back and put the primary where the topology has it; used as every
    plan's failback, as the rollback of a failed drill, and by `govctl drill restore`."""
    original = target.original_primary
    notes = []
    for center in target.centers():
        system.sh("ip", "-n", target.outputs.centers[center].namespace, "link", "set",
                  "uplink", "up")
    for name in target.outputs.links:
        target.set_link(name, up=True)
    target.restore_routes()
    primaries = target.primaries()
    keep = prefer if prefer in primaries else (original if original in primaries else
                                               (primaries[0] if primaries else None))
    # Fence every other writable primary, and every database that is down (so it cannot boot
    # as a primary), before anything boots: never two primaries.
    for center in target.centers():
        if center != keep and (center in primaries or not target.center_up(center)):
            target.fence(center)
    for center in target.centers():
        if not target.center_up(center):
            notes.append(target.power_on(center))
    if keep is None:
        raise DrillError("no running primary to restore from; restore from a backup by hand")
    if keep != original:
        notes.append(target.rejoin(original, keep))
        notes.append(target.fence(keep))
        notes.append(target.promote(original))
    sync = [s.center for s in target.outputs.databases.standbys if s.mode == "synchronous"]
    notes.append(target.set_sync(original, sync))
    for standby in target.outputs.databases.standbys:
        center = standby.center
        if target.streaming_from(original, center):
            continue
        try:  # a running standby usually follows the new timeline; re-clone when it cannot
            notes.append(target.follow(center, original) if target.pg_running(center)
                         else target.rejoin(center, original))
        except (DrillError, system.LabCommandError):
            notes.append(target.rejoin(center, original))
    notes.append(target.repoint_web(original))
    notes.append(target.move_service(original))
    wait_until(lambda: target.healthy()["healthy"], 60, "the lab to report healthy")
    return "; ".join(notes) + "; the lab is back in its topology's layout and healthy"


def run_drill(plan: Plan, outputs: StackOutputs, dry_run: bool = False,
              on_step: Callable[[Step], None] = lambda s: None,
              on_notice: Callable[[str], None] = lambda message: None,
              should_stop: Callable[[], str | None] = lambda: None) -> dict[str, Any]:
    """Run a plan against the lab; returns the result document the report is made from.
    `should_stop` answers why to stop (None: go on); it is asked before each step."""
    target = LabTarget(outputs)
    started = time.time()
    run_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime(started))
    ctx = Context(plan, target, None, Detection(plan.expected_alerts),
                  Backups(target, DRILL_DIR / "backups"),
                  primary=target.original_primary, notice=on_notice)
    result: dict[str, Any] = {"scenario": plan.id, "name": plan.name, "run_id": run_id,
                              "started": started, "dry_run": dry_run, "targets": plan.targets,
                              "anomalies": []}
    if dry_run:
        result["steps"] = [{"phase": phase, "action": s["action"],
                            "args": {k: v for k, v in s.items() if k != "action"}}
                           for phase in PHASES for s in plan.steps.get(phase, [])]
        result["verdict"] = "dry-run"
        return result

    def do(phase: str, spec: dict) -> None:
        why = should_stop()
        if why:
            raise DrillAborted(why)
        args = {k: v for k, v in spec.items() if k != "action"}
        step = Step(phase, spec["action"], args, time.time())
        ctx.steps.append(step)
        try:
            step.detail = ACTIONS[spec["action"]](ctx, **args)
            step.ok = True
        except Exception as exc:
            step.detail = str(exc)
            raise
        finally:
            step.ended = time.time()
            on_step(step)

    client = outputs.internet_namespace()
    phase_reached = "preflight"
    try:
        for spec in plan.steps.get("preflight", []):
            do("preflight", spec)
    except Exception as exc:  # noqa: BLE001
        result.update(verdict="aborted", aborted_in="preflight", reason=str(exc),
                      steps=[_step_doc(s) for s in ctx.steps], ended=time.time(),
                      touched=False, blocked_by=ctx.blockers)
        return result

    ctx.ledger = Ledger(client, f"{outputs.service.url}ledger")
    ctx.detection.silence(30, f"govctl drill {plan.id} {run_id}")
    rolled_back = False
    try:
        time.sleep(2)  # a baseline of acknowledged writes before the fault
        for phase in PHASES[1:]:
            phase_reached = phase
            for spec in plan.steps.get(phase, []):
                do(phase, spec)
            if phase == "recover" and ctx.fault_at is not None:
                recovered = ctx.ledger.first_ack_after(ctx.fault_at, timeout=120)
                result["recovered_at"] = recovered
                result.update(_rpo(ctx))
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001
        result["anomalies"].append(f"{phase_reached}: {type(exc).__name__}: {exc}")
        result["aborted_in"] = phase_reached
        try:
            step = Step("rollback", "restore_original", {}, time.time())
            ctx.steps.append(step)
            step.detail = ctx.restore_original()
            step.ok = True
            rolled_back = True
        except Exception as rollback_exc:  # noqa: BLE001
            step.detail = f"rollback failed: {rollback_exc}"
            result["left_to_fix"] = _left_to_fix(target)
        finally:
            step.ended = time.time()
            on_step(step)
    finally:
        if ctx.ledger:
            ctx.ledger.stop()
        ctx.detection.unsilence()
    result["ended"] = time.time()
    result["steps"] = [_step_doc(s) for s in ctx.steps]
    result["fault_at"] = ctx.fault_at
    result["measured"] = _measured(ctx, result)
    result["verification"] = ctx.verification
    result["acknowledged_writes"] = len(ctx.ledger.acks) if ctx.ledger else 0
    result["detection_note"] = ctx.detection.unavailable_reason
    result["page_alerts"] = ctx.detection.seen
    if "aborted_in" in result:
        result["verdict"] = "rolled back" if rolled_back else "failed"
    else:
        result["verdict"] = "pass" if _meets_targets(result["measured"], plan.targets) else "fail"
    return result


def _step_doc(step: Step) -> dict:
    return {"phase": step.phase, "action": step.action, "args": step.args, "ok": step.ok,
            "started": step.started, "ended": step.ended,
            "seconds": round(step.ended - step.started, 3), "detail": step.detail}


def _rpo(ctx: Context) -> dict:
    """Acknowledged writes missing on the (new) primary once service is back."""
    acked = ctx.ledger.acked_before(time.time())
    if not acked:
        return {"rpo_transactions": 0, "rpo_seconds": 0.0}
    seqs = [a["seq"] for a in acked]
    present = set()
    for chunk in range(0, len(seqs), 5000):
        part = seqs[chunk:chunk + 5000]
        out = ctx.target.sql(ctx.primary, "SELECT seq FROM ledger WHERE seq IN (" +
                             ",".join(map(str, part)) + ")")
        present |= {int(x) for x in out.split()}
    missing = [a for a in acked if a["seq"] not in present]
    if not missing:
        return {"rpo_transactions": 0, "rpo_seconds": 0.0}
    kept = [a["acked"] for a in acked if a["seq"] in present and a["acked"] < missing[0]["acked"]]
    span = missing[-1]["acked"] - (max(kept) if kept else missing[0]["acked"])
    return {"rpo_transactions": len(missing), "rpo_seconds": round(span, 3),
            "missing_sequences": [a["seq"] for a in missing][:50]}


def _measured(ctx: Context, result: dict) -> dict:
    fault = ctx.fault_at
    recovered = result.get("recovered_at")
    return {
        "rto_seconds": round(recovered - fault, 3) if fault and recovered else None,
        "rpo_transactions": result.get("rpo_transactions"),
        "rpo_seconds": result.get("rpo_seconds"),
        "detection_seconds": round(ctx.detected_at - fault, 3) if fault and ctx.detected_at else None,
    }


def _meets_targets(measured: dict, targets: dict) -> bool:
    checks = [("rto_seconds", "rto_seconds"), ("rpo_transactions", "rpo_transactions"),
              ("rpo_seconds", "rpo_seconds"), ("detection_seconds", "detection_seconds")]
    for key, target_key in checks:
        limit = targets.get(target_key)
        if limit is None:
            continue
        value = measured.get(key)
        if value is None or value > limit:
            return False
    return True


def _left_to_fix(target: LabTarget) -> list[str]:
    todo = []
    for center in target.centers():
        if not target.center_up(center):
            todo.append(f"center {center} has hosts down: run `govctl lab up`")
    primaries = target.primaries()
    if len(primaries) != 1:
        todo.append(f"{len(primaries)} writable primaries ({primaries}): fence all but one")
    return todo or ["run `govctl lab status` and `govctl lab up`"]


__all__ = ["DRILL_DIR", "run_drill"]


# -- the audit trail (issue 19): every drill run that touches the lab, with its verdict --------------
def _recorded(run):
    """A start entry (a drill whose process dies still leaves a trace) and one with the verdict."""
    @functools.wraps(run)
    def run_and_record(plan: Plan, outputs: StackOutputs, dry_run: bool = False, acting: str | None = None,
                       **kwargs) -> dict[str, Any]:
        """`acting`: who started it when not this process's user (the console's signed-in user)."""
        from crypto.audit import record
        from crypto.keystore import actor
        if dry_run:  # a dry run changes nothing
            return run(plan, outputs, dry_run=dry_run, **kwargs)
        who = acting or actor()
        record(who, "drill.start", plan.id)
        try:
            result = run(plan, outputs, dry_run=dry_run, **kwargs)
        except BaseException as exc:
            record(who, "drill.run", plan.id, {}, f"failed: {type(exc).__name__}: {exc}")
            raise
        verdict = result.get("verdict")
        why = result.get("reason") or result.get("aborted_in") or verdict
        record(who, "drill.run", plan.id, {"run_id": result.get("run_id"), "verdict": verdict},
               "ok" if verdict in ("pass", "fail") else f"failed: {why}")
        return result
    return run_and_record


run_drill = _recorded(run_drill)
