"""What signing needs, made ready at the first `govctl up`: a root key for the keystore.

The keystore's root key comes, in this order, from GOVCTL_CRYPTO_ROOT_KEY_FILE,
GOVCTL_CRYPTO_PASSPHRASE_FILE, GOVCTL_CRYPTO_PASSPHRASE (the user's choice), else the default root
key file <state>/keys/root.key (crypto.keystore.root_from_environment). When none is set and no
keystore exists yet, `up` creates that file (32 random bytes, mode 0600) and opens the keystore with
it, so drill reports, evidence packs and the audit log are signed without extra steps. The audit
trail's checkpoint key (crypto.audit.AUDIT_KEY) is created then too.
"""
from __future__ import annotations

import os

from core.errors import GovctlError
from crypto.audit import AUDIT_KEY
from crypto.keystore import Keystore, create_root_key_file, default_path, default_root_key_path

ENV_ROOTS = ("GOVCTL_CRYPTO_ROOT_KEY_FILE", "GOVCTL_CRYPTO_PASSPHRASE_FILE", "GOVCTL_CRYPTO_PASSPHRASE")


def ensure_signing() -> dict:
    """{state: up|down, root, path, created, why}: the keystore opens with the root key found."""
    given = next((name for name in ENV_ROOTS if os.environ.get(name)), None)
    root_file = default_root_key_path()
    created = False
    if given:
        root, where = f"given by {given}", os.environ[given] if given.endswith("_FILE") else None
    elif root_file.exists():
        root, where = "root key file", str(root_file)
    elif default_path().exists():
        return {"state": "down", "root": None, "path": None, "created": False,
                "why": f"the keystore {default_path()} exists and was sealed with a passphrase or key "
                       "file that is not configured: set GOVCTL_CRYPTO_PASSPHRASE_FILE or "
                       "GOVCTL_CRYPTO_ROOT_KEY_FILE, then run `govctl up` again"}
    else:
        create_root_key_file(root_file)
        root, where, created = "root key file", str(root_file), True
    try:
        keystore = Keystore.open(events=None)  # creates the keystore on first use; proves the root key opens it
        # the audit trail's checkpoint key exists from the first up, so the trail is verifiable (and the
        # compliance evidence decided) before the first hourly checkpoint
        keystore.ensure_key(AUDIT_KEY, "signing")
    except GovctlError as exc:
        return {"state": "down", "root": root, "path": where, "created": created, "why": str(exc)}
    note = (f"root key file {where}: back it up (without it the keystore and its keys are lost)"
            if where and root == "root key file" else f"keystore root {root}")
    return {"state": "up", "root": root, "path": where, "created": created, "why": note,
            "keystore": str(default_path()), "audit_key": AUDIT_KEY}
