"""Each channel on its real wire format: a real SMTP server receives the Chinese mail, the robot and webhook
receivers verify each signature; failures are retried with back-off and logged; secrets appear nowhere."""
from __future__ import annotations

import json
import time

from notify.events import Event

import pytest

from .conftest import ALL_SECRETS, SMTP_USER

pytestmark = pytest.mark.slow  # a real SMTP server and HTTP receivers per test


def _incident(key="incident:42:new", severity="high", **more) -> Event:
    return Event("incident.new", "#42 SSH 暴力破解 / SSH brute force", severity, "来自 203.0.113.7 的 120 次失败登录",
                 ("attack.t1110", "djcp.8.1.4.2"), "center-a", "new", ("security",), key,
                 "https://console.gov.example/#/incidents/42", **more)


def test_an_incident_reaches_every_channel_with_its_chinese_text_and_valid_signatures(notifier_for, smtp_server,
                                                                                      receivers):
    notifier, _ = notifier_for()
    outcomes = notifier.submit(_incident())
    assert {o["channel"]: o["status"] for o in outcomes} == {
        "soc-mail": "queued", "ding": "queued", "wecom": "queued", "hook": "queued", "console": "sent"}
    assert notifier.deliver_due() == 4

    mail = smtp_server.wait(1)[0]
    assert mail["Subject"] == "[govctl][高危] 新安全事件：#42 SSH 暴力破解 / SSH brute force | New security incident (high)"
    assert mail["From"] == SMTP_USER and "soc-lead@gov.example" in mail["To"]
    text = mail.get_body().get_content()
    assert text.index("级别：高危") < text.index("Severity: high")  # Chinese first, English beside it
    assert "标签：attack.t1110, djcp.8.1.4.2" in text and "中心：center-a" in text

    ding = receivers["dingtalk"].wait(1)[0]["json"]
    assert ding["msgtype"] == "markdown" and "新安全事件" in ding["markdown"]["text"]
    wecom = receivers["wecom"].wait(1)[0]["json"]
    assert wecom["msgtype"] == "markdown" and "SSH 暴力破解" in wecom["markdown"]["content"]
    hook = receivers["webhook"].wait(1)[0]["json"]
    assert hook["event"]["tags"] == ["attack.t1110", "djcp.8.1.4.2"] and hook["subject"].startswith("[govctl][高危]")
    assert not any(r.refused for r in receivers.values())
    assert {r["status"] for r in notifier.journal.log()} == {"sent"}

    inbox = notifier.journal.inbox("li.na", "security")
    assert inbox["unread"] == 1 and inbox["items"][0]["title"].startswith("#42")
    assert notifier.journal.inbox("wang.ops", "ops")["items"] == []  # the incident is for security staff


def test_a_wrong_secret_is_refused_by_each_receiver_and_logged_as_failed(notifier_for, receivers):
    from notify.secrets import seal
    seal("ding-sign", "SECnot-the-robot-secret")
    seal("wecom-key", "not-the-key")
    seal("hook", "not-the-signing-secret")
    notifier, _ = notifier_for()
    notifier.submit(_incident(severity="critical"))
    notifier.deliver_due()
    for kind in ("dingtalk", "wecom", "webhook"):
        assert receivers[kind].accepted == [] and receivers[kind].refused
    rows = {r["channel"]: r for r in notifier.journal.log()}
    assert rows["hook"]["status"] == "failed" and "HTTP 401" in rows["hook"]["error"]  # no retry: refused
    assert "errcode 310000" in rows["ding"]["error"] and "errcode 93000" in rows["wecom"]["error"]


def test_failures_are_retried_with_back_off_and_the_log_says_so(notifier_for, receivers):
    receivers["webhook"].fail_next = 2
    notifier, _ = notifier_for(routes="\n  - name: hook-only\n    channels: [hook]\n")
    [outcome] = notifier.submit(_incident())
    started = time.time()
    notifier.deliver_due()
    row = notifier.journal.get(outcome["id"])
    assert row["status"] == "pending" and row["attempts"] == 1 and "HTTP 500" in row["error"]
    assert row["next_try"] - started >= 0.09  # the first back-off: 100 ms
    while notifier.journal.get(outcome["id"])["status"] == "pending" and time.time() - started < 5:
        time.sleep(0.05)
        notifier.deliver_due()
    row = notifier.journal.get(outcome["id"])
    assert row["status"] == "sent" and row["attempts"] == 3
    assert time.time() - started >= 0.3  # 100 ms + 200 ms of back-off
    assert len(receivers["webhook"].accepted) == 1


