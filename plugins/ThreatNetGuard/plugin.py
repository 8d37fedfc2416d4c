"""ThreatNetGuard: the channel bot of the DATN2004 security model.

"A bot could run the channel allowing anyone to join, but only giving voice
permissions to agents joining from white-listed IP addresses" (and, today,
services accounts). The hooks gather who is who from irc.state; the decisions
live in threatnet/ (whitelist, moderation, conversation, offenders, modes, topic,
retry). What the bot keeps set (topic, modes, bans) it sends again, with backoff,
until the server's state shows it held: real servers refuse (437, 478, 482, ...).
"""
from __future__ import annotations

import functools
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import supybot.callbacks as callbacks
import supybot.conf as conf
import supybot.irclib as irclib
import supybot.ircmsgs as ircmsgs
import supybot.ircutils as ircutils
import supybot.registry as registry
import supybot.schedule as schedule
import supybot.world as world
from supybot.commands import getopts, wrap
from supybot.utils.str import nItems

from threatnet_irc.accounts import Accounts, tags_count
from threatnet_irc.addressing import may_address
from threatnet_irc.clock import TTL, cached, now as _now
from threatnet_irc.commandgroup import TnGroup, TnHelp, cache_loaded
from threatnet_irc.converters import may_administer, refuse  # registers the converters
from threatnet.address import AddressError, format_ip, parse_ip
from threatnet.atomic import remove_stale
from threatnet.conversation import SILENT, Talk, addressee
from threatnet.moderation import Kick, Member, Moderator, Rules, Sanction, VoiceChange
from threatnet.modes import DEFAULT_MODES, Change, batch, line_room
from threatnet.offenders import BanFileError, read_bans, write_bans
from threatnet.retry import Retries
from threatnet.topic import Topic, TopicError, parse_topic
from threatnet.whitelist import Whitelist, WhitelistError, WhitelistStore

BANS_FILE = "ThreatNetGuard.bans.json"  # in the data directory: bans the bot must lift
TICK = 5  # seconds between housekeeping runs: expired bans, config and file changes
HIDDEN_IP = "255.255.255.255"  # what WHOX shows a non-oper instead of the real IP
_RULES = object()  # the Rules' key in the settings cache
_SENDERS_MAX = 10000  # memoised senders (_police); a PING clears them anyway
SYNC_WAIT = 30  # seconds to wait for the WHO reply after the bot joins before judging anyway
Args = list[str]  # a command's words left after its converters (Limnoria's ``args``)
SERVED = ("servedChannel", "ThreatNetGuard")  # the channel named, else the one guarded
# What the bot keeps set, as Retries keys: the topic, the kept modes, "+b <mask>" (a ban
# to set) and "-b <mask>" (a ban to lift).
TOPIC, MODES = "topic", "modes"
WHITELIST_COMMANDS = ("tn whitelist add [<channel>] <ip|cidr|account:NAME>, tn whitelist "
                      "remove [<channel>] <ip|cidr|account:NAME>, tn whitelist list "
                      "[<channel>] (#channel,threatnet capability, or admin), tn whitelist "
                      "reload (admin capability)")

_parse_topic = functools.lru_cache(maxsize=256)(parse_topic)  # runs on every line


class _Channel:
    """What the bot keeps about one guarded channel."""

    def __init__(self, channel: str) -> None:
        self.moderator = Moderator(_now, channel=channel)  # also keeps the bans it set
        # nick -> "+v" | "-v", sent at the next flush
        self.pending: dict[str, VoiceChange] = ircutils.IrcDict()
        self.told = False  # logged that it cannot act without op
        self.topic: str | None = None  # the configured topic last enforced
        self.retries: Retries[str] = Retries(_now)  # TOPIC, MODES, "+b mask", "-b mask"
        self.bans_known = True  # False from the bot's JOIN until the ban list (368) came
        self.voices: Counter[str] = Counter()  # "+v"/"-v" sent, since start (metrics)
        self.refusals: Counter[str] = Counter()  # the server's refusal numerics, since start


class Voiced(NamedTuple):
    """A voiced member and why: the whitelist entry that vouches for it (None: none
    does, it is about to lose its voice) and what matched (its IP or account)."""

    nick: str
    ip: str | None
    account: str | None
    entry: str | None


class GuardStatus(NamedTuple):
    """One guarded channel as ``tn guard status``, ``tn overview`` and the metrics show
    it (taken on the main loop)."""

    network: str
    channel: str
    opped: bool
    voiced: list[Voiced]
    kicks: list[Kick]  # oldest first
    bans: list[tuple[str, float]]  # (mask, when it is lifted)
    counts: dict[str, int]  # "kick <kind>", "ban", "warn"
    voices: dict[str, int]
    refusals: dict[str, int]
    entries: int  # the channel's whitelist entries


class WhitelistState(NamedTuple):
    """The whitelist file as the Guard last read it."""

    path: str
    error: str | None  # why the last read failed (file:line: ...), the last good one in use
    mtime: float | None  # None: no file
    entries: int  # in every channel
    reload_errors: int  # failed reads since start


class _Sender(NamedTuple):
    """A channel line's sender as _police memoises it until ``expiry``: the ``channel``
    it is policed in (None: left alone; an op's lines are never judged, its questions
    are noted), as a ``member`` (for one left alone only the nick, host and account),
    whether it is ``trusted`` (qualifies for voice), and the
    server's CASEMAPPING and EXTBAN (ISUPPORT is a case-insensitive dict: slow per line)."""

    expiry: float
    channel: _Channel | None
    member: Member
    trusted: bool = False
    casemapping: str | None = None
    extban: str | None = None
    tagged: bool = False  # account-tag acknowledged: an untagged line means logged out


class _Network:
    def __init__(self) -> None:
        self.channels: dict[str, _Channel] = ircutils.IrcDict()  # channel -> _Channel
        self.ips: dict[str, int] = ircutils.IrcDict()  # nick -> IP key from a WHOX reply
        self.told_hosts = False  # logged which rule makes a host count as an IP


