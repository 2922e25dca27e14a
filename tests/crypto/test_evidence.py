"""Evidence packs: verify names exactly which file changed, went missing or was added, and
refuses a manifest not signed by the trusted key."""
from __future__ import annotations

import json

import pytest

from crypto import evidence, primitives
from crypto.errors import BadInput


@pytest.fixture
def pack_dir(tmp_path, keystore):
    directory = tmp_path / "assessment"
    (directory / "logs").mkdir(parents=True)
    (directory / "report.md").write_text("# 密评 evidence\n")
    (directory / "logs" / "nft.txt").write_text("table inet filter {}\n")
    (directory / "logs" / "lynis.dat").write_bytes(bytes(range(256)))
    evidence.pack(directory, keystore, description="test pack")
    return directory


def test_intact_pack_verifies(pack_dir, keystore):
    report = evidence.verify(pack_dir, keystore=keystore)
    assert report.ok and report.files == 3 and report.signer["alg"] == "sm2"
    manifest = json.loads((pack_dir / evidence.MANIFEST).read_text())
    listed = {f["path"]: f["hash"] for f in manifest["files"]}
    assert listed["report.md"] == primitives.digest("sm3", "# 密评 evidence\n".encode()).hex()


def test_verify_names_the_changed_missing_and_added_files(pack_dir, keystore):
    (pack_dir / "logs" / "nft.txt").write_text("table inet filter { accept all }\n")
    (pack_dir / "logs" / "lynis.dat").unlink()
    (pack_dir / "extra.txt").write_text("smuggled")
    report = evidence.verify(pack_dir, keystore=keystore)
    assert not report.ok and report.signature_valid
    assert (report.changed, report.missing, report.added) == (["logs/nft.txt"], ["logs/lynis.dat"], ["extra.txt"])


def test_edited_manifest_or_untrusted_signer_fails(pack_dir, keystore):
    path = pack_dir / evidence.MANIFEST
    manifest = json.loads(path.read_text())
    (pack_dir / "report.md").write_text("# rewritten\n")
    entry = next(f for f in manifest["files"] if f["path"] == "report.md")
    entry["hash"] = primitives.digest("sm3", b"# rewritten\n").hex()  # the forger covers the change
    path.write_text(json.dumps(manifest))
    report = evidence.verify(pack_dir, keystore=keystore)
    assert not report.signature_valid and report.changed == [] and not report.ok
    keystore.create_key("stranger", "signing")
    evidence.pack(pack_dir, keystore, key="stranger")
    assert not evidence.verify(pack_dir, keystore=keystore).ok  # trusts only the "evidence" key
    assert evidence.verify(pack_dir, keystore=keystore, key="stranger").ok


def test_missing_manifest_and_directory(tmp_path, keystore):
    with pytest.raises(BadInput, match="has no evidence.manifest.json"):
        evidence.verify(tmp_path, keystore=keystore)
    with pytest.raises(BadInput, match="does not exist"):
        evidence.pack(tmp_path / "nope", keystore)


def test_symbolic_links_are_refused_when_packing_and_reported_when_verifying(pack_dir, keystore, tmp_path):
    (tmp_path / "elsewhere.txt").write_text("# 密评 evidence\n")
    (pack_dir / "report.md").unlink()
    (pack_dir / "report.md").symlink_to(tmp_path / "elsewhere.txt")  # same bytes, but not the file
    (pack_dir / "more").symlink_to(tmp_path)
    report = evidence.verify(pack_dir, keystore=keystore)
    assert report.changed == ["report.md"] and report.added == ["more"]
    with pytest.raises(BadInput, match="regular files only"):
        evidence.pack(pack_dir, keystore)
