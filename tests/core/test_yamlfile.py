"""core.yamlfile, the one YAML loader: every hostile kind is refused quickly, naming the file, the line
where there is one, and what to change; every YAML file the project ships still loads as before."""
from __future__ import annotations

import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from core import yamlfile
from core.errors import EXIT_BAD_INPUT
from core.yamlfile import YamlInputError
from tests.conftest import ROOT

from .hostile import HOSTILE, LINES, write_hostile

SECONDS = 3.0  # every refusal must come well within this, even on a busy 2-core CI machine


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, Path]:
    return write_hostile(tmp_path_factory.mktemp("hostile"))


def refusal(path: Path, **bounds) -> tuple[YamlInputError, float]:
    started = time.monotonic()
    with pytest.raises(YamlInputError) as caught:
        yamlfile.load(path, **bounds)
    return caught.value, time.monotonic() - started


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_each_hostile_kind_is_refused_with_the_file_and_the_fix(hostile, kind):
    error, seconds = refusal(hostile[kind])
    message = str(error)
    assert message.startswith(str(hostile[kind])), message
    for words in HOSTILE[kind][1]:
        assert words in message, message
    assert error.exit_code == EXIT_BAD_INPUT
    assert error.line == LINES.get(kind)
    assert seconds < SECONDS, f"{kind} took {seconds:.2f} s"


