"""IP addresses and networks as keys: the strict parser under the Threat Language.

Every address is one int "key" in the IPv6 space; an IPv4 address a.b.c.d is the
IPv4-mapped key ``::ffff:a.b.c.d`` (see docs/CONTRACT.md). Parsing is strict on
purpose: a channel line is untrusted input, and every address form that two
implementations might read differently (``10.1``, ``010.1.1.1``, ``0x7f.1.1.1``,
zone ids, fullwidth digits) is refused rather than guessed at.
"""
from __future__ import annotations

import ipaddress
import re
from socket import AF_INET, AF_INET6, inet_ntop, inet_pton
from typing import NamedTuple

V4_MAPPED_FIRST = 0xFFFF << 32
V4_MAPPED_LAST = V4_MAPPED_FIRST | 0xFFFFFFFF
KEY_LAST = (1 << 128) - 1

_DIGITS = re.compile(r"[0-9]+")  # not \d: that matches fullwidth digits too
_IPV6_CHARS = re.compile(r"[0-9A-Fa-f:.]+")
_SHOWN = 15  # longest piece of bad input quoted back in a reason


class AddressError(ValueError):
    """Not a strict address or network; ``str(e)`` is a short human reason."""


def parse_ip(text: str) -> int:
    """Parse one strict IPv4 or IPv6 address into its key.

    POSIX inet_pton (glibc, musl, BSD) is already strict: four decimal octets, no
    leading zeros, no short or hex forms, no zone ids; it runs in C, and the test
    vectors pin that behaviour. Python only explains rejections (``_reason``).
    """
    try:
        if ":" in text:
            return int.from_bytes(inet_pton(AF_INET6, text), "big")
        return V4_MAPPED_FIRST | int.from_bytes(inet_pton(AF_INET, text), "big")
    except (OSError, ValueError, TypeError):  # ValueError: NUL or surrogate in text
        raise AddressError(_reason(text)) from None


def format_ip(key: int) -> str:
    """Canonical text: dotted quad for IPv4-mapped keys, RFC 5952 for IPv6."""
    if V4_MAPPED_FIRST <= key <= V4_MAPPED_LAST:
        return inet_ntop(AF_INET, (key & 0xFFFFFFFF).to_bytes(4, "big"))
    if not 0 <= key <= KEY_LAST:
        raise AddressError("key out of range")
    text = inet_ntop(AF_INET6, key.to_bytes(16, "big"))
    # glibc also writes IPv4-compatible keys (::a.b.c.d) dotted; RFC 5952 keeps dots
    # for IPv4-mapped only, as ipaddress does (slow, but this is rare).
    return ipaddress.IPv6Address(key).compressed if "." in text else text


def is_ipv4(key: int) -> bool:
    """True if the key is an IPv4 address (IPv4-mapped)."""
    return V4_MAPPED_FIRST <= key <= V4_MAPPED_LAST


class Network(NamedTuple):
    """An inclusive key range with its canonical text (a single IP is plain)."""

    first: int
    last: int
    text: str


def parse_network(text: str) -> Network:
    """Parse a strict CIDR (``10.0.0.0/8``, ``2001:db8::/32``) or a single IP."""
    if not isinstance(text, str):
        raise AddressError("not a string")
    address, slash, prefix_text = text.partition("/")
    if not slash:
        key = parse_ip(text)
        return Network(key, key, format_ip(key))
    if "/" in prefix_text:
        raise AddressError("more than one '/'")
    key = parse_ip(address)
    width = 128 if ":" in address else 32
    if not _DIGITS.fullmatch(prefix_text) or (len(prefix_text) > 1 and prefix_text[0] == "0"):
        raise AddressError("invalid prefix length")
    prefix = int(prefix_text)
    if prefix > width:
        raise AddressError(f"prefix /{prefix} > {width}")
    prefix += 128 - width  # IPv4 prefixes count inside the mapped /96
    host_mask = (1 << (128 - prefix)) - 1
    first = key & ~host_mask
    canonical = _network_text(first, prefix)
    if key != first:
        raise AddressError(f"host bits set: did you mean {canonical}?")
    return Network(first, first | host_mask, canonical)


def _network_text(first: int, prefix: int) -> str:
    """Canonical text of an aligned network; mapped /96+ is written as IPv4."""
    if prefix == 128:
        return format_ip(first)
    if prefix >= 96 and is_ipv4(first):
        return f"{format_ip(first)}/{prefix - 96}"
    return f"{format_ip(first)}/{prefix}"


def _reason(text: object) -> str:
    """Why ``text`` is not a strict address (the slow path, only on rejection)."""
    if not isinstance(text, str):
        return "not a string"
    if not text:
        return "empty address"
    for ch in text:
        if ord(ch) < 32 or ord(ch) == 127:  # also IRC formatting codes and CTCP
            return "control or formatting character"
        if ch.isspace():
            return "whitespace in address"
        if ord(ch) > 127:
            return "non-ASCII character"
    if "/" in text:
        return "CIDR not allowed"
    if "%" in text:
        return "zone id not allowed"
    if "[" in text or "]" in text:
        return "brackets not allowed"
    if ":" in text:
        return "invalid IPv6 address" if _IPV6_CHARS.fullmatch(text) else "not an IP address"
    if "." not in text:
        return "not an IP address"
    if text.endswith("."):
        return "trailing dot"
    parts = text.split(".")
    if len(parts) != 4:
        return f"expected 4 octets, got {len(parts)}"
    for part in parts:
        shown = part[:_SHOWN]
        if not part:
            return "empty octet"
        if part[:2].lower() == "0x":
            return f"hex octet {shown} not allowed"
        if not _DIGITS.fullmatch(part):
            return f"invalid octet {shown!r}"
        if len(part) > 1 and part[0] == "0":
            return f"leading zero in {shown}"
        if len(part) > 3 or int(part) > 255:
            return f"octet {shown} > 255"
    return "invalid IPv4 address"
