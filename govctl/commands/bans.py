"""govctl bans: the interception decisions in force; add or lift a block by hand."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from core.errors import BadInput, GovctlError
from secops.limits import BAN_TTL, LIST_LIMIT, REASON

from ._secops_store import CONFIG_OPTION, load, load_enforcing, open_configured, within
from ._secops_store import actor as _actor

app = typer.Typer(name="bans", help=(
    "Blocked source addresses and CIDR ranges (nftables interval sets with timeouts): list, add, remove; "
    "export and import a signed blocklist between cities. Every change is recorded.\n\n"
    "Example: govctl bans add 203.0.113.9 --ttl 3600 --reason 'manual: phishing source'"), no_args_is_help=True)

_CONFIG = CONFIG_OPTION


_STACK = typer.Option(None, "--stack", help="Deployed stack (e.g. lab): act on every center's boundary firewall "
                     "from its outputs; its management networks are never blocked.")


def _engine(config: Optional[Path], dry_run: bool, stack: Optional[str] = None):
    """The decision engine on the configured store (either kind), and the store; with a stack, its firewalls."""
    from secops.config import ConfigError
    from secops.wiring import build_allowlist, decision_engine_from_config, make_enforcer
    cfg = load_enforcing(config, stack)
    try:
        allowlist = build_allowlist(cfg)  # before a firewall is touched
    except ConfigError as exc:
        raise BadInput(str(exc)) from None
    enforcer = None
    if not dry_run:
        try:
            enforcer = make_enforcer(cfg)
        except (RuntimeError, OSError) as exc:
            raise GovctlError(f"cannot reach the nftables set ({exc}); run as root or pass --dry-run") from None
    store = open_configured(cfg)
    try:
        return decision_engine_from_config(cfg, store, enforcer, dry_run, actor=_actor(), allowlist=allowlist), store
    except BaseException:
        store.close()
        raise


@app.command("list")
def list_bans(
    config: Optional[Path] = _CONFIG,
    trail: bool = typer.Option(False, "--trail", help="Show every decision (blocks, lifts, allowlisted skips)."),
    limit: int = typer.Option(200, "--limit", callback=within(LIST_LIMIT),
                              help="How many decisions with --trail (1 to 10000)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Blocks in force (who decided, why, until when), or with --trail the whole decision record.

    Example: govctl bans list --json
    """
    from govctl.ui import console, print_json
    store = open_configured(load(config))
    try:
        rows = store.decision_trail(limit) if trail else store.active_bans()
    finally:
        store.close()
    if json_out:
        print_json(rows)
        return
    from rich.table import Table
    table = Table("address", "action", "until", "enforced", "actor", "reason",
                  title="decisions" if trail else "bans in force")
    for r in rows:
        until = r["until"] or ("never" if r["action"] == "block" else "")  # a block stored before TTLs were bounded
        table.add_row(r["address"], r["action"], until, "yes" if r["enforced"] else "no (dry run)",
                      r["actor"], r["reason"])
    console.print(table)


@app.command()
def add(
    address: str = typer.Argument(..., help="IPv4 or IPv6 address, or CIDR range (203.0.113.0/24, 2001:db8:1::/64; "
                                  "no host bits; not broader than response.min_prefix, default /16 and /48)."),
    ttl: float = typer.Option(3600, "--ttl", callback=within(BAN_TTL),
                              help="Seconds until the kernel lifts the block by itself (1 to 31536000 = 365 days)."),
    reason: str = typer.Option(..., "--reason", callback=within(REASON),
                               help="Why (recorded with your user name; up to 1000 characters)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Record the decision without touching nftables."),
    config: Optional[Path] = _CONFIG,
    stack: Optional[str] = _STACK,
    json_out: bool = typer.Option(False, "--json", help="Print the decision as JSON."),
) -> None:
    """Block an address or a range by hand. Allowlisted (management/ops) addresses are refused; a range
    holding allowlisted addresses is carved: they stay reachable (the answer names them).

    Example: govctl bans add 203.0.113.0/24 --ttl 600 --reason 'manual: scanner farm' --stack lab
    """
    from govctl.ui import console, print_json
    engine, store = _engine(config, dry_run, stack)
    try:
        try:
            decision = engine.block(address, reason, ttl=ttl)
        except ValueError as exc:
            raise BadInput(str(exc)) from None  # secops.address names the address and says why
        engine.flush()
    finally:
        store.close()
    if json_out:
        print_json(decision.to_dict())
    else:
        carved = decision.reason.rpartition(" [carved: ")[2].rstrip("]") if " [carved: " in decision.reason else ""
        console.print(f"blocked {decision.address} until {decision.to_dict()['until']}"
                      + (" (dry run: not enforced)" if not decision.enforced else "")
                      + (f"\ncarved: {carved}" if carved else ""))


