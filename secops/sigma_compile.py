"""Sigma detections (parsed by pySigma) → Python predicates over flat ECS events.

pySigma parses a rule's condition into a tree of ConditionAND / ConditionOR / ConditionNOT over
leaves (field = value, or bare keyword values); the compiler walks it as a secops.sigma_tree visitor
(the Elasticsearch backend, secops/es/query.py, is the other one). Each rule's tree becomes the source
of one Python function, compiled once: constants are passed in by name (never pasted into the source), the common
string cases (exact, prefix, suffix, contains; case-insensitive as Sigma asks) are inlined and the
rest call small matcher closures. `index_key` picks a field whose exact value a rule requires, so the
engine evaluates only the rules that can match an event; `literal_screen` gives, for rules without such a
field, the texts one of which must occur in a field, so the engine can pass over most events with one
search per field for all of a dataset's rules (secops.detect.Detector).
"""
from __future__ import annotations

import ipaddress
import re
from typing import Any, Callable

from sigma.conditions import ConditionAND, ConditionFieldEqualsValueExpression, ConditionOR
from sigma.types import (CompareOperators, SigmaBool, SigmaCasedString, SigmaCIDRExpression,
                         SigmaCompareExpression, SigmaExists, SigmaExpansion, SigmaFieldReference,
                         SigmaNull, SigmaNumber, SigmaRegularExpression, SigmaRegularExpressionFlag,
                         SigmaString, SigmaTimestampPart, SpecialChars)

from .sigma_tree import ConditionVisitor, UnsupportedRule, string_parts

Screen = dict  # field → frozenset of ("lower" | "nocase", text): the rule needs one in the field (literal_screen)

KEYWORD_FIELDS = ("message",)  # where bare Sigma keywords are searched


