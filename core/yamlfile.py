"""The one way govctl reads a YAML input: bounded, strict, and every refusal names the file and the fix.

Every YAML file the project reads (topology, stacks, SecOps configuration, Sigma rules, SLO spec,
drill plans, catalogs, schemas) goes through `load`, `load_all` or `load_with_node`. A hostile or
broken file raises `YamlInputError` (a `BadInput`: exit 2) instead of a traceback, a hang or a
silently different document:

- more than `max_bytes` bytes, or bytes that are not UTF-8 (the offset and line are named);
- nesting deeper than `max_depth` collections;
- aliases that repeat more than `max_alias_nodes` nodes (a "billion laughs" document is refused
  before anything is expanded) or that refer to the node containing them;
- a mapping with the same key twice (YAML would keep the last one without a word);
- no document at all, unless the caller accepts that (`allow_empty=True`).

How: libyaml (PyYAML's C parser) composes the document into nodes. Composition does not expand
aliases (a repeated node is one shared object), so the bounds are checked on the node graph by one
iterative walk before a single Python object is built; the walk costs a few per cent of a load.
libyaml's composer recurses once per nesting level in C, and about 30,000 levels overflow an 8 MiB
stack (a crash, not an exception), so a cheap count on the text first proves the nesting cannot reach
`_C_SAFE_DEPTH`; only a file where it could (very long lines or thousands of brackets) is first
streamed through the parser's events, which checks the depth exactly in bounded memory. PyYAML
offers neither a depth nor an alias bound of its own, hence this module.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from .errors import BadInput

MAX_BYTES = 16 * 1024 * 1024
"""The largest YAML input read, in bytes. govctl's inputs are kilobytes (the biggest shipped catalog
is under 100 kB); a file this large is the wrong file or an attack, and parsing holds several copies
of it in memory."""

MAX_DEPTH = 100
"""The deepest nesting of collections (mappings and sequences) accepted. govctl's documents use
fewer than 15 levels; the code that reads them (jsonschema, walkers) recurses once or more per level
against Python's limit of 1,000 frames."""

MAX_ALIAS_NODES = 100_000
"""How many nodes aliases may add to a document when expanded (each `*name` counts the size of the
node it repeats). About what a 1 MB document holds: generous for shared defaults, while a billion
laughs (10⁹ nodes from a few hundred bytes) is refused after counting, never expanded."""

_C_SAFE_DEPTH = 2_000
"""Nesting libyaml's recursive composer is allowed to see. Each level costs 250-350 bytes of C
stack: measured, a thread with a 1 MiB stack composes 2,000 levels and crashes at 3,000, the main
thread (8 MiB) between 20,000 and 40,000."""

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"


class YamlInputError(BadInput):
    """A YAML input that was refused: `source` (the file), `line` (1-based, when known), `problem`
    (what is wrong) and `fix` (what to change). Its message is `source:line: problem; fix`."""

    def __init__(self, source: str, problem: str, fix: str, line: int | None = None):
        self.source, self.problem, self.fix, self.line = source, problem, fix, line
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {problem}; {fix}")

    @property
    def reason(self) -> str:
        """The message without the file and line, for callers that print those themselves."""
        return f"{self.problem}; {self.fix}"


def _guarded(construct):
    """A scalar constructor that turns Python's errors on a malformed value (an int of 5,000 digits,
    a date like 2024-13-45) into a ConstructorError that carries the value's line."""

    def construct_checked(constructor, node):
        try:
            return construct(constructor, node)
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            kind, why = node.tag.rsplit(":", 1)[-1], str(exc).split(";")[0]
            raise ConstructorError(None, None, f"cannot read {str(node.value)[:40]!r} as {kind} ({why})",
                                   node.start_mark) from None
    return construct_checked


class _Constructor(SafeConstructor):
    """yaml.safe_load's constructor, with scalar values that fail to convert reported by line."""


for _tag in ("int", "float", "timestamp"):
    _Constructor.add_constructor(f"tag:yaml.org,2002:{_tag}",
                                 _guarded(SafeConstructor.yaml_constructors[f"tag:yaml.org,2002:{_tag}"]))

