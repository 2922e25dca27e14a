"""SM2 and SM4 interop with the OpenSSL 3 command line: openssl signs/encrypts and govctl
verifies/decrypts, and the reverse, with the default and a custom distinguishing ID."""
from __future__ import annotations

import re
import subprocess

import pytest

from crypto import primitives
from crypto.sm2 import SM2PrivateKey, SM2PublicKey

MESSAGE = "两地三中心 drill report, 2026-11".encode()


def openssl(*args: str, input: bytes | None = None) -> bytes:
    return subprocess.run(["openssl", *args], input=input, capture_output=True, check=True).stdout


@pytest.fixture
def openssl_key(tmp_path):
    """An SM2 key pair made by openssl: (private PEM path, public PEM path, govctl private key)."""
    private_pem = tmp_path / "sm2.pem"
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2", "-out", str(private_pem))
    public_pem = tmp_path / "sm2.pub.pem"
    openssl("pkey", "-in", str(private_pem), "-pubout", "-out", str(public_pem))
    text = openssl("pkey", "-in", str(private_pem), "-text", "-noout").decode()
    scalar = re.search(r"priv:\s*((?:[0-9a-f]{2}:?\s*)+)pub:", text).group(1)
    private = SM2PrivateKey.from_bytes(bytes.fromhex(re.sub(r"[:\s]", "", scalar)).rjust(32, b"\0"))
    return private_pem, public_pem, private


@pytest.mark.parametrize("uid", ["1234567812345678", "govctl@egov.example"])
def test_openssl_signs_govctl_verifies(openssl_key, tmp_path, uid):
    private_pem, public_pem, _ = openssl_key
    (tmp_path / "msg").write_bytes(MESSAGE)
    signature = openssl("pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-inkey", str(private_pem),
                        "-pkeyopt", f"distid:{uid}", "-in", str(tmp_path / "msg"))
    public = SM2PublicKey.from_pem(public_pem.read_text())
    assert public.verify(MESSAGE, signature, uid.encode())
    assert not public.verify(MESSAGE, signature, b"another id")
    assert not public.verify(MESSAGE + b".", signature, uid.encode())


@pytest.mark.parametrize("uid", ["1234567812345678", "govctl@egov.example"])
def test_govctl_signs_openssl_verifies(tmp_path, uid):
    key = SM2PrivateKey.generate()
    (tmp_path / "pub.pem").write_text(key.public_key().to_pem())
    (tmp_path / "msg").write_bytes(MESSAGE)
    (tmp_path / "sig").write_bytes(key.sign(MESSAGE, uid.encode()))
    out = openssl("dgst", "-sm3", "-verify", str(tmp_path / "pub.pem"), "-sigopt", f"distid:{uid}",
                  "-signature", str(tmp_path / "sig"), str(tmp_path / "msg"))
    assert out.strip() == b"Verified OK"
    (tmp_path / "msg").write_bytes(MESSAGE + b".")
    refused = subprocess.run(["openssl", "dgst", "-sm3", "-verify", str(tmp_path / "pub.pem"), "-sigopt",
                              f"distid:{uid}", "-signature", str(tmp_path / "sig"), str(tmp_path / "msg")],
                             capture_output=True)
    assert refused.returncode != 0 and b"Verification failure" in refused.stdout + refused.stderr


def test_openssl_encrypts_govctl_decrypts(openssl_key, tmp_path):
    _, public_pem, private = openssl_key
    ciphertext = openssl("pkeyutl", "-encrypt", "-pubin", "-inkey", str(public_pem), input=MESSAGE)
    assert ciphertext[0] == 0x30  # GM/T 0009 DER
    assert private.decrypt(ciphertext) == MESSAGE


def test_govctl_encrypts_openssl_decrypts(openssl_key, tmp_path):
    private_pem, public_pem, private = openssl_key
    ciphertext = SM2PublicKey.from_pem(public_pem.read_text()).encrypt(MESSAGE)
    assert openssl("pkeyutl", "-decrypt", "-inkey", str(private_pem), input=ciphertext) == MESSAGE


def test_openssl_reads_govctl_public_key_pem():
    key = SM2PrivateKey.generate()
    text = openssl("pkey", "-pubin", "-text", "-noout", input=key.public_key().to_pem().encode()).decode()
    assert "ASN1 OID: SM2" in text
    assert re.sub(r"[:\s]", "", text.split("pub:")[1].split("ASN1")[0]) == key.public_key().to_bytes().hex()


@pytest.mark.parametrize("mode", ["sm4-cbc", "sm4-ctr"])
def test_sm4_cbc_ctr_match_openssl_enc(mode):
    key, iv = bytes(range(16)), bytes(range(16, 32))
    data = MESSAGE * 5
    theirs = openssl("enc", f"-{mode}", "-K", key.hex(), "-iv", iv.hex(), input=data)
    ours = primitives.sm4_cbc_encrypt(key, iv, data) if mode == "sm4-cbc" else primitives.sm4_ctr(key, iv, data)
    assert ours == theirs
    back = primitives.sm4_cbc_decrypt(key, iv, theirs) if mode == "sm4-cbc" else primitives.sm4_ctr(key, iv, theirs)
    assert back == data
