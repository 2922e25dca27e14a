"""Monitoring for drill tests: the real stack on the lab, with the SLO windows scaled down
(window_scale 60, 1 s interval) so that back-to-back drills each start from a quiet monitor."""
from __future__ import annotations

import pytest

from tests.conftest import ROOT, run_govctl


@pytest.fixture(scope="module")
def drill_monitoring(lab, tmp_path_factory):
    text = (ROOT / "monitors" / "slo.yaml").read_text()
    assert "window_scale: 1 " in text and "interval: 5s " in text
    spec = tmp_path_factory.mktemp("slo") / "slo-drills.yaml"
    spec.write_text(text.replace("window_scale: 1 ", "window_scale: 60 ")
                    .replace("interval: 5s ", "interval: 1s "))
    up = run_govctl("monitor", "up", "--stack", "lab", "--spec", str(spec), timeout=600)
    assert up.returncode == 0, up.stderr[-3000:]
    yield spec
    down = run_govctl("monitor", "down", timeout=300)
    assert down.returncode == 0, down.stderr[-3000:]
