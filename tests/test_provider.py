"""Threat Provider: the refusals, the shared outbox, signing, and the feeds. The clock is
injected; nothing sleeps."""
from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from threatnet.cache import SYNC_SLACK
from threatnet.language import parse_message
from threatnet.listener import Listener, ListenerSettings
from threatnet.outbox import Outbox
from threatnet.provider import Provider, ProviderSettings, Queued, Refused, take
from threatnet.signature import KeyRing, Signer, TrustedKey, verify

NOW = 1_700_000_000.0
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


class Clock:
    now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def box(clock: Clock) -> Outbox[Queued]:
    return Outbox(rate=1, burst=2, maxlen=3, clock=clock)


def provider(clock: Clock, box: Outbox[Queued], synced: bool = True, **settings) -> Provider:
    listener = Listener(ListenerSettings(block=100), clock=clock)
    p = Provider("#tn", listener, lambda: box, ProviderSettings(**settings), clock=clock)
    if synced:
        clock.now += 100 + SYNC_SLACK
    return p


def refusal(p: Provider, line: str, **kw) -> str:
    with pytest.raises(Refused) as e:
        p.submit(parse_message(line), **kw)
    return e.value.kind


def test_refusals(clock: Clock, box: Outbox[Queued]) -> None:
    quiet = provider(clock, box, synced=False)
    assert refusal(quiet, "45.0.0.1 x") == "quiet"
    p = provider(clock, box, own_networks=("45.1.0.0/16",))
    assert refusal(p, "45.0.0.1 x", moderated=True) == "moderated"
    assert refusal(p, "10.0.0.1 x") == "filtered"
    assert refusal(p, "45.1.2.3 x") == "own network"
    p.listener.keep(parse_message("45.0.0.2 heard"), "other", None)
    with pytest.raises(Refused, match="already current in #tn, reported by other 0 s ago"):
        p.submit(parse_message("45.0.0.2 x"))
    p.submit(parse_message("45.0.0.3 x"))
    with pytest.raises(Refused, match="already queued"):
        p.submit(parse_message("45.0.0.3 y"))
    p.signer_error = "key file missing"
    assert refusal(p, "45.0.0.4 x") == "unsigned"


def test_released_lines_are_kept_and_paced(clock: Clock, box: Outbox[Queued]) -> None:
    p = provider(clock, box)
    for n in range(1, 4):
        p.submit(parse_message(f"45.0.0.{n} scan"))
    assert [line for _, line in take(box, "me", "acct")] == ["45.0.0.1 scan", "45.0.0.2 scan"]
    assert p.reported == 2 and list(p.pending) == [parse_message("45.0.0.3").key]
    assert p.listener.cache.check("45.0.0.1").account == "acct"
    assert take(box, "me", None) == []  # the rate: one a second
    clock.now += 1
    assert [line for _, line in take(box, "me", None)] == ["45.0.0.3 scan"]


def test_a_full_outbox_drops_the_oldest_report(clock: Clock, box: Outbox[Queued]) -> None:
    p = provider(clock, box)
    for n in range(1, 5):
        p.submit(parse_message(f"45.0.0.{n} x"))
    assert len(p.pending) == 3 and parse_message("45.0.0.1").key not in p.pending
    p.submit(parse_message("45.0.0.1 again"))  # no longer queued: may be submitted again


def test_release_checks_again(clock: Clock, box: Outbox[Queued]) -> None:
    p = provider(clock, box)
    for n in range(1, 4):
        p.submit(parse_message(f"45.0.0.{n} x"))
    p.listener.keep(parse_message("45.0.0.1 faster"), "other", None)  # another agent was faster
    p.signer_error = "key went bad"
    assert take(box, "me", None) == []
    assert p.refused == {"duplicate": 1, "unsigned": 1}
    p.signer_error = None
    p.close()  # left the channel
    clock.now += 1
    assert take(box, "me", None) == [] and not p.pending


def test_signed_reports(clock: Clock, box: Outbox[Queued]) -> None:
    p = provider(clock, box)
    p.signer = Signer(KEY, "ammo")
    threat = p.report("45.0.0.1", "brute force")
    [(_, line)] = take(box, "me", None)
    ring = KeyRing({"ammo": TrustedKey(KEY.public_key(), "")})
    assert verify(parse_message(line), ring, clock(), 60).comment == "brute force"
    assert threat.ip == "45.0.0.1"


