"""The SM2 curve and its encodings, shared by the SM2 wrapper (sm2.py) and every backend.

The recommended curve of GB/T 32918.5, points (uncompressed 04||x||y), the signer's Z_A and the
digest e = SM3(Z_A || M) that is signed, signatures as DER SEQUENCE{r, s}, ciphertexts as C1C3C2 in
GM/T 0009 DER (raw C1||C3||C2 also read) and public keys as SubjectPublicKeyInfo. Pure functions
over integers and bytes: this module knows no backend, so a backend can use it without importing
the wrapper that chooses it."""
from __future__ import annotations

import functools

from . import der
from .errors import BadInput, IntegrityError
from .primitives import digest

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


def be32(n: int) -> bytes:
    return n.to_bytes(32, "big")


def on_curve(point: Point) -> bool:
    x, y = point
    return 0 <= x < P and 0 <= y < P and (y * y - (x * x * x + A * x + B)) % P == 0


def point_bytes(point: Point) -> bytes:
    """The uncompressed encoding 04||x||y."""
    return b"\x04" + be32(point[0]) + be32(point[1])


def parse_point(data: bytes, what: str, error: type[Exception] = BadInput) -> Point:
    """An uncompressed point 04||x||y that lies on the curve."""
    if len(data) != 65 or data[0] != 4:
        raise error(f"{what} must be an uncompressed point: 65 bytes 04||x||y")
    point = int.from_bytes(data[1:33], "big"), int.from_bytes(data[33:], "big")
    if not on_curve(point):
        raise error(f"{what} is not a point on the SM2 curve")
    return point


def check_id(uid: bytes) -> bytes:
    if not uid:
        # OpenSSL's `pkeyutl -sign -rawin` uses an empty ID unless given -pkeyopt distid:...
        raise BadInput("SM2 distinguishing ID is empty; give one (the standard default is "
                       "1234567812345678; with openssl pass -pkeyopt distid:1234567812345678)")
    if len(uid) * 8 > 0xFFFF:
        raise BadInput("SM2 distinguishing ID is longer than 8191 bytes; use a shorter --id")
    return uid


@functools.lru_cache(maxsize=1024)  # one per signer and ID: the same few keys sign again and again
def za(public: Point, uid: bytes = DEFAULT_ID) -> bytes:
    """Z_A = SM3(ENTL_A || ID_A || a || b || x_G || y_G || x_A || y_A)."""
    check_id(uid)
    fields = [A, B, GX, GY, public[0], public[1]]
    return digest("sm3", (len(uid) * 8).to_bytes(2, "big") + uid + b"".join(map(be32, fields)))


def signed_digest(public: Point, uid: bytes, message: bytes) -> bytes:
    """e = SM3(Z_A || M), what the signature equation signs."""
    return digest("sm3", za(public, uid) + message)


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


def encode_ciphertext(c1: Point, c3: bytes, c2: bytes, encoding: str = "der") -> bytes:
    """C1C3C2, in GM/T 0009 DER (`encoding="der"`) or raw 04||x||y||C3||C2 (`"raw"`)."""
    if encoding == "raw":
        return point_bytes(c1) + c3 + c2
    return der.sequence(der.integer(c1[0]), der.integer(c1[1]), der.octet_string(c3), der.octet_string(c2))


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


def public_key_der(point: Point) -> bytes:
    """SubjectPublicKeyInfo (id-ecPublicKey on the SM2 curve), as `openssl pkey -pubout` writes it."""
    algorithm = der.sequence(der.oid(EC_PUBLIC_KEY_OID), der.oid(SM2_CURVE_OID))
    return der.sequence(algorithm, der.bit_string(point_bytes(point)))


def public_key_point_bytes(spki: bytes, what: str, error: type[Exception] = BadInput) -> bytes:
    """The point encoding inside an SM2 SubjectPublicKeyInfo (parse it with `parse_point`)."""
    algorithm, bits = der.read_sequence(spki, [der.SEQUENCE, der.BIT_STRING], what)
    if algorithm != der.oid(EC_PUBLIC_KEY_OID) + der.oid(SM2_CURVE_OID) or bits[:1] != b"\x00":
        raise error(f"{what} is not an SM2 SubjectPublicKeyInfo")
    return bits[1:]