def _ip_key(text: str, _cache: dict = {}) -> tuple[int, int] | None:  # noqa: B006 - memo
    hit = _cache.get(text, 0)
    if hit == 0:
        try:
            addr = ipaddress.ip_address(text)
            hit = (addr.version, int(addr))
        except ValueError:
            hit = None
        if len(_cache) > 65536:
            _cache.clear()
        _cache[text] = hit
    return hit


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class _Compiler(ConditionVisitor[str]):
    """Builds one predicate's source expression; `consts` holds the values the source refers to by name."""

    def __init__(self):
        self.consts: dict[str, Any] = {}

    def const(self, value: Any) -> str:
        name = f"c{len(self.consts)}"
        self.consts[name] = value
        return name

    # -------------------------------------------------------------- tree
    def all_of(self, args) -> str:
        return "(" + " and ".join(self.visit(a) for a in args) + ")" if args else "True"

    def any_of(self, args) -> str:
        return "(" + " or ".join(self._alternatives(args)) + ")" if args else "False"

    def negation(self, arg) -> str:
        return f"(not {self.visit(arg)})"

    def keyword(self, value) -> str:
        return "(" + " or ".join(self._keyword_in(f, value) for f in KEYWORD_FIELDS) + ")"

    def _alternatives(self, args) -> list[str]:
        """The alternatives of an OR. Plain string tests of one field and one kind (a Sigma value list:
        `url.query|contains: [...]`) become one test that reads and lower-cases the field once."""
        groups: dict[tuple, list[str]] = {}
        out: list[Any] = []
        for arg in args:
            test = _string_test(arg)
            if test is None:
                out.append(self.visit(arg))
                continue
            field, how, cased, text = test
            if (field, how, cased) not in groups:
                groups[(field, how, cased)] = []
                out.append((field, how, cased))  # placeholder: the group sits where its first test was
            groups[(field, how, cased)].append(text)
        return [self._string_group(item, groups[item]) if isinstance(item, tuple) else item for item in out]

    def _string_group(self, key: tuple, texts: list[str]) -> str:
        field, how, cased = key
        if len(texts) == 1:
            return self._string_test(field, how, cased, texts[0])
        f = self.const(field)
        low = "" if cased else ".lower()"
        fallback = self.const(_generic_any([_generic(t, cased, how) for t in texts]))
        if how == "eq":
            test = f"v{low} in {self.const(frozenset(texts))}"
        elif how == "start":
            test = f"v{low}.startswith({self.const(tuple(texts))})"
        elif how == "end":
            test = f"v{low}.endswith({self.const(tuple(texts))})"
        else:  # contains: the first test lower-cases once, the others reuse it
            names = [self.const(t) for t in texts]
            test = f"{names[0]} in (lv := v{low}) or " + " or ".join(f"{n} in lv" for n in names[1:])
        return f"(({test}) if (v := g({f})).__class__ is str else v is not None and m(e, {f}, {fallback}))"

    def _string_test(self, field: str, how: str, cased: bool, text: str) -> str:
        """One plain string test (text already lower-cased unless cased); non-strings fall back to m()."""
        f = self.const(field)
        c = self.const(text)
        low = "" if cased else ".lower()"
        test = {"eq": f"v{low} == {c}", "in": f"{c} in v{low}", "start": f"v{low}.startswith({c})",
                "end": f"v{low}.endswith({c})"}[how]
        return (f"({test} if (v := g({f})).__class__ is str else v is not None and "
                f"m(e, {f}, {self.const(_generic(text, cased, how))}))")

    def _keyword_in(self, field: str, value) -> str:
        if isinstance(value, SigmaString):
            parts = string_parts(value)
            if parts[:1] != [SpecialChars.WILDCARD_MULTI]:
                parts.insert(0, SpecialChars.WILDCARD_MULTI)
            if parts[-1:] != [SpecialChars.WILDCARD_MULTI]:
                parts.append(SpecialChars.WILDCARD_MULTI)
            return self._pattern(field, parts, cased=isinstance(value, SigmaCasedString))
        return self.field_value(field, value)

    # -------------------------------------------------------------- leaves
    def timestamp_part(self, field: str, value: SigmaTimestampPart) -> str:
        raise UnsupportedRule(f"timestamp modifiers (field {field!r}) are not supported")

    def expansion(self, field: str, value: SigmaExpansion) -> str:
        return "(" + " or ".join(self.field_value(field, v) for v in value.values) + ")"

    def string(self, field: str, value: SigmaString) -> str:
        return self._pattern(field, string_parts(value), cased=isinstance(value, SigmaCasedString))

    def exists(self, field: str, value: SigmaExists) -> str:
        return f"((g({self.const(field)}) is not None) is {value.exists!r})"

    def null(self, field: str, value: SigmaNull) -> str:
        return f"(g({self.const(field)}) is None)"

    def boolean(self, field: str, value: SigmaBool) -> str:
        want = value.boolean
        return f"m(e, {self.const(field)}, {self.const(lambda v: v is want or str(v).lower() == str(want).lower())})"

    def number(self, field: str, value: SigmaNumber) -> str:
        num = value.number
        return f"m(e, {self.const(field)}, {self.const(lambda v: _as_number(v) == num)})"

    def compare(self, field: str, value: SigmaCompareExpression) -> str:
        num, op = value.number.number, value.op
        test = {CompareOperators.LT: lambda x: x < num, CompareOperators.LTE: lambda x: x <= num,
                CompareOperators.GT: lambda x: x > num, CompareOperators.GTE: lambda x: x >= num,
                CompareOperators.NEQ: lambda x: x != num}[op]
        return f"m(e, {self.const(field)}, {self.const(lambda v: (n := _as_number(v)) is not None and test(n))})"

    def regex(self, field: str, value: SigmaRegularExpression) -> str:
        flags = 0
        for flag in value.flags:
            flags |= {SigmaRegularExpressionFlag.IGNORECASE: re.I, SigmaRegularExpressionFlag.MULTILINE: re.M,
                      SigmaRegularExpressionFlag.DOTALL: re.S}[flag]
        pattern = re.compile(value.regexp.to_plain(regex=True) if isinstance(value.regexp, SigmaString)
                             else str(value.regexp), flags)
        return f"m(e, {self.const(field)}, {self.const(lambda v: pattern.search(str(v)) is not None)})"

    def cidr(self, field: str, value: SigmaCIDRExpression) -> str:
        net = value.network
        lo, hi, ver = int(net.network_address), int(net.broadcast_address), net.version

        def in_net(v):
            k = _ip_key(str(v))
            return k is not None and k[0] == ver and lo <= k[1] <= hi
        return f"m(e, {self.const(field)}, {self.const(in_net)})"

    def field_reference(self, field: str, value: SigmaFieldReference) -> str:
        return f"((v := g({self.const(field)})) is not None and v == g({self.const(value.field)}))"

    def _pattern(self, field: str, parts: list, cased: bool) -> str:
        simple = _simple_string(parts, cased)
        if simple is not None:
            return self._string_test(field, simple[0], cased, simple[1])
        f = self.const(field)
        star = SpecialChars.WILDCARD_MULTI
        # A leading or trailing * is left out of the pattern, which is then searched rather than matched whole
        # (the same strings match): "*/cores?action=*" is a search for the literal run around one character,
        # not a ".*" that runs to the value's end and backtracks (timed alike here on short values; the
        # search does not grow with what follows the match).
        lead, trail = parts[:1] == [star], parts[-1:] == [star] and len(parts) > 1
        core = parts[1 if lead else 0:len(parts) - 1 if trail else len(parts)]
        rx = "".join(".*" if p is star else "." if p is SpecialChars.WILDCARD_SINGLE else re.escape(p)
                     for p in core)
        pattern = re.compile(("" if lead else r"\A") + rx + ("" if trail else r"\Z"), re.S if cased else re.S | re.I)
        return f"m(e, {f}, {self.const(lambda v: pattern.search(str(v)) is not None)})"


