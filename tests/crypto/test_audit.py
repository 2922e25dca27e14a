"""The audit log as an auditor checks it: every kind of tampering found by the offline
verifier, proofs that verify without the log, concurrent appenders, crash recovery."""
from __future__ import annotations

import json
import multiprocessing

import pytest

from crypto import audit
from crypto.audit import AuditLog, verify_log, verify_proof
from crypto.errors import BadInput, IntegrityError


@pytest.fixture
def log(state, keystore):
    """A log of 10 entries under a signed checkpoint, then 2 more entries not yet checkpointed."""
    log = AuditLog.at(state / "audit-test")
    for i in range(10):
        log.append("alice", "deploy.up", {"stack": "lab", "run": i})
    log.checkpoint(keystore)
    log.append("bob", "ban.add", {"ip": "203.0.113.9"})
    log.append("bob", "incident.update", {"id": "INC-7", "state": "contained"})
    return log


@pytest.fixture
def trusted(keystore):
    return list(keystore.public_keys("audit").values())


def lines(log) -> list[str]:
    return log.path("entries.jsonl").read_text().splitlines()


def write(log, new_lines: list[str]) -> None:
    log.path("entries.jsonl").write_text("".join(line + "\n" for line in new_lines))


def test_intact_log_verifies_and_reports_uncovered_tail(log, trusted):
    report = verify_log(log.dir, trusted)
    assert report.ok and report.problems == []
    assert (report.entries, report.checkpoints, report.verified_size, report.unverified_tail) == (12, 1, 10, 2)


def test_edit_is_detected(log, trusted):
    entries = lines(log)
    entries[4] = entries[4].replace('"run":4', '"run":5')
    write(log, entries)
    report = verify_log(log.dir, trusted)
    assert not report.ok
    assert any("entries 1..10 do not match the checkpoint" in p for p in report.problems)


def test_deletion_is_detected(log, trusted):
    entries = lines(log)
    write(log, entries[:3] + entries[4:])
    report = verify_log(log.dir, trusted)
    assert not report.ok and any(p.startswith("line 4: its index is 4, expected 3") for p in report.problems)


def test_reordering_is_detected_even_with_renumbered_indexes(log, trusted):
    entries = [json.loads(line) for line in lines(log)]
    entries[2], entries[3] = entries[3], entries[2]
    entries[2]["index"], entries[3]["index"] = 2, 3  # a careful forger fixes the numbers
    from crypto.signing import canonical_json

    write(log, [canonical_json(e).decode() for e in entries])
    report = verify_log(log.dir, trusted)
    assert not report.ok and any("do not match the checkpoint" in p for p in report.problems)


def test_truncation_below_the_checkpoint_is_detected(log, trusted):
    write(log, lines(log)[:7])
    report = verify_log(log.dir, trusted)
    assert not report.ok
    assert any("has 7 entries but a signed checkpoint covers 10: it was truncated" in p for p in report.problems)
    with pytest.raises(IntegrityError, match="truncated"):
        log.append("mallory", "cover.up")


def test_forged_or_untrusted_checkpoint_is_detected(log, trusted, keystore):
    checkpoints = log.path("checkpoints.jsonl")
    document = json.loads(checkpoints.read_text())
    document["root"] = "00" * 32
    checkpoints.write_text(json.dumps(document) + "\n")
    report = verify_log(log.dir, trusted)
    assert not report.ok and any("signature does not verify" in p for p in report.problems)
    assert any("no valid signed checkpoint" in p for p in report.problems)
    keystore.create_key("someone-else", "signing")
    stranger = list(keystore.public_keys("someone-else").values())
    assert not verify_log(log.dir, stranger).ok


def test_inclusion_and_consistency_proofs_verify_offline(log, trusted, keystore):
    log.checkpoint(keystore)  # size 12
    proof = log.prove_inclusion(10)
    assert json.loads(proof["entry"])["action"] == "ban.add"
    assert verify_proof(proof, trusted) == (True, "entry 10 is in the signed tree of size 12")
    forged = proof | {"entry": proof["entry"].replace("203.0.113.9", "203.0.113.10")}
    assert not verify_proof(forged, trusted)[0]
    assert not verify_proof(proof | {"index": 9}, trusted)[0]
    consistency = log.prove_consistency(10)
    assert verify_proof(consistency, trusted)[0]
    bad = consistency | {"path": consistency["path"][:-1]}
    assert not verify_proof(bad, trusted)[0]
    with pytest.raises(BadInput, match="no checkpoint has tree size 11"):
        log.prove_consistency(11)


def test_a_missing_log_is_bad_input_not_an_empty_success(tmp_path):
    from crypto.sm2 import SM2PrivateKey

    with pytest.raises(BadInput, match="there is no audit log"):
        verify_log(tmp_path / "typo", [SM2PrivateKey.generate().public_key()])


