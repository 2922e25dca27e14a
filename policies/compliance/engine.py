"""Per-item verdicts, high-risk findings and the estimated score.

An item's verdict comes from its checks (automated checks on the evidence, attachments a person
examined, manual prompts still open) and its waiver:
- an active waiver (not expired) makes the item 不适用, with the waiver as the deciding evidence;
- otherwise the results combine as checks.combine says: any 不符合 or 部分符合 decides the item
  (不符合 when nothing passed, 部分符合 when something did), open manual checks notwithstanding;
  without failures, an open manual check (or a layer whose evidence is missing) leaves it
  需人工核查 with the prompt saying what to attach; when all evidence passed: 符合 — unless a passing
  check rests on a stale layer (freshness.py): then 需人工核查 (collect again). Failures found on
  stale evidence stand. Host checks apply the assessment's waivers of host items.

The engine also says which check names a catalog may use (the ones it can run): it refuses a
catalog naming any other before evaluating it, and `validate_catalog` adds that to the catalog's
own validation.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

from . import COMPLIANT, MANUAL, NON_COMPLIANT, NOT_APPLICABLE, PARTIAL, VERDICT_EN
from .assessment import Assessment, waiver_active
from .catalog import Catalog, CatalogError, Check, Item, automation, parse_check, validate as validate_document
from .checks import (CHECKS, Evidence, Missing, Outcome, combine, document_outcome, host_outcome, pack_outcome,
                     secops_rules_outcome)
from .freshness import Limits, layer_ages

# The checks that take the catalog's parameter (ids, a clause); `manual` is a person's; every other
# name is a function of checks.CHECKS.
PARAMETERISED_CHECKS = {"host": host_outcome, "pack": pack_outcome, "secops_rules": secops_rules_outcome}

# Weights of the estimate: an item's importance (等保) or obligation (密评).
WEIGHTS = {"关键": 3, "重要": 2, "一般": 1, None: 1, "应": 3, "宜": 2, "可": 1}
VALUES = {COMPLIANT: 1.0, PARTIAL: 0.5, NON_COMPLIANT: 0.0}
ESTIMATE_LABEL = {"zh": "估算分（非测评机构结论）", "en": "estimated score (not the assessor's result)"}
ESTIMATE_METHOD = {
    "zh": "对已判定（符合/部分符合/不符合）的条目按权重求平均：符合计 1、部分符合计 0.5、不符合计 0；"
          "权重按重要程度（关键 3、重要 2、一般 1）或义务（应 3、宜 2；“可”条目不计分）。"
          "不适用条目不计入；需人工核查条目不计入估算分，只计入区间：下限按全部不符合、上限按全部符合。"
          "结论档：存在高风险项为“差”，否则 ≥90 优、≥80 良、≥70 中、其余差。",
    "en": "Weighted mean over the decided items (compliant / partial / non-compliant) with values 1 / 0.5 / 0; "
          "weights by importance (key 3, important 2, general 1) or obligation (shall 3, should 2; 'may' items "
          "are not scored). Not-applicable items are left out; items awaiting manual review are left out of the "
          "estimate and bound the range (low: all fail, high: all pass). Band: any high-risk finding gives 'poor', "
          "otherwise ≥90 excellent, ≥80 good, ≥70 fair, else poor.",
}


@dataclass
class CheckResult:
    check: str
    layer: str
    automated: bool
    verdict: str
    detail: str
    remediation: str | None = None
    source: str = ""
    stale: bool = False                 # from an evidence layer older than its freshness limit


@dataclass
class ItemResult:
    item: Item
    area_title: dict
    automation: str
    verdict: str
    results: list[CheckResult]
    deciding: list[int]                 # indexes into results
    prompts: list[str] = field(default_factory=list)
    waiver: dict | None = None
    high_risk: bool = False

    def as_dict(self) -> dict:
        i = self.item
        return {
            "id": i.id, "area": i.area, "area_title": self.area_title, "control": i.control, "clause": i.clause,
            "levels": list(i.levels), "importance": i.importance, "obligation": i.obligation,
            "requirement": i.requirement, "automation": self.automation,
            "verdict": self.verdict, "verdict_en": VERDICT_EN[self.verdict], "high_risk": self.high_risk,
            "high_risk_condition": i.high_risk, "differences": i.differences,
            "evidence": [asdict(r) for r in self.results], "deciding": self.deciding,
            "prompts": self.prompts, "waiver": self.waiver,
            "remediation": [r.remediation for r in self.results if r.remediation and r.verdict in (NON_COMPLIANT, PARTIAL)],
        }


def runnable(kind: str) -> bool:
    return kind == "manual" or kind in PARAMETERISED_CHECKS or kind in CHECKS


def _unrunnable(item_id: str, checks) -> list[str]:
    return [f"{item_id}: check {c.kind!r} has no implementation in checks.py" for c in checks if not runnable(c.kind)]


def unrunnable_checks(document: dict) -> list[str]:
    """The checks of a (schema-valid) catalog document that the engine cannot run, one problem each."""
    return [p for item in document["items"] for p in _unrunnable(item["id"], map(parse_check, item["checks"]))]


def validate_catalog(document: dict, source: str) -> None:
    """The catalog's validation (catalog.validate) and the engine's: one CatalogError naming every problem."""
    validate_document(document, source, unrunnable_checks)


def run_check(check: Check, evidence: Evidence, host_waivers: list[dict] | None = None,
              today: dt.date | None = None) -> CheckResult:
    """One automated check; missing evidence becomes 需人工核查 with the prompt. Host checks apply the
    assessment's host-item waivers."""
    try:
        if check.kind == "host":
            outcome = host_outcome(evidence, check.param, host_waivers, today)
        elif check.kind in PARAMETERISED_CHECKS:
            outcome = PARAMETERISED_CHECKS[check.kind](evidence, check.param)
        else:
            outcome = CHECKS[check.kind](evidence)
    except Missing as missing:
        outcome = Outcome(MANUAL, missing.zh, None, f"{check.layer}.json")
    return CheckResult(check.label, check.layer, True, outcome.verdict, outcome.detail, outcome.remediation, outcome.source)


