"""Precision: administrators who mistype a password now and then, from addresses they log in from all day,
are never alerted or blocked — with no allowlist at all — while every attack on SSH still is: fast and
slow brute force, password spraying, success after failures, an attacker who owns one account trying
the others, and a guesser behind an administrator's own address (the trusted-pair rule)."""
from __future__ import annotations

import datetime
import random
from pathlib import Path

import pytest

from secops.detect import BUNDLED_RULES, Detector, TrustedPairs, load_rules
from secops.normalize import Normalizer
from secops.replay import replay
from secops.respond import Allowlist

START = datetime.datetime(2026, 11, 2)  # a Monday
BASTION = "10.30.0.5"  # the jump host all administrators share: one address, many accounts
ADMINS = [f"ops{i:02d}" for i in range(40)]
ATTACKS = {  # attacker address → the rules that must catch it
    "203.0.113.10": {"ssh_bruteforce_fast"},
    "203.0.113.11": {"ssh_bruteforce_slow"},
    "203.0.113.12": {"ssh_password_spraying"},
    "203.0.113.13": {"ssh_bruteforce_fast", "ssh_success_after_bruteforce"},
    "203.0.113.14": {"ssh_password_spraying"},  # owns the account `intern`, tries the administrators'
}


def _line(t: datetime.datetime, text: str) -> tuple[datetime.datetime, str]:
    return t, f"{t.strftime('%b %e %H:%M:%S')} bastion-1 sshd[{random.randint(1000, 60000)}]: {text}"


def fail(t, user, ip):
    return _line(t, f"Failed password for {user} from {ip} port {random.randint(1024, 65535)} ssh2")


def ok(t, user, ip):
    return _line(t, f"Accepted password for {user} from {ip} port {random.randint(1024, 65535)} ssh2")


def admin_days(rnd: random.Random, days: int = 9) -> list[tuple[datetime.datetime, str]]:
    """Forty administrators over `days` days (weekends off): each logs in about twenty times a working
    day, mostly through the shared bastion, otherwise from their own workstation (10.30.1.x); before
    one login in six they mistype their password one to three times. Everyone's first login of the day
    falls in the 08:30–09:00 rush."""
    out = []
    for day in range(days):
        date = START + datetime.timedelta(days=day)
        if date.weekday() >= 5:
            continue
        for n, user in enumerate(ADMINS):
            times = sorted([rnd.uniform(8.5, 9.0)] + [rnd.uniform(8.5, 18.0) for _ in range(rnd.randint(15, 25))])
            for hour in times:
                t = date + datetime.timedelta(hours=hour)
                ip = BASTION if rnd.random() < 0.7 else f"10.30.1.{10 + n}"
                if rnd.random() < 1 / 6:
                    for _ in range(rnd.randint(1, 3)):
                        out.append(fail(t, user, ip))
                        t += datetime.timedelta(seconds=rnd.randint(2, 8))
                out.append(ok(t, user, ip))
    return out


def attacks(rnd: random.Random) -> list[tuple[datetime.datetime, str]]:
    day = START + datetime.timedelta(days=1, hours=10)
    out = []
    for i in range(30):  # fast: 30 guesses at root in a minute
        out.append(fail(day + datetime.timedelta(seconds=2 * i), "root", "203.0.113.10"))
    for i in range(72):  # slow: one guess every 150 s for three hours (24 an hour, 2 a minute at most)
        out.append(fail(day + datetime.timedelta(seconds=150 * i), "root", "203.0.113.11"))
    for i, user in enumerate(["admin", "oracle", "postgres", "deploy", "test", "ubuntu", "git"]):  # spraying
        out.append(fail(day + datetime.timedelta(minutes=i), user, "203.0.113.12"))
    for i in range(8):  # eight guesses, then in
        out.append(fail(day + datetime.timedelta(hours=2, seconds=3 * i), "deploy", "203.0.113.13"))
    out.append(ok(day + datetime.timedelta(hours=2, minutes=1), "deploy", "203.0.113.13"))
    # an attacker with a valid account of its own logs in with it all day (its pair is trusted) and
    # tries five administrators' accounts, one a minute and a half
    for h in range(9):
        out.append(ok(day + datetime.timedelta(hours=h - 1), "intern", "203.0.113.14"))
    for i, user in enumerate(ADMINS[:5]):
        out.append(fail(day + datetime.timedelta(hours=3, seconds=90 * i), user, "203.0.113.14"))
    return out


