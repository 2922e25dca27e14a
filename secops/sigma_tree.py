"""One walk over pySigma's parsed condition trees, specialised by the embedded compiler
(secops/sigma_compile.py: a Python predicate) and the Elasticsearch backend (secops/es/query.py: Query DSL).

pySigma parses a rule's condition into ConditionAND / ConditionOR / ConditionNOT over leaves: a field
compared with a value, or a bare keyword value. `ConditionVisitor.visit` dispatches on the node, and
`field_value` on the value's type, to one method per construct; a construct a subclass does not
implement is refused with UnsupportedRule naming it, so both backends refuse the same way.
"""
from __future__ import annotations

from typing import Generic, TypeVar

from sigma.conditions import (ConditionAND, ConditionFieldEqualsValueExpression, ConditionNOT,
                              ConditionOR, ConditionValueExpression)
from sigma.types import (SigmaBool, SigmaCIDRExpression, SigmaCompareExpression, SigmaExists, SigmaExpansion,
                         SigmaFieldReference, SigmaNull, SigmaNumber, SigmaRegularExpression, SigmaString,
                         SigmaTimestampPart, SpecialChars)

T = TypeVar("T")


class UnsupportedRule(ValueError):
    """The rule uses a construct the evaluator does not implement; the message says which."""


def string_parts(value: SigmaString) -> list[str | SpecialChars]:
    """The text and wildcards of a Sigma string; placeholders are refused."""
    parts = list(value.s)
    if any(not isinstance(p, (str, SpecialChars)) for p in parts):
        raise UnsupportedRule(f"placeholders are not supported in {value}")
    return parts


class ConditionVisitor(Generic[T]):
    """Turns a condition tree into a T, node by node."""

    def visit(self, node) -> T:
        if isinstance(node, ConditionAND):
            return self.all_of(node.args)
        if isinstance(node, ConditionOR):
            return self.any_of(node.args)
        if isinstance(node, ConditionNOT):
            return self.negation(node.args[0])
        if isinstance(node, ConditionFieldEqualsValueExpression):
            return self.field_value(node.field, node.value)
        if isinstance(node, ConditionValueExpression):
            return self.keyword(node.value)
        raise UnsupportedRule(f"condition element {type(node).__name__} is not supported")

    def all_of(self, args: list) -> T:
        raise UnsupportedRule("AND is not supported")

    def any_of(self, args: list) -> T:
        raise UnsupportedRule("OR is not supported")

    def negation(self, arg) -> T:
        raise UnsupportedRule("NOT is not supported")

    def keyword(self, value) -> T:
        """A bare keyword (no field)."""
        raise UnsupportedRule("keywords without a field are not supported")

    def field_value(self, field: str, value) -> T:
        """A field compared with a value, by the value's type (subclasses before their bases)."""
        if isinstance(value, SigmaTimestampPart):
            return self.timestamp_part(field, value)
        if isinstance(value, SigmaExpansion):
            return self.expansion(field, value)
        if isinstance(value, SigmaString):
            return self.string(field, value)
        if isinstance(value, SigmaExists):
            return self.exists(field, value)
        if isinstance(value, SigmaNull):
            return self.null(field, value)
        if isinstance(value, SigmaBool):
            return self.boolean(field, value)
        if isinstance(value, SigmaNumber):
            return self.number(field, value)
        if isinstance(value, SigmaCompareExpression):
            return self.compare(field, value)
        if isinstance(value, SigmaRegularExpression):
            return self.regex(field, value)
        if isinstance(value, SigmaCIDRExpression):
            return self.cidr(field, value)
        if isinstance(value, SigmaFieldReference):
            return self.field_reference(field, value)
        return self.unsupported_value(field, value)

    def unsupported_value(self, field: str, value) -> T:
        raise UnsupportedRule(f"value type {type(value).__name__} (field {field!r}) is not supported")

    def timestamp_part(self, field: str, value: SigmaTimestampPart) -> T:
        """A part of the event time (`|minute`, `|hour`, …): a number, unless a backend says otherwise."""
        return self.number(field, value)

    def expansion(self, field: str, value: SigmaExpansion) -> T:
        return self.unsupported_value(field, value)

    def string(self, field: str, value: SigmaString) -> T:
        return self.unsupported_value(field, value)

    def exists(self, field: str, value: SigmaExists) -> T:
        return self.unsupported_value(field, value)

    def null(self, field: str, value: SigmaNull) -> T:
        return self.unsupported_value(field, value)

    def boolean(self, field: str, value: SigmaBool) -> T:
        return self.unsupported_value(field, value)

    def number(self, field: str, value: SigmaNumber) -> T:
        return self.unsupported_value(field, value)

    def compare(self, field: str, value: SigmaCompareExpression) -> T:
        return self.unsupported_value(field, value)

    def regex(self, field: str, value: SigmaRegularExpression) -> T:
        return self.unsupported_value(field, value)

    def cidr(self, field: str, value: SigmaCIDRExpression) -> T:
        return self.unsupported_value(field, value)

    def field_reference(self, field: str, value: SigmaFieldReference) -> T:
        return self.unsupported_value(field, value)
