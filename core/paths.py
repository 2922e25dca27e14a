"""Where govctl keeps things. The checkout is the project; generated things stay out of git."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(os.environ.get("GOVCTL_ROOT", Path(__file__).resolve().parent.parent))
STATE = Path(os.environ.get("GOVCTL_STATE", ROOT / "state"))  # Pulumi state, keys, stores
TOOLS = ROOT / ".tools"  # binaries built by set-up (linked from the cache)
VENV = ROOT / ".venv"
CACHE = Path(os.environ.get("GOVCTL_CACHE", "/var/cache/govctl"))  # shared across clones
