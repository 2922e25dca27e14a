"""The compare / remediation / waiver routes (policies/api_tracking.py) fuzzed from the API's own OpenAPI
document, as tests/secops/test_api_fuzz.py does for SecOps' routes: every operation, a token of each role,
data that fits and data that does not, with two reports on record. No answer may be a 5xx; status codes
and content types must be the declared ones."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from policies.api_tracking import EXTENSION
from secops.api import ROLES, Tokens, create_app

from .test_tracking_api import tracking_state, two_reports  # noqa: F401 (two_reports: a fixture)

EXAMPLES = 10
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]
REAL = {"a": "djcp-L3-2026Q3.json", "b": "djcp-L3-2026Q4.json"}


@pytest.mark.slow
def test_no_server_error_on_the_tracking_routes(tmp_path, two_reports):
    with pytest.MonkeyPatch.context() as patch:
        tracking_state(tmp_path / "state", patch)
        folder = tmp_path / "state" / "compliance" / "reports"
        folder.mkdir(parents=True)
        for name, text in two_reports.items():
            (folder / name).write_text(text, encoding="utf-8")
        tokens = Tokens(tmp_path / "tokens.yaml")
        keys = {role: tokens.add(f"{role}-user", role) for role in ROLES}
        app = create_app(tmp_path / "secops.db", tmp_path / "tokens.yaml", extensions=[EXTENSION])
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [r.ok() for r in schema.get_all_operations() if r.ok().path.startswith("/compliance/")]
        assert len(operations) == 6
        tried, failures = 0, []
        for operation in operations:
            # real names and items now and then (random text rarely names one)
            aimed = [operation.as_strategy(GenerationMode.POSITIVE, query=REAL)] if operation.path == "/compliance/compare" else \
                [operation.as_strategy(GenerationMode.POSITIVE, path_parameters={"standard": "djcp", "item": "CE-IA-C"})] \
                if "{item}" in operation.path else []
            for role in ROLES:
                headers = {"Authorization": f"Bearer {keys[role]}"}
                inputs = len(operation.path_parameters) + len(operation.query) + len(operation.body)
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if inputs else (GenerationMode.POSITIVE,):
                    @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
                              suppress_health_check=list(HealthCheck))
                    @given(case=st.one_of(operation.as_strategy(mode), *aimed))
                    def run(case):
                        nonlocal tried
                        tried += 1
                        response = case.call(headers=headers)
                        try:
                            case.validate_response(response, checks=CHECKS, headers=headers)
                        except FailureGroup as exc:
                            failures.append(f"{operation.label} as {role} ({mode}): {response.status_code}"
                                            f" {case.as_curl_command(headers=headers)}\n{str(exc)[:600]}")
                    run()
        print(f"schemathesis: {len(operations)} tracking operations, {tried} requests, {len(failures)} failures")
        assert tried >= len(operations) * len(ROLES) * 5
        assert failures == [], "\n\n".join(failures[:10])
