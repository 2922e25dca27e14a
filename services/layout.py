"""Where the platform keeps its files: everything under <state>/platform/."""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Layout:
    state: Path  # govctl's state folder (GOVCTL_STATE)

    @property
    def root(self) -> Path:
        return self.state / "platform"

    logs = property(lambda self: self.root / "logs")
    tls = property(lambda self: self.root / "tls")
    stamps = property(lambda self: self.root / "stamps")
    plan = property(lambda self: self.root / "plan.json")          # the services the supervisor runs
    status = property(lambda self: self.root / "status.json")      # what the supervisor reports
    platform = property(lambda self: self.root / "platform.json")  # the last `up`: options, components
    supervisor_pid = property(lambda self: self.root / "supervisor.pid")
    supervisor_lock = property(lambda self: self.root / "supervisor.lock")
    credentials = property(lambda self: self.root / "admin-credentials")
    root_key = property(lambda self: self.state / "keys" / "root.key")
    # scheduled collection (issue 19): the journal of runs, each run's folder, one lock per job
    schedule = property(lambda self: self.root / "schedule")
    schedule_journal = property(lambda self: self.root / "schedule" / "journal.jsonl")
    schedule_runs = property(lambda self: self.root / "schedule" / "runs")
    schedule_locks = property(lambda self: self.root / "schedule" / "locks")

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def pid(self, name: str) -> Path:
        return self.root / f"{name}.pid"

    def stamp(self, name: str) -> Path:
        return self.stamps / f"{name}.done"

    def make(self) -> None:
        for folder in (self.root, self.logs, self.tls, self.stamps):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)


def write_json(path: Path, data: Any) -> None:
    """Replace the file atomically: a reader sees the old or the new document, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2, ensure_ascii=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any:
    """The document, or None when the file is absent or unreadable (a reader never fails on it)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def process_alive(pid: int, argv: list[str] | None = None) -> bool:
    """The process runs (not a zombie) and, if argv is given, still runs that command line (a
    recycled pid is not ours)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
        if argv is None:
            return True
        cmdline = [c.decode(errors="replace") for c in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if c]
    except (OSError, IndexError):
        return False
    return cmdline == list(argv)