def test_entries_after_the_last_checkpoint_cannot_be_proved(log):
    with pytest.raises(BadInput, match="no signed checkpoint covers 11 entries"):
        log.prove_inclusion(10)


def _append_many(directory, worker):
    log = AuditLog(directory, "sm3")
    for i in range(40):
        log.append(f"worker-{worker}", "test.append", {"i": i})


def test_concurrent_appenders_keep_one_consistent_log(state, keystore):
    directory = state / "audit-concurrent"
    workers = [multiprocessing.get_context("fork").Process(target=_append_many, args=(directory, w))
               for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
    log = AuditLog(directory)
    assert log.size() == 160
    log.checkpoint(keystore)
    report = verify_log(directory, list(keystore.public_keys("audit").values()))
    assert report.ok and report.entries == 160
    actors = [json.loads(line)["actor"] for line in log.path("entries.jsonl").read_text().splitlines()]
    assert sorted(set(actors)) == [f"worker-{w}" for w in range(4)]


def test_recovers_after_a_crash_between_writes(log, trusted, keystore):
    # As if the last writer died mid-way: no head, a leaf missing from the cache, a torn line.
    log.path("head.json").unlink()
    with open(log.path("leaves.bin"), "r+b") as leaves:
        leaves.truncate(11 * 32)
    with open(log.path("entries.jsonl"), "ab") as entries:
        entries.write(b'{"action":"half-writ')
    fresh = AuditLog(log.dir)  # the next process
    entry = fresh.append("carol", "harden.run", {"host": "web-1"})
    assert entry["index"] == 12
    assert fresh.path("entries.jsonl").read_text().count("half-writ") == 0
    fresh.checkpoint(keystore)
    assert verify_log(log.dir, trusted).ok
    assert verify_proof(fresh.prove_inclusion(11), trusted)[0]


def test_module_api_uses_the_default_log(state, keystore):
    entry = audit.append("drill", "drill.failover", {"center": "samecity"})
    signed = audit.checkpoint(keystore)
    assert signed["tree_size"] >= entry["index"] + 1
    assert audit.verify().ok
    with pytest.raises(BadInput, match="details must be JSON"):
        audit.append("x", "y", {"bad": object()})


@pytest.mark.slow
def test_a_hundred_thousand_entries_one_edit_found_and_proofs_stay_small(state, keystore):
    log = AuditLog(state / "audit-large")
    for i in range(100_000):
        log.append("ops", "harden.run", {"host": f"web-{i % 3}", "run": i})
        if i + 1 in (60_000, 100_000):
            log.checkpoint(keystore)
    trusted = list(keystore.public_keys("audit").values())
    proof = log.prove_inclusion(77_777)
    assert len(proof["path"]) == 17 and verify_proof(proof, trusted)[0]
    assert verify_proof(log.prove_consistency(60_000), trusted)[0]
    assert verify_log(log.dir, trusted).ok
    data = log.path("entries.jsonl").read_bytes()
    at = data.index(b'"run":77777}')
    log.path("entries.jsonl").write_bytes(data[:at] + b'"run":77778}' + data[at + 12:])
    report = verify_log(log.dir, trusted)
    assert not report.ok and report.verified_size == 60_000
    assert report.problems == ["entries 60001..100000 do not match the checkpoint signed at "
                               f"{log.checkpoints()[1]['time']}: an entry among them was edited, deleted, "
                               "inserted or reordered"]


# -- rollback of the whole log, found through its witness ---------------------------------------
def govctl(*args: str) -> tuple[int, str]:
    """`govctl ARGS` in-process, as a fresh process would run it (no cached open log)."""
    from typer.testing import CliRunner

    from govctl.cli import app

    AuditLog._open_logs.clear()
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "2000"})  # Rich wraps at 80 otherwise
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, " ".join(result.output.split())


def verify_json() -> tuple[int, dict]:
    code, output = govctl("auditlog", "verify", "--json")
    return code, json.loads(output)


@pytest.fixture
def cli_log(state):
    """The default log after three `govctl auditlog append` (each signs a checkpoint, which its
    witness records). The keystore's first use logs `key.generate` first, so 4 entries."""
    for i in range(3):
        assert govctl("auditlog", "append", "--action", "deploy.up", "--details", json.dumps({"run": i}))[0] == 0
    log = AuditLog(state / "audit")
    assert log.size() == 4 and [c["tree_size"] for c in log.checkpoints()] == [2, 3, 4]
    return log


def witness_file(log) -> "Path":
    return audit.default_witness(log.dir).path


def drop_last_entry_and_checkpoint(log) -> None:
    write(log, lines(log)[:-1])
    checkpoints = log.path("checkpoints.jsonl")
    checkpoints.write_text("".join(line + "\n" for line in checkpoints.read_text().splitlines()[:-1]))


