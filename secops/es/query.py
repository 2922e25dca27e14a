"""Sigma detections (pySigma's parsed condition trees, after the ECS processing pipeline) → Elasticsearch
Query DSL, with the same semantics as the embedded evaluator (secops/sigma_compile.py).

The scheduled searches (secops/es/detect.py) run the Lucene queries of pysigma-backend-elasticsearch
for every rule this converter calls exact, and this converter's own query for the others. Its
`exact` verdict is therefore the single judgement of "Elasticsearch can express this rule": strings
on keyword fields (lowercase-normalized in the events template, so Sigma's case-insensitive matching
holds for the backend's query_string too), CIDR ranges on `ip` fields, comparisons on numeric fields.

Where Elasticsearch cannot express a leaf exactly (a regular expression, a field reference, a bare
keyword, a number compared with a keyword field, a `|cased` string on a normalized field), the leaf
becomes a superset (`exists`, or all events for a bare keyword) and the rule is marked inexact: its
hits are confirmed by the rule's own compiled predicate. Under NOT a superset would turn into a
subset, so a NOT over an inexact part matches everything instead.
"""
from __future__ import annotations

import ipaddress
from typing import Any

from sigma.conditions import (ConditionAND, ConditionFieldEqualsValueExpression, ConditionNOT,
                              ConditionOR, ConditionValueExpression)
from sigma.types import (CompareOperators, SigmaBool, SigmaCasedString, SigmaCIDRExpression,
                         SigmaCompareExpression, SigmaExists, SigmaExpansion, SigmaFieldReference,
                         SigmaNull, SigmaNumber, SigmaRegularExpression, SigmaString, SpecialChars)

from ..sigma_compile import UnsupportedRule

MATCH_ALL: dict = {"match_all": {}}
MATCH_NONE: dict = {"match_none": {}}
NUMERIC = frozenset({"long", "integer", "short", "byte", "double", "float"})


