"""The keystore as a user meets it: versions, rotation, rewrap, minimum decryption version,
context as AAD, sealed key file, clear errors for every kind of wrong input, events recorded."""
from __future__ import annotations

import base64
import json
import os

import pytest

from crypto.errors import BadInput, CryptoError, IntegrityError
from crypto.keystore import KeyFileRoot, Keystore, parse_ciphertext, to_token
from tests.crypto.conftest import PASSPHRASE

CONTEXT = {"tenant": "finance", "table": "citizens"}


def actions(state) -> list[tuple[str, dict]]:
    lines = (state / "audit" / "entries.jsonl").read_text().splitlines()
    return [(e["action"], e["details"]["params"]) for e in map(json.loads, lines)]  # the trail's parameters


def test_encrypt_decrypt_with_context_and_header(keystore):
    keystore.create_key("citizens")
    ciphertext = keystore.encrypt("citizens", "身份证号 330702".encode(), CONTEXT)
    aead, name, version, *_ = parse_ciphertext(ciphertext)
    assert (aead, name, version) == ("sm4-gcm", "citizens", 1)
    token = to_token(ciphertext)
    assert token.startswith("govctl:v1:")
    assert keystore.decrypt("citizens", token, CONTEXT).decode() == "身份证号 330702"
    with pytest.raises(IntegrityError, match="wrong key or context"):
        keystore.decrypt("citizens", token, {"tenant": "finance"})
    with pytest.raises(IntegrityError, match="wrong key or context"):
        keystore.decrypt("citizens", token, CONTEXT | {"table": "staff"})


def test_wrong_key_flipped_bits_and_truncation_never_give_plaintext(keystore):
    keystore.create_key("a")
    keystore.create_key("b")
    ciphertext = keystore.encrypt("a", b"top secret", CONTEXT)
    with pytest.raises(BadInput, match="made with key 'a', not 'b'"):
        keystore.decrypt("b", ciphertext, CONTEXT)
    for position in range(len(ciphertext)):
        for bit in (0x01, 0x80):
            altered = bytearray(ciphertext)
            altered[position] ^= bit
            with pytest.raises((IntegrityError, BadInput, CryptoError)) as error:
                keystore.decrypt("a", bytes(altered), CONTEXT)
            assert b"top secret".decode() not in str(error.value)
    for length in range(len(ciphertext)):
        with pytest.raises(IntegrityError):
            keystore.decrypt("a", ciphertext[:length], CONTEXT)
    token = to_token(ciphertext)
    for length in range(len("govctl:v1:") + 1, len(token), 7):
        with pytest.raises(IntegrityError):
            keystore.decrypt("a", token[:length], CONTEXT)


def test_rotate_rewrap_min_version_destroy(keystore, state):
    keystore.create_key("backups")
    old = keystore.encrypt("backups", b"payload")
    assert keystore.rotate("backups") == 2
    assert parse_ciphertext(keystore.encrypt("backups", b"new"))[2] == 2
    assert keystore.decrypt("backups", old) == b"payload"  # old versions still decrypt
    rewrapped = keystore.rewrap("backups", old)
    assert parse_ciphertext(rewrapped)[2] == 2 and keystore.decrypt("backups", rewrapped) == b"payload"
    with pytest.raises(BadInput, match="still usable"):
        keystore.destroy_version("backups", 1)
    keystore.configure("backups", 2)
    with pytest.raises(CryptoError, match="below its minimum decryption version 2"):
        keystore.decrypt("backups", old)
    keystore.destroy_version("backups", 1)
    keystore.configure("backups", 1)
    with pytest.raises(CryptoError, match="version 1 was destroyed"):
        keystore.decrypt("backups", old)
    with pytest.raises(BadInput, match="between 1 and the latest version 2"):
        keystore.configure("backups", 3)
    recorded = [a for a, d in actions(state) if d.get("key") == "backups"]
    assert recorded == ["key.generate", "key.use", "key.rotate", "key.use", "key.use", "key.use",
                        "key.use", "key.configure", "key.destroy", "key.configure"]


def test_signing_keys_rotate_and_export(keystore, state):
    keystore.create_key("reports", "signing")
    signature, version = keystore.sign("reports", b"drill report")
    assert version == 1 and keystore.verify("reports", b"drill report", signature)
    keystore.rotate("reports")
    newer, version = keystore.sign("reports", b"drill report")
    assert version == 2 and keystore.verify("reports", b"drill report", signature)
    public = keystore.export_public_key("reports")
    assert public.verify(b"drill report", newer) and not public.verify(b"drill report", signature)
    keystore.configure("reports", 2)
    assert not keystore.verify("reports", b"drill report", signature)  # retired version
    assert ("key.export", {"key": "reports", "version": 2, "what": "public key"}) in actions(state)
    with pytest.raises(BadInput, match="signing key; use an encryption key"):
        keystore.encrypt("reports", b"x")


def test_keystore_file_is_sealed_and_integrity_protected(keystore, state):
    keystore.create_key("db")
    keystore.create_key("signer", "signing")
    path = state / "crypto" / "keystore.json"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    text = path.read_text()
    for record in keystore._keys.values():  # the material must not be on disk in any encoding
        for entry in record["versions"].values():
            raw = base64.b64decode(entry["material"])
            assert entry["material"] not in text and raw.hex() not in text and raw not in path.read_bytes()
    document = json.loads(text)
    document["generation"] += 5  # an edit of the header
    path.write_text(json.dumps(document))
    with pytest.raises(IntegrityError, match="failed authentication"):
        Keystore.open(events=None)
    document["generation"] -= 5
    sealed = bytearray(base64.b64decode(document["body"]["sealed"]))
    sealed[3] ^= 1
    path.write_text(json.dumps(document | {"body": document["body"] | {"sealed": base64.b64encode(sealed).decode()}}))
    with pytest.raises(IntegrityError):
        Keystore.open(events=None)


