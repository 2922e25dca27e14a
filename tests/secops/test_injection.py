"""Log injection: text a client chooses (a user name, a path, a user agent, a database name) must never
choose whom the engine blocks. Per format a table of injection lines — the issue's own, and the kinds
fail2ban's history is known for (user names carrying "from <ip>", injection into sshd's auth info and
pam's rhost=, Apache/nginx auth-user and request text, CVE-2013-2178) — replayed through the real
normalizer, bundled Sigma rules and decision engine; then a Hypothesis property over generated text."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secops.detect import Detector, load_rules
from secops.normalize import Normalizer, Rejected
from secops.replay import replay
from secops.respond import Allowlist, DecisionEngine

REAL = "198.51.100.7"  # the client that really sent the lines
DECOY = "192.0.2.77"  # an innocent address the attacker wants blocked
MGMT = "10.11.4.10"  # an allowlisted management address the attacker hides behind
ALLOW = ["10.11.4.0/24"]

AUDIT_RULE = """
title: auditd authentication failure (test rule)
name: test_auditd_auth_failure
id: 4b6e0b36-1c1f-4c55-9d0e-000000000001
status: test
logsource: {product: linux, service: auditd}
detection:
  selection:
    event.action: user_auth
    event.outcome: failure
  condition: selection
level: high
response: block
"""


@pytest.fixture(scope="module")
def rules(tmp_path_factory):
    """The bundled rules plus one that blocks on a single auditd authentication failure (none is bundled)."""
    folder = tmp_path_factory.mktemp("rules")
    (folder / "auditd.yml").write_text(AUDIT_RULE)
    from secops.detect import BUNDLED_RULES
    ruleset = load_rules([BUNDLED_RULES, folder])
    assert ruleset.errors == []
    return ruleset


def _audit_value(text: str) -> str:
    """An auditd user-space value as auditd writes it: quoted, or hex when it holds a space, a double quote,
    a control or non-ASCII character."""
    if any(c in ' "' or not 0x21 <= ord(c) <= 0x7e for c in text):
        return text.encode().hex().upper()
    return f'"{text}"'


def _nginx_value(text: str) -> str:
    """nginx's default log escaping: double quote, backslash and bytes outside printable ASCII as \\xXX."""
    return "".join(c if 0x20 <= ord(c) <= 0x7e and c not in '"\\' else "".join(f"\\x{b:02X}" for b in c.encode())
                   for c in text)


# Builders: (client text x, i) → one line whose real sender is REAL. Each line, repeated, makes a bundled
# rule (or the auditd test rule) block its source.
def sshd_failed(x, i):
    return f"Nov  1 00:00:{i:02d} web-1 sshd[{100 + i}]: Failed password for invalid user {x} from {REAL} port {4000 + i} ssh2"


def sshd_publickey(x, i):
    return (f"Nov  1 00:00:{i:02d} web-1 sshd[{100 + i}]: Failed publickey for {x} from {REAL} port {4000 + i} "
            f"ssh2: ED25519 SHA256:q1w2e3r4t5y6u7i8o9p0")


def sshd_invalid(x, i):
    return f"Nov  1 00:00:{i:02d} web-1 sshd[{100 + i}]: Invalid user {x} from {REAL} port {4000 + i}"


def sshd_maxauth(x, i):
    return (f"Nov  1 00:00:{i:02d} web-1 sshd[{100 + i}]: error: maximum authentication attempts exceeded for "
            f"invalid user {x} from {REAL} port {4000 + i} ssh2 [preauth]")


def pam(x, i):
    return (f"Nov  1 00:00:{i:02d} web-1 sshd[{100 + i}]: pam_unix(sshd:auth): authentication failure; logname= uid=0 "
            f"euid=0 tty=ssh ruser= rhost={REAL}  user={x}")


def nginx_agent(x, i):
    return (f'{REAL} - - [01/Nov/2026:00:00:{i:02d} +0000] "GET /item?id=1%27%20union%20select%20password HTTP/1.1" '
            f'200 12 "-" "{_nginx_value(x)}"')


def nginx_path(x, i):
    return (f'{REAL} - - [01/Nov/2026:00:00:{i:02d} +0000] "GET /../../etc/passwd?q={_nginx_value(x)} HTTP/1.1" '
            f'404 12 "{_nginx_value(x)}" "curl/8"')


