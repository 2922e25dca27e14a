"""Tamper-evident audit log of platform actions (who ran what).

Entries are lines of canonical JSON in `entries.jsonl`; each line is a leaf of a Merkle tree in
the RFC 6962 layout over the suite's hash (SM3 for 国密). Checkpoints sign the tree head (size and
root) with a signing key from the keystore (SM2 for 国密). The offline verifier recomputes the tree
from the entries and checks every checkpoint, so an edit, deletion, insertion or reordering of
an entry covered by a checkpoint, or a truncation below the last checkpoint, is found. Entries
appended after the last checkpoint are reported as not yet covered. Every checkpoint is also
recorded by a witness outside the log's folder (crypto.witness), so cutting the tail together
with its checkpoints, or replacing the whole folder by an older copy, is found too.

Python API for other parts of govctl:

    from crypto import audit
    audit.append("alice", "deploy.up", {"stack": "lab"})   # no key needed
    audit.record("alice", "infra.up", "lab", {"policy_pack": None}, "ok")  # the trail of actions
    audit.checkpoint()                                     # signs the head (opens the keystore)
    report = audit.verify()                                # report.ok, report.problems
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import merkle, signing
from .errors import BadInput, IntegrityError
from .keystore import Keystore
from .keystore import default_path as default_keystore_path
from .witness import FileWitness, Witness, describe_head
from .signing import canonical_json, document_signature_valid, sign_document
from .suite import load_settings, state_dir

LOG_NAME = "govctl-audit"
AUDIT_KEY = "audit"
ENTRIES, LEAVES, HEAD, CHECKPOINTS = "entries.jsonl", "leaves.bin", "head.json", "checkpoints.jsonl"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def default_dir() -> Path:
    return state_dir() / "audit"


def default_witness(log_dir: Path) -> FileWitness:
    """The log's witness file, outside the log's own folder: in `audit_witness_dir` of the crypto
    configuration (e.g. another host's mount), else in the keystore's folder."""
    folder = load_settings().audit_witness_dir or default_keystore_path().parent / "audit-witness"
    if Path(folder).resolve().is_relative_to(Path(log_dir).resolve()):
        raise BadInput(f"the audit witness folder {folder} is inside the log's folder {log_dir}, where a "
                       "rollback of the log would take it along; set audit_witness_dir elsewhere")
    return FileWitness.for_log(folder, log_dir)


def _resolve_witness(witness: "Witness | None | str", log_dir: Path) -> Witness | None:
    return default_witness(log_dir) if witness == "default" else witness


class AuditLog:
    """One log directory. Appends hold a file lock, so several processes can append at once.

    State on disk: `entries.jsonl` (the authority), `leaves.bin` (a cache of 32-byte leaf
    hashes, for proofs) and `head.json` (size, byte length and Merkle frontier, rewritten every
    HEAD_EVERY appends and at checkpoints). Whoever takes the lock first catches up from the
    head by hashing the entries written after it, so a crash loses no acknowledged entry."""

    HEAD_EVERY = 4096
    _open_logs: dict[Path, "AuditLog"] = {}

    def __init__(self, directory: Path, hash_alg: str | None = None, witness: Witness | None | str = "default"):
        """`witness` records every checkpoint outside the log's folder ("default": a file in the
        keystore's folder; None: no witness, for tests and benchmarks of the log alone)."""
        self.dir = Path(directory)
        self._hash_alg = hash_alg
        self._witness = witness
        self._pid = None          # handles are per process (flock does not exclude a forked twin)
        self._frontier: merkle.Frontier | None = None
        self._bytes = -1          # byte length of entries.jsonl that self._frontier covers
        self._head_size = 0       # size recorded in head.json

    @classmethod
    def at(cls, directory: Path | None = None) -> "AuditLog":
        directory = Path(directory or default_dir()).resolve()
        if directory not in cls._open_logs:
            cls._open_logs[directory] = cls(directory)
        return cls._open_logs[directory]

    @property
    def hash_alg(self) -> str:
        """Fixed when the log is created (from the configured suite), then read from its head."""
        if self._hash_alg is None:
            head = self._read_head()
            self._hash_alg = head["hash"] if head else load_settings().suite.hash
        return self._hash_alg

    def path(self, name: str) -> Path:
        return self.dir / name

    def _handles(self):
        if self._pid != os.getpid():
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._lock = open(self.path("lock"), "a")
            self._entries = open(self.path(ENTRIES), "ab", buffering=0)
            self._leaves = open(self.path(LEAVES), "ab", buffering=0)
            self._pid, self._bytes = os.getpid(), -1
        return self._entries, self._leaves

    @contextlib.contextmanager
    def _locked(self):
        """The lock, with the in-memory frontier brought up to date with the files."""
        entries, _ = self._handles()
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        try:
            if os.fstat(entries.fileno()).st_size != self._bytes:
                self._catch_up()
            yield
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_UN)

    def _read_head(self) -> dict | None:
        try:
            return json.loads(self.path(HEAD).read_text())
        except FileNotFoundError:
            return None

    def _write_head(self) -> None:
        head = {"log": LOG_NAME, "hash": self.hash_alg, "size": self._frontier.size, "bytes": self._bytes,
                "frontier": [h.hex() for h in self._frontier.hashes]}
        tmp = self.path(HEAD + ".tmp")
        tmp.write_text(json.dumps(head))
        os.replace(tmp, self.path(HEAD))
        self._head_size = self._frontier.size

    def _catch_up(self) -> None:
        """Load the head, then hash the entries written after it (by other processes, or before a
        crash). A torn last line, never acknowledged, is cut off; the leaf cache is repaired."""
        head = self._read_head() or {"size": 0, "bytes": 0, "frontier": []}
        on_disk = self.path(ENTRIES).stat().st_size
        if on_disk < head["bytes"]:
            raise IntegrityError(f"audit log {self.path(ENTRIES)} is shorter than its head says "
                                 f"({on_disk} < {head['bytes']} bytes): it was truncated; run "
                                 "`govctl auditlog verify` and keep the damaged copy as evidence")
        frontier = merkle.Frontier(self.hash_alg, head["size"], [bytes.fromhex(h) for h in head["frontier"]])
        new_leaves, good_bytes = bytearray(), head["bytes"]
        with open(self.path(ENTRIES), "rb") as entries:
            entries.seek(head["bytes"])
            for line in entries:
                if not line.endswith(b"\n"):
                    break
                leaf = merkle.leaf_hash(self.hash_alg, line[:-1])
                frontier.append(leaf)
                new_leaves += leaf
                good_bytes += len(line)
        if good_bytes != on_disk:
            os.truncate(self.path(ENTRIES), good_bytes)
        if self.path(LEAVES).stat().st_size != frontier.size * 32:
            os.truncate(self.path(LEAVES), head["size"] * 32)
            self._leaves.write(bytes(new_leaves))
        self._frontier, self._bytes = frontier, good_bytes
        self._write_head()

    def append(self, actor: str, action: str, details: dict | None = None) -> dict:
        """Append one entry; returns it (with its index)."""
        if not actor or not action:
            raise BadInput("an audit entry needs an actor and an action")
        with self._locked():
            entry = {"index": self._frontier.size, "time": _now(), "actor": actor, "action": action,
                     "details": details or {}}
            try:
                line = canonical_json(entry)
            except (TypeError, ValueError) as exc:
                raise BadInput(f"audit entry details must be JSON data: {exc}") from None
            leaf = merkle.leaf_hash(self.hash_alg, line)
            self._entries.write(line + b"\n")
            self._leaves.write(leaf)
            self._frontier.append(leaf)
            self._bytes += len(line) + 1
            if self._frontier.size - self._head_size >= self.HEAD_EVERY:
                self._write_head()
        return entry

    def size(self) -> int:
        with self._locked():
            return self._frontier.size

    def root(self) -> bytes:
        with self._locked():
            return self._frontier.root()

    @property
    def witness(self) -> Witness | None:
        if self._witness == "default":
            self._witness = default_witness(self.dir)
        return self._witness

    def checkpoint(self, keystore: Keystore | None = None, key: str = AUDIT_KEY) -> dict:
        """Sign the current tree head with `key` (created on first use), have the witness record
        it (it refuses a tree smaller than one it saw: RollbackError), then store it in the log.
        The witness records first, so a crash in between leaves it ahead of the log, never behind."""
        keystore = keystore or open_keystore()
        keystore.ensure_key(key, "signing")
        witness = self.witness
        with self._locked():
            body = {"log": LOG_NAME, "hash": self.hash_alg, "tree_size": self._frontier.size,
                    "root": self._frontier.root().hex(), "time": _now()}
            if witness is not None:
                body["witnessed_by"] = witness.description  # signed: the fact there is a witness
            checkpoint = sign_document(keystore, key, body, record_use=False)
            if witness is not None:
                os.fsync(self._entries.fileno())  # what the witness sees must survive a power cut
                witness.record(checkpoint)
            with open(self.path(CHECKPOINTS), "ab") as out:
                out.write(canonical_json(checkpoint) + b"\n")
            self._write_head()
        return checkpoint

    def checkpoints(self) -> list[dict]:
        if not self.path(CHECKPOINTS).exists():
            return []
        return [json.loads(line) for line in self.path(CHECKPOINTS).read_text().splitlines() if line.strip()]

    def _tree(self, size: int) -> merkle.Tree:
        with self._locked():  # brings the leaf cache up to date
            with open(self.path(LEAVES), "rb") as leaves:
                data = leaves.read(size * 32)
        return merkle.Tree(self.hash_alg, [data[i:i + 32] for i in range(0, len(data), 32)])

    def _checkpoint_for(self, size: int | None, covering: int) -> dict:
        signed = self.checkpoints()
        if size is not None:
            matches = [c for c in signed if c["tree_size"] == size]
            if not matches:
                sizes = ", ".join(str(c["tree_size"]) for c in signed) or "none"
                raise BadInput(f"no checkpoint has tree size {size} (checkpointed sizes: {sizes})")
            return matches[-1]
        if not signed or signed[-1]["tree_size"] < covering:
            raise BadInput(f"no signed checkpoint covers {covering} entries yet; sign one with "
                           "`govctl auditlog checkpoint`")
        return signed[-1]

    def _checked_tree(self, checkpoint: dict) -> merkle.Tree:
        tree = self._tree(checkpoint["tree_size"])
        if tree.root().hex() != checkpoint["root"]:
            raise IntegrityError("the log does not match its checkpoint; run `govctl auditlog verify`")
        return tree

    def entry_line(self, index: int) -> str:
        with open(self.path(ENTRIES), "rb") as entries:
            for i, line in enumerate(entries):
                if i == index:
                    return line.rstrip(b"\n").decode()
        raise BadInput(f"entry {index} does not exist (the log has {self.size()} entries)")

    def prove_inclusion(self, index: int, size: int | None = None) -> dict:
        """A self-contained proof that entry `index` is in the tree of a signed checkpoint."""
        if index < 0:
            raise BadInput("--index must be 0 or more")
        checkpoint = self._checkpoint_for(size, index + 1)
        if index >= checkpoint["tree_size"]:
            raise BadInput(f"entry {index} is not in the tree of size {checkpoint['tree_size']}")
        path = self._checked_tree(checkpoint).inclusion_proof(index)
        return {"type": "inclusion", "hash": self.hash_alg, "index": index, "entry": self.entry_line(index),
                "path": [h.hex() for h in path], "checkpoint": checkpoint}

    def prove_consistency(self, old_size: int, size: int | None = None) -> dict:
        """A proof that the checkpoint of `old_size` is a prefix of a later signed checkpoint."""
        old = self._checkpoint_for(old_size, 0)
        new = self._checkpoint_for(size, old_size)
        if old["tree_size"] == 0:
            raise BadInput("consistency from an empty tree needs no proof; pick a checkpoint with entries")
        path = self._checked_tree(new).consistency_proof(old["tree_size"])
        return {"type": "consistency", "hash": self.hash_alg, "path": [h.hex() for h in path],
                "old": old, "new": new}


