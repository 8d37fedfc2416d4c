"""Threat Provider feeds: extractors against real-looking log lines, LogFeed tailing."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from threatnet.feed import COMMENT_MAX, EXTRACTORS, USER_MAX, LogFeed, clean, extract
from threatnet.language import ThreatError, format_message

VECTORS = Path(__file__).parent / "vectors"
IP = "203.0.113.7"
SSH_FAIL = f"Nov 22 03:04:05 gw sshd[1]: Failed password for root from {IP} port 52144 ssh2\n"


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


# --- hostile log text ----------------------------------------------------------

@pytest.mark.parametrize("user, comment", [
    # sshd writes the address after the name: a name carrying its own "from" loses.
    ("x from 192.0.2.1 port 22 ssh2", "sshd: invalid user x from 192.0.2.1 port 22 ssh2"),
    ("\x02\x0304,01red\x0f\x16\x1d\x1f", "sshd: invalid user 04,01red"),  # IRC formatting
    ("\x1b[31mroot\x1b[0m", "sshd: invalid user [31mroot[0m"),  # ANSI escapes
    ("ad\u202emin\u200b", "sshd: invalid user admin"),  # bidi override, zero-width space
    ("a\tb\u00a0c", "sshd: invalid user a b c"),  # odd whitespace becomes one space
    ("\x00\x07", 'sshd: invalid user ""'),
    ("x" * 200, "sshd: invalid user " + "x" * (USER_MAX - 3) + "..."),
])
def test_hostile_usernames(user: str, comment: str) -> None:
    msg = extract(f"Nov 22 03:04:05 gw sshd[9]: Invalid user {user} from {IP} port 2222",
                  EXTRACTORS["sshd"])
    assert msg is not None and (msg.ip, msg.comment) == (IP, comment)
    assert msg.comment.isprintable()


def test_hostile_username_cannot_start_a_line() -> None:
    line = f"Failed password for x\r{IP} framed from 198.51.100.9 port 1 ssh2"
    msg = extract(line, EXTRACTORS["sshd"])
    assert msg is not None and msg.ip == "198.51.100.9"
    assert msg.comment == f"sshd: failed password for x {IP} framed"


def test_plain_comment_cleaned_and_capped() -> None:
    msg = extract(f"{IP} \x03" + "y" * 500, EXTRACTORS["plain"])
    assert msg is not None and msg.comment == "y" * (COMMENT_MAX - 3) + "..."


def test_extractor_find_must_be_one_address() -> None:
    with pytest.raises(ThreatError):
        extract("x", lambda line: (f"{IP} 198.51.100.1", "c"))
    with pytest.raises(ThreatError):
        extract("x", lambda line: ("", "c"))


def test_clean() -> None:
    assert clean("plain text", 20) == "plain text"
    assert clean("a\r\nb\x00c", 20) == "a bc"
    assert clean("abcdefghij", 8) == "abcde..."


def test_unknown_extractor(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sshd"):
        LogFeed(tmp_path / "log", "apache")


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


def test_sshd_feed_uses_clock(log: Path, feeds) -> None:
    clock = Clock()
    append(log, "")
    feed = feeds(log, "sshd", clock=clock)
    append(log, SSH_FAIL + "Nov 22 03:04:05 gw sshd[2]: Server listening on :: port 22.\n")
    clock.now = 1234.5
    [msg] = feed.poll()
    assert (msg.ip, msg.comment, msg.created) == (IP, "sshd: failed password for root", 1234.5)
    assert feed.stats() == {"lines_read": 2, "threats": 1, "ignored": 1, "rejected": 0}


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
    feed = feeds(log, "sshd")
    append(log, b"Invalid user r\xff\xfeot from 203.0.113.1 port 1\n\xc3(\n" + threat(2).encode())
    [msg] = feed.poll()
    assert msg.comment == "sshd: invalid user r\ufffd\ufffdot"
    assert feed.stats() == {"lines_read": 3, "threats": 1, "ignored": 2, "rejected": 0}


def test_huge_line_dropped_not_buffered(log: Path, feeds) -> None:
    append(log, "")
    feed = feeds(log, max_line=100)
    append(log, "203.0.113.1 " + "x" * 60)
    assert feed.poll() == []
    append(log, "x" * 60)  # over max_line without a newline: dropped from here on
    assert feed.poll() == []
    append(log, "x" * 10_000 + "\n" + threat(2) + "203.0.113.3 " + "y" * 100 + "\n")
    assert ips(feed.poll()) == ["203.0.113.2"]
    assert feed.stats() == {"lines_read": 3, "threats": 1, "ignored": 0, "rejected": 2}


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
    assert feed.stats() == {"lines_read": 3, "threats": 1, "ignored": 1, "rejected": 1}


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
