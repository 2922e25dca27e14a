"""Shared helpers for secops tests: real log lines, the bundled rules, a CLI runner."""
from __future__ import annotations

import pytest

from secops.detect import load_rules


@pytest.fixture(scope="session")
def bundled_rules():
    rules = load_rules()
    assert rules.errors == []
    return rules
