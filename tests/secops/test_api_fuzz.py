"""The HTTP API fuzzed from its own OpenAPI document (schemathesis, in-process on the ASGI app, no server):
every operation, with a token of each role, on data that fits the document and data that does not,
against a store holding real incidents, alerts, bans and a ban row stored before TTLs were bounded.
No answer may be a 5xx; status codes, content types and bodies must be the ones the document declares."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode

from secops.api import ROLES as API_ROLES
from tests.api_fuzz import fuzz_operations

EXAMPLES = 15  # per operation, role and mode: about 1000 requests in all


def _cases(operation, mode: GenerationMode, ids: list[int]):
    """Generated cases, part of them aimed at the seeded rows (a random id rarely names one)."""
    params = {p.name for p in operation.path_parameters}
    fixed = [{"incident_id": i} for i in ids] if "incident_id" in params else \
        [{"address": "203.0.113.5"}] if "address" in params else []
    return st.one_of(operation.as_strategy(mode), *(operation.as_strategy(mode, path_parameters=p) for p in fixed))


@pytest.mark.slow
def test_no_server_error_on_any_operation(api_app, tmp_path, monkeypatch):
    # GET /bans/export signs with the keystore: one of its own, so the API can sign and nothing touches state/
    from core import paths
    (tmp_path / "state" / "crypto").mkdir(parents=True)
    (tmp_path / "state" / "crypto" / "config.yaml").write_text("suite: gm\nkdf_iterations: 100000\n")
    monkeypatch.setattr(paths, "STATE", tmp_path / "state")
    monkeypatch.setenv("GOVCTL_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("GOVCTL_CRYPTO_PASSPHRASE", "fuzz")
    for name in ("GOVCTL_CRYPTO_PASSPHRASE_FILE", "GOVCTL_CRYPTO_ROOT_KEY_FILE", "GOVCTL_CRYPTO_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    app, store, keys, _ = api_app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    ids = [i["id"] for i in store.incidents()]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 25 and len(ids) == 2  # 12, 6 of cases and 3 of range bans and the exchange (#18), the incident search and the overview (#17), the audit trail and its proofs (#19)
    tried, failures = fuzz_operations(operations, keys, API_ROLES, EXAMPLES,
                                      strategy=lambda operation, mode: _cases(operation, mode, ids))
    print(f"schemathesis: {len(operations)} operations × {len(API_ROLES)} roles × positive/negative, "
          f"{tried} requests, {len(failures)} failures")
    assert tried >= len(operations) * len(API_ROLES) * 5  # generation ran (small input spaces end early)
    assert failures == [], "\n\n".join(failures[:10])
