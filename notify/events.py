"""What is notified: one `Event` shape for security incidents, availability pages and anything else
(an SLA breach), and its text — Chinese first, English beside it."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from core.errors import BadInput

from .config import SEVERITIES

KIND = re.compile(r"^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*$")
ROLES = ("ops", "security", "auditor")
SEVERITY_ZH = {"informational": "信息", "low": "低危", "medium": "中危", "high": "高危", "critical": "严重"}
STATE_ZH = {"new": "新建", "acknowledged": "已确认", "contained": "已遏制", "resolved": "已解决",
            "false-positive": "误报", "firing": "告警中"}
KIND_TEXT = {  # kind → (中文, English)
    "incident.new": ("新安全事件", "New security incident"),
    "incident.state": ("安全事件状态变更", "Incident state changed"),
    "incident.escalated": ("安全事件升级", "Incident escalated"),
    "availability.firing": ("可用性告警", "Availability page"),
    "availability.resolved": ("可用性告警恢复", "Availability page resolved"),
    "sla.breach": ("处置时限超期", "SLA breached"),
    "test": ("通知测试", "Notification test"),
}
_LIMITS = {"title": 300, "summary": 2000, "key": 300, "link": 2000, "center": 100}


@dataclass
class Event:
    kind: str
    title: str
    severity: str = "medium"
    summary: str = ""
    tags: tuple[str, ...] = ()
    center: str | None = None
    state: str | None = None
    roles: tuple[str, ...] = ("security",)
    key: str = ""  # the de-duplication key: the same key within the window is sent once per channel
    link: str | None = None
    time: float = field(default_factory=time.time)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "title": self.title, "severity": self.severity, "summary": self.summary,
                "tags": list(self.tags), "center": self.center, "state": self.state, "roles": list(self.roles),
                "key": self.key, "link": self.link, "time": self.time}


def event_from(kind: str, payload: dict) -> Event:
    """An Event from an untrusted payload (send_event's callers, the HTTP receiver): BadInput naming the field."""
    if not isinstance(kind, str) or not KIND.match(kind) or len(kind) > 100:
        raise BadInput(f"event kind {kind!r}: use dotted lower-case words such as sla.breach or incident.new")
    if not isinstance(payload, dict):
        raise BadInput("event payload: give a JSON object with at least `title`")
    unknown = set(payload) - {"title", "severity", "summary", "tags", "center", "state", "roles", "key", "link", "time"}
    if unknown:
        raise BadInput(f"event payload: unknown field(s) {', '.join(sorted(unknown))}; allowed: title, severity, "
                       "summary, tags, center, state, roles, key, link, time")
    for name, bound in _LIMITS.items():
        value = payload.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > bound):
            raise BadInput(f"event payload: `{name}` must be text of at most {bound} characters")
    if not payload.get("title", "").strip():
        raise BadInput("event payload: `title` is required (a short text naming what happened)")
    severity = payload.get("severity", "medium")
    if severity not in SEVERITIES:
        raise BadInput(f"event payload: severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    tags = payload.get("tags", [])
    roles = payload.get("roles", ["security"])
    if not isinstance(tags, list) or len(tags) > 50 or not all(isinstance(t, str) and 0 < len(t) <= 200 for t in tags):
        raise BadInput("event payload: `tags` must be a list of at most 50 short texts")
    if not isinstance(roles, list) or not roles or not all(r in ROLES for r in roles):
        raise BadInput(f"event payload: `roles` must be a non-empty list of {', '.join(ROLES)}")
    stamp = payload.get("time", time.time())
    if not isinstance(stamp, (int, float)) or isinstance(stamp, bool) or not 0 < stamp < 32503680000:
        raise BadInput("event payload: `time` must be epoch seconds")
    return Event(kind, payload["title"].strip(), severity, payload.get("summary", ""), tuple(tags),
                 payload.get("center"), payload.get("state"), tuple(roles),
                 payload.get("key") or f"{kind}:{payload['title'].strip()}", payload.get("link"), float(stamp))


def subject(event: Event) -> str:
    zh, en = KIND_TEXT.get(event.kind, (event.kind, event.kind))
    return f"[govctl][{SEVERITY_ZH.get(event.severity, event.severity)}] {zh}：{event.title} | {en} ({event.severity})"


def body(event: Event, zone) -> str:
    """Plain text: the Chinese block, then the English one."""
    from datetime import datetime
    when = datetime.fromtimestamp(event.time, zone).strftime("%Y-%m-%d %H:%M:%S %Z")
    zh, en = KIND_TEXT.get(event.kind, (event.kind, event.kind))
    lines = [f"{zh}：{event.title}", f"级别：{SEVERITY_ZH.get(event.severity, event.severity)}", f"时间：{when}"]
    if event.state:
        lines.append(f"状态：{STATE_ZH.get(event.state, event.state)}")
    if event.center:
        lines.append(f"中心：{event.center}")
    if event.tags:
        lines.append(f"标签：{', '.join(event.tags)}")
    if event.summary:
        lines.append(f"详情：{event.summary}")
    if event.link:
        lines.append(f"链接：{event.link}")
    lines += ["", f"{en}: {event.title}", f"Severity: {event.severity}", f"Time: {when}"]
    if event.state:
        lines.append(f"State: {event.state}")
    if event.center:
        lines.append(f"Center: {event.center}")
    if event.link:
        lines.append(f"Link: {event.link}")
    return "\n".join(lines)


def digest_subject(count: int, reason: str) -> str:
    if reason == "quiet":
        return f"[govctl] 静默时段内的 {count} 条通知汇总 | Digest of {count} notifications held during quiet hours"
    return f"[govctl] 通知过多，{count} 条已合并 | Digest: {count} more notifications (rate limit reached)"


def digest_body(rows: list[dict], reason: str, shown: int = 20) -> str:
    lead = ("以下通知在静默时段内未逐条发送：" if reason == "quiet" else "以下通知超过了本渠道的发送频率上限，合并为本摘要：")
    english = ("These notifications were held during quiet hours:" if reason == "quiet"
               else "These notifications exceeded the channel's rate limit and are summarised here:")
    lines = [f"{lead}（共 {len(rows)} 条）"]
    lines += [f"- {r['subject']}" for r in rows[:shown]]
    if len(rows) > shown:
        lines.append(f"……另有 {len(rows) - shown} 条，见 `govctl notify log` / 控制台")
    lines += ["", f"{english} ({len(rows)} in all; `govctl notify log` lists every one)"]
    return "\n".join(lines)
