"""Offenders: strike counting in a window, ban masks, temporary bans."""
from __future__ import annotations

import pytest

from threatnet.offenders import (BanFileError, Strikes, TempBans, ban_mask, offender, read_bans,
                                 write_bans)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_offender_prefers_account_and_ignores_case() -> None:
    assert offender("192.0.2.1", "Alice") == offender("10.0.0.1", "alice") == "account:alice"
    assert offender("Host.Example", None) == "host:host.example"


@pytest.mark.parametrize("extban, expected", [
    ("$,ajrxz", "$a:alice"),      # solanum
    ("~,acfjmnpqrt", "~a:alice"),  # UnrealIRCd
    (",RU", "R:alice"),           # InspIRCd 3 (measured)
    (",aU", "a:alice"),           # InspIRCd 4
    (",U", "*!*@192.0.2.1"),      # no account extban
    ("$,jrxz", "*!*@192.0.2.1"),
    (None, "*!*@192.0.2.1"),
])
def test_ban_mask(extban, expected) -> None:
    assert ban_mask("192.0.2.1", "alice", extban) == expected


def test_ban_mask_without_account_is_host() -> None:
    assert ban_mask("2001:db8::1", None, "$,a") == "*!*@2001:db8::1"
    assert ban_mask("h", "two words", ",R") == "*!*@h"  # not one MODE parameter


def test_strikes_window() -> None:
    clock = Clock()
    s = Strikes(clock)
    assert not s.hit("k", 3, 60)
    clock.now += 30
    assert not s.hit("k", 3, 60)
    clock.now += 29
    assert s.hit("k", 3, 60)  # three within 60 s
    clock.now += 100
    assert not s.hit("k", 3, 60)  # the old ones fell out of the window
    assert not s.hit("other", 3, 60)


def test_strikes_forget_and_prune() -> None:
    clock = Clock()
    s = Strikes(clock)
    s.hit("a", 2, 10)
    s.forget("a")
    assert not s.hit("a", 2, 10)
    s.hit("b", 2, 10)
    clock.now += 11
    s.hit("c", 2, 10)
    s.prune(10)
    assert len(s) == 1


def test_strikes_limit_change_keeps_history() -> None:
    clock = Clock()
    s = Strikes(clock)
    s.hit("a", 5, 60)
    s.hit("a", 5, 60)
    assert s.hit("a", 3, 60)


def test_strikes_memory_is_bounded_per_key() -> None:
    clock = Clock()
    s = Strikes(clock)
    for _ in range(10000):
        s.hit("a", 4, 1e9)
    assert len(s._times["a"]) == 4


def test_temp_bans() -> None:
    clock = Clock()
    bans = TempBans(clock)
    bans.add("*!*@a", 60)
    bans.add("*!*@b", 30)
    assert bans.due() == []
    clock.now += 45
    assert bans.due() == ["*!*@b"]
    clock.now += 30
    assert bans.due() == ["*!*@b", "*!*@a"]
    bans.discard("*!*@b")
    assert "*!*@b" not in bans and "*!*@a" in bans and len(bans) == 1


def test_temp_ban_is_extended_not_shortened() -> None:
    clock = Clock()
    bans = TempBans(clock)
    bans.add("m", 100)
    bans.add("m", 10)
    clock.now += 50
    assert bans.due() == []
    bans.add("m", 200)
    clock.now += 100
    assert bans.due() == []


def test_bans_file_round_trip_and_hold(tmp_path) -> None:
    path = tmp_path / "bans.json"
    assert read_bans(path) == []  # none saved yet
    rows = [("net", "#c", "*!*@cloak.example", 4600.0), ("net", "#c", "R:mallory", 5000.5)]
    write_bans(path, rows)
    assert read_bans(path) == rows
    clock = Clock()
    bans = TempBans(clock)
    bans.add("*!*@cloak.example", 3600)  # until 4600
    bans.hold("*!*@cloak.example", 4000.0)  # a restored ban never shortens one held
    bans.hold("R:mallory", 900.0)
    assert sorted(bans.items()) == [("*!*@cloak.example", 4600.0), ("R:mallory", 900.0)]
    assert bans.due() == ["R:mallory"]


@pytest.mark.parametrize("content, reason", [
    (b"\xff", "not JSON"),
    (b"[]", "not a version 1 bans file"),
    (b'{"version": 1, "bans": {}}', "not a version 1 bans file"),
    (b'{"version": 1, "bans": [["net", "#c", "", 1.0]]}', "bad entry"),
    (b'{"version": 1, "bans": [["net", "#c", "m", true]]}', "bad entry"),
    (b'{"version": 1, "bans": [["net", "#c", "m", NaN]]}', "bad entry"),
])
def test_a_bad_bans_file_says_why(tmp_path, content: bytes, reason: str) -> None:
    path = tmp_path / "bans.json"
    path.write_bytes(content)
    with pytest.raises(BanFileError, match=reason):
        read_bans(path)
