"""The ops pages' API (issue #19, monitors/api.py): the topology from the stack outputs with live health from a
real Prometheus, availability with the same figures as `govctl availability report`; Prometheus unreachable →
"unknown", never a 500; a console without a deployed stack says what to run."""
from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import infra.engine
from console.app import create_console_app
from monitors import api as ops_api
from monitors.slo import DEFAULT_SPEC
from tests.monitors.helpers import free_port
from tests.monitors.ops_monitoring import DeployedLab, running_prometheus

from .conftest import PASSWORDS


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    with running_prometheus(tmp_path_factory.mktemp("ops-prometheus")) as address:
        yield address


@pytest.fixture
def deployed_lab(monkeypatch):
    monkeypatch.setattr(infra.engine, "Engine", DeployedLab)


def signed_in(seeded, users_file, tmp_path, name="wang.fang", **extension):
    app = create_console_app(seeded.store, tmp_path / "tokens.yaml", users_file, seeded.decisions,
                             static_dir=tmp_path / "no-assets",
                             extensions=[ops_api.extension(spec=DEFAULT_SPEC, **extension)])
    client = TestClient(app)
    assert client.post("/api/session", json={"name": name, "password": PASSWORDS[name]}).status_code == 200
    return client


def by_name(items, name):
    return next(i for i in items if i["name"] == name)


@pytest.mark.slow
def test_topology_shows_three_centers_their_hosts_links_and_replication_with_live_health(
        prometheus, deployed_lab, seeded, users_file, tmp_path):
    ops = signed_in(seeded, users_file, tmp_path, stack="lab", prometheus=prometheus)
    r = ops.get("/api/ops/topology")
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["prometheus"]["reachable"] is True
    assert [c["name"] for c in data["centers"]] == ["prod", "remote", "samecity"]
    prod = by_name(data["centers"], "prod")
    assert prod["role"] == "production" and prod["database_primary"] is True
    hosts = {h["fqdn"]: h["health"]["status"] for c in data["centers"] for z in c["zones"] for h in z["hosts"]}
    assert len(hosts) == 9
    # web-1.remote answers 3 of the 5 vantage points; db-1.remote 2 of 3 (prod's path to remote is cut)
    assert hosts["web-1.samecity"] == "up" and hosts["web-1.remote"] == "degraded" and hosts["db-1.remote"] == "degraded"
    assert hosts["bastion-1.prod"] == "unknown"  # no probe targets a bastion
    dmz = by_name(prod["zones"], "dmz")
    assert [h["fqdn"] for h in dmz["hosts"]] == ["web-1.prod"]
    links = {l["name"]: (l["role"], l["health"]["status"]) for l in data["links"]}
    assert links["prod-remote-a"] == ("primary", "down")
    assert links["prod-samecity-a"] == ("primary", "up") and links["samecity-remote-a"] == ("primary", "up")
    # every link by its own pings: a standby that carries no traffic too
    assert links["prod-samecity-b"] == ("standby", "up") and links["prod-remote-b"] == ("standby", "down")
    standby = by_name(data["links"], "prod-samecity-b")["health"]
    assert standby["probes"] == 2 and standby["measured_by"] == "pings across the link"
    assert data["service"]["serving"] == ["prod"] and data["service"]["status"] == "up"
    replication = {r["standby"]: r for r in data["replication"]}
    assert replication["samecity"]["status"] == "up" and replication["samecity"]["lag_seconds"] == 0.4
    assert replication["samecity"]["dr_ready"] is True
    assert replication["remote"]["status"] == "down" and replication["remote"]["dr_ready"] is False


def test_prometheus_unreachable_is_unknown_health_not_an_error(deployed_lab, seeded, users_file, tmp_path):
    nothing = f"http://127.0.0.1:{free_port()}"
    auditor = signed_in(seeded, users_file, tmp_path, name="zhao.lei", stack="lab", prometheus=nothing)
    r = auditor.get("/api/ops/topology")
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["prometheus"]["reachable"] is False and "cannot reach" in data["prometheus"]["problem"]
    assert len(data["centers"]) == 3
    statuses = {h["health"]["status"] for c in data["centers"] for z in c["zones"] for h in z["hosts"]}
    statuses |= {l["health"]["status"] for l in data["links"]} | {data["service"]["status"]}
    statuses |= {r["status"] for r in data["replication"]}
    assert statuses == {"unknown"}
    availability = auditor.get("/api/ops/availability", params={"from": "now-30d"})
    assert availability.status_code == 200
    assert availability.json()["verdict"] == "unknown" and availability.json()["rows"] == []
    assert "cannot reach" in availability.json()["prometheus"]["problem"]


def test_a_console_without_a_deployed_stack_says_what_to_run(monkeypatch, seeded, users_file, tmp_path):
    monkeypatch.setattr(infra.engine, "Engine", DeployedLab)  # only "lab" has outputs
    r = signed_in(seeded, users_file, tmp_path, stack="staging").get("/api/ops/topology")
    assert r.status_code == 409 and "govctl infra up --stack staging" in r.json()["detail"]
    r = signed_in(seeded, users_file, tmp_path, stack=None).get("/api/ops/topology")
    assert r.status_code == 409 and "--stack lab" in r.json()["detail"]