@app.command()
def remove(
    address: str = typer.Argument(..., help="Address or CIDR range to unblock (as it was blocked)."),
    reason: str = typer.Option("lifted by hand", "--reason", callback=within(REASON),
                               help="Why (recorded; up to 1000 characters)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Record without touching nftables."),
    config: Optional[Path] = _CONFIG,
    stack: Optional[str] = _STACK,
    json_out: bool = typer.Option(False, "--json", help="Print the decision as JSON."),
) -> None:
    """Lift a block now.

    Example: govctl bans remove 203.0.113.9 --reason 'false positive, ticket 42' --stack lab
    """
    from govctl.ui import console, print_json
    engine, store = _engine(config, dry_run, stack)
    try:
        try:
            decision = engine.unblock(address, reason)
        except ValueError as exc:
            raise BadInput(str(exc)) from None  # secops.address names the address and says why
    finally:
        store.close()
    if json_out:
        print_json(decision.to_dict())
    else:
        console.print(f"unblocked {decision.address}")


# --- interception: signed blocklist exchange between cities (secops/exchange.py) ---
@app.command("export")
def export(
    out: Path = typer.Option(..., "--out", help="File to write (JSON, SM2-signed)."),
    issuer: Optional[str] = typer.Option(None, "--issuer", help="Who issues the list (default: this host's name; "
                                         "letters, digits, . _ -; up to 64)."),
    valid_for: float = typer.Option(86400, "--valid-for", help="Seconds the list may be imported (60 to 2592000)."),
    key: str = typer.Option("blocklist", "--key", help="Keystore signing key (created on first use)."),
    config: Optional[Path] = _CONFIG,
    json_out: bool = typer.Option(False, "--json", help="Print a summary as JSON."),
) -> None:
    """Write the blocks in force (addresses and ranges, with reasons, times and an expiry), signed with SM2.

    Give the other city the public key printed here (or `govctl crypto keys export blocklist`).

    Example: govctl bans export --out blocklist-hangzhou.json --issuer hangzhou
    """
    from crypto.audit import open_keystore
    from govctl.ui import console, print_json
    from secops.exchange import default_issuer, export_blocklist
    if not 60 <= valid_for <= 30 * 86400:
        raise BadInput(f"--valid-for {valid_for:g} is out of range: give 60 to 2592000 seconds")
    issuer = issuer or default_issuer()
    store = open_configured(load(config))
    try:
        doc = export_blocklist(store, open_keystore(), issuer, key=key, valid_for=valid_for)
    finally:
        store.close()
    try:
        out.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"--out {out}: cannot write ({exc.strerror})") from None
    summary = {"out": str(out), "issuer": issuer, "entries": len(doc["entries"]), "expires": doc["expires"],
               "public_key": doc["signature"]["public_key"]}
    if json_out:
        print_json(summary)
    else:
        console.print(f"wrote {len(doc['entries'])} blocks to {out}, signed by {issuer} (key {key}), "
                      f"valid until {doc['expires']}\npublic key (for --pubkey): {summary['public_key']}")


@app.command("import")
def import_(
    file: Path = typer.Argument(..., help="A blocklist written by `govctl bans export`."),
    pubkey: str = typer.Option(..., "--pubkey", help="The issuer's SM2 public key (04… hex), or a file holding it."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Record the decisions without touching nftables."),
    config: Optional[Path] = _CONFIG,
    stack: Optional[str] = _STACK,
    json_out: bool = typer.Option(False, "--json", help="Print what was blocked and skipped as JSON."),
) -> None:
    """Verify the signature and expiry, then block every entry (actor import:<issuer>) except those of the
    local never-block list, which are skipped and listed. A changed or expired list blocks nothing (exit 1).

    Example: govctl bans import blocklist-hangzhou.json --pubkey 04ab…
    """
    from govctl.ui import console, print_json
    from secops.exchange import import_blocklist, read_blocklist
    trusted = [_public_key(pubkey)]
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise BadInput(f"{file}: cannot read ({exc.strerror})") from None
    doc = read_blocklist(data, trusted, source=str(file))
    engine, store = _engine(config, dry_run, stack)
    try:
        result = import_blocklist(doc, engine)
    finally:
        store.close()
    if json_out:
        print_json(result)
        return
    console.print(f"{len(result['blocked'])} of {len(doc['entries'])} entries from {result['issuer']} blocked"
                  + (" (dry run: not enforced)" if dry_run else ""))
    for d in result["blocked"]:
        console.print(f"  blocked {d['address']} until {d['until']}")
    for s in result["skipped"]:
        console.print(f"  skipped {s['target']}: {s['why']}")


def _public_key(given: str):
    """--pubkey as hex, or a file holding the hex."""
    from secops.exchange import trusted_key
    text = given
    if not given.strip().lower().removeprefix("0x").startswith("04") or Path(given).is_file():
        try:
            text = Path(given).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise BadInput(f"--pubkey {given[:80]!r} is neither an SM2 public key (04… hex) nor a file holding one") from None
    return trusted_key(text)
