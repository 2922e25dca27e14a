"""Log lines → ECS events (flat dicts with dotted keys), or a quarantine reason.

One `Normalizer` per input source keeps the little state parsing needs (year inference for BSD
syslog dates, PostgreSQL's pid → client address). `normalize(raw: bytes)` returns either an event
dict or a `Rejected(reason, detail)`; it never raises on bad input. Lines are tried cheapest first:
a first-byte dispatch picks the format, a `startswith` prefilter picks the message parser, and only
then does a regular expression run.

Sources are the field the daemon itself wrote, never text a client chose (a user name, a path, a user
agent): where a message puts client text around the address (sshd's "for USER from ADDR port N ssh2: INFO",
pam's "ruser=… rhost=…  user=…", PostgreSQL's "%u@%d %h"), every reading of the line is tried against
what the daemon writes there, and a line that reads two ways names no source (fail2ban learnt this the
hard way: its filters are anchored on both sides since the 2013 injection reports). Every
address is read through secops.address, so an event's `source.ip` is canonical (IPv4-mapped IPv6 is IPv4)
and a zone id is refused as a bad address.
"""
from __future__ import annotations

import calendar
import datetime as dt
import itertools
import json
import operator
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable
from urllib.parse import unquote_plus

from .address import CANONICAL, DOTTED_QUAD, canonical, unusable

QUARANTINE_REASONS = (
    "empty", "too_long", "binary", "encoding", "bad_timestamp", "bad_address", "bad_json",
    "unknown_format",
)
DEFAULT_MAX_LINE_BYTES = 16 * 1024
FORMATS = ("auto", "syslog", "nginx", "auditd", "postgresql", "json", "sshd")
# Formats whose lines carry no date: events are stamped when read, so a tail of such a file starts at
# its end (its old lines would all get the time of the restart).
UNDATED_FORMATS = ("sshd",)
ENCODINGS = ("utf-8", "gbk", "gb18030", "auto")

# Sigma log sources each dataset answers to (rules match when all their logsource keys agree).
LOGSOURCES: dict[str, dict[str, frozenset[str]]] = {
    "sshd": {"product": frozenset({"linux"}), "service": frozenset({"sshd", "auth"})},
    "sudo": {"product": frozenset({"linux"}), "service": frozenset({"sudo", "auth"})},
    "su": {"product": frozenset({"linux"}), "service": frozenset({"su", "auth"})},
    "pam": {"product": frozenset({"linux"}), "service": frozenset({"pam", "auth"})},
    "useradd": {"product": frozenset({"linux"}), "service": frozenset({"useradd", "auth"})},
    "syslog": {"product": frozenset({"linux"}), "service": frozenset({"syslog"})},
    "firewall": {"product": frozenset({"linux"}), "category": frozenset({"firewall"}),
                 "service": frozenset({"nftables", "iptables", "syslog"})},
    "auditd": {"product": frozenset({"linux"}), "service": frozenset({"auditd"})},
    "nginx.access": {"category": frozenset({"webserver"}), "product": frozenset({"nginx"}),
                     "service": frozenset({"nginx", "access"})},
    "postgresql": {"product": frozenset({"postgresql"}), "category": frozenset({"database"}),
                   "service": frozenset({"postgresql"})},
    "json": {"product": frozenset({"json"})},
}


@dataclass(frozen=True, slots=True)
class Rejected:
    """A line that could not be normalized: why, and a short detail for the analyst."""

    reason: str
    detail: str = ""


_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SYSLOG_BSD = re.compile(
    r"(?:<(\d{1,3})>)?([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) (\S+) "
    r"([^\s\[:]+)(?:\[(\d+)\])?: ?(.*)", re.S)
_SYSLOG_5424 = re.compile(
    r"<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: (.*))?", re.S)
