"""The channels' wire formats. Each sender takes a Channel, the unsealed secrets it names and one message,
and returns normally or raises DeliveryFailed with a reason that never carries a secret (a URL with a
token is never put into an error: only the host and the status).

- email: stdlib smtplib/email (STARTTLS, implicit TLS or plain; AUTH when a password secret is named).
  The standard library does all SMTP needs here; a dependency would add nothing.
- DingTalk group robot: POST JSON to `url?access_token=…&timestamp=<ms>&sign=<base64 HMAC-SHA256 of
  "<timestamp>\\n<secret>" keyed with the secret, URL-encoded>`; the answer's errcode 0 is success.
- WeCom group robot: POST JSON to `url?key=<key>`; errcode 0 is success (WeCom robots have no signature:
  the key is the credential).
- generic webhook: POST JSON with `X-Govctl-Timestamp: <epoch s>` and
  `X-Govctl-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed with the secret>`.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import time
import urllib.parse
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import httpx

class _RedactQuery(logging.Filter):
    """httpx logs every request's full URL at INFO; a robot's URL carries its token: log it without the query."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(a.copy_with(query=b"redacted") if isinstance(a, httpx.URL) and a.query else a
                                for a in record.args)
        return True


logging.getLogger("httpx").addFilter(_RedactQuery())

TIMESTAMP_HEADER = "X-Govctl-Timestamp"
# robot answers worth a retry: system busy (-1), DingTalk's 130101 and WeCom's 45009 (sending too fast)
_ROBOT_TRANSIENT = (-1, 130101, 45009, None)
SIGNATURE_HEADER = "X-Govctl-Signature"


class DeliveryFailed(Exception):
    """A send that did not succeed; `permanent` when retrying cannot help (a refused credential)."""

    def __init__(self, reason: str, permanent: bool = False):
        super().__init__(reason)
        self.permanent = permanent


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body,
                                hashlib.sha256).hexdigest()


def recipients(channel) -> str:
    """Who a channel reaches, as the log shows it (never a credential)."""
    spec = channel.spec
    if channel.type == "email":
        return ", ".join(spec["to"])
    if channel.type == "console":
        return "console:" + ",".join(spec.get("roles", ["(event roles)"]))
    return f"{channel.type}:{urllib.parse.urlsplit(spec['url']).netloc}"


def send(channel, secrets, subject: str, body: str, event: dict | None = None) -> None:
    """Deliver one message over `channel`; `secrets(name)` unseals a named secret; `event` (the webhook's
    structured part) is the event as notify.events.Event.to_dict gives it."""
    if channel.type == "webhook":
        return _webhook(channel, secrets, subject, body, event)
    sender = {"email": _email, "dingtalk": _dingtalk, "wecom": _wecom}[channel.type]
    sender(channel, secrets, subject, body)


def _email(channel, secrets, subject: str, body: str) -> None:
    spec = channel.spec
    message = EmailMessage()
    message["Subject"] = subject  # encoded as RFC 2047 UTF-8 words by the email package
    message["From"] = spec["from"]
    message["To"] = ", ".join(spec["to"])
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=spec["from"].split("@", 1)[1])
    message.set_content(body, charset="utf-8")
    security = spec.get("security", "starttls")
    context = ssl.create_default_context(cafile=spec.get("ca_file"))
    try:
        if security == "tls":
            client = smtplib.SMTP_SSL(spec["host"], spec["port"], timeout=channel.timeout, context=context)
        else:
            client = smtplib.SMTP(spec["host"], spec["port"], timeout=channel.timeout)
        with client:
            if security == "starttls":
                client.starttls(context=context)
            if spec.get("password_secret"):
                client.login(spec.get("username", spec["from"]), secrets(spec["password_secret"]))
            refused = client.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryFailed(f"SMTP {spec['host']}:{spec['port']} refused the credentials ({exc.smtp_code}); "
                             "check `username` and re-seal the password with `govctl notify secret set "
                             f"{spec.get('password_secret')}`", permanent=True) from None
    except smtplib.SMTPNotSupportedError:
        raise DeliveryFailed(f"SMTP {spec['host']}:{spec['port']} does not offer STARTTLS or AUTH; set "
                             "`security` to what the server supports", permanent=True) from None
    except UnicodeEncodeError:
        raise DeliveryFailed(f"SMTP {spec['host']}:{spec['port']} cannot take a non-ASCII address or password "
                             "(AUTH is ASCII; addresses need SMTPUTF8): use ASCII ones", permanent=True) from None
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise DeliveryFailed(f"SMTP {spec['host']}:{spec['port']}: {type(exc).__name__}: {_short(exc)}") from None
    if refused:
        raise DeliveryFailed(f"SMTP {spec['host']} refused recipient(s) {', '.join(refused)}", permanent=True)