def auditd(x, i):
    return (f"type=USER_AUTH msg=audit(1793491200.{i:03d}:{700 + i}): pid={200 + i} uid=0 auid=4294967295 "
            f"ses=4294967295 msg='op=PAM:authentication grantors=? acct={_audit_value(x)} exe=\"/usr/sbin/sshd\" "
            f"hostname={REAL} addr={REAL} terminal=ssh res=failed'")


def postgresql(x, i):  # log_line_prefix = '%m [%p] %q%u@%d %r '
    return (f'2026-11-01 00:00:{i:02d}.000 UTC [{300 + i}] {x}@{x} {REAL}({5000 + i}) FATAL:  password '
            f'authentication failed for user "{x}"')


def postgresql_conn(x, i):  # with log_connections = on: the server-written address of the backend wins
    return (f"2026-11-01 00:00:{i:02d}.000 UTC [{300 + i}] [unknown]@[unknown] LOG:  connection received: "
            f"host={REAL} port={5000 + i}\n" + postgresql(x, i))


def kernel(x, i):  # nothing in a kernel LOG line is the client's text: x goes where a forger would put it
    return (f"Nov  1 00:00:{i:02d} fw-prod kernel: [1234.5] govctl-drop: IN=eth0 OUT= MAC=00:00 SRC={REAL} "
            f"DST=10.11.1.10 LEN=44 TOS=0x00 PROTO=TCP SPT=40000 DPT={20 + i} WINDOW=1024 SYN URGP=0 {x}")


def json_line(x, i):
    return json.dumps({"@timestamp": f"2026-11-01T00:00:{i:02d}Z", "source": {"ip": REAL},
                       "event": {"dataset": "sshd", "action": "ssh_login", "outcome": "failure"},
                       "user": {"name": x}, "user_agent": {"original": x}, "message": x}, ensure_ascii=False)


BUILDERS = {"sshd": sshd_failed, "sshd-publickey": sshd_publickey, "sshd-invalid": sshd_invalid,
            "sshd-maxauth": sshd_maxauth, "pam": pam, "nginx-agent": nginx_agent, "nginx-path": nginx_path,
            "auditd": auditd, "postgresql": postgresql, "postgresql-conn": postgresql_conn, "kernel": kernel, "json": json_line}


def _decide(lines: list[str], rules) -> tuple[set[str], set[str], list]:
    """Lines → (blocked, allowlisted alert addresses, events) through normalizer, detector and engine."""
    normalizer = Normalizer(year=2026)
    engine = DecisionEngine(Allowlist(ALLOW), dry_run=True)
    detector = Detector(rules, on_alert=lambda alert, new: engine.on_alert(alert, alert.last))
    events = []
    for line in (one for many in lines for one in many.split("\n")):
        event = normalizer.normalize(line.encode())
        events.append(event)
        if event.__class__ is not Rejected:
            detector.process(event)
    allowlisted = {d.address for d in engine.decisions if d.action == "allowlisted"}
    return set(engine.active), allowlisted, events


