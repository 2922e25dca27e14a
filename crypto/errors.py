"""Errors of the crypto package. They map onto govctl's exit codes (1 failure, 2 bad input), so
the CLI prints their message; callers of the Python API catch them like any exception.
Messages never carry key material or plaintext."""
from __future__ import annotations

from core.errors import BadInput, GovctlError

__all__ = ["BadInput", "CryptoError", "IntegrityError", "UnsupportedError"]


class CryptoError(GovctlError):
    """A cryptographic operation could not be done (exit 1)."""


class IntegrityError(CryptoError):
    """Data failed its authentication: wrong key or context, altered or truncated data (exit 1)."""


class UnsupportedError(CryptoError):
    """The linked libraries lack an algorithm the configured suite needs (exit 1)."""
