"""Threat Provider: this agent's own threats, from its log files or by hand, to a channel.

The one path for a threat of our own. ``submit`` refuses what must not be said
(``Refused``: away from the channel, quiet period, moderated channel, discarded or own
network, already current, already queued, a signing key that cannot sign), else
queues it in the network's Outbox, which paces every channel of one IRC connection.
``take`` (per Outbox) releases what the rate allows as lines ready to send: signed
when the channel is, and kept in the channel's cache from the moment they are said.

Nothing a feed finds is lost while the agent may not report (``HOLD``: away from the
channel, quiet period, moderated, the outbox full): such finds are held, oldest first,
at most ``HOLD_MAX`` and at most two block periods, and submitted once the agent may
report again, unless they are current by then. ``save`` and ``load`` keep the held
finds and where each feed is in its file across restarts.
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import NamedTuple

from threatnet.atomic import atomic_write
from threatnet.cache import Entry
from threatnet.crowdsec import CrowdSecFeed
from threatnet.feed import LogFeed, Position, parse_spec
from threatnet.filter import Chain, NetworkFilter
from threatnet.language import (ThreatError, ThreatMessage, format_message, format_withdrawal,
                                parse_message)
from threatnet.listener import Listener
from threatnet.outbox import Outbox
from threatnet.signature import Signer, Verified

HOLD_MAX = 1000  # finds held per channel; beyond, the oldest is dropped (overflow)
HOLD_BLOCKS = 2  # a find is held at most this many block periods, then dropped (expired)
# Refusals that last only while the agent may not report: a feed's find waits them out.
HOLD = frozenset({"away", "quiet", "moderated", "outbox"})
# What happens to held finds, counted: held (had to wait), released (submitted once
# the agent could report), current (dropped: another agent reported it meanwhile),
# expired (older than HOLD_BLOCKS block periods), overflow (more than HOLD_MAX held).
HOLD_OUTCOMES = ("held", "released", "current", "expired", "overflow")
STATE_VERSION = 1


class Refused(Exception):
    """A threat of our own that must not be posted (or withdrawn): ``kind`` (unsigned,
    away, quiet, moderated, filtered, own network, duplicate, not current) is counted,
    ``str(e)`` is the reason told to the operator."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


class ProviderSettings(NamedTuple):
    """One channel's provider settings."""

    own_networks: tuple[str, ...] = ()  # this agent's own addresses: never reported
    feeds: tuple[str, ...] = ()  # log files to report from: feed.parse_spec's syntax


class Held(NamedTuple):
    """A find waiting until the agent may report: ``kind`` is the refusal it waits out
    ("" for one found this poll, not refused yet)."""

    threat: ThreatMessage
    kind: str