def test_an_unreachable_smtp_server_fails_after_its_attempts(notifier_for, smtp_server):
    notifier, path = notifier_for(routes="\n  - name: mail\n    channels: [soc-mail]\n")
    from notify.config import load_config
    path.write_text(path.read_text().replace(f"port: {smtp_server.port}", "port: 9"), encoding="utf-8")
    notifier.config = load_config(path)
    [outcome] = notifier.submit(_incident())
    deadline = time.time() + 5
    while notifier.journal.get(outcome["id"])["status"] in ("pending", "sending") and time.time() < deadline:
        notifier.deliver_due()
        time.sleep(0.05)
    row = notifier.journal.get(outcome["id"])
    assert row["status"] == "failed" and row["attempts"] == 3 and "127.0.0.1:9" in row["error"]


def test_secrets_are_never_in_the_config_the_journal_the_log_or_the_secrets_file(notifier_for, receivers, sealed,
                                                                                 caplog):
    import logging
    caplog.set_level(logging.DEBUG)
    receivers["dingtalk"].fail_next = 1  # a failure's message too
    notifier, config_path = notifier_for()
    notifier.submit(_incident())
    for _ in range(20):
        notifier.deliver_due()
        time.sleep(0.05)
    assert len(receivers["dingtalk"].accepted) == 1
    texts = {"config": config_path.read_text(encoding="utf-8"), "log": caplog.text,
             "journal": json.dumps(notifier.journal.log(), ensure_ascii=False)}
    for path in sealed.rglob("*"):
        if path.is_file():
            texts[str(path)] = path.read_bytes().decode("utf-8", "replace")
    for where, text in texts.items():
        for secret in ALL_SECRETS:
            assert secret not in text, f"a secret is readable in {where}"


def test_implicit_tls_smtp_delivers_too(sealed, certificate, tmp_path):
    """`security: tls` (port 465 style): TLS from the first byte, then AUTH."""
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    from notify.config import load_config
    from notify.engine import Notifier
    from notify.journal import Journal
    from tests.secops.testbed import free_port

    from .conftest import SMTP_PASSWORD, Mailbox

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), ssl_context=context,
                            authenticator=lambda *a: AuthResult(success=a[4].password == SMTP_PASSWORD.encode()),
                            auth_required=True, auth_require_tls=False)  # aiosmtpd counts only STARTTLS as TLS
    controller.start()
    try:
        path = tmp_path / "tls.yaml"
        path.write_text(f"""version: 1
channels:
  mail:
    type: email
    host: 127.0.0.1
    port: {controller.port}
    security: tls
    ca_file: {certificate[0]}
    username: {SMTP_USER}
    password_secret: soc-mail
    from: {SMTP_USER}
    to: [duty@gov.example]
routes:
  - name: all
    channels: [mail]
""", encoding="utf-8")
        notifier = Notifier(load_config(path), Journal(tmp_path / "j.sqlite"))
        notifier.submit(_incident())
        notifier.deliver_due()
        [mail] = mailbox.wait(1)
        assert "新安全事件" in mail["Subject"] and "详情：来自 203.0.113.7" in mail.get_body().get_content()
        notifier.journal.close()
    finally:
        controller.stop()


def test_a_storm_of_1000_alerts_in_10_s_reaches_each_receiver_as_the_limit_plus_one_digest(notifier_for, smtp_server,
                                                                                           receivers):
    """The storm on the wire: 1,000 different alerts within 10 s (event times), every channel limited to 5 a
    minute; after the window, each real receiver has exactly 5 messages and 1 digest naming the 995 others."""
    from datetime import datetime
    start = datetime(2026, 12, 7, 12, 0).timestamp()
    notifier, _ = notifier_for(clock=lambda: start)
    for i in range(1000):
        notifier.submit(_incident(key=f"incident:{i}:new"), start + i * 0.01)
    notifier.deliver_due(start + 10)
    notifier.release(start + 60)
    notifier.deliver_due(start + 60)
    mails = smtp_server.wait(6)
    time.sleep(0.5)  # anything more would have arrived by now
    assert len(mails) == 6 and "995 条已合并" in mails[-1]["Subject"]
    for kind in ("dingtalk", "wecom", "webhook"):
        assert len(receivers[kind].accepted) == 6, kind
    assert "995 条已合并" in receivers["webhook"].accepted[-1]["json"]["subject"]
