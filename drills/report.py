"""Drill reports: JSON for tools, bilingual HTML for auditors, Prometheus metrics, and the
GB/T 20988 capability level the measured RPO and RTO demonstrate."""
from __future__ import annotations

import html
import json
import time
from pathlib import Path

from core import yamlfile

LEVELS = Path(__file__).with_name("gbt20988.yaml")


def capability_level(measured: dict) -> dict | None:
    """The highest GB/T 20988 level whose RPO and RTO limits the drill met."""
    rto, rpo = measured.get("rto_seconds"), measured.get("rpo_seconds")
    if rto is None or rpo is None:
        return None
    for level in yamlfile.load(LEVELS)["levels"]:
        if rpo <= level["rpo_seconds"] and rto <= level["rto_seconds"]:
            return level
    return None


def finish(result: dict) -> dict:
    """Add the derived parts of the report to a runner result."""
    if "measured" in result:
        result["gbt20988"] = capability_level(result["measured"])
    return result


def metrics(result: dict) -> str:
    """Prometheus exposition text of one drill (govctl_drill_*), labelled by scenario."""
    label = f'scenario="{result["scenario"]}"'
    measured = result.get("measured", {})
    lines = []
    for name, key, help_text in (
            ("govctl_drill_rto_seconds", "rto_seconds", "Measured recovery time of the last drill"),
            ("govctl_drill_rpo_transactions", "rpo_transactions", "Acknowledged writes lost in the last drill"),
            ("govctl_drill_rpo_seconds", "rpo_seconds", "Seconds of acknowledged writes lost in the last drill"),
            ("govctl_drill_detection_seconds", "detection_seconds", "Time to the first page alert")):
        if measured.get(key) is not None:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge",
                      f"{name}{{{label}}} {measured[key]}"]
    lines += ["# HELP govctl_drill_success 1 when the last drill met its targets",
              "# TYPE govctl_drill_success gauge",
              f"govctl_drill_success{{{label}}} {1 if result.get('verdict') == 'pass' else 0}",
              "# HELP govctl_drill_last_run_timestamp_seconds When the last drill ended",
              "# TYPE govctl_drill_last_run_timestamp_seconds gauge",
              f"govctl_drill_last_run_timestamp_seconds{{{label}}} {result.get('ended', time.time()):.0f}"]
    return "\n".join(lines) + "\n"


def _fmt(value, unit="") -> str:
    return "—" if value is None else f"{value}{unit}"


def to_html(result: dict) -> str:
    e = html.escape
    name = result["name"]
    measured = result.get("measured", {})
    targets = result.get("targets", {})
    level = result.get("gbt20988")
    start = result.get("started", 0)
    rows = "".join(
        f"<tr><td>{e(s['phase'])}</td><td>{e(s['action'])}</td>"
        f"<td>{e(time.strftime('%H:%M:%S', time.localtime(s['started'])))}"
        f" (+{s['started'] - start:.1f} s)</td><td>{s.get('seconds', 0):.2f}</td>"
        f"<td>{'✔' if s.get('ok') else '✘'}</td><td>{e(str(s.get('detail', '')))}</td></tr>"
        for s in result.get("steps", []))
    figures = "".join(
        f"<tr><td>{zh} {en}</td><td>{_fmt(measured.get(key))}</td><td>{_fmt(targets.get(key))}</td></tr>"
        for key, zh, en in (("rto_seconds", "恢复时间目标 RTO", "(s)"),
                            ("rpo_transactions", "数据丢失 RPO", "(transactions)"),
                            ("rpo_seconds", "数据丢失 RPO", "(s)"),
                            ("detection_seconds", "发现时间", "detection (s)")))
    anomalies = "".join(f"<li>{e(a)}</li>" for a in result.get("anomalies", [])) or "<li>无 none</li>"
    blocked = result.get("blocked_by") or []
    blocked_html = ("<h3>预检阻塞项 Preflight blocked by</h3><p>" + e(result.get("reason", "")) + "</p><ul>"
                    + "".join(f"<li>{e(b['description'])}</li>" for b in blocked) + "</ul>") if blocked else ""
    level_text = (f"第{level['level']}级 {e(level['zh'])} / level {level['level']}, {e(level['en'])}"
                  if level else "未能评定 not demonstrated")
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>灾备演练报告 DR drill report — {e(name['zh'])}</title>
<style>body{{font-family:"Noto Sans CJK SC",sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #999;padding:4px 8px;vertical-align:top}}</style></head><body>
<h1>灾备演练报告 Disaster-recovery drill report</h1>
<h2>{e(name['zh'])}<br>{e(name['en'])}</h2>
<p>场景 scenario: <code>{e(result['scenario'])}</code> · 运行 run {e(result['run_id'])} ·
结论 verdict: <strong>{e(result['verdict'])}</strong></p>
<h3>测量结果 Measured against targets</h3>
<table><tr><th>指标 measure</th><th>实测 measured</th><th>目标 target</th></tr>{figures}</table>
<p>GB/T 20988 灾难恢复能力等级 capability level demonstrated: {level_text}</p>
<p>验证 verification: {e(json.dumps(result.get('verification', {}), ensure_ascii=False))}</p>
<p>{e(result.get('detection_note') or '')}</p>
<h3>时间线 Timeline</h3>
<table><tr><th>阶段 phase</th><th>动作 action</th><th>时间 time</th><th>耗时 s</th><th></th><th>说明 detail</th></tr>{rows}</table>
{blocked_html}
<h3>异常 Anomalies</h3><ul>{anomalies}</ul>
</body></html>
"""


REPORT_KEY = "drill-reports"


def sign(result: dict) -> dict:
    """SM2-sign the report with the keystore's drill-reports key when the keystore can be unlocked
    (GOVCTL_CRYPTO_* in the environment); otherwise say why it is unsigned."""
    try:
        from crypto.audit import open_keystore
        from crypto.signing import sign_document

        keystore = open_keystore()
        keystore.ensure_key(REPORT_KEY, "signing")
        return sign_document(keystore, REPORT_KEY, result)
    except Exception as exc:  # noqa: BLE001 - an unsigned report is still a report
        return result | {"unsigned": f"not signed: {type(exc).__name__}: {exc}"}


def write_reports(result: dict, path: Path) -> list[Path]:
    """JSON at path (or path.json) and HTML beside it; returns the files written."""
    path = Path(path)
    json_path = path if path.suffix == ".json" else path.with_suffix(".json")
    html_path = json_path.with_suffix(".html")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, ensure_ascii=False, indent=2))
    html_path.write_text(to_html(result), encoding="utf-8")
    return [json_path, html_path]
