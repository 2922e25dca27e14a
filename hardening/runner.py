"""Run the baseline playbooks through ansible-runner and turn the events into per-item verdicts."""
from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from core.errors import GovctlError
from core.paths import ROOT, STATE
from . import catalog as catalog_mod
from .inventory import build_inventory, hosts_matching
from .verdict import TaskResult, host_fails, item_of, judge

if TYPE_CHECKING:
    from infra.outputs import StackOutputs

PLAYBOOKS = ROOT / "playbooks"
RUNS = STATE / "harden" / "runs"
DEFAULT_FORKS = 10
OBSERVE_TASK = "observe | evidence for every item"
# Tasks named "sub-checks | …" run many items' checks of one module as one loop (a task costs the controller
# a process fork and its events per host; a loop element much less): each element names its check.
SUB_CHECKS = "sub-checks | "
FINALIZE_TASK = "Keep only the backups of files this run changed"
RESULT_EVENTS = {"runner_on_ok": "ok", "runner_on_failed": "failed", "runner_on_skipped": "skipped",
                 "runner_on_unreachable": "unreachable"}
# Events whose content the result events already hold (a loop's items, the diffs) or that only feed the
# progress line: read, not written to the run's artifacts (on the 30-host lab 70 % of ~5,500 files).
NOT_KEPT_EVENTS = {"runner_on_start", "runner_on_file_diff", "runner_item_on_ok", "runner_item_on_failed",
                   "runner_item_on_skipped"}


@dataclass
class HostRun:
    """What one host did in one run."""

    name: str
    results: list[TaskResult] = field(default_factory=list)  # the catalog items' tasks
    plumbing: list[TaskResult] = field(default_factory=list)  # backup, preflight, restarts…
    status: str = "ok"  # ok | failed | unreachable | refused
    message: str = ""
    tasks_done: int = 0
    current_task: str = ""
    counts: dict = field(default_factory=lambda: {"ok": 0, "changed": 0, "failed": 0, "skipped": 0})


class EventSink:
    """Collects ansible-runner events (called from runner's thread) and feeds a progress callback."""

    def __init__(self, hosts: list[str], on_progress: Callable[[HostRun], None] | None = None):
        self.hosts = {h: HostRun(h) for h in hosts}
        self.on_progress = on_progress
        self.lock = threading.Lock()
        self.stats: dict = {}

    def __call__(self, event: dict) -> bool:
        kind = event.get("event")
        data = event.get("event_data") or {}
        if kind == "playbook_on_stats":
            self.stats = {k: data.get(k) or {} for k in ("ok", "changed", "failures", "dark", "skipped", "ignored")}
            return True
        if kind == "runner_on_start":
            run = self.hosts.get(data.get("host"))
            if run:
                run.current_task = _short_task(data.get("task", ""))
                self._progress(run)
            return False
        status = RESULT_EVENTS.get(kind)
        if not status:
            return kind not in NOT_KEPT_EVENTS
        with self.lock:
            run = self.hosts.setdefault(data.get("host", "?"), HostRun(data.get("host", "?")))
            res = data.get("res") or {}
            task = _short_task(data.get("task", ""))
            if task.startswith(SUB_CHECKS) and status != "unreachable" and res.get("results"):
                for check, check_status, check_res in _sub_checks(res["results"]):
                    self._result(run, check, check_status, check_res, data.get("ignore_errors"))
            else:
                self._result(run, task, status, res, data.get("ignore_errors"))
        self._progress(run)
        return True

    def _result(self, run: HostRun, task: str, status: str, res: dict, ignore_errors: bool) -> None:
        """One task's (or one sub-check's) result."""
        if status == "ok" and res.get("changed"):
            status = "changed"
        run.tasks_done += 1
        if status == "unreachable":
            run.status = "unreachable"
            run.message = str(res.get("msg", "unreachable"))[:400]
        elif status == "failed" and not ignore_errors:
            msg = str(res.get("msg", "task failed"))
            run.status = "refused" if msg.startswith("REFUSED") else "failed"
            run.message = f"{task}: {msg}"[:800]
        run.counts[status if status in run.counts else "failed"] += 1
        if task == OBSERVE_TASK and status == "ok":
            run.results.extend(_observations(res.get("stdout", "")))
        elif item_of(task):
            run.results.append(TaskResult(task, "failed" if status == "unreachable" else status, res))
        else:
            run.plumbing.append(TaskResult(task, status, res))

    def _progress(self, run: HostRun) -> None:
        if self.on_progress:
            self.on_progress(run)


