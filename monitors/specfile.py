"""Read a YAML data file, check it against its schema, and name the file and line of every problem.

The topology loader already maps document paths to lines; this reuses that mapping so the monitoring
files (SLO spec, monitoring targets) report errors the same way.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema

from core import yamlfile
from core.yamlfile import YamlInputError
from core.errors import BadInput
from infra.topology.validate import compose_with_lines, document_path, line_of


class SpecError(BadInput):
    """A monitoring data file that must not be used; the message lists file:line: path: problem."""

    def __init__(self, source: str, problems: list[tuple[int | None, str, str]]):
        self.source = source
        self.problems = problems
        lines = [f"{source}: {len(problems)} problem(s)"]
        for line, path, message in problems:
            where = f"{source}:{line}" if line else source
            lines.append(f"  {where}: {path or '(document)'}: {message}")
        super().__init__("\n".join(lines))


def _schema_hint(err: jsonschema.ValidationError) -> str:
    hint = err.message
    if err.validator == "required":
        hint += "; add it"
    elif err.validator == "enum":
        hint += f"; use one of {', '.join(map(str, err.validator_value))}"
    return hint


class Document:
    """A parsed data file: `data` plus `problem(path, message)` to report semantic errors by line."""

    def __init__(self, source: str, data: Any, lines: dict[str, int]):
        self.source = source
        self.data = data
        self._lines = lines
        self.problems: list[tuple[int | None, str, str]] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append((line_of(self._lines, path), path, message))

    def raise_if_problems(self) -> None:
        if self.problems:
            raise SpecError(self.source, self.problems)


def load_document(path: str | Path, schema_path: Path, *, text: str | None = None) -> Document:
    """Parse and schema-check a YAML file; raises SpecError naming file, line and what to change."""
    source = str(path)
    try:
        data, lines = compose_with_lines(path, text)
    except YamlInputError as exc:
        raise SpecError(source, [(exc.line, "", exc.reason)]) from None
    doc = Document(source, data, lines)
    schema = yamlfile.load(schema_path)
    validator = jsonschema.Draft202012Validator(schema)
    for err in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        path = document_path(err.absolute_path)
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            # point at the unexpected key's own line, not at the start of its mapping
            extra = [k for k in err.instance if k not in err.schema.get("properties", {})]
            for key in extra:
                doc.problem(document_path([*err.absolute_path, key]),
                            f"{key!r} is not expected here; remove it or check its spelling")
            continue
        doc.problem(path, _schema_hint(err))
    doc.raise_if_problems()
    return doc
