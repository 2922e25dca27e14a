"""The 等保 2.0 level-3 checks of the govctl CrossGuard pack, as plain functions.

A resource is a dict `{"type", "name", "urn", "props"}` (props use Pulumi's wire names, as the
engine and the offline plan record them; a value only the cloud knows is COMPUTED). A resource
check returns the violations of one resource; a stack check sees every resource, including the
`pulumi:pulumi:Stack` resource whose props are the stack outputs: a govctl backend exports
`policy_facts` there, {"topology": the validated topology, "audit": the audit trail} (docs/clouds.md). Rule metadata (clause,
description) is data in rules.yaml; `load_rules` validates it and pairs it with these functions.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

import jsonschema

from core import yamlfile
from infra.plan import COMPUTED

HERE = Path(__file__).parent
WORLD = {"0.0.0.0/0", "::/0"}
STACK_TYPE = "pulumi:pulumi:Stack"
ALL_PORTS = (1, 65535)


@dataclass(frozen=True)
class Settings:
    management_ports: dict[int, str]
    audit_retention_days: int
    encrypted_volume_types: tuple[str, ...]
    encrypted_oss_algorithms: tuple[str, ...]


@dataclass(frozen=True)
class Violation:
    message: str
    urn: str | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    scope: str  # resource | stack
    clause: str
    control: str
    description: str
    enforcement: str
    check: Callable


def _known(value: Any) -> bool:
    return value is not None and value != COMPUTED


def _ports_text(settings: Settings, low: int, high: int) -> str:
    hit = [f"{p} ({name})" for p, name in sorted(settings.management_ports.items()) if low <= p <= high]
    return ", ".join(hit)


# -- resource checks ------------------------------------------------------------------------
def _range(text: Any, sep: str) -> tuple[int, int] | None:
    """A port range from '22/22', '20:30', '22' or absent (all ports); None when unknown."""
    if text is None or text == "" or text == "-1/-1":
        return ALL_PORTS
    if text == COMPUTED:
        return None
    low, _, high = str(text).partition(sep)
    low_n, high_n = int(low), int(high or low)
    return ALL_PORTS if low_n < 0 else (low_n, high_n)


def _world_open_ports(resource: dict) -> tuple[str, tuple[int, int]] | None:
    """(source, port range) when a rule admits the whole internet, else None."""
    t, p = resource["type"], resource["props"]
    if t == "alicloud:ecs/securityGroupRule:SecurityGroupRule":
        if p.get("type", "ingress") != "ingress" or p.get("policy", "accept") != "accept":
            return None
        source = next((p[k] for k in ("cidrIp", "ipv6CidrIp") if p.get(k) in WORLD), None)
        if source is None or str(p.get("ipProtocol", "all")).lower() in ("icmp", "icmpv6", "gre"):
            return None
        ports = _range(p.get("portRange"), "/")
    elif t == "openstack:networking/secGroupRule:SecGroupRule":
        if p.get("direction") != "ingress" or str(p.get("protocol", "")).lower() in ("icmp", "ipv6-icmp"):
            return None
        remote = p.get("remoteIpPrefix")
        if remote not in WORLD and not (remote is None and p.get("remoteGroupId") is None):
            return None  # no remote at all means any source in Neutron
        source = remote or "any (no remote given)"
        low, high = p.get("portRangeMin"), p.get("portRangeMax")
        ports = ALL_PORTS if low in (None, 0) else (None if not _known(low) else (int(low), int(high or low)))
    elif t == "openstack:firewall/ruleV2:RuleV2":
        if p.get("action", "deny") != "allow" or str(p.get("protocol", "any")).lower() == "icmp":
            return None
        source = p.get("sourceIpAddress")
        if source is not None and source not in WORLD:
            return None
        source = source or "any (no source given)"
        ports = _range(p.get("destinationPort"), ":")
    else:
        return None
    return (source, ports) if ports is not None else None


def mgmt_ports_closed_to_world(resource: dict, settings: Settings) -> list[str]:
    if resource["type"] == "alicloud:ecs/ecsPrefixList:EcsPrefixList":
        # Rules name prefix lists by an id unknown at preview: a list holding the whole internet
        # is refused itself, whatever ports its rules open.
        world = [e.get("cidr") for e in resource["props"].get("entries") or [] if e.get("cidr") in WORLD]
        return [f"{resource['name']}: prefix list contains {', '.join(world)}; security-group rules "
                "that reference it would admit the whole internet"] if world else []
    found = _world_open_ports(resource)
    if found is None:
        return []
    source, (low, high) = found
    hit = _ports_text(settings, low, high)
    if not hit:
        return []
    return [f"{resource['name']} admits {source} to ports {low}-{high}, which include {hit}; "
            "reach management ports only from the management zone / bastion"]


def storage_encrypted(resource: dict, settings: Settings) -> list[str]:
    t, p, name = resource["type"], resource["props"], resource["name"]
    problems = []
    if t == "alicloud:ecs/instance:Instance":
        if p.get("systemDiskEncrypted") is not True:
            problems.append(f"{name}: system disk is not encrypted (set system_disk_encrypted)")
        for i, disk in enumerate(p.get("dataDisks") or []):
            if disk.get("encrypted") is not True:
                problems.append(f"{name}: data disk {i} is not encrypted")
    elif t in ("alicloud:ecs/ecsDisk:EcsDisk", "alicloud:ecs/disk:Disk"):
        if p.get("encrypted") is not True:
            problems.append(f"{name}: disk is not encrypted")
    elif t == "alicloud:rds/instance:Instance":
        if p.get("encryptionKey") is None and p.get("tdeStatus") != "Enabled":
            problems.append(f"{name}: database storage is not encrypted (set encryption_key or TDE)")
    elif t == "alicloud:oss/bucket:Bucket":
        rule = p.get("serverSideEncryptionRule") or {}
        if rule.get("sseAlgorithm") not in settings.encrypted_oss_algorithms:
            problems.append(f"{name}: bucket has no server-side encryption "
                            f"({'/'.join(settings.encrypted_oss_algorithms)})")
    elif t == "openstack:compute/instance:Instance":
        volumes = [d for d in p.get("blockDevices") or [] if d.get("destinationType") == "volume"]
        if not volumes:
            problems.append(f"{name}: boots from an unencrypted local disk; boot from a volume of an "
                            f"encrypted type ({', '.join(settings.encrypted_volume_types)})")
        for d in volumes:
            if _known(d.get("volumeType")) and d.get("volumeType") not in settings.encrypted_volume_types:
                problems.append(f"{name}: volume type {d.get('volumeType')!r} is not an encrypted type")
    elif t == "openstack:blockstorage/volume:Volume":
        volume_type = p.get("volumeType")
        if volume_type is None or (_known(volume_type) and volume_type not in settings.encrypted_volume_types):
            problems.append(f"{name}: volume type {p.get('volumeType')!r} is not an encrypted type")
    return problems


# -- stack facts ----------------------------------------------------------------------------
class Facts:
    """What the stack says about itself: the topology and audit outputs, and its resources."""

    def __init__(self, resources: list[dict]):
        self.resources = resources
        stack = next((r for r in resources if r["type"] == STACK_TYPE), None)
        facts = ((stack or {}).get("props") or {}).get("policy_facts")
        facts = facts if isinstance(facts, dict) else {}
        self.topology = facts.get("topology") if isinstance(facts.get("topology"), dict) else None
        self.audit = facts.get("audit") if isinstance(facts.get("audit"), dict) else None
        self.placement = facts.get("placement") if isinstance(facts.get("placement"), dict) else {}

    def of(self, type_: str) -> list[dict]:
        return [r for r in self.resources if r["type"] == type_]

    def missing_topology(self) -> list[Violation]:
        return [Violation("the stack exports no `policy_facts.topology` output, so this rule cannot "
                          "be assessed; a govctl backend exports the validated topology there")]

    def centers(self, role: str | None = None) -> list[dict]:
        return [c for c in self.topology.get("centers", []) if role is None or c["role"] == role]

    def production(self) -> dict | None:
        prods = self.centers("production")
        return prods[0] if prods else None

    def region_of(self, center: dict) -> str | None:
        """The center's region as deployed (placement), else its site's region in the topology."""
        placed = self.placement.get(center["name"]) or {}
        return placed.get("region") or next(
            (s.get("region") for s in self.topology.get("sites", []) if s["name"] == center["site"]), None)

    def zone_of(self, center: dict) -> str | None:
        placed = self.placement.get(center["name"]) or {}
        return placed.get("zone") or center.get("availability_zone")


def _flows(facts: Facts) -> Iterable[dict]:
    return facts.topology.get("flows", [])


def _is_internet(facts: Facts, source: str) -> bool:
    if source == "any":
        return True
    return any(source in (o["name"], o["kind"]) and o["kind"] == "internet"
               for o in facts.topology.get("outside", []))


def topology_mgmt_ports_closed(resources: list[dict], settings: Settings) -> list[Violation]:
    facts = Facts(resources)
    if facts.topology is None:
        return facts.missing_topology()
    out = []
    for flow in _flows(facts):
        if not _is_internet(facts, flow["source"]):
            continue
        for port in flow["ports"]:
            low, _, high = port.split("/", 1)[1].partition("-")
            hit = _ports_text(settings, int(low), int(high or low))
            if hit:
                out.append(Violation(f"flow {flow['source']} -> {flow['target']} opens {port} ({hit}) "
                                     "to the internet; remove it or narrow its source"))
    return out


def management_zone_isolated(resources: list[dict], settings: Settings) -> list[Violation]:
    facts = Facts(resources)
    if facts.topology is None:
        return facts.missing_topology()
    return [Violation(f"flow {f['source']} -> {f['target']} ({', '.join(f['ports'])}) lets "
                      f"{f['source']} into the security-management zone; only the management zone "
                      "itself (bastion, monitors) may reach it")
            for f in _flows(facts)
            if f["target"] in ("security_management", "any") and f["source"] != "security_management"]


def database_ha_two_zones(resources: list[dict], settings: Settings) -> list[Violation]:
    facts = Facts(resources)
    if facts.topology is None:
        return facts.missing_topology()
    out = []
    prod = facts.production()
    if prod is None:
        return [Violation("the topology has no production center")]
    centers = {c["name"]: c for c in facts.centers()}
    standby = [centers[r["target"]] for r in facts.topology.get("replication", [])
               if r["source"] == prod["name"] and r["mode"] == "synchronous" and r["target"] in centers]
    in_other_zone = [c for c in standby if c["site"] == prod["site"] and
                     (facts.zone_of(c) is None or facts.zone_of(c) != facts.zone_of(prod))]
    if not in_other_zone:
        out.append(Violation(f"the production database in {prod['name']!r} has no synchronous standby "
                             "in a second zone of its site; add synchronous replication to the "
                             "same-city DR center"))
    for rds in facts.of("alicloud:rds/instance:Instance"):
        p = rds["props"]
        if (p.get("tags") or {}).get("govctl-role") != "production":
            continue
        if not p.get("zoneIdSlaveA") or p.get("zoneIdSlaveA") == p.get("zoneId"):
            out.append(Violation(f"{rds['name']}: the production RDS instance has no standby in a "
                                 "second zone (set zone_id_slave_a to another zone)", rds.get("urn")))
    return out


def database_remote_copy(resources: list[dict], settings: Settings) -> list[Violation]:
    facts = Facts(resources)
    if facts.topology is None:
        return facts.missing_topology()
    prod = facts.production()
    centers = {c["name"]: c for c in facts.centers()}
    remote = [centers[r["target"]] for r in facts.topology.get("replication", [])
              if prod and r["source"] == prod["name"] and r["target"] in centers
              and centers[r["target"]]["role"] == "remote_dr" and centers[r["target"]]["site"] != prod["site"]]
    out = []
    if not remote:
        out.append(Violation("the production database is not replicated to a remote DR center; add "
                             "an asynchronous replication entry towards it"))
    rds = facts.of("alicloud:rds/instance:Instance")
    if rds and not (facts.of("alicloud:dts/synchronizationJob:SynchronizationJob")
                    or facts.of("alicloud:rds/rdsInstanceCrossBackupPolicy:RdsInstanceCrossBackupPolicy")):
        out.append(Violation("RDS instances exist but no DTS synchronization job or cross-region "
                             "backup policy copies them to the remote center"))
    return out


def backup_replication(resources: list[dict], settings: Settings) -> list[Violation]:
    facts = Facts(resources)
    replicated = set()
    for r in facts.of("alicloud:oss/bucketReplication:BucketReplication"):
        p = r["props"]
        replicated.add(p.get("bucket"))
        replicated.add((p.get("destination") or {}).get("bucket"))
    out = []
    for bucket in facts.of("alicloud:oss/bucket:Bucket"):
        name = bucket["props"].get("bucket")
        if _known(name) and name not in replicated:
            out.append(Violation(f"{bucket['name']}: bucket {name} is neither replicated to another "
                                 "region nor a replica; add an oss.BucketReplication", bucket.get("urn")))
    return out


def audit_trail_retention(resources: list[dict], settings: Settings) -> list[Violation]:
    facts = Facts(resources)
    need = settings.audit_retention_days
    trails = facts.of("alicloud:actiontrail/trail:Trail")
    if trails:
        stores = {s["props"].get("logstoreName"): s["props"] for s in facts.of("alicloud:log/store:Store")}
        out = []
        for trail in trails:
            p = trail["props"]
            store = stores.get(f"actiontrail_{p.get('trailName')}")
            if p.get("status", "Enable") != "Enable":
                out.append(Violation(f"{trail['name']}: the audit trail is not enabled", trail.get("urn")))
            if store is None:
                out.append(Violation(f"{trail['name']}: no SLS logstore actiontrail_{p.get('trailName')} "
                                     "holds the trail's records", trail.get("urn")))
            elif _known(store.get("retentionPeriod")) and int(store.get("retentionPeriod") or 30) < need:
                out.append(Violation(f"{trail['name']}: the trail's logstore keeps "
                                     f"{store.get('retentionPeriod')} days, fewer than {need}", trail.get("urn")))
        return out
    audit = facts.audit
    if not audit:
        return [Violation("no audit trail: the stack has no ActionTrail and exports no "
                          "`policy_facts.audit` output (enabled, retention_days)")]
    if not audit.get("enabled"):
        return [Violation(f"the audit trail is off ({audit.get('evidence', 'no evidence')})")]
    if int(audit.get("retention_days") or 0) < need:
        return [Violation(f"the audit trail keeps {audit.get('retention_days')} days, fewer than {need}")]
    return []


def remote_dr_center(resources: list[dict], settings: Settings) -> list[Violation]:
    facts = Facts(resources)
    if facts.topology is None:
        return facts.missing_topology()
    prod = facts.production()
    if prod is None:
        return [Violation("the topology has no production center")]
    remote = [c for c in facts.centers("remote_dr") if c["site"] != prod["site"]]
    if not remote:
        return [Violation("no remote DR center in another site (两地三中心 needs one in another city)")]
    prod_region = facts.region_of(prod)
    if prod_region and all(facts.region_of(c) == prod_region for c in remote):
        return [Violation(f"every remote DR center is in the production region {prod_region}; "
                          "put one in another region")]
    return []


def redundant_inter_center_links(resources: list[dict], settings: Settings) -> list[Violation]:
    facts = Facts(resources)
    if facts.topology is None:
        return facts.missing_topology()
    roles: dict[frozenset, set] = {}
    for link in facts.topology.get("links", []):
        roles.setdefault(frozenset(link["between"]), set()).add(link["role"])
    names = [c["name"] for c in facts.centers()]
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            have = roles.get(frozenset((a, b)), set())
            if not {"primary", "standby"} <= have:
                out.append(Violation(f"centers {a!r} and {b!r} have {'/'.join(sorted(have)) or 'no'} "
                                     "link(s); a primary and a standby link are required"))
    return out


CHECKS: dict[str, Callable] = {
    "djcp-mgmt-ports-closed-to-world": mgmt_ports_closed_to_world,
    "djcp-topology-mgmt-ports-closed": topology_mgmt_ports_closed,
    "djcp-management-zone-isolated": management_zone_isolated,
    "djcp-storage-encrypted": storage_encrypted,
    "djcp-database-ha-two-zones": database_ha_two_zones,
    "djcp-database-remote-copy": database_remote_copy,
    "djcp-backup-replication": backup_replication,
    "djcp-audit-trail-retention": audit_trail_retention,
    "djcp-remote-dr-center": remote_dr_center,
    "djcp-redundant-inter-center-links": redundant_inter_center_links,
}


class RulesError(Exception):
    pass


@lru_cache(maxsize=1)
def load_rules(path: Path = HERE / "rules.yaml") -> tuple[Settings, tuple[Rule, ...]]:
    """Read rules.yaml, validate it against rules.schema.yaml, pair every rule with its check."""
    doc = yamlfile.load(path)
    schema = yamlfile.load(HERE / "rules.schema.yaml")
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(map(str, e.path)))
    if errors:
        raise RulesError(f"{path}: " + "; ".join(f"{'.'.join(map(str, e.path)) or '(document)'}: {e.message}"
                                                 for e in errors))
    ids = [r["id"] for r in doc["rules"]]
    if set(ids) != set(CHECKS) or len(ids) != len(set(ids)):
        raise RulesError(f"{path}: rules {sorted(set(ids) ^ set(CHECKS))} have no check or no entry "
                         "(each rule id appears once in rules.yaml and once in checks.CHECKS)")
    settings = Settings({int(k): v for k, v in doc["management_ports"].items()}, doc["audit_retention_days"],
                        tuple(doc["encrypted_volume_types"]), tuple(doc["encrypted_oss_algorithms"]))
    rules = tuple(Rule(r["id"], r["scope"], r["clause"], r["control"], r["description"],
                       r.get("enforcement", "mandatory"), CHECKS[r["id"]]) for r in doc["rules"])
    return settings, rules


def label(rule: Rule) -> str:
    """The prefix of every message: the standard's clause, so a failed preview names it."""
    return f"[等保2.0 GB/T 22239-2019 {rule.clause} {rule.control}]"


def evaluate(resources: list[dict]) -> list[tuple[Rule, Violation]]:
    """Every rule over a list of resources (the offline plan's graph or a test's dicts)."""
    settings, rules = load_rules()
    found = []
    for rule in rules:
        if rule.scope == "resource":
            for r in resources:
                found += [(rule, Violation(m, r.get("urn"))) for m in rule.check(r, settings)]
        else:
            found += [(rule, v) for v in rule.check(resources, settings)]
    return found


def from_plan(plan: dict) -> list[dict]:
    """The resources of an offline plan (infra.plan), plus the stack resource with its outputs."""
    resources = [{"type": r["type"], "name": r["name"], "urn": r["urn"], "props": r["inputs"]}
                 for r in plan["resources"]]
    resources.append({"type": STACK_TYPE, "name": "stack", "urn": None, "props": plan["outputs"]})
    return resources
