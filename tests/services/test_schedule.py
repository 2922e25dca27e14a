"""Scheduled collection (issue 19) on a shifted clock: when each cadence is due, a missed stretch is caught
up once, a restarted supervisor keeps the record, a failing job is recorded failed and tried again next
period, a second run of a running job is refused, a run past its timeout is stopped. The jobs are real
short processes (sh, true, false, sleep); only the clock is injected — nobody sleeps for a day."""
from __future__ import annotations

import json
import os
import signal
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from crypto.audit import entries
from services.layout import Layout
from services.schedule import JobBusy, Journal, PlannedJob, Scheduler, is_running, overview
from services.spec import DEFAULT_SPEC, load_spec, plan_schedules
from tests.services.test_spec import LAUNCHER, VALUES, assert_edit_refused

CST = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    """A time on the cadences' clock (China Standard Time)."""
    return datetime.fromisoformat(text).replace(tzinfo=CST)


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def job(name: str = "collect", cadence: str = "daily", script: str = "echo collected > {run_dir}/result.txt",
        timeout: float = 30.0, enabled: bool = True) -> PlannedJob:
    return PlannedJob(name=name, description=f"test job {name}", argv=("/bin/sh", "-c", script),
                      cadence=cadence, timezone="Asia/Shanghai", enabled=enabled, timeout=timeout)