def test_bad_periods_are_refused_with_the_reason(seeded, users_file, tmp_path):
    ops = signed_in(seeded, users_file, tmp_path, stack="lab", prometheus=f"http://127.0.0.1:{free_port()}")
    for params, reason in (({"from": "yesterday"}, "write a time as now"),
                           ({"from": "now", "to": "now-1d"}, "must be before"),
                           ({"from": "now-400d"}, "more than 92 days"),
                           ({"from": "9" * 26}, "write a time as now"),  # beyond any date: not a 500
                           ({"from": "x" * 65}, "at most 64")):
        r = ops.get("/api/ops/availability", params=params)
        assert r.status_code == 422 and reason in str(r.json()["detail"]), (params, r.text)
    assert TestClient(ops.app).get("/api/ops/topology").status_code == 401


@pytest.mark.slow
def test_availability_right_after_monitoring_starts_is_insufficient_data_with_the_reports_figures(
        prometheus, seeded, users_file, tmp_path):
    from govctl.cli import app as cli
    end = time.time()
    start = end - 30 * 86400
    ops = signed_in(seeded, users_file, tmp_path, stack="lab", prometheus=prometheus)
    r = ops.get("/api/ops/availability", params={"from": f"{start:.3f}", "to": f"{end:.3f}"})
    assert r.status_code == 200, r.text
    page = r.json()
    rows = {row["center"]: row for row in page["rows"]}
    assert set(rows) == {"prod", "samecity", "remote"}
    assert page["verdict"] == "insufficient_data"  # monitoring started seconds ago: not 30 days of data
    assert rows["prod"]["verdict"] == "insufficient_data" and rows["prod"]["availability"] == 1.0
    assert rows["prod"]["expected_steps"] == 518_401 and 0 < rows["prod"]["coverage"] < 0.001
    assert rows["remote"]["outages"][0]["ongoing"] is True
    # the same figures as `govctl availability report` for the same period
    cli_run = CliRunner().invoke(cli, ["availability", "report", "--from", f"{start:.3f}", "--to", f"{end:.3f}",
                                       "--prometheus", prometheus, "--spec", str(DEFAULT_SPEC)])
    assert cli_run.exit_code == 0, cli_run.output
    import json
    report = json.loads(cli_run.output)
    assert [(x["center"], x["measured_steps"], x["coverage"], x["verdict"]) for x in report["rows"]] == \
        [(x["center"], x["measured_steps"], x["coverage"], x["verdict"]) for x in page["rows"]]
    budget = {s["center"]: s["points"] for s in page["budget"]}
    assert budget["remote"][-1] == [pytest.approx(end), 0.93] and budget["prod"][-1][1] == 1
    assert [(a["alert"], a["severity"], a["center"]) for a in page["alerts"]] == [("SLOPageBurnRate", "page", "remote")]


def test_govctl_console_serve_builds_the_ops_routes_for_its_stack():
    from govctl.commands.console import console_extensions
    ops = [e for e in console_extensions("lab") if e.name == "monitors"]
    assert len(ops) == 1 and ops[0].permissions == {"ops-read": frozenset({"ops", "security", "auditor"})}
    router = ops[0].build(lambda permission: (lambda: ("tester", "ops")))
    assert {r.path for r in router.routes} == {"/ops/topology", "/ops/availability"}


def test_without_a_running_monitor_health_is_unknown_and_says_how_to_start_it(
        deployed_lab, monkeypatch, seeded, users_file, tmp_path):
    from core import paths
    monkeypatch.setattr(paths, "STATE", tmp_path / "state")  # no monitor ever started here
    ops = signed_in(seeded, users_file, tmp_path, stack="lab")  # Prometheus: the running monitor's
    topology = ops.get("/api/ops/topology").json()
    assert topology["prometheus"]["reachable"] is False
    assert "govctl monitor up" in topology["prometheus"]["problem"]
    assert topology["service"]["status"] == "unknown" and topology["centers"][0]["database_primary"] is None
    availability = ops.get("/api/ops/availability").json()
    assert availability["verdict"] == "unknown" and "govctl monitor up" in availability["prometheus"]["problem"]


@pytest.mark.slow
def test_the_ops_routes_never_answer_a_server_error_to_fuzzed_requests(deployed_lab, tmp_path):
    """schemathesis on the ops operations of the API's own OpenAPI document, a token of each role, data that fits
    it and data that does not; Prometheus unreachable (so nothing waits on it)."""
    import schemathesis

    from secops.api import ROLES, Tokens, create_app
    from tests.api_fuzz import CHECKS, fuzz_operations
    tokens = Tokens(tmp_path / "tokens.yaml")
    keys = {role: tokens.add(f"{role}-user", role) for role in ROLES}
    app = create_app(_EmptyStore(), tmp_path / "tokens.yaml", None,
                     extensions=[ops_api.extension("lab", f"http://127.0.0.1:{free_port()}", DEFAULT_SPEC)])
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [r.ok() for r in schema.get_all_operations()]
    operations = [o for o in operations if o.path.startswith("/ops/")]
    assert sorted(o.path for o in operations) == ["/ops/availability", "/ops/topology"]
    tried, failures = fuzz_operations(operations, keys, ROLES, 25, checks=CHECKS)
    assert tried >= 2 * len(ROLES) * 5 and failures == [], "\n\n".join(failures[:5])


class _EmptyStore:
    """The SecOps store the API is built on; the ops routes never touch it."""

    def __getattr__(self, name):
        raise AssertionError(f"the ops routes used the SecOps store ({name})")
