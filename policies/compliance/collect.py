"""Evidence collectors: one raw JSON document per layer, as the layer reports itself.

Each document is {"layer", "status": "ok" | "unavailable", "collected", "source", "prompt"?, "data"?}.
A collector never raises for a layer that is absent, not running or not yet installed: it returns
status "unavailable" with a prompt (zh, en) saying what to run or attach, and the checks turn that
into 需人工核查. Documents are written to an evidence directory (`<layer>.json`) that the evaluation,
the evidence pack and the tests' fixtures all read the same way.
"""
from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from core import paths, yamlfile
from infra.outputs import StackOutputs, read_stack_outputs

LAYERS = ("stack", "firewall", "platform", "hosts", "monitoring", "secops", "crypto", "drills", "intent", "documents")
GOVCTL = str(Path(sys.executable).with_name("govctl"))
COMMAND_TIMEOUT = 300


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def ok(layer: str, source: str, data: dict) -> dict:
    return {"layer": layer, "status": "ok", "collected": _now(), "source": source, "data": data}


def unavailable(layer: str, source: str, zh: str, en: str, error: str = "") -> dict:
    return {"layer": layer, "status": "unavailable", "collected": _now(), "source": source,
            "prompt": {"zh": zh, "en": en}, "error": error[-2000:]}


