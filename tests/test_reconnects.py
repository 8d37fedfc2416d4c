"""A connection that keeps failing is logged once: the driver's retry messages held
back for a window, then logged with how many were held back; others untouched."""
from __future__ import annotations

import logging

from threatnet_irc.reconnects import RepeatFilter, fold_repeats


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def record(text: str) -> logging.LogRecord:
    return logging.LogRecord("supybot", logging.WARNING, __file__, 1, text, (), None)


def passed(f: RepeatFilter, text: str) -> str | None:
    r = record(text)
    return r.getMessage() if f.filter(r) else None


def test_a_failing_reconnect_is_logged_once_per_window() -> None:
    clock = Clock()
    f = RepeatFilter(window=600, clock=clock)
    error = ("Certificate validation failed when connecting to threatnet: No matching "
             "fingerprint.\nThis means either someone is doing a man-in-the-middle attack")
    retry = "Reconnecting to threatnet at 2026-12-04 18:49:12."
    assert passed(f, error) == error
    assert passed(f, retry) == retry
    for n in range(59):
        clock.now += 10
        assert passed(f, error) is None
        assert passed(f, retry.replace("12.", f"{n % 60:02}.")) is None
    assert passed(f, "Join to #threatnet on threatnet synced in 0.02 seconds.") is not None
    clock.now += 10
    assert passed(f, error) == f"{error} (said 59 more times in the last 600 s, not logged)"
    clock.now += 10
    assert passed(f, error) is None


def test_fold_repeats_is_installed_once_and_undone() -> None:
    logger = logging.getLogger("threatnet-test-repeats")
    undo = fold_repeats(logger.name)
    assert fold_repeats(logger.name)() is None  # a second plugin adds nothing
    assert [type(f) for f in logger.filters] == [RepeatFilter]
    undo()
    assert logger.filters == []
