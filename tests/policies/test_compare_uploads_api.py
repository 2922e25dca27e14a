"""Comparing uploaded signed packs on the console's API (POST /compliance/compare, issue #19): two real packs
sealed from two real reports where remote administration on every host was broken in between give the
diff `govctl comply diff A B --json` gives for the unzipped directories; one side may be a report on
record; a pack altered after signing is refused naming its side, its file and what changed; hostile
uploads (not a zip, `..`, symbolic links, a zip bomb, lying sizes, past the body limit) are refused with
a reason, never a 500."""
from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from console.app import create_console_app
from core.api_extension import ApiExtension
from policies import api_tracking
from policies.compliance import COMPLIANT, NON_COMPLIANT, records
from policies.compliance.diff import compare, load_side

from tests.console.conftest import _users_template  # noqa: F401 (the session's hashed users)
from tests.policies.compliance.conftest import evaluate
from tests.policies.compliance.test_diff import with_remote_admin
from .test_tracking_api import signed_in, tracking_state, two_reports  # noqa: F401 (two_reports: a fixture)

CHANGED_REPORT = "report-djcp-L3.json"


def seal(directory: Path, verdict: str, generated: str) -> Path:
    """A signed pack (JSON reports only: the PDFs are slow) of the lab fixtures with remote administration
    `verdict` on every host, sealed with the state's evidence key as `govctl comply pack` seals one."""
    from crypto.audit import open_keystore
    from policies.compliance import pack
    from policies.compliance.assessment import Assessment

    layers = with_remote_admin(verdict)
    report = evaluate("djcp", layers)
    report["generated"] = generated
    pack.write(directory, [report], layers, Assessment(), open_keystore(), formats=("json",))
    return directory


