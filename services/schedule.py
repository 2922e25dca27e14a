"""Scheduled collection (issue 19): jobs the supervisor runs on a cadence — the host audit daily, the
compliance evidence weekly, the availability report and the backup-restore drill monthly.

The jobs are data (the `schedules:` section of services/components.yaml, checked by spec.load_spec);
`govctl up` resolves their command lines into plan.json and the supervisor calls `Scheduler.poll`
on every tick. The rules:

- A cadence (daily, weekly, monthly or a five-field cron line, in the section's time zone) cuts time
  into periods; a job is due when its current period has no run yet. A period is named by the time
  it began (croniter's previous fire time), so the record survives a restart: the journal says which
  periods ran, and a restarted supervisor does not run them again.
- After downtime only the current period is due: a job that missed three days runs once, not three
  times. Periods before a job was first planned are never due (a fresh `govctl up` does not start a
  drill at once; the first run is at the job's first fire time).
- A run counts for its period whatever its result: a failed job is recorded failed and tried again in
  the next period (or by hand: `govctl schedule run NAME`). A run the supervisor had to stop (`govctl
  down`) does not count: it is run again once after the restart.
- One job at a time in the supervisor, and never two runs of the same job anywhere: each run holds a
  lock file (the child process inherits it, so the lock lasts as long as the run's process even if the
  supervisor is killed); a manual run of a running job is refused.
- Each run gets a folder state/platform/schedule/runs/NAME/STAMP/ (its output log, and whatever the
  command writes to `{run_dir}`), two lines in the journal (start, end: time, exit code, result,
  output) and one entry in the audit trail (crypto.audit.record, action `schedule.run`).

Time comes from an injected clock, so the tests shift it instead of sleeping for a day.
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, TextIO
from zoneinfo import ZoneInfo

from croniter import croniter

from core.errors import GovctlError

from .layout import Layout

CADENCES = {"daily": "@daily", "weekly": "@weekly", "monthly": "@monthly"}
RUN_DIR = "{run_dir}"  # the placeholder a job's command line may use: its run's own folder
STOP_GRACE = 10.0  # a run past its timeout (or stopped by `down`) gets SIGTERM, then SIGKILL after this
LOOK_EVERY = 1.0  # seconds between looks for due jobs (the supervisor ticks every 0.2 s)
SCHEDULER_ACTOR = "scheduler"  # the trail's actor for runs the supervisor started
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def cron_line(cadence: str) -> str:
    return CADENCES.get(cadence, cadence)


def cadence_problem(cadence: str) -> str | None:
    """Why `cadence` is not usable, or None."""
    line = cron_line(cadence)
    if line.startswith("@") and line not in CADENCES.values():
        return f"cadence {cadence!r}: use daily, weekly, monthly or a cron line such as '30 2 * * 1'"
    if not line.startswith("@") and len(line.split()) != 5:
        return (f"cadence {cadence!r}: a cron line has five fields (minute hour day-of-month month "
                "day-of-week), e.g. '30 2 * * 1'; or use daily, weekly, monthly")
    if not croniter.is_valid(line):
        return f"cadence {cadence!r} is not a valid cron line; e.g. '30 2 * * 1' is Mondays at 02:30"
    return None


def timezone_problem(name: str) -> str | None:
    try:
        ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        return f"unknown time zone {name!r}; use an IANA name such as Asia/Shanghai or UTC"
    return None


@dataclass(frozen=True)
class PlannedJob:
    """A job as the supervisor runs it (one entry of plan.json's `schedules`)."""

    name: str
    description: str
    argv: tuple[str, ...]  # filled in by `up`, except {run_dir}
    cadence: str
    timezone: str
    enabled: bool = True
    timeout: float = 3600.0

    @classmethod
    def from_plan(cls, entry: dict) -> "PlannedJob":
        return cls(name=entry["name"], description=entry.get("description", ""), argv=tuple(entry["argv"]),
                   cadence=entry["cadence"], timezone=entry["timezone"], enabled=bool(entry.get("enabled", True)),
                   timeout=float(entry.get("timeout", 3600.0)))

    def to_plan(self) -> dict:
        return {**asdict(self), "argv": list(self.argv)}

    def period(self, now: datetime) -> datetime:
        """When the period holding `now` began (a fire time at exactly `now` begins a new one)."""
        local = now.astimezone(ZoneInfo(self.timezone)) + timedelta(microseconds=1)
        return croniter(cron_line(self.cadence), local).get_prev(datetime)

    def next_fire(self, now: datetime) -> datetime:
        local = now.astimezone(ZoneInfo(self.timezone))
        return croniter(cron_line(self.cadence), local).get_next(datetime)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


# -- the journal --------------------------------------------------------------------------------
class Journal:
    """state/platform/schedule/journal.jsonl: one JSON line per event (`planned`, `start`, `end`),
    appended and flushed to disk; readers skip a line they cannot parse (a torn last line after a
    crash) rather than fail."""

    def __init__(self, path: Path):
        self.path = path
        self._cache: tuple[tuple[int, int], tuple] | None = None
        self._counted: dict[str, tuple] = {}

    def append(self, event: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        line = (json.dumps(event, ensure_ascii=False, sort_keys=True) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def events(self) -> list[dict]:
        return self._load()[0]

    def _load(self) -> tuple[list[dict], dict[str, list[dict]], dict[str, str]]:
        """(events, runs per job, first `planned` per job), parsed again only when the file changed: the
        supervisor looks every second, and a year of daily runs is thousands of lines."""
        try:
            stat = self.path.stat()
        except OSError:
            return [], {}, {}
        key = (stat.st_mtime_ns, stat.st_size)
        if self._cache and self._cache[0] == key:
            return self._cache[1]
        events: list[dict] = []
        runs: dict[str, dict] = {}
        planned: dict[str, str] = {}
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if not isinstance(event, dict) or not isinstance(event.get("job"), str):
                continue
            events.append(event)
            kind, run = event.get("event"), event.get("run")
            if kind == "planned" and isinstance(event.get("at"), str):
                planned.setdefault(event["job"], event["at"])
            elif kind == "start" and isinstance(run, str):
                runs[run] = {k: v for k, v in event.items() if k != "event"}
            elif kind == "end" and run in runs:
                runs[run].update({k: v for k, v in event.items() if k != "event"})
        by_job: dict[str, list[dict]] = {}
        for record in runs.values():
            by_job.setdefault(record["job"], []).append(record)
        self._cache = (key, (events, by_job, planned))
        return self._cache[1]

    def runs(self, job: str | None = None) -> list[dict]:
        """Every run (its start merged with its end, when it ended), oldest first."""
        by_job = self._load()[1]
        if job is not None:
            return list(by_job.get(job, ()))
        return sorted((r for rs in by_job.values() for r in rs), key=lambda r: r.get("start", ""))

    def planned_since(self, job: str) -> str | None:
        return self._load()[2].get(job)

    def counted_periods(self, job: str) -> set[datetime]:
        """The periods `job` has a run for that counts (any result but `interrupted`), as instants: a
        period recorded in another time zone (the file's changed) is the same period."""
        by_job = self._load()[1]
        key = (self._cache[0] if self._cache else None, job)
        if self._counted.get(job, (None,))[0] != key:
            self._counted[job] = (key, {_instant(r.get("period")) for r in by_job.get(job, ())
                                        if r.get("result") != "interrupted"})
        return self._counted[job][1]


# -- due or not ---------------------------------------------------------------------------------
def due_period(job: PlannedJob, journal: Journal, now: datetime) -> datetime | None:
    """The period `job` must run for now, or None (disabled, already ran for it, or the period began
    before the job was planned)."""
    if not job.enabled:
        return None
    since = journal.planned_since(job.name)
    if since is None:  # not planned yet: its first period is the one after it is
        return None
    period = job.period(now)
    if period < datetime.fromisoformat(since):
        return None
    return None if period in journal.counted_periods(job.name) else period


def _instant(text) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None


# -- running -------------------------------------------------------------------------------------
class JobBusy(GovctlError):
    """A run of this job is under way (here or in another process): a second one is refused."""


@dataclass
class Running:
    job: PlannedJob
    record: dict
    proc: subprocess.Popen
    lock: TextIO
    started: float  # monotonic
    timed_out: bool = False
    kill_at: float | None = None
    stopped: bool = False


class Scheduler:
    def __init__(self, layout: Layout, cwd: Path, *, clock: Clock = utc_now,
                 log: Callable[[str], None] = print, audit_directory: Path | None = None,
                 look_every: float = LOOK_EVERY):
        self.layout, self.cwd, self.clock, self.log = layout, cwd, clock, log
        self.look_every = look_every
        self.audit_directory = audit_directory
        self.journal = Journal(layout.schedule_journal)
        self.current: Running | None = None
        self._next_look = 0.0

    # -- the supervisor's side: non-blocking ---------------------------------------------------
    def poll(self, jobs: list[PlannedJob]) -> None:
        """Called on every supervisor tick: look after the run under way, else start the first due
        job (file order). Never blocks."""
        if self.current is not None:
            self._watch(self.current)
            return
        if time.monotonic() < self._next_look:  # cadences are minutes at the finest: once a second is enough
            return
        self._next_look = time.monotonic() + self.look_every
        now = self.clock()
        for job in jobs:
            if self.journal.planned_since(job.name) is None:
                self.journal.append({"event": "planned", "job": job.name, "at": now.isoformat()})
        for job in jobs:
            period = due_period(job, self.journal, now)
            if period is None:
                continue
            try:
                self.current = self.start(job, "schedule", period)
            except JobBusy:  # a manual run of it is under way: it counts for the period when it started
                continue
            except GovctlError as exc:  # could not start: recorded failed for this period
                self.log(f"schedule {job.name}: {exc}")
                continue
            return

    def _watch(self, running: Running) -> None:
        code = running.proc.poll()
        if code is not None:
            self._finish(running, code)
            return
        now = time.monotonic()
        if not running.timed_out and now - running.started > running.job.timeout:
            running.timed_out = True
            self.log(f"schedule {running.job.name}: still running after {running.job.timeout:g} s; stopping it")
            _signal_group(running.proc.pid, signal.SIGTERM)
            running.kill_at = now + STOP_GRACE
        elif running.kill_at is not None and now >= running.kill_at:
            _signal_group(running.proc.pid, signal.SIGKILL)
            running.kill_at = None

    def stop(self) -> None:
        """The supervisor stops: end the run under way (it is recorded `interrupted` and runs again
        once after the restart)."""
        running = self.current
        if running is None:
            return
        running.stopped = True
        self._finish(running, _end(running.proc))

    # -- by hand: blocking ---------------------------------------------------------------------
    def run_now(self, job: PlannedJob, actor: str) -> dict:
        """`govctl schedule run NAME`: run it now, wait for it (at most its timeout) and return the
        run's record. It counts for the current period. JobBusy when a run of it is under way."""
        running = self.start(job, "manual", job.period(self.clock()), actor=actor)
        try:
            code = running.proc.wait(job.timeout)
        except subprocess.TimeoutExpired:
            running.timed_out = True
            code = _end(running.proc)
        except BaseException:  # Ctrl-C: the run is stopped and recorded, not left behind
            running.stopped = True
            _signal_group(running.proc.pid, signal.SIGTERM)
            self._finish(running, running.proc.wait())
            raise
        return self._finish(running, code)

    # -- shared ----------------------------------------------------------------------------------
    def start(self, job: PlannedJob, trigger: str, period: datetime, actor: str = SCHEDULER_ACTOR) -> Running:
        lock = self._lock(job)
        started_at = self.clock()
        stamp = started_at.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        run_dir = self.layout.schedule_runs / job.name / stamp
        suffix = 1
        while run_dir.exists():  # two runs in one second (by hand)
            suffix += 1
            run_dir = self.layout.schedule_runs / job.name / f"{stamp}-{suffix}"
        run_dir.mkdir(parents=True, mode=0o700)
        output = run_dir / "output.log"
        argv = [arg.replace(RUN_DIR, str(run_dir)) for arg in job.argv]
        record = {"run": f"{job.name}/{run_dir.name}", "job": job.name, "trigger": trigger, "actor": actor,
                  "period": _iso(period), "start": _iso(started_at), "output": str(output),
                  "run_dir": str(run_dir), "argv": argv}
        with output.open("ab") as out:
            out.write(f"--- {_iso(started_at)} {trigger} run of {job.name}: {' '.join(argv)}\n".encode())
            out.flush()
            try:
                # the child inherits the lock: it is held for as long as the run's process lives
                proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        cwd=self.cwd, start_new_session=True, pass_fds=(lock.fileno(),))
            except OSError as exc:  # recorded as a failed run of its period, like a non-zero exit
                out.write(f"cannot start: {exc}\n".encode())
                lock.close()
                self.journal.append({"event": "start", **record, "pid": None})
                self._record_end(record, 127, f"cannot start: {exc}", 0.0)
                raise GovctlError(f"{job.name}: cannot start {argv[0]!r} ({exc}); fix `run:` of the job in "
                                  "the components file") from None
        record["pid"] = proc.pid
        self.journal.append({"event": "start", **record})
        self.log(f"schedule {job.name}: started ({trigger}, period {record['period']}, pid {proc.pid}, "
                 f"output {output})")
        return Running(job, record, proc, lock, time.monotonic())

    def _lock(self, job: PlannedJob) -> TextIO:
        path = self.layout.schedule_locks / f"{job.name}.lock"
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = open(path, "a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise JobBusy(f"{job.name} is already running ({running_since(self.journal, job.name)}); "
                          "a second run is refused — wait for it, see `govctl schedule list`") from None
        return lock

    def _finish(self, running: Running, code: int) -> dict:
        _signal_group(running.proc.pid, signal.SIGKILL)  # whatever is left in its session
        running.lock.close()
        if self.current is running:
            self.current = None
        seconds = time.monotonic() - running.started
        if running.stopped:
            result = "interrupted"
        elif running.timed_out:
            result = f"timed out after {running.job.timeout:g} s"
        else:
            result = "ok" if code == 0 else "failed"
        return self._record_end(running.record, code, result, seconds)

    def _record_end(self, record: dict, code: int, result: str, seconds: float) -> dict:
        from crypto.audit import record as audit_record

        end = {"run": record["run"], "job": record["job"], "end": _iso(self.clock()), "exit": code,
               "result": result, "seconds": round(seconds, 1)}
        self.journal.append({"event": "end", **end})
        self.log(f"schedule {record['job']}: {result} (exit code {code}) after {seconds:.1f} s")
        outcome = "ok" if result == "ok" else f"failed: {result}, exit code {code}"
        audit_record(record["actor"], "schedule.run", record["job"],
                     {"trigger": record["trigger"], "period": record["period"], "exit": code,
                      "output": record["output"]}, outcome, self.audit_directory)
        return {**record, **end}


def running_since(journal: Journal, job: str) -> str:
    started = [r for r in journal.runs(job) if "result" not in r]
    if not started:
        return "started elsewhere"
    last = started[-1]
    return f"pid {last.get('pid')}, since {last['start']}"


def is_running(layout: Layout, job: str) -> bool:
    """A run of `job` holds its lock now (in any process)."""
    path = layout.schedule_locks / f"{job}.lock"
    if not path.exists():
        return False
    with open(path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
    return False


def _end(proc: subprocess.Popen) -> int:
    """SIGTERM to the run's process group, SIGKILL after STOP_GRACE seconds; its exit code."""
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(STOP_GRACE)
    except subprocess.TimeoutExpired:
        _signal_group(proc.pid, signal.SIGKILL)
        return proc.wait()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# -- what `govctl schedule list` shows ------------------------------------------------------------
def overview(layout: Layout, jobs: list[PlannedJob], now: datetime) -> list[dict]:
    """Per job: cadence, enabled, next due (or due now), the last run and its result, running."""
    journal = Journal(layout.schedule_journal)
    rows = []
    for job in jobs:
        runs = journal.runs(job.name)
        last = runs[-1] if runs else None
        running = is_running(layout, job.name)
        if last is not None and "result" not in last:
            last = {**last, "result": "running" if running else "unknown (its runner stopped before it ended)"}
        period = due_period(job, journal, now)
        since = journal.planned_since(job.name)
        rows.append({
            "name": job.name, "description": job.description, "cadence": job.cadence,
            "timezone": job.timezone, "enabled": job.enabled, "timeout": job.timeout,
            "running": running, "due_now": period is not None,
            "next_due": None if not job.enabled else _iso(period if period is not None else job.next_fire(now)),
            "planned_since": since,
            "last_run": last, "runs": len(runs)})
    return rows


# -- which jobs: what the supervisor runs (plan.json), else what the components file says --------------
def planned_jobs(layout: Layout) -> list[PlannedJob]:
    """The jobs of the plan `govctl up` wrote for the supervisor (command lines filled in)."""
    from .layout import read_json

    data = read_json(layout.plan)
    jobs = []
    for entry in (data.get("schedules", []) if isinstance(data, dict) else []):
        try:
            jobs.append(PlannedJob.from_plan(entry))
        except (KeyError, TypeError, ValueError):
            continue  # plan.json is written by `up`; the supervisor logs a malformed entry
    return jobs


def spec_jobs(spec) -> list[PlannedJob]:
    """The jobs of a components file as written (placeholders not filled): for listing before `up`."""
    return [PlannedJob(name=j.name, description=j.description, argv=j.run, cadence=j.cadence,
                       timezone=spec.schedule_timezone, enabled=j.enabled, timeout=j.timeout)
            for j in spec.schedules]
