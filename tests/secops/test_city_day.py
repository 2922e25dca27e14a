"""bench/city_day.py at a tiny scale: the generator's ground truth holds through the embedded engine.

Every attacking source the generator writes is alerted and blocked (dry run); no innocent is blocked, among
them administrators who mistyped their password from the office and the security team's own scanner
(allowlisted: alerted, never blocked)."""
from __future__ import annotations

import importlib.util
import ipaddress
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "city_day.py"


@pytest.fixture(scope="module")
def city_day():
    spec = importlib.util.spec_from_file_location("city_day", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def day(city_day, tmp_path_factory):
    folder = tmp_path_factory.mktemp("city-day")
    truth = city_day.generate(folder, 0.001, 7)
    return folder, json.loads((folder / "truth.json").read_text()), truth


def test_the_day_has_every_kind_of_attack_among_background(city_day, day):
    folder, stored, truth = day
    assert set(stored["attackers_by_kind"]) == set(city_day.CAMPAIGNS)
    assert len(stored["attackers"]) == sum(stored["attackers_by_kind"].values())
    lines = {name: (folder / f"{name}.log").read_text().splitlines() for name in ("web", "auth", "firewall")}
    assert stored["lines"] == sum(map(len, lines.values())) == truth["lines"]
    assert 0 < stored["attack_lines"] < stored["lines"] / 10  # attacks are a small share of the day
    # every attacker and no innocent writes the lines of its kind, in the formats the normalizer reads
    sources = {m for text in lines.values() for line in text for m in re.findall(r"(?:SRC=|from |^)(\d+\.\d+\.\d+\.\d+)", line)}
    assert set(stored["attackers"]) <= sources
    assert all(int(ip.rsplit(".", 1)[1]) % 2 == 1 for ip in stored["attackers"])  # pools never overlap
    # administrators mistype from their office (not allowlisted), and sshd logs their failures
    assert any("Failed password for op" in line and " from 10.30." in line for line in lines["auth"])
    # each file is in time order, as a collector hands it over
    for name, text in lines.items():
        stamps = [line[:15] if name != "web" else line.split("[", 1)[1][:20] for line in text]
        assert stamps == sorted(stamps), name


def test_every_attacker_is_alerted_and_no_innocent_blocked(city_day, day):
    folder, stored, _ = day
    result = city_day.run_engine(folder, stored)
    attackers = set(stored["attackers"])
    assert result["unparsed"] == {}
    assert result["attackers"] == len(attackers) and result["alerted"] == len(attackers)
    assert result["attackers_missed"] == []
    assert result["innocents_blocked"] == 0 and result["blocked"] == len(attackers)
    # the security team's scanner fired web rules and was kept from interception by the allowlist
    assert result["allowlisted_alerts"] == [city_day.SECURITY_SCANNER]
    assert all(not ipaddress.ip_address(ip) in ipaddress.ip_network(city_day.OPS_NETWORK) for ip in attackers)
    assert result["lines"] == stored["lines"] and result["lines_per_second"] > 0


def test_bad_scale_is_refused_with_a_reason():
    proc = subprocess.run([sys.executable, str(BENCH), "--scale", "0"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert "--scale 0.0: give a factor above 0" in proc.stderr and "Traceback" not in proc.stderr
