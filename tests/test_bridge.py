"""Network Bridge: directions, source-side trust, per-direction filters, the combined
cache (duplicates, echoes, cycles of bridges across one or three agents), quiet
periods, block periods that differ, the via tag, paced queues and status. The clock
is injected; nothing sleeps."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import pytest

from threatnet.address import parse_ip
from threatnet.bridge import Bridge, BridgeSet, BridgeStatus, Side, Verdict
from threatnet.cache import SYNC_SLACK
from threatnet.envelope import Envelope, Trust
from threatnet.filter import PENDING, Chain, Lookup, NetworkFilter
from threatnet.language import MAX_LINE_BYTES, ThreatMessage, parse_message
from threatnet.outbox import Outbox
from threatnet.signature import KeyRing, Signer, TrustedKey, derive_key_id, generate_key, verify

T0 = 1_700_000_000.0
BLOCK = 3600
A = Side("north", "#tn")
B = Side("south", "#tn")
C = Side("east", "#tn")
D = Side("west", "#tn")


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def env(side: Side, line: str, nick: str = "agent", voiced: bool = True,
        account: str | None = None) -> Envelope:
    return Envelope(parse_message(line, created=0.0), nick, account, "host", side.channel,
                    side.network, voiced)


def make(bridges: list[Bridge], clock: Clock, synced: Callable[[Side], bool] = lambda s: True,
         rate: float = 100, burst: int = 100, size: int = 100, **kwargs: object) -> BridgeSet:
    """A set past its own quiet period, with queues that release everything at once."""
    made = BridgeSet(bridges, synced, clock=clock,
                     outbox=lambda side: Outbox(rate, burst, size, clock=clock), **kwargs)
    clock.now += BLOCK + SYNC_SLACK
    return made


def dropped(bridges: BridgeSet, name: str) -> dict[str, int]:
    return next(s.dropped for s in bridges.status() if s.name == name)


# --- directions and trust --------------------------------------------------------------------


def test_one_way_relays_only_from_a_to_b(clock: Clock) -> None:
    bridges = make([Bridge("nb", A, B, "a->b")], clock)
    assert bridges.receive(A, env(A, "192.0.2.1 spam trap")) == [Verdict("nb", B, None)]
    assert bridges.take() == [(B, "192.0.2.1 spam trap via north")]
    assert bridges.receive(B, env(B, "192.0.2.2 ssh")) == []
    assert bridges.take() == []


def test_b_to_a(clock: Clock) -> None:
    bridges = make([Bridge("nb", A, B, "b->a")], clock)
    assert bridges.receive(A, env(A, "192.0.2.1")) == []
    assert bridges.receive(B, env(B, "192.0.2.2")) == [Verdict("nb", A, None)]
    assert bridges.take() == [(A, "192.0.2.2 via south")]


def test_both_ways(clock: Clock) -> None:
    bridges = make([Bridge("nb", A, B)], clock)
    bridges.receive(A, env(A, "192.0.2.1"))
    bridges.receive(B, env(B, "192.0.2.2 ssh"))
    assert bridges.take() == [(B, "192.0.2.1 via north"), (A, "192.0.2.2 ssh via south")]
    assert bridges.status()[0].relayed == {"a->b": 1, "b->a": 1}


def test_unknown_side_is_ignored(clock: Clock) -> None:
    bridges = make([Bridge("nb", A, B)], clock)
    assert bridges.receive(C, env(C, "192.0.2.1")) == []
    assert bridges.sides == {A, B}


def test_trust_is_the_source_sides(clock: Clock) -> None:
    bridges = make([Bridge("nb", A, B, trust_a=Trust("accounts", ["feeder"]))], clock)
    assert bridges.receive(A, env(A, "192.0.2.1", voiced=True)) == [
        Verdict("nb", B, "untrusted")]
    assert bridges.receive(B, env(B, "192.0.2.2", voiced=False)) == [
        Verdict("nb", A, "untrusted")]
    assert bridges.take() == []
    assert bridges.receive(A, env(A, "192.0.2.1", voiced=False, account="Feeder")) == [
        Verdict("nb", B, None)]
    assert bridges.receive(B, env(B, "192.0.2.2", voiced=True)) == [Verdict("nb", A, None)]
    assert bridges.take() == [(B, "192.0.2.1 via north"), (A, "192.0.2.2 via south")]
    assert dropped(bridges, "nb") == {"untrusted": 2}


def test_an_untrusted_line_does_not_make_a_threat_current(clock: Clock) -> None:
    bridges = make([Bridge("nb", A, B, "a->b")], clock)
    bridges.receive(B, env(B, "192.0.2.1", voiced=False))  # B's agents ignore it
    assert bridges.receive(A, env(A, "192.0.2.1")) == [Verdict("nb", B, None)]
    assert bridges.take() == [(B, "192.0.2.1 via north")]


# --- filters ---------------------------------------------------------------------------------


def test_filters_per_direction(clock: Clock) -> None:
    customers = NetworkFilter("discard", ["198.51.100.0/24"], name="customer")
    listed = {parse_ip("203.0.113.9")}
    bridge = Bridge("uni", A, B, a_to_b=Chain([customers]),
                    b_to_a=Chain([Lookup(listed.__contains__)]))
    bridges = make([bridge], clock)
    # Our customers never go out; from outside they do come in.
    assert bridges.receive(A, env(A, "198.51.100.7")) == [Verdict("uni", B, "customer")]
    assert bridges.receive(B, env(B, "198.51.100.8")) == [Verdict("uni", A, None)]
    # What the local DNSBL already lists is not brought in; it does go out.
    assert bridges.receive(B, env(B, "203.0.113.9")) == [Verdict("uni", A, "listed")]
    listed.clear()
    bridges.receive(A, env(A, "203.0.113.10"))
    assert bridges.take() == [(B, "203.0.113.10 via north"), (A, "198.51.100.8 via south")]
    assert dropped(bridges, "uni") == {"customer": 1, "listed": 1}


def test_lookup_filter() -> None:
    lookup = Lookup(lambda key: key == parse_ip("192.0.2.1"), name="in dnsbl")
    assert lookup.screen(parse_message("192.0.2.1")) == "in dnsbl"
    assert lookup.screen(parse_message("192.0.2.2")) is None


# --- lookups: filters that answer later -------------------------------------------------------


class Deferred:
    """A filter that answers PENDING until ``decide`` gives an address its answer."""

    def __init__(self) -> None:
        self.answers: dict[int, str | None] = {}

    def screen(self, msg: ThreatMessage, envelope: Envelope | None = None) -> str | None:
        return self.answers.get(msg.key, PENDING)

    def decide(self, ip: str, reason: str | None) -> None:
        self.answers[parse_ip(ip)] = reason


def test_relay_waits_for_its_lookup(clock: Clock) -> None:
    lookup = Deferred()
    bridges = make([Bridge("uni", A, B, "a->b", a_to_b=Chain([lookup]))], clock)
    assert bridges.receive(A, env(A, "192.0.2.1 ssh")) == [Verdict("uni", B, PENDING)]
    assert bridges.receive(A, env(A, "192.0.2.2 smtp")) == [Verdict("uni", B, PENDING)]
    assert bridges.take() == [] and bridges.in_lookup == 2
    assert bridges.status()[0].format().endswith("queue south #tn 0/100 (+2 in lookup)")
    lookup.decide("192.0.2.1", "listed")
    lookup.decide("192.0.2.2", None)
    assert bridges.take() == [(B, "192.0.2.2 smtp via north")]
    assert bridges.in_lookup == 0 and dropped(bridges, "uni") == {"listed": 1}
    assert bridges.status()[0].relayed == {"a->b": 1}


def test_a_relay_in_lookup_is_current_on_its_target(clock: Clock) -> None:
    lookup = Deferred()
    bridges = make([Bridge("ab", A, B, "a->b", a_to_b=Chain([lookup])),
                    Bridge("cb", C, B, "a->b")], clock)
    assert bridges.receive(A, env(A, "192.0.2.1")) == [Verdict("ab", B, PENDING)]
    assert bridges.receive(C, env(C, "192.0.2.1")) == [Verdict("cb", B, "duplicate")]
    lookup.decide("192.0.2.1", None)
    assert bridges.take() == [(B, "192.0.2.1 via north")]


def test_posted_on_the_target_while_in_lookup(clock: Clock) -> None:
    lookup = Deferred()
    bridges = make([Bridge("uni", A, B, "a->b", a_to_b=Chain([lookup]))], clock)
    bridges.receive(A, env(A, "192.0.2.1"))
    bridges.receive(B, env(B, "192.0.2.1 seen here too", nick="local"))
    lookup.decide("192.0.2.1", None)
    assert bridges.take() == []
    assert dropped(bridges, "uni") == {"duplicate": 1}


def test_target_turning_quiet_while_in_lookup(clock: Clock) -> None:
    synced = {A: True, B: True}
    lookup = Deferred()
    bridges = make([Bridge("uni", A, B, "a->b", a_to_b=Chain([lookup]))], clock,
                   synced=synced.__getitem__)
    bridges.receive(A, env(A, "192.0.2.1"))
    synced[B] = False
    lookup.decide("192.0.2.1", None)
    assert bridges.take() == []
    assert dropped(bridges, "uni") == {"quiet": 1}


def test_relay_spreads_onward_once_its_lookup_passes(clock: Clock) -> None:
    """A cycle A->B->C->A on one agent, with a lookup on A->B: the threat reaches B,
    then C, and never comes back to A."""
    lookup = Deferred()
    bridges = make([Bridge("ab", A, B, "a->b", a_to_b=Chain([lookup])),
                    Bridge("bc", B, C, "a->b"), Bridge("ca", C, A, "a->b")], clock)
    assert bridges.receive(A, env(A, "192.0.2.1")) == [Verdict("ab", B, PENDING)]
    assert bridges.take() == []
    lookup.decide("192.0.2.1", None)
    assert bridges.take() == [(B, "192.0.2.1 via north"), (C, "192.0.2.1 via north")]
    assert bridges.take() == []
    assert {s.name: s.dropped for s in bridges.status()} == {"ab": {}, "bc": {}, "ca": {}}


def test_reconfigure_keeps_a_relay_in_lookup_on_its_route(clock: Clock) -> None:
    lookup = Deferred()
    bridges = make([Bridge("uni", A, B, "a->b", a_to_b=Chain([lookup]))], clock)
    bridges.receive(A, env(A, "192.0.2.1"))
    bridges.receive(A, env(A, "198.51.100.1"))
    stricter = NetworkFilter("keep", ["192.0.2.0/24"], name="not kept")
    bridges.configure([Bridge("uni", A, B, "a->b", a_to_b=Chain([stricter, lookup]))])
    lookup.decide("192.0.2.1", None)
    lookup.decide("198.51.100.1", None)
    assert bridges.take() == [(B, "192.0.2.1 via north")]
    assert dropped(bridges, "uni") == {"not kept": 1}


def test_reconfigure_drops_relays_in_lookup_with_their_bridge(clock: Clock) -> None:
    lookup = Deferred()
    bridges = make([Bridge("uni", A, B, "a->b", a_to_b=Chain([lookup]))], clock)
    bridges.receive(A, env(A, "192.0.2.1"))
    bridges.configure([Bridge("other", A, B, "a->b")])
    assert bridges.in_lookup == 0
    lookup.decide("192.0.2.1", None)
    assert bridges.take() == []
    clock.now += BLOCK  # no longer current on A: "other" may take it now
    assert bridges.receive(A, env(A, "192.0.2.1")) == [Verdict("other", B, None)]


# --- the combined cache ----------------------------------------------------------------------


def test_duplicate_in_block_period_then_again_after_expiry(clock: Clock) -> None:
    bridges = make([Bridge("nb", A, B)], clock)
    bridges.receive(A, env(A, "192.0.2.1"))
    assert bridges.take() == [(B, "192.0.2.1 via north")]
    clock.now += BLOCK - 1
    assert bridges.receive(A, env(A, "192.0.2.1", nick="other")) == [
        Verdict("nb", B, "duplicate")]
    assert bridges.take() == []
    clock.now += 1
    assert bridges.receive(A, env(A, "192.0.2.1")) == [Verdict("nb", B, None)]
    assert bridges.take() == [(B, "192.0.2.1 via north")]


def test_queued_counts_as_current(clock: Clock) -> None:
    bridges = make([Bridge("ab", A, B, "a->b"), Bridge("cb", C, B, "a->b")], clock)
    assert bridges.receive(A, env(A, "192.0.2.1")) == [Verdict("ab", B, None)]
    assert bridges.receive(C, env(C, "192.0.2.1")) == [Verdict("cb", B, "duplicate")]
    assert bridges.take() == [(B, "192.0.2.1 via north")]


def test_another_agent_was_faster(clock: Clock) -> None:
    bridges = make([Bridge("nb", A, B)], clock, rate=1, burst=1)
    bridges.receive(A, env(A, "192.0.2.1"))
    bridges.receive(A, env(A, "192.0.2.2"))
    assert bridges.take() == [(B, "192.0.2.1 via north")]
    # Reported on B while our relay waits: not sent back to A, and not sent to B.
    assert bridges.receive(B, env(B, "192.0.2.2 seen here too", nick="local")) == [
        Verdict("nb", A, "duplicate")]
    clock.now += 1
    assert bridges.take() == []
    assert dropped(bridges, "nb") == {"duplicate": 2}


def test_echo_is_never_relayed_back(clock: Clock) -> None:
    bridges = make([Bridge("nb", A, B)], clock)
    bridges.receive(A, env(A, "192.0.2.1"))
    [(side, line)] = bridges.take()
    # Our own line, even where we are not voiced (echo-message).
    assert bridges.receive(side, env(side, line, nick="bridgebot", voiced=False)) == [
        Verdict("nb", A, "echo")]
    assert bridges.take() == []
    # Still an echo later in B's block period, whoever repeats it there.
    clock.now += BLOCK - 1
    assert bridges.receive(B, env(B, "192.0.2.1 via north", nick="x"))[0].reason == "echo"
    assert dropped(bridges, "nb") == {"echo": 2}


class Channels:
    """The channels of several networks: a line posted on a side reaches every agent
    present there, the sender too when ``echo`` (echo-message), in order."""

    def __init__(self, agents: dict[str, BridgeSet], echo: bool = True) -> None:
        self.agents = agents
        self.echo = echo
        self.lines: dict[Side, list[str]] = defaultdict(list)

    def post(self, side: Side, nick: str, line: str) -> None:
        self.lines[side].append(line)
        for name, agent in self.agents.items():
            if side in agent.sides and (self.echo or name != nick):
                agent.receive(side, env(side, line, nick=nick))

    def run(self) -> None:
        """Let the agents send what they have until none has anything left."""
        sent = True
        while sent:
            sent = False
            for name, agent in self.agents.items():
                for side, line in agent.take():
                    self.post(side, name, line)
                    sent = True

    def times_seen(self, ip: str) -> dict[Side, int]:
        return {side: sum(line.split()[0] == ip for line in lines)
                for side, lines in self.lines.items()}


CYCLE = [("bridge1", A, B), ("bridge2", B, C), ("bridge3", C, A)]


@pytest.mark.parametrize("direction", ["a->b", "both"])
@pytest.mark.parametrize("echo", [True, False])
def test_cycle_of_three_bridges_three_agents(clock: Clock, direction: str, echo: bool) -> None:
    agents = {name: BridgeSet([Bridge(name, a, b, direction)], lambda s: True, clock=clock)
              for name, a, b in CYCLE}
    clock.now += BLOCK + SYNC_SLACK
    net = Channels(agents, echo)
    net.post(A, "reporter", "192.0.2.1 spam")
    net.run()
    assert net.times_seen("192.0.2.1") == {A: 1, B: 1, C: 1}
    net.post(C, "reporter", "192.0.2.2 ssh")
    net.run()
    assert net.times_seen("192.0.2.2") == {A: 1, B: 1, C: 1}
    assert all(line.count("via") <= 1 for lines in net.lines.values() for line in lines)
    clock.now += BLOCK
    for agent in agents.values():
        agent.expire()
    net.post(A, "reporter", "192.0.2.1 still at it")
    net.run()
    assert net.times_seen("192.0.2.1") == {A: 2, B: 2, C: 2}


@pytest.mark.parametrize("direction", ["a->b", "both"])
@pytest.mark.parametrize("echo", [True, False])
def test_cycle_of_three_bridges_one_agent(clock: Clock, direction: str, echo: bool) -> None:
    agent = make([Bridge(name, a, b, direction) for name, a, b in CYCLE], clock)
    net = Channels({"bridgebot": agent}, echo)
    net.post(B, "reporter", "192.0.2.1 spam")
    net.run()
    assert net.times_seen("192.0.2.1") == {A: 1, B: 1, C: 1}
    # The one-hop and the onward relay both name where the threat came in.
    assert net.lines[C] == ["192.0.2.1 spam via south"]
    assert net.lines[A] == ["192.0.2.1 spam via south"]
    if echo:
        assert sum(s.dropped.get("echo", 0) for s in agent.status()) >= 2


def test_onward_relay_obeys_each_directions_filters(clock: Clock) -> None:
    keep_out = Chain([NetworkFilter("discard", ["192.0.2.0/24"], name="customer")])
    agent = make([Bridge("ab", A, B, "a->b"), Bridge("bc", B, C, "a->b", a_to_b=keep_out)],
                 clock)
    assert agent.receive(A, env(A, "192.0.2.1")) == [Verdict("ab", B, None),
                                                      Verdict("bc", C, "customer")]
    assert agent.take() == [(B, "192.0.2.1 via north")]


# --- quiet periods ---------------------------------------------------------------------------


def test_quiet_target_drops_and_counts_never_queues(clock: Clock) -> None:
    synced = {A: True, B: False}
    bridges = make([Bridge("nb", A, B)], clock, synced=synced.__getitem__)
    assert bridges.receive(A, env(A, "192.0.2.1")) == [Verdict("nb", B, "quiet")]
    assert bridges.take() == []
    assert bridges.status()[0].queues[B]["waiting"] == 0
    synced[B] = True
    assert bridges.take() == []  # held relays are gone, not released late
    assert bridges.receive(A, env(A, "192.0.2.2")) == [Verdict("nb", B, None)]
    assert bridges.take() == [(B, "192.0.2.2 via north")]
    assert dropped(bridges, "nb") == {"quiet": 1}


def test_target_turning_quiet_while_queued(clock: Clock) -> None:
    synced = {A: True, B: True}
    bridges = make([Bridge("nb", A, B)], clock, synced=synced.__getitem__)
    bridges.receive(A, env(A, "192.0.2.1"))
    synced[B] = False  # e.g. the agent was kicked and rejoined
    assert bridges.take() == []
    assert dropped(bridges, "nb") == {"quiet": 1}


def test_new_set_is_quiet_for_a_block_period(clock: Clock) -> None:
    bridges = BridgeSet([Bridge("nb", A, B)], lambda s: True, clock=clock)
    assert bridges.receive(A, env(A, "192.0.2.1")) == [Verdict("nb", B, "quiet")]
    clock.now += BLOCK + SYNC_SLACK
    assert bridges.receive(A, env(A, "192.0.2.2")) == [Verdict("nb", B, None)]


def test_reconfigure_keeps_caches_and_counters(clock: Clock) -> None:
    bridges = make([Bridge("nb", A, B)], clock)
    bridges.receive(A, env(A, "192.0.2.1"))
    bridges.take()
    bridges.receive(A, env(A, "192.0.2.2", voiced=False))
    keep_out = Chain([NetworkFilter("discard", ["198.51.100.0/24"])])
    bridges.configure([Bridge("nb", A, B, a_to_b=keep_out), Bridge("bc", B, C, "a->b")])
    assert bridges.receive(A, env(A, "192.0.2.1 again")) == [Verdict("nb", B, "duplicate")]
    assert bridges.receive(A, env(A, "198.51.100.1")) == [Verdict("nb", B, "filtered")]
    # Not quiet on A and B; C is new, so the set does not know it yet.
    assert bridges.receive(A, env(A, "192.0.2.3")) == [Verdict("nb", B, None),
                                                        Verdict("bc", C, "quiet")]
    status = bridges.status()[0]
    assert status.relayed == {"a->b": 1}
    assert status.dropped == {"untrusted": 1, "duplicate": 1, "filtered": 1}


# --- block periods ---------------------------------------------------------------------------


@pytest.mark.parametrize("periods", [{A: 3600, B: 600}, {A: 600, B: 3600}])
def test_each_targets_block_period_governs(clock: Clock, periods: dict[Side, int]) -> None:
    bridges = make([Bridge("nb", A, B)], clock, block=periods.__getitem__)
    longer = max(periods.values())
    bridges.receive(A, env(A, "192.0.2.1"))
    assert bridges.take() == [(B, "192.0.2.1 via north")]
    # Repeated where its period ran out: held back while the other side holds it.
    clock.now += min(periods.values())
    side = min(periods, key=periods.__getitem__)
    other = B if side == A else A
    assert bridges.receive(side, env(side, "192.0.2.1 back")) == [
        Verdict("nb", other, "duplicate")]
    # Both periods over: it crosses again, once.
    clock.now = T0 + BLOCK + SYNC_SLACK + longer
    assert bridges.receive(A, env(A, "192.0.2.1 back")) == [Verdict("nb", B, None)]
    assert bridges.take() == [(B, "192.0.2.1 back via north")]


def test_block_period_follows_the_side_live(clock: Clock) -> None:
    periods = {A: BLOCK, B: BLOCK}
    bridges = make([Bridge("nb", A, B)], clock, block=periods.__getitem__)
    bridges.receive(A, env(A, "192.0.2.1"))
    bridges.take()
    periods[B] = 60  # B's topic now says block=60
    clock.now += 60
    assert bridges.cache(B).check("192.0.2.1") is None
    assert bridges.receive(B, env(B, "192.0.2.1")) == [Verdict("nb", A, "duplicate")]


# --- the via tag -----------------------------------------------------------------------------


def test_via_tag_is_added_once(clock: Clock) -> None:
    bridges = make([Bridge("nb", A, B), Bridge("ca", C, A, "a->b")], clock)
    bridges.receive(C, env(C, "192.0.2.1 relayed elsewhere via west"))
    bridges.receive(A, env(A, "192.0.2.2"))
    # 192.0.2.1 goes C->A and on A->B; both keep the tag it came with.
    assert bridges.take() == [(B, "192.0.2.1 relayed elsewhere via west"),
                              (B, "192.0.2.2 via north"),
                              (A, "192.0.2.1 relayed elsewhere via west")]


@pytest.mark.parametrize("ip", ["192.0.2.1", "2001:db8:1234:5678:9abc:def0:1234:5678"])
@pytest.mark.parametrize("char", ["x", "é", "\U0001f600"])
def test_via_tag_survives_a_full_line(clock: Clock, ip: str, char: str) -> None:
    bridges = make([Bridge("nb", A, B)], clock)
    bridges.receive(A, env(A, f"{ip} {char * 300}"))
    [(_, line)] = bridges.take()
    assert len(line.encode()) <= MAX_LINE_BYTES
    assert line.endswith(f"{char} via north")
    relayed = parse_message(line)
    assert relayed.ip == ip and len(relayed.comment.encode()) > MAX_LINE_BYTES - 60


def test_signed_line_crosses_untagged_and_still_verifies(clock: Clock) -> None:
    key = generate_key()
    key_id = derive_key_id(key.public_key())
    bridges = make([Bridge("nb", A, B)], clock)
    line = Signer(key, key_id).sign(parse_message("192.0.2.1 ssh"), clock.now)
    bridges.receive(A, env(A, line))
    assert bridges.take() == [(B, line)]
    ring = KeyRing({key_id: TrustedKey(key.public_key(), "")})
    assert verify(parse_message(line), ring, clock.now, BLOCK).comment == "ssh"


def test_empty_comment_gets_only_the_tag(clock: Clock) -> None:
    bridges = make([Bridge("nb", A, B)], clock)
    bridges.receive(A, env(A, "192.0.2.1"))
    assert bridges.take() == [(B, "192.0.2.1 via north")]


# --- queues and status -----------------------------------------------------------------------


def test_burst_is_paced_bounded_and_does_not_stall_other_targets(clock: Clock) -> None:
    bridges = make([Bridge("ab", A, B, "a->b"), Bridge("cd", C, D, "a->b")], clock,
                   rate=1, burst=2, size=3)
    for n in range(10):
        bridges.receive(A, env(A, f"192.0.2.{n}"))
    bridges.receive(C, env(C, "198.51.100.1"))
    assert bridges.take() == [(B, "192.0.2.7 via north"), (B, "192.0.2.8 via north"),
                              (D, "198.51.100.1 via east")]
    assert bridges.take() == []
    clock.now += 1
    assert bridges.take() == [(B, "192.0.2.9 via north")]
    assert dropped(bridges, "ab") == {"overflow": 7}


def test_a_relay_lost_to_overflow_is_not_current_on_the_target(clock: Clock) -> None:
    bridges = make([Bridge("ab", A, B, "a->b"), Bridge("cb", C, B, "a->b")], clock, size=1)
    bridges.receive(A, env(A, "192.0.2.1"))
    bridges.receive(A, env(A, "192.0.2.2"))  # pushes 192.0.2.1 out
    assert bridges.receive(C, env(C, "192.0.2.1")) == [Verdict("cb", B, None)]
    assert bridges.take() == [(B, "192.0.2.1 via east")]


def test_status(clock: Clock) -> None:
    bridges = make([Bridge("uni", A, B,
                           a_to_b=Chain([NetworkFilter("discard", ["10.0.0.0/8"])])),
                    Bridge("east", C, A, "a->b")], clock, size=50)
    bridges.receive(A, env(A, "192.0.2.1"))
    bridges.receive(A, env(A, "10.1.2.3"))
    bridges.receive(B, env(B, "192.0.2.2", voiced=False))
    bridges.take()
    bridges.receive(A, env(A, "192.0.2.3"))
    uni, east = bridges.status()
    assert uni == BridgeStatus(
        "uni", A, B, "both", {"a->b": 1}, {"filtered": 1, "untrusted": 1},
        {B: {"waiting": 1, "sent": 1, "dropped": 0, "size": 50, "lookup": 0},
         A: {"waiting": 0, "sent": 0, "dropped": 0, "size": 50, "lookup": 0}})
    assert uni.format() == ("uni (north #tn <-> south #tn): relayed a->b 1, b->a 0; "
                            "dropped filtered 1, untrusted 1; "
                            "queue south #tn 1/50, north #tn 0/50")
    assert east.format() == ("east (east #tn -> north #tn): relayed a->b 0; dropped none; "
                             "queue north #tn 0/50")


def test_expire_releases_the_caches(clock: Clock) -> None:
    bridges = make([Bridge("nb", A, B)], clock)
    bridges.receive(A, env(A, "192.0.2.1"))
    bridges.take()
    assert (len(bridges.cache(A)), len(bridges.cache(B))) == (1, 1)
    clock.now += BLOCK
    bridges.expire()
    assert bridges.cache(A).stats().expired == 1 and bridges.cache(B).stats().expired == 1


# --- configuration errors --------------------------------------------------------------------


def test_bad_bridges() -> None:
    with pytest.raises(ValueError, match="both sides"):
        Bridge("x", A, Side("north", "#tn"))
    with pytest.raises(ValueError, match="direction"):
        Bridge("x", A, B, "a<-b")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="two bridges are named x"):
        BridgeSet([Bridge("x", A, B), Bridge("x", B, C)], lambda s: True)
    with pytest.raises(ValueError, match="north #tn is trusted by"):
        BridgeSet([Bridge("x", A, B), Bridge("y", C, A, trust_b=Trust("all"))],
                  lambda s: True)


def test_equal_trust_rules_are_the_same_rule() -> None:
    bridges = BridgeSet([Bridge("x", A, B, trust_a=Trust("accounts", ["f"])),
                         Bridge("y", C, A, trust_b=Trust("accounts", ["F"]))], lambda s: True)
    assert bridges.sides == {A, B, C}


def test_busy_cycle_with_independent_reports(clock: Clock) -> None:
    """Agents on every side report overlapping threats (each only once on its own
    channel) faster than the bridge may send: still at most once per channel, and
    every line sent is counted as relayed."""
    agent = make([Bridge(name, a, b) for name, a, b in CYCLE], clock, rate=1, burst=3, size=5)
    net = Channels({"bridgebot": agent})
    sides = [A, B, C]
    for n in range(90):
        side, ip = sides[n % 3], f"192.0.2.{n * 7 % 40}"
        if not net.times_seen(ip).get(side):
            net.post(side, "reporter", ip)
        if n % 4 == 0:
            clock.now += 1
            net.run()
    for _ in range(20):
        clock.now += 1
        net.run()
    seen = [net.times_seen(f"192.0.2.{n}") for n in range(40)]
    assert max(count for sides_seen in seen for count in sides_seen.values()) == 1
    relayed = sum(n for status in agent.status() for n in status.relayed.values())
    assert relayed == sum(line.endswith(("via north", "via south", "via east"))
                          for lines in net.lines.values() for line in lines) > 0
