"""ThreatNetCache: makes the bot a ThreatNet agent, an Event Listener with a Threat
Cache per channel, and a Threat Provider that reports from its own log files.

IRC events in, calls on threatnet/, IRC messages out. A channel line: doPrivmsg
builds the Envelope from irc.state and calls the channel's Listener once
(threatnet/listener.py); what it acts on reaches the responders through its hooks. A
threat of our own (tn report, a feed, the HTTP API): the channel's Provider
(threatnet/provider.py) refuses it or queues it; take() releases lines, sent here.
One instance serves every network, so all state is keyed by (network, channel). The
registry is read by the poll timer, never per channel line: doPrivmsg is the hot path.
The HTTP API (http.py) and the bridge glue (bridging.py) use only the public methods
under "the public surface".
"""
from __future__ import annotations

import math
import os
from typing import Callable, NamedTuple
from urllib.parse import quote

import supybot.callbacks as callbacks
import supybot.conf as conf
import supybot.ircmsgs as ircmsgs
import supybot.ircutils as ircutils
import supybot.schedule as schedule
import supybot.world as world
from supybot.commands import additional, optional, wrap

from threatnet_irc.accounts import Accounts, tags_count
from threatnet_irc.addressing import may_address
from threatnet_irc.clock import now as _now
from threatnet_irc.commandgroup import TnGroup, TnHelp
from threatnet_irc.protected import found
from threatnet_irc.reconnects import fold_repeats
from threatnet_irc.converters import may_administer, refuse  # registers the converters
from threatnet_irc.wakeup import Readable, Wakeup
from threatnet.address import parse_ip
from threatnet.atomic import remove_stale
from threatnet.bridge import Side
from threatnet.cache import Entry, Stats
from threatnet.crowdsec import CrowdSecFeed
from threatnet.envelope import new_envelope
from threatnet.language import (WITHDRAW, ThreatError, ThreatMessage, format_message,
                                parse_message, parse_withdrawal)
from threatnet.listener import Listener, ListenerSettings, reporter
from threatnet.outbox import Outbox
from threatnet.provider import Provider, ProviderSettings, Queued, Refused, reported_by, take
from threatnet.response.changes import ChangesResponder
from threatnet.response.host import ResponderStatus
from threatnet.retry import Retries
from threatnet.tally import MINUTES
from threatnet.watch import FeedWatch

from . import bridging
from . import crowdsec
from . import signing
from .http import ThreatNetHttp, read_settings
from .responders import ChannelResponses, describe, read_spec, route_logs

# Whitespace parse_message strips before the address.
_WS = frozenset(" \t\n\r\x0b\x0c")

_SENDERS_MAX = 1000  # memoised senders per channel; a PING clears them anyway
LIST_MAX = 10  # threats `tn list` names; the rest are counted
SERVED = ("servedChannel", "ThreatNetCache")  # the channel named, else the one listened to
# Joining a channel again after a kick or a refused join (474 banned, ...): first try
# after REJOIN_FIRST seconds, the wait doubling up to REJOIN_CAP; an INVITE joins at once.
REJOIN_FIRST, REJOIN_CAP = 10.0, 300.0
# schedule event names
_POLL, _EXPIRE, _SNAPSHOT = ("ThreatNetCache.poll", "ThreatNetCache.expire",
                             "ThreatNetCache.snapshot")


def _key(network, channel):
    return network, ircutils.toLower(channel)


def _connected(irc) -> bool:
    """Whether the network's connection is up (lines sent now can arrive); without a
    driver (test mode), it is."""
    driver = getattr(irc, "driver", None)
    return getattr(driver, "connected", True) and not irc.zombie


class Channel:
    """A ThreatNet channel the agent listens to on one network: the core's Listener and
    Provider with the glue around them (responders, signature files, the bridge). The
    plugin's public methods hand these to the HTTP API and the bridge glue."""

    def __init__(self, network: str, channel: str, outbox: Callable[[], Outbox[Queued]],
                 provider: Provider | None = None):
        self.network = network
        self.channel = channel
        self.listener = Listener(clock=_now)
        if provider is None:
            provider = Provider(channel, self.listener, outbox, clock=_now)
        else:  # the channel's provider from before a kick, part or disconnect
            provider.rejoin(self.listener)
        self.provider = provider
        self.signing = signing.ChannelSigning()
        self.responses: ChannelResponses | None = None  # set on attach (responders.py)
        self.bridge: Side | None = None  # its Side if a Network Bridge runs over it
        # nick -> (voiced, opped, account, account-tag on), memoised (see inFilter)
        self.senders: dict[str, tuple[bool, bool, str | None, bool]] = {}

    def respond(self, responses: ChannelResponses) -> None:
        """Tell ``responses`` of every threat the listener acts on from now on (heard, our
        own report, a bridge relay) or takes back, while it has responders running.
        Restored snapshots are not told one by one: responders start from, or resync
        to, the whole cache after a restore."""
        self.responses = responses
        listener = self.listener
        if responses.active:
            listener.on_act = lambda entry: responses.added(listener.threat(entry))
            listener.on_remove = lambda entry: responses.expired(entry.key)
        else:
            listener.on_act = listener.on_remove = None

    def expired(self, entries: list[Entry]) -> None:
        """The listener's expire() returned these entries."""
        responses = self.responses
        if entries and responses is not None and responses.active:
            for entry in entries:
                responses.expired(entry.key, entry.first_seen + self.listener.block)

    def block_changed(self) -> None:
        """Every expiry moved: the responders resync."""
        if self.responses is not None and self.responses.active:
            self.responses.resync(self.listener.threats())


def _quorum(st: Channel, key: int, short: bool = False) -> str:
    """The quorum of a current threat, when there is one: "; 2 of 3 reports: ..."."""
    quorum, reporters = st.listener.quorum, st.listener.reporters(key)
    if quorum <= 1 or not reporters:
        return ""
    if short:
        return "" if len(reporters) >= quorum else f", {len(reporters)} of {quorum}"
    state = "acted on" if st.listener.acted(key) else "not acted on yet"
    return (f"; {len(reporters)} of {quorum} reports ({state}): "
            + ", ".join(r.partition(":")[2] for r in reporters))


