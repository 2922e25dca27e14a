"""Other packages' routes on the console's API (core.api_extension): behind the same sign-in, the same
roles and the same CSRF check; a permission an extension redefines is refused at start."""
from __future__ import annotations

import pytest
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient

from console.app import create_console_app
from core.api_extension import ApiExtension

from .conftest import PASSWORDS


def _extension(permissions) -> ApiExtension:
    def build(allowed):
        router = APIRouter()

        @router.get("/example/report")
        def report(who=Depends(allowed("example-read"))):
            return {"seen_by": who[0]}

        @router.post("/example/run")
        def run(who=Depends(allowed("example-run"))):
            return {"run_by": who[0]}
        return router
    return ApiExtension("example", build, permissions)


EXAMPLE = {"example-read": frozenset({"auditor", "ops", "security"}), "example-run": frozenset({"ops"})}


def _signed_in(app, name):
    c = TestClient(app)
    r = c.post("/api/session", json={"name": name, "password": PASSWORDS[name]})
    assert r.status_code == 200, r.text
    return c, r.json()["csrf"]


def test_extension_routes_take_the_console_session_roles_and_csrf(seeded, users_file, tmp_path):
    app = create_console_app(seeded.store, tmp_path / "tokens.yaml", users_file, seeded.decisions,
                             static_dir=tmp_path / "no-assets", extensions=[_extension(EXAMPLE)])
    assert TestClient(app).get("/api/example/report").status_code == 401  # not signed in
    auditor, auditor_csrf = _signed_in(app, "zhao.lei")
    assert auditor.get("/api/example/report").json() == {"seen_by": "zhao.lei"}
    refused = auditor.post("/api/example/run", headers={"X-CSRF-Token": auditor_csrf})
    assert refused.status_code == 403 and "auditor" in refused.json()["detail"]
    ops, ops_csrf = _signed_in(app, "wang.fang")
    assert ops.post("/api/example/run").status_code == 403  # no CSRF token
    assert ops.post("/api/example/run", headers={"X-CSRF-Token": ops_csrf}).json() == {"run_by": "wang.fang"}


def test_an_extension_may_not_change_the_roles_of_an_existing_permission(seeded, users_file, tmp_path):
    with pytest.raises(ValueError, match="permission 'ban'"):
        create_console_app(seeded.store, tmp_path / "tokens.yaml", users_file, seeded.decisions,
                           extensions=[_extension({"ban": frozenset({"ops"})})])
    with pytest.raises(ValueError, match="unknown roles"):
        create_console_app(seeded.store, tmp_path / "tokens.yaml", users_file, seeded.decisions,
                           extensions=[_extension({"example-read": frozenset({"root"})})])
