"""govctl notify: the notification channels, their sealed secrets, a test message, the delivery log, and
the notify service `govctl up` runs (docs/notify.md)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from core.errors import BadInput, GovctlError

from ._secops_store import CONFIG_OPTION

app = typer.Typer(name="notify", help=(
    "Notifications: email, DingTalk/WeCom robots, a signed webhook and the console's bell, routed by\n"
    "state/notify/config.yaml (or $GOVCTL_NOTIFY_CONFIG).\n\nExample: govctl notify test soc-mail"),
    no_args_is_help=True)
secret_app = typer.Typer(name="secret", help="Seal a channel secret in the keystore.", no_args_is_help=True)
app.add_typer(secret_app)

_NOTIFY_CONFIG = typer.Option(None, "--notify-config", help="notification config YAML (default: "
                              "$GOVCTL_NOTIFY_CONFIG, state/notify/config.yaml, else the bundled one)")
_JSON = typer.Option(False, "--json", help="Print JSON.")


def _notifier(path: Optional[Path]):
    from notify.config import load_config
    from notify.engine import Notifier
    return Notifier(load_config(path))


@app.command()
def channels(notify_config: Optional[Path] = _NOTIFY_CONFIG, json_out: bool = _JSON) -> None:
    """The configured channels and routes, with the names of their secrets and whether each is sealed
    (never a value).

    Example: govctl notify channels --json
    """
    from notify.channels import recipients
    from notify.config import as_dict, load_config
    from notify.secrets import names
    config = load_config(notify_config)
    data = as_dict(config)
    sealed = set(names())
    for channel in data["channels"]:
        channel["secrets_sealed"] = {f: channel[f] in sealed for f in channel if f.endswith("_secret")}
    if json_out:
        from govctl.ui import print_json
        print_json(data)
        return
    from rich.table import Table

    from govctl.ui import console
    table = Table("channel", "type", "reaches", "rate limit", "secrets", title=f"channels ({data['source']})")
    for channel in data["channels"]:
        secrets = ", ".join(f"{channel[f]} ({'sealed' if ok else 'NOT sealed'})"
                            for f, ok in channel["secrets_sealed"].items()) or "-"
        table.add_row(channel["name"], channel["type"], recipients(config.channels[channel["name"]]),
                      "-" if channel["type"] == "console"  # the bell is never rate-limited
                      else f"{channel['rate_limit']['count']} / {channel['rate_limit']['per_seconds']:g} s", secrets)
    console.print(table)
    for route in data["routes"]:
        console.print(f"route {route['name']}: {route['match'] or 'everything'} → {', '.join(route['channels'])}"
                      + (f" (quiet {route['quiet_hours']['start']}–{route['quiet_hours']['end']})"
                         if route["quiet_hours"] else ""))


@app.command()
def test(channel: str = typer.Argument(..., help="A channel name from `govctl notify channels`."),
         notify_config: Optional[Path] = _NOTIFY_CONFIG, json_out: bool = _JSON) -> None:
    """Send a test message over one channel now (no routing, no rate limit); exit 1 if it fails.

    Example: govctl notify test dingtalk-soc
    """
    import time

    from notify.events import Event
    notifier = _notifier(notify_config)
    if channel not in notifier.config.channels:
        raise BadInput(f"no channel named {channel!r}; configured: {', '.join(sorted(notifier.config.channels))}")
    from notify.config import Route
    notifier.config.routes = [Route("cli-test", {}, (channel,), None)]
    event = Event("test", "govctl 通知渠道测试 / channel test", "informational",
                  f"渠道 {channel} 可以送达。 The channel {channel} works.", key=f"test:{channel}:{time.time()}")
    outcome = notifier.submit(event)[0]
    if outcome["status"] == "queued":
        notifier.deliver_due()
        while (row := notifier.journal.get(outcome["id"]))["status"] == "pending":  # retries with back-off
            time.sleep(max(0.1, row["next_try"] - time.time()))
            notifier.deliver_due()
    row = notifier.journal.get(outcome["id"])
    from crypto.audit import record
    from crypto.keystore import actor
    record(actor(), "notify.test", channel, {"attempts": row["attempts"]},
           "ok" if row["status"] == "sent" else f"failed: {row['error'] or row['status']}")
    if json_out:
        from govctl.ui import print_json
        print_json(row)
    else:
        print(f"{channel}: {row['status']} after {row['attempts']} attempt(s)"
              + (f" — {row['error']}" if row["error"] else ""))
    if row["status"] != "sent":
        raise GovctlError(f"the test message over {channel} was not delivered: {row['error'] or row['status']}")


@app.command("log")
def show_log(limit: int = typer.Option(50, "--limit", min=1, max=10000),
             channel: Optional[str] = typer.Option(None, "--channel", help="Only this channel."),
             json_out: bool = _JSON) -> None:
    """What was sent, when, to whom; held, digested, duplicate and failed messages with attempts and errors.

    Example: govctl notify log --json --limit 20
    """
    from notify.journal import Journal
    from secops.normalize import iso
    rows = Journal().log(limit, channel)
    if json_out:
        from govctl.ui import print_json
        print_json([{**r, "created": iso(r["created"]), "sent": iso(r["sent"]) if r["sent"] else None,
                     "next_try": iso(r["next_try"]) if r["next_try"] else None} for r in rows])
        return
    from rich.table import Table

    from govctl.ui import console
    table = Table("#", "time", "channel", "to", "status", "tries", "subject / error")
    for r in rows:
        status = r["status"] + (f" ({r['reason']})" if r["reason"] else "")
        table.add_row(str(r["id"]), iso(r["created"]), r["channel"], r["recipients"], status, str(r["attempts"]),
                      r["subject"] + (f"\n{r['error']}" if r["error"] else ""))
    console.print(table)


@secret_app.command("set")
def secret_set(name: str = typer.Argument(..., help="The secret's name, as the config's *_secret field gives it."),
               value_stdin: bool = typer.Option(False, "--stdin", help="Read the value from the first line of "
                                                "standard input (else a hidden prompt).")) -> None:
    """Seal a secret (SMTP password, robot token or signing secret, webhook key) in the keystore; the value
    is never echoed, logged or written in clear.

    Example: printf '%s\\n' "$SEC" | govctl notify secret set dingtalk-soc --stdin
    """
    import re

    from notify.secrets import seal
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,62}", name):
        raise BadInput(f"secret name {name!r}: use lower-case letters, digits, '.', '_' or '-' (at most 63)")
    if value_stdin:
        line = sys.stdin.readline()
        if not line.strip():
            raise BadInput("--stdin: standard input is empty; pipe the secret's value in (one line)")
        value = line.rstrip("\r\n")
    else:
        value = typer.prompt("Secret value", hide_input=True, confirmation_prompt=True)
    seal(name, value)
    print(f"secret {name} sealed in the keystore")


@app.command()
def send(kind: str = typer.Argument(..., help="Event kind, e.g. sla.breach."),
         title: str = typer.Option(..., "--title"),
         severity: str = typer.Option("medium", "--severity"),
         summary: str = typer.Option("", "--summary"),
         notify_config: Optional[Path] = _NOTIFY_CONFIG, json_out: bool = _JSON) -> None:
    """Route one event through the configured routes (what notify.send_event does); the notify service
    delivers it.

    Example: govctl notify send sla.breach --title "事件 #42 超过确认时限" --severity high
    """
    import notify
    outcomes = notify.send_event(kind, {"title": title, "severity": severity, "summary": summary},
                                 notifier=_notifier(notify_config))
    if json_out:
        from govctl.ui import print_json
        print_json(outcomes)
    else:
        for o in outcomes:
            print(f"{o['channel']}: {o['status']}" + (f" ({o['reason']})" if o.get("reason") else ""))
        if not outcomes:
            print("no route matched; nothing sent")


@app.command()
def serve(listen: str = typer.Option("127.0.0.1:19096", "--listen", help="host:port of the HTTP receiver."),
          notify_config: Optional[Path] = _NOTIFY_CONFIG, config: Optional[Path] = CONFIG_OPTION,
          no_store: bool = typer.Option(False, "--no-store", help="Do not watch the SecOps store's incidents.")) -> None:
    """Run the notify service: Alertmanager's receiver (POST /alertmanager/<receiver>), the incident watcher,
    digests and delivery with retries.

    Example: govctl notify serve --listen 127.0.0.1:19096
    """
    import logging

    from notify.service import run

    from ._secops_store import load, open_configured
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadInput(f"--listen {listen!r}: give host:port, e.g. 127.0.0.1:19096")
    logging.basicConfig(level="INFO", format="%(asctime)s %(name)s %(levelname)s %(message)s")
    notifier = _notifier(notify_config)
    store = None if no_store else open_configured(load(config))
    try:
        run(notifier, store, listen)
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # the address is taken or not local
        raise GovctlError(f"cannot listen on {listen}: {exc.strerror or exc}; is another notify running? "
                          "choose another --listen") from None
    finally:
        if store is not None:
            store.close()
