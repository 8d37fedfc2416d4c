"""The HTTP API's long-poll: a GET /threatnet/events request with no change to answer
yet waits in its own connection thread, its connection slot given back to the server,
until changes arrive, its wait runs out or the API closes (see http.py's doc)."""
from __future__ import annotations

import time
from collections.abc import Callable

from threatnet.response.changes import ChangeLog, Read


class Waiters:
    """Long-polls waiting on ``changes``; ``len()`` is how many wait now."""

    def __init__(self, changes: ChangeLog) -> None:
        self.changes = changes
        self._waiting = 0
        self._closed = False
        self._flushes = 0  # flush() calls: a waiter seeing it change answers

    def __len__(self) -> int:
        return self._waiting

    def wait(self, read: Read, stream: str | None, network: str | None,
             channel: str | None, timeout: float, limit: int,
             waiting: Callable[[], None]) -> Read | None:
        """The first read after ``read`` with changes of ``network`` / ``channel`` (or
        a resync), or the last empty one once ``timeout`` runs out or on ``flush`` or
        ``close``; None if ``limit`` long-polls wait already. ``waiting`` is called
        once this one is counted, before it waits (to free the connection slot)."""
        cond = self.changes.cond
        with cond:
            if self._closed:
                return read
            if self._waiting >= limit:
                return None
            self._waiting += 1
            flushes = self._flushes
        try:
            waiting()
            deadline = time.monotonic() + timeout
            while not (read.changes or read.resync):
                since = read.next  # changes of other channels are skipped
                with cond:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._flushes != flushes:
                        break
                    cond.wait_for(lambda: self._flushes != flushes
                                  or self.changes.next > since, left)
                read = self.changes.read(since, stream, network=network, channel=channel)
            return read
        finally:
            with cond:
                self._waiting -= 1

    def flush(self) -> None:
        """Answer every waiting long-poll now (its server is about to stop)."""
        with self.changes.cond:
            self._flushes += 1
            self.changes.cond.notify_all()

    def close(self) -> None:
        """Answer every waiting long-poll now, and any later one at once."""
        with self.changes.cond:
            self._closed = True
        self.flush()