@dataclass
class Report:
    ok: bool = True
    entries: int = 0
    checkpoints: int = 0
    verified_size: int = 0   # entries matched by a signed checkpoint
    signed_size: int = 0     # the largest tree size a valid checkpoint signs
    problems: list[str] = field(default_factory=list)
    witness: str | None = None          # the witness the log was compared with (None: no witness)
    witness_records: int = 0            # its records that verify under the trusted keys
    witnessed_size: int | None = None   # the largest tree it recorded (None: no record yet)

    def fail(self, problem: str) -> None:
        self.ok = False
        self.problems.append(problem)

    @property
    def unverified_tail(self) -> int:
        """Entries appended after the last signed checkpoint (not yet protected)."""
        return max(self.entries - self.signed_size, 0)


def _witnessed(witness: Witness, trusted: list, report: Report, signed: list[dict]) -> list[dict]:
    """The witness's records that verify under the trusted keys, oldest first. A record equal to
    a checkpoint of the log whose signature verified is not checked twice (SM2 verification is
    most of `verify`'s time)."""
    known = {canonical_json(checkpoint) for checkpoint in signed}
    try:
        records = witness.records()
    except IntegrityError as exc:
        report.fail(str(exc))
        return []
    valid: list[dict] = []
    for number, record in enumerate(records, 1):
        if canonical_json(record) not in known and not document_signature_valid(record, trusted):
            report.fail(f"{witness.description}: record #{number} does not verify under the trusted "
                        "key(s): forged or altered")
            continue
        if valid and record["tree_size"] < valid[-1]["tree_size"]:
            report.fail(f"{witness.description}: record #{number} has tree size {record['tree_size']}, "
                        f"smaller than an earlier record ({valid[-1]['tree_size']}): records were reordered")
        valid.append(record)
    report.witness_records = len(valid)
    report.witnessed_size = max((r["tree_size"] for r in valid), default=None)
    return valid


