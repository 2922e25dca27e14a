"""The stack outputs, typed: the one way any part of govctl outside `infra/` reads a deployed stack.

`read_stack_outputs("lab")` asks the engine once and returns a `StackOutputs`; a stack without
outputs raises `StackNotDeployed` (one message, saying what to run), outputs of the wrong shape raise
`StackOutputsError` naming the key (docs/stack-outputs.md documents the shape). Parsing is written
here rather than with a schema library because the result is the dataclasses themselves and each
error must name the output's path (`centers.prod.firewall lacks sets.ipv6`).

Which parts a backend exports: the lab exports all of them; the cloud backends export `backend`,
`topology`, `policy_facts` and `centers` (role only, here) and keep their own shapes for the keys
`NATIVE_SHAPES` lists (resource ids for the operator: read them from `to_dict()`); the tiny backend
exports only each center's role. What a backend does not export is None or empty.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from core.errors import GovctlError

# Keys a cloud backend exports in a shape of its own (resource ids, operator actions), not the
# lab's: they are kept as exported (`to_dict()`) and their typed fields stay empty.
NATIVE_SHAPES: dict[str, frozenset[str]] = {
    "alicloud": frozenset({"hosts", "links", "service", "databases"}),
    "openstack": frozenset({"hosts", "links"}),
}


class StackOutputsError(GovctlError):
    """The outputs do not have the documented shape (exit 1): the message names the key."""


class StackNotDeployed(GovctlError):
    """The stack has no outputs: it was never brought up, or it was destroyed (exit 1)."""

    def __init__(self, stack: str):
        how = "govctl lab up" if stack == "lab" else f"govctl infra up --stack {stack}"
        super().__init__(f"stack {stack!r} is not deployed (it has no outputs): run `{how}`")
        self.stack = stack


def _fail(path: str, problem: str) -> StackOutputsError:
    return StackOutputsError(f"stack outputs: {path} {problem} (docs/stack-outputs.md); "
                             "re-run `govctl lab up` (or `govctl infra up`) so they are current")


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(path, f"is {type(value).__name__}, not a mapping")
    return value


def _record(value: Any, path: str, required: tuple[str, ...]) -> Mapping[str, Any]:
    """A mapping holding every required key (None counts as absent)."""
    record = _mapping(value, path)
    missing = [k for k in required if record.get(k) is None]
    if missing:
        raise _fail(path, f"lacks {', '.join(missing)}")
    return record


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _fail(path, f"is {type(value).__name__}, not a string")
    return value


def _opt_str(value: Any, path: str) -> str | None:
    return None if value is None else _str(value, path)


def _int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(path, f"is {type(value).__name__}, not an integer")
    return value


def _strs(value: Any, path: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _fail(path, f"is {type(value).__name__}, not a list")
    return tuple(_str(v, f"{path}[{i}]") for i, v in enumerate(value))


def _each(value: Any, path: str, parse: Callable[[Any, str], Any]) -> dict[str, Any]:
    return {_str(k, path): parse(v, f"{path}.{k}") for k, v in _mapping(value, path).items()}


@dataclass(frozen=True)
class Ssh:
    """How to reach hosts: `ssh -F <config> <fqdn>`; the key's path, never the key."""

    user: str
    private_key: str
    config: str
    proxy_namespace: str
    ops_address: str

    @classmethod
    def parse(cls, value: Any, path: str = "ssh") -> "Ssh":
        r = _record(value, path, ("user", "private_key", "config", "proxy_namespace", "ops_address"))
        return cls(*(_str(r[k], f"{path}.{k}") for k in
                     ("user", "private_key", "config", "proxy_namespace", "ops_address")))


