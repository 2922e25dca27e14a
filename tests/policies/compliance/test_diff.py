"""`govctl comply diff A B`: two real reports of the saved lab evidence, where remote administration
on every host was broken in between (Telnet-style clear text, no SSH-only policy)."""
from __future__ import annotations

import json

import pytest

from policies.compliance import COMPLIANT, NON_COMPLIANT
from policies.compliance.diff import compare, load_side

from .conftest import evaluate, fixture_layers, write_json
from tests.conftest import run_govctl

REMOTE_ADMIN = ("IA-REMOTE-ADMIN-SSH", "IA-NO-CLEARTEXT-REMOTE")


def with_remote_admin(verdict: str) -> dict:
    layers = fixture_layers()
    for host in layers["hosts"]["data"]["audit"]["hosts"].values():
        for i in host["items"]:
            if i["id"] in REMOTE_ADMIN:
                i["verdict"] = verdict
    return layers


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("diff")
    before = write_json(folder / "djcp-before.json", evaluate("djcp", with_remote_admin(COMPLIANT)))
    after = write_json(folder / "djcp-after.json", evaluate("djcp", with_remote_admin(NON_COMPLIANT)))
    return folder, before, after


def test_diff_names_the_broken_item_the_new_high_risk_finding_the_evidence_and_the_score(reports):
    _, before, after = reports
    result = compare(load_side(before, "A"), load_side(after, "B"))
    [r] = result["reports"]
    assert (r["key"], r["level"]) == ("djcp", 3)
    changes = {c["id"]: c for c in r["verdict_changes"]}
    assert changes["CE-IA-C"]["from"] == COMPLIANT and changes["CE-IA-C"]["to"] == NON_COMPLIANT
    assert changes["CE-IA-C"]["direction"] == "worse" and changes["CE-IA-C"]["high_risk"]
    assert all(c["direction"] == "worse" for c in r["verdict_changes"])
    assert changes["CE-IA-D"]["from"] == "需人工核查"  # newly decided as failing: worse too
    assert "CE-MAL-A" not in changes            # untouched items are not listed
    # clear-text remote administration also makes the transport item high-risk
    assert [f["id"] for f in r["new_high_risk"]] == ["CE-IA-C", "CN-TRANS-B"]
    assert r["new_high_risk"][0]["condition"]["zh"].startswith("远程管理使用 Telnet")
    evidence = {e["id"]: e for e in r["evidence_changes"]}
    [change] = evidence["CE-IA-C"]["changes"]
    assert change["layer"] == "hosts" and change["from"]["verdict"] == COMPLIANT
    assert change["to"]["verdict"] == NON_COMPLIANT and "web-1.prod" in change["to"]["detail"]
    assert set(evidence) == set(changes)  # only the remote-administration evidence changed
    s = r["score"]
    assert s["to"] < s["from"] and s["change"] == round(s["to"] - s["from"], 1)
    assert s["high_risk_findings"] == {"from": 2, "to": 4}
    assert r["counts"][NON_COMPLIANT]["to"] > r["counts"][NON_COMPLIANT]["from"]

    same = compare(load_side(after, "A"), load_side(after, "B"))["reports"][0]
    assert same["verdict_changes"] == [] and same["new_high_risk"] == [] and same["evidence_changes"] == []
    assert same["score"]["change"] == 0


def test_cli_prints_chinese_first_text_and_json(reports):
    _, before, after = reports
    proc = run_govctl("comply", "diff", str(before), str(after))
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "估算分 Estimated score:" in text and "结论变化 Verdict changes" in text
    assert "CE-IA-C" in text and "符合 → 不符合  变差 worse  高风险 HIGH RISK" in text
    assert "新增高风险项 New high-risk findings (2):" in text and "远程管理使用 Telnet 等明文协议" in text
    assert text.index("估算分") < text.index("结论变化") < text.index("新增高风险项") < text.index("证据变化")
    doc = json.loads(run_govctl("comply", "diff", str(before), str(after), "--json").stdout)
    assert doc["format"] == "govctl-compliance-diff" and doc["a"]["kind"] == "report"
    assert [f["id"] for f in doc["reports"][0]["new_high_risk"]] == ["CE-IA-C", "CN-TRANS-B"]


def test_bad_inputs_name_the_side_and_what_to_do(reports, tmp_path):
    from core.errors import BadInput

    _, before, _ = reports
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    other = write_json(tmp_path / "other.json", {"hello": 1})
    cases = [
        (lambda: load_side(tmp_path / "none.json", "A"), "A .* does not exist"),
        (lambda: load_side(junk, "B"), "B .*not JSON \\(line 1"),
        (lambda: load_side(other, "A"), "A .*not a govctl compliance report"),
        (lambda: load_side(tmp_path, "B"), "B .*has no evidence.manifest.json"),
    ]
    for call, message in cases:
        with pytest.raises(BadInput, match=message):
            call()
    crypto = {"source": "c", "kind": "report", "signer": None, "reports": {("mlps-crypto", 3): {}}}
    with pytest.raises(BadInput, match="share no standard and level"):
        compare(load_side(before, "A"), crypto)
    proc = run_govctl("comply", "diff", str(before), str(junk))
    assert proc.returncode == 2 and "B " in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_diff_of_two_signed_packs_verifies_them_first(tmp_path):
    from policies.compliance import collect

    from .conftest import PASSPHRASE

    state = tmp_path / "state"
    (state / "crypto").mkdir(parents=True)
    (state / "crypto" / "config.yaml").write_text("suite: gm\nkdf_iterations: 100000\n")
    env = {"GOVCTL_STATE": str(state), "GOVCTL_CRYPTO_PASSPHRASE": PASSPHRASE}
    packs = {}
    for name, verdict in (("q3", COMPLIANT), ("q4", NON_COMPLIANT)):
        collect.save(with_remote_admin(verdict), tmp_path / f"evidence-{name}")
        packs[name] = tmp_path / f"pack-{name}"
        proc = run_govctl("comply", "pack", "--out", str(packs[name]), "--evidence",
                          str(tmp_path / f"evidence-{name}"), env=env)
        assert proc.returncode == 0, proc.stderr
    proc = run_govctl("comply", "diff", str(packs["q3"]), str(packs["q4"]), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["a"]["kind"] == doc["b"]["kind"] == "pack"
    by_key = {r["key"]: r for r in doc["reports"]}
    assert set(by_key) == {"djcp", "mlps-crypto"}
    assert [f["id"] for f in by_key["djcp"]["new_high_risk"]] == ["CE-IA-C", "CN-TRANS-B"]
    # a pack altered after signing is refused before anything is compared
    report = packs["q4"] / "report-djcp-L3.json"
    doc = json.loads(report.read_text())
    doc["items"][0]["verdict"] = COMPLIANT
    report.write_text(json.dumps(doc, ensure_ascii=False))
    proc = run_govctl("comply", "diff", str(packs["q3"]), str(packs["q4"]), env=env)
    assert proc.returncode == 1 and "B: evidence pack" in proc.stderr
    assert "changed: report-djcp-L3.json" in " ".join(proc.stderr.split()) and "Traceback" not in proc.stderr
