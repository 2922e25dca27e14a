"""The layering contract (docs/architecture.md, .importlinter) holds: the CLI on top, core at the bottom,
no domain package importing the CLI, no product module importing tests, no import cycles."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_import_linter_contracts_are_kept():
    lint = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.stdout.count(" KEPT") == 4 and "BROKEN" not in proc.stdout

