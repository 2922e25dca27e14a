"""The audit trail for CLI actions that have no domain chokepoint (issue 19).

infra/ (Pulumi, the lab) sits below crypto/ in the layers, so its state changes are recorded by the
commands that drive it; `govctl up`/`down` likewise. Every other action is recorded where the domain
makes it (secops.respond, secops.incidents, console.users, crypto.keystore …), which covers the API
and the console as well."""
from __future__ import annotations

import functools
from typing import Callable


def trailed(action: str, target: str | Callable[[dict], str], params: tuple[str, ...] = ()):
    """Decorate a Typer command: its run is recorded as `action` on `target` (a name, or a function
    of the command's arguments), with the named arguments as parameters, ok or failed: why."""
    def decorate(command):
        @functools.wraps(command)  # Typer reads the signature through __wrapped__
        def run(**arguments):
            from crypto.audit import recorded
            from crypto.keystore import actor
            name = target(arguments) if callable(target) else target
            with recorded(actor(), action, name, {k: arguments.get(k) for k in params}):
                return command(**arguments)
        return run
    return decorate