def verify_log(directory: Path | None = None, trusted: list | None = None,
               witness: Witness | None | str = "default") -> Report:
    """Recompute the tree from the entries, check every checkpoint against `trusted` keys, and
    compare the log with what its witness recorded ("default": the log's witness file in the
    keystore's folder; None: skip), so a cut tail or an older copy of the whole log is found."""
    log = AuditLog(Path(directory or default_dir()), witness=None)
    witness = _resolve_witness(witness, log.dir)
    if not trusted:
        raise BadInput("give the public key(s) that sign checkpoints (--pubkey), or unlock the keystore")
    report = Report(witness=witness.description if witness else None)
    signed = []
    for number, checkpoint in enumerate(log.checkpoints(), 1):
        if not document_signature_valid(checkpoint, trusted):
            report.fail(f"checkpoint #{number} (time {checkpoint.get('time')}): signature does not verify "
                        "under the trusted key(s): forged or altered")
            continue
        if signed and checkpoint["tree_size"] < signed[-1]["tree_size"]:
            report.fail(f"checkpoint #{number} has tree size {checkpoint['tree_size']}, smaller than an "
                        f"earlier one ({signed[-1]['tree_size']}): checkpoints were reordered")
        signed.append(checkpoint)
    report.checkpoints = len(signed)
    witnessed = _witnessed(witness, trusted, report, signed) if witness else []
    if not log.path(ENTRIES).exists() and not witnessed:
        raise BadInput(f"there is no audit log in {log.dir} (no {ENTRIES}); check --log-dir")
    hash_alg = (signed or witnessed or [log._read_head() or {}])[0].get("hash", "sm3")
    by_size: dict[int, list[dict]] = {}
    for checkpoint in signed:
        by_size.setdefault(checkpoint["tree_size"], []).append(checkpoint)
    witnessed_by_size: dict[int, list[dict]] = {}
    for record in witnessed:
        witnessed_by_size.setdefault(record["tree_size"], []).append(record)
    frontier, last_good, first_bad_index = merkle.Frontier(hash_alg), 0, None

    def check_at(size: int) -> None:
        nonlocal last_good
        root = frontier.root().hex() if size in by_size or size in witnessed_by_size else None
        for checkpoint in by_size.get(size, []):
            if root == checkpoint["root"]:
                last_good = max(last_good, size)
            else:
                report.fail(f"entries {last_good + 1}..{size} do not match the checkpoint signed at "
                            f"{checkpoint['time']}: an entry among them was edited, deleted, inserted "
                            "or reordered")
        in_log = {checkpoint["root"] for checkpoint in by_size.get(size, [])}
        for record in witnessed_by_size.get(size, []):
            if root != record["root"] and record["root"] not in in_log:  # else reported just above
                report.fail(f"the log's first {size} entries do not match what {witness.description} "
                            f"recorded ({describe_head(record)}, checkpoint signed at {record['time']}), and "
                            "the log no longer has that checkpoint: witnessed entries were replaced (the "
                            "log was rolled back and grown again)")

    check_at(0)
    # A missing entries file with witness records is a log rolled back to nothing.
    source = open(log.path(ENTRIES), "rb") if log.path(ENTRIES).exists() else contextlib.nullcontext([])
    with source as entries:
        for index, line in enumerate(entries):
            data = line.rstrip(b"\n")
            try:
                recorded = json.loads(data).get("index")
            except (ValueError, AttributeError):
                recorded = None
            if recorded != index and first_bad_index is None:
                first_bad_index = index
                report.fail(f"line {index + 1}: its index is {recorded!r}, expected {index}: an entry "
                            "near here was deleted, inserted, reordered or garbled")
            frontier.append(merkle.leaf_hash(hash_alg, data))
            check_at(frontier.size)
    report.entries = frontier.size
    report.verified_size = last_good
    top = report.signed_size = max(by_size, default=0)
    if report.entries < top:
        report.fail(f"the log has {report.entries} entries but a signed checkpoint covers {top}: it was "
                    f"truncated (entries {report.entries + 1}..{top} are missing)")
    if report.entries and not signed:
        report.fail("no valid signed checkpoint: nothing in the log can be verified")
    if witness is not None:
        _compare_with_witness(report, witness, witnessed, signed)
    return report


