"""Threat Response host: runs responders off the caller's thread.

The caller (a plugin hook that must never block) only appends events to a
queue per responder. Each responder has its own worker thread, so a slow or
failing responder never holds up another. The worker folds queued events into
the responder's desired state, applies them as one batch at most once per the
responder's ``interval``, removes threats at their expiry even if nobody says
so, and retries a failed apply with capped exponential backoff, as a resync of
the whole desired state (the target's state is unknown after a failure).
"""
from __future__ import annotations

import heapq
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import NamedTuple, Union

from threatnet.response.responder import Responder, ResponderError, Threat

# Log formats use only %s: inside Limnoria, loggers are supybot.log.Logger, whose own
# format() knows no %d or %g (the arguments then shift into the wrong places).
log = logging.getLogger("threatnet.response")

BACKOFF_FIRST = 1.0  # seconds before the first retry; doubles per failure
BACKOFF_CAP = 300.0
_MAX_WAIT = 30.0  # longest sleep without looking at the clock (survives clock jumps)
_SLACK = 0.001  # seconds: expiry times computed twice from the same entry may differ a little


class _Expired(NamedTuple):
    key: int
    expires_at: float | None  # only a threat expiring by then is removed (None: any)


class _Snapshot(NamedTuple):
    threats: tuple[Threat, ...]


_Event = Union[Threat, _Expired, _Snapshot]


class ResponderStatus(NamedTuple):
    """How one responder is doing, for a status command."""

    name: str
    threats: int  # current threats it should hold
    pending: bool  # changes not yet applied
    applies: int  # successful applies so far
    failures: int  # consecutive failures (0 when healthy)
    last_error: str | None  # reason of the latest failure, None once it recovered
    retry_in: float  # seconds to the next retry (0 when healthy)
    errors: int = 0  # failed applies in all
    lag: float = 0.0  # seconds since the oldest change not yet applied (0 when idle)


