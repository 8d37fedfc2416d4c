"""Threat Language: one channel line is one threat message, ``IP comment``.

The first token is the address of a Verified Threat (strict, see address.py); the
rest of the line, stripped, is a free-text comment kept verbatim. This sits on the
hot path of every line a channel carries, so the common IPv4 case is kept short.
"""
from __future__ import annotations

import re
import time
from typing import NamedTuple

from threatnet.address import AddressError, format_ip, parse_ip

# One IRC line is 512 bytes including CRLF (RFC 1459 2.3). Others receive ours
# relayed as ":nick!user@host PRIVMSG #channel :<line>\r\n". Budget generously
# (nick 64, user 16, host 128, channel 64) since NICKLEN/HOSTLEN/CHANNELLEN vary
# per network: 1+64 + 1+16 + 1+128 + 9 (" PRIVMSG ") + 64 + 2 (" :") + 2 (CRLF)
# = 288, so 512 - 288 = 224 bytes remain for the line itself.
MAX_LINE_BYTES = 224

_WS = " \t\n\r\x0b\x0c"  # ASCII only: \x1c-\x1f are str.isspace() but IRC codes
_SEPARATOR = re.compile(r"[ \t]+")
_BREAKS = re.compile(r"[\r\n\x00]")


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

    A trailing line ending is stripped with the other edge whitespace, but a CR,
    LF or NUL inside the line means it was never one IRC line: rejected.
    """
    if created is None:
        created = time.time()
    if type(line) is str:
        head, _, rest = line.partition(" ")
        if ":" not in head:  # the IPv4 fast path: a matched head is canonical
            try:
                key = parse_ip(head)
            except AddressError:
                pass
            else:
                comment = rest.strip(_WS)
                if _BREAKS.search(comment):
                    raise ThreatError("line break or NUL in comment")
                return tuple.__new__(ThreatMessage, (head, comment, created, key))
    return _parse_slow(line, created)


def _parse_slow(line: object, created: float) -> ThreatMessage:
    """Everything off the fast path: IPv6, tabs, edge whitespace, rejections."""
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
        raise ThreatError("line break or NUL in comment")
    return ThreatMessage(format_ip(key), comment, created, key)


def format_message(msg: ThreatMessage) -> str:
    """Canonical ``IP comment`` line of at most MAX_LINE_BYTES UTF-8 bytes.

    The IP is formatted from the key, CR/LF/NUL in the comment become spaces and
    an overlong comment is cut on a character boundary, so the result is always
    one safe IRC line that parses back to the same address and comment.
    """
    ip = format_ip(msg.key)
    comment = _BREAKS.sub(" ", msg.comment).strip(_WS)
    if not comment:
        return ip
    line = f"{ip} {comment}"
    if line.isascii() and len(line) <= MAX_LINE_BYTES:
        return line
    data = line.encode("utf-8", "replace")  # lone surrogates cannot go on the wire
    if len(data) > MAX_LINE_BYTES:
        data = data[:MAX_LINE_BYTES]
    return data.decode("utf-8", "ignore").rstrip(_WS)
