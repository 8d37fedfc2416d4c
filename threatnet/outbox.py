"""Outbox: a bounded queue of outgoing lines released at a paced rate.

A Threat Provider can extract threats from its logs much faster than an IRC
server accepts lines. The outbox holds at most ``maxlen`` items and, when full,
drops the oldest one (counted in ``dropped``): during a flood the newest threats
are the most useful ones. ``take()`` releases what a token bucket allows: up to
``burst`` items at once, refilled at ``rate`` items per second. Nothing blocks.

The outbox keeps its own time: ``due()`` says when the next release is possible, so
its owner sets a timer for exactly then instead of draining on an unrelated poll
(which capped a backlog at ``burst`` per poll whatever ``rate`` said). Behind a
backlog it waits for a batch of ``QUANTUM`` seconds' worth of tokens rather than
one, so a fast rate costs at most ``1 / QUANTUM`` timer wake-ups a second.
"""
from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
QUANTUM = 0.01  # seconds of tokens released together behind a backlog


class Outbox(Generic[T]):
    """Bounded drop-oldest FIFO with a token-bucket release rate."""

    def __init__(self, rate: float, burst: int, maxlen: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        if burst < 1:
            raise ValueError("burst must be >= 1")
        if maxlen < 1:
            raise ValueError("maxlen must be >= 1")
        self.rate = float(rate)
        self.burst = burst
        self._clock = clock
        self._queue: deque[T] = deque(maxlen=maxlen)
        self._tokens = float(burst)
        self._last = clock()
        self.sent = 0
        self.dropped = 0

    @property
    def maxlen(self) -> int:
        return self._queue.maxlen or 0

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, item: T) -> T | None:
        """Queue ``item``; if the queue was full, return the oldest item, now dropped."""
        dropped = None
        if len(self._queue) == self._queue.maxlen:
            dropped = self._queue[0]  # deque(maxlen) evicts it on append
            self.dropped += 1
        self._queue.append(item)
        return dropped

    def _refill(self) -> None:
        now = self._clock()
        # max(0, ...): a clock that steps back must not drain the bucket.
        self._tokens = min(self.burst, self._tokens + max(0.0, now - self._last) * self.rate)
        self._last = now

    def due(self) -> float | None:
        """Seconds until ``take()`` releases something worth a wake-up (0: now), or None
        while nothing waits: one item when the bucket allows it, behind a backlog a
        batch of ``QUANTUM`` seconds' worth (at most ``burst``)."""
        if not self._queue:
            return None
        self._refill()
        batch = min(len(self._queue), self.burst, max(1, math.floor(self.rate * QUANTUM)))
        return max(0.0, (batch - self._tokens) / self.rate)

    def take(self) -> list[T]:
        """Remove and return the items the rate allows right now, oldest first."""
        self._refill()
        # The epsilon: a timer set by due() must not wake to 0.9999999 of a token.
        n = min(int(self._tokens + 1e-9), len(self._queue))
        self._tokens -= n
        self.sent += n
        popleft = self._queue.popleft
        return [popleft() for _ in range(n)]

    def stats(self) -> dict[str, int]:
        """Counters for status lines: waiting, sent, dropped."""
        return {"waiting": len(self._queue), "sent": self.sent, "dropped": self.dropped}