if getattr(yaml, "__with_libyaml__", False):
    from yaml._yaml import CParser

    class _Loader(CParser, _Constructor, yaml.resolver.Resolver):
        """CSafeLoader's parts (libyaml parses and composes) with the checked constructor."""

        def __init__(self, stream):
            CParser.__init__(self, stream)
            _Constructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
    _RECURSIVE_COMPOSER_IN_C = True
else:  # pragma: no cover - PyYAML built without libyaml
    from yaml.composer import Composer
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Loader(Reader, Scanner, Parser, Composer, _Constructor, yaml.resolver.Resolver):
        def __init__(self, stream):
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            Composer.__init__(self)
            _Constructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
    _RECURSIVE_COMPOSER_IN_C = False


def read_text(path: str | Path, *, max_bytes: int = MAX_BYTES) -> str:
    """The file's text, read with a size bound and decoded as strict UTF-8 (a leading BOM is allowed)."""
    source = str(path)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size  # 0 for a pipe or a device: read up to the bound
            data = handle.read(max_bytes + 1 if not size or size > max_bytes else size + 1)
            if size and len(data) > size:  # grew while read; take what the bound allows
                data += handle.read(max_bytes + 1 - len(data))
    except OSError as exc:
        raise YamlInputError(source, f"cannot read the file ({exc.strerror or exc})",
                             "check the path and that the file is readable") from None
    if len(data) > max_bytes:
        raise YamlInputError(source, f"the file is larger than {max_bytes:,} bytes, the most a YAML "
                             "input may have", "check that it is the right file, or split it") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            kind = "it is UTF-16 (it starts with a UTF-16 byte-order mark)"
        elif b"\0" in data[:8192]:
            kind = "it looks like a binary file, not text"
        else:
            kind = "it may be in a legacy encoding such as GBK or GB 18030"
        raise YamlInputError(source, f"not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start} "
                             f"cannot be decoded; {kind}", "save the file as UTF-8", line) from None


def load(path: str | Path, *, text: str | None = None, allow_empty: bool = False,
         max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH,
         max_alias_nodes: int = MAX_ALIAS_NODES) -> Any:
    """The one document in the file at `path` as plain data (what yaml.safe_load gives), or
    YamlInputError. `text`, when given, is parsed instead of reading the file (`path` names it)."""
    return load_with_node(path, text=text, allow_empty=allow_empty, max_bytes=max_bytes,
                          max_depth=max_depth, max_alias_nodes=max_alias_nodes)[0]


def load_with_node(path: str | Path, *, text: str | None = None, allow_empty: bool = False,
                   max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH,
                   max_alias_nodes: int = MAX_ALIAS_NODES) -> tuple[Any, yaml.Node | None]:
    """Like `load`, plus the composed root node (None for an empty file), whose marks give the line
    of every part of the document."""
    source = str(path)
    if text is None:
        text = read_text(path, max_bytes=max_bytes)
    documents = _load(text, source, single=True, allow_empty=allow_empty, max_bytes=max_bytes,
                      max_depth=max_depth, max_alias_nodes=max_alias_nodes)
    return documents[0] if documents else (None, None)


def load_all(path: str | Path, *, text: str | None = None, allow_empty: bool = False,
             max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH,
             max_alias_nodes: int = MAX_ALIAS_NODES) -> list[Any]:
    """Every document of a multi-document file (`---` between them), as yaml.safe_load_all gives them."""
    source = str(path)
    if text is None:
        text = read_text(path, max_bytes=max_bytes)
    documents = _load(text, source, single=False, allow_empty=allow_empty, max_bytes=max_bytes,
                      max_depth=max_depth, max_alias_nodes=max_alias_nodes)
    return [data for data, _ in documents]


