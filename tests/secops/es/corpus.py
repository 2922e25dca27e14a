"""A deterministic mixed corpus (auth + nginx + firewall) with known attacks, for the Elasticsearch
tests and bench/es_*.py. Real log-line formats; every attack is sized to fire one bundled rule."""
from __future__ import annotations

import random
import time
from pathlib import Path

START = 1793491200.0  # 2026-11-01T00:00:00Z
BRUTE = "203.0.113.10"  # fast SSH brute force, then a successful login (success after brute force)
SPRAY = "203.0.113.20"  # password spraying: many user names
SCANNER = "203.0.113.30"  # port scan in the firewall log
WEB = "203.0.113.40"  # SQL injection with sqlmap
OPS = "10.20.1.5"  # ops address logging in normally


def _bsd(t: float) -> str:
    return time.strftime("%b %e %H:%M:%S", time.gmtime(t))


def _clf(t: float) -> str:
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(t))


def write_corpus(folder: Path, background: int = 3000, seed: int = 11, junk: bool = True) -> list[Path]:
    """auth.log, access.log and firewall.log in `folder`; `background` benign lines per file."""
    rnd = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    auth, web, fw = [], [], []
    t = START
    for i in range(background):
        t += rnd.uniform(0.05, 0.5)
        ip = f"10.20.{rnd.randint(0, 3)}.{rnd.randint(1, 200)}"
        auth.append((t, f"{_bsd(t)} web-1 sshd[{1000 + i}]: Accepted publickey for deploy from {ip} port "
                        f"{rnd.randint(1024, 65535)} ssh2: ED25519 SHA256:abcdef"))
        client = f"198.18.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}"
        page = rnd.choice(["/", "/news/2026/11/01.html", "/static/app.js", "/api/v1/services?page=2"])
        web.append((t, f'{client} - - [{_clf(t)}] "GET {page} HTTP/1.1" 200 {rnd.randint(100, 9000)} "-" '
                       '"Mozilla/5.0 (X11; Linux x86_64)"'))
        fw.append((t, f"{_bsd(t)} fw-prod kernel: [{i}.000] govctl-drop: IN=eth0 OUT= SRC={client} DST=10.11.1.10 "
                      f"LEN=44 TOS=0x00 PREC=0x00 TTL=49 ID=1 PROTO=TCP SPT={rnd.randint(1024, 65535)} "
                      f"DPT={rnd.choice([23, 445])} WINDOW=1024 RES=0x00 SYN URGP=0"))
    t0 = START + 60
    for k in range(8):  # 8 failures in 16 s, then success: ssh_bruteforce_fast, ssh_success_after_bruteforce
        ts = t0 + 2 * k
        auth.append((ts, f"{_bsd(ts)} web-1 sshd[{5000 + k}]: Failed password for root from {BRUTE} port {40000 + k} ssh2"))
    ts = t0 + 30
    auth.append((ts, f"{_bsd(ts)} web-1 sshd[5100]: Accepted password for root from {BRUTE} port 40100 ssh2"))
    for k, user in enumerate(["admin", "oracle", "test", "ubuntu", "postgres", "git"]):  # password spraying
        ts = t0 + 120 + 20 * k
        auth.append((ts, f"{_bsd(ts)} web-1 sshd[{6000 + k}]: Failed password for invalid user {user} from {SPRAY} "
                         f"port {41000 + k} ssh2"))
    ts = t0 + 300
    auth.append((ts, f"{_bsd(ts)} web-1 sudo:    alice : 3 incorrect password attempts ; TTY=pts/0 ; "
                     "PWD=/home/alice ; USER=root ; COMMAND=/bin/sh"))
    for k in range(15):  # 15 ports in 15 s: firewall_port_scan
        ts = t0 + 400 + k
        fw.append((ts, f"{_bsd(ts)} fw-prod kernel: [9{k}.000] govctl-drop: IN=eth0 OUT= SRC={SCANNER} DST=10.11.1.10 "
                       f"LEN=44 TOS=0x00 PREC=0x00 TTL=49 ID=1 PROTO=TCP SPT=5555 DPT={1000 + k} WINDOW=1024 "
                       "RES=0x00 SYN URGP=0"))
    for k, path in enumerate(["/index.php?id=1%20UNION%20SELECT%201,2,3", "/../../etc/passwd",
                              "/q?x=%3Cscript%3Ealert(1)%3C/script%3E", "/uploads/shell.php"]):
        ts = t0 + 500 + k
        web.append((ts, f'{WEB} - - [{_clf(ts)}] "GET {path} HTTP/1.1" 404 153 "-" "sqlmap/1.7"'))
    files = []
    for name, lines in (("auth.log", auth), ("access.log", web), ("firewall.log", fw)):
        lines.sort(key=lambda x: x[0])
        path = folder / name
        with open(path, "wb") as f:
            for _, line in lines:
                f.write(line.encode() + b"\n")
            if junk and name == "auth.log":
                f.write(b"\x00\x01\x02 binary junk\n")
                f.write(b"this is not a log line\n")
        files.append(path)
    return files
