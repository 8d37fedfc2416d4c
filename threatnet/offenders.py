"""Offenders: how often someone broke a channel rule, and the temporary bans that follow.

Everything here is keyed by an identity the channel bot trusts, a services
account or else the host, never by nick: changing nick must not wipe the slate.
"""
from __future__ import annotations

import json
import math
import os
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable

from threatnet.atomic import atomic_write
from threatnet.names import RFC1459, fold

BANS_VERSION = 1
BanRow = tuple[str, str, str, float]  # (network, channel, mask, lifted at: time.time())

# ISUPPORT EXTBAN is "<prefix>,<types>". The account extban of each server family,
# first match wins: (prefix, type letter, mask format).
ACCOUNT_EXTBANS = (
    ("$", "a", "$a:{}"),  # charybdis, solanum, hybrid-derived
    ("~", "a", "~a:{}"),  # UnrealIRCd
    ("", "R", "R:{}"),    # InspIRCd 3 services_account (measured: EXTBAN=,RU)
    ("", "a", "a:{}"),    # InspIRCd 4 account module
)


def offender(host: str, account: str | None, casemapping: str | None = RFC1459) -> str:
    """The identity offences are counted against: the account if logged in (folded as
    the server's services compare it), else the host."""
    return f"account:{fold(account, casemapping)}" if account else f"host:{host.casefold()}"


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

    def hold(self, mask: str, until: float) -> None:
        """Hold ``mask`` until the time ``until`` (a restored ban); never shortens one."""
        self._until[mask] = max(until, self._until.get(mask, until))

    def items(self) -> list[tuple[str, float]]:
        """(mask, time to lift it) of every ban held."""
        return list(self._until.items())

    def __contains__(self, mask: object) -> bool:
        return mask in self._until

    def __len__(self) -> int:
        return len(self._until)


class BanFileError(ValueError):
    """The bans file cannot be used; ``str(e)`` says why."""


def write_bans(path: str | os.PathLike[str], rows: Iterable[BanRow]) -> None:
    """Save the bans the bot must still lift, atomically; raises OSError."""
    atomic_write(path, json.dumps({"version": BANS_VERSION, "bans": [list(r) for r in rows]}))


def read_bans(path: str | os.PathLike[str]) -> list[BanRow]:
    """The rows ``write_bans`` saved; none for a missing file. Raises BanFileError."""
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except FileNotFoundError:
        return []
    except OSError as e:
        raise BanFileError(f"cannot read {path}: {e.strerror}") from None
    except ValueError as e:  # also UnicodeDecodeError
        raise BanFileError(f"{path}: not JSON ({e})") from None
    if not isinstance(data, dict) or data.get("version") != BANS_VERSION \
            or not isinstance(data.get("bans"), list):
        raise BanFileError(f"{path}: not a version {BANS_VERSION} bans file")
    rows = []
    for row in data["bans"]:
        if not (isinstance(row, list) and len(row) == 4
                and all(isinstance(x, str) and x for x in row[:3])
                and isinstance(row[3], (int, float)) and not isinstance(row[3], bool)
                and math.isfinite(row[3])):
            raise BanFileError(f"{path}: bad entry {row!r}")
        rows.append((row[0], row[1], row[2], float(row[3])))
    return rows
