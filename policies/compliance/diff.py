"""Compare two compliance assessments over time: `govctl comply diff A B`.

A and B are report JSON files (`govctl comply report --format json`) or signed evidence packs
(`govctl comply pack`), which are verified before anything is read from them. The difference, per
standard and level present on both sides: items whose verdict changed (worse, better or otherwise),
new and resolved high-risk findings, items whose deciding evidence changed, and the estimated
score's movement.
"""
from __future__ import annotations

import json
from pathlib import Path

from core.errors import BadInput, GovctlError

from . import COMPLIANT, NON_COMPLIANT, PARTIAL

REPORT_FORMAT = "govctl-compliance-report"
# the order of the decided verdicts; 需人工核查 and 不适用 are not on this scale
RANK = {NON_COMPLIANT: 0, PARTIAL: 1, COMPLIANT: 2}


def _read_report(path: Path, name: str) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{name} {path}: cannot read it ({exc}); give a report JSON file or a pack directory") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"{name} {path}: not JSON (line {exc.lineno}: {exc.msg}); give a report written by "
                       "`govctl comply report --format json`") from None
    if not isinstance(doc, dict) or doc.get("format") != REPORT_FORMAT or not isinstance(doc.get("items"), list):
        raise BadInput(f"{name} {path}: not a govctl compliance report (no \"format\": \"{REPORT_FORMAT}\"); "
                       "write one with `govctl comply report --format json`")
    return doc


def load_side(path: Path, name: str, trusted: list | None = None, key: str = "evidence") -> dict:
    """One side of the comparison: {"source", "kind", "signer", "reports": {(key, level): report}}.
    A pack is verified first (PackInvalid names each changed, missing or added file)."""
    from . import pack as packs

    path = Path(path)
    if path.is_dir():
        try:
            verified = packs.verify(path, trusted, key)
        except packs.PackInvalid as invalid:
            raise packs.PackInvalid(f"{name}: {invalid}", invalid.report) from None
        except GovctlError as exc:  # not a pack at all (no manifest, unreadable)
            raise BadInput(f"{name} {path}: {exc}") from None
        files = sorted(path.glob("report-*.json"))
        if not files:
            raise BadInput(f"{name} {path}: the pack holds no report-*.json; was it written by `govctl comply pack`?")
        reports = [_read_report(f, name) for f in files]
        kind, signer = "pack", getattr(verified, "signer", None)
    elif path.is_file():
        reports, kind, signer = [_read_report(path, name)], "report", None
    else:
        raise BadInput(f"{name} {path} does not exist; give a report JSON file or a pack directory")
    return {"source": str(path), "kind": kind, "signer": signer,
            "reports": {(r["key"], r["level"]): r for r in reports}}


def _direction(before: str | None, after: str | None) -> str:
    """worse / better on the decided scale; a newly decided failure is worse, a newly decided
    pass better; anything else (e.g. to 需人工核查 or 不适用) is a change."""
    if before in RANK and after in RANK:
        return "worse" if RANK[after] < RANK[before] else "better"
    if after in (NON_COMPLIANT, PARTIAL):
        return "worse"
    return "better" if after == COMPLIANT else "changed"


def _zh(value) -> str:
    return value.get("zh", "") if isinstance(value, dict) else str(value or "")


def _evidence_key(e: dict) -> str:
    return f"{e.get('check')}@{e.get('layer')}"


def compare_reports(a: dict, b: dict) -> dict:
    """The difference between two reports of one standard and level (a older, b newer)."""
    items_a = {i["id"]: i for i in a["items"]}
    items_b = {i["id"]: i for i in b["items"]}
    changes, evidence = [], []
    for item_id, new in items_b.items():
        old = items_a.get(item_id)
        if old is None:
            continue
        if old["verdict"] != new["verdict"]:
            changes.append({"id": item_id, "clause": new.get("clause"), "control": new.get("control"),
                            "from": old["verdict"], "to": new["verdict"],
                            "direction": _direction(old["verdict"], new["verdict"]),
                            "high_risk": new.get("high_risk", False)})
        before = {_evidence_key(e): e for e in old.get("evidence", [])}
        changed = []
        for e in new.get("evidence", []):
            was = before.pop(_evidence_key(e), None)
            if was is None or (was.get("detail"), was.get("verdict")) != (e.get("detail"), e.get("verdict")):
                changed.append({"check": e.get("check"), "layer": e.get("layer"), "source": e.get("source"),
                                "from": None if was is None else {"verdict": was.get("verdict"),
                                                                  "detail": was.get("detail")},
                                "to": {"verdict": e.get("verdict"), "detail": e.get("detail")}})
        changed += [{"check": e.get("check"), "layer": e.get("layer"), "source": e.get("source"),
                     "from": {"verdict": e.get("verdict"), "detail": e.get("detail")}, "to": None}
                    for e in before.values()]
        if changed:
            evidence.append({"id": item_id, "control": new.get("control"), "verdict": new["verdict"],
                             "changes": changed})
    risky_a = {f["id"] for f in a.get("findings", []) if f.get("high_risk")}
    risky_b = {f["id"]: f for f in b.get("findings", []) if f.get("high_risk")}
    new_high = [{"id": i, "clause": f.get("clause"), "control": f.get("control"), "verdict": f.get("verdict"),
                 "condition": f.get("condition"), "problems": f.get("problems", [])}
                for i, f in sorted(risky_b.items()) if i not in risky_a]
    resolved_high = sorted(risky_a - set(risky_b))
    est_a, est_b = a.get("estimate", {}), b.get("estimate", {})
    score_a, score_b = est_a.get("score"), est_b.get("score")
    return {
        "standard": b.get("standard"), "key": b["key"], "level": b["level"], "title": b.get("title"),
        "from": {"generated": a.get("generated"), "evidence": a.get("evidence")},
        "to": {"generated": b.get("generated"), "evidence": b.get("evidence")},
        "score": {"from": score_a, "to": score_b,
                  "change": round(score_b - score_a, 1) if score_a is not None and score_b is not None else None,
                  "band": {"from": est_a.get("band"), "to": est_b.get("band")},
                  "range": {"from": est_a.get("range"), "to": est_b.get("range")},
                  "high_risk_findings": {"from": est_a.get("high_risk_findings"),
                                         "to": est_b.get("high_risk_findings")}},
        "counts": {v: {"from": a.get("counts", {}).get(v, 0), "to": b.get("counts", {}).get(v, 0)}
                   for v in b.get("counts", {})},
        "verdict_changes": sorted(changes, key=lambda c: ({"worse": 0, "changed": 1, "better": 2}[c["direction"]],
                                                          c["id"])),
        "new_high_risk": new_high,
        "resolved_high_risk": resolved_high,
        "evidence_changes": evidence,
        "items_added": sorted(set(items_b) - set(items_a)),
        "items_removed": sorted(set(items_a) - set(items_b)),
    }


