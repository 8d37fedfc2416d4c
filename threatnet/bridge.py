"""Network Bridge: relays Verified Threats between Threat Networks, after Threat Filters.

A ``Bridge`` joins two sides, each one channel on one IRC network, one way or
both. The agent passes every threat line it sees on a bridged side to
``BridgeSet.receive``; a threat that the source side's trust rule verifies is
queued for each target it is new to, if that direction's filter chain passes it
and the target is out of its quiet period. ``take`` releases the queued lines at
each target's paced rate.

The combined cache is one Threat Cache per side, holding what is current *there*:
the trusted lines seen on it and the relays sent to it, each for that side's own
block period. A threat goes to a target only if it is neither current nor queued
there, and a line whose threat is already current on its side is never routed
again. So a relay coming back (our echo, or another bridge agent's copy) is
dropped where it arrives, each channel gets a threat at most once per its block
period, and a cycle of bridges dies out after one round: by then every channel on
it holds the threat. A per-target cache (not one cache for the whole set) is what
makes that hold across agents: the third agent of a cycle A->B->C->A must know
that A already has the threat it hears on C, whatever the other agents did.

Block periods: when the sides differ, each target's own period governs relays
into it, as it does for that channel's own agents. Since the source's agents
repeat a threat only after the source's period, a threat then crosses a
direction at most once per the longer of the two periods: never twice within
either side's.

Lookups: a filter may answer PENDING (a DNSBL lookup in flight). The relay then
waits beside its target's queue, counted as pending there (so no copy is queued
meanwhile), and ``take`` asks the chain again: once it passes, the relay joins the
queue and spreads onward as it would have at once; once it is rejected it is
dropped, counted by the reason. The filter bounds the wait (threatnet/dnsbl.py
passes what it could not check in time).
"""
from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, NamedTuple

from threatnet.cache import DEFAULT_TIMEOUT, ThreatCache
from threatnet.envelope import Trust
from threatnet.filter import PENDING, Chain, Filter
from threatnet.language import MAX_LINE_BYTES, ThreatMessage, format_message
from threatnet.outbox import Outbox
from threatnet.signature import strip_signature
from threatnet.text import truncate_utf8

if TYPE_CHECKING:
    from threatnet.envelope import Envelope

Direction = Literal["a->b", "b->a", "both"]
_ROUTES: dict[str, tuple[str, ...]] = {"a->b": ("a->b",), "b->a": ("b->a",),
                                        "both": ("a->b", "b->a")}
_ARROWS = {"a->b": "->", "b->a": "<-", "both": "<->"}

# The "nick" our own relays are recorded under in a side's cache: no sender's nick
# can contain a space, so a threat current under it was put there by this set.
_RELAYED = "bridge relay"
# A provenance tag ending a comment. Only the first bridge adds one, so tags never
# stack over hops (a comment that happens to end in "via <word>" gets none).
_VIA = re.compile(r"(?:^|[ \t])via [^ \t]+$")


class Side(NamedTuple):
    """One end of a bridge: an IRC network name and a channel on it.

    Sides compare exactly: spell the channel the way the agent keys its channels
    (IRC-lowercased) in the config and for every line alike.
    """

    network: str
    channel: str

    def __str__(self) -> str:
        return f"{self.network} {self.channel}"


@dataclass(frozen=True)
class Bridge:
    """A configured bridge between sides ``a`` and ``b``.

    ``direction`` is "a->b", "b->a" or "both". ``a_to_b`` and ``b_to_a`` screen what
    crosses each way (e.g. a NetworkFilter keeping our customers' ranges in, a
    Lookup of the local DNSBL); the rejecting filter's name is the drop reason.
    ``trust_a`` and ``trust_b`` say which lines count as verified on each side:
    only those are relayed from it, and only those make a threat current there.
    A side in several bridges of one set must have the same trust rule in each.
    """

    name: str
    a: Side
    b: Side
    direction: Direction = "both"
    a_to_b: Chain = Chain(())
    b_to_a: Chain = Chain(())
    trust_a: Filter = Trust()
    trust_b: Filter = Trust()

    def __post_init__(self) -> None:
        if self.direction not in _ROUTES:
            raise ValueError(f"bridge {self.name}: direction must be 'a->b', 'b->a' or "
                             f"'both', not {self.direction!r}")
        if self.a == self.b:
            raise ValueError(f"bridge {self.name}: both sides are {self.a}")


class Verdict(NamedTuple):
    """What ``receive`` decided for one bridge direction: ``reason`` None means queued,
    PENDING waiting for a lookup."""

    bridge: str
    target: Side
    reason: str | None


