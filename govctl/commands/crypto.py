"""govctl crypto: hashing, keys, encryption and signatures (国密 SM2/SM3/SM4 by default)."""
from __future__ import annotations

from typing import Optional

import typer

app = typer.Typer(
    name="crypto",
    no_args_is_help=True,
    help=(
        "Hash, encrypt and sign with 国密 SM3 / SM4-GCM / SM2 (or the international suite), keys "
        "kept in a sealed, versioned keystore.\n\n"
        "The keystore (state/crypto/keystore.json) is unlocked by GOVCTL_CRYPTO_PASSPHRASE_FILE, "
        "GOVCTL_CRYPTO_PASSPHRASE or GOVCTL_CRYPTO_ROOT_KEY_FILE. Every key event is appended to "
        "the audit log and followed by a signed checkpoint.\n\n"
        "Example: govctl crypto keys create app && echo hi | govctl crypto encrypt --key app -"
    ),
)
keys_app = typer.Typer(name="keys", no_args_is_help=True,
                       help="Create, rotate, list, configure, export and destroy keys.\n\n"
                            "Example: govctl crypto keys create signer --purpose signing")
app.add_typer(keys_app, name="keys")

JSON = typer.Option(False, "--json", help="Print JSON.")
CONTEXT = typer.Option(None, "--context", "-c", metavar="K=V",
                       help="Encryption context bound as AAD; give the same pairs to decrypt (repeatable).")
SOURCE = typer.Argument("-", metavar="FILE|-", help="Input file, or - for standard input.")


def _keystore():
    from crypto.audit import open_keystore

    return open_keystore()


def _checkpoint(keystore) -> None:
    """Close every key operation with a signed audit checkpoint covering its events."""
    from crypto import audit

    audit.checkpoint(keystore)


def _uid(value: Optional[str]) -> Optional[bytes]:
    return value.encode() if value is not None else None


@app.command("hash")
def hash_(
    source: str = SOURCE,
    alg: str = typer.Option("sm3", "--alg", help="sm3 or sha256."),
    json_out: bool = JSON,
) -> None:
    """Print the hex digest of FILE (or stdin).

    Example: govctl crypto hash --alg sm3 report.pdf
    """
    from crypto import primitives
    from govctl.commands._crypto_io import open_input
    from govctl.ui import print_json

    with open_input(source) as stream:
        digest = primitives.digest_stream(alg, stream)
    if json_out:
        print_json({"alg": alg, "file": source, "digest": digest.hex()})
    else:
        print(digest.hex())


@keys_app.command("create")
def keys_create(
    name: str = typer.Argument(..., help="Key name: a-z 0-9 _ . - (up to 64)."),
    purpose: str = typer.Option("encryption", "--purpose", help="encryption (SM4-GCM) or signing (SM2)."),
    json_out: bool = JSON,
) -> None:
    """Create a key (version 1) with the configured suite's algorithm.

    Example: govctl crypto keys create backups
    """
    from govctl.commands._crypto_io import show

    keystore = _keystore()
    info = keystore.create_key(name, purpose)
    _checkpoint(keystore)
    show(info, json_out, f"created key {name} ({info['alg']}, version 1)")


@keys_app.command("rotate")
def keys_rotate(name: str = typer.Argument(..., help="Key to rotate."), json_out: bool = JSON) -> None:
    """Add a new version; new encryptions and signatures use it, old versions still decrypt.

    Example: govctl crypto keys rotate backups
    """
    from govctl.commands._crypto_io import show

    keystore = _keystore()
    version = keystore.rotate(name)
    _checkpoint(keystore)
    show(keystore.describe(name), json_out, f"key {name} is now at version {version}")


@keys_app.command("list")
def keys_list(json_out: bool = JSON) -> None:
    """List keys with their versions (never their material).

    Example: govctl crypto keys list --json
    """
    from rich.table import Table

    from govctl.ui import console, print_json

    keys = _keystore().list_keys()
    if json_out:
        print_json(keys)
        return
    table = Table("name", "purpose", "alg", "latest", "min decrypt", "destroyed")
    for key in keys:
        destroyed = [str(v) for v, e in key["versions"].items() if "destroyed" in e]
        table.add_row(key["name"], key["purpose"], key["alg"], str(key["latest_version"]),
                      str(key["min_decryption_version"]), ",".join(destroyed) or "-")
    console.print(table)


