"""Event Listener: one channel's trust rule, signature check, discard networks, cache
and block period, from one settings record. The clock is injected; nothing sleeps."""
from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from threatnet.envelope import Envelope, new_envelope
from threatnet.language import parse_message, parse_withdrawal
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


def test_a_topic_counts_only_once_it_held() -> None:
    """The channel bot reverts a topic nobody may set within a second or so: such a topic
    never sets the block period, the quorum or anything else (topic_hold)."""
    clock = Clock()
    tn = Listener(ListenerSettings(block=600, topic_hold=30), clock=clock)
    kept = "threatnet://x.example/y block=1200"
    assert tn.set_topic(kept, since=NOW - 3600)  # set long ago: it counts at once
    assert tn.block == 1200 and tn.topic_pending is None
    assert not tn.set_topic("threatnet://evil.example/x block=5, quorum=3")
    assert tn.block == 1200 and tn.topic_pending == 30
    clock.now += 2
    assert not tn.set_topic(kept)  # reverted: the change never counts
    assert tn.topic_pending is None
    clock.now += 60
    assert not tn.settle() and (tn.block, tn.quorum) == (1200, 1)
    assert not tn.set_topic("just chatting")  # held 30 s: then the setting
    clock.now += 29
    assert not tn.settle() and tn.topic_pending == 1
    clock.now += 1
    assert tn.settle() and tn.block == 600 and tn.topic_pending is None


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


# -- minimisation of harm

def test_protected_networks_are_never_kept() -> None:
    tn = listener(protect=("45.0.0.0/24",))
    assert tn.hear(heard("45.0.0.9 our own server")) == "protected"
    assert tn.counts()["protected"] == 1 and tn.cache.check("45.0.0.9") is None


def test_new_discard_or_protect_settings_take_current_threats_back() -> None:
    tn = listener()
    removed = []
    tn.on_act, tn.on_remove = (lambda e: None), removed.append
    tn.hear(heard("45.0.0.1 x"))
    tn.hear(heard("46.0.0.1 x"))
    tn.configure(ListenerSettings(protect=("45.0.0.0/8",)))
    assert [e.ip for e in removed] == ["45.0.0.1"] and tn.cache.check("45.0.0.1") is None
    tn.configure(ListenerSettings(discard=("BOGONS", "46.0.0.1")))
    assert [e.ip for e in removed] == ["45.0.0.1", "46.0.0.1"]


def test_a_full_cache_refuses_new_threats_and_keeps_what_it_has() -> None:
    tn = listener(max_threats=2)
    for n in (1, 2, 3):
        tn.hear(heard(f"45.0.0.{n} x"))
    assert [e.ip for e in tn.cache] == ["45.0.0.1", "45.0.0.2"]
    assert tn.counts()["full"] == 1
    assert tn.hear(heard("45.0.0.1 again")) == "duplicate"  # not "full"


def test_quorum_acts_once_enough_distinct_reporters_said_it() -> None:
    tn = listener(quorum=3)
    acted = []
    tn.on_act = acted.append
    assert tn.hear(heard("45.0.0.1 a", nick="a1", account="one")) is None
    assert tn.hear(heard("45.0.0.1 b", nick="a1b", account="ONE")) == "duplicate"  # same one
    assert not tn.acted(parse_message("45.0.0.1").key) and acted == []
    line = heard("45.0.0.1 c", nick="a2")  # no account: the host counts
    assert tn.verify(line.message, line) == "below quorum"  # not for bridges yet
    assert tn.hear(line) == "corroborated"
    assert tn.hear(heard("45.0.0.1 d", nick="a3", account="three")) == "corroborated"
    assert [e.ip for e in acted] == ["45.0.0.1"] and tn.acted(parse_message("45.0.0.1").key)
    assert tn.reporters(parse_message("45.0.0.1").key) == \
        ["account:one", "host:h.example", "account:three"]
    assert tn.hear(heard("45.0.0.1 e", nick="a4", account="four")) == "duplicate"


def test_the_topic_sets_the_quorum_unless_a_setting_does() -> None:
    tn = listener()
    acted = []
    tn.on_act = acted.append
    tn.set_topic("threatnet://x.example/y quorum=2")
    tn.hear(heard("45.0.0.1 a", account="one"))
    assert acted == [] and tn.threats() == []
    key = parse_message("45.0.0.1").key
    assert tn.wants(key, "account:two") and not tn.wants(key, "account:one")
    tn.set_topic("threatnet://x.example/y")  # the quorum dropped to 1: act at once
    assert [e.ip for e in acted] == ["45.0.0.1"] and len(tn.threats()) == 1
    tn.configure(ListenerSettings(quorum=5))
    assert tn.quorum == 5 and tn.acted(key)  # raising it never takes a block back