def _load(text: str, source: str, *, single: bool, allow_empty: bool, max_bytes: int, max_depth: int,
          max_alias_nodes: int) -> list[tuple[Any, yaml.Node]]:
    if len(text) > max_bytes:  # text handed over by the caller rather than read by read_text
        raise YamlInputError(source, f"the document is larger than {max_bytes:,} bytes, the most a YAML "
                             "input may have", "check that it is the right document, or split it")
    try:
        if not _RECURSIVE_COMPOSER_IN_C or _nesting_bound(text) > _C_SAFE_DEPTH:
            _check_depth_streaming(text, source, min(max_depth, _C_SAFE_DEPTH))
        loader = _Loader(text)
        try:
            documents = []
            while single or loader.check_node():
                node = loader.get_single_node() if single else loader.get_node()
                if node is None:
                    break
                _check_nodes(node, loader, source, max_depth, max_alias_nodes)
                documents.append((loader.construct_document(node), node))
                if single:
                    break
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise YamlInputError(source, f"not valid YAML: {problem}", _syntax_fix(exc),
                             mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:  # a ReaderError: a character YAML does not allow
        line = None
        if isinstance(exc, yaml.reader.ReaderError):  # libyaml counts the offset in UTF-8 bytes
            before = text.encode("utf-8")[:exc.position] if _RECURSIVE_COMPOSER_IN_C else text[:exc.position]
            line = before.count(b"\n" if _RECURSIVE_COMPOSER_IN_C else "\n") + 1
        detail = (f"character #x{exc.character:04x} is not allowed in YAML"
                  if isinstance(exc, yaml.reader.ReaderError) and isinstance(exc.character, int) else str(exc))
        raise YamlInputError(source, f"not valid YAML: {detail}",
                             "remove the control character, or give the text file you meant", line) from None
    if not allow_empty and all(data is None for data, _ in documents):
        raise YamlInputError(source, "the file holds no YAML data",
                             "write the document into it, or give the file you meant")
    return documents


def _syntax_fix(exc: yaml.MarkedYAMLError) -> str:
    if "expected a single document" in f"{exc.context} {exc.problem}":
        return "keep one document (remove the `---` line and what follows, or split the file)"
    if isinstance(exc, ConstructorError) and "unhashable" in str(exc.problem):
        return "use a plain value (a string or number) as the key"
    if isinstance(exc, ConstructorError) and "cannot read" in str(exc.problem):
        return "correct the value, or quote it to keep it as text"
    if isinstance(exc, ConstructorError):
        return "remove the tag (`!…`); govctl reads plain YAML data only"
    return "correct the YAML at that line (indentation, quoting, brackets)"


# What may precede a block collection's first entry on its line: indentation and compact indicators
# (`- `, `? `, `: `, and `--- `); an anchor or a tag may then come, but nothing block after it.
_PREFIX_CHARACTERS = " \t-?:\ufeff"


def _nesting_bound(text: str) -> int:
    """An upper bound of the document's nesting depth, from counts on the text.

    Block collections: each starts in a column no further right than the end of its line's prefix
    of indentation and compact indicators, and along any chain of nested block collections the column
    grows at least every other level (only a sequence may sit at its mapping key's column), so
    block depth is at most twice the longest such prefix. Flow collections cannot hold block ones;
    each opens with its own `[` or `{`, and a single-pair mapping like `[a: b]` needs a `[` of its
    own, so flow depth is at most twice the `[` plus the `{` in the text."""
    # splitlines breaks at every YAML line break and a few more: more line starts, a bound no smaller
    longest_prefix = max((len(line) - len(line.lstrip(_PREFIX_CHARACTERS)) for line in text.splitlines()),
                         default=0)
    return 2 * (longest_prefix + 1) + 2 * text.count("[") + text.count("{")


def _check_depth_streaming(text: str, source: str, max_depth: int) -> None:
    """Refuse nesting deeper than `max_depth` from the parser's event stream (iterative, bounded
    memory) — the exact check for files whose text does not rule deep nesting out."""
    depth = 0
    opening = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
    closing = (yaml.SequenceEndEvent, yaml.MappingEndEvent)
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, opening):
            depth += 1
            if depth > max_depth:
                raise _too_deep(source, max_depth, event.start_mark.line + 1)
        elif isinstance(event, closing):
            depth -= 1


def _too_deep(source: str, max_depth: int, line: int | None) -> YamlInputError:
    return YamlInputError(source, f"the document nests deeper than {max_depth} levels",
                          "flatten it (govctl's files need far fewer levels)", line)