def zip_of(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def clients(tmp_path_factory, _users_template):  # noqa: F811
    """A console with the tracking routes (no SecOps data: these routes read none) and a signed-in auditor
    and ops engineer (argon2 makes each sign-in slow on purpose: once per module)."""
    folder = tmp_path_factory.mktemp("compare-uploads")
    shutil.copy2(_users_template, folder / "users.yaml")
    app = create_console_app(folder / "secops.db", folder / "tokens.yaml", folder / "users.yaml",
                             static_dir=folder / "no-assets", extensions=[api_tracking.EXTENSION])
    return {name: signed_in(app, name) for name in ("zhao.lei", "wang.fang")}


@pytest.fixture(scope="module")
def app(clients, two_reports, tmp_path_factory):  # noqa: F811
    """The signed-in clients on this module's state folder (its own keystore) holding the two reports on record."""
    from crypto.audit import AuditLog

    state = tmp_path_factory.mktemp("compare-uploads-state") / "state"
    with pytest.MonkeyPatch.context() as patch:
        tracking_state(state, patch, two_reports)
        yield clients
        AuditLog._open_logs.clear()


@pytest.fixture(scope="module")
def sealed(app, tmp_path_factory):
    """The quarter before and after remote administration was broken, as signed pack directories (sealed once)."""
    folder = tmp_path_factory.mktemp("compare-uploads-packs")
    return (seal(folder / "pack-q3", COMPLIANT, "2026-09-01T08:00:00+00:00"),
            seal(folder / "pack-q4", NON_COMPLIANT, "2026-12-01T08:00:00+00:00"))


@pytest.fixture
def packs(sealed, tmp_path):
    """This test's copies of the two packs (a test may alter them)."""
    return tuple(Path(shutil.copytree(directory, tmp_path / directory.name)) for directory in sealed)


def upload(client, a=None, b=None):
    """POST /api/compliance/compare; each side a (file name, zip bytes) upload or the name of an entry on record."""
    files = {f"{side}_pack": (given[0], given[1], "application/zip")
             for side, given in (("a", a), ("b", b)) if isinstance(given, tuple)}
    names = {side: given for side, given in (("a", a), ("b", b)) if isinstance(given, str)}
    return client.post("/api/compliance/compare", files=files or None, data=names or None)


def test_two_uploaded_packs_give_the_diff_of_govctl_comply_diff(app, packs):
    q3, q4 = packs
    auditor = app["zhao.lei"]
    answer = upload(auditor, ("djcp-2026Q3-pack.zip", records.zip_folder(q3)), ("djcp-2026Q4-pack.zip", records.zip_folder(q4)))
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    cli = compare(load_side(q3, "A"), load_side(q4, "B"))  # what `govctl comply diff Q3 Q4 --json` prints
    assert doc["reports"] == cli["reports"] and doc["format"] == cli["format"] == "govctl-compliance-diff"
    assert (doc["a"]["kind"], doc["a"]["source"]) == ("pack", "djcp-2026Q3-pack.zip")
    assert (doc["b"]["kind"], doc["b"]["source"]) == ("pack", "djcp-2026Q4-pack.zip")
    assert doc["a"]["signer"] == cli["a"]["signer"] and doc["a"]["signer"]
    [r] = doc["reports"]
    changed = {c["id"]: c for c in r["verdict_changes"]}
    assert (changed["CE-IA-C"]["from"], changed["CE-IA-C"]["to"]) == (COMPLIANT, NON_COMPLIANT)
    assert changed["CE-IA-C"]["direction"] == "worse" and changed["CE-IA-C"]["high_risk"]
    assert [f["id"] for f in r["new_high_risk"]] == ["CE-IA-C", "CN-TRANS-B"] and r["score"]["change"] < 0
    # ops reads too, and a pack zipped as a folder (the pack directory inside) is the same pack
    folder_zip = io.BytesIO()
    with zipfile.ZipFile(folder_zip, "w") as archive:
        for path in sorted(q4.rglob("*")):
            if path.is_file():
                archive.write(path, f"pack-q4/{path.relative_to(q4).as_posix()}")
    again = upload(app["wang.fang"], ("q3.zip", records.zip_folder(q3)), ("q4.zip", folder_zip.getvalue()))
    assert again.status_code == 200, again.text
    assert again.json()["reports"] == cli["reports"]


@pytest.mark.slow
def test_the_cli_on_the_same_zips_prints_the_same_document(app, packs, tmp_path):
    """`govctl comply diff Q3.zip Q4.zip --json` (the zips the console downloads) is the API's answer, whole;
    a tampered zip makes it exit 1 naming B, the file and the changed report."""
    import os

    from tests.conftest import run_govctl

    zips = {}
    for directory in packs:
        zips[directory.name] = tmp_path / f"{directory.name}.zip"
        zips[directory.name].write_bytes(records.zip_folder(directory))
    env = {"GOVCTL_STATE": os.environ["GOVCTL_STATE"], "GOVCTL_CRYPTO_PASSPHRASE": os.environ["GOVCTL_CRYPTO_PASSPHRASE"]}
    cli = run_govctl("comply", "diff", str(zips["pack-q3"]), str(zips["pack-q4"]), "--json", env=env)
    assert cli.returncode == 0, cli.stderr
    answer = upload(app["zhao.lei"], ("pack-q3.zip", zips["pack-q3"].read_bytes()),
                    ("pack-q4.zip", zips["pack-q4"].read_bytes()))
    assert answer.json() == json.loads(cli.stdout)
    text = run_govctl("comply", "diff", str(zips["pack-q3"]), str(zips["pack-q4"]), env=env).stdout
    assert "B: pack-q4.zip (已验签证据包 verified pack)" in text and "符合 → 不符合  变差 worse" in text

    report = packs[1] / CHANGED_REPORT
    report.write_text(report.read_text(encoding="utf-8").replace(NON_COMPLIANT, COMPLIANT), encoding="utf-8")
    zips["pack-q4"].write_bytes(records.zip_folder(packs[1]))
    refused = run_govctl("comply", "diff", str(zips["pack-q3"]), str(zips["pack-q4"]), env=env)
    said = " ".join(refused.stderr.split())
    assert refused.returncode == 1 and "B: evidence pack pack-q4.zip fails verification" in said
    assert f"changed: {CHANGED_REPORT}" in said and "Traceback" not in said


def test_one_uploaded_pack_against_a_report_on_record(app, packs):
    _, q4 = packs
    auditor = app["zhao.lei"]
    answer = upload(auditor, b=("q4.zip", records.zip_folder(q4)), a="djcp-L3-2026Q3.json")
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert (doc["a"]["kind"], doc["b"]["kind"], doc["b"]["source"]) == ("report", "pack", "q4.zip")
    assert doc["a"]["source"] == "djcp-L3-2026Q3.json"  # by the name it was chosen by, not its path on the server
    [r] = doc["reports"]
    assert {c["id"]: c["to"] for c in r["verdict_changes"]}["CE-IA-C"] == NON_COMPLIANT
    # the other way round: the older uploaded pack against the newer report on record
    back = upload(auditor, a=("q3.zip", records.zip_folder(packs[0])), b="djcp-L3-2026Q4.json").json()
    assert {c["id"]: c["direction"] for c in back["reports"][0]["verdict_changes"]}["CE-IA-C"] == "worse"
    # both sides on record through the form work too, the same as GET /compliance/compare
    both = upload(auditor, a="djcp-L3-2026Q3.json", b="djcp-L3-2026Q4.json")
    got = auditor.get("/api/compliance/compare", params={"a": "djcp-L3-2026Q3.json", "b": "djcp-L3-2026Q4.json"})
    assert both.status_code == 200 and both.json() == got.json()


def test_a_pack_altered_after_signing_is_refused_naming_its_side_file_and_change(app, packs, tmp_path):
    q3, q4 = packs
    auditor = app["zhao.lei"]
    report = q4 / CHANGED_REPORT  # someone makes the later quarter look better after it was sealed
    doc = json.loads(report.read_text(encoding="utf-8"))
    for i in doc["items"]:
        if i["id"] == "CE-IA-C":
            i["verdict"] = COMPLIANT
    report.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    answer = upload(auditor, ("q3.zip", records.zip_folder(q3)), ("q4-tampered.zip", records.zip_folder(q4)))
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["detail"].startswith("B: evidence pack q4-tampered.zip fails verification")
    assert f"changed: {CHANGED_REPORT}" in body["detail"] and str(tmp_path) not in body["detail"]
    assert body["pack"] == {"side": "B", "source": "q4-tampered.zip", "signature_valid": True,
                            "changed": [CHANGED_REPORT], "missing": [], "added": []}

    # a manifest re-written (not signed by the trusted key): the signature's failure named
    manifest = q3 / "evidence.manifest.json"
    sealed = json.loads(manifest.read_text())
    sealed["description"] = "a pack someone re-described"
    manifest.write_text(json.dumps(sealed))
    forged = upload(auditor, ("q3-forged.zip", records.zip_folder(q3)), b="djcp-L3-2026Q4.json").json()
    assert forged["pack"]["side"] == "A" and forged["pack"]["signature_valid"] is False
    assert "signature does not verify" in forged["detail"] and forged["detail"].startswith("A: ")


def test_hostile_uploads_and_forms_are_refused_with_a_reason(app, packs, monkeypatch, tmp_path, _users_template):  # noqa: F811 (fixture)
    q3, _ = packs
    good = ("q3.zip", records.zip_folder(q3))
    auditor = app["zhao.lei"]

    def refusal(b=None, a=good) -> str:
        answer = upload(auditor, a, b)
        assert answer.status_code == 422, answer.text
        detail = answer.json()["detail"]
        return detail if isinstance(detail, str) else json.dumps(detail)

    assert refusal(("x.pdf", b"%PDF-1.7 not a zip")).startswith("B x.pdf: the upload is not a zip file")
    assert "points outside the pack" in refusal(("up.zip", zip_of({"../../escape.txt": b"x"})))
    assert "points outside the pack" in refusal(("abs.zip", zip_of({"/etc/cron.d/x": b"x"})))
    assert "no evidence.manifest.json" in refusal(("notes.zip", zip_of({"notes.txt": b"hello"})))
    link = zipfile.ZipInfo("evidence.manifest.json")
    link.external_attr = 0o120777 << 16
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(link, "/etc/passwd")
    assert "symbolic link" in refusal(("link.zip", buffer.getvalue()))
    # a zip bomb, scaled down, and one whose directory under-declares what it inflates to
    monkeypatch.setattr(records, "MAX_UNPACKED_BYTES", 1_000_000)
    bomb = zip_of({"evidence.manifest.json": b"{}", "zeros.bin": bytes(3_000_000)})
    assert "unpacks to more than 1000000 bytes" in refusal(("bomb.zip", bomb))
    liar = bytearray(bomb)
    at = liar.rfind(b"PK\x01\x02")
    liar[at + 24:at + 28] = (1000).to_bytes(4, "little")
    assert refusal(("liar.zip", bytes(liar))).startswith("B liar.zip: the upload is a damaged zip file")
    # the file name is the sender's: only its printable base name is echoed
    assert refusal(("../../etc/\x1bevil.zip", b"nope")).startswith("B evil.zip: ")
    # each side exactly one of an upload and a name on record; a name on record is never a path
    assert "B: give either b_pack" in refusal()
    both = auditor.post("/api/compliance/compare", data={"a": "djcp-L3-2026Q3.json"},
                        files={"a_pack": (*good, "application/zip"), "b_pack": (*good, "application/zip")})
    assert both.status_code == 422 and both.json()["detail"].startswith("A: give either a_pack") and \
        "not both" in both.json()["detail"]
    assert refusal("nope.json").startswith("b: no report or pack named 'nope.json'")
    assert '"b"' in refusal("../../secops.yaml")  # the form's pattern: no slash
    assert upload(auditor, good, ("same.zip", good[1])).status_code == 200  # (the same pack twice: no change)

    # the body past the route's limit is refused before it is read (before sign-in is even looked at)
    small = ApiExtension("compliance-tracking", api_tracking.build, api_tracking.PERMISSIONS,
                         body_limits={api_tracking.COMPARE_PATH: 4096})
    folder = tmp_path / "limited"
    folder.mkdir()
    shutil.copy2(_users_template, folder / "users.yaml")
    limited = TestClient(create_console_app(folder / "secops.db", folder / "tokens.yaml", folder / "users.yaml",
                                            static_dir=folder / "no-assets", extensions=[small]))
    too_big = upload(limited, good, ("q4.zip", bytes(5000)))
    assert too_big.status_code == 413 and "4096 bytes" in too_big.json()["detail"]
