"""A signed blocklist exchanged between cities: the blocks in force (addresses and ranges) with reasons,
times and an expiry, signed with SM2 by a keystore key; imported only when the signature verifies under a
public key the importer trusts and the list has not expired.

Export: `export_blocklist` (the store's active bans → the document). Import: `read_blocklist` checks the
bytes (size, JSON, signature, schema, expiry) and `import_blocklist` blocks each entry through the decision
engine, so the local rules apply as to any ban: an entry of the never-block list (allowlist, special
addresses, a range broader than allowed here) is skipped and reported; a range holding allowlisted
addresses is carved like any range ban. The format is in secops/schemas/blocklist.schema.yaml and
docs/secops.md.
"""
from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

from core.errors import BadInput, GovctlError
from crypto.signing import document_signature_valid, sign_document

from .address import AddressError, blockable_target
from .config import Invalid, validate_and_merge
from .limits import REASON

SCHEMA = Path(__file__).parent / "schemas" / "blocklist.schema.yaml"
FORMAT = "govctl-blocklist"
BLOCKLIST_KEY = "blocklist"  # the keystore signing key exports use by default
DEFAULT_VALID_FOR = 86400.0  # seconds an exported list may be imported
MAX_BYTES = 32 * 1024 * 1024


def default_issuer() -> str:
    """This host's short name: who an export names when not told."""
    import socket
    return socket.gethostname().split(".")[0] or "govctl"


def trusted_key(text: str):
    """An SM2 public key given as 04… hex (BadInput naming --pubkey if it is not one)."""
    from crypto.signing import load_public, parse_hex
    try:
        return load_public("sm2", parse_hex(text, "the public key"))
    except GovctlError:
        raise
    except ValueError as exc:
        raise BadInput(f"the public key is not an SM2 public key (04… hex): {exc}") from None


class BlocklistRefused(GovctlError):
    """The list is authentic JSON of the right shape but must not be used: bad signature, expired (exit 1)."""


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _epoch(stamp: str, what: str) -> float:
    try:
        parsed = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"{what} {stamp!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise BadInput(f"{what} {stamp!r} has no time zone; give it with Z or an offset")
    return parsed.timestamp()


def export_blocklist(store, keystore, issuer: str, key: str = BLOCKLIST_KEY, valid_for: float = DEFAULT_VALID_FOR,
                     now: float | None = None) -> dict:
    """The active bans of `store` as a signed document (the key is created on first use)."""
    now = time.time() if now is None else now
    entries = [{"target": ban["address"], "reason": ban["reason"], "actor": ban["actor"],
                "since": ban["created"], "until": ban["until"]}
               for ban in store.active_bans(now) if ban["until"]]
    body = {"format": FORMAT, "version": 1, "issuer": issuer, "created": _iso(now), "expires": _iso(now + valid_for),
            "entries": entries}
    problems = _problems(body | {"signature": {"alg": "sm2", "value": ""}})
    if problems:
        raise BadInput("the blocklist cannot be written: " + "; ".join(problems))
    keystore.ensure_key(key, "signing")
    return sign_document(keystore, key, body)


def _problems(doc) -> list[str]:
    try:
        validate_and_merge(doc, SCHEMA, {}, prefix="")
    except Invalid as exc:
        return [p.strip() for p in exc.problems]
    return []


def read_blocklist(data: bytes, trusted: list, source: str = "the blocklist", now: float | None = None) -> dict:
    """The document in `data` once it is safe to use. BadInput (exit 2): too big, not JSON, not a
    blocklist; BlocklistRefused (exit 1): the signature does not verify under `trusted`, or it expired."""
    now = time.time() if now is None else now
    if len(data) > MAX_BYTES:
        raise BadInput(f"{source} is larger than {MAX_BYTES // (1024 * 1024)} MiB; it is not a govctl blocklist")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BadInput(f"{source} is not JSON (changed or damaged?); ask the issuer for the file again") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BadInput(f"{source} is not a govctl blocklist (no \"format\": \"{FORMAT}\")")
    if not document_signature_valid(doc, trusted):
        raise BlocklistRefused(f"{source}: the signature does not verify with the public key given; the list "
                               "was changed after signing or was signed by another key. Nothing was blocked.")
    problems = _problems(doc)
    if problems:
        raise BadInput(f"{source} is signed but not a valid blocklist: " + "; ".join(problems))
    expires = _epoch(doc["expires"], "expires")
    if expires <= now:
        raise BlocklistRefused(f"{source} expired at {doc['expires']} (issued by {doc['issuer']}); ask for a "
                               "fresh export. Nothing was blocked.")
    return doc


def import_blocklist(doc: dict, engine, now: float | None = None) -> dict:
    """Block each entry of a checked document through `engine` with actor "import:<issuer>".
    Returns {issuer, blocked: [decision dicts], skipped: [{target, why}]}."""
    now = time.time() if now is None else now
    actor = f"import:{doc['issuer']}"
    blocked, skipped = [], []
    for entry in doc["entries"]:
        target = entry["target"]
        try:
            until = _epoch(entry["until"], f"the until of {target!r}")
        except BadInput as exc:
            skipped.append({"target": target, "why": str(exc)})
            continue
        if until <= now:
            skipped.append({"target": target, "why": f"its block ended at {entry['until']}"})
            continue
        try:
            canonical = blockable_target(target, engine.min_prefix)
            if canonical in engine.allowlist:
                raise AddressError(f"{target!r} is on the local never-block list (allowlist)")
            reason = f"{actor}: {entry['reason']}"[:REASON.max_length]
            decision = engine.block(canonical, reason, now=now, ttl=until - now, actor=actor)
        except ValueError as exc:  # AddressError, or a TTL out of bounds
            skipped.append({"target": target, "why": str(exc)})
            continue
        blocked.append(decision)
    engine.flush()
    return {"issuer": doc["issuer"], "blocked": [d.to_dict() for d in blocked], "skipped": skipped}
