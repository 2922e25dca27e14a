"""The strict SM2 wrapper: bad points, out-of-range values, altered or truncated ciphertexts and
malformed DER are refused with clear errors; nonces are fresh."""
from __future__ import annotations

import pytest

from crypto import der
from crypto.errors import BadInput, IntegrityError
from crypto.sm2 import GmalgBackend, N, P, SM2PrivateKey, SM2PublicKey, decode_signature, encode_signature
from crypto.sm2_openssl import OpenSSLBackend


@pytest.fixture(scope="module", params=["gmalg", "openssl"])
def key(request) -> SM2PrivateKey:
    """A key on each SM2 backend: the wrapper's guarantees hold for both."""
    return SM2PrivateKey.generate(GmalgBackend() if request.param == "gmalg" else OpenSSLBackend())


def test_public_key_off_the_curve_is_refused(key):
    raw = bytearray(key.public_key().to_bytes())
    raw[-1] ^= 1
    with pytest.raises(BadInput, match="not a point on the SM2 curve"):
        SM2PublicKey.from_bytes(bytes(raw))
    with pytest.raises(BadInput, match="uncompressed point"):
        SM2PublicKey.from_bytes(raw[:33])
    with pytest.raises(BadInput, match="not a point"):
        SM2PublicKey((P, 0))  # coordinates must be field elements


def test_private_key_range():
    for bad in (0, N - 1, N):
        with pytest.raises(BadInput, match="out of range"):
            SM2PrivateKey(bad)


def test_signatures_are_randomized_and_out_of_range_values_fail(key):
    first, second = key.sign(b"m"), key.sign(b"m")
    assert first != second  # a fresh k each time
    public = key.public_key()
    assert public.verify(b"m", first) and public.verify(b"m", second)
    r, s = decode_signature(first)
    assert not public.verify(b"m", encode_signature(r, s + N))
    assert not public.verify(b"m", encode_signature(0, s))
    assert not public.verify(b"m", encode_signature(r, N - s))


def test_signature_der_must_be_minimal(key):
    r, s = decode_signature(key.sign(b"m"))
    padded = der.sequence(der.tlv(der.INTEGER, b"\x00" + der.integer(r)[2:]), der.integer(s))
    with pytest.raises(IntegrityError, match="minimal"):
        decode_signature(padded)
    assert not key.public_key().verify(b"m", padded)
    assert key.public_key().verify(b"m", r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def test_distinguishing_id_is_bound(key):
    signature = key.sign(b"m", b"alice@egov")
    assert key.public_key().verify(b"m", signature, b"alice@egov")
    assert not key.public_key().verify(b"m", signature)
    with pytest.raises(BadInput, match="8191"):
        key.sign(b"m", b"x" * 8192)
    with pytest.raises(BadInput, match="distid:1234567812345678"):
        key.public_key().verify(b"m", signature, b"")


def test_ciphertext_altered_anywhere_or_truncated_is_refused(key):
    ciphertext = key.public_key().encrypt(b"secret data")
    assert key.decrypt(ciphertext) == b"secret data"
    for position in range(len(ciphertext)):
        altered = bytearray(ciphertext)
        altered[position] ^= 0x01
        with pytest.raises((IntegrityError, BadInput)):
            key.decrypt(bytes(altered))
    for length in range(len(ciphertext)):
        with pytest.raises(IntegrityError):
            key.decrypt(ciphertext[:length])


def test_raw_c1c3c2_and_wrong_key(key):
    raw = key.public_key().encrypt(b"abc", encoding="raw")
    assert raw[0] == 4 and len(raw) == 65 + 32 + 3
    assert key.decrypt(raw) == b"abc"
    with pytest.raises(IntegrityError, match="C3"):
        SM2PrivateKey.generate(key.public_key().backend).decrypt(raw)
    with pytest.raises(BadInput, match="at least one byte"):
        key.public_key().encrypt(b"")


def test_private_key_repr_hides_the_scalar(key):
    assert key.to_bytes().hex() not in repr(key)