_ISO = re.compile(r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(\.\d+)?( ?(?:Z|[+-]\d\d(?::?\d\d)?|[A-Z]{2,5}))?$")

# sshd writes "… for USER from ADDR port N ssh2[: INFO]": the client chooses USER, and for publickey and
# hostbased logins part of INFO (a certificate id, "client user"/"client host"), so "from X port N" can
# appear on either side of the real one. Every " from " is tried (`_sshd_from`): a reading counts only if
# what follows its address is exactly what sshd writes there for that method, and a line with two readings
# naming different addresses gives none (fail2ban's filters are anchored on both sides for the same reason).
_SSHD_FAILED = re.compile(r"Failed (\S+) for (invalid user )?")
_SSHD_ACCEPTED = re.compile(r"Accepted (\S+) for ")
_SSHD_INVALID = re.compile(r"Invalid user ")
# What may follow " from ": the address, the port, and exactly what sshd writes after them.
_SSHD_TAIL = re.compile(r"(\S+) port (\d+)(?: ssh2)?(?: \[preauth\])?$")
_SSHD_TAIL_KEY = re.compile(  # publickey / hostbased: ": KEYTYPE FINGERPRINT", a certificate's id, hostbased's client
    r"(\S+) port (\d+)(?: ssh2)?(?:: \S+ \S+(?: ID .* \(serial \d+\) CA \S+ \S+|"
    r", client user \".*\", client host \".*\")?)?(?: \[preauth\])?$")
_SSHD_TAIL_OLD = re.compile(r"(\S+)(?: port (\d+))?(?: \[preauth\])?$")  # "Invalid user" lines once had no port
_AMBIGUOUS = ("", "", "")
# The hot path: one match decides when the reading is the only one. The user part is lazy, so every earlier
# " from " failed the end-anchored tail; if nothing but "ssh2" follows the address there is no later one
# either, and if something does (": INFO"), a line with a single " from " has one reading anyway.
_SSHD_FAILED_ONE = re.compile(r"Failed (\S+) for (invalid user )?(.*?) from (\S+) port (\d+)(?: ssh2)?(: .*)?$")
_SSHD_ACCEPTED_ONE = re.compile(r"Accepted (\S+) for (.*?) from (\S+) port (\d+)(?: ssh2)?(: .*)?$")
_SSHD_INVALID_ONE = re.compile(r"Invalid user (.*?) from (\S+)(?: port (\d+))?(?: \[preauth\])?$")
_SSHD_CLOSED = re.compile(
    r"(?:Connection closed|Disconnected) (?:by|from) (?:(invalid |authenticating )?user (.*) )?(\S+) port (\d+)"
    r"(?: \[preauth\])?$")
_SSHD_MAXAUTH = re.compile(r"error: maximum authentication attempts exceeded for (invalid user )?")
_SSHD_NOIDENT = re.compile(r"(?:Did not receive identification string|banner exchange: Connection) from (\S+)(?: port (\d+))?")
_PAM = re.compile(r"pam_(\w+)\(([^:)]+):(\w+)\): (.*)")
_PAM_KV = re.compile(r"(\w+)=(\S*)")
# pam_unix: "… ruser=%s rhost=%s  user=%s": the client's names may come before (ruser) and after (user)
# the host, so an rhost= is the host only if what follows it is the line's end or "user=…".
_PAM_RHOST_END = re.compile(r"(\S*)(?:\s*$|\s+user=(.*)$)")
# …unless ruser is empty (sshd's case): then nothing the client wrote comes before the host.
_PAM_FIXED = re.compile(r"authentication failure; logname=\S* uid=\d* euid=\d* tty=\S* ruser= rhost=(\S*)(?:\s+user=(.*))?$")
_PAM_SESSION = re.compile(r"session (opened|closed) for user (\S+?)(?:\(uid=(\d+)\))?(?: by (\S*?)\(uid=(\d+)\))?$")
_SUDO = re.compile(r"\s*(\S+) : (?:(.*?) ; )?TTY=(\S+) ; PWD=(.*?) ; USER=(\S+) ;(?: .*?;)? COMMAND=(.*)")
_SU_TO = re.compile(r"(FAILED SU )?\(to (\S+)\) (\S+)(?: on (\S+))?")
_SU_FOR = re.compile(r"(FAILED|Successful) su for (\S+) by (\S+)")
_USERADD = re.compile(r"new user: name=([^,]+), UID=(\d+), GID=(\d+)")
_USERMOD_UID = re.compile(r"change user '([^']+)' UID from '(\d+)' to '(\d+)'")
_KV = re.compile(r"([A-Z]+)=(\S*)")
_KERNEL_USUAL = re.compile(  # group 4: the words between DST and PROTO (LEN, TOS, …, flags), with a space before
    r"IN=(\S*) OUT=\S* (?:MAC=\S* )?SRC=(\S*) DST=(\S*)((?: [A-Z]+(?:=\S*)?)*?) PROTO=(\S*) SPT=(\S*) DPT=(\S*)")
_FW_PREFIX = re.compile(r"(?:\[\s*\d+\.\d+\]\s*)?(.*?)\s*(?=IN=)")
_KERNEL_STAMP = re.compile(r"\[\s*\d+\.\d+\]\s*")  # _FW_PREFIX's optional first part
_NGINX = re.compile(
    r'(\S+) \S+ (\S+) \[([^\]]+)\] "(?:(\S+) (.*?)(?: (HTTP/[\d.]+))?|(.*?))" (\d{3}) (\d+|-)'
    r'(?: "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)")?')
# The hot path for the usual line (no backslash, a request "METHOD URL[ HTTP/x]" without spaces or quotes in
# its parts): plain character classes instead of _NGINX's lazy request and escape-aware quoted strings, which
# cost Python's regex engine a step per character (≈ 4× the time on a 200-byte line). Where it matches it
# reads the line as _NGINX does: the method ends at the request's first space as (\S+) ends it, a URL without
# spaces leaves " HTTP/x" as the only possible version, and without a backslash the quoted strings read the
# same. Any other line takes _NGINX (differential-tested on bench/city_day.py's corpus and 300,000 mutations
# of it: the same events and rejections both ways).
_NGINX_PLAIN = re.compile(r'(\S+) \S+ (\S+) \[([^\]]+)\] "([^\s"]+) ([^\s"]*)(?: (HTTP/[\d.]+))?" (\d{3}) (\d+|-)'
                          r'(?: "([^"]*)" "([^"]*)")?')
# The quiet web reader's head: _NGINX_PLAIN without its optional quoted tail (which never changes what the
# groups before it read: nothing follows the optional part to backtrack for), capturing only what decides
# whether the line is an event and what its source is; in bytes, for lines of printable ASCII only.
_NGINX_HEAD = re.compile(rb'(\S+) \S+ \S+ \[([^\]]+)\] "[^\s"]+ ([^\s"]*)(?: HTTP/[\d.]+)?" \d{3} (\d+|-)')
_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))
# The nginx event's fields a quiet reader (Normalizer.quiet_web) holds in a raw text of the line: what a rule
# screening them must find there.
NGINX_CARRIERS = {"url.original": "url", "url.path": "url", "url.query": "url", "user_agent.original": "agent"}
_QUIET_MEMORY = 16384
_NOT_PRINTABLE = re.compile(rb"[^ -~\n]")
_DIGIT_FIRST = re.compile(rb"\n[0-9]")
_CLF_DATE = re.compile(r"(\d\d)/([A-Z][a-z]{2})/(\d{4}):(\d\d):(\d\d):(\d\d) ([+-]\d{4})$")
_AUDIT = re.compile(r"(?:type=(\S+) )?msg=audit\((\d+)\.(\d+):(\d+)\): ?(.*)", re.S)
_AUDIT_KV = re.compile(r"""(\w+)=("[^"]*"|'[^']*'|\S*)""")
_PG = re.compile(
    r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)(?: ([A-Z]{2,5}|[+-]\d\d(?::?\d\d)?))? \[(\d+)\](?:: \[\d+-\d+\])? "
    r"(.*?)(LOG|FATAL|ERROR|WARNING|DETAIL|HINT|STATEMENT|NOTICE|INFO|PANIC):  (.*)", re.S)
_PG_SYSLOG = re.compile(r"(?:\[\d+-\d+\] )?(.*?)(LOG|FATAL|ERROR|WARNING|DETAIL|HINT|STATEMENT|NOTICE|INFO|PANIC):  (.*)", re.S)
_PG_AUTHFAIL = re.compile(r'(password|md5|scram-sha-256|ident|peer|cert|trust) authentication failed for user "([^"]*)"')
_PG_NOROLE = re.compile(r'role "([^"]*)" does not exist')
_PG_CONN = re.compile(r"connection received: host=(\S+?)(?: port=(\d+))?$")
_PG_AUTHOK = re.compile(r"connection authorized: user=(\S+)")
# The client address in log_line_prefix (%h, or %r = host(port)) is its last item: user and database names
# (%u, %d) come before it, and the client chooses those.
_PG_PREFIX_HOST = re.compile(r"([^\s,=]+?)(?:\((\d+)\))?\s*$")
_PG_LEVEL = re.compile(r"(LOG|FATAL|ERROR|WARNING|DETAIL|HINT|STATEMENT|NOTICE|INFO|PANIC):  ")

_TZ_OFFSETS = {"UTC": 0, "GMT": 0, "Z": 0, "CST": 8 * 3600, "HKT": 8 * 3600}


def line_numbers(text: bytes, positions: Iterable[int]) -> set[int]:
    """The lines (numbered from 0) of `text` that hold the given positions, counting its newlines once."""
    found, line, counted = set(), 0, 0
    for p in sorted(positions):
        line += text.count(b"\n", counted, p)
        counted = p
        found.add(line)
    return found


