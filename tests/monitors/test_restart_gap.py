"""`monitor up` starts Prometheus no sooner than RESTART_GAP_INTERVALS after `down` stopped it, so
the old process's last self-scrape is too old to open the SLI's warm-up guard (issue #19)."""
from __future__ import annotations

import time
from dataclasses import replace

from monitors.slo import load_slo_spec
from monitors.stack import RESTART_GAP_INTERVALS, Layout, _wait_restart_gap


def test_up_waits_out_the_gap_after_a_recent_stop_and_not_otherwise(tmp_path):
    layout = Layout(tmp_path)
    spec = replace(load_slo_spec(), interval=0.2)
    said: list[str] = []
    began = time.monotonic()
    _wait_restart_gap(layout, spec, said.append)          # never stopped: no wait
    assert said == [] and time.monotonic() - began < 0.1
    layout.prometheus_stopped.write_text(f"{time.time():.3f}")
    began = time.monotonic()
    _wait_restart_gap(layout, spec, said.append)
    assert time.monotonic() - began >= RESTART_GAP_INTERVALS * 0.2 - 0.05
    assert len(said) == 1 and said[0].startswith("waiting ") and "warm-up" in said[0]
    layout.prometheus_stopped.write_text(f"{time.time() - 60:.3f}")   # stopped long ago
    began = time.monotonic()
    _wait_restart_gap(layout, spec, said.append)
    assert len(said) == 1 and time.monotonic() - began < 0.1
