"""Signed evidence packs: a manifest of the hashes (SM3 for 国密) of every file in a directory,
signed with a keystore signing key (SM2 for 国密). Verification names each changed, missing and
added file, and checks the signature against a trusted public key.

    from crypto import evidence
    manifest = evidence.pack(Path("out/drill-2026-11"))        # writes evidence.manifest.json
    report = evidence.verify(Path("out/drill-2026-11"))        # report.ok, report.changed, ...
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import primitives
from .errors import BadInput
from .audit import open_keystore
from .keystore import Keystore
from .signing import document_signature_valid, sign_document

MANIFEST = "evidence.manifest.json"
FORMAT = "govctl-evidence"
EVIDENCE_KEY = "evidence"


def _files(directory: Path) -> list[Path]:
    """Every entry under `directory` but the manifest, symbolic links included (never followed)."""
    if not directory.is_dir():
        raise BadInput(f"evidence directory {directory} does not exist or is not a directory")
    found = []
    for root, dirs, names in os.walk(directory):
        dirs.sort()
        found += [Path(root, d) for d in dirs if Path(root, d).is_symlink()]
        found += [Path(root, n) for n in sorted(names) if Path(root, n).relative_to(directory).as_posix() != MANIFEST]
    return found


def _hash_file(alg: str, path: Path) -> str:
    with open(path, "rb") as stream:
        return primitives.digest_stream(alg, stream).hex()


def pack(directory: Path, keystore: Keystore | None = None, key: str = EVIDENCE_KEY,
         description: str = "") -> dict:
    """Hash every file under `directory`, sign the manifest with `key` (created on first use) and
    write it to `directory/evidence.manifest.json`. Returns the manifest."""
    directory = Path(directory)
    keystore = keystore or open_keystore()
    keystore.ensure_key(key, "signing")
    alg = keystore.settings.suite.hash
    paths = _files(directory)
    if links := [str(p) for p in paths if p.is_symlink()]:
        raise BadInput(f"evidence packs hold regular files only; replace the symbolic links: {', '.join(links)}")
    files = [{"path": p.relative_to(directory).as_posix(), "size": p.stat().st_size,
              "hash": _hash_file(alg, p)} for p in paths]
    body = {"format": FORMAT, "version": 1, "hash": alg, "description": description,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "files": files}
    manifest = sign_document(keystore, key, body)
    (directory / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return manifest


@dataclass
class Report:
    signature_valid: bool = False
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    files: int = 0
    signer: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.signature_valid and not (self.changed or self.missing or self.added)


def verify(directory: Path, trusted: list | None = None, keystore: Keystore | None = None,
           key: str = EVIDENCE_KEY) -> Report:
    """Check the manifest signature against `trusted` public keys (default: the keystore's `key`)
    and every file against its hash."""
    directory = Path(directory)
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        sig = manifest.pop("signature")
        alg = manifest["hash"]
        listed = {f["path"]: f for f in manifest["files"]}
    except FileNotFoundError:
        raise BadInput(f"{directory} has no {MANIFEST}; create it with `govctl evidence pack {directory}`") from None
    except (ValueError, KeyError, TypeError):
        raise BadInput(f"{directory / MANIFEST} is not a govctl evidence manifest") from None
    if trusted is None:
        trusted = list((keystore or Keystore.open(events=None)).public_keys(key).values())
    report = Report(signer={k: sig.get(k) for k in ("alg", "key", "version", "public_key")})
    report.signature_valid = document_signature_valid(manifest | {"signature": sig}, trusted)
    present = {p.relative_to(directory).as_posix(): p for p in _files(directory)}
    report.files = len(listed)
    for name, entry in sorted(listed.items()):
        if name not in present:
            report.missing.append(name)
        elif present[name].is_symlink() or _hash_file(alg, present[name]) != entry["hash"]:
            report.changed.append(name)
    report.added = sorted(set(present) - set(listed))
    return report