class Normalizer:
    """Parses one source's lines. Not thread-safe: one instance per source."""

    def __init__(self, source: str = "replay", fmt: str = "auto", encoding: str = "auto",
                 tz_offset: int = 0, year: int | None = None,
                 max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, host: str | None = None):
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        if encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {encoding!r}; use one of {', '.join(ENCODINGS)}")
        self.source = source
        self.format = fmt
        self.encoding = encoding
        self._utf8_first = encoding in ("auto", "utf-8")
        self.tz_offset = tz_offset  # seconds east of UTC for dates that carry no zone
        self.max_line_bytes = max_line_bytes
        self.host = host  # host.hostname for formats that do not name the host (sshd)
        self._year = year or dt.datetime.now(dt.timezone.utc).year
        self._last_month = 0
        self._bsd_cache: dict[str, float | None] = {}
        self._bsd_days: dict[tuple[int, int, int], int | None] = {}  # (year, month, day) → midnight UTC epoch
        self._iso_cache: dict[str, float | None] = {}
        self._clf_cache: dict[str, float | None] = {}
        self._clf_days: dict[str, int | None] = {}  # "02/Nov/2026+0800" → that midnight's epoch (None: impossible)
        self._pg_clients: dict[str, tuple[str, str | None]] = {}  # pid → (ip, port)
        self._programs = {
            "sshd": self._sshd, "sudo": self._sudo, "su": self._su, "useradd": self._useradd,
            "usermod": self._useradd, "kernel": self._kernel, "postgres": self._pg_syslog,
            "postgresql": self._pg_syslog, "audit": self._audit_syslog, "audispd": self._audit_syslog,
            "audisp-syslog": self._audit_syslog,
        }

    # ---------------------------------------------------------------- entry point
    def decode(self, raw: bytes) -> str | Rejected:
        """Bytes of one line (no newline) → text, per the source's encoding."""
        if self.encoding == "auto":
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                try:
                    return raw.decode("gb18030")
                except UnicodeDecodeError:
                    return Rejected("encoding", "neither UTF-8 nor GB18030")
        try:
            return raw.decode(self.encoding)
        except UnicodeDecodeError as exc:
            return Rejected("encoding", f"not valid {self.encoding} at byte {exc.start}")

    def normalize(self, raw: bytes) -> dict[str, Any] | Rejected:
        if len(raw) > self.max_line_bytes:
            return Rejected("too_long", f"{len(raw)} bytes > {self.max_line_bytes}")
        if self._utf8_first:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = self.decode(raw)
        else:
            text = self.decode(raw)
        if text.__class__ is Rejected:
            return text
        return self.normalize_text(text)

    def normalize_text(self, text: str) -> dict[str, Any] | Rejected:
        """Text of one line → event or rejection. Never raises on bad input."""
        if text[-1:] in ("\r", "\n"):
            text = text.rstrip("\r\n")
        if not text or text.isspace():
            return Rejected("empty")
        if not text.isprintable() and _CONTROL.search(text):  # isprintable: a fast C pre-check
            return Rejected("binary", "control characters in the line")
        try:
            if self.format == "auto" and text[0] in "JFMASOND":  # a BSD syslog date: most lines, no extra frame
                return self._syslog(text)
            return self._dispatch(text)
        except (ValueError, OverflowError, IndexError, KeyError) as exc:  # parser gaps: kept aside, not fatal
            return Rejected("unknown_format", f"{type(exc).__name__}: {exc}"[:200])

    def _dispatch(self, text: str) -> dict[str, Any] | Rejected:
        fmt = self.format
        if fmt == "auto":
            c = text[0]
            if c.isdigit():  # first: nginx access lines are most of a city's day (no other test starts with a digit)
                if text[4:5] == "-":
                    if text[10:11] == " ":
                        return self._postgresql(text)
                    if text[10:11] == "T":
                        return self._syslog(text)
                return self._nginx(text)
            if c == "{":
                return self._json(text)
            if c == "<" or c in "JFMASOND":
                return self._syslog(text)
            if text.startswith("type=") or text.startswith("msg=audit("):
                return self._auditd(text)
            return self._nginx(text) if ":" in text[:40] and " - " in text[:60] else Rejected(
                "unknown_format", "no known log format recognised")
        return {"syslog": self._syslog, "nginx": self._nginx, "auditd": self._auditd,
                "postgresql": self._postgresql, "json": self._json, "sshd": self._sshd_own}[fmt](text)

    # ---------------------------------------------------------------- helpers
    def _bsd_time(self, stamp: str) -> float | None:
        cached = self._bsd_cache.get(stamp, False)
        if cached is not False:
            return cached
        month = _MONTHS.get(stamp[:3])
        try:
            day, hh, mm, ss = int(stamp[4:6]), int(stamp[7:9]), int(stamp[10:12]), int(stamp[13:15])
        except ValueError:
            return None
        if month is None:
            return None
        if self._last_month == 12 and month == 1:  # the file crossed New Year
            self._year += 1
        self._last_month = month
        # The day's midnight, remembered per date (a day has 86,400 stamps, each read once); the time of day is
        # added to it, checked as datetime checks it (hours < 24, minutes and seconds < 60).
        date = (self._year, month, day)
        midnight = self._bsd_days.get(date, _MISS)
        if midnight is _MISS:
            try:
                midnight = calendar.timegm(dt.datetime(self._year, month, day).timetuple())
            except ValueError:
                midnight = None
            if len(self._bsd_days) > 4096:
                self._bsd_days.clear()
            self._bsd_days[date] = midnight
        if midnight is not None and 0 <= hh < 24 and 0 <= mm < 60 and 0 <= ss < 60:
            t = float(midnight + hh * 3600 + mm * 60 + ss - self.tz_offset)
        else:
            t = None
        if len(self._bsd_cache) > 4096:
            self._bsd_cache.clear()
        self._bsd_cache[stamp] = t
        return t

    def _iso_time(self, stamp: str) -> float | None:
        cached = self._iso_cache.get(stamp, False)
        if cached is not False:
            return cached
        m = _ISO.match(stamp)
        t = None
        if m:
            y, mo, d, hh, mi, ss, frac, zone = m.groups()
            try:
                t = float(calendar.timegm(dt.datetime(int(y), int(mo), int(d), int(hh), int(mi), int(ss)).timetuple()))
                t += float(frac) if frac else 0.0
                t -= _zone_offset(zone, self.tz_offset)
            except (ValueError, KeyError):
                t = None
        if len(self._iso_cache) > 4096:
            self._iso_cache.clear()
        self._iso_cache[stamp] = t
        return t

    def _clf_time(self, stamp: str) -> float | None:
        """An nginx time stamp (02/Nov/2026:10:00:00 +0800) → epoch, or None if impossible; memoised. The day's
        midnight is remembered per date and zone (a day has 86,400 stamps, each read once): the time of day is
        added to it, checked as datetime checks it (hours < 24, minutes and seconds < 60)."""
        d = _CLF_DATE.match(stamp)
        t = None
        if d and d.group(2) in _MONTHS:
            day, mon, year, hh, mi, ss, zone = d.groups()
            date = stamp[:11] + zone
            midnight = self._clf_days.get(date, _MISS)
            if midnight is _MISS:
                try:
                    midnight = calendar.timegm(dt.datetime(int(year), _MONTHS[mon], int(day)).timetuple()) \
                        - _zone_offset(zone, 0)
                except ValueError:
                    midnight = None
                if len(self._clf_days) > 4096:
                    self._clf_days.clear()
                self._clf_days[date] = midnight
            h, m, sec = int(hh), int(mi), int(ss)
            if midnight is not None and h < 24 and m < 60 and sec < 60:
                t = float(midnight + h * 3600 + m * 60 + sec)
        if len(self._clf_cache) > 4096:
            self._clf_cache.clear()
        self._clf_cache[stamp] = t
        return t

    # ---------------------------------------------------------------- syslog
    def _syslog(self, text: str) -> dict[str, Any] | Rejected:
        m = _SYSLOG_BSD.match(text)
        if m:
            pri, stamp, host, program, pid, msg = m.groups()
            if stamp[0].isalpha():
                t = self._bsd_cache.get(stamp, _MISS)  # the cache hit inline: stamps repeat line after line
                if t is _MISS:
                    t = self._bsd_time(stamp)
            else:
                t = self._iso_time(stamp)
        else:
            m = _SYSLOG_5424.match(text)
            if not m:
                return Rejected("unknown_format", "no syslog header (RFC 3164 or 5424)")
            pri, stamp, host, program, pid, _msgid, _sd, msg = m.groups()
            msg = (msg or "").removeprefix("\ufeff")
            t = self._iso_time(stamp)
            pid = None if pid == "-" else pid
            if program == "-":
                program = ""
        if t is None:
            return Rejected("bad_timestamp", f"impossible date {stamp!r}")
        if pri is not None and int(pri) > 191:
            return Rejected("unknown_format", f"syslog priority {pri} out of range")
        base = {"@timestamp": t, "host.hostname": host, "process.name": program,
                "message": msg, "event.original": text}
        if pid:
            base["process.pid"] = int(pid)
        parser = self._programs.get(program)
        if parser is None:
            if msg.startswith("pam_"):
                return self._pam(base, msg)
            base["event.dataset"] = "syslog"
            return base
        return parser(base, msg)

    @staticmethod
    def _ip(text: str) -> str | None:
        """The canonical address (secops.address), or None if it is not one."""
        return CANONICAL.get(text) or canonical(text) or None

    def _with_source(self, event: dict, ip: str, port: str | None) -> dict | Rejected:
        addr = CANONICAL.get(ip) or canonical(ip)  # the cache hit inline: sources repeat
        if not addr:
            return Rejected("bad_address", unusable(ip)[:200])
        event["source.ip"] = addr
        if port:
            event["source.port"] = int(port)
        return event

    def _sshd_own(self, text: str) -> dict | Rejected:
        """A line of OpenSSH's own log (`sshd -e` or `-E FILE`, as lab hosts and containers run it):
        the message alone, no date, host or program. Stamped now: the daemon reads it as it is written."""
        e = {"@timestamp": time.time(), "process.name": "sshd", "message": text, "event.original": text}
        if self.host:
            e["host.hostname"] = self.host
        return self._sshd(e, text)

    def _sshd(self, e: dict, msg: str) -> dict | Rejected:
        e["event.dataset"] = "sshd"
        c = msg[:3]
        if c == "Fai":  # the hot path of a brute force: plain assignments, no temporary dicts
            m = _SSHD_FAILED_ONE.match(msg)
            if m is not None and (m.group(6) is None or msg.count(" from ") == 1):
                method, invalid, user, ip, port, _info = m.groups()
                e["event.category"] = "authentication"
                e["event.action"] = "ssh_login"
                e["event.outcome"] = "failure"
                e["user.name"] = user
                e["ssh.method"] = method
                e["user.invalid"] = invalid is not None
                return self._with_source(e, ip, port)
            m = _SSHD_FAILED.match(msg)
            if m:
                method = m.group(1)
                found = _sshd_from(msg, m.end(), _SSHD_TAIL_KEY if method in _KEY_METHODS else _SSHD_TAIL)
                if found is not None:
                    e["event.category"] = "authentication"
                    e["event.action"] = "ssh_login"
                    e["event.outcome"] = "failure"
                    e["ssh.method"] = method
                    e["user.invalid"] = m.group(2) is not None
                    return self._sshd_source(e, found)
        elif c == "Acc":
            m = _SSHD_ACCEPTED_ONE.match(msg)
            if m is not None and (m.group(5) is None or msg.count(" from ") == 1):
                method, user, ip, port, _info = m.groups()
                e["event.category"] = "authentication"
                e["event.action"] = "ssh_login"
                e["event.outcome"] = "success"
                e["user.name"] = user
                e["ssh.method"] = method
                return self._with_source(e, ip, port)
            m = _SSHD_ACCEPTED.match(msg)
            if m:
                method = m.group(1)
                found = _sshd_from(msg, m.end(), _SSHD_TAIL_KEY if method in _KEY_METHODS else _SSHD_TAIL)
                if found is not None:
                    e["event.category"] = "authentication"
                    e["event.action"] = "ssh_login"
                    e["event.outcome"] = "success"
                    e["ssh.method"] = method
                    return self._sshd_source(e, found)
        elif c == "Inv":
            m = _SSHD_INVALID_ONE.match(msg)  # nothing but a port may follow: the reading is the only one
            if m is not None:
                user, ip, port = m.groups()
                e["event.category"] = "authentication"
                e["event.action"] = "ssh_invalid_user"
                e["event.outcome"] = "failure"
                e["user.name"] = user
                e["user.invalid"] = True
                return self._with_source(e, ip, port)
            m = _SSHD_INVALID.match(msg)
            if m:
                found = _sshd_from(msg, m.end(), _SSHD_TAIL_OLD)
                if found is not None:
                    e["event.category"] = "authentication"
                    e["event.action"] = "ssh_invalid_user"
                    e["event.outcome"] = "failure"
                    e["user.invalid"] = True
                    return self._sshd_source(e, found)
        elif c == "pam":
            return self._pam(e, msg, dataset="sshd")
        elif c in ("Con", "Dis"):
            m = _SSHD_CLOSED.match(msg)
            if m:
                kind, user, ip, port = m.groups()
                e["event.action"] = "ssh_disconnect"
                if user:
                    e["user.name"] = user
                    e["event.outcome"] = "failure"  # closed while still authenticating
                    e["event.category"] = "authentication"
                return self._with_source(e, ip, port)
        elif c == "err":
            m = _SSHD_MAXAUTH.match(msg)
            if m:
                found = _sshd_from(msg, m.end(), _SSHD_TAIL)
                if found is not None:
                    e.update({"event.category": "authentication", "event.action": "ssh_max_auth_exceeded",
                              "event.outcome": "failure"})
                    return self._sshd_source(e, found)
        elif c in ("Did", "ban"):
            m = _SSHD_NOIDENT.match(msg)
            if m:
                e.update({"event.category": "network", "event.action": "ssh_no_identification"})
                return self._with_source(e, m.group(1), m.group(2))
        e["event.action"] = "sshd_message"
        return e

    def _sshd_source(self, e: dict, found: tuple[str, str, str | None]) -> dict | Rejected:
        user, ip, port = found
        e["user.name"] = user
        if found is _AMBIGUOUS:  # recorded, but nothing here says who sent it
            e["event.reason"] = "ambiguous source: the client's text repeats sshd's 'from ADDR port N'"
            return e
        return self._with_source(e, ip, port)

    def _pam(self, e: dict, msg: str, dataset: str = "pam") -> dict | Rejected:
        e["event.dataset"] = dataset
        m = _PAM.match(msg)
        if not m:
            e["event.action"] = "pam_message"
            return e
        module, service, kind, rest = m.groups()
        e["pam.module"], e["pam.service"] = module, service
        if rest.startswith("authentication failure"):
            e.update({"event.category": "authentication", "event.action": f"{service}_auth",
                      "event.outcome": "failure"})
            rhost, user = _pam_rhost(rest)
            if user:
                e["user.name"] = user
            ruser = _PAM_KV.search(rest, rest.find(" ruser=")) if " ruser=" in rest else None
            if ruser and ruser.group(1) == "ruser" and ruser.group(2):
                e["source.user.name"] = ruser.group(2)
            if rhost:
                addr = self._ip(rhost)
                if addr:
                    e["source.ip"] = addr
                else:
                    e["source.domain"] = rhost
            return e
        m = _PAM_SESSION.match(rest)
        if m:  # cron and every login: plain assignments, no temporary dict
            state, user, uid, by, by_uid = m.groups()
            e["event.category"] = "session"
            e["event.action"] = "session_opened" if state == "opened" else "session_closed"
            e["event.outcome"] = "success"
            e["user.name"] = user
            if uid:
                e["user.id"] = uid
            if by:
                e["source.user.name"] = by
            return e
        e["event.action"] = f"pam_{kind}"
        return e

    def _sudo(self, e: dict, msg: str) -> dict | Rejected:
        e["event.dataset"] = "sudo"
        if msg.startswith("pam_"):
            return self._pam(e, msg, dataset="sudo")
        m = _SUDO.match(msg)
        if not m:
            e["event.action"] = "sudo_message"
            return e
        user, problem, tty, pwd, target, command = m.groups()
        e.update({"event.category": "process", "event.action": "sudo", "user.name": user,
                  "user.effective.name": target, "process.command_line": command,
                  "process.working_directory": pwd, "process.tty.name": tty})
        if problem:
            e["event.outcome"] = "failure"
            e["error.message"] = problem
        else:
            e["event.outcome"] = "success"
        return e

    def _su(self, e: dict, msg: str) -> dict | Rejected:
        e["event.dataset"] = "su"
        if msg.startswith("pam_"):
            return self._pam(e, msg, dataset="su")
        m = _SU_TO.match(msg)
        if m:
            failed, target, user, tty = m.groups()
        else:
            m = _SU_FOR.match(msg)
            if not m:
                e["event.action"] = "su_message"
                return e
            verdict, target, user = m.groups()
            failed, tty = verdict == "FAILED", None
        e.update({"event.category": "authentication", "event.action": "su",
                  "event.outcome": "failure" if failed else "success",
                  "user.name": user, "user.effective.name": target})
        if tty:
            e["process.tty.name"] = tty
        return e

    def _useradd(self, e: dict, msg: str) -> dict | Rejected:
        e["event.dataset"] = "useradd"
        m = _USERADD.match(msg)
        if m:
            e.update({"event.category": "iam", "event.type": "creation", "event.action": "user_created",
                      "event.outcome": "success", "user.target.name": m.group(1),
                      "user.target.id": m.group(2), "group.id": m.group(3)})
            return e
        m = _USERMOD_UID.match(msg)
        if m:
            e.update({"event.category": "iam", "event.type": "change", "event.action": "user_uid_changed",
                      "event.outcome": "success", "user.target.name": m.group(1),
                      "user.target.id": m.group(3)})
            return e
        e["event.action"] = f"{e['process.name']}_message"
        return e

    def _kernel(self, e: dict, msg: str) -> dict | Rejected:
        if "IN=" not in msg or "SRC=" not in msg:
            e["event.dataset"] = "syslog"
            return e
        e["event.dataset"] = "firewall"
        # The label is the free text before the first IN= (after the kernel's own time stamp), as _FW_PREFIX
        # reads it; found with str.find, which costs a fifth of the regex's lazy scan. A newline stops
        # _FW_PREFIX's `.`: then its own answer.
        if "\n" in msg:
            prefix = _FW_PREFIX.match(msg)
            label, fields_at = (prefix.group(1).strip().rstrip(":"), prefix.end()) if prefix else ("", 0)
        else:
            start = 0
            if msg[:1] == "[":
                stamp = _KERNEL_STAMP.match(msg)
                if stamp is not None:
                    start = stamp.end()
            fields_at = msg.find("IN=", start)  # found: the stamp holds no "IN="
            label = msg[start:fields_at].strip().rstrip(":")
        # The fields the kernel wrote, from IN= on (the label before it is free text); the first of each wins.
        kv = _kernel_fields(msg, fields_at)
        lowered = label.lower()
        action = ("drop" if "drop" in lowered or "block" in lowered or "deny" in lowered or "reject" in lowered
                  else "accept" if "accept" in lowered or "allow" in lowered else "log")
        e.update({"event.category": "network", "event.action": action, "rule.name": label,
                  "network.transport": kv.get("PROTO", "").lower(),
                  "observer.ingress.interface.name": kv.get("IN", "")})
        if "DST" in kv:
            dst = self._ip(kv["DST"])
            if dst is None:
                return Rejected("bad_address", f"not an IP address: {kv['DST'][:64]!r}")
            e["destination.ip"] = dst
        if "DPT" in kv:
            e["destination.port"] = int(kv["DPT"])
        return self._with_source(e, kv["SRC"], kv.get("SPT"))

    # ---------------------------------------------------------------- nginx access (combined)
    def _nginx(self, text: str) -> dict | Rejected:
        m = _NGINX_PLAIN.match(text) if "\\" not in text else None
        if m is not None:
            ip, user, stamp, method, url, version, status, size, referrer, agent = m.groups()
            raw_request = None
        else:
            m = _NGINX.match(text)
            if not m:
                return Rejected("unknown_format", "not an nginx combined access line")
            ip, user, stamp, method, url, version, raw_request, status, size, referrer, agent = m.groups()
        t = self._clf_cache.get(stamp, _MISS)  # stamps repeat line after line
        if t is _MISS:
            t = self._clf_time(stamp)
        if t is None:
            return Rejected("bad_timestamp", f"impossible date {stamp[:40]!r}")
        status_code = int(status)
        e = {"@timestamp": float(t), "event.dataset": "nginx.access", "event.category": "web",
             "event.action": "http_request", "http.response.status_code": status_code,
             "message": text, "event.original": text}
        if method is not None:
            e["http.request.method"], e["url.original"] = method, url
            path, _, query = url.partition("?")
            # url.path / url.query are percent-decoded so rules see what the application sees.
            e["url.path"] = _unquote(path) if "%" in path or "+" in path else path
            if query:
                e["url.query"] = _unquote(query) if "%" in query or "+" in query else query
            if version:
                e["http.version"] = version[5:]
        else:
            e["url.original"] = raw_request
        e["event.outcome"] = "failure" if status_code >= 400 else "success"
        if size != "-":
            e["http.response.body.bytes"] = int(size)
        if user != "-":
            e["user.name"] = user
        if referrer and referrer != "-":
            e["http.request.referrer"] = referrer
        if agent is not None:
            e["user_agent.original"] = agent
        addr = CANONICAL.get(ip) or canonical(ip)  # _with_source, inline: the source of most lines of a day
        if not addr:
            return Rejected("bad_address", unusable(ip)[:200])
        e["source.ip"] = addr
        return e

    def quiet_web(self, screens: dict[str, Any]) -> Callable[[list[bytes], set[str] | None], list[bytes]] | None:
        """A reader for the replay's hot path: `quiet(lines, sources)` gives the lines that need `normalize`, in
        their order, and adds to `sources` (if given) the canonical source addresses of the others — nginx access
        lines that `normalize` turns into events on which none of `screens` (a detect.FieldScreen per carrier of
        NGINX_CARRIERS, from Detector.carried_screens) finds a text: lines no rule can match, whose events need
        not be built. It leaves a line to `normalize` whenever it is not sure: anything but printable ASCII, a
        backslash, an impossible time stamp or a bad address (normalize rejects those lines). An encoded URL is
        searched as the rules see it too (url.path and url.query decoded). No reader (None) for formats or
        encodings whose lines are not read so. The time stamp and the address are read by the same memoised
        functions `normalize` uses.

        Why a block at a time: one regex pass over the joined lines reads every line's fields in C, and each
        distinct address, time stamp, URL and user agent of the block is judged once; a call per line cost the
        city day's web lines most of their time (docs/secops.md, "Quiet web lines")."""
        if self.format not in ("auto", "nginx") or not self._utf8_first:
            return None
        url_screen, agent_screen = screens.get("url"), screens.get("agent")
        if any(screen is not None and screen.finds("") for screen in (url_screen, agent_screen)):
            return None  # a screen that finds the empty text sends every line to normalize: nothing is quiet
        # Per line, from its start: in auto mode a first digit and no '-' fifth (a syslog or ISO time stamp);
        # _NGINX_HEAD with its address read as a canonical dotted quad or as anything else; the optional quoted
        # tail as _NGINX_PLAIN reads it, capturing the user agent; then the rest of the line. A line that fails
        # reads as empty fields. The quick classes ([^"], [^\]]) may run past a line's end: a block whose count
        # of matches is not its count of lines is read line by line (no newline inside a line, so nothing to
        # run into). Lines with anything but printable ASCII, a backslash, or too long for normalize are found
        # in the joined text by C searches (`unsure`) and go to normalize whatever their fields read.
        auto = self.format == "auto"
        assert _NGINX_HEAD.pattern.startswith(rb"(\S+) ")
        head = rb"(?:(%s) |(\S+) )" % DOTTED_QUAD.pattern.encode() + _NGINX_HEAD.pattern[len(rb"(\S+) "):]
        fields = (rb"(?=[0-9])(?![ -~]{4}-)" if auto else b"") + head + rb'(?: "[^"]*" "([^"]*)")?'
        block_fields = re.compile(rb"^(?:" + fields + rb")?[^\n]*", re.M).findall
        line_fields = re.compile(fields).match
        unread = (b"",) * line_fields.__self__.groups
        printable, max_bytes = _PRINTABLE_ASCII + b"\n", self.max_line_bytes
        clf, clf_time = self._clf_cache, self._clf_time
        # What a value said the last times it was seen (a bounded memory each): True where it sends its line to
        # normalize, False where not; an address maps to its canonical text, or "" where normalize refuses it.
        stamps: dict[bytes, bool] = {}
        addresses: dict[bytes, str] = {}
        urls: dict[bytes, bool] = {}
        agents: dict[bytes, bool] = {}

        def stamps_loud(values: list[bytes]) -> list[bool]:
            said = []
            for stamp in values:
                text = stamp.decode("latin-1")  # printable ASCII, or a line going to normalize anyway
                t = clf.get(text, _MISS)
                # an unread line, an impossible time stamp: normalize rejects the line
                said.append(not stamp or (clf_time(text) if t is _MISS else t) is None)
            return said

        def screened(screen, decoded_too: bool = False) -> Callable[[list[bytes]], list[bool]]:
            def loud(values: list[bytes]) -> list[bool]:
                found = screen.lines_found(b"\n".join(values))
                said = ([i in found for i in range(len(values))] if found is not None
                        else [screen.finds(value.decode("latin-1")) for value in values])
                if decoded_too:  # rules see a URL's path and query decoded
                    for i, value in enumerate(values):
                        if not said[i] and (b"%" in value or b"+" in value):
                            path, _, query = value.decode("latin-1").partition("?")
                            said[i] = screen.finds(_unquote(path)) or screen.finds(_unquote(query))
                return said
            return loud

        url_judged = screened(url_screen, decoded_too=True) if url_screen is not None else None
        agent_judged = screened(agent_screen) if agent_screen is not None else None

        def canonical_addresses(values: list[bytes]) -> list[str]:
            return [canonical(ip.decode("latin-1")) for ip in values]

        def judge(memory: dict, values: Iterable[bytes], judged: Callable[[list[bytes]], list],
                  loud: Callable[[Any], bool] = bool) -> set[bytes]:
            """Judges the values not in memory; gives the distinct values whose lines go to normalize."""
            distinct = set(values)
            new = distinct.difference(memory)
            if len(memory) + len(new) > _QUIET_MEMORY:
                memory.clear()
                new = distinct
            if new:
                listed = list(new)
                memory.update(zip(listed, judged(listed)))
            return {value for value in distinct if loud(memory[value])}

        def unsure(data: bytes, lines: list[bytes]) -> set[int]:
            """The lines (by index) with anything but printable ASCII, a backslash, or too long for normalize."""
            at = []
            if data.translate(None, printable):
                at = [m.start() for m in _NOT_PRINTABLE.finditer(data)]
            p = data.find(b"\\")
            while p >= 0:
                at.append(p)
                p = data.find(b"\\", p + 1)
            found = line_numbers(data, at)
            if max(map(len, lines)) > max_bytes:
                found.update(i for i, raw in enumerate(lines) if len(raw) > max_bytes)
            return found

        def quiet(lines: list[bytes], sources: set[str] | None = None) -> list[bytes]:
            if not lines:
                return lines
            data = b"\n".join(lines)
            if auto and not (data[:1].isdigit() or _DIGIT_FIRST.search(data)):
                return lines  # a block of syslog lines (a firewall's, a bastion's): no nginx line to read
            rows = block_fields(data)
            if len(rows) != len(lines):  # a field ran on past its line: read each line alone
                rows = [m.groups(b"") if (m := line_fields(raw)) else unread for raw in lines]
            quads, others, stamps_read, urls_read, sizes, agents_read = zip(*rows)
            loud = unsure(data, lines)
            numbers = range(len(lines))
            # A canonical dotted quad is its own canonical address; any other address is judged (an unread line
            # reads none, which canonical refuses: to normalize).
            no_quad = list(itertools.compress(numbers, map(operator.not_, quads)))
            if no_quad:
                bad = judge(addresses, [others[i] for i in no_quad], canonical_addresses, operator.not_)
                loud.update(i for i in no_quad if others[i] in bad)
            for column, memory, judged in ((stamps_read, stamps, stamps_loud), (urls_read, urls, url_judged),
                                           (agents_read, agents, agent_judged)):
                if judged is not None:
                    bad = judge(memory, column, judged)
                    if bad:  # map and compress: the pass over the block's lines stays in C
                        loud.update(itertools.compress(numbers, map(bad.__contains__, column)))
            if max(map(len, sizes)) > 18:
                loud.update(i for i in numbers if len(sizes[i]) > 18)
            if sources is not None:
                sources.update(quads[i].decode() if quads[i] else addresses[others[i]]
                               for i in numbers if i not in loud)
            return [lines[i] for i in sorted(loud)]

        return quiet

    # ---------------------------------------------------------------- auditd
    def _auditd(self, text: str) -> dict | Rejected:
        m = _AUDIT.match(text)
        if not m:
            return Rejected("unknown_format", "not an auditd record")
        rtype, secs, millis, serial, body = m.groups()
        e = {"@timestamp": int(secs) + int(millis) / 1000.0, "event.dataset": "auditd",
             "auditd.log.record_type": rtype or "UNKNOWN", "auditd.log.sequence": int(serial),
             "message": body, "event.original": text}
        return self._audit_fields(e, body)

    def _audit_syslog(self, e: dict, msg: str) -> dict | Rejected:
        m = _AUDIT.search(msg)
        if not m:
            e["event.dataset"] = "auditd"
            e["event.action"] = "audit_message"
            return e
        rtype, _s, _ms, serial, body = m.groups()
        e.update({"event.dataset": "auditd", "auditd.log.record_type": rtype or "UNKNOWN",
                  "auditd.log.sequence": int(serial), "message": body})
        return self._audit_fields(e, body)

    def _audit_fields(self, e: dict, body: str) -> dict | Rejected:
        kv: dict[str, str] = {}
        nested = body.find(" msg='") + 1 if body[:5] != "msg='" else 0
        end = body.rfind("'")
        if (nested or body[:5] == "msg='") and end > nested + 4:
            # user-space records nest their fields in msg='…', up to the last quote (a quote may sit inside a
            # value: auditd encodes values with spaces or double quotes, not those with single quotes)
            outer, inner = body[:max(nested - 1, 0)], body[nested + 5:end]
        else:
            outer, inner = body, ""
        for k, v in _AUDIT_KV.findall(outer):
            kv.setdefault(k, v.strip('"'))
        for k, v in reversed(_AUDIT_KV.findall(inner)):  # the first of each key wins, over the outer ones
            kv[k] = v.strip('"')
        for key, field in (("uid", "user.id"), ("auid", "user.audit.id"), ("euid", "user.effective.id"),
                           ("exe", "process.executable"), ("comm", "process.name"), ("key", "auditd.log.key"),
                           ("op", "auditd.log.op"), ("acct", "user.name"), ("syscall", "auditd.log.syscall"),
                           ("id", "user.target.id"), ("terminal", "process.tty.name")):
            if key in kv:
                e[field] = kv[key]
        if "pid" in kv and kv["pid"].isdigit():
            e["process.pid"] = int(kv["pid"])
        res = kv.get("res") or kv.get("success")
        if res:
            e["event.outcome"] = "success" if res in ("success", "yes", "1") else "failure"
        rtype = e["auditd.log.record_type"]
        e["event.action"] = rtype.lower()
        if rtype in ("USER_LOGIN", "USER_AUTH", "USER_ERR"):
            e["event.category"] = "authentication"
        elif rtype in ("ADD_USER", "ADD_GROUP", "USER_MGMT", "DEL_USER"):
            e["event.category"] = "iam"
        addr = kv.get("addr")
        if addr and addr not in ("?", "(none)"):
            ip = self._ip(addr)
            if ip is None:
                return Rejected("bad_address", f"not an IP address: {addr[:64]!r}")
            e["source.ip"] = ip
        return e

    # ---------------------------------------------------------------- PostgreSQL
    def _postgresql(self, text: str) -> dict | Rejected:
        m = _PG.match(text)
        if not m:
            return Rejected("unknown_format", "not a PostgreSQL log line (log_line_prefix '%m [%p] …')")
        stamp, zone, pid, prefix, level, msg = m.groups()
        t = self._iso_time(stamp + (" " + zone if zone else ""))
        if t is None:
            return Rejected("bad_timestamp", f"impossible date {stamp!r}")
        e = {"@timestamp": t, "process.pid": int(pid), "process.name": "postgres",
             "message": msg, "event.original": text}
        return self._pg_event(e, pid, prefix, level, msg)

    def _pg_syslog(self, e: dict, msg: str) -> dict | Rejected:
        m = _PG_SYSLOG.match(msg)
        if not m:
            e["event.dataset"] = "postgresql"
            e["event.action"] = "postgresql_message"
            return e
        prefix, level, body = m.groups()
        e["message"] = body
        return self._pg_event(e, str(e.get("process.pid", "")), prefix, level, body)

    def _pg_event(self, e: dict, pid: str, prefix: str, level: str, msg: str) -> dict | Rejected:
        e["event.dataset"] = "postgresql"
        e["log.level"] = level.lower()
        host = _pg_prefix_host(prefix, level, msg) if prefix and pid not in self._pg_clients else None
        if host is not None:  # the server-written "connection received" address of this backend, when known, wins
            e["source.ip"] = host[0]
            if host[1]:
                e["source.port"] = int(host[1])
        if "@" in prefix:
            user = prefix.split("@", 1)[0].split()[-1] if prefix.split("@", 1)[0].split() else ""
            if user and user != "[unknown]":
                e["user.name"] = user
        conn = _PG_CONN.match(msg)
        if conn:
            addr = self._ip(conn.group(1))
            if addr:
                if len(self._pg_clients) > 10000:
                    self._pg_clients.clear()
                self._pg_clients[pid] = (addr, conn.group(2))
            e.update({"event.category": "network", "event.action": "db_connection"})
            if addr:
                e["source.ip"] = addr
            return e
        if "source.ip" not in e and pid in self._pg_clients:
            e["source.ip"], port = self._pg_clients[pid]
            if port:
                e["source.port"] = int(port)
        fail = _PG_AUTHFAIL.search(msg) if level == "FATAL" else None
        norole = _PG_NOROLE.search(msg) if level == "FATAL" and not fail else None
        if fail or norole:
            e.update({"event.category": "authentication", "event.action": "db_login",
                      "event.outcome": "failure", "user.name": fail.group(2) if fail else norole.group(1)})
            return e
        ok = _PG_AUTHOK.match(msg)
        if ok:
            e.update({"event.category": "authentication", "event.action": "db_login",
                      "event.outcome": "success", "user.name": ok.group(1)})
            return e
        e["event.action"] = "postgresql_message"
        return e

    # ---------------------------------------------------------------- JSON lines
    def _json(self, text: str) -> dict | Rejected:
        try:
            doc = json.loads(text, object_pairs_hook=_unique_keys)
            if not isinstance(doc, dict):
                return Rejected("bad_json", "a JSON line must be an object")
            e: dict[str, Any] = {}
            _flatten(doc, "", e)
        except ValueError as exc:  # also a field given twice: which one is meant is not for the engine to guess
            return Rejected("bad_json", str(exc)[:120])
        stamp = e.pop("@timestamp", None) or e.pop("timestamp", None) or e.pop("time", None)
        if isinstance(stamp, (int, float)) and not isinstance(stamp, bool):
            t = float(stamp)
            if not 0 <= t < 4102444800:
                return Rejected("bad_timestamp", f"epoch {stamp} out of range")
        elif isinstance(stamp, str):
            t = self._iso_time(stamp)
            if t is None:
                return Rejected("bad_timestamp", f"impossible date {stamp[:40]!r}")
        else:
            return Rejected("bad_timestamp", "no @timestamp, timestamp or time field")
        for field in ("source.ip", "destination.ip"):
            if field in e:
                addr = self._ip(str(e[field]))
                if addr is None:
                    return Rejected("bad_address", f"{field} is not an IP address: {str(e[field])[:64]!r}")
                e[field] = addr
        e["@timestamp"] = t
        e.setdefault("event.dataset", "json")
        e["event.original"] = text
        return e


