"""Load and validate a topology file before anything is touched.

Every problem names the file, the line, the path inside the document and what to change;
all problems are reported at once so a user fixes the file in one pass.
"""
from __future__ import annotations

import ipaddress
import itertools
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from core import yamlfile

from .model import ZONE_KINDS, Topology, build, expand_hosts

SCHEMA_PATH = Path(__file__).with_name("schema.yaml")
DEFAULT_TOPOLOGY = Path(__file__).resolve().parent.parent / "topologies" / "lab.yaml"


@dataclass(frozen=True)
class Problem:
    path: str  # e.g. centers[1].zones[0].subnets[0].ipv4
    message: str  # what is wrong and what to change
    line: int | None = None


class TopologyError(Exception):
    """A topology that must not be deployed; `problems` lists every reason."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"{self.source}: {len(self.problems)} problem(s) in the topology; nothing was touched"]
        for p in self.problems:
            where = f"{self.source}:{p.line}" if p.line else self.source
            lines.append(f"  {where}: {p.path or '(document)'}: {p.message}")
        return "\n".join(lines)


def document_path(parts) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def compose_with_lines(path: str | Path, text: str | None = None) -> tuple[Any, dict[str, int]]:
    """Read a YAML file (or `text`, named `path`) through the one bounded loader into plain data plus
    a map from document path to 1-based line number. Raises core.yamlfile.YamlInputError."""
    doc, root = yamlfile.load_with_node(path, text=text)
    lines: dict[str, int] = {}
    stack = [(root, [])]
    while stack:  # iterative: the loader bounds the depth, aliases may still repeat a subtree
        node, parts = stack.pop()
        lines[document_path(parts)] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                lines[document_path([*parts, key.value])] = key.start_mark.line + 1
                stack.append((value, [*parts, key.value]))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, [*parts, i]) for i, item in enumerate(node.value))
    return doc, lines


@lru_cache(maxsize=1)
def _schema() -> dict:
    return yamlfile.load(SCHEMA_PATH)


def _schema_problems(doc: Any) -> list[Problem]:
    validator = jsonschema.Draft202012Validator(_schema())
    problems = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        hint, parts = err.message, list(err.absolute_path)
        if err.validator == "additionalProperties":
            hint += "; remove it or check its spelling"
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            parts += extra[:1]  # point at the offending key's own line
        elif err.validator == "required":
            hint += "; add it"
        elif err.validator == "enum":
            hint += f"; use one of {', '.join(map(str, err.validator_value))}"
        elif err.validator == "pattern":
            hint += " (names: lower-case letters, digits and '-', starting with a letter)"
        elif parts and parts[-1] == "count":
            hint += "; count is the number of hosts this entry stands for, a whole number 1-250 " \
                    "(one zone's /24; add another entry for more)"
        problems.append(Problem(document_path(parts), hint))
    return problems


class _Checker:
    """Semantic checks on a document that already matches the schema."""

    def __init__(self, doc: dict[str, Any]):
        self.doc = doc
        self.problems: list[Problem] = []
        # (path, network) of every address block, for overlap checks across the document
        self.blocks: dict[int, list[tuple[str, ipaddress._BaseNetwork]]] = {4: [], 6: []}
        self.addresses: dict[str, str] = {}

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    # -- address arithmetic -------------------------------------------------------------
    def network(self, path: str, text: str | None, version: int, required: bool = False):
        if text is None:
            if required:
                self.add(path, f"missing IPv{version} block; the topology is dual-stack "
                               "(add it, or set dual_stack: false)")
            return None
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            try:
                loose = ipaddress.ip_network(text, strict=False)
                self.add(path, f"{text} has host bits set; write the network address {loose}")
            except ValueError:
                self.add(path, f"{text!r} is not a valid IPv{version} CIDR ({exc}); "
                               f"write it like {'10.0.0.0/24' if version == 4 else 'fd00::/64'}")
            return None
        if net.version != version:
            self.add(path, f"{text} is IPv{net.version} but this field takes IPv{version}")
            return None
        return net

    def address(self, path: str, text: str | None, version: int, required: bool = False):
        if text is None:
            if required:
                self.add(path, f"missing IPv{version} address; the topology is dual-stack "
                               "(add it, or set dual_stack: false)")
            return None
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            self.add(path, f"{text!r} is not a valid IPv{version} address")
            return None
        if addr.version != version:
            self.add(path, f"{text} is IPv{addr.version} but this field takes IPv{version}")
            return None
        if str(addr) in self.addresses:
            self.add(path, f"{addr} is already used at {self.addresses[str(addr)]}; "
                           "give every host and service its own address")
        else:
            self.addresses[str(addr)] = path
        return addr

    def claim(self, path: str, net) -> None:
        """Record a block that must not overlap any other block claimed at the same level."""
        if net is None:
            return
        for other_path, other in self.blocks[net.version]:
            if net.overlaps(other):
                self.add(path, f"{net} overlaps {other} at {other_path}; "
                               "choose a block that overlaps nothing else")
                return
        self.blocks[net.version].append((path, net))

    # -- the checks ---------------------------------------------------------------------
    def duplicates(self, items: list[dict], path: str, what: str) -> None:
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            name = item.get("name")
            if name in seen:
                self.add(f"{path}[{i}].name",
                         f"duplicate {what} name {name!r} (first at {path}[{seen[name]}]); "
                         f"{what} names must be unique")
            else:
                seen[name] = i

    def run(self) -> list[Problem]:
        doc = self.doc
        dual = doc.get("dual_stack", True)
        self.duplicates(doc["sites"], "sites", "site")
        self.duplicates(doc["centers"], "centers", "center")
        self.duplicates(doc["links"], "links", "link")
        self.duplicates(doc["replication"], "replication", "replication")
        self.duplicates(doc.get("outside", []), "outside", "outside network")
        if self.problems:
            return self.problems  # cross-references are meaningless until names are unique
        sites = {s["name"] for s in doc["sites"]}
        centers = {c["name"]: c for c in doc["centers"]}

        # Center blocks first: they are the ranges subnets must fall in.
        center_nets: dict[str, tuple] = {}
        for i, c in enumerate(doc["centers"]):
            p = f"centers[{i}]"
            if c["site"] not in sites:
                self.add(f"{p}.site", f"site {c['site']!r} is not declared under sites; "
                                      f"use one of {', '.join(sorted(sites))}")
            v4 = self.network(f"{p}.ipv4", c["ipv4"], 4)
            v6 = self.network(f"{p}.ipv6", c.get("ipv6"), 6, required=dual)
            self.claim(f"{p}.ipv4", v4)
            self.claim(f"{p}.ipv6", v6)
            center_nets[c["name"]] = (v4, v6)
        for key in ("links", "outside"):
            for i, item in enumerate(doc.get(key, [])):
                self.claim(f"{key}[{i}].ipv4", self.network(f"{key}[{i}].ipv4", item["ipv4"], 4))
                self.claim(f"{key}[{i}].ipv6",
                           self.network(f"{key}[{i}].ipv6", item.get("ipv6"), 6, required=dual))

        for i, c in enumerate(doc["centers"]):
            self.center(i, c, center_nets[c["name"]], dual)

        self.roles(doc, centers)
        self.links(doc, centers)
        self.replication(doc, centers)
        self.flows(doc)
        service = doc.get("service")
        if service:
            self.address("service.ipv4", service["ipv4"], 4)
            self.address("service.ipv6", service.get("ipv6"), 6, required=dual)
        return self.problems

    def center(self, i: int, c: dict, nets: tuple, dual: bool) -> None:
        p = f"centers[{i}]"
        self.duplicates(c["zones"], f"{p}.zones", "zone")
        hosts = expand_hosts(c.get("hosts", []))
        self.host_names(p, hosts)
        subnets_by_zone: dict[str, list] = {}
        subnet_claims: dict[int, list[tuple[str, Any]]] = {4: [], 6: []}
        for j, z in enumerate(c["zones"]):
            for k, s in enumerate(z["subnets"]):
                sp = f"{p}.zones[{j}].subnets[{k}]"
                pair = []
                for version, required in ((4, True), (6, dual)):
                    key = f"ipv{version}"
                    net = self.network(f"{sp}.{key}", s.get(key), version, required=required)
                    parent = nets[0] if version == 4 else nets[1]
                    if net is not None and parent is not None and not net.subnet_of(parent):
                        self.add(f"{sp}.{key}", f"{net} is outside the center's block {parent}; "
                                                f"choose a subnet inside {parent}")
                    elif net is not None:
                        for other_path, other in subnet_claims[version]:
                            if net.overlaps(other):
                                self.add(f"{sp}.{key}", f"{net} overlaps {other} at {other_path}; "
                                                        "subnets must not overlap")
                                break
                        else:
                            subnet_claims[version].append((f"{sp}.{key}", net))
                    pair.append(net)
                subnets_by_zone.setdefault(z["name"], []).append(pair)
        zone_names = [z["name"] for z in c["zones"]]
        for j, h in hosts:
            hp = f"{p}.hosts[{j}]"
            # one entry may stand for several hosts (`count`): say which of them
            who = f"host {h['name']}: " if "count" in c["hosts"][j] else ""
            if h["zone"] not in subnets_by_zone:
                self.add(f"{hp}.zone", f"{who}zone {h['zone']!r} does not exist in center {c['name']!r}; "
                                       f"use one of {', '.join(zone_names)} or add the zone")
                continue
            for version, required in ((4, True), (6, dual)):
                key = f"ipv{version}"
                addr = self.address(f"{hp}.{key}", h.get(key), version, required=required)
                if addr is None:
                    continue
                slot = 0 if version == 4 else 1
                nets = [pair[slot] for pair in subnets_by_zone[h["zone"]] if pair[slot] is not None]
                if nets and not any(addr in n for n in nets):
                    self.add(f"{hp}.{key}", f"{who}{addr} is outside zone {h['zone']!r} "
                                            f"({', '.join(map(str, nets))}); use an address inside it")
                elif any(addr in (n.network_address, n.broadcast_address) for n in nets
                         if n.num_addresses > 2 and version == 4):
                    self.add(f"{hp}.{key}", f"{who}{addr} is a network or broadcast address; "
                                            "use a host address")

    def host_names(self, p: str, hosts: list[tuple[int, dict]]) -> None:
        """Unique names after `count` expansion (web with count 3 and a web-2 entry collide)."""
        seen: dict[str, int] = {}
        for j, h in hosts:
            name = h["name"]
            if len(name) > 31:
                self.add(f"{p}.hosts[{j}].name", f"host name {name!r} is longer than 31 characters; "
                                                  "shorten the name (or its count)")
            if name in seen:
                self.add(f"{p}.hosts[{j}].name", f"duplicate host name {name!r} (first at "
                                                  f"{p}.hosts[{seen[name]}]); host names must be unique")
            else:
                seen[name] = j

    def roles(self, doc: dict, centers: dict[str, dict]) -> None:
        prods = [(i, c) for i, c in enumerate(doc["centers"]) if c["role"] == "production"]
        if len(prods) != 1:
            names = ", ".join(c["name"] for _, c in prods) or "none"
            self.add("centers", f"exactly one center must have role production (found {names}); "
                                "mark one production center and make the others DR centers")
            return
        prod = prods[0][1]
        same_city = [c for c in doc["centers"]
                     if c["role"] == "same_city_dr" and c["site"] == prod["site"]]
        if not same_city:
            self.add("centers", f"no same-city DR center in the production site {prod['site']!r}; "
                                "两地三中心 needs a center with role same_city_dr in that site")
        for i, c in enumerate(doc["centers"]):
            if c["role"] == "same_city_dr" and c["site"] != prod["site"]:
                self.add(f"centers[{i}].site",
                         f"same-city DR center {c['name']!r} is in site {c['site']!r}, not in the "
                         f"production site {prod['site']!r}; move it or make it remote_dr")
            if c["role"] == "remote_dr" and c["site"] == prod["site"]:
                self.add(f"centers[{i}].site",
                         f"remote DR center {c['name']!r} is in the production site "
                         f"{prod['site']!r}; a remote DR center must be in another site (another city)")
        remote = [c for c in doc["centers"] if c["role"] == "remote_dr" and c["site"] != prod["site"]]
        if not remote:
            self.add("centers", "no remote DR center in another site; 两地三中心 needs a center "
                                "with role remote_dr in a second site")

    def links(self, doc: dict, centers: dict[str, dict]) -> None:
        by_pair: dict[frozenset, set[str]] = {}
        for i, link in enumerate(doc["links"]):
            a, b = link["between"]
            for end in (a, b):
                if end not in centers:
                    self.add(f"links[{i}].between", f"center {end!r} is not declared; "
                                                    f"use one of {', '.join(centers)}")
            if a == b:
                self.add(f"links[{i}].between", "a link joins two different centers")
            by_pair.setdefault(frozenset((a, b)), set()).add(link["role"])
        needs_two = doc["level"] >= 3
        for i, j in itertools.combinations(range(len(doc["centers"])), 2):
            a, b = doc["centers"][i]["name"], doc["centers"][j]["name"]
            roles = by_pair.get(frozenset((a, b)), set())
            if not roles:
                self.add("links", f"centers {a!r} and {b!r} are not linked; add a primary link "
                                  f"between them" + (" and a standby link" if needs_two else ""))
            elif needs_two and roles != {"primary", "standby"}:
                self.add("links", f"centers {a!r} and {b!r} have a single inter-center link "
                                  f"({'/'.join(sorted(roles))}); 等保 level {doc['level']} asks for "
                                  "two (a primary and a standby link): add the missing one")

    def replication(self, doc: dict, centers: dict[str, dict]) -> None:
        for i, r in enumerate(doc["replication"]):
            p = f"replication[{i}]"
            ends = []
            for key in ("from", "to"):
                if r[key] not in centers:
                    self.add(f"{p}.{key}", f"center {r[key]!r} is not declared; "
                                           f"use one of {', '.join(centers)}")
                else:
                    ends.append(centers[r[key]])
            if len(ends) != 2:
                continue
            src, dst = ends
            if src["name"] == dst["name"]:
                self.add(p, "a center cannot replicate to itself")
            if r["mode"] == "synchronous" and src["site"] != dst["site"]:
                self.add(f"{p}.mode", f"synchronous replication from {src['name']!r} to the "
                                      f"remote center {dst['name']!r} (another site): every commit "
                                      "would wait for the inter-city round trip; use asynchronous")
        targets = {r["to"] for r in doc["replication"]}
        for c in doc["centers"]:
            if c["role"] != "production" and c["name"] not in targets:
                self.add("replication", f"DR center {c['name']!r} receives no replication; "
                                        "add a replication entry towards it")

    def flows(self, doc: dict) -> None:
        # Zones are named by kind (the policy holds in every center); outside networks by name.
        known = set(ZONE_KINDS) | {o["name"] for o in doc.get("outside", [])} | {"any"}
        for i, f in enumerate(doc.get("flows", [])):
            for key in ("from", "to"):
                if f[key] not in known:
                    self.add(f"flows[{i}].{key}", f"{f[key]!r} is neither a zone kind, the name of "
                                                  f"an outside network nor 'any'; use one of {', '.join(sorted(known))}")
            for k, port in enumerate(f["ports"]):
                numbers = [int(n) for n in port.split("/")[1].split("-")]
                if not all(1 <= n <= 65535 for n in numbers) or numbers != sorted(numbers):
                    self.add(f"flows[{i}].ports[{k}]", f"{port} is not a port or ascending range "
                                                       "within 1-65535")


def check_document(doc: Any) -> list[Problem]:
    """All problems of a parsed document (schema first; semantics only on a well-formed one)."""
    if not isinstance(doc, dict):
        return [Problem("", "a topology file is a YAML mapping (name, level, sites, centers, …)")]
    problems = _schema_problems(doc)
    if problems:
        return problems
    return _Checker(doc).run()


def load_topology(path: str | Path | None = None) -> Topology:
    """Read, validate and build a topology; raises TopologyError naming every problem."""
    path = Path(path) if path else DEFAULT_TOPOLOGY
    source = str(path)
    try:
        doc, lines = compose_with_lines(path)
    except yamlfile.YamlInputError as exc:
        raise TopologyError(source, [Problem("", exc.reason, exc.line)]) from None
    problems = check_document(doc)
    if problems:
        raise TopologyError(source, [Problem(p.path, p.message, p.line or line_of(lines, p.path))
                                     for p in problems])
    return build(doc, source)


def line_of(lines: dict[str, int], path: str) -> int | None:
    """The line of the path, or of its nearest ancestor present in the file."""
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return None
