"""A real Prometheus (free port, no lab) whose rules record the series monitoring's exporters and generated
rules would hold for the lab of tests/monitors/fixtures/lab-outputs.json, in a known state: web-1.remote fails
from the internet, the prod ↔ remote path is cut (both its links: their pings fail), the asynchronous standby
(remote) does not stream, prod serves the service address, and the page burn-rate alert fires for remote. For the
ops pages' tests."""
from __future__ import annotations

import contextlib
import json
import subprocess
from pathlib import Path

import httpx
import yaml

from infra.outputs import StackOutputs
from monitors import names
from monitors.slo import load_slo_spec
from monitors.targets import LINK_SERVICE, LINK_TARGET_PREFIX
from tests.monitors.helpers import free_port, stop_process, wait_for

LAB_OUTPUTS = Path(__file__).with_name("fixtures") / "lab-outputs.json"
CENTERS = ("prod", "samecity", "remote")
OUTSIDE = ("internet", "egov-net")
# (vantage, target) probes that fail: the internet's to web-1.remote, and every probe across the prod ↔ remote path
FAILING = {("internet", "web-1.remote"), ("prod", "web-1.remote"), ("prod", "db-1.remote"),
           ("remote", "web-1.prod"), ("remote", "db-1.prod")}
CUT_LINKS = {"prod-remote-a", "prod-remote-b"}  # the pings across them fail from both ends


def lab_outputs() -> dict:
    return json.loads(LAB_OUTPUTS.read_text(encoding="utf-8"))


class DeployedLab:
    """Stands in for infra.engine.Engine: the lab's outputs as `govctl lab up` exports them (the fixture)."""

    def __init__(self, stack: str):
        self.stack = stack

    def outputs(self) -> dict:
        return lab_outputs() if self.stack == "lab" else {}


def _record(metric: str, value: float, labels: dict) -> dict:
    return {"record": metric, "expr": f"vector({value})", "labels": labels}


def rules() -> dict:
    spec = load_slo_spec()
    slo = spec.services[0]
    sloth = {"sloth_id": slo.sloth_id, "sloth_service": slo.name, "sloth_slo": "availability"}
    recorded = []
    for vantage in OUTSIDE + CENTERS:
        for center in CENTERS:
            recorded.append(_record(names.PROBE_SUCCESS, 0 if (vantage, f"web-1.{center}") in FAILING else 1,
                                    {"vantage": vantage, "center": center, "service": slo.name,
                                     "target": f"web-1.{center}"}))
            if vantage in CENTERS:  # the inside vantage points probe every center's database
                recorded.append(_record(names.PROBE_SUCCESS, 0 if (vantage, f"db-1.{center}") in FAILING else 1,
                                        {"vantage": vantage, "center": center, "service": "database",
                                         "target": f"db-1.{center}"}))
    for name, link in lab_outputs()["links"].items():  # each end's inside vantage pings the far end
        for near, far in (link["between"], link["between"][::-1]):
            recorded.append(_record(names.PROBE_SUCCESS, 0 if name in CUT_LINKS else 1,
                                    {"vantage": near, "center": far, "service": LINK_SERVICE,
                                     "target": f"{LINK_TARGET_PREFIX}{name}"}))
    recorded += [
        _record(names.CENTER_SERVING, 1, {"service": slo.name, "center": "prod"}),
        _record(names.PG_IS_PRIMARY, 1, {"center": "prod"}),
        _record(names.PG_IS_PRIMARY, 0, {"center": "samecity"}),
        _record(names.PG_STANDBY_STREAMING, 1, {"standby": "samecity", "mode": "synchronous"}),
        _record(names.PG_LAG_SECONDS, 0.4, {"standby": "samecity", "mode": "synchronous"}),
        _record(names.STANDBY_DR_READY, 1, {"standby": "samecity", "mode": "synchronous"}),
        _record(names.PG_STANDBY_STREAMING, 0, {"standby": "remote", "mode": "asynchronous"}),
        _record(names.STANDBY_DR_READY, 0, {"standby": "remote", "mode": "asynchronous"}),
    ]
    for center in CENTERS:
        recorded.append(_record(names.SLI_INSTANT, 1 if center == "remote" else 0, {**sloth, "center": center}))
        recorded.append(_record(names.BUDGET_REMAINING, 0.93 if center == "remote" else 1, {**sloth, "center": center}))
    page = spec.alert_classes[0].name
    alert = {"alert": page, "expr": "vector(1)",
             "labels": {"severity": "page", **sloth, "center": "remote"}}
    return {"groups": [{"name": "ops-pages-test", "interval": "1s", "rules": recorded + [alert]}]}


@contextlib.contextmanager
def running_prometheus(folder: Path):
    """Prometheus on a free port with the rules above; yields its address once the SLI and alert are there."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rules.yml").write_text(yaml.safe_dump(rules(), sort_keys=False), encoding="utf-8")
    (folder / "prom.yml").write_text(f"global: {{evaluation_interval: 1s}}\nrule_files: [{folder}/rules.yml]\n")
    port = free_port()
    proc = subprocess.Popen(["prometheus", f"--config.file={folder}/prom.yml", f"--storage.tsdb.path={folder}/data",
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = f"http://127.0.0.1:{port}"

    def recorded(expr: str) -> int:
        return len(httpx.get(f"{address}/api/v1/query", params={"query": expr}).json()["data"]["result"])

    try:
        wait_for(lambda: recorded(names.SLI_INSTANT) == 3 and recorded('ALERTS{alertstate="firing"}') == 1,
                 60, "the recorded series and the firing alert")
        yield address
    finally:
        stop_process(proc)


def typed_outputs() -> StackOutputs:
    return StackOutputs.from_dict(lab_outputs())
