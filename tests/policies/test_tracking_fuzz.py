"""The compare / remediation / waiver routes (policies/api_tracking.py) fuzzed from the API's own OpenAPI
document, as tests/secops/test_api_fuzz.py does for SecOps' routes: every operation, a token of each role,
data that fits and data that does not, with two reports on record. No answer may be a 5xx; status codes
and content types must be the declared ones."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from policies.api_tracking import EXTENSION
from secops.api import ROLES, Tokens, create_app
from tests.api_fuzz import fuzz_operations

from .test_tracking_api import tracking_state, two_reports  # noqa: F401 (two_reports: a fixture)

EXAMPLES = 10
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]
REAL = {"a": "djcp-L3-2026Q3.json", "b": "djcp-L3-2026Q4.json"}


@pytest.mark.slow
def test_no_server_error_on_the_tracking_routes(tmp_path, two_reports):
    with pytest.MonkeyPatch.context() as patch:
        tracking_state(tmp_path / "state", patch, two_reports)
        tokens = Tokens(tmp_path / "tokens.yaml")
        keys = {role: tokens.add(f"{role}-user", role) for role in ROLES}
        app = create_app(tmp_path / "secops.db", tmp_path / "tokens.yaml", extensions=[EXTENSION])
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [r.ok() for r in schema.get_all_operations() if r.ok().path.startswith("/compliance/")]
        assert len(operations) == 7  # with POST /compliance/compare (uploaded packs, multipart)
        def cases(operation, mode):
            # real names and items now and then (random text rarely names one)
            if operation.path == "/compliance/compare" and operation.method.upper() == "POST":
                aimed = [operation.as_strategy(GenerationMode.POSITIVE, body=REAL)]  # both sides on record
            else:
                aimed = [operation.as_strategy(GenerationMode.POSITIVE, query=REAL)] if operation.path == "/compliance/compare" else \
                    [operation.as_strategy(GenerationMode.POSITIVE, path_parameters={"standard": "djcp", "item": "CE-IA-C"})] \
                    if "{item}" in operation.path else []
            return st.one_of(operation.as_strategy(mode), *aimed)

        tried, failures = fuzz_operations(operations, keys, ROLES, EXAMPLES, checks=CHECKS, strategy=cases)
        print(f"schemathesis: {len(operations)} tracking operations, {tried} requests, {len(failures)} failures")
        assert tried >= len(operations) * len(ROLES) * 5
        assert failures == [], "\n\n".join(failures[:10])
