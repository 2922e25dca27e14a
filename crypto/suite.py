"""Which algorithms govctl uses, from configuration, and a start-up check that they work.

Two suites: `gm` (国密: SM3, SM4-GCM, SM2; the default) and `intl` (SHA-256, AES-256-GCM,
ECDSA P-256) for deployments outside China. The configuration is YAML at $GOVCTL_CRYPTO_CONFIG
or state/crypto/config.yaml:

    suite: gm                    # gm | intl
    sm2_id: "1234567812345678"   # default SM2 distinguishing ID
    sm2_backend: auto            # auto (default: openssl where the system libcrypto 3 has SM2 and
                                 # passes the GB/T 32918 known answers, else gmalg) | openssl | gmalg
    kdf_iterations: 600000       # PBKDF2 rounds for a passphrase root key
    audit_witness_dir: /mnt/witness   # where the audit log's witness records checkpoints
                                      # (default state/crypto/audit-witness; relative: under state/)
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from . import sm2
from .errors import BadInput, UnsupportedError

DEFAULT_KDF_ITERATIONS = 600_000

CONFIG_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "suite": {"enum": ["gm", "intl"]},
        "sm2_id": {"type": "string", "minLength": 1, "maxLength": 8191},
        "sm2_backend": {"enum": ["auto", "gmalg", "openssl"]},
        "kdf_iterations": {"type": "integer", "minimum": 100_000},
        "audit_witness_dir": {"type": "string", "minLength": 1},
    },
}


@dataclass(frozen=True)
class Suite:
    name: str
    hash: str       # digests, HMAC, HKDF, PBKDF2, the audit log's Merkle tree
    aead: str       # data encryption and the keystore
    signature: str  # signing keys, audit checkpoints, evidence manifests


SUITES = {
    "gm": Suite("gm", "sm3", "sm4-gcm", "sm2"),
    "intl": Suite("intl", "sha256", "aes-256-gcm", "ecdsa-p256"),
}


@dataclass(frozen=True)
class Settings:
    suite: Suite
    sm2_id: bytes
    kdf_iterations: int
    audit_witness_dir: Path | None = None  # None: state/crypto/audit-witness


def state_dir() -> Path:
    from core import paths  # read at call time so GOVCTL_STATE set by a caller is honoured

    return paths.STATE


def config_path() -> Path:
    return Path(os.environ.get("GOVCTL_CRYPTO_CONFIG") or state_dir() / "crypto" / "config.yaml")


def load_settings(path: Path | None = None) -> Settings:
    """The configured settings (defaults when the file does not exist), validated."""
    import jsonschema

    from core import yamlfile

    path = path or config_path()
    data = {}
    if path.exists():
        try:
            data = yamlfile.load(path, allow_empty=True) or {}
            jsonschema.validate(data, CONFIG_SCHEMA)
        except yamlfile.YamlInputError as exc:
            raise BadInput(f"crypto configuration {exc}") from None
        except jsonschema.ValidationError as exc:
            detail = exc.message if isinstance(exc, jsonschema.ValidationError) else str(exc)
            raise BadInput(f"crypto configuration {path}: {detail}; fix the file "
                           f"(keys: {', '.join(CONFIG_SCHEMA['properties'])})") from None
    suite = SUITES[data.get("suite", "gm")]
    sm2.use_backend(data.get("sm2_backend", sm2.AUTO))
    check_suite(suite.name, data.get("sm2_backend", sm2.AUTO))
    witness_dir = data.get("audit_witness_dir")
    return Settings(suite, data.get("sm2_id", "1234567812345678").encode(),
                    data.get("kdf_iterations", DEFAULT_KDF_ITERATIONS),
                    state_dir() / Path(witness_dir).expanduser() if witness_dir else None)


@functools.cache
def check_suite(name: str, sm2_backend: str = sm2.AUTO) -> None:
    """Run every algorithm of the suite (with that SM2 backend) once; UnsupportedError names
    what is missing."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.backends.openssl import backend

    from . import primitives, signing

    suite = SUITES[name]
    hint = ("use a `cryptography` wheel whose bundled OpenSSL has it"
            + (", or set `suite: intl` in the crypto configuration" if name == "gm" else ""))
    steps = [
        (suite.hash, lambda: primitives.hmac(suite.hash, b"k", primitives.digest(suite.hash, b"x"))),
        (suite.aead, lambda: primitives.aead_decrypt(
            suite.aead, bytes(primitives.aead_key_len(suite.aead)), bytes(12),
            primitives.aead_encrypt(suite.aead, bytes(primitives.aead_key_len(suite.aead)), bytes(12), b"x"))),
    ]
    for alg, step in steps:
        try:
            step()
        except UnsupportedAlgorithm:
            raise UnsupportedError(f"{alg} is not available in {backend.openssl_version_text()} "
                                   f"(linked by `cryptography`): {hint}") from None
    try:
        key = signing.generate(suite.signature)
        ok = key.public_key().verify(b"x", key.sign(b"x"))
    except ImportError as exc:
        raise UnsupportedError(f"{suite.signature} backend cannot be imported ({exc.name}): "
                               "run `make setup`") from None
    if not ok:
        raise UnsupportedError(f"{suite.signature} self-test failed: its backend is broken")
