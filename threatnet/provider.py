"""Threat Provider: this agent's own threats, from its log files or by hand, to a channel.

The one path for a threat of our own. ``submit`` refuses what must not be said
(``Refused``: quiet period, moderated channel, discarded or own network, already
current, already queued, a signing key that cannot sign), else queues it in the
network's Outbox, which paces every channel of one IRC connection. ``take`` (per
Outbox) releases what the rate allows as lines ready to send: signed when the
channel is, and kept in the channel's cache from the moment they are said.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import NamedTuple

from threatnet.cache import Entry
from threatnet.feed import LogFeed, parse_spec
from threatnet.filter import Chain, NetworkFilter
from threatnet.language import ThreatMessage, format_message, format_withdrawal, parse_message
from threatnet.listener import Listener
from threatnet.outbox import Outbox
from threatnet.signature import Signer, Verified

class Refused(Exception):
    """A threat of our own that must not be posted (or withdrawn): ``kind`` (unsigned,
    quiet, moderated, filtered, own network, duplicate, not current) is counted,
    ``str(e)`` is the reason told to the operator."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


class ProviderSettings(NamedTuple):
    """One channel's provider settings."""

    discard: tuple[str, ...] = ("BOGONS",)  # networks never reported (nor kept)
    own_networks: tuple[str, ...] = ()  # this agent's own addresses: never reported
    feeds: tuple[str, ...] = ()  # log files to report from: feed.parse_spec's syntax