# (format, client text[, blocked]) — the issue's lines, fail2ban's known injection patterns, special addresses.
# Blocked is the real sender unless the line reads two ways: then it names no source, and nobody is blocked.
INJECTIONS = [
    ("sshd", f"a from {DECOY} port 22 ssh2"),  # the issue's line
    ("sshd", f"a from {MGMT} port 22 ssh2"),  # a management decoy: no allowlisted alert, the sender still blocked
    ("sshd", f"a from fe80::1%x port 22 ssh2"),  # a scoped address through a user name
    ("sshd", f"a from ::ffff:{MGMT} port 22 ssh2"),
    ("sshd", f"from {DECOY}"),  # fail2ban's "'from 10.10.1.1'@localhost"
    ("sshd", f"test from {DECOY} port 55555 ssh2:"),  # …and its auth-info variant
    ("sshd", f"x from {DECOY} port 1 ssh2 [preauth]"),
    ("sshd-publickey", f"a from {DECOY} port 1 ssh2: RSA SHA256:x"),
    ("sshd-invalid", f"a from {DECOY} port 1"),
    ("sshd-invalid", f"a from {DECOY}"),
    ("sshd-maxauth", f"a from {DECOY} port 1 ssh2"),
    ("pam", f"a rhost={DECOY}"),  # rhost= injection through the user name
    ("pam", f"root  rhost={DECOY}  user=root"),
    ("nginx-agent", f'{DECOY} - - [01/Nov/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "x'),  # a whole forged line
    ("nginx-agent", f"[client {DECOY}] user admin authentication failure"),  # CVE-2013-2178's Apache pattern
    ("nginx-path", f"{DECOY} from {DECOY} port 22"),
    ("auditd", f"x' addr={DECOY} '"),  # encoded by auditd (space)
    ("auditd", f"x'addr={DECOY}"),  # not encoded: a single quote is not a reason for auditd to encode
    ("postgresql", DECOY),
    ("postgresql", f"x {DECOY} FATAL:  ", set()),  # a second "LEVEL:  " in the user and database names
    ("postgresql-conn", f"x {DECOY} FATAL:  "),
    ("postgresql", f"a {DECOY}(5432)"),
    ("kernel", f"SRC={DECOY} DST=10.11.1.10"),
    ("json", f'{DECOY}", "source": {{"ip": "{DECOY}"}}'),
]


@pytest.mark.parametrize("fmt, x, expected", [(*row, {REAL})[:3] for row in INJECTIONS],
                         ids=[f"{row[0]}:{row[1][:40]}" for row in INJECTIONS])
def test_injected_text_never_chooses_the_blocked_address(rules, fmt, x, expected):
    blocked, allowlisted, events = _decide([BUILDERS[fmt](x, i) for i in range(12)], rules)
    assert blocked == expected, f"{fmt}: blocked {blocked}, events {[e.get('source.ip') for e in events if isinstance(e, dict)]}"
    assert allowlisted == set()
    assert {e.get("source.ip") for e in events} == (expected or {None})


@pytest.mark.parametrize("line, reason", [
    # two readings of one line name different addresses: the event is kept, without a source
    (f"Nov  1 00:00:00 web-1 sshd[1]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh "
     f"ruser=x rhost={DECOY}  user=y rhost={REAL}  user=root", None),
    (f"Nov  1 00:00:00 web-1 sshd[1]: Failed hostbased for a from {DECOY} port 1 ssh2: RSA SHA256:x, client user \"b\", "
     f"client host \"c\" from {REAL} port 2 ssh2: RSA SHA256:y, client user \"d\", client host \"e\"", None),
    # the same field twice in a JSON line: not the engine's to guess
    (json.dumps({"@timestamp": "2026-11-01T00:00:00Z", "source.ip": DECOY, "source": {"ip": REAL}}), "bad_json"),
    (f'{{"@timestamp": "2026-11-01T00:00:00Z", "source": {{"ip": "{REAL}"}}, "source": {{"ip": "{DECOY}"}}}}',
     "bad_json"),
    # a source with a zone id is set aside, not guessed
    ("Nov  1 00:00:00 web-1 sshd[1]: Failed password for root from fe80::1%eth0 port 22 ssh2", "bad_address"),
])
def test_ambiguous_lines_name_no_source(line, reason):
    event = Normalizer(year=2026).normalize(line.encode())
    if reason is None:
        assert isinstance(event, dict) and "source.ip" not in event and event["event.outcome"] == "failure"
    else:
        assert isinstance(event, Rejected) and event.reason == reason


def test_mapped_sources_are_canonical_and_allowlisted(rules):
    line = lambda ip, i: f"Nov  1 00:00:{i:02d} web-1 sshd[1]: Failed password for root from {ip} port {4000 + i} ssh2"
    blocked, allowlisted, events = _decide([line(f"::ffff:{MGMT}", i) for i in range(8)]
                                           + [line(f"::ffff:{REAL}", i) for i in range(8)], rules)
    assert blocked == {REAL} and allowlisted == {MGMT}
    assert {e["source.ip"] for e in events} == {MGMT, REAL}