def _post(channel, url: str, payload: dict, headers: dict | None = None, body: bytes | None = None) -> dict | None:
    host = urllib.parse.urlsplit(url).netloc
    data = body if body is not None else json.dumps(payload, ensure_ascii=False).encode("utf-8")
    try:
        response = httpx.post(url, content=data, timeout=channel.timeout,
                              headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})})
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{channel.type} {host}: {type(exc).__name__}") from None
    if response.status_code >= 400:
        raise DeliveryFailed(f"{channel.type} {host}: HTTP {response.status_code}",
                             permanent=response.status_code in (401, 403, 404))
    try:
        return response.json()
    except ValueError:
        return None


def _robot_answer(channel, answer: dict | None) -> None:
    if not isinstance(answer, dict) or answer.get("errcode") != 0:
        code = answer.get("errcode") if isinstance(answer, dict) else None
        message = str(answer.get("errmsg", ""))[:200] if isinstance(answer, dict) else "no JSON answer"
        # only "busy" or "too fast" is worth a retry; a refused signature, key or keyword is not
        raise DeliveryFailed(f"{channel.type} robot answered errcode {code}: {message}",
                             permanent=code not in _ROBOT_TRANSIENT)


def _with_query(url: str, **params) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.urlencode([*urllib.parse.parse_qsl(parts.query), *params.items()])
    return urllib.parse.urlunsplit(parts._replace(query=query))


def _dingtalk(channel, secrets, subject: str, body: str) -> None:
    spec = channel.spec
    stamp = int(time.time() * 1000)
    secret = secrets(spec["sign_secret"])
    url = _with_query(spec["url"], access_token=secrets(spec["token_secret"]), timestamp=str(stamp),
                      sign=dingtalk_sign(secret, stamp))
    payload = {"msgtype": "markdown", "markdown": {"title": subject[:100], "text": f"### {subject}\n\n{_markdown(body)}"}}
    if spec.get("at_mobiles"):
        payload["at"] = {"atMobiles": spec["at_mobiles"], "isAtAll": False}
    _robot_answer(channel, _post(channel, url, payload))


def _wecom(channel, secrets, subject: str, body: str) -> None:
    url = _with_query(channel.spec["url"], key=secrets(channel.spec["key_secret"]))
    content = f"**{subject}**\n{_markdown(body)}"
    # WeCom refuses markdown content over 4096 bytes: cut at a character boundary
    content = content.encode("utf-8")[:4000].decode("utf-8", "ignore")
    _robot_answer(channel, _post(channel, url, {"msgtype": "markdown", "markdown": {"content": content}}))


def _webhook(channel, secrets, subject: str, body: str, event: dict | None) -> None:
    stamp = str(int(time.time()))
    data = json.dumps({"subject": subject, "body": body, "event": event}, ensure_ascii=False).encode("utf-8")
    signature = webhook_signature(secrets(channel.spec["signing_secret"]), stamp, data)
    _post(channel, channel.spec["url"], {}, {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: signature}, body=data)


def _markdown(body: str) -> str:
    return "\n".join(f"> {line}" if line else "" for line in body.splitlines())


def _short(exc: Exception) -> str:
    return str(exc).replace("\n", " ")[:200]
