"""Key management in the style of Vault Transit, with the configured suite's algorithms.

Hierarchy: a root key (a passphrase through PBKDF2 with the suite's hash, or a 32-byte key file;
an HSM or KMS plugs in through `RootKey`) wraps the keystore's key-encryption key (KEK); the KEK
seals the key records; named keys have numbered versions; `data_key` hands out per-use data keys
wrapped by a named key. Encryption carries the key name and version in a ciphertext header and
binds an optional encryption context as AAD. `rotate` adds a version, `rewrap` re-encrypts under
the newest version without handing the plaintext out, `min_decryption_version` retires old
versions, `destroy_version` erases a retired version's material. Every lifecycle event (generate,
rotate, configure, use, export, destroy) is appended to the audit log.

The keystore file (JSON) is sealed: its key records are AEAD-encrypted under the KEK with the
whole header as AAD, so any edit, a wrong passphrase or a wrong key file is an IntegrityError.
See docs/crypto.md for the formats."""
from __future__ import annotations

import base64
import contextlib
import fcntl
import getpass
import json
import os
import re
import secrets
import struct
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Protocol

from . import primitives, signing
from .signing import canonical_json
from .errors import BadInput, CryptoError, IntegrityError
from .suite import SUITES, Settings, load_settings, state_dir

FORMAT = "govctl-keystore"
FORMAT_VERSION = 1
CIPHERTEXT_MAGIC = b"GCT\x01"
TOKEN_PREFIX = "govctl:v"
AEAD_IDS = {"sm4-gcm": 1, "aes-256-gcm": 2}
PURPOSES = {"encryption": "aead", "signing": "signature"}  # purpose -> Suite field giving its alg
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
KEK_AAD = b"govctl keystore KEK"

EventSink = Callable[[str, str, dict], object]  # (actor, action, details)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def actor() -> str:
    """Who is acting: $GOVCTL_ACTOR, else the person behind sudo (the lab needs root; the trail wants
    the person, not root), else the login name."""
    return os.environ.get("GOVCTL_ACTOR") or os.environ.get("SUDO_USER") or getpass.getuser()


class RootKey(Protocol):
    """Wraps and unwraps the keystore KEK. `wrap` returns a JSON-safe record kept in the keystore
    header; an HSM/KMS implementation keeps its key inside the device and stores only a handle."""

    kind: str

    def wrap(self, kek: bytes, aead: str, hash_alg: str) -> dict: ...
    def unwrap(self, record: dict, aead: str, hash_alg: str) -> bytes: ...


def _seal_with(aead: str, key: bytes, plaintext: bytes, aad: bytes) -> dict:
    nonce = secrets.token_bytes(primitives.NONCE_LEN)
    return {"nonce": _b64(nonce), "sealed": _b64(primitives.aead_encrypt(aead, key, nonce, plaintext, aad))}


def _open_with(aead: str, key: bytes, record: dict, aad: bytes, what: str) -> bytes:
    try:
        nonce, sealed = _unb64(record["nonce"]), _unb64(record["sealed"])
    except (KeyError, ValueError, TypeError):
        raise IntegrityError(f"{what} is malformed") from None
    return primitives.aead_decrypt(aead, key, nonce, sealed, aad, what)


class PassphraseRoot:
    """Root key from a passphrase: PBKDF2-HMAC with the suite's hash (PBKDF2-SM3 for 国密)."""

    kind = "passphrase"

    def __init__(self, passphrase: bytes, iterations: int):
        if not passphrase:
            raise BadInput("the keystore passphrase is empty; set a non-empty passphrase")
        self._passphrase, self._iterations = passphrase, iterations
        self._derived: dict[tuple, bytes] = {}

    def __repr__(self) -> str:
        return "PassphraseRoot(…)"

    def _key(self, hash_alg: str, aead: str, salt: bytes, iterations: int) -> bytes:
        cache_key = (hash_alg, aead, salt, iterations)
        if cache_key not in self._derived:
            self._derived[cache_key] = primitives.pbkdf2(
                hash_alg, self._passphrase, salt, iterations, primitives.aead_key_len(aead))
        return self._derived[cache_key]

    def wrap(self, kek, aead, hash_alg):
        salt = secrets.token_bytes(16)
        key = self._key(hash_alg, aead, salt, self._iterations)
        return {"type": self.kind, "kdf": f"pbkdf2-{hash_alg}", "iterations": self._iterations,
                "salt": _b64(salt), **_seal_with(aead, key, kek, KEK_AAD)}

    def unwrap(self, record, aead, hash_alg):
        key = self._key(hash_alg, aead, _unb64(record["salt"]), int(record["iterations"]))
        try:
            return _open_with(aead, key, record, KEK_AAD, "keystore KEK")
        except IntegrityError:
            raise IntegrityError("keystore cannot be opened: wrong passphrase, or the keystore "
                                 "file was altered") from None


