"""Evidence packs: reports + raw evidence + attachments under an SM2-signed SM3 manifest; a tampered,
truncated or padded pack fails verification naming the file. The CLI packs render both PDFs
(slow tier); the fast tests seal JSON and CSV reports in-process."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from policies.compliance import pack as packs

from .conftest import FIXTURES, PASSPHRASE, fixture_layers
from tests.conftest import run_govctl


@pytest.fixture(scope="module")
def sealed(tmp_path_factory) -> tuple[Path, dict]:
    """One pack of the lab fixtures (both standards) made by the CLI with a throwaway keystore."""
    base = tmp_path_factory.mktemp("pack")
    state = base / "state"
    (state / "crypto").mkdir(parents=True)
    (state / "crypto" / "config.yaml").write_text("suite: gm\nkdf_iterations: 100000\n")
    attachment = base / "inputs" / "pi-list.txt"
    attachment.parent.mkdir()
    attachment.write_text("个人信息收集清单：姓名、身份证号（办事必需）\n", encoding="utf-8")
    (base / "inputs" / "assessment.yaml").write_text(
        "system: {name: 测试政务云}\n"
        "attachments:\n  - {standard: djcp, item: CE-PI-A, title: 个人信息收集清单, path: pi-list.txt,"
        " verdict: 符合, assessor: 王工, date: 2026-11-01}\n"
        "waivers:\n  - {standard: djcp, item: AB-PROT-D, justification: 本系统未部署无线网络, approver: 李处长, expires: 2099-12-31}\n",
        encoding="utf-8")
    env = {"GOVCTL_STATE": str(state), "GOVCTL_CRYPTO_PASSPHRASE": PASSPHRASE}
    out = base / "pack"
    proc = run_govctl("comply", "pack", "--out", str(out), "--evidence", str(FIXTURES),
                      "--assessment", str(base / "inputs" / "assessment.yaml"), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    return out, env


def _copy(sealed, tmp_path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(sealed[0], target)
    return target


@pytest.mark.slow
def test_pack_holds_reports_evidence_attachments_and_verifies(sealed):
    out, env = sealed
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    for standard in ("djcp", "mlps-crypto"):
        assert {f"report-{standard}-L3.{f}" for f in ("json", "csv", "html", "pdf")} <= names
    assert {f"evidence/{n}.json" for n in ("stack", "firewall", "platform", "hosts", "monitoring", "secops", "crypto",
                                           "drills")} <= names
    assert "attachments/djcp/CE-PI-A/pi-list.txt" in names and "assessment.yaml" in names
    manifest = json.loads((out / "evidence.manifest.json").read_text())
    assert manifest["hash"] == "sm3" and manifest["signature"]["alg"] == "sm2"
    report = json.loads((out / "report-djcp-L3.json").read_text())
    by_id = {i["id"]: i for i in report["items"]}
    assert by_id["CE-PI-A"]["verdict"] == "符合" and by_id["AB-PROT-D"]["verdict"] == "不适用"
    assert report["system"]["name"] == "测试政务云"
    assert json.loads((out / "evidence" / "stack.json").read_text()) == json.loads((FIXTURES / "stack.json").read_text())
    proc = run_govctl("comply", "verify", str(out), env=env)
    assert proc.returncode == 0 and "signature valid" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("standard, title, headings, ids", [
    ("djcp", "网络安全等级保护基本要求", ("安全通信网络", "安全区域边界", "安全计算环境", "安全管理中心", "云计算扩展"),
     ("CN-ARCH-E", "AB-ACL-A", "CE-CONF-A", "MC-CEN-D", "CL-CE-DATA-A")),
    ("mlps-crypto", "信息系统密码应用基本要求", ("物理和环境安全", "网络和通信安全", "设备和计算安全", "应用和数据安全", "密钥管理"),
     ("NC-AUTH", "AD-TRANSIT-CONFIDENTIALITY", "KM-ROTATION")),
])
def test_pdf_in_chinese_rasterizes_and_reads_back(sealed, tmp_path, standard, title, headings, ids):
    pdf = sealed[0] / f"report-{standard}-L3.pdf"
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    subprocess.run(["pdftoppm", "-r", "30", "-png", str(pdf), str(tmp_path / "page")], check=True)
    images = sorted(tmp_path.glob("page-*.png"))
    assert len(images) == pages >= 4
    assert all(p.stat().st_size > 1500 for p in images)           # drawn pages, not blank ones
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "CJK" in fonts                                          # Chinese glyphs from Noto CJK, embedded
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    for heading in (title, "测评结论摘要", "估算分", "问题与整改建议", "逐项测评结果", "证据明细") + headings:
        assert heading in text, heading
    for item_id in ids:
        assert item_id in text, item_id


@pytest.mark.slow
@pytest.mark.parametrize("change, expected", [
    (lambda d: (d / "evidence" / "hosts.json").write_text((d / "evidence" / "hosts.json").read_text().replace("符合", "不符合", 1)), "changed: evidence/hosts.json"),
    (lambda d: (d / "report-djcp-L3.pdf").unlink(), "missing: report-djcp-L3.pdf"),
    (lambda d: (d / "evidence" / "extra.json").write_text("{}"), "added: evidence/extra.json"),
])
def test_tampered_pack_fails_naming_the_file(sealed, tmp_path, change, expected):
    copy = _copy(sealed, tmp_path)
    change(copy)
    proc = run_govctl("comply", "verify", str(copy), env=sealed[1])
    assert proc.returncode == 1
    assert expected in " ".join(proc.stderr.split())


@pytest.mark.slow
def test_forged_manifest_fails_and_foreign_key_is_refused(sealed, tmp_path):
    copy = _copy(sealed, tmp_path)
    manifest = json.loads((copy / "evidence.manifest.json").read_text())
    manifest["description"] = "something else"
    (copy / "evidence.manifest.json").write_text(json.dumps(manifest))
    proc = run_govctl("comply", "verify", str(copy), "--json", env=sealed[1])
    assert proc.returncode == 1 and json.loads(proc.stdout)["signature_valid"] is False
    from crypto.sm2 import SM2PrivateKey
    foreign = SM2PrivateKey.generate().public_key().to_bytes().hex()  # a real key, not the signer's
    proc = run_govctl("comply", "verify", str(sealed[0]), "--pubkey", foreign, "--json", env=sealed[1])
    assert proc.returncode == 1 and json.loads(proc.stdout)["signature_valid"] is False
    off_curve = "04" + "11" * 64
    proc = run_govctl("comply", "verify", str(sealed[0]), "--pubkey", off_curve, env=sealed[1])
    assert proc.returncode == 2 and "not a point on the SM2 curve" in proc.stderr


def test_pack_refuses_a_non_empty_directory(tmp_path):
    from core.errors import BadInput
    from policies.compliance.assessment import Assessment

    (tmp_path / "x").write_text("already here")
    with pytest.raises(BadInput, match="not empty"):
        packs.write(tmp_path, [], fixture_layers(), Assessment())


def test_sealed_in_process_and_tamper_is_named(crypto_state, tmp_path):
    from crypto.audit import open_keystore
    from policies.compliance.assessment import Assessment

    from .conftest import evaluate

    layers = fixture_layers()
    reports = [evaluate("djcp", layers), evaluate("mlps-crypto", layers)]
    out = tmp_path / "pack"
    manifest = packs.write(out, reports, layers, Assessment(), open_keystore(), formats=("json", "csv"))
    assert {f["path"] for f in manifest["files"]} >= {"report-djcp-L3.json", "report-mlps-crypto-L3.csv",
                                                     "evidence/firewall.json"}
    assert packs.verify(out).files == len(manifest["files"])
    (out / "evidence" / "drills.json").write_text("{}")
    with pytest.raises(packs.PackInvalid, match="changed: evidence/drills.json"):
        packs.verify(out)
