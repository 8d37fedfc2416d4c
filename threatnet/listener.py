"""Event Listener: one ThreatNet channel's threat lines in, Verified Threats kept.

The proposal's Event Listener hears every line of a channel and keeps the threats
of senders who speak for it that are not current yet. For one channel it runs, in
order: the trust rule (voice, services accounts, or nobody at all: the signature is
the trust), the signature check when the channel requires signed lines, the discard
networks, and the Threat Cache. The block period is the topic's
(``threatnet://… block=N``), else the channel's setting. All of it is built from one
``ListenerSettings`` record; ``hear`` runs once per channel line.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from threatnet.cache import DEFAULT_TIMEOUT, Entry, ThreatCache
from threatnet.envelope import Trust
from threatnet.filter import Chain, Filter, NetworkFilter
from threatnet.response.responder import Threat
from threatnet.signature import REJECTIONS, KeyRing, RequireSignature
from threatnet.topic import TopicError, parse_topic

if TYPE_CHECKING:
    from threatnet.envelope import Envelope
    from threatnet.language import ThreatMessage

TRUST_MODES = ("voiced", "accounts", "all", "signed")
# What ``hear`` counts a line as, in the order status lines show them; the signature
# check's REJECTIONS follow while the channel requires signatures.
HEARD = ("kept", "duplicate", "filtered", "untrusted")


class ListenerSettings(NamedTuple):
    """One channel's listener settings, as the agent's configuration gives them."""

    block: float = DEFAULT_TIMEOUT  # seconds a threat stays current, unless the topic says
    trust: str = "voiced"  # one of TRUST_MODES
    accounts: tuple[str, ...] = ()  # services accounts trusted even when not voiced
    discard: tuple[str, ...] = ("BOGONS",)  # networks never kept (NetworkFilter syntax)
    require_signature: bool = False  # lines count only when validly signed (implied by
    #                                  trust "signed")
    casemapping: str | None = None  # the server's CASEMAPPING: services compare accounts so


class _TrustNobody:
    """A trust rule that nobody meets: "accounts" with no account named (fail closed)."""

    name = "untrusted"

    def screen(self, msg: ThreatMessage, envelope: Envelope | None = None) -> str | None:
        return self.name


class Listener:
    """The Event Listener of one channel: trust, signature, discard, Threat Cache."""

    def __init__(self, settings: ListenerSettings = ListenerSettings(),
                 keyring: KeyRing | None = None, clock: Callable[[], float] = time.time,
                 ) -> None:
        self.cache = ThreatCache(clock=clock)
        self.heard = dict.fromkeys(HEARD, 0)
        self.settings: ListenerSettings | None = None
        self.signature: RequireSignature | None = None  # while signatures are required
        self._clock = clock
        self._topic_block: int | None = None
        self._verify = Chain(())
        self._check = Chain(()).check
        self.configure(settings, keyring)

    def configure(self, settings: ListenerSettings, keyring: KeyRing | None = None) -> bool:
        """Use ``settings`` and ``keyring`` (the keys signatures are checked against; None:
        no key is trusted) from now on. True if the block period changed."""
        if self.signature is not None:
            self.signature.keyring = keyring or KeyRing()
        if settings == self.settings:
            return False
        self.settings = settings
        trusting: list[Filter] = []
        if settings.trust == "signed":
            pass  # no IRC-level trust: the signature is the trust
        elif settings.trust == "accounts" and not settings.accounts:
            trusting.append(_TrustNobody())
        else:
            trusting.append(Trust(settings.trust, settings.accounts,  # type: ignore[arg-type]
                                  settings.casemapping))
        if settings.require_signature or settings.trust == "signed":
            if self.signature is None:
                self.signature = RequireSignature(keyring or KeyRing(), self.cache.timeout,
                                                  clock=self._clock)
                for reason in REJECTIONS:
                    self.heard.setdefault(reason, 0)
            trusting.append(self.signature)
        else:
            self.signature = None
        discarding = [NetworkFilter("discard", settings.discard)] if settings.discard else []
        self._verify = Chain(trusting)
        self._check = Chain([*trusting, *discarding, self.cache]).check
        return self._apply_block()

    # -- the hot path

    def hear(self, envelope: Envelope) -> str | None:
        """A valid threat line heard in the channel: None if kept as a new Verified
        Threat, else why not (untrusted, a signature rejection, filtered, duplicate)."""
        reason = self._check(envelope.message, envelope)
        self.heard[reason or "kept"] += 1
        return reason

    def verify(self, msg: ThreatMessage, envelope: Envelope | None) -> str | None:
        """Whether this side vouches for the line's sender (trust rule and signature,
        not the discard networks or the cache): None if so, else the reason. What a
        Network Bridge asks before it relays or counts a line as current here."""
        return self._verify.check(msg, envelope)

    def keep(self, msg: ThreatMessage, nick: str, account: str | None) -> bool:
        """Record a threat said in the channel by this agent itself (its own report, a
        bridge's relay): servers do not echo it back. False if it was current."""
        return self.cache.keep(msg, nick, account)

    # -- the block period

    def set_topic(self, text: str | None) -> bool:
        """The channel topic changed: a threatnet:// topic sets the block period
        (block=, else the protocol's default), any other leaves it to the setting.
        True if the block period changed."""
        try:
            self._topic_block = parse_topic(text or "").block
        except TopicError:
            self._topic_block = None
        return self._apply_block()

    @property
    def block(self) -> float:
        """The block period in force, in seconds."""
        return self.cache.timeout

    def _apply_block(self) -> bool:
        old = self.cache.timeout
        self.cache.timeout = self._topic_block or self.settings.block  # type: ignore[union-attr]
        if self.signature is not None:  # a signature is good for one block period
            self.signature.max_age = self.cache.timeout
        return self.cache.timeout != old

    # -- what it keeps

    def threats(self) -> list[Threat]:
        """The current threats as responders see them."""
        return [self.threat(e) for e in self.cache]

    def threat(self, entry: Entry) -> Threat:
        """A cache Entry as responders see it."""
        return Threat(entry.key, entry.ip, entry.comment, entry.nick,
                      entry.first_seen + self.cache.timeout, 64 if "/" in entry.ip else 128)

    def expire(self) -> list[Entry]:
        """Drop what is no longer current; the entries dropped."""
        return self.cache.expire()

    def counts(self) -> dict[str, int]:
        """Lines heard by outcome: HEARD, then the signature rejections while required."""
        counts = {reason: self.heard.get(reason, 0) for reason in HEARD}
        if self.signature is not None:
            counts.update((reason, self.heard.get(reason, 0)) for reason in REJECTIONS)
        return counts
