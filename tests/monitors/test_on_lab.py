"""Monitoring on the real lab: an outage of the production web service pages and resolves;
the replication exporter sees the asynchronous standby fall behind and catch up."""
from __future__ import annotations

import time

import pytest

from drills.lab import LabTarget
from infra.outputs import StackOutputs
from infra.lab import system
from infra.lab.hostops import host_pid
from monitors import prom_api
from monitors.stack import Layout, alertmanager_address, prometheus_address

pytestmark = [pytest.mark.slow, pytest.mark.root]


def _wait(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    pytest.fail(f"timed out after {seconds} s waiting for {what}")


def _pages(center):
    alerts = prom_api.get_json(alertmanager_address(Layout.default()), "/api/v2/alerts",
                               {"active": "true", "silenced": "true", "inhibited": "true"})
    return [a for a in alerts if a["labels"].get("severity") == "page"
            and a["labels"].get("center") == center]


def _value(expr):
    result = prom_api.query(prometheus_address(Layout.default()), expr)
    return float(result[0]["value"][1]) if result else None


def test_stopping_the_production_web_service_pages_and_restoring_resolves(lab, lab_monitoring):
    _wait(lambda: not _pages("prod"), 240, "earlier prod pages to resolve")
    web = next(h for h in lab["hosts"] if h["fqdn"] == "web-1.prod")
    pid = host_pid(web["folder"])
    service = "/etc/govctl/services/govweb.json"
    system.host_exec(pid, "mv", service, service + ".held")  # govctl-init stops it
    stopped = time.time()
    try:
        _wait(lambda: _pages("prod"), 90, "the page alert for prod")
        paged = time.time() - stopped
        assert paged <= 60, f"paged {paged:.1f} s after the outage"
        assert _value('max(slo:sli_error:instant{center="prod"})') == 1
        assert _value('max(slo:sli_error:instant{center="samecity"})') == 0
    finally:
        system.host_exec(pid, "mv", service + ".held", service)
    _wait(lambda: _value('max(slo:sli_error:instant{center="prod"})') == 0, 60,
          "the prod SLI to recover")
    _wait(lambda: not _pages("prod"), 240, "the prod page to resolve")
    assert LabTarget(StackOutputs.from_dict(lab)).service_center() == "prod"


def test_replication_exporter_sees_the_async_standby_fall_behind_and_recover(lab, lab_monitoring):
    lag = 'max(govctl_pg_replication_lag_seconds{standby="remote"})'
    _wait(lambda: (_value(lag) is not None and _value(lag) < 5), 120, "a small remote lag")
    target = LabTarget(StackOutputs.from_dict(lab))
    target.sql("remote", "SELECT pg_wal_replay_pause()", db="postgres")
    try:
        _wait(lambda: (_value(lag) or 0) > 8, 90, "the remote lag to rise")
        # the synchronous standby is unaffected
        assert (_value('max(govctl_pg_replication_lag_seconds{standby="samecity"})') or 0) < 5
    finally:
        target.sql("remote", "SELECT pg_wal_replay_resume()", db="postgres")
    _wait(lambda: (_value(lag) is not None and _value(lag) < 5), 90, "the remote lag to recover")
