"""Declared document register (文档登记): the approved documents that answer catalog items a person
would otherwise have to look for — the security management system, emergency plans, capacity records,
the migration plan, data-wiping procedures, the personal-information inventory, rule reviews.

Each entry names the items it answers (per standard), the file (relative to the register's folder),
its SM3 digest, who approved it and when, and the next review date. The collector (collect.py, layer
`documents`) records each file's digest as found; the check (checks.document_outcome) decides: 符合
when the file is there with the declared digest, approved and not overdue for review; 不符合 naming the
problem (missing file, digest changed, review overdue, approval dated in the future); an item no entry
answers stays 需人工核查. A verdict from the register says so ("由声明决定 decided by declaration"), so an
auditor sees which verdicts rest on declarations, not on what the platform observed.

The file is data (`state/compliance/documents.yaml`, schema `policies/catalogs/documents.schema.json`,
example `policies/documents.example.yaml`), hostile until parsed: bounded size, schema, paths inside
the register's folder, item ids that exist in the catalogs.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath

from core import paths, yamlfile
from core.errors import BadInput

from .assessment import schema_problems
from .catalog import CATALOGS, load_document
from .intent import _dates_to_text

SCHEMA = CATALOGS / "documents.schema.json"
MAX_REGISTER_BYTES = 1024 * 1024         # a register of 500 entries is a few dozen KiB
MAX_DOCUMENT_BYTES = 512 * 1024 * 1024   # bounds the collection's time (SM3 through OpenSSL: seconds)
HASH = "sm3"


def default_path() -> Path:
    return paths.STATE / "compliance" / "documents.yaml"


def _path_problem(folder: Path, text: str) -> str | None:
    relative = PurePosixPath(text)
    if relative.is_absolute() or text.startswith("~"):
        return f"{text!r} must be relative to the register's folder {folder}"
    if ".." in relative.parts:
        return f"{text!r} must not contain `..`: keep the documents in or below {folder}"
    if not (folder / text).resolve().is_relative_to(folder.resolve()):
        return f"{text!r} leads outside {folder} (a symbolic link): copy the document into the folder"
    return None


def load(path: Path | None = None) -> dict | None:
    """The validated register, or None when none is declared (the default path absent). Bad input
    names the file and the field."""
    explicit = path is not None
    path = Path(path) if path else default_path()
    if not path.exists():
        if explicit:
            raise BadInput(f"document register {path} does not exist; start from policies/documents.example.yaml")
        return None
    try:
        document = yamlfile.load(path, max_bytes=MAX_REGISTER_BYTES)
    except yamlfile.YamlInputError as exc:
        raise BadInput(f"document register {exc}") from None
    document = _dates_to_text(document)
    problems = schema_problems(document, SCHEMA)
    if problems:
        raise BadInput(f"document register {path}: " + "; ".join(problems[:5])
                       + " (see policies/catalogs/documents.schema.json)")
    ids = [d["id"] for d in document["documents"]]
    problems += [f"documents: id {i!r} is listed twice" for i in sorted({i for i in ids if ids.count(i) > 1})]
    for i, entry in enumerate(document["documents"]):
        where = f"documents.{i} ({entry['id']})"
        if problem := _path_problem(path.parent, entry["path"]):
            problems.append(f"{where}.path: {problem}")
        if entry["next_review"] < entry["approved_on"]:
            problems.append(f"{where}.next_review: {entry['next_review']} is before approved_on {entry['approved_on']}")
        for standard, items in entry["answers"].items():
            known = {item["id"] for item in load_document(standard)["items"]}
            problems += [f"{where}.answers.{standard}: item {item} is not in the {standard} catalog"
                         for item in items if item not in known]
    if problems:
        raise BadInput(f"document register {path}: " + "; ".join(problems[:5]))
    return document


def found(folder: Path, entry: dict) -> dict:
    """The file as the collection finds it: {exists, bytes, sm3} or {exists, error}."""
    from crypto.primitives import digest_stream

    target = folder / entry["path"]
    if not target.is_file():
        return {"exists": False}
    size = target.stat().st_size
    if size > MAX_DOCUMENT_BYTES:
        return {"exists": True, "bytes": size,
                "error": f"larger than {MAX_DOCUMENT_BYTES // 2**20} MiB: not digested"}
    try:
        with open(target, "rb") as stream:
            return {"exists": True, "bytes": size, HASH: digest_stream(HASH, stream).hex()}
    except OSError as exc:
        return {"exists": True, "bytes": size, "error": f"cannot read it ({exc.strerror})"}


def evidence(path: Path | None = None) -> dict | None:
    """The documents layer's data: each declared entry with what the collection found (None when no
    register is declared)."""
    document = load(path)
    if document is None:
        return None
    path = Path(path) if path else default_path()
    return {"file": str(path), "documents": [{**entry, "found": found(path.parent, entry)}
                                             for entry in document["documents"]]}