def test_alias_bomb_is_refused_without_expanding_it(hostile):
    tracemalloc.start()
    try:
        error, seconds = refusal(hostile["alias-bomb"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "more than the 100,000 allowed" in str(error)
    assert seconds < 0.5 and peak < 20 * 2**20, (seconds, peak)


def test_the_oversized_file_is_not_read_whole(hostile):
    tracemalloc.start()
    try:
        refusal(hostile["oversized"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * yamlfile.MAX_BYTES  # the bound plus one byte is read, not the 50 MB


def test_decoding_errors_name_the_offset_and_recognise_utf16(tmp_path):
    utf16 = tmp_path / "utf16.yaml"
    utf16.write_bytes("name: 实验室\n".encode("utf-16"))
    message = str(refusal(utf16)[0])
    assert "byte 0xff at offset 0" in message and "UTF-16" in message and "save the file as UTF-8" in message
    late = tmp_path / "late.yaml"
    late.write_bytes(b"a: 1\nb: 2\nc: caf\xe9\n")  # Latin-1 on line 3
    error = refusal(late)[0]
    assert error.line == 3 and "byte 0xe9 at offset 16" in str(error)


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes("\ufeffname: 金华\n".encode())
    assert yamlfile.load(path) == {"name": "金华"}


def test_deep_nesting_is_refused_both_from_the_text_bound_and_from_the_nodes(tmp_path):
    # 300 levels of indentation: the text cannot nest past 2,000, so libyaml composes it and the walk refuses
    indented = tmp_path / "indented.yaml"
    indented.write_text("".join(" " * i + "a:\n" for i in range(300)) + " " * 300 + "x\n")
    error = refusal(indented)[0]
    assert error.line == 101 and "nests deeper than 100 levels" in str(error)
    # one line of compact block sequences: the text allows any depth, so the event stream refuses it
    compact = tmp_path / "compact.yaml"
    compact.write_text("- " * 5000 + "x\n")
    assert "nests deeper than 100 levels" in str(refusal(compact)[0])


@pytest.mark.parametrize("text", ["[" * 200_000 + "]" * 200_000, "- " * 200_000 + "x", "{a: " * 200_000 + "}" * 200_000])
def test_nesting_that_would_overflow_libyamls_c_stack_is_refused_not_a_crash(tmp_path, text):
    # libyaml's composer recurses in C: unguarded, these crash the interpreter (SIGSEGV), so run apart
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    code = ("import sys; from core import yamlfile\n"
            "try:\n    yamlfile.load(sys.argv[1])\nexcept yamlfile.YamlInputError as e:\n    print(e)")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "nests deeper than 100 levels" in proc.stdout


def test_duplicate_keys_of_every_kind(tmp_path):
    cases = {
        "a: 1\nb: 2\na: 3\n": (3, "'a'"),
        "{a: 1, a: 2}\n": (1, "'a'"),
        "1: one\n0x1: also one\n": (2, "'0x1'"),  # the same integer key, written differently
        "yes: 1\ntrue: 2\n": (2, "'true'"),  # both are the boolean true in YAML 1.1
        "outer:\n  - inner:\n      k: 1\n      k: 2\n": (4, "'k'"),
    }
    for i, (text, (line, key)) in enumerate(cases.items()):
        path = tmp_path / f"dup{i}.yaml"
        path.write_text(text)
        error = refusal(path)[0]
        assert error.line == line and f"the key {key} appears twice" in str(error), (text, str(error))


def test_what_is_not_a_duplicate_key_still_loads(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("base: &base {x: 1, y: 2}\n"
                    "merged:\n  <<: *base\n  x: 3\n"  # a merge key's keys may be overridden
                    "'1': string one\n1: integer one\n")  # a string and an integer are different keys
    assert yamlfile.load(path) == {"base": {"x": 1, "y": 2}, "merged": {"x": 3, "y": 2},
                                   "1": "string one", 1: "integer one"}


def test_modest_aliases_load_and_a_recursive_one_is_refused(tmp_path):
    shared = tmp_path / "shared.yaml"
    shared.write_text("defaults: &d {ttl: 600, escalation: 4}\nhosts:\n"
                      + "".join(f"  - {{name: h{i}, settings: *d}}\n" for i in range(200)))
    doc = yamlfile.load(shared)
    assert len(doc["hosts"]) == 200 and doc["hosts"][199]["settings"] == {"ttl": 600, "escalation": 4}
    recursive = tmp_path / "recursive.yaml"
    recursive.write_text("a: &a\n  - *a\n")
    error = refusal(recursive)[0]
    assert "refers to the node that contains it" in str(error) and "remove that alias" in str(error)


def test_aliases_that_nest_past_the_depth_bound_are_refused(tmp_path):
    # each level is shallow, but expanding *l3 inside l4 inside … builds a deep document
    lines = ["l0: &l0 [[[[[x]]]]]"] + [f"l{i}: &l{i} [[[[[*l{i - 1}]]]]]" for i in range(1, 25)]
    path = tmp_path / "stacked.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert "nests deeper than 100 levels" in str(refusal(path)[0])


def test_bounds_are_the_callers_to_change(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text("a: {b: {c: [1, 2, 3]}}\nd: &d [1, 2, 3]\ne: [*d, *d]\n")
    assert yamlfile.load(path)["e"] == [[1, 2, 3], [1, 2, 3]]
    assert "nests deeper than 3 levels" in str(refusal(path, max_depth=3)[0])
    assert "more than the 5 allowed" in str(refusal(path, max_alias_nodes=5)[0])
    assert "larger than 10 bytes" in str(refusal(path, max_bytes=10)[0])


def test_values_python_cannot_convert_name_their_line(tmp_path):
    cases = {"a: 1\nb: 2024-13-45\n": (2, "as timestamp"), "n: " + "1" * 5000 + "\n": (1, "as int"),
             "a: ok\nb: !!float nope\n": (2, "as float")}
    for i, (text, (line, words)) in enumerate(cases.items()):
        path = tmp_path / f"value{i}.yaml"
        path.write_text(text)
        error = refusal(path)[0]
        assert error.line == line and words in str(error) and "quote it" in str(error), str(error)


def test_other_broken_files(tmp_path):
    cases = {
        "a: b\x00c\n": (1, "character #x0000 is not allowed"),
        "a: 1\n  b: 2\n": (2, "correct the YAML at that line"),
        "a: 1\n---\nb: 2\n": (2, "keep one document"),
        "a: !!python/object:os.system x\n": (1, "govctl reads plain YAML data only"),
        "? [a, b]\n: 1\n": (1, "use a plain value"),
        "# only a comment\n": (None, "holds no YAML data"),
    }
    for i, (text, (line, words)) in enumerate(cases.items()):
        path = tmp_path / f"broken{i}.yaml"
        path.write_text(text)
        error = refusal(path)[0]
        assert error.line == line and words in str(error), (text, str(error))
    missing = refusal(tmp_path / "absent.yaml")[0]
    assert "cannot read the file (No such file or directory)" in str(missing)


def test_empty_files_are_accepted_where_the_caller_says_so(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert yamlfile.load(path, allow_empty=True) is None
    assert yamlfile.load_all(path, allow_empty=True) == []


def test_load_all_reads_every_document_and_checks_each(tmp_path):
    path = tmp_path / "rules.yml"
    path.write_text("title: one\n---\ntitle: two\n")
    assert yamlfile.load_all(path) == [{"title": "one"}, {"title": "two"}]
    path.write_text("title: one\n---\ntitle: two\ntitle: again\n")
    assert refusal_all(path).line == 4


def refusal_all(path: Path) -> YamlInputError:
    with pytest.raises(YamlInputError) as caught:
        yamlfile.load_all(path)
    return caught.value


SHIPPED = [ROOT / name for name in subprocess.run(["git", "ls-files", "*.yaml", "*.yml"], cwd=ROOT, check=True,
                                                   capture_output=True, text=True).stdout.split()]


def test_every_shipped_yaml_file_loads_as_yaml_safe_load_reads_it():
    assert len(SHIPPED) > 40
    for path in SHIPPED:
        text = path.read_text(encoding="utf-8")
        assert yamlfile.load_all(path, allow_empty=True) == list(yaml.safe_load_all(text)), path


# Nesting shapes for the text bound: block (indented and compact), flow, and flow in block.
def _nested(depth_left: int, draw) -> object:
    if depth_left == 0:
        return draw(st.sampled_from(["x", 1, "a b"]))
    inner = _nested(depth_left - 1, draw)
    return draw(st.sampled_from([[inner], {"k": inner}, [inner, "y"], {"k": inner, "j": 2}]))


@st.composite
def nested_documents(draw) -> str:
    data = _nested(draw(st.integers(1, 40)), draw)
    text = yaml.safe_dump(data, default_flow_style=draw(st.sampled_from([False, True, None])),
                          indent=draw(st.integers(2, 4)), width=draw(st.sampled_from([20, 80, 10_000])))
    return text.replace("\n", draw(st.sampled_from(["\n", "\r\n", "\r"])))


def _depth(text: str) -> int:
    depth = deepest = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            deepest = max(deepest, depth)
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1
    return deepest


@settings(max_examples=300, deadline=None)
@given(nested_documents())
def test_the_text_bound_is_never_below_the_real_nesting(text):
    assert yamlfile._nesting_bound(text) >= _depth(text)


@pytest.mark.parametrize("text", ["- - - - - x\n", "? - - x\n: - - y\n", "- ? - x\n", "a:\n- b:\n  - c:\n    - d\n",
                                  "- a: 1\n  b:\n  - [c, [d, {e: [f]}]]\n", "[a: [b: [c: d]]]\n",
                                  "\ufeff- - - x\n", "- &a a: 1\n", "--- !!seq\n- - x\n",
                                  "x:\r- - - y\r", "a:\n  b:\n    c:\n      - - [d]\n"])
def test_the_text_bound_holds_for_compact_forms(text):
    assert yamlfile._nesting_bound(text) >= _depth(text)