def test_loopback_and_multicast_sources_are_never_blocked(rules):
    line = lambda ip, i: f"Nov  1 00:00:{i:02d} web-1 sshd[1]: Failed password for root from {ip} port {4000 + i} ssh2"
    engine_lines = [line(ip, i) for ip in ("127.0.0.1", "::1", "ff02::1", "0.0.0.0") for i in range(8)]
    blocked, allowlisted, events = _decide(engine_lines, rules)
    assert blocked == set() and allowlisted == set()
    assert {e["source.ip"] for e in events} == {"127.0.0.1", "::1", "ff02::1", "0.0.0.0"}  # still recorded


def test_replaying_the_issue_lines_blocks_only_the_real_senders(tmp_path, rules):
    """The done-when line: the issue's injection lines through `replay` (what `govctl secops replay` runs)."""
    lines = []
    for i in range(6):
        lines.append(f"Nov  1 00:01:{i:02d} web-1 sshd[7]: Failed password for invalid user a from {DECOY} port 22 ssh2 "
                     f"from {REAL} port {4000 + i} ssh2")
        lines.append(f"Nov  1 00:01:{i:02d} web-1 sshd[8]: Failed password for invalid user a from {MGMT} port 22 ssh2 "
                     f"from 203.0.113.50 port {4000 + i} ssh2")
        lines.append(f"Nov  1 00:01:{i:02d} web-1 sshd[9]: Failed password for invalid user a from fe80::1%x port 22 "
                     f"ssh2 from 203.0.113.51 port {4000 + i} ssh2")
        lines.append(f"Nov  1 00:01:{i:02d} web-1 sshd[9]: Failed password for invalid user b from ::ffff:{MGMT} port "
                     f"22 ssh2 from 203.0.113.52 port {4000 + i} ssh2")
    log = tmp_path / "auth.log"
    log.write_text("\n".join(lines) + "\n")
    result = replay([log], rules, Allowlist(ALLOW), year=2026)
    assert result["blocked"] == [REAL, "203.0.113.50", "203.0.113.51", "203.0.113.52"]
    assert result["allowlisted_alerts"] == [] and result["parsed"] == len(lines)


# ------------------------------------------------------------------ property
# Client text: free Unicode (no control characters: the normalizer sets those lines aside) mixed with the
# pieces an attacker would use to spell another source.
_PIECES = ["from", "port", "22", "ssh2", "ssh2:", "[preauth]", DECOY, MGMT, f"::ffff:{MGMT}", "fe80::1%x",
           f"rhost={DECOY}", "user=", f"addr={DECOY}", f"SRC={DECOY}", f"client={DECOY}", f"{DECOY}(5432)",
           "FATAL:  ", "LOG:  ", "'", '"', ":", "@", "RSA", "SHA256:x", "ID", "(serial 1)", "CA", "invalid user",
           "\\x22", "  "]
_FREE = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=12)
CLIENT_TEXT = st.lists(st.one_of(st.sampled_from(_PIECES), _FREE), min_size=1, max_size=10).map(" ".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(fmt=st.sampled_from(sorted(BUILDERS)), x=CLIENT_TEXT)
def test_no_client_text_makes_another_address_the_source(fmt, x):
    for i in range(2):
        event = Normalizer(year=2026).normalize(BUILDERS[fmt](x, i).encode())
        if isinstance(event, dict):
            assert event.get("source.ip") in (REAL, None), (fmt, x, event.get("source.ip"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(fmt=st.sampled_from(sorted(BUILDERS)), x=CLIENT_TEXT)
def test_no_client_text_makes_the_engine_block_another_address(rules, fmt, x):
    blocked, allowlisted, _ = _decide([BUILDERS[fmt](x, i) for i in range(12)], rules)
    assert blocked <= {REAL} and allowlisted == set(), (fmt, x, blocked, allowlisted)


def test_the_property_can_fail():
    """The property's own check: the pre-fix sshd pattern (first `from X port`) fails it on the issue's line."""
    import re
    first_from = re.compile(r"Failed (\S+) for (invalid user )?(.*?) from (\S+) port (\d+)")
    msg = sshd_failed(f"a from {DECOY} port 22 ssh2", 0).split(": ", 1)[1]
    assert first_from.match(msg).group(4) == DECOY  # what the old parser took
    assert Normalizer(year=2026).normalize(sshd_failed(f"a from {DECOY} port 22 ssh2", 0).encode())["source.ip"] == REAL
