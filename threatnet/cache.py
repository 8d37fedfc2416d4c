"""Threat Cache: every threat that is still current, so none is repeated in its block period.

Semantics of the original ThreatNet::Filter::ThreatCache: ``keep`` accepts an IP
that is not current and records it, an entry expires ``timeout`` seconds after
it was first seen, expiry runs in first-seen order, and the agent is ``synced``
once it has listened for a whole block period.

Layout (about 130 bytes per threat at a million entries): a dict maps each key
to a sequence number, and parallel columns appended in first-seen order hold
key, first-seen time (``array('d')``) and one shared ``(nick, account, comment, host)``
tuple. Every entry has the same timeout, so first-seen order is also expiry
order: expiry advances a head index and the dead prefix is cut off once it is
more than half the columns.
"""
from __future__ import annotations

import json
import math
import time
from array import array
from collections.abc import Callable, Iterator
from operator import itemgetter
from typing import TYPE_CHECKING, NamedTuple

from threatnet.address import V4_MAPPED_FIRST, V4_MAPPED_LAST, format_ip, parse_ip
from threatnet.atomic import atomic_write
from threatnet.text import valid_utf8

if TYPE_CHECKING:
    import os

    from threatnet.envelope import Envelope
    from threatnet.language import ThreatMessage

DEFAULT_TIMEOUT = 3600
SYNC_SLACK = 2  # seconds on top of the block period, for start-up delays (as the original)
SNAPSHOT_VERSION = 1
_PREFIX64 = ~((1 << 64) - 1)
_SHARED_MAX = 4096  # distinct (nick, account, comment, host) tuples remembered for sharing

_Source = tuple[str, "str | None", str, str]  # (nick, account, comment, host)
_Row = tuple[int, float, _Source]  # (key, first_seen, source)


class Entry(NamedTuple):
    """One cached threat. ``ip`` is ``prefix/64`` for an aggregated IPv6 entry;
    ``expires_in`` is seconds left (<= 0 for an expired entry); ``host`` the reporter's
    ("" if not known)."""

    ip: str
    first_seen: float
    nick: str
    account: str | None
    comment: str
    expires_in: float
    key: int
    host: str = ""


class Stats(NamedTuple):
    """The original ThreatCache statistics; percentages are 0-100, rates per second."""

    size: int
    seen: int
    kept: int
    discard: int
    expired: int
    time_start: float
    time_current: float
    time_running: float
    percent_kept: float
    percent_discard: float
    rate_seen: float
    rate_kept: float


class LoadResult(NamedTuple):
    """What ``load`` did: entries added, entries dropped as expired, whether the
    listening start was carried over, and why the snapshot was ignored (or None)."""

    loaded: int
    expired: int
    carried_over: bool
    error: str | None


