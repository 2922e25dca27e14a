"""Verdict logic: how checks, manual prompts, attachments and waivers decide an item; the estimate."""
from __future__ import annotations

import datetime as dt

from policies.compliance import COMPLIANT, MANUAL, NON_COMPLIANT, NOT_APPLICABLE, PARTIAL, engine
from policies.compliance.assessment import Assessment
from policies.compliance.catalog import Catalog, Check, Item
from policies.compliance.checks import CHECKS, Evidence, Missing, Outcome, combine

AREAS = ({"key": "a", "clause": "8.1.9", "title": {"zh": "测试层面", "en": "test area"}},)
MANUAL_CHECK = Check("manual", {"zh": "附上记录。", "en": "Attach the record."})


def _item(*checks, high_risk=None, importance="重要", obligation=None, id="T-ITEM-A"):
    return Item(id, "a", {"zh": "控制", "en": "control"}, "8.1.9.1 a)", (3,), {"zh": "要求", "en": "req"},
                tuple(checks), importance, obligation, high_risk)


def _catalog(*items):
    return Catalog("djcp", "GB/T 22239-2019", {"zh": "t", "en": "t"}, 3, "importance", AREAS, items, ())


def _register(name, outcome):
    def fn(ev):
        if isinstance(outcome, Missing):
            raise outcome
        return outcome
    CHECKS[name] = fn
    return Check(name)


PASS = _register("test.pass", Outcome(COMPLIANT, "一切正常", None, "t.json"))
FAIL = _register("test.fail", Outcome(NON_COMPLIANT, "端口开放", "关闭端口", "t.json"))
HALF = _register("test.half", Outcome(PARTIAL, "部分主机", "修复其余主机", "t.json"))
NONE = _register("test.na", Outcome(NOT_APPLICABLE, "无邮件系统", None, "t.json"))
GONE = _register("test.missing", Missing("监控未运行：启动后重试。", "monitor not running"))


def _judge(item, assessment=None, today=None):
    return engine.evaluate_item(item, _catalog(item), Evidence({}), assessment or Assessment(), today)


def test_combine():
    assert combine([COMPLIANT, COMPLIANT]) == COMPLIANT
    assert combine([NON_COMPLIANT, NON_COMPLIANT]) == NON_COMPLIANT
    assert combine([COMPLIANT, NON_COMPLIANT]) == PARTIAL
    assert combine([COMPLIANT, MANUAL]) == MANUAL
    assert combine([NON_COMPLIANT, MANUAL]) == NON_COMPLIANT      # a failure decides despite open questions
    assert combine([PARTIAL, MANUAL]) == PARTIAL
    assert combine([NOT_APPLICABLE, COMPLIANT]) == COMPLIANT
    assert combine([NOT_APPLICABLE]) == NOT_APPLICABLE


def test_all_automated_evidence_passing_is_compliant_with_all_of_it_deciding():
    r = _judge(_item(PASS, PASS))
    assert r.verdict == COMPLIANT and r.deciding == [0, 1] and not r.prompts


def test_failure_decides_and_names_the_evidence_and_remediation():
    r = _judge(_item(PASS, FAIL, MANUAL_CHECK)).as_dict()
    assert r["verdict"] == PARTIAL
    assert [r["evidence"][k]["detail"] for k in r["deciding"]] == ["端口开放"]
    assert r["remediation"] == ["关闭端口"]
    assert _judge(_item(FAIL, MANUAL_CHECK)).verdict == NON_COMPLIANT


def test_open_manual_check_leaves_passing_item_for_a_person_with_the_prompt():
    r = _judge(_item(PASS, MANUAL_CHECK))
    assert r.verdict == MANUAL and r.prompts == ["附上记录。"]


def test_missing_layer_is_manual_with_its_prompt_never_a_crash():
    r = _judge(_item(GONE, PASS))
    assert r.verdict == MANUAL
    assert r.prompts == ["监控未运行：启动后重试。"]


def test_attachment_answers_the_manual_check():
    item = _item(PASS, MANUAL_CHECK)
    ok = Assessment(attachments=[{"standard": "djcp", "item": item.id, "title": "评审记录", "verdict": COMPLIANT,
                                  "assessor": "王工", "date": "2026-11-01"}])
    assert _judge(item, ok).verdict == COMPLIANT
    bad = Assessment(attachments=[dict(ok.attachments[0], verdict=NON_COMPLIANT)])
    assert _judge(item, bad).verdict == PARTIAL


def test_active_waiver_makes_item_not_applicable_and_an_expired_one_does_not():
    item = _item(FAIL)
    waiver = {"standard": "djcp", "item": item.id, "justification": "该系统无无线网络", "approver": "李处长",
              "expires": "2027-06-30"}
    r = _judge(item, Assessment(waivers=[waiver]), today=dt.date(2027, 1, 1))
    assert r.verdict == NOT_APPLICABLE and "李处长" in r.results[r.deciding[0]].detail
    r = _judge(item, Assessment(waivers=[waiver]), today=dt.date(2027, 7, 1))
    assert r.verdict == NON_COMPLIANT and any("过期" in x.detail for x in r.results)


def test_not_applicable_evidence_alone_gives_not_applicable():
    assert _judge(_item(NONE)).verdict == NOT_APPLICABLE
    assert _judge(_item(NONE, PASS)).verdict == COMPLIANT


def test_high_risk_only_when_a_high_risk_item_fails_outright():
    condition = {"zh": "管理端口对互联网开放", "en": "open"}
    assert _judge(_item(FAIL, high_risk=condition)).high_risk
    assert not _judge(_item(FAIL, PASS, high_risk=condition)).high_risk
    assert not _judge(_item(FAIL)).high_risk


def test_estimate_is_a_weighted_mean_with_a_range_and_band():
    items = [_item(PASS, importance="关键", id="T-A"), _item(HALF, importance="重要", id="T-B"),
             _item(FAIL, importance="一般", id="T-C"), _item(MANUAL_CHECK, importance="重要", id="T-D"),
             _item(NONE, importance="关键", id="T-E")]
    results = [engine.evaluate_item(i, _catalog(*items), Evidence({}), Assessment()) for i in items]
    e = engine.estimate(results)
    # (3*1 + 2*0.5 + 1*0) / (3+2+1) = 4/6; range over 8 weight: low 4/8, high (4+2)/8
    assert e["score"] == 66.7 and e["range"] == [50.0, 75.0]
    assert e["band"] == "差" and e["decided_items"] == 3 and e["manual_items"] == 1
    assert "估算" in e["label"]["zh"] and "estimate" in e["label"]["en"]
    assert engine.estimate([results[0]])["band"] == "优"


def test_may_items_are_not_scored():
    items = [_item(FAIL, importance=None, obligation="可", id="T-M"), _item(PASS, importance=None, obligation="应", id="T-S")]
    results = [engine.evaluate_item(i, _catalog(*items), Evidence({}), Assessment()) for i in items]
    assert engine.estimate(results)["score"] == 100.0
