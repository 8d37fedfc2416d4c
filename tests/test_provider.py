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
