"""Threat Filter: pass on only the threat messages that meet a set of criteria.

A filter ``screen(msg, envelope)`` returns None to pass a message on, or a short
reason name to reject it. A ``Chain`` runs filters in order and stops at the first
rejection, so stateful filters later in the chain (the Threat Cache) never see a
message an earlier filter rejected. ``NetworkFilter`` is the original
ThreatNet::Filter::Network over IPv4 and IPv6, ``NullFilter`` keeps everything.

A filter that cannot answer yet (a DNS lookup in flight: threatnet/dnsbl.py) returns
``PENDING``, which stops the chain like a rejection. A caller that can wait (the
Network Bridge) asks again later; any other caller refuses the message, so a filter
that needs time never lets through what it has not checked.
"""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Literal, Protocol

from netaddr import IPAddress, IPNetwork, IPRange, IPSet

from threatnet.address import AddressError, parse_network

if TYPE_CHECKING:
    from threatnet.envelope import Envelope
    from threatnet.language import ThreatMessage

# IPv4 keys live in ::ffff:0:0/96 (docs/CONTRACT.md): IPv6 keyword blocks must
# never cover it, or every IPv4 address would match them.
_V4_MAPPED = IPSet(["::ffff:0:0/96"])

# Not decided yet: ask again later (see the module docstring).
PENDING = "pending"

# The original keywords, verbatim from ThreatNet::Filter::Network.
_RFC1918 = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
_RFC3330 = ("0.0.0.0/8", "10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
            "192.0.2.0/24", "192.168.0.0/16", "192.88.99.0/24", "198.18.0.0/15",
            "224.0.0.0/4", "240.0.0.0/4")
_LOCAL = ("127.0.0.0/8",) + _RFC1918

# BOGONS: addresses no real attacker can be seen from. Sources (checked 2025):
# - IANA IPv4 Special-Purpose Address Registry
#   https://www.iana.org/assignments/iana-ipv4-special-registry/ (every entry, also the
#   few "globally reachable" anycast ones: AS112 and AMT relays do not attack anyone),
#   plus 224.0.0.0/4 multicast (IPv4 Multicast Address Space registry).
#   240.0.0.0/4 covers the limited broadcast 255.255.255.255/32.
_BOGONS_V4 = ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
              "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.31.196.0/24",
              "192.52.193.0/24", "192.88.99.0/24", "192.168.0.0/16", "192.175.48.0/24",
              "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4",
              "240.0.0.0/4")
# - IANA IPv6 Address Space registry: only 2000::/3 is global unicast, so everything
#   outside it is a bogon. That covers these IPv6 Special-Purpose Address Registry
#   entries (https://www.iana.org/assignments/iana-ipv6-special-registry/): ::/128,
#   ::1/128, 64:ff9b::/96, 64:ff9b:1::/48, 100::/64, 100:0:0:1::/64, 5f00::/16,
#   fc00::/7, fe80::/10, and ff00::/8 multicast; ::ffff:0:0/96 is taken out below.
# - The special-purpose entries inside 2000::/3 are listed explicitly.
_BOGONS_V6 = ("::/3", "4000::/2", "8000::/1",
              "2001::/23",  # IETF protocol assignments (Teredo, ORCHID, AS112-v6, ...)
              "2001:db8::/32", "3fff::/20",  # documentation
              "2002::/16",  # 6to4
              "2620:4f:8000::/48")  # AS112 direct delegation

KEYWORDS: dict[str, tuple[str, ...]] = {
    "RFC1918": _RFC1918,
    "RFC3330": _RFC3330,
    "LOCAL": _LOCAL,
    "BOGONS": _BOGONS_V4 + _BOGONS_V6,
}


def _keyword_set(cidrs: tuple[str, ...]) -> IPSet:
    """The keys a keyword covers: IPv4 blocks mapped, IPv6 blocks minus the mapped /96."""
    v4 = IPSet(IPNetwork(c).ipv6(ipv4_compatible=False) for c in cidrs if ":" not in c)
    v6 = IPSet(c for c in cidrs if ":" in c) - _V4_MAPPED
    return v4 | v6


