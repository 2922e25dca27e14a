"""Sigma detections (parsed by pySigma) → Python predicates over flat ECS events.

pySigma parses a rule's condition into a tree of ConditionAND / ConditionOR / ConditionNOT over
leaves (field = value, or bare keyword values). Each rule's tree becomes the source of one Python
function, compiled once: constants are passed in by name (never pasted into the source), the common
string cases (exact, prefix, suffix, contains; case-insensitive as Sigma asks) are inlined and the
rest call small matcher closures. `index_key` picks a field whose exact value a rule requires, so the
engine evaluates only the rules that can match an event.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Any, Callable

from sigma.conditions import (ConditionAND, ConditionFieldEqualsValueExpression, ConditionNOT,
                              ConditionOR, ConditionValueExpression)
from sigma.types import (CompareOperators, SigmaBool, SigmaCasedString, SigmaCIDRExpression,
                         SigmaCompareExpression, SigmaExists, SigmaExpansion, SigmaFieldReference,
                         SigmaNull, SigmaNumber, SigmaRegularExpression, SigmaRegularExpressionFlag,
                         SigmaString, SigmaTimestampPart, SpecialChars)

KEYWORD_FIELDS = ("message",)  # where bare Sigma keywords are searched


class UnsupportedRule(ValueError):
    """The rule uses a construct the evaluator does not implement; the message says which."""


def _plain_parts(value: SigmaString) -> list[str | SpecialChars]:
    parts = list(value.s)
    if any(not isinstance(p, (str, SpecialChars)) for p in parts):
        raise UnsupportedRule(f"placeholders are not supported in {value}")
    return parts


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


class _Compiler:
    """Builds one predicate's source; `consts` holds the values the source refers to by name."""

    def __init__(self):
        self.consts: dict[str, Any] = {}

    def const(self, value: Any) -> str:
        name = f"c{len(self.consts)}"
        self.consts[name] = value
        return name

    # -------------------------------------------------------------- tree
    def node(self, node) -> str:
        if isinstance(node, ConditionAND):
            return "(" + " and ".join(self.node(a) for a in node.args) + ")" if node.args else "True"
        if isinstance(node, ConditionOR):
            return "(" + " or ".join(self.node(a) for a in node.args) + ")" if node.args else "False"
        if isinstance(node, ConditionNOT):
            return f"(not {self.node(node.args[0])})"
        if isinstance(node, ConditionFieldEqualsValueExpression):
            return self.leaf(node.field, node.value)
        if isinstance(node, ConditionValueExpression):
            return "(" + " or ".join(self.keyword(f, node.value) for f in KEYWORD_FIELDS) + ")"
        raise UnsupportedRule(f"condition element {type(node).__name__} is not supported")

    def keyword(self, field: str, value) -> str:
        if isinstance(value, SigmaString):
            parts = _plain_parts(value)
            if parts[:1] != [SpecialChars.WILDCARD_MULTI]:
                parts.insert(0, SpecialChars.WILDCARD_MULTI)
            if parts[-1:] != [SpecialChars.WILDCARD_MULTI]:
                parts.append(SpecialChars.WILDCARD_MULTI)
            return self.string(field, parts, cased=isinstance(value, SigmaCasedString))
        return self.leaf(field, value)

    # -------------------------------------------------------------- leaves
    def leaf(self, field: str, value) -> str:
        f = self.const(field)
        if isinstance(value, SigmaTimestampPart):
            raise UnsupportedRule(f"timestamp modifiers (field {field!r}) are not supported")
        if isinstance(value, SigmaExpansion):
            return "(" + " or ".join(self.leaf(field, v) for v in value.values) + ")"
        if isinstance(value, SigmaString):
            return self.string(field, _plain_parts(value), cased=isinstance(value, SigmaCasedString))
        if isinstance(value, SigmaExists):
            return f"((g({f}) is not None) is {value.exists!r})"
        if isinstance(value, SigmaNull):
            return f"(g({f}) is None)"
        if isinstance(value, SigmaBool):
            want = value.boolean
            return f"m(e, {f}, {self.const(lambda v: v is want or str(v).lower() == str(want).lower())})"
        if isinstance(value, SigmaNumber):
            num = value.number
            return f"m(e, {f}, {self.const(lambda v: _as_number(v) == num)})"
        if isinstance(value, SigmaCompareExpression):
            num, op = value.number.number, value.op
            test = {CompareOperators.LT: lambda x: x < num, CompareOperators.LTE: lambda x: x <= num,
                    CompareOperators.GT: lambda x: x > num, CompareOperators.GTE: lambda x: x >= num,
                    CompareOperators.NEQ: lambda x: x != num}[op]
            return f"m(e, {f}, {self.const(lambda v: (n := _as_number(v)) is not None and test(n))})"
        if isinstance(value, SigmaRegularExpression):
            flags = 0
            for flag in value.flags:
                flags |= {SigmaRegularExpressionFlag.IGNORECASE: re.I, SigmaRegularExpressionFlag.MULTILINE: re.M,
                          SigmaRegularExpressionFlag.DOTALL: re.S}[flag]
            pattern = re.compile(value.regexp.to_plain(regex=True) if isinstance(value.regexp, SigmaString)
                                 else str(value.regexp), flags)
            return f"m(e, {f}, {self.const(lambda v: pattern.search(str(v)) is not None)})"
        if isinstance(value, SigmaCIDRExpression):
            net = value.network
            lo, hi, ver = int(net.network_address), int(net.broadcast_address), net.version

            def in_net(v):
                k = _ip_key(str(v))
                return k is not None and k[0] == ver and lo <= k[1] <= hi
            return f"m(e, {f}, {self.const(in_net)})"
        if isinstance(value, SigmaFieldReference):
            other = self.const(value.field)
            return f"((v := g({f})) is not None and v == g({other}))"
        raise UnsupportedRule(f"value type {type(value).__name__} (field {field!r}) is not supported")

    def string(self, field: str, parts: list, cased: bool) -> str:
        f = self.const(field)
        star = SpecialChars.WILDCARD_MULTI
        inner = parts[1:-1] if len(parts) >= 2 else []
        norm = (lambda s: s) if cased else str.lower
        low = "" if cased else ".lower()"
        if all(isinstance(p, str) for p in parts):
            text = norm("".join(parts))
            c = self.const(text)
            return f"(v{low} == {c} if (v := g({f})).__class__ is str else m(e, {f}, {self.const(_generic(text, cased, 'eq'))}))"
        if len(parts) == 3 and parts[0] is star and parts[2] is star and isinstance(parts[1], str):
            c = self.const(norm(parts[1]))
            return f"({c} in v{low} if (v := g({f})).__class__ is str else m(e, {f}, {self.const(_generic(norm(parts[1]), cased, 'in'))}))"
        if len(parts) == 2 and parts[1] is star and isinstance(parts[0], str):
            c = self.const(norm(parts[0]))
            return f"(v{low}.startswith({c}) if (v := g({f})).__class__ is str else m(e, {f}, {self.const(_generic(norm(parts[0]), cased, 'start'))}))"
        if len(parts) == 2 and parts[0] is star and isinstance(parts[1], str):
            c = self.const(norm(parts[1]))
            return f"(v{low}.endswith({c}) if (v := g({f})).__class__ is str else m(e, {f}, {self.const(_generic(norm(parts[1]), cased, 'end'))}))"
        del inner
        rx = "".join(".*" if p is star else "." if p is SpecialChars.WILDCARD_SINGLE else re.escape(p)
                     for p in parts)
        pattern = re.compile(rx, re.S if cased else re.S | re.I)
        return f"m(e, {f}, {self.const(lambda v: pattern.fullmatch(str(v)) is not None)})"


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
    expr = " or ".join(comp.node(tree) for tree in parsed_conditions) or "False"
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