@keys_app.command("config")
def keys_config(
    name: str = typer.Argument(..., help="Key to configure."),
    min_decryption_version: int = typer.Option(..., "--min-decryption-version",
                                               help="Oldest version allowed to decrypt or verify."),
    json_out: bool = JSON,
) -> None:
    """Set the minimum decryption version (rewrap old data first).

    Example: govctl crypto keys config backups --min-decryption-version 2
    """
    from govctl.commands._crypto_io import show

    keystore = _keystore()
    info = keystore.configure(name, min_decryption_version)
    _checkpoint(keystore)
    show(info, json_out, f"key {name}: minimum decryption version {min_decryption_version}")


@keys_app.command("export")
def keys_export(
    name: str = typer.Argument(..., help="Signing key whose public key to print."),
    version: Optional[int] = typer.Option(None, "--version", help="Version (default: latest)."),
    pem: bool = typer.Option(False, "--pem", help="PEM SubjectPublicKeyInfo instead of hex 04||x||y."),
) -> None:
    """Print a signing key's public key (private material is never exported).

    Example: govctl crypto keys export audit --pem > audit.pub.pem
    """
    keystore = _keystore()
    public = keystore.export_public_key(name, version)
    _checkpoint(keystore)
    print(public.to_pem().rstrip() if pem else public.to_bytes().hex())


@keys_app.command("destroy")
def keys_destroy(
    name: str = typer.Argument(..., help="Key."),
    version: int = typer.Option(..., "--version", help="Version below the minimum decryption version."),
) -> None:
    """Erase the material of a retired version for good.

    Example: govctl crypto keys destroy backups --version 1
    """
    from govctl.ui import console

    keystore = _keystore()
    keystore.destroy_version(name, version)
    _checkpoint(keystore)
    console.print(f"key {name} version {version} destroyed")


ENCRYPTION_KEY = typer.Option(..., "--key", help="Encryption key name.")


def _data_operation(operation: str, source: str, key: str, context: Optional[list[str]],
                    output: Optional[str]) -> None:
    """encrypt / decrypt / rewrap: input from FILE or stdin; tokens out for encrypt and rewrap."""
    from govctl.commands._crypto_io import parse_context, read_input, write_output
    from crypto.keystore import to_token

    keystore = _keystore()
    result = getattr(keystore, operation)(key, read_input(source), parse_context(context))
    _checkpoint(keystore)
    write_output(result if operation == "decrypt" else (to_token(result) + "\n").encode(), output)


@app.command("encrypt")
def encrypt(
    source: str = SOURCE,
    key: str = ENCRYPTION_KEY,
    context: Optional[list[str]] = CONTEXT,
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write the token here."),
) -> None:
    """Encrypt FILE (or stdin) with the newest version of KEY; prints a token govctl:vN:<base64>.

    Example: govctl crypto encrypt --key backups --context tenant=finance secrets.txt
    """
    _data_operation("encrypt", source, key, context, output)


@app.command("decrypt")
def decrypt(
    source: str = SOURCE,
    key: str = ENCRYPTION_KEY,
    context: Optional[list[str]] = CONTEXT,
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write the plaintext here."),
) -> None:
    """Decrypt a token (FILE or stdin); a wrong key, context or any altered byte is an error.

    Example: govctl crypto decrypt --key backups --context tenant=finance token.txt
    """
    _data_operation("decrypt", source, key, context, output)


@app.command("rewrap")
def rewrap(
    source: str = SOURCE,
    key: str = ENCRYPTION_KEY,
    context: Optional[list[str]] = CONTEXT,
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write the new token here."),
) -> None:
    """Re-encrypt a token under the newest key version without revealing the plaintext.

    Example: govctl crypto rewrap --key backups old-token.txt -o new-token.txt
    """
    _data_operation("rewrap", source, key, context, output)