def test_an_intact_log_verifies_against_its_witness(cli_log):
    code, output = govctl("auditlog", "verify")
    assert code == 0 and "audit log intact: 4 entries, 3 signed checkpoints" in output
    assert f"witness: witness file {witness_file(cli_log)} saw up to size 4 (3 records)" in output
    report = verify_json()[1]
    assert (report["ok"], report["witnessed_size"], report["witness_records"]) == (True, 4, 3)
    assert witness_file(cli_log).parent == cli_log.dir.parent / "crypto" / "audit-witness"


@pytest.mark.parametrize("also", [[], ["leaves.bin cut"], ["head.json removed"], ["leaves.bin cut", "head.json removed"]])
def test_cutting_the_last_entry_and_its_checkpoint_is_found(cli_log, also):
    root = cli_log.checkpoints()[-1]["root"]
    drop_last_entry_and_checkpoint(cli_log)
    if "leaves.bin cut" in also:
        with open(cli_log.path("leaves.bin"), "r+b") as leaves:
            leaves.truncate(3 * 32)
    if "head.json removed" in also:
        cli_log.path("head.json").unlink()
    code, report = verify_json()
    assert code == 1 and not report["ok"]
    assert report["problems"] == [
        f"the audit log was rolled back: witness file {witness_file(cli_log)} saw size 4 with root {root[:16]}… "
        f"(checkpoint signed at {json.loads(witness_file(cli_log).read_text().splitlines()[-1])['checkpoint']['time']}), "
        "the log has 3 entries (entries 4..4 are missing)"]
    code, output = govctl("auditlog", "verify")
    assert code == 1 and "TAMPERED: the audit log was rolled back" in output and "audit log intact" not in output


def test_an_older_copy_of_the_whole_log_folder_is_found(cli_log, tmp_path):
    import shutil

    shutil.copytree(cli_log.dir, tmp_path / "old-copy")
    for i in range(2):
        assert govctl("auditlog", "append", "--action", "ban.add", "--details", json.dumps({"n": i}))[0] == 0
    shutil.rmtree(cli_log.dir)
    shutil.copytree(tmp_path / "old-copy", cli_log.dir)
    code, report = verify_json()
    assert code == 1 and report["entries"] == 4 and report["witnessed_size"] == 6
    assert any(p.startswith(f"the audit log was rolled back: witness file {witness_file(cli_log)} saw size 6 with root ")
               and p.endswith("the log has 4 entries (entries 5..6 are missing)") for p in report["problems"])
    shutil.rmtree(cli_log.dir)  # and the log deleted outright is a rollback to nothing, not "no log"
    code, report = verify_json()
    assert code == 1 and report["entries"] == 0
    assert any("the log has 0 entries (entries 1..6 are missing)" in p for p in report["problems"])


def test_a_new_log_without_a_witness_record_passes_and_says_so(state, keystore):
    log = AuditLog(state / "audit", witness=None)  # as a log checkpointed before witnessing
    log.append("alice", "deploy.up")
    log.checkpoint(keystore)
    code, output = govctl("auditlog", "verify")
    assert code == 0 and "audit log intact" in output
    assert "note: no witness record yet" in output and "the next checkpoint records one" in output
    assert govctl("auditlog", "checkpoint")[0] == 0
    code, report = verify_json()
    assert code == 0 and report["witnessed_size"] == report["entries"] and report["witness_records"] == 1


def test_a_deleted_witness_is_reported_once_checkpoints_were_witnessed(cli_log):
    witness_file(cli_log).unlink()
    code, report = verify_json()
    assert code == 1 and report["witnessed_size"] is None
    assert any(p.startswith(f"witness file {witness_file(cli_log)} has no record, but the checkpoint signed at ")
               and "(size 4) was recorded by witness file" in p and "the witness was deleted or replaced" in p
               for p in report["problems"])


def test_a_witness_cut_back_or_forged_is_reported(cli_log):
    path = witness_file(cli_log)
    records = path.read_text().splitlines()
    path.write_text(records[0] + "\n")
    code, report = verify_json()
    assert code == 1 and any(f"witness file {path} was rolled back: its largest record is size 2, but the "
                             "checkpoint signed at" in p and "(size 4)" in p for p in report["problems"])
    forged = json.loads(records[-1])
    forged["checkpoint"]["tree_size"] = 3  # claim a smaller tree, to cover a cut
    path.write_text("\n".join(records[:-1] + [json.dumps(forged)]) + "\n")
    code, report = verify_json()
    assert code == 1 and f"witness file {path}: record #3 does not verify under the trusted key(s): forged or altered" \
        in report["problems"]