def test_feeds_are_read_and_their_refusals_counted(clock: Clock, box: Outbox[Queued],
                                                   tmp_path) -> None:
    log = tmp_path / "auth.log"
    log.write_text("")
    p = provider(clock, box, feeds=(f"plain:{log}", f"plain:{tmp_path}/missing"))
    log.write_text("45.0.0.1 one\n10.0.0.1 bogon\n45.0.0.1 twice\n")
    changed = p.poll()
    assert changed == [(f"plain:{tmp_path}/missing", "No such file or directory")]
    assert p.refused == {"filtered": 1, "duplicate": 1} and len(p.pending) == 1
    assert p.poll() == []  # the error is told once
    assert p.configure(ProviderSettings(feeds=(f"plain:{log}",))) == []
    assert list(p.feeds) == [f"plain:{log}"] and p.feed_errors == {}


def test_feeds_report_at_their_threshold(clock: Clock, box: Outbox[Queued], tmp_path) -> None:
    log = tmp_path / "auth.log"
    log.write_text("")
    p = provider(clock, box, feeds=(f"sshd(maxretry=2,findtime=60):{log}", f"sshd:{log}"))
    with open(log, "a") as f:
        for pid in (1, 2):
            f.write(f"Nov 22 03:04:05 gw sshd[{pid}]: Failed password for alice from "
                    f"45.0.0.1 port 5{pid} ssh2\n")
    p.poll()
    # The strict feed reports; the default one (5 in 600 s) keeps counting.
    assert [t.comment for t in p.pending.values()] == ["sshd: 2 failed passwords in 60 s"]
    assert [f.stats()["below_threshold"] for f in p.feeds.values()] == [0, 1]


def test_a_bad_feed_changes_nothing(clock: Clock, box: Outbox[Queued], tmp_path) -> None:
    p = provider(clock, box, feeds=(f"plain:{tmp_path}/a",))
    before = p.settings
    with pytest.raises(ValueError, match="maxretry must be"):
        p.configure(ProviderSettings(feeds=(f"sshd(maxretry=0):{tmp_path}/b",)))
    assert p.settings == before and list(p.feeds) == [f"plain:{tmp_path}/a"]


# --- held finds: nothing a feed reads is lost while the agent may not report ----------


def feed_provider(clock: Clock, box: Outbox[Queued], log, synced: bool = True) -> Provider:
    log.write_text("")
    return provider(clock, box, synced=synced, feeds=(f"plain:{log}",))


def write(log, *lines: str) -> None:
    with open(log, "a") as f:
        f.write("".join(line + "\n" for line in lines))


def sent(box: Outbox[Queued]) -> list[str]:
    return [line for _, line in take(box, "me", None)]


def test_finds_are_held_through_the_quiet_period(clock: Clock, box: Outbox[Queued],
                                                 tmp_path) -> None:
    log = tmp_path / "threats.log"
    p = feed_provider(clock, box, log, synced=False)
    write(log, "45.0.0.1 early", "45.0.0.2 early too", "10.0.0.1 bogon")
    p.poll()
    assert p.waiting() == {"quiet": 2} and p.refused == {"filtered": 1} and not p.pending
    clock.now += 50
    p.listener.keep(parse_message("45.0.0.2 heard"), "other", None)  # reported meanwhile
    clock.now += 50 + SYNC_SLACK
    p.poll()
    assert sent(box) == ["45.0.0.1 early"]
    assert p.holds == {"held": 2, "released": 1, "current": 1, "expired": 0, "overflow": 0}
    assert p.held == {} and p.refused == {"filtered": 1, "duplicate": 1}
    p.poll()
    assert sent(box) == []  # exactly once


def test_finds_are_held_while_away_and_moderated(clock: Clock, box: Outbox[Queued],
                                                 tmp_path) -> None:
    log = tmp_path / "threats.log"
    p = feed_provider(clock, box, log)
    write(log, "45.0.0.1 x")
    p.poll()
    p.leave()  # kicked while it waited in the outbox: released, it waits for the rejoin
    assert take(box, "me", None) == [] and p.waiting() == {"away": 1}
    write(log, "45.0.0.2 while kicked")
    p.poll()
    assert p.waiting() == {"away": 2}
    p.rejoin(p.listener)
    p.poll(moderated=True)
    assert p.waiting() == {"moderated": 2}
    p.poll()
    clock.now += 1
    assert sent(box) == ["45.0.0.1 x", "45.0.0.2 while kicked"]
    assert p.holds["released"] == 2


def test_held_finds_wait_for_room_in_the_outbox(clock: Clock, box: Outbox[Queued],
                                                tmp_path) -> None:
    log = tmp_path / "threats.log"
    p = feed_provider(clock, box, log)
    write(log, *(f"45.0.0.{n} x" for n in range(1, 7)))
    p.poll()  # the outbox takes 3
    assert len(box) == 3 and p.waiting() == {"outbox": 3}
    lines = []
    for _ in range(5):
        lines += sent(box)
        p.poll()
        clock.now += 1
    assert lines == [f"45.0.0.{n} x" for n in range(1, 7)] and box.dropped == 0


