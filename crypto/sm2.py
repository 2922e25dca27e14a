"""SM2 (GB/T 32918 / GM/T 0003) signatures and public-key encryption.

The arithmetic sits behind `SM2Backend`; the default backend is gmalg (pure Python, nonces from
`secrets`). This module wraps any backend strictly: public points and ciphertext points are
checked to lie on the curve, private keys and signature values to lie in range, the signer's
distinguishing ID (default 1234567812345678) goes into Z_A as the standard says, signatures are
DER SEQUENCE{r, s}, ciphertexts are C1C3C2 in GM/T 0009 DER (raw C1||C3||C2 also read)."""
from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Callable, Protocol

from . import der
from .errors import BadInput, CryptoError, IntegrityError
from .primitives import digest

# The recommended curve of GB/T 32918.5.
P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0
DEFAULT_ID = b"1234567812345678"
EC_PUBLIC_KEY_OID = "1.2.840.10045.2.1"
SM2_CURVE_OID = "1.2.156.10197.1.301"
C3_LEN = 32

Point = tuple[int, int]


def _be32(n: int) -> bytes:
    return n.to_bytes(32, "big")


def on_curve(point: Point) -> bool:
    x, y = point
    return 0 <= x < P and 0 <= y < P and (y * y - (x * x * x + A * x + B)) % P == 0


def check_id(uid: bytes) -> bytes:
    if not uid:
        # OpenSSL's `pkeyutl -sign -rawin` uses an empty ID unless given -pkeyopt distid:...
        raise BadInput("SM2 distinguishing ID is empty; give one (the standard default is "
                       "1234567812345678; with openssl pass -pkeyopt distid:1234567812345678)")
    if len(uid) * 8 > 0xFFFF:
        raise BadInput("SM2 distinguishing ID is longer than 8191 bytes; use a shorter --id")
    return uid


class SM2Backend(Protocol):
    """The SM2 arithmetic. Inputs arrive validated; outputs are checked by the wrapper."""

    name: str

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

    def _sm2(self, d: int | None = None, public: Point | None = None, uid: bytes | None = None):
        return self._gmalg.SM2(_be32(d) if d else None, uid,
                               b"\x04" + _be32(public[0]) + _be32(public[1]) if public else None,
                               rnd_fn=self._nonce_source)

    def generate_private(self) -> int:
        d, _ = self._sm2().generate_keypair()
        return int.from_bytes(d, "big")

    def public_point(self, d: int) -> Point:
        raw = self._sm2().generate_pk(_be32(d))
        return int.from_bytes(raw[1:33], "big"), int.from_bytes(raw[33:65], "big")

    def sign(self, d, public, uid, message):
        r, s = self._sm2(d, public, uid).sign(message)
        return int.from_bytes(r, "big"), int.from_bytes(s, "big")

    def verify(self, public, uid, message, r, s):
        return self._sm2(public=public, uid=uid).verify(message, _be32(r), _be32(s))

    def encrypt(self, public, plaintext):
        raw = self._sm2(public=public).encrypt(plaintext)  # C1 (uncompressed) || C3 || C2
        c1 = int.from_bytes(raw[1:33], "big"), int.from_bytes(raw[33:65], "big")
        return c1, raw[65:65 + C3_LEN], raw[65 + C3_LEN:]

    def decrypt(self, d, c1, c3, c2):
        raw = b"\x04" + _be32(c1[0]) + _be32(c1[1]) + c3 + c2
        try:
            return self._sm2(d).decrypt(raw)
        except self._gmalg.errors.GMError:
            raise IntegrityError("SM2 ciphertext failed its integrity check (C3): wrong private "
                                 "key, or the ciphertext was altered") from None


BACKENDS = ("gmalg", "openssl")
_default = {"name": "gmalg", "instance": None}


def use_backend(name: str) -> None:
    """Make `name` the backend of keys created without one (set from the configuration)."""
    if name not in BACKENDS:
        raise BadInput(f"SM2 backend {name!r} is unknown; use one of {', '.join(BACKENDS)}")
    if name != _default["name"]:
        _default.update(name=name, instance=None)


def default_backend() -> SM2Backend:
    if _default["instance"] is None:
        if _default["name"] == "openssl":
            from .sm2_openssl import OpenSSLBackend

            _default["instance"] = OpenSSLBackend()
        else:
            _default["instance"] = GmalgBackend()
    return _default["instance"]


