"""The actions a drill plan can name. Each takes the run context and the step's arguments,
does one thing on the target, and returns a sentence for the timeline (or raises DrillError).

ARGS declares each action's arguments, so a plan with an unknown action, a missing or unknown
argument, or a center that does not exist is refused before anything is touched.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from .lab import DrillError, wait_until

ACTIONS: dict[str, Callable[..., str]] = {}
ARGS: dict[str, dict[str, str]] = {}  # action → {argument: kind}; kinds: center, link, site, number, text


def action(name: str, **args: str):
    def register(func):
        ACTIONS[name] = func
        ARGS[name] = args
        return func

    return register


# -- preflight and verification ---------------------------------------------------------
@action("lab_healthy")
def lab_healthy(ctx) -> str:
    status = ctx.target.healthy()
    if not status["healthy"]:
        bad = [h["fqdn"] for h in status["hosts"] if not h["ssh"]]
        raise DrillError(f"the lab is not healthy (hosts down: {bad or 'none'}, replication: "
                         f"{status['replication']['standbys']}, service served by "
                         f"{status['service'].get('served_by')})")
    return "every host answers SSH, every standby streams, the service answers"


@action("center_exists", center="text")
def center_exists(ctx, center: str) -> str:
    if center not in ctx.target.centers():
        raise DrillError(f"center {center!r} does not exist in this stack")
    return f"center {center} exists"


@action("replication_lag_below", seconds="number")
def replication_lag_below(ctx, seconds: float) -> str:
    rows = ctx.target.replication(ctx.primary)
    worst = max((r["lag_seconds"] for r in rows), default=0.0)
    if worst > seconds:
        raise DrillError(f"replication lag {worst:.1f} s exceeds {seconds} s")
    return f"worst replication lag {worst:.2f} s"


@action("monitoring_quiet", seconds="number")
def monitoring_quiet(ctx, seconds: float) -> str:
    """No page alert is active (waiting up to `seconds` for earlier ones to resolve), so the first
    page after the fault is this drill's own. While it waits it names what it waits on (ctx.notice,
    ctx.blockers), and a timeout names what still blocks."""
    if ctx.detection.alertmanager is None:
        return ctx.detection.unavailable_reason or "monitoring is not running"
    centers = set(ctx.target.centers())
    # A monitor that has just started does not measure the SLI yet: it could not page in time.
    _wait_naming(ctx, seconds, "monitoring to measure the SLI of every center",
                 lambda: [{"kind": "unmeasured_center", "center": c}
                          for c in sorted(centers - ctx.detection.measured_centers())])
    _wait_naming(ctx, seconds, "active page alerts to resolve",
                 lambda: [{"kind": "page_alert", **{k: a[k] for k in ("alertname", "labels", "since",
                                                                        "state")}}
                          for a in ctx.detection.page_alerts(0)])
    return "monitoring measures every center and nothing pages" + (
        f" (waited on {len(ctx.blockers)}: {'; '.join(describe_blocker(b) for b in ctx.blockers)})"
        if ctx.blockers else "")


# labels every page alert carries; naming them again says nothing about which one it is
_ROUTINE_LABELS = {"alertname", "severity", "sloth_severity", "sloth_id", "sloth_slo"}


def describe_blocker(blocker: dict) -> str:
    """One line naming what a preflight waits on: the alert with its labels and since when."""
    if blocker["kind"] == "unmeasured_center":
        return f"center {blocker['center']} not measured yet"
    labels = ", ".join(f"{k}={v}" for k, v in sorted(blocker["labels"].items()) if k not in _ROUTINE_LABELS)
    return f"{blocker['alertname']}{{{labels}}} {blocker['state']} since {blocker['since']}"


def _wait_naming(ctx, seconds: float, what: str, blocking: Callable[[], list[dict]]) -> None:
    """Wait until nothing blocks; tell ctx.notice whenever the set of blockers changes, record each
    in ctx.blockers (with when it was first and last seen), and on timeout raise naming them."""
    deadline = time.monotonic() + seconds
    announced: list[str] | None = None
    while True:
        current = blocking()
        now = time.time()
        described = [describe_blocker(b) for b in current]
        for b, text in zip(current, described):
            known = next((r for r in ctx.blockers if r["description"] == text), None)
            if known is None:
                ctx.blockers.append({**b, "description": text, "first_seen": now, "last_seen": now})
            else:
                known["last_seen"] = now
        if not current:
            if announced:
                ctx.notice(f"preflight: done waiting for {what}")
            return
        if described != announced:
            ctx.notice(f"preflight waits for {what}: " + "; ".join(described))
            announced = described
        if time.monotonic() >= deadline:
            raise DrillError(f"timed out after {seconds:.0f} s waiting for {what}; still blocking: "
                             + "; ".join(described))
        time.sleep(1)


@action("single_primary")
def single_primary(ctx) -> str:
    primaries = ctx.target.primaries()
    if primaries != [ctx.primary]:
        raise DrillError(f"expected exactly one primary ({ctx.primary}), found {primaries}")
    return f"exactly one writable primary: {ctx.primary}"


@action("standby_path", center="center", peer="center", link="link")
def standby_path(ctx, center: str, peer: str, link: str) -> str:
    """Traffic from a center to a peer's database now takes the given (standby) link."""
    route = ctx.target.route_to(center, ctx.target.db_host(peer).ipv4)
    device = ctx.target.link_device(link, center)
    if f"dev {device}" not in route:
        raise DrillError(f"traffic from {center} to {peer} does not use link {link}: {route}")
    return f"{center} → {peer} goes over {link} ({route})"


