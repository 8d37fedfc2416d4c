"""ThreatNetCache: makes the bot a ThreatNet agent, an Event Listener with a Threat
Cache per channel, and a Threat Provider that reports from its own log files.

IRC events in, calls on threatnet/, IRC messages out. One instance serves every
network, so all state is keyed by (network, channel). The registry is read by
the poll timer, never per channel line: doPrivmsg is the hot path.
"""
import math
import os
from urllib.parse import quote

import supybot.callbacks as callbacks
import supybot.conf as conf
import supybot.ircmsgs as ircmsgs
import supybot.ircutils as ircutils
import supybot.schedule as schedule
import supybot.world as world
from supybot import httpserver
from supybot.commands import additional, wrap

from threatnet_irc.addressing import may_address
from threatnet_irc.clock import now as _now
import threatnet_irc.converters  # noqa: F401  registers threatIp
from threatnet.address import parse_ip
from threatnet.atomic import remove_stale
from threatnet.cache import ThreatCache
from threatnet.envelope import Trust, new_envelope
from threatnet.feed import LogFeed
from threatnet.filter import Chain, NetworkFilter
from threatnet.language import ThreatError, format_message, parse_message
from threatnet.outbox import Outbox
from threatnet.topic import TopicError, parse_topic

from . import bridging
from . import signing
from .http import SUBDIR, ThreatNetHttp
from .responders import (ChannelResponses, describe, read_spec, responding, route_logs,
                         to_threat)

# Whitespace parse_message strips before the address.
_WS = frozenset(" \t\n\r\x0b\x0c")

_SENDERS_MAX = 1000  # memoised senders per channel; a PING clears them anyway
# schedule event names
_POLL, _EXPIRE, _SNAPSHOT = ("ThreatNetCache.poll", "ThreatNetCache.expire",
                             "ThreatNetCache.snapshot")


def _key(network, channel):
    return network, ircutils.toLower(channel)


class Refused(Exception):
    """A threat of our own that must not be posted: ``kind`` is counted, str(e) is
    the reason told to the operator."""

    def __init__(self, kind, reason):
        super().__init__(reason)
        self.kind = kind


class _TrustNobody:
    """Trust mode "accounts" with no account configured: fail closed."""
    name = "untrusted"

    def screen(self, msg, envelope=None):
        return self.name


class _Channel:
    """Listener and provider state of one ThreatNet channel on one network."""

    def __init__(self, network, channel):
        self.network = network
        self.channel = channel
        self.cache = ThreatCache(clock=_now)
        self.settings = None  # the registry values below were built from
        self.listen = None  # Chain: trust, discard, cache
        self.screen = None  # Chain for our own reports: discard, ownNetworks
        self.config_block = self.topic_block = None
        self.heard = dict.fromkeys(("kept", "duplicate", "filtered", "untrusted"), 0)
        self.reported = 0
        self.refused = {}  # reports refused, by kind
        self.pending = {}  # key -> ThreatMessage waiting in the outbox
        self.feeds = {}  # "extractor:/path" -> LogFeed
        self.feed_errors = {}  # "extractor:/path" -> last error logged
        self.senders = {}  # nick -> (voiced, opped, account, account-tag on), see inFilter
        self.bridge = None  # its Side if a Network Bridge runs over it (bridging.py)
        self.responses = None  # ChannelResponses, set on attach (responders.py)
        self.signature_check = None  # RequireSignature in the listen chain (signing.py)
        self.signing = None  # signing.ChannelSigning: key ring and signer

    def configure(self, settings, log):
        """Rebuild the chains and feeds if the registry values changed."""
        if settings == self.settings:
            return
        self.settings = settings
        block, mode, accounts, discard, own, feeds, casemapping = settings
        if mode == "signed":  # no IRC-level trust: the signature is the trust
            trusting = [] if self.signature_check is not None else [_TrustNobody()]
        elif mode == "accounts" and not accounts:
            trusting = [_TrustNobody()]
        else:
            trusting = [Trust(mode, accounts, casemapping)]
        signed = [self.signature_check] if self.signature_check is not None else []
        discarding = [NetworkFilter("discard", discard)] if discard else []
        owning = [NetworkFilter("discard", own, name="own network")] if own else []
        self.listen = Chain([*trusting, *signed, *discarding, self.cache])
        self.screen = Chain(discarding + owning)
        self.config_block = block
        self._apply_block()
        for spec in set(self.feeds) - set(feeds):
            self.feeds.pop(spec).close()
        for spec in feeds:
            if spec not in self.feeds:
                extractor, _, path = spec.partition(":")
                self.feeds[spec] = LogFeed(path, extractor, clock=_now)
                log.info("%s on %s: reporting from %s", self.channel,
                         self.network, spec)

    def set_signature_check(self, check, log):
        """Put a RequireSignature into the listen chain, after the trust rule (or
        instead of it, trust mode "signed"), or take it out (None)."""
        if check is not self.signature_check:
            self.signature_check = check
            settings, self.settings = self.settings, None
            self.configure(settings, log)

    def set_topic(self, text):
        """A threatnet:// topic sets the block period (block=, else the protocol's
        default); any other topic leaves it to the blockPeriod setting."""
        try:
            self.topic_block = parse_topic(text).block
        except TopicError:
            self.topic_block = None
        self._apply_block()

    def _apply_block(self):
        old = self.cache.timeout
        self.cache.timeout = self.topic_block or self.config_block
        if self.signature_check is not None:  # a signature is good for one block period
            self.signature_check.max_age = self.cache.timeout
        if self.cache.timeout != old and self.responses is not None \
                and self.responses.active:
            self.responses.resync(self.threats())  # every expiry moved

    # Threat Response: these only enqueue; responders work on threads of their own.

    def threats(self):
        """The current threats as responders see them."""
        timeout = self.cache.timeout
        return [to_threat(e, timeout) for e in self.cache]

    def respond(self, responses):
        """Tell ``responses`` (ChannelResponses) of every threat the cache keeps from
        now on, while it has responders running."""
        self.responses = responses
        self.cache.on_keep = responding(responses, self.cache) if responses.active else None

    def expired(self, entries):
        """cache.expire() returned these entries."""
        responses = self.responses
        if entries and responses is not None and responses.active:
            timeout = self.cache.timeout
            for entry in entries:
                responses.expired(entry.key, entry.first_seen + timeout)

    def close(self):
        for feed in self.feeds.values():
            feed.close()


