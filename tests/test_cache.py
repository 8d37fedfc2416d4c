"""Threat Cache: keep/drop, expiry, timeout changes, sync, stats, /64 aggregation and
snapshots. The clock is injected; nothing sleeps."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from threatnet.address import AddressError, parse_ip
from threatnet.cache import SYNC_SLACK, Entry, LoadResult, Stats, ThreatCache
from threatnet.envelope import Envelope
from threatnet.language import ThreatMessage, parse_message

T0 = 1_700_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def msg(ip: str, comment: str = "") -> ThreatMessage:
    return parse_message(f"{ip} {comment}", created=0.0)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(clock: Clock) -> ThreatCache:
    return ThreatCache(timeout=100, clock=clock)


def ips(entries: list[Entry]) -> list[str]:
    return [e.ip for e in entries]


# --- keep / drop -----------------------------------------------------------------------------


def test_keep_then_duplicate(cache: ThreatCache) -> None:
    assert cache.keep(msg("192.0.2.1")) is True
    assert cache.keep(msg("192.0.2.1", "again")) is False
    assert cache.keep(msg("192.0.2.2")) is True
    assert cache.keep(msg("::ffff:192.0.2.2")) is False  # the same address
    assert len(cache) == 2


def test_default_timeout_is_the_block_period() -> None:
    assert ThreatCache().timeout == 3600


def test_check_returns_the_first_sighting(cache: ThreatCache, clock: Clock) -> None:
    cache.keep(msg("2001:db8::1", "ssh brute force"), nick="ammo", account="AmmoBot")
    clock.now += 30
    cache.keep(msg("2001:db8::1", "later"), nick="other")
    entry = cache.check("2001:db8:0::1")
    assert entry == Entry("2001:db8::1", T0, "ammo", "AmmoBot", "ssh brute force", 70.0,
                          parse_ip("2001:db8::1"))
    assert cache.check(parse_ip("2001:db8::1")) == entry
    assert cache.check("2001:db8::2") is None


def test_check_rejects_bad_text(cache: ThreatCache) -> None:
    with pytest.raises(AddressError):
        cache.check("10.1")


def test_screen_takes_the_sender_from_the_envelope(cache: ThreatCache) -> None:
    m = msg("192.0.2.9", "spam")
    assert cache.screen(m, Envelope(m, "ammo", "AmmoBot", voiced=True)) is None
    assert cache.screen(m) == "duplicate"
    entry = cache.check("192.0.2.9")
    assert entry is not None and (entry.nick, entry.account) == ("ammo", "AmmoBot")


def test_repeated_sources_are_shared(cache: ThreatCache) -> None:
    for i in range(3):
        cache.keep(msg(f"192.0.2.{i}", "spam " + "x" * 3), nick="ammo")  # distinct str objects
    sources = {id(src) for src in cache._sources}
    assert len(sources) == 1


# --- expiry ----------------------------------------------------------------------------------


def test_entries_expire_timeout_after_first_seen(cache: ThreatCache, clock: Clock) -> None:
    cache.keep(msg("192.0.2.1"))
    clock.now = T0 + 99.999
    assert cache.keep(msg("192.0.2.1")) is False
    assert cache.check("192.0.2.1") is not None
    clock.now = T0 + 100
    # Lazily correct: expire() has not run, yet the entry is gone for check, len and keep.
    assert cache.check("192.0.2.1") is None
    assert len(cache) == 0 and list(cache) == []
    assert cache.keep(msg("192.0.2.1", "back")) is True
    assert cache.check("192.0.2.1").comment == "back"  # type: ignore[union-attr]


def test_expire_in_first_seen_order_each_exactly_once(cache: ThreatCache,
                                                      clock: Clock) -> None:
    for i, ip in enumerate(["192.0.2.3", "192.0.2.1", "192.0.2.2"]):
        clock.now = T0 + i
        cache.keep(msg(ip, f"c{i}"), nick=f"n{i}")
    clock.now = T0 + 101.5
    expired = cache.expire()
    assert ips(expired) == ["192.0.2.3", "192.0.2.1"]
    assert expired[0] == Entry("192.0.2.3", T0, "n0", None, "c0", -1.5, parse_ip("192.0.2.3"))
    assert cache.expire() == []
    clock.now = T0 + 102
    assert ips(cache.expire()) == ["192.0.2.2"]
    assert cache.expire() == [] and len(cache) == 0
    assert cache.stats().expired == 3


def test_lazily_replaced_entry_is_still_reported_once(cache: ThreatCache,
                                                      clock: Clock) -> None:
    cache.keep(msg("192.0.2.1", "old"))
    clock.now = T0 + 150
    assert cache.keep(msg("192.0.2.1", "new")) is True
    expired = cache.expire()
    assert [(e.ip, e.comment) for e in expired] == [("192.0.2.1", "old")]
    assert cache.check("192.0.2.1").comment == "new"  # type: ignore[union-attr]
    clock.now = T0 + 250
    assert [(e.ip, e.comment) for e in cache.expire()] == [("192.0.2.1", "new")]


def test_iteration_yields_current_entries_in_first_seen_order(cache: ThreatCache,
                                                               clock: Clock) -> None:
    for i, ip in enumerate(["2001:db8::9", "192.0.2.1", "192.0.2.0"]):
        clock.now = T0 + 10 * i
        cache.keep(msg(ip))
    clock.now = T0 + 105
    assert [(e.ip, e.expires_in) for e in cache] == [("192.0.2.1", 5.0), ("192.0.2.0", 15.0)]


def test_compaction_keeps_lookups_right(cache: ThreatCache, clock: Clock) -> None:
    for i in range(1000):
        clock.now = T0 + i / 10
        cache.keep(msg(f"10.0.{i // 256}.{i % 256}"))
    clock.now = T0 + 100 + 70
    assert len(cache.expire()) == 701  # first seen at or before T0 + 70
    assert len(cache._keys) == 299  # the dead prefix was cut off
    assert cache.check("10.0.2.188") is None  # i = 700
    assert cache.check("10.0.2.189").first_seen == T0 + 70.1  # type: ignore[union-attr]
    assert cache.keep(msg("10.0.0.1")) is True and cache.keep(msg("10.0.3.231")) is False
    assert len(cache) == 300


# --- timeout and sync ------------------------------------------------------------------------


def test_timeout_change_applies_to_current_entries(cache: ThreatCache, clock: Clock) -> None:
    cache.keep(msg("192.0.2.1"))
    clock.now = T0 + 60
    cache.keep(msg("192.0.2.2"))
    cache.timeout = 50  # the topic shortened the block period
    assert cache.check("192.0.2.1") is None
    assert cache.check("192.0.2.2").expires_in == 50  # type: ignore[union-attr]
    assert ips(cache.expire()) == ["192.0.2.1"]
    cache.timeout = 3600
    assert cache.check("192.0.2.2").expires_in == 3600  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), True, "60"])
def test_bad_timeout(bad: object) -> None:
    with pytest.raises(ValueError, match="timeout"):
        ThreatCache(timeout=bad)  # type: ignore[arg-type]
    cache = ThreatCache()
    with pytest.raises(ValueError):
        cache.timeout = bad  # type: ignore[assignment]
    assert cache.timeout == 3600


def test_synced_after_a_block_period_plus_slack(cache: ThreatCache, clock: Clock) -> None:
    assert cache.quiet_left == 100 + SYNC_SLACK and not cache.synced
    clock.now = T0 + 101.5
    assert cache.quiet_left == 0.5 and not cache.synced
    clock.now = T0 + 102
    assert cache.quiet_left == 0 and cache.synced
    cache.timeout = 200  # a longer block period needs a longer listen
    assert cache.quiet_left == 100 and not cache.synced
    cache.listen()  # rejoined: start over
    assert cache.listening_since == T0 + 102 and cache.quiet_left == 202


def test_stats_has_every_original_field(cache: ThreatCache, clock: Clock) -> None:
    empty = cache.stats()
    assert (empty.seen, empty.percent_kept, empty.rate_seen) == (0, 0.0, 0.0)
    for ip in ["192.0.2.1", "192.0.2.2", "192.0.2.1", "192.0.2.3"]:
        cache.keep(msg(ip))
    clock.now = T0 + 50
    cache.keep(msg("192.0.2.4"))
    clock.now = T0 + 100
    cache.expire()
    assert cache.stats() == Stats(
        size=1, seen=5, kept=4, discard=1, expired=3, time_start=T0, time_current=T0 + 100,
        time_running=100, percent_kept=80.0, percent_discard=20.0, rate_seen=0.05,
        rate_kept=0.04)


# --- /64 aggregation -------------------------------------------------------------------------


def test_ipv6_aggregates_to_the_64(clock: Clock) -> None:
    cache = ThreatCache(clock=clock, aggregate_v6=True)
    assert cache.keep(msg("2001:db8:1:2::1", "first")) is True
    assert cache.keep(msg("2001:db8:1:2:ffff:ffff:ffff:ffff")) is False
    assert cache.keep(msg("2001:db8:1:3::1")) is True
    assert cache.keep(msg("192.0.2.1")) is True and cache.keep(msg("192.0.2.2")) is True
    entry = cache.check("2001:db8:1:2:abcd::9")
    assert entry is not None and (entry.ip, entry.comment) == ("2001:db8:1:2::/64", "first")
    assert [e.ip for e in cache] == ["2001:db8:1:2::/64", "2001:db8:1:3::/64", "192.0.2.1",
                                     "192.0.2.2"]


def test_without_aggregation_each_ipv6_address_counts(cache: ThreatCache) -> None:
    assert cache.keep(msg("2001:db8:1:2::1")) and cache.keep(msg("2001:db8:1:2::2"))


@pytest.mark.parametrize("aggregate", [False, True])
def test_on_keep_hears_each_kept_threat_once(clock: Clock, aggregate: bool) -> None:
    cache = ThreatCache(timeout=60, clock=clock, aggregate_v6=aggregate)
    heard: list[Entry] = []
    cache.keep(msg("192.0.2.9"))  # before a hook is set: not heard
    cache.on_keep = heard.append
    assert cache.keep(msg("192.0.2.1", "scan"), "bot", "acct")
    assert not cache.keep(msg("192.0.2.1", "again"))
    assert cache.keep(msg("2001:db8:1:2::"))  # the /64's own first address
    assert cache.keep(msg("2001:db8:1:3::5")) and cache.keep(msg("2001:db8:1:3::6")) != aggregate
    assert heard[0] == Entry("192.0.2.1", T0, "bot", "acct", "scan", 60, parse_ip("192.0.2.1"))
    expected = (["192.0.2.1", "2001:db8:1:2::/64", "2001:db8:1:3::/64"] if aggregate else
                ["192.0.2.1", "2001:db8:1:2::", "2001:db8:1:3::5", "2001:db8:1:3::6"])
    assert [e.ip for e in heard] == expected
    assert [e.ip for e in heard] == [e.ip for e in cache][1:]


def test_on_keep_hears_a_threat_kept_again_after_expiry(cache: ThreatCache,
                                                        clock: Clock) -> None:
    heard: list[Entry] = []
    cache.on_keep = heard.append
    cache.keep(msg("192.0.2.1", "first"))
    clock.now += cache.timeout  # expired, not yet swept by expire()
    assert cache.keep(msg("192.0.2.1", "again"))
    assert [(e.comment, e.first_seen) for e in heard] == [("first", T0),
                                                          ("again", T0 + cache.timeout)]


# --- snapshots -------------------------------------------------------------------------------


def filled(clock: Clock, **kwargs: object) -> ThreatCache:
    cache = ThreatCache(timeout=100, clock=clock, **kwargs)  # type: ignore[arg-type]
    for i, (ip, nick, account, comment) in enumerate([
            ("192.0.2.1", "ammo", "AmmoBot", "ssh brute force"),
            ("2001:db8::7", "v6bot", None, "spam \u2603"),
            ("198.51.100.3", "ammo", "AmmoBot", "")]):
        clock.now = T0 + 10 * i
        cache.keep(msg(ip, comment), nick=nick, account=account)
    return cache


def rows(cache: ThreatCache) -> list[tuple[object, ...]]:
    return [(e.ip, e.first_seen, e.nick, e.account, e.comment) for e in cache]


def test_snapshot_load_round_trip(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "cache.json"
    old = filled(clock)
    old.snapshot(path)
    data = json.loads(path.read_text())
    assert data["saved_at"] == T0 + 20 and data["listening_since"] == T0
    clock.now = T0 + 25
    new = ThreatCache(timeout=100, clock=clock)
    assert new.load(path, grace=0) == LoadResult(3, 0, False, None)
    assert rows(new) == rows(old)
    assert new.keep(msg("192.0.2.1")) is False
    clock.now = T0 + 100
    assert ips(new.expire()) == ["192.0.2.1"]


def test_snapshot_and_load_drop_lone_surrogates(tmp_path: Path, clock: Clock) -> None:
    """A lone surrogate (no UTF-8 form) in a comment, nick or account breaks every JSON
    or IRC writer it reaches: a snapshot neither writes nor restores one."""
    path = tmp_path / "cache.json"
    cache = ThreatCache(timeout=100, clock=clock)
    cache.keep(msg("192.0.2.1", "x\ud800 \u2603"), nick="n\udcff", account="a\udfff")
    cache.snapshot(path)
    assert json.loads(path.read_bytes())["entries"][0][2:] == ["n?", "a?", "x? \u2603", ""]
    path.write_text(json.dumps({"version": 1, "saved_at": T0, "listening_since": T0,
                                "entries": [["192.0.2.2", T0, "n\udcff", "a\ud800",
                                             "y\udbff"]]}))  # an older snapshot
    new = ThreatCache(timeout=100, clock=clock)
    assert new.load(path) == LoadResult(1, 0, False, None)
    assert rows(new) == [("192.0.2.2", T0, "n?", "a?", "y?")]
    for text in rows(new)[0][2:]:
        text.encode("utf-8")  # type: ignore[union-attr]


def test_the_reporters_host_survives_a_snapshot(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "cache.json"
    cache = ThreatCache(timeout=100, clock=clock)
    cache.keep(msg("192.0.2.1", "x"), "n", None, "h.example")
    cache.snapshot(path)
    new = ThreatCache(timeout=100, clock=clock)
    new.load(path)
    assert new.check("192.0.2.1").host == "h.example"


def test_expired_entries_are_dropped_on_load(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "cache.json"
    filled(clock).snapshot(path)
    clock.now = T0 + 110  # the first two have expired meanwhile
    new = ThreatCache(timeout=100, clock=clock)
    assert new.load(path) == LoadResult(1, 2, False, None)
    assert ips(list(new)) == ["198.51.100.3"]


def test_load_merges_in_first_seen_order_and_current_entries_win(tmp_path: Path,
                                                                 clock: Clock) -> None:
    path = tmp_path / "cache.json"
    filled(clock).snapshot(path)
    clock.now = T0 + 15
    new = ThreatCache(timeout=100, clock=clock)
    new.keep(msg("198.51.100.3", "mine"))
    new.keep(msg("203.0.113.5"))
    assert new.load(path).loaded == 2
    assert [(e.ip, e.comment) for e in new] == [
        ("192.0.2.1", "ssh brute force"), ("2001:db8::7", "spam \u2603"),
        ("198.51.100.3", "mine"), ("203.0.113.5", "")]
    clock.now = T0 + 111
    assert ips(new.expire()) == ["192.0.2.1", "2001:db8::7"]


def test_load_into_an_aggregating_cache(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "cache.json"
    filled(clock, aggregate_v6=True).snapshot(path)
    new = ThreatCache(timeout=100, clock=clock, aggregate_v6=True)
    assert new.load(path).loaded == 3
    assert new.check("2001:db8::42").ip == "2001:db8::/64"  # type: ignore[union-attr]


@pytest.mark.parametrize(("age", "grace", "carried"), [
    (30, 60, True),   # a quick restart: still synced with the channel
    (30, 10, False),  # down too long: listen for a full block period again
    (30, 0, False),
    (-5, 60, False),  # saved "in the future": do not trust it
])
def test_grace_rule_for_the_quiet_period(tmp_path: Path, clock: Clock, age: float,
                                         grace: float, carried: bool) -> None:
    path = tmp_path / "cache.json"
    old = ThreatCache(timeout=100, clock=clock)
    clock.now = T0 + 500
    assert old.synced
    old.snapshot(path)
    clock.now = T0 + 500 + age
    new = ThreatCache(timeout=100, clock=clock)
    assert new.load(path, grace=grace).carried_over is carried
    assert new.synced is carried
    assert new.listening_since == (T0 if carried else clock.now)


def test_a_later_listening_start_is_never_carried_over(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "cache.json"
    write(path, {"version": 1, "saved_at": T0, "listening_since": T0 + 50, "entries": []})
    cache = ThreatCache(timeout=100, clock=clock)
    clock.now = T0 + 60
    assert cache.load(path, grace=3600).carried_over is False
    assert cache.listening_since == T0


def test_first_seen_from_a_clock_that_ran_ahead_is_clamped(tmp_path: Path,
                                                          clock: Clock) -> None:
    path = tmp_path / "cache.json"
    write(path, {"version": 1, "saved_at": T0, "listening_since": T0,
                 "entries": [["192.0.2.1", T0 + 5000, "ammo", None, ""]]})
    cache = ThreatCache(timeout=100, clock=clock)
    assert cache.load(path).loaded == 1
    assert cache.check("192.0.2.1").first_seen == T0  # type: ignore[union-attr]


def write(path: Path, data: object) -> None:
    path.write_text(data if isinstance(data, str) else json.dumps(data))


GOOD_ENTRY = ["192.0.2.1", T0, "ammo", None, "spam"]
CORRUPT = [
    ("", "corrupt snapshot"),
    ('{"version": 1, "saved_at": ', "corrupt snapshot"),
    ("\xff\xfe not json", "corrupt snapshot"),
    ("[" * 100_000 + "]" * 100_000, "corrupt snapshot"),
    ([], "not a version 1"),
    ({"version": 2, "saved_at": T0, "listening_since": T0, "entries": []}, "not a version 1"),
    ({"version": 1, "listening_since": T0, "entries": []}, "saved_at"),
    ({"version": 1, "saved_at": "NaN", "listening_since": T0, "entries": []}, "saved_at"),
    ('{"version": 1, "saved_at": NaN, "listening_since": 0, "entries": []}', "saved_at"),
    ({"version": 1, "saved_at": T0, "listening_since": True, "entries": []}, "listening_since"),
    ({"version": 1, "saved_at": T0, "listening_since": T0, "entries": {}}, "entries"),
    ({"version": 1, "saved_at": T0, "listening_since": T0,
      "entries": [GOOD_ENTRY, ["192.0.2.2", T0, "ammo", None]]}, "entry 1"),
    ({"version": 1, "saved_at": T0, "listening_since": T0,
      "entries": [["300.1.1.1", T0, "ammo", None, ""]]}, "entry 0: octet 300 > 255"),
    ({"version": 1, "saved_at": T0, "listening_since": T0,
      "entries": [["192.0.2.2", T0, "ammo", 7, ""]]}, "entry 0 has a field of the wrong type"),
    ({"version": 1, "saved_at": T0, "listening_since": T0,
      "entries": [["192.0.2.2", "1", "ammo", None, ""]]}, "entry 0 first_seen"),
]


@pytest.mark.parametrize(("content", "reason"), CORRUPT)
def test_corrupt_snapshot_is_reported_and_ignored(tmp_path: Path, clock: Clock,
                                                  content: object, reason: str) -> None:
    path = tmp_path / "cache.json"
    write(path, content)
    cache = ThreatCache(timeout=100, clock=clock)
    cache.keep(msg("203.0.113.5"))
    result = cache.load(path, grace=3600)
    assert result.error is not None and reason in result.error and str(path) in result.error
    assert (result.loaded, result.carried_over) == (0, False)
    assert ips(list(cache)) == ["203.0.113.5"] and cache.listening_since == T0


def test_missing_snapshot_is_nothing_to_restore(tmp_path: Path, cache: ThreatCache) -> None:
    assert cache.load(tmp_path / "absent.json") == LoadResult(0, 0, False, None)


def test_unreadable_snapshot_is_reported(tmp_path: Path, cache: ThreatCache) -> None:
    result = cache.load(tmp_path)  # a directory
    assert result.error is not None and result.error.startswith("cannot read snapshot")


def test_snapshot_is_atomic_and_skips_expired(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "cache.json"
    cache = filled(clock)
    clock.now = T0 + 105  # 192.0.2.1 expired, not yet swept
    cache.snapshot(path)
    assert [e[0] for e in json.loads(path.read_text())["entries"]] == [
        "2001:db8::7", "198.51.100.3"]
    assert os.listdir(tmp_path) == ["cache.json"]


# --- properties ------------------------------------------------------------------------------

POOL = ["192.0.2.1", "192.0.2.2", "198.51.100.9", "2001:db8::1", "2001:db8::2",
        "2001:db8:0:1::1"]
AGGREGATED = {"2001:db8::1": "2001:db8::/64", "2001:db8::2": "2001:db8::/64",
              "2001:db8:0:1::1": "2001:db8:0:1::/64"}
operations = st.lists(st.one_of(
    st.tuples(st.just("keep"), st.sampled_from(POOL)),
    st.tuples(st.just("wait"), st.floats(0, 60)),
    st.tuples(st.just("expire"), st.none()),
    st.tuples(st.just("timeout"), st.sampled_from([10, 30, 45, 100])),
    st.tuples(st.just("restart"), st.none()),
), max_size=60)


@settings(max_examples=300)
@given(operations, st.booleans())
def test_cache_matches_a_simple_model(ops: list[tuple[str, object]], aggregate: bool) -> None:
    """Against a dict of key -> first seen: same keep answers, every kept threat reported
    expired exactly once (unless a restart lost it), never an entry older than the timeout."""
    clock = Clock()
    cache = ThreatCache(timeout=30, clock=clock, aggregate_v6=aggregate)
    live: dict[str, float] = {}  # model: ip text as the cache reports it -> first seen
    reported: list[tuple[str, float]] = []  # model: expired, awaiting expire()
    kept: list[tuple[str, float]] = []
    expired: list[tuple[str, float]] = []
    lost: list[tuple[str, float]] = []  # expired, unreported when the snapshot was taken
    for op, arg in ops:
        if op == "keep":
            ip = str(arg)
            name = AGGREGATED.get(ip, ip) if aggregate else ip
            first = live.get(name)
            current = first is not None and first + cache.timeout > clock.now
            assert cache.keep(msg(ip)) is (not current)
            if not current:
                if first is not None:
                    reported.append((name, first))
                live[name] = clock.now
                kept.append((name, clock.now))
        elif op == "wait":
            clock.now += float(arg)  # type: ignore[arg-type]
        elif op == "expire":
            gone = [(n, t) for n, t in live.items() if t + cache.timeout <= clock.now]
            for n, _ in gone:
                del live[n]
            got = [(e.ip, e.first_seen) for e in cache.expire()]
            assert sorted(got) == sorted(reported + gone)
            expired += got
            reported = []
        elif op == "timeout":
            cache.timeout = arg  # type: ignore[assignment]
        else:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "cache.json"
                cache.snapshot(path)
                cache = ThreatCache(timeout=cache.timeout, clock=clock, aggregate_v6=aggregate)
                assert cache.load(path).error is None
            gone = [(n, t) for n, t in live.items() if t + cache.timeout <= clock.now]
            for n, _ in gone:
                del live[n]
            lost += reported + gone
            reported = []
        current = {n: t for n, t in live.items() if t + cache.timeout > clock.now}
        assert {e.ip: e.first_seen for e in cache} == current
        assert len(cache) == len(current)
        assert all(0 < e.expires_in <= cache.timeout for e in cache)
    clock.now += 1000
    expired += [(e.ip, e.first_seen) for e in cache.expire()]
    assert sorted(expired + lost) == sorted(kept)


def test_remove_takes_a_current_threat_out(cache: ThreatCache, clock: Clock) -> None:
    cache.keep(msg("192.0.2.1", "x"), "n")
    cache.keep(msg("192.0.2.2", "y"), "n")
    assert cache.remove("192.0.2.1").comment == "x"
    assert cache.remove("192.0.2.1") is None and cache.check("192.0.2.1") is None
    assert [e.ip for e in cache] == ["192.0.2.2"] and len(cache) == 1
    clock.now += cache.timeout
    assert cache.remove("192.0.2.2") is None  # expired: expire() reports it
    assert [e.ip for e in cache.expire()] == ["192.0.2.2"]


def test_full(cache: ThreatCache, clock: Clock) -> None:
    for n in range(3):
        cache.keep(msg(f"192.0.2.{n}"), "n")
    assert cache.full(3) and not cache.full(4)
    clock.now += cache.timeout  # expired but not swept: no longer counts
    assert not cache.full(1)
