"""Compliance reports for auditors: 等保 2.0 (GB/T 22239-2019) and 密评 (GB/T 39786-2021).

catalog.py reads the catalogs (policies/catalogs/*.yaml), collect.py gathers raw evidence from every
layer (stack, firewalls, hosts, monitoring, SecOps, crypto, drills) into one JSON file per layer,
checks.py turns evidence into per-check verdicts, engine.py into per-item verdicts, findings and an
estimated score, render.py into JSON / CSV / HTML / PDF, and pack.py into a signed evidence pack.
"""
from __future__ import annotations

COMPLIANT = "符合"
PARTIAL = "部分符合"
NON_COMPLIANT = "不符合"
NOT_APPLICABLE = "不适用"
MANUAL = "需人工核查"
VERDICTS = (COMPLIANT, PARTIAL, NON_COMPLIANT, NOT_APPLICABLE, MANUAL)
VERDICT_EN = {COMPLIANT: "compliant", PARTIAL: "partially compliant", NON_COMPLIANT: "non-compliant",
              NOT_APPLICABLE: "not applicable", MANUAL: "manual review"}
STANDARDS = ("djcp", "mlps-crypto")