@pytest.fixture
def platform(tmp_path):
    """A state folder, an audit log of its own and a clock starting Monday 2026-12-07 10:00 CST."""
    layout = Layout(tmp_path / "state")
    layout.make()
    clock = Clock(at("2026-12-07T10:00:00"))
    logged: list[str] = []

    def scheduler() -> Scheduler:  # a new one is what a restarted supervisor has
        return Scheduler(layout, tmp_path, clock=clock, log=logged.append, audit_directory=tmp_path / "audit",
                         look_every=0)  # the shifted clock, not the wall clock, says when to look

    yield layout, clock, scheduler, tmp_path / "audit"
    for run in Journal(layout.schedule_journal).runs():  # nothing a test started outlives it
        if run.get("pid"):
            try:
                os.killpg(run["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass


def finish(scheduler: Scheduler, jobs: list[PlannedJob], within: float = 15.0) -> None:
    """Poll like the supervisor's loop until the run under way has ended."""
    deadline = time.monotonic() + within
    while scheduler.current is not None:
        assert time.monotonic() < deadline, "the run did not end"
        time.sleep(0.02)
        scheduler.poll(jobs)


def runs(layout: Layout, name: str = "collect") -> list[dict]:
    return Journal(layout.schedule_journal).runs(name)


@pytest.mark.parametrize("cadence, before, fire", [
    ("daily", "2026-12-07T23:59:59", "2026-12-08T00:00:00"),
    ("weekly", "2026-12-12T23:59:00", "2026-12-13T00:00:00"),      # weeks begin on Sunday
    ("monthly", "2026-12-31T23:59:59", "2027-01-01T00:00:00"),
    ("30 2 * * 1", "2026-12-14T02:29:59", "2026-12-14T02:30:00"),  # Mondays 02:30: today's was before 10:00
])
def test_each_cadence_is_due_at_its_first_fire_time_after_it_was_planned(platform, cadence, before, fire):
    layout, clock, scheduler, _ = platform
    jobs = [job(cadence=cadence)]
    s = scheduler()
    s.poll(jobs)  # planned now: the period under way began before, so nothing runs yet
    assert s.current is None
    clock.now = at(before)
    s.poll(jobs)
    assert s.current is None
    [row] = overview(layout, jobs, clock.now)
    assert row["due_now"] is False and row["next_due"] == at(fire).isoformat()
    clock.now = at(fire)
    s.poll(jobs)
    assert s.current is not None and s.current.job.name == "collect"
    finish(s, jobs)
    [run] = runs(layout)
    assert run["period"] == at(fire).isoformat() and run["trigger"] == "schedule"
    assert run["result"] == "ok" and run["exit"] == 0
    assert Path(run["output"]).name == "output.log" and Path(run["output"]).exists()
    assert (Path(run["run_dir"]) / "result.txt").read_text() == "collected\n"  # {run_dir} filled in


def test_a_missed_stretch_is_caught_up_once_not_once_per_missed_period(platform):
    layout, clock, scheduler, _ = platform
    jobs = [job()]
    s = scheduler()
    s.poll(jobs)
    clock.now = at("2026-12-08T00:00:05")
    s.poll(jobs)
    finish(s, jobs)
    clock.now = at("2026-12-11T09:00:00")  # down from the 8th to the 11th: three days missed
    s.poll(jobs)
    finish(s, jobs)
    for minutes in range(0, 600, 60):  # the rest of the day: nothing more
        clock.now = at("2026-12-11T09:00:00") + timedelta(minutes=minutes)
        s.poll(jobs)
        assert s.current is None
    assert [r["period"] for r in runs(layout)] == [at("2026-12-08T00:00:00").isoformat(),
                                                   at("2026-12-11T00:00:00").isoformat()]


def test_a_restarted_supervisor_keeps_the_record_and_does_not_run_a_period_again(platform):
    layout, clock, scheduler, _ = platform
    jobs = [job()]
    first = scheduler()
    first.poll(jobs)
    clock.now = at("2026-12-08T00:00:00")
    first.poll(jobs)
    finish(first, jobs)

    clock.now = at("2026-12-08T13:00:00")
    restarted = scheduler()
    for _ in range(3):
        restarted.poll(jobs)
        assert restarted.current is None
    [row] = overview(layout, jobs, clock.now)
    assert row["last_run"]["result"] == "ok" and row["runs"] == 1
    assert row["next_due"] == at("2026-12-09T00:00:00").isoformat() and row["due_now"] is False


def test_a_run_stopped_by_down_runs_again_once_after_the_restart(platform):
    layout, clock, scheduler, _ = platform
    once = "if [ -e {run_dir}/../interrupted-once ]; then exit 0; fi; touch {run_dir}/../interrupted-once; sleep 30"
    jobs = [job(script=once)]
    s = scheduler()
    s.poll(jobs)
    clock.now = at("2026-12-08T00:00:00")
    s.poll(jobs)
    pid = s.current.proc.pid
    deadline = time.monotonic() + 10
    while not (layout.schedule_runs / "collect" / "interrupted-once").exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    s.stop()  # what the supervisor does on SIGTERM (`govctl down`)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    restarted = scheduler()
    deadline = time.monotonic() + 10
    while restarted.current is None:  # the killed run's last process may hold its lock a moment longer
        assert time.monotonic() < deadline, "the interrupted run was not run again"
        restarted.poll(jobs)
        time.sleep(0.02)
    finish(restarted, jobs)
    restarted.poll(jobs)
    assert restarted.current is None
    assert [r["result"] for r in runs(layout)] == ["interrupted", "ok"]


def test_a_failing_job_is_recorded_failed_and_tried_again_next_period(platform):
    layout, clock, scheduler, audit = platform
    jobs = [job(script="echo disk full >&2; exit 3")]
    s = scheduler()
    s.poll(jobs)
    clock.now = at("2026-12-08T00:00:00")
    s.poll(jobs)
    finish(s, jobs)
    [failed] = runs(layout)
    assert failed["result"] == "failed" and failed["exit"] == 3
    assert "disk full" in Path(failed["output"]).read_text()
    clock.now = at("2026-12-08T18:00:00")  # not again in the same period…
    s.poll(jobs)
    assert s.current is None
    [row] = overview(layout, jobs, clock.now)
    assert row["last_run"]["result"] == "failed" and row["next_due"] == at("2026-12-09T00:00:00").isoformat()
    clock.now = at("2026-12-09T00:00:00")  # …but in the next one
    s.poll(jobs)
    finish(s, jobs)
    assert [r["exit"] for r in runs(layout)] == [3, 3]
    trail = entries(audit, action="schedule")["entries"]
    assert len(trail) == 2
    assert trail[0]["actor"] == "scheduler" and trail[0]["target"] == "collect"
    assert trail[0]["outcome"] == "failed" and "exit code 3" in trail[0]["reason"]
    assert trail[0]["params"]["period"] == at("2026-12-09T00:00:00").isoformat()
    assert trail[0]["params"]["output"] == runs(layout)[-1]["output"]


def test_a_second_run_of_a_running_job_is_refused_and_jobs_run_one_at_a_time(platform):
    layout, clock, scheduler, _ = platform
    jobs = [job("slow", script="sleep 30"), job("quick", script="true")]
    supervisor = scheduler()
    supervisor.poll(jobs)
    clock.now = at("2026-12-08T00:00:00")
    supervisor.poll(jobs)
    running = supervisor.current
    assert running is not None and running.job.name == "slow"
    for _ in range(5):  # quick is due too, but waits for slow
        supervisor.poll(jobs)
    assert supervisor.current is running and runs(layout, "quick") == []
    assert is_running(layout, "slow") and not is_running(layout, "quick")

    by_hand = scheduler()  # `govctl schedule run slow` in another process
    with pytest.raises(JobBusy, match=r"slow is already running \(pid \d+, since 2026-12-08T00:00:00\+08:00\)"):
        by_hand.run_now(jobs[0], actor="alice")
    # the run's process holds the lock itself: a supervisor killed mid-run does not free it
    running.lock.close()
    with pytest.raises(JobBusy):
        by_hand.run_now(jobs[0], actor="alice")
    assert [r["trigger"] for r in runs(layout, "slow")] == ["schedule"]  # the refused runs left no record

    os.killpg(running.proc.pid, signal.SIGKILL)
    finish(supervisor, jobs)
    assert runs(layout, "slow")[0]["result"] == "failed" and runs(layout, "slow")[0]["exit"] == -9
    finish(supervisor, jobs)  # now quick's turn
    supervisor.poll(jobs)
    finish(supervisor, jobs)
    assert [r["result"] for r in runs(layout, "quick")] == ["ok"]


def test_a_run_by_hand_counts_for_its_period_and_is_on_the_trail(platform):
    layout, clock, scheduler, audit = platform
    jobs = [job()]
    s = scheduler()
    s.poll(jobs)
    clock.now = at("2026-12-07T15:00:00")
    record = scheduler().run_now(jobs[0], actor="alice")
    assert record["result"] == "ok" and record["trigger"] == "manual" and record["actor"] == "alice"
    assert record["period"] == at("2026-12-07T00:00:00").isoformat()
    clock.now = at("2026-12-08T00:00:00")  # the next period still runs on schedule
    s.poll(jobs)
    finish(s, jobs)
    assert [r["trigger"] for r in runs(layout)] == ["manual", "schedule"]
    [newest, manual] = entries(audit, action="schedule.run")["entries"]
    assert manual["actor"] == "alice" and manual["outcome"] == "ok"
    assert manual["params"]["trigger"] == "manual" and newest["params"]["trigger"] == "schedule"


def test_a_run_past_its_timeout_is_stopped_and_recorded(platform):
    layout, clock, scheduler, _ = platform
    jobs = [job(script="sleep 30", timeout=0.3)]
    s = scheduler()
    s.poll(jobs)
    clock.now = at("2026-12-08T00:00:00")
    s.poll(jobs)
    finish(s, jobs, within=10)
    [run] = runs(layout)
    assert run["result"] == "timed out after 0.3 s" and run["exit"] == -signal.SIGTERM


def test_a_disabled_job_never_runs(platform):
    layout, clock, scheduler, _ = platform
    jobs = [job(enabled=False)]
    s = scheduler()
    s.poll(jobs)
    clock.now = at("2027-03-01T00:00:00")
    s.poll(jobs)
    assert s.current is None
    [row] = overview(layout, jobs, clock.now)
    assert row["next_due"] is None and row["last_run"] is None


def test_shipped_schedules_validate_and_plan_with_the_run_folder_left_for_each_run():
    spec = load_spec(DEFAULT_SPEC)
    assert {j.name: j.cadence for j in spec.schedules} == {
        "host-audit": "daily", "compliance-evidence": "weekly",
        "availability-report": "monthly", "remediation-overdue": "daily", "audit-checkpoint": "0 * * * *",
        "backup-restore-drill": "monthly"}
    planned = {j["name"]: j for j in plan_schedules(spec, VALUES, LAUNCHER)}
    assert planned["host-audit"]["argv"] == [*LAUNCHER, "audit", "--level", "3", "--stack", "lab",
                                             "--out", "{run_dir}/host-audit.json"]
    assert planned["backup-restore-drill"]["argv"][3:5] == ["drill", "run"]
    assert all(j["timezone"] == "Asia/Shanghai" and j["enabled"] for j in planned.values())


@pytest.mark.parametrize("edit, expected", [
    (("cadence: daily", "cadence: every day"),
     "schedules.jobs[0].cadence: cadence 'every day': a cron line has five fields"),
    (("cadence: weekly", "cadence: '0 3 * * * *'"), "schedules.jobs[1].cadence: cadence '0 3 * * * *': a cron line has five fields"),
    (("cadence: daily", "cadence: '61 3 * * *'"), "schedules.jobs[0].cadence: cadence '61 3 * * *' is not a valid cron line"),
    (("cadence: daily", "cadence: '@hourly'"), "use daily, weekly, monthly or a cron line"),
    (("timezone: Asia/Shanghai", "timezone: Mars/Olympus"), "schedules.timezone: unknown time zone 'Mars/Olympus'"),
    (("name: compliance-evidence", "name: host-audit"), "schedules.jobs[1].name: duplicate job 'host-audit'"),
    (('"{run_dir}/host-audit.json"', '"{rundir}/host-audit.json"'),
     "schedules.jobs[0].run[7]: unknown placeholder {rundir}"),
    (("timeout: 1800\n    - name: compliance", "timeout: 1800\n      every: hour\n    - name: compliance"),
     "schedules.jobs[0].every: 'every' is not expected here"),
    (("[govctl, lab, up, --json]", "[govctl, lab, up, --json, --out, \"{run_dir}\"]"),
     "components[0].run[5]: unknown placeholder {run_dir}"),  # a component has no run folder
])
def test_bad_schedules_are_refused_with_file_line_and_key(tmp_path, edit, expected):
    assert_edit_refused(tmp_path, edit, expected)


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.mark.slow
def test_the_real_supervisor_runs_due_jobs_records_them_and_govctl_schedule_shows_them(isolated_state):
    """`govctl up` with a components file whose two jobs run every minute: the supervisor runs each once
    in the next minute, `schedule list` shows the results, the trail has them, `schedule run` runs one
    by hand, and `down` leaves nothing running."""
    from tests.conftest import run_govctl

    env = {**isolated_state, "COLUMNS": "400", "GOVCTL_ACTOR": "auditor-li"}
    state = Path(env["GOVCTL_STATE"])
    up = run_govctl("up", "--components", str(Path(__file__).with_name("data") / "schedule.yaml"),
                    "--plain-http", "--json", env=env, timeout=120)
    assert up.returncode == 0, up.stderr
    try:
        listed = run_govctl("schedule", "list", "--json", env=env)
        assert listed.returncode == 0, listed.stderr
        before = json.loads(listed.stdout)
        assert before["planned"] is True and before["supervisor_pid"]
        assert [j["name"] for j in before["jobs"]] == ["tick", "broken"]
        planned = {row["name"]: datetime.fromisoformat(row["planned_since"]) for row in before["jobs"]}

        layout = Layout(state)
        journal = Journal(layout.schedule_journal)
        deadline = time.monotonic() + 150
        while not all(any("end" in r for r in journal.runs(name)) for name in ("tick", "broken")):
            assert time.monotonic() < deadline, journal.events()
            time.sleep(0.5)
        for name, since in planned.items():  # the first run is for the first minute after planning, no catch-up
            first = since.replace(second=0, microsecond=0) + timedelta(minutes=1)
            assert datetime.fromisoformat(journal.runs(name)[0]["period"]) == first

        # by hand, well inside a minute (the scheduled runs come at its start and take a second or two)
        while not (5 <= datetime.now().second <= 30 and not is_running(layout, "tick")
                   and not is_running(layout, "broken")):
            assert time.monotonic() < deadline + 60
            time.sleep(0.5)
        by_hand = run_govctl("schedule", "run", "tick", "--json", env=env)
        assert by_hand.returncode == 0, by_hand.stderr
        manual = json.loads(by_hand.stdout)
        assert manual["trigger"] == "manual" and manual["result"] == "ok" and manual["actor"] == "auditor-li"
        failing = run_govctl("schedule", "run", "broken", env=env)
        assert failing.returncode == 1 and "broken: failed (exit code 5)" in failing.stderr
        unknown = run_govctl("schedule", "run", "nosuch", env=env)
        assert unknown.returncode == 2 and "no scheduled job 'nosuch'; use one of tick, broken" in unknown.stderr

        after = {j["name"]: j for j in json.loads(run_govctl("schedule", "list", "--json", env=env).stdout)["jobs"]}
        scheduled = [r for r in journal.runs("tick") if r["trigger"] == "schedule"]
        assert scheduled[0]["result"] == "ok" and scheduled[0]["exit"] == 0 and scheduled[0]["actor"] == "scheduler"
        assert (Path(scheduled[0]["run_dir"]) / "result.txt").read_text() == "collected"
        assert after["tick"]["runs"] >= 2 and after["tick"]["last_run"]["result"] == "ok"
        assert [r["actor"] for r in journal.runs("tick") if r["trigger"] == "manual"] == ["auditor-li"]
        broken = [r for r in journal.runs("broken") if r["trigger"] == "schedule"][0]
        assert broken["result"] == "failed" and broken["exit"] == 5
        assert "no evidence today" in Path(broken["output"]).read_text()
        assert after["broken"]["last_run"]["result"] == "failed"

        trail = json.loads(run_govctl("auditlog", "list", "--action", "schedule", "--json", env=env).stdout)
        seen = {(e["target"], e["actor"], e["outcome"]) for e in trail["entries"]}
        assert {("tick", "scheduler", "ok"), ("broken", "scheduler", "failed"), ("tick", "auditor-li", "ok"),
                ("broken", "auditor-li", "failed")} <= seen
        assert "supervisor" in run_govctl("logs", "supervisor", env=env).stdout
        assert "schedule tick: ok (exit code 0)" in run_govctl("logs", "supervisor", env=env).stdout
    finally:
        down = run_govctl("down", "--json", env=env, timeout=120)
    assert down.returncode == 0, down.stderr
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit() and str(state) in _cmdline(p)], \
        "a process of this platform is still running"
