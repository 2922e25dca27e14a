#!/usr/bin/env python3
"""Benchmark of `govctl infra plan`: plan time and resource counts for 3, 9 and 30 centers on the
alicloud and openstack backends, plus the 等保 pack evaluated over each plan's graph.

Topologies are generated here: a production and a same-city DR center in the first site, then
remote DR centers two per further site (region); every center has the lab's four zones and three
hosts; every pair of centers has a primary and a standby link (the validator demands it at level
3, so links grow as n(n-1)); the production center replicates to every DR center.

Usage: .venv/bin/python bench/infra_plan.py [--centers 3 9 30] [--repeat 1] [--backends alicloud openstack]
       [--json out.json]
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import yamlfile  # noqa: E402
from infra.engine import StackDefinition  # noqa: E402
from infra.plan import plan_config  # noqa: E402
from infra.topology import load_topology  # noqa: E402
from policies.djcp_pack.checks import evaluate, from_plan  # noqa: E402

ZONES = (("dmz", "internet_dmz", 1), ("extranet", "egov_extranet", 2), ("core", "core_business", 3),
         ("mgmt", "security_management", 4))
HOSTS = (("web-1", "dmz", 1, ["web"]), ("db-1", "core", 3, ["database"]),
         ("bastion-1", "mgmt", 4, ["bastion", "monitor"]))


def generate(n: int) -> dict:
    """A valid level-3 topology with n centers (n >= 3)."""
    centers, sites = [], [{"name": "site-1", "city": "city-1", "region": "cn-r1"}]
    for i in range(1, n + 1):
        if i <= 2:
            site, role = 1, ("production" if i == 1 else "same_city_dr")
        else:
            site, role = 2 + (i - 3) // 2, "remote_dr"
            if len(sites) < site:
                sites.append({"name": f"site-{site}", "city": f"city-{site}", "region": f"cn-r{site}"})
        letter = "abcdefgh"[(i - 1) % 2 if i > 2 else i - 1]
        v4, v6 = f"10.{i}", f"fd00:{i:x}"
        centers.append({
            "name": f"c{i}", "site": f"site-{site}", "role": role,
            "availability_zone": f"cn-r{site}-{letter}", "ipv4": f"{v4}.0.0/16", "ipv6": f"{v6}::/48",
            "zones": [{"name": z, "kind": k, "subnets": [{"ipv4": f"{v4}.{s}.0/24", "ipv6": f"{v6}:0:{s}::/64"}]}
                      for z, k, s in ZONES],
            "hosts": [{"name": h, "zone": z, "ipv4": f"{v4}.{s}.10", "ipv6": f"{v6}:0:{s}::10", "roles": r}
                      for h, z, s, r in HOSTS]})
    links, k = [], 0
    v4_pool = ipaddress.ip_network("172.16.0.0/12").subnets(new_prefix=30)
    for a in range(n):
        for b in range(a + 1, n):
            for role in ("primary", "standby"):
                links.append({"name": f"l{k}", "between": [centers[a]["name"], centers[b]["name"]],
                              "role": role, "ipv4": str(next(v4_pool)), "ipv6": f"fd00:ff:{k >> 16:x}:{k & 0xffff:x}::/64"})
                k += 1
    replication = [{"name": f"r{c['name']}", "from": "c1", "to": c["name"],
                    "mode": "synchronous" if c["role"] == "same_city_dr" else "asynchronous"} for c in centers[1:]]
    lab = yamlfile.load(ROOT / "infra" / "topologies" / "lab.yaml")
    return {"name": f"bench-{n}", "level": 3, "dual_stack": True, "sites": sites, "centers": centers,
            "links": links, "replication": replication, "outside": lab["outside"], "flows": lab["flows"],
            "service": {"name": "gov-portal", "ipv4": "10.250.0.80", "ipv6": "fd00:250::80", "port": 80}}


def config_for(backend: str, doc: dict, path: Path) -> dict[str, str]:
    config = StackDefinition.load(f"{backend}-example").pulumi_config()
    config["govctl:topology"] = str(path)
    if backend == "alicloud":
        per_site = Counter(c["site"] for c in doc["centers"])
        lone = {c["name"]: {"zone": c["availability_zone"][:-1] + "z", "ipv4": c["ipv4"].replace(".0.0/16", ".250.0/24")}
                for c in doc["centers"] if per_site[c["site"]] == 1}
        config["govctl:alb_second_zone"] = json.dumps(lone)
    else:
        config.pop("govctl:regions", None)
        config.pop("govctl:availability_zones", None)
    return config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--centers", type=int, nargs="+", default=[3, 9, 30])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--backends", nargs="+", default=["alicloud", "openstack"])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.centers:
            doc = generate(n)
            path = Path(tmp) / f"bench-{n}.yaml"
            path.write_text(yaml.safe_dump(doc, sort_keys=False))
            started = time.perf_counter()
            load_topology(path)
            validate_s = time.perf_counter() - started
            for backend in args.backends:
                times, result = [], None
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    result = plan_config(config_for(backend, doc, path), f"bench-{n}")
                    times.append(time.perf_counter() - started)
                resources = [r for r in result["resources"] if r["custom"]]
                started = time.perf_counter()
                violations = evaluate(from_plan(result))
                policy_s = time.perf_counter() - started
                by_type = Counter(r["type"].rsplit(":", 1)[-1] for r in resources)
                row = {"centers": n, "links": len(doc["links"]), "backend": backend,
                       "plan_s": round(statistics.median(times), 2), "runs": len(times),
                       "resources": len(resources), "validate_s": round(validate_s, 3),
                       "policy_s": round(policy_s, 2), "violations": len(violations),
                       "top_types": by_type.most_common(3)}
                rows.append(row)
                print(f"{n:>3} centers {len(doc['links']):>4} links  {backend:<9} plan {row['plan_s']:>7.2f} s  "
                      f"{row['resources']:>6} resources  pack {row['policy_s']:>5.2f} s "
                      f"({row['violations']} violations)  top: {row['top_types']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
