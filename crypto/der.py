"""Strict DER for the few ASN.1 shapes SM2 needs: INTEGER, OCTET STRING, BIT STRING, OBJECT
IDENTIFIER and SEQUENCE. Decoding rejects non-minimal lengths and integers, trailing bytes and
indefinite lengths, so one value has exactly one encoding."""
from __future__ import annotations

from .errors import IntegrityError

INTEGER, BIT_STRING, OCTET_STRING, OID, SEQUENCE = 0x02, 0x03, 0x04, 0x06, 0x30


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _length(len(value)) + value


def integer(n: int) -> bytes:
    if n < 0:
        raise ValueError("only non-negative integers are encoded")
    return tlv(INTEGER, n.to_bytes(n.bit_length() // 8 + 1, "big"))  # leading 0 keeps it positive


def octet_string(data: bytes) -> bytes:
    return tlv(OCTET_STRING, data)


def bit_string(data: bytes) -> bytes:
    return tlv(BIT_STRING, b"\x00" + data)


def oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return tlv(OID, bytes(body))


def sequence(*items: bytes) -> bytes:
    return tlv(SEQUENCE, b"".join(items))


def read(data: bytes, offset: int, what: str) -> tuple[int, bytes, int]:
    """One TLV at `offset`: (tag, value, offset after it). `what` names the data in errors."""
    if offset + 2 > len(data):
        raise IntegrityError(f"{what}: DER is truncated")
    tag, first = data[offset], data[offset + 1]
    offset += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or offset + count > len(data):
            raise IntegrityError(f"{what}: bad DER length")
        length = int.from_bytes(data[offset:offset + count], "big")
        if length < 0x80 or data[offset] == 0:
            raise IntegrityError(f"{what}: non-minimal DER length")
        offset += count
    if offset + length > len(data):
        raise IntegrityError(f"{what}: DER is truncated")
    return tag, data[offset:offset + length], offset + length


def read_integer(value: bytes, what: str) -> int:
    if not value or (len(value) > 1 and value[0] == 0 and value[1] < 0x80) or value[0] >= 0x80:
        raise IntegrityError(f"{what}: not a minimal non-negative DER INTEGER")
    return int.from_bytes(value, "big")


def read_sequence(data: bytes, tags: list[int], what: str) -> list[bytes]:
    """A whole SEQUENCE whose members have exactly `tags`; returns the member values."""
    tag, body, end = read(data, 0, what)
    if tag != SEQUENCE or end != len(data):
        raise IntegrityError(f"{what}: expected one DER SEQUENCE and nothing after it")
    values, offset = [], 0
    for expected in tags:
        tag, value, offset = read(body, offset, what)
        if tag != expected:
            raise IntegrityError(f"{what}: unexpected DER tag 0x{tag:02x}")
        values.append(value)
    if offset != len(body):
        raise IntegrityError(f"{what}: extra DER members")
    return values
