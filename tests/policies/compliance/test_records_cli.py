"""Reports on record from the CLI (issue #19): `govctl comply record` makes the report the console's
compliance page lists, `govctl comply reports` lists them, and `govctl comply verify` takes the pack's zip
the console downloads, with the console's checks."""
from __future__ import annotations

import io
import json
import shutil
import zipfile

import pytest

from .conftest import FIXTURES, PASSPHRASE
from tests.conftest import run_govctl


def _env(tmp_path) -> dict:
    state = tmp_path / "state"
    (state / "crypto").mkdir(parents=True, exist_ok=True)
    (state / "crypto" / "config.yaml").write_text("suite: gm\nkdf_iterations: 100000\n")
    return {"GOVCTL_STATE": str(state), "GOVCTL_CRYPTO_PASSPHRASE": PASSPHRASE, "GOVCTL_ACTOR": "王审计"}


def test_bad_record_requests_and_non_packs_exit_2_saying_what_to_do(tmp_path):
    env = _env(tmp_path)
    proc = run_govctl("comply", "reports", "--json", env=env)
    assert proc.returncode == 0 and json.loads(proc.stdout) == []
    proc = run_govctl("comply", "record", "--standard", "djcp", env=env)
    assert proc.returncode == 2 and "govctl comply collect --out" in " ".join(proc.stderr.split())
    not_zip = tmp_path / "pack.zip"
    not_zip.write_bytes(b"not a zip")
    proc = run_govctl("comply", "verify", str(not_zip), env=env)
    assert proc.returncode == 2 and "not a zip file" in proc.stderr


@pytest.mark.slow
def test_record_lists_and_its_zipped_pack_verifies_until_tampered(tmp_path):
    env = _env(tmp_path)
    shutil.copytree(FIXTURES, tmp_path / "state" / "compliance" / "evidence")
    proc = run_govctl("comply", "record", "--standard", "mlps-crypto", "--level", "3", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    made = json.loads(proc.stdout)
    assert made["status"] == "ready" and made["requested_by"] == "王审计" and made["standard"] == "mlps-crypto"
    [listed] = json.loads(run_govctl("comply", "reports", "--json", env=env).stdout)
    assert listed["id"] == made["id"] and listed["counts"] == made["counts"]

    pack = tmp_path / "state" / "compliance" / "reports" / made["id"] / "pack"
    assert run_govctl("comply", "verify", str(pack), env=env).returncode == 0
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(pack.rglob("*")):
            if path.is_file():
                archive.write(path, f"{made['id']}/{path.relative_to(pack).as_posix()}")  # zipped as a folder
    zipped = tmp_path / "pack.zip"
    zipped.write_bytes(buffer.getvalue())
    proc = run_govctl("comply", "verify", str(zipped), env=env)
    assert proc.returncode == 0 and "signature valid" in proc.stdout, proc.stderr
    (pack / "evidence" / "crypto.json").write_text("{}")
    shutil.make_archive(str(tmp_path / "tampered"), "zip", pack)
    proc = run_govctl("comply", "verify", str(tmp_path / "tampered.zip"), env=env)
    assert proc.returncode == 1 and "changed: evidence/crypto.json" in proc.stderr
