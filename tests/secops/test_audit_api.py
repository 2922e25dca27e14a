"""GET /audit and GET /audit/{index}/proof (issue 19): the trail for the security and auditor roles only,
filters and paging, a proof that verifies, and 422/404/409 with a reason for bad requests."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from crypto import audit
from secops.api import Tokens, create_app
from tests.crypto.conftest import state  # noqa: F401 (the fixture: isolated state with a keystore passphrase)


@pytest.fixture
def client(state, tmp_path):  # noqa: F811
    tokens = Tokens(tmp_path / "tokens.yaml")
    headers = {role: {"Authorization": f"Bearer {tokens.add(role + '-user', role)}"}
               for role in ("ops", "security", "auditor")}
    app = create_app(tmp_path / "secops.db", tmp_path / "tokens.yaml")
    for n in range(60):
        audit.record("li.na" if n % 2 else "wang.fang", "ban.add" if n % 3 else "incident.state", f"192.0.2.{n}")
    audit.record("zhao.lei", "console.sign-in", "console", {"address": "10.0.0.9"}, "failed: bad-credentials")
    with TestClient(app) as test_client:
        yield test_client, headers


def test_roles_filters_and_paging(client):
    http, headers = client
    assert http.get("/audit").status_code == 401
    assert http.get("/audit", headers=headers["ops"]).status_code == 403
    assert http.get("/audit/0/proof", headers=headers["ops"]).status_code == 403
    page = http.get("/audit?limit=50", headers=headers["auditor"]).json()
    assert page["total"] == 61 and len(page["entries"]) == 50 and page["entries"][0]["actor"] == "zhao.lei"
    rest = http.get("/audit?limit=50&offset=50", headers=headers["security"]).json()
    assert [e["index"] for e in rest["entries"]] == list(range(10, -1, -1))
    bans = http.get("/audit?action=ban&actor=li.na&limit=1000", headers=headers["auditor"]).json()
    assert bans["total"] == len([n for n in range(60) if n % 2 and n % 3])
    assert {(e["action"], e["actor"]) for e in bans["entries"]} == {("ban.add", "li.na")}
    assert http.get("/audit?target=192.0.2.59", headers=headers["auditor"]).json()["total"] == 1
    failed = http.get("/audit?outcome=failed", headers=headers["auditor"]).json()["entries"]
    assert [(e["target"], e["reason"]) for e in failed] == [("console", "bad-credentials")]


def test_bad_filters_are_422_with_a_reason(client):
    http, headers = client
    for query in ("since=last%20week", "outcome=maybe", "limit=0", "limit=5000", "offset=-1", "actor=" + "x" * 200):
        answer = http.get(f"/audit?{query}", headers=headers["auditor"])
        assert answer.status_code == 422 and answer.json()["detail"], query
    assert "is not a time" in http.get("/audit?since=yesterday", headers=headers["auditor"]).json()["detail"]


def test_proof_download_verifies(client, state):  # noqa: F811
    http, headers = client
    early = http.get("/audit/3/proof", headers=headers["auditor"])
    assert early.status_code == 409 and "auditlog checkpoint" in early.json()["detail"]
    assert http.get("/audit/999/proof", headers=headers["auditor"]).status_code == 404
    audit.checkpoint()
    answer = http.get("/audit/3/proof", headers=headers["auditor"])
    assert answer.status_code == 200
    assert answer.headers["content-disposition"] == 'attachment; filename="audit-entry-3-proof.json"'
    from crypto.keystore import Keystore
    trusted = list(Keystore.open(events=None).public_keys(audit.AUDIT_KEY).values())
    assert audit.verify_proof(answer.json(), trusted) == (True, "entry 3 is in the signed tree of size 62")  # + the audit key's key.generate
