"""SM2 and SM4 interop with the OpenSSL 3 command line: openssl signs/encrypts and govctl
verifies/decrypts, and the reverse, with the default and a custom distinguishing ID."""
from __future__ import annotations

import re
import subprocess

import pytest

from crypto import primitives
from crypto.sm2 import GmalgBackend, SM2PrivateKey, SM2PublicKey
from crypto.sm2_openssl import OpenSSLBackend

MESSAGE = "两地三中心 drill report, 2026-11".encode()


@pytest.fixture(params=["gmalg", "openssl"])
def backend(request):
    """Each test runs with both SM2 backends."""
    return GmalgBackend() if request.param == "gmalg" else OpenSSLBackend()


def public_from_pem(path, backend) -> SM2PublicKey:
    return SM2PublicKey(SM2PublicKey.from_pem(path.read_text()).point, backend)


def openssl(*args: str, input: bytes | None = None) -> bytes:
    return subprocess.run(["openssl", *args], input=input, capture_output=True, check=True).stdout


@pytest.fixture
def openssl_key(tmp_path, backend):
    """An SM2 key pair made by openssl: (private PEM path, public PEM path, govctl private key)."""
    private_pem = tmp_path / "sm2.pem"
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2", "-out", str(private_pem))
    public_pem = tmp_path / "sm2.pub.pem"
    openssl("pkey", "-in", str(private_pem), "-pubout", "-out", str(public_pem))
    text = openssl("pkey", "-in", str(private_pem), "-text", "-noout").decode()
    scalar = re.search(r"priv:\s*((?:[0-9a-f]{2}:?\s*)+)pub:", text).group(1)
    private = SM2PrivateKey.from_bytes(bytes.fromhex(re.sub(r"[:\s]", "", scalar)).rjust(32, b"\0"), backend)
    return private_pem, public_pem, private


@pytest.mark.parametrize("uid", ["1234567812345678", "govctl@egov.example"])
def test_openssl_signs_govctl_verifies(openssl_key, tmp_path, uid, backend):
    private_pem, public_pem, _ = openssl_key
    (tmp_path / "msg").write_bytes(MESSAGE)
    signature = openssl("pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-inkey", str(private_pem),
                        "-pkeyopt", f"distid:{uid}", "-in", str(tmp_path / "msg"))
    public = public_from_pem(public_pem, backend)
    assert public.verify(MESSAGE, signature, uid.encode())
    assert not public.verify(MESSAGE, signature, b"another id")
    assert not public.verify(MESSAGE + b".", signature, uid.encode())


@pytest.mark.parametrize("uid", ["1234567812345678", "govctl@egov.example"])
def test_govctl_signs_openssl_verifies(tmp_path, uid, backend):
    key = SM2PrivateKey.generate(backend)
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


def test_govctl_encrypts_openssl_decrypts(openssl_key, tmp_path, backend):
    private_pem, public_pem, private = openssl_key
    ciphertext = public_from_pem(public_pem, backend).encrypt(MESSAGE)
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


def test_backends_interoperate_in_process(backend):
    other = OpenSSLBackend() if isinstance(backend, GmalgBackend) else GmalgBackend()
    key = SM2PrivateKey.generate(backend)
    twin = SM2PrivateKey.from_bytes(key.to_bytes(), other)
    assert twin.public_key().point == key.public_key().point
    assert twin.public_key().verify(MESSAGE, key.sign(MESSAGE, b"x@egov"), b"x@egov")
    assert twin.decrypt(key.public_key().encrypt(MESSAGE)) == MESSAGE


def _openssl_hex(*args: str, input: bytes | None = None) -> str:
    out = openssl(*args, input=input).decode()
    return out.split("= ")[-1].replace(":", "").strip().lower()


def test_hmac_hkdf_pbkdf2_with_sm3_match_openssl():
    key, salt, info = b"k" * 20, bytes.fromhex("0a0b0c0d"), "两地三中心".encode()
    assert primitives.hmac("sm3", key, MESSAGE).hex() == _openssl_hex("dgst", "-sm3", "-hmac", key.decode(),
                                                                       input=MESSAGE)
    assert primitives.hkdf("sm3", key, 32, info, salt).hex() == _openssl_hex(
        "kdf", "-keylen", "32", "-kdfopt", "digest:SM3", "-kdfopt", f"hexkey:{key.hex()}",
        "-kdfopt", f"hexsalt:{salt.hex()}", "-kdfopt", f"hexinfo:{info.hex()}", "HKDF")
    assert primitives.pbkdf2("sm3", b"passphrase", salt, 2000, 32).hex() == _openssl_hex(
        "kdf", "-keylen", "32", "-kdfopt", "digest:SM3", "-kdfopt", "pass:passphrase",
        "-kdfopt", f"hexsalt:{salt.hex()}", "-kdfopt", "iter:2000", "PBKDF2")
