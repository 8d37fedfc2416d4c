"""Conversation: questions and answers in a ThreatNet channel.

A ThreatNet channel carries threat lines, but people and agents also ask each other
things there: ``!tn status`` to every agent, ``ammobot: status`` to the original Perl
bot. Agents answer in the channel, Limnoria's as ``asker: …``, the Perl bot without the
asker's nick (``Online 74 seconds. 6 events at 0.1/s …``). The channel bot lets that
through without letting it become a way to chat:

- A *question* is a command to the channel's bots (every voiced agent that heard it
  may answer it) or a line that addresses a present agent by nick (``nick: …``,
  ``nick, …``: only that agent may answer). Channel operators may address anyone.
  Nobody answers their own question.
- An *answer* is a line from someone a question still open allows to answer: within
  ``window`` seconds of it and at most ``lines`` lines each. An unvoiced member (a
  listener that is not whitelisted) answers a command only as Limnoria does, starting
  with the asker's nick, one line per question.
- What makes a line a question or an answer never makes a threat line one: the
  channel bot judges a line that parses as a threat as a threat (moderation.py).

``Conversation`` keeps the open questions of one channel; nicks are compared under the
server's CASEMAPPING.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from threatnet.names import RFC1459, fold

MAX_OPEN = 64  # open questions kept per channel; the oldest go first
UNVOICED_LINES = 1  # lines an unvoiced member may answer a command with


class Talk(NamedTuple):
    """Whom a channel line speaks to, as the channel bot read it from the channel's state:
    ``command``, a command to the channel's bots, and who ``heard`` it (the members
    present; None: anyone may answer); ``to``, the present member it addresses by nick
    (``nick: …``), and whether that member is ``to_voiced`` (an agent). Neither: it
    speaks to nobody in particular (a threat line, or chat)."""

    command: bool = False
    to: str | None = None
    to_voiced: bool = False
    heard: frozenset[str] | None = None


SILENT = Talk()


def addressee(text: str) -> str | None:
    """The nick a line starts by addressing (``nick: …`` or ``nick, …``), or None."""
    first = text.split(None, 1)[0] if text[:1].strip() else ""
    return first[:-1] if len(first) > 1 and first[-1] in ":," else None


class _Question:
    __slots__ = ("asker", "to", "heard", "until", "answered")

    def __init__(self, asker: str, to: str | None, heard: frozenset[str] | None,
                 until: float) -> None:
        self.asker = asker  # folded nicks
        self.to = to  # None: every voiced agent that heard it may answer
        self.heard = heard  # None: anyone may answer
        self.until = until
        self.answered: dict[str, int] = {}  # answerer -> lines so far


class Conversation:
    """The questions still open in one channel and who has answered them."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._open: deque[_Question] = deque(maxlen=MAX_OPEN)

    def ask(self, asker: str, talk: Talk, window: float,
            casemapping: str | None = RFC1459) -> bool:
        """Open the question ``asker`` asked with a line that speaks as ``talk`` says, for
        answers within ``window`` seconds (0: no answers in the channel): the member it
        addresses may answer, or every voiced agent when it is a command addressed to
        no member. False if the line is no question (it addresses nobody, or its
        asker). Whom a question may address is the caller's rule (moderation.py)."""
        who = fold(asker, casemapping)
        to = fold(talk.to, casemapping) if talk.to is not None else None
        if to == who or (to is None and not talk.command):
            return False
        if window > 0:
            self.prune()
            heard = None if to is not None or talk.heard is None else \
                frozenset(fold(nick, casemapping) for nick in talk.heard)
            self._open.append(_Question(who, to, heard, self._clock() + window))
        return True

    def answer(self, nick: str, text: str, *, voiced: bool, lines: int,
               casemapping: str | None = RFC1459) -> bool:
        """Whether ``nick``'s line ``text`` answers an open question (and count it): it is
        the addressed member, or for a command a voiced agent that heard it, or an
        unvoiced member that heard it whose line starts with the asker's nick; each
        answers a question with at most ``lines`` lines (unvoiced: one)."""
        if not self._open:
            return False
        self.prune()
        who = fold(nick, casemapping)
        named = None
        for question in self._open:
            if question.asker == who or question.heard is not None and who not in question.heard:
                continue
            if question.to is not None:
                if question.to != who:
                    continue
                limit = lines
            elif voiced:
                limit = lines
            else:
                if named is None:
                    named = fold(addressee(text) or "", casemapping)
                if named != question.asker:
                    continue
                limit = min(lines, UNVOICED_LINES)
            count = question.answered.get(who, 0)
            if count < limit:
                question.answered[who] = count + 1
                return True
        return False

    def prune(self) -> None:
        """Forget the questions whose window has passed."""
        now = self._clock()
        while self._open and self._open[0].until <= now:
            self._open.popleft()
        if any(q.until <= now for q in self._open):  # windows of different lengths
            self._open = deque((q for q in self._open if q.until > now), maxlen=MAX_OPEN)

    def __len__(self) -> int:
        return len(self._open)