def _sub_checks(results: list) -> list[tuple[str, str, dict]]:
    """A merged task's loop results as the sub-checks they stand for: each loop element names its check
    ("<ITEM> | <what>"); consecutive elements of one check (a setting with several keys) are one result,
    shaped like the result of the loop task that check used to be."""
    groups: list[tuple[str, list[dict]]] = []
    for entry in results:
        check = ((entry.get("item") or {}) if isinstance(entry, dict) else {}).get("check", "")
        if groups and groups[-1][0] == check:
            groups[-1][1].append(entry)
        else:
            groups.append((check, [entry]))
    out = []
    for check, entries in groups:
        failed = any(e.get("failed") for e in entries)
        skipped = all(e.get("skipped") for e in entries)
        status = "failed" if failed else "skipped" if skipped else "ok"
        if len(entries) == 1:
            out.append((check, status, entries[0]))
            continue
        res = {"changed": any(e.get("changed") for e in entries), "results": entries,
               "msg": "One or more items failed" if failed else "All items skipped" if skipped else "All items completed"}
        if failed:
            res["failed"] = True
        if skipped:
            res["skipped"] = True
        out.append((check, status, res))
    return out


def _short_task(name: str) -> str:
    return name.split(" : ", 1)[-1]  # events prefix role tasks with "role : "


def _observations(stdout: str) -> list[TaskResult]:
    """Split the observe script's output ("##ITEM## command" sections) into one result per item."""
    results, item, command, lines = [], None, "", []

    def flush():
        if item:
            results.append(TaskResult(f"{item} | observe", "ok",
                                      {"cmd": command, "observed": "\n".join(lines).strip()}))

    for line in stdout.splitlines():
        if line.startswith("##") and "## " in line[2:]:
            flush()
            head, command = line[2:].split("## ", 1)
            item, lines = head, []
        elif item:
            lines.append(line)
    flush()
    return results


def new_run_id() -> str:
    # microseconds: the console starts several runs in one process, seconds apart or less
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%f") + f"-{os.getpid()}"