def _simple_string(parts: list, cased: bool) -> tuple[str, str] | None:
    """(how, text) when a Sigma string is an exact, prefix, suffix or contains test; else None."""
    star = SpecialChars.WILDCARD_MULTI
    norm = (lambda s: s) if cased else str.lower
    if all(isinstance(p, str) for p in parts):
        return "eq", norm("".join(parts))
    if len(parts) == 3 and parts[0] is star and parts[2] is star and isinstance(parts[1], str):
        return "in", norm(parts[1])
    if len(parts) == 2 and parts[1] is star and isinstance(parts[0], str):
        return "start", norm(parts[0])
    if len(parts) == 2 and parts[0] is star and isinstance(parts[1], str):
        return "end", norm(parts[1])
    return None


def _string_test(node) -> tuple[str, str, bool, str] | None:
    """(field, how, cased, text) of a condition leaf that is one plain string test, else None."""
    if not isinstance(node, ConditionFieldEqualsValueExpression) or not isinstance(node.value, SigmaString):
        return None
    try:
        parts = string_parts(node.value)
    except UnsupportedRule:
        return None  # compiled (and refused) the usual way
    cased = isinstance(node.value, SigmaCasedString)
    simple = _simple_string(parts, cased)
    return None if simple is None else (node.field, simple[0], cased, simple[1])


def _generic_any(tests: list[Callable[[Any], bool]]) -> Callable[[Any], bool]:
    return lambda v: any(t(v) for t in tests)


def _generic(text: str, cased: bool, how: str) -> Callable[[Any], bool]:
    """Matcher for non-string event values (numbers, booleans), compared as text."""
    def test(v: Any) -> bool:
        s = str(v).lower() if not cased and not isinstance(v, bool) else str(v)
        if isinstance(v, bool):
            s = s.lower()
        return (s == text if how == "eq" else text in s if how == "in"
                else s.startswith(text) if how == "start" else s.endswith(text))
    return test


def _match_any(event: dict, field: str, test: Callable[[Any], bool]) -> bool:
    v = event.get(field)
    if v is None:
        return False
    if isinstance(v, (list, tuple)):
        return any(x is not None and test(x) for x in v)
    return test(v)


def compile_condition(parsed_conditions: list) -> Callable[[dict], bool]:
    """pySigma's parsed condition trees (ORed, as Sigma asks for several conditions) → predicate."""
    comp = _Compiler()
    expr = " or ".join(comp.visit(tree) for tree in parsed_conditions) or "False"
    source = f"def predicate(e):\n    g = e.get\n    return bool({expr})\n"
    namespace: dict[str, Any] = dict(comp.consts)
    namespace["m"] = _match_any  # m(e, field, test): any value of the field (ECS fields may be lists)
    exec(compile(source, "<sigma-rule>", "exec"), namespace)  # noqa: S102 - source built from our own templates
    return namespace["predicate"]


def index_key(parsed_conditions: list) -> tuple[str, frozenset[str]] | None:
    """A (field, lower-cased values) the event must have for the rule to match, if there is one."""
    if len(parsed_conditions) != 1:
        return None
    return _required(parsed_conditions[0])