def compare(a: dict, b: dict) -> dict:
    """Two loaded sides → the diff document; the standards and levels both sides hold are compared."""
    common = [k for k in b["reports"] if k in a["reports"]]
    if not common:
        def names(side: dict) -> str:
            return ", ".join(f"{k} L{lv}" for k, lv in side["reports"]) or "none"
        raise BadInput(f"A ({names(a)}) and B ({names(b)}) share no standard and level; compare reports of "
                       "the same standard and level")
    return {
        "format": "govctl-compliance-diff", "version": 1,
        "a": {k: a[k] for k in ("source", "kind", "signer")},
        "b": {k: b[k] for k in ("source", "kind", "signer")},
        "only_in_a": [f"{k} L{lv}" for k, lv in a["reports"] if (k, lv) not in b["reports"]],
        "only_in_b": [f"{k} L{lv}" for k, lv in b["reports"] if (k, lv) not in a["reports"]],
        "reports": [compare_reports(a["reports"][k], b["reports"][k]) for k in common],
    }


DIRECTION_TEXT = {"worse": "变差 worse", "better": "改善 better", "changed": "变化 changed"}


def _signed(x: float | None) -> str:
    return "—" if x is None else f"{x:+.1f}"


def _short(text: str | None, limit: int = 160) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def to_text(diff: dict) -> str:
    """Chinese first, English beside it, for a terminal."""
    lines = [f"A: {diff['a']['source']} ({'已验签证据包 verified pack' if diff['a']['kind'] == 'pack' else '报告 report'})",
             f"B: {diff['b']['source']} ({'已验签证据包 verified pack' if diff['b']['kind'] == 'pack' else '报告 report'})"]
    for label, only in (("仅在 A only in A", diff["only_in_a"]), ("仅在 B only in B", diff["only_in_b"])):
        if only:
            lines.append(f"{label}: {', '.join(only)}")
    for r in diff["reports"]:
        s = r["score"]
        lines += ["", f"== {(r.get('title') or {}).get('zh', r['key'])} {r['key']} L{r['level']}  "
                      f"{r['from']['generated']} → {r['to']['generated']}",
                  f"估算分 Estimated score: {s['from']} → {s['to']} ({_signed(s['change'])})  "
                  f"档次 band: {s['band']['from']} → {s['band']['to']}  "
                  f"高风险项 high-risk: {s['high_risk_findings']['from']} → {s['high_risk_findings']['to']}",
                  "条目数 Items: " + (", ".join(f"{v} {c['from']}→{c['to']}" for v, c in r["counts"].items()
                                                 if c["from"] != c["to"]) or "无变化 unchanged")]
        lines.append(f"结论变化 Verdict changes ({len(r['verdict_changes'])}):")
        lines += [f"  {c['id']:<14} {c['from']} → {c['to']}  {DIRECTION_TEXT[c['direction']]}"
                  f"{'  高风险 HIGH RISK' if c['high_risk'] else ''}  {_short(_zh(c.get('control')), 60)}"
                  for c in r["verdict_changes"]] or ["  无 none"]
        lines.append(f"新增高风险项 New high-risk findings ({len(r['new_high_risk'])}):")
        lines += [f"  {f['id']:<14} {f['verdict']}  {_short(_zh(f.get('condition')), 60)}  "
                  f"{_short('; '.join(f['problems']), 120)}" for f in r["new_high_risk"]] or ["  无 none"]
        if r["resolved_high_risk"]:
            lines.append(f"已消除高风险项 Resolved high-risk findings: {', '.join(r['resolved_high_risk'])}")
        lines.append(f"证据变化 Evidence changed ({len(r['evidence_changes'])} items):")
        for e in r["evidence_changes"]:
            for c in e["changes"]:
                before = c["from"]["detail"] if c["from"] else "（无 none）"
                after = c["to"]["detail"] if c["to"] else "（无 none）"
                lines.append(f"  {e['id']:<14} {c['check']}: {_short(before, 100)}  →  {_short(after, 100)}")
        if r["items_added"] or r["items_removed"]:
            lines.append(f"新增条目 Items added: {', '.join(r['items_added']) or '—'}; "
                         f"移除条目 removed: {', '.join(r['items_removed']) or '—'}")
    return "\n".join(lines) + "\n"
