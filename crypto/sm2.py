"""SM2 (GB/T 32918 / GM/T 0003) signatures and public-key encryption.

The arithmetic sits behind `SM2Backend`; the backends are registered by name in `BACKENDS` and
imported when chosen: openssl (sm2_openssl.py, the system libcrypto; the default where it passes
the standard's known answers, sm2_kat.py) or gmalg (pure Python, nonces from `secrets`; the
fallback). The curve and its encodings are in sm2_curve.py. This module wraps any backend
strictly: public points and ciphertext points are checked to lie on the curve, private keys and
signature values to lie in range, the signer's distinguishing ID (default 1234567812345678) goes
into Z_A as the standard says, signatures are DER SEQUENCE{r, s}, ciphertexts are C1C3C2 in
GM/T 0009 DER (raw C1||C3||C2 also read)."""
from __future__ import annotations

import base64
import importlib
import importlib.metadata
import logging
import threading
from dataclasses import dataclass
from typing import Callable, Protocol

from .errors import BadInput, CryptoError, IntegrityError, UnsupportedError
# The curve and its encodings live in sm2_curve, where backends use them without importing this
# module; callers know P, N, the ID and the codecs as SM2's, so they are importable from here too.
from .sm2_curve import (C3_LEN, DEFAULT_ID, N, P, Point, be32, check_id, decode_ciphertext,  # noqa: F401
                        decode_signature, encode_ciphertext, encode_signature, on_curve, parse_point,
                        point_bytes, public_key_der, public_key_point_bytes, za)


class SM2Backend(Protocol):
    """The SM2 arithmetic. Inputs arrive validated; outputs are checked by the wrapper."""

    name: str
    version: str  # what it runs on, for `govctl crypto backends`

    def generate_private(self) -> int: ...
    def public_point(self, d: int) -> Point: ...
    def sign(self, d: int, public: Point, uid: bytes, message: bytes) -> tuple[int, int]: ...
    def verify(self, public: Point, uid: bytes, message: bytes, r: int, s: int) -> bool: ...
    def encrypt(self, public: Point, plaintext: bytes) -> tuple[Point, bytes, bytes]:
        """(C1, C3, C2)."""
    def decrypt(self, d: int, c1: Point, c3: bytes, c2: bytes) -> bytes:
        """Plaintext, or IntegrityError when C3 does not match."""


class GmalgBackend:
    """SM2 through gmalg. `nonce_source` replaces `secrets.randbits` only for the standard's
    fixed-k known-answer tests; leave it unset everywhere else."""

    name = "gmalg"

    def __init__(self, nonce_source: Callable[[int], int] | None = None):
        import gmalg  # imported here: it costs start-up time and only SM2 users need it

        self._gmalg = gmalg
        self._nonce_source = nonce_source
        self.version = f"gmalg {importlib.metadata.version('gmalg')} (pure Python)"

    def _sm2(self, d: int | None = None, public: Point | None = None, uid: bytes | None = None):
        return self._gmalg.SM2(be32(d) if d else None, uid, point_bytes(public) if public else None,
                               rnd_fn=self._nonce_source)

    def generate_private(self) -> int:
        d, _ = self._sm2().generate_keypair()
        return int.from_bytes(d, "big")

    def public_point(self, d: int) -> Point:
        raw = self._sm2().generate_pk(be32(d))
        return int.from_bytes(raw[1:33], "big"), int.from_bytes(raw[33:65], "big")

    def sign(self, d, public, uid, message):
        r, s = self._sm2(d, public, uid).sign(message)
        return int.from_bytes(r, "big"), int.from_bytes(s, "big")

    def verify(self, public, uid, message, r, s):
        return self._sm2(public=public, uid=uid).verify(message, be32(r), be32(s))

    def encrypt(self, public, plaintext):
        raw = self._sm2(public=public).encrypt(plaintext)  # C1 (uncompressed) || C3 || C2
        c1 = int.from_bytes(raw[1:33], "big"), int.from_bytes(raw[33:65], "big")
        return c1, raw[65:65 + C3_LEN], raw[65 + C3_LEN:]

    def decrypt(self, d, c1, c3, c2):
        try:
            return self._sm2(d).decrypt(encode_ciphertext(c1, c3, c2, "raw"))
        except self._gmalg.errors.GMError:
            raise IntegrityError("SM2 ciphertext failed its integrity check (C3): wrong private "
                                 "key, or the ciphertext was altered") from None