class _Worker:
    """One responder's thread and state. Only ``post`` and ``idle`` are called from
    other threads; everything else runs on the worker thread."""

    def __init__(self, responder: Responder, clock: Callable[[], float],
                 backoff: tuple[float, float]) -> None:
        self.responder = responder
        self.clock = clock
        self.backoff_first, self.backoff_cap = backoff
        self.events: deque[_Event] = deque()
        self.cond = threading.Condition()
        self.stopping = False
        self.busy = False  # events taken but not yet applied (under cond)
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name=f"threatnet-response-{responder.name}")
        # Worker-thread state:
        self.state: dict[int, Threat] = {}
        self.heap: list[tuple[float, int]] = []  # (expires_at, key), stale rows skipped
        self.added: dict[int, Threat] = {}
        self.removed: dict[int, Threat] = {}  # last known threat of each removed key
        self.needs_resync = True  # the target may hold anything until the first resync
        self.not_before = 0.0
        self.failures = 0
        self.errors = 0
        self.applies = 0
        self.last_error: str | None = None
        # Lag: when the oldest change still queued (under cond) or folded but not yet
        # applied (worker state) arrived.
        self.queued_since: float | None = None
        self.unapplied_since: float | None = None

    # -- any thread

    def post(self, event: _Event) -> None:
        with self.cond:
            self.events.append(event)
            if self.queued_since is None:
                self.queued_since = self.clock()
            self.cond.notify_all()

    def idle(self) -> bool:
        """Nothing queued and nothing waiting to be applied (call under cond)."""
        return not self.events and not self.busy

    def status(self) -> ResponderStatus:
        with self.cond:
            pending = not self.idle()
            since = [t for t in (self.queued_since, self.unapplied_since) if t is not None]
        now = self.clock()
        retry = max(0.0, self.not_before - now) if self.failures else 0.0
        lag = max(0.0, now - min(since)) if pending and since else 0.0
        return ResponderStatus(self.responder.name, len(self.state), pending, self.applies,
                               self.failures, self.last_error, retry, self.errors, lag)

    # -- worker thread

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.events and not self.stopping:
                    timeout = self._timeout()
                    if timeout is not None and timeout <= 0:
                        break
                    self.cond.wait(timeout)
                stopping = self.stopping
                self.busy = True
                taken = len(self.events)  # folded by this step; later ones keep queued_since
                if self.queued_since is not None:
                    if self.unapplied_since is None or self.queued_since < self.unapplied_since:
                        self.unapplied_since = self.queued_since
                    self.queued_since = None
            try:
                self._step(stopping, taken)
            except Exception:  # never let the thread die
                log.exception("%s: internal error in the response worker", self.responder.name)
                self.not_before = self.clock() + self.backoff_first
            with self.cond:
                self.busy = self._dirty()
                if not self.busy:
                    self.unapplied_since = None  # nothing of it is left to apply
                self.cond.notify_all()
            if stopping:
                break
        try:
            self.responder.close()
        except Exception:
            log.exception("%s: error while closing", self.responder.name)

    def _timeout(self) -> float | None:
        now = self.clock()
        deadlines = []
        if self._dirty():
            deadlines.append(self.not_before)
        if self.heap:
            deadlines.append(self.heap[0][0])
        due = self._due()
        if due is not None:
            deadlines.append(max(due, self.not_before))
        if not deadlines:
            return None
        return min(min(deadlines) - now, _MAX_WAIT)

    def _due(self) -> float | None:
        try:
            return self.responder.due()
        except Exception:
            log.exception("%s: due() failed", self.responder.name)
            return None

    def _dirty(self) -> bool:
        return bool(self.needs_resync or self.added or self.removed)

    def _step(self, final: bool, taken: int) -> None:
        now = self.clock()
        events = self.events
        for _ in range(taken):  # only those queued by now: a flood cannot starve apply
            self._fold(events.popleft(), now)
        self._expire(now)
        due = self._due()
        wanted = self._dirty() or (due is not None and due <= now)
        if wanted and (now >= self.not_before or (final and not self.failures)):
            self._apply(now)

    def _fold(self, event: _Event, now: float) -> None:
        responder = self.responder
        if isinstance(event, Threat):
            key = event.key
            if event.expires_at > now and responder.accepts(key):
                self.state[key] = event
                heapq.heappush(self.heap, (event.expires_at, key))
                self.added[key] = event
                self.removed.pop(key, None)
                return
            event = _Expired(key, None)  # an already expired or filtered add removes
        if isinstance(event, _Expired):
            current = self.state.get(event.key)
            if current is None:
                return
            if event.expires_at is not None and current.expires_at > event.expires_at + _SLACK:
                return  # the report of an older entry that has since been renewed
            del self.state[event.key]
            self.added.pop(event.key, None)
            self.removed[event.key] = current
            return
        state = {t.key: t for t in event.threats
                 if t.expires_at > now and responder.accepts(t.key)}
        self.state = state
        self.heap = [(t.expires_at, k) for k, t in state.items()]
        heapq.heapify(self.heap)
        self.added.clear()
        self.removed.clear()
        self.needs_resync = True

    def _expire(self, now: float) -> None:
        heap, state = self.heap, self.state
        while heap and heap[0][0] <= now:
            expires_at, key = heapq.heappop(heap)
            threat = state.get(key)
            if threat is not None and threat.expires_at == expires_at:
                del state[key]
                self.added.pop(key, None)
                if not self.responder.expires_itself:
                    self.removed[key] = threat

    def _apply(self, now: float) -> None:
        responder = self.responder
        try:
            if self.needs_resync:
                responder.resync(list(self.state.values()), now)
            else:
                responder.update(list(self.added.values()), list(self.removed.values()), now)
        except Exception as e:
            self._failed(e)
            return
        self.added.clear()
        self.removed.clear()
        self.needs_resync = False
        self.unapplied_since = None
        self.applies += 1
        self.not_before = now + responder.interval
        if self.failures:
            log.warning("%s: recovered after %s failed attempt(s)", responder.name,
                        self.failures)
        self.failures = 0
        self.last_error = None

    def _failed(self, e: Exception) -> None:
        self.failures += 1
        self.errors += 1
        delay = min(self.backoff_cap, self.backoff_first * 2 ** (self.failures - 1))
        self.not_before = self.clock() + delay
        self.needs_resync = True  # the target's state is unknown now: redo all of it
        self.added.clear()
        self.removed.clear()
        reason = str(e) if isinstance(e, ResponderError) else f"{type(e).__name__}: {e}"
        repeated = reason == self.last_error
        self.last_error = reason
        log.log(logging.WARNING if repeated else logging.ERROR,
                "%s: failed (attempt %s, retrying in %s s): %s", self.responder.name,
                self.failures, f"{delay:.1f}", reason,
                exc_info=not isinstance(e, ResponderError) and not repeated)