def _compare_with_witness(report: Report, witness: Witness, witnessed: list[dict], signed: list[dict]) -> None:
    """Rollback of the log (the witness saw more), and loss of the witness itself (a checkpoint
    says it was recorded there, but the witness has no record that large)."""
    if witnessed and report.entries < report.witnessed_size:
        top = max(witnessed, key=lambda r: r["tree_size"])
        report.fail(f"the audit log was rolled back: {witness.description} saw {describe_head(top)} "
                    f"(checkpoint signed at {top['time']}), the log has {report.entries} entries "
                    f"(entries {report.entries + 1}..{top['tree_size']} are missing)")
    marked = [c for c in signed if c.get("witnessed_by")]
    if not marked:
        return
    latest_marked = max(marked, key=lambda c: c["tree_size"])
    moved = "; if the log was moved or copied, give its witness file with --witness"
    if not witnessed:
        report.fail(f"{witness.description} has no record, but the checkpoint signed at "
                    f"{latest_marked['time']} (size {latest_marked['tree_size']}) was recorded by "
                    f"{latest_marked['witnessed_by']}: the witness was deleted or replaced{moved}")
    elif latest_marked["tree_size"] > report.witnessed_size:
        report.fail(f"{witness.description} was rolled back: its largest record is size "
                    f"{report.witnessed_size}, but the checkpoint signed at {latest_marked['time']} "
                    f"(size {latest_marked['tree_size']}) was recorded by {latest_marked['witnessed_by']}{moved}")