def _stale(result: CheckResult, age: dict) -> CheckResult:
    """Mark a result that rests on a layer older than its freshness limit (evaluate_item decides
    what that does to the item's verdict)."""
    result.stale = True
    result.detail += (f"（证据已过期：{result.layer} 层采集于 {age['collected']}，超过 {age['max_age_days']} 天时效，"
                      f"请重新采集 `govctl comply collect`）")
    return result


def evaluate_item(item: Item, catalog: Catalog, evidence: Evidence, assessment: Assessment,
                  today: dt.date | None = None, ages: dict[str, dict] | None = None) -> ItemResult:
    results: list[CheckResult] = []
    open_prompts: list[str] = []
    attachments = assessment.attachments_for(catalog.key, item.id)
    # a manual check is answered by a person's attachment, else by the declared document register (issue 19)
    declared = None if attachments else document_outcome(evidence, catalog.key, item.id, today)
    for check in item.checks:
        if check.kind == "manual":
            if declared is not None:
                result = CheckResult("document", "documents", False, declared.verdict, declared.detail,
                                     declared.remediation, declared.source)
                age = (ages or {}).get("documents")
                results.append(_stale(result, age) if age and age["stale"] else result)
                if result.verdict == MANUAL:
                    open_prompts.append(result.detail)
                declared = None  # one result however many manual prompts the item has
            elif not attachments and not any(r.check == "document" for r in results):
                open_prompts.append(check.param["zh"])
                results.append(CheckResult("manual", "manual", False, MANUAL, check.param["zh"]))
            continue
        result = run_check(check, evidence, assessment.host_waivers(), today)
        age = (ages or {}).get(result.layer)
        results.append(_stale(result, age) if age and age["stale"] and result.verdict != NOT_APPLICABLE else result)
    for a in attachments:
        results.append(CheckResult("attachment", "attachment", False, a["verdict"],
                                   f"{a['title']}（{a['assessor']}，{a['date']}）", None, a.get("path") or ""))
    open_prompts += [r.detail for r in results if r.verdict == MANUAL and r.automated]

    waiver = assessment.waiver_for(catalog.key, item.id)
    if waiver and waiver_active(waiver, today):
        verdict = NOT_APPLICABLE
        results.append(CheckResult("waiver", "waiver", False, NOT_APPLICABLE,
                                   f"豁免：{waiver['justification']}（批准人 {waiver['approver']}，有效期至 {waiver['expires']}）"))
        deciding = [len(results) - 1]
    else:
        if waiver:
            results.append(CheckResult("waiver", "waiver", False, MANUAL,
                                       f"豁免已于 {waiver['expires']} 过期（批准人 {waiver['approver']}），不再生效。"))
        verdict = combine([r.verdict for r in results]) if results else MANUAL
        stale = [i for i, r in enumerate(results) if r.stale and r.verdict == COMPLIANT]
        if verdict == COMPLIANT and stale:
            # old evidence cannot show compliance today; a failure found on it still stands
            verdict = MANUAL
            open_prompts.append("判定所依据的证据已过期，请重新采集（govctl comply collect）后再判定。")
        if verdict == MANUAL and stale and not any(r.verdict == MANUAL for r in results):
            deciding = stale
        elif verdict in (PARTIAL, NON_COMPLIANT):
            deciding = [i for i, r in enumerate(results) if r.verdict in (PARTIAL, NON_COMPLIANT)]
        elif verdict == MANUAL:
            deciding = [i for i, r in enumerate(results) if r.verdict == MANUAL]
        else:
            deciding = list(range(len(results)))
    high_risk = bool(item.high_risk) and verdict == NON_COMPLIANT
    return ItemResult(item, catalog.area(item.area)["title"], automation(item), verdict, results, deciding,
                      open_prompts, waiver, high_risk)