class Restored(NamedTuple):
    """What ``load`` did: the feeds that went on from their saved position, those left
    at the end of their files because the state is older than a block period, the
    held finds taken back, and why the state was ignored (or None)."""

    resumed: list[str]
    stale: list[str]
    held: int
    error: str | None


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
        # "extractor[(options)]:/path" -> LogFeed (or CrowdSecFeed: the same interface)
        self.feeds: dict[str, LogFeed | CrowdSecFeed] = {}
        self.feed_errors: dict[str, str | None] = {}  # the last error of each, as told
        self.pending: dict[int, ThreatMessage] = {}  # key -> threat waiting in the outbox
        self.reported = 0
        self.refused: dict[str, int] = {}  # reports refused (by feeds, on release), by kind
        self.held: dict[int, Held] = {}  # key -> a find waiting to be submitted, oldest first
        self.holds = dict.fromkeys(HOLD_OUTCOMES, 0)  # what happened to held finds
        self.signer: Signer | None = None  # signs every line, when the channel is signed
        self.signer_error: str | None = None  # a key is configured but cannot sign: why
        self.open = True  # False while the agent is not in the channel: nothing is sent
        self.identity = ""  # who this agent is to the quorum (listener.reporter)
        self._clock = clock
        self._own = Chain(())
        self.configure(settings)

    def configure(self, settings: ProviderSettings) -> list[str]:
        """Use ``settings`` from now on; the feeds it started (closing those it dropped).
        Raises ValueError for a feed parse_spec refuses."""
        if settings == self.settings:
            return []
        new = {spec: parse_spec(spec) for spec in settings.feeds if spec not in self.feeds}
        self.settings = settings
        self._own = Chain([NetworkFilter("discard", settings.own_networks, name="own network")]
                          if settings.own_networks else [])
        for spec in set(self.feeds) - set(settings.feeds):
            self.feeds.pop(spec).close()
            self.feed_errors.pop(spec, None)
        for spec, feed in new.items():
            kind = CrowdSecFeed if feed.extractor == "crowdsec" else LogFeed
            self.feeds[spec] = kind(feed.path, feed.extractor, clock=self._clock,
                                    maxretry=feed.maxretry, findtime=feed.findtime)
        return list(new)

    # -- reporting

    def _screen(self, threat: ThreatMessage) -> str | None:
        """Why ``threat`` may never be reported: "own network", or what the listener
        would never keep ("filtered": the discard setting, "protected"), else None."""
        return self._own.check(threat) or self.listener.unwanted(threat)

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
        if not self.open:
            raise Refused("away", f"I am not in {self.channel} (kicked, parted or "
                                  "disconnected)")
        left = self.listener.cache.quiet_left
        if left:
            raise Refused("quiet", f"{self.channel} is in its quiet period: "
                                   f"{math.ceil(left)} s left")
        if moderated:
            raise Refused("moderated", f"{self.channel} is moderated (+m) and I am not "
                                       "voiced or opped there")
        reason = self._screen(threat)
        if reason == "filtered":
            raise Refused(reason, f"{threat.ip} is in a discarded network "
                                  f"({' '.join(self.listener.settings.discard)})")
        if reason == "own network":
            raise Refused(reason, f"{threat.ip} is in ownNetworks, never reported")
        if reason == "protected":  # every agent must reach it
            raise Refused(reason, f"{threat.ip} is protected in {self.channel} (the "
                                  "protect setting, or the IRC server and the agents the "
                                  "listener found): never reported")
        entry = self.listener.cache.check(threat.key)
        if entry is not None and not self.listener.wants(threat.key, self.identity):
            raise Refused("duplicate", f"{threat.ip} is already current in {self.channel}, "
                                       + reported_by(entry, self._clock()))
        if threat.key in self.pending:
            raise Refused("duplicate", f"{threat.ip} is already queued for {self.channel}")
        self.pending[threat.key] = threat
        dropped = self.outbox().put(Queued(self, threat))
        if dropped is not None:
            provider = dropped.provider
            provider.pending.pop(dropped.threat.key, None)
            provider._hold(dropped.threat, "outbox")

    def poll(self, *, moderated: bool = False) -> list[tuple[str, str | None]]:
        """Read the feeds and submit what they found, after the finds held from earlier
        polls (refusals are counted; finds the agent may not report yet are held).
        Returns the feeds whose error changed since the last poll: (spec, error or
        None)."""
        changed = []
        for spec, feed in self.feeds.items():
            for threat in feed.poll():
                self._found(threat)
            if feed.error != self.feed_errors.get(spec):
                self.feed_errors[spec] = feed.error
                changed.append((spec, feed.error))
        if self.held:
            self._submit_held(moderated)
        return changed

    @property
    def behind(self) -> bool:
        """Whether a feed stopped its last poll with more to read."""
        return any(feed.behind for feed in self.feeds.values())

    def _found(self, threat: ThreatMessage) -> None:
        """A feed's find joins the held ones (not held yet: kind ""), unless it can
        never be reported; beyond HOLD_MAX the oldest is dropped."""
        held = self.held
        reason = self._screen(threat)
        if reason is not None:
            self.count(reason)
        elif threat.key in held:  # as if queued already
            self.count("duplicate")
        else:
            held[threat.key] = Held(threat, "")
            while len(held) > HOLD_MAX:
                del held[next(iter(held))]
                self.holds["overflow"] += 1

    def _submit_held(self, moderated: bool) -> None:
        """Submit the finds, oldest first, as far as the outbox has room; the rest are
        held, and those too old to report dropped."""
        held, holds = self.held, self.holds
        oldest = self._clock() - HOLD_BLOCKS * self.listener.block
        for key in [k for k, h in held.items() if h.threat.created < oldest]:
            del held[key]
            holds["expired"] += 1
        box = self.outbox()
        room = box.maxlen - len(box)
        for key, (threat, kind) in list(held.items()):
            if room <= 0:
                self._wait(key, "outbox")
                continue
            try:
                self.submit(threat, moderated=moderated)
            except Refused as e:
                if e.kind in HOLD:  # it stops every find of this channel
                    for waiting in list(held):
                        self._wait(waiting, e.kind)
                    return
                del held[key]
                self.count(e.kind)
                if kind and e.kind == "duplicate":
                    holds["current"] += 1
                continue
            del held[key]
            room -= 1
            if kind:
                holds["released"] += 1

    def _wait(self, key: int, kind: str) -> None:
        """The held find at ``key`` waits out the refusal ``kind``."""
        threat, was = self.held[key]
        if not was:
            self.holds["held"] += 1
        self.held[key] = Held(threat, kind)

    def _hold(self, threat: ThreatMessage, kind: str) -> None:
        """A report the outbox dropped or released too late waits out ``kind`` with
        the feeds' finds."""
        if threat.key not in self.held:
            self._found(threat)
        if threat.key in self.held:
            self._wait(threat.key, kind)

    def waiting(self) -> dict[str, int]:
        """Finds held now, by the refusal they wait out."""
        kinds: dict[str, int] = {}
        for _, kind in self.held.values():
            kinds[kind] = kinds.get(kind, 0) + 1
        return kinds

    def count(self, kind: str) -> None:
        self.refused[kind] = self.refused.get(kind, 0) + 1

    def leave(self) -> None:
        """The agent is no longer in the channel (kicked, parted, disconnected): the
        feeds go on, their finds are held, and so is what the outbox releases."""
        self.open = False

    def rejoin(self, listener: Listener) -> None:
        """Back in the channel, whose cache is ``listener``'s now."""
        self.listener = listener
        self.open = True

    def close(self) -> None:
        """The plugin stops or the channel is no longer enabled: nothing more is sent,
        the feeds are closed."""
        self.open = False
        for feed in self.feeds.values():
            feed.close()

    # -- persistence

    def save(self, path: str) -> None:
        """Where each feed is in its file and the held finds, as JSON, atomically.
        Raises OSError if the file cannot be written."""
        feeds = {}
        for spec, feed in self.feeds.items():
            position = feed.position()
            if position is not None:
                feeds[spec] = list(position)
        held = [[threat.ip, threat.comment, threat.created, kind or "quiet"]
                for threat, kind in self.held.values()]
        atomic_write(path, json.dumps({"version": STATE_VERSION, "saved_at": self._clock(),
                                       "feeds": feeds, "held": held},
                                      separators=(",", ":")), mode=0o600)

    def load(self, path: str) -> Restored:
        """Take back what ``save`` wrote before a restart, before the first poll; never
        raises for a bad file (a missing one restores nothing). Feeds saved less than a
        block period ago go on from where they were, so lines written while the agent
        was down are read; after a longer gap they start at the end of their files,
        as what they hold is older than anything worth reporting. Held finds come back
        unless they are too old."""
        try:
            with open(path, "rb") as f:
                data = json.loads(f.read())
            saved_at, feeds, held = _decode_state(data)
        except FileNotFoundError:
            return Restored([], [], 0, None)
        except OSError as e:
            return Restored([], [], 0, f"cannot read {path}: {e.strerror}")
        except (ValueError, RecursionError) as e:
            return Restored([], [], 0, f"corrupt provider state {path}: {e}")
        now = self._clock()
        block = self.listener.block
        resumed, stale = [], []
        for spec, position in feeds.items():
            feed = self.feeds.get(spec)
            if feed is None:
                continue
            if not 0 <= now - saved_at <= block:
                stale.append(spec)
            elif feed.resume(position, saved_at):
                resumed.append(spec)
        oldest = now - HOLD_BLOCKS * block
        restored = 0
        for threat, kind in held:
            if oldest <= threat.created and threat.key not in self.held:
                self.held[threat.key] = Held(threat, kind)
                restored += 1
        return Restored(resumed, stale, restored, None)

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
        if not self.open:  # left the channel meanwhile: it waits for the rejoin
            self._hold(threat, "away")
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