def test_wrong_passphrase_and_locked_keystore(keystore, monkeypatch):
    monkeypatch.setenv("GOVCTL_CRYPTO_PASSPHRASE", "hunter2-not-it")
    with pytest.raises(IntegrityError, match="wrong passphrase") as error:
        Keystore.open(events=None)
    assert "hunter2" not in str(error.value) and PASSPHRASE not in str(error.value)
    monkeypatch.delenv("GOVCTL_CRYPTO_PASSPHRASE")
    with pytest.raises(BadInput, match="GOVCTL_CRYPTO_PASSPHRASE_FILE"):
        Keystore.open(events=None)


def test_passphrase_file_and_key_file_roots(state, tmp_path, monkeypatch):
    monkeypatch.delenv("GOVCTL_CRYPTO_PASSPHRASE")
    (tmp_path / "pass").write_text(PASSPHRASE + "\n")
    monkeypatch.setenv("GOVCTL_CRYPTO_PASSPHRASE_FILE", str(tmp_path / "pass"))
    Keystore.open(events=None).create_key("k")
    assert Keystore.open(events=None).describe("k")["latest_version"] == 1

    other = tmp_path / "other.json"
    root_file = tmp_path / "root.key"
    with pytest.raises(BadInput, match="head -c 32 /dev/urandom"):
        KeyFileRoot(root_file)
    root_file.write_bytes(os.urandom(32))
    store = Keystore.open(other, KeyFileRoot(root_file), events=None)
    store.create_key("k2")
    ciphertext = store.encrypt("k2", b"x")
    assert Keystore.open(other, KeyFileRoot(root_file), events=None).decrypt("k2", ciphertext) == b"x"
    root_file.write_bytes(os.urandom(32))
    with pytest.raises(IntegrityError, match="wrong file"):
        Keystore.open(other, KeyFileRoot(root_file), events=None)
    with pytest.raises(BadInput, match="passphrase root key, but a keyfile"):
        Keystore.open(state / "crypto" / "keystore.json", KeyFileRoot(root_file), events=None)


def test_data_keys_for_envelope_encryption(keystore):
    keystore.create_key("bulk")
    plaintext_key, wrapped = keystore.data_key("bulk", CONTEXT)
    assert len(plaintext_key) == 16
    assert keystore.decrypt("bulk", wrapped, CONTEXT) == plaintext_key


def test_bad_names_and_unknown_keys(keystore):
    with pytest.raises(BadInput, match="invalid"):
        keystore.create_key("Bad Name")
    with pytest.raises(BadInput, match="does not exist"):
        keystore.encrypt("missing", b"x")
    keystore.create_key("dup")
    with pytest.raises(BadInput, match="already exists"):
        keystore.create_key("dup")
    with pytest.raises(BadInput, match="context keys and values must be strings"):
        keystore.encrypt("dup", b"x", {"n": 1})


def test_international_suite(state):
    (state / "crypto" / "config.yaml").write_text("suite: intl\nkdf_iterations: 100000\n")
    store = Keystore.open(state / "crypto" / "intl.json", events=None)
    store.create_key("data")
    store.create_key("signer", "signing")
    ciphertext = store.encrypt("data", b"x", CONTEXT)
    assert parse_ciphertext(ciphertext)[0] == "aes-256-gcm"
    assert store.decrypt("data", ciphertext, CONTEXT) == b"x"
    signature, _ = store.sign("signer", b"m")
    assert store.describe("signer")["alg"] == "ecdsa-p256" and store.verify("signer", b"m", signature)
    assert json.loads((state / "crypto" / "intl.json").read_text())["root"]["kdf"] == "pbkdf2-sha256"


def test_openssl_sm2_backend_selected_by_configuration(state):
    from crypto import sm2

    (state / "crypto" / "config.yaml").write_text("sm2_backend: openssl\nkdf_iterations: 100000\n")
    store = Keystore.open(events=None)
    assert sm2.default_backend().name == "openssl"
    store.create_key("fast-signer", "signing")
    signature, _ = store.sign("fast-signer", b"m")
    public = store.export_public_key("fast-signer")
    assert sm2.SM2PublicKey(public.point, sm2.GmalgBackend()).verify(b"m", signature)


def test_bad_configuration_is_named(state):
    (state / "crypto" / "config.yaml").write_text("suite: rot13\n")
    with pytest.raises(BadInput, match="config.yaml: 'rot13' is not one of"):
        Keystore.open(events=None)


def test_missing_sm2_backend_is_reported_at_start_up(state):
    import subprocess
    import sys

    # Chosen explicitly, a missing backend stops the start (auto would fall back: test_sm2_selection).
    (state / "crypto" / "config.yaml").write_text("sm2_backend: gmalg\nkdf_iterations: 100000\n")
    code = ("import sys; sys.modules['gmalg'] = None\n"
            "from crypto.suite import load_settings\n"
            "try:\n    load_settings()\nexcept Exception as e:\n    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ}, check=True).stdout
    assert out.startswith("UnsupportedError sm2 backend cannot be imported (gmalg)")


def test_a_second_process_sees_rotations(keystore):
    keystore.create_key("shared")
    other = Keystore.open(events=None)  # another holder of the same file
    keystore.rotate("shared")
    assert parse_ciphertext(other.encrypt("shared", b"x"))[2] == 2
