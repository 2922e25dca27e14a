"""The CLI end to end, as a user runs it: real `govctl` processes, real files, real openssl."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.crypto.conftest import PASSPHRASE, run_govctl

pytestmark = pytest.mark.slow


def ok(*args, input=None, env=None) -> str:
    result = run_govctl(*args, input=input, env=env)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


@pytest.mark.parametrize("command", [
    ["crypto"], ["crypto", "hash"], ["crypto", "keys", "create"], ["crypto", "encrypt"], ["crypto", "decrypt"],
    ["crypto", "rewrap"], ["crypto", "sign"], ["crypto", "verify"], ["auditlog", "append"],
    ["auditlog", "verify"], ["auditlog", "prove"], ["evidence", "pack"], ["evidence", "verify"],
    ["crypto", "backends"]])
def test_help_has_an_example(command):
    assert "Example" in ok(*command, "--help")


def test_hash_and_bad_input(state, tmp_path):
    assert ok("crypto", "hash", "--alg", "sm3", "-", input=b"abc").strip() == \
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    (tmp_path / "f").write_bytes(b"abc")
    assert json.loads(ok("crypto", "hash", str(tmp_path / "f"), "--json"))["digest"].startswith("66c7f0f4")
    missing = run_govctl("crypto", "hash", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "No such file" in " ".join(missing.stderr.decode().split())
    unknown = run_govctl("crypto", "hash", "--alg", "md5", "-", input=b"")
    assert unknown.returncode == 2 and b"use one of sm3, sha256" in unknown.stderr


def test_keys_encrypt_decrypt_rotate_rewrap(state, tmp_path):
    ok("crypto", "keys", "create", "app")
    secret = "公民身份信息 secret".encode()
    token = ok("crypto", "encrypt", "--key", "app", "--context", "tenant=finance", "-", input=secret).strip()
    assert token.startswith("govctl:v1:")
    (tmp_path / "token").write_text(token)
    assert run_govctl("crypto", "decrypt", "--key", "app", "-c", "tenant=finance",
                      str(tmp_path / "token")).stdout == secret
    wrong = run_govctl("crypto", "decrypt", "--key", "app", "-c", "tenant=hr", str(tmp_path / "token"))
    assert wrong.returncode == 1 and wrong.stdout == b"" and b"wrong key or context" in wrong.stderr
    flipped = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    altered = run_govctl("crypto", "decrypt", "--key", "app", "-c", "tenant=finance", "-", input=flipped.encode())
    assert altered.returncode == 1 and altered.stdout == b""
    ok("crypto", "keys", "rotate", "app")
    new_token = ok("crypto", "rewrap", "--key", "app", "-c", "tenant=finance", str(tmp_path / "token")).strip()
    assert new_token.startswith("govctl:v2:")
    ok("crypto", "keys", "config", "app", "--min-decryption-version", "2")
    retired = run_govctl("crypto", "decrypt", "--key", "app", "-c", "tenant=finance", str(tmp_path / "token"))
    assert retired.returncode == 1 and b"below its minimum decryption version 2" in retired.stderr
    assert run_govctl("crypto", "decrypt", "--key", "app", "-c", "tenant=finance", "-",
                      input=new_token.encode()).stdout == secret
    ok("crypto", "keys", "destroy", "app", "--version", "1")
    keys = {k["name"]: k for k in json.loads(ok("crypto", "keys", "list", "--json"))}
    assert keys["app"]["latest_version"] == 2 and "destroyed" in keys["app"]["versions"]["1"]
    keystore_text = (state / "crypto" / "keystore.json").read_text()
    assert secret.decode() not in keystore_text and PASSPHRASE not in keystore_text


def test_locked_keystore_is_bad_input_and_nothing_half_done(state):
    locked = {"GOVCTL_CRYPTO_PASSPHRASE": ""}
    result = run_govctl("crypto", "keys", "list", env=locked)
    assert result.returncode == 2 and b"GOVCTL_CRYPTO_PASSPHRASE_FILE" in result.stderr
    refused = run_govctl("auditlog", "append", "--action", "deploy.up", env=locked)
    assert refused.returncode == 2 and not (state / "audit" / "entries.jsonl").exists()
    ok("auditlog", "append", "--action", "deploy.up", "--no-checkpoint", env=locked)
    assert len((state / "audit" / "entries.jsonl").read_text().splitlines()) == 1


def test_sign_verify_and_openssl_interop(state, tmp_path):
    ok("crypto", "keys", "create", "signer", "--purpose", "signing")
    message = tmp_path / "report.txt"
    message.write_text("drill report: RTO 42 s\n")
    signature = ok("crypto", "sign", "--alg", "sm2", "--key", "signer", "--id", "drill@egov", str(message)).strip()
    pubkey = ok("crypto", "keys", "export", "signer").strip()
    assert run_govctl("crypto", "verify", "--alg", "sm2", "--pubkey", pubkey, "--sig", signature,
                      "--id", "drill@egov", str(message)).returncode == 0
    assert run_govctl("crypto", "verify", "--alg", "sm2", "--key", "signer", "--sig", signature,
                      "--id", "drill@egov", str(message)).returncode == 0
    assert run_govctl("crypto", "verify", "--alg", "sm2", "--pubkey", pubkey, "--sig", signature,
                      str(message)).returncode == 1  # default ID differs
    raw = ok("crypto", "sign", "--key", "signer", "--format", "raw", str(message)).strip()
    assert len(raw) == 128 and run_govctl("crypto", "verify", "--pubkey", pubkey, "--sig", raw,
                                          str(message)).returncode == 0
    # openssl verifies govctl's signature ...
    (tmp_path / "pub.pem").write_text(ok("crypto", "keys", "export", "signer", "--pem"))
    (tmp_path / "sig.der").write_bytes(bytes.fromhex(signature))
    verified = subprocess.run(["openssl", "dgst", "-sm3", "-verify", str(tmp_path / "pub.pem"), "-sigopt",
                               "distid:drill@egov", "-signature", str(tmp_path / "sig.der"), str(message)],
                              capture_output=True)
    assert verified.stdout.strip() == b"Verified OK"
    # ... and govctl verifies openssl's.
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2",
                    "-out", str(tmp_path / "k.pem")], check=True)
    theirs = subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-inkey",
                             str(tmp_path / "k.pem"), "-pkeyopt", "distid:1234567812345678", "-in",
                             str(message)], capture_output=True, check=True).stdout
    spki = subprocess.run(["openssl", "pkey", "-in", str(tmp_path / "k.pem"), "-pubout", "-outform", "DER"],
                          capture_output=True, check=True).stdout
    assert run_govctl("crypto", "verify", "--pubkey", spki[-65:].hex(), "--sig", theirs.hex(),
                      str(message)).returncode == 0
    message.write_text("drill report: RTO 4 s\n")
    assert run_govctl("crypto", "verify", "--pubkey", spki[-65:].hex(), "--sig", theirs.hex(),
                      str(message)).returncode == 1
    bad = run_govctl("crypto", "verify", "--pubkey", "04zz", "--sig", theirs.hex(), str(message))
    assert bad.returncode == 2 and b"--pubkey is not hex" in bad.stderr


def test_auditlog_append_prove_and_offline_verify(state, tmp_path):
    for host in ("web-1", "db-1", "bastion-1"):
        ok("auditlog", "append", "--actor", "ops", "--action", "harden.run", "--details", json.dumps({"host": host}))
    pubkey = ok("crypto", "keys", "export", "audit").strip()
    assert "audit log intact" in ok("auditlog", "verify")
    ok("auditlog", "prove", "--index", "1", "-o", str(tmp_path / "p.json"))
    # An auditor with a copy of the log, its witness and the public key only: no keystore, no passphrase.
    copy = tmp_path / "copy"
    shutil.copytree(state / "audit", copy)
    [witness] = (state / "crypto" / "audit-witness").glob("*.jsonl")
    shutil.copy(witness, tmp_path / "witness.jsonl")
    offline = {"GOVCTL_CRYPTO_PASSPHRASE": "", "GOVCTL_STATE": str(tmp_path / "empty"), "COLUMNS": "500"}
    assert "proof valid" in ok("auditlog", "verify", "--proof", str(tmp_path / "p.json"), "--pubkey", pubkey,
                               env=offline)
    intact = ok("auditlog", "verify", "--log-dir", str(copy), "--pubkey", pubkey,
                "--witness", str(tmp_path / "witness.jsonl"), env=offline)
    assert "audit log intact" in intact and "saw up to size 5 (4 records), consistent with the log" in intact
    without = run_govctl("auditlog", "verify", "--log-dir", str(copy), "--pubkey", pubkey, env=offline)
    assert without.returncode == 1 and b"has no record" in without.stdout  # its witness was not brought
    unchecked = ok("auditlog", "verify", "--log-dir", str(copy), "--pubkey", pubkey, "--no-witness", env=offline)
    assert "audit log intact" in unchecked and "note: not compared with a witness (--no-witness)" in unchecked
    lines = (copy / "entries.jsonl").read_text().splitlines()
    (copy / "entries.jsonl").write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    tampered = run_govctl("auditlog", "verify", "--log-dir", str(copy), "--pubkey", pubkey, env=offline)
    assert tampered.returncode == 1 and b"TAMPERED" in tampered.stdout
    details = run_govctl("auditlog", "append", "--action", "x", "--details", "[1]")
    assert details.returncode == 2 and b"JSON object" in details.stderr


def test_evidence_pack_and_verify_names_the_file(state, tmp_path):
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "a.txt").write_text("a")
    (pack / "b.txt").write_text("b")
    ok("evidence", "pack", str(pack), "--description", "test")
    pubkey = ok("crypto", "keys", "export", "evidence").strip()
    assert "evidence intact" in ok("evidence", "verify", str(pack), "--pubkey", pubkey)
    (pack / "b.txt").write_text("B")
    result = run_govctl("evidence", "verify", str(pack), "--pubkey", pubkey, "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["changed"] == ["b.txt"]