class ThreatCache:
    """The set of current threats, keyed by address (see docs/CONTRACT.md for keys).

    ``keep``, ``check``, ``len`` and iteration are correct without ``expire``
    ever being called: an entry past its time is treated as gone. ``expire``
    removes such entries and reports each kept threat exactly once; call it
    regularly (e.g. every few seconds) so memory is released and responders hear
    of expiry. First-seen times come from ``clock`` (not ``msg.created``) so that
    insertion order stays first-seen order. Not thread-safe.
    """

    __slots__ = ("_clock", "_timeout", "_aggregate_v6", "_index", "_base", "_head", "_keys",
                 "_times", "_sources", "_shared", "_pending", "_kept", "_discard", "_expired",
                 "_started", "_listening_since", "on_keep", "limit")
    name = "duplicate"

    def __init__(self, timeout: float = DEFAULT_TIMEOUT, clock: Callable[[], float] = time.time,
                 aggregate_v6: bool = False) -> None:
        self._clock = clock
        self._timeout = _check_timeout(timeout)
        self._aggregate_v6 = aggregate_v6
        self._index: dict[int, int] = {}  # key -> sequence number (column position + _base)
        self._base = 0
        self._head = 0  # first column position not yet expired
        self._keys: list[int | None] = []  # None: superseded by a later entry for the key
        self._times = array("d")
        self._sources: list[_Source] = []
        self._shared: dict[_Source, _Source] = {}
        self._pending: list[Entry] = []  # superseded entries, reported by the next expire()
        self._kept = self._discard = self._expired = 0
        self._started = self._listening_since = clock()
        # Called with the new Entry for every threat kept, whichever path kept it (e.g.
        # a host of responders); None costs the hot path one attribute test.
        self.on_keep: Callable[[Entry], None] | None = None
        # Current threats at most: keep() refuses new ones beyond it (0: no limit).
        self.limit = 0

    # -- the block period and synchronisation

    @property
    def timeout(self) -> float:
        """The block period in seconds; the channel topic may change it live."""
        return self._timeout

    @timeout.setter
    def timeout(self, value: float) -> None:
        self._timeout = _check_timeout(value)

    @property
    def listening_since(self) -> float:
        """When the agent started listening to the channel (for ``synced``)."""
        return self._listening_since

    def listen(self) -> None:
        """Restart the quiet period now, e.g. on rejoining the channel: while away
        the cache missed threats, so it must not vouch for what is new."""
        self._listening_since = self._clock()

    @property
    def quiet_left(self) -> float:
        """Seconds until ``synced``: a block period plus SYNC_SLACK of listening."""
        return max(0.0, self._listening_since + self._timeout + SYNC_SLACK - self._clock())

    @property
    def synced(self) -> bool:
        """True once the agent may submit threats of its own."""
        return self.quiet_left == 0

    # -- the filter

    def keep(self, msg: ThreatMessage, nick: str = "", account: str | None = None,
             host: str = "") -> bool | None:
        """True, recording the threat with its sender, if its IP is not current;
        False for a duplicate; None (not kept either) when ``limit`` threats are current."""
        key = msg.key
        if self._aggregate_v6 and not V4_MAPPED_FIRST <= key <= V4_MAPPED_LAST:
            key &= _PREFIX64
        now = self._clock()
        seq = self._index.get(key)
        if seq is not None:
            pos = seq - self._base
            if self._times[pos] + self._timeout > now:
                self._discard += 1
                return False
            # Expired but not yet swept: report it as expired, then record anew.
            self._pending.append(self._entry(pos, now))
            self._keys[pos] = None
        elif self.limit and self.full(self.limit):
            return None
        keys = self._keys
        self._index[key] = self._base + len(keys)
        keys.append(key)
        self._times.append(now)
        # One tuple per distinct source: a million threats from a few reporters then
        # cost one reference each (expire() bounds the table).
        source = (nick, account, msg.comment, host)
        self._sources.append(self._shared.setdefault(source, source))
        self._kept += 1
        if self.on_keep is not None:  # no address formatting unless aggregated
            ip = self._ip_text(key) if self._aggregate_v6 else msg.ip
            self.on_keep(Entry(ip, now, nick, account, msg.comment, self._timeout, key, host))
        return True

    def screen(self, msg: ThreatMessage, envelope: Envelope | None = None) -> str | None:
        """Chain filter: ``keep`` with the sender from the envelope, else "duplicate"."""
        if envelope is None:
            kept = self.keep(msg)
        else:
            kept = self.keep(msg, envelope.nick, envelope.account, envelope.host)
        return None if kept else self.name

    # -- reading

    def check(self, ip_or_key: str | int) -> Entry | None:
        """The current entry for an address (text or key), or None.

        Raises AddressError for text that is not a strict address.
        """
        key = parse_ip(ip_or_key) if isinstance(ip_or_key, str) else ip_or_key
        if self._aggregate_v6 and not V4_MAPPED_FIRST <= key <= V4_MAPPED_LAST:
            key &= _PREFIX64
        seq = self._index.get(key)
        if seq is None:
            return None
        pos = seq - self._base
        now = self._clock()
        if self._times[pos] + self._timeout <= now:
            return None
        return self._entry(pos, now)

    def remove(self, ip_or_key: str | int) -> Entry | None:
        """Take a current threat out now (withdrawn, forgotten, no longer wanted): the
        Entry removed, or None if it was not current. Raises AddressError for bad text."""
        entry = self.check(ip_or_key)  # an expired one is left to expire() to report
        if entry is not None:
            self._keys[self._index.pop(entry.key) - self._base] = None
        return entry

    def full(self, limit: int) -> bool:
        """Whether ``limit`` or more threats are current (cheap while far below it)."""
        return len(self._index) >= limit and len(self) >= limit

    def __len__(self) -> int:
        """The number of current entries."""
        head, end = self._head, self._expired_end(self._clock())
        unswept = end - head - self._keys[head:end].count(None)
        return len(self._index) - unswept

    def __iter__(self) -> Iterator[Entry]:
        """Current entries in first-seen order (from a copy: safe to keep() meanwhile)."""
        now = self._clock()
        rows = self._rows()
        timeout = self._timeout
        for key, first_seen, (nick, account, comment, host) in rows:
            if first_seen + timeout > now:
                yield Entry(self._ip_text(key), first_seen, nick, account, comment,
                            first_seen + timeout - now, key, host)

    def _rows(self) -> list[_Row]:
        """Every recorded, not yet swept row (key, first_seen, source), in column order."""
        head = self._head
        return [row for row in zip(self._keys[head:], self._times[head:], self._sources[head:])
                if row[0] is not None]

    def _entry(self, pos: int, now: float) -> Entry:
        key = self._keys[pos]
        first_seen = self._times[pos]
        nick, account, comment, host = self._sources[pos]
        return Entry(self._ip_text(key), first_seen, nick, account, comment,
                     first_seen + self._timeout - now, key, host)

    def _ip_text(self, key: int) -> str:
        if self._aggregate_v6 and not V4_MAPPED_FIRST <= key <= V4_MAPPED_LAST:
            return f"{format_ip(key)}/64"
        return format_ip(key)

    # -- expiry

    def _expired_end(self, now: float) -> int:
        """The first column position, from the head, whose entry is not expired by ``now``.

        Every entry shares one timeout, so first-seen order is expiry order and the
        walk can stop at the first unexpired entry.
        """
        times, timeout = self._times, self._timeout
        pos, end = self._head, len(times)
        while pos < end and times[pos] + timeout <= now:
            pos += 1
        return pos

    def expire(self) -> list[Entry]:
        """Remove expired entries and return them (oldest first), each exactly once."""
        now = self._clock()
        expired, self._pending = self._pending, []
        end = self._expired_end(now)
        for pos in range(self._head, end):
            key = self._keys[pos]
            if key is not None:  # superseded slots were reported when superseded
                expired.append(self._entry(pos, now))
                del self._index[key]
        self._head = end
        if end * 2 > len(self._keys):
            del self._keys[:end], self._times[:end], self._sources[:end]
            self._base += end
            self._head = 0
        self._expired += len(expired)
        if len(self._shared) > _SHARED_MAX:  # forgetting the table only loses future sharing
            self._shared.clear()
        return expired

    # -- statistics

    def stats(self) -> Stats:
        now = self._clock()
        seen = self._kept + self._discard
        running = now - self._started
        return Stats(
            size=len(self), seen=seen, kept=self._kept, discard=self._discard,
            expired=self._expired, time_start=self._started, time_current=now,
            time_running=running,
            percent_kept=100 * self._kept / seen if seen else 0.0,
            percent_discard=100 * self._discard / seen if seen else 0.0,
            rate_seen=seen / running if running > 0 else 0.0,
            rate_kept=self._kept / running if running > 0 else 0.0)

    # -- persistence

    def snapshot(self, path: str | os.PathLike[str]) -> None:
        """Save the current entries and the listening start as JSON, atomically.

        Raises OSError if the file cannot be written.
        """
        now = self._clock()
        timeout = self._timeout
        entries = [[format_ip(key), first_seen, *_text(source)]
                   for key, first_seen, source in self._rows()
                   if first_seen + timeout > now]
        atomic_write(path, json.dumps({
            "version": SNAPSHOT_VERSION, "saved_at": now,
            "listening_since": self._listening_since, "entries": entries,
        }, separators=(",", ":")))

    def load(self, path: str | os.PathLike[str], grace: float = 0.0) -> LoadResult:
        """Restore a ``snapshot``; never raises for a bad file.

        Entries that have expired by now are dropped; addresses already in the
        cache keep their entry. A missing file is not an error (nothing to
        restore); an unreadable or corrupt one changes nothing and is reported in
        ``LoadResult.error``.

        The quiet period: a restarted agent missed the channel while it was down,
        so normally it listens for a full block period again. But if the snapshot
        was saved less than ``grace`` seconds ago, the gap is accepted and the
        listening start is carried over from the snapshot (``carried_over``), so a
        quick restart does not silence the agent for an hour. ``grace=0`` never
        carries over.
        """
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return LoadResult(0, 0, False, None)
        except OSError as e:
            return LoadResult(0, 0, False, f"cannot read snapshot {path}: {e.strerror}")
        try:
            saved_at, since, rows = _decode(raw)
        except (ValueError, RecursionError) as e:
            return LoadResult(0, 0, False, f"corrupt snapshot {path}: {e}")

        now = self._clock()
        timeout = self._timeout
        present = set(self._index)
        fresh: list[_Row] = []
        expired = 0
        for key, first_seen, source in rows:
            if self._aggregate_v6 and not V4_MAPPED_FIRST <= key <= V4_MAPPED_LAST:
                key &= _PREFIX64
            first_seen = min(first_seen, now)  # a clock that ran ahead must not extend a block
            if first_seen + timeout <= now:
                expired += 1
            elif key not in present:
                present.add(key)
                fresh.append((key, first_seen, self._shared.setdefault(source, source)))
        self._rebuild(self._rows() + fresh)

        carried = 0 <= now - saved_at < grace and since < self._listening_since
        if carried:
            self._listening_since = since
        return LoadResult(len(fresh), expired, carried, None)

    def _rebuild(self, rows: list[_Row]) -> None:
        """Lay the columns out again in first-seen order (sequence numbers stay unique)."""
        rows.sort(key=itemgetter(1))
        self._base += len(self._keys)
        self._head = 0
        self._keys = [key for key, _, _ in rows]
        self._times = array("d", (first_seen for _, first_seen, _ in rows))
        self._sources = [source for _, _, source in rows]
        self._index = {key: self._base + pos for pos, key in enumerate(self._keys)}