def _weight(item: Item) -> int:
    return WEIGHTS[item.importance if item.obligation is None else item.obligation]


def estimate(results: list[ItemResult]) -> dict:
    scored = [r for r in results if r.item.obligation != "可"]
    decided = [r for r in scored if r.verdict in VALUES]
    manual = [r for r in scored if r.verdict == MANUAL]
    total = sum(_weight(r.item) for r in decided)
    earned = sum(_weight(r.item) * VALUES[r.verdict] for r in decided)
    span = total + sum(_weight(r.item) for r in manual)
    score = round(100 * earned / total, 1) if total else None
    low = round(100 * earned / span, 1) if span else None
    high = round(100 * (earned + span - total) / span, 1) if span else None
    high_risk = sum(r.high_risk for r in results)
    if score is None:
        band = None
    elif high_risk:
        band = "差"
    else:
        band = "优" if score >= 90 else "良" if score >= 80 else "中" if score >= 70 else "差"
    return {"label": ESTIMATE_LABEL, "method": ESTIMATE_METHOD, "score": score, "range": [low, high],
            "band": band, "decided_items": len(decided), "manual_items": len(manual), "high_risk_findings": high_risk}


def evaluate(catalog: Catalog, evidence: Evidence, assessment: Assessment, today: dt.date | None = None,
             freshness: Limits | None = None) -> dict:
    """The whole assessment as one JSON-ready document (what every report format renders). With
    `freshness`, each evidence layer's age is judged against its limit (freshness.py)."""
    problems = [p for i in catalog.items for p in _unrunnable(i.id, i.checks)]
    if problems:
        raise CatalogError(f"{catalog.source or catalog.key}: " + "; ".join(problems))
    ages = layer_ages(evidence.layers, freshness, today) if freshness else {}
    items = [evaluate_item(i, catalog, evidence, assessment, today, ages) for i in catalog.items]
    counts = {v: sum(r.verdict == v for r in items) for v in VERDICT_EN}
    per_area = []
    for area in catalog.areas:
        rows = [r for r in items if r.item.area == area["key"]]
        if rows:
            per_area.append({"key": area["key"], "clause": area["clause"], "title": area["title"],
                             "counts": {v: sum(r.verdict == v for r in rows) for v in VERDICT_EN}})
    findings = [{"id": r.item.id, "clause": r.item.clause, "control": r.item.control, "verdict": r.verdict,
                 "high_risk": r.high_risk, "condition": r.item.high_risk,
                 "problems": [results.detail for k, results in enumerate(r.results) if k in r.deciding],
                 "remediation": [x.remediation for x in r.results if x.remediation and x.verdict in (NON_COMPLIANT, PARTIAL)]}
                for r in items if r.verdict in (NON_COMPLIANT, PARTIAL)]
    findings.sort(key=lambda f: (not f["high_risk"], f["verdict"] != NON_COMPLIANT, f["id"]))
    return {
        "format": "govctl-compliance-report", "version": 1,
        "standard": catalog.standard, "key": catalog.key, "title": catalog.title, "level": catalog.level,
        "generated": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "system": assessment.system, "assessment_file": str(assessment.source) if assessment.source else None,
        "evidence": {name: {"status": doc.get("status"), "collected": doc.get("collected"), "source": doc.get("source"),
                            "prompt": doc.get("prompt"), **ages.get(name, {})}
                     for name, doc in sorted(evidence.layers.items())},
        "stale_layers": sorted(name for name, age in ages.items() if age["stale"]),
        "excluded": list(catalog.excluded),
        "counts": counts, "areas": per_area, "estimate": estimate(items),
        "findings": findings, "items": [r.as_dict() for r in items],
    }
