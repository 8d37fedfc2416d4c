"""Threshold: how many failures of one address a feed sees before it reports a Verified Threat.

fail2ban's model: an address is reported once ``maxretry`` failures fall within
the last ``findtime`` seconds (a sliding window), then its count starts again
(a second report while the first is current is the provider's duplicate to
refuse, as the cache knows best what is current, other agents' reports
included). ``maxretry`` 1 reports every find at once: for logs that already
hold a decision (a fail2ban ban, the Threat Language written by a tool).

What counts is attempts, not log lines. sshd writes several lines about one
login ("Invalid user x", then "Failed password for invalid user x" per
password, then "Connection closed by invalid user x"): a line about the
connection (``Find.attempt`` False) counts only when nothing else of its
connection (``Find.session``: the sshd process id) has counted, and the first
attempt after it is the one it counted. So a connection counts as many as its
attempts, at least 1. rsyslog's "message repeated N times" is N attempts.

Memory is bounded: an address is forgotten when its last failure leaves the
window, and at most ``capacity`` failures are remembered, whatever maxretry is
(an address holds at most ``maxretry`` - 1): for the default 10,000 about 4 MB,
9 MB for a ``plain`` feed whose every line has another 100-character comment.
When full, the addresses that failed least recently are forgotten (``evicted``):
an address that keeps failing stays counted, so a flood of one-off addresses (a
botnet spreading its guesses) delays, but cannot hide, an attacker that keeps
going. Nothing here reads files or clocks on its own beyond ``clock``: how
lines are read is the feed's business.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

MAXRETRY_MAX = 100  # failures an address may need; bounds the entries kept per address
FINDTIME_MAX = 86400  # seconds: a window of a day
CAPACITY = 10_000  # failures remembered at once, per feed


class Kind(NamedTuple):
    """What one log line shows: ``alone`` is the comment when it is reported on its
    own (a threshold of 1); ``one`` and ``many`` name it after a count."""

    alone: str  # "sshd: failed password"
    one: str  # "failed password"
    many: str  # "failed passwords"


class Find(NamedTuple):
    """What an extractor found in one log line. Never a username, mail address or
    other personal data: the kind of failure only."""

    ip: str  # as the log wrote it; the Threat Language checks it before it counts
    kind: Kind
    times: int = 1  # attempts the line stands for (rsyslog: "message repeated N times")
    session: str = ""  # the connection it belongs to (sshd: the process id), if known
    attempt: bool = True  # False: a line about the connection, not one more attempt


class Counted(NamedTuple):
    """An address whose failures reached the threshold: each kind with its count,
    the most frequent first."""

    total: int
    kinds: tuple[tuple[Kind, int], ...]


class _Entry(NamedTuple):
    time: float
    weight: int  # attempts it counts
    kind: Kind
    session: str
    attempted: bool  # an attempt counted here (a connection line's count is used up)


class Threshold:
    """Failures per address (``add``) in a sliding window of ``findtime`` seconds;
    ``add`` returns a Counted when an address reaches ``maxretry``."""

    def __init__(self, maxretry: int = 1, findtime: float = 600,
                 clock: Callable[[], float] = time.time, capacity: int = CAPACITY) -> None:
        if not 1 <= maxretry <= MAXRETRY_MAX:
            raise ValueError(f"maxretry must be 1 to {MAXRETRY_MAX}")
        if not 0 < findtime <= FINDTIME_MAX:
            raise ValueError(f"findtime must be 1 to {FINDTIME_MAX} seconds")
        if capacity < maxretry:
            raise ValueError("capacity must be >= maxretry")
        self.maxretry = maxretry
        self.findtime = findtime
        self.capacity = capacity
        self._clock = clock
        # key -> its entries, oldest first; the addresses in order of their last failure.
        self._counted: OrderedDict[int, list[_Entry]] = OrderedDict()
        self._size = 0  # entries in _counted
        self.reached = 0  # addresses that reached the threshold
        self.evicted = 0  # addresses forgotten below it: capacity failures were remembered

    def __str__(self) -> str:
        if self.maxretry == 1:
            return "threshold 1"
        return f"threshold {self.maxretry} in {self.findtime:g} s"

    def add(self, key: int, find: Find, now: float | None = None) -> Counted | None:
        """Count ``find`` against the address ``key`` (a ThreatMessage key) at ``now``
        (default: the clock). The Counted when the address reaches the threshold: it
        is then forgotten, its count starts again."""
        if self.maxretry == 1:
            self.reached += 1
            return Counted(1, ((find.kind, 1),))
        if now is None:
            now = self._clock()
        self.prune(now)
        counted = self._counted
        entries = counted.get(key)
        if entries is None:
            entries = counted[key] = []
        else:
            counted.move_to_end(key)
            cutoff = now - self.findtime
            while entries and entries[0].time <= cutoff:
                del entries[0]
                self._size -= 1
        size = len(entries)
        _count(entries, find, now)
        self._size += len(entries) - size
        total = sum(e.weight for e in entries)
        if total < self.maxretry:
            while self._size > self.capacity:  # never this address: it is the newest
                self._size -= len(counted.popitem(last=False)[1])
                self.evicted += 1
            return None
        del counted[key]
        self._size -= len(entries)
        self.reached += 1
        kinds: dict[Kind, int] = {}
        for e in entries:
            kinds[e.kind] = kinds.get(e.kind, 0) + e.weight
        return Counted(total, tuple(sorted(kinds.items(), key=lambda kn: -kn[1])))

    def prune(self, now: float | None = None) -> None:
        """Forget addresses whose last failure left the window."""
        cutoff = (self._clock() if now is None else now) - self.findtime
        counted = self._counted
        while counted:
            entries = next(iter(counted.values()))
            if entries and entries[-1].time > cutoff:
                break
            self._size -= len(counted.popitem(last=False)[1])

    def below(self, now: float | None = None) -> int:
        """Addresses counted now that have not reached the threshold."""
        self.prune(now)
        return len(self._counted)

    def describe(self, counted: Counted, label: str) -> str:
        """The comment for an address that reached the threshold: the kinds and counts,
        e.g. ``sshd: 5 failed passwords in 600 s``; a find reported on its own keeps
        its ``Kind.alone``."""
        if self.maxretry == 1:
            return counted.kinds[0][0].alone
        parts = ", ".join(f"{n} {kind.one if n == 1 else kind.many}" for kind, n in counted.kinds)
        return f"{label}: {parts} in {self.findtime:g} s" if label \
            else f"{parts} in {self.findtime:g} s"


def _count(entries: list[_Entry], find: Find, now: float) -> None:
    """Add ``find`` to one address's entries (within the window)."""
    if find.session:
        for i, e in enumerate(entries):
            if e.session == find.session:
                if not find.attempt:
                    return  # its connection already counted
                if not e.attempted:  # the connection line counted this attempt
                    entries[i] = e._replace(attempted=True)
                    if find.times > 1:
                        entries.append(_Entry(now, find.times - 1, find.kind, find.session, True))
                    return
                break
    entries.append(_Entry(now, find.times if find.attempt else 1, find.kind, find.session,
                          find.attempt))
