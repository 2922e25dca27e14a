"""Run promtool on the generated rules: `check rules` and the generated `test rules` cases."""
from __future__ import annotations

import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from os import cpu_count
from pathlib import Path

from core.errors import GovctlError

from .slo import SLOSpec, dump_yaml, render_rules, render_rules_text
from .slo_tests import render_rule_tests, spec_for_tests


@dataclass
class Outcome:
    name: str
    ok: bool
    seconds: float
    output: str


def promtool() -> str:
    path = shutil.which("promtool")
    if not path:
        raise GovctlError("promtool is not installed; run `make setup` (Debian package prometheus)")
    return path


def _run(name: str, args: list[str], cwd: Path) -> Outcome:
    start = time.monotonic()
    proc = subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True)
    return Outcome(name, proc.returncode == 0, time.monotonic() - start,
                   (proc.stdout + proc.stderr).strip())


def check_rules(path: Path) -> Outcome:
    return _run(f"promtool check rules {path.name}", ["check", "rules", str(path)], path.parent)


def write_rule_tests(spec: SLOSpec, folder: Path) -> tuple[list[Path], list[str]]:
    """The production rule file, its test copy and one promtool test file per case, in `folder`;
    also the notes on what no case can prove."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "slo-rules.yml").write_text(render_rules_text(spec), encoding="utf-8")
    test_spec = spec_for_tests(spec)
    (folder / "slo-rules.test-copy.yml").write_text(
        dump_yaml(render_rules(test_spec), "# The rules of slo-rules.yml evaluated every "
                                           f"{test_spec.interval:g} s for promtool tests.\n"),
        encoding="utf-8")
    suite, notes = render_rule_tests(spec, "slo-rules.test-copy.yml")
    paths = []
    for i, case in enumerate(suite["tests"]):
        path = folder / f"slo-test-{i + 1:02d}.yml"
        path.write_text(dump_yaml({**suite, "tests": [case]}, f"# {case['name']}\n"), encoding="utf-8")
        paths.append(path)
    return paths, notes


def test_rules(spec: SLOSpec, folder: Path) -> tuple[list[Outcome], list[str]]:
    """Check both rule files, then run every test case (in parallel: promtool uses one core)."""
    cases, notes = write_rule_tests(spec, folder)
    outcomes = [check_rules(folder / "slo-rules.yml"), check_rules(folder / "slo-rules.test-copy.yml")]
    if not all(o.ok for o in outcomes):
        return outcomes, notes

    def run_case(path: Path) -> Outcome:
        title = path.read_text(encoding="utf-8").splitlines()[0].lstrip("# ")
        return _run(title, ["test", "rules", path.name], folder)

    with ThreadPoolExecutor(max_workers=cpu_count() or 2) as pool:
        outcomes += list(pool.map(run_case, cases))
    return outcomes, notes