class BridgeStatus(NamedTuple):
    """One bridge for ``tn bridge status``: lines relayed per direction, threats
    dropped by reason (both directions), and each target's queue (``Outbox.stats()``
    plus its ``size`` and the relays waiting for a ``lookup``)."""

    name: str
    a: Side
    b: Side
    direction: str
    relayed: dict[str, int]
    dropped: dict[str, int]
    queues: dict[Side, dict[str, int]]

    def format(self) -> str:
        relayed = ", ".join(f"{d} {self.relayed.get(d, 0)}" for d in _ROUTES[self.direction])
        dropped = ", ".join(f"{reason} {n}" for reason, n in sorted(self.dropped.items()))
        queues = ", ".join(f"{side} {q['waiting']}/{q['size']}"
                           + (f" (+{q['lookup']} in lookup)" if q.get("lookup") else "")
                           for side, q in self.queues.items())
        return (f"{self.name} ({self.a} {_ARROWS[self.direction]} {self.b}): relayed "
                f"{relayed}; dropped {dropped or 'none'}; queue {queues}")


@dataclass
class _Tally:
    relayed: Counter[str] = field(default_factory=Counter)  # direction -> lines sent
    dropped: Counter[str] = field(default_factory=Counter)  # reason -> threats


class _Route(NamedTuple):
    bridge: str
    direction: str
    source: Side
    target: Side
    chain: Chain
    tally: _Tally


class _Relay(NamedTuple):
    route: _Route
    message: ThreatMessage  # as it will be sent: with its via tag


class _Waiting(NamedTuple):
    """A relay waiting for its route's chain to decide."""

    route: _Route
    message: ThreatMessage  # as carried from the source: not tagged yet
    envelope: Envelope
    reached: set[Side]  # shared with the spread it belongs to