def encode_signature(r: int, s: int) -> bytes:
    return der.sequence(der.integer(r), der.integer(s))


def decode_signature(signature: bytes) -> tuple[int, int]:
    """DER SEQUENCE{r, s}, or raw r||s (64 bytes)."""
    if signature[:1] == b"\x30":
        try:
            r, s = der.read_sequence(signature, [der.INTEGER, der.INTEGER], "signature")
            return der.read_integer(r, "signature r"), der.read_integer(s, "signature s")
        except IntegrityError:
            if len(signature) != 64:
                raise
    if len(signature) == 64:
        return int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    raise BadInput("signature is neither DER SEQUENCE{r, s} nor 64 bytes r||s")


def parse_point(data: bytes, what: str, error: type[Exception] = BadInput) -> Point:
    """An uncompressed point 04||x||y that lies on the curve."""
    if len(data) != 65 or data[0] != 4:
        raise error(f"{what} must be an uncompressed point: 65 bytes 04||x||y")
    point = int.from_bytes(data[1:33], "big"), int.from_bytes(data[33:], "big")
    if not on_curve(point):
        raise error(f"{what} is not a point on the SM2 curve")
    return point


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
        algorithm, bits = der.read_sequence(spki, [der.SEQUENCE, der.BIT_STRING], "public key")
        if algorithm != der.oid(EC_PUBLIC_KEY_OID) + der.oid(SM2_CURVE_OID) or bits[:1] != b"\x00":
            raise BadInput("public key is not an SM2 SubjectPublicKeyInfo")
        return cls.from_bytes(bits[1:])

    @classmethod
    def from_pem(cls, pem: str) -> "SM2PublicKey":
        body = "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))
        return cls.from_der(base64.b64decode(body))

    def to_bytes(self) -> bytes:
        return b"\x04" + _be32(self.point[0]) + _be32(self.point[1])

    def to_der(self) -> bytes:
        algorithm = der.sequence(der.oid(EC_PUBLIC_KEY_OID), der.oid(SM2_CURVE_OID))
        return der.sequence(algorithm, der.bit_string(self.to_bytes()))

    def to_pem(self) -> str:
        b64 = base64.b64encode(self.to_der()).decode()
        lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
        return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"

    def za(self, uid: bytes = DEFAULT_ID) -> bytes:
        """Z_A = SM3(ENTL_A || ID_A || a || b || x_G || y_G || x_A || y_A)."""
        check_id(uid)
        fields = [A, B, GX, GY, self.point[0], self.point[1]]
        return digest("sm3", (len(uid) * 8).to_bytes(2, "big") + uid + b"".join(map(_be32, fields)))

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
        if encoding == "raw":
            return b"\x04" + _be32(x) + _be32(y) + c3 + c2
        return der.sequence(der.integer(x), der.integer(y), der.octet_string(c3), der.octet_string(c2))


def decode_ciphertext(ciphertext: bytes) -> tuple[Point, bytes, bytes]:
    """(C1, C3, C2) from GM/T 0009 DER or raw C1C3C2; C1 must lie on the curve."""
    if ciphertext[:1] == b"\x30":
        x, y, c3, c2 = der.read_sequence(
            ciphertext, [der.INTEGER, der.INTEGER, der.OCTET_STRING, der.OCTET_STRING], "SM2 ciphertext")
        c1 = der.read_integer(x, "SM2 ciphertext C1.x"), der.read_integer(y, "SM2 ciphertext C1.y")
        if not on_curve(c1):
            raise IntegrityError("SM2 ciphertext C1 is not a point on the curve")
    elif ciphertext[:1] == b"\x04" and len(ciphertext) > 65 + C3_LEN:
        c1 = parse_point(ciphertext[:65], "SM2 ciphertext C1", IntegrityError)
        c3, c2 = ciphertext[65:65 + C3_LEN], ciphertext[65 + C3_LEN:]
    else:
        raise IntegrityError("SM2 ciphertext is neither GM/T 0009 DER nor raw C1C3C2, or is truncated")
    if len(c3) != C3_LEN or not c2:
        raise IntegrityError("SM2 ciphertext has a bad C3 or an empty C2")
    return c1, c3, c2


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
        return _be32(self._d)

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