def write(path: Path, lines) -> Path:
    path.write_text("".join(text + "\n" for _, text in sorted(lines, key=lambda x: x[0])), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def rules():
    ruleset = load_rules()
    assert ruleset.errors == []
    return ruleset


def run(rules, path: Path) -> dict:
    return replay([path], rules, Allowlist([]), year=2026)  # no allowlist configured at all


def alerted(result: dict) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for a in result["alerts"]:
        out.setdefault(a["source.ip"], set()).add(a["rule"])
    return out


def test_administrators_who_mistype_are_never_alerted_or_blocked(rules, tmp_path):
    random.seed(5)
    lines = admin_days(random.Random(5))
    fails_from_bastion = sum(1 for _, text in lines if "Failed" in text and BASTION in text)
    assert len(lines) > 6000 and fails_from_bastion > 800  # a realistic month's worth of mistakes, in 7 days
    result = run(rules, write(tmp_path / "admins.log", lines))
    assert result["parsed"] == len(lines)
    assert result["alerts"] == [] and result["blocked"] == []


def test_the_same_administrators_without_trusted_pairs_would_be_blocked(rules, tmp_path):
    """What the trusted pairs prevent: the per-address rules alone (the trust attributes removed) block the
    bastion for the administrators' own mistakes."""
    plain = tmp_path / "ssh-without-trust.yml"
    text = (BUNDLED_RULES / "ssh.yml").read_text(encoding="utf-8")
    kept = [doc for doc in text.split("\n---\n") if "name: ssh_bruteforce_trusted_pair" not in doc]
    assert len(kept) == 6
    plain.write_text("\n---\n".join(d.replace("trust: {earned_by: ssh_login_success, counts: untrusted}\n", "")
                                    for d in kept), encoding="utf-8")
    random.seed(5)
    result = run(load_rules([plain]), write(tmp_path / "admins.log", admin_days(random.Random(5))))
    assert result["blocked"] == [BASTION]
    assert {"ssh_bruteforce_fast", "ssh_bruteforce_slow", "ssh_password_spraying"} <= alerted(result)[BASTION]


def test_every_attack_is_alerted_and_blocked_among_the_administrators(rules, tmp_path):
    random.seed(6)
    rnd = random.Random(6)
    result = run(rules, write(tmp_path / "mixed.log", admin_days(rnd) + attacks(rnd)))
    by_source = alerted(result)
    for ip, expected in ATTACKS.items():
        assert expected <= by_source.get(ip, set()), (ip, by_source.get(ip))
    assert sorted(result["blocked"]) == sorted(ATTACKS)
    assert set(by_source) == set(ATTACKS)  # and nothing else: no administrator, not the bastion


def test_a_guesser_behind_the_bastion_is_caught_per_pair_even_slowly(rules, tmp_path):
    """Someone on the bastion guesses ops00's password, one try every six minutes for three hours, while
    ops00 keeps logging in from there: the pair (ops00, bastion) is trusted, so the per-address rules
    do not count the guesses, but the trusted-pair rule does, against its higher threshold."""
    day = START + datetime.timedelta(hours=9)
    lines = [ok(day + datetime.timedelta(minutes=30 * i), "ops00", BASTION) for i in range(10)]
    lines += [fail(day + datetime.timedelta(minutes=6 * i, seconds=7), "ops00", BASTION) for i in range(30)]
    result = run(rules, write(tmp_path / "guess.log", lines))
    hits = [a for a in result["alerts"] if a["rule"] == "ssh_bruteforce_trusted_pair"]
    assert [(a["source.ip"], a["user"]) for a in hits] == [(BASTION, "ops00")]
    assert hits[0]["first"] == "2026-11-02T09:00:07.000Z" and hits[0]["count"] == 30  # every guess
    assert result["blocked"] == [BASTION]
    assert {a["rule"] for a in result["alerts"]} == {"ssh_bruteforce_trusted_pair"}


def test_trust_is_per_account_and_address_and_decays(rules):
    def alerts(lines):
        n, d = Normalizer(year=2026), Detector(rules)
        for _, text in sorted(lines, key=lambda x: x[0]):
            d.process(n.normalize(text.encode()))
        return {(a.rule.name, a.source_ip) for a in d.alerts}

    t = START + datetime.timedelta(hours=9)
    burst = lambda at, user, ip: [fail(at + datetime.timedelta(seconds=i), user, ip) for i in range(6)]  # noqa: E731
    # trusted: the same account from the same address, within 7 days
    assert alerts([ok(t, "ops01", "10.30.1.11"), *burst(t + datetime.timedelta(days=6), "ops01", "10.30.1.11")]) == set()
    # the same address, another account: a stranger's guesses
    assert ("ssh_bruteforce_fast", "10.30.1.11") in alerts([ok(t, "ops01", "10.30.1.11"),
                                                            *burst(t + datetime.timedelta(hours=1), "ops02", "10.30.1.11")])
    # the same account, another address
    assert ("ssh_bruteforce_fast", "10.30.1.12") in alerts([ok(t, "ops01", "10.30.1.11"),
                                                            *burst(t + datetime.timedelta(hours=1), "ops01", "10.30.1.12")])
    # more than 7 days after the pair's last success: trust has decayed
    assert ("ssh_bruteforce_fast", "10.30.1.11") in alerts([ok(t, "ops01", "10.30.1.11"),
                                                            *burst(t + datetime.timedelta(days=7, seconds=1), "ops01", "10.30.1.11")])
    # failures before the first success are not trusted (a success cannot excuse what came before it)
    assert ("ssh_bruteforce_fast", "10.30.1.11") in alerts([*burst(t, "ops01", "10.30.1.11"),
                                                            ok(t + datetime.timedelta(seconds=30), "ops01", "10.30.1.11")])


def test_trusted_pairs_forget_what_is_older_than_the_window():
    pairs = TrustedPairs("ssh_login_success", ("user.name", "source.ip"), window=3600)
    for i in range(100_000):  # 100,000 distinct pairs over 100,000 s: about 3,600 live at a time
        pairs.earn({"@timestamp": float(i), "user.name": f"u{i}", "source.ip": "10.0.0.1"})
    assert len(pairs.last) <= 2 * 4096  # about one window (3,600) and at most doubled before it is pruned
    assert pairs.trusted({"@timestamp": 99_999.0, "user.name": "u99998", "source.ip": "10.0.0.1"})
    assert not pairs.trusted({"@timestamp": 99_999.0, "user.name": "u5", "source.ip": "10.0.0.1"})
    assert not pairs.trusted({"@timestamp": 99_999.0, "user.name": ["u99998"], "source.ip": "10.0.0.1"})


@pytest.mark.parametrize("attributes, reason", [
    ("earns_trust: {pair: [user.name], window: soon}", "earns_trust.window"),
    ("earns_trust: {pair: [], window: 1h}", "earns_trust.pair"),
    ("earns_trust: {pair: [user.name], window: 1h, extra: 1}", "earns_trust"),
    ("earns_trust: [user.name]", "earns_trust"),
])
def test_bad_earns_trust_refuses_the_rule_by_path_and_setting(tmp_path, attributes, reason):
    path = tmp_path / "bad.yml"
    path.write_text(f"title: t\nname: t\nlogsource: {{product: linux, service: sshd}}\n"
                    f"detection: {{sel: {{event.action: ssh_login}}, condition: sel}}\n{attributes}\n")
    ruleset = load_rules([path])
    assert len(ruleset.errors) == 1 and ruleset.errors[0][0] == str(path)
    assert reason in ruleset.errors[0][1]


def test_bad_trust_refuses_the_correlation_and_the_others_keep_running(tmp_path):
    path = tmp_path / "corr.yml"
    path.write_text("""title: base
name: base
logsource: {product: linux, service: sshd}
detection: {sel: {event.action: ssh_login}, condition: sel}
---
title: counts what
name: bad_counts
correlation: {type: event_count, rules: [base], group-by: [source.ip], timespan: 1m, condition: {gte: 2}}
trust: {earned_by: base, counts: sometimes}
---
title: earner without earns_trust
name: bad_earner
correlation: {type: event_count, rules: [base], group-by: [source.ip], timespan: 1m, condition: {gte: 2}}
trust: {earned_by: base, counts: untrusted}
---
title: fine
name: fine
correlation: {type: event_count, rules: [base], group-by: [source.ip], timespan: 1m, condition: {gte: 2}}
""")
    ruleset = load_rules([path])
    reasons = sorted(r for _, r in ruleset.errors)
    assert len(reasons) == 2
    assert "trust.counts" in reasons[0] and "'sometimes' is not one of" in reasons[0]
    assert "trust.earned_by: 'base' is not a loaded base rule with earns_trust" in reasons[1]
    assert [c.info.name for c in ruleset.correlations] == ["fine"]


def test_correlations_trusting_different_rules_and_chains_each_count_their_own(tmp_path):
    """The engine is generic: two earning rules (one trusting the account+address pair, one the address
    alone) feeding correlations from the same base rule, and a correlation on a correlation."""
    path = tmp_path / "trust.yml"
    path.write_text("""title: failure
name: failure
logsource: {product: linux, service: sshd}
detection: {sel: {event.action: ssh_login, event.outcome: failure}, condition: sel}
---
title: success (pair)
name: ok_pair
logsource: {product: linux, service: sshd}
detection: {sel: {event.action: ssh_login, event.outcome: success}, condition: sel}
earns_trust: {pair: [user.name, source.ip], window: 1h}
---
title: success (address)
name: ok_addr
logsource: {product: linux, service: sshd}
detection: {sel: {event.action: ssh_login, event.outcome: success}, condition: sel}
earns_trust: {pair: [source.ip], window: 1h}
---
title: by pair
name: by_pair
correlation: {type: event_count, rules: [failure], group-by: [source.ip], timespan: 1m, condition: {gte: 3}}
trust: {earned_by: ok_pair, counts: untrusted}
---
title: by address
name: by_addr
correlation: {type: event_count, rules: [failure], group-by: [source.ip], timespan: 1m, condition: {gte: 3}}
trust: {earned_by: ok_addr, counts: untrusted}
---
title: chained
name: chained
correlation: {type: event_count, rules: [by_pair], group-by: [source.ip], timespan: 1m, condition: {gte: 1}}
trust: {earned_by: ok_addr, counts: untrusted}
""")
    rules = load_rules([path])
    assert rules.errors == []
    t = START + datetime.timedelta(hours=9)
    lines = [ok(t, "alice", "10.30.1.11")]
    lines += [fail(t + datetime.timedelta(minutes=1, seconds=i), "bob", "10.30.1.11") for i in range(3)]
    lines += [fail(t + datetime.timedelta(minutes=5, seconds=i), "alice", "10.30.1.12") for i in range(3)]
    n, d = Normalizer(year=2026), Detector(rules)
    for _, text in lines:
        d.process(n.normalize(text.encode()))
    assert sorted((a.rule.name, a.source_ip) for a in d.alerts if not a.rule.name.startswith("ok_")) == [
        ("by_addr", "10.30.1.12"),  # 10.30.1.11 is a trusted address for by_addr
        ("by_pair", "10.30.1.11"), ("by_pair", "10.30.1.12"),  # bob never logged in from .11
        ("chained", "10.30.1.12")]  # fed by by_pair, counting only untrusted addresses


def test_trust_survives_a_restart_through_the_detector_checkpoint():
    """The crash-safe checkpoint (Detector.state/restore) carries the trusted pairs: after a restart an
    administrator's mistype still counts against the trusted-pair threshold, not the brute-force one."""
    import json

    before = Detector(load_rules(), 60)
    normalizer = Normalizer(year=2026)
    t = START + datetime.timedelta(hours=9)
    before.process(normalizer.normalize(ok(t, "ops01", BASTION)[1].encode()))
    saved = json.loads(json.dumps(before.state(lambda alert: None)))
    after = Detector(load_rules(), 60)
    after.restore(saved, lambda ref: None)
    earner = next(r for r in after.rules.base if r.earns_trust is not None)
    mistype = normalizer.normalize(fail(t + datetime.timedelta(minutes=5), "ops01", BASTION)[1].encode())
    stranger = normalizer.normalize(fail(t + datetime.timedelta(minutes=5), "ops02", BASTION)[1].encode())
    assert earner.earns_trust.trusted(mistype) and not earner.earns_trust.trusted(stranger)
