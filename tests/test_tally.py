"""The listener's tallies: the latency histogram and the per-minute counts."""
from threatnet.tally import Histogram, PerMinute


def test_histogram_buckets_and_sum():
    h = Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 3.0, -1.0):  # -1: a clock that stepped back counts as 0
        h.observe(value)
    assert h.cumulative() == [("0.1", 3), ("1.0", 4), ("+Inf", 5)]
    assert h.count == 5 and abs(h.sum - 3.65) < 1e-9


def test_per_minute_keeps_the_last_hour():
    t0 = 1_800_000_000.0 - 1_800_000_000.0 % 60  # a minute's start
    m = PerMinute(minutes=5)
    m.add(t0)
    m.add(t0 + 30, 2)
    m.add(t0 + 61)
    assert m.series(t0 + 61) == [0, 0, 0, 3, 1]
    assert m.series(t0 + 4 * 60) == [3, 1, 0, 0, 0]
    assert m.series(t0 + 5 * 60) == [1, 0, 0, 0, 0]
    m.add(t0 + 7 * 60)
    assert m.series(t0 + 7 * 60) == [0, 0, 0, 0, 1]
    m.add(t0)  # older than the window: dropped
    assert m.series(t0 + 7 * 60) == [0, 0, 0, 0, 1]
    m.add(t0 + 60 * 60)  # long quiet: everything before is gone
    assert m.series(t0 + 60 * 60) == [0, 0, 0, 0, 1]
