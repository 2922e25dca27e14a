"""Hostile YAML inputs (issue #16): each kind as bytes, with the words its refusal must contain."""
from __future__ import annotations

from pathlib import Path


def billion_laughs(levels: int = 9) -> bytes:
    """The classic alias bomb: ten levels of nine aliases expand to over 4×10⁹ nodes from ~800 bytes."""
    lines = ["lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels + 1):
        lines.append(f"lol{i}: &lol{i} [" + ", ".join([f"*lol{i - 1}"] * 9) + "]")
    return ("\n".join(lines) + "\n").encode()


# kind → (file content, words of the refusal: what is wrong and what to change)
HOSTILE: dict[str, tuple[bytes, list[str]]] = {
    "binary": (bytes(range(256)) * 64, ["not UTF-8", "binary file", "save the file as UTF-8"]),
    "gbk": ("name: 金华市政务云\nlevel: 3\n".encode("gbk"),
            ["not UTF-8", "GBK", "save the file as UTF-8"]),
    "deep-sequences": (b"[" * 5000 + b"]" * 5000, ["nests deeper than 100 levels", "flatten it"]),
    "deep-mappings": (b"{a: " * 5000 + b"}" * 5000, ["nests deeper than 100 levels", "flatten it"]),
    "alias-bomb": (billion_laughs(), ["aliases expand the document", "use fewer aliases"]),
    "oversized": (b"items:\n" + b"- just another line of a huge list\n" * 1_430_000,  # 50 MB
                  ["larger than 16,777,216 bytes", "split it"]),
    "duplicate-top": (b"name: lab\nlevel: 3\nname: other\n",
                      ["the key 'name' appears twice", "first at line 1", "keep one of them"]),
    "duplicate-nested": (b"centers:\n  - name: c1\n    role: production\n    name: c2\n",
                         ["the key 'name' appears twice", "first at line 2", "keep one of them"]),
    "empty": (b"", ["holds no YAML data", "write the document into it"]),
}

# kind → the line the refusal names (kinds without one name the file only)
LINES = {"duplicate-top": 3, "duplicate-nested": 4, "deep-sequences": 1, "deep-mappings": 1, "binary": 2,
         "gbk": 1, "alias-bomb": 9}


def write_hostile(folder: Path) -> dict[str, Path]:
    """Every hostile kind as `<kind>.yaml` in `folder`."""
    paths = {}
    for kind, (content, _) in HOSTILE.items():
        paths[kind] = folder / f"{kind}.yaml"
        paths[kind].write_bytes(content)
    return paths