class KeyFileRoot:
    """Root key from a file of 32 random bytes (e.g. on removable media or a tmpfs)."""

    kind = "keyfile"

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self._material = self.path.read_bytes()
        except OSError as exc:
            raise BadInput(f"root key file {self.path}: {exc.strerror}; create one with "
                           f"`head -c 32 /dev/urandom > {self.path} && chmod 600 {self.path}`") from None
        if len(self._material) != 32:
            raise BadInput(f"root key file {self.path} must hold exactly 32 random bytes")

    def __repr__(self) -> str:
        return f"KeyFileRoot({self.path})"

    def _key(self, hash_alg, aead):
        return primitives.hkdf(hash_alg, self._material, primitives.aead_key_len(aead), b"govctl root key")

    def wrap(self, kek, aead, hash_alg):
        return {"type": self.kind, **_seal_with(aead, self._key(hash_alg, aead), kek, KEK_AAD)}

    def unwrap(self, record, aead, hash_alg):
        try:
            return _open_with(aead, self._key(hash_alg, aead), record, KEK_AAD, "keystore KEK")
        except IntegrityError:
            raise IntegrityError(f"keystore cannot be opened with root key file {self.path}: wrong "
                                 "file, or the keystore file was altered") from None


def root_from_environment(settings: Settings) -> RootKey:
    if path := os.environ.get("GOVCTL_CRYPTO_ROOT_KEY_FILE"):
        return KeyFileRoot(Path(path))
    if path := os.environ.get("GOVCTL_CRYPTO_PASSPHRASE_FILE"):
        try:
            passphrase = Path(path).read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise BadInput(f"GOVCTL_CRYPTO_PASSPHRASE_FILE {path}: {exc.strerror}") from None
        return PassphraseRoot(passphrase, settings.kdf_iterations)
    if passphrase := os.environ.get("GOVCTL_CRYPTO_PASSPHRASE"):
        return PassphraseRoot(passphrase.encode(), settings.kdf_iterations)
    if default_root_key_path().exists():  # made by the first `govctl up`
        return KeyFileRoot(default_root_key_path())
    raise BadInput("the keystore is locked: run `govctl up` once (it creates the root key file "
                   f"{default_root_key_path()}), or set GOVCTL_CRYPTO_PASSPHRASE_FILE (a file holding "
                   "the passphrase), GOVCTL_CRYPTO_PASSPHRASE, or GOVCTL_CRYPTO_ROOT_KEY_FILE (a file "
                   "of 32 random bytes)")


def default_root_key_path() -> Path:
    """The root key file every command uses when no GOVCTL_CRYPTO_* variable says otherwise."""
    return state_dir() / "keys" / "root.key"


