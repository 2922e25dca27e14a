"""govctl_files does what Ansible's lineinfile / replace / blockinfile / copy / file do for the forms the baseline
uses: the same cases through the stock modules and through one govctl_files call, on two copies of the same
files, must report the same changes in check mode, leave the same bytes and modes when applied, and change
nothing when applied again. Run by ansible-playbook on the local host, as the baseline runs on a host."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from core.paths import ROOT

pytestmark = pytest.mark.slow  # starts ansible-playbook three times (≈ 15 s)

ROLE = ROOT / "playbooks/roles/govctl_baseline"

SSHD = "Port 22\n#PermitRootLogin prohibit-password\nUsePAM yes\n"
# (name, starting content or None for no file, the stock task's module and arguments without the path,
#  the govctl_files element without the path)
CASES = [
    ("line-replaces-the-last-match", "a = 1\n# a = 2\nb = 3\n",
     ("lineinfile", {"regexp": r"^\s*#?\s*a\s*=", "line": "a = 9"}), {"regexp": r"^\s*#?\s*a\s*=", "line": "a = 9"}),
    ("line-already-there", "a = 9\n", ("lineinfile", {"regexp": r"^a\s*=", "line": "a = 9"}),
     {"regexp": r"^a\s*=", "line": "a = 9"}),
    ("line-appended-to-a-file-without-final-newline", "x = 1",
     ("lineinfile", {"regexp": r"^y\s", "line": "y\t2"}), {"regexp": r"^y\s", "line": "y\t2"}),
    ("line-exact-without-regexp-match", "keep\nenforce_for_root\n",
     ("lineinfile", {"regexp": r"^\s*#\s*enforce_for_root\b$", "line": "enforce_for_root"}),
     {"regexp": r"^\s*#\s*enforce_for_root\b$", "line": "enforce_for_root"}),
    ("line-creates-the-file", None,
     ("lineinfile", {"regexp": "^deny", "line": "deny = 5", "create": True, "mode": "0644"}),
     {"regexp": "^deny", "line": "deny = 5", "create": True, "mode": "0644"}),
    ("line-in-a-missing-file-without-create-fails", None,
     ("lineinfile", {"regexp": "^deny", "line": "deny = 5"}), {"regexp": "^deny", "line": "deny = 5"}),
    ("replace-every-match-with-a-group", "\trotate 4\n  rotate 2\nrotate 26\n",
     ("replace", {"regexp": r"^(\s*)rotate\s+(?!26\s*$)\d+\s*$", "replace": r"\1rotate 26"}),
     {"regexp": r"^(\s*)rotate\s+(?!26\s*$)\d+\s*$", "replace": r"\1rotate 26"}),
    ("replace-nothing-to-do", "weekly\n", ("replace", {"regexp": r"^(\s*)(daily|monthly)\s*$", "replace": r"\1weekly"}),
     {"regexp": r"^(\s*)(daily|monthly)\s*$", "replace": r"\1weekly", "notify": "restart rsyslog"}),
    ("replace-in-a-missing-file-fails", None, ("replace", {"regexp": "a", "replace": "b"}), {"regexp": "a", "replace": "b"}),
    ("block-inserted-first", SSHD,
     ("blockinfile", {"marker": "# {mark} govctl T", "insertbefore": "BOF", "block": "MaxAuthTries 3\nX11Forwarding no\n"}),
     {"marker": "# {mark} govctl T", "block": "MaxAuthTries 3\nX11Forwarding no\n", "notify": "restart sshd"}),
    ("block-replaced-between-its-markers", "# BEGIN govctl T\nMaxAuthTries 6\n# END govctl T\n" + SSHD,
     ("blockinfile", {"marker": "# {mark} govctl T", "insertbefore": "BOF", "block": "MaxAuthTries 3"}),
     {"marker": "# {mark} govctl T", "block": "MaxAuthTries 3"}),
    ("block-already-there", "# BEGIN govctl T\nPermitRootLogin no\n# END govctl T\n" + SSHD,
     ("blockinfile", {"marker": "# {mark} govctl T", "insertbefore": "BOF", "block": "PermitRootLogin no"}),
     {"marker": "# {mark} govctl T", "block": "PermitRootLogin no"}),
    ("block-markers-reversed", "# END govctl T\nold\n# BEGIN govctl T\nrest",
     ("blockinfile", {"marker": "# {mark} govctl T", "insertbefore": "BOF", "block": "new"}),
     {"marker": "# {mark} govctl T", "block": "new"}),
    ("block-validated-and-refused", SSHD,
     ("blockinfile", {"marker": "# {mark} govctl V", "insertbefore": "BOF", "block": "Bad", "validate": "sh -c '! grep -q Bad %s'"}),
     {"marker": "# {mark} govctl V", "block": "Bad", "validate": "sh -c '! grep -q Bad %s'"}),
    ("content-new-file", None, ("copy", {"content": "TMOUT=600\nreadonly TMOUT\n", "mode": "0644"}),
     {"content": "TMOUT=600\nreadonly TMOUT\n", "mode": "0644"}),
    ("content-same-but-mode", "umask 027\n", ("copy", {"content": "umask 027\n", "mode": "0600"}),
     {"content": "umask 027\n", "mode": "0600"}),
    ("content-differs", "old\n", ("copy", {"content": "new\n", "mode": "0644"}), {"content": "new\n", "mode": "0644"}),
    ("mode-only", "x\n", ("file", {"mode": "0640"}), {"mode": "0640"}),
    ("mode-only-of-a-folder", "folder", ("file", {"mode": "0700"}), {"mode": "0700"}),
    ("content-onto-a-folder-fails", "folder", ("copy", {"content": "x\n", "mode": "0644"}), {"content": "x\n", "mode": "0644"}),
    ("mode-only-of-a-missing-file-fails", None, ("file", {"mode": "0640"}), {"mode": "0640"}),
]


def _playbook(tmp_path: Path, check: bool) -> Path:
    stock, ours = tmp_path / "stock", tmp_path / "ours"
    tasks = []
    for number, (name, _, (module, args), _) in enumerate(CASES):
        path_key = "dest" if module == "copy" else "path"
        tasks.append({"name": name, f"ansible.builtin.{module}": {**args, path_key: str(stock / name)},
                      "ignore_errors": True, "register": f"stock_{number}"})
    elements = [{**element, "check": f"T-{name} | case", "path": str(ours / name)} for name, _, _, element in CASES]
    tasks.append({"name": "sub-checks | govctl_files", "govctl_files": {"files": elements}, "ignore_errors": True,
                  "register": "ours"})
    stock_results = ", ".join(f"stock_{number}" for number in range(len(CASES)))
    tasks.append({"name": "the results", "check_mode": False, "ansible.builtin.copy": {
        "dest": str(tmp_path / "results.json"), "content": "{{ {'stock': [%s], 'ours': ours} | to_json }}" % stock_results}})
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False, "check_mode": check, "tasks": tasks}]
    path = tmp_path / f"play-{check}.yml"
    path.write_text(json.dumps(play))
    return path


def _run(tmp_path: Path, check: bool) -> tuple[dict, dict, dict]:
    """(stock results by case, govctl_files results by case, the govctl_files call's result) of one run."""
    env = {**os.environ, "ANSIBLE_LIBRARY": str(ROLE / "library"),
           "ANSIBLE_MODULE_UTILS": str(ROLE / "module_utils"), "ANSIBLE_LOCALHOST_WARNING": "false",
           "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false", "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]}
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "--diff",
                           str(_playbook(tmp_path, check))], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())
    stock = {case[0]: result for case, result in zip(CASES, results["stock"])}
    ours = {r["item"]["check"].removeprefix("T-").removesuffix(" | case"): r for r in results["ours"]["results"]}
    return stock, ours, results["ours"]


