"""The incident report for the emergency-command records (应急指挥记录): JSON for tools, a Chinese PDF for
the file. Timeline (alerts, state changes, notes, blocks), evidence, actions, response-plan checklist and
SLA figures of one incident, as `Incidents.show` gives them.

The PDF is made the way the compliance reports make theirs (policies/compliance/render.py): a Jinja2
template rendered to HTML, printed by WeasyPrint with Debian's Noto CJK fonts. secops sits below
policies in the layers, so it calls WeasyPrint itself rather than importing that module.
"""
from __future__ import annotations

import json
from pathlib import Path

from core.errors import GovctlError

HERE = Path(__file__).parent / "templates"
TITLE = {"zh": "网络安全事件处置报告", "en": "Security incident report"}
TARGET_NAMES = {"acknowledge": "确认 acknowledge", "contain": "遏制 contain", "resolve": "解决 resolve"}
STATUS_NAMES = {"met": "达标 met", "breached": "超时 breached", "pending": "进行中 pending"}


def build(incident: dict, generated: str, author: str) -> dict:
    """The report document: the incident's detail plus a timeline sorted by time."""
    timeline = [{"time": a["first"], "kind": "alert", "who": "govctl",
                 "text": f"{a['title'] or a['rule']} ({a['rule']}, {a['level']}) ×{a['count']} until {a['last']}"}
                for a in incident["alerts"]]
    timeline += [{"time": n["time"], "kind": n["kind"], "who": n["author"], "text": n["text"]}
                 for n in incident["notes"]]
    timeline += [{"time": d["time"], "kind": d["action"], "who": d["actor"],
                  "text": f"{d['action']} {d['address']} until {d['until'] or '—'}: {d['reason']}"}
                 for d in incident["decisions"]]
    timeline.sort(key=lambda e: e["time"])
    actions = [e for e in timeline if e["kind"] != "alert"]
    return {"title": TITLE, "generated": generated, "generated_by": author, "incident": {
        k: incident[k] for k in ("id", "title", "severity", "state", "assignee", "entity", "created", "first",
                                 "last", "merged_into")},
            "sla": incident["sla"], "checklist": incident["checklist"], "observables": incident["observables"],
            "timeline": timeline, "actions": actions,
            "evidence": [{"alert": a["id"], "rule": a["rule"], "lines": a["evidence"]} for a in incident["alerts"]]}


def to_json(report: dict) -> bytes:
    return (json.dumps(report, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def to_html(report: dict) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE), autoescape=True, trim_blocks=True,
                             lstrip_blocks=True)
    return env.get_template("incident_report.html.j2").render(
        r=report, targets=TARGET_NAMES, statuses=STATUS_NAMES)


def to_pdf(report: dict) -> bytes:
    try:
        import weasyprint
    except ImportError as exc:
        raise GovctlError(f"PDF output needs WeasyPrint ({exc}); run `make setup`, which installs it with "
                          "Pango and the Noto CJK fonts") from None
    return weasyprint.HTML(string=to_html(report), base_url=str(HERE)).write_pdf()