@action("service_served_by", center="center")
def service_served_by(ctx, center: str) -> str:
    wait_until(lambda: ctx.target.service_center() == center, 30, f"the service to answer from {center}")
    return f"the service address answers from {center}"


@action("ledger_consistent")
def ledger_consistent(ctx) -> str:
    """Row counts and ordered checksums agree on every running database."""
    ctx.ledger.pause()
    try:
        query = ("SELECT count(*) || ':' || coalesce(md5(string_agg(seq::text, ',' ORDER BY seq)), '') "
                 "FROM ledger")
        target = ctx.target
        # Standbys must have replayed everything the primary has before comparing.
        lsn = target.sql(ctx.primary, "SELECT pg_current_wal_lsn()", db="postgres")
        running = [c for c in target.centers() if target.pg_running(c)]
        for center in running:
            if center != ctx.primary:
                wait_until(lambda c=center: target.sql(
                    c, f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'", db="postgres") == "t",
                    30, f"{center} to replay up to {lsn}")
        sums = {center: target.sql(center, query) for center in running}
    finally:
        ctx.ledger.resume()
    if len(set(sums.values())) != 1:
        raise DrillError(f"ledger differs between databases: {sums}")
    count = next(iter(sums.values())).split(":")[0]
    ctx.verification = {"databases": sorted(sums), "rows": int(count),
                        "checksum": next(iter(sums.values())).split(":")[1]}
    return f"{count} ledger rows identical (ordered checksum) on {', '.join(sorted(sums))}"


# -- faults ------------------------------------------------------------------------------
@action("power_off_center", center="center")
def power_off_center(ctx, center: str) -> str:
    ctx.mark_fault()
    return ctx.target.power_off(center)


@action("power_off_site", site="site")
def power_off_site(ctx, site: str) -> str:
    ctx.mark_fault()
    return "; ".join(ctx.target.power_off(c) for c in ctx.target.site_centers(site))


@action("cut_link", link="link")
def cut_link(ctx, link: str) -> str:
    ctx.mark_fault()
    return ctx.target.set_link(link, up=False)


@action("begin_switchover")
def begin_switchover(ctx) -> str:
    """A planned switchover has no fault: RTO is measured from the moment it begins."""
    ctx.mark_fault()
    return "planned switchover begins"


@action("fail", message="text")
def fail(ctx, message: str) -> str:
    """An injected failure (used to rehearse the drill runner's own rollback)."""
    raise DrillError(f"injected failure: {message}")


# -- detection ---------------------------------------------------------------------------
@action("await_page_alert", seconds="number")
def await_page_alert(ctx, seconds: float) -> str:
    found = ctx.detection.wait_for_page(ctx.fault_at, seconds)
    if found is None:
        return ctx.detection.unavailable_reason or f"no page alert within {seconds:.0f} s"
    ctx.detected_at = found
    return f"page alert received {found - ctx.fault_at:.1f} s after the fault"


# -- recovery ----------------------------------------------------------------------------
@action("fence", center="center")
def fence(ctx, center: str) -> str:
    return ctx.target.fence(center)


@action("promote", center="center")
def promote(ctx, center: str) -> str:
    if ctx.target.is_primary(ctx.primary) and ctx.primary != center:
        raise DrillError(f"refusing to promote {center}: {ctx.primary} is still a writable primary "
                         "(fence it first)")
    result = ctx.target.promote(center)
    ctx.primary = center
    return result


@action("set_sync", center="center", standbys="centers")
def set_sync(ctx, center: str, standbys: list[str]) -> str:
    return ctx.target.set_sync(center, standbys)


@action("follow", center="center", primary="center")
def follow(ctx, center: str, primary: str) -> str:
    return ctx.target.follow(center, primary)


@action("repoint_web", primary="center")
def repoint_web(ctx, primary: str) -> str:
    return ctx.target.repoint_web(primary)


@action("move_service", center="center")
def move_service(ctx, center: str) -> str:
    return ctx.target.move_service(center)


@action("await_writes")
def await_writes(ctx) -> str:
    """Wait for the first write acknowledged through the service address after the fault."""
    first = ctx.ledger.first_ack_after(ctx.fault_at, timeout=120)
    if first is None:
        got = ctx.ledger.failures_since(ctx.fault_at)
        raise DrillError("no write succeeded through the service address within 120 s"
                         + (f"; the writes got: {got}" if got else "; the heartbeat writer recorded nothing"))
    return f"writes succeed again {first - ctx.fault_at:.1f} s after the fault"


# -- failback ----------------------------------------------------------------------------
@action("restore_link", link="link")
def restore_link(ctx, link: str) -> str:
    done = ctx.target.set_link(link, up=True)
    ctx.target.restore_routes()  # the routes over the link went down with it
    return done


@action("restore_original")
def restore_original(ctx) -> str:
    """Converge to the topology's layout from wherever the drill left it (also the rollback)."""
    return ctx.restore_original()


@action("backup", center="center")
def backup(ctx, center: str) -> str:
    return ctx.backups.take(center)


@action("restore_check")
def restore_check(ctx) -> str:
    return ctx.backups.restore_and_compare(ctx.primary)


def check_step(step: dict[str, Any], names: dict[str, set[str]]) -> list[str]:
    """Problems with one plan step: unknown action, arguments missing/unknown/not in the stack."""
    name = step.get("action")
    if name not in ACTIONS:
        return [f"unknown action {name!r}; known: {', '.join(sorted(ACTIONS))}"]
    spec = ARGS[name]
    given = {k: v for k, v in step.items() if k != "action"}
    problems = [f"{name}: missing argument {a!r}" for a in spec if a not in given]
    problems += [f"{name}: unknown argument {a!r}" for a in given if a not in spec]
    for arg, kind in spec.items():
        value = given.get(arg)
        if value is None:
            continue
        values = value if kind == "centers" else [value]
        pool = names.get("center" if kind == "centers" else kind)
        if pool is not None:
            problems += [f"{name}: {arg} {v!r} is not one of {', '.join(sorted(pool))}"
                         for v in values if v not in pool]
        if kind == "number" and not isinstance(value, (int, float)):
            problems.append(f"{name}: {arg} must be a number")
    return problems


__all__ = ["ACTIONS", "ARGS", "check_step", "time"]
