"""What every responder shares: the Threat it is told about and the Responder base class.

A responder is told three things, always from its own worker thread (see host.py):
``update(added, removed, now)`` for a batch of changes, ``resync(threats, now)``
for the whole current set, and ``close()`` once at the end. It raises
ResponderError (a clear, loggable reason) or any other exception on failure; the
host then retries it with backoff, as a resync.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple, Protocol

from threatnet.address import format_ip, is_ipv4, parse_ip, parse_network

SINGLE = 128  # prefix length of one address in the key space


class ResponderError(Exception):
    """A responder could not apply a change; ``str(e)`` says why in one line."""


class Threat(NamedTuple):
    """One Verified Threat as responders see it, independent of the cache's internals.

    ``key`` is the address (or the first address of the network) in the key space
    of docs/CONTRACT.md, ``ip`` its canonical text (``2001:db8::/64`` for a network),
    ``prefix`` the prefix length in the key space (128 for one address; the cache
    may aggregate IPv6 per /64), ``expires_at`` a ``time.time()`` timestamp.
    """

    key: int
    ip: str
    comment: str
    reporter: str
    expires_at: float
    prefix: int = SINGLE

    @classmethod
    def make(cls, ip: str | int, comment: str = "", reporter: str = "",
             expires_at: float = 0.0) -> Threat:
        """A Threat from an address or IPv6 network (text) or a key.

        Raises AddressError for bad text and ValueError for an IPv4 network (the
        firewall's IPv4 set holds single addresses only).
        """
        if isinstance(ip, int):
            return cls(ip, format_ip(ip), comment, reporter, float(expires_at))
        if "/" not in ip:
            key = parse_ip(ip)
            return cls(key, format_ip(key), comment, reporter, float(expires_at))
        net = parse_network(ip)
        prefix = SINGLE - (net.last - net.first).bit_length()
        if prefix != SINGLE and is_ipv4(net.first):
            raise ValueError(f"IPv4 networks are not threats: {net.text}")
        return cls(net.first, net.text, comment, reporter, float(expires_at), prefix)

    @property
    def v4(self) -> bool:
        """True for an IPv4 address."""
        return is_ipv4(self.key)

    def remaining(self, now: float) -> float:
        """Seconds of the block period left at ``now`` (negative once expired)."""
        return self.expires_at - now


class KeyFilter(Protocol):
    """What a responder filter must offer; threatnet.filter.NetworkFilter does."""

    def accepts(self, key: int) -> bool: ...


class Responder:
    """Base class: a name, filters, a coalescing interval, and the three calls.

    ``filters`` (e.g. ``NetworkFilter("keep", ["198.51.100.0/24"])``) must all accept
    a threat's key for this responder to hear of it. ``interval`` is the least time
    between two applies: events arriving meanwhile are merged into one batch.
    ``expires_itself`` is True where the target drops entries at their expiry on its
    own (nftables timeouts), so the host need not send removals for plain expiry.
    """

    name = "responder"
    expires_itself = False

    def __init__(self, *, name: str | None = None, filters: Iterable[KeyFilter] = (),
                 interval: float = 0.0) -> None:
        if name is not None:
            self.name = name
        self.filters = tuple(filters)
        if interval < 0:
            raise ValueError("interval must be >= 0")
        self.interval = float(interval)

    def accepts(self, key: int) -> bool:
        """True if every filter keeps ``key``."""
        return all(f.accepts(key) for f in self.filters)

    def update(self, added: Sequence[Threat], removed: Sequence[Threat], now: float) -> None:
        """Apply a batch: ``added`` threats (new, or renewed with a later expiry) and
        ``removed`` ones (expired or withdrawn; as last added, possibly never applied
        or already gone from the target). No key is in both."""
        raise NotImplementedError

    def resync(self, threats: Sequence[Threat], now: float) -> None:
        """Make the target hold exactly ``threats`` (stale entries go)."""
        raise NotImplementedError

    def due(self) -> float | None:
        """A ``time.time()`` at which the responder wants an (empty) ``update``, or None."""
        return None

    def close(self) -> None:
        """Release resources; called once, from the worker thread, at shutdown."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


