"""The Network Bridge in ThreatNetCache: the Limnoria glue (settings registered in
config.py) around threatnet.bridge.BridgeSet (which holds every rule: combined cache, loop
safety, quiet periods, block periods, trust, filters, pacing).

One plugin instance serves every network Limnoria is connected to, so one
``Bridging`` serves every bridge. The plugin calls it at these points:

- ``attach(st)`` when it starts listening to a channel: a bridged channel's state
  gets ``st.bridge`` set (to its ``Side``), which is all the hot path tests;
- ``heard(st, envelope)`` from doPrivmsg for every valid threat line of a bridged
  channel, trusted or not;
- ``reported(irc, st, line)`` when it posted a threat of its own there;
- ``poll()`` from its poll timer (registry changes, then the paced queues),
  ``expire()`` and ``flush()`` (snapshots) from its other timers.

Relays leave through BridgeSet's per-target Outboxes, sent with ``irc.sendMsg``
(never queueMsg: throttled to ~1 line/s and quadratic to enqueue).

Settings (documented in conf/ThreatNetCache.conf): ``bridges`` names the bridges;
each name has a group ``bridge.<name>`` with ``a``/``b`` ("network #channel"),
``direction``, ``trustA``/``trustB``, and per direction ``aToB``/``bToA`` groups
with ``keep``, ``discard`` and ``dropListed`` (a DNSBL zone to ask: one
threatnet.dnsbl.DnsblLookup per zone and server, shared by the directions that name
it, kept across configuration changes; its worker threads resolve, the main loop
never waits). While relays wait for a target's rate, ``send`` runs again when the
next is due, and every ``RECHECK`` seconds while they wait for a lookup, waking the
driver loop (threatnet_irc.wakeup).
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING
from urllib.parse import quote

import supybot.callbacks as callbacks
import supybot.conf as conf
import supybot.ircmsgs as ircmsgs
import supybot.ircutils as ircutils
import supybot.registry as registry
import supybot.schedule as schedule
import supybot.world as world
from supybot.commands import wrap

from threatnet_irc.clock import now as _now
from threatnet.bridge import Bridge, BridgeSet, Side
from threatnet.dnsbl import DEFAULT_TIMEOUT, DnsblLookup, dns_resolver, parse_dnsbl
from threatnet.envelope import Envelope, Trust
from threatnet.filter import PENDING, Chain, NetworkFilter
from threatnet.language import ThreatMessage, parse_message
from threatnet.outbox import Outbox

if TYPE_CHECKING:
    from .plugin import Channel, ThreatNetCache

_SEND = "ThreatNetCache.bridge.send"  # the schedule event's name
RECHECK = 0.1  # seconds between looks at the answers while relays wait for a lookup
LOOKUP_TIMEOUT = DEFAULT_TIMEOUT  # seconds a relay waits for its DNSBL answer at most

DIRECTIONS = ("a->b", "b->a", "both")
TRUST_MODES = ("voiced", "accounts", "all")


# -- parsing the settings ---------------------------------------------------------------

def parse_side(text: str) -> Side:
    """A Side from "network #channel"; the channel IRC-lowercased, as the plugin keys
    its channels. Raises ValueError with the reason."""
    words = text.split()
    if len(words) != 2:
        raise ValueError(f"{text!r}: write a side as <network> <#channel>, "
                         "e.g. \"libera #threatnet\"")
    network, channel = words
    if not ircutils.isChannel(channel):
        raise ValueError(f"{text!r}: {channel!r} is not a channel name")
    if not registry.isValidRegistryName(network):
        raise ValueError(f"{text!r}: {network!r} is not a network name")
    return Side(network, ircutils.toLower(channel))


def parse_trust(text: str) -> Trust | None:
    """A Trust from "voiced [account ...]", "accounts account ...", "all"; "" gives
    None: the channel's own rule (ChannelRule). Raises ValueError."""
    words = text.split()
    if not words:
        return None
    mode, accounts = words[0].lower(), words[1:]
    if mode not in TRUST_MODES:
        raise ValueError(f"{text!r}: a trust rule starts with one of "
                         f"{', '.join(TRUST_MODES)} (or is empty: the channel's own rule)")
    if mode == "all" and accounts:
        raise ValueError(f"{text!r}: \"all\" takes no accounts")
    return Trust(mode, accounts)  # ValueError for "accounts" without any


