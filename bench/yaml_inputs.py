#!/usr/bin/env python3
"""What reading the project's YAML inputs costs: the lab topology (read + validate), the bundled Sigma
rules (read + pySigma parse + compile), the 等保 and 密评 catalogs, the host-hardening catalog.

usage: .venv/bin/python bench/yaml_inputs.py [--root DIR] [--rounds 15]

`--root` points at another checkout of the project (e.g. a `git archive` of the commit before a
change) to measure its code on this tree's inputs' twins. Each figure is the least CPU time of
`--rounds` rounds (CPU time, not wall time: the machine is shared), in milliseconds per call.
With this tree's code it also compares, file by file, libyaml's plain load
(`yaml.load_all(text, Loader=yaml.CSafeLoader)`) with the bounded loader (`core.yamlfile.load_all`).
Prints one JSON document.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def best_ms(call, rounds: int) -> float:
    call()  # warm: imports, schema caches
    per_round = max(1, int(0.2 / max(_once(call, 1), 1e-6)))
    return min(_once(call, per_round) for _ in range(rounds)) * 1e3


def _once(call, times: int) -> float:
    started = time.process_time()
    for _ in range(times):
        call()
    return (time.process_time() - started) / times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    sys.path.insert(0, str(args.root.resolve()))

    from govctl.hardening import catalog as host_catalog
    from infra.topology import DEFAULT_TOPOLOGY, load_topology
    from infra.topology.validate import compose_with_lines
    from policies.compliance import catalog
    from secops.detect import load_rules

    def topology_yaml():
        try:  # this tree's signature: (path, text=None)
            compose_with_lines(DEFAULT_TOPOLOGY)
        except (TypeError, AttributeError):  # before core.yamlfile: (text)
            compose_with_lines(DEFAULT_TOPOLOGY.read_text(encoding="utf-8"))

    figures = {
        "topology: YAML with line map": best_ms(topology_yaml, args.rounds),
        "topology: load_topology (read + validate + build)": best_ms(lambda: load_topology(DEFAULT_TOPOLOGY),
                                                                      args.rounds),
        "Sigma rules: load_rules (5 bundled files, pipeline)": best_ms(load_rules, max(3, args.rounds // 3)),
        "catalog djcp: load_document": best_ms(lambda: catalog.load_document.__wrapped__("djcp"), args.rounds),
        "catalog mlps-crypto: load_document": best_ms(lambda: catalog.load_document.__wrapped__("mlps-crypto"),
                                                      args.rounds),
        "host catalog: load_document": best_ms(lambda: host_catalog.load_document.__wrapped__(), args.rounds),
    }
    result = {"root": str(args.root), "ms": {k: round(v, 3) for k, v in figures.items()}}
    try:
        from core import yamlfile
    except ImportError:  # a checkout from before the bounded loader
        yamlfile = None
    if yamlfile is not None:
        # per file: libyaml's plain load (what the fast call sites did) against the bounded loader
        import yaml

        root = args.root.resolve()
        files = [root / "infra/topologies/lab.yaml", *sorted((root / "secops/rules").glob("*.yml")),
                 root / "policies/catalogs/djcp.yaml", root / "policies/catalogs/mlps-crypto.yaml",
                 root / "playbooks/catalog/host-controls.yaml"]
        per_file = {}
        for path in files:
            plain = best_ms(lambda: list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)),
                            args.rounds)
            bounded = best_ms(lambda: yamlfile.load_all(path), args.rounds)
            per_file[str(path.relative_to(root))] = {"CSafeLoader": round(plain, 3), "yamlfile": round(bounded, 3),
                                                     "change": f"{100 * (bounded / plain - 1):+.0f}%"}
        result["per_file_ms"] = per_file
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
