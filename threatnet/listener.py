"""Event Listener: one ThreatNet channel's threat lines in, Verified Threats acted on.

The proposal's Event Listener hears every line of a channel and keeps the threats
of senders who speak for it that are not current yet. For one channel it runs, in
order: the trust rule (voice, services accounts, or nobody at all: the signature is
the trust), the signature check when the channel requires signed lines, the discard
networks, the protected networks (addresses no report may ever block: the IRC
server, this host, loopback, whitelisted agents), the size bound, and the Threat
Cache. The block period is the topic's (``threatnet://… block=N``), else the
channel's setting. A topic counts once it has held ``topic_hold`` seconds: the channel
bot reverts a topic nobody may set within about a second (and retries while the server
refuses), so a reverted topic never sets a block period, a quorum or any other word
here. All of it is built from one ``ListenerSettings`` record; ``hear`` runs once per
channel line.

Minimisation of harm. A threat is acted on (``on_act``: responders, bridges) once
``quorum`` distinct reporters (services accounts, else hosts) said it within its
block period; the quorum is the topic's ``quorum=N`` (default 1) unless a setting
overrides it. Below the quorum a threat is current (nobody repeats it) but not acted
on, and another reporter saying it is a corroboration, not a repeat. A threat can be
taken back before it expires (``on_remove``): forgotten by this listener's operator,
withdrawn network-wide by its reporter or a channel operator (``withdraw IP
reason``), or no longer wanted because the discard or protected networks changed.
When ``max_threats`` are current, new threats are refused (counted as "full"): a
flood can neither push real threats out nor exhaust memory.
"""
from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from threatnet.cache import DEFAULT_TIMEOUT, Entry, ThreatCache
from threatnet.envelope import Trust
from threatnet.filter import Chain, Filter, NetworkFilter
from threatnet.names import fold
from threatnet.response.responder import Threat
from threatnet.signature import (REJECTIONS, WITHDRAWAL, KeyRing, RequireSignature, Verified,
                                 strip_signature, verify)
from threatnet.tally import Histogram, PerMinute
from threatnet.topic import DEFAULT_QUORUM, TopicError, parse_topic

from threatnet.language import ThreatMessage

if TYPE_CHECKING:
    from threatnet.envelope import Envelope

TRUST_MODES = ("voiced", "accounts", "all", "signed")
# What ``hear`` counts a line as, in the order status lines show them; the signature
# check's REJECTIONS follow while the channel requires signatures, then the OCCASIONAL
# outcomes, when they happened.
HEARD = ("kept", "duplicate", "filtered", "untrusted")
OCCASIONAL = ("protected", "full", "corroborated")
WITHDRAWALS = ("withdrawn", "refused")
DEFAULT_MAX_THREATS = 100_000


class ListenerSettings(NamedTuple):
    """One channel's listener settings, as the agent's configuration gives them."""

    block: float = DEFAULT_TIMEOUT  # seconds a threat stays current, unless the topic says
    trust: str = "voiced"  # one of TRUST_MODES
    accounts: tuple[str, ...] = ()  # services accounts trusted even when not voiced
    discard: tuple[str, ...] = ("BOGONS",)  # networks never kept (NetworkFilter syntax)
    require_signature: bool = False  # lines count only when validly signed (implied by
    #                                  trust "signed")
    casemapping: str | None = None  # the server's CASEMAPPING: services compare accounts so
    protect: tuple[str, ...] = ()  # networks never kept or acted on, whoever reports them
    max_threats: int = DEFAULT_MAX_THREATS  # current threats at most; then new are refused
    quorum: int = 0  # distinct reporters before acting; 0: the topic's quorum= (default 1)
    topic_hold: float = 0.0  # seconds a new topic must stand before it counts (0: at once)


AGENTS_MAX = 1000  # agents whose kept threats kept_by counts: bounded memory


def reporter(account: str | None, host: str, casemapping: str | None = None) -> str:
    """Who reported a line, for the quorum: the services account, else the host."""
    return f"account:{fold(account, casemapping)}" if account else f"host:{host.lower()}"

class _TrustNobody:
    """A trust rule that nobody meets: "accounts" with no account named (fail closed)."""

    name = "untrusted"

    def screen(self, msg: ThreatMessage, envelope: Envelope | None = None) -> str | None:
        return self.name