def _govctl_json(*args: str, timeout: int = COMMAND_TIMEOUT) -> tuple[dict | None, str]:
    """Run a govctl command that prints JSON; (document, error text)."""
    try:
        run = subprocess.run([GOVCTL, *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"`govctl {' '.join(args)}` took longer than {timeout} s"
    try:
        return json.loads(run.stdout), ""
    except ValueError:
        return None, (run.stderr or run.stdout).strip()[-1500:] or f"exit {run.returncode}"


# ---------------------------------------------------------------- stack outputs + CrossGuard pack
def stack_outputs(stack: str) -> StackOutputs:
    return read_stack_outputs(stack)


def pack_results(outputs: StackOutputs) -> dict:
    """Run the CrossGuard pack's checks over the stack's facts. A backend that exports
    `policy_facts` is judged on them; otherwise (the lab today) on the topology the outputs name,
    with no audit declaration (the pack then reports that the stack declares no audit trail)."""
    from policies.djcp_pack import checks as pack

    facts = outputs.policy_facts
    source = "stack outputs policy_facts"
    if not isinstance(facts, dict):
        from infra.topology import load_topology

        path = paths.ROOT / "infra" / "topologies" / f"{outputs.topology}.yaml"
        if not path.exists():
            return {"error": f"no policy_facts and no topology file {path}",
                    "prompt": {"zh": "栈未导出 policy_facts，也找不到其拓扑文件：附上策略包在部署预览中的结果。",
                               "en": "the stack exports no policy_facts and its topology file is missing: attach the pack's preview result"}}
        facts = {"topology": load_topology(path).to_dict()}
        source = f"topology {path.relative_to(paths.ROOT)} (the lab exports no policy_facts)"
    resources = [{"type": pack.STACK_TYPE, "name": "stack", "urn": None, "props": {"policy_facts": facts}}]
    _, rules = pack.load_rules()
    found = pack.evaluate(resources)
    results = {r.id: {"clause": r.clause, "control": r.control, "description": r.description,
                      "passed": not [v for rule, v in found if rule.id == r.id],
                      "violations": [v.message for rule, v in found if rule.id == r.id]} for r in rules}
    return {"source": source, "results": results}


def collect_stack(stack: str) -> dict:
    try:
        outputs = stack_outputs(stack)
    except Exception as exc:  # not deployed, unknown, or of the wrong shape: all mean "no outputs"
        return unavailable("stack", f"govctl infra outputs --stack {stack}",
                           f"无法读取栈 {stack} 的输出：先部署（govctl lab up / govctl infra up），或附上网络拓扑与安全域划分文档。",
                           f"cannot read the outputs of stack {stack}: deploy it, or attach the network design", str(exc))
    try:
        pack = pack_results(outputs)
    except Exception as exc:  # the pack is another layer: its failure leaves the stack evidence usable
        pack = {"error": f"{type(exc).__name__}: {exc}", "prompt": {
            "zh": f"CrossGuard 策略包无法运行（{type(exc).__name__}）：附上策略包在部署预览中的结果。",
            "en": "the CrossGuard pack could not run: attach its preview result"}}
    return ok("stack", f"govctl infra outputs --stack {stack}", {"outputs": outputs.to_dict(), "pack": pack})


def collect_firewall(outputs: StackOutputs | None) -> dict:
    source = "nft -j list table (in each center's namespace)"
    if not outputs:
        return unavailable("firewall", source, "没有栈输出，无法定位边界防火墙。", "no stack outputs: the firewalls cannot be found")
    centers = {}
    for name, center in sorted(outputs.centers.items()):
        fw = center.firewall
        if fw is None:
            centers[name] = {"error": "the stack declares no firewall for this center"}
            continue
        command = ["ip", "netns", "exec", fw.namespace, "nft", "-j", "list", "table", fw.family, fw.table]
        run = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if run.returncode != 0:
            centers[name] = {"error": (run.stderr.strip() or f"exit {run.returncode}")[-500:], "command": " ".join(command)}
            continue
        centers[name] = {"command": " ".join(command), "ruleset": json.loads(run.stdout)["nftables"]}
    if all("error" in c for c in centers.values()):
        return unavailable("firewall", source, "无法读取边界防火墙规则（需要 root 并在实验环境运行）：附上防火墙策略导出。",
                           "cannot read the boundary firewalls (needs root on the lab): attach the exported policy",
                           json.dumps(centers, ensure_ascii=False))
    return ok("firewall", source, {"centers": centers})


# ---------------------------------------------------------------- platform (the lab: this machine)
ANTI_MALWARE_PACKAGES = ("clamav", "clamav-daemon", "clamdscan", "sophos-av", "eset-nod32", "kesl")


def _installed_packages(root: Path) -> dict[str, str]:
    """{package: priority} of the packages installed under `root` (the priority tells the base
    system — required/important — from what was added, for the intent's package allow-list)."""
    status = root / "var" / "lib" / "dpkg" / "status"
    installed, fields = {}, {}
    for line in status.read_text(encoding="utf-8", errors="replace").splitlines() + [""]:
        if not line:  # a blank line ends a package's stanza
            if fields.get("Status", "").endswith(" installed") and fields.get("Package"):
                installed[fields["Package"]] = fields.get("Priority", "unknown")
            fields = {}
        elif not line[0].isspace() and ": " in line:
            key, value = line.split(": ", 1)
            fields[key] = value
    return installed


def collect_platform(outputs: StackOutputs | None) -> dict:
    """The lab's platform is this machine: its root of trust (TPM/TCM device, UEFI Secure Boot) and,
    per host, the anti-malware packages installed in the host's root filesystem (read through the
    host's PID 1). Other backends' platforms are the cloud's: a person attaches that evidence."""
    source = "/sys/class/tpm, /sys/firmware/efi, each host's /var/lib/dpkg/status"
    if not outputs or outputs.backend != "lab":
        return unavailable("platform", source,
                           "平台（宿主机、虚拟化层）证据由云服务商提供：附上 TPM/TCM 可信度量报告与主机防恶意代码部署记录。",
                           "the platform is the cloud provider's: attach its TPM/TCM measurement reports and anti-malware records")
    tpm = sorted(p.name for p in Path("/sys/class/tpm").glob("tpm*")) if Path("/sys/class/tpm").exists() else []
    efi = Path("/sys/firmware/efi").exists()
    secure_boot = None
    if efi:
        var = next(Path("/sys/firmware/efi/efivars").glob("SecureBoot-*"), None)
        secure_boot = bool(var and var.read_bytes()[-1:] == b"\x01")
    hosts = {}
    for host in outputs.hosts:
        if not host.folder:
            hosts[host.fqdn] = {"error": "the stack exports no folder (init.pid) for this host"}
            continue
        try:
            pid = (Path(host.folder) / "init.pid").read_text().strip()
            packages = _installed_packages(Path(f"/proc/{pid}/root"))
            hosts[host.fqdn] = {"packages": len(packages),
                                "anti_malware": sorted(set(packages) & set(ANTI_MALWARE_PACKAGES)),
                                "installed": dict(sorted(packages.items()))}
        except (OSError, ValueError) as exc:
            hosts[host.fqdn] = {"error": f"{type(exc).__name__}: {exc}"}
    return ok("platform", source, {"tpm_devices": tpm, "uefi": efi, "secure_boot": secure_boot, "hosts": hosts})


# ---------------------------------------------------------------- hosts (issue 5: govctl audit)
def collect_hosts(stack: str, audit_file: Path | None = None, limit: str | None = None, level: int = 3) -> dict:
    if audit_file is not None:
        return ok("hosts", str(audit_file), {"audit": json.loads(Path(audit_file).read_text(encoding="utf-8"))})
    if not (paths.ROOT / "govctl" / "commands" / "audit.py").exists():
        return unavailable("hosts", "govctl audit --json",
                           "主机核查命令（govctl audit）尚未安装：用 --host-audit FILE 提供 `govctl audit --json` 的结果，或附上主机核查记录。",
                           "the host audit command (govctl audit) is not installed: pass --host-audit FILE, or attach host check records")
    command = ["audit", "--stack", stack, "--level", str(level), "--json"] + (["--limit", limit] if limit else [])
    document, error = _govctl_json(*command, timeout=900)
    if document is None:
        return unavailable("hosts", f"govctl {' '.join(command)}",
                           "主机核查失败：修复后重试，或用 --host-audit FILE 提供结果。",
                           "the host audit failed: fix it and retry, or pass --host-audit FILE", error)
    return ok("hosts", f"govctl {' '.join(command)}", {"audit": document})


# ---------------------------------------------------------------- monitoring (issue 6)
def collect_monitoring() -> dict:
    spec_path = paths.ROOT / "monitors" / "slo.yaml"
    spec = None
    if spec_path.exists():
        raw = yamlfile.load(spec_path)
        spec = {"file": "monitors/slo.yaml", "objective": raw.get("objective"), "period": raw.get("period"),
                "services": [s.get("name") for s in raw.get("services", [])]}
    status, error = _govctl_json("monitor", "status", "--json", timeout=60)
    if status is None:
        status = {"error": error}
    elif not status.get("processes"):
        status = {"error": "the monitor is not up",
                  "prompt": {"zh": "监控平台未运行：执行 `govctl monitor up --targets FILE` 后重新生成报告，或附上集中监控平台的运行截图。",
                             "en": "the monitor is not running: `govctl monitor up --targets FILE`, then report again"},
                  "reported": status}
    availability, error = _govctl_json("availability", "report", "--from", "now-30d", "--format", "json", timeout=120)
    if availability is None:
        availability = {"error": error, "prompt": {
            "zh": f"无法生成可用性报告（{error.splitlines()[0] if error else '未知原因'}）：启动监控后重试，或附上可用性统计。",
            "en": "no availability report: start the monitor and retry, or attach availability figures"}}
    if spec is None and "error" in status:
        return unavailable("monitoring", "govctl monitor status",
                           "监控层未安装：附上集中监控平台的说明和运行记录。", "monitoring is not installed: attach the monitoring platform's records")
    return ok("monitoring", "govctl monitor status --json; govctl availability report --from now-30d",
              {"slo_spec": spec, "status": status, "availability": availability})


# ---------------------------------------------------------------- SecOps (issue 7)
def _sigma_rules(directory: Path) -> list[dict]:
    rules = []
    for path in sorted(directory.glob("*.yml")):
        for doc in yamlfile.load_all(path):
            if isinstance(doc, dict) and doc.get("name"):
                rules.append({"name": doc["name"], "title": doc.get("title"), "level": doc.get("level"),
                              "tags": doc.get("tags", []), "correlation": "correlation" in doc,
                              "file": path.name})
    return rules


def _incident_store(path: Path) -> dict:
    if not path.exists():
        return {"exists": False, "path": str(path)}
    from secops.incidents import CLOSED

    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        alerts = db.execute("SELECT count(*) FROM alerts").fetchone()[0]
        states = dict(db.execute("SELECT state, count(*) FROM incidents GROUP BY state").fetchall())
        placeholders = ",".join("?" * len(CLOSED))
        stale = db.execute(f"SELECT count(*) FROM incidents WHERE state NOT IN ({placeholders}) AND updated < ?",
                           (*CLOSED, time.time() - 7 * 86400)).fetchone()[0]
    except sqlite3.Error as exc:
        return {"exists": True, "path": str(path), "error": str(exc)}
    finally:
        db.close()
    return {"exists": True, "path": str(path), "alerts": alerts, "incidents": states, "stale_open": stale}


def platform_secops() -> dict | None:
    """The SecOps component of the platform `govctl up` brought up (its recorded command line in
    <state>/platform/platform.json and, when the supervisor reported it, its state), or None when no
    platform was brought up here."""
    record_path = paths.STATE / "platform" / "platform.json"
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        component = next(c for c in record["components"] if c.get("name") == "secops" and c.get("kind") == "service")
    except (OSError, ValueError, KeyError, TypeError, StopIteration):
        return None
    state = None
    try:
        status = json.loads((paths.STATE / "platform" / "status.json").read_text(encoding="utf-8"))
        state = status["services"]["secops"].get("state")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return {"record": str(record_path), "run": [str(a) for a in component["run"]], "state": state}


def collect_secops() -> dict:
    try:
        from secops.config import DEFAULT_CONFIG_PATH, load_config
        from secops.effective import from_command, summary
        from secops.stores import sqlite_path
    except ImportError as exc:
        return unavailable("secops", "secops", "SecOps 层未安装：附上日志审计与入侵检测平台的说明。",
                           "SecOps is not installed: attach the log audit and intrusion detection records", str(exc))
    # the platform's daemon runs with the effective configuration of its command line (issue 19); without
    # a platform, the configuration file alone
    component = platform_secops()
    config = None
    if component:
        try:
            config = from_command(component["run"])
        except Exception as exc:  # e.g. the stack is down: its outputs cannot be read; the file's config then
            component["error"] = f"{type(exc).__name__}: {exc}"[:500]
    config = config or load_config()
    rules_dir = paths.ROOT / "secops" / "rules"
    templates = paths.ROOT / "secops" / "es" / "templates.yaml"
    ecs_fields = []
    if templates.exists():
        doc = yamlfile.load(templates)
        ecs_fields = sorted(doc["templates"]["events"]["mappings"]["properties"])
    public = {k: config.get(k) for k in ("retention_days", "incident_retention_days", "sources", "syslog",
                                        "response", "enforcer", "bundled_rules", "store")}
    source = ("the platform's secops component (platform.json), secops/rules, incident store" if component
              else "secops config, secops/rules, incident store")
    return ok("secops", source,
              {"config_file": str(DEFAULT_CONFIG_PATH) if DEFAULT_CONFIG_PATH.exists() else None,
               "platform_component": component,
               "effective": summary(config) if component and "error" not in component else None,
               "config": public, "rules": _sigma_rules(rules_dir) if config.get("bundled_rules", True) else [],
               "ecs_fields": ecs_fields, "store": _incident_store(sqlite_path(config))
               if sqlite_path(config) else {"exists": False, "path": "elasticsearch (not collected yet)"}})


# ---------------------------------------------------------------- crypto (issue 8)
def collect_crypto() -> dict:
    from crypto import audit
    from crypto.keystore import Keystore, default_path
    from crypto.suite import load_settings
    from core.errors import GovctlError

    settings = load_settings()
    suite = settings.suite
    data: dict = {"collected": _now(),
                  "suite": {"name": suite.name, "hash": suite.hash, "aead": suite.aead, "signature": suite.signature}}
    keystore = None
    if not default_path().exists():
        data["keystore"] = {"error": f"no keystore at {default_path()}", "prompt": {
            "zh": "没有 govctl 密钥库：用 `govctl crypto keys create` 建立密钥，或附上所用密码机/KMS 的密钥清单与管理记录。",
            "en": "no govctl keystore: create keys, or attach the key inventory of the HSM/KMS in use"}}
    else:
        try:
            keystore = Keystore.open(events=None)
            data["keystore"] = {"path": str(default_path()), "keys": keystore.list_keys()}
        except GovctlError as exc:
            data["keystore"] = {"error": str(exc), "prompt": {
                "zh": "密钥库已锁定：设置 GOVCTL_CRYPTO_PASSPHRASE_FILE 后重新生成报告。",
                "en": "the keystore is locked: set GOVCTL_CRYPTO_PASSPHRASE_FILE and report again"}}
    entries = audit.default_dir() / audit.ENTRIES
    if not entries.exists():
        data["lifecycle"] = None
        data["audit_log"] = {"error": f"no audit log at {entries.parent}"}
    else:
        counts: dict[str, int] = {}
        trail = {"entries": 0, "first": None, "last": None, "kinds": {}, "failed": 0}  # the trail (issue 19)
        with open(entries, encoding="utf-8") as stream:
            for line in stream:
                entry = json.loads(line)
                action = entry.get("action", "")
                if action.startswith("key."):
                    counts[action] = counts.get(action, 0) + 1
                kind = action.split(".")[0]
                trail["kinds"][kind] = trail["kinds"].get(kind, 0) + 1
                trail["entries"] += 1
                trail["first"] = trail["first"] or entry.get("time")
                trail["last"] = entry.get("time")
                trail["failed"] += (entry.get("details") or {}).get("outcome") == "failed"
        data["lifecycle"] = counts
        data["trail"] = trail
        if keystore is None:
            data["audit_log"] = {"error": "the keystore (which holds the checkpoint key) is not open"}
        else:
            try:
                trusted = list(keystore.public_keys(audit.AUDIT_KEY).values())
                report = audit.verify_log(None, trusted)
                data["audit_log"] = {"ok": report.ok, "entries": report.entries, "checkpoints": report.checkpoints,
                                     "signed_size": report.signed_size, "problems": report.problems}
            except GovctlError as exc:
                data["audit_log"] = {"error": str(exc)}
    return ok("crypto", "crypto suite, keystore metadata, audit log verification", data)


# ---------------------------------------------------------------- drills (issue 9)
def collect_drills() -> dict:
    directory = paths.STATE / "drills" / "reports"
    files = sorted(directory.glob("*.json")) if directory.exists() else []
    if not files:
        return unavailable("drills", str(directory), "没有容灾演练报告：执行 `govctl drill run SCENARIO`，或附上演练记录。",
                           "no DR drill reports: run `govctl drill run SCENARIO`, or attach drill records")
    reports = []
    for path in files:
        try:
            r = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue
        reports.append({k: r.get(k) for k in ("scenario", "run_id", "verdict", "dry_run", "measured", "gbt20988",
                                              "started", "ended")} | {"file": path.name})
    return ok("drills", str(directory), {"reports": reports})


# ---------------------------------------------------------------- declarations (issue 19)
def _declared(layer: str, declaration, path: Path | None, absent_zh: str, absent_en: str) -> dict:
    """A layer read from a customer's declaration (module `declaration`: default_path, evidence). A broken
    declaration is bad input (raised: the customer must fix it), unlike one that is merely absent."""
    source = str(path or declaration.default_path())
    data = declaration.evidence(path)
    if data is None:
        return unavailable(layer, source, absent_zh.format(source=source), absent_en.format(source=source))
    return ok(layer, source, data)


def collect_intent(path: Path | None = None) -> dict:
    """The customer's declared intent and its parsed vulnerability scan."""
    from . import intent

    return _declared("intent", intent, path,
                     "未声明预期（{source} 不存在）：按 policies/intent.example.yaml 声明账户名册、sudo 策略、"
                     "软件包白名单、堡垒机第二因素与漏洞扫描结果后，这些条目可自动判定。",
                     "no intent declared ({source} is absent): declare the account roster, sudo policy, package "
                     "allow-list, the bastion's second factor and a vulnerability scan (policies/intent.example.yaml)")


def collect_documents(path: Path | None = None) -> dict:
    """The declared document register with each file's SM3 digest as found."""
    from . import documents

    return _declared("documents", documents, path,
                     "未登记文档（{source} 不存在）：按 policies/documents.example.yaml 登记安全管理制度、应急预案、"
                     "容量记录、迁移方案等已批准文档（路径、SM3 摘要、批准人、复审日期）后，这些条目可自动判定。",
                     "no document register ({source} is absent): declare the approved documents (path, SM3 "
                     "digest, approver, review date) as in policies/documents.example.yaml")


# ---------------------------------------------------------------- all layers
def collect(stack: str, host_audit: Path | None = None, host_limit: str | None = None, level: int = 3,
            progress: Callable[[str], None] = lambda layer: None) -> dict[str, dict]:
    """Every layer's evidence from the running environment (hosts audited at `level`). The intent and
    the document register are read first: a broken one is bad input before the slow collection starts."""
    layers = {"intent": collect_intent(), "documents": collect_documents()}
    progress("stack")
    layers["stack"] = collect_stack(stack)
    exported = layers["stack"].get("data", {}).get("outputs")
    outputs = StackOutputs.from_dict(exported) if exported else None
    for name, collector in (("firewall", lambda: collect_firewall(outputs)),
                            ("platform", lambda: collect_platform(outputs)),
                            ("hosts", lambda: collect_hosts(stack, host_audit, host_limit, level)),
                            ("monitoring", collect_monitoring), ("secops", collect_secops),
                            ("crypto", collect_crypto), ("drills", collect_drills)):
        progress(name)
        try:
            layers[name] = collector()
        except Exception as exc:  # a broken layer must not stop the report: it becomes 需人工核查
            layers[name] = unavailable(name, name, f"采集 {name} 层证据时出错：{type(exc).__name__}: {exc}",
                                       f"collecting {name} evidence failed: {type(exc).__name__}: {exc}")
    return layers


def save(layers: dict[str, dict], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, doc in layers.items():
        path = directory / f"{name}.json"
        path.write_text(json.dumps(doc, ensure_ascii=False, indent=1, default=str) + "\n", encoding="utf-8")
        written.append(path)
    return written


def load(directory: Path) -> dict[str, dict]:
    """The evidence documents of a directory (a saved collection, a pack's evidence/, a fixture)."""
    from core.errors import BadInput

    directory = Path(directory)
    if not directory.is_dir():
        raise BadInput(f"--evidence {directory} is not a directory; collect one with `govctl comply collect --out DIR`")
    layers = {}
    for name in LAYERS:
        path = directory / f"{name}.json"
        if path.exists():
            try:
                layers[name] = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise BadInput(f"--evidence {path} is not JSON: {exc}") from None
    if not layers:
        raise BadInput(f"--evidence {directory} holds none of {', '.join(f'{n}.json' for n in LAYERS)}")
    return layers
