"""Automated checks: each turns one layer's raw evidence into a verdict with the facts that decided
it. The catalogs name these checks; the engine refuses a catalog naming one that is not here.

A check reads only the evidence documents (collect.py writes them; tests use saved ones), so the
same code judges the running lab and the fixtures. A layer that is missing or not collected raises
`Missing` with what to do; the engine turns that into 需人工核查 with the prompt.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
from dataclasses import dataclass
from typing import Callable

from . import COMPLIANT, MANUAL, NON_COMPLIANT, NOT_APPLICABLE, PARTIAL
from .assessment import host_waiver, waiver_active
from .catalog import host_catalog

DJCP_RETENTION_DAYS = 180        # 网络安全法 art. 21: network logs kept at least six months
DRILL_MAX_AGE_DAYS = 365         # a DR drill at least once a year
KEY_MAX_AGE_DAYS = 365           # renew keys at least yearly
STALE_INCIDENT_DAYS = 7          # an open incident older than this is not being handled
MIN_GBT20988_LEVEL = 5           # RPO 0-30 min and RTO within hours: what a level-3 system needs


class Missing(Exception):
    """The evidence this check needs was not collected: (zh, en) say what to do."""

    def __init__(self, zh: str, en: str):
        super().__init__(en)
        self.zh, self.en = zh, en


@dataclass
class Outcome:
    verdict: str
    detail: str                      # the deciding facts (Chinese, with identifiers as they are)
    remediation: str | None = None   # what to change when not compliant
    source: str = ""                 # evidence file and part, e.g. "stack.json#links"


class Evidence:
    """The raw evidence documents, one per layer (stack, firewall, hosts, monitoring, secops,
    crypto, drills), as collect.py writes them."""

    def __init__(self, layers: dict[str, dict], level: int = 3):
        self.layers = layers
        self.level = level

    def data(self, layer: str) -> dict:
        doc = self.layers.get(layer)
        if doc is None:
            raise Missing(f"未采集 {layer} 层证据：运行 `govctl comply collect` 或提供证据目录。",
                          f"no {layer} evidence was collected: run `govctl comply collect` or give an evidence directory")
        if doc.get("status") != "ok":
            prompt = doc.get("prompt") or {}
            raise Missing(prompt.get("zh", f"{layer} 层证据不可用。"), prompt.get("en", f"{layer} evidence unavailable"))
        return doc["data"]

    def part(self, layer: str, key: str) -> dict:
        """A part of a layer that may fail on its own (e.g. monitoring's availability report)."""
        value = self.data(layer).get(key)
        if not isinstance(value, dict) or value.get("error"):
            error = (value or {}).get("error", "not collected") if isinstance(value, dict) else "not collected"
            prompt = (value or {}).get("prompt", {}) if isinstance(value, dict) else {}
            raise Missing(prompt.get("zh", f"{layer}.{key} 不可用：{error}"),
                          prompt.get("en", f"{layer}.{key} unavailable: {error}"))
        return value


CHECKS: dict[str, Callable[[Evidence], Outcome]] = {}


def check(name: str):
    def register(fn):
        CHECKS[name] = fn
        return fn
    return register


def _outcome(ok: bool, source: str, good: str, bad: str, remediation: str) -> Outcome:
    return Outcome(COMPLIANT, good, None, source) if ok else Outcome(NON_COMPLIANT, bad, remediation, source)


def combine(verdicts: list[str]) -> str:
    """Many verdicts of one kind of evidence into one. 不适用 ones do not count. A failure decides
    even when other parts still await a person: nothing passed → 不符合, something passed → 部分符合.
    Without failures, anything awaiting a person leaves it 需人工核查; otherwise 符合."""
    counted = [v for v in verdicts if v != NOT_APPLICABLE]
    if not counted:
        return NOT_APPLICABLE
    if any(v in (PARTIAL, NON_COMPLIANT) for v in counted):
        return NON_COMPLIANT if all(v in (NON_COMPLIANT, MANUAL) for v in counted) else PARTIAL
    return MANUAL if MANUAL in counted else COMPLIANT


# ---------------------------------------------------------------- stack outputs
def _outputs(ev: Evidence) -> dict:
    return ev.data("stack")["outputs"]


def _center_pairs(outputs: dict) -> list[tuple[str, str]]:
    return list(itertools.combinations(sorted(outputs["centers"]), 2))


@check("stack.zones")
def stack_zones(ev: Evidence) -> Outcome:
    out = _outputs(ev)
    needed = {"internet_dmz", "core_business", "security_management"}
    problems, networks = [], []
    for name, center in sorted(out["centers"].items()):
        kinds = {z["kind"] for z in center["zones"].values()}
        if missing := needed - kinds:
            problems.append(f"{name} 缺少区域 {sorted(missing)}")
        for zone, spec in center["zones"].items():
            networks += [(f"{name}/{zone}", ipaddress.ip_network(s)) for s in spec["subnets"]]
    for (a, na), (b, nb) in itertools.combinations(networks, 2):
        if na.version == nb.version and na.overlaps(nb):
            problems.append(f"{a} 与 {b} 地址重叠 ({na}, {nb})")
    zones = sum(len(c["zones"]) for c in out["centers"].values())
    return _outcome(not problems, "stack.json#centers",
                    f"{len(out['centers'])} 个中心共 {zones} 个区域（互联网DMZ/政务外网/核心业务/安全管理），"
                    f"{len(networks)} 个子网互不重叠，IPv4/IPv6 双栈。",
                    "；".join(problems), "在拓扑中为每个中心划分 DMZ、核心业务和安全管理区，并分配互不重叠的地址段。")


@check("stack.redundant_links")
def stack_redundant_links(ev: Evidence) -> Outcome:
    out = _outputs(ev)
    roles: dict[tuple[str, str], set[str]] = {}
    for link in out.get("links", {}).values():
        roles.setdefault(tuple(sorted(link["between"])), set()).add(link["role"])
    pairs = _center_pairs(out)
    lacking = [f"{a}–{b}（{'/'.join(sorted(roles.get((a, b), set()))) or '无链路'}）"
               for a, b in pairs if not {"primary", "standby"} <= roles.get((a, b), set())]
    return _outcome(not lacking, "stack.json#links",
                    f"{len(pairs)} 对中心之间均有主、备两条链路（共 {len(out.get('links', {}))} 条）。",
                    "缺少主备双链路：" + "、".join(lacking), "为每对中心增加备用链路（拓扑 links 中 role: standby）。")


def _site(out: dict, center: str) -> str | None:
    return out["centers"].get(center, {}).get("site")


@check("stack.sync_standby")
def stack_sync_standby(ev: Evidence) -> Outcome:
    out = _outputs(ev)
    db = out.get("databases")
    if not db:
        return Outcome(NON_COMPLIANT, "栈输出中没有数据库。", "部署数据库主备（同城同步备库）。", "stack.json#databases")
    primary = db["primary"]
    sync = [s for s in db.get("standbys", []) if s["mode"] == "synchronous"]
    elsewhere = [s for s in sync if s["center"] != primary["center"]]
    if elsewhere:
        s = elsewhere[0]
        return Outcome(COMPLIANT, f"主库 {primary['host']} 有同步热备 {s['host']}（{s['center']} 中心，"
                       f"{'同城' if _site(out, s['center']) == _site(out, primary['center']) else '异地'}）。",
                       None, "stack.json#databases")
    if sync:
        return Outcome(PARTIAL, "同步备库与主库在同一中心，中心级故障时无热冗余。",
                       "把同步备库放到同城灾备中心。", "stack.json#databases")
    return Outcome(NON_COMPLIANT, f"主库 {primary['host']} 没有同步备库。",
                   "增加同城同步备库（synchronous_standby_names）。", "stack.json#databases")


@check("stack.remote_standby")
def stack_remote_standby(ev: Evidence) -> Outcome:
    out = _outputs(ev)
    db = out.get("databases") or {}
    if not db:
        return Outcome(NON_COMPLIANT, "栈输出中没有数据库。", "部署异地备库。", "stack.json#databases")
    home = _site(out, db["primary"]["center"])
    remote = [s for s in db.get("standbys", []) if _site(out, s["center"]) not in (None, home)]
    return _outcome(bool(remote), "stack.json#databases",
                    "异地实时复制：" + "、".join(f"{s['host']}（{s['center']}，{_site(out, s['center'])}，{s['mode']}）" for s in remote),
                    f"主库所在站点 {home} 之外没有备库。", "在异地灾备中心部署流复制备库。")


@check("stack.boundary_firewalls")
def stack_boundary_firewalls(ev: Evidence) -> Outcome:
    out = _outputs(ev)
    without = [n for n, c in sorted(out["centers"].items()) if not c.get("firewall")]
    return _outcome(not without, "stack.json#centers.*.firewall",
                    "每个中心都有边界防火墙：" + "、".join(
                        f"{n}（{c['firewall'].get('family')} {c['firewall'].get('table')}）"
                        for n, c in sorted(out["centers"].items()) if c.get("firewall")) + "。",
                    "无边界防火墙的中心：" + "、".join(without), "为每个中心部署边界防火墙。")


@check("stack.allowlist")
def stack_allowlist(ev: Evidence) -> Outcome:
    out = _outputs(ev)
    allow = [ipaddress.ip_network(c) for c in out.get("allowlist", [])]
    mgmt = [ipaddress.ip_network(s) for c in out["centers"].values() for z in c["zones"].values()
            if z["kind"] == "security_management" for s in z["subnets"]]
    if not allow:
        return Outcome(NON_COMPLIANT, "未限定管理终端的地址范围（allowlist 为空）。",
                       "在栈输出 allowlist 中列出安全管理区网段。", "stack.json#allowlist")
    outside = [str(a) for a in allow if not any(a.version == m.version and a.subnet_of(m) for m in mgmt)]
    return _outcome(not outside, "stack.json#allowlist",
                    f"管理终端限定在安全管理区：{', '.join(map(str, allow))}。",
                    f"管理地址范围超出安全管理区：{', '.join(outside)}。", "把管理地址范围收窄到安全管理区网段。")


@check("stack.management_zone")
def stack_management_zone(ev: Evidence) -> Outcome:
    out = _outputs(ev)
    without = [n for n, c in sorted(out["centers"].items())
               if not any(z["kind"] == "security_management" for z in c["zones"].values())]
    bastions = [h["fqdn"] for h in out.get("hosts", []) if h.get("zone_kind") == "security_management"]
    return _outcome(not without, "stack.json#centers,hosts",
                    f"每个中心都有安全管理区；管理区主机：{', '.join(bastions) or '无'}。",
                    "无安全管理区的中心：" + "、".join(without), "为每个中心划分安全管理区并部署堡垒机。")


@check("stack.transport_encryption")
def stack_transport_encryption(ev: Evidence) -> Outcome:
    out = _outputs(ev)
    urls = {"service": (out.get("service") or {}).get("url")}
    urls |= {f"web.{c}": w.get("url") for c, w in (out.get("web") or {}).items()}
    urls = {k: v for k, v in urls.items() if v}
    if not urls:
        return Outcome(NON_COMPLIANT, "栈输出中没有服务地址，无法确认传输加密。",
                       "在栈输出中导出服务 URL。", "stack.json#service,web")
    clear = sorted(f"{k}={v}" for k, v in urls.items() if not v.startswith("https://"))
    return _outcome(not clear, "stack.json#service,web",
                    f"全部 {len(urls)} 个服务地址使用 HTTPS。",
                    f"{len(clear)}/{len(urls)} 个服务地址为明文 HTTP：{'; '.join(clear)}。",
                    "在服务入口启用 TLS（国密 SM2/SM3/SM4 套件或 TLCP），关闭明文端口。")


@check("stack.level")
def stack_level(ev: Evidence) -> Outcome:
    level = _outputs(ev).get("level")
    if level is None:
        raise Missing("栈输出未声明云平台的保护等级（level）。", "the stack outputs declare no protection level")
    return _outcome(int(level) >= ev.level, "stack.json#level",
                    f"云平台按第 {level} 级建设，不低于被测系统的第 {ev.level} 级。",
                    f"云平台按第 {level} 级建设，低于被测系统的第 {ev.level} 级。",
                    "把该系统迁到等级不低于其自身的云平台。")


@check("stack.topology_policy")
def stack_topology_policy(ev: Evidence) -> Outcome:
    out = _outputs(ev)
    return _outcome(bool(out.get("topology")), "stack.json#topology",
                    f"区域策略以数据定义（拓扑 {out.get('topology')}，{out.get('backend')} 后端渲染为各中心防火墙规则），"
                    "客户改拓扑即可设置策略并随部署迁移。",
                    "栈输出未标明生成它的拓扑。", "用 govctl 拓扑定义区域策略并部署。")


@check("stack.inventory")
def stack_inventory(ev: Evidence) -> Outcome:
    hosts = _outputs(ev).get("hosts", [])
    incomplete = [h.get("name", "?") for h in hosts if not all(h.get(k) for k in ("fqdn", "center", "zone", "roles"))]
    return _outcome(bool(hosts) and not incomplete, "stack.json#hosts",
                    f"资产清单来自栈输出：{len(hosts)} 台主机，均有中心、区域和角色。",
                    f"资产清单不完整：{', '.join(incomplete) or '无主机'}。", "在拓扑中为每台主机登记中心、区域和角色。")


@check("stack.data_location")
def stack_data_location(ev: Evidence) -> Outcome:
    out = _outputs(ev)
    if out.get("backend") == "lab":
        hosts = sorted({h["center"] for h in out.get("hosts", [])})
        return Outcome(COMPLIANT, f"实验环境：数据与备份位于本机的 {len(hosts)} 个中心（{', '.join(hosts)}），"
                       "位置由栈输出 databases 列出。", None, "stack.json#backend,databases")
    regions = out.get("regions") or []
    if not regions:
        raise Missing("栈输出未列出区域（regions），请附上数据与备份存储位置说明。",
                      "the stack outputs list no regions: attach where data and backups are stored")
    foreign = [r for r in regions if not str(r).startswith("cn-") or str(r).startswith("cn-hongkong")]
    return _outcome(not foreign, "stack.json#regions", f"数据所在区域均在境内：{', '.join(regions)}。",
                    f"境外区域：{', '.join(foreign)}。", "把客户数据迁回境内区域。")


# ---------------------------------------------------------------- the CrossGuard pack
def pack_outcome(ev: Evidence, rule_ids: tuple[str, ...]) -> Outcome:
    pack = ev.part("stack", "pack")
    verdicts, lines = [], []
    for rule_id in rule_ids:
        result = pack["results"].get(rule_id)
        if result is None:
            raise Missing(f"策略包结果中没有规则 {rule_id}。", f"the pack results lack rule {rule_id}")
        verdicts.append(COMPLIANT if result["passed"] else NON_COMPLIANT)
        lines.append(f"{rule_id} [{result['clause']}]：" + ("通过" if result["passed"] else "违规 — " + "；".join(result["violations"][:3])))
    verdict = combine(verdicts)
    return Outcome(verdict, "；".join(lines) + f"（事实来源：{pack['source']}）",
                   None if verdict == COMPLIANT else "按 CrossGuard 策略包的违规说明修改栈定义后重新部署。",
                   "stack.json#pack")


# ---------------------------------------------------------------- live firewalls (nftables)
def _rulesets(ev: Evidence) -> dict[str, list[dict]]:
    data = ev.data("firewall")
    broken = {c: v["error"] for c, v in data["centers"].items() if v.get("error")}
    if broken:
        raise Missing(f"无法读取边界防火墙规则：{broken}", f"cannot read the boundary firewalls: {broken}")
    return {c: v["ruleset"] for c, v in data["centers"].items()}


def _objects(ruleset: list[dict], kind: str) -> list[dict]:
    return [o[kind] for o in ruleset if kind in o]


def _forward_rules(ruleset: list[dict]) -> list[dict]:
    chains = {c["name"] for c in _objects(ruleset, "chain") if c.get("hook") == "forward"}
    return [r for r in _objects(ruleset, "rule") if r.get("chain") in chains]


def _verdict_of(rule: dict) -> str | None:
    return next((k for e in rule["expr"] for k in ("accept", "drop", "reject") if k in e), None)


def _matches(rule: dict) -> list[dict]:
    return [e["match"] for e in rule["expr"] if "match" in e]


def _is_ct(rule: dict) -> bool:
    return any("ct" in m.get("left", {}) for m in _matches(rule))


def _is_icmp(rule: dict) -> bool:
    return any(m.get("left", {}).get("payload", {}).get("protocol") in ("icmp", "icmpv6") for m in _matches(rule))


@check("firewall.default_deny")
def firewall_default_deny(ev: Evidence) -> Outcome:
    rulesets = _rulesets(ev)
    bad = []
    for center, ruleset in sorted(rulesets.items()):
        forward = [c for c in _objects(ruleset, "chain") if c.get("hook") == "forward"]
        if not forward or any(c.get("policy") != "drop" for c in forward):
            bad.append(f"{center}（forward 链策略 {[c.get('policy') for c in forward] or '无'}）")
    return _outcome(not bad, "firewall.json#centers.*.ruleset",
                    f"{len(rulesets)} 个中心的边界防火墙 forward 链默认策略均为 drop，仅放行拓扑定义的流量。",
                    "默认未拒绝：" + "、".join(bad), "把边界防火墙 forward 链默认策略设为 drop。")


@check("firewall.five_tuple")
def firewall_five_tuple(ev: Evidence) -> Outcome:
    loose, total = [], 0
    for center, ruleset in sorted(_rulesets(ev).items()):
        for rule in _forward_rules(ruleset):
            if _verdict_of(rule) != "accept" or _is_ct(rule) or _is_icmp(rule):
                continue
            total += 1
            fields = {m.get("left", {}).get("payload", {}).get("field") for m in _matches(rule)}
            if not ({"saddr"} <= fields and "dport" in fields):
                loose.append(f"{center}#{rule.get('handle')}")
    return _outcome(total > 0 and not loose, "firewall.json#centers.*.ruleset",
                    f"{total} 条放行规则都限定了源地址、协议和目的端口（多数还限定目的地址）。",
                    f"{len(loose)}/{total} 条放行规则未限定源地址或目的端口：{', '.join(loose[:10])}" if total else "没有放行规则。",
                    "为每条放行规则写明源/目的地址、协议和端口。")


@check("firewall.stateful")
def firewall_stateful(ev: Evidence) -> Outcome:
    bad = []
    for center, ruleset in sorted(_rulesets(ev).items()):
        states = [(_verdict_of(r), m.get("right")) for r in _forward_rules(ruleset) if _is_ct(r) for m in _matches(r)]
        established = any(v == "accept" and "established" in (s if isinstance(s, list) else [s]) for v, s in states)
        invalid = any(v == "drop" and "invalid" in (s if isinstance(s, list) else [s]) for v, s in states)
        if not (established and invalid):
            bad.append(center)
    return _outcome(not bad, "firewall.json#centers.*.ruleset",
                    "各中心防火墙按连接状态过滤：放行 established/related，丢弃 invalid。",
                    "未按会话状态过滤的中心：" + "、".join(bad), "增加 `ct state established,related accept` 与 `ct state invalid drop`。")


@check("firewall.interception_sets")
def firewall_interception_sets(ev: Evidence) -> Outcome:
    out = _outputs(ev)
    rulesets = _rulesets(ev)
    bad = []
    for center, spec in sorted(out["centers"].items()):
        wanted = set((spec.get("firewall") or {}).get("sets", {}).values())
        ruleset = rulesets.get(center, [])
        timed = {s["name"] for s in _objects(ruleset, "set") if "timeout" in s.get("flags", [])}
        dropping = {m.get("right", "").lstrip("@") for r in _forward_rules(ruleset) if _verdict_of(r) == "drop"
                    for m in _matches(r) if isinstance(m.get("right"), str) and m["right"].startswith("@")}
        if not wanted or not wanted <= timed & dropping:
            bad.append(f"{center}（需 {sorted(wanted)}，有 {sorted(timed & dropping)}）")
    return _outcome(not bad, "firewall.json#centers.*.ruleset",
                    "各中心防火墙有带超时的封禁集合并在 forward 链首先丢弃其中来源，供 SecOps 自动拦截攻击源。",
                    "缺少封禁集合：" + "、".join(bad), "在边界防火墙建立带 timeout 的封禁集合并丢弃其来源。")


@check("firewall.rules_described")
def firewall_rules_described(ev: Evidence) -> Outcome:
    total, bare = 0, []
    for center, ruleset in sorted(_rulesets(ev).items()):
        for rule in _forward_rules(ruleset):
            if _verdict_of(rule) == "accept" and not _is_ct(rule) and not _is_icmp(rule):
                total += 1
                if not rule.get("comment"):
                    bare.append(f"{center}#{rule.get('handle')}")
    return _outcome(total > 0 and not bare, "firewall.json#centers.*.ruleset",
                    f"{total} 条放行规则均由拓扑的流量定义生成并注明来源（comment），无手工规则。",
                    f"{len(bare)} 条放行规则没有来源说明：{', '.join(bare[:10])}" if total else "没有放行规则。",
                    "删除无来源的手工规则，规则统一由拓扑生成。")


@check("firewall.logging")
def firewall_logging(ev: Evidence) -> Outcome:
    logged, counted = [], []
    for center, ruleset in sorted(_rulesets(ev).items()):
        exprs = [e for r in _forward_rules(ruleset) for e in r["expr"]]
        if any("log" in e for e in exprs):
            logged.append(center)
        elif any("counter" in e for e in exprs):
            counted.append(center)
    if logged and not counted:
        return Outcome(COMPLIANT, f"边界防火墙记录日志：{', '.join(logged)}。", None, "firewall.json")
    if counted:
        return Outcome(PARTIAL, f"边界防火墙只计数、不记录被拒绝的连接：{', '.join(counted)}；"
                       "边界审计依赖 SecOps 采集的主机与应用日志。",
                       "在默认拒绝前加 `log prefix \"govctl-deny \"` 并把日志送 SecOps。", "firewall.json")
    return Outcome(NON_COMPLIANT, "边界防火墙既不记录也不计数。", "为拒绝规则启用日志。", "firewall.json")


# ---------------------------------------------------------------- hosts (govctl audit)
def host_verdicts(audit: dict) -> dict[str, dict[str, dict]]:
    """{host: {item id: verdict dict}} from `govctl audit --json` output. Accepted shapes:
    {"hosts": {host: {"items": [...]}}}, {"hosts": [{"host": h, "items": [...]}]}, {host: [...]}."""
    hosts = audit.get("hosts", audit)
    if isinstance(hosts, list):
        hosts = {h.get("host") or h.get("fqdn") or h.get("name"): h for h in hosts}
    result = {}
    for host, entry in hosts.items():
        items = entry.get("items", entry.get("verdicts", [])) if isinstance(entry, dict) else entry
        if isinstance(items, list):
            result[host] = {i["id"]: i for i in items if isinstance(i, dict) and "id" in i and "verdict" in i}
    return result


def host_outcome(ev: Evidence, ids: tuple[str, ...], waivers: list[dict] | None = None,
                 today: dt.date | None = None) -> Outcome:
    """The host audit's verdicts of `ids` over every host. A host item waived on a host (an active
    waiver of standard `host` in the assessment file) is 不适用 there and named with its justification;
    an expired waiver is named and the host's verdict counts again."""
    catalog = host_catalog()
    if catalog is None:
        raise Missing("主机加固目录（playbooks/catalog/host-controls.yaml）尚未安装。",
                      "the host-hardening catalog is not installed")
    audit = ev.data("hosts")["audit"]
    per_host = host_verdicts(audit)
    hosts = audit.get("hosts") if isinstance(audit.get("hosts"), dict) else {}
    unaudited = {h: e.get("message") or e.get("status") for h, e in hosts.items()
                 if isinstance(e, dict) and e.get("status") not in (None, "ok")}
    if not any(per_host.values()):
        raise Missing(f"主机核查没有结果（{unaudited or '无主机'}）：修复连接后重新核查，或附上主机核查记录。",
                      f"the host audit has no results ({unaudited or 'no hosts'})")
    verdicts, lines, prompts = [], [], []
    for item in ids:
        found = {h: v[item]["verdict"] for h, v in sorted(per_host.items()) if item in v}
        if not found:
            raise Missing(f"主机核查结果中没有 {item}。", f"the host audit has no result for {item}")
        waived, expired = {}, {}
        for h in list(found):
            w = host_waiver(waivers or [], item, h)
            if w and waiver_active(w, today):
                waived[h], found[h] = w, NOT_APPLICABLE
            elif w:
                expired[h] = w
        intent_details = []  # a manual host item decided from the declared intent (issue 19)
        for h in [h for h, v in found.items() if v == MANUAL]:
            judged = judge_by_intent(ev, item, h, (hosts.get(h) or {}).get("roles") or [], per_host[h])
            if judged:
                found[h] = judged[0]
                intent_details.append(judged[1])
        verdict = combine(list(found.values()))
        verdicts.append(verdict)
        failing = [h for h, v in found.items() if v in (NON_COMPLIANT, PARTIAL)]
        lines.append(f"{item}：{verdict}（{len(found)} 台" + (f"，未通过 {', '.join(failing)}" if failing else "") + "）")
        if intent_details:
            lines.append(f"{item} 与预期比对：" + "；".join(intent_details))
        for w in {id(w): w for w in waived.values()}.values():
            hosts_of = [h for h, x in waived.items() if x is w]
            lines.append(f"{item} 已豁免（{', '.join(hosts_of)}）：{w['justification']}（批准人 {w['approver']}，有效期至 {w['expires']}）")
        for w in {id(w): w for w in expired.values()}.values():
            hosts_of = [h for h, x in expired.items() if x is w]
            lines.append(f"{item} 的豁免已于 {w['expires']} 过期（{', '.join(hosts_of)}，批准人 {w['approver']}），重新计入")
        if verdict == MANUAL:
            hint = INTENT_HINT.get(item) if _intent(ev) is None else None
            prompts.append(f"{item}：{catalog[item].get('auditor') or catalog[item]['check']}" + (f"（或{hint}）" if hint else ""))
    if unaudited:  # a host the audit could not reach leaves the item open unless a failure decides it
        verdicts.append(MANUAL)
        lines.append(f"未能核查的主机：{', '.join(f'{h}（{m}）' for h, m in sorted(unaudited.items()))}")
        prompts.append("修复连接后重新核查这些主机，或附上其核查记录")
    verdict = combine(verdicts)
    remediation = None
    if verdict in (NON_COMPLIANT, PARTIAL):
        remediation = "；".join(f"{i}：{catalog[i]['remediation']}" for i, v in zip(ids, verdicts)
                               if v in (NON_COMPLIANT, PARTIAL)) + "（`govctl harden` 可自动修复的项目）"
    detail = "；".join(lines) + (("。人工核查：" + "；".join(prompts)) if prompts else "")
    return Outcome(verdict, detail, remediation, "hosts.json#audit")


# ---------------------------------------------------------------- monitoring
@check("monitor.running")
def monitor_running(ev: Evidence) -> Outcome:
    status = ev.part("monitoring", "status")
    processes = status.get("processes") or {}
    targets = status.get("targets") or []
    if not processes:
        raise Missing("监控平台未运行：执行 `govctl monitor up --targets FILE` 后重新生成报告，或附上其他集中监控平台的截图。",
                      "the monitoring platform is not running: `govctl monitor up`, then report again, or attach another platform's evidence")
    down = [n for n, p in processes.items() if not (p.get("running") if isinstance(p, dict) else p)]
    up = [t for t in targets if t.get("health") == "up"]
    ok = not down and targets and len(up) == len(targets)
    return Outcome(COMPLIANT if ok else PARTIAL,
                   f"集中监控运行中：进程 {', '.join(sorted(processes))}；采集目标 {len(up)}/{len(targets)} 正常"
                   + (f"；停止的进程 {', '.join(down)}" if down else "") + "。",
                   None if ok else "恢复停止的监控进程和失联的采集目标。", "monitoring.json#status")


@check("monitor.slo")
def monitor_slo(ev: Evidence) -> Outcome:
    spec = ev.data("monitoring").get("slo_spec") or {}
    report = ev.part("monitoring", "availability")
    rows = [r for r in report.get("rows", []) if r.get("availability") is not None]
    objective = spec.get("objective")
    if objective is not None and float(objective) < 99.95:
        return Outcome(NON_COMPLIANT, f"SLO 目标 {objective}% 低于政务云 99.95% 的要求。",
                       "把 monitors/slo.yaml 的 objective 提高到 99.95。", "monitoring.json#slo_spec")
    if not rows:
        raise Missing("可用性报告没有数据（监控刚启动或未运行）。", "the availability report has no data yet")
    missed = [f"{r['service']}@{r['center']}={r['availability'] * 100:.3f}%" for r in rows
              if r.get("verdict", "met" if r.get("met") else "not_met") == "not_met"]
    # a row measured over too little of the period (monitoring just started) decides nothing:
    # it is never counted as met (reports before coverage existed carry only `met`)
    unmeasured = [f"{r['service']}@{r['center']} 覆盖率 {r['coverage'] * 100:.2f}%" for r in rows
                  if r.get("verdict") == "insufficient_data"]
    worst = min(r["availability"] for r in rows) * 100
    coverages = [r["coverage"] for r in rows if r.get("coverage") is not None]
    covered = f"（数据覆盖率最低 {min(coverages) * 100:.2f}%）" if coverages else ""
    period = f"{report.get('from')}–{report.get('to')} 可用性{covered}："
    if missed:
        return Outcome(PARTIAL if len(missed) < len(rows) else NON_COMPLIANT,
                       period + f"{len(rows) - len(missed) - len(unmeasured)}/{len(rows)} 达到 {objective}% 目标，"
                       f"最低 {worst:.3f}%；未达标 {', '.join(missed)}"
                       + (f"；数据不足 {', '.join(unmeasured)}" if unmeasured else "") + "。",
                       "分析未达标中心的中断记录，扩容或修复。", "monitoring.json#availability")
    if unmeasured:
        minimum = report.get("min_coverage")
        return Outcome(MANUAL, period + f"数据不足，不能判定达标：{', '.join(unmeasured)}"
                       + (f"（至少需要 {minimum * 100:g}%）" if minimum else "") + "。",
                       "监控持续运行满一个统计周期后重新生成报告，或附上其他监控平台的可用性数据。",
                       "monitoring.json#availability")
    return Outcome(COMPLIANT, period + f"{len(rows)}/{len(rows)} 达到 {objective}% 目标，最低 {worst:.3f}%。",
                   None, "monitoring.json#availability")


# ---------------------------------------------------------------- SecOps
def _secops(ev: Evidence) -> dict:
    return ev.data("secops")


def secops_rules_outcome(ev: Evidence, clause: str) -> Outcome:
    tag = f"djcp.l3-{clause}"
    rules = [r for r in _secops(ev)["rules"] if tag in r.get("tags", [])]
    return _outcome(bool(rules), "secops.json#rules",
                    f"{len(rules)} 条检测规则标注 {clause}：" + "、".join(r["name"] for r in rules[:8])
                    + ("…" if len(rules) > 8 else "") + "。",
                    f"没有标注 {clause} 的检测规则。", f"为 {clause} 编写 Sigma 检测规则并加标签 {tag}。")


@check("secops.detection_rules")
def secops_detection_rules(ev: Evidence) -> Outcome:
    rules = _secops(ev)["rules"]
    clauses: dict[str, int] = {}
    for r in rules:
        for t in r.get("tags", []):
            if t.startswith("djcp.l3-"):
                clauses[t[8:]] = clauses.get(t[8:], 0) + 1
    attack = sum(1 for r in rules if any(t.startswith("attack.") for t in r.get("tags", [])))
    return _outcome(bool(rules), "secops.json#rules",
                    f"{len(rules)} 条 Sigma 规则集中管理（{attack} 条带 ATT&CK 标签）；按等保条款："
                    + "，".join(f"{k}×{v}" for k, v in sorted(clauses.items())) + "。",
                    "没有检测规则。", "启用 secops/rules 下的检测规则。")


@check("secops.correlation")
def secops_correlation(ev: Evidence) -> Outcome:
    rules = [r for r in _secops(ev)["rules"] if r.get("correlation")]
    return _outcome(bool(rules), "secops.json#rules",
                    f"{len(rules)} 条关联分析规则（计数/去重计数/时序）：" + "、".join(r["name"] for r in rules[:6]) + "。",
                    "没有关联分析规则。", "编写 Sigma 关联规则（event_count、temporal 等）。")


def _config(ev: Evidence) -> dict:
    """The configuration SecOps runs with: the platform component's effective one (`govctl up`), else
    the configuration file."""
    data = _secops(ev)
    if not data.get("config_file") and not data.get("effective"):
        raise Missing("SecOps 未配置（平台未启动且无 state/secops/config.yaml）：执行 `govctl up` 或配置日志源后重新生成报告，"
                      "或附上日志平台说明。",
                      "SecOps is neither run by the platform nor configured: `govctl up`, or configure its log sources, "
                      "or attach the log platform's description")
    return data["config"]


def _config_origin(ev: Evidence) -> str:
    component = _secops(ev).get("platform_component")
    if component and _secops(ev).get("effective"):
        state = f"，运行状态 {component['state']}" if component.get("state") else ""
        return f"平台组件 secops 的生效配置（{' '.join(component['run'][-8:])}{state}）"
    return f"配置文件 {_secops(ev).get('config_file')}"


@check("secops.retention")
def secops_retention(ev: Evidence) -> Outcome:
    data = _secops(ev)
    cfg = data["config"]
    days = cfg.get("retention_days")
    ok = days is not None and float(days) >= DJCP_RETENTION_DAYS
    where = _config_origin(ev) if data.get("effective") or data.get("config_file") else "默认配置"
    return _outcome(ok, "secops.json#config.retention_days",
                    f"安全日志保留 {days} 天、事件保留 {cfg.get('incident_retention_days')} 天（{where}），"
                    f"不少于 {DJCP_RETENTION_DAYS} 天，配置 schema 拒绝更短的值。",
                    f"安全日志只保留 {days} 天。", f"把 retention_days 设为不少于 {DJCP_RETENTION_DAYS}。")


@check("secops.sources")
def secops_sources(ev: Evidence) -> Outcome:
    cfg = _config(ev)
    sources = cfg.get("sources") or []
    syslog = {k: v for k, v in (cfg.get("syslog") or {}).items() if k in ("udp", "tcp") and v}
    names = [f"{s['name']}({s.get('format', 'auto')})" for s in sources] + [f"syslog/{k}:{v}" for k, v in syslog.items()]
    return _outcome(bool(names), "secops.json#config.sources",
                    f"集中采集 {len(names)} 个日志源：{', '.join(names)}（{_config_origin(ev)}）。",
                    "SecOps 没有配置任何日志源。", "在 SecOps 配置 sources 或 syslog 接收端。")


@check("secops.schema")
def secops_schema(ev: Evidence) -> Outcome:
    fields = set(_secops(ev).get("ecs_fields", []))
    needed = {"@timestamp", "user.name", "event.action", "event.outcome", "source.ip", "host.hostname"}
    return _outcome(needed <= fields, "secops.json#ecs_fields",
                    "日志统一为 ECS 格式，审计记录含时间、用户、事件类型、结果、来源地址和主机：" + ", ".join(sorted(needed)) + "。",
                    f"ECS 映射缺少字段：{', '.join(sorted(needed - fields))}。", "在 SecOps 管道映射中补齐缺少的字段。")


@check("secops.incidents")
def secops_incidents(ev: Evidence) -> Outcome:
    store = _secops(ev).get("store") or {}
    if not store.get("exists"):
        raise Missing("SecOps 事件库不存在：运行 SecOps 采集与检测后重新生成报告，或附上事件处置记录。",
                      "the SecOps incident store does not exist: run SecOps, or attach incident-handling records")
    states = store.get("incidents", {})
    stale = store.get("stale_open", 0)
    total = sum(states.values())
    detail = (f"告警 {store.get('alerts', 0)} 条，事件 {total} 起（" + "，".join(f"{k} {v}" for k, v in sorted(states.items()))
              + f"），超过 {STALE_INCIDENT_DAYS} 天未处理 {stale} 起；告警记录来源地址、规则、主机和时间。")
    if stale:
        return Outcome(PARTIAL, detail, f"处置或关闭超过 {STALE_INCIDENT_DAYS} 天的未结事件。", "secops.json#store")
    return Outcome(COMPLIANT, detail, None, "secops.json#store")


@check("secops.interception")
def secops_interception(ev: Evidence) -> Outcome:
    cfg = _secops(ev)["config"]
    response, enforcer = cfg.get("response") or {}, cfg.get("enforcer") or {}
    if response.get("dry_run"):
        return Outcome(PARTIAL, "自动拦截处于演练模式（dry_run），只记录不封禁。", "关闭 response.dry_run。", "secops.json#config.response")
    return Outcome(COMPLIANT, f"检测到攻击后自动封禁来源：{enforcer.get('kind')} 集合 {enforcer.get('table')}/{enforcer.get('set')}，"
                   f"封禁 {response.get('ttl')} 秒起、重犯升级至 {response.get('max_ttl')} 秒，管理网段永不封禁。",
                   None, "secops.json#config.response,enforcer")


# ---------------------------------------------------------------- crypto
def _crypto(ev: Evidence) -> dict:
    return ev.data("crypto")


@check("crypto.suite")
def crypto_suite(ev: Evidence) -> Outcome:
    suite = _crypto(ev)["suite"]
    algs = f"{suite['hash']} / {suite['aead']} / {suite['signature']}"
    if suite["name"] == "gm":
        return Outcome(COMPLIANT, f"密码套件 gm（国密）：{algs}，启动自检通过。", None, "crypto.json#suite")
    return Outcome(PARTIAL, f"密码套件为 {suite['name']}（{algs}），不是国家核准的 SM 算法。",
                   "在 state/crypto/config.yaml 设 suite: gm。", "crypto.json#suite")


def _keystore(ev: Evidence) -> dict:
    ks = _crypto(ev).get("keystore") or {}
    if ks.get("error"):
        raise Missing(ks.get("prompt", {}).get("zh", f"密钥库不可用：{ks['error']}"),
                      ks.get("prompt", {}).get("en", f"keystore unavailable: {ks['error']}"))
    return ks


@check("crypto.keys")
def crypto_keys(ev: Evidence) -> Outcome:
    keys = _keystore(ev).get("keys", [])
    if not keys:
        return Outcome(NON_COMPLIANT, "密钥库中没有密钥。", "用 `govctl crypto keys create` 建立加密与签名密钥。", "crypto.json#keystore")
    kinds = "、".join(f"{k['name']}（{k['purpose']}，{k['alg']}，v{k['latest_version']}）" for k in keys)
    return Outcome(COMPLIANT, f"密钥库（根密钥封装 KEK，KEK 加密全部密钥记录，不落明文）中有 {len(keys)} 个密钥：{kinds}；"
                   "加密与签名密钥分用途管理，只导出公钥。", None, "crypto.json#keystore")


@check("crypto.signing")
def crypto_signing(ev: Evidence) -> Outcome:
    keys = [k for k in _keystore(ev).get("keys", []) if k["purpose"] == "signing"]
    return _outcome(bool(keys), "crypto.json#keystore",
                    "数字签名提供原发证据：" + "、".join(f"{k['name']}（{k['alg']}）" for k in keys) + "签署审计检查点和证据包。",
                    "没有签名密钥。", "建立 SM2 签名密钥，用于审计检查点和证据包签名。")


@check("crypto.lifecycle")
def crypto_lifecycle(ev: Evidence) -> Outcome:
    data = _crypto(ev)
    events = data.get("lifecycle")
    if events is None:
        raise Missing("审计日志不存在，无法取得密钥生命周期记录。", "no audit log holds key-lifecycle records")
    if not events:
        return Outcome(NON_COMPLIANT, "审计日志中没有密钥生命周期记录。", "经 govctl 密钥库管理密钥，使每次生成/更新/销毁都记入审计日志。",
                       "crypto.json#lifecycle")
    return Outcome(COMPLIANT, "密钥生命周期记录（审计日志）：" + "，".join(f"{k} {v}" for k, v in sorted(events.items())) + "。",
                   None, "crypto.json#lifecycle")


@check("crypto.rotation")
def crypto_rotation(ev: Evidence) -> Outcome:
    keys = _keystore(ev).get("keys", [])
    if not keys:
        return Outcome(NON_COMPLIANT, "密钥库中没有密钥。", "建立密钥并制定更新周期。", "crypto.json#keystore")
    now = dt.datetime.fromisoformat(_crypto(ev)["collected"])
    old = []
    for k in keys:
        created = dt.datetime.fromisoformat(k["versions"][str(k["latest_version"])]["created"])
        if (now - created).days > KEY_MAX_AGE_DAYS:
            old.append(f"{k['name']} v{k['latest_version']}（{(now - created).days} 天）")
    return _outcome(not old, "crypto.json#keystore",
                    f"全部 {len(keys)} 个密钥的当前版本不超过 {KEY_MAX_AGE_DAYS} 天。",
                    "超期未更新：" + "、".join(old), "用 `govctl crypto keys rotate NAME` 更新超期密钥。")


@check("crypto.audit_log")
def crypto_audit_log(ev: Evidence) -> Outcome:
    log = _crypto(ev).get("audit_log") or {}
    if log.get("error"):
        raise Missing(f"审计日志不可验证：{log['error']}", f"audit log cannot be verified: {log['error']}")
    detail = (f"防篡改审计日志（SM3 Merkle 树，SM2 签名检查点）：{log['entries']} 条，检查点 {log['checkpoints']} 个，"
              f"已签名覆盖 {log['signed_size']} 条")
    if not log["ok"]:
        return Outcome(NON_COMPLIANT, detail + "；验证失败：" + "；".join(log["problems"][:3]),
                       "调查审计日志被改动的原因并从备份恢复。", "crypto.json#audit_log")
    if log["entries"] - log["signed_size"] > 0:
        return Outcome(PARTIAL, detail + f"；末尾 {log['entries'] - log['signed_size']} 条尚无签名检查点。",
                       "执行 `govctl auditlog checkpoint`，并定期自动签名。", "crypto.json#audit_log")
    return Outcome(COMPLIANT, detail + "，验证通过。", None, "crypto.json#audit_log")


# audit trail (issue 19): 8.1.4.3 / 8.1.5.2 read their evidence from the trail of platform actions
TRAIL_KINDS = {"infra": "部署", "lab": "部署", "platform": "部署", "harden": "主机加固", "ban": "拦截封禁",
               "incident": "事件处置", "key": "密钥操作", "console": "控制台登录", "user": "用户管理",
               "notify": "通知配置", "drill": "容灾演练", "comply": "合规证据包"}
TRAIL_REQUIRED = ("部署", "主机加固", "拦截封禁", "事件处置", "密钥操作", "控制台登录")
TRAIL_MAX_SILENCE_DAYS = 7


@check("crypto.audit_trail")
def crypto_audit_trail(ev: Evidence) -> Outcome:
    """The trail (state/audit) has entries over the period, covers the kinds of actions, and verifies."""
    data = _crypto(ev)
    trail, log = data.get("trail"), data.get("audit_log") or {}
    if not trail or not trail.get("entries"):
        raise Missing("操作审计日志为空：平台操作（部署、加固、封禁、事件处置、密钥、登录）尚未记录；用 govctl 执行操作后重新生成报告。",
                      "the audit trail is empty: no platform action has been recorded yet")
    covered = {TRAIL_KINDS[k] for k in trail["kinds"] if k in TRAIL_KINDS}
    missing = [k for k in TRAIL_REQUIRED if k not in covered]
    collected = dt.datetime.fromisoformat(data["collected"])
    silent = (collected - dt.datetime.fromisoformat(trail["last"])).days
    detail = (f"操作审计日志 {trail['entries']} 条（{trail['first'][:10]} 至 {trail['last'][:10]}），每条含时间、操作者、"
              f"操作、对象、参数（不含秘密）与结果；覆盖：{'、'.join(sorted(covered)) or '无'}；失败操作 {trail['failed']} 条")
    source = "crypto.json#trail"
    if log.get("error") or not log.get("ok", False):
        problem = log.get("error") or "；".join(log.get("problems", [])[:2])
        return Outcome(NON_COMPLIANT, detail + f"；日志验证未通过：{problem}", "调查审计日志被改动的原因并从备份恢复；"
                       "`govctl auditlog verify` 通过后重新生成报告。", source)
    if missing or silent > TRAIL_MAX_SILENCE_DAYS:
        gaps = ([f"未见{'、'.join(missing)}类操作的记录"] if missing else []) + \
               ([f"最近 {silent} 天无记录"] if silent > TRAIL_MAX_SILENCE_DAYS else [])
        return Outcome(PARTIAL, detail + "；" + "，".join(gaps) + "。",
                       "经 govctl（命令行、API 或控制台）执行这些操作，使其进入审计日志。", source)
    return Outcome(COMPLIANT, detail + "；日志验证通过。", None, source)


# ---------------------------------------------------------------- drills
def _drills(ev: Evidence) -> list[dict]:
    reports = [r for r in ev.data("drills")["reports"] if not r.get("dry_run")]
    if not reports:
        raise Missing("没有容灾演练报告：执行 `govctl drill run SCENARIO` 后重新生成报告，或附上演练记录。",
                      "no DR drill report: run `govctl drill run SCENARIO`, or attach drill records")
    return sorted(reports, key=lambda r: r.get("ended") or 0)


def _passed(report: dict) -> bool:
    return report.get("verdict") == "pass"


def _when(report: dict) -> str:
    return dt.datetime.fromtimestamp(report["ended"], dt.timezone.utc).strftime("%Y-%m-%d") if report.get("ended") else "?"


@check("drills.recent")
def drills_recent(ev: Evidence) -> Outcome:
    reports = _drills(ev)
    now = dt.datetime.fromisoformat(ev.layers["drills"]["collected"]).timestamp()
    recent = [r for r in reports if r.get("ended") and now - r["ended"] <= DRILL_MAX_AGE_DAYS * 86400]
    passed = [r for r in recent if _passed(r)]
    last = reports[-1]
    detail = (f"近 {DRILL_MAX_AGE_DAYS} 天演练 {len(recent)} 次，通过 {len(passed)} 次（场景："
              + "、".join(sorted({r['scenario'] for r in passed})) + f"）；最近一次 {last['scenario']} {_when(last)}：{last['verdict']}。")
    if passed:
        return Outcome(COMPLIANT, detail, None, "drills.json#reports")
    return Outcome(NON_COMPLIANT, detail, "修复演练失败原因并重新演练。", "drills.json#reports")


@check("drills.backup_restore")
def drills_backup_restore(ev: Evidence) -> Outcome:
    runs = [r for r in _drills(ev) if r["scenario"] == "backup-restore"]
    if not runs:
        raise Missing("没有备份恢复演练：执行 `govctl drill run backup-restore`，或附上恢复测试记录。",
                      "no backup-restore drill: run `govctl drill run backup-restore`, or attach restore tests")
    passed = [r for r in runs if _passed(r)]
    return _outcome(bool(passed), "drills.json#reports",
                    f"备份恢复演练 {len(runs)} 次，通过 {len(passed)} 次，最近通过 {_when(passed[-1]) if passed else '-'}：本地备份可恢复。",
                    f"备份恢复演练 {len(runs)} 次均未通过。", "修复备份恢复流程并重新演练。")


@check("drills.rto_rpo")
def drills_rto_rpo(ev: Evidence) -> Outcome:
    measured = [r for r in _drills(ev) if _passed(r) and (r.get("measured") or {}).get("rto_seconds") is not None]
    if not measured:
        return Outcome(NON_COMPLIANT, "没有测得 RTO/RPO 的成功切换演练。", "执行主备切换或中心故障演练并使其通过。",
                       "drills.json#reports")
    last = measured[-1]
    m, level = last["measured"], (last.get("gbt20988") or {}).get("level")
    detail = (f"最近一次成功演练 {last['scenario']}（{_when(last)}）：RTO {m['rto_seconds']} 秒，RPO {m.get('rpo_transactions')} 笔事务"
              f"/{m.get('rpo_seconds')} 秒，GB/T 20988 灾难恢复能力第 {level} 级。")
    ok = level is not None and int(level) >= MIN_GBT20988_LEVEL
    return Outcome(COMPLIANT if ok else PARTIAL, detail,
                   None if ok else f"提升到 GB/T 20988 第 {MIN_GBT20988_LEVEL} 级以上（RPO≤30 分钟）。", "drills.json#reports")


# ---------------------------------------------------------------- what the stack does not contain
@check("stack.no_wireless")
def stack_no_wireless(ev: Evidence) -> Outcome:
    kinds = sorted({z["kind"] for c in _outputs(ev)["centers"].values() for z in c["zones"].values()})
    if any("wireless" in k or "wlan" in k for k in kinds):
        raise Missing("拓扑中有无线区域：附上无线接入网关与边界设备配置。", "the topology has a wireless zone: attach its gateway configuration")
    return Outcome(COMPLIANT, f"网络设计中没有无线区域（区域类型：{', '.join(kinds)}）。", None, "stack.json#centers.*.zones")


@check("stack.no_mail_service")
def stack_no_mail_service(ev: Evidence) -> Outcome:
    hosts = _outputs(ev).get("hosts", [])
    mail = [h["fqdn"] for h in hosts if {"mail", "smtp"} & set(h.get("roles", []))]
    if mail:
        raise Missing(f"存在邮件主机 {', '.join(mail)}：附上反垃圾邮件网关配置与更新记录。",
                      f"mail hosts exist ({', '.join(mail)}): attach the anti-spam gateway records")
    roles = sorted({r for h in hosts for r in h.get("roles", [])})
    return Outcome(NOT_APPLICABLE, f"栈中没有邮件系统（主机角色：{', '.join(roles)}），垃圾邮件防范不适用。", None, "stack.json#hosts")


# ---------------------------------------------------------------- platform (the lab's machine)
@check("platform.trusted_boot")
def platform_trusted_boot(ev: Evidence) -> Outcome:
    data = ev.data("platform")
    tpm, secure_boot = data.get("tpm_devices") or [], data.get("secure_boot")
    if tpm and secure_boot:
        return Outcome(COMPLIANT, f"平台有可信根设备 {', '.join(tpm)}，UEFI 安全启动已开启。", None, "platform.json")
    found = f"TPM/TCM 设备：{', '.join(tpm) or '无'}；UEFI：{'有' if data.get('uefi') else '无'}；安全启动：{'开' if secure_boot else '关或无'}"
    return Outcome(NON_COMPLIANT if not tpm else PARTIAL, f"平台缺少可信验证的硬件基础（{found}），无法进行可信启动与度量。",
                   "在有 TPM 2.0/TCM 的平台上部署，开启安全启动与度量启动，并把度量结果送安全管理中心。", "platform.json")


@check("platform.anti_malware")
def platform_anti_malware(ev: Evidence) -> Outcome:
    hosts = ev.data("platform").get("hosts") or {}
    unreadable = [h for h, v in hosts.items() if v.get("error")]
    if not hosts or len(unreadable) == len(hosts):
        raise Missing("无法读取主机软件包清单：附上主机防恶意代码软件部署记录。", "cannot read the hosts' package lists")
    readable = {h: v for h, v in hosts.items() if not v.get("error")}
    protected = sorted(h for h, v in readable.items() if v["anti_malware"])
    bare = sorted(set(readable) - set(protected))
    detail = (f"{len(protected)}/{len(readable)} 台主机装有防恶意代码软件" + (f"（{', '.join(protected)}）" if protected else "")
              + (f"；未装：{', '.join(bare)}" if bare else "") + f"（查找的软件包：{', '.join(('clamav', 'clamav-daemon', '…'))}）。")
    verdict = COMPLIANT if not bare else (PARTIAL if protected else NON_COMPLIANT)
    return Outcome(verdict, detail, None if not bare else "在每台主机部署经认证的防恶意代码软件并保持特征库更新，或采用白名单/主动免疫。",
                   "platform.json#hosts")


# ---------------------------------------------------------------- declared intent (issue 19)
# Host items the host catalog leaves to a person ("compare with the approved roster") are decided by
# comparing the host audit's observations with the customer's declared intent (intent.py). Without
# an intent layer they stay 需人工核查 and the prompt says what to declare.
INTENT_HINT = {
    "AC-ACCOUNT-REVIEW": "在 state/compliance/intent.yaml 按角色声明账户名册（roles.*.accounts）",
    "AC-LEAST-PRIVILEGE": "在 state/compliance/intent.yaml 按角色声明 sudo 规则（roles.*.sudo）",
    "IP-MINIMAL-INSTALL": "在 state/compliance/intent.yaml 按角色声明软件包白名单（roles.*.packages）",
    "IA-MULTI-FACTOR": "在 state/compliance/intent.yaml 声明堡垒机第二因素（bastion）",
    "IP-MANAGEMENT-SOURCE": "在 state/compliance/intent.yaml 声明管理网段（bastion.management_networks）",
    "AC-SECURITY-LABELS": "在 state/compliance/intent.yaml 声明强制访问控制模块（mandatory_access_control）",
    "IP-VULNERABILITY-PATCHING": "在 state/compliance/intent.yaml 声明补丁策略与漏洞扫描结果（patching, vulnerability_scan）",
    "AU-PROCESS-PROTECTION": "在 state/compliance/intent.yaml 的账户名册中声明审计管理员（duty: audit）",
}
TRUNCATED_AT = 600   # the host audit keeps this much of an observation (hardening.verdict.EXCERPT)


def _intent(ev: Evidence) -> dict | None:
    doc = ev.layers.get("intent")
    return doc["data"] if doc and doc.get("status") == "ok" else None


def _collected_day(ev: Evidence, layer: str) -> dt.date:
    stamp = (ev.layers.get(layer) or {}).get("collected")
    return dt.date.fromisoformat(stamp[:10]) if stamp else dt.date.today()


def _role_values(intent: dict, roles: list[str], key: str) -> list | None:
    """What the intent declares under `key` for the roles (`common` included); None when no role does."""
    declared = [intent["intent"]["roles"][r][key] for r in ["common", *roles]
                if key in intent["intent"]["roles"].get(r, {})]
    return None if not declared else [v for values in declared for v in values]


def _observed(entry: dict) -> str | None:
    text = entry.get("observed")
    return None if text is None or len(text) >= TRUNCATED_AT else text


def _sshd(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key:
            settings.setdefault(key.lower(), []).append(value.strip())
    return settings


def _judge_accounts(ev, intent, host, roles, items):
    roster = _role_values(intent, roles, "accounts")
    if roster is None:
        return MANUAL, f"预期未声明角色 {'/'.join(roles)} 的账户名册"
    approved = {a["name"]: a for a in roster}
    today = _collected_day(ev, "hosts")
    present = [line.split() for line in _observed(items["AC-ACCOUNT-REVIEW"]).splitlines() if line.strip()]
    unlisted = [p[0] for p in present if p[0] not in approved]
    expired = [p[0] for p in present if p[0] in approved and approved[p[0]].get("expires")
               and dt.date.fromisoformat(approved[p[0]]["expires"]) < today and (p[1:2] or [""])[0] != "L"]
    if unlisted or expired:
        return NON_COMPLIANT, (f"{host}：" + (f"名册外的可登录账户 {', '.join(unlisted)}" if unlisted else "")
                               + ("；" if unlisted and expired else "")
                               + (f"已过期仍可用的账户 {', '.join(expired)}" if expired else ""))
    return COMPLIANT, f"{host}：{len(present)} 个可登录账户均在名册中，各有唯一责任人"


def _sudo_rules(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith(("@include", "#include"))]


def _judge_sudo(ev, intent, host, roles, items):
    declared = _role_values(intent, roles, "sudo")
    if declared is None:
        return MANUAL, f"预期未声明角色 {'/'.join(roles)} 的 sudo 规则"
    rules = _sudo_rules(_observed(items["AC-LEAST-PRIVILEGE"]))
    extra = [r for r in rules if r not in {" ".join(d.split()) for d in declared}]
    if extra:
        return NON_COMPLIANT, f"{host}：未经批准的 sudo 规则 " + " | ".join(extra[:5])
    return COMPLIANT, f"{host}：{len(rules)} 条 sudo 规则均在批准的策略内"


def _judge_packages(ev, intent, host, roles, items):
    import fnmatch

    patterns = _role_values(intent, roles, "packages")
    if patterns is None:
        return MANUAL, f"预期未声明角色 {'/'.join(roles)} 的软件包白名单"
    platform = ev.layers.get("platform") or {}
    installed = ((platform.get("data") or {}).get("hosts") or {}).get(host, {}).get("installed")
    if platform.get("status") != "ok" or installed is None:
        return MANUAL, f"{host}：证据中没有已安装软件包清单（platform 层），无法与白名单比对"
    base = set((intent["intent"].get("packages") or {}).get("allow_priorities", []))
    extra = sorted(p for p, priority in installed.items()
                   if priority not in base and not any(fnmatch.fnmatchcase(p, pattern) for pattern in patterns))
    if extra:
        return NON_COMPLIANT, (f"{host}：白名单外的软件包 {len(extra)} 个：{', '.join(extra[:10])}"
                               + ("…" if len(extra) > 10 else ""))
    return COMPLIANT, f"{host}：{len(installed)} 个软件包均在白名单内（优先级 {'/'.join(sorted(base)) or '无'} 的基础系统与角色软件包）"


def _ssh_sources(intent, host, items):
    """Whether sshd on the host admits only the management networks (AllowUsers user@CIDR)."""
    import ipaddress

    from secops import address

    networks = [address.network(n) for n in intent["intent"]["bastion"]["management_networks"]]
    text = _observed(items.get("IP-MANAGEMENT-SOURCE") or {})
    if text is None:
        return None, f"{host}：证据中没有 sshd 的来源限制设置"
    allowed = [u for line in _sshd(text).get("allowusers", []) for u in line.split()]
    if not allowed:
        return False, f"{host}：sshd 未限制来源（无 AllowUsers user@管理网段）"
    outside = []
    for entry in allowed:
        _, _, source = entry.partition("@")
        try:
            net = ipaddress.ip_network(source, strict=False) if source else None
        except ValueError:
            net = None
        if net is None or not any(net.version == n.version and net.subnet_of(n) for n in networks):
            outside.append(entry)
    if outside:
        return False, f"{host}：sshd 允许管理网段之外的来源 {', '.join(outside[:5])}"
    return True, f"{host}：sshd 只接受管理网段 {', '.join(map(str, networks))} 的登录"


def _judge_management_source(ev, intent, host, roles, items):
    if not intent["intent"].get("bastion"):
        return MANUAL, "预期未声明管理网段（bastion.management_networks）"
    ok, detail = _ssh_sources(intent, host, items)
    return (MANUAL if ok is None else COMPLIANT if ok else NON_COMPLIANT), detail


def _judge_multi_factor(ev, intent, host, roles, items):
    bastion = intent["intent"].get("bastion")
    if not bastion:
        return MANUAL, "预期未声明堡垒机的第二因素（bastion）"
    settings = _sshd(_observed(items["IA-MULTI-FACTOR"]))
    methods = " ".join(settings.get("authenticationmethods", ["any"])).split()
    if bastion["role"] in roles:
        wanted = set(bastion["authentication_methods"].split(","))
        if any(set(m.split(",")) == wanted for m in methods):
            return COMPLIANT, (f"{host}（堡垒机）：sshd 要求 {bastion['authentication_methods']}，"
                               f"第二因素 {bastion['second_factor']}，其中公钥为密码技术")
        return NON_COMPLIANT, (f"{host}（堡垒机）：sshd AuthenticationMethods 为 {' '.join(methods)}，"
                               f"预期 {bastion['authentication_methods']}（第二因素 {bastion['second_factor']}）")
    ok, detail = _ssh_sources(intent, host, items)
    if ok is None:
        return MANUAL, detail
    keys_only = settings.get("passwordauthentication") == ["no"] and settings.get("pubkeyauthentication") == ["yes"]
    if ok and keys_only:
        return COMPLIANT, f"{host}：只接受公钥登录且只经堡垒机所在管理网段，管理员在堡垒机完成第二因素鉴别"
    return NON_COMPLIANT, f"{host}：" + ("；".join(
        ([] if keys_only else ["sshd 仍接受口令登录，可绕过堡垒机的双因素"]) + ([] if ok else [detail.split("：", 1)[1]])))


def _judge_security_labels(ev, intent, host, roles, items):
    module = intent["intent"].get("mandatory_access_control")
    if not module:
        return MANUAL, "预期未声明强制访问控制模块（mandatory_access_control）"
    text = (_observed(items["AC-SECURITY-LABELS"]) or "").strip()
    enforcing = {"selinux": text.lower() == "enforcing", "apparmor": "apparmor enabled" in text}.get(module)
    if enforcing is None:
        return MANUAL, f"{host}：主机核查不检查 {module} 的状态"
    if enforcing:
        return COMPLIANT, f"{host}：{module} 强制访问控制已启用"
    return NON_COMPLIANT, f"{host}：预期 {module} 强制执行，实际 {text or '无输出'}"


def _judge_patching(ev, intent, host, roles, items):
    declared = intent["intent"]
    if not declared.get("patching") or not declared.get("vulnerability_scan") or intent.get("scan_findings") is None:
        return MANUAL, "预期未声明补丁策略或漏洞扫描结果（patching, vulnerability_scan）"
    policy, scan = declared["patching"], declared["vulnerability_scan"]
    scanned = dt.date.fromisoformat(scan["scanned"])
    max_scan_age = policy.get("max_scan_age_days", 30)
    age = (_collected_day(ev, "hosts") - scanned).days
    if age > max_scan_age:
        return NON_COMPLIANT, f"{host}：漏洞扫描 {scan['scanned']} 已 {age} 天，超过 {max_scan_age} 天"
    findings = [f for f in intent["scan_findings"] if f["host"] == host]
    if not findings:
        return NON_COMPLIANT, f"{host}：漏洞扫描（{scan['path']}，{scan['scanned']}）未覆盖本主机"
    risks = {r["vulnerability"]: r for r in declared.get("accepted_risks", [])
             if r["host"] == host and dt.date.fromisoformat(r["expires"]) >= scanned}
    overdue = [f for f in findings if f["status"] == "open" and f["severity"] in ("critical", "high")
               and (scanned - dt.date.fromisoformat(f["first_seen"])).days > policy["max_days_high"]
               and f["vulnerability"] not in risks]
    open_count = sum(f["status"] == "open" for f in findings)
    if overdue:
        return NON_COMPLIANT, (f"{host}：超过 {policy['max_days_high']} 天未修补的高危漏洞 "
                               + ", ".join(f"{f['vulnerability']}（{f['severity']}，{f['first_seen']} 发现）" for f in overdue[:5]))
    accepted = [f"{v}（批准人 {r['approver']}，至 {r['expires']}）" for v, r in risks.items()]
    return COMPLIANT, (f"{host}：扫描 {scan['scanned']} 发现 {len(findings)} 项、未修复 {open_count} 项，无超过 "
                       f"{policy['max_days_high']} 天的未修补高危漏洞" + (f"；已接受风险 {', '.join(accepted)}" if accepted else ""))


AUDIT_CONTROL = ("ALL", "auditctl", "auditd", "augenrules", "service auditd", "systemctl stop auditd", "systemctl disable auditd")


def _judge_audit_protection(ev, intent, host, roles, items):
    """Only root and the roster's audit administrators may stop or reconfigure audit (sudo rules)."""
    roster = _role_values(intent, roles, "accounts")
    if roster is None:
        return MANUAL, f"预期未声明角色 {'/'.join(roles)} 的账户名册（含审计管理员）"
    auditors = {a["name"] for a in roster if a["duty"] == "audit"}
    sudoers = _observed(items.get("AC-LEAST-PRIVILEGE") or {})
    if sudoers is None:
        return MANUAL, f"{host}：证据中没有完整的 sudo 规则"
    rules = _sudo_rules(sudoers)
    grants = []
    for rule in rules:
        principal, _, rest = rule.partition(" ")
        commands = rest.split(")", 1)[-1] if ")" in rest else rest.split("=", 1)[-1]
        if principal != "root" and principal not in auditors and any(c in commands for c in AUDIT_CONTROL):
            grants.append(principal + ("（组成员未知）" if principal.startswith("%") else ""))
    if grants:
        return NON_COMPLIANT, f"{host}：审计管理员之外可停止或修改审计的 sudo 主体 {', '.join(grants)}"
    return COMPLIANT, (f"{host}：只有 root 与审计管理员（{', '.join(sorted(auditors)) or '无'}）能经 sudo 控制审计进程"
                       "（审计进程停止时的告警另见集中审计）")


HOST_INTENT_JUDGES = {
    "AU-PROCESS-PROTECTION": _judge_audit_protection,
    "AC-ACCOUNT-REVIEW": _judge_accounts, "AC-LEAST-PRIVILEGE": _judge_sudo, "IP-MINIMAL-INSTALL": _judge_packages,
    "IA-MULTI-FACTOR": _judge_multi_factor, "IP-MANAGEMENT-SOURCE": _judge_management_source,
    "AC-SECURITY-LABELS": _judge_security_labels, "IP-VULNERABILITY-PATCHING": _judge_patching,
}


def judge_by_intent(ev: Evidence, item: str, host: str, roles: list[str], items: dict[str, dict]) -> tuple[str, str] | None:
    """A manual host item decided from the declared intent: (verdict, detail), or None when the item
    has no intent judge or no intent is declared. An observation the audit truncated is not judged."""
    judge, intent = HOST_INTENT_JUDGES.get(item), _intent(ev)
    if judge is None or intent is None:
        return None
    if _observed(items.get(item, {})) is None:
        return MANUAL, f"{host}：主机核查证据中没有 {item} 的完整观测（未采集或被截断），无法与预期比对"
    return judge(ev, intent, host, roles, items)


@check("intent.access_policy")
def intent_access_policy(ev: Evidence) -> Outcome:
    intent = _intent(ev)
    if intent is None:
        raise Missing("附上访问控制策略文件及其审批记录，或在 state/compliance/intent.yaml 声明各角色的 sudo 规则与批准人。",
                      "attach the access-control policy and its approval, or declare the sudo policy in the intent file")
    declared = intent["intent"]
    roles = sorted(r for r, v in declared["roles"].items() if "sudo" in v)
    if not roles:
        raise Missing("预期文件未声明任何角色的 sudo 规则（roles.*.sudo）。", "the intent file declares no sudo rules")
    return Outcome(COMPLIANT, f"访问控制策略以数据声明（{intent['file']}，角色 {', '.join(roles)} 的 sudo 规则与账户名册），"
                   f"由 {declared['approved_by']} 于 {declared['approved_on']} 批准；主机实际规则与之比对见 AC-LEAST-PRIVILEGE。",
                   None, "intent.json#intent.roles")


@check("intent.separation_of_duties")
def intent_separation_of_duties(ev: Evidence) -> Outcome:
    """三权分立: the roster names system, audit and security administrators, and no person holds two
    of these duties (the roster itself is compared with the hosts' accounts in CE-AC-C)."""
    intent = _intent(ev)
    if intent is None:
        raise Missing("附上系统/审计/安全管理员账户与三权分立的角色配置，或在 state/compliance/intent.yaml 的账户名册中声明其职责（duty）。",
                      "attach the administrators' role split, or declare each account's duty in the intent file's roster")
    duties: dict[str, set[str]] = {}
    holders: dict[str, set[str]] = {}
    for role in intent["intent"]["roles"].values():
        for account in role.get("accounts", []):
            if account["duty"] in ("system", "audit", "security"):
                duties.setdefault(account["duty"], set()).add(account["name"])
                holders.setdefault(account["owner"], set()).add(account["duty"])
    lacking = [d for d in ("system", "audit", "security") if d not in duties]
    doubled = sorted(f"{owner}（{'/'.join(sorted(d))}）" for owner, d in holders.items() if len(d) > 1)
    detail = "账户名册中的管理员：" + "；".join(f"{d} {', '.join(sorted(duties[d]))}" for d in ("system", "audit", "security") if d in duties)
    if lacking or doubled:
        problems = ([f"名册中没有 {'/'.join(lacking)} 管理员"] if lacking else []) + ([f"一人兼任 {', '.join(doubled)}"] if doubled else [])
        return Outcome(NON_COMPLIANT, detail + "；" + "，".join(problems) + "。",
                       "为系统、审计、安全管理分别设立由不同人员持有的账户，并在预期名册中声明。", "intent.json#intent.roles")
    return Outcome(COMPLIANT, detail + "，三类职责由不同人员持有。", None, "intent.json#intent.roles")


def _declared_absent(ev: Evidence, what: str, zh: str) -> bool:
    intent = _intent(ev)
    if intent is None or what not in intent["intent"].get("absent", []):
        raise Missing(f"说明是否有{zh}：在 state/compliance/intent.yaml 的 absent 中声明“{what}”，或附上{zh}的配置。",
                      f"say whether there is {what}: declare it under `absent` in the intent file, or attach its configuration")
    return True


@check("intent.no_wireless")
def intent_no_wireless(ev: Evidence) -> Outcome:
    _declared_absent(ev, "wireless", "无线网络")
    wireless = sorted({z["kind"] for c in _outputs(ev)["centers"].values() for z in c["zones"].values()
                       if "wireless" in z["kind"] or "wlan" in z["kind"]})
    return _outcome(not wireless, "intent.json#intent.absent",
                    f"预期声明不部署无线网络（{_intent(ev)['intent']['approved_by']} 批准），栈中也没有无线区域。",
                    f"预期声明不部署无线网络，但栈中有无线区域：{', '.join(wireless)}。",
                    "更正预期声明，或为无线区域部署受控的无线接入网关。")


@check("intent.no_mail")
def intent_no_mail(ev: Evidence) -> Outcome:
    _declared_absent(ev, "mail", "邮件系统")
    mail = [h["fqdn"] for h in _outputs(ev).get("hosts", []) if {"mail", "smtp"} & set(h.get("roles", []))]
    if mail:
        return Outcome(NON_COMPLIANT, f"预期声明没有邮件系统，但栈中有邮件主机：{', '.join(mail)}。",
                       "更正预期声明，并为邮件系统部署反垃圾邮件网关。", "intent.json#intent.absent")
    return Outcome(NOT_APPLICABLE, f"预期声明没有邮件系统（{_intent(ev)['intent']['approved_by']} 批准），栈中也没有邮件主机：垃圾邮件防范不适用。",
                   None, "intent.json#intent.absent")


# ---------------------------------------------------------------- declared documents (issue 19)
DECLARED = "由声明决定 decided by declaration"


def _document_verdict(entry: dict, today: dt.date) -> tuple[str, str, str | None]:
    """(verdict, detail, remediation) of one declared document as the collection found it."""
    facts = entry.get("found") or {}
    name = f"《{entry['title']}》（{entry['path']}）"
    approval = f"批准人 {entry['approved_by']}（{entry['approved_on']}），下次复审 {entry['next_review']}"
    if not facts.get("exists"):
        return (NON_COMPLIANT, f"{DECLARED}：登记的文档 {name}不存在（missing file）。",
                "把文档放回登记的位置，或更新文档登记（state/compliance/documents.yaml）。")
    if facts.get("error"):
        return MANUAL, f"{DECLARED}：文档 {name} 无法校验：{facts['error']}，请人工核对。", None
    if facts.get("sm3") != entry["sm3"]:
        return (NON_COMPLIANT, f"{DECLARED}：文档 {name} 的 SM3 摘要与登记不符（digest changed：登记 {entry['sm3'][:16]}…，"
                f"实际 {facts.get('sm3', '')[:16]}…），修改后未重新批准。",
                "修订后的文档经批准后，在文档登记中更新其 SM3 摘要、批准人和批准日期。")
    if dt.date.fromisoformat(entry["approved_on"]) > today:
        return (NON_COMPLIANT, f"{DECLARED}：文档 {name} 的批准日期 {entry['approved_on']} 晚于今天，尚未批准。",
                "文档批准后再登记批准日期。")
    if dt.date.fromisoformat(entry["next_review"]) < today:
        return (NON_COMPLIANT, f"{DECLARED}：文档 {name} 复审逾期（review overdue：应于 {entry['next_review']} 前复审）；{approval}。",
                "按期复审文档，并在文档登记中更新批准日期和下次复审日期。")
    return (COMPLIANT, f"{DECLARED}：{name} 存在且 SM3 摘要一致（{entry['sm3'][:16]}…），{approval}。"
            "文档内容由批准人负责，本平台只核对其存在、完整性和时效。", None)


def document_outcome(ev: Evidence, standard: str, item: str, today: dt.date | None = None) -> Outcome | None:
    """The verdict of the documents declared for `item` of `standard` (None when the register declares
    none, or no register was collected: the item's manual prompt stays open)."""
    doc = ev.layers.get("documents")
    if not doc or doc.get("status") != "ok":
        return None
    entries = [d for d in doc["data"]["documents"] if item in (d.get("answers") or {}).get(standard, [])]
    if not entries:
        return None
    judged = [_document_verdict(d, today or dt.date.today()) for d in entries]
    remediation = "；".join(r for _, _, r in judged if r) or None
    return Outcome(combine([v for v, _, _ in judged]), " ".join(d for _, d, _ in judged), remediation,
                   "documents.json#" + ",".join(d["id"] for d in entries))
