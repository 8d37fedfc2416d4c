"""Event Listener: one channel's trust rule, signature check, discard networks, cache
and block period, from one settings record. The clock is injected; nothing sleeps."""
from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from threatnet.envelope import Envelope, new_envelope
from threatnet.language import parse_message
from threatnet.listener import HEARD, Listener, ListenerSettings
from threatnet.signature import REJECTIONS, KeyRing, Signer, TrustedKey

NOW = 1_700_000_000.0
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
SIGNER = Signer(KEY, "ammo")
RING = KeyRing({"ammo": TrustedKey(KEY.public_key(), "")})


class Clock:
    now = NOW

    def __call__(self) -> float:
        return self.now


def heard(line: str, nick: str = "agent", account: str | None = None, voiced: bool = True,
          ) -> Envelope:
    return new_envelope((parse_message(line, NOW), nick, account, "h.example", "#tn", "net",
                         voiced, False))


def listener(**settings) -> Listener:
    return Listener(ListenerSettings(**settings), clock=Clock())


def test_keeps_a_voiced_senders_new_threat_once() -> None:
    tn = listener()
    assert tn.hear(heard("45.0.0.1 ssh")) is None
    assert tn.hear(heard("45.0.0.1 again")) == "duplicate"
    assert tn.hear(heard("45.0.0.2 x", voiced=False)) == "untrusted"
    assert tn.hear(heard("10.0.0.1 x")) == "filtered"  # BOGONS by default
    assert tn.counts() == {"kept": 1, "duplicate": 1, "filtered": 1, "untrusted": 1}
    assert tn.cache.check("45.0.0.1").nick == "agent"


def test_trusted_accounts_fold_by_the_servers_casemapping() -> None:
    tn = listener(trust="accounts", accounts=("[Bot]",), casemapping="rfc1459")
    assert tn.hear(heard("45.0.0.1 x", account="{bot}", voiced=False)) is None
    ascii_tn = listener(trust="accounts", accounts=("[Bot]",), casemapping="ascii")
    assert ascii_tn.hear(heard("45.0.0.1 x", account="{bot}")) == "untrusted"


def test_accounts_mode_without_accounts_trusts_nobody() -> None:
    tn = listener(trust="accounts")
    assert tn.hear(heard("45.0.0.1 x", account="anyone")) == "untrusted"


def test_signed_mode_trusts_the_signature_not_the_voice() -> None:
    tn = Listener(ListenerSettings(trust="signed"), RING, clock=Clock())
    assert tn.hear(heard("45.0.0.1 unsigned")) == "unsigned"
    line = SIGNER.sign(parse_message("45.0.0.2 signed"), NOW)
    assert tn.hear(heard(line, voiced=False)) is None
    assert list(tn.counts()) == [*HEARD, *REJECTIONS]
    assert tn.counts()["unsigned"] == 1
    tn.configure(ListenerSettings(trust="signed"), None)  # the key ring went away
    assert tn.hear(heard(SIGNER.sign(parse_message("45.0.0.3 x"), NOW))) == "unknown key"


def test_required_signature_comes_after_the_trust_rule() -> None:
    tn = Listener(ListenerSettings(require_signature=True), RING, clock=Clock())
    line = SIGNER.sign(parse_message("45.0.0.2 signed"), NOW)
    assert tn.hear(heard(line, voiced=False)) == "untrusted"
    assert tn.hear(heard(line)) is None
    tn.configure(ListenerSettings())
    assert tn.signature is None and list(tn.counts()) == list(HEARD)


def test_verify_is_the_trust_part_only() -> None:
    tn = listener()
    envelope = heard("45.0.0.1 x")
    assert tn.hear(envelope) is None
    assert tn.verify(envelope.message, envelope) is None  # current, but vouched for
    assert tn.verify(parse_message("10.0.0.1 x"), envelope) is None  # discarded, vouched for
    assert tn.verify(envelope.message, heard("45.0.0.1 x", voiced=False)) == "untrusted"
    assert tn.verify(envelope.message, None) == "untrusted"  # no sender: fail closed


def test_block_period_from_topic_else_setting() -> None:
    tn = Listener(ListenerSettings(block=600, require_signature=True), RING, clock=Clock())
    assert tn.block == 600
    assert tn.set_topic("threatnet://x.example/y block=120")
    assert tn.block == 120 and tn.signature.max_age == 120
    assert not tn.set_topic("threatnet://x.example/y block=120 other")
    assert tn.set_topic("threatnet://x.example/y")  # no block=: the protocol's default
    assert tn.block == 3600
    assert tn.set_topic("just chatting")  # not a ThreatNet topic: the setting
    assert tn.block == 600
    assert tn.configure(ListenerSettings(block=900, require_signature=True), RING)
    assert not tn.configure(ListenerSettings(block=900, require_signature=True), RING)


def test_threats_and_keep_of_our_own_lines() -> None:
    clock = Clock()
    tn = Listener(ListenerSettings(block=100), clock=clock)
    assert tn.keep(parse_message("45.0.0.1 mine"), "me", "myaccount")
    assert not tn.keep(parse_message("45.0.0.1 mine"), "me", None)
    [threat] = tn.threats()
    assert (threat.ip, threat.reporter, threat.expires_at, threat.prefix) == \
        ("45.0.0.1", "me", NOW + 100, 128)
    clock.now += 101
    assert [e.ip for e in tn.expire()] == ["45.0.0.1"]
    assert tn.threats() == []
