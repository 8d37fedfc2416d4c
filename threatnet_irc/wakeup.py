"""Wake Limnoria's driver loop the moment there is work, not at its next poll.

Limnoria runs everything on one thread: ``drivers.run()`` calls each driver in turn,
and the socket driver blocks in ``select()`` on the IRC connections for up to
``supybot.drivers.poll`` seconds (default 1.0). ``schedule`` timers only run between
two selects, so neither a timer nor another thread can get a line sent sooner than
the next input from the server or the end of that select: a feed's threat waited
up to a second, and lowering ``drivers.poll`` to 0.02 to hide it cost ~1 % of a
core on an idle bot.

``Readable`` puts one more file descriptor in that select. The socket driver keeps
its connections in ``SocketDriver._instances`` and selects on ``inst.conn`` of each;
for a readable one it calls ``inst._read()``, then flushes every connection's queued
lines (``_sendIfMsgs``). So an object with that shape, appended to the list, gets
its ``ready()`` called on the driver's own thread as soon as its descriptor is
readable, and what it sends with ``irc.sendMsg`` leaves in the same loop iteration.
``_select`` drops an instance whose ``connected`` is False or whose
``conn._closed`` is True; ``irc`` None makes it skip our object when flushing. The
same code is in Limnoria 2023.11.18 (Debian 13) and 2026.10.4 (read, and the
integration tests run on it); docs/LIMNORIA.md has the measurements.

``Wakeup`` is a Readable socket pair: ``wake()`` (any thread) runs the callback on
the driver's thread at once, ``after(seconds)`` at a given time, through one timer
thread that only writes a byte. A bot on several networks has one socket driver per
network, and each selects in turn, with ``schedule``'s driver once between them: a
byte ends one select only. For a schedule event due now, ``keep_awake()`` leaves the
byte unread, so no select waits, until ``settle()`` (from that event) reads it.
"""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

from supybot import log


def _socket_driver():
    """Limnoria's socket driver class, or None if this Limnoria has none we know."""
    try:
        from supybot.drivers.Socket import SocketDriver
    except ImportError:
        return None
    instances = getattr(SocketDriver, "_instances", None)
    return SocketDriver if isinstance(instances, list) else None


class Readable:
    """Calls ``ready()`` on Limnoria's driver thread whenever ``fileno`` is readable
    (``ready`` must read what made it readable, or it is called again at once)."""

    connected = True  # what SocketDriver._select checks before selecting on us
    irc = None  # ... and before flushing our (non-existent) send queue

    def __init__(self, fileno: int, ready: Callable[[], None]) -> None:
        self._fileno = fileno
        self._ready = ready
        self._closed = False
        self.conn = self  # select() and _select see conn.fileno() and conn._closed
        driver = _socket_driver()
        self.active = driver is not None
        if driver is not None:
            driver._instances.append(self)

    def fileno(self) -> int:
        return self._fileno

    def _read(self) -> None:
        try:
            self._ready()
        except Exception:  # one failure must not stop the bot's only loop
            log.exception("Uncaught exception in a driver-loop callback")

    def close(self) -> None:
        self._closed = True
        driver = _socket_driver()
        if driver is not None and self in driver._instances:
            driver._instances.remove(self)


class Wakeup:
    """``callback`` on Limnoria's driver thread, as soon as another thread (or the
    timer) asks for it; several requests before it runs make one call."""

    def __init__(self, callback: Callable[[], None]) -> None:
        self._callback = callback
        self._rsock, self._wsock = socket.socketpair()
        self._rsock.setblocking(False)
        self._wsock.setblocking(False)
        self._readable = Readable(self._rsock.fileno(), self._ready)
        self.active = self._readable.active  # False: this Limnoria cannot be woken
        self._due: float | None = None  # time.monotonic() of the next timed wake
        self._awake: float | None = None  # keep_awake(): until when (monotonic) no select waits
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._timer, name="ThreatNet wakeup",
                                        daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Run the callback soon (any thread)."""
        try:
            self._wsock.send(b"\0")
        except (BlockingIOError, OSError):  # full: a wake-up is pending anyway; closed
            pass

    def keep_awake(self, limit: float = 1.0) -> None:
        """Keep every select of the driver loop from waiting until ``settle()`` (any
        thread; the event calls settle): for a schedule event due now, which runs once
        per loop. Two users share the state: one's settle may end the other's early,
        which then waits for a select as before (never longer). At most
        ``limit`` seconds: the schedule compares time.time(), so a clock stepped back
        would hold the event, and the loop would spin until then."""
        self._awake = time.monotonic() + limit
        self.wake()

    def settle(self) -> None:
        """Selects may wait again (the event ``keep_awake`` was for has run)."""
        self._awake = None

    def after(self, seconds: float) -> None:
        """Run the callback in ``seconds`` (earliest request wins; any thread)."""
        if seconds <= 0:
            self.wake()
            return
        when = time.monotonic() + seconds
        with self._cond:
            if self._due is None or when < self._due:
                self._due = when
                self._cond.notify()

    def _timer(self) -> None:
        with self._cond:
            while not self._stopped:
                if self._due is None:
                    self._cond.wait()
                    continue
                left = self._due - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                self._due = None
                self.wake()

    def _ready(self) -> None:
        if self._awake is not None:
            if time.monotonic() < self._awake:
                return
            self._awake = None
        try:
            while self._rsock.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        self._callback()

    def close(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(1.0)
        self._readable.close()
        self._rsock.close()
        self._wsock.close()
