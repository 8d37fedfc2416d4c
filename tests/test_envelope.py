"""Envelope and Trust: who may speak for a channel, alone and inside a Chain."""
from __future__ import annotations

import pytest

from threatnet.cache import ThreatCache
from threatnet.envelope import Envelope, Trust, new_envelope
from threatnet.filter import Chain
from threatnet.language import parse_message

MSG = parse_message("198.51.100.7 ssh brute force", created=0.0)


def env(nick: str = "agent", account: str | None = None, voiced: bool = False,
        opped: bool = False) -> Envelope:
    return Envelope(MSG, nick, account, "agent.example.net", "#threatnet", "libera",
                    voiced, opped)


def test_new_envelope_is_an_envelope_from_all_fields() -> None:
    fields = (MSG, "agent", "acct", "agent.example.net", "#threatnet", "libera", True, False)
    built = new_envelope(fields)
    assert type(built) is Envelope and built == Envelope(*fields) and built.voiced


# (trust, sender, trusted?)
TRUST_TABLE = [
    (Trust(), env(), False),
    (Trust(), env(voiced=True), True),
    (Trust(), env(opped=True), True),
    (Trust(), env(account="ammobot"), False),
    (Trust("voiced", ["ammobot"]), env(account="AmmoBot"), True),  # this agent, unvoiced
    (Trust("voiced", ["ammobot"]), env(account="other"), False),
    (Trust("all"), env(), True),
    (Trust("accounts", ["AmmoBot"]), env(account="ammobot"), True),
    (Trust("accounts", ["AmmoBot"]), env(account="AMMOBOT"), True),
    (Trust("accounts", ["[Bot]^"]), env(account="{bot}~"), True),  # RFC 1459 casemapping
    (Trust("accounts", ["ammobot"]), env(account="ammobot2"), False),
    (Trust("accounts", ["ammobot"]), env(account=None, voiced=True, opped=True), False),
    (Trust("accounts", ["ammobot"]), env(account=""), False),
    (Trust("accounts", ["*"]), env(account="*"), False),  # IRCv3 "*" = not logged in
]


@pytest.mark.parametrize(("trust", "sender", "trusted"), TRUST_TABLE)
def test_trust_rules(trust: Trust, sender: Envelope, trusted: bool) -> None:
    assert trust.trusts(sender) is trusted
    assert trust.screen(MSG, sender) == (None if trusted else "untrusted")


def test_no_envelope_is_untrusted() -> None:
    assert Trust("all").screen(MSG) == "untrusted"


def test_envelope_defaults_and_immutability() -> None:
    e = Envelope(MSG, "agent")
    assert (e.account, e.host, e.channel, e.network, e.voiced, e.opped) == (
        None, "", "", "", False, False)
    with pytest.raises(AttributeError):
        e.voiced = True  # type: ignore[misc]


@pytest.mark.parametrize(("mode", "accounts", "message"), [
    ("voice", (), "trust mode must be"),
    ("accounts", (), "needs at least one account"),
])
def test_bad_trust(mode: str, accounts: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Trust(mode, accounts)  # type: ignore[arg-type]


def test_untrusted_messages_never_reach_the_cache() -> None:
    cache = ThreatCache(clock=lambda: 0.0)
    chain = Chain([Trust("voiced", ["ammobot"]), cache])
    assert chain.check(MSG, env(nick="stranger")) == "untrusted"
    assert cache.check(MSG.key) is None
    assert chain.check(MSG, env(nick="ammo", account="AmmoBot")) is None
    entry = cache.check(MSG.key)
    assert entry is not None and (entry.nick, entry.account) == ("ammo", "AmmoBot")
    assert chain.check(MSG, env(voiced=True)) == "duplicate"