class Provider:
    """The Threat Provider of one channel, reporting through ``outbox()`` (its
    network's Outbox) and keeping what it says in ``listener``'s cache."""

    def __init__(self, channel: str, listener: Listener,
                 outbox: Callable[[], Outbox[Queued]],
                 settings: ProviderSettings = ProviderSettings(),
                 clock: Callable[[], float] = time.time) -> None:
        self.channel = channel
        self.listener = listener
        self.outbox = outbox  # the network's Outbox, made when first needed
        self.settings: ProviderSettings | None = None
        self.feeds: dict[str, LogFeed] = {}  # "extractor[(options)]:/path" -> LogFeed
        self.feed_errors: dict[str, str | None] = {}  # the last error of each, as told
        self.pending: dict[int, ThreatMessage] = {}  # key -> threat waiting in the outbox
        self.reported = 0
        self.refused: dict[str, int] = {}  # reports refused (by feeds, on release), by kind
        self.signer: Signer | None = None  # signs every line, when the channel is signed
        self.signer_error: str | None = None  # a key is configured but cannot sign: why
        self.open = True  # False once the agent left the channel: nothing more is sent
        self.identity = ""  # who this agent is to the quorum (listener.reporter)
        self._clock = clock
        self._screen = Chain(())
        self.configure(settings)

    def configure(self, settings: ProviderSettings) -> list[str]:
        """Use ``settings`` from now on; the feeds it started (closing those it dropped).
        Raises ValueError for a feed parse_spec refuses."""
        if settings == self.settings:
            return []
        new = {spec: parse_spec(spec) for spec in settings.feeds if spec not in self.feeds}
        self.settings = settings
        discarding = [NetworkFilter("discard", settings.discard)] if settings.discard else []
        owning = [NetworkFilter("discard", settings.own_networks, name="own network")] \
            if settings.own_networks else []
        self._screen = Chain(discarding + owning)
        for spec in set(self.feeds) - set(settings.feeds):
            self.feeds.pop(spec).close()
            self.feed_errors.pop(spec, None)
        for spec, feed in new.items():
            self.feeds[spec] = LogFeed(feed.path, feed.extractor, clock=self._clock,
                                       maxretry=feed.maxretry, findtime=feed.findtime)
        return list(new)

    # -- reporting

    def report(self, ip: str, comment: str, *, moderated: bool = False) -> ThreatMessage:
        """``ip`` (one strict address) with ``comment`` as a threat of our own, through
        ``submit``. Raises ThreatError or Refused."""
        threat = parse_message(f"{ip} {comment}")
        self.submit(threat, moderated=moderated)
        return threat

    def submit(self, threat: ThreatMessage, *, moderated: bool = False) -> None:
        """Queue ``threat`` for the channel, or raise Refused. ``moderated``: the channel
        is +m and this agent is not voiced there."""
        if self.signer_error:
            raise Refused("unsigned", f"cannot sign reports to {self.channel}, so none are "
                                      f"sent: {self.signer_error}")
        left = self.listener.cache.quiet_left
        if left:
            raise Refused("quiet", f"{self.channel} is in its quiet period: "
                                   f"{math.ceil(left)} s left")
        if moderated:
            raise Refused("moderated", f"{self.channel} is moderated (+m) and I am not "
                                       "voiced or opped there")
        reason = self._screen.check(threat)
        if reason == "filtered":
            raise Refused(reason, f"{threat.ip} is in a discarded network "
                                  f"({' '.join(self.settings.discard)})")  # type: ignore[union-attr]
        if reason == "own network":
            raise Refused(reason, f"{threat.ip} is in ownNetworks, never reported")
        entry = self.listener.cache.check(threat.key)
        if entry is not None and not self.listener.wants(threat.key, self.identity):
            raise Refused("duplicate", f"{threat.ip} is already current in {self.channel}, "
                                       + reported_by(entry, self._clock()))
        if threat.key in self.pending:
            raise Refused("duplicate", f"{threat.ip} is already queued for {self.channel}")
        self.pending[threat.key] = threat
        dropped = self.outbox().put(Queued(self, threat))
        if dropped is not None:
            dropped.provider.pending.pop(dropped.threat.key, None)

    def poll(self, *, moderated: bool = False) -> list[tuple[str, str | None]]:
        """Read the feeds and submit what they found (refusals are counted). Returns the
        feeds whose error changed since the last poll: (spec, error or None)."""
        changed = []
        for spec, feed in self.feeds.items():
            for threat in feed.poll():
                try:
                    self.submit(threat, moderated=moderated)
                except Refused as e:
                    self.count(e.kind)
            if feed.error != self.feed_errors.get(spec):
                self.feed_errors[spec] = feed.error
                changed.append((spec, feed.error))
        return changed

    def count(self, kind: str) -> None:
        self.refused[kind] = self.refused.get(kind, 0) + 1

    def close(self) -> None:
        """The agent left the channel: queued reports are dropped, feeds closed."""
        self.open = False
        for feed in self.feeds.values():
            feed.close()

    def withdraw(self, ip: str, reason: str) -> str:
        """The line that takes back our own report of ``ip`` network-wide (signed when
        we sign), after taking it back here. Raises ThreatError, or Refused when we
        cannot sign or it is not current."""
        msg = parse_message(f"{ip} {reason}")
        if self.signer_error:
            raise Refused("unsigned", f"cannot sign for {self.channel}: {self.signer_error}")
        if self.listener.remove(msg.key) is None:
            raise Refused("not current", f"{msg.ip} is not a current threat in {self.channel}")
        signer = self.signer
        return format_withdrawal(msg) if signer is None else signer.withdraw(msg, self._clock())

    def _release(self, threat: ThreatMessage, nick: str, account: str | None,
                 host: str) -> str | None:
        """The line to say for a threat the outbox released, or None if it must not be
        said any more (left the channel, another agent was faster, the key went bad)."""
        self.pending.pop(threat.key, None)
        if not self.open:
            return None
        if self.listener.cache.check(threat.key) is not None \
                and not self.listener.wants(threat.key, self.identity):
            self.count("duplicate")
            return None
        if self.signer_error:  # the key went bad while this waited: never send unsigned
            self.count("unsigned")
            return None
        self.listener.keep(threat, nick, account, host)
        self.reported += 1
        signer = self.signer
        return format_message(threat) if signer is None else signer.sign(threat, self._clock())


class Queued(NamedTuple):
    """A threat waiting in an Outbox, with the Provider that submitted it."""

    provider: Provider
    threat: ThreatMessage


def take(outbox: Outbox[Queued], nick: str, account: str | None, host: str = "",
         ) -> list[tuple[Provider, str]]:
    """The lines ``outbox`` releases now, each with its Provider (its channel), said by
    ``nick`` (logged in as ``account``, from ``host``): send them in this order."""
    lines = []
    for provider, threat in outbox.take():
        line = provider._release(threat, nick, account, host)
        if line is not None:
            lines.append((provider, line))
    return lines


def reported_by(entry: Entry, now: float, verified: Verified | None = None) -> str:
    """Who reported a cache Entry, when, and until when it is current; with a
    signature.Verified for the entry, its key and the comment it signed."""
    who = entry.nick or "?"
    if entry.account:
        who += f" (account {entry.account})"
    if verified is not None:
        who += f", signed by key {verified.key_id},"
    text = entry.comment if verified is None else verified.comment
    comment = f': "{text}"' if text else ""
    return (f"reported by {who} {int(now - entry.first_seen)} s ago{comment}; "
            f"expires in {math.ceil(entry.expires_in)} s")
