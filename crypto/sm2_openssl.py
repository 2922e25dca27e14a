"""An SM2 backend on the system's OpenSSL 3 libcrypto (through ctypes), the default where that
libcrypto has SM2 and passes the standard's known answers (sm2_kat.py; sm2.py chooses).

govctl computes Z_A (cached per key and ID) and e = SM3(Z_A || M) itself and OpenSSL signs and
verifies e, drawing the nonce k itself; encryption goes through OpenSSL's SM2 EVP_PKEY_encrypt
(GM/T 0009 DER). Keys enter OpenSSL as DER (SEC1 ECPrivateKey / SubjectPublicKeyInfo on the SM2
curve) once: the backend keeps the keys used last, each with a context initialised once, so a
signature costs one SM3 in Python and one call into libcrypto.

`sm2_backend: openssl` in the crypto configuration forces it (sm2.BACKENDS names it; this module
uses the curve and encodings of sm2_curve and never imports the wrapper)."""
from __future__ import annotations

import ctypes
import ctypes.util
import secrets
import threading
import weakref
from collections import OrderedDict

from . import der
from .errors import CryptoError, IntegrityError, UnsupportedError
from .sm2_curve import (N, SM2_CURVE_OID, Point, be32, decode_ciphertext, decode_signature, encode_ciphertext,
                        encode_signature, parse_point, point_bytes, public_key_der, public_key_point_bytes,
                        signed_digest)

_c = ctypes
_P = _c.c_void_p


def _load():
    name = ctypes.util.find_library("crypto")
    if not name:
        raise UnsupportedError("libcrypto (OpenSSL 3) is not installed: install the libssl3 package "
                               "or set `sm2_backend: gmalg`")
    lib = _c.CDLL(name)
    if lib.OpenSSL_version_num() < 0x30000000:
        raise UnsupportedError("the SM2 openssl backend needs OpenSSL 3; set `sm2_backend: gmalg`")
    signatures = {
        "d2i_AutoPrivateKey": (_P, [_P, _c.POINTER(_c.c_char_p), _c.c_long]),
        "d2i_PUBKEY": (_P, [_P, _c.POINTER(_c.c_char_p), _c.c_long]),
        "i2d_PUBKEY": (_c.c_int, [_P, _c.POINTER(_c.c_char_p)]),
        "EVP_PKEY_free": (None, [_P]),
        "EVP_PKEY_CTX_new": (_P, [_P, _P]),
        "EVP_PKEY_CTX_free": (None, [_P]),
        "EVP_PKEY_sign_init": (_c.c_int, [_P]),
        "EVP_PKEY_sign": (_c.c_int, [_P, _c.c_char_p, _c.POINTER(_c.c_size_t), _c.c_char_p, _c.c_size_t]),
        "EVP_PKEY_verify_init": (_c.c_int, [_P]),
        "EVP_PKEY_verify": (_c.c_int, [_P, _c.c_char_p, _c.c_size_t, _c.c_char_p, _c.c_size_t]),
        "EVP_PKEY_encrypt_init": (_c.c_int, [_P]),
        "EVP_PKEY_encrypt": (_c.c_int, [_P, _c.c_char_p, _c.POINTER(_c.c_size_t), _c.c_char_p, _c.c_size_t]),
        "EVP_PKEY_decrypt_init": (_c.c_int, [_P]),
        "EVP_PKEY_decrypt": (_c.c_int, [_P, _c.c_char_p, _c.POINTER(_c.c_size_t), _c.c_char_p, _c.c_size_t]),
        "CRYPTO_free": (None, [_P, _c.c_char_p, _c.c_int]),
        "OpenSSL_version": (_c.c_char_p, [_c.c_int]),
        "EVP_PKEY_CTX_new_from_name": (_P, [_P, _c.c_char_p, _c.c_char_p]),
        "ERR_clear_error": (None, []),
    }
    for fn, (restype, argtypes) in signatures.items():
        getattr(lib, fn).restype, getattr(lib, fn).argtypes = restype, argtypes
    probe = lib.EVP_PKEY_CTX_new_from_name(None, b"SM2", None)
    if not probe:
        lib.ERR_clear_error()
        raise UnsupportedError(f"{version(lib)} ({name}) has no SM2: built with no-sm2, or its default "
                               "provider is not loaded (check OPENSSL_CONF)")
    lib.EVP_PKEY_CTX_free(probe)
    return lib