class Listener:
    """The Event Listener of one channel: trust, signature, discard, protect, size,
    quorum and Threat Cache. ``on_act`` and ``on_remove`` tell the responders."""

    def __init__(self, settings: ListenerSettings = ListenerSettings(),
                 keyring: KeyRing | None = None, clock: Callable[[], float] = time.time,
                 ) -> None:
        self.cache = ThreatCache(clock=clock)
        self.heard = dict.fromkeys(HEARD + OCCASIONAL, 0)
        self.withdrawals = dict.fromkeys(WITHDRAWALS, 0)
        self.settings: ListenerSettings | None = None
        self.signature: RequireSignature | None = None  # while signatures are required
        self._on_act: Callable[[Entry], None] | None = None
        self.on_remove: Callable[[Entry], None] | None = None  # an acted-on threat taken back
        self._clock = clock
        self._keyring = KeyRing()
        self._topic: str | None = None  # the topic in force
        self._pending_topic: tuple[str | None, float] | None = None  # (text, set at)
        self._topic_block: int | None = None
        self._topic_quorum = DEFAULT_QUORUM
        self._quorum = DEFAULT_QUORUM
        self._trust = Chain(())
        self._wanted = Chain(())
        self._verify = Chain(()).check
        self._screen = Chain(()).check
        self._reporters: dict[int, list[str]] = {}  # key -> who said it, while quorum > 1
        self._waiting: set[int] = set()  # current keys below the quorum: not acted on
        # Report -> cached: from a threat's creation (a heard line: its time at the server,
        # IRCv3 server-time, else when the bot read it; our own: when it was submitted,
        # so the outbox wait counts) to the moment this cache keeps it.
        self.latency = Histogram()
        self.per_minute = PerMinute()  # threats kept per minute, the last hour
        # agent (its account, else its nick) -> threats of its this cache kept, since start
        self.kept_by: dict[str, int] = {}
        self.configure(settings, keyring)

    def configure(self, settings: ListenerSettings, keyring: KeyRing | None = None) -> bool:
        """Use ``settings`` and ``keyring`` (the keys signatures are checked against; None:
        no key is trusted) from now on. True if the block period changed. Threats the
        new discard or protected networks cover are taken back at once."""
        self._keyring = keyring or KeyRing()
        if self.signature is not None:
            self.signature.keyring = self._keyring
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
        self._trust = Chain(trusting)
        if settings.require_signature or settings.trust == "signed":
            if self.signature is None:
                self.signature = RequireSignature(self._keyring, self.cache.timeout,
                                                  clock=self._clock)
                for reason in REJECTIONS:
                    self.heard.setdefault(reason, 0)
            trusting.append(self.signature)
        else:
            self.signature = None
        wanted: list[Filter] = []
        if settings.discard or settings.protect:
            wanted.append(_Unwanted(settings.discard, settings.protect))
        self._wanted = Chain(wanted)
        self._verify = Chain(trusting).check
        self._screen = Chain([*trusting, *wanted]).check
        self._quorum = settings.quorum or self._topic_quorum
        self.cache.limit = settings.max_threats
        for entry in list(self.cache):
            if self._wanted.check(_message(entry)) is not None:
                self.remove(entry.key)
        self._act_waiting()
        return self._apply_block()

    def unwanted(self, msg: ThreatMessage) -> str | None:
        """Why a threat would never be kept here ("filtered": a discarded network,
        "protected"), or None."""
        return self._wanted.check(msg)

    # -- the hot path

    def hear(self, envelope: Envelope) -> str | None:
        """A valid threat line heard in the channel: None if kept as a new threat, else
        why not (untrusted, a signature rejection, filtered, protected, full,
        duplicate, or corroborated: a new reporter of a threat below its quorum)."""
        msg = envelope.message
        reason = self._screen(msg, envelope)
        if reason is None:
            reason = self._take(msg, envelope.nick, envelope.account, envelope.host)
        self.heard[reason or "kept"] += 1
        return reason

    def _take(self, msg: ThreatMessage, nick: str, account: str | None, host: str,
              ) -> str | None:
        """The cache's part: keep a new threat (the cache's on_keep acts on it at once
        without a quorum), or count a corroboration."""
        kept = self.cache.keep(msg, nick, account, host)
        key = msg.key
        if kept:
            now = self._clock()
            self.latency.observe(now - msg.created)
            self.per_minute.add(now)
            agent = account or nick
            if agent in self.kept_by or len(self.kept_by) < AGENTS_MAX:
                self.kept_by[agent] = self.kept_by.get(agent, 0) + 1
            if self._quorum > 1:
                self._reporters[key] = [
                    reporter(account, host, self.settings.casemapping)]  # type: ignore[union-attr]
                self._waiting.add(key)
            return None
        if kept is None:
            return "full"
        who = self._reporters.get(key)
        if who is None or key not in self._waiting:
            return "duplicate"
        name = reporter(account, host, self.settings.casemapping)  # type: ignore[union-attr]
        if name in who:
            return "duplicate"
        who.append(name)
        if len(who) >= self._quorum:
            self._act(key)
        return "corroborated"

    @property
    def on_act(self) -> Callable[[Entry], None] | None:
        """Called with each threat once it is acted on (responders)."""
        return self._on_act

    @on_act.setter
    def on_act(self, act: Callable[[Entry], None] | None) -> None:
        self._on_act = act
        self.cache.on_keep = self._kept if act is not None else None

    def _kept(self, entry: Entry) -> None:
        if self._quorum <= 1:  # else it waits for the quorum (_take)
            self._on_act(entry)  # type: ignore[misc]

    def verify(self, msg: ThreatMessage, envelope: Envelope | None) -> str | None:
        """Whether this side vouches for the line (trust rule and signature, and the
        quorum: the threat must be acted on here): None if so, else the reason. What
        a Network Bridge asks before it relays or counts a line as current here."""
        reason = self._verify(msg, envelope)
        if reason is None and msg.key in self._waiting:
            return "below quorum"
        return reason

    def keep(self, msg: ThreatMessage, nick: str, account: str | None, host: str = "",
             ) -> bool:
        """Record a threat said in the channel by this agent itself (its own report, a
        bridge's relay): servers do not echo it back. False if it was current and this
        was no corroboration."""
        return self._take(msg, nick, account, host) in (None, "corroborated")

    # -- the quorum

    @property
    def quorum(self) -> int:
        """Distinct reporters a threat needs before it is acted on."""
        return self._quorum

    def acted(self, key: int) -> bool:
        """Whether the threat at ``key`` is current and acted on."""
        return key not in self._waiting and self.cache.check(key) is not None

    def reporters(self, key: int) -> list[str]:
        """Who said a current threat (quorum identities, first first); [] if unknown."""
        return list(self._reporters.get(key, ()))

    def wants(self, key: int, who: str) -> bool:
        """Whether ``who`` saying the current threat at ``key`` would be a corroboration."""
        return key in self._waiting and who not in self._reporters.get(key, ())

    def _act(self, key: int) -> None:
        self._waiting.discard(key)
        entry = self.cache.check(key)
        if entry is not None and self._on_act is not None:
            self._on_act(entry)

    def _act_waiting(self) -> None:
        """The quorum may have dropped: act on what now meets it (never un-act)."""
        quorum = self.quorum
        for key in [k for k in self._waiting if len(self._reporters.get(k, ())) >= quorum]:
            self._act(key)

    # -- taking a threat back

    def remove(self, key: int) -> Entry | None:
        """Take the current threat at ``key`` back now (forgotten, withdrawn, no longer
        wanted); its responders are told. The Entry, or None if it was not current."""
        entry = self.cache.remove(key)
        if entry is None:
            return None
        acted = key not in self._waiting
        self._forget(key)
        if acted and self.on_remove is not None:
            self.on_remove(entry)
        return entry

    def withdraw(self, msg: ThreatMessage, envelope: Envelope) -> str:
        """A withdrawal line (``withdraw IP reason``, language.parse_withdrawal's
        ``msg``) heard in the channel: "withdrawn" if the threat was taken back, else
        why not. Its reporter may withdraw it (the same services account; without one
        the same nick and host; the same signing key where signatures are required),
        and so may a channel operator."""
        reason = self._trust.check(msg, envelope)
        entry = self.cache.check(msg.key) if reason is None else None
        if reason is None:
            if self.signature is not None:
                result = verify(msg, self._keyring, self._clock(), self.cache.timeout,
                                domain=WITHDRAWAL)
                reason = None if isinstance(result, Verified) else result
                if reason is None and not envelope.opped and entry is not None \
                        and _key_id(entry.comment) != result.key_id:  # type: ignore[union-attr]
                    reason = "not the reporter"
            if entry is None:
                reason = reason or "not current"
            elif reason is None and not envelope.opped and not self._reported_by(entry, envelope):
                reason = "not the reporter"
        if reason is None:
            self.remove(msg.key)
        self.withdrawals["refused" if reason else "withdrawn"] += 1
        return reason or "withdrawn"

    def _reported_by(self, entry: Entry, envelope: Envelope) -> bool:
        if self.signature is not None:
            return True  # the key decided (withdraw)
        casemapping = self.settings.casemapping  # type: ignore[union-attr]
        if entry.account:
            return bool(envelope.account) and \
                fold(envelope.account, casemapping) == fold(entry.account, casemapping)  # type: ignore[arg-type]
        return bool(entry.host) and envelope.nick == entry.nick and envelope.host == entry.host

    def _forget(self, key: int) -> None:
        self._reporters.pop(key, None)
        self._waiting.discard(key)

    # -- the block period

    def set_topic(self, text: str | None, since: float | None = None) -> bool:
        """The channel topic is now ``text``, set at ``since`` (default now; a joining
        agent has RPL_TOPICWHOTIME's time). It counts once it has held ``topic_hold``
        seconds (``settle``); the topic in force again drops a pending change (the
        channel bot reverted it). True if the block period changed now."""
        now = self._clock()
        if text == self._topic:
            self._pending_topic = None
            return False
        self._pending_topic = (text, now if since is None else min(since, now))
        return self.settle()

    @property
    def topic_pending(self) -> float | None:
        """Seconds until a pending topic change counts (None: none pending)."""
        if self._pending_topic is None:
            return None
        return max(0.0, self._pending_topic[1] + self.settings.topic_hold  # type: ignore[union-attr]
                   - self._clock())

    def settle(self) -> bool:
        """Let a pending topic count once it has held ``topic_hold`` seconds: a threatnet://
        topic sets the block period (block=, else the protocol's default) and the quorum
        (quorum=, else 1); any other leaves them to the settings. True if the block
        period changed."""
        if self._pending_topic is None or self.topic_pending:
            return False
        text, _ = self._pending_topic
        self._topic, self._pending_topic = text, None
        try:
            topic = parse_topic(text or "")
            self._topic_block, self._topic_quorum = topic.block, topic.quorum
        except TopicError:
            self._topic_block, self._topic_quorum = None, DEFAULT_QUORUM
        self._quorum = self.settings.quorum or self._topic_quorum  # type: ignore[union-attr]
        self._act_waiting()
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
        """The threats acted on, as responders see them."""
        waiting = self._waiting
        return [self.threat(e) for e in self.cache if e.key not in waiting]

    def threat(self, entry: Entry) -> Threat:
        """A cache Entry as responders see it."""
        return Threat(entry.key, entry.ip, entry.comment, entry.nick,
                      entry.first_seen + self.cache.timeout, 64 if "/" in entry.ip else 128)

    def expire(self) -> list[Entry]:
        """Drop what is no longer current; the entries dropped that were acted on."""
        acted = []
        for entry in self.cache.expire():
            if entry.key not in self._waiting:
                acted.append(entry)
            if self.cache.check(entry.key) is None:  # not renewed since
                self._forget(entry.key)
        return acted

    def counts(self) -> dict[str, int]:
        """Lines heard by outcome: HEARD, the signature rejections while required, then
        the OCCASIONAL outcomes that happened."""
        counts = {reason: self.heard.get(reason, 0) for reason in HEARD}
        if self.signature is not None:
            counts.update((reason, self.heard.get(reason, 0)) for reason in REJECTIONS)
        counts.update((reason, self.heard[reason]) for reason in OCCASIONAL
                      if self.heard.get(reason))
        return counts


class _Unwanted(NetworkFilter):
    """The discard ("filtered") and protected ("protected") networks as one filter: most
    lines are in neither, and pass on one test of the two merged."""

    def __init__(self, discard: tuple[str, ...], protect: tuple[str, ...]) -> None:
        super().__init__("discard", discard + protect)
        self._discard = NetworkFilter("discard", discard) if discard else None

    def screen(self, msg: ThreatMessage, envelope: Envelope | None = None) -> str | None:
        if not bisect_right(self._bounds, msg.key) & 1:
            return None
        if self._discard is not None and not self._discard.accepts(msg.key):
            return "filtered"  # as before protect existed: bogons stay "filtered"
        return "protected"


def _message(entry: Entry) -> ThreatMessage:
    return ThreatMessage(entry.ip, entry.comment, entry.first_seen, entry.key)


def _key_id(comment: str) -> str | None:
    """The key id of a signed comment's signature, or None."""
    token = strip_signature(comment)[1]
    return token.partition(".")[0] if token else None
