#!/usr/bin/env python3
"""What scheduled collection (issue 19) costs the supervisor: one look for due jobs (services/schedule.py,
`Scheduler.poll` with nothing due) over a journal holding YEARS of the shipped jobs' runs (daily host
audit, weekly evidence, monthly availability report and drill). The supervisor looks once a second, so
the figure per look is also the share of one core, in thousandths.

usage: PYTHONPATH=. .venv/bin/python bench/schedule_look.py [--years 3] [--looks 200]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.layout import Layout  # noqa: E402
from services.schedule import Journal, PlannedJob, Scheduler  # noqa: E402
from services.spec import load_spec  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--looks", type=int, default=200)
    args = parser.parse_args()
    spec = load_spec()
    jobs = [PlannedJob(j.name, j.description, ("/bin/true",), j.cadence, spec.schedule_timezone)
            for j in spec.schedules]
    tmp = Path(tempfile.mkdtemp(prefix="schedule-bench-"))
    layout = Layout(tmp / "state")
    layout.make()
    journal = Journal(layout.schedule_journal)
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    for job in jobs:
        journal.append({"event": "planned", "job": job.name, "at": start.isoformat()})
    done: set[tuple[str, datetime]] = set()
    for hour in range(0, args.years * 365 * 24, 6):  # the history a supervisor up all along would write
        moment = start + timedelta(hours=hour)
        for job in jobs:
            period = job.period(moment)
            if period >= start and (job.name, period) not in done:
                done.add((job.name, period))
                run = f"{job.name}/{len(done)}"
                journal.append({"event": "start", "run": run, "job": job.name, "period": period.isoformat(),
                                "start": moment.isoformat(), "trigger": "schedule"})
                journal.append({"event": "end", "run": run, "job": job.name, "exit": 0, "result": "ok"})
    now = start + timedelta(days=args.years * 365)
    scheduler = Scheduler(layout, tmp, clock=lambda: now, log=lambda m: None, look_every=0)
    while True:  # whatever the last hours left due runs first (/bin/true); then nothing is due
        scheduler.poll(jobs)
        if scheduler.current is None:
            break
        while scheduler.current is not None:
            time.sleep(0.01)
            scheduler.poll(jobs)
    samples = []
    for _ in range(args.looks):
        began = time.perf_counter()
        scheduler.poll(jobs)
        samples.append(time.perf_counter() - began)
    assert scheduler.current is None
    print(f"journal: {len(journal.events())} lines ({layout.schedule_journal.stat().st_size // 1024} KiB), "
          f"{len(jobs)} jobs; one look for due jobs: median {statistics.median(samples) * 1000:.2f} ms, "
          f"max {max(samples) * 1000:.2f} ms over {args.looks} looks")


if __name__ == "__main__":
    main()