@dataclass(frozen=True)
class Firewall:
    """A center's boundary firewall: the nftables table and the timed sets interception fills."""

    namespace: str
    family: str
    table: str
    set_v4: str
    set_v6: str

    @classmethod
    def parse(cls, value: Any, path: str) -> "Firewall":
        fw = _mapping(value, path)
        sets = _mapping(fw.get("sets") or {}, f"{path}.sets")
        missing = [k for k in ("namespace", "family", "table") if fw.get(k) is None] + \
                  [f"sets.{k}" for k in ("ipv4", "ipv6") if sets.get(k) is None]
        if missing:
            raise _fail(path, f"lacks {', '.join(missing)}")
        return cls(_str(fw["namespace"], f"{path}.namespace"), _str(fw["family"], f"{path}.family"),
                   _str(fw["table"], f"{path}.table"), _str(sets["ipv4"], f"{path}.sets.ipv4"),
                   _str(sets["ipv6"], f"{path}.sets.ipv6"))


@dataclass(frozen=True)
class Zone:
    kind: str
    subnets: tuple[str, ...]

    @classmethod
    def parse(cls, value: Any, path: str) -> "Zone":
        r = _record(value, path, ("kind", "subnets"))
        return cls(_str(r["kind"], f"{path}.kind"), _strs(r["subnets"], f"{path}.subnets"))


@dataclass(frozen=True)
class Center:
    """A center. Only `role` is exported by every backend; the rest is the lab's (None/empty elsewhere)."""

    role: str
    site: str | None = None
    namespace: str | None = None
    uplink: str | None = None
    uplink_v6: str | None = None
    firewall: Firewall | None = None
    zones: dict[str, Zone] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: Any, path: str) -> "Center":
        if isinstance(value, str):  # the tiny backend exports each center's role alone
            return cls(role=value)
        r = _record(value, path, ("role",))
        return cls(_str(r["role"], f"{path}.role"), _opt_str(r.get("site"), f"{path}.site"),
                   _opt_str(r.get("namespace"), f"{path}.namespace"),
                   _opt_str(r.get("uplink"), f"{path}.uplink"),
                   _opt_str(r.get("uplink_v6"), f"{path}.uplink_v6"),
                   Firewall.parse(r["firewall"], f"{path}.firewall") if r.get("firewall") else None,
                   _each(r.get("zones") or {}, f"{path}.zones", Zone.parse))


@dataclass(frozen=True)
class Host:
    """A host; `fqdn` (`web-1.prod`) is its SSH and inventory name; `folder` (lab) holds init.pid."""

    name: str
    fqdn: str
    center: str
    zone: str
    zone_kind: str
    roles: tuple[str, ...]
    ipv4: str
    ipv6: str | None = None
    namespace: str | None = None
    folder: str | None = None

    @classmethod
    def parse(cls, value: Any, path: str) -> "Host":
        r = _record(value, path, ("name", "fqdn", "center", "zone", "zone_kind", "roles", "ipv4"))
        return cls(*(_str(r[k], f"{path}.{k}") for k in ("name", "fqdn", "center", "zone", "zone_kind")),
                   _strs(r["roles"], f"{path}.roles"), _str(r["ipv4"], f"{path}.ipv4"),
                   *(_opt_str(r.get(k), f"{path}.{k}") for k in ("ipv6", "namespace", "folder")))


@dataclass(frozen=True)
class DatabaseAccess:
    """The `pg_monitor` role monitoring uses and its libpq passfile (mode 0600)."""

    user: str
    passfile: str

    @classmethod
    def parse(cls, value: Any, path: str) -> "DatabaseAccess":
        r = _record(value, path, ("user", "passfile"))
        return cls(_str(r["user"], f"{path}.user"), _str(r["passfile"], f"{path}.passfile"))


@dataclass(frozen=True)
class DatabaseMember:
    """The primary (mode None) or a standby (`synchronous` / `asynchronous`)."""

    center: str
    host: str
    address: str
    mode: str | None = None
    application_name: str | None = None

    @classmethod
    def parse(cls, value: Any, path: str, standby: bool = False) -> "DatabaseMember":
        keys = ("center", "host", "address") + (("mode", "application_name") if standby else ())
        r = _record(value, path, keys)
        return cls(*(_str(r[k], f"{path}.{k}") for k in keys))