class ChannelRule:
    """A side's default trust rule: what the channel's own Listener verifies, as it
    does now (its trust and trustedAccounts settings, and signatures.require). Its
    reason ("untrusted", "unsigned", ...) is the drop reason. Nothing is verified on a
    side the plugin does not listen to."""

    name = "untrusted"

    def __init__(self, bridging: Bridging, side: Side) -> None:
        self.bridging = bridging
        self.side = side

    def screen(self, msg: ThreatMessage, envelope: Envelope | None = None) -> str | None:
        st = self.bridging._state(self.side)
        if st is None:
            return self.name
        return st.listener.verify(msg, envelope)

    def __repr__(self):
        return "the channel's own rule"


def bridge_settings() -> list[tuple[str, tuple]]:
    """Every configured bridge as (name, raw values), in ``bridges`` order (config.py
    registers each bridge's group as it is named)."""
    plugin_group = conf.supybot.plugins.ThreatNetCache
    result = []
    for name in plugin_group.bridges():
        group = plugin_group.bridge.get(name)
        ways = tuple((group.get(w).keep(), group.get(w).discard(), group.get(w).dropListed())
                     for w in ("aToB", "bToA"))
        result.append((name, (group.a(), group.b(), group.direction(), group.trustA(),
                              group.trustB(), tuple((tuple(k), tuple(d), str(l))
                                                    for k, d, l in ways))))
    return result


# -- the glue -----------------------------------------------------------------------

