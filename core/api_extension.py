"""Routes of another package on the console's REST API (issue #19): compliance, availability, drills, hardening.

The console serves secops' API (secops/api.py); the auditors' and ops' pages read data owned by packages
that secops must not import (policies, drills) or that sit beside it (monitors, hardening). Each of those
packages describes its routes as an `ApiExtension`; the composition root (`govctl console serve`) hands
them to `secops.api.create_app`, which mounts them behind its own authentication. One sign-in, one set
of roles, one OpenAPI document.
"""
from dataclasses import dataclass, field
from typing import Any, Callable

# allowed(permission) → a FastAPI dependency answering the caller as (name, role), 403 when the role lacks
# the permission; build(allowed) → an APIRouter
Allowed = Callable[[str], Any]


@dataclass(frozen=True)
class ApiExtension:
    name: str
    build: Callable[[Allowed], Any]
    # permission → roles holding it; a name already known to secops.api must keep its roles
    permissions: dict[str, frozenset[str]] = field(default_factory=dict)
    # route path → the largest request body it takes, for a route that takes a file (the console's API
    # otherwise refuses bodies over 64 KiB)
    body_limits: dict[str, int] = field(default_factory=dict)
