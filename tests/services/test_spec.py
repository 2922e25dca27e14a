"""The components file: the shipped one validates and plans in dependency order; bad ones are refused
with the file, line, key and what to change (exit 2), before anything is touched."""
from __future__ import annotations

import json

import pytest

from monitors.specfile import SpecError
from services.spec import DEFAULT_SPEC, Restart, load_spec, plan
from tests.conftest import run_govctl

VALUES = {"stack": "lab", "store": "sqlite", "host": "127.0.0.1", "port": 8443,
          "console_url": "https://127.0.0.1:8443/", "state": "/s", "platform": "/s/platform",
          "python": "/py", "tls_cert": "/c.crt", "tls_key": "/c.key",
          "tls_args": ["--tls-certfile", "/c.crt", "--tls-keyfile", "/c.key"], "store_args": []}
LAUNCHER = ("/py", "-m", "govctl")


def _plan(options, **values):
    return {p.name: p for p in plan(load_spec(), options, {**VALUES, **values}, LAUNCHER)}


def test_shipped_components_validate_and_plan_in_dependency_order():
    spec = load_spec(DEFAULT_SPEC)
    assert {c.name for c in spec.components} == {"lab", "hardening", "monitoring", "elasticsearch",
                                                 "secops", "console", "notify"}
    planned = plan(spec, {"stack": "lab", "store": "sqlite"}, VALUES, LAUNCHER)
    order = [p.name for p in planned]
    assert "elasticsearch" not in order  # only with --store elasticsearch
    assert order.index("lab") < order.index("hardening") < order.index("secops")
    assert order.index("lab") < order.index("monitoring")
    by_name = {p.name: p for p in planned}
    assert by_name["secops"].run == (*LAUNCHER, "secops", "run", "--stack", "lab", "--enforce",
                                     "--source", f"console={VALUES['state']}/console/console-signin.log")
    assert by_name["console"].run[-4:] == ("--tls-certfile", "/c.crt", "--tls-keyfile", "/c.key")
    assert by_name["console"].check_url == "https://127.0.0.1:8443/api/openapi.json"
    assert by_name["secops"].needs == ("lab",)  # elasticsearch does not apply
    # notify (issue #18): the receiver Alertmanager posts to, on the SQLite store unless told otherwise
    assert by_name["notify"].run == (*LAUNCHER, "notify", "serve", "--listen", "127.0.0.1:19096")


def test_elasticsearch_store_adds_the_node_and_passes_its_config():
    planned = _plan({"stack": "lab", "store": "elasticsearch"},
                    store_args=["--config", "/s/platform/secops-elasticsearch.json"])
    assert list(planned).index("elasticsearch") < list(planned).index("secops")
    assert planned["secops"].run[-2:] == ("--config", "/s/platform/secops-elasticsearch.json")
    assert planned["console"].run[-2:] == ("--config", "/s/platform/secops-elasticsearch.json")
    assert planned["elasticsearch"].component.save_json == {"key": "secops_config",
                                                             "file": "secops-elasticsearch.json"}


def test_backoff_doubles_up_to_its_maximum():
    restart = Restart(base=1, max=60, reset_after=60)
    assert [restart.delay(n) for n in (1, 2, 3, 4, 7, 20)] == [1, 2, 4, 8, 60, 60]


@pytest.mark.parametrize("edit, expected", [
    (("kind: service\n    description: the console", "kind: daemon\n    description: the console"),
     "components[5].kind: 'daemon' is not one of ['step', 'service']"),
    (("needs: [lab, elasticsearch]", "needs: [lab, hardnening]"),
     "components[4].needs[1]: no component is named 'hardnening'"),
    (("restart: {base: 1, max: 60, reset_after: 60}\n    timeout: 60\n\n  - name: console",
      "restart: {base: 90, max: 60}\n    timeout: 60\n\n  - name: console"),
     "components[4].restart.base: base 90 s exceeds max 60 s"),
    (("console-signin.log\",\n          \"{store_args}\"]", "console-signin.log\",\n          \"--x={store_args}\"]"),
     "components[4].run[8]: {store_args} stands for several arguments"),
    (("check: {stamp: true}", "check: {stamp: true}\n    colour: blue"),
     "components[1].colour: 'colour' is not expected here"),
])
def test_bad_components_are_refused_with_file_line_and_key(tmp_path, edit, expected):
    assert_edit_refused(tmp_path, edit, expected)