# The backends by the name the crypto configuration gives (`sm2_backend`): "module:class",
# imported when first chosen, so this module depends on no backend but its own fallback.
BACKENDS = {
    "gmalg": "crypto.sm2:GmalgBackend",
    "openssl": "crypto.sm2_openssl:OpenSSLBackend",
}
# What `sm2_backend: auto` (the default) tries, fastest first: the first backend that loads and
# passes the standard's known answers (sm2_kat) becomes the default; gmalg is the fallback.
AUTO_ORDER = ("openssl", "gmalg")
AUTO = "auto"
_default = {"name": AUTO, "instance": None, "selection": None}
_choosing = threading.Lock()
log = logging.getLogger(__name__)


def _registered(name: str) -> str:
    if name not in BACKENDS:
        raise BadInput(f"SM2 backend {name!r} is unknown; use {AUTO} or one of {', '.join(BACKENDS)}")
    return BACKENDS[name]


def use_backend(name: str) -> None:
    """Make `name` (or "auto") the backend of keys created without one (set from the configuration)."""
    if name != AUTO:
        _registered(name)
    if name != _default["name"]:
        with _choosing:
            _default.update(name=name, instance=None, selection=None)


def choose_again() -> None:
    """Forget the default backend: the next use creates (for auto: checks and chooses) it anew,
    e.g. after the registry changed."""
    with _choosing:
        _default.update(instance=None, selection=None)


def create_backend(name: str) -> SM2Backend:
    """A new instance of the backend registered as `name`."""
    module, cls = _registered(name).split(":")
    return getattr(importlib.import_module(module), cls)()


def check_backend(name: str) -> tuple[SM2Backend | None, str]:
    """(an instance of `name`, "") when it loads and passes the known answers, else (None, why)."""
    from . import sm2_kat

    try:
        backend = create_backend(name)
        sm2_kat.check(backend)
    except ImportError as exc:
        return None, f"cannot be imported ({exc.name})"
    except sm2_kat.KnownAnswerFailure as exc:
        return None, f"failed a GB/T 32918 known-answer vector: {exc}"
    except Exception as exc:  # a backend that cannot start or breaks on a vector is not used
        return None, f"{type(exc).__name__}: {exc}"
    return backend, ""


def _choose() -> tuple[SM2Backend, dict]:
    refused = {}
    for name in AUTO_ORDER:
        backend, why = check_backend(name)
        if backend is not None:
            reason = (f"the first of {', '.join(AUTO_ORDER)} to pass the GB/T 32918 known answers"
                      + "".join(f"; {other} refused: {why}" for other, why in refused.items()))
            if refused:
                log.warning("SM2 backend %s in use (slower): %s", name,
                            "; ".join(f"{other} {why}" for other, why in refused.items()))
            return backend, {"backend": name, "configured": AUTO, "reason": reason, "refused": refused}
        refused[name] = why
    raise UnsupportedError("no SM2 backend passed the GB/T 32918 known answers: "
                           + "; ".join(f"{name} {why}" for name, why in refused.items())
                           + ": run `make setup` (gmalg) or install OpenSSL 3 (libssl3)")


def default_backend() -> SM2Backend:
    if _default["instance"] is None:
        with _choosing:  # two threads starting at once check the backends once
            if _default["instance"] is None:
                name = _default["name"]
                if name == AUTO:
                    backend, selection = _choose()
                else:
                    backend = create_backend(name)
                    selection = {"backend": name, "configured": name, "refused": {},
                                 "reason": f"chosen by `sm2_backend: {name}` in the crypto configuration"}
                _default.update(instance=backend, selection=selection)
    return _default["instance"]


def report() -> dict:
    """The default backend and why, and every registered backend's known-answer result (runs
    them all: for `govctl crypto backends`)."""
    chosen = selection()
    backends = {}
    for name in BACKENDS:
        backend, why = check_backend(name)
        backends[name] = {"passed": backend is not None, "detail": why or "passed the GB/T 32918 known answers",
                          "version": getattr(backend, "version", None)}
    return {"in_use": chosen["backend"], "version": getattr(default_backend(), "version", None),
            "configured": chosen["configured"], "reason": chosen["reason"],
            "order": list(AUTO_ORDER), "backends": backends}