class Bridging:
    """Every bridge of one ThreatNetCache instance (``plugin``)."""

    def __init__(self, plugin: ThreatNetCache) -> None:
        self.plugin = plugin
        # How dropListed lookups reach the DNS: a function of the server (None: the
        # system's resolvers) giving a threatnet.dnsbl.Resolve. Tests replace it
        # (then call configure(force=True)).
        self.resolver = dns_resolver
        self._lookups = {}  # DnsblSpec -> DnsblLookup, those the running bridges use
        self.errors = {}  # bridge name -> why it is not running
        self._settings = None
        self._rules = {}  # Side -> its ChannelRule (one per side: BridgeSet compares them)
        self.set = BridgeSet((), self._synced, block=self._block, outbox=self._outbox,
                             clock=_now)
        self._send_at: float | None = None  # when the scheduled send runs
        self.configure()

    # -- BridgeSet's view of the plugin

    def _state(self, side: Side) -> Channel | None:
        return self.plugin.channel(side.network, side.channel)

    def _synced(self, side: Side) -> bool:
        st = self._state(side)
        return st is not None and st.listener.cache.synced \
            and world.getIrc(side.network) is not None

    def _block(self, side: Side) -> float:
        st = self._state(side)
        if st is not None:
            return st.listener.block
        return self.plugin.registryValue("blockPeriod", side.channel, side.network)

    def _outbox(self, side: Side) -> Outbox:
        def get(name):
            return self.plugin.registryValue("outbox." + name, network=side.network)
        return Outbox(get("rate"), get("burst"), get("size"), clock=_now)

    # -- configuration

    def configure(self, force: bool = False) -> None:
        """Apply registry changes: rebuild the bridges if any of their settings changed
        (a side's default rule follows its channel's settings by itself), or with
        ``force`` (new lookups too). Bad bridges are left out, their errors logged and
        shown by `tn bridge status`."""
        specs = bridge_settings()
        if specs == self._settings and not force:
            return
        self._settings = specs
        if force:
            self._close_lookups(self._lookups.values())
            self._lookups = {}
        errors = {}
        bridges = []
        trust_of = {}
        lookups = {}  # DnsblSpec -> DnsblLookup, as _build finds or makes them
        for name, raw in specs:
            try:
                bridge = self._build(name, raw, lookups)
                for side, rule in ((bridge.a, bridge.trust_a), (bridge.b, bridge.trust_b)):
                    known = trust_of.get(side)
                    if known is not None and repr(known[1]) != repr(rule):
                        raise ValueError(f"{side} is trusted by {rule!r} here but by "
                                         f"{known[1]!r} in bridge {known[0]}")
            except ValueError as e:
                errors[name] = str(e)
                continue
            for side, rule in ((bridge.a, bridge.trust_a), (bridge.b, bridge.trust_b)):
                trust_of.setdefault(side, (name, rule))
            bridges.append(bridge)
        before = self.set.sides
        after = {side for bridge in bridges for side in (bridge.a, bridge.b)}
        for side in before - after:  # its cache is dropped: keep what it knew
            self._save(side)
        try:
            self.set.configure(bridges)
        except ValueError as e:  # not expected after the checks above
            errors["*"] = str(e)
        used = {f.spec: f for b in bridges for chain in (b.a_to_b, b.b_to_a)
                for f in chain.filters if isinstance(f, DnsblLookup)}
        self._close_lookups(f for f in {**self._lookups, **lookups}.values()
                            if used.get(f.spec) is not f)
        self._lookups = used
        grace = self.plugin.registryValue("restartGrace")
        for side in self.set.sides - before:
            loaded = self.set.cache(side).load(self._path(side), grace)
            if loaded.error:
                self.plugin.log.warning("Bridge cache of %s: %s", side, loaded.error)
        for name, error in errors.items():
            if self.errors.get(name) != error:
                self.plugin.log.error("Bridge %s is not running: %s", name, error)
        self.errors = errors
        sides = self.set.sides
        for st in self.plugin.channels():
            self.attach(st, sides)
        if bridges:
            self.plugin.log.info("Bridges: %s", "; ".join(
                f"{b.name} ({b.a} {b.direction} {b.b})" for b in bridges))

    def _build(self, name: str, raw: tuple, lookups: dict) -> Bridge:
        a_text, b_text, direction, trust_a, trust_b, ways = raw
        if not a_text or not b_text:
            missing = " and ".join(s for s, t in (("a", a_text), ("b", b_text)) if not t)
            raise ValueError(f"plugins.ThreatNetCache.bridge.{name}.{missing} not set")
        a, b = parse_side(a_text), parse_side(b_text)
        chains = []
        for way, (keep, discard, drop_listed) in zip(("aToB", "bToA"), ways):
            filters = []
            if keep:
                filters.append(NetworkFilter("keep", keep, name="not kept"))
            if discard:
                filters.append(NetworkFilter("discard", discard))
            try:
                spec = parse_dnsbl(drop_listed)
            except ValueError as e:  # the registry refuses these; a hand-edited file?
                raise ValueError(f"{way}.dropListed: {e}") from None
            if spec is not None:  # last: only what the other filters pass is looked up
                if spec not in lookups:
                    lookups[spec] = self._lookups.get(spec) or DnsblLookup(
                        spec, self.resolver(spec.server), timeout=LOOKUP_TIMEOUT, clock=_now)
                filters.append(lookups[spec])
            chains.append(Chain(filters))
        trusts = [parse_trust(text) or self._rules.setdefault(side, ChannelRule(self, side))
                  for side, text in ((a, trust_a), (b, trust_b))]
        return Bridge(name, a, b, direction, chains[0], chains[1], trusts[0], trusts[1])

    # -- hooks called by the plugin

    def attach(self, st: Channel, sides: set[Side] | None = None) -> None:
        """Mark a listened channel as bridged (or not)."""
        side = Side(st.network, ircutils.toLower(st.channel))
        st.bridge = side if side in (self.set.sides if sides is None else sides) else None

    def heard(self, st: Channel, envelope: Envelope) -> None:
        """A valid threat line on a bridged channel (hot path of bridged channels)."""
        for verdict in self.set.receive(st.bridge, envelope):
            if verdict.reason is None:
                self._send_soon()
                return
            if verdict.reason == PENDING:
                self._send_soon(RECHECK)

    def _send_soon(self, delay: float = 0.0) -> None:
        """Send in ``delay`` seconds; at once (0), but after the bot has read what
        already arrived on all its networks (Limnoria reads every ready socket, then
        runs the schedule): had the same threat arrived on a target too (the
        original, or another bridge's relay), sending now would carry it back there."""
        at = _now() + delay
        if self._send_at is not None and self._send_at <= at:
            return
        if self._send_at is not None:
            schedule.removeEvent(_SEND)
        self._send_at = at
        schedule.addEvent(self._scheduled_send, at, _SEND)
        if delay > 0:
            self.plugin._wakeup.after(delay)  # then due(): keep the loop awake for it
        else:
            self.plugin._wakeup.keep_awake()

    def due(self) -> None:
        """On a wake-up of the driver loop: keep it awake if the send is due, else ask
        for a wake-up then again (an earlier one of the plugin's may have replaced it)."""
        if self._send_at is None:
            return
        left = self._send_at - _now()
        if left <= 0:
            self.plugin._wakeup.keep_awake()
        else:
            self.plugin._wakeup.after(left)

    def _scheduled_send(self) -> None:
        self._send_at = None
        self.plugin._wakeup.settle()
        self.send()

    def die(self) -> None:
        if self._send_at is not None:
            schedule.removeEvent(_SEND)
            self._send_at = None
            self.plugin._wakeup.settle()
        self._close_lookups(self._lookups.values())
        self._lookups = {}

    @property
    def lookups(self) -> list[DnsblLookup]:
        """The DNSBL lookups the running bridges ask (dropListed)."""
        return list(self._lookups.values())

    def _close_lookups(self, lookups) -> None:
        for lookup in lookups:
            lookup.close()

    def reported(self, irc, st: Channel, line: str) -> None:
        """We posted ``line`` (as sent: signed, if we sign) to a bridged channel
        ourselves: servers do not echo it, so the bridge hears it here."""
        chan = irc.state.channels.get(st.channel)
        voiced = chan is not None and (chan.isVoice(irc.nick) or chan.isHalfop(irc.nick))
        opped = chan is not None and chan.isOp(irc.nick)
        envelope = Envelope(parse_message(line, _now()), irc.nick,
                            self.plugin.own_account(irc), "", st.channel,
                            st.network, voiced, opped)
        self.heard(st, envelope)

    def send(self) -> None:
        """Send what the target queues release now (with relays whose lookup answered)."""
        lines = self.set.take()
        due = self.set.due()  # a target's rate
        if self.set.in_lookup:  # look at the answers again shortly
            due = RECHECK if due is None else min(due, RECHECK)
        if due is not None:
            self._send_soon(due)
        for side, line in lines:
            irc = world.getIrc(side.network)
            st = self._state(side)
            if irc is None or st is None:  # gone since take() checked: nothing to do
                continue
            irc.sendMsg(ircmsgs.privmsg(st.channel, line))
            # Our own channel cache knows it too (`tn check`, our own reports, responders).
            st.listener.keep(parse_message(line, _now()), irc.nick,
                             self.plugin.own_account(irc))
        if lines:  # sendMsg's queue is flushed when the next select ends: now
            self.plugin._wakeup.wake()

    def poll(self) -> None:
        self.configure()
        self.send()

    def expire(self) -> None:
        self.set.expire()
        for lookup in self._lookups.values():
            lookup.expire()

    # -- persistence

    def _path(self, side: Side) -> str:
        return conf.supybot.directories.data.dirize(os.path.join(
            "ThreatNetCache", "bridge", quote(side.network, safe=""),
            quote(side.channel, safe="") + ".json"))

    def _save(self, side: Side) -> None:
        path = self._path(side)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self.set.cache(side).snapshot(path)
        except OSError as e:
            self.plugin.log.error("Cannot save %s: %s", path, e)

    def flush(self) -> None:
        """Snapshot every side's bridge cache (with the channel snapshots)."""
        for side in self.set.sides:
            self._save(side)

    # -- status

    def status(self) -> list[str]:
        """One line per configured bridge: its counters, or why it is not running;
        then one per DNSBL its dropListed settings ask."""
        lines = []
        running = {s.name: s for s in self.set.status()}
        for name, _ in bridge_settings():
            status = running.get(name)
            if status is None:
                lines.append(f"{name}: not running: {self.errors.get(name, 'not configured')}")
                continue
            text = status.format()
            away = [str(side) for side in (status.a, status.b) if self._state(side) is None]
            if away:
                text += f"; not listening to {' and '.join(away)}"
            lines.append(text)
        return lines + [lookup.status().format() for lookup in self.lookups]


class bridge(callbacks.Commands):
    """Network Bridge commands."""

    def status(self, irc, msg, args):
        """takes no arguments

        Each Network Bridge: threats relayed per direction, dropped by reason
        (duplicate, echo, quiet, untrusted, filtered, not kept, listed,
        overflow), and each target's queue (waiting/size); then each DNSBL the
        bridges ask (dropListed): answers, failures (passed unchecked) by reason.
        Needs the admin capability.
        """
        lines = self.parent.bridging.status()
        if not lines:
            irc.reply("No bridges (see plugins.ThreatNetCache.bridges).")
        for line in lines:
            irc.reply(line)
    status = wrap(status, ["admin"])
