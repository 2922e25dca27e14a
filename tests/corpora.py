"""Attack corpora shared by test packages that must not import each other (the console's tests and the
audit trail's): real log lines, with attacker-written markup in user names and user agents."""
from __future__ import annotations

import time

XSS_USER = "<img src=x onerror=alert(1)>"
XSS_AGENT = "<img src=x onerror=alert(3)>"


def attack_corpus(now: float) -> bytes:
    """SSH brute force from three addresses (one guessing a user name that is markup) and a web XSS probe."""
    def sshd(ip: str, user: str, start: float, n: int = 6) -> str:
        return "".join(f"{time.strftime('%b %e %H:%M:%S', time.gmtime(start + i))} web-1 sshd[1]: Failed password for "
                       f"{user} from {ip} port {4000 + i} ssh2\n" for i in range(n))
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now - 300))
    web = (f'192.0.2.44 - - [{stamp}] "GET /search?q=<script>alert(2)</script> HTTP/1.1" 200 12 "-" '
           f'"{XSS_AGENT}"\n')
    return (sshd("203.0.113.5", "root", now - 900) + sshd("203.0.113.6", "admin", now - 700)
            + sshd("198.51.100.7", f"invalid user {XSS_USER}", now - 500) + web).encode()