class Converter:
    """Converts condition trees given the index's field types (unknown fields are dynamic keywords).
    `normalized`: keyword fields with the lowercase normalizer; `dynamic_normalized`: whether unknown
    (dynamically mapped) string fields get it too."""

    def __init__(self, field_types: dict[str, str], normalized: frozenset[str] = frozenset(),
                 dynamic_normalized: bool = False):
        self.types = field_types
        self.normalized = normalized
        self.dynamic_normalized = dynamic_normalized

    @classmethod
    def for_mappings(cls, mappings: dict[str, Any]) -> "Converter":
        """The converter for an index template's `mappings` (templates.yaml's events template)."""
        props = mappings.get("properties", {})
        normalized = frozenset(f for f, spec in props.items() if spec.get("type") == "keyword" and spec.get("normalizer"))
        dynamic = any(spec.get("mapping", {}).get("normalizer") for t in mappings.get("dynamic_templates", [])
                      for spec in t.values() if spec.get("match_mapping_type") == "string")
        return cls(field_types(mappings), normalized, dynamic)

    def is_normalized(self, field: str) -> bool:
        return field in self.normalized if field in self.types else self.dynamic_normalized

    def type_of(self, field: str) -> str:
        return self.types.get(field, "keyword")

    def convert(self, trees: list) -> tuple[dict, bool]:
        """(query, exact) for a rule's condition trees (several conditions are ORed, as Sigma asks)."""
        parts = [self.node(t) for t in trees]
        if not parts:
            return MATCH_NONE, True
        if len(parts) == 1:
            return parts[0]
        return _or([q for q, _ in parts]), all(e for _, e in parts)

    def node(self, node) -> tuple[dict, bool]:
        if isinstance(node, ConditionAND):
            parts = [self.node(a) for a in node.args]
            return {"bool": {"filter": [q for q, _ in parts]}}, all(e for _, e in parts)
        if isinstance(node, ConditionOR):
            parts = [self.node(a) for a in node.args]
            return _or([q for q, _ in parts]), all(e for _, e in parts)
        if isinstance(node, ConditionNOT):
            query, exact = self.node(node.args[0])
            return ({"bool": {"must_not": [query]}}, True) if exact else (MATCH_ALL, False)
        if isinstance(node, ConditionFieldEqualsValueExpression):
            return self.leaf(node.field, node.value)
        if isinstance(node, ConditionValueExpression):
            # a bare keyword is a substring of the message, which is stored but not indexed (ingest rate)
            return MATCH_ALL, False
        raise UnsupportedRule(f"condition element {type(node).__name__} is not supported")

    # -------------------------------------------------------------- leaves
    def leaf(self, field: str, value) -> tuple[dict, bool]:
        kind = self.type_of(field)
        exists = {"exists": {"field": field}}
        if isinstance(value, SigmaExpansion):
            parts = [self.leaf(field, v) for v in value.values]
            return _or([q for q, _ in parts]), all(e for _, e in parts)
        if isinstance(value, SigmaString):
            return self.string(field, kind, value)
        if isinstance(value, SigmaExists):
            return (exists if value.exists else {"bool": {"must_not": [exists]}}), True
        if isinstance(value, SigmaNull):
            return {"bool": {"must_not": [exists]}}, True
        if isinstance(value, SigmaBool):
            if kind == "boolean":
                return {"term": {field: value.boolean}}, True
            return exists, False
        if isinstance(value, SigmaNumber):
            if kind in NUMERIC:
                return {"term": {field: value.number}}, True
            return exists, False  # "22" and "22.0" both equal 22 in Sigma: confirmed in Python
        if isinstance(value, SigmaCompareExpression):
            if kind not in NUMERIC:
                return exists, False
            num = value.number.number
            if value.op is CompareOperators.NEQ:
                return {"bool": {"filter": [exists], "must_not": [{"term": {field: num}}]}}, True
            op = {CompareOperators.LT: "lt", CompareOperators.LTE: "lte", CompareOperators.GT: "gt",
                  CompareOperators.GTE: "gte"}[value.op]
            return {"range": {field: {op: num}}}, True
        if isinstance(value, SigmaCIDRExpression):
            if kind == "ip":
                return {"term": {field: str(value.network)}}, True
            return exists, False
        if isinstance(value, (SigmaRegularExpression, SigmaFieldReference)):
            return exists, False
        raise UnsupportedRule(f"value type {type(value).__name__} (field {field!r}) is not supported")

    def string(self, field: str, kind: str, value: SigmaString) -> tuple[dict, bool]:
        parts = list(value.s)
        if any(not isinstance(p, (str, SpecialChars)) for p in parts):
            raise UnsupportedRule(f"placeholders are not supported in {value}")
        cased = isinstance(value, SigmaCasedString)
        plain = all(isinstance(p, str) for p in parts)
        if kind == "keyword":
            # a normalized field only answers case-insensitively: a |cased match is confirmed in Python
            exact = not (cased and self.is_normalized(field))
            if plain:
                text = "".join(parts)
                return {"term": {field: {"value": text, "case_insensitive": not cased}}}, exact
            pattern = "".join("*" if p is SpecialChars.WILDCARD_MULTI else "?" if p is SpecialChars.WILDCARD_SINGLE
                              else _escape_wildcard(p) for p in parts)
            return {"wildcard": {field: {"value": pattern, "case_insensitive": not cased}}}, exact
        if plain:
            text = "".join(parts)
            if kind == "ip":
                try:
                    return {"term": {field: str(ipaddress.ip_address(text))}}, True
                except ValueError:
                    return MATCH_NONE, True  # not an address: no value of an ip field equals it
            if kind in NUMERIC:
                try:
                    number = float(text)
                except ValueError:
                    return MATCH_NONE, True
                if number.is_integer() and text.strip().lstrip("+-").isdigit():
                    return {"term": {field: int(number)}}, True
                return exists, False
            if kind == "boolean" and text.lower() in ("true", "false"):
                return {"term": {field: text.lower() == "true"}}, True
        return {"exists": {"field": field}}, False  # wildcards over ip/number/text fields: confirmed in Python


def _or(queries: list[dict]) -> dict:
    if len(queries) == 1:
        return queries[0]
    return {"bool": {"should": queries, "minimum_should_match": 1}}


def _escape_wildcard(text: str) -> str:
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")


def field_types(mappings: dict[str, Any]) -> dict[str, str]:
    """Dotted field → type from the events template's `properties` (dotted keys, as templates.yaml writes them)."""
    return {name: spec.get("type", "object") for name, spec in mappings.get("properties", {}).items()}
