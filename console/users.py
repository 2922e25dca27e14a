"""Console users: names, roles (ops / security / auditor, as for API tokens), argon2id password hashes.

The users file is YAML under the state folder (mode 0600, replaced atomically). Hashing is argon2-cffi's
PasswordHasher (argon2id, its RFC 9106 low-memory defaults); no password is ever stored or logged.
"""
from __future__ import annotations

import functools
import re
import string
import threading
import time
from pathlib import Path

import yaml

from core import yamlfile

from crypto.audit import record as audit_record
from crypto.keystore import actor
from core.errors import BadInput

ROLES = ("ops", "security", "auditor")  # the same three roles as secops.api
NAME = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
POLICY_PATH = Path(__file__).with_name("policy.yaml")
SCHEMA_PATH = Path(__file__).with_name("policy.schema.yaml")


@functools.lru_cache(maxsize=None)
def load_policy(path: Path = POLICY_PATH) -> dict:
    """The sign-in policy (password, lockout, session), validated against console/policy.schema.yaml."""
    from secops.config import Invalid, validate_and_merge
    try:
        doc = yamlfile.load(path)
        return validate_and_merge(doc if isinstance(doc, dict) else {}, SCHEMA_PATH, {})
    except (OSError, yamlfile.YamlInputError, Invalid) as exc:
        raise BadInput(f"console policy {path} is unusable: {exc}") from None


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise BadInput(f"user name {str(name)[:64]!r} must be 2-64 characters: a lower-case letter, then lower-case"
                       " letters, digits, '.', '_' or '-' (example: li.na)")
    return name


def check_password(password: str, policy: dict | None = None) -> str:
    """等保 2.0 asks for complex passwords: at least `min_length` characters of `min_classes` kinds."""
    rules = (policy or load_policy())["password"]
    classes = sum(any(c in kind for c in password) for kind in
                  (string.ascii_lowercase, string.ascii_uppercase, string.digits)) + \
        any(not c.isascii() or not c.isalnum() for c in password)
    if len(password) < rules["min_length"] or classes < rules["min_classes"]:
        raise BadInput(f"the password must have at least {rules['min_length']} characters of at least "
                       f"{rules['min_classes']} kinds (lower-case, upper-case, digits, other characters)")
    if len(password) > 1024:
        raise BadInput("the password must have at most 1024 characters")
    return password


def check_role(role: str) -> str:
    if role not in ROLES:
        raise BadInput(f"role {str(role)[:32]!r} is not one of {', '.join(ROLES)}")
    return role


@functools.lru_cache(maxsize=1)
def _hasher():
    from argon2 import PasswordHasher
    return PasswordHasher()


@functools.lru_cache(maxsize=1)
def _decoy() -> str:
    """Unknown names are checked against this hash, so that they cost the same time as known ones."""
    return _hasher().hash("decoy password that matches nothing")


class Users:
    """The users file. Each entry: name, role, hash, disabled, changed (epoch of the last password or
    role change: sessions opened before it end)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._cache: tuple[float, list[dict]] | None = None

    def _load(self) -> list[dict]:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return []
        if self._cache and self._cache[0] == mtime:
            return self._cache[1]
        try:
            doc = yamlfile.load(self.path, allow_empty=True) or {}
            users = [u for u in (doc.get("users") or []) if isinstance(u, dict) and "name" in u]
        except (yamlfile.YamlInputError, AttributeError, TypeError) as exc:
            raise BadInput(f"users file {self.path} is unreadable ({type(exc).__name__}); restore it from a backup "
                           "or remove it and add the users again with `govctl users add`") from None
        self._cache = (mtime, users)
        return users

    def _save(self, users: list[dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump({"users": users}, sort_keys=False, allow_unicode=True), encoding="utf-8")
        tmp.chmod(0o600)
        tmp.replace(self.path)
        self._cache = None

    def get(self, name: str) -> dict | None:
        return next((u for u in self._load() if u["name"] == name), None)

    def list(self) -> list[dict]:
        """Name, role, disabled and last change of each user (never the hash)."""
        return [{"name": u["name"], "role": u["role"], "disabled": bool(u.get("disabled")),
                 "changed": u.get("changed")} for u in self._load()]

    def add(self, name: str, role: str, password: str) -> None:
        check_name(name), check_role(role), check_password(password)
        with self._lock:
            users = self._load()
            if any(u["name"] == name for u in users):
                raise BadInput(f"user {name} exists; change the password with `govctl users passwd {name}`")
            self._save([*users, {"name": name, "role": role, "hash": _hasher().hash(password),
                                 "disabled": False, "changed": time.time()}])
        audit_record(actor(), "user.add", name, {"role": role})

    def _change(self, name: str, **changes) -> None:
        with self._lock:
            users = [dict(u) for u in self._load()]
            for u in users:
                if u["name"] == name:
                    u.update(changes, changed=time.time())
                    self._save(users)
                    return
        raise BadInput(f"user {name!r} does not exist; see `govctl users list`")

    def set_password(self, name: str, password: str) -> None:
        check_password(password)
        self._change(name, hash=_hasher().hash(password))
        audit_record(actor(), "user.password", name)

    def disable(self, name: str) -> None:
        self._change(name, disabled=True)
        audit_record(actor(), "user.disable", name)

    def verify(self, name: str, password: str) -> dict | None:
        """The user entry when the password is right (disabled or not: the caller decides), else None."""
        from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
        user = self.get(name) if isinstance(name, str) else None
        try:
            _hasher().verify(user["hash"] if user else _decoy(), password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        return user


FIRST_ADMIN = "admin"


def generate_password(policy: dict | None = None) -> str:
    """A random password that meets the policy: 20 characters with every kind in it."""
    import secrets
    rules = (policy or load_policy())["password"]
    kinds = (string.ascii_lowercase, string.ascii_uppercase, string.digits, "-_.!")
    length = max(20, rules["min_length"])
    chars = [secrets.choice(kind) for kind in kinds]
    chars += [secrets.choice(string.ascii_letters + string.digits) for _ in range(length - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return check_password("".join(chars), policy)


def create_first_admin(users_path: str | Path) -> tuple[str, str]:
    """The platform's first administrator (role security, the one that may ban), with a generated password;
    `govctl up` writes both to a 0600 credentials file once."""
    password = generate_password()
    Users(users_path).add(FIRST_ADMIN, "security", password)
    return FIRST_ADMIN, password