@app.command("sign")
def sign(
    source: str = SOURCE,
    alg: str = typer.Option("sm2", "--alg", help="sm2 (or ecdsa-p256 for an international-suite key)."),
    key: str = typer.Option(..., "--key", help="Signing key name."),
    uid: Optional[str] = typer.Option(None, "--id", help="SM2 distinguishing ID (default 1234567812345678)."),
    fmt: str = typer.Option("der", "--format", help="der (hex DER SEQUENCE{r,s}) or raw (hex r||s)."),
) -> None:
    """Sign FILE (or stdin); prints the signature as hex.

    Example: govctl crypto sign --alg sm2 --key signer report.pdf > report.sig
    """
    from govctl.commands._crypto_io import read_input
    from crypto.errors import BadInput
    from crypto.sm2 import decode_signature

    if fmt not in ("der", "raw"):
        raise BadInput("--format must be der or raw")
    keystore = _keystore()
    record = keystore.describe(key)
    if record["alg"] != alg:
        raise BadInput(f"key {key!r} is {record['alg']}, not --alg {alg}")
    signature, _ = keystore.sign(key, read_input(source), _uid(uid))
    _checkpoint(keystore)
    if fmt == "raw":
        r, s = decode_signature(signature)
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    print(signature.hex())


@app.command("verify")
def verify(
    source: str = SOURCE,
    alg: str = typer.Option("sm2", "--alg", help="sm2 (or ecdsa-p256)."),
    key: Optional[str] = typer.Option(None, "--key", help="Signing key name in the keystore."),
    pubkey: Optional[str] = typer.Option(None, "--pubkey", help="Public key as hex 04||x||y."),
    sig: str = typer.Option(..., "--sig", help="Signature as hex: DER or r||s."),
    uid: Optional[str] = typer.Option(None, "--id", help="SM2 distinguishing ID (default 1234567812345678)."),
    json_out: bool = JSON,
) -> None:
    """Verify a signature over FILE (or stdin). Exit 0 valid, 1 invalid.

    Example: govctl crypto verify --alg sm2 --pubkey 04ab… --sig 3045… report.pdf
    """
    from crypto import signing
    from govctl.commands._crypto_io import read_input
    from crypto.errors import BadInput
    from crypto.suite import load_settings
    from govctl.ui import console, print_json

    if (key is None) == (pubkey is None):
        raise BadInput("give exactly one of --key NAME or --pubkey HEX")
    signature = signing.parse_hex(sig, "--sig")
    message = read_input(source)
    if pubkey is not None:
        public = signing.load_public(alg, signing.parse_hex(pubkey, "--pubkey"))
        valid = public.verify(message, signature, load_settings().sm2_id if uid is None else uid.encode())
    else:
        keystore = _keystore()
        if keystore.describe(key)["alg"] != alg:
            raise BadInput(f"key {key!r} is {keystore.describe(key)['alg']}, not --alg {alg}")
        valid = keystore.verify(key, message, signature, _uid(uid))
    if json_out:
        print_json({"valid": valid, "alg": alg})
    else:
        console.print("signature valid" if valid else "[bold red]signature INVALID[/]")
    raise typer.Exit(0 if valid else 1)


# -- SM2 backends (issue 20, signing at scale) ------------------------------------------------
@app.command("backends")
def backends(json_out: bool = JSON) -> None:
    """Which SM2 backend signs and verifies, and why: each backend's GB/T 32918 known-answer check.

    `sm2_backend: auto` (the default) uses the system OpenSSL when it passes, else gmalg.
    Example: govctl crypto backends --json
    """
    from rich.table import Table

    from crypto import sm2
    from crypto.suite import load_settings
    from govctl.ui import console, print_json

    load_settings()  # applies the configured sm2_backend and runs the start-up check
    report = sm2.report()
    if json_out:
        print_json(report)
        return
    console.print(f"SM2 backend in use: [bold]{report['in_use']}[/] ({report['version']}); "
                  f"sm2_backend: {report['configured']} — {report['reason']}")
    table = Table("backend", "known answers", "version / why not")
    for name, result in report["backends"].items():
        table.add_row(name, "passed" if result["passed"] else "[red]FAILED[/]",
                      result["version"] if result["passed"] else result["detail"])
    console.print(table)
