"""Threat Provider feeds: extractors against real-looking log lines, feed specs, the
Detector (extractor + threshold) on scenarios, LogFeed tailing."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from threatnet.feed import (COMMENT_MAX, EXTRACTORS, Detector, Extractor, FeedSpec, LogFeed,
                            clean, extract, parse_spec)
from threatnet.language import ThreatError, format_message
from threatnet.threshold import Find, Kind

VECTORS = Path(__file__).parent / "vectors"
IP = "203.0.113.7"
SSH_FAIL = "Nov 22 03:04:05 gw sshd[{pid}]: Failed password for root from {ip} port 52144 ssh2\n"


def vectors(name: str) -> list[tuple[str, str]]:
    """(log line, expected) pairs from tests/vectors/feed_NAME.txt."""
    pairs, line = [], None
    for raw in (VECTORS / f"feed_{name}.txt").read_text("utf-8").splitlines():
        if raw.startswith("<"):
            line = raw[2:]
        elif raw.startswith(">"):
            assert line is not None, raw
            pairs.append((line, raw[2:]))
            line = None
    return pairs


def outcome(line: str, extractor: str) -> str:
    """What the vector files write: the canonical threat line, '-' or '!'."""
    try:
        msg = extract(line, EXTRACTORS[extractor], created=0.0)
    except ThreatError:
        return "!"
    return "-" if msg is None else format_message(msg)


@pytest.mark.parametrize("extractor", sorted(EXTRACTORS))
def test_vectors(extractor: str) -> None:
    table = vectors(extractor)
    assert len(table) >= 8
    for line, want in table:
        assert outcome(line, extractor) == want, line


# --- hostile log text, personal data ------------------------------------------

HOSTILE_USERS = [
    "x from 192.0.2.1 port 22 ssh2",  # sshd writes the address after the name: it loses
    "\x02\x0304,01red\x0f\x16\x1d\x1f",  # IRC formatting
    "\x1b[31mroot\x1b[0m",  # ANSI escapes
    "ad\u202emin\u200b",  # bidi override, zero-width space
    "a\tb\u00a0c", "\x00\x07", "x" * 200, "alice", "alice@example.org",
]
SSHD_USER_LINES = [  # {user} is the only thing the client chose
    ("Nov 22 03:04:05 gw sshd[9]: Invalid user {user} from 203.0.113.7 port 2222",
     "sshd: invalid user"),
    ("Nov 22 03:04:05 gw sshd[9]: Failed password for {user} from 203.0.113.7 port 2222 ssh2",
     "sshd: failed password"),
    ("Nov 22 03:04:05 gw sshd[9]: Failed password for invalid user {user} from 203.0.113.7 "
     "port 2222 ssh2", "sshd: invalid user"),
    ("Nov 22 03:04:05 gw sshd[9]: Connection closed by authenticating user {user} 203.0.113.7 "
     "port 2222 [preauth]", "sshd: disconnect before auth"),
    ("Nov 22 03:04:05 gw sshd[9]: error: maximum authentication attempts exceeded for {user} "
     "from 203.0.113.7 port 2222 ssh2 [preauth]", "sshd: disconnect before auth"),
    ("Nov 22 03:04:05 gw sshd[9]: User {user} from 203.0.113.7 not allowed because listed in "
     "DenyUsers", "sshd: disallowed user"),
]


@pytest.mark.parametrize("user", HOSTILE_USERS)
@pytest.mark.parametrize("template, comment", SSHD_USER_LINES)
def test_usernames_never_reach_a_comment(template: str, comment: str, user: str) -> None:
    """Whatever the username, the comment is the kind of failure: never the name (it
    would tell every member which accounts exist) nor anything it smuggles in."""
    msg = extract(template.format(user=user), EXTRACTORS["sshd"])
    assert msg is not None and (msg.ip, msg.comment) == (IP, comment)


def test_postfix_comments_hold_no_sasl_username() -> None:
    line = ("Nov 22 03:04:05 mx postfix/smtpd[1]: warning: unknown[203.0.113.7]: SASL LOGIN "
            "authentication failed: authentication failure, sasl_username=alice@example.org")
    detector = Detector("postfix")
    threats = [detector.line(line, float(n)) for n in range(5)]
    assert [t.comment for t in threats if t] == ["postfix: 5 sasl login auth failures in 600 s"]


def test_hostile_username_cannot_start_a_line() -> None:
    line = f"Failed password for x\r{IP} framed from 198.51.100.9 port 1 ssh2"
    msg = extract(line, EXTRACTORS["sshd"])
    assert msg is not None and (msg.ip, msg.comment) == ("198.51.100.9", "sshd: failed password")


def test_plain_comment_cleaned_and_capped() -> None:
    msg = extract(f"{IP} \x03" + "y" * 500, EXTRACTORS["plain"])
    assert msg is not None and msg.comment == "y" * (COMMENT_MAX - 3) + "..."


def test_extractor_find_must_be_one_address() -> None:
    for ip in (f"{IP} 198.51.100.1", ""):
        extractor = Extractor(lambda line: Find(ip, Kind("c", "c", "cs")), "x", 1, 600)
        with pytest.raises(ThreatError):
            extract("x", extractor)


def test_clean() -> None:
    assert clean("plain text", 20) == "plain text"
    assert clean("a\r\nb\x00c", 20) == "a bc"
    assert clean("abcdefghij", 8) == "abcde..."


def test_unknown_extractor(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sshd"):
        LogFeed(tmp_path / "log", "apache")


# --- feed specs ----------------------------------------------------------------

@pytest.mark.parametrize("text, spec", [
    ("sshd:/var/log/auth.log", FeedSpec("sshd", "/var/log/auth.log", 5, 600)),
    ("postfix:/var/log/mail.log", FeedSpec("postfix", "/var/log/mail.log", 5, 600)),
    ("fail2ban:/run/bans", FeedSpec("fail2ban", "/run/bans", 1, 600)),
    ("plain:/x:y(z)", FeedSpec("plain", "/x:y(z)", 1, 600)),  # the path is the rest
    ("sshd(maxretry=3,findtime=10m):/a", FeedSpec("sshd", "/a", 3, 600)),
    ("sshd( findtime=1h , maxretry=10 ):/a", FeedSpec("sshd", "/a", 10, 3600)),
    ("sshd(maxretry=1):/a", FeedSpec("sshd", "/a", 1, 600)),
    ("fail2ban(maxretry=3,findtime=1d):/a", FeedSpec("fail2ban", "/a", 3, 86400)),
    ("postfix(findtime=90s):/a", FeedSpec("postfix", "/a", 5, 90)),
])
def test_spec(text: str, spec: FeedSpec) -> None:
    assert parse_spec(text) == spec


@pytest.mark.parametrize("text, error", [
    ("nope:/var/log/x", "unknown extractor 'nope': use one of plain, sshd, postfix, fail2ban"),
    ("sshd:var/log/auth.log", "the path must be absolute: use extractor:/absolute/path"),
    ("/var/log/auth.log", "use extractor:/absolute/path or"),
    ("sshd", "use extractor:/absolute/path or extractor(maxretry=N,findtime=SECONDS)"),
    ("sshd(maxretry=3:/a", "use extractor:/absolute/path or"),
    ("sshd():/a", "empty options (): leave out the parentheses for the defaults"),
    ("sshd(maxretry=0):/a", "maxretry must be a whole number from 1 to 100, not '0'"),
    ("sshd(maxretry=101):/a", "maxretry must be a whole number from 1 to 100, not '101'"),
    ("sshd(maxretry=five):/a", "not 'five'"),
    ("sshd(maxretry=٣):/a", "not '٣'"),  # a digit, but not an ASCII one
    ("sshd(findtime=0):/a", "findtime must be 1 s to 1 day, in seconds or with a unit "
                            "(600, 10m, 1h), not '0'"),
    ("sshd(findtime=2d):/a", "not '2d'"),
    ("sshd(findtime=10 m):/a", "not '10 m'"),
    ("sshd(findtime=-5):/a", "not '-5'"),
    ("sshd(bantime=10m):/a", "unknown option 'bantime=10m' in (bantime=10m): use maxretry=N "
                             "and/or findtime=SECONDS"),
    ("sshd(maxretry):/a", "unknown option 'maxretry'"),
    ("sshd(maxretry=3,maxretry=4):/a", "maxretry given twice"),
])
def test_bad_spec(text: str, error: str) -> None:
    with pytest.raises(ValueError) as e:
        parse_spec(text)
    assert error in str(e.value)


# --- Detector: extractor + threshold, whatever reads the lines -------------------

def scenarios() -> list[tuple[str, list[tuple[float, str, list[str]]]]]:
    """tests/vectors/feed_thresholds.txt: (spec, [(time, log line, threats reported)])."""
    found: list[tuple[str, list[tuple[float, str, list[str]]]]] = []
    for raw in (VECTORS / "feed_thresholds.txt").read_text("utf-8").splitlines():
        if raw.startswith("="):
            found.append((raw[2:], []))
        elif raw.startswith("<"):
            when, line = raw[2:].split(" ", 1)
            found[-1][1].append((float(when), line, []))
        elif raw.startswith(">"):
            found[-1][1][-1][2].append(raw[2:])
    return found


@pytest.mark.parametrize("spec, lines", scenarios())
def test_threshold_scenarios(spec: str, lines: list[tuple[float, str, list[str]]]) -> None:
    feed = parse_spec(spec)
    detector = Detector(feed.extractor, feed.maxretry, feed.findtime)
    for when, line, want in lines:
        threat = detector.line(line, when)
        assert ([] if threat is None else [format_message(threat)]) == want, (when, line)
        assert threat is None or threat.created == when


def test_bad_addresses_are_counted_and_never_reach_the_threshold() -> None:
    detector = Detector("sshd", maxretry=2)
    for pid in range(5):
        line = SSH_FAIL.format(pid=pid, ip="203.0.113.300").rstrip("\n")
        assert detector.line(line, pid) is None
    assert detector.line("Nov 22 03:04:05 gw sshd[1]: Server listening on :: port 22.", 5) is None
    assert detector.stats() == {"lines_read": 6, "found": 0, "ignored": 1, "rejected": 5,
                                "threats": 0, "below_threshold": 0, "evicted": 0}


def test_the_same_address_written_two_ways_is_one_address() -> None:
    detector = Detector("sshd", maxretry=2)
    first, second = (SSH_FAIL.format(pid=n, ip=ip).rstrip("\n")
                     for n, ip in ((1, "::ffff:203.0.113.7"), (2, IP)))
    assert detector.line(first, 0) is None
    threat = detector.line(second, 1)
    assert threat is not None and format_message(threat) == \
        f"{IP} sshd: 2 failed passwords in 600 s"


# --- LogFeed -------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def append(path: Path, data: str | bytes) -> None:
    with open(path, "ab") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def threat(n: int) -> str:
    return f"203.0.113.{n} t{n}\n"


def ips(msgs: list) -> list[str]:
    return [m.ip for m in msgs]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "threats.log"


@pytest.fixture
def feeds():
    made: list[LogFeed] = []

    def make(path: Path, extractor: str = "plain", **kw) -> LogFeed:
        made.append(LogFeed(path, extractor, **kw))
        return made[-1]
    yield make
    for feed in made:
        feed.close()


def test_starts_at_end_and_restart_never_rereports(log: Path, feeds) -> None:
    append(log, threat(1) + threat(2))
    feed = feeds(log)
    assert feed.poll() == []
    append(log, threat(3))
    assert ips(feed.poll()) == ["203.0.113.3"]
    assert feeds(log).poll() == []  # a restarted bot starts where the file ends


def test_start_inside_a_partial_line_skips_its_tail(log: Path, feeds) -> None:
    append(log, "203.0.113.1 one\n20")
    feed = feeds(log)
    append(log, "3.0.113.2 half seen\n" + threat(3))  # never read "3.0.113.2" as an address
    assert ips(feed.poll()) == ["203.0.113.3"]


def test_poll_after_close_starts_at_end(log: Path, feeds) -> None:
    append(log, "")
    feed = feeds(log)
    append(log, threat(1))
    feed.close()
    assert feed.poll() == []
    append(log, threat(2))
    assert ips(feed.poll()) == ["203.0.113.2"]


def test_resume_reads_what_was_written_while_the_agent_was_down(log: Path, feeds) -> None:
    append(log, threat(1))
    feed = feeds(log)
    append(log, threat(2) + "203.0.113.3 half writ")
    assert ips(feed.poll()) == ["203.0.113.2"]
    position, saved_at = feed.position(), os.stat(log).st_mtime
    feed.close()
    append(log, "ten\n" + threat(4))  # while the agent was down
    again = feeds(log)
    assert again.resume(position, saved_at)
    assert ips(again.poll()) == ["203.0.113.3", "203.0.113.4"]  # the partial line whole


def test_resume_after_truncation_or_rotation_reads_the_new_content(log: Path, feeds) -> None:
    append(log, threat(1) + threat(2))
    position, saved_at = feeds(log).position(), os.stat(log).st_mtime
    log.write_bytes(threat(3).encode())  # truncated in place, shorter now
    feed = feeds(log)
    assert feed.resume(position, saved_at) and ips(feed.poll()) == ["203.0.113.3"]
    position = feed.position()
    log.rename(log.with_name("threats.log.1"))
    append(log, threat(4))  # the new file, written after the save
    feed = feeds(log)
    assert feed.resume(position, saved_at) and ips(feed.poll()) == ["203.0.113.4"]


def test_resume_leaves_an_older_other_file_at_its_end(log: Path, feeds) -> None:
    other = log.with_name("other.log")
    append(other, threat(1))
    position = feeds(other).position()
    append(log, threat(2))
    os.utime(log, (500, 500))
    feed = feeds(log)
    assert not feed.resume(position, saved_at=1000.0)  # not the file we read, and older
    assert feed.poll() == []


def test_resume_inside_a_dropped_line_skips_its_tail(log: Path, feeds) -> None:
    append(log, "")
    feed = feeds(log, max_line=16)
    append(log, "203.0.113.1 " + "x" * 40)  # too long, no newline yet
    assert feed.poll() == []
    position = feed.position()
    append(log, "203.0.113.9 tail\n" + threat(2))
    again = feeds(log, max_line=16)
    assert again.resume(position, os.stat(log).st_mtime)
    assert ips(again.poll()) == ["203.0.113.2"]


def test_sshd_feed_counts_to_its_threshold_by_the_clock(log: Path, feeds) -> None:
    clock = Clock()
    append(log, "")
    feed = feeds(log, "sshd", clock=clock)
    append(log, "".join(SSH_FAIL.format(pid=pid, ip=IP) for pid in range(4))
           + "Nov 22 03:04:05 gw sshd[9]: Server listening on :: port 22.\n")
    assert feed.poll() == []  # one mistyped password is no threat, nor are four
    assert feed.stats() == {"lines_read": 5, "found": 4, "ignored": 1, "rejected": 0,
                            "threats": 0, "below_threshold": 1, "evicted": 0}
    clock.now += 599  # the window is read time, not the log's timestamps
    append(log, SSH_FAIL.format(pid=5, ip=IP))
    [msg] = feed.poll()
    assert (msg.ip, msg.comment, msg.created) == (IP, "sshd: 5 failed passwords in 600 s",
                                                  clock.now)
    clock.now += 600
    append(log, SSH_FAIL.format(pid=6, ip=IP))
    assert feed.poll() == []
    assert feed.stats()["below_threshold"] == 1
    clock.now += 600
    assert feed.stats()["below_threshold"] == 0  # forgotten: nothing of it is kept


def test_a_feed_with_its_own_threshold(log: Path, feeds) -> None:
    append(log, "")
    feed = feeds(log, "sshd", maxretry=2, findtime=60)
    append(log, SSH_FAIL.format(pid=1, ip=IP) * 2)  # one connection, two passwords
    assert [m.comment for m in feed.poll()] == ["sshd: 2 failed passwords in 60 s"]
    assert str(feed.detector.threshold) == "threshold 2 in 60 s"


def test_thresholds_hold_across_rotation_and_truncation(log: Path, feeds) -> None:
    """The counts belong to the feed, not to the file it happens to read."""
    append(log, "")
    feed = feeds(log, "sshd")
    append(log, SSH_FAIL.format(pid=1, ip=IP) + SSH_FAIL.format(pid=2, ip=IP))
    assert feed.poll() == []
    log.rename(log.with_suffix(".1"))
    append(log.with_suffix(".1"), SSH_FAIL.format(pid=3, ip=IP))  # before the writer reopens
    append(log, SSH_FAIL.format(pid=4, ip=IP))
    assert feed.poll() == []
    os.truncate(log, 0)  # copytruncate
    assert feed.poll() == []
    append(log, SSH_FAIL.format(pid=5, ip=IP))
    assert [m.comment for m in feed.poll()] == ["sshd: 5 failed passwords in 600 s"]


def test_partial_line_waits_for_newline(log: Path, feeds) -> None:
    append(log, "")
    feed = feeds(log)
    append(log, "203.0.113.1 par")
    assert feed.poll() == []
    append(log, "tial")
    assert feed.poll() == []
    append(log, "\r\n203.0.113.2")
    [msg] = feed.poll()
    assert (msg.ip, msg.comment) == ("203.0.113.1", "partial")
    append(log, "5 x\n")
    assert ips(feed.poll()) == ["203.0.113.25"]


def test_rotation_by_rename_reads_old_to_end_then_new_from_start(log: Path, feeds) -> None:
    append(log, "")
    feed = feeds(log)
    append(log, threat(1))
    assert ips(feed.poll()) == ["203.0.113.1"]
    log.rename(log.with_suffix(".1"))
    append(log.with_suffix(".1"), threat(2))  # the writer has not reopened yet
    assert ips(feed.poll()) == ["203.0.113.2"]
    log.touch()  # logrotate "create": new file, still empty
    append(log.with_suffix(".1"), threat(3))  # still the writer's file
    assert ips(feed.poll()) == ["203.0.113.3"]
    append(log.with_suffix(".1"), threat(4))  # last line before the writer reopens
    append(log, threat(5) + threat(6))
    assert ips(feed.poll()) == ["203.0.113.4", "203.0.113.5", "203.0.113.6"]
    append(log.with_suffix(".1"), threat(7))  # too late: we follow the path
    append(log, threat(8))
    assert ips(feed.poll()) == ["203.0.113.8"]


def test_rotation_drops_old_partial_line(log: Path, feeds) -> None:
    append(log, "")
    feed = feeds(log)
    append(log, "203.0.113.1 cut of")
    assert feed.poll() == []
    log.rename(log.with_suffix(".1"))
    append(log, threat(2))
    assert ips(feed.poll()) == ["203.0.113.2"]


def test_copytruncate(log: Path, feeds) -> None:
    append(log, threat(1) * 5)
    feed = feeds(log)
    append(log, threat(2))
    assert ips(feed.poll()) == ["203.0.113.2"]
    os.truncate(log, 0)
    assert feed.poll() == []
    append(log, threat(3))
    assert ips(feed.poll()) == ["203.0.113.3"]


def test_truncated_and_regrown_past_offset_skips_the_fragment(log: Path, feeds) -> None:
    append(log, "")
    feed = feeds(log)
    append(log, "203.0.113.1 x\n")  # 14 bytes
    assert len(feed.poll()) == 1
    os.truncate(log, 0)
    append(log, "198.51.100.23 longer line\n" + threat(9))  # byte 14 is mid-line
    assert ips(feed.poll()) == ["203.0.113.9"]


def test_missing_file_is_read_from_start_when_it_appears(log: Path, feeds) -> None:
    feed = feeds(log)
    assert feed.poll() == [] and feed.error
    append(log, threat(1) + threat(2))
    assert ips(feed.poll()) == ["203.0.113.1", "203.0.113.2"]
    assert feed.error is None


def test_deleted_file_waits_for_a_new_one(log: Path, feeds) -> None:
    append(log, "")
    feed = feeds(log)
    append(log, threat(1))
    log.unlink()
    assert ips(feed.poll()) == ["203.0.113.1"]  # what was written before the delete
    assert feed.poll() == [] and feed.error
    append(log, threat(2))
    assert ips(feed.poll()) == ["203.0.113.2"]


def test_not_a_regular_file_never_blocks(tmp_path: Path, feeds) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    feed = feeds(fifo)
    assert feed.poll() == [] and "not a regular file" in (feed.error or "")
    fifo.unlink()
    append(fifo, threat(1))
    assert ips(feed.poll()) == ["203.0.113.1"]  # a file that was not there is new


def test_non_utf8_bytes(log: Path, feeds) -> None:
    append(log, "")
    feed = feeds(log, "sshd", maxretry=1)
    append(log, b"Invalid user r\xff\xfeot from 203.0.113.1 port 1\n\xc3(\n" + threat(2).encode())
    [msg] = feed.poll()
    assert (msg.ip, msg.comment) == ("203.0.113.1", "sshd: invalid user")
    assert feed.stats() == {"lines_read": 3, "found": 1, "ignored": 2, "rejected": 0,
                            "threats": 1, "below_threshold": 0, "evicted": 0}


def test_huge_line_dropped_not_buffered(log: Path, feeds) -> None:
    append(log, "")
    feed = feeds(log, max_line=100)
    append(log, "203.0.113.1 " + "x" * 60)
    assert feed.poll() == []
    append(log, "x" * 60)  # over max_line without a newline: dropped from here on
    assert feed.poll() == []
    append(log, "x" * 10_000 + "\n" + threat(2) + "203.0.113.3 " + "y" * 100 + "\n")
    assert ips(feed.poll()) == ["203.0.113.2"]
    assert feed.stats() == {"lines_read": 3, "found": 1, "ignored": 0, "rejected": 2,
                            "threats": 1, "below_threshold": 0, "evicted": 0}


def test_max_lines_bounds_each_poll(log: Path, feeds) -> None:
    append(log, "")
    feed = feeds(log)
    append(log, "".join(threat(i % 250) for i in range(2500)))
    assert [len(feed.poll(max_lines=1000)) for _ in range(4)] == [1000, 1000, 500, 0]


def test_max_bytes_bounds_each_poll(log: Path, feeds) -> None:
    append(log, "")
    feed = feeds(log)
    append(log, threat(1) * 100)  # 15 bytes a line
    assert len(feed.poll(max_bytes=160)) == 10  # and 10 bytes of the 11th wait in the buffer
    assert len(feed.poll()) == 90


def test_rejected_lines_counted(log: Path, feeds) -> None:
    append(log, "")
    feed = feeds(log)
    append(log, "10.1 short\n\n" + threat(1))
    assert len(feed.poll()) == 1
    assert feed.stats() == {"lines_read": 3, "found": 1, "ignored": 1, "rejected": 1,
                            "threats": 1, "below_threshold": 0, "evicted": 0}


@settings(max_examples=60, deadline=None)
@given(pieces=st.lists(st.sampled_from([threat(1), threat(22), "203.0.113.", "3 a\n", "junk\n",
                                        "\n", "2001:db8::", "1 v6\n", "\xff"]), max_size=40),
       budgets=st.lists(st.integers(1, 5), min_size=1, max_size=5))
def test_any_chunking_reads_the_same_threats(tmp_path_factory, pieces: list[str],
                                             budgets: list[int]) -> None:
    """However the writer splits its writes and however small the budget, the
    threats are those of the complete lines, in order, each once."""
    path = tmp_path_factory.mktemp("chunks") / "log"
    append(path, "")
    feed = LogFeed(path, "plain")
    try:
        got = []
        for i, piece in enumerate(pieces):
            append(path, piece)
            got += feed.poll(max_lines=budgets[i % len(budgets)])
        got += feed.poll(max_lines=10**6)
        text = "".join(pieces)
        complete = text[:text.rfind("\n") + 1].split("\n")[:-1]
        want = [m for m in map(extract_or_none, complete) if m]
        assert [(m.ip, m.comment) for m in got] == want
    finally:
        feed.close()


def extract_or_none(line: str) -> tuple[str, str] | None:
    try:
        msg = extract(line, EXTRACTORS["plain"])
    except ThreatError:
        return None
    return (msg.ip, msg.comment) if msg else None
