"""Sigma detections (pySigma's parsed condition trees, after the ECS processing pipeline) → Elasticsearch
Query DSL, with the same semantics as the embedded evaluator (secops/sigma_compile.py): both walk the tree as
secops.sigma_tree visitors.

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

from sigma.types import (CompareOperators, SigmaBool, SigmaCasedString, SigmaCIDRExpression,
                         SigmaCompareExpression, SigmaExists, SigmaExpansion, SigmaFieldReference,
                         SigmaNull, SigmaNumber, SigmaRegularExpression, SigmaString, SpecialChars)

from ..sigma_tree import ConditionVisitor, string_parts

MATCH_ALL: dict = {"match_all": {}}
MATCH_NONE: dict = {"match_none": {}}
NUMERIC = frozenset({"long", "integer", "short", "byte", "double", "float"})


class Converter(ConditionVisitor[tuple[dict, bool]]):
    """Converts condition trees (each node to (query, exact)) given the index's field types (unknown fields are dynamic keywords).
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
        parts = [self.visit(t) for t in trees]
        if not parts:
            return MATCH_NONE, True
        if len(parts) == 1:
            return parts[0]
        return _or([q for q, _ in parts]), all(e for _, e in parts)

    def all_of(self, args) -> tuple[dict, bool]:
        parts = [self.visit(a) for a in args]
        return {"bool": {"filter": [q for q, _ in parts]}}, all(e for _, e in parts)

    def any_of(self, args) -> tuple[dict, bool]:
        parts = [self.visit(a) for a in args]
        return _or([q for q, _ in parts]), all(e for _, e in parts)

    def negation(self, arg) -> tuple[dict, bool]:
        query, exact = self.visit(arg)
        return ({"bool": {"must_not": [query]}}, True) if exact else (MATCH_ALL, False)

    def keyword(self, value) -> tuple[dict, bool]:
        # a bare keyword is a substring of the message, which is stored but not indexed (ingest rate)
        return MATCH_ALL, False

    # -------------------------------------------------------------- leaves
    def expansion(self, field: str, value: SigmaExpansion) -> tuple[dict, bool]:
        parts = [self.field_value(field, v) for v in value.values]
        return _or([q for q, _ in parts]), all(e for _, e in parts)

    def exists(self, field: str, value: SigmaExists) -> tuple[dict, bool]:
        exists = {"exists": {"field": field}}
        return (exists if value.exists else {"bool": {"must_not": [exists]}}), True

    def null(self, field: str, value: SigmaNull) -> tuple[dict, bool]:
        return {"bool": {"must_not": [{"exists": {"field": field}}]}}, True

    def boolean(self, field: str, value: SigmaBool) -> tuple[dict, bool]:
        if self.type_of(field) == "boolean":
            return {"term": {field: value.boolean}}, True
        return {"exists": {"field": field}}, False

    def number(self, field: str, value: SigmaNumber) -> tuple[dict, bool]:
        if self.type_of(field) in NUMERIC:
            return {"term": {field: value.number}}, True
        return {"exists": {"field": field}}, False  # "22" and "22.0" both equal 22 in Sigma: confirmed in Python

    def compare(self, field: str, value: SigmaCompareExpression) -> tuple[dict, bool]:
        exists = {"exists": {"field": field}}
        if self.type_of(field) not in NUMERIC:
            return exists, False
        num = value.number.number
        if value.op is CompareOperators.NEQ:
            return {"bool": {"filter": [exists], "must_not": [{"term": {field: num}}]}}, True
        op = {CompareOperators.LT: "lt", CompareOperators.LTE: "lte", CompareOperators.GT: "gt",
              CompareOperators.GTE: "gte"}[value.op]
        return {"range": {field: {op: num}}}, True

    def cidr(self, field: str, value: SigmaCIDRExpression) -> tuple[dict, bool]:
        if self.type_of(field) == "ip":
            return {"term": {field: str(value.network)}}, True
        return {"exists": {"field": field}}, False

    def regex(self, field: str, value: SigmaRegularExpression) -> tuple[dict, bool]:
        return {"exists": {"field": field}}, False

    def field_reference(self, field: str, value: SigmaFieldReference) -> tuple[dict, bool]:
        return {"exists": {"field": field}}, False

    def string(self, field: str, value: SigmaString) -> tuple[dict, bool]:
        kind = self.type_of(field)
        exists = {"exists": {"field": field}}
        parts = string_parts(value)
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
        return exists, False  # wildcards over ip/number/text fields: confirmed in Python


def _or(queries: list[dict]) -> dict:
    if len(queries) == 1:
        return queries[0]
    return {"bool": {"should": queries, "minimum_should_match": 1}}


def _escape_wildcard(text: str) -> str:
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")


def field_types(mappings: dict[str, Any]) -> dict[str, str]:
    """Dotted field → type from the events template's `properties` (dotted keys, as templates.yaml writes them)."""
    return {name: spec.get("type", "object") for name, spec in mappings.get("properties", {}).items()}