_MISS = object()  # "not cached" (a cached date may be None: impossible)
_UNQUOTED: dict[str, str] = {}


def _unquote(text: str) -> str:
    """unquote_plus, memoised: encoded paths and queries repeat (a site's search and login redirects)."""
    hit = _UNQUOTED.get(text)
    if hit is None:
        hit = unquote_plus(text)
        if len(_UNQUOTED) >= 16384:
            _UNQUOTED.clear()
        _UNQUOTED[text] = hit
    return hit


def _zone_offset(zone: str | None, default: int) -> int:
    if not zone:
        return default
    zone = zone.strip()
    if zone in _TZ_OFFSETS:
        return _TZ_OFFSETS[zone]
    if zone[0] in "+-":
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
        if hours > 14 or minutes > 59:
            raise ValueError(f"time zone {zone!r} out of range")
        return (1 if zone[0] == "+" else -1) * (hours * 3600 + minutes * 60)
    raise KeyError(zone)


def _unique_keys(pairs: list) -> dict:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        seen: set = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"key {twice!r} is given twice in one object")
    return doc


def _flatten(doc: dict, prefix: str, out: dict) -> None:
    for k, v in doc.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            _flatten(v, key + ".", out)
        elif key in out:  # {"source.ip": …, "source": {"ip": …}}
            raise ValueError(f"field {key!r} is given twice (flat and nested)")
        else:
            out[key] = v


