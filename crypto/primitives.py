"""Symmetric primitives through pyca `cryptography` (its bundled OpenSSL): SM3 / SHA-256 hashes,
HMAC, HKDF, PBKDF2, SM4 / AES-256 in GCM (new data) and SM4 in CBC / CTR / ECB (interop with
older systems). Algorithms are named by strings ("sm3", "sm4-gcm", ...) so a suite can choose them."""
from __future__ import annotations

from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives import hmac as _hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from .errors import BadInput, IntegrityError

HASHES = {"sm3": hashes.SM3, "sha256": hashes.SHA256}
# AEAD name -> (block cipher, key length in bytes); both use a 96-bit nonce and a 128-bit tag.
AEADS = {"sm4-gcm": (algorithms.SM4, 16), "aes-256-gcm": (algorithms.AES, 32)}
NONCE_LEN = 12
TAG_LEN = 16
SM4_BLOCK = 16


def _hash_alg(alg: str) -> hashes.HashAlgorithm:
    try:
        return HASHES[alg]()
    except KeyError:
        raise BadInput(f"hash algorithm {alg!r} is unknown; use one of {', '.join(HASHES)}") from None


def new_hash(alg: str) -> hashes.Hash:
    """A streaming hash context (update(), finalize())."""
    return hashes.Hash(_hash_alg(alg))


def digest(alg: str, data: bytes) -> bytes:
    h = new_hash(alg)
    h.update(data)
    return h.finalize()


def digest_stream(alg: str, stream: BinaryIO, chunk: int = 1 << 20) -> bytes:
    h = new_hash(alg)
    while block := stream.read(chunk):
        h.update(block)
    return h.finalize()


def hmac(alg: str, key: bytes, data: bytes) -> bytes:
    mac = _hmac.HMAC(key, _hash_alg(alg))
    mac.update(data)
    return mac.finalize()


def hkdf(alg: str, key: bytes, length: int, info: bytes, salt: bytes | None = None) -> bytes:
    return HKDF(_hash_alg(alg), length, salt, info).derive(key)


def pbkdf2(alg: str, password: bytes, salt: bytes, iterations: int, length: int) -> bytes:
    return PBKDF2HMAC(_hash_alg(alg), length, salt, iterations).derive(password)


def aead_key_len(alg: str) -> int:
    try:
        return AEADS[alg][1]
    except KeyError:
        raise BadInput(f"AEAD algorithm {alg!r} is unknown; use one of {', '.join(AEADS)}") from None


def _aead_cipher(alg: str, key: bytes, mode) -> Cipher:
    key_len = aead_key_len(alg)
    if len(key) != key_len:
        raise BadInput(f"{alg} needs a {key_len}-byte key, got {len(key)} bytes")
    return Cipher(AEADS[alg][0](key), mode)


def aead_encrypt(alg: str, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """Ciphertext followed by the 16-byte tag."""
    enc = _aead_cipher(alg, key, modes.GCM(nonce)).encryptor()
    enc.authenticate_additional_data(aad)
    body = enc.update(plaintext) + enc.finalize()
    return body + enc.tag


def aead_decrypt(alg: str, key: bytes, nonce: bytes, sealed: bytes, aad: bytes = b"",
                 what: str = "ciphertext") -> bytes:
    """Plaintext, or IntegrityError when the key, the AAD or any byte is wrong."""
    if len(sealed) < TAG_LEN:
        raise IntegrityError(f"{what} is truncated (shorter than its authentication tag)")
    dec = _aead_cipher(alg, key, modes.GCM(nonce, sealed[-TAG_LEN:])).decryptor()
    dec.authenticate_additional_data(aad)
    body = dec.update(sealed[:-TAG_LEN])
    try:
        return body + dec.finalize()
    except InvalidTag:
        raise IntegrityError(f"{what} failed authentication: wrong key or context, or the data "
                             "was altered or truncated") from None


def _sm4(key: bytes, mode) -> Cipher:
    if len(key) != 16:
        raise BadInput(f"SM4 needs a 16-byte key, got {len(key)} bytes")
    return Cipher(algorithms.SM4(key), mode)


def sm4_ecb_encrypt_block(key: bytes, block: bytes) -> bytes:
    """One raw SM4 block (the GB/T 32907 known-answer vectors are single blocks)."""
    if len(block) != SM4_BLOCK:
        raise BadInput("SM4 ECB works on one 16-byte block")
    enc = _sm4(key, modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def sm4_cbc_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    """SM4-CBC with PKCS#7 padding (no integrity: for interop only; new data uses SM4-GCM)."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    enc = _sm4(key, modes.CBC(iv)).encryptor()
    return enc.update(padded) + enc.finalize()


def sm4_cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    if len(ciphertext) % SM4_BLOCK:
        raise IntegrityError("SM4-CBC ciphertext is not a whole number of blocks (truncated?)")
    dec = _sm4(key, modes.CBC(iv)).decryptor()
    padded = dec.update(ciphertext) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise IntegrityError("SM4-CBC padding is invalid: wrong key or altered data") from None


def sm4_ctr(key: bytes, counter_block: bytes, data: bytes) -> bytes:
    """SM4-CTR keystream XOR (encrypts and decrypts; no integrity: interop only)."""
    ctx = _sm4(key, modes.CTR(counter_block)).encryptor()
    return ctx.update(data) + ctx.finalize()