def test_expiry_reports_only_what_was_acted_on() -> None:
    clock = Clock()
    tn = Listener(ListenerSettings(block=10, quorum=2), clock=clock)
    tn.hear(heard("45.0.0.1 a", account="one"))
    tn.hear(heard("45.0.0.1 b", account="two"))
    tn.hear(heard("45.0.0.2 a", account="one"))
    clock.now += 11
    assert [e.ip for e in tn.expire()] == ["45.0.0.1"]
    assert tn.reporters(parse_message("45.0.0.1").key) == []


def test_withdrawal_by_the_reporter_or_an_operator_only() -> None:
    tn = listener()
    removed = []
    tn.on_act, tn.on_remove = (lambda e: None), removed.append
    tn.hear(heard("45.0.0.1 x", nick="a1", account="Alice"))
    tn.hear(heard("45.0.0.2 x", nick="a2"))
    msg, by_bob = withdrawal_of("45.0.0.1", nick="bob", account="bob")
    assert tn.withdraw(msg, by_bob) == "not the reporter"
    msg, by_alice = withdrawal_of("45.0.0.1", nick="other", account="ALICE")
    assert tn.withdraw(msg, by_alice) == "withdrawn"
    msg, same_nick_other_host = withdrawal_of("45.0.0.2", nick="a2", host="evil.example")
    assert tn.withdraw(msg, same_nick_other_host) == "not the reporter"
    msg, unvoiced_op = withdrawal_of("45.0.0.2", nick="op", voiced=False, opped=True)
    assert tn.withdraw(msg, unvoiced_op) == "withdrawn"
    msg, gone = withdrawal_of("45.0.0.3", nick="a2")
    assert tn.withdraw(msg, gone) == "not current"
    msg, stranger = withdrawal_of("45.0.0.3", nick="x", voiced=False)
    assert tn.withdraw(msg, stranger) == "untrusted"
    assert [e.ip for e in removed] == ["45.0.0.1", "45.0.0.2"]
    assert tn.withdrawals == {"withdrawn": 2, "refused": 4}


def test_signed_withdrawal_needs_the_reporters_key() -> None:
    other = Signer(Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33))), "other")
    ring = KeyRing({"ammo": TrustedKey(KEY.public_key(), ""),
                    "other": TrustedKey(other.public_key, "")})
    tn = Listener(ListenerSettings(require_signature=True), ring, clock=Clock())
    line = SIGNER.sign(parse_message("45.0.0.1 ssh"), NOW)
    assert tn.hear(heard(line)) is None
    replayed = f"withdraw {line}"  # the threat's own signature, in the wrong domain
    assert tn.withdraw(*signed_withdrawal(replayed)) == "bad signature"
    by_other = other.withdraw(parse_message("45.0.0.1 mine now"), NOW)
    assert tn.withdraw(*signed_withdrawal(by_other)) == "not the reporter"
    own = SIGNER.withdraw(parse_message("45.0.0.1 false positive"), NOW)
    assert own.startswith("withdraw 45.0.0.1 false positive sig=ammo.")
    assert tn.withdraw(*signed_withdrawal(own)) == "withdrawn"


def signed_withdrawal(line: str) -> tuple:
    msg = parse_withdrawal(line, NOW)
    return msg, new_envelope((msg, "agent", None, "h.example", "#tn", "net", True, False))


def withdrawal_of(ip: str, nick: str, account: str | None = None, host: str = "h.example",
                  voiced: bool = True, opped: bool = False) -> tuple:
    line = f"withdraw {ip} oops"
    envelope = new_envelope((parse_message(ip, NOW), nick, account, host, "#tn", "net",
                             voiced, opped))
    return parse_withdrawal(line, NOW), envelope


def test_tallies_what_it_keeps_latency_per_minute_and_by_agent() -> None:
    clock = Clock()
    tn = Listener(clock=clock)
    clock.now = NOW + 0.2  # the lines' time at the server is NOW: 200 ms to the cache
    tn.hear(heard("45.0.0.1 ssh", account="ammo"))
    tn.hear(heard("45.0.0.2 ssh", nick="bot2"))
    tn.hear(heard("45.0.0.2 again", nick="bot3"))  # a duplicate: not kept, not counted
    tn.keep(parse_message("45.0.0.3 own", NOW - 1.0), "me", None)  # submitted a second ago
    assert tn.kept_by == {"ammo": 1, "bot2": 1, "me": 1}
    assert tn.latency.count == 3 and abs(tn.latency.sum - 1.6) < 1e-6
    assert dict(tn.latency.cumulative())["0.25"] == 2
    assert tn.per_minute.series(clock.now)[-1] == 3
