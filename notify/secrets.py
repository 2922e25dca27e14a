"""Channel secrets (SMTP passwords, robot tokens and signing secrets, webhook keys) sealed in the keystore.

Each secret is encrypted with the keystore's encryption key `notify-secrets` (SM4-GCM under the 国密
suite), the secret's name bound as encryption context, and the sealed token kept in
state/notify/secrets.json (mode 0600). The configuration names a secret; its value exists in clear
only in memory, for the moment a message is sent. Values never reach a log or an error message.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from core.errors import BadInput
from core import paths

KEY_NAME = "notify-secrets"


def secrets_path() -> Path:
    return Path(os.environ.get("GOVCTL_NOTIFY_SECRETS", paths.STATE / "notify" / "secrets.json"))


def _read(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadInput(f"{path}: not a govctl secrets file ({exc}); restore it from backup or remove it and "
                       "seal the secrets again with `govctl notify secret set NAME`") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise BadInput(f"{path}: not a govctl secrets file; restore it or seal the secrets again")
    return data


def _keystore(keystore=None):
    if keystore is not None:
        return keystore
    from crypto.audit import open_keystore
    return open_keystore()


def seal(name: str, value: str, keystore=None, path: Path | None = None) -> None:
    """Seal `value` under `name` (replacing an older value)."""
    if not value:
        raise BadInput(f"secret {name!r}: the value is empty; give the secret's value")
    from crypto.keystore import to_token
    path = path or secrets_path()
    ks = _keystore(keystore)
    if KEY_NAME not in {k["name"] for k in ks.list_keys()}:
        ks.create_key(KEY_NAME)
    token = to_token(ks.encrypt(KEY_NAME, value.encode("utf-8"), {"secret": name}))
    data = _read(path)
    data[name] = token
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
    os.replace(temporary, path)
    from crypto.audit import record
    from crypto.keystore import actor
    record(actor(), "notify.secret.set", name)  # the name only: the value never reaches the trail


def names(path: Path | None = None) -> list[str]:
    return sorted(_read(path or secrets_path()))


class Secrets:
    """Opens the keystore once, on first use, and unseals secrets by name."""

    def __init__(self, keystore=None, path: Path | None = None):
        self._keystore = keystore
        self.path = path or secrets_path()
        self._clear: dict[tuple[str, str], str] = {}  # (name, sealed token) → value: one unseal per value

    def get(self, name: str) -> str:
        data = _read(self.path)
        if name not in data:
            raise BadInput(f"secret {name!r} is not sealed in {self.path}; seal it with "
                           f"`govctl notify secret set {name}`")
        cached = self._clear.get((name, data[name]))
        if cached is None:
            self._keystore = _keystore(self._keystore)
            cached = self._keystore.decrypt(KEY_NAME, data[name], {"secret": name}).decode("utf-8")
            self._clear = {(name, data[name]): cached, **{k: v for k, v in self._clear.items() if k[0] != name}}
        return cached
