"""Threat Language: one channel line is one threat message, ``IP comment``.

The first token is the address of a Verified Threat (strict, see address.py); the
rest of the line, stripped, is a free-text comment kept verbatim. This sits on the
hot path of every line a channel carries, so the common IPv4 case is kept short.

A withdrawal takes back a threat said before: ``withdraw IP [reason]``. Its first
word has no dot, so the original parser (ThreatNet::Message::IPv4 wants a dotted
IPv4 address first) and agents that do not know the form ignore the line.
"""
from __future__ import annotations

import re
import struct
import time
from socket import AF_INET, AF_INET6, inet_pton
from typing import NamedTuple

from threatnet.address import V4_MAPPED_FIRST, AddressError, format_ip, parse_ip
from threatnet.text import truncate_utf8

# One IRC line is 512 bytes including CRLF (RFC 1459 2.3). Others receive ours
# relayed as ":nick!user@host PRIVMSG #channel :<line>\r\n". Budget generously
# (nick 64, user 16, host 128, channel 64) since NICKLEN/HOSTLEN/CHANNELLEN vary
# per network: 1+64 + 1+16 + 1+128 + 9 (" PRIVMSG ") + 64 + 2 (" :") + 2 (CRLF)
# = 288, so 512 - 288 = 224 bytes remain for the line itself.
MAX_LINE_BYTES = 224

# ASCII only: \x1c-\x1f are str.isspace() but also IRC formatting codes. Blanks
# separate words; a line ending counts as whitespace only at the end of the line.
_BLANKS = " \t\x0b\x0c"
_WS = _BLANKS + "\r\n"
_SEPARATOR = re.compile(r"[ \t\x0b\x0c]+")
_BREAKS = re.compile(r"[\r\n\x00]")
_BREAK_REASON = "line break or NUL in comment"
# Bound once: on the hot path these beat int.from_bytes(..., "big") and NamedTuple's
# Python-level __new__ by ~40% each.
_unpack_u32 = struct.Struct("!I").unpack
_from_bytes = int.from_bytes
_tuple_new = tuple.__new__


class ThreatError(ValueError):
    """Not a threat message; ``str(e)`` is a short reason fit to quote on IRC."""


class ThreatMessage(NamedTuple):
    """A parsed threat line: canonical ``ip``, its ``key``, comment, creation time."""

    ip: str
    comment: str
    created: float
    key: int


def parse_message(line: object, created: float | None = None) -> ThreatMessage:
    """Parse one channel line; raises only ThreatError.

    Edge whitespace (so also a trailing line ending) is stripped, but a CR, LF or
    NUL anywhere else means it never was one IRC line: rejected.
    """
    if created is None:
        created = time.time()
    if type(line) is str:
        # The fast path: parse_ip inlined, a plain space after the address.
        head, _, rest = line.partition(" ")
        try:
            if ":" in head:
                key = _from_bytes(inet_pton(AF_INET6, head), "big")
                head = format_ip(key)
            else:  # inet_pton accepts only canonical dotted quads: head is the ip
                key = V4_MAPPED_FIRST | _unpack_u32(inet_pton(AF_INET, head))[0]
        except (OSError, ValueError):
            return _parse_slow(line, created)
        if "\n" in rest or "\r" in rest or "\0" in rest:  # even a trailing one: go slow
            return _parse_slow(line, created)
        return _tuple_new(ThreatMessage, (head, rest.strip(_BLANKS), created, key))
    return _parse_slow(line, created)


def _parse_slow(line: object, created: float) -> ThreatMessage:
    """Everything off the fast path: tabs, edge whitespace, rejections."""
    if not isinstance(line, str):
        raise ThreatError("not a string")
    text = line.strip(_WS)
    if not text:
        raise ThreatError("empty line")
    head, *rest = _SEPARATOR.split(text, 1)
    try:
        key = parse_ip(head)
    except AddressError as e:
        raise ThreatError(str(e)) from None
    comment = rest[0] if rest else ""
    if _BREAKS.search(comment):
        raise ThreatError(_BREAK_REASON)
    return ThreatMessage(format_ip(key), comment, created, key)


WITHDRAW = "withdraw"


def parse_withdrawal(line: str, created: float | None = None) -> ThreatMessage | None:
    """The withdrawn address and the reason of a ``withdraw IP [reason]`` line, or None
    if the line is not one; ThreatError if it is one with a bad address."""
    word, _, rest = line.strip(_WS).partition(" ")
    if word.lower() != WITHDRAW:
        return None
    return parse_message(rest, created)


def format_withdrawal(msg: ThreatMessage) -> str:
    """The canonical withdrawal line of ``msg`` (its address, its comment as reason)."""
    return truncate_utf8(f"{WITHDRAW} {format_message(msg)}", MAX_LINE_BYTES).rstrip(_WS)


def format_message(msg: ThreatMessage) -> str:
    """Canonical ``IP comment`` line of at most MAX_LINE_BYTES UTF-8 bytes.

    The IP is formatted from the key, CR/LF/NUL in the comment become spaces and
    an overlong comment is cut on a character boundary, so the result is always
    one safe IRC line that parses back to the same address and (maybe cut) comment.
    """
    ip = format_ip(msg.key)
    comment = _BREAKS.sub(" ", msg.comment).strip(_WS)
    if not comment:
        return ip
    line = f"{ip} {comment}"
    if line.isascii() and len(line) <= MAX_LINE_BYTES:
        return line
    return truncate_utf8(line, MAX_LINE_BYTES).rstrip(_WS)