def _kernel_fields(msg: str, start: int) -> dict[str, str]:
    """KEY=value fields of a kernel packet log from `start`, the first of each key winning, as
    `dict(reversed(_KV.findall(msg, start)))` reads them. The kernel's usual TCP/UDP layout is read with one
    match instead of the regex's try at every character (it gives the same values for the keys _kernel
    reads, IN, SRC, DST, PROTO, SPT, DPT, when none of PROTO=, SPT=, DPT= comes earlier); anything else takes _KV."""
    m = _KERNEL_USUAL.match(msg, start)
    if m is not None:
        nic, src, dst, between, proto, spt, dpt = m.groups()
        if "PT=" not in between and "PROTO=" not in between:  # no SPT=, DPT= or PROTO= before those read
            return {"IN": nic, "SRC": src, "DST": dst, "PROTO": proto, "SPT": spt, "DPT": dpt}
    return dict(reversed(_KV.findall(msg, start)))


_KEY_METHODS = frozenset({"publickey", "hostbased"})


def _sshd_from(msg: str, start: int, tail: re.Pattern) -> tuple[str, str, str | None] | None:
    """(user, address, port) of "USER from ADDR port N TAIL" at msg[start:]; None if no reading fits,
    _AMBIGUOUS if readings name different addresses."""
    found = None
    i = msg.find(" from ", start - 1)  # start - 1: an empty user name
    while i >= 0:
        m = tail.match(msg, i + 6)
        if m is not None:
            if found is not None and found[1] != m.group(1):
                return _AMBIGUOUS
            found = (msg[start:i] if i >= start else "", m.group(1), m.group(2))
        i = msg.find(" from ", i + 1)
    return found