def selection() -> dict:
    """Which backend is the default and why: backend, configured (auto or a name), reason, and
    refused (backend -> why, for auto)."""
    while True:  # a configuration applied meanwhile by another thread makes it choose again
        default_backend()
        chosen = _default["selection"]
        if chosen is not None:
            return dict(chosen)


@dataclass(frozen=True)
class SM2PublicKey:
    point: Point
    backend: SM2Backend | None = None

    alg = "sm2"

    def __post_init__(self):
        if not on_curve(self.point):
            raise BadInput("SM2 public key is not a point on the SM2 curve")

    @classmethod
    def from_bytes(cls, data: bytes, backend: SM2Backend | None = None) -> "SM2PublicKey":
        return cls(parse_point(data, "SM2 public key"), backend)

    @classmethod
    def from_der(cls, spki: bytes) -> "SM2PublicKey":
        """SubjectPublicKeyInfo as written by `openssl pkey -pubout -outform DER`."""
        return cls.from_bytes(public_key_point_bytes(spki, "public key"))

    @classmethod
    def from_pem(cls, pem: str) -> "SM2PublicKey":
        body = "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))
        return cls.from_der(base64.b64decode(body))

    def to_bytes(self) -> bytes:
        return point_bytes(self.point)

    def to_der(self) -> bytes:
        return public_key_der(self.point)

    def to_pem(self) -> str:
        b64 = base64.b64encode(self.to_der()).decode()
        lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
        return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"

    def za(self, uid: bytes = DEFAULT_ID) -> bytes:
        """Z_A = SM3(ENTL_A || ID_A || a || b || x_G || y_G || x_A || y_A)."""
        return za(self.point, uid)

    def verify(self, message: bytes, signature: bytes, uid: bytes = DEFAULT_ID) -> bool:
        check_id(uid)
        try:
            r, s = decode_signature(signature)
        except (BadInput, IntegrityError):
            return False
        if not (1 <= r < N and 1 <= s < N):
            return False
        return bool((self.backend or default_backend()).verify(self.point, uid, message, r, s))

    def encrypt(self, plaintext: bytes, encoding: str = "der") -> bytes:
        """C1C3C2, in GM/T 0009 DER (`encoding="der"`) or raw 04||x||y||C3||C2 (`"raw"`)."""
        if not plaintext:
            raise BadInput("SM2 encryption needs at least one byte of plaintext")
        (x, y), c3, c2 = (self.backend or default_backend()).encrypt(self.point, plaintext)
        if not on_curve((x, y)) or len(c3) != C3_LEN or len(c2) != len(plaintext):
            raise CryptoError("SM2 backend returned a malformed ciphertext")
        return encode_ciphertext((x, y), c3, c2, encoding)


class SM2PrivateKey:
    alg = "sm2"

    def __init__(self, d: int, backend: SM2Backend | None = None):
        if not 1 <= d <= N - 2:
            raise BadInput("SM2 private key is out of range [1, n-2]")
        self._d = d
        self._backend = backend or default_backend()
        self._public = SM2PublicKey(self._backend.public_point(d), self._backend)

    def __repr__(self) -> str:  # never show the scalar
        return f"SM2PrivateKey(public={self._public.to_bytes().hex()[:18]}…)"

    @classmethod
    def generate(cls, backend: SM2Backend | None = None) -> "SM2PrivateKey":
        backend = backend or default_backend()
        return cls(backend.generate_private(), backend)

    @classmethod
    def from_bytes(cls, data: bytes, backend: SM2Backend | None = None) -> "SM2PrivateKey":
        if len(data) != 32:
            raise BadInput("SM2 private key must be 32 bytes")
        return cls(int.from_bytes(data, "big"), backend)

    def to_bytes(self) -> bytes:
        return be32(self._d)

    def public_key(self) -> SM2PublicKey:
        return self._public

    def sign(self, message: bytes, uid: bytes = DEFAULT_ID) -> bytes:
        r, s = self._backend.sign(self._d, self._public.point, check_id(uid), message)
        if not (1 <= r < N and 1 <= s < N):
            raise CryptoError("SM2 backend returned an out-of-range signature")
        return encode_signature(r, s)

    def decrypt(self, ciphertext: bytes) -> bytes:
        c1, c3, c2 = decode_ciphertext(ciphertext)
        return self._backend.decrypt(self._d, c1, c3, c2)