def _held(provider: Provider) -> str:
    """What the provider holds and held: "waiting 2 (quiet 2), released 5, current 1,
    expired 0, overflow 0", or "none" if it never had to hold a find."""
    waiting = provider.waiting()
    if not waiting and not provider.holds["held"]:
        return "none"
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(waiting.items()))
    outcomes = ", ".join(f"{k} {v}" for k, v in provider.holds.items() if k != "held")
    return f"waiting {sum(waiting.values())}{f' ({kinds})' if kinds else ''}, {outcomes}"


class ChannelStatus(NamedTuple):
    """A snapshot of one channel for status lines and metrics (taken on the main loop)."""

    network: str
    channel: str
    heard: dict[str, int]  # lines by outcome (Listener.heard)
    cache: Stats
    block: float
    quiet_left: float
    reported: int
    refused: dict[str, int]
    pending: int
    held: dict[str, int]  # finds held now, by the refusal they wait out
    holds: dict[str, int]  # what happened to held finds (Provider.holds)
    feeds: list[tuple[str, dict[str, int], str | None]]  # (spec, counters, error)
    responders: list[ResponderStatus]
    problems: list[tuple[str, str]]  # responders not started: (name, reason)
    withdrawals: dict[str, int]  # withdrawal lines heard: withdrawn, refused
    quorum: int
    bridged: bool  # a Network Bridge runs over it
    latency: list[tuple[str, int]]  # report -> cached: cumulative buckets (Histogram)
    latency_sum: float


class StatusPage(NamedTuple):
    """A snapshot for the status page (plugin.page)."""

    now: float
    channels: list[ChannelStatus]
    threats: list[Found]  # newest first
    per_minute: list[int]  # threats kept per minute, all channels, oldest first, now last
    agents: list[tuple[str, int, int]]  # (agent, current threats, kept since start)


class Found(NamedTuple):
    """A current threat in one channel (``check``)."""

    network: str
    channel: str
    entry: Entry
    expires_at: float