def verify_proof(proof: dict, trusted: list) -> tuple[bool, str]:
    """(valid, explanation) for a proof from `prove_inclusion` / `prove_consistency`."""
    try:
        path = [bytes.fromhex(h) for h in proof["path"]]
        if proof["type"] == "inclusion":
            checkpoint = proof["checkpoint"]
            if not document_signature_valid(checkpoint, trusted):
                return False, "the checkpoint signature does not verify under the trusted key(s)"
            hash_alg = checkpoint["hash"]  # the signed field, not the proof's own
            index, line = int(proof["index"]), proof["entry"].encode()
            if json.loads(line).get("index") != index:
                return False, f"the entry does not carry index {index}"
            ok = merkle.verify_inclusion(hash_alg, merkle.leaf_hash(hash_alg, line), index,
                                         checkpoint["tree_size"], path, bytes.fromhex(checkpoint["root"]))
            return ok, (f"entry {index} is in the signed tree of size {checkpoint['tree_size']}" if ok
                        else "the inclusion path does not lead to the signed root")
        if proof["type"] == "consistency":
            old, new = proof["old"], proof["new"]
            if not (document_signature_valid(old, trusted) and document_signature_valid(new, trusted)):
                return False, "a checkpoint signature does not verify under the trusted key(s)"
            if old["hash"] != new["hash"]:
                return False, "the two checkpoints use different hash algorithms"
            hash_alg = new["hash"]
            ok = merkle.verify_consistency(hash_alg, old["tree_size"], new["tree_size"],
                                           bytes.fromhex(old["root"]), bytes.fromhex(new["root"]), path)
            return ok, (f"the tree of size {old['tree_size']} is a prefix of the tree of size "
                        f"{new['tree_size']}" if ok else "the consistency path does not connect the two roots")
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        return False, f"the proof is malformed ({exc.__class__.__name__}: {exc})"
    return False, f"unknown proof type {proof.get('type')!r}"