def mitogen_strategy() -> dict[str, str]:
    """Mitogen runs the modules in one persistent Python per host instead of starting one per task:
    the lab's hosts share the controller's cores, so this is what keeps a 9-host audit in seconds."""
    import ansible_mitogen
    return {"ANSIBLE_STRATEGY_PLUGINS": str(Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"),
            "ANSIBLE_STRATEGY": "mitogen_linear"}


def quiet_stdout() -> dict[str, str]:
    """ansible-runner's event callback builds on the stdout callback named here: govctl's own, which
    prints only failures and the recap (see playbooks/callback_plugins/govctl_quiet.py for why)."""
    return {"ANSIBLE_STDOUT_CALLBACK": "govctl_quiet", "ANSIBLE_CALLBACK_PLUGINS": str(PLAYBOOKS / "callback_plugins")}


def run_playbook(playbook: str, inventory: dict, extravars: dict, limit: str | None, check: bool,
                 forks: int, run_id: str, on_progress=None) -> tuple[EventSink, object]:
    import ansible_runner

    hosts = hosts_matching(inventory, limit)
    sink = EventSink(hosts, on_progress)
    venv_bin = str(Path(sys.executable).parent)
    os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")
    private = RUNS / run_id
    private.mkdir(parents=True, exist_ok=True)
    cmdline = "--check --diff" if check else "--diff"
    result = ansible_runner.run(
        private_data_dir=str(private), project_dir=str(PLAYBOOKS), playbook=playbook,
        inventory=inventory, extravars=extravars, limit=limit, forks=forks, cmdline=cmdline,
        envvars={"ANSIBLE_CONFIG": str(PLAYBOOKS / "ansible.cfg"), "ANSIBLE_PIPELINING": "True",
                 "ANSIBLE_LIBRARY": str(PLAYBOOKS / "roles" / "govctl_baseline" / "library"),
                 "ANSIBLE_ROLES_PATH": str(PLAYBOOKS / "roles"), "ANSIBLE_NOCOLOR": "1",
                 "ANSIBLE_SSH_RETRIES": "2", "ANSIBLE_TIMEOUT": "20", **quiet_stdout(), **mitogen_strategy()},
        event_handler=sink, quiet=True, suppress_env_files=True,
        settings={"suppress_ansible_output": True})
    if not any(r.tasks_done for r in sink.hosts.values()):
        tail = ""
        try:
            tail = result.stdout.read()[-1500:]
        except Exception:  # noqa: BLE001 — best effort: the run failed before any task
            pass
        raise GovctlError(f"ansible-runner did not run a single task (status {result.status}, rc {result.rc}); "
                          f"artifacts in {private}\n{tail}")
    return sink, result


def baseline(mode: str, level: int, limit: str | None, check: bool, stack: str = "lab",
             forks: int = DEFAULT_FORKS, outputs: StackOutputs | None = None, extravars: dict | None = None,
             on_progress=None) -> dict:
    """Audit (mode=audit, always check mode) or harden the hosts; returns the report."""
    from .inventory import load_outputs

    started = time.monotonic()
    outputs = outputs if outputs is not None else load_outputs(stack)
    inventory = build_inventory(outputs)
    controls = catalog_mod.controls(level)
    run_id = new_run_id()
    check_mode = check or mode == "audit"
    variables = {"govctl": catalog_mod.role_parameters(level), "govctl_mode": mode, "govctl_run_id": run_id}
    for key, value in (extravars or {}).items():
        if key == "govctl_item_params":  # tests and operators override one item's parameters
            for item, params in value.items():
                variables["govctl"]["items"][item] = {**variables["govctl"]["items"].get(item, {}), **params}
        else:
            variables[key] = value
    sink, result = run_playbook("baseline.yml", inventory, variables, limit, check_mode, forks, run_id, on_progress)
    report_hosts = {}
    for name, run in sink.hosts.items():
        host_vars = inventory["all"]["hosts"].get(name, {})
        per_item: dict[str, list[TaskResult]] = {}
        for r in run.results:
            per_item.setdefault(item_of(r.task)[0], []).append(r)
        reachable = run.status in ("ok", "failed")
        verdicts = [judge(c, per_item.get(c.id, []), check_mode, host_vars,
                          host_error=run.message if run.status != "ok" else "")
                    for c in controls] if reachable else []
        changed = sorted({item_of(r.task)[0] for r in run.results if r.status == "changed"})
        counts: dict[str, int] = {}
        for v in verdicts:
            counts[v.verdict] = counts.get(v.verdict, 0) + 1
        backup = next((r.result for r in _all_results(sink, name, FINALIZE_TASK)), {})
        report_hosts[name] = {
            "status": run.status, "message": run.message, "center": host_vars.get("govctl_center"),
            "roles": host_vars.get("govctl_roles"), "tasks": run.tasks_done,
            "changed_tasks": run.counts["changed"], "changed_items": changed,
            "failed_tasks": run.counts["failed"], "verdicts": counts,
            "automated_failing": host_fails(verdicts),
            "backup": {"dir": backup.get("backup_dir"), "files": backup.get("changed_files", [])} if backup else None,
            "items": [v.as_dict() for v in verdicts],
        }
    return {
        "mode": mode + (" --check" if check and mode == "harden" else ""), "level": level, "run_id": run_id,
        "forks": forks, "limit": limit, "seconds": round(time.monotonic() - started, 1),
        "catalog": str(catalog_mod.CATALOG.relative_to(ROOT)), "artifacts": str(RUNS / run_id),
        "runner_status": result.status, "hosts": report_hosts,
        "unreachable": sorted(h for h, r in report_hosts.items() if r["status"] == "unreachable"),
        "failed": sorted(h for h, r in report_hosts.items() if r["status"] in ("failed", "refused")),
        "changed_tasks": sum(r["changed_tasks"] for r in report_hosts.values()),
    }


def rollback(host: str, stack: str = "lab", outputs: StackOutputs | None = None, on_progress=None) -> dict:
    """Restore the last backup on one host (`govctl harden --rollback HOST`)."""
    from core.errors import BadInput
    from .inventory import load_outputs

    outputs = outputs if outputs is not None else load_outputs(stack)
    inventory = build_inventory(outputs)
    if host not in inventory["all"]["hosts"]:
        raise BadInput(f"--rollback {host}: no such host in stack {stack}; hosts: "
                       + ", ".join(inventory["all"]["hosts"]))
    run_id = new_run_id()
    sink, result = run_playbook("rollback.yml", inventory, {}, host, False, 1, run_id, on_progress)
    run = sink.hosts[host]
    restore = next((r.result for r in _all_results(sink, host, "Restore the files of the last backup")), {})
    return {"host": host, "status": run.status, "message": run.message, "run_id": run_id,
            "backup": restore.get("backup_dir"), "restored": restore.get("restored", []),
            "artifacts": str(RUNS / run_id)}


def _all_results(sink: EventSink, host: str, task: str):
    return [r for r in sink.hosts[host].plumbing if r.task == task]


# -- the audit trail (issue 19): harden runs that change hosts, and rollbacks ------------------------
def _recorded(run, action: str, changes):
    """Record the run with its outcome: failed when it raised, or when a host failed or was unreachable."""
    import functools
    import inspect

    @functools.wraps(run)
    def run_and_record(*args, **kwargs) -> dict:
        from crypto.audit import record
        from crypto.keystore import actor
        bound = inspect.signature(run).bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = bound.arguments
        if not changes(arguments):  # audits and --check runs change nothing
            return run(*args, **kwargs)
        target = arguments.get("host") or f"{arguments['stack']}:{arguments.get('limit') or 'all'}"
        params = {k: v for k, v in arguments.items() if k in ("mode", "level", "limit", "stack", "host")}
        try:
            report = run(*args, **kwargs)
        except BaseException as exc:
            record(actor(), action, target, params, f"failed: {type(exc).__name__}: {exc}")
            raise
        broken = [*report.get("failed", []), *report.get("unreachable", [])]
        if report.get("status", "ok") != "ok":
            broken.append(report["host"])
        record(actor(), action, target, {**params, "run_id": report.get("run_id")},
               f"failed: hosts {', '.join(broken)}" if broken else "ok")
        return report
    return run_and_record


baseline = _recorded(baseline, "harden.run", lambda a: a["mode"] != "audit" and not a["check"])
rollback = _recorded(rollback, "harden.rollback", lambda a: True)
