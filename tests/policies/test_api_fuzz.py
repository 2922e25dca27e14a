"""The compliance routes fuzzed from their own OpenAPI document (schemathesis, in-process, as
tests/secops/test_api_fuzz.py fuzzes SecOps' routes): every operation but starting a report, with a token of
each role, on data that fits the document and data that does not, against a state holding one ready report
and one failed one. No answer may be a 5xx; statuses, content types and bodies must be the declared ones.
Starting a report is left out: each accepted request would make a whole report (or collect from the lab)
in the background; tests/policies/test_api.py checks its refusals and a real run."""
from __future__ import annotations

import json
import shutil

import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode

from tests.api_fuzz import fuzz_operations
from tests.secops.test_api_fuzz import EXAMPLES

from .compliance.conftest import FIXTURES

pytestmark = pytest.mark.slow


def test_no_server_error_on_any_compliance_operation(tmp_path, monkeypatch):
    from core import paths
    from crypto.audit import AuditLog
    from policies import api as compliance_api
    from policies.compliance import records
    from secops.api import ROLES, Tokens, create_app

    state = tmp_path / "state"
    (state / "crypto").mkdir(parents=True)
    (state / "crypto" / "config.yaml").write_text("suite: gm\nkdf_iterations: 100000\n")
    monkeypatch.setattr(paths, "STATE", state)
    monkeypatch.setenv("GOVCTL_STATE", str(state))
    monkeypatch.setenv("GOVCTL_CRYPTO_PASSPHRASE", "fuzz")
    AuditLog._open_logs.clear()
    shutil.copytree(FIXTURES, records.saved_evidence_dir())
    ready = records.start("mlps-crypto", 3, "saved", "fuzzer", background=False)
    assert ready["status"] == "ready"
    failed = records.reports_dir() / "20261207T000000Z-djcp-L2-000000"
    failed.mkdir()
    (failed / "record.json").write_text(json.dumps({**ready, "id": failed.name, "standard": "djcp", "level": 2,
                                                    "status": "failed", "error": "the lab is not deployed"}))

    tokens = Tokens(tmp_path / "tokens.yaml")
    keys = {role: tokens.add(f"{role}-user", role) for role in ROLES}
    app = create_app(tmp_path / "s.db", tmp_path / "tokens.yaml", extensions=[compliance_api.EXTENSION])
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [r.ok() for r in schema.get_all_operations()]
    operations = [o for o in operations if o.path.startswith("/compliance")
                  and not (o.method.upper() == "POST" and o.path == "/compliance/reports")]
    assert len(operations) == 6
    def cases(operation, mode):
        fixed = [{"record_id": ready["id"]}, {"record_id": failed.name}] \
            if operation.path_parameters and mode == GenerationMode.POSITIVE else []
        return st.one_of(operation.as_strategy(mode), *(operation.as_strategy(mode, path_parameters=p) for p in fixed))

    # negative cases need a parameter to break: the upload's body is any bytes (the positive cases already
    # send random ones)
    tried, failures = fuzz_operations(operations, keys, ROLES, EXAMPLES, strategy=cases,
                                      inputs=lambda op: len(op.path_parameters) + len(op.query))
    print(f"schemathesis: {len(operations)} compliance operations, {tried} requests, {len(failures)} failures")
    assert tried >= len(operations) * len(ROLES) * 5
    assert failures == [], "\n\n".join(failures[:10])
    assert {r["id"] for r in records.listing()} == {ready["id"], failed.name}  # nothing started by the fuzzing
