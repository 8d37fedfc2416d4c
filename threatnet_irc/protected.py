"""Addresses a listener protects by itself: no report, however trusted, may block them.

A listener that firewalls its own IRC server cuts itself off the channel, one that
firewalls its resolver or its own addresses breaks the host it runs on. These it
can find out without being told: both ends of each IRC connection, the addresses
its host name resolves to (/etc/hosts, usually), and the resolvers in
/etc/resolv.conf. The operator's ``protect`` setting adds to them.
"""
from __future__ import annotations

import functools
import ipaddress
import socket

from threatnet.address import AddressError, format_ip, parse_ip

RESOLV_CONF = "/etc/resolv.conf"


def found(irc) -> tuple[str, ...]:
    """This connection's server and local addresses, the host's own and its resolvers."""
    return tuple(sorted({*_connection(irc), *_host_addresses(), *_resolvers(RESOLV_CONF)}))


def _connection(irc) -> list[str]:
    conn = getattr(getattr(irc, "driver", None), "conn", None)
    addresses = []
    for name in ("getpeername", "getsockname"):
        try:
            addresses.append(getattr(conn, name)()[0])
        except (AttributeError, OSError, TypeError, IndexError):
            pass
    return _canonical(addresses)


@functools.lru_cache(maxsize=1)
def _host_addresses() -> tuple[str, ...]:
    """What the host name resolves to: read once (it may ask DNS: not per poll)."""
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None)
    except OSError:
        return ()
    return tuple(_canonical(info[4][0] for info in infos))


def _resolvers(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read(65536).splitlines()
    except OSError:
        return []
    return _canonical(line.split()[1] for line in lines
                      if line.startswith("nameserver") and len(line.split()) > 1)


def _canonical(texts) -> list[str]:
    """Strict addresses only (a zone index is dropped), in canonical text."""
    out = []
    for text in texts:
        try:
            out.append(format_ip(parse_ip(str(ipaddress.ip_address(text.split("%")[0])))))
        except (AddressError, ValueError):
            pass
    return out