def assert_edit_refused(tmp_path, edit: tuple[str, str], expected: str) -> None:
    """The shipped components.yaml with `edit` made is refused with `expected`, naming the file and line."""
    text = DEFAULT_SPEC.read_text(encoding="utf-8")
    assert edit[0] in text
    bad = tmp_path / "components.yaml"
    bad.write_text(text.replace(edit[0], edit[1], 1), encoding="utf-8")
    with pytest.raises(SpecError) as error:
        load_spec(bad)
    assert expected in str(error.value)
    assert f"{bad}:" in str(error.value)  # file:line


def test_cycle_and_step_needing_a_service_are_refused(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("version: 1\nconsole: {component: a, path: /}\ncomponents:\n"
                   " - {name: a, kind: service, description: x, run: [x], needs: [b]}\n"
                   " - {name: b, kind: service, description: x, run: [x], needs: [a]}\n"
                   " - {name: c, kind: step, description: x, run: [x], needs: [a], check: {stamp: true}}\n")
    with pytest.raises(SpecError) as error:
        load_spec(bad)
    message = str(error.value)
    assert "the needs go round in a circle: a → b → a" in message
    assert f"{bad}:6: components[2].needs[0]: step 'c' needs service 'a'" in message


def test_cli_refuses_a_bad_components_file_with_exit_2_and_touches_nothing(tmp_path, isolated_state):
    bad = tmp_path / "components.yaml"
    bad.write_text(DEFAULT_SPEC.read_text(encoding="utf-8").replace("kind: step", "kind: stpe", 1))
    env = {**isolated_state, "COLUMNS": "400"}  # error lines unwrapped
    proc = run_govctl("up", "--components", str(bad), env=env)
    assert proc.returncode == 2, proc.stderr
    assert f"{bad}:" in proc.stderr and "components[0].kind" in proc.stderr and "stpe" in proc.stderr
    assert "Traceback" not in proc.stderr
    from pathlib import Path
    assert not (Path(isolated_state["GOVCTL_STATE"]) / "platform").exists()
    missing = run_govctl("up", "--components", str(tmp_path / "nope.yaml"), env=env)
    assert missing.returncode == 2 and "cannot read the file" in missing.stderr


@pytest.mark.parametrize("args, message", [
    (["--host", "a b"], "--host 'a b': give an IP address or a host name"),
    (["--stack", "../x"], "--stack '../x': a stack name is lower-case letters"),
    (["--store", "mongodb"], "--store 'mongodb': use sqlite or elasticsearch"),
    (["--port", "70000"], "--port 70000 is out of range"),
    (["--plain-http", "--host", "0.0.0.0"], "only on --host 127.0.0.1"),
])
def test_bad_options_are_refused_before_anything_is_made(isolated_state, args, message):
    from pathlib import Path
    proc = run_govctl("up", *args, env={**isolated_state, "COLUMNS": "400"})
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    # no CA, no key, no credentials: only the audit trail, which records the refused attempt
    state = Path(isolated_state["GOVCTL_STATE"])
    assert {p.name for p in state.iterdir()} <= {"audit"}
    if (state / "audit").exists():
        listed = run_govctl("auditlog", "list", "--action", "platform", "--json", env=isolated_state)
        entries = json.loads(listed.stdout)["entries"]
        assert [(e["action"], e["outcome"]) for e in entries] == [("platform.up", "failed")], listed.stdout


def test_down_when_never_up_stops_nothing(isolated_state):
    proc = run_govctl("down", "--json", env=isolated_state)
    assert proc.returncode == 0 and '"stopped": []' in proc.stdout