class ThreatResponse:
    """Feeds threats to responders, each on its own worker thread.

    ``added``, ``expired`` and ``resync`` never block (beyond a short lock) and
    may be called from any thread. Call ``start()`` once and ``stop()`` at the end.
    A resync snapshot is taken on the caller's thread (the iterable is consumed
    there), so it may be a live view of a cache that is not thread-safe.
    """

    def __init__(self, responders: Iterable[Responder] = (), *,
                 clock: Callable[[], float] = time.time,
                 backoff: tuple[float, float] = (BACKOFF_FIRST, BACKOFF_CAP)) -> None:
        self.clock = clock
        self.backoff = backoff
        self._workers: list[_Worker] = []
        self._started = False
        for responder in responders:
            self.add(responder)

    @property
    def responders(self) -> list[Responder]:
        return [w.responder for w in self._workers]

    def add(self, responder: Responder, threats: Iterable[Threat] = ()) -> None:
        """Add a responder (before or after ``start``). Its first apply is a resync to
        ``threats`` (or to the ``start`` snapshot), clearing whatever the target held."""
        names = {w.responder.name for w in self._workers}
        if responder.name in names:
            raise ValueError(f"two responders named {responder.name!r}")
        worker = _Worker(responder, self.clock, self.backoff)
        self._workers.append(worker)
        if self._started:
            worker.post(_Snapshot(tuple(threats)))
            worker.thread.start()

    def start(self, threats: Iterable[Threat] = ()) -> None:
        """Start the workers; each first resyncs its responder to ``threats`` (the
        current cache), so stale entries left by an earlier run go. Once only."""
        if self._started:
            raise RuntimeError("ThreatResponse already started")
        self._started = True
        snapshot = _Snapshot(tuple(threats))
        for worker in self._workers:
            worker.post(snapshot)
            worker.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Apply what is pending (unless a responder is failing), close, and join."""
        for worker in self._workers:
            with worker.cond:
                worker.stopping = True
                worker.cond.notify_all()
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            if worker.thread.is_alive():
                worker.thread.join(max(0.0, deadline - time.monotonic()))
                if worker.thread.is_alive():
                    log.warning("%s: still busy at shutdown", worker.responder.name)

    def added(self, threat: Threat) -> None:
        """A threat was added (or renewed: same key, later ``expires_at``)."""
        for worker in self._workers:
            worker.post(threat)

    def expired(self, key: int, expires_at: float | None = None) -> None:
        """The threat with this key expired (or was withdrawn).

        With ``expires_at`` (the expired entry's own expiry) a threat that has been
        renewed since, with a later expiry, is kept: the cache may report an old
        entry's expiry after the renewal was already added.
        """
        event = _Expired(key, expires_at)
        for worker in self._workers:
            worker.post(event)

    def resync(self, threats: Iterable[Threat]) -> None:
        """Replace every responder's state with ``threats`` (e.g. the whole cache)."""
        snapshot = _Snapshot(tuple(threats))
        for worker in self._workers:
            worker.post(snapshot)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every responder has applied everything; False on timeout (e.g. a
        responder is failing and backing off)."""
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            with worker.cond:
                if not worker.cond.wait_for(worker.idle, max(0.0, deadline - time.monotonic())):
                    return False
        return True

    def status(self) -> list[ResponderStatus]:
        return [w.status() for w in self._workers]
