"""Retries: what a bot keeps asking the server for until it holds.

Real servers refuse or drop what a bot sends, and say so in their own words: InspIRCd
answers a topic change in the same second as the last one with ``437 Retry topic change
later``, a full ban list with ``478``, a lost op with ``482``; a banned agent's join
gets ``474``. A refusal never ends the matter: the bot sends again after a delay that
doubles with each attempt (``first``, ``2 * first``, ... up to ``cap`` seconds), until
what it wants holds, and remembers the server's last answer so it can say why it is
still trying. ``Retries`` keeps that schedule for any keys (the channel bot uses
"topic", "modes", "+b <mask>" and "-b <mask>"; an agent its channels); the caller
decides what "holds" means and sends.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, NamedTuple, TypeVar

K = TypeVar("K", bound=Hashable)

FIRST = 1.0  # seconds before the first check: InspIRCd refuses a second topic in one second
CAP = 60.0  # the longest wait between attempts


class Attempt(NamedTuple):
    """Where one key stands: ``attempts`` sent so far, the time ``due`` to check whether it
    held (and send again if not), and the server's last ``reason`` for refusing it (None:
    no answer yet)."""

    attempts: int
    due: float
    reason: str | None = None


def delay(attempts: int, first: float = FIRST, cap: float = CAP) -> float:
    """Seconds to wait after the ``attempts``-th attempt: ``first`` doubled per attempt, capped."""
    return min(cap, first * 2 ** max(0, attempts - 1))


class Retries(Generic[K]):
    """The keys sent and not yet seen to hold, each with its attempts and next check."""

    def __init__(self, clock: Callable[[], float] = time.time, *, first: float = FIRST,
                 cap: float = CAP) -> None:
        self._clock = clock
        self.first, self.cap = first, cap
        self._pending: dict[K, Attempt] = {}

    def sent(self, key: K, *, fresh: bool = False) -> Attempt:
        """``key`` was just sent (again): one more attempt, checked after the backoff.
        ``fresh``: a new situation (someone else changed it again), so the count starts
        over and the next check comes after ``first`` seconds."""
        old = self._pending.get(key)
        attempts = 1 if fresh or old is None else old.attempts + 1
        reason = None if old is None or fresh else old.reason
        attempt = self._pending[key] = Attempt(
            attempts, self._clock() + delay(attempts, self.first, self.cap), reason)
        return attempt

    def refused(self, key: K, reason: str) -> Attempt:
        """The server refused ``key`` (or the bot would not send it) for ``reason``; it
        stays due when it was (never sooner: the backoff holds). A key not sent yet is
        due after ``first`` seconds."""
        old = self._pending.get(key)
        attempt = self._pending[key] = Attempt(old.attempts, old.due, reason) if old else \
            Attempt(0, self._clock() + self.first, reason)
        return attempt

    def held(self, key: K) -> Attempt | None:
        """``key`` holds: stop trying. Returns where it stood (None: it was not pending)."""
        return self._pending.pop(key, None)

    def waiting(self, key: K) -> bool:
        """Whether ``key`` was sent and its check is not due yet (do not send it again)."""
        attempt = self._pending.get(key)
        return attempt is not None and attempt.due > self._clock()

    def get(self, key: K) -> Attempt | None:
        return self._pending.get(key)

    def due(self) -> list[K]:
        """Keys whose check has come, earliest first."""
        now = self._clock()
        return sorted((k for k, a in self._pending.items() if a.due <= now),
                      key=lambda k: self._pending[k].due)

    def next_due(self) -> float | None:
        """When the earliest check is due (None: nothing pending)."""
        return min((a.due for a in self._pending.values()), default=None)

    def keys(self) -> list[K]:
        return list(self._pending)

    def __contains__(self, key: object) -> bool:
        return key in self._pending

    def __len__(self) -> int:
        return len(self._pending)