def _check_timeout(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {value!r}")
    return value


def _decode(raw: bytes) -> tuple[float, float, list[_Row]]:
    """Validate a snapshot completely before anything is applied; ValueError if bad."""
    data = json.loads(raw)
    if not isinstance(data, dict) or data.get("version") != SNAPSHOT_VERSION:
        raise ValueError("not a version 1 Threat Cache snapshot")
    saved_at = _number(data.get("saved_at"), "saved_at")
    since = _number(data.get("listening_since"), "listening_since")
    entries = data.get("entries")
    if not isinstance(entries, list):
        raise ValueError("entries is not a list")
    rows: list[_Row] = []
    for n, item in enumerate(entries):
        # the host came later: a snapshot without it restores an empty one
        if not (isinstance(item, list) and len(item) in (5, 6)):
            raise ValueError(f"entry {n} is not [ip, first_seen, nick, account, comment, host]")
        ip, first_seen, nick, account, comment, host = (*item, "")[:6]
        if not (isinstance(ip, str) and isinstance(nick, str) and isinstance(comment, str)
                and (account is None or isinstance(account, str)) and isinstance(host, str)):
            raise ValueError(f"entry {n} has a field of the wrong type")
        try:
            key = parse_ip(ip)
        except ValueError as e:
            raise ValueError(f"entry {n}: {e}") from None
        rows.append((key, _number(first_seen, f"entry {n} first_seen"),
                     _text((nick, account, comment, host))))
    return saved_at, since, rows


def _text(source: _Source) -> _Source:
    """(nick, account, comment, host) as text that encodes: a lone surrogate (from a
    snapshot, or a test) would break every JSON or IRC writer it reached."""
    nick, account, comment, host = source
    if nick.isascii() and comment.isascii() and host.isascii() \
            and (account is None or account.isascii()):
        return source
    return (valid_utf8(nick), None if account is None else valid_utf8(account),
            valid_utf8(comment), valid_utf8(host))


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} is not a finite number")
    return float(value)