def version(lib) -> str:
    return lib.OpenSSL_version(0).decode()  # OPENSSL_VERSION: "OpenSSL 3.0.19 27 Jan 2026"


class _Key:
    """One key inside OpenSSL: its EVP_PKEY, its public point, and a context initialised once for
    its hot operation (sign for a private key, verify for a public one: OpenSSL lets either run
    again and again after one init). `lock` guards the context; a thread that finds it taken
    uses a context of its own for that call instead of waiting."""

    __slots__ = ("pkey", "ctx", "public", "lock", "__weakref__")


class _KeyCache:
    """The keys used last, at most `size`, each decoded into OpenSSL once (decoding DER costs
    OpenSSL 3.0 about half a millisecond, more than the signature itself). An evicted key is
    freed when no thread uses it any more (weakref.finalize)."""

    def __init__(self, size: int):
        self._size, self._entries, self._lock = size, OrderedDict(), threading.Lock()

    def get(self, cache_key, make):
        with self._lock:
            entry = self._entries.get(cache_key)
            if entry is not None:
                self._entries.move_to_end(cache_key)
                return entry
        entry = make()  # outside the lock: it takes long and other keys need not wait
        with self._lock:
            entry = self._entries.setdefault(cache_key, entry)
            self._entries.move_to_end(cache_key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return entry


def _free(lib, ctx, pkey) -> None:
    lib.EVP_PKEY_CTX_free(ctx)
    lib.EVP_PKEY_free(pkey)


class OpenSSLBackend:
    name = "openssl"
    SIGNATURE_MAX = 72  # DER SEQUENCE of two 33-byte INTEGERs at most (ECDSA_size for a 256-bit n)

    def __init__(self, cache_size: int = 256):
        self._lib = _load()
        self.version = version(self._lib)
        self._private_keys = _KeyCache(cache_size)
        self._public_keys = _KeyCache(cache_size)

    # -- keys in and out of OpenSSL ---------------------------------------------------------
    def _decode(self, fn: str, data: bytes):
        buffer = _c.c_char_p(data)
        key = getattr(self._lib, fn)(None, _c.byref(buffer), len(data))
        if not key:
            self._lib.ERR_clear_error()
            raise CryptoError(f"OpenSSL refused an SM2 key ({fn}): this libcrypto may lack SM2")
        return key

    def _context(self, pkey, init: str):
        ctx = self._lib.EVP_PKEY_CTX_new(pkey, None)
        if not ctx or getattr(self._lib, init)(ctx) != 1:
            self._lib.EVP_PKEY_CTX_free(ctx)
            self._lib.ERR_clear_error()
            raise CryptoError(f"OpenSSL {init} failed on an SM2 key: this libcrypto may lack SM2")
        return ctx

    def _entry(self, pkey, init: str, public: Point | None) -> _Key:
        entry = _Key()
        try:
            entry.ctx = self._context(pkey, init)
        except CryptoError:
            self._lib.EVP_PKEY_free(pkey)
            raise
        entry.pkey, entry.lock = pkey, threading.Lock()
        weakref.finalize(entry, _free, self._lib, entry.ctx, pkey).atexit = False
        entry.public = public or self._export_public(pkey)
        return entry

    def _private_key(self, d: int, public: Point | None = None) -> _Key:
        """The cached key of scalar d (OpenSSL holds d in the key anyway, as SM2PrivateKey does).
        SEC1 ECPrivateKey; without the public key OpenSSL computes it (a point multiplication)."""
        def make():
            fields = [der.integer(1), der.octet_string(be32(d)), der.tlv(0xA0, der.oid(SM2_CURVE_OID))]
            if public:
                fields.append(der.tlv(0xA1, der.bit_string(point_bytes(public))))
            return self._entry(self._decode("d2i_AutoPrivateKey", der.sequence(*fields)), "EVP_PKEY_sign_init", public)

        entry = self._private_keys.get(d, make)
        if public is not None and entry.public != public:
            raise CryptoError("SM2 public key given with a private key is not its own")
        return entry

    def _public_key(self, point: Point) -> _Key:
        return self._public_keys.get(point, lambda: self._entry(
            self._decode("d2i_PUBKEY", public_key_der(point)), "EVP_PKEY_verify_init", point))

    def _export_public(self, pkey) -> Point:
        out = _c.c_char_p(None)
        length = self._lib.i2d_PUBKEY(pkey, _c.byref(out))
        if length <= 0:
            self._lib.ERR_clear_error()
            raise CryptoError("OpenSSL could not export an SM2 public key")
        spki = _c.string_at(out, length)
        self._lib.CRYPTO_free(out, None, 0)
        what = "the public key OpenSSL exported"
        return parse_point(public_key_point_bytes(spki, what, CryptoError), what, CryptoError)

    def _on_context(self, entry: _Key, init: str, call):
        """call(ctx) on the key's own context, or on a fresh one while another thread has it."""
        if entry.lock.acquire(blocking=False):
            try:
                return call(entry.ctx)
            finally:
                entry.lock.release()
        ctx = self._context(entry.pkey, init)
        try:
            return call(ctx)
        finally:
            self._lib.EVP_PKEY_CTX_free(ctx)

    def _run(self, pkey, init: str, op: str, data: bytes) -> bytes:
        """A one-off operation (encryption) on a fresh context: sized first, then done."""
        ctx = self._context(pkey, init)
        try:
            size = _c.c_size_t(0)
            if getattr(self._lib, op)(ctx, None, _c.byref(size), data, len(data)) != 1:
                raise CryptoError(f"OpenSSL {op} failed")
            out = _c.create_string_buffer(size.value)
            if getattr(self._lib, op)(ctx, out, _c.byref(size), data, len(data)) != 1:
                self._lib.ERR_clear_error()
                raise IntegrityError(f"OpenSSL {op} failed: wrong key, or the data was altered")
            return out.raw[:size.value]
        finally:
            self._lib.EVP_PKEY_CTX_free(ctx)

    # -- SM2Backend -------------------------------------------------------------------------
    def generate_private(self) -> int:
        return 1 + secrets.randbelow(N - 2)  # uniform in [1, n-2]

    def public_point(self, d: int) -> Point:
        return self._private_key(d).public

    def sign(self, d, public, uid, message):
        entry, e = self._private_key(d, public), signed_digest(public, uid, message)

        def sign_on(ctx) -> bytes:
            out, size = _c.create_string_buffer(self.SIGNATURE_MAX), _c.c_size_t(self.SIGNATURE_MAX)
            if self._lib.EVP_PKEY_sign(ctx, out, _c.byref(size), e, len(e)) != 1:
                self._lib.ERR_clear_error()
                raise CryptoError("OpenSSL EVP_PKEY_sign failed")
            return out.raw[:size.value]

        return decode_signature(self._on_context(entry, "EVP_PKEY_sign_init", sign_on))

    def verify(self, public, uid, message, r, s):
        entry = self._public_key(public)
        signature, e = encode_signature(r, s), signed_digest(public, uid, message)

        def verify_on(ctx) -> bool:
            valid = self._lib.EVP_PKEY_verify(ctx, signature, len(signature), e, len(e)) == 1
            if not valid:
                self._lib.ERR_clear_error()
            return valid

        return self._on_context(entry, "EVP_PKEY_verify_init", verify_on)

    def encrypt(self, public, plaintext):
        return decode_ciphertext(self._run(self._public_key(public).pkey, "EVP_PKEY_encrypt_init",
                                           "EVP_PKEY_encrypt", plaintext))

    def decrypt(self, d, c1, c3, c2):
        try:
            return self._run(self._private_key(d).pkey, "EVP_PKEY_decrypt_init", "EVP_PKEY_decrypt",
                             encode_ciphertext(c1, c3, c2))
        except IntegrityError:
            raise IntegrityError("SM2 ciphertext failed its integrity check (C3): wrong private "
                                 "key, or the ciphertext was altered") from None