@dataclass(frozen=True)
class Databases:
    port: int
    database: str
    primary: DatabaseMember
    standbys: tuple[DatabaseMember, ...]
    monitor: DatabaseAccess | None = None

    @property
    def members(self) -> tuple[DatabaseMember, ...]:
        return (self.primary, *self.standbys)

    @classmethod
    def parse(cls, value: Any, path: str = "databases") -> "Databases":
        r = _record(value, path, ("port", "database", "primary"))
        standbys = r.get("standbys") or []
        if not isinstance(standbys, list):
            raise _fail(f"{path}.standbys", "is not a list")
        return cls(_int(r["port"], f"{path}.port"), _str(r["database"], f"{path}.database"),
                   DatabaseMember.parse(r["primary"], f"{path}.primary"),
                   tuple(DatabaseMember.parse(s, f"{path}.standbys[{i}]", standby=True)
                         for i, s in enumerate(standbys)),
                   DatabaseAccess.parse(r["monitor"], f"{path}.monitor") if r.get("monitor") else None)


@dataclass(frozen=True)
class Link:
    """An inter-center link: its two centers, its role, its two ends (namespace, device) and, from
    the lab, each end's address (in the order of `between`; empty when not exported)."""

    between: tuple[str, str]
    role: str
    ends: tuple[tuple[str, str], ...]
    addresses: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: Any, path: str) -> "Link":
        r = _record(value, path, ("between", "role", "ends"))
        between = _strs(r["between"], f"{path}.between")
        if len(between) != 2:
            raise _fail(f"{path}.between", f"names {len(between)} centers, not 2")
        ends = r["ends"]
        if not isinstance(ends, list):
            raise _fail(f"{path}.ends", "is not a list")
        pairs = tuple(_strs(e, f"{path}.ends[{i}]") for i, e in enumerate(ends))
        if any(len(p) != 2 for p in pairs):
            raise _fail(f"{path}.ends", "holds an end that is not [namespace, device]")
        addresses = _strs(r["addresses"], f"{path}.addresses") if r.get("addresses") is not None else ()
        if addresses and len(addresses) != 2:
            raise _fail(f"{path}.addresses", f"names {len(addresses)} addresses, not one per end")
        return cls((between[0], between[1]), _str(r["role"], f"{path}.role"), pairs, addresses)


@dataclass(frozen=True)
class Web:
    """A center's government web service (`/healthz`, `/ledger`)."""

    host: str
    address: str
    port: int
    url: str

    @classmethod
    def parse(cls, value: Any, path: str) -> "Web":
        r = _record(value, path, ("host", "address", "port", "url"))
        return cls(_str(r["host"], f"{path}.host"), _str(r["address"], f"{path}.address"),
                   _int(r["port"], f"{path}.port"), _str(r["url"], f"{path}.url"))


@dataclass(frozen=True)
class Service:
    """The service address citizens use; `active_center` is where the wan route points."""

    name: str
    ipv4: str
    port: int
    url: str
    active_center: str
    route_namespace: str
    ipv6: str | None = None

    @classmethod
    def parse(cls, value: Any, path: str = "service") -> "Service":
        keys = ("name", "ipv4", "port", "url", "active_center", "route_namespace")
        r = _record(value, path, keys)
        return cls(_str(r["name"], f"{path}.name"), _str(r["ipv4"], f"{path}.ipv4"),
                   _int(r["port"], f"{path}.port"), _str(r["url"], f"{path}.url"),
                   _str(r["active_center"], f"{path}.active_center"),
                   _str(r["route_namespace"], f"{path}.route_namespace"),
                   _opt_str(r.get("ipv6"), f"{path}.ipv6"))


