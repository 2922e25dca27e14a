"""Drills as a service (issue #19): what `govctl drill run` does after its checks (run, measure, sign,
write metrics and reports), the history of the runs on record, and the console's desk that runs one drill
at a time in the background, shows its steps as they end and aborts it through the runner's own rollback.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .plans import PLANS_DIR, PlanError, load_plan, stack_names
from .report import finish, metrics, sign, write_reports
from .runner import DRILL_DIR, Step, run_drill

REPORT_FORMATS = ("json", "html")  # what write_reports writes, the downloads the console offers
# <scenario>-<UTC start>, as execute() names the files of a run
REPORT_ID = re.compile(r"^[a-z][a-z0-9-]*-\d{8}T\d{6}$")


class DrillBusy(RuntimeError):
    pass


def hold_drill_lock(folder: Path = DRILL_DIR):
    """The machine's one-drill-at-a-time lock (console and `govctl drill run` alike): an open file holding
    an exclusive flock, released when closed (or when the process ends). DrillBusy when another holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / "running.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise DrillBusy(f"a drill is already running ({holder}); one drill at a time: wait for it "
                        "or abort it") from None
    handle.truncate(0)
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    return handle


def reports_dir(folder: Path = DRILL_DIR) -> Path:
    return folder / "reports"


def execute(plan, outputs, report: Path | None = None, folder: Path = DRILL_DIR, **run_options) -> dict:
    """Run a plan on the stack and keep what it showed: the signed result, the Prometheus metrics of the
    scenario and the reports (JSON + HTML at `report`, else in the history folder). `run_options` go to
    drills.runner.run_drill (on_step, on_notice, should_stop, acting)."""
    result = sign(finish(run_drill(plan, outputs, **run_options)))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{plan.id}.prom").write_text(metrics(result))
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(result["started"]))
    written = write_reports(result, report or reports_dir(folder) / f"{plan.id}-{stamp}")
    result["report_files"] = [str(p) for p in written]
    return result


def summary(result: dict) -> dict:
    """One run as the history lists it: verdict, the measured figures and the GB/T 20988 level."""
    measured = result.get("measured") or {}
    level = result.get("gbt20988") or {}
    return {"scenario": result.get("scenario"), "name": result.get("name"), "run_id": result.get("run_id"),
            "started": result.get("started"), "ended": result.get("ended"), "verdict": result.get("verdict"),
            "aborted_in": result.get("aborted_in"), "reason": result.get("reason"),
            "rto_seconds": measured.get("rto_seconds"), "rpo_transactions": measured.get("rpo_transactions"),
            "rpo_seconds": measured.get("rpo_seconds"), "detection_seconds": measured.get("detection_seconds"),
            "targets": result.get("targets") or {},
            "level": level.get("level"), "level_zh": level.get("zh"), "level_en": level.get("en"),
            "signed": "signature" in result}


def history(folder: Path = DRILL_DIR) -> list[dict]:
    """Every run whose report is in the history folder, oldest first. A report that cannot be read is
    listed with the reason rather than left out."""
    runs = []
    for path in sorted(reports_dir(folder).glob("*.json")):
        if not REPORT_ID.match(path.stem):
            continue
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(result, dict):
                raise ValueError("not a JSON object")
            run = summary(result)
        except (OSError, ValueError) as exc:
            run = {"verdict": "unreadable", "reason": f"{path.name}: {exc}", "started": path.stat().st_mtime}
        run["id"] = path.stem
        run["formats"] = [f for f in REPORT_FORMATS if path.with_suffix(f".{f}").exists()]
        runs.append(run)
    return sorted(runs, key=lambda r: (r.get("started") or 0, r["id"]))


def report_file(report_id: str, fmt: str, folder: Path = DRILL_DIR) -> Path | None:
    """The file of one report in the history folder (None: no such report); never a path outside it."""
    if fmt not in REPORT_FORMATS or not REPORT_ID.match(report_id):
        return None
    path = reports_dir(folder) / f"{report_id}.{fmt}"
    return path if path.is_file() else None


class UnknownScenario(LookupError):
    pass


class NotConfirmed(ValueError):
    pass


class CannotRun(RuntimeError):
    """The drill cannot start here (stack not deployed, not root, plan refused by the stack)."""


@dataclass
class LiveRun:
    scenario: str
    name: dict
    started_by: str
    started: float
    state: str = "running"  # running → finished (or error: the runner itself failed)
    steps: list[dict] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    abort_requested_by: str | None = None
    result: dict | None = None
    error: str | None = None

    def view(self) -> dict:
        return {"scenario": self.scenario, "name": self.name, "started_by": self.started_by,
                "started": self.started, "state": self.state, "steps": list(self.steps),
                "notices": list(self.notices), "abort_requested_by": self.abort_requested_by,
                "result": self.result, "error": self.error}


