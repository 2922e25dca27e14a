"""govctl's supervisor: one background process that runs the platform's services.

It reads the plan (plan.json: each service's command line and restart policy, written by `govctl
up`), starts every service in its own session with its output appended to logs/<name>.log and its
pid in <name>.pid, restarts a service that exits with exponential back-off (base·2^(n-1) up to max;
after `reset_after` seconds up, the count starts again), follows changes of the plan (a service
whose command line changed is restarted, one no longer planned is stopped), and reports in
status.json (replaced atomically) what runs, since when, how often it restarted and why it last
stopped. SIGTERM stops every service (SIGTERM to its process group, SIGKILL after a grace period)
and then the supervisor.

It also runs the plan's scheduled jobs (issue 19: host audit daily, compliance evidence weekly …) one at
a time between its looks at the services; services/schedule.py has the rules and the record.

Hand-written rather than systemd units or supervisord: the platform runs from a checkout without
installing system services, and the restart/back-off rule is a few lines (see docs/platform.md).
"""
from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .layout import Layout, process_alive, read_json, write_json
from .schedule import PlannedJob, Scheduler
from .spec import Restart

TICK = 0.2  # seconds between looks at the children and the plan
STOP_GRACE = 10.0


@dataclass
class Child:
    name: str
    argv: list[str]
    restart: Restart
    token: str = ""  # changes when a service must restart although its command did not
    proc: subprocess.Popen | None = None
    started_at: float | None = None  # monotonic
    started_wall: float | None = None
    restarts: int = 0
    failures: int = 0  # crashes in a row, for the back-off
    next_start: float = 0.0
    last_exit: int | None = None
    last_exit_at: float | None = None
    history: list = field(default_factory=list)  # recent (time, exit code, seconds up)

    def report(self, now: float) -> dict:
        running = self.proc is not None and self.proc.poll() is None
        state = "running" if running else ("backoff" if self.last_exit is not None else "starting")
        return {"state": state, "pid": self.proc.pid if running else None, "argv": self.argv,
                "token": self.token,
                "started": self.started_wall if running else None, "restarts": self.restarts,
                "failures_in_a_row": self.failures, "last_exit": self.last_exit,
                "last_exit_at": self.last_exit_at,
                "next_start_in": None if running else round(max(self.next_start - now, 0), 2),
                "history": self.history[-10:]}