@dataclass(frozen=True)
class Outside:
    """A network outside the cloud (citizens', attackers'): `internet`, `egov_extranet`."""

    kind: str
    namespace: str
    address: str

    @classmethod
    def parse(cls, value: Any, path: str) -> "Outside":
        r = _record(value, path, ("kind", "namespace", "address"))
        return cls(*(_str(r[k], f"{path}.{k}") for k in ("kind", "namespace", "address")))


@dataclass(frozen=True)
class StackOutputs:
    """Everything a deployed stack exports (docs/stack-outputs.md)."""

    backend: str | None = None
    topology: str | None = None
    level: int | None = None
    ssh: Ssh | None = None
    centers: dict[str, Center] = field(default_factory=dict)
    hosts: tuple[Host, ...] = ()
    databases: Databases | None = None
    links: dict[str, Link] = field(default_factory=dict)
    web: dict[str, Web] = field(default_factory=dict)
    service: Service | None = None
    outside: dict[str, Outside] = field(default_factory=dict)
    vantage_points: dict[str, str] = field(default_factory=dict)
    allowlist: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    policy_facts: dict[str, Any] | None = None  # what the 等保 policy pack's stack rules read
    exported: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, raw: Any) -> "StackOutputs":
        """Parse the engine's outputs; StackOutputsError names the first key of the wrong shape."""
        r = _mapping(raw, "the stack outputs")
        native = NATIVE_SHAPES.get(r.get("backend") or "", frozenset())

        def part(key: str, parse: Callable[[Any, str], Any], empty: Any = None) -> Any:
            value = r.get(key)
            return empty if value is None or key in native else parse(value, key)

        policy_facts = part("policy_facts", _mapping)
        return cls(
            backend=part("backend", _str), topology=part("topology", _str), level=part("level", _int),
            ssh=part("ssh", Ssh.parse),
            centers=part("centers", lambda v, p: _each(v, p, Center.parse), {}),
            hosts=part("hosts", lambda v, p: tuple(Host.parse(h, f"{p}[{i}]")
                                                   for i, h in enumerate(_list(v, p))), ()),
            databases=part("databases", Databases.parse),
            links=part("links", lambda v, p: _each(v, p, Link.parse), {}),
            web=part("web", lambda v, p: _each(v, p, Web.parse), {}),
            service=part("service", Service.parse),
            outside=part("outside", lambda v, p: _each(v, p, Outside.parse), {}),
            vantage_points=part("vantage_points", lambda v, p: _each(v, p, _str), {}),
            allowlist=part("allowlist", _strs, ()),
            namespaces=part("namespaces", _strs, ()),
            policy_facts=dict(policy_facts) if policy_facts is not None else None,
            exported=copy.deepcopy(dict(r)),
        )

    def to_dict(self) -> dict[str, Any]:
        """The outputs exactly as the engine exported them (for JSON reports and evidence)."""
        return copy.deepcopy(dict(self.exported))

    # --- lookups several consumers need
    def host(self, fqdn: str) -> Host:
        for h in self.hosts:
            if h.fqdn == fqdn:
                return h
        raise StackOutputsError(f"stack outputs: no host {fqdn!r} in `hosts`")

    def hosts_in(self, center: str) -> list[Host]:
        return [h for h in self.hosts if h.center == center]

    def internet_namespace(self) -> str:
        """Where citizens come from: the namespace of the `internet` outside network."""
        for o in self.outside.values():
            if o.kind == "internet":
                return o.namespace
        raise StackOutputsError("stack outputs: `outside` has no network of kind internet")


def _list(value: Any, path: str) -> list:
    if not isinstance(value, list):
        raise _fail(path, f"is {type(value).__name__}, not a list")
    return value


def read_stack_outputs(stack: str) -> StackOutputs:
    """The outputs of a deployed stack; StackNotDeployed when it has none."""
    from infra.engine import Engine  # the one place outside `govctl infra outputs` that asks the engine

    raw = Engine(stack).outputs()
    if not raw:
        raise StackNotDeployed(stack)
    return StackOutputs.from_dict(raw)
