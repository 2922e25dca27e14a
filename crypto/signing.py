"""Algorithm-neutral signing keys: SM2 (国密 suite) and ECDSA P-256 with SHA-256 (international
suite). Both take a message (not a digest), give DER signatures, accept DER or raw r||s when
verifying, and show public keys as uncompressed points 04||x||y. `uid` is SM2's distinguishing
ID; ECDSA has none and ignores it."""
from __future__ import annotations

import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .errors import BadInput, IntegrityError
from .sm2 import DEFAULT_ID, SM2PrivateKey, SM2PublicKey, decode_signature, encode_signature


class EcdsaP256PublicKey:
    alg = "ecdsa-p256"

    def __init__(self, key: ec.EllipticCurvePublicKey):
        self._key = key

    @classmethod
    def from_bytes(cls, data: bytes) -> "EcdsaP256PublicKey":
        try:
            return cls(ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), data))
        except ValueError:
            raise BadInput("ECDSA P-256 public key is not a valid point 04||x||y") from None

    def to_bytes(self) -> bytes:
        return self._key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)

    def to_pem(self) -> str:
        return self._key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()

    def verify(self, message: bytes, signature: bytes, uid: bytes = DEFAULT_ID) -> bool:
        try:
            der_sig = encode_signature(*decode_signature(signature))
            self._key.verify(der_sig, message, ec.ECDSA(hashes.SHA256()))
            return True
        except (InvalidSignature, BadInput, IntegrityError, ValueError):
            return False


class EcdsaP256PrivateKey:
    alg = "ecdsa-p256"

    def __init__(self, key: ec.EllipticCurvePrivateKey):
        self._key = key

    def __repr__(self) -> str:
        return "EcdsaP256PrivateKey(…)"

    @classmethod
    def generate(cls) -> "EcdsaP256PrivateKey":
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_bytes(cls, data: bytes) -> "EcdsaP256PrivateKey":
        try:
            return cls(ec.derive_private_key(int.from_bytes(data, "big"), ec.SECP256R1()))
        except ValueError:
            raise BadInput("ECDSA P-256 private key is out of range") from None

    def to_bytes(self) -> bytes:
        return self._key.private_numbers().private_value.to_bytes(32, "big")

    def public_key(self) -> EcdsaP256PublicKey:
        return EcdsaP256PublicKey(self._key.public_key())

    def sign(self, message: bytes, uid: bytes = DEFAULT_ID) -> bytes:
        return self._key.sign(message, ec.ECDSA(hashes.SHA256()))


# algorithm name -> (private key class, public key class)
ALGORITHMS = {"sm2": (SM2PrivateKey, SM2PublicKey), "ecdsa-p256": (EcdsaP256PrivateKey, EcdsaP256PublicKey)}


def _classes(alg: str):
    try:
        return ALGORITHMS[alg]
    except KeyError:
        raise BadInput(f"signature algorithm {alg!r} is unknown; use one of {', '.join(ALGORITHMS)}") from None


def generate(alg: str):
    return _classes(alg)[0].generate()


def load_private(alg: str, data: bytes):
    return _classes(alg)[0].from_bytes(data)


def load_public(alg: str, data: bytes):
    return _classes(alg)[1].from_bytes(data)


def parse_hex(text: str, what: str) -> bytes:
    """Hex from the user (spaces, colons and a 0x prefix allowed)."""
    cleaned = text.strip().lower().removeprefix("0x").replace(":", "").replace(" ", "")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise BadInput(f"{what} is not hex: give it as hex digits") from None


def canonical_json(data) -> bytes:
    """The one byte form of a JSON value that govctl signs, hashes or binds as AAD."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_document(keystore, key: str, body: dict, record_use: bool = True) -> dict:
    """`body` plus a "signature" block: the keystore key's signature over canonical_json(body)."""
    signature, version = keystore.sign(key, canonical_json(body), record_use=record_use)
    public = keystore.public_keys(key)[version]
    return body | {"signature": {"alg": public.alg, "key": key, "version": version,
                                 "id": keystore.settings.sm2_id.decode(),
                                 "public_key": public.to_bytes().hex(), "value": signature.hex()}}


def document_signature_valid(document: dict, trusted: list) -> bool:
    """The "signature" block verifies under one of the `trusted` public keys. The public key
    embedded in the block is informational and never trusted by itself."""
    try:
        sig = document["signature"]
        body = {k: v for k, v in document.items() if k != "signature"}
        value = bytes.fromhex(sig["value"])
        uid = sig.get("id", "").encode()
    except (KeyError, ValueError, AttributeError, TypeError):
        return False
    return any(key.alg == sig.get("alg") and key.verify(canonical_json(body), value, uid) for key in trusted)