class BridgeSet:
    """Every bridge one agent runs, sharing one Threat Cache per side.

    ``synced(side)`` says whether this agent's quiet period on a side is over (the
    agent's own cache of that channel knows; False if it is not there), and
    ``block(side)`` is the side's block period now (its topic may change it).
    ``outbox(side)`` makes the paced queue of a target. Not thread-safe.
    """

    def __init__(self, bridges: Iterable[Bridge], synced: Callable[[Side], bool], *,
                 block: Callable[[Side], float] = lambda side: DEFAULT_TIMEOUT,
                 outbox: Callable[[Side], Outbox[_Relay]] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._synced = synced
        self._block = block
        self._clock = clock
        # The plugin's own outbox defaults: 1 line/s, bursts of 5, 1000 waiting.
        self._outbox = outbox or (lambda side: Outbox(1.0, 5, 1000, clock=clock))
        self._bridges: tuple[Bridge, ...] = ()
        self._trust: dict[Side, Filter] = {}
        self._routes: dict[Side, tuple[_Route, ...]] = {}
        self._tallies: dict[str, _Tally] = {}
        self._caches: dict[Side, ThreatCache] = {}
        self._outboxes: dict[Side, Outbox[_Relay]] = {}
        self._pending: dict[Side, set[int]] = {}  # keys queued or waiting for each target
        self._waiting: dict[Side, list[_Waiting]] = {}  # relays waiting for a lookup
        self.configure(bridges)

    def configure(self, bridges: Iterable[Bridge]) -> None:
        """Replace the bridges. Caches, queues and counters of the sides and bridges
        that remain are kept, so a config change does not restart the quiet period.

        Raises ValueError for two bridges of one name or a side with two trust rules.
        """
        bridges = tuple(bridges)
        trust: dict[Side, Filter] = {}
        routes: dict[Side, list[_Route]] = {}
        tallies: dict[str, _Tally] = {}
        for bridge in bridges:
            if bridge.name in tallies:
                raise ValueError(f"two bridges are named {bridge.name}")
            for side, rule in ((bridge.a, bridge.trust_a), (bridge.b, bridge.trust_b)):
                known = trust.setdefault(side, rule)
                if known is not rule and repr(known) != repr(rule):
                    raise ValueError(f"bridge {bridge.name}: {side} is trusted by {rule!r} "
                                     f"here but by {known!r} in another bridge")
            tally = tallies[bridge.name] = self._tallies.get(bridge.name) or _Tally()
            ends = {"a->b": (bridge.a, bridge.b, bridge.a_to_b),
                    "b->a": (bridge.b, bridge.a, bridge.b_to_a)}
            for direction in _ROUTES[bridge.direction]:
                source, target, chain = ends[direction]
                routes.setdefault(source, []).append(
                    _Route(bridge.name, direction, source, target, chain, tally))
        # A dict, not a set: take() then serves the targets in a stable order.
        targets = dict.fromkeys(r.target for side in routes.values() for r in side)
        self._bridges, self._trust, self._tallies = bridges, trust, tallies
        self._routes = {side: tuple(r) for side, r in routes.items()}
        # "in", not "or": an empty ThreatCache or Outbox is falsy.
        caches, outboxes = self._caches, self._outboxes
        self._caches = {side: caches[side] if side in caches
                        else ThreatCache(self._block(side), self._clock) for side in trust}
        self._outboxes = {side: outboxes[side] if side in outboxes else self._outbox(side)
                          for side in targets}
        self._pending = {side: self._pending.get(side, set()) for side in targets}
        # Relays waiting for a lookup go on with their route as it is now (its filters
        # may have changed), or are dropped with it.
        current = {(r.bridge, r.direction, r.source, r.target): r
                   for side in routes.values() for r in side}
        waiting, self._waiting = self._waiting, {side: [] for side in targets}
        for side, items in waiting.items():
            for item in items:
                old = item.route
                route = current.get((old.bridge, old.direction, old.source, old.target))
                if route is None:
                    self._pending.get(side, set()).discard(item.message.key)
                else:
                    self._waiting[side].append(item._replace(route=route))

    @property
    def sides(self) -> frozenset[Side]:
        """Every bridged side: the agent must be in each, and pass on its threat lines."""
        return frozenset(self._trust)

    def cache(self, side: Side) -> ThreatCache:
        """The set's cache of a side, e.g. to snapshot and load it with the channel's."""
        return self._cache(side)

    # -- routing

    def receive(self, side: Side, envelope: Envelope) -> list[Verdict]:
        """Route one valid threat line seen on ``side``; say what became of it on each
        bridge direction out of that side, and onward out of each side it was queued for.

        Pass every threat line of a bridged side, trusted or not, including our own
        relays and reports coming back: they tell the set what is current there.
        """
        trust = self._trust.get(side)
        if trust is None:
            return []
        msg = envelope.message
        cache = self._cache(side)
        entry = cache.check(msg.key)
        if entry is not None:
            # Routed when it first became current here: this is our relay coming
            # back (whoever repeats it), or a repeat; it must not go out again.
            reason = "echo" if entry.nick == _RELAYED else "duplicate"
        else:
            reason = trust.screen(msg, envelope)
            if reason is None:
                cache.keep(msg, envelope.nick, envelope.account)
                return self._spread(side, msg, envelope)
        routes = self._routes.get(side, ())
        for route in routes:
            route.tally.dropped[reason] += 1
        return [Verdict(route.bridge, route.target, reason) for route in routes]

    def _spread(self, origin: Side, msg: ThreatMessage, envelope: Envelope) -> list[Verdict]:
        """Queue a new threat for every target it is new to, and onward from each
        target reached, as other bridge agents would on seeing our relay there: one
        agent holding a chain or cycle of bridges reaches every channel on it once,
        with or without echo-message."""
        return self._walk([(origin, msg)], {origin}, envelope)

    def _walk(self, hops: list[tuple[Side, ThreatMessage]], reached: set[Side],
              envelope: Envelope) -> list[Verdict]:
        """Route what ``hops`` carry from their sides, breadth first, to every side not
        ``reached`` yet. A relay waiting for a lookup counts as reached: it goes on
        from there (with this ``reached``) once the lookup passes it."""
        verdicts = []
        for source, carried in hops:  # grows while walked: breadth first
            for route in self._routes.get(source, ()):
                target = route.target
                if target in reached:  # it came from there, or goes there already
                    continue
                reason = route.chain.check(carried, envelope)
                wait = reason == PENDING
                if reason is None or wait:
                    reason = self._held(target, carried.key)
                if reason is None:
                    reached.add(target)
                    if wait:
                        self._pending[target].add(carried.key)
                        self._waiting[target].append(_Waiting(route, carried, envelope,
                                                              reached))
                        reason = PENDING
                    else:
                        relay = _tagged(carried, source.network)
                        self._queue(route, relay)
                        hops.append((target, relay))
                else:
                    route.tally.dropped[reason] += 1
                verdicts.append(Verdict(route.bridge, target, reason))
        return verdicts

    def _settle(self) -> None:
        """Ask the chains of the waiting relays again: queue (and spread onward) what
        passes now, drop what is rejected, keep waiting what is still pending."""
        for target, items in self._waiting.items():
            if not items:
                continue
            decided = []
            waiting = []
            for item in items:
                reason = item.route.chain.check(item.message, item.envelope)
                if reason == PENDING:
                    waiting.append(item)
                else:
                    decided.append((item, reason))
            items[:] = waiting  # in place: the spreads below may add to it
            pending = self._pending[target]
            for item, reason in decided:
                pending.discard(item.message.key)
                reason = reason or self._held(target, item.message.key)
                if reason is not None:
                    item.route.tally.dropped[reason] += 1
                    continue
                relay = _tagged(item.message, item.route.source.network)
                self._queue(item.route, relay)
                self._walk([(target, relay)], item.reached, item.envelope)

    @property
    def in_lookup(self) -> int:
        """Relays waiting for a lookup: while there are any, call ``take`` often."""
        return sum(len(items) for items in self._waiting.values())

    def due(self) -> float | None:
        """Seconds until a target's queue releases a relay (0: now), or None while none
        waits: when to call ``take`` next."""
        waits = [d for box in self._outboxes.values() if (d := box.due()) is not None]
        return min(waits, default=None)

    def _cache(self, side: Side) -> ThreatCache:
        """A side's cache, with the side's block period as it is now."""
        cache = self._caches[side]
        cache.timeout = self._block(side)
        return cache

    def _held(self, target: Side, key: int) -> str | None:
        """Why a threat may not be sent to ``target`` now, or None."""
        cache = self._cache(target)
        if key in self._pending[target] or cache.check(key) is not None:
            return "duplicate"
        # The set's own cache must be synced too: built a moment ago (or restarted
        # without loading its snapshots), it does not yet know what is current there.
        if not (self._synced(target) and cache.synced):
            return "quiet"
        return None

    def _queue(self, route: _Route, msg: ThreatMessage) -> None:
        pending = self._pending[route.target]
        pending.add(msg.key)
        dropped = self._outboxes[route.target].put(_Relay(route, msg))
        if dropped is not None:
            pending.discard(dropped.message.key)
            dropped.route.tally.dropped["overflow"] += 1

    # -- output and upkeep

    def take(self) -> list[tuple[Side, str]]:
        """The lines to send now, as (target side, line), at each target's rate.

        Call it after ``receive`` and from a timer; it never blocks. A relay that
        became a duplicate (another agent was faster) or fell into a quiet period
        (the agent rejoined) while it waited is dropped and counted, never held.
        A relay counts as current on its target from when it is taken. Relays whose
        lookup answered join their queues first.
        """
        self._settle()
        lines = []
        for target, box in self._outboxes.items():
            pending = self._pending[target]
            for route, msg in box.take():
                pending.discard(msg.key)
                reason = self._held(target, msg.key)
                if reason is not None:
                    route.tally.dropped[reason] += 1
                    continue
                self._caches[target].keep(msg, _RELAYED)
                route.tally.relayed[route.direction] += 1
                lines.append((target, format_message(msg)))
        return lines

    def expire(self) -> None:
        """Release expired threats from every side's cache; call it every few seconds."""
        for side in self._caches:
            self._cache(side).expire()

    def status(self) -> list[BridgeStatus]:
        """Each bridge's counters and target queues, in configuration order."""
        result = []
        for bridge in self._bridges:
            tally = self._tallies[bridge.name]
            targets = [bridge.b if d == "a->b" else bridge.a for d in _ROUTES[bridge.direction]]
            queues = {side: {**self._outboxes[side].stats(), "size": self._outboxes[side].maxlen,
                             "lookup": len(self._waiting[side])}
                      for side in targets}
            result.append(BridgeStatus(bridge.name, bridge.a, bridge.b, bridge.direction,
                                       dict(tally.relayed), dict(tally.dropped), queues))
        return result


def _tagged(msg: ThreatMessage, network: str) -> ThreatMessage:
    """``msg`` with ``via <network>`` ending its comment, unless a bridge already
    tagged it or it is signed (its signature must stay the final word, over the
    comment as signed). The comment is cut to make room, so the tag survives
    format_message."""
    if _VIA.search(msg.comment) or strip_signature(msg.comment)[1] is not None:
        return msg
    tag = f"via {network}"
    room = MAX_LINE_BYTES - len(msg.ip) - len(tag.encode("utf-8", "replace")) - 2  # 2 spaces
    text = truncate_utf8(msg.comment, max(0, room)).rstrip()
    return msg._replace(comment=f"{text} {tag}" if text else tag)
