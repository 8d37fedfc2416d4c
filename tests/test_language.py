"""Threat Language: vectors in tests/vectors/language.yaml, then properties."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from threatnet.address import KEY_LAST, V4_MAPPED_FIRST, V4_MAPPED_LAST, format_ip, parse_ip
from threatnet.language import (
    MAX_LINE_BYTES, ThreatError, ThreatMessage, format_message, format_withdrawal, parse_message,
    parse_withdrawal,
)

VECTORS = yaml.safe_load((Path(__file__).parent / "vectors" / "language.yaml").read_text("utf-8"))
_WS = " \t\n\r\x0b\x0c"
# Worst-case relay prefix budgeted in language.py: nick 64, user 16, host 128, channel 64.
RELAY_PREFIX = f":{'n' * 64}!{'u' * 16}@{'h' * 128} PRIVMSG #{'c' * 63} :"

keys = st.one_of(st.integers(V4_MAPPED_FIRST, V4_MAPPED_LAST), st.integers(0, KEY_LAST))
# Anything a comment may carry: all but CR, LF, NUL and lone surrogates.
comments = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\0"))


def check_reason(err: ThreatError) -> None:
    """What the Guard may quote when it kicks: short, printable, non-empty."""
    reason = str(err)
    assert reason and len(reason) < 60 and reason.isprintable()


@pytest.mark.parametrize("case", VECTORS["valid"], ids=lambda c: repr(c["line"]))
def test_valid(case: dict) -> None:
    msg = parse_message(case["line"], created=5.0)
    assert msg == ThreatMessage(case["ip"], case["comment"], 5.0, parse_ip(case["ip"]))
    assert format_message(msg) == case.get("formatted", case["line"])


@pytest.mark.parametrize("case", VECTORS["invalid"], ids=lambda c: repr(c["line"]))
def test_invalid(case: dict) -> None:
    with pytest.raises(ThreatError) as err:
        parse_message(case["line"])
    assert case["reason"] in str(err.value)
    check_reason(err.value)


def test_created_defaults_to_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("threatnet.language.time.time", lambda: 1234.5)
    assert parse_message("1.2.3.4").created == 1234.5
    assert parse_message("2001:db8::1").created == 1234.5
    assert parse_message("1.2.3.4", created=7.0).created == 7.0


def test_max_line_fits_one_relayed_privmsg() -> None:
    assert len(RELAY_PREFIX.encode()) + MAX_LINE_BYTES + len(b"\r\n") <= 512


def test_format_truncates_on_a_character_boundary() -> None:
    msg = parse_message("1.2.3.4 " + "\u20ac" * 200)  # 3 bytes each
    line = format_message(msg)
    assert len(line.encode()) <= MAX_LINE_BYTES < len(line.encode()) + 3
    assert parse_message(line).comment == "\u20ac" * (len(line) - len("1.2.3.4 "))


def test_format_never_emits_line_breaks_or_nul() -> None:
    msg = ThreatMessage("1.2.3.4", " a\r\nb\0c\n", 0.0, parse_ip("1.2.3.4"))
    assert format_message(msg) == "1.2.3.4 a  b c"


def test_format_uses_the_key_not_the_ip_text() -> None:
    msg = ThreatMessage("1.2.3.4\r\nQUIT", "x", 0.0, parse_ip("5.6.7.8"))
    assert format_message(msg) == "5.6.7.8 x"


def test_format_replaces_lone_surrogates() -> None:
    msg = ThreatMessage("1.2.3.4", "a\ud800b", 0.0, parse_ip("1.2.3.4"))
    assert format_message(msg) == "1.2.3.4 a?b"


@given(keys, comments)
def test_format_parse_round_trip(key: int, comment: str) -> None:
    msg = ThreatMessage(format_ip(key), comment, 1.0, key)
    line = format_message(msg)
    assert len(line.encode()) <= MAX_LINE_BYTES
    back = parse_message(line, created=1.0)
    assert (back.ip, back.key) == (msg.ip, key)
    expected = comment.strip(_WS)
    if len(f"{msg.ip} {expected}".encode()) <= MAX_LINE_BYTES:
        assert back.comment == expected
    else:
        assert expected.startswith(back.comment)


@given(st.one_of(st.text(), st.binary(), st.none(), st.integers(), st.floats()))
def test_parse_raises_only_threat_error(line: object) -> None:
    try:
        parse_message(line)
    except ThreatError as e:
        check_reason(e)


low_ascii = st.text(st.characters(max_codepoint=0x3F))  # controls, space, digits, . / :


@given(keys, low_ascii, low_ascii)
def test_parse_raises_only_threat_error_near_addresses(key: int, before: str, after: str) -> None:
    """Control characters, dots, colons and spaces around a real address."""
    try:
        msg = parse_message(before + format_ip(key) + after)
    except ThreatError as e:
        check_reason(e)
    else:
        assert parse_message(format_message(msg)).key == msg.key


@given(keys, comments, st.sampled_from([" ", "  ", "\t", " \t "]))
def test_fast_and_slow_paths_agree(key: int, comment: str, separator: str) -> None:
    ip = format_ip(key)
    fast = parse_message(f"{ip} {comment}", created=0.0)
    slow = parse_message(f" {ip}{separator}{comment}", created=0.0)  # leading space: slow path
    assert fast == slow


@pytest.mark.parametrize("line, withdrawn", [
    ("withdraw 45.0.0.1 false positive", ("45.0.0.1", "false positive")),
    ("  Withdraw 2001:DB8::1", ("2001:db8::1", "")),
    ("45.0.0.1 withdraw", None),  # a threat line
    ("withdrawn 45.0.0.1", None),
    ("please withdraw 45.0.0.1", None),
])
def test_parse_withdrawal(line: str, withdrawn: tuple | None) -> None:
    msg = parse_withdrawal(line, 0.0)
    assert (msg.ip, msg.comment) == withdrawn if withdrawn else msg is None


def test_withdrawal_with_a_bad_address_is_an_error() -> None:
    with pytest.raises(ThreatError):
        parse_withdrawal("withdraw 45.0.0 oops")


def test_format_withdrawal_is_one_safe_line() -> None:
    key = parse_message("45.0.0.1").key
    assert format_withdrawal(ThreatMessage("45.0.0.1", "false\npositive", 0.0, key)) == \
        "withdraw 45.0.0.1 false positive"
    long = format_withdrawal(parse_message("45.0.0.1 " + "é" * 300))
    assert len(long.encode()) <= MAX_LINE_BYTES and parse_withdrawal(long).ip == "45.0.0.1"