_KEYWORD_SETS = {word: _keyword_set(cidrs) for word, cidrs in KEYWORDS.items()}


class Filter(Protocol):
    """Anything a Chain can run: None passes the message, a str rejects it (PENDING:
    not decided yet)."""

    def screen(self, msg: ThreatMessage, envelope: Envelope | None = None) -> str | None: ...


def _network_set(entries: Iterable[str]) -> IPSet:
    """Keys covered by keywords (case-insensitive), CIDRs and single IPs.

    Raises ValueError naming the first bad entry.
    """
    covered = IPSet()
    for entry in entries:
        text = entry.strip()
        word = _KEYWORD_SETS.get(text.upper())
        if word is not None:
            covered |= word
            continue
        if text.isalnum() and not text.isdigit():  # looks like a keyword, not an address
            known = ", ".join(sorted(KEYWORDS))
            raise ValueError(f"unknown network keyword {entry!r} (known: {known})")
        try:
            net = parse_network(text)
        except AddressError as e:
            raise ValueError(f"bad network {entry!r}: {e}") from None
        covered.add(IPRange(IPAddress(net.first, 6), IPAddress(net.last, 6)))
    return covered


class NetworkFilter:
    """Keep (``keep``) or drop (``discard``) messages whose IP is in any listed network.

    Networks are merged once at construction into sorted range boundaries, so the
    per-message test is one bisect: a key is inside iff an odd number of
    boundaries are <= it.
    """

    def __init__(self, mode: Literal["keep", "discard"], networks: Iterable[str],
                 name: str = "filtered") -> None:
        if mode not in ("keep", "discard"):
            raise ValueError(f"filter mode must be 'keep' or 'discard', not {mode!r}")
        self.mode = mode
        self.name = name
        self.networks = tuple(networks)
        if not self.networks:
            raise ValueError("a network filter needs at least one network")
        bounds: list[int] = []
        for r in _network_set(self.networks).iter_ipranges():
            bounds += (r.first, r.last + 1)
        self._bounds = bounds
        self._inside_keeps = 1 if mode == "keep" else 0

    def accepts(self, key: int) -> bool:
        """True if a message with this key is kept."""
        return (bisect_right(self._bounds, key) & 1) == self._inside_keeps

    def screen(self, msg: ThreatMessage, envelope: Envelope | None = None) -> str | None:
        if (bisect_right(self._bounds, msg.key) & 1) == self._inside_keeps:
            return None
        return self.name

    def __repr__(self) -> str:
        return f"NetworkFilter({self.mode!r}, {list(self.networks)!r}, name={self.name!r})"


class NullFilter:
    """Keeps everything (ThreatNet::Filter::Null)."""

    def screen(self, msg: ThreatMessage, envelope: Envelope | None = None) -> str | None:
        return None


class Lookup:
    """A Threat Filter from a predicate on keys: rejects (as ``name``) what ``listed``
    is true for, e.g. addresses the local DNSBL already lists.

    It runs for every threat the bridge routes, so ``listed`` must answer from
    memory, never wait on the network (a DNSBL over DNS: threatnet.dnsbl.DnsblLookup).
    """

    def __init__(self, listed: Callable[[int], bool], name: str = "listed") -> None:
        self.listed = listed
        self.name = name

    def screen(self, msg: ThreatMessage, envelope: Envelope | None = None) -> str | None:
        return self.name if self.listed(msg.key) else None


class Chain:
    """Runs filters in order; the first rejection wins and stops the chain."""

    def __init__(self, filters: Iterable[Filter]) -> None:
        self.filters = tuple(filters)
        self._screens = tuple(f.screen for f in self.filters)

    def check(self, msg: ThreatMessage, envelope: Envelope | None = None) -> str | None:
        """None if every filter kept ``msg``, else the rejecting filter's reason name."""
        for screen in self._screens:
            reason = screen(msg, envelope)
            if reason is not None:
                return reason
        return None