def _files(folder: Path) -> dict:
    return {p.name: (p.read_bytes() if p.is_file() else "folder", stat.S_IMODE(p.stat().st_mode))
            for p in sorted(folder.iterdir())}


@pytest.fixture()
def trees(tmp_path):
    for tree in ("stock", "ours"):
        (tmp_path / tree).mkdir()
        for name, content, _, _ in CASES:
            if content == "folder":
                (tmp_path / tree / name).mkdir(mode=0o755)
            elif content is not None:
                (tmp_path / tree / name).write_bytes(content.encode("latin-1"))
                os.chmod(tmp_path / tree / name, 0o644)
    return tmp_path


def test_the_same_changes_bytes_and_modes_as_the_stock_modules(trees):
    before = _files(trees / "ours")
    stock, ours, call = _run(trees, check=True)
    # only the handlers of files that (would) change are named; a failed file fails its element, not the call
    assert call["notify"] == ["restart sshd"] and not call.get("failed")
    assert set(ours) == {c[0] for c in CASES}
    for name in ours:
        assert bool(ours[name].get("failed")) == bool(stock[name].get("failed")), name
        assert ours[name]["changed"] == stock[name]["changed"], (name, "check mode")
    assert _files(trees / "ours") == before == _files(trees / "stock"), "check mode changed a file"
    # the failures say which file and why
    assert "does not exist" in ours["line-in-a-missing-file-without-create-fails"]["msg"]

    stock, ours, _ = _run(trees, check=False)
    for name in ours:
        assert bool(ours[name].get("failed")) == bool(stock[name].get("failed")), name
        assert ours[name]["changed"] == stock[name]["changed"], (name, "applied")
    assert _files(trees / "ours") == _files(trees / "stock")
    assert ours["block-validated-and-refused"]["failed"] and "failed validation" in ours["block-validated-and-refused"]["msg"]
    assert _files(trees / "ours")["block-inserted-first"][0].startswith(b"# BEGIN govctl T\nMaxAuthTries 3\n")
    assert _files(trees / "ours")["content-same-but-mode"][1] == 0o600

    stock, ours, call = _run(trees, check=False)
    assert call["notify"] == []
    assert [n for n, r in ours.items() if r["changed"]] == [] == [n for n, r in stock.items() if r.get("changed")]
