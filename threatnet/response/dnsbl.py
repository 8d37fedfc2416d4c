"""DNSBL responder: rbldnsd zone files (``ip4set`` and ``ip6trie``) listing current threats.

rbldnsd serves them as ``ZONE:ip4set:IP4_FILE ZONE:ip6trie:IP6_FILE`` (see
conf/rbldnsd/). Each listed threat answers A ``127.0.0.2`` and a TXT with its
comment, reporter and expiry.

Facts this relies on (docs/RESPONDERS.md):
- rbldnsd notices a changed file by whole-second mtime and size only, so every
  rewrite gets an mtime strictly above the previous one (``min_mtime``).
- It runs as user ``rbldns``: files are written world-readable (0644).
- ``$TTL`` is one value per file. To keep a cached answer from outliving the
  entry that caused it, the TTL is at most half the time to the nearest expiry
  (and at most ``ttl``), and the file is rewritten with a smaller TTL before
  that nearest expiry comes closer than the TTL already served. An entry with
  less than 2 s left is served with TTL 1 until it goes.
- In a TXT template ``$`` stands for the queried IP and ``$$`` for ``$``; a
  leading ``=`` or whitespace is dropped; TXT is cut at 254 bytes (docs/RESPONDERS.md).
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from threatnet.address import AddressError, is_ipv4, parse_ip
from threatnet.atomic import atomic_write
from threatnet.response.responder import KeyFilter, Responder, ResponderError, Threat
from threatnet.text import clean_text, truncate_utf8

DEFAULT_TXT = "{comment} (reported by {reporter}, expires {expires})"
TXT_MAX = 254  # bytes, what rbldnsd serves (it cuts a 255-byte text to 254)
DEFAULT_TTL = 3600


def txt_escape(text: str) -> str:
    """``text`` as a literal rbldnsd TXT template: on one line, no leading ``=`` or
    blank, at most 254 UTF-8 bytes once served, ``$`` doubled."""
    text = clean_text(text).lstrip("= ")
    return truncate_utf8(text, TXT_MAX).replace("$", "$$")


def format_expiry(expires_at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires_at))


class _ZoneFile:
    """One rbldnsd data file and the threats it lists."""

    def __init__(self, path: Path, dataset: str) -> None:
        self.path = path
        self.dataset = dataset
        self.entries: dict[int, Threat] = {}
        self.dirty = True
        self.refresh_at: float | None = None
        self.ttl: int | None = None
        try:
            self.mtime: float | None = path.stat().st_mtime
        except OSError:
            self.mtime = None


class DnsblResponder(Responder):
    """Keeps rbldnsd zone files listing every current threat.

    ``ip4_path`` / ``ip6_path``: the ``ip4set`` and ``ip6trie`` files (None: do not
    list that family). ``zone`` names the zone in the file header. ``ttl`` caps
    ``$TTL``; ``txt`` is a ``str.format`` template over ``ip``, ``comment``,
    ``reporter``, ``expires`` (UTC, ISO 8601) and ``zone``; ``soa`` / ``ns`` the
    text after ``$SOA`` / ``$NS`` (without a ``$SOA`` rbldnsd's negative answers are
    not cacheable, so a new listing is seen at once). At most one rewrite per
    ``interval`` seconds.
    """

    name = "dnsbl"

    def __init__(self, ip4_path: str | os.PathLike[str] | None,
                 ip6_path: str | os.PathLike[str] | None, *, zone: str = "",
                 ttl: int = DEFAULT_TTL, a_value: str = "127.0.0.2", txt: str = DEFAULT_TXT,
                 soa: str | None = None, ns: str | None = None, interval: float = 1.0,
                 name: str | None = None, filters: Iterable[KeyFilter] = ()) -> None:
        super().__init__(name=name, filters=filters, interval=interval)
        if ip4_path is None and ip6_path is None:
            raise ValueError("a DNSBL needs an ip4set file, an ip6trie file or both")
        if ttl < 1:
            raise ValueError("ttl must be at least 1 second")
        try:
            if not is_ipv4(parse_ip(a_value)):
                raise AddressError("not IPv4")
        except AddressError as e:
            raise ValueError(f"A value {a_value!r} is not an IPv4 address ({e})") from None
        for label, text in (("zone", zone), ("soa", soa), ("ns", ns), ("txt", txt)):
            if text is not None and clean_text(text) != text.strip():
                raise ValueError(f"{label} must be one line of printable text")
        try:
            txt.format(ip="", comment="", reporter="", expires="", zone="")
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"bad TXT template {txt!r}: {e!r}") from None
        self.zone = zone
        self.ttl_cap = int(ttl)
        self.a_value = a_value
        self.txt = txt
        self.soa = soa
        self.ns = ns
        self.v4 = _ZoneFile(Path(ip4_path), "ip4set") if ip4_path is not None else None
        self.v6 = _ZoneFile(Path(ip6_path), "ip6trie") if ip6_path is not None else None

    def datasets(self) -> list[str]:
        """rbldnsd command-line arguments serving these files as ``zone``."""
        return [f"{self.zone}:{f.dataset}:{f.path}" for f in self._files()]

    # -- Responder

    def update(self, added: Sequence[Threat], removed: Sequence[Threat], now: float) -> None:
        for threat in added:
            zone_file = self.v4 if threat.v4 else self.v6
            if zone_file is not None:
                zone_file.entries[threat.key] = threat
                zone_file.dirty = True
        for threat in removed:
            zone_file = self.v4 if threat.v4 else self.v6
            if zone_file is not None and zone_file.entries.pop(threat.key, None) is not None:
                zone_file.dirty = True
        self._write(now)

    def resync(self, threats: Sequence[Threat], now: float) -> None:
        for zone_file in self._files():
            zone_file.entries = {}
            zone_file.dirty = True
        self.update(threats, (), now)

    def due(self) -> float | None:
        times = [f.refresh_at for f in self._files() if f.refresh_at is not None]
        return min(times) if times else None

    # -- files

    def _files(self) -> list[_ZoneFile]:
        return [f for f in (self.v4, self.v6) if f is not None]

    def _write(self, now: float) -> None:
        for zone_file in self._files():
            expired = [k for k, t in zone_file.entries.items() if t.expires_at <= now]
            for key in expired:
                del zone_file.entries[key]
            if zone_file.dirty or expired:
                self._write_file(zone_file, now)
            elif zone_file.refresh_at is not None and zone_file.refresh_at <= now:
                ttl, refresh_at = self._ttl(zone_file, now)
                if ttl == zone_file.ttl:
                    zone_file.refresh_at = refresh_at  # nothing would change
                else:
                    self._write_file(zone_file, now)

    def _write_file(self, zone_file: _ZoneFile, now: float) -> None:
        ttl, refresh_at = self._ttl(zone_file, now)
        data = self.render(zone_file, ttl, now)
        min_mtime = zone_file.mtime + 1 if zone_file.mtime is not None else None
        try:
            atomic_write(zone_file.path, data, mode=0o644, min_mtime=min_mtime)
            zone_file.mtime = os.stat(zone_file.path).st_mtime
        except OSError as e:
            raise ResponderError(f"cannot write {zone_file.path}: {e.strerror or e}") from e
        zone_file.dirty = False
        zone_file.ttl = ttl
        zone_file.refresh_at = refresh_at

    def _ttl(self, zone_file: _ZoneFile, now: float) -> tuple[int, float | None]:
        """The file's ``$TTL`` and when to rewrite it before that TTL gets too long."""
        if not zone_file.entries:
            return self.ttl_cap, None
        nearest = min(t.expires_at for t in zone_file.entries.values())
        half = (nearest - now) / 2
        if half < 1:
            return 1, None  # the nearest entry goes within 2 s; its removal rewrites
        ttl = min(self.ttl_cap, math.floor(half))
        return ttl, nearest - ttl

    def render(self, zone_file: _ZoneFile, ttl: int, now: float) -> str:
        """The whole data file."""
        lines = [f"# ThreatNet DNSBL {self.zone} ({zone_file.dataset}): "
                 f"{len(zone_file.entries)} threat(s), written {format_expiry(now)}.",
                 "# Generated by ThreatNet: edits are overwritten."]
        if self.soa:
            lines.append(f"$SOA {self.soa}")
        if self.ns:
            lines.append(f"$NS {self.ns}")
        lines.append(f"$TTL {ttl}")
        a_value = self.a_value
        for key in sorted(zone_file.entries):
            threat = zone_file.entries[key]
            lines.append(f"{threat.ip} :{a_value}:{self.txt_for(threat)}")
        lines.append("")
        return "\n".join(lines)

    def txt_for(self, threat: Threat) -> str:
        """The TXT template of one entry, escaped; the comment is cut first when long."""
        fields = {"ip": threat.ip, "reporter": clean_text(threat.reporter),
                  "expires": format_expiry(threat.expires_at), "zone": self.zone}
        comment = clean_text(threat.comment)
        text = self.txt.format(comment=comment, **fields)
        if len(text.encode("utf-8")) > TXT_MAX:
            room = TXT_MAX - len(self.txt.format(comment="", **fields).encode("utf-8"))
            comment = truncate_utf8(comment, max(0, room - 3)).rstrip()
            text = self.txt.format(comment=comment + "...", **fields)
        return txt_escape(text)
