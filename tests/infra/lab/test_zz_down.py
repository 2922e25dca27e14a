"""`govctl lab down` leaves nothing behind. Runs after every other test (marker lab_teardown)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.lab import system
from infra.lab.cleanup import leftovers
from tests.conftest import run_govctl

pytestmark = [pytest.mark.slow, pytest.mark.root, pytest.mark.lab_teardown]


def _machine_view() -> dict:
    return {
        "namespaces": system.lab_namespaces(),
        "root_links": sorted(l.split(":")[1].strip().split("@")[0] for l in
                             system.sh("ip", "-o", "link").stdout.splitlines()),
        "root_nft_tables": system.sh("nft", "list", "tables").stdout.split("\n"),
        "mounts": [l.split()[4] for l in Path("/proc/self/mountinfo").read_text().splitlines()],
    }


def test_down_leaves_nothing(lab):
    before = _machine_view()
    assert len(before["namespaces"]) == len(lab["namespaces"])
    assert leftovers()["processes"], "a running lab has host processes"
    proc = run_govctl("lab", "down", "--json", timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["left"] == {} and summary["swept"] == {}, summary
    after = _machine_view()
    assert after["namespaces"] == []
    assert after["root_links"] == before["root_links"], "the lab never adds links to the machine"
    assert after["root_nft_tables"] == before["root_nft_tables"]
    assert not [m for m in after["mounts"] if "/state/lab" in m]
    assert leftovers() == {}
    lab_dir = Path(lab["ssh"]["private_key"]).parent.parent
    assert not (lab_dir / "hosts").exists() or not any((lab_dir / "hosts").iterdir())
    assert not Path(lab["ssh"]["config"]).exists()
    user_config = Path.home() / ".ssh" / "config"
    assert not user_config.exists() or lab["ssh"]["config"] not in user_config.read_text()
