"""Compliance reports for auditors: 等保 2.0 (GB/T 22239-2019) and 密评 (GB/T 39786-2021).

catalog.py reads the catalogs (policies/catalogs/*.yaml), collect.py gathers raw evidence from every
layer (stack, firewalls, hosts, monitoring, SecOps, crypto, drills) into one JSON file per layer,
checks.py turns evidence into per-check verdicts, engine.py into per-item verdicts, findings and an
estimated score, render.py into JSON / CSV / HTML / PDF, and pack.py into a signed evidence pack.
"""
from __future__ import annotations

# The five verdicts of an assessment item: the host audit's (hardening.verdict) are the same ones.
from hardening.verdict import (COMPLIANT, MANUAL, NON_COMPLIANT, NOT_APPLICABLE, PARTIAL,  # noqa: E402,F401
                                      VERDICT_EN, VERDICTS)

STANDARDS = ("djcp", "mlps-crypto")
