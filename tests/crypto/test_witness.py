"""The file witness on its own: records only grow, and the latest is read from the file's end."""
from __future__ import annotations

import json

import pytest

from crypto.errors import IntegrityError
from crypto.witness import FileWitness, RollbackError


def head(size: int, root: str | None = None, **extra) -> dict:
    return {"tree_size": size, "root": root or f"{size:064x}", "time": f"t{size}", **extra}


def test_records_grow_and_the_latest_is_read_from_the_end(tmp_path):
    witness = FileWitness(tmp_path / "deep" / "w.jsonl")
    assert witness.latest() is None and witness.records() == []
    for size in range(2000):
        witness.record(head(size))
    witness.record(head(2000, pad="x" * 200_000))  # one record longer than the tail read at once
    witness.record(head(2000, pad="x" * 200_000))  # the same head again (a checkpoint with no new entry)
    assert witness.latest()["tree_size"] == 2000 and len(witness.records()) == 2002
    assert [r["tree_size"] for r in witness.records()[:3]] == [0, 1, 2]
    assert (tmp_path / "deep").stat().st_mode & 0o777 == 0o700
    assert witness.path.stat().st_mode & 0o777 == 0o600


def test_a_smaller_or_different_tree_is_refused(tmp_path):
    witness = FileWitness(tmp_path / "w.jsonl")
    witness.record(head(7))
    with pytest.raises(RollbackError, match=r"rolled back: witness file .* saw size 7 with root 0000000000000000… "
                                            r"\(checkpoint signed at t7\), the log has 6 entries; refusing"):
        witness.record(head(6))
    with pytest.raises(RollbackError, match="rewritten: .* the log has the same size with root ffffffffffffffff…"):
        witness.record(head(7, "f" * 64))
    assert [r["tree_size"] for r in witness.records()] == [7]


def test_a_garbled_line_is_an_integrity_error_naming_it(tmp_path):
    witness = FileWitness(tmp_path / "w.jsonl")
    witness.record(head(1))
    with open(witness.path, "a") as out:
        out.write(json.dumps({"no checkpoint": 1}) + "\n")
    with pytest.raises(IntegrityError, match="line 2 is not a witness record"):
        witness.records()
    with pytest.raises(IntegrityError, match="its last line is not a witness record"):
        witness.record(head(2))


def test_one_file_per_log_outside_it(tmp_path):
    a = FileWitness.for_log(tmp_path / "witness", tmp_path / "logs" / "a")
    b = FileWitness.for_log(tmp_path / "witness", tmp_path / "logs" / "b")
    again = FileWitness.for_log(tmp_path / "witness", tmp_path / "logs" / ".." / "logs" / "a")
    assert a.path != b.path and a.path == again.path and a.path.parent == tmp_path / "witness"