def _check_nodes(root: yaml.Node, loader: _Loader, source: str, max_depth: int, max_alias_nodes: int) -> None:
    """One iterative walk over the composed nodes: depth, duplicate keys, and repeated (aliased)
    collections, whose expansion is then measured without expanding it."""
    if type(root) is ScalarNode:
        return
    seen: set[int] = set()
    repeated: list[tuple[yaml.Node, int]] = []  # further references to a collection, with their depth
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            repeated.append((node, depth))
            continue
        seen.add(id(node))
        if depth > max_depth:
            raise _too_deep(source, max_depth, node.start_mark.line + 1)
        depth += 1
        if type(node) is SequenceNode:
            stack.extend([(item, depth) for item in node.value if type(item) is not ScalarNode])
            continue
        pairs = node.value
        stack.extend([(value, depth) for _, value in pairs if type(value) is not ScalarNode])
        plain_keys = {key.value for key, _ in pairs if key.tag == _STR_TAG and type(key) is ScalarNode}
        if len(plain_keys) < len(pairs):  # a repeated key, or keys that are not plain strings
            _check_keys(node, depth, stack, loader, source)
    if repeated:
        _check_expansion(repeated, source, max_depth, max_alias_nodes)


def _check_keys(mapping: yaml.Node, depth: int, stack: list, loader: _Loader, source: str) -> None:
    """Refuse a key that appears twice in the mapping; queue keys that are collections for the walk."""
    keys: dict[Any, int] = {}
    for key_node, _ in mapping.value:
        if type(key_node) is not ScalarNode:
            stack.append((key_node, depth))  # refused as unhashable when constructed
            continue
        if key_node.tag == _MERGE_TAG:
            continue  # `<<: *defaults`: merged keys may be overridden, that is what merging is for
        key = key_node.value if key_node.tag == _STR_TAG else (key_node.tag, loader.construct_object(key_node))
        line = key_node.start_mark.line + 1
        if key in keys:
            shown = key if isinstance(key, str) else key_node.value
            raise YamlInputError(source, f"the key {shown!r} appears twice in one mapping (first at line "
                                 f"{keys[key]})", "keep one of them (YAML would silently use the last)", line)
        keys[key] = line


def _check_expansion(repeated: list[tuple[yaml.Node, int]], source: str, max_depth: int,
                     max_alias_nodes: int) -> None:
    """What the aliases add: the walk counted every node once, so expanding the document adds, for
    each further reference to a collection, that collection's expanded size. Sizes and heights are
    computed once per node under the repeated ones (post-order, iterative); a node reached again
    from inside itself is a cycle."""
    measured: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, expanded height)
    in_progress: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(node, False) for node, _ in repeated]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if type(node) is ScalarNode:
            measured[key] = (1, 0)
            continue
        children = [part for pair in node.value for part in pair] if type(node) is MappingNode else node.value
        if finished:
            in_progress.discard(key)
            sizes = [measured[id(child)] for child in children]
            measured[key] = (1 + sum(s for s, _ in sizes), 1 + max((h for _, h in sizes), default=0))
            continue
        if key in measured:
            continue
        if key in in_progress:
            raise YamlInputError(source, "an alias refers to the node that contains it (a recursive "
                                 "structure)", "remove that alias or repeat the content instead",
                                 node.start_mark.line + 1)
        in_progress.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in children)
    added = sum(measured[id(node)][0] for node, _ in repeated)
    if added > max_alias_nodes:
        biggest, _ = max(repeated, key=lambda entry: measured[id(entry[0])][0])
        line = biggest.start_mark.line + 1
        raise YamlInputError(source, f"aliases expand the document by {added:,} nodes, more than the "
                             f"{max_alias_nodes:,} allowed (the node at line {line} is repeated most)",
                             "write the repeated parts out or use fewer aliases (an alias bomb is "
                             "refused)", line)
    for node, depth in repeated:
        if depth - 1 + measured[id(node)][1] > max_depth:
            raise _too_deep(source, max_depth, node.start_mark.line + 1)