def test_a_full_outbox_holds_what_it_drops(clock: Clock, box: Outbox[Queued]) -> None:
    p = provider(clock, box)
    for n in range(1, 5):
        p.report(f"45.0.0.{n}", "by hand")
    assert p.waiting() == {"outbox": 1} and box.dropped == 1
    clock.now += 3
    p.poll()
    assert sent(box) == ["45.0.0.2 by hand", "45.0.0.3 by hand"]


def test_held_finds_are_bounded_in_number_and_age(clock: Clock, box: Outbox[Queued],
                                                  tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("threatnet.provider.HOLD_MAX", 3)
    log = tmp_path / "threats.log"
    p = feed_provider(clock, box, log, synced=False)
    write(log, *(f"45.0.0.{n} x" for n in range(1, 6)))
    p.poll()
    assert [h.threat.ip for h in p.held.values()] == ["45.0.0.3", "45.0.0.4", "45.0.0.5"]
    assert p.holds["overflow"] == 2
    clock.now += 2 * 100 + 1  # two block periods: too old to report
    p.poll()
    assert p.held == {} and p.holds["expired"] == 3 and sent(box) == []


def test_state_survives_a_restart(clock: Clock, box: Outbox[Queued], tmp_path) -> None:
    log, state = tmp_path / "threats.log", tmp_path / "state.json"
    p = feed_provider(clock, box, log, synced=False)
    write(log, "45.0.0.1 held")
    p.poll()
    p.save(str(state))
    p.close()
    write(log, "45.0.0.2 while down")
    clock.now += 10
    again = provider(clock, box, synced=False, feeds=(f"plain:{log}",))
    restored = again.load(str(state))
    assert restored == (["plain:" + str(log)], [], 1, None)
    clock.now += 100 + SYNC_SLACK
    again.poll()
    assert sent(box) == ["45.0.0.1 held", "45.0.0.2 while down"]


def test_state_older_than_a_block_period_is_not_resumed(clock: Clock, box: Outbox[Queued],
                                                        tmp_path) -> None:
    log, state = tmp_path / "threats.log", tmp_path / "state.json"
    p = feed_provider(clock, box, log)
    p.save(str(state))
    write(log, "45.0.0.1 long ago")
    clock.now += 101
    again = provider(clock, box, synced=False, feeds=(f"plain:{log}",))
    assert again.load(str(state)) == ([], ["plain:" + str(log)], 0, None)
    again.poll()
    assert again.held == {} and again.feeds["plain:" + str(log)].stats()["lines_read"] == 0


@pytest.mark.parametrize("text", [
    "{not json", "[]", '{"version": 2}',
    '{"version": 1, "saved_at": 1, "feeds": {"plain:/x": [1, 2]}, "held": []}',
    '{"version": 1, "saved_at": 1, "feeds": {}, "held": [["45.0.0.256", "x", 1, "quiet"]]}',
    '{"version": 1, "saved_at": 1, "feeds": {}, "held": [["45.0.0.1", "x", 1, "filtered"]]}',
])
def test_a_bad_state_changes_nothing(clock: Clock, box: Outbox[Queued], tmp_path,
                                     text: str) -> None:
    state = tmp_path / "state.json"
    state.write_text(text)
    p = provider(clock, box)
    restored = p.load(str(state))
    assert restored.error and restored.error.startswith(f"corrupt provider state {state}")
    assert p.held == {}
    assert p.load(str(tmp_path / "missing.json")) == ([], [], 0, None)


def test_protected_addresses_are_never_reported(clock: Clock, box: Outbox[Queued],
                                                tmp_path) -> None:
    """What the listener protects (the IRC server, the agents, the protect setting) the
    provider refuses too, from a command and from a feed: every agent must reach it."""
    p = provider(clock, box)
    p.listener.configure(ListenerSettings(block=100, protect=("45.9.0.0/16",)))
    with pytest.raises(Refused, match="45.9.1.1 is protected in #tn"):
        p.submit(parse_message("45.9.1.1 x"))
    log = tmp_path / "feed.log"
    log.write_text("")
    p.configure(ProviderSettings(feeds=(f"plain:{log}",)))
    with log.open("a") as f:
        f.write("45.9.1.2 from a feed\n45.0.0.9 from a feed\n")
    p.poll()
    assert list(p.pending) == [parse_message("45.0.0.9 x").key]
    assert p.refused.get("protected") == 1
