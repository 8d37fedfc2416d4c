"""A connection that keeps failing is logged once, not at every retry.

Limnoria's driver retries a lost connection every few seconds (the lab's bots: at most
every 10 s) and logs each attempt: "Connecting to ...", why it failed (refused, or a
server certificate whose fingerprint is not the pinned one, with three lines of
advice), "Reconnecting to ... at ...". Left alone, a server that stays away, or one
that now shows another certificate, writes that every few seconds for as long as it
lasts. ``RepeatFilter`` passes the first of each such message and holds back the same
message (numbers aside) for ``window`` seconds; the first one logged after that says
how many were held back. Other messages are never touched.
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

# How Limnoria's driver log (supybot.drivers.Log) starts the messages of a retry. A
# disconnect ("Disconnect from") ends a connection that worked: each is logged.
DRIVER_MESSAGES = ("Connecting to ", "Error connecting to ", "Reconnecting to ",
                   "Certificate validation failed ")
WINDOW = 600.0  # seconds a repeated message is held back
_NUMBERS = re.compile(r"[0-9]+")
_KEYS_MAX = 64  # distinct messages remembered; more are forgotten (then logged again)


class RepeatFilter(logging.Filter):
    """Holds back a driver message logged less than ``window`` seconds after the same
    one (numbers, such as times and ports, aside)."""

    def __init__(self, window: float = WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window = window
        self._clock = clock
        self._seen: dict[str, tuple[float, int]] = {}  # message -> (logged at, held back)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if not text.startswith(DRIVER_MESSAGES):
            return True
        key = _NUMBERS.sub("#", text)
        now = self._clock()
        seen = self._seen.get(key)
        if seen is not None and 0 <= now - seen[0] < self.window:
            self._seen[key] = (seen[0], seen[1] + 1)
            return False
        if seen is not None and seen[1]:
            record.msg = (f"{text} (said {seen[1]} more times in the last "
                          f"{int(now - seen[0])} s, not logged)")
            record.args = ()
        if key not in self._seen and len(self._seen) >= _KEYS_MAX:
            self._seen.clear()
        self._seen[key] = (now, 0)
        return True


def fold_repeats(logger_name: str = "supybot") -> Callable[[], None]:
    """Put a RepeatFilter on Limnoria's logger (where the driver logs), once however
    many plugins ask. Returns an undo function for die()."""
    logger = logging.getLogger(logger_name)
    if any(isinstance(f, RepeatFilter) for f in logger.filters):
        return lambda: None
    repeats = RepeatFilter()
    logger.addFilter(repeats)
    return lambda: logger.removeFilter(repeats)
