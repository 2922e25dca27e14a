"""One schemathesis loop for the REST API's fuzz tests (SecOps' routes and each ApiExtension's): every
operation × role × positive and negative generation, each case called with the role's bearer token and its
response validated; failures are collected, so one report names every failing case with its curl line."""
from __future__ import annotations

from typing import Callable, Iterable

from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_schema_conformance, status_code_conformance)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def fuzz_operations(operations: Iterable, keys: dict[str, str], roles: Iterable[str], examples: int,
                    checks=CHECKS, strategy: Callable | None = None,
                    inputs: Callable = lambda op: len(op.path_parameters) + len(op.query) + len(op.body),
                    ) -> tuple[int, list[str]]:
    """(requests made, failures). `strategy(operation, mode)` gives the cases (default: schemathesis'
    own; aim part of them at seeded rows, a random id rarely names one); an operation with no `inputs`
    to break gets no negative cases."""
    strategy = strategy or (lambda operation, mode: operation.as_strategy(mode))
    tried, failures = 0, []
    for operation in operations:
        modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if inputs(operation) else (GenerationMode.POSITIVE,)
        for role in roles:
            headers = {"Authorization": f"Bearer {keys[role]}"}
            for mode in modes:
                @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
                          suppress_health_check=list(HealthCheck))
                @given(case=strategy(operation, mode))
                def run(case):
                    nonlocal tried
                    tried += 1
                    response = case.call(headers=headers)
                    try:
                        case.validate_response(response, checks=checks, headers=headers)
                    except FailureGroup as exc:
                        failures.append(f"{operation.label} as {role} ({mode}): {response.status_code}"
                                        f" {case.as_curl_command(headers=headers)}\n{str(exc)[:600]}")
                run()
    return tried, failures