class ThreatNetCache(TnHelp, callbacks.Plugin):
    """Makes the bot a ThreatNet agent: it keeps a Threat Cache of every
    enabled channel (plugins.ThreatNetCache.enable) and can report threats of
    its own, by command or from log files; responds to threats (DNSBL,
    firewall, command) and serves them over HTTP, CrowdSec's bouncer API
    included. Reporting, forgetting and the feeds and responders of a channel need
    the #channel,threatnet capability (or admin); bouncer keys need admin."""
    threaded = False
    # Limnoria's ignores (defaultIgnore, the command-flood ignore) are about commands:
    # a voiced agent that is ignored still speaks for the channel. Command handling
    # (Owner) still honours them.
    noIgnore = True

    def __init__(self, irc):
        super().__init__(irc)
        self.tn.parent = self.tn.bridge.parent = self.tn.bouncer.parent = self
        self.bouncer_keys = crowdsec.Keys(crowdsec.keys_path())  # CrowdSec bouncers' keys
        if self.bouncer_keys.error:
            self.log.error("CrowdSec bouncers: %s", self.bouncer_keys.error)
        self._channels: dict[tuple[str, str], Channel] = {}  # (network, lowered channel)
        self._joined: dict[tuple[str, str], Channel] = {}  # (network, channel as joined)
        # (network, lowered channel) -> the provider of an enabled channel the agent is
        # not in right now (kicked, parted, disconnected): its feeds go on, finds held
        self._away: dict[tuple[str, str], Provider] = {}
        self._outboxes: dict[str, Outbox[Queued]] = {}  # network -> its reports' Outbox
        self._addressing: dict = {}  # may_address's settings cache
        self._accounts = Accounts()  # who is logged in as whom, as services say
        self._rejoins: dict[str, Retries[str]] = {}  # network -> channels to join again
        # (network, lowered channel) -> when its topic was set (RPL_TOPICWHOTIME)
        self._topic_times: dict[tuple[str, str], float] = {}
        self.bridging = bridging.Bridging(self)  # before _sync: it marks bridged channels
        # (network, lowered channel) -> ChannelResponses, kept on part
        self._responses: dict[tuple[str, str], ChannelResponses] = {}
        self._http: ThreatNetHttp | None = None  # while plugins.ThreatNetCache.http.enable
        self._unroute_logs = route_logs()
        self._unfold_repeats = fold_repeats()  # a failing reconnect is logged once
        # Feeds are read when written and outboxes released when due, on the driver's
        # thread, without waiting for pollInterval or supybot.drivers.poll (wakeup.py).
        self._wakeup = Wakeup(self._fast)
        self._watch: FeedWatch | None = None  # inotify on the feeds' directories
        self._watch_readable: Readable | None = None
        self._watch_state = ""  # the watch's state as last logged
        self._polled_only = False  # no inotify here (said once): the poll timer reads feeds
        self._sync_http()
        self._sync()  # channels already joined, after a reload
        schedule.addPeriodicEvent(self._poll, self.registryValue("pollInterval"), _POLL,
                                  now=False)
        schedule.addPeriodicEvent(self._expire, self.registryValue("expireInterval"), _EXPIRE,
                                  now=False)
        schedule.addPeriodicEvent(self._flush, self.registryValue("snapshotInterval"),
                                  _SNAPSHOT, now=False)
        world.flushers.append(self._flush)

    def die(self):
        for name in (_POLL, _EXPIRE, _SNAPSHOT):
            try:
                schedule.removePeriodicEvent(name)
            except KeyError:  # running right now: a Ctrl-C landed inside the timer
                pass
        self.bridging.die()
        self._wakeup.close()
        if self._watch is not None:
            self._watch_readable.close()
            self._watch.close()
        world.flushers.remove(self._flush)
        self._close_http()
        self._flush()
        for st in self._channels.values():
            st.provider.close()
        for provider in self._away.values():
            provider.close()
        for responses in self._responses.values():
            responses.stop()
        self._unroute_logs()
        self._unfold_repeats()
        super().die()

    # -- the public surface of the HTTP API and the bridge glue (main loop only)

    def channel(self, network: str, channel: str) -> Channel | None:
        """The channel listened to on ``network`` (any spelling of its name), or None."""
        return self._channels.get(_key(network, channel))

    def channels(self, network: str | None = None, channel: str | None = None,
                 ) -> list[Channel]:
        """The channels listened to, on ``network`` and named ``channel`` if given."""
        return [st for st in self._channels.values()
                if (network is None or st.network == network)
                and (channel is None or ircutils.strEqual(st.channel, channel))]

    def check(self, key: int, network: str | None = None, channel: str | None = None,
              ) -> list[Found]:
        """Where ``key`` is a current threat."""
        found = []
        for st in self.channels(network, channel):
            entry = st.listener.cache.check(key)
            if entry is not None:
                found.append(Found(st.network, st.channel, entry,
                                   entry.first_seen + st.listener.block))
        return found

    def report(self, irc, st: Channel, ip: str, comment: str) -> tuple[ThreatMessage, bool]:
        """``ip`` (one strict address) with ``comment`` as a threat of our own in ``st``:
        (the threat, whether it waits in the outbox). Raises ThreatError or Refused."""
        threat = st.provider.report(ip, comment, moderated=self._moderated(irc, st))
        self._drain(irc, self._outbox(irc.network))
        return threat, threat.key in st.provider.pending

    def status(self) -> list[ChannelStatus]:
        """A snapshot of every channel listened to."""
        result = []
        for st in self._channels.values():
            listener, provider, responses = st.listener, st.provider, st.responses
            result.append(ChannelStatus(
                st.network, st.channel, dict(listener.heard), listener.cache.stats(),
                listener.block, listener.cache.quiet_left, provider.reported,
                dict(provider.refused), len(provider.pending), provider.waiting(),
                dict(provider.holds),
                [(spec, feed.stats(), feed.error) for spec, feed in provider.feeds.items()],
                responses.status() if responses is not None else [],
                list(responses.problems) if responses is not None else [],
                dict(listener.withdrawals), listener.quorum, st.bridge is not None,
                listener.latency.cumulative(), listener.latency.sum))
        return result

    def guard(self):
        """ThreatNetGuard on this bot, if loaded (one instance serves every network)."""
        for irc in world.ircs:
            guard = irc.getCallback("ThreatNetGuard")
            if guard is not None:
                return guard
        return None

    def page(self) -> StatusPage:
        """What the status page shows (status.py): every channel's snapshot, its current
        threats, threats kept per minute over the last hour, and the agents."""
        now = _now()
        channels = self.status()
        threats, per_minute = [], [0] * MINUTES
        agents: dict[str, list[int]] = {}  # agent -> [current threats, kept since start]
        for st in self._channels.values():
            listener = st.listener
            for entry in listener.cache:
                threats.append(Found(st.network, st.channel, entry,
                                     entry.first_seen + listener.block))
                agents.setdefault(entry.account or entry.nick or "?", [0, 0])[0] += 1
            for agent, kept in listener.kept_by.items():
                agents.setdefault(agent, [0, 0])[1] += kept
            per_minute = [a + b for a, b in zip(per_minute, listener.per_minute.series(now),
                                                strict=True)]
        threats.sort(key=lambda f: f.entry.first_seen, reverse=True)
        return StatusPage(now, channels, threats, per_minute,
                          sorted(((name, c, k) for name, (c, k) in agents.items()),
                                 key=lambda a: (-a[2], -a[1], a[0])))

    def outboxes(self) -> dict[str, dict[str, int]]:
        """Each network's outbox counters."""
        return {network: box.stats() for network, box in self._outboxes.items()}

    def mirrors(self, network: str | None = None, channel: str | None = None,
                ) -> list[ChangesResponder]:
        """The channels' mirrors that feed the HTTP API's change log (any thread)."""
        found = []
        for responses in tuple(self._responses.values()):
            mirror = responses.changes
            if mirror is not None and (network is None or mirror.network == network) \
                    and (channel is None or ircutils.strEqual(mirror.channel, channel)):
                found.append(mirror)
        return found

    # -- the listener (hot path)

    def doPrivmsg(self, irc, msg):
        # The hot path: every channel line of every network. Cheap exits first,
        # no registry reads, no logging, no IRC case folding for known senders.
        try:
            text = msg.args[1]
        except IndexError:
            return
        # Chatter exits here: a strict address has a "." within its first four
        # characters (IPv4: 1-3 digit octet) or a ":" within its first five (IPv6:
        # 0-4 digit group), unless the line starts with whitespace.
        if not text or (text[0] not in _WS and "." not in text[1:4] and ":" not in text[:5]):
            if text[:1] in "wW" and text[:9].lower() == f"{WITHDRAW} ":
                self._withdrawal(irc, msg)
            return
        channel = msg.channel
        network = msg.tagged("receivedOn")  # = irc.network, without the proxy's __getattr__
        st = self._joined.get((network, channel))
        if st is None:
            if channel is None or network is None:
                return
            st = self._channels.get(_key(network, channel))  # spelled another way
            if st is None:
                return
        try:
            threat = parse_message(text, msg.time)  # None for a locally built msg: now
        except ThreatError:
            return
        nick = msg.nick
        sender = st.senders.get(nick)
        if sender is None:
            sender = self._sender(irc, st, nick)
        voiced, opped, account, tagged = sender
        tags = msg.server_tags
        if tagged:  # with account-tag, untagged means logged out; without, tags lie
            account = tags.get("account") or None
        envelope = new_envelope((threat, nick, account, msg.host, st.channel, st.network,
                                 voiced, opped))
        st.listener.hear(envelope)
        if st.bridge is not None:
            self.bridging.heard(st, envelope)

    def _withdrawal(self, irc, msg) -> None:
        """A ``withdraw IP reason`` line in a channel listened to: the listener decides."""
        st = self.channel(irc.network, msg.channel or "")
        if st is None:
            return
        try:
            withdrawn = parse_withdrawal(msg.args[1], msg.time)
        except ThreatError:
            return
        voiced, opped, account, tagged = self._sender(irc, st, msg.nick)
        if tagged:
            account = msg.server_tags.get("account") or None
        outcome = st.listener.withdraw(withdrawn, new_envelope((
            withdrawn, msg.nick, account, msg.host, st.channel, st.network, voiced, opped)))
        self.log.info("%s on %s: %s withdrew %s: %s", st.channel, st.network, msg.nick,
                      withdrawn.ip, outcome)

    def own_account(self, irc) -> str | None:
        """The services account the bot itself is logged in to on ``irc``'s network."""
        return self._accounts.get(irc.network, irc.nick)

    def _sender(self, irc, st: Channel, nick: str) -> tuple[bool, bool, str | None, bool]:
        """(voiced, opped, account, account-tag on) of a sender, memoised until the
        next message that is not a channel line (see inFilter)."""
        state = irc.state
        users = state.channels.get(st.channel)
        account = self._accounts.get(irc.network, nick)
        tagged = tags_count(irc)
        if users is None:
            sender = (False, False, account, tagged)
        else:
            sender = (users.isVoice(nick) or users.isHalfop(nick), users.isOp(nick), account,
                      tagged)
        if len(st.senders) >= _SENDERS_MAX:
            st.senders.clear()
        st.senders[nick] = sender
        return sender

    def inFilter(self, irc, msg):
        if msg.command != "PRIVMSG":
            # Any message but a channel line (MODE, JOIN, NICK, ACCOUNT, WHO replies,
            # ...) may change who is voiced, opped or logged in: forget the memo.
            self._accounts.feed(irc, msg)
            for st in self._channels.values():
                st.senders.clear()
        elif msg.channel is not None and len(msg.args) > 1:
            may_address(irc, msg, self._addressing)  # spares Owner its costly test
        return msg

    # -- channel membership and topic

    def do366(self, irc, msg):
        """End of NAMES: joined, with the topic and who is voiced known."""
        if len(msg.args) > 1 and msg.args[1] in irc.state.channels:
            self._attach(irc, msg.args[1])

    def doTopic(self, irc, msg):
        if len(msg.args) > 1:
            self._topic(irc, msg.args[0], msg.args[1])

    def do332(self, irc, msg):
        """RPL_TOPIC, sent on join."""
        if len(msg.args) > 2:
            self._topic(irc, msg.args[1], msg.args[2])

    def do333(self, irc, msg):
        """RPL_TOPICWHOTIME, after RPL_TOPIC: when the topic was set, for topicHold."""
        if len(msg.args) > 3 and msg.args[3].isdigit():
            key = _key(irc.network, msg.args[1])
            if len(self._topic_times) > 1000:
                self._topic_times.clear()
            self._topic_times[key] = float(msg.args[3])
            st = self._channels.get(key)
            if st is not None:
                self._topic(irc, st.channel, irc.state.channels[st.channel].topic)

    def _topic(self, irc, channel: str, text: str) -> None:
        """The topic the channel shows now: it counts once it held topicHold seconds."""
        st = self.channel(irc.network, channel)
        if st is not None:
            since = self._topic_times.pop(_key(irc.network, channel), None)
            self._settled(st, st.listener.set_topic(text, since))

    def _settled(self, st: Channel, changed: bool) -> None:
        if changed:
            self.log.info("%s on %s: the topic held, block period now %s s", st.channel,
                          st.network, st.listener.block)
            st.block_changed()

    def doPart(self, irc, msg):
        if msg.args and msg.nick and ircutils.strEqual(msg.nick, irc.nick):
            for channel in msg.args[0].split(","):
                self._detach(_key(irc.network, channel))

    def doKick(self, irc, msg):
        # One KICK may name several users (as irc.state reads it: one channel).
        if len(msg.args) > 1 and any(ircutils.strEqual(user, irc.nick)
                                     for user in msg.args[1].split(",")):
            self._detach(_key(irc.network, msg.args[0]))
            self._cannot_join(irc, msg.args[0], f"kicked by {msg.nick}: {msg.args[-1]}")

    # -- staying in the channels it listens to

    def _wants(self, irc, channel: str) -> bool:
        """Whether the bot is to be in ``channel`` (supybot.networks.<net>.channels) and
        listen there."""
        return any(ircutils.strEqual(c, channel)
                   for c in conf.supybot.networks.get(irc.network).channels()) \
            and self.registryValue("enable", channel, irc.network)

    def _cannot_join(self, irc, channel: str, reason: str) -> None:
        """Out of a channel it listens to (kicked, or a join refused): join again with
        backoff until it is in, or at once when invited. Limnoria's Channel plugin
        rejoins after a kick, not after a refused join."""
        if not self._wants(irc, channel):
            return
        retries = self._rejoins.get(irc.network)
        if retries is None:
            retries = self._rejoins[irc.network] = Retries(_now, first=REJOIN_FIRST,
                                                           cap=REJOIN_CAP)
        attempt = retries.refused(channel, reason)
        self.log.warning("Not in %s on %s (%s): joining again in %.0f s, or when invited",
                         channel, irc.network, reason, max(0.0, attempt.due - _now()))

    def _cannot_join_numeric(self, irc, msg):
        if len(msg.args) > 2:
            self._cannot_join(irc, msg.args[1], f"{msg.command} {msg.args[-1]}")

    # the channel is full, invite only, bans it, needs a key, needs an account
    do471 = do473 = do474 = do475 = do477 = _cannot_join_numeric

    def doInvite(self, irc, msg):
        """An invitation to a channel it listens to (the channel bot invites a banned
        agent back when it lifts the ban): join now."""
        if len(msg.args) > 1 and ircutils.strEqual(msg.args[0], irc.nick) \
                and msg.args[1] not in irc.state.channels and self._wants(irc, msg.args[1]):
            self.log.info("Invited to %s on %s by %s: joining", msg.args[1], irc.network,
                          msg.nick)
            irc.sendMsg(conf.supybot.networks.get(irc.network).channels.join(msg.args[1]))

    def _rejoined(self, irc, channel: str) -> None:
        retries = self._rejoins.get(irc.network)
        if retries is not None:
            for key in [k for k in retries.keys() if ircutils.strEqual(k, channel)]:
                retries.held(key)

    def _rejoin(self) -> None:
        """Poll: join the channels whose next attempt is due."""
        for network, retries in self._rejoins.items():
            irc = world.getIrc(network)
            for channel in retries.due():
                if irc is None or channel in irc.state.channels or not self._wants(irc, channel):
                    retries.held(channel)
                else:
                    retries.sent(channel)
                    irc.sendMsg(conf.supybot.networks.get(network).channels.join(channel))

    def reset(self):
        """Called on reconnect, with the channel state already cleared: whatever
        we were listening to is saved and dropped, as on a part."""
        for irc in world.ircs:
            if not irc.state.channels:
                self._accounts.forget(irc.network)
        self._sync()

    def _attach(self, irc, channel: str) -> None:
        """Start listening to a joined channel, if it is enabled, restoring its snapshot."""
        key = _key(irc.network, channel)
        if key in self._channels or not self.registryValue("enable", channel, irc.network):
            return
        network = irc.network
        away = self._away.pop(key, None)
        st = Channel(network, channel, lambda: self._outbox(network), away)
        self._configure(irc, st)
        st.listener.set_topic(irc.state.channels[channel].topic, self._topic_times.pop(key, None))
        self._rejoined(irc, channel)
        path = self._path(key)
        for tmp in remove_stale(path):  # snapshots are written on this thread
            self.log.info("Removed %s, left by an interrupted snapshot", tmp)
        loaded = st.listener.cache.load(path, self.registryValue("restartGrace"))
        if loaded.error:
            self.log.warning("%s", loaded.error)
        if away is None:
            self._restore_provider(key, st)
        if not self._respond(irc, channel, st):
            st.responses.resync(st.listener.threats())  # running since an earlier attach
        held = len(st.provider.held)
        self.log.info("Listening to %s on %s (%s threats restored, %s%s)",
                      channel, irc.network, loaded.loaded,
                      "synced" if st.listener.cache.synced else "quiet period",
                      f", {held} reports of its feeds held" if held else "")
        self._channels[key] = st
        self._joined[irc.network, channel] = st
        self.bridging.attach(st)
        self._sync_watch()

    def _detach(self, key: tuple[str, str]) -> None:
        """Stop listening to a channel the agent left (kicked, parted, disconnected,
        or no longer enabled): its cache is saved for a rejoin; its provider stays, so
        its feeds go on and what they find is held until the agent may report again."""
        st = self._channels.pop(key, None)
        if st is not None:
            del self._joined[st.network, st.channel]
            self._save(key, st)
            st.provider.leave()
            self._away[key] = st.provider

    def _restore_provider(self, key: tuple[str, str], st: Channel) -> None:
        """After a restart: where the feeds were in their files, and the held finds."""
        path = self._provider_path(key)
        for tmp in remove_stale(path):
            self.log.info("Removed %s, left by an interrupted save", tmp)
        restored = st.provider.load(path)
        if restored.error:
            self.log.warning("%s", restored.error)
        for spec in restored.resumed:
            self.log.info("%s on %s: %s goes on where it was before the restart",
                          st.channel, st.network, spec)
        for spec in restored.stale:
            self.log.info("%s on %s: %s starts at the end of its file: the agent was away "
                          "longer than a block period", st.channel, st.network, spec)

    def _configure(self, irc, st: Channel) -> None:
        """Apply the channel's registry values (unchanged ones cost a comparison)."""
        def get(name):
            return self.registryValue(name, st.channel, irc.network)
        st.signing.configure(get, f"{st.channel} on {irc.network}", self.log)
        casemapping = irc.state.supported.get("casemapping")
        settings = ListenerSettings(
            block=get("blockPeriod"), trust=get("trust"), accounts=tuple(get("trustedAccounts")),
            discard=tuple(get("discard")), require_signature=get("signatures.require"),
            casemapping=casemapping, protect=self._protect(irc, st.channel, get("protect")),
            max_threats=get("maxThreats"), quorum=get("quorum"), topic_hold=get("topicHold"))
        if st.listener.configure(settings, st.signing.keyring):
            st.block_changed()
        st.provider.identity = reporter(self.own_account(irc),
                                        irc.prefix.rpartition("@")[2], casemapping)
        started = st.provider.configure(ProviderSettings(
            own_networks=tuple(get("ownNetworks")), feeds=tuple(get("feeds"))))
        for spec in started:  # watched by the _sync_watch of _attach or _sync
            self.log.info("%s on %s: reporting from %s", st.channel, irc.network, spec)
        st.provider.signer = st.signing.signer
        st.provider.signer_error = st.signing.signer_error

    @staticmethod
    def _protect(irc, channel: str, setting: list[str]) -> tuple[str, ...]:
        """The protect setting, what the listener finds out itself (threatnet_irc.protected)
        and, with ThreatNetGuard on this bot, the channel's whitelisted networks."""
        guard = irc.getCallback("ThreatNetGuard")
        whitelisted = guard.whitelisted_networks(channel) if guard is not None else ()
        return tuple(dict.fromkeys((*setting, *found(irc), *whitelisted)))

    def _sync(self) -> None:
        """Make the listened channels match the joined and enabled ones, and
        apply registry changes."""
        live = set()
        for irc in world.ircs:
            for channel in list(irc.state.channels):
                if not self.registryValue("enable", channel, irc.network):
                    continue
                key = _key(irc.network, channel)
                live.add(key)
                st = self._channels.get(key)
                if st is None:
                    self._attach(irc, channel)
                else:
                    self._configure(irc, st)
                    self._respond(irc, channel, st)
        for key in set(self._channels) - live:
            self._detach(key)
        for key, provider in list(self._away.items()):
            network, _ = key
            if not self.registryValue("enable", provider.channel, network):
                self._save_provider(key, provider)
                del self._away[key]
                provider.close()
        self._sync_watch()

    # -- Threat Response and the HTTP API

    def _respond(self, irc, channel: str, st: Channel) -> bool:
        """Wire the channel's responders from the registry (rebuilt when the settings
        change); True if they were (re)started with the cache as it is now."""
        key = _key(irc.network, channel)
        responses = self._responses.get(key)
        if responses is None:
            responses = self._responses[key] = ChannelResponses(irc.network, channel, _now,
                                                                self.log)
        st.respond(responses)
        spec = read_spec(lambda name: self.registryValue(name, channel, irc.network),
                         self._http is not None)
        if spec == responses.spec:
            return False
        responses.configure(spec, self._http.changes if self._http else None,
                            st.listener.threats)
        st.respond(responses)  # started or stopped responders
        return True

    def _sync_http(self) -> None:
        """Serve the HTTP API while plugins.ThreatNetCache.http.enable is on, on the
        server its settings describe."""
        if not self.registryValue("http.enable"):
            self._close_http()
            return
        if self._http is None:
            self._http = ThreatNetHttp(self)
            self._http.crowdsec = crowdsec.CrowdSecApi(self._http, self.bouncer_keys)
        self._http.listen(read_settings(self.registryValue))

    def _close_http(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            http.close()

    # -- timers and persistence

    def _poll(self) -> None:
        """Poll timer: registry changes, which feeds to watch, then feeds and outboxes
        as a safety net (where inotify is missing, the only way feeds are read)."""
        self._sync_http()
        self._sync()
        self._rejoin()
        for st in list(self._channels.values()):
            self._settled(st, st.listener.settle())
        self._fast()
        self.bridging.poll()

    def _fast(self) -> None:
        """Feeds, then outboxes: on a write to a feed's file, when an outbox's next
        release is due, while a feed has more to read, and on the poll timer."""
        behind = False
        for st in list(self._channels.values()):
            irc = world.getIrc(st.network)
            behind |= self._poll_feeds(st.provider, self._moderated(irc, st))
            self._feed_withdrawals(irc, st)
        for provider in list(self._away.values()):
            behind |= self._poll_feeds(provider, False)
        for network, box in self._outboxes.items():
            irc = world.getIrc(network)
            if len(box) and irc is not None and _connected(irc):
                self._drain(irc, box)
        if behind:  # the rest after the IRC input that waits: next driver loop
            self._wakeup.wake()
        self.bridging.due()

    def _watched(self) -> None:
        """The feeds' directories changed (inotify): read the feeds now."""
        if self._watch is not None and self._watch.changed():
            self._fast()

    def _sync_watch(self) -> None:
        """Watch the directories of every log feed (inotify); log when that changes. A
        CrowdSec feed pulls on its own thread and wakes the loop when it found something."""
        paths = set()
        for provider in [*(st.provider for st in self._channels.values()), *self._away.values()]:
            for feed in provider.feeds.values():
                if isinstance(feed, CrowdSecFeed):
                    feed.notify = self._wakeup.wake
                else:
                    paths.add(feed.path)
        if paths and self._watch is None and not self._polled_only:
            watch = FeedWatch.open()
            if isinstance(watch, FeedWatch) and not self._wakeup.active:
                watch.close()
                watch = "this Limnoria's driver loop cannot be woken"
            if isinstance(watch, str):
                self._polled_only = True
                self.log.warning("Feeds are read every pollInterval only: %s", watch)
                return
            self._watch = watch
            self._watch_readable = Readable(watch.fileno(), self._watched)
        if self._watch is None:
            return
        self._watch.watch(paths)
        errors = "; ".join(f"{path}: {error}" for path, error in
                           sorted(self._watch.errors.items()))
        state = errors or " ".join(sorted(paths))
        if state != self._watch_state:
            if errors:
                self.log.warning("Feeds read every pollInterval only, their directory cannot "
                                 "be watched: %s", errors)
            elif paths:
                self.log.info("Feeds read as they are written (inotify): %s", state)
            self._watch_state = state

    def _poll_feeds(self, provider: Provider, moderated: bool) -> bool:
        """Read ``provider``'s feeds; whether one has more to read than a poll takes."""
        released = provider.holds["released"]
        for spec, error in provider.poll(moderated=moderated):
            if error:
                self.log.warning("Feed %s: %s", spec, error)
        released = provider.holds["released"] - released
        if released:
            self.log.info("%s: %s held reports of its feeds submitted", provider.channel,
                          released)
        return provider.behind

    def _feed_withdrawals(self, irc, st: Channel) -> None:
        """What a CrowdSec feed's operator deleted before its end: withdrawn here and in
        the channel, when this agent's report of it is the current one."""
        for feed in st.provider.feeds.values():
            if not isinstance(feed, CrowdSecFeed):
                continue
            for ip in feed.withdrawn():
                entry = st.listener.cache.check(parse_ip(ip))
                if entry is None or irc is None or not _connected(irc) \
                        or not ircutils.strEqual(entry.nick or "", irc.nick):
                    continue
                try:
                    line = st.provider.withdraw(ip, "crowdsec: decision deleted")
                except (ThreatError, Refused) as e:
                    self.log.warning("%s: cannot withdraw %s: %s", st.channel, ip, e)
                    continue
                irc.sendMsg(ircmsgs.privmsg(st.channel, line))
                self.log.info("%s on %s: %s withdrawn (deleted in CrowdSec)", st.channel,
                              st.network, ip)

    def _expire(self) -> None:
        for st in self._channels.values():
            st.expired(st.listener.expire())
        self.bridging.expire()

    def _path(self, key: tuple[str, str]) -> str:
        network, channel = key
        return conf.supybot.directories.data.dirize(os.path.join(
            "ThreatNetCache", quote(network, safe=""), quote(channel, safe="") + ".json"))

    def _provider_path(self, key: tuple[str, str]) -> str:
        """Where the provider's feed positions and held finds are kept: a directory of
        its own, as a channel name never starts with a letter."""
        network, channel = key
        return conf.supybot.directories.data.dirize(os.path.join(
            "ThreatNetCache", quote(network, safe=""), "feeds",
            quote(channel, safe="") + ".json"))

    def _save(self, key: tuple[str, str], st: Channel) -> None:
        path = self._path(key)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            st.listener.cache.snapshot(path)
        except OSError as e:
            self.log.error("Cannot save %s: %s", path, e)
        self._save_provider(key, st.provider)

    def _save_provider(self, key: tuple[str, str], provider: Provider) -> None:
        if not provider.feeds and not provider.held:
            return
        path = self._provider_path(key)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            provider.save(path)
        except OSError as e:
            self.log.error("Cannot save %s: %s", path, e)

    def _flush(self) -> None:
        for key, st in self._channels.items():
            self._save(key, st)
        for key, provider in self._away.items():
            self._save_provider(key, provider)
        self.bridging.flush()

    # -- the provider: the core decides, this sends

    @staticmethod
    def _moderated(irc, st: Channel) -> bool:
        """Whether the channel is +m and the bot not voiced or opped there."""
        chan = irc.state.channels.get(st.channel) if irc is not None else None
        return chan is not None and "m" in chan.modes and not chan.isVoicePlus(irc.nick)

    def _outbox(self, network: str) -> Outbox[Queued]:
        """The network's Outbox, made with its outbox.* settings when first needed."""
        box = self._outboxes.get(network)
        if box is None:
            def get(name):
                return self.registryValue("outbox." + name, network=network)
            box = self._outboxes[network] = Outbox(get("rate"), get("burst"), get("size"),
                                                   clock=_now)
        return box

    def _drain(self, irc, box: Outbox[Queued]) -> None:
        """Send what the outbox releases, with irc.sendMsg: queueMsg is throttled
        to about a line a second and its enqueue is quadratic."""
        for provider, line in take(box, irc.nick, self.own_account(irc),
                                   irc.prefix.rpartition("@")[2]):
            irc.sendMsg(ircmsgs.privmsg(provider.channel, line))
            st = self._channels.get(_key(irc.network, provider.channel))
            if st is not None and st.bridge is not None:
                self.bridging.reported(irc, st, line)
        due = box.due()  # the outbox's own time, not pollInterval's
        if due is not None:
            self._wakeup.after(due)

    def _overview(self, s: ChannelStatus) -> str:
        """``tn overview``'s reply for one channel."""
        heard = s.heard
        seen, kept = sum(heard.values()), heard.get("kept", 0)
        sync = f"quiet period ({math.ceil(s.quiet_left)} s left)" if s.quiet_left else "synced"
        failing = [spec for spec, _, error in s.feeds if error]
        feeds = f"{len(s.feeds)} feeds" + (f" ({len(failing)} failing: {', '.join(failing)})"
                                           if failing else "")
        health = [f"{r.name} {'FAILING' if r.failures else 'ok'}" for r in s.responders]
        health += [f"{name} NOT STARTED" for name, _ in s.problems]
        box = self._outboxes.get(s.network)
        guard = self.guard()
        irc = world.getIrc(s.network)
        guarded = f"; {guard.summary(irc, s.channel)}" if guard is not None \
            and irc is not None else ""
        return (f"{s.channel} on {s.network}: {sync}, seen {seen} (kept {kept}, discarded "
                f"{seen - kept}), cache {s.cache.size}, block {s.block:g} s, quorum "
                f"{s.quorum}, reported {s.reported}, outbox {len(box) if box else 0}; "
                f"{feeds}; responders: {', '.join(health) or 'none'}; bridge: "
                f"{'yes (tn bridge status)' if s.bridged else 'none'}{guarded}")

    def _channel(self, irc, channel: str) -> Channel:
        st = self.channel(irc.network, channel)
        if st is None:
            irc.error(f"{channel} is not a ThreatNet channel I listen to "
                      "(see plugins.ThreatNetCache.enable).", Raise=True)
        return st

    # Replies never start with an address: in a ThreatNet channel that would be
    # a threat line to every other agent.
    class tn(TnGroup):
        """ThreatNet agent commands."""

        bridge = bridging.bridge  # tn bridge status
        bouncer = crowdsec.bouncer  # tn bouncer add|list|remove

        def status(self, irc, msg, args, channel):
            """[<channel>]

            One line on the Threat Cache of <channel>: seconds online, threat
            lines seen and their rate, kept, discarded (duplicate, filtered,
            untrusted), cache size, expired, block period, threats reported by
            this agent, whether it is synced or in its quiet period, and when a
            new topic counts (topicHold). Anyone may ask; <channel> is needed only
            where the bot listens to several.
            """
            st = self.parent._channel(irc, channel)
            listener = st.listener
            stats = listener.cache.stats()
            seen = sum(listener.heard.values())
            counts = listener.counts()
            kept = counts.pop("kept")
            running = stats.time_running
            rate = seen / running if running > 0 else 0.0
            left = listener.cache.quiet_left
            sync = f"quiet period: {math.ceil(left)} s left" if left else "synced"
            if listener.topic_pending is not None:
                sync += f", a new topic counts in {math.ceil(listener.topic_pending)} s"
            discarded = ", ".join(f"{reason} {n}" for reason, n in counts.items())
            withdrawn = listener.withdrawals
            withdrawals = f"withdrawals {withdrawn['withdrawn']} (refused " \
                          f"{withdrawn['refused']}), " if any(withdrawn.values()) else ""
            irc.reply(f"{st.channel}: online {int(running)} s, seen {seen} ({rate:.2f}/s), "
                      f"kept {kept}, discarded {seen - kept} ({discarded}), {withdrawals}"
                      f"cache {stats.size}, expired {stats.expired}, block {listener.block} s, "
                      f"reported {st.provider.reported}, {sync}")
        status = wrap(status, [SERVED])

        def check(self, irc, msg, args, channel, ip):
            """[<channel>] <ip>

            Whether <ip> (IPv4 or IPv6) is a current threat in <channel>, and if
            so who reported it, how long ago, the comment, and when it expires.
            Anyone may ask.
            """
            st = self.parent._channel(irc, channel)
            key = parse_ip(ip)
            entry = st.listener.cache.check(key)
            if entry is None:
                queued = " (queued for report)" if key in st.provider.pending else ""
                irc.reply(f"Not a current threat in {st.channel}: {ip}{queued}")
            else:
                verified = signing.verified(st.signing.keyring, entry, _now())
                irc.reply(f"Current threat in {st.channel}: {entry.ip}, "
                          f"{reported_by(entry, _now(), verified)}{_quorum(st, key)}")
        check = wrap(check, [SERVED, "threatIp"])

        def list(self, irc, msg, args, channel):
            """[<channel>]

            The current threats of <channel>, newest first: address, reporter, age,
            and the reports so far of those still below the quorum. Anyone may ask.
            """
            st = self.parent._channel(irc, channel)
            listener = st.listener
            entries = sorted(listener.cache, key=lambda e: e.first_seen, reverse=True)
            now = _now()
            shown = [f"{e.ip} ({e.nick or '?'}, {int(now - e.first_seen)} s ago"
                     f"{_quorum(st, e.key, short=True)})" for e in entries[:LIST_MAX]]
            more = f", and {len(entries) - LIST_MAX} more" if len(entries) > LIST_MAX else ""
            irc.reply(f"{st.channel}: {len(entries)} current: " + ", ".join(shown) + more
                      if entries else f"{st.channel}: no current threats")
        list = wrap(list, [SERVED])

        def forget(self, irc, msg, args, channel, ip):
            """[<channel>] <ip>

            Takes <ip> out of this listener's Threat Cache of <channel> and out of its
            responders (DNSBL, firewall, command) at once; other listeners keep it
            (see tn withdraw). Needs the #channel,threatnet capability (or admin).
            """
            st = self.parent._channel(irc, channel)
            entry = st.listener.remove(parse_ip(ip))
            if entry is None:
                irc.error(f"{ip} is not a current threat in {st.channel}", Raise=True)
            irc.reply(f"Forgotten in {st.channel}: {entry.ip}, "
                      f"{reported_by(entry, _now())}")
        forget = wrap(forget, [SERVED, "channelAdmin", "threatIp"])

        def withdraw(self, irc, msg, args, channel, ip, reason):
            """[<channel>] <ip> [<reason>]

            Withdraws <ip> network-wide: takes it out here and says "withdraw <ip>
            <reason>" in <channel>, signed when this agent signs. Listeners take it
            back if this agent reported it (or is a channel operator); agents that
            do not know the form ignore it. Needs the #channel,threatnet capability
            (or admin).
            """
            parent = self.parent
            st = parent._channel(irc, channel)
            try:
                line = st.provider.withdraw(ip, reason or "withdrawn")
            except (ThreatError, Refused) as e:
                irc.error(str(e), Raise=True)
            irc.getRealIrc().sendMsg(ircmsgs.privmsg(st.channel, line))
            irc.reply(f"Withdrawn in {st.channel}: {line}")
        withdraw = wrap(withdraw, [SERVED, "channelAdmin", "threatIp", additional("text", "")])

        def report(self, irc, msg, args, channel, ip, comment):
            """[<channel>] <ip> [<comment>]

            Posts <ip> to <channel> as a Verified Threat from this agent, with
            the same rules as the log feeds: refused during the quiet period,
            when <ip> is already current or is in a discarded or own network,
            or when <channel> is moderated and the bot is not voiced. Needs the
            #channel,threatnet capability (or admin).
            """
            parent = self.parent
            st = parent._channel(irc, channel)
            try:
                threat, queued = parent.report(irc.getRealIrc(), st, ip, comment)
            except (ThreatError, Refused) as e:
                irc.error(str(e), Raise=True)
            line = format_message(threat)
            signer = st.provider.signer
            if signer is not None:
                line += f" (signed with key {signer.key_id})"
            if queued:
                irc.reply(f"Queued for {st.channel} "
                          f"({len(parent._outboxes[st.network])} waiting): {line}")
            else:
                irc.reply(f"Reported to {st.channel}: {line}")
        report = wrap(report, [SERVED, "channelAdmin", "threatIp", additional("text", "")])

        def feeds(self, irc, msg, args, channel):
            """[<channel>]

            The log files this agent reports to <channel> from, with their
            thresholds and counters (addresses below threshold: counted, not
            reported yet), the reports refused by reason, and this network's
            outbox. Needs the #channel,threatnet capability (or admin).
            """
            parent = self.parent
            st = parent._channel(irc, channel)
            parts = []
            provider = st.provider
            for spec, feed in provider.feeds.items():
                counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in feed.stats().items())
                error = f", error: {feed.error}" if feed.error else ""
                parts.append(f"{spec} ({feed.detector.threshold}; {counts}{error})")
            refused = ", ".join(f"{k} {v}" for k, v in sorted(provider.refused.items())) \
                or "none"
            box = parent._outboxes.get(st.network)
            outbox = ", ".join(f"{k} {v}" for k, v in box.stats().items()) if box is not None \
                else "none"
            irc.reply(f"{st.channel}: feeds: {'; '.join(parts) or 'none'}; reported "
                      f"{provider.reported}, refused: {refused}; outbox: {outbox}; "
                      f"held: {_held(provider)}")
        feeds = wrap(feeds, [SERVED, "channelAdmin"])

        def responders(self, irc, msg, args, channel):
            """[<channel>]

            The Threat Responses of <channel> (DNSBL, firewall, command, and the
            HTTP API's stream): threats each holds, applies, errors, and whether
            it is ok, applying, or failing (with the error and the next retry).
            Needs the #channel,threatnet capability (or admin).
            """
            st = self.parent._channel(irc, channel)
            responses = st.responses
            parts = [describe(s) for s in responses.status()]
            parts += [f"{name}: NOT STARTED: {reason}" for name, reason in responses.problems]
            irc.reply(f"{st.channel}: " + ("; ".join(parts) or "no responders (see "
                                           "plugins.ThreatNetCache.responders)"))
        responders = wrap(responders, [SERVED, "channelAdmin"])

        def overview(self, irc, msg, args, channel):
            """[<channel>]

            Everything at a glance, one reply per channel: whether it is synced,
            threat lines seen, kept and discarded, cache size, block period, quorum,
            reports, the outbox, feeds (failing ones named), responders' health,
            the bridge, and the Guard's state when ThreatNetGuard runs here too.
            In a channel, that channel; in private without <channel>, every channel
            you may administer. Needs the #channel,threatnet capability (or admin).
            """
            parent = self.parent
            if channel:
                chosen = [parent._channel(irc, channel)]
            else:
                chosen = [st for st in parent.channels()
                          if may_administer(msg.prefix, st.channel)]
                if not chosen:
                    irc.error("no channel of mine that you may administer (the "
                              "#channel,threatnet or admin capability)", Raise=True)
            for st in chosen:
                if not may_administer(msg.prefix, st.channel):
                    refuse(irc, st.channel)
            by_key = {(s.network, s.channel): s for s in parent.status()}
            for st in chosen:
                irc.reply(parent._overview(by_key[st.network, st.channel]))
        overview = wrap(overview, [optional("channel")])


Class = ThreatNetCache