class Supervisor:
    def __init__(self, layout: Layout, cwd: Path, log: Callable[[str], None] = print,
                 scheduler: Scheduler | None = None):
        self.layout, self.cwd, self.log = layout, cwd, log
        self.children: dict[str, Child] = {}
        # scheduled collection (issue 19): the plan's `schedules`, run one at a time between the ticks
        self.scheduler = scheduler or Scheduler(layout, cwd, log=log)
        self.jobs: list[PlannedJob] = []
        self._plan_text = None
        self._stopping = False
        self._last_status: dict | None = None

    # -- the plan --------------------------------------------------------------------------
    def _read_plan(self) -> list[dict] | None:
        try:
            text = self.layout.plan.read_text(encoding="utf-8")
        except OSError:
            text = "[]"
        if text == self._plan_text:
            return None
        self._plan_text = text
        data = read_json(self.layout.plan)
        self.jobs = []
        for entry in (data.get("schedules", []) if isinstance(data, dict) else []):
            try:
                self.jobs.append(PlannedJob.from_plan(entry))
            except (KeyError, TypeError, ValueError) as exc:  # plan.json is `up`'s; a bad entry is skipped
                self.log(f"schedule: ignoring a malformed job in {self.layout.plan}: {exc!r}")
        return data.get("services", []) if isinstance(data, dict) else []

    def _apply_plan(self, services: list[dict]) -> None:
        wanted = {s["name"]: s for s in services}
        for name in list(self.children):
            child = self.children[name]
            new = wanted.get(name)
            if new is None or new["argv"] != child.argv or new.get("token", "") != child.token:
                self.log(f"{name}: {'no longer planned' if new is None else 'plan changed'}; stopping")
                self._stop(child)
                del self.children[name]
        for name, s in wanted.items():
            if name in self.children:
                self.children[name].restart = Restart(**s["restart"])  # a new back-off applies at once
            else:
                self.children[name] = Child(name, list(s["argv"]), Restart(**s["restart"]),
                                            s.get("token", ""))

    # -- children --------------------------------------------------------------------------
    def _start(self, child: Child, now: float) -> None:
        log = self.layout.log(child.name)
        with log.open("ab") as out:
            out.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S%z')} supervisor starts "
                      f"{child.name}: {' '.join(child.argv)}\n".encode())
            out.flush()
            try:
                child.proc = subprocess.Popen(child.argv, stdout=out, stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL, cwd=self.cwd,
                                              start_new_session=True)
            except OSError as exc:  # a command that cannot start counts as a crash
                out.write(f"cannot start: {exc}\n".encode())
                child.proc = None
                self._crashed(child, now, 127, 0.0)
                return
        child.started_at, child.started_wall = now, time.time()
        self.layout.pid(child.name).write_text(f"{child.proc.pid}\n")
        self.log(f"{child.name}: started (pid {child.proc.pid})")

    def _crashed(self, child: Child, now: float, code: int, uptime: float) -> None:
        child.restarts += 1
        child.failures += 1
        child.last_exit, child.last_exit_at = code, time.time()
        child.history = [*child.history[-9:], {"at": round(time.time(), 3), "exit": code,
                                               "up_seconds": round(uptime, 2)}]
        delay = child.restart.delay(child.failures)
        child.next_start = now + delay
        self.log(f"{child.name}: exited with code {code} after {uptime:.1f} s; restart in {delay:g} s "
                 f"(crash {child.failures} in a row)")

    def _poll(self, child: Child, now: float) -> None:
        if child.proc is None:
            if now >= child.next_start:
                self._start(child, now)
            return
        code = child.proc.poll()
        if code is None:
            if child.failures and now - (child.started_at or now) >= child.restart.reset_after:
                child.failures = 0  # it stayed up: the next crash starts the back-off again
            return
        uptime = now - (child.started_at or now)
        self._kill_group(child.proc.pid)  # leftovers of its session
        child.proc = None
        self.layout.pid(child.name).unlink(missing_ok=True)
        if uptime >= child.restart.reset_after:
            child.failures = 0
        self._crashed(child, now, code, uptime)

    @staticmethod
    def _kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _stop(self, child: Child) -> None:
        proc = child.proc
        if proc is not None and proc.poll() is None:
            self._kill_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.log(f"{child.name}: did not stop within {STOP_GRACE:g} s; killing it")
                self._kill_group(proc.pid, signal.SIGKILL)
                proc.wait()
            self._kill_group(proc.pid)  # whatever else is left in its session
            self.log(f"{child.name}: stopped")
        child.proc = None
        self.layout.pid(child.name).unlink(missing_ok=True)

    def _adopt_leftovers(self, services: list[dict]) -> None:
        """A supervisor that was killed left its services running: stop them before starting anew
        (they cannot be waited for by this process)."""
        for s in services:
            pid_file = self.layout.pid(s["name"])
            try:
                pid = int(pid_file.read_text().strip())
            except (OSError, ValueError):
                continue
            if process_alive(pid, s["argv"]):
                self.log(f"{s['name']}: stopping pid {pid} left by an earlier supervisor")
                self._kill_group(pid, signal.SIGTERM)
                deadline = time.monotonic() + STOP_GRACE
                while process_alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.1)
                self._kill_group(pid)
            pid_file.unlink(missing_ok=True)

    # -- status ----------------------------------------------------------------------------
    def _write_status(self, now: float, running: bool = True) -> None:
        report = {"supervisor": {"pid": os.getpid(), "running": running},
                  "services": {name: c.report(now) for name, c in self.children.items()}}
        comparable = {**report, "services": {n: {k: v for k, v in s.items() if k != "next_start_in"}
                                             for n, s in report["services"].items()}}
        if comparable != self._last_status:
            self._last_status = comparable
            write_json(self.layout.status, {**report, "written_at": time.time()})

    def _run_schedules(self) -> None:
        try:
            self.scheduler.poll(self.jobs)
        except Exception as exc:  # noqa: BLE001 - a scheduling fault must not take the services down
            self.log(f"schedule: {exc.__class__.__name__}: {exc}")

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> int:
        """Run until SIGTERM/SIGINT; returns the exit code. Refuses to run twice (a lock)."""
        self.layout.make()
        lock = open(self.layout.supervisor_lock, "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.log("another supervisor already runs for this state folder")
            return 1
        self.layout.supervisor_pid.write_text(f"{os.getpid()}\n")

        def stop(signum, frame):
            self._stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        self.log(f"supervisor running (pid {os.getpid()})")
        first = True
        try:
            while not self._stopping:
                services = self._read_plan()
                if services is not None:
                    if first:
                        self._adopt_leftovers(services)
                    self._apply_plan(services)
                first = False
                for child in list(self.children.values()):
                    self._poll(child, time.monotonic())
                self._run_schedules()
                self._write_status(time.monotonic())
                time.sleep(TICK)
        finally:
            self.scheduler.stop()
            for child in reversed(list(self.children.values())):
                self._stop(child)
            self._write_status(time.monotonic(), running=False)
            self.layout.supervisor_pid.unlink(missing_ok=True)
            self.log("supervisor stopped")
        return 0


def supervisor_pid(layout: Layout) -> int | None:
    """The running supervisor's pid, or None."""
    try:
        pid = int(layout.supervisor_pid.read_text().strip())
    except (OSError, ValueError):
        return None
    if not process_alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return pid if b"supervise" in cmdline else None