def test_a_rolled_back_log_gets_no_new_checkpoint_and_regrowing_it_is_found(cli_log):
    drop_last_entry_and_checkpoint(cli_log)
    cli_log.path("head.json").unlink()  # else appending stops at the truncation already
    code, output = govctl("auditlog", "append", "--action", "cover.up")  # back to size 4, another root
    assert code == 1 and "the audit log was rewritten" in output and "refusing to sign a checkpoint" in output
    assert govctl("auditlog", "append", "--action", "cover.up", "--no-checkpoint")[0] == 0
    code, output = govctl("auditlog", "checkpoint")  # size 5: larger than the witness saw, so signed...
    assert code == 0
    code, report = verify_json()  # ...but its first 4 entries are not the ones the witness saw
    assert code == 1 and any(p.startswith(f"the log's first 4 entries do not match what witness file "
                                          f"{witness_file(cli_log)} recorded (size 4 with root ")
                             for p in report["problems"])


def test_a_moved_log_is_verified_with_its_witness_given(cli_log, tmp_path):
    import shutil

    shutil.copytree(cli_log.dir, tmp_path / "copy")
    pubkey = cli_log.checkpoints()[-1]["signature"]["public_key"]
    code, output = govctl("auditlog", "verify", "--log-dir", str(tmp_path / "copy"), "--pubkey", pubkey)
    assert code == 1 and "has no record" in output and "give its witness file with --witness" in output
    code, output = govctl("auditlog", "verify", "--log-dir", str(tmp_path / "copy"), "--pubkey", pubkey,
                          "--witness", str(witness_file(cli_log)))
    assert code == 0 and "audit log intact: 4 entries" in output


@pytest.mark.root
def test_an_append_only_witness_keeps_recording_and_cannot_be_cut_back(cli_log):
    """The stronger set-up on one host: root makes the witness file append-only (chattr +a), so
    the app user, who owns the log, can add records but not cut, rewrite, replace or delete them."""
    import os
    import subprocess

    from tests.conftest import needs_root

    needs_root()
    path = witness_file(cli_log)
    subprocess.run(["chattr", "+a", str(path)], check=True)
    try:
        assert govctl("auditlog", "append", "--action", "harden.run")[0] == 0
        assert json.loads(path.read_text().splitlines()[-1])["checkpoint"]["tree_size"] == 5
        (path.parent / "older").write_text(path.read_text().splitlines()[0] + "\n")
        for cut_back in (lambda: path.write_text(""), path.unlink,
                         lambda: os.replace(path.parent / "older", path)):
            with pytest.raises(PermissionError):
                cut_back()
    finally:
        subprocess.run(["chattr", "-a", str(path)], check=True)
    drop_last_entry_and_checkpoint(cli_log)
    code, report = verify_json()
    assert code == 1 and any(p.startswith("the audit log was rolled back") and "saw size 5" in p
                             for p in report["problems"])


def test_the_witness_folder_is_configurable_and_must_be_outside_the_log(state, tmp_path):
    config = state / "crypto" / "config.yaml"
    config.write_text(config.read_text() + f"audit_witness_dir: {tmp_path / 'other-host'}\n")
    assert govctl("auditlog", "append", "--action", "deploy.up")[0] == 0
    recorded = list((tmp_path / "other-host").glob("*.jsonl"))
    assert len(recorded) == 1 and json.loads(recorded[0].read_text())["checkpoint"]["tree_size"] == 2
    code, report = verify_json()
    assert code == 0 and report["witness"] == f"witness file {recorded[0]}" and report["witnessed_size"] == 2
    config.write_text(config.read_text().replace(str(tmp_path / "other-host"), "audit/witness"))
    code, output = govctl("auditlog", "checkpoint")
    assert code == 2 and "is inside the log's folder" in output and "set audit_witness_dir elsewhere" in output


def test_a_garbled_witness_or_a_wrong_witness_path_is_reported(cli_log, tmp_path):
    path = witness_file(cli_log)
    path.write_text(path.read_text() + "{not json\n")
    code, report = verify_json()
    assert code == 1 and f"witness file {path}: line 4 is not a witness record (altered or garbled); keep the " \
        "file as evidence" in report["problems"]
    code, output = govctl("auditlog", "checkpoint")  # nothing is signed over a damaged witness
    assert code == 1 and "its last line is not a witness record" in output
    code, output = govctl("auditlog", "verify", "--witness", str(tmp_path / "typo.jsonl"))
    assert code == 2 and f"--witness {tmp_path / 'typo.jsonl'}: no such file" in output
    path.rename(tmp_path / "damaged-witness.jsonl")  # the documented recovery: keep it aside,
    assert govctl("auditlog", "checkpoint")[0] == 0      # and the next checkpoint starts a new one
    code, report = verify_json()
    assert code == 0 and (report["witness_records"], report["witnessed_size"]) == (1, report["entries"])