def create_root_key_file(path: Path) -> Path:
    """Write 32 random bytes to a new file of mode 0600 (never over an existing one)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(secrets.token_bytes(32))
    return path


def default_path() -> Path:
    return state_dir() / "crypto" / "keystore.json"


def _parse_context(context: dict[str, str] | None) -> bytes:
    context = context or {}
    for key, value in context.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise BadInput("encryption context keys and values must be strings")
    return canonical_json(context)


def ciphertext_header(aead: str, name: str, version: int) -> bytes:
    encoded = name.encode()
    return CIPHERTEXT_MAGIC + struct.pack(">BIB", AEAD_IDS[aead], version, len(encoded)) + encoded


def parse_ciphertext(data: bytes | str) -> tuple[str, str, int, bytes, bytes, bytes]:
    """(aead, key name, version, header, nonce, sealed) from a token `govctl:vN:<base64>` or raw bytes."""
    if isinstance(data, bytes) and data.startswith(TOKEN_PREFIX.encode()):
        data = data.decode("ascii", "replace")
    token_version = None
    if isinstance(data, str):
        token_version, _, body = data.strip().removeprefix(TOKEN_PREFIX).partition(":")
        try:
            data = base64.urlsafe_b64decode(body.encode())
        except ValueError:
            raise IntegrityError("ciphertext token is not valid base64 (altered or truncated)") from None
    fixed = len(CIPHERTEXT_MAGIC) + 6
    if len(data) < fixed or data[:len(CIPHERTEXT_MAGIC)] != CIPHERTEXT_MAGIC:
        raise IntegrityError("not a govctl ciphertext (bad header), or it is truncated")
    alg_id, version, name_len = struct.unpack(">BIB", data[len(CIPHERTEXT_MAGIC):fixed])
    aead = {v: k for k, v in AEAD_IDS.items()}.get(alg_id)
    header_end = fixed + name_len
    if aead is None:
        raise IntegrityError(f"ciphertext names an unknown algorithm id {alg_id}")
    if len(data) < header_end + primitives.NONCE_LEN + primitives.TAG_LEN:
        raise IntegrityError("ciphertext is truncated")
    try:
        name = data[fixed:header_end].decode()
    except UnicodeDecodeError:
        raise IntegrityError("ciphertext header is corrupt (key name)") from None
    if token_version is not None and token_version != str(version):
        raise IntegrityError(f"ciphertext token says v{token_version} but its header says v{version}: altered")
    nonce_end = header_end + primitives.NONCE_LEN
    return aead, name, version, data[:header_end], data[header_end:nonce_end], data[nonce_end:]


def to_token(ciphertext: bytes) -> str:
    _, _, version, *_ = parse_ciphertext(ciphertext)
    return f"{TOKEN_PREFIX}{version}:{base64.urlsafe_b64encode(ciphertext).decode()}"


class Keystore:
    """A sealed keystore file. Mutations lock the file, reload it, apply and write it back
    atomically, so concurrent govctl processes do not lose each other's changes."""

    def __init__(self, path: Path, root: RootKey, settings: Settings, events: EventSink | None):
        self.path, self._root, self.settings, self._events = Path(path), root, settings, events
        self._kek: bytes | None = None
        self._keys: dict = {}
        self._header: dict = {}
        self._seen: tuple[int, int] | None = None

    @classmethod
    def open(cls, path: Path | None = None, root: RootKey | None = None,
             settings: Settings | None = None, *, events: EventSink | None) -> "Keystore":
        """Open (or on first use create) a keystore. `events` receives its lifecycle events (key
        created, rotated, retired): `crypto.audit.open_keystore()` passes the audit log's appender;
        None drops them. It has no default, so no caller loses the audit trail by omission."""
        settings = settings or load_settings()
        store = cls(path or default_path(), root or root_from_environment(settings), settings, events)
        with store._locked():
            store._load()
        return store

    def __repr__(self) -> str:
        return f"Keystore({self.path})"

    # -- persistence -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _load(self) -> None:
        if not self.path.exists():
            suite = self.settings.suite
            self._kek = secrets.token_bytes(primitives.aead_key_len(suite.aead))
            self._header = {"format": FORMAT, "version": FORMAT_VERSION, "suite": suite.name,
                            "generation": 0, "root": self._root.wrap(self._kek, suite.aead, suite.hash)}
            self._keys = {}
            self._save()
            return
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            body = document.pop("body")
            suite = SUITES[document["suite"]]
            if document.get("format") != FORMAT or document.get("version") != FORMAT_VERSION:
                raise KeyError("format")
        except (ValueError, KeyError, TypeError):
            raise IntegrityError(f"keystore {self.path} is not a govctl keystore or is damaged") from None
        if document["root"].get("type") != self._root.kind:
            raise BadInput(f"keystore {self.path} is protected by a {document['root'].get('type')} "
                           f"root key, but a {self._root.kind} root key was given")
        self._kek = self._root.unwrap(document["root"], suite.aead, suite.hash)
        plaintext = _open_with(suite.aead, self._kek, body, canonical_json(document),
                               f"keystore {self.path}")
        self._header, self._keys = document, json.loads(plaintext)["keys"]
        self._seen = self._file_identity()

    def _save(self) -> None:
        self._header["generation"] += 1
        suite = SUITES[self._header["suite"]]
        body = _seal_with(suite.aead, self._kek, canonical_json({"keys": self._keys}),
                          canonical_json(self._header))
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({**self._header, "body": body}, out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        self._seen = self._file_identity()

    @contextlib.contextmanager
    def _mutation(self):
        with self._locked():
            self._load()
            yield
            self._save()

    def _record(self, action: str, details: dict) -> None:
        if self._events:
            self._events(actor(), action, details)

    # -- key records -------------------------------------------------------------------------
    def _file_identity(self) -> tuple[int, int]:
        stat = self.path.stat()
        return stat.st_ino, stat.st_mtime_ns

    def _refresh(self) -> None:
        """Reload when another process has rewritten the file (e.g. rotated a key)."""
        if self._file_identity() != self._seen:
            with self._locked():
                self._load()

    def _key(self, name: str) -> dict:
        self._refresh()
        if name not in self._keys:
            known = ", ".join(sorted(self._keys)) or "none yet"
            raise BadInput(f"key {name!r} does not exist (keys: {known}); create it with "
                           f"`govctl crypto keys create {name}`")
        return self._keys[name]

    def _version(self, record: dict, version: int, use: str) -> dict:
        entry = record["versions"].get(str(version))
        if entry is None:
            raise BadInput(f"key {record['name']!r} has no version {version}")
        if version < record["min_decryption_version"] and use != "encrypt":
            raise CryptoError(f"key {record['name']!r} version {version} is below its minimum "
                              f"decryption version {record['min_decryption_version']}; lower the "
                              "minimum with `govctl crypto keys config` if it must be used")
        if "material" not in entry:
            raise CryptoError(f"key {record['name']!r} version {version} was destroyed")
        return entry

    def _new_version(self, record: dict) -> int:
        version = record["latest_version"] + 1
        entry = {"created": _now()}
        if record["purpose"] == "signing":
            private = signing.generate(record["alg"])
            entry["material"] = _b64(private.to_bytes())
            entry["public_key"] = private.public_key().to_bytes().hex()
        else:
            entry["material"] = _b64(secrets.token_bytes(primitives.aead_key_len(record["alg"])))
        record["versions"][str(version)] = entry
        record["latest_version"] = version
        return version

    def create_key(self, name: str, purpose: str = "encryption") -> dict:
        if not NAME_RE.match(name):
            raise BadInput(f"key name {name!r} is invalid: use 1-64 of a-z 0-9 _ . - starting "
                           "with a letter or digit")
        if purpose not in PURPOSES:
            raise BadInput(f"key purpose {purpose!r} is unknown; use one of {', '.join(PURPOSES)}")
        with self._mutation():
            if name in self._keys:
                raise BadInput(f"key {name!r} already exists; rotate it with `govctl crypto keys rotate {name}`")
            alg = getattr(self.settings.suite, PURPOSES[purpose])
            record = {"name": name, "purpose": purpose, "alg": alg, "created": _now(),
                      "latest_version": 0, "min_decryption_version": 1, "versions": {}}
            self._new_version(record)
            self._keys[name] = record
        self._record("key.generate", {"key": name, "purpose": purpose, "alg": alg, "version": 1})
        return self.describe(name)

    def ensure_key(self, name: str, purpose: str) -> dict:
        """The key, created first if it does not exist (used for govctl's own audit/evidence keys)."""
        if name not in self._keys:
            with contextlib.suppress(BadInput):
                self.create_key(name, purpose)
        record = self._key(name)
        if record["purpose"] != purpose:
            raise BadInput(f"key {name!r} is a {record['purpose']} key, not a {purpose} key")
        return self.describe(name)

    def rotate(self, name: str) -> int:
        with self._mutation():
            version = self._new_version(self._key(name))
        self._record("key.rotate", {"key": name, "version": version})
        return version

    def configure(self, name: str, min_decryption_version: int) -> dict:
        with self._mutation():
            record = self._key(name)
            if not 1 <= min_decryption_version <= record["latest_version"]:
                raise BadInput(f"--min-decryption-version must be between 1 and the latest version "
                               f"{record['latest_version']} of key {name!r}")
            record["min_decryption_version"] = min_decryption_version
        self._record("key.configure", {"key": name, "min_decryption_version": min_decryption_version})
        return self.describe(name)

    def destroy_version(self, name: str, version: int) -> None:
        """Erase a version's material. Only versions below the minimum decryption version can go,
        so data under them must have been rewrapped first."""
        with self._mutation():
            record = self._key(name)
            entry = record["versions"].get(str(version))
            if entry is None or "material" not in entry:
                raise BadInput(f"key {name!r} has no live version {version}")
            if version >= record["min_decryption_version"]:
                raise BadInput(f"version {version} of key {name!r} is still usable; raise its minimum "
                               "decryption version above it first (after rewrapping its data)")
            entry.pop("material")
            entry["destroyed"] = _now()
        self._record("key.destroy", {"key": name, "version": version})

    def describe(self, name: str) -> dict:
        """A key's metadata: never its material."""
        record = self._key(name)
        versions = {int(v): {k: e[k] for k in ("created", "destroyed", "public_key") if k in e}
                    for v, e in record["versions"].items()}
        return {k: record[k] for k in ("name", "purpose", "alg", "created", "latest_version",
                                       "min_decryption_version")} | {"versions": versions}

    def list_keys(self) -> list[dict]:
        self._refresh()
        return [self.describe(name) for name in sorted(self._keys)]

    # -- encryption --------------------------------------------------------------------------
    def _encryption_key(self, name: str) -> dict:
        record = self._key(name)
        if record["purpose"] != "encryption":
            raise BadInput(f"key {name!r} is a {record['purpose']} key; use an encryption key")
        return record

    def _seal(self, record: dict, plaintext: bytes, context: dict | None) -> tuple[bytes, int]:
        version = record["latest_version"]
        key = _unb64(self._version(record, version, "encrypt")["material"])
        header = ciphertext_header(record["alg"], record["name"], version)
        nonce = secrets.token_bytes(primitives.NONCE_LEN)
        sealed = primitives.aead_encrypt(record["alg"], key, nonce, plaintext, header + _parse_context(context))
        return header + nonce + sealed, version

    def _unseal(self, record: dict, ciphertext: bytes | str, context: dict | None) -> tuple[bytes, int]:
        aead, name, version, header, nonce, sealed = parse_ciphertext(ciphertext)
        if name != record["name"]:
            raise BadInput(f"ciphertext was made with key {name!r}, not {record['name']!r}")
        if aead != record["alg"]:
            raise IntegrityError(f"ciphertext says {aead} but key {name!r} is {record['alg']}")
        key = _unb64(self._version(record, version, "decrypt")["material"])
        aad = header + _parse_context(context)
        return primitives.aead_decrypt(aead, key, nonce, sealed, aad), version

    def encrypt(self, name: str, plaintext: bytes, context: dict[str, str] | None = None) -> bytes:
        ciphertext, version = self._seal(self._encryption_key(name), plaintext, context)
        self._record("key.use", {"key": name, "version": version, "operation": "encrypt"})
        return ciphertext

    def decrypt(self, name: str, ciphertext: bytes | str, context: dict[str, str] | None = None) -> bytes:
        plaintext, version = self._unseal(self._encryption_key(name), ciphertext, context)
        self._record("key.use", {"key": name, "version": version, "operation": "decrypt"})
        return plaintext

    def rewrap(self, name: str, ciphertext: bytes | str, context: dict[str, str] | None = None) -> bytes:
        """The same plaintext sealed under the newest version; the plaintext never leaves here."""
        record = self._encryption_key(name)
        plaintext, old = self._unseal(record, ciphertext, context)
        rewrapped, new = self._seal(record, plaintext, context)
        self._record("key.use", {"key": name, "version": new, "from_version": old, "operation": "rewrap"})
        return rewrapped

    def data_key(self, name: str, context: dict[str, str] | None = None) -> tuple[bytes, bytes]:
        """(plaintext data key, the same key encrypted under `name`) for envelope encryption of
        bulk data: encrypt with the first, store the second, discard the first."""
        record = self._encryption_key(name)
        plaintext = secrets.token_bytes(primitives.aead_key_len(record["alg"]))
        wrapped, version = self._seal(record, plaintext, context)
        self._record("key.export", {"key": name, "version": version, "what": "data key"})
        return plaintext, wrapped

    # -- signing -----------------------------------------------------------------------------
    def _signing_key(self, name: str) -> dict:
        record = self._key(name)
        if record["purpose"] != "signing":
            raise BadInput(f"key {name!r} is an {record['purpose']} key; use a signing key")
        return record

    def sign(self, name: str, message: bytes, uid: bytes | None = None, record_use: bool = True) -> tuple[bytes, int]:
        """(DER signature, key version) by the newest version. `record_use=False` only for the
        audit log's own checkpoints, which are the record themselves."""
        record = self._signing_key(name)
        version = record["latest_version"]
        private = signing.load_private(record["alg"], _unb64(self._version(record, version, "sign")["material"]))
        signature = private.sign(message, self.settings.sm2_id if uid is None else uid)
        if record_use:
            self._record("key.use", {"key": name, "version": version, "operation": "sign"})
        return signature, version

    def public_keys(self, name: str) -> dict[int, object]:
        """Public keys of the versions allowed to verify (min decryption version and up)."""
        record = self._signing_key(name)
        return {int(v): signing.load_public(record["alg"], bytes.fromhex(e["public_key"]))
                for v, e in record["versions"].items()
                if int(v) >= record["min_decryption_version"] and "material" in e}

    def export_public_key(self, name: str, version: int | None = None):
        record = self._signing_key(name)
        version = version or record["latest_version"]
        entry = self._version(record, version, "export")
        self._record("key.export", {"key": name, "version": version, "what": "public key"})
        return signing.load_public(record["alg"], bytes.fromhex(entry["public_key"]))

    def verify(self, name: str, message: bytes, signature: bytes, uid: bytes | None = None) -> bool:
        """True when any allowed version of `name` made the signature."""
        uid = self.settings.sm2_id if uid is None else uid
        return any(key.verify(message, signature, uid) for key in self.public_keys(name).values())