class ThreatNetGuard(TnHelp, callbacks.Plugin):
    """Runs ThreatNet channels: voices agents whose IP or services account is
    whitelisted, kicks other senders and misbehaving agents, and keeps the topic
    advertising the protocol and block period. Enable it per channel with
    plugins.ThreatNetGuard.enable; it needs channel operator status. Changing a
    channel's whitelist or topic needs the #channel,threatnet capability (or admin)."""

    threaded = False
    noIgnore = True  # an ignored flooder is still a channel member to police

    def __init__(self, irc: irclib.Irc) -> None:
        super().__init__(irc)
        self.tn.parent = self.tn.whitelist.parent = self.tn.guard.parent = self
        self._networks: dict[str, _Network] = {}
        # (network, channel, name) -> (value, expiry, stamp): registry values, the Rules
        # (name _RULES) and may_address's; one clear() forgets them all
        self._settings: dict[tuple[Any, ...], tuple[Any, float, Any]] = {}
        self._whitelist = Whitelist()  # until a file loads: trust nobody
        self._whitelist_error: str | None = None
        self._whitelist_errors = 0  # failed reads since start (metrics)
        self._whitelist_stamp: tuple[int, int, int] | None = None
        self._flushes: set[str] = set()  # networks with a flush scheduled
        self._upkeeps: dict[str, float] = {}  # network -> when its upkeep event runs
        # (network, channel, prefix) -> _Sender, see _police
        self._senders: dict[tuple[str, str, str], _Sender] = {}
        self._accounts = Accounts()  # who is logged in as whom, as services say
        for path in (self._whitelist_path(), self._bans_path()):
            for tmp in remove_stale(path):
                self.log.info("ThreatNetGuard: removed %s, left by an interrupted write", tmp)
        self._load_whitelist()
        self._load_bans()
        schedule.addPeriodicEvent(self._tick, TICK, name="ThreatNetGuard.tick", now=False)

    def reset(self) -> None:
        """A reconnect (Limnoria has already emptied that network's state): WHOX IPs
        learned on the old connection say nothing about who holds those nicks now."""
        for network, net in self._networks.items():
            irc = world.getIrc(network)
            if irc is None or not irc.state.channels:
                net.ips.clear()
                net.told_hosts = False
                self._accounts.forget(network)

    def die(self) -> None:
        schedule.removeEvent("ThreatNetGuard.tick")
        for network in self._flushes:
            schedule.removeEvent(f"ThreatNetGuard.flush.{network}")
        for network in self._upkeeps:
            schedule.removeEvent(f"ThreatNetGuard.upkeep.{network}")
        super().die()

    # -- state

    def _net(self, irc: irclib.Irc) -> _Network:
        return self._network(irc.network)

    def _network(self, network: str) -> _Network:
        net = self._networks.get(network)
        if net is None:
            net = self._networks[network] = _Network()
        return net

    def _channel(self, irc: irclib.Irc, channel: str) -> _Channel:
        return self._channel_on(irc.network, channel)

    def _channel_on(self, network: str, channel: str) -> _Channel:
        channels = self._network(network).channels
        c = channels.get(channel)
        if c is None:
            c = channels[channel] = _Channel(channel)
        return c

    def _get(self, name: str, irc: irclib.Irc, channel: str) -> Any:
        """A channel setting. Cached: a registry lookup costs more than the rest of
        policing a line."""
        return cached(self._settings, (irc.network, channel, name),
                      lambda: self.registryValue(name, channel, irc.network))

    @staticmethod
    def syncing(irc: irclib.Irc, channel: str) -> bool:
        """Whether the bot's join of ``channel`` still waits for its WHO reply (RPL_ENDOFWHO
        ends it; a server that never sends one is waited for SYNC_WAIT seconds)."""
        started = irc.startedSync.get(channel)
        return started is not None and _now() - started < SYNC_WAIT

    def _guarded(self, irc: irclib.Irc, channel: str) -> bool:
        return bool(channel) and channel in irc.state.channels \
            and self._get("enable", irc, channel)

    def _acting(self, irc: irclib.Irc, channel: str) -> bool:
        """Whether the bot guards ``channel`` and can: without op it logs once and does nothing."""
        if not self._guarded(irc, channel):
            return False
        c = self._channel(irc, channel)
        if irc.state.channels[channel].isOp(irc.nick):
            c.told = False
            return True
        if not c.told:
            c.told = True
            self.log.warning("ThreatNetGuard: not an operator in %s on %s, not guarding it "
                             "until opped.", channel, irc.network)
        return False

    # -- who qualifies for voice

    def _ip(self, irc: irclib.Irc, nick: str) -> int | None:
        """The nick's real IP key, if the bot can know it: a WHOX reply's (the server
        shows it to IRC operators), else, only where plugins.ThreatNetGuard.realHosts
        says this server shows every client's real IP as its host, an IP-literal host.
        Elsewhere a host that looks like an IP may be a vhost or a CHGHOST."""
        key = self._net(irc).ips.get(nick)
        if key is not None or not self._real_hosts(irc):
            return key
        host = irc.state.nicksToHostmasks.get(nick, "").rpartition("@")[2]
        try:
            return parse_ip(host)
        except AddressError:
            return None

    def _real_hosts(self, irc: irclib.Irc) -> bool:
        return cached(self._settings, (irc.network, "", "realHosts"),
                      lambda: self.registryValue("realHosts", network=irc.network))

    def _tell_host_rule(self, irc: irclib.Irc) -> None:
        """Say once per connection which rule makes a host count as an IP."""
        net = self._net(irc)
        if net.told_hosts:
            return
        net.told_hosts = True
        if self._real_hosts(irc):
            self.log.info("ThreatNetGuard on %s: a host that is an IP literal counts as the "
                          "client's IP for the whitelist (realHosts on: this server shows "
                          "real IPs, no vhosts or cloaks).", irc.network)
        else:
            self.log.info("ThreatNetGuard on %s: IP whitelist entries match only IPs from "
                          "WHOX, which the server shows to IRC operators (realHosts off: a "
                          "host that looks like an IP may be a vhost).", irc.network)

    def _account(self, irc: irclib.Irc, nick: str, msg: ircmsgs.IrcMsg | None = None,
                 ) -> str | None:
        """The nick's services account as services said it: the line's own account tag
        where the server acknowledged account-tag, else what ACCOUNT, extended-join
        and WHOX said (never a tag the server did not vouch for)."""
        if msg is not None and tags_count(irc):
            return msg.server_tags.get("account") or None
        return self._accounts.get(irc.network, nick)

    def _member(self, irc: irclib.Irc, state: irclib.ChannelState, nick: str,
                msg: ircmsgs.IrcMsg | None = None) -> Member:
        """``nick`` of the channel ``state`` as the Moderator sees it; with the line
        ``msg`` it sent, its host and account as on the line."""
        if msg is None:
            host = irc.state.nicksToHostmasks.get(nick, "").rpartition("@")[2]
        else:
            host = msg.host
        return Member(nick, host, self._ip(irc, nick), self._account(irc, nick, msg),
                      state.isVoice(nick), state.isHalfopPlus(nick))

    def _members(self, irc: irclib.Irc, channel: str) -> Iterator[Member]:
        """The channel's members as the Moderator sees them, read as it asks for them."""
        state = irc.state.channels[channel]
        for nick in state.users:
            yield self._member(irc, state, nick)

    def _evaluate(self, irc: irclib.Irc, channel: str, nick: str) -> bool:
        """Voice ``nick`` if it qualifies, devoice it if not; ops are left alone.

        Returns whether it qualifies. The caller checked that the bot is acting.
        """
        state = irc.state.channels[channel]
        if nick not in state.users or ircutils.strEqual(nick, irc.nick):
            return False
        return self._voice(irc, channel, self._member(irc, state, nick))

    def _voice(self, irc: irclib.Irc, channel: str, member: Member) -> bool:
        """Queue the voice change the Moderator wants for ``member``; whether it qualifies."""
        c = self._channel(irc, channel)
        voicing = c.moderator.voice(member, self._whitelist,
                                    irc.state.supported.get("casemapping"))
        if voicing.change:
            self._queue(irc, channel, member.nick, voicing.change)
        elif not member.opped:
            c.pending.pop(member.nick, None)  # a queued change went stale
        return voicing.qualifies

    def _evaluate_everywhere(self, irc: irclib.Irc, nick: str) -> None:
        for channel, state in list(irc.state.channels.items()):
            if nick in state.users and self._acting(irc, channel):
                self._evaluate(irc, channel, nick)

    def _evaluate_channel(self, irc: irclib.Irc, channel: str) -> None:
        for nick in sorted(irc.state.channels[channel].users):
            self._evaluate(irc, channel, nick)

    def _sync(self, irc: irclib.Irc, channel: str) -> None:
        """Bring a channel in line: modes, topic, every member's voice, expired bans."""
        if not self._acting(irc, channel):
            return
        self._keep(irc, channel, [MODES, TOPIC, *self._channel(irc, channel).retries.keys()])
        if not self.syncing(irc, channel):  # accounts and IPs arrive with the WHO reply
            self._evaluate_channel(irc, channel)
        self._lift_bans(irc, channel)

    # -- sending modes in batches

    def _per_line(self, irc: irclib.Irc) -> int | None:
        # MODES without a value (None) means no limit; absent means the RFC's 3.
        return irc.state.supported.get("modes", DEFAULT_MODES)

    def _queue(self, irc: irclib.Irc, channel: str, nick: str, mode: VoiceChange) -> None:
        """Queue a voice change: a full MODE line goes at once, the rest at the next
        driver tick, so a burst of joins read together becomes a few MODE lines."""
        pending = self._channel(irc, channel).pending
        pending[nick] = mode
        per_line = self._per_line(irc)
        if per_line is not None and len(pending) >= per_line:
            self._flush_channel(irc, channel)
        elif irc.network not in self._flushes:
            self._flushes.add(irc.network)
            schedule.addEvent(self._flush, _now(), name=f"ThreatNetGuard.flush.{irc.network}",
                              args=[irc.network])

    def _flush(self, network: str) -> None:
        self._flushes.discard(network)
        irc = world.getIrc(network)
        if irc is not None:
            for channel in list(self._net(irc).channels):
                self._flush_channel(irc, channel)

    def _flush_channel(self, irc: irclib.Irc, channel: str) -> None:
        c = self._channel(irc, channel)
        pending, c.pending = c.pending, ircutils.IrcDict()
        if not pending or not self._acting(irc, channel):
            return
        state = irc.state.channels[channel]
        changes = [(mode, nick) for nick, mode in pending.items()
                   if nick in state.users and (mode == "+v") != state.isVoice(nick)]
        c.voices.update(mode for mode, _ in changes)
        self._send_modes(irc, channel, changes)

    def _send_modes(self, irc: irclib.Irc, channel: str,
                    changes: Iterable[Change]) -> None:
        # sendMsg, not queueMsg: the throttled queue sends about one line a second.
        for line in batch(changes, self._per_line(irc), line_room(channel)):
            irc.sendMsg(ircmsgs.mode(channel, ircutils.joinModes(line)))

    # -- what the bot keeps set: topic, modes, bans, against what the server answers

    def _wanted_topic(self, irc: irclib.Irc, channel: str) -> str:
        uri, block, flags, quorum = (self._get(f"topic.{name}", irc, channel)
                                     for name in ("uri", "block", "flags", "quorum"))
        return parse_topic(uri).replace(block=block, flags=flags, quorum=quorum).format()

    def _keeps_topic(self, irc: irclib.Irc, channel: str) -> bool:
        """Whether the bot keeps the topic against everyone (not only against non-ops)."""
        return self._get("topic.keep", irc, channel) \
            and not self._get("topic.opsMayChange", irc, channel)

    def _topic(self, irc: irclib.Irc, channel: str) -> Topic:
        """The topic the channel's lines are judged by: the one the bot keeps (a topic it
        is reverting counts for nothing), else the channel's while it is a valid one."""
        wanted = _parse_topic(self._wanted_topic(irc, channel))
        if self._keeps_topic(irc, channel):
            return wanted
        try:
            return _parse_topic(irc.state.channels[channel].topic)
        except TopicError:
            return wanted

    def _too_long(self, irc: irclib.Irc, topic: str) -> str | None:
        """Why the server would cut ``topic`` (ISUPPORT TOPICLEN), or None."""
        limit = irc.state.supported.get("topiclen")
        size = len(topic.encode("utf-8"))
        if isinstance(limit, int) and 0 < limit < size:
            return (f"the topic is {size} bytes and the server keeps {limit} (TOPICLEN): "
                    f"shorten topic.uri or topic.flags")
        return None

    def _keep_topic(self, irc: irclib.Irc, channel: str, fresh: bool = False) -> None:
        """Set the configured topic unless the channel has it; ``fresh``: someone else
        just changed it, so send now whatever the backoff says."""
        c = self._channel(irc, channel)
        if not self._get("topic.keep", irc, channel):
            c.retries.held(TOPIC)
            return
        wanted = c.topic = self._wanted_topic(irc, channel)
        if irc.state.channels[channel].topic == wanted:
            self._held(irc, channel, TOPIC)
            return
        if c.retries.waiting(TOPIC) and not fresh:
            return
        long = self._too_long(irc, wanted)
        if long is None:
            irc.sendMsg(ircmsgs.topic(channel, wanted))
        self._sent(irc, channel, TOPIC, fresh)
        if long is not None:
            self._refused(irc, channel, TOPIC, long)

    def _keep_modes(self, irc: irclib.Irc, channel: str, fresh: bool = False) -> None:
        """Set the kept modes the channel lacks."""
        modes = irc.state.channels[channel].modes
        missing = "".join(m for m in self._get("modes", irc, channel) if m not in modes)
        if not missing:
            self._held(irc, channel, MODES)
        elif fresh or not self._channel(irc, channel).retries.waiting(MODES):
            irc.sendMsg(ircmsgs.mode(channel, "+" + missing))
            self._sent(irc, channel, MODES, fresh)

    def _keep_bans(self, irc: irclib.Irc, channel: str, sign: str, masks: Iterable[str],
                   fresh: bool = False) -> None:
        """Set (``sign`` "+") or lift ("-") the bans ``masks`` until the ban list shows
        it. A ban to set that the bot no longer holds (lifted, expired) is dropped."""
        c = self._channel(irc, channel)
        if not c.bans_known:  # nothing to tell what holds yet: do368 comes back to it
            return
        bans, held = irc.state.channels[channel].bans, c.moderator.bans
        send = []
        for mask in masks:
            key = f"{sign}b {mask}"
            if sign == "-" and mask not in bans and mask in held:
                self._unbanned(irc, channel, mask)
            elif (mask in bans) == (sign == "+") or mask not in held:
                self._held(irc, channel, key)
            elif fresh or not c.retries.waiting(key):
                send.append(mask)
        self._send_modes(irc, channel, [(f"{sign}b", mask) for mask in send])
        for mask in send:
            self._sent(irc, channel, f"{sign}b {mask}", fresh)

    def _sent(self, irc: irclib.Irc, channel: str, key: str, fresh: bool = False) -> None:
        attempt = self._channel(irc, channel).retries.sent(key, fresh=fresh)
        if attempt.attempts > 1:
            self.log.info("ThreatNetGuard: %s in %s on %s did not hold (%s): sent again, "
                          "attempt %s, next check in %.0f s", _what(key), channel, irc.network,
                          attempt.reason or "no answer from the server", attempt.attempts,
                          attempt.due - _now())
        self._schedule_upkeep(irc.network)

    def _held(self, irc: irclib.Irc, channel: str, key: str) -> None:
        attempt = self._channel(irc, channel).retries.held(key)
        if attempt is not None and attempt.reason is not None:
            self.log.info("ThreatNetGuard: %s in %s on %s holds after %s attempts",
                          _what(key), channel, irc.network, attempt.attempts)

    def _refused(self, irc: irclib.Irc, channel: str, key: str, reason: str) -> None:
        attempt = self._channel(irc, channel).retries.refused(key, reason)
        self.log.warning("ThreatNetGuard: %s in %s on %s refused: %s; retrying in %.0f s "
                         "(attempt %s)", _what(key), channel, irc.network, reason,
                         max(0.0, attempt.due - _now()), attempt.attempts)
        self._schedule_upkeep(irc.network)

    def _refusal(self, irc: irclib.Irc, msg: ircmsgs.IrcMsg) -> None:
        """A server's refusal numeric for a guarded channel: log it, and say so when the
        bot retries what it was waiting to see hold."""
        if len(msg.args) < 3 or not self._guarded(irc, msg.args[1]):
            return
        channel, command = msg.args[1], msg.command
        reason = f"{command} {msg.args[-1]}"
        self._channel(irc, channel).refusals[command] += 1
        retries = self._channel(irc, channel).retries
        if command == "437":
            keys = [TOPIC]
        elif command == "478" and len(msg.args) > 3:  # 478 me #chan mask b :full
            keys = [f"+b {msg.args[2]}"]
        elif command == "696" and len(msg.args) > 4 and msg.args[2] == "b":
            keys = [f"{sign}b {msg.args[3]}" for sign in "+-"]  # 696 me #chan b mask :why
        else:
            keys = [key for key in retries.keys() if retries.waiting(key)]
        keys = [key for key in keys if key in retries]
        for key in keys:
            self._refused(irc, channel, key, reason)
        if not keys:
            self.log.warning("ThreatNetGuard: the server refused a command in %s on %s: %s",
                             channel, irc.network, reason)

    # Numerics by which servers refuse what a channel bot sends: 437 (InspIRCd: a second
    # topic change within one second), 477, 478 (ban list full), 482 (not a channel
    # operator), 489, 696 (invalid mode parameter), 972, 974 (InspIRCd).
    do437 = do477 = do478 = do482 = do489 = do696 = do972 = do974 = _refusal

    def _schedule_upkeep(self, network: str) -> None:
        """Run _upkeep when the earliest retry of the network is due."""
        due = min((t for c in self._network(network).channels.values()
                   if (t := c.retries.next_due()) is not None), default=None)
        at = self._upkeeps.get(network)
        if due is None or at is not None and at <= due:
            return
        name = f"ThreatNetGuard.upkeep.{network}"
        if at is not None:
            schedule.removeEvent(name)
        schedule.addEvent(self._upkeep, due, name=name, args=[network])
        self._upkeeps[network] = due

    def _upkeep(self, network: str) -> None:
        """Check what is due: what held is done, what did not is sent again."""
        self._upkeeps.pop(network, None)
        irc = world.getIrc(network)
        if irc is None:
            return
        for channel, c in list(self._net(irc).channels.items()):
            due = c.retries.due()
            if due and self._acting(irc, channel):  # without op: _sync redoes it on +o
                self._keep(irc, channel, due)
            for key in c.retries.due():  # not sent (no op, no ban list yet): wait longer
                c.retries.sent(key)
        self._schedule_upkeep(network)

    def _keep(self, irc: irclib.Irc, channel: str, keys: Iterable[str]) -> None:
        keys = list(keys)
        if MODES in keys:
            self._keep_modes(irc, channel)
        if TOPIC in keys:
            self._keep_topic(irc, channel)
        for sign in "+-":
            masks = [key[3:] for key in keys if key.startswith(f"{sign}b ")]
            if masks:
                self._keep_bans(irc, channel, sign, masks)

    def _set_topic(self, irc: irclib.Irc, channel: str, opts: list[tuple[str, str]]) -> None:
        """``tn topic --block …``: set the options in the channel's config and keep the
        new topic; a value the registry refuses, or a topic too long for the server,
        changes nothing (errors through ``irc``)."""
        topic = conf.supybot.plugins.ThreatNetGuard.topic
        values = [topic.get(name).getSpecific(network=irc.network, channel=channel,
                                              fallback_to_channel=False) for name, _ in opts]
        old = [value() for value in values]
        try:
            for value, (name, text) in zip(values, opts):
                try:
                    value.set(text)
                except registry.InvalidRegistryValue as e:
                    raise callbacks.Error(f"--{name} {text}: {e}") from None
            self._settings.clear()
            long = self._too_long(irc, self._wanted_topic(irc, channel))
            if long is not None:
                raise callbacks.Error(long)
        except callbacks.Error as e:
            for value, before in zip(values, old):
                value.setValue(before)
            self._settings.clear()
            irc.error(str(e), Raise=True)
        if self._acting(irc, channel):
            self._keep_topic(irc, channel, fresh=True)

    # -- policing channel lines

    def _rules(self, irc: irclib.Irc, channel: str) -> Rules:
        """The channel's Rules, rebuilt when the topic changes or the settings cache
        runs out (clock.cached): every line is judged by them."""
        def build() -> Rules:
            topic = self._topic(irc, channel)
            get = functools.partial(self._get, irc=irc, channel=channel)
            return Rules(block=topic.block, tolerant="tolerant" in topic.flags,
                         tolerant_window=get("kick.tolerantWindow"),
                         flood_lines=get("flood.lines"), flood_seconds=get("flood.seconds"),
                         commands_from_anyone=get("commands.fromAnyone"),
                         reply_window=get("commands.replyWindow"),
                         answer_lines=get("commands.answerLines"),
                         questions=get("commands.questions"),
                         question_window=get("commands.questionWindow"),
                         hint=self._hint(irc, channel),
                         kick_bogons=get("kick.bogons"), kick_repeats=get("kick.repeats"),
                         repeat_grace=get("kick.repeatGrace"),
                         require_signature=get("kick.unsigned"), ban_kicks=get("ban.kicks"),
                         ban_window=get("ban.window"), ban_duration=get("ban.duration"),
                         quorum=topic.quorum)
        return cached(self._settings, (irc.network, channel, _RULES), build,
                      stamp=irc.state.channels[channel].topic)

    def _is_command(self, irc: irclib.Irc, msg: ircmsgs.IrcMsg) -> bool:
        """Whether the line addresses one of the bot's commands (any loaded plugin's)."""
        if not may_address(irc, msg, self._settings):
            return False
        words = [callbacks.canonicalName(w) for w in callbacks.addressed(irc, msg).split()[:3]]
        return bool(words) and any(cb.getCommand(words) for cb in irc.callbacks
                                   if isinstance(cb, callbacks.Commands))

    def _hint(self, irc: irclib.Irc, channel: str) -> str:
        """How an unvoiced member may speak here, for the reason it is kicked with."""
        chars = conf.supybot.reply.whenAddressedBy.chars.getSpecific(
            network=irc.network, channel=channel)()
        ask = f"{chars[0]}tn help" if chars else f"{irc.nick}: tn help"
        return f"; others may ask the bots ({ask} lists the commands) or a voiced agent " \
               f"(nick: question)"

    def _talk(self, irc: irclib.Irc, channel: str, msg: ircmsgs.IrcMsg) -> Talk:
        """Whom the line speaks to: a command to this bot, a present member it addresses."""
        command = self._is_command(irc, msg)
        to = addressee(msg.args[1])
        state = irc.state.channels[channel]
        if to is None or to not in state.users:
            return Talk(command, heard=frozenset(state.users)) if command else SILENT
        return Talk(command, to, state.isVoice(to))

    def _police(self, irc: irclib.Irc, msg: ircmsgs.IrcMsg) -> None:
        """One channel line: the sender from irc.state (memoised), the Moderator's
        ruling, and the NOTICE, or MODE +b and KICK, it calls for."""
        channel = msg.channel
        if channel is None or len(msg.args) < 2:
            return
        key = (irc.network, channel, msg.prefix)  # a new host (no CHGHOST) is a new key
        sender = self._senders.get(key)
        now = _now()
        tags = msg.server_tags
        if sender is None or not now < sender.expiry <= now + TTL \
                or (sender.tagged and tags.get("account") != sender.member.account):
            # new, stale (or the clock stepped back), or an account tag the server
            # vouches for says it logged in or out
            if len(self._senders) >= _SENDERS_MAX:
                self._senders.clear()
            sender = self._senders[key] = self._sender(irc, msg, channel, now + TTL)
        c = sender.channel
        if c is None:
            return
        rules = self._rules(irc, channel)
        talk = self._talk(irc, channel, msg)
        if sender.member.opped:  # left alone, but its questions are open all the same
            c.moderator.op_said(msg.nick, talk, rules, sender.casemapping)
            return
        ruling = c.moderator.police(
            msg.args[1], sender.member, rules, self._whitelist, trusted=sender.trusted,
            talk=talk, members=self._members(irc, channel), casemapping=sender.casemapping,
            extban=sender.extban)
        verdict = ruling.verdict
        if verdict.action == "warn":
            irc.sendMsg(ircmsgs.notice(msg.nick, f"{channel}: {verdict.reason}. Another one "
                                       f"within {rules.tolerant_window:g} s gets you kicked."))
        elif ruling.sanction is not None:
            self._kick(irc, channel, msg.nick, ruling.sanction)

    def _sender(self, irc: irclib.Irc, msg: ircmsgs.IrcMsg, channel: str,
                expiry: float) -> _Sender:
        """The sender of ``msg`` as _police memoises it until ``expiry`` (TTL): any
        message that may change it clears the memo (inFilter: unless an earlier
        plugin's inFilter drops the message, then the TTL bounds it)."""
        nick = msg.nick
        # the account also for those left alone: see _police
        alone = _Sender(expiry, None, Member(nick, msg.host,
                                             account=self._account(irc, nick, msg)),
                        tagged=tags_count(irc))
        if not ircutils.isUserHostmask(msg.prefix) or ircutils.strEqual(nick, irc.nick) \
                or not self._acting(irc, channel):
            return alone
        state = irc.state.channels[channel]
        if nick not in state.users or self.syncing(irc, channel):
            # outsiders cannot be kicked (+n keeps them out); while the bot's join
            # syncs, nobody's account is known yet
            return alone
        member = self._member(irc, state, nick, msg)
        # ops are left alone (_police only notes their questions); others are voiced
        # if they qualify, also one who spoke before its +v
        trusted = not member.opped and self._voice(irc, channel, member)
        supported = irc.state.supported
        return _Sender(expiry, self._channel(irc, channel), member, trusted,
                       supported.get("casemapping"), supported.get("extban"), tags_count(irc))

    def inFilter(self, irc: irclib.Irc, msg: ircmsgs.IrcMsg) -> ircmsgs.IrcMsg:
        if msg.command == "PRIVMSG":
            if msg.channel is not None and len(msg.args) > 1:
                may_address(irc, msg, self._settings)  # spares Owner its costly test
        elif msg.command != "NOTICE":
            # Anything but a channel line (MODE, JOIN, NICK, ACCOUNT, CHGHOST, WHO
            # replies, ...) may change who is policed and trusted: forget the memo.
            self._accounts.feed(irc, msg)
            self._senders.clear()
        return msg

    def _kick(self, irc: irclib.Irc, channel: str, nick: str, sanction: Sanction) -> None:
        """Send the Moderator's Sanction: the ban first (no rejoin in between), then the kick."""
        if sanction.ban is not None:
            self._save_bans()
            self._keep_bans(irc, channel, "+", [sanction.ban], fresh=True)
        irc.sendMsg(ircmsgs.kick(channel, nick, sanction.reason))
        self.log.info("ThreatNetGuard: kicked %s (%s) from %s on %s: %s",
                      nick, sanction.offender, channel, irc.network, sanction.reason)

    def _lift_bans(self, irc: irclib.Irc, channel: str) -> None:
        """Lift the bans whose time is up; each is held (and saved) until the ban list
        shows it gone (doMode), so a refused lift is retried, also after a restart."""
        due = self._channel(irc, channel).moderator.bans.due()
        if due and self._acting(irc, channel):
            self._keep_bans(irc, channel, "-", due)

    def _unbanned(self, irc: irclib.Irc, channel: str, mask: str) -> None:
        """A ban the bot set is gone (it lifted it, or someone else did): forget it, and
        invite the agent it kept out back in (join-on-invite, see ThreatNetCache)."""
        c = self._channel(irc, channel)
        for sign in "+-":
            self._held(irc, channel, f"{sign}b {mask}")
        nick = c.moderator.lifted(mask)
        self._save_bans()
        if nick is not None and nick not in irc.state.channels[channel].users:
            irc.sendMsg(ircmsgs.invite(nick, channel))
            self.log.info("ThreatNetGuard: ban %s lifted in %s on %s: invited %s back",
                          mask, channel, irc.network, nick)

    # -- temporary bans across restarts

    def _bans_path(self) -> str:
        return os.path.join(conf.supybot.directories.data(), BANS_FILE)

    def _save_bans(self) -> None:
        """Save the temporary bans still to be lifted (rare: on a ban and a lift), so
        that a restarted bot lifts them in time instead of leaving them for good."""
        rows = [(network, channel, mask, until)
                for network, net in self._networks.items()
                for channel, c in net.channels.items() for mask, until in c.moderator.bans.items()]
        try:
            write_bans(self._bans_path(), rows)
        except OSError as e:
            self.log.error("ThreatNetGuard: cannot save the temporary bans (a restart would "
                           "leave them in place): %s", e)

    def _load_bans(self) -> None:
        try:
            rows = read_bans(self._bans_path())
        except BanFileError as e:
            self.log.error("ThreatNetGuard: temporary bans not restored, lift them by hand: %s",
                           e)
            return
        for network, channel, mask, until in rows:
            self._channel_on(network, channel).moderator.bans.hold(mask, until)
        if rows:
            self.log.info("ThreatNetGuard: %s temporary bans restored", len(rows))

    # -- what operators and the metrics see (ThreatNetCache asks through getCallback)

    def guard_status(self, irc: irclib.Irc, channel: str) -> GuardStatus | None:
        """The state of a guarded channel, or None if the bot does not guard it."""
        if not self._guarded(irc, channel):
            return None
        c = self._channel(irc, channel)
        state = irc.state.channels[channel]
        casemapping = irc.state.supported.get("casemapping")
        voiced = []
        for nick in sorted(state.voices):
            member = self._member(irc, state, nick)
            ip = format_ip(member.key) if member.key is not None else None
            voiced.append(Voiced(nick, ip, member.account, self._whitelist.why(
                channel, member.key, member.account, casemapping)))
        moderator = c.moderator
        return GuardStatus(irc.network, channel, state.isOp(irc.nick), voiced,
                           list(moderator.kicks),
                           sorted(moderator.bans.items(), key=lambda b: b[1]),
                           dict(moderator.counts), dict(c.voices), dict(c.refusals),
                           len(self._whitelist.entries(channel)))

    def guard_statuses(self) -> list[GuardStatus]:
        """Every guarded channel on every network."""
        found = []
        for irc in world.ircs:
            for channel in list(irc.state.channels):
                status = self.guard_status(irc, channel)
                if status is not None:
                    found.append(status)
        return found

    def whitelist_state(self) -> WhitelistState:
        """The whitelist file as last read: path, error, modification time, entries."""
        path = self._whitelist_path()
        stamp = self._whitelist_stamp
        whitelist = self._whitelist
        return WhitelistState(path, self._whitelist_error,
                              stamp[0] / 1e9 if stamp is not None else None,
                              sum(len(whitelist.entries(c)) for c in whitelist.channels()),
                              self._whitelist_errors)

    def summary(self, irc: irclib.Irc, channel: str) -> str:
        """The Guard's part of ``tn overview``: one clause."""
        status = self.guard_status(irc, channel)
        if status is None:
            return "Guard: not guarding it"
        wl = self.whitelist_state()
        file = f"whitelist ERROR: {wl.error}" if wl.error else \
            f"whitelist ok, {nItems(status.entries, 'entry')} here"
        kicks = sum(n for k, n in status.counts.items() if k.startswith("kick "))
        return (f"Guard: {'op' if status.opped else 'NOT OP (not guarding)'}, "
                f"{len(status.voiced)} voiced, {kicks} kicks, {len(status.bans)} bans held, "
                f"{file}")

    def _status_lines(self, irc: irclib.Irc, channel: str) -> list[str]:
        status = self.guard_status(irc, channel)
        if status is None:
            return [f"{channel}: not guarded (plugins.ThreatNetGuard.enable), or the bot is "
                    f"not in it"]
        now = _now()
        voiced = ", ".join(
            f"{v.nick} ({_why(v)})" for v in status.voiced) or "nobody"
        kicks = "; ".join(
            f"{k.nick} {round(now - k.at)} s ago: {k.reason}" for k in reversed(status.kicks[-3:]))
        counted = ", ".join(f"{kind} {n}" for kind, n in sorted(status.counts.items()))
        bans = ", ".join(f"{mask} ({max(0, round(until - now))} s left)"
                         for mask, until in status.bans) or "none"
        wl = self.whitelist_state()
        loaded = f"ERROR, the last good one in use: {wl.error}" if wl.error else "loaded"
        mtime = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(wl.mtime)) \
            if wl.mtime is not None else "no file"
        return [f"{channel}: {'op' if status.opped else 'NOT OP: not guarding it'}; voiced "
                f"{len(status.voiced)}: {voiced}",
                f"{channel}: kicks ({counted or 'none'}), latest: {kicks or 'none'}",
                f"{channel}: bans held: {bans}",
                f"{channel}: whitelist {wl.path}: {loaded}, modified {mtime}, "
                f"{nItems(status.entries, 'entry')} here, {wl.entries} in all"]

    # -- the whitelist

    def whitelisted_networks(self, channel: str) -> list[str]:
        """The channel's whitelisted networks (ThreatNetCache protects them)."""
        return [e for e in self._whitelist.entries(channel) if not e.startswith("account:")]

    def _whitelist_path(self) -> str:
        path = self.registryValue("whitelist")
        return path if os.path.isabs(path) else os.path.join(conf.supybot.directories.data(), path)

    def _store(self) -> WhitelistStore:
        return WhitelistStore(self._whitelist_path())

    def _load_whitelist(self) -> str | None:
        """(Re)read the file; an invalid one keeps the last good whitelist (at first the
        empty one: trust nobody). Returns the error, or None."""
        self._whitelist_stamp = _stamp(self._whitelist_path())
        try:
            whitelist = self._store().load()
        except WhitelistError as e:
            self._whitelist_error = str(e)
            self._whitelist_errors += 1
            self.log.error("ThreatNetGuard: whitelist not loaded, keeping the last good one: %s", e)
            return self._whitelist_error
        self._whitelist_error = None
        self._apply(whitelist)
        return None

    def _apply(self, whitelist: Whitelist) -> None:
        """Use ``whitelist`` from now on and re-evaluate every guarded channel at once."""
        self._whitelist = whitelist
        self._senders.clear()
        for irc in world.ircs:
            for channel in list(irc.state.channels):
                if self._acting(irc, channel):
                    self._evaluate_channel(irc, channel)

    def _edit_whitelist(self, irc: callbacks.NestedCommandsIrcProxy,
                        edit: Callable[[str, str], Whitelist], channel: str, entry: str) -> None:
        try:
            whitelist = edit(channel, entry)
        except WhitelistError as e:
            irc.error(str(e), Raise=True)
        self._whitelist_error = None
        self._whitelist_stamp = _stamp(self._whitelist_path())
        self._apply(whitelist)

    # -- housekeeping

    def _tick(self) -> None:
        if _stamp(self._whitelist_path()) != self._whitelist_stamp:
            self._load_whitelist()
        for irc in world.ircs:
            for channel, c in list(self._net(irc).channels.items()):
                if not self._guarded(irc, channel):
                    continue
                c.moderator.prune(self._rules(irc, channel))
                if self._acting(irc, channel):
                    if channel in irc.startedSync and not self.syncing(irc, channel):
                        del irc.startedSync[channel]  # no WHO reply came: judge without it
                        self._sync(irc, channel)
                    self._lift_bans(irc, channel)
                    if c.topic != self._wanted_topic(irc, channel):  # the config changed
                        self._keep_topic(irc, channel, fresh=True)

    # -- IRC events

    def do366(self, irc: irclib.Irc, msg: ircmsgs.IrcMsg) -> None:
        """End of NAMES after the bot joins: it knows the members and whether it is op."""
        if len(msg.args) >= 2:
            if self._guarded(irc, msg.args[1]):
                self._tell_host_rule(irc)
            self._sync(irc, msg.args[1])

    def do368(self, irc: irclib.Irc, msg: ircmsgs.IrcMsg) -> None:
        """End of the ban list Limnoria asks for on joining: now the bans the bot must lift
        (or still set) can be told from those that are gone."""
        if len(msg.args) >= 2 and self._guarded(irc, msg.args[1]):
            channel = msg.args[1]
            self._channel(irc, channel).bans_known = True
            if self._acting(irc, channel):
                self._keep(irc, channel, self._channel(irc, channel).retries.keys())
                self._lift_bans(irc, channel)

    def do315(self, irc: irclib.Irc, msg: ircmsgs.IrcMsg) -> None:
        """End of WHO: after the bot's join, every member's account and IP are known."""
        if len(msg.args) >= 2 and irc.isChannel(msg.args[1]):
            self._sync(irc, msg.args[1])

    def doJoin(self, irc: irclib.Irc, msg: ircmsgs.IrcMsg) -> None:
        if not msg.args:
            return
        if ircutils.strEqual(msg.nick, irc.nick):  # our own: wait for NAMES (do366)
            for channel in msg.args[0].split(","):  # and the ban list (do368)
                self._channel(irc, channel).bans_known = False
            return
        for channel in msg.args[0].split(","):
            if self._acting(irc, channel):
                self._evaluate(irc, channel, msg.nick)
                if self._ip(irc, msg.nick) is None and "whox" in irc.state.supported \
                        and self._get("whoxJoins", irc, channel):
                    # Queued, not sent: a burst of joins must not become a burst of queries.
                    irc.queueMsg(ircmsgs.who(msg.nick, args=("%tuhnairf,1",)))

    def do354(self, irc: irclib.Irc, msg: ircmsgs.IrcMsg) -> None:
        """A WHOX reply (``%tuhnairf,1``, as Limnoria sends on join): it may show the real IP."""
        if len(msg.args) != 9 or msg.args[1] != "1":
            return
        ip, nick = msg.args[3], msg.args[5]
        ips = self._net(irc).ips
        try:
            key = None if ip == HIDDEN_IP else parse_ip(ip)
        except AddressError:
            key = None
        # A late reply for a nick that left must not vouch for whoever takes it next.
        if key is None or not any(nick in s.users for s in irc.state.channels.values()):
            ips.pop(nick, None)
        else:
            ips[nick] = key
        self._evaluate_everywhere(irc, nick)

    def doAccount(self, irc: irclib.Irc, msg: ircmsgs.IrcMsg) -> None:
        if msg.nick:
            self._evaluate_everywhere(irc, msg.nick)

    doChghost = doAccount

    def doNick(self, irc: irclib.Irc, msg: ircmsgs.IrcMsg) -> None:
        if not msg.args:
            return
        ips = self._net(irc).ips
        if msg.nick in ips:
            ips[msg.args[0]] = ips.pop(msg.nick)
        self._evaluate_everywhere(irc, msg.args[0])

    def doQuit(self, irc: irclib.Irc, msg: ircmsgs.IrcMsg) -> None:
        self._net(irc).ips.pop(msg.nick, None)

    def doPart(self, irc: irclib.Irc, msg: ircmsgs.IrcMsg) -> None:
        self._forget(irc, msg.nick)

    def doKick(self, irc: irclib.Irc, msg: ircmsgs.IrcMsg) -> None:
        if len(msg.args) >= 2:
            for nick in msg.args[1].split(","):
                self._forget(irc, nick)

    def _forget(self, irc: irclib.Irc, nick: str) -> None:
        """Drop a nick's WHOX IP once it shares no channel with the bot."""
        if not any(nick in state.users for state in irc.state.channels.values()):
            self._net(irc).ips.pop(nick, None)

    def doMode(self, irc: irclib.Irc, msg: ircmsgs.IrcMsg) -> None:
        channel = msg.args[0] if msg.args else ""
        if not self._guarded(irc, channel):
            return
        # Our own MODE lines are checked too: a +v set through another plugin or by
        # hand must still match the whitelist (_evaluate changes nothing that does).
        own = ircutils.strEqual(msg.nick, irc.nick)
        changes = ircutils.separateModes(msg.args[1:])
        if not own and any(mode == "+o" and ircutils.strEqual(str(arg), irc.nick)
                           for mode, arg in changes):
            self._sync(irc, channel)
            return
        if not self._acting(irc, channel):
            return
        kept = self._get("modes", irc, channel)
        lost = any(mode[0] == "-" and mode[1] in kept for mode, _ in changes)
        if lost and not own:
            self._keep_modes(irc, channel, fresh=True)
        held = self._channel(irc, channel).moderator.bans
        for mode, arg in changes:
            if mode in ("+v", "-v", "-o", "-h"):  # voice is the whitelist's to give
                self._evaluate(irc, channel, str(arg))
            elif mode == "-b" and arg in held:
                self._unbanned(irc, channel, str(arg))
            elif mode == "+b" and arg in held:
                self._held(irc, channel, f"+b {arg}")

    def doTopic(self, irc: irclib.Irc, msg: ircmsgs.IrcMsg) -> None:
        """A topic change by anyone else is reverted at once (and retried until it holds),
        unless topic.opsMayChange lets a channel operator's stand."""
        channel = msg.args[0] if len(msg.args) == 2 else ""
        if not self._acting(irc, channel):
            return
        if ircutils.strEqual(msg.nick, irc.nick):
            if msg.args[1] == self._channel(irc, channel).topic:
                self._held(irc, channel, TOPIC)
            return
        state = irc.state.channels[channel]
        if self._get("topic.opsMayChange", irc, channel) and state.isOp(msg.nick):
            self._held(irc, channel, TOPIC)  # it stands: stop restoring ours
        else:
            self._keep_topic(irc, channel, fresh=True)

    def doPrivmsg(self, irc: irclib.Irc, msg: ircmsgs.IrcMsg) -> None:
        self._police(irc, msg)

    doNotice = doPrivmsg

    class tn(TnGroup):
        """ThreatNet commands."""

        def answers_help(self) -> bool:
            return not cache_loaded()  # with ThreatNetCache loaded, it answers tn help

        def topic(self, irc: callbacks.NestedCommandsIrcProxy, msg: ircmsgs.IrcMsg,
                  args: Args, channel: str, opts: list[tuple[str, str]]) -> None:
            """[<channel>] [--uri <uri>] [--block <seconds>] [--quorum <n>] [--flags "<flag> ..."]

            Shows the ThreatNet topic kept in <channel> (anyone may ask). The options
            change the protocol URI, the block period, the quorum or the flags in
            the config, and the topic follows: they need the #channel,threatnet
            capability (or admin).
            """
            guard = self.parent
            if opts:
                if not may_administer(msg.prefix, channel):
                    refuse(irc, channel)
                guard._set_topic(irc, channel, opts)
            wanted = guard._wanted_topic(irc, channel)
            state = irc.state.channels.get(channel)
            retry = guard._channel(irc, channel).retries.get(TOPIC)
            pending = "" if retry is None else \
                f"; not held yet: {retry.reason or 'no answer from the server'}, attempt " \
                f"{retry.attempts}, next in {max(0, retry.due - _now()):.0f} s"
            if opts or state is None or state.topic == wanted:
                irc.reply(wanted)
            else:
                irc.reply(f"{state.topic or '(no topic)'} (configured: {wanted}{pending})")

        topic = wrap(topic, [SERVED, getopts({"uri": "something", "block": "something",
                                              "quorum": "something", "flags": "anything"})])

        class guard(callbacks.Commands):
            """ThreatNet channel bot commands."""

            def guard(self, irc: callbacks.NestedCommandsIrcProxy, msg: ircmsgs.IrcMsg,
                      args: Args) -> None:
                """takes no arguments

                Lists the Guard's commands: tn guard status [<channel>] (the
                #channel,threatnet capability, or admin). Anyone may ask.
                """
                irc.reply("tn guard status [<channel>] (#channel,threatnet capability, or "
                          "admin)")

            def status(self, irc: callbacks.NestedCommandsIrcProxy, msg: ircmsgs.IrcMsg,
                       args: Args, channel: str) -> None:
                """[<channel>]

                The Guard's state in <channel>: whether it is op, every voiced agent
                and why (the whitelisted IP network or services account that vouches
                for it; an agent with a client certificate shows as the account
                services logged it in as), kicks by kind and the latest three with
                their reasons, the bans it holds with the time left, and the
                whitelist file (path, loaded or the error with file:line, when it was
                modified, entries). Needs the #channel,threatnet capability (or admin).
                """
                for line in self.parent._status_lines(irc, channel):
                    irc.reply(line)

            status = wrap(status, [SERVED, "channelAdmin"])

        class whitelist(callbacks.Commands):
            """ThreatNet whitelist commands."""

            def whitelist(self, irc: callbacks.NestedCommandsIrcProxy, msg: ircmsgs.IrcMsg,
                          args: Args) -> None:
                """takes no arguments

                Lists the whitelist commands: tn whitelist add [<channel>]
                <ip|cidr|account:NAME>, tn whitelist remove [<channel>]
                <ip|cidr|account:NAME>, tn whitelist list [<channel>] (these need the
                #channel,threatnet capability, or admin), tn whitelist reload (admin).
                Anyone may ask.
                """
                irc.reply(WHITELIST_COMMANDS)

            def add(self, irc: callbacks.NestedCommandsIrcProxy, msg: ircmsgs.IrcMsg,
                    args: Args, channel: str, entry: str) -> None:
                """[<channel>] <ip|cidr|account:NAME>

                Adds the entry to <channel>'s whitelist, saves the file and voices
                whoever now qualifies. Needs the #channel,threatnet capability (or
                admin).
                """
                self.parent._edit_whitelist(irc, self.parent._store().add, channel, entry)
                irc.replySuccess(f"{entry} added to {channel}.")

            add = wrap(add, [SERVED, "channelAdmin", "whitelistEntry"])

            def remove(self, irc: callbacks.NestedCommandsIrcProxy, msg: ircmsgs.IrcMsg,
                       args: Args, channel: str, entry: str) -> None:
                """[<channel>] <ip|cidr|account:NAME>

                Removes the entry from <channel>'s whitelist, saves the file and
                devoices whoever no longer qualifies. Needs the #channel,threatnet
                capability (or admin).
                """
                self.parent._edit_whitelist(irc, self.parent._store().remove, channel, entry)
                irc.replySuccess(f"{entry} removed from {channel}.")

            remove = wrap(remove, [SERVED, "channelAdmin", "whitelistEntry"])

            def list(self, irc: callbacks.NestedCommandsIrcProxy, msg: ircmsgs.IrcMsg,
                     args: Args, channel: str) -> None:
                """[<channel>]

                Lists <channel>'s whitelist entries, and says so if the file is
                invalid (the last good whitelist is still in use). Needs the
                #channel,threatnet capability (or admin).
                """
                guard = self.parent
                entries = guard._whitelist.entries(channel)
                text = ", ".join(entries) if entries else f"nobody is whitelisted in {channel}"
                if guard._whitelist_error:
                    text += f" (whitelist file invalid, last good one in use: " \
                            f"{guard._whitelist_error})"
                irc.reply(text)

            list = wrap(list, [SERVED, "channelAdmin"])

            def reload(self, irc: callbacks.NestedCommandsIrcProxy, msg: ircmsgs.IrcMsg,
                       args: Args) -> None:
                """takes no arguments

                Reads the whitelist file again and applies it at once. An invalid
                file changes nothing. Needs the admin capability (the file serves
                every channel).
                """
                error = self.parent._load_whitelist()
                if error:
                    irc.error(f"whitelist not loaded, last good one in use: {error}", Raise=True)
                irc.replySuccess()

            reload = wrap(reload, ["admin"])


def _why(voiced: Voiced) -> str:
    """Why a voiced member is voiced, as ``tn guard status`` says it."""
    if voiced.entry is None:
        return "NOT whitelisted: to be devoiced"
    if voiced.entry.startswith("account:"):
        return f"account {voiced.account}"
    return f"IP {voiced.ip} in {voiced.entry}"


def _what(key: str) -> str:
    """A Retries key as the log names it: "topic", "kept modes", "+b <mask>", "-b <mask>"."""
    return "kept modes" if key == MODES else key


def _stamp(path: str) -> tuple[int, int, int] | None:
    """What tells a changed file: modification time, size and inode (None if missing)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


Class = ThreatNetGuard