def _pg_prefix_host(prefix: str, level: str, msg: str) -> tuple[str, str | None] | None:
    """The client address ending log_line_prefix, or None. User and database names in the prefix and the
    user name quoted in the message are the client's, so "LEVEL:  " may appear more than once: every split
    is read, and an address is taken only if all of them give the same one."""
    found: set = set()
    for end in (None, *(m.start() for m in _PG_LEVEL.finditer(msg))):
        text = prefix if end is None else f"{prefix}{level}:  {msg[:end]}"
        m = _PG_PREFIX_HOST.search(text)
        addr = canonical(m.group(1)) if m else None
        found.add((addr, m.group(2)) if addr else None)
        if len(found) > 1:
            return None
    return found.pop()


def _pam_rhost(rest: str) -> tuple[str | None, str | None]:
    """(rhost, user) of a pam_unix "authentication failure" message; rhost None when the line allows more than
    one reading (a client name that carries its own "rhost=…"): then no address is taken from it at all."""
    fixed = _PAM_FIXED.match(rest)
    if fixed:
        return fixed.group(1) or None, fixed.group(2)
    hosts: dict[str, str | None] = {}
    start = rest.find(" rhost=")
    while start >= 0:
        m = _PAM_RHOST_END.match(rest, start + 7)
        if m:
            hosts[m.group(1)] = m.group(2)
        start = rest.find(" rhost=", start + 7)
    if len(hosts) != 1:
        return None, None
    rhost, user = next(iter(hosts.items()))
    return rhost or None, user


def to_document(event: dict[str, Any]) -> dict[str, Any]:
    """A flat event as a nested ECS document (`@timestamp` as ISO 8601 UTC)."""
    doc: dict[str, Any] = {}
    for key, value in event.items():
        if key == "@timestamp":
            doc[key] = iso(value)
            continue
        parts = key.split(".")
        node = doc
        for part in parts[:-1]:
            nxt = node.get(part)
            if not isinstance(nxt, dict):
                nxt = node[part] = {} if nxt is None else {"value": nxt}
            node = nxt
        node[parts[-1]] = value
    return doc


def iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
