"""threatnet_irc.clock.cached: the plugins' short-lived cache of registry-derived values."""
from __future__ import annotations

import time

import pytest

from threatnet_irc.clock import TTL, cached


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])  # clock.now looks it up per call
    return now


def test_cached_until_the_ttl_or_a_new_stamp(clock: list[float]) -> None:
    cache: dict = {}
    computed = iter(range(100))
    get = lambda stamp=None: cached(cache, "k", lambda: next(computed), stamp=stamp)  # noqa: E731
    assert get() == get() == 0
    clock[0] += TTL  # expired
    assert get() == 1
    assert get("topic A") == 2 and get("topic A") == 2  # another stamp: recomputed once
    assert get("topic B") == 3
    clock[0] -= 3600  # the clock stepped back: not trusted for an hour
    assert get("topic B") == 4
    cache.clear()
    assert get("topic B") == 5
