"""Services accounts of the users the bot sees, as services told it and nobody else.

Limnoria's IrcState records an ``account`` message tag whether or not the server
acknowledged the account-tag capability, so a client-sent ``@account=bob`` that a
bouncer or a lax server passes on would make its sender "bob" there. The plugins read
accounts from an ``Accounts`` instead, fed only by what services say: ACCOUNT
(account-notify), extended-join, WHOX replies, and the account tag while account-tag
is acknowledged (then an untagged line means logged out).
"""
from __future__ import annotations

import supybot.ircutils as ircutils

ACCOUNT_TAG = "account-tag"


def tags_count(irc) -> bool:
    """Whether account tags on this connection come from the server (account-tag acked)."""
    return ACCOUNT_TAG in irc.state.capabilities_ack


class Accounts:
    """nick -> services account (None: logged out) per network, from services only."""

    def __init__(self) -> None:
        self._networks: dict[str, ircutils.IrcDict] = {}

    def get(self, network: str, nick: str) -> str | None:
        nicks = self._networks.get(network)
        return nicks.get(nick) if nicks is not None else None

    def forget(self, network: str) -> None:
        """A new connection: nothing learned on the old one holds."""
        self._networks.pop(network, None)

    def feed(self, irc, msg) -> None:
        """Learn from one message (call it from inFilter for every message)."""
        command, args = msg.command, msg.args
        nicks = self._networks.get(irc.network)
        if nicks is None:
            nicks = self._networks[irc.network] = ircutils.IrcDict()
        if msg.nick and tags_count(irc) and ircutils.isUserHostmask(msg.prefix):
            nicks[msg.nick] = msg.server_tags.get("account") or None
        if command == "ACCOUNT" and args and msg.nick:
            nicks[msg.nick] = None if args[0] == "*" else args[0]
        elif command == "JOIN" and len(args) > 1 and msg.nick \
                and "extended-join" in irc.state.capabilities_ack:
            nicks[msg.nick] = None if args[1] == "*" else args[1]
        elif command == "354" and len(args) == 9 and args[1] == "1":  # %tuhnairf,1
            nicks[args[5]] = None if args[7] == "0" else args[7]
        elif command == "NICK" and args and msg.nick in nicks:
            nicks[args[0]] = nicks.pop(msg.nick)
        elif command == "QUIT" and msg.nick:
            nicks.pop(msg.nick, None)
