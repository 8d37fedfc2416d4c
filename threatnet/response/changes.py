"""Threat changes as a numbered log, for followers of a cache (the HTTP API's stream).

A change is ``added`` (a new threat, or one renewed with another expiry or
comment) or ``expired`` (expired or withdrawn) for one channel of one network,
numbered from 1 in the order they happened. ``ChangesResponder`` writes a
channel's changes: as a responder on the channel's ThreatResponse host it hears
of additions at once and of expiry at the threat's own time.

A follower reads the changes after the last number it has seen. When it has
fallen out of the bounded log, or the log is not the one its numbers came from
(``stream`` differs: the bot restarted), it is told to resync, i.e. to fetch
every current threat, instead. Changes are idempotent (added = upsert, expired
= delete), so reading a few twice does no harm.

Thread-safe: responders append from their worker threads, readers read and wait
from any thread.
"""
from __future__ import annotations

import secrets
import threading
from collections import deque
from collections.abc import Sequence
from itertools import islice
from typing import NamedTuple

from threatnet.response.responder import Responder, Threat

DEFAULT_SIZE = 20_000  # changes kept; an older cursor means resync
DEFAULT_LIMIT = 1000  # changes returned by one read


class Change(NamedTuple):
    seq: int
    kind: str  # "added" or "expired"
    network: str
    channel: str
    threat: Threat


class Read(NamedTuple):
    """What ``ChangeLog.read`` found: the changes, the number to read from next,
    and whether the follower must resync instead (``changes`` is then empty)."""

    changes: list[Change]
    next: int
    resync: bool


class ChangeLog:
    """The last ``size`` changes of every channel, numbered; see the module doc."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.stream = secrets.token_hex(8)  # names this log: cursors of another mean resync
        self.cond = threading.Condition()
        self._changes: deque[Change] = deque(maxlen=size)
        self._next = 1

    @property
    def next(self) -> int:
        """The number the next change will get."""
        with self.cond:
            return self._next

    def append(self, kind: str, network: str, channel: str, threats: Sequence[Threat]) -> None:
        if not threats:
            return
        with self.cond:
            for threat in threats:
                self._changes.append(Change(self._next, kind, network, channel, threat))
                self._next += 1
            self.cond.notify_all()

    def read(self, since: int | None, stream: str | None = None, *,
             network: str | None = None, channel: str | None = None,
             limit: int = DEFAULT_LIMIT) -> Read:
        """Changes numbered ``since`` and later, of ``network`` / ``channel`` if given
        (channel compared as given: pass the one the log was written with), at most
        ``limit``. ``since`` None: none, just the cursor to follow from now."""
        with self.cond:
            end = self._next
            if since is None:
                return Read([], end, False)
            oldest = self._changes[0].seq if self._changes else end
            if (stream is not None and stream != self.stream) or not oldest <= since <= end:
                return Read([], end, True)
            found: list[Change] = []
            for change in islice(self._changes, since - oldest, None):
                if (network is None or change.network == network) \
                        and (channel is None or change.channel == channel):
                    found.append(change)
                    if len(found) >= limit:
                        return Read(found, change.seq + 1, False)
            return Read(found, end, False)

    def wait(self, since: int, timeout: float) -> bool:
        """Wait until a change numbered ``since`` or later exists; False on timeout."""
        with self.cond:
            return self.cond.wait_for(lambda: self._next > since, timeout)


class ChangesResponder(Responder):
    """Writes the changes of one channel (``network``, ``channel``) to a ChangeLog.

    It remembers what it last wrote, so a resync (e.g. the block period changed)
    writes only the differences, and using one instance on successive hosts
    (settings changed) repeats nothing.
    """

    name = "http"

    def __init__(self, log: ChangeLog, network: str, channel: str, *,
                 name: str | None = None) -> None:
        super().__init__(name=name)
        self.log = log
        self.network = network
        self.channel = channel
        self._state: dict[int, Threat] = {}
        self._lock = threading.Lock()  # two hosts may overlap briefly while settings change

    def current(self) -> list[Threat]:
        """The threats last written as added and not since as expired."""
        with self._lock:
            return list(self._state.values())

    def update(self, added: Sequence[Threat], removed: Sequence[Threat], now: float) -> None:
        with self._lock:
            gone = [t for t in removed if self._state.pop(t.key, None) is not None]
            for threat in added:
                self._state[threat.key] = threat
            self.log.append("expired", self.network, self.channel, gone)
            self.log.append("added", self.network, self.channel, list(added))

    def resync(self, threats: Sequence[Threat], now: float) -> None:
        with self._lock:
            new = {t.key: t for t in threats}
            old = self._state
            gone = [t for key, t in old.items() if key not in new]
            changed = [t for key, t in new.items() if old.get(key) != t]
            self._state = new
            self.log.append("expired", self.network, self.channel, gone)
            self.log.append("added", self.network, self.channel, changed)
