"""The standard's known answers for SM2, run against a backend before it becomes the default.

GB/T 32918.5 Annex A (= GM/T 0003.5-2012) gives a private key d, its public key P, Z_A with the
default ID 1234567812345678, a fixed nonce k and the signature (r, s) of "message digest", and an
encryption example. A backend passes when it derives P from d, verifies the standard's signature
(and rejects it altered), makes signatures that satisfy the signing equation for the standard's
key and message, and decrypts the standard's ciphertext.

OpenSSL draws its own nonce and has no public way to fix k, so a backend's signature is checked by
the equation instead of byte for byte: from (r, s) and d the nonce is k = s(1 + d) + r·d mod n, and
the signature is right only when r = e + x(k·G) mod n. That needs one point multiplication that
does not come from the backend under test: `_multiply` below (a few milliseconds in Python, run
once per process; no library on this machine offers arithmetic on the SM2 curve except the
backends being checked)."""
from __future__ import annotations

from .sm2_curve import (DEFAULT_ID, GX, GY, N, A, P, Point, decode_ciphertext, signed_digest,
                        za)

# GB/T 32918.5 Annex A: the key, its public point, Z_A (default ID), the fixed k and signature.
D = 0x3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8
PUBLIC = (0x09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020,
          0xCCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13)
ZA = bytes.fromhex("B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3")
K = 0x59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21
MESSAGE = b"message digest"
R = 0xF5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3
S = 0xB1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA
# The encryption example (same key, fixed k), C1C3C2 in GM/T 0009 DER, and its plaintext.
CIPHERTEXT = bytes.fromhex(
    "307C0220" "04EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73"
    "022100" "E858F9D81E5430A57B36DAAB8F950A3C64E6EE6A63094D99283AFF767E124DF0"
    "0420" "59983C18F809E262923C53AEC295D30383B54E39D609D160AFCB1908D0BD8766"
    "0413" "21886CA989CA9C7D58087307CA93092D651EFA")
PLAINTEXT = b"encryption standard"


class KnownAnswerFailure(Exception):
    """A backend gave an answer the standard contradicts (the message names which)."""


def _multiply(k: int, point: Point = (GX, GY)) -> Point:
    """k·point in Jacobian coordinates (one inversion at the end); k in [1, n-1]."""
    def double(x, y, z):
        if not y:
            return 0, 1, 0
        yy = y * y % P
        s = 4 * x * yy % P
        zz = z * z % P
        m = (3 * x * x + A * zz * zz) % P
        x3 = (m * m - 2 * s) % P
        return x3, (m * (s - x3) - 8 * yy * yy) % P, 2 * y * z % P

    def add(x1, y1, z1, x2, y2):  # (x2, y2) affine
        if not z1:
            return x2, y2, 1
        zz = z1 * z1 % P
        u2, s2 = x2 * zz % P, y2 * zz * z1 % P
        h, r = (u2 - x1) % P, (s2 - y1) % P
        if not h:
            return double(x1, y1, z1) if not r else (0, 1, 0)
        hh = h * h % P
        hhh = h * hh % P
        x3 = (r * r - hhh - 2 * x1 * hh) % P
        return x3, (r * (x1 * hh - x3) - y1 * hhh) % P, z1 * h % P

    acc = (0, 1, 0)
    for bit in bin(k)[2:]:
        acc = double(*acc)
        if bit == "1":
            acc = add(*acc, *point)
    x, y, z = acc
    zi = pow(z, -1, P)
    return x * zi * zi % P, y * zi * zi * zi % P


def check(backend) -> None:
    """Run the vectors against `backend` (an SM2Backend); KnownAnswerFailure names the first that
    fails. Exceptions from the backend itself propagate (the caller reports them the same way)."""
    if _multiply(K)[0] != (R - int.from_bytes(signed_digest(PUBLIC, DEFAULT_ID, MESSAGE), "big")) % N:
        raise KnownAnswerFailure("the vectors themselves are inconsistent (k·G)")  # guards _multiply
    if za(PUBLIC, DEFAULT_ID) != ZA:
        raise KnownAnswerFailure("Z_A with the default ID differs from GB/T 32918.5 Annex A")
    if tuple(backend.public_point(D)) != PUBLIC:
        raise KnownAnswerFailure("public key derived from the standard's private key is wrong")
    if not backend.verify(PUBLIC, DEFAULT_ID, MESSAGE, R, S):
        raise KnownAnswerFailure("the standard's signature (fixed k) does not verify")
    if backend.verify(PUBLIC, DEFAULT_ID, MESSAGE + b"!", R, S) or backend.verify(PUBLIC, DEFAULT_ID, MESSAGE, S, R):
        raise KnownAnswerFailure("an altered message or signature verifies")
    r, s = backend.sign(D, PUBLIC, DEFAULT_ID, MESSAGE)
    e = int.from_bytes(signed_digest(PUBLIC, DEFAULT_ID, MESSAGE), "big")
    k = (s * (1 + D) + r * D) % N
    if not (1 <= r < N and 1 <= s < N and k and (e + _multiply(k)[0]) % N == r):
        raise KnownAnswerFailure("a signature of the standard's message breaks the SM2 signing equation")
    if not backend.verify(PUBLIC, DEFAULT_ID, MESSAGE, r, s):
        raise KnownAnswerFailure("the backend does not verify its own signature")
    c1, c3, c2 = decode_ciphertext(CIPHERTEXT)
    if backend.decrypt(D, c1, c3, c2) != PLAINTEXT:
        raise KnownAnswerFailure("the standard's ciphertext decrypts to something else")