def _describe(entry, verified=None):
    """Who reported a cache entry, when, and until when it is current; with a
    signature.Verified for the entry, its key and the comment it signed."""
    who = entry.nick or "?"
    if entry.account:
        who += f" (account {entry.account})"
    if verified is not None:
        who += f", signed by key {verified.key_id},"
    ago = int(_now() - entry.first_seen)
    text = entry.comment if verified is None else verified.comment
    comment = f': "{text}"' if text else ""
    return f"reported by {who} {ago} s ago{comment}; expires in {math.ceil(entry.expires_in)} s"


class ThreatNetCache(callbacks.Plugin):
    """Makes the bot a ThreatNet agent: it keeps a Threat Cache of every
    enabled channel (plugins.ThreatNetCache.enable) and can report threats of
    its own, by command or from log files; responds to threats (DNSBL,
    firewall, command) and serves them over HTTP. Commands: tn status,
    tn check, tn report, tn feeds, tn responders."""
    threaded = False
    # Limnoria's ignores (defaultIgnore, the command-flood ignore) are about commands:
    # a voiced agent that is ignored still speaks for the channel. Command handling
    # (Owner) still honours them.
    noIgnore = True

    def __init__(self, irc):
        super().__init__(irc)
        self.tn.parent = self.tn.bridge.parent = self
        self._channels = {}  # (network, lowered channel) -> _Channel
        self._joined = {}  # (network, channel as joined) -> _Channel: no folding per line
        self._outboxes = {}  # network -> Outbox of (_Channel, ThreatMessage)
        self._addressing = {}  # may_address's settings cache
        self.bridging = bridging.Bridging(self)  # before _sync: it marks bridged channels
        self._responses = {}  # (network, lowered channel) -> ChannelResponses, kept on part
        self._http = None  # ThreatNetHttp while plugins.ThreatNetCache.http.enable
        self._unroute_logs = route_logs()
        self._sync_http()
        self.signatures = signing.Signing(self)
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
        world.flushers.remove(self._flush)
        self._close_http()
        self._flush()
        for st in self._channels.values():
            st.close()
        for responses in self._responses.values():
            responses.stop()
        self._unroute_logs()
        super().die()

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
        if tagged or "account" in tags:  # with account-tag, untagged means logged out
            account = tags.get("account") or None
        envelope = new_envelope((threat, nick, account, msg.host, st.channel, st.network,
                                 voiced, opped))
        st.heard[st.listen.check(threat, envelope) or "kept"] += 1
        if st.bridge is not None:
            self.bridging.heard(st, envelope)

    def _sender(self, irc, st, nick):
        """(voiced, opped, account, account-tag on) of a sender, memoised until the
        next message that is not a channel line (see inFilter)."""
        state = irc.state
        users = state.channels.get(st.channel)
        account = state.nicksToAccounts.get(nick)
        tagged = "account-tag" in state.capabilities_ack
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

    def _topic(self, irc, channel, text):
        st = self._channels.get(_key(irc.network, channel))
        if st is not None:
            st.set_topic(text)

    def doPart(self, irc, msg):
        if msg.args and msg.nick and ircutils.strEqual(msg.nick, irc.nick):
            for channel in msg.args[0].split(","):
                self._detach(_key(irc.network, channel))

    def doKick(self, irc, msg):
        # One KICK may name several users (as irc.state reads it: one channel).
        if len(msg.args) > 1 and any(ircutils.strEqual(user, irc.nick)
                                     for user in msg.args[1].split(",")):
            self._detach(_key(irc.network, msg.args[0]))

    def reset(self):
        """Called on reconnect, with the channel state already cleared: whatever
        we were listening to is saved and dropped, as on a part."""
        self._sync()

    def _attach(self, irc, channel):
        """Start listening to a joined channel, if it is enabled, restoring its snapshot."""
        key = _key(irc.network, channel)
        if key in self._channels or not self.registryValue("enable", channel, irc.network):
            return
        st = _Channel(irc.network, channel)
        st.configure(self._settings(irc, channel), self.log)
        self.signatures.configure(irc, st)
        st.set_topic(irc.state.channels[channel].topic)
        for tmp in remove_stale(self._path(key)):  # snapshots are written on this thread
            self.log.info("Removed %s, left by an interrupted snapshot", tmp)
        loaded = st.cache.load(self._path(key), self.registryValue("restartGrace"))
        if loaded.error:
            self.log.warning("%s", loaded.error)
        if not self._respond(irc, channel, st):
            st.responses.resync(st.threats())  # running since an earlier attach
        self.log.info("Listening to %s on %s (%s threats restored, %s)",
                      channel, irc.network, loaded.loaded,
                      "synced" if st.cache.synced else "quiet period")
        self._channels[key] = st
        self._joined[irc.network, channel] = st
        self.bridging.attach(st)

    def _detach(self, key):
        st = self._channels.pop(key, None)
        if st is not None:
            del self._joined[st.network, st.channel]
            self._save(key, st)
            st.close()

    def _settings(self, irc, channel):
        def get(name):
            return self.registryValue(name, channel, irc.network)
        return (get("blockPeriod"), get("trust"), tuple(get("trustedAccounts")),
                tuple(get("discard")), tuple(get("ownNetworks")), tuple(get("feeds")),
                irc.state.supported.get("casemapping"))

    def _sync(self):
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
                    st.configure(self._settings(irc, channel), self.log)
                    self.signatures.configure(irc, st)
                    self._respond(irc, channel, st)
        for key in set(self._channels) - live:
            self._detach(key)

    # -- Threat Response and the HTTP API

    def _respond(self, irc, channel, st):
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
        responses.configure(spec, self._http.changes if self._http else None, st.threats)
        st.respond(responses)  # started or stopped responders
        return True

    def _sync_http(self):
        """Serve /threatnet/ while plugins.ThreatNetCache.http.enable is on."""
        enabled = self.registryValue("http.enable")
        if enabled and self._http is None:
            self._http = ThreatNetHttp(self)
            httpserver.hook(SUBDIR, self._http)
        elif not enabled and self._http is not None:
            self._close_http()

    def _close_http(self):
        http, self._http = self._http, None
        if http is not None:
            http.close()  # first: requests waiting for the main loop give up
            httpserver.unhook(SUBDIR)

    # -- timers and persistence

    def _poll(self):
        """Poll timer: registry changes, feeds, then the outboxes."""
        self._sync_http()
        self._sync()
        for st in list(self._channels.values()):
            irc = world.getIrc(st.network)
            for spec, feed in st.feeds.items():
                for threat in feed.poll():
                    try:
                        self._submit(irc, st, threat)
                    except Refused as e:
                        st.refused[e.kind] = st.refused.get(e.kind, 0) + 1
                if feed.error != st.feed_errors.get(spec):
                    st.feed_errors[spec] = feed.error
                    if feed.error:
                        self.log.warning("Feed %s: %s", spec, feed.error)
        for network, box in self._outboxes.items():
            irc = world.getIrc(network)
            if len(box) and irc is not None:
                self._drain(irc, box)
        self.bridging.poll()

    def _expire(self):
        for st in self._channels.values():
            st.expired(st.cache.expire())
        self.bridging.expire()

    def _path(self, key):
        network, channel = key
        return conf.supybot.directories.data.dirize(os.path.join(
            "ThreatNetCache", quote(network, safe=""), quote(channel, safe="") + ".json"))

    def _save(self, key, st):
        path = self._path(key)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            st.cache.snapshot(path)
        except OSError as e:
            self.log.error("Cannot save %s: %s", path, e)

    def _flush(self):
        for key, st in self._channels.items():
            self._save(key, st)
        self.bridging.flush()

    # -- the provider

    def _submit(self, irc, st, threat):
        """The one path for a threat of our own, from `tn report` or a feed:
        raise Refused, or queue it in the network's outbox and send what the
        rate allows now. The IP counts as current from when it is sent."""
        try:
            signing.signer(st)
        except ValueError as e:
            raise Refused("unsigned", f"cannot sign reports to {st.channel}, so none are "
                                      f"sent: {e}") from None
        left = st.cache.quiet_left
        if left:
            raise Refused("quiet", f"{st.channel} is in its quiet period: "
                                   f"{math.ceil(left)} s left")
        chan = irc.state.channels.get(st.channel)
        if chan is not None and "m" in chan.modes and not chan.isVoicePlus(irc.nick):
            raise Refused("moderated", f"{st.channel} is moderated (+m) and I am not "
                                       "voiced or opped there")
        reason = st.screen.check(threat)
        if reason == "filtered":
            raise Refused(reason, f"{threat.ip} is in a discarded network "
                                  f"({' '.join(st.settings[3])})")
        if reason == "own network":
            raise Refused(reason, f"{threat.ip} is in ownNetworks, never reported")
        entry = st.cache.check(threat.key)
        if entry is not None:
            raise Refused("duplicate", f"{threat.ip} is already current in {st.channel}, "
                                       + _describe(entry))
        if threat.key in st.pending:
            raise Refused("duplicate", f"{threat.ip} is already queued for {st.channel}")
        box = self._outboxes.get(irc.network)
        if box is None:
            def get(name):
                return self.registryValue("outbox." + name, network=irc.network)
            box = self._outboxes[irc.network] = Outbox(get("rate"), get("burst"), get("size"),
                                                       clock=_now)
        st.pending[threat.key] = threat
        dropped = box.put((st, threat))
        if dropped is not None:
            dropped[0].pending.pop(dropped[1].key, None)
        self._drain(irc, box)

    def _report(self, irc, st, ip, comment):
        """The one report path of `tn report` and POST /threatnet/report: ``ip`` (one
        strict address) with ``comment`` as a threat of our own, through _submit.
        Raises ThreatError or Refused; returns (threat, queued)."""
        threat = parse_message(f"{ip} {comment}")
        self._submit(irc, st, threat)
        return threat, threat.key in st.pending

    def _drain(self, irc, box):
        """Send what the outbox releases, with irc.sendMsg: queueMsg is throttled
        to about a line a second and its enqueue is quadratic."""
        for st, threat in box.take():
            st.pending.pop(threat.key, None)
            if self._channels.get(_key(st.network, st.channel)) is not st:
                continue  # parted meanwhile
            if st.cache.check(threat.key) is not None:  # another agent was faster
                st.refused["duplicate"] = st.refused.get("duplicate", 0) + 1
                continue
            try:
                signer = signing.signer(st)
            except ValueError:  # the key went bad while this waited: never send unsigned
                st.refused["unsigned"] = st.refused.get("unsigned", 0) + 1
                continue
            st.cache.keep(threat, irc.nick, irc.state.nicksToAccounts.get(irc.nick))
            line = format_message(threat) if signer is None else signer.sign(threat, _now())
            irc.sendMsg(ircmsgs.privmsg(st.channel, line))
            st.reported += 1
            if st.bridge is not None:
                self.bridging.reported(irc, st, line)

    def _channel(self, irc, channel):
        st = self._channels.get(_key(irc.network, channel))
        if st is None:
            irc.error(f"{channel} is not a ThreatNet channel I listen to "
                      "(see plugins.ThreatNetCache.enable).", Raise=True)
        return st

    # Replies never start with an address: in a ThreatNet channel that would be
    # a threat line to every other agent.
    class tn(callbacks.Commands):
        """ThreatNet agent commands."""

        bridge = bridging.bridge  # tn bridge status

        def status(self, irc, msg, args, channel):
            """[<channel>]

            One line on the Threat Cache of <channel>: seconds online, threat
            lines seen and their rate, kept, discarded (duplicate, filtered,
            untrusted), cache size, expired, block period, threats reported by
            this agent, and whether it is synced or in its quiet period.
            """
            st = self.parent._channel(irc, channel)
            stats = st.cache.stats()
            heard = st.heard
            seen = sum(heard.values())
            running = stats.time_running
            rate = seen / running if running > 0 else 0.0
            left = st.cache.quiet_left
            sync = f"quiet period: {math.ceil(left)} s left" if left else "synced"
            irc.reply(f"{st.channel}: online {int(running)} s, seen {seen} ({rate:.2f}/s), "
                      f"kept {heard['kept']}, discarded {seen - heard['kept']} "
                      f"(duplicate {heard['duplicate']}, filtered {heard['filtered']}, "
                      f"untrusted {heard['untrusted']}{signing.discarded(st)}), "
                      f"cache {stats.size}, expired "
                      f"{stats.expired}, block {st.cache.timeout} s, reported {st.reported}, "
                      f"{sync}")
        status = wrap(status, ["channel"])

        def check(self, irc, msg, args, ip, channel):
            """<ip> [<channel>]

            Whether <ip> (IPv4 or IPv6) is a current threat in <channel>, and if
            so who reported it, how long ago, the comment, and when it expires.
            """
            st = self.parent._channel(irc, channel)
            key = parse_ip(ip)
            entry = st.cache.check(key)
            if entry is None:
                queued = " (queued for report)" if key in st.pending else ""
                irc.reply(f"Not a current threat in {st.channel}: {ip}{queued}")
            else:
                irc.reply(f"Current threat in {st.channel}: {entry.ip}, "
                          f"{_describe(entry, signing.verified(st, entry))}")
        check = wrap(check, ["threatIp", "channel"])

        def report(self, irc, msg, args, channel, ip, comment):
            """[<channel>] <ip> [<comment>]

            Posts <ip> to <channel> as a Verified Threat from this agent, with
            the same rules as the log feeds: refused during the quiet period,
            when <ip> is already current or is in a discarded or own network,
            or when <channel> is moderated and the bot is not voiced. Needs the
            admin capability.
            """
            parent = self.parent
            st = parent._channel(irc, channel)
            try:
                threat, queued = parent._report(irc.getRealIrc(), st, ip, comment)
            except (ThreatError, Refused) as e:
                irc.error(str(e), Raise=True)
            line = format_message(threat)
            signer = st.signing.signer if st.signing is not None else None
            if signer is not None:
                line += f" (signed with key {signer.key_id})"
            if queued:
                irc.reply(f"Queued for {st.channel} "
                          f"({len(parent._outboxes[st.network])} waiting): {line}")
            else:
                irc.reply(f"Reported to {st.channel}: {line}")
        report = wrap(report, ["admin", "channel", "threatIp", additional("text", "")])

        def feeds(self, irc, msg, args, channel):
            """[<channel>]

            The log files this agent reports to <channel> from, with their
            counters, the reports refused by reason, and this network's outbox.
            Needs the admin capability.
            """
            parent = self.parent
            st = parent._channel(irc, channel)
            parts = []
            for spec, feed in st.feeds.items():
                counts = ", ".join(f"{k} {v}" for k, v in feed.stats().items())
                error = f", error: {feed.error}" if feed.error else ""
                parts.append(f"{spec} ({counts}{error})")
            refused = ", ".join(f"{k} {v}" for k, v in sorted(st.refused.items())) or "none"
            box = parent._outboxes.get(st.network)
            outbox = ", ".join(f"{k} {v}" for k, v in box.stats().items()) if box is not None \
                else "none"
            irc.reply(f"{st.channel}: feeds: {'; '.join(parts) or 'none'}; reported "
                      f"{st.reported}, refused: {refused}; outbox: {outbox}")
        feeds = wrap(feeds, ["admin", "channel"])

        def responders(self, irc, msg, args, channel):
            """[<channel>]

            The Threat Responses of <channel> (DNSBL, firewall, command, and the
            HTTP API's stream): threats each holds, applies, errors, and whether
            it is ok, applying, or failing (with the error and the next retry).
            Needs the admin capability.
            """
            st = self.parent._channel(irc, channel)
            responses = st.responses
            parts = [describe(s) for s in responses.status()]
            parts += [f"{name}: NOT STARTED: {reason}" for name, reason in responses.problems]
            irc.reply(f"{st.channel}: " + ("; ".join(parts) or "no responders (see "
                                           "plugins.ThreatNetCache.responders)"))
        responders = wrap(responders, ["admin", "channel"])


Class = ThreatNetCache