def trusted_keys_from_hex(values: list[str], alg: str) -> list:
    return [signing.load_public(alg, signing.parse_hex(v, "--pubkey")) for v in values]


# -- the small API other parts of govctl call ---------------------------------------------------
def open_keystore(path: Path | None = None, root=None, settings=None) -> Keystore:
    """The keystore with its lifecycle events appended to the audit log (the usual way to open it)."""
    return Keystore.open(path, root, settings, events=_key_event)


def append(actor: str, action: str, details: dict | None = None, directory: Path | None = None) -> dict:
    """Record a platform action (deployment, hardening run, ban, incident change, key event)."""
    return AuditLog.at(directory).append(actor, action, details)


def checkpoint(keystore: Keystore | None = None, directory: Path | None = None) -> dict:
    """Sign the log's current head with the keystore's `audit` key."""
    return AuditLog.at(directory).checkpoint(keystore)


def verify(directory: Path | None = None, trusted: list | None = None,
           witness: Witness | None | str = "default") -> Report:
    """Verify the log; without `trusted`, the keystore's `audit` public keys are trusted."""
    if trusted is None:
        trusted = list(Keystore.open(events=None).public_keys(AUDIT_KEY).values())  # reads public keys only
    return verify_log(directory, trusted, witness)


# -- the trail: one recording function for every state-changing action (issue 19) ----------------
# Parameter names that may carry a secret; their values never reach the log (the log is read by
# auditors and copied into evidence packs). Matched anywhere in the name, case-insensitively.
SECRET_KEY_NAMES = re.compile(r"pass(word|wd|phrase)|secret|token|private|credential|cookie|authori[sz]ation|"
                              r"api_?key|key_?material|plaintext|session_?id|\b(pin|otp|kek|dek)\b", re.I)
REDACTED = "[redacted]"
# Appends that failed (log unavailable, disk full …) since the process started; the action itself went on.
record_failures = 0


def redact(value):
    """`value` with the values of secret-looking keys replaced (dicts and lists, recursively)."""
    if isinstance(value, dict):
        return {str(k): REDACTED if SECRET_KEY_NAMES.search(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)  # a Path, an enum …: its text, never a failure to record


def record(actor: str, action: str, target: str | None = None, params: dict | None = None,
           outcome: str = "ok", directory: Path | None = None) -> dict | None:
    """Append one action to the trail: who (`actor`), what (`action`, e.g. "ban.add"), on what
    (`target`), with which parameters (secrets redacted) and how it ended (`outcome`: "ok" or
    "failed: reason"). The entry's time is the log's.

    Never raises: the action has happened (or is protecting something) by the time it is recorded,
    and failing it because the log is unavailable would leave the platform worse off than an
    unrecorded action. A failure to record is printed on stderr and counted in `record_failures`
    (shown by `govctl auditlog verify`'s caller and checked by compliance), and the caller goes on."""
    global record_failures
    status, _, reason = (outcome or "ok").partition(":")
    details = {"target": None if target is None else str(target), "params": redact(params or {}),
               "outcome": "failed" if status.strip() == "failed" else "ok"}
    if details["outcome"] == "failed":
        details["reason"] = reason.strip() or "unspecified"
    try:
        return AuditLog.at(directory).append(actor or "unknown", action, details)
    except Exception as exc:  # noqa: BLE001 - by design: recording must never break the action
        record_failures += 1
        print(f"govctl: could not record {action} on {target} in the audit log ({exc.__class__.__name__}: "
              f"{exc}); the action went on; failures so far: {record_failures}", file=sys.stderr)
        return None


@contextlib.contextmanager
def recorded(actor: str, action: str, target: str | None = None, params: dict | None = None,
             directory: Path | None = None):
    """Run the block and record it: "ok", or "failed: <error>" (then the error propagates). A
    Ctrl-C or an exit with a non-zero code is a failure too."""
    try:
        yield
    except BaseException as exc:
        code = exc.code if isinstance(exc, SystemExit) else getattr(exc, "exit_code", 1)  # typer.Exit
        if code in (0, None):
            record(actor, action, target, params, "ok", directory)
        else:
            # typer.Exit (click's) or sys.exit: the command said why itself; any other error says it here
            exited = isinstance(exc, SystemExit) or type(exc).__module__.split(".")[0] in ("click", "typer")
            reason = f"exit code {code}" if exited else (str(exc).splitlines() or [""])[0] or exc.__class__.__name__
            record(actor, action, target, params, f"failed: {reason[:300]}", directory)
        raise
    record(actor, action, target, params, "ok", directory)


def _key_event(actor: str, action: str, details: dict) -> None:
    """The keystore's lifecycle events (key.create / key.rotate / key.destroy …) on the trail."""
    target = details.get("key") or details.get("name")
    record(actor, action, target, details)


# -- reading the trail back: `govctl auditlog list|show`, GET /audit ------------------------------
_RELATIVE = re.compile(r"now(?:-(\d{1,6})([smhd]))?")
LIST_MAX = 10000


def parse_when(text: str | None, what: str) -> datetime | None:
    """An ISO 8601 time (a date alone is midnight UTC) or `now-30d` / `now-12h` / `now-15m` / `now`."""
    if text is None or text == "":
        return None
    relative = _RELATIVE.fullmatch(text.strip())
    if relative:
        amount, unit = relative.groups()
        seconds = int(amount or 0) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit or "s"]
        return datetime.fromtimestamp(datetime.now(timezone.utc).timestamp() - seconds, timezone.utc)
    try:
        stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"{what} {text[:64]!r} is not a time; give ISO 8601 (2026-12-01, 2026-12-01T08:00:00+08:00) "
                       "or now-30d / now-12h / now-15m") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def _view(entry: dict) -> dict:
    """An entry as the trail shows it: entries appended before `record` (plain `append`) have no
    target/outcome fields; their details are their parameters."""
    details = entry.get("details") if isinstance(entry.get("details"), dict) else {}
    trail = "outcome" in details and "params" in details
    return {"index": entry.get("index"), "time": entry.get("time"), "actor": entry.get("actor"),
            "action": entry.get("action"), "target": details.get("target") if trail else None,
            "params": details.get("params") if trail else details,
            "outcome": details.get("outcome", "ok") if trail else "ok", "reason": details.get("reason")}


