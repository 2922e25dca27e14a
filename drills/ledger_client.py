"""The heartbeat ledger writer (runs inside the citizens' namespace, started by the drill runner).

    python -m drills.ledger_client URL INTERVAL

POSTs URL?seq=N with N = 1, 2, … every INTERVAL seconds (1 s timeout each) and prints one JSON line
per request: {"seq", "sent", "acked" (epoch seconds, or null on failure), "center", "error"}.
Sequences start from the current time in microseconds, so runs never reuse a sequence.
"""
import json
import sys
import time
import urllib.error
import urllib.request


def main() -> None:
    url, interval = sys.argv[1], float(sys.argv[2])
    seq = int(time.time() * 1_000_000)
    while True:
        seq += 1
        sent = time.time()
        record = {"seq": seq, "sent": sent, "acked": None, "center": None, "error": None}
        try:
            req = urllib.request.Request(f"{url}?seq={seq}", method="POST", data=b"")
            with urllib.request.urlopen(req, timeout=1) as resp:
                body = json.loads(resp.read())
                record.update(acked=time.time(), center=body.get("center"))
        except urllib.error.HTTPError as exc:  # the service answered: keep its own reason
            try:
                reason = json.loads(exc.read()).get("reason") or exc.reason
            except (OSError, ValueError, AttributeError):
                reason = exc.reason
            record.update(center=exc.headers.get("X-Center"), error=f"HTTP {exc.code}: {reason}"[:160])
        except (urllib.error.URLError, OSError, ValueError) as exc:
            record["error"] = str(exc)[:120]
        print(json.dumps(record), flush=True)
        time.sleep(max(0.0, interval - (time.time() - sent)))


if __name__ == "__main__":
    main()