def _outputs_of(stack: str):
    from infra.outputs import read_stack_outputs

    return read_stack_outputs(stack)


class DrillDesk:
    """One drill at a time, run in a background thread by the same code as `govctl drill run`."""

    def __init__(self, stack: str = "lab", plans_dir: Path = PLANS_DIR, folder: Path = DRILL_DIR,
                 read_outputs: Callable[[str], Any] = _outputs_of, needs_root: bool = True):
        self.stack = stack
        self.plans_dir = Path(plans_dir)
        self.folder = Path(folder)
        self.read_outputs = read_outputs
        self.needs_root = needs_root
        self._lock = threading.Lock()
        self._run: LiveRun | None = None
        self._thread: threading.Thread | None = None

    def scenarios(self) -> list[dict]:
        found = []
        for path in sorted(self.plans_dir.glob("*.yaml")):
            try:
                plan = load_plan(path)
            except PlanError as exc:
                found.append({"id": path.stem, "error": str(exc)})
                continue
            found.append({"id": plan.id, "name": plan.name, "description": plan.description,
                          "targets": plan.targets,
                          "phases": {phase: [s["action"] for s in steps] for phase, steps in plan.steps.items()}})
        return found

    def _plan_path(self, scenario: str) -> Path:
        path = self.plans_dir / f"{scenario}.yaml"
        if not re.fullmatch(r"[a-z][a-z0-9-]*", scenario or "") or not path.is_file():
            known = ", ".join(p.stem for p in sorted(self.plans_dir.glob("*.yaml")))
            raise UnknownScenario(f"no drill scenario {scenario!r}; scenarios: {known}")
        return path

    def start(self, scenario: str, confirm: str, by: str) -> dict:
        """Start `scenario` once its name is typed again in `confirm`; answers the live view."""
        path = self._plan_path(scenario)
        if confirm != scenario:
            raise NotConfirmed(f"type the scenario's name to confirm: {scenario!r} (got {confirm!r}); "
                               "nothing was touched")
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise DrillBusy(f"drill {self._run.scenario!r} started by {self._run.started_by} is running; "
                                "one drill at a time: wait for it or abort it")
            if self.needs_root and os.geteuid() != 0:
                raise CannotRun("drills on the lab need root (the console runs as a user); nothing was touched")
            try:
                outputs = self.read_outputs(self.stack)
                plan = load_plan(path, stack_names(outputs))
            except PlanError as exc:
                raise CannotRun(str(exc)) from None
            except Exception as exc:  # noqa: BLE001 - StackNotDeployed and the engine's errors say what to do
                raise CannotRun(str(exc)) from None
            lock = hold_drill_lock(self.folder)  # DrillBusy when `govctl drill run` drills now
            run = LiveRun(plan.id, plan.name, by, time.time())
            self._run = run
            self._thread = threading.Thread(target=self._execute, args=(run, plan, outputs, lock),
                                            name=f"drill-{plan.id}", daemon=True)
            self._thread.start()
            return run.view()

    def _execute(self, run: LiveRun, plan, outputs, lock) -> None:
        def on_step(step: Step) -> None:
            run.steps.append({"phase": step.phase, "action": step.action, "ok": step.ok,
                              "started": step.started, "ended": step.ended,
                              "seconds": round(step.ended - step.started, 3), "detail": step.detail})

        def should_stop() -> str | None:
            return run.abort_requested_by and f"aborted from the console by {run.abort_requested_by}"

        try:
            result = execute(plan, outputs, folder=self.folder, on_step=on_step, on_notice=run.notices.append,
                             should_stop=should_stop, acting=run.started_by)
            run.result = summary(result) | {"id": Path(result["report_files"][0]).stem,
                                            "anomalies": result.get("anomalies", []),
                                            "left_to_fix": result.get("left_to_fix")}
        except Exception as exc:  # noqa: BLE001 - shown on the page; the audit trail has it too
            run.error = f"{type(exc).__name__}: {exc}"
        finally:
            lock.close()
            run.state = "finished" if run.error is None else "error"

    def current(self) -> dict | None:
        """The running drill, or the last one this desk ran."""
        run = self._run
        return run.view() if run else None

    def abort(self, by: str) -> dict:
        """Ask the running drill to stop: at its next step the runner rolls back to the layout."""
        with self._lock:
            run = self._run
            if run is None or self._thread is None or not self._thread.is_alive():
                raise LookupError("no drill is running")
            if run.abort_requested_by is None:
                from crypto.audit import record

                run.abort_requested_by = by
                record(by, "drill.abort", run.scenario, {"started_by": run.started_by})
            return run.view()

    def wait(self, timeout: float) -> bool:
        """Wait for the running drill to end (tests, shutdown); True when none runs any more."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()