def entries(directory: Path | None = None, actor: str | None = None, action: str | None = None,
            target: str | None = None, since: str | None = None, until: str | None = None,
            limit: int = 100, offset: int = 0, outcome: str | None = None) -> dict:
    """The trail's entries matching the filters, newest first: {"total", "entries"}. `action` matches
    the name or a dotted prefix ("ban" → ban.add, ban.lift, ban.auto); `target` a part of the target."""
    if not 1 <= limit <= LIST_MAX:
        raise BadInput(f"--limit {limit}: give 1 to {LIST_MAX}")
    if offset < 0:
        raise BadInput(f"offset {offset}: give 0 or more")
    if outcome not in (None, "ok", "failed"):
        raise BadInput(f"outcome {outcome[:32]!r}: give ok or failed")
    start, end = parse_when(since, "--since"), parse_when(until, "--until")
    path = Path(directory or default_dir()) / ENTRIES
    matched: list[dict] = []
    if path.exists():
        with open(path, "rb") as stream:
            for line in stream:
                try:
                    view = _view(json.loads(line))
                except (ValueError, AttributeError):
                    continue  # a garbled line is `verify`'s to report, not the listing's
                if actor and view["actor"] != actor:
                    continue
                if action and view["action"] != action and not str(view["action"]).startswith(action.rstrip(".") + "."):
                    continue
                if target and target not in str(view["target"] or ""):
                    continue
                if outcome and view["outcome"] != outcome:
                    continue
                if start or end:
                    try:
                        when = datetime.fromisoformat(view["time"])
                    except (TypeError, ValueError):
                        continue
                    if (start and when < start) or (end and when > end):
                        continue
                matched.append(view)
    matched.reverse()
    return {"total": len(matched), "entries": matched[offset:offset + limit]}


def entry(index: int, directory: Path | None = None, proof: bool = False) -> dict:
    """One entry as the trail shows it, with `raw` (the logged line) and, with `proof`, its inclusion
    proof against the latest signed checkpoint (BadInput when none covers it yet)."""
    log = AuditLog.at(directory)
    if index < 0:
        raise BadInput(f"INDEX {index}: give 0 or more")
    size = log.size()
    if index >= size:
        raise BadInput(f"entry {index} does not exist (the log has {size} entries: 0..{size - 1})")
    raw = log.entry_line(index)
    shown = {**_view(json.loads(raw)), "raw": raw}
    if proof:
        shown["proof"] = log.prove_inclusion(index)
    return shown
