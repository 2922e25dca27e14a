"""`plan(stack, json_output)`, the function behind `govctl infra plan`."""
from __future__ import annotations

import json

import pytest

from govctl.commands.infra_plan_cmd import plan
from core.errors import BadInput


def test_json_plan_of_a_stack(capsys):
    plan("tiny", True)
    out = json.loads(capsys.readouterr().out)
    assert out["stack"] == "tiny" and out["backend"] == "tiny" and out["resource_count"] == 1
    marker = out["resources"][0]
    assert marker["type"] == "pulumi-python:dynamic:Resource" and marker["name"] == "topology-marker"
    assert marker["inputs"]["content"]["topology"] == "lab"
    assert out["outputs"]["centers"]["remote"] == "remote_dr"


def test_table_plan_names_centers_and_counts(capsys):
    plan("tiny", False)
    out = capsys.readouterr().out
    assert "topology-marker" in out and "1 resources to create" in out and "nothing touched" in out


def test_unknown_stack_is_bad_input():
    with pytest.raises(BadInput, match="unknown stack 'nope'"):
        plan("nope", True)


def test_refused_topology_is_bad_input(monkeypatch):
    import infra.plan
    from infra.plan import plan_config

    from .conftest import VARIANTS

    def invalid(stack):
        return plan_config({"govctl:backend": "openstack", "govctl:topology": str(VARIANTS["invalid"])}, stack)

    monkeypatch.setattr(infra.plan, "plan_stack", invalid)
    with pytest.raises(BadInput, match=r"(?s)refused: .*remote DR center 'remote' is in the production site"):
        plan("broken", True)