def _exact(node) -> tuple[str, str] | None:
    if isinstance(node, ConditionFieldEqualsValueExpression) and isinstance(node.value, SigmaString) \
            and not isinstance(node.value, SigmaCasedString) and not node.value.contains_special():
        return node.field, node.value.to_plain().lower()
    return None


def _required(node) -> tuple[str, frozenset[str]] | None:
    one = _exact(node)
    if one:
        return one[0], frozenset({one[1]})
    if isinstance(node, ConditionOR) and node.args:
        leaves = [_exact(a) for a in node.args]
        if all(leaves) and len({f for f, _ in leaves}) == 1:
            return leaves[0][0], frozenset(v for _, v in leaves)
        subs = [_required(a) for a in node.args]
        if all(subs) and len({f for f, _ in subs}) == 1:
            return subs[0][0], frozenset().union(*(v for _, v in subs))
        return None
    if isinstance(node, ConditionAND):
        best = None
        for arg in node.args:
            req = _required(arg)
            if req and (best is None or req[0] == "event.action" or len(req[1]) < len(best[1])):
                best = req
        return best
    return None


def literal_screen(parsed_conditions: list) -> Screen | None:
    """{field: texts} such that the rule can match an event only if one of the texts occurs in the string value
    of one of the fields (a field that is absent cannot help; a value that is not a string — a number, an ECS
    array — must be taken as a possible match by the caller); None when the rule has no such necessary texts
    (a regular expression alone, a negation, a number, a cased string …). A text is ("lower", t): t occurs in
    the lower-cased value, for Sigma's case-insensitive exact, prefix, suffix and contains tests, which compare
    exactly so; or ("nocase", t): t occurs in the value under re.IGNORECASE, for the longest literal run of a
    case-insensitive pattern with wildcards, which the predicate searches with that flag. Either way a screen
    that finds none of its texts proves the rule cannot match."""
    screens = [_Screener().visit(tree) for tree in parsed_conditions]
    return _union(screens) if screens else None


def _union(screens: list) -> Screen | None:
    if any(s is None for s in screens):
        return None
    out: dict[str, frozenset[tuple[str, str]]] = {}
    for s in screens:
        for fld, texts in s.items():
            out[fld] = out.get(fld, frozenset()) | texts
    return out


class _Screener(ConditionVisitor["Screen | None"]):
    """The necessary texts of a condition tree (literal_screen); every construct without them gives None."""

    def all_of(self, args) -> Screen | None:
        # Any one operand's texts are necessary for the AND: the one with the fewest fields and texts.
        found = [s for s in (self.visit(a) for a in args) if s is not None]
        return min(found, key=lambda s: (len(s), sum(len(t) for t in s.values()))) if found else None

    def any_of(self, args) -> Screen | None:
        return _union([self.visit(a) for a in args]) if args else None

    def negation(self, arg) -> Screen | None:
        return None

    def keyword(self, value) -> Screen | None:
        if not isinstance(value, SigmaString):
            return None
        parts = string_parts(value)
        if parts[:1] != [SpecialChars.WILDCARD_MULTI]:
            parts.insert(0, SpecialChars.WILDCARD_MULTI)
        if parts[-1:] != [SpecialChars.WILDCARD_MULTI]:
            parts.append(SpecialChars.WILDCARD_MULTI)
        return _union([self._texts(f, parts, isinstance(value, SigmaCasedString)) for f in KEYWORD_FIELDS])

    def string(self, field: str, value: SigmaString) -> Screen | None:
        return self._texts(field, string_parts(value), isinstance(value, SigmaCasedString))

    @staticmethod
    def _texts(field: str, parts: list, cased: bool) -> Screen | None:
        if cased:
            return None
        simple = _simple_string(parts, cased=False)
        if simple is not None:
            return {field: frozenset({("lower", simple[1])})}
        longest = max((p for p in parts if isinstance(p, str)), key=len, default="")
        return {field: frozenset({("nocase", longest)})} if longest else None

    def expansion(self, field: str, value: SigmaExpansion) -> Screen | None:
        return _union([self.field_value(field, v) for v in value.values]) if value.values else None

    def unsupported_value(self, field: str, value) -> Screen | None:
        return None

    def number(self, field: str, value) -> Screen | None:
        return None
