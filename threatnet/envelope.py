"""Envelope: a received threat message with who sent it, and the Trust rules over it.

The proposal's security model is IRC's own: only voiced (or opped) agents speak
for the channel. ``Trust`` applies that per sender, and can also trust named
services accounts, so one known agent can be trusted inside a channel that is
not trusted as a whole (ThreatNet::IRC::Envelope).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal, NamedTuple

from threatnet.names import RFC1459, fold

if TYPE_CHECKING:
    from threatnet.language import ThreatMessage

_tuple_new = tuple.__new__


class Envelope(NamedTuple):
    """One received message: sender nick, services account (None if not logged in),
    host, channel, IRC network name, and the sender's voice/op status there.

    A NamedTuple like ThreatMessage: one is built per channel line, and a frozen
    dataclass costs four times as much to build.
    """

    message: ThreatMessage
    nick: str
    account: str | None = None
    host: str = ""
    channel: str = ""
    network: str = ""
    voiced: bool = False
    opped: bool = False


def new_envelope(fields: tuple[ThreatMessage, str, str | None, str, str, str, bool, bool],
                 ) -> Envelope:
    """An Envelope from all eight fields in order, without NamedTuple's Python-level
    __new__ (about twice as fast): the listener builds one per channel line."""
    return _tuple_new(Envelope, fields)


class Trust:
    """Which senders a channel's messages are accepted from.

    - ``voiced``: voiced or opped senders (the default security model), plus ``accounts``;
    - ``accounts``: only senders logged in to one of ``accounts``;
    - ``all``: everyone (an open channel).

    As a filter in a Chain it rejects with ``untrusted``; a message without an
    envelope has no sender to trust and is rejected too (fail closed), so local
    feeds belong in a chain without a Trust.
    """

    name = "untrusted"

    def __init__(self, mode: Literal["voiced", "all", "accounts"] = "voiced",
                 accounts: Iterable[str] = (), casemapping: str | None = RFC1459) -> None:
        if mode not in ("voiced", "all", "accounts"):
            raise ValueError(f"trust mode must be 'voiced', 'all' or 'accounts', not {mode!r}")
        self.mode = mode
        self.casemapping = casemapping  # the server's: services compare names by it
        self.accounts = frozenset(fold(a, casemapping) for a in accounts)
        if mode == "accounts" and not self.accounts:
            raise ValueError("trust mode 'accounts' needs at least one account")

    def trusts(self, envelope: Envelope) -> bool:
        if self.mode == "all":
            return True
        if self.mode == "voiced" and (envelope.voiced or envelope.opped):
            return True
        # "*" is how IRCv3 account-notify spells "not logged in".
        account = envelope.account
        return bool(account) and account != "*" and fold(account, self.casemapping) in self.accounts

    def screen(self, msg: ThreatMessage, envelope: Envelope | None = None) -> str | None:
        if envelope is not None and self.trusts(envelope):
            return None
        return self.name

    def __repr__(self) -> str:
        return f"Trust({self.mode!r}, accounts={sorted(self.accounts)!r})"
