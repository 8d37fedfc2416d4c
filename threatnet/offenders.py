"""Offenders: how often someone broke a channel rule, and the temporary bans that follow.

Everything here is keyed by an identity the channel bot trusts, a services
account or else the host, never by nick: changing nick must not wipe the slate.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable

# ISUPPORT EXTBAN is "<prefix>,<types>". The account extban of each server family,
# first match wins: (prefix, type letter, mask format).
ACCOUNT_EXTBANS = (
    ("$", "a", "$a:{}"),  # charybdis, solanum, hybrid-derived
    ("~", "a", "~a:{}"),  # UnrealIRCd
    ("", "R", "R:{}"),    # InspIRCd 3 services_account (measured: EXTBAN=,RU)
    ("", "a", "a:{}"),    # InspIRCd 4 account module
)


def offender(host: str, account: str | None) -> str:
    """The identity offences are counted against: the account if logged in, else the host."""
    return f"account:{account.casefold()}" if account else f"host:{host.casefold()}"


def ban_mask(host: str, account: str | None, extban: str | None) -> str:
    """An account extban when the server has one and the offender is logged in, else ``*!*@host``.

    An account ban follows the offender to any address; a host ban is what every server takes.
    """
    if account and extban and account.isprintable() and " " not in account:  # one MODE parameter
        prefix, _, types = extban.partition(",")
        for want_prefix, letter, mask in ACCOUNT_EXTBANS:
            if prefix == want_prefix and letter in types:
                return mask.format(account)
    return f"*!*@{host}"


class Strikes:
    """Events per key in a sliding window of time.

    ``hit`` records one event and says whether ``limit`` of them now fall within
    ``window`` seconds: a flood (limit = lines + 1), a second malformed line after
    a warning (limit 2), a repeat offender (limit = kicks). Only the last
    ``limit`` times are kept per key.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._times: dict[Hashable, deque[float]] = {}

    def hit(self, key: Hashable, limit: int, window: float) -> bool:
        now = self._clock()
        times = self._times.get(key)
        if times is None or times.maxlen != limit:
            times = self._times[key] = deque(times or (), maxlen=max(1, limit))
        times.append(now)
        while times and times[0] <= now - window:
            times.popleft()
        return len(times) >= limit

    def forget(self, key: Hashable) -> None:
        self._times.pop(key, None)

    def prune(self, window: float) -> None:
        """Drop keys with no event in the last ``window`` seconds (bounds memory)."""
        cutoff = self._clock() - window
        for key in [k for k, times in self._times.items() if not times or times[-1] <= cutoff]:
            del self._times[key]

    def __len__(self) -> int:
        return len(self._times)


class TempBans:
    """Ban masks set by the bot with the time each one is to be lifted."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._until: dict[str, float] = {}

    def add(self, mask: str, seconds: float) -> None:
        """Ban ``mask`` for ``seconds`` from now; a ban already held is extended, never shortened."""
        until = self._clock() + seconds
        self._until[mask] = max(until, self._until.get(mask, until))

    def due(self) -> list[str]:
        """Masks whose time is up, oldest first; they stay until ``discard``ed (lifted)."""
        now = self._clock()
        return sorted((m for m, t in self._until.items() if t <= now), key=self._until.__getitem__)

    def discard(self, mask: str) -> None:
        self._until.pop(mask, None)

    def __contains__(self, mask: object) -> bool:
        return mask in self._until

    def __len__(self) -> int:
        return len(self._until)
