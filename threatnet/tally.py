"""Tallies a listener keeps for operators: how long threats took to reach its Threat
Cache (a latency histogram for the metrics) and how many it kept per minute (the
status page's plot). Both cost O(1) per kept threat and fixed memory."""
from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

# Seconds from a threat's report to its caching: the proposal wants a second, we aim at
# 100 ms; a line that waited in the outbox or for a quorum lands in the upper buckets.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
MINUTES = 60  # the per-minute counts kept: the last hour


class Histogram:
    """Observations counted into fixed buckets (upper bounds, +Inf implied), with their
    sum: what a Prometheus histogram exposes."""

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last: above every bound
        self.sum = 0.0

    def observe(self, value: float) -> None:
        value = max(0.0, value)  # a clock that stepped back between two hosts
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """(upper bound as text, observations at or below it), +Inf last."""
        result, total = [], 0
        for bound, n in zip((*self.bounds, math.inf), self.counts):
            total += n
            result.append(("+Inf" if bound == math.inf else repr(bound), total))
        return result


class PerMinute:
    """Events counted per wall-clock minute over the last ``MINUTES`` minutes."""

    def __init__(self, minutes: int = MINUTES) -> None:
        self._counts = [0] * minutes
        self._minute = 0  # the minute (since the epoch) counted at _counts[minute % size]

    def _advance(self, minute: int) -> None:
        size = len(self._counts)
        if minute - self._minute >= size:
            self._counts = [0] * size
        else:
            for m in range(self._minute + 1, minute + 1):
                self._counts[m % size] = 0
        self._minute = minute

    def add(self, now: float, n: int = 1) -> None:
        minute = int(now // 60)
        if minute > self._minute:
            self._advance(minute)
        elif minute <= self._minute - len(self._counts):
            return  # older than the window (the clock stepped back)
        self._counts[minute % len(self._counts)] += n

    def series(self, now: float) -> list[int]:
        """The counts of the last ``minutes`` minutes, oldest first, this minute last."""
        minute = int(now // 60)
        if minute > self._minute:
            self._advance(minute)
        size = len(self._counts)
        return [self._counts[m % size] if m <= self._minute else 0
                for m in range(minute - size + 1, minute + 1)]
