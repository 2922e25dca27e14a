"""Witnesses of the audit log: every signed checkpoint is also recorded outside the log's own
folder, so that cutting the log's tail, or replacing the whole folder by an older copy, leaves a
witness that has seen a larger tree than the log now holds. `crypto.audit` takes a witness as an
object (this module imports nothing from the audit log or the keystore).

A witness record is the signed checkpoint itself (tree size, root, time, the audit key's
signature), so a verifier checks it with the same trusted public keys as the log, and nobody
without the audit key can write a record that verifies. The witness refuses a checkpoint whose
tree is smaller than one it already saw (or of the same size with another root): records only
grow.

`FileWitness` keeps the records as JSON lines in a file outside the log's folder; by default
under the keystore's folder (state/crypto/audit-witness/), one file per log. Point it at another
host's mount or an append-only file (`chattr +a`) to take it out of the log owner's reach: see
"Threat model of the audit log" in docs/crypto.md."""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from .errors import IntegrityError


class RollbackError(IntegrityError):
    """A checkpoint would record a tree smaller than (or different from) one the witness saw."""


class Witness(Protocol):
    """Where checkpoints are recorded besides the log. `description` names it in messages and in
    the checkpoints it witnessed (their signed `witnessed_by` field)."""

    description: str

    def record(self, checkpoint: dict) -> None:
        """Keep a signed checkpoint; RollbackError when its tree is smaller than the latest one."""

    def latest(self) -> dict | None:
        """The last checkpoint recorded, or None."""

    def records(self) -> list[dict]:
        """Every checkpoint recorded, oldest first (empty when the witness has none)."""


def describe_head(checkpoint: dict) -> str:
    return f"size {checkpoint.get('tree_size')} with root {str(checkpoint.get('root'))[:16]}…"


class FileWitness:
    """Signed checkpoints, one JSON line each, appended (under a file lock, fsynced) to `path`."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.description = f"witness file {self.path}"

    def __repr__(self) -> str:
        return f"FileWitness({self.path})"

    @classmethod
    def for_log(cls, folder: Path, log_dir: Path) -> "FileWitness":
        """The witness file of the log at `log_dir` inside `folder` (one file per log, named by
        the log's absolute path, so several logs can share a witness folder)."""
        resolved = str(Path(log_dir).resolve())
        name = hashlib.sha256(resolved.encode()).hexdigest()[:24]  # a file name, not a security hash
        return cls(Path(folder) / f"{name}.jsonl")

    def _parse(self, line: bytes, where: str) -> dict:
        try:
            return json.loads(line)["checkpoint"]
        except (ValueError, KeyError, TypeError):
            raise IntegrityError(f"{self.description}: {where} is not a witness record "
                                 "(altered or garbled); keep the file as evidence") from None

    def records(self) -> list[dict]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        return [self._parse(line, f"line {number}") for number, line in enumerate(data.split(b"\n"), 1)
                if line.strip()]

    def latest(self) -> dict | None:
        """The last record, read from the file's end: a checkpoint costs the same however many
        the witness holds."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as stream:
            end = stream.seek(0, os.SEEK_END)
            tail, start = b"", end
            while start > 0 and tail.rstrip(b"\n").count(b"\n") == 0:
                start = max(0, start - 65536)
                stream.seek(start)
                tail = stream.read(end - start)
        lines = [line for line in tail.split(b"\n") if line.strip()]
        return self._parse(lines[-1], "its last line") if lines else None

    def record(self, checkpoint: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            last = self.latest()
            if last is not None:
                if checkpoint["tree_size"] < last["tree_size"]:
                    raise RollbackError(
                        f"the audit log was rolled back: {self.description} saw {describe_head(last)} "
                        f"(checkpoint signed at {last.get('time')}), the log has {checkpoint['tree_size']} "
                        "entries; refusing to sign a checkpoint over it. Keep the log as evidence and "
                        "run `govctl auditlog verify`")
                if checkpoint["tree_size"] == last["tree_size"] and checkpoint["root"] != last["root"]:
                    raise RollbackError(
                        f"the audit log was rewritten: {self.description} saw {describe_head(last)}, the "
                        f"log has the same size with root {checkpoint['root'][:16]}…; refusing to sign a "
                        "checkpoint over it. Keep the log as evidence and run `govctl auditlog verify`")
            line = json.dumps({"recorded": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
                               "checkpoint": checkpoint}, sort_keys=True, separators=(",", ":"))
            # O_APPEND only: the file may be append-only (chattr +a), which forbids rewriting it.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode() + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
