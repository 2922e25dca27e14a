"""The secops config and store as the secops, incidents and bans commands open them, with govctl's exit
codes: a bad config or bad `elasticsearch:` settings (wrong credentials, refused CA) exit 2; a cluster
that cannot be reached exits 1."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from core.errors import BadInput, GovctlError

# The --config option of the secops, incidents and bans commands.
CONFIG_OPTION = typer.Option(None, "--config", "-c", help="secops config YAML (default: state/secops/config.yaml if present).")


def within(bound):
    """A Typer callback holding an option to a bound of secops/schemas/limits.yaml: out of it, exit 2 with a
    message naming the option and the bound (Click's own ranges let NaN through and name only one end)."""
    def check(value):
        if value is None:
            return value
        try:
            return bound.check(value)  # Click's message names the option
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    return check


def load(config: Optional[Path]) -> dict[str, Any]:
    from secops.config import ConfigError, load_config
    try:
        return load_config(config)
    except ConfigError as exc:
        raise BadInput(str(exc)) from None


def load_enforcing(config: Optional[Path], stack: Optional[str]) -> dict[str, Any]:
    """The configuration of a command that enforces: with `--stack` (or the config's `stack:`), the
    stack's firewalls, allowlist and host logs (secops/stack.py)."""
    from secops.config import ConfigError
    from secops.stack import with_stack
    try:
        return with_stack(load(config), stack)
    except ConfigError as exc:
        raise BadInput(str(exc)) from None


def open_configured(cfg: dict[str, Any]):
    """The configured store (SQLite or Elasticsearch), proven usable now."""
    from secops.stores import open_store, store_kind
    if store_kind(cfg) == "sqlite":
        return open_store(cfg)
    from secops.es.client import ClusterError, SettingsError
    try:
        return open_store(cfg)
    except SettingsError as exc:
        raise BadInput(str(exc)) from None
    except ClusterError as exc:
        raise (BadInput if exc.settings_wrong else GovctlError)(str(exc)) from None


def actor() -> str:
    """Who is at the keyboard (the sudo user, not root), recorded with every change."""
    import getpass
    import os
    return os.environ.get("SUDO_USER") or getpass.getuser()
