"""Input handling shared by the crypto, auditlog and evidence commands of the CLI."""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import BinaryIO, Iterator

from core.errors import BadInput


@contextlib.contextmanager
def open_input(source: str, what: str = "FILE") -> Iterator[BinaryIO]:
    """A binary stream on a file, or on standard input for "-"."""
    if source == "-":
        yield sys.stdin.buffer
        return
    try:
        stream = open(source, "rb")
    except OSError as exc:
        raise BadInput(f"{what} {source}: {exc.strerror}; give a readable file or - for stdin") from None
    with stream:
        yield stream


def read_input(source: str, what: str = "FILE") -> bytes:
    with open_input(source, what) as stream:
        return stream.read()


def write_output(data: bytes, target: str | None) -> None:
    if target and target != "-":
        Path(target).write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


def parse_context(pairs: list[str] | None) -> dict[str, str]:
    """--context K=V options as a dict."""
    context = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadInput(f"--context {pair!r} must look like KEY=VALUE")
        if key in context:
            raise BadInput(f"--context {key} is given twice")
        context[key] = value
    return context


def show(data, as_json: bool, text: str) -> None:
    """`data` as JSON for --json, else one line of text for people."""
    from govctl.ui import console, print_json

    if as_json:
        print_json(data)
    else:
        console.print(text, highlight=False)
