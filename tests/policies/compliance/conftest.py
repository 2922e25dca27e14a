"""Compliance tests: the saved lab evidence (fixtures/lab, collected from the running lab by
`govctl comply collect`; hosts.json trimmed to the verdicts; crypto.json from a throwaway keystore)
and helpers to evaluate it, or a changed copy of it."""
from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "lab"


def fixture_layers() -> dict[str, dict]:
    from policies.compliance import collect

    return copy.deepcopy(collect.load(FIXTURES))


def evaluate(standard: str, layers: dict, level: int = 3, assessment=None, today: dt.date | None = None,
             freshness_limits=None) -> dict:
    from policies.compliance import catalog, engine
    from policies.compliance.assessment import Assessment
    from policies.compliance.checks import Evidence

    return engine.evaluate(catalog.load(standard, level), Evidence(layers, level), assessment or Assessment(), today,
                           freshness_limits)


def item(report: dict, item_id: str) -> dict:
    return next(i for i in report["items"] if i["id"] == item_id)


def deciding_text(entry: dict) -> str:
    return " ".join(entry["evidence"][k]["detail"] for k in entry["deciding"])


@pytest.fixture
def layers() -> dict[str, dict]:
    return fixture_layers()


# A throwaway state directory with an unlockable keystore: the crypto tests' fixture.
from tests.crypto.conftest import PASSPHRASE, state as crypto_state  # noqa: E402,F401


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path