def _decode_state(data: object) -> tuple[float, dict[str, Position],
                                        list[tuple[ThreatMessage, str]]]:
    """Validate a saved provider state completely; ValueError if it is bad."""
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        raise ValueError(f"not a version {STATE_VERSION} provider state")
    saved_at = data.get("saved_at")
    feeds, held = data.get("feeds"), data.get("held")
    if isinstance(saved_at, bool) or not isinstance(saved_at, (int, float)) \
            or not math.isfinite(saved_at):
        raise ValueError("saved_at is not a finite number")
    if not isinstance(feeds, dict) or not isinstance(held, list):
        raise ValueError("feeds is not an object or held not a list")
    positions = {}
    for spec, position in feeds.items():
        if not (isinstance(position, list) and len(position) == 3
                and all(type(n) is int and n >= 0 for n in position)):
            raise ValueError(f"feed {spec!r}: not [device, inode, offset]")
        positions[spec] = Position(*position)
    finds = []
    for n, item in enumerate(held):
        if not (isinstance(item, list) and len(item) == 4 and isinstance(item[0], str)
                and isinstance(item[1], str) and type(item[2]) in (int, float)
                and math.isfinite(item[2]) and item[3] in HOLD):
            raise ValueError(f"held find {n} is not [ip, comment, found at, refusal]")
        ip, comment, created, kind = item
        try:
            threat = parse_message(f"{ip} {comment}", float(created))
        except ThreatError as e:
            raise ValueError(f"held find {n}: {e}") from None
        finds.append((threat, kind))
    return float(saved_at), positions, finds


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
