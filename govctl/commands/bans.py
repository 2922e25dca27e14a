"""govctl bans: the interception decisions in force; add or lift a block by hand."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from core.errors import BadInput, GovctlError
from secops.limits import BAN_TTL, LIST_LIMIT, REASON

from ._secops_store import CONFIG_OPTION, load, load_enforcing, open_configured, within
from ._secops_store import actor as _actor

app = typer.Typer(name="bans", help=(
    "Blocked source addresses (nftables set with timeouts): list, add, remove. Every change is recorded.\n\n"
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
    address: str = typer.Argument(..., help="IPv4 or IPv6 address to block."),
    ttl: float = typer.Option(3600, "--ttl", callback=within(BAN_TTL),
                              help="Seconds until the kernel lifts the block by itself (1 to 31536000 = 365 days)."),
    reason: str = typer.Option(..., "--reason", callback=within(REASON),
                               help="Why (recorded with your user name; up to 1000 characters)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Record the decision without touching nftables."),
    config: Optional[Path] = _CONFIG,
    stack: Optional[str] = _STACK,
    json_out: bool = typer.Option(False, "--json", help="Print the decision as JSON."),
) -> None:
    """Block an address by hand. Allowlisted (management/ops) addresses are refused.

    Example: govctl bans add 203.0.113.9 --ttl 600 --reason 'manual: scanner' --stack lab
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
        console.print(f"blocked {decision.address} until {decision.to_dict()['until']}"
                      + (" (dry run: not enforced)" if not decision.enforced else ""))


@app.command()
def remove(
    address: str = typer.Argument(..., help="Address to unblock."),
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
