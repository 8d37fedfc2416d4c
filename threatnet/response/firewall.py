"""Firewall responder: nftables sets of threat addresses, one timeout per element.

The table, its sets and the chains that drop their members ship as
conf/nftables/threatnet.nft. This responder only changes set elements, every
batch in one ``nft -f -`` transaction (one process; 10,000 new elements take about
0.2 s), so a failed batch changes nothing.

Three sets: IPv4 addresses, IPv6 addresses and IPv6 /64 networks (the cache's
IPv6 aggregation). The last holds each network's first address and the ruleset
matches it through a /64 mask, so all three are plain hash sets: deleting from an
interval set took 23 ms per element at 10,000 elements. Other IPv6 prefixes are
skipped with a warning.

Facts this relies on (docs/RESPONDERS.md, measured on Debian 12):
- Each element gets its own timeout, the threat's remaining block time: elements
  loaded together must not expire together.
- Re-adding an element may or may not reset its timeout depending on the kernel,
  and deleting a missing element aborts the whole batch. So renewing an element
  this responder put there, and that has not expired by more than a few seconds,
  is an upsert: ``add`` (timeout 1 s) + ``delete`` + ``add`` (real timeout); a
  removal is ``add`` + ``delete``: both work whether or not the element is there.
  A threat it has not put there (the common case: the cache only accepts an
  address whose block has ended) is one plain ``add``, which keeps a burst fast.
- ``timeout 0ms`` would mean *no* timeout: the least timeout written is 1 ms.
- A resync flushes the sets and re-adds every threat in the same transaction.
"""
from __future__ import annotations

import logging
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from threatnet.address import format_ip
from threatnet.response.responder import KeyFilter, Responder, ResponderError, Threat

log = logging.getLogger("threatnet.response.firewall")

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_FAMILIES = ("inet", "ip", "ip6", "bridge", "netdev")
_CHUNK = 5000  # elements per statement (all statements still form one transaction)
_MAX_TIMEOUT_S = 49 * 86400  # nftables (1.0.6) rejects element timeouts past ~49.7 days
_NO_SUCH = "No such file or directory"
# An element this responder added counts as possibly present until this long after
# its expiry (the kernel's clock started a little later): renewing it is an upsert.
_MARGIN = 5.0


def nft_timeout(seconds: float) -> str:
    """An element timeout as nft reads it, never 0 (which means none): ``3599s500ms``."""
    ms = min(max(1, int(seconds * 1000)), _MAX_TIMEOUT_S * 1000)
    s, ms = divmod(ms, 1000)
    return f"{s}s{ms}ms" if s else f"{ms}ms"


class FirewallResponder(Responder):
    """Adds threats to the nftables sets ``set4``, ``set6`` and ``set6net`` (/64s) of
    ``family table``.

    ``nft`` is the command prefix (e.g. ``["ip", "netns", "exec", "x", "nft"]``).
    ``ruleset``, if given, is a file of nft commands (conf/nftables/threatnet.nft)
    loaded at the head of every resync, in the same transaction; without it a resync
    creates a missing table and sets itself (but no chain: nothing is dropped until
    an operator hooks the sets into a chain). ``conntrack``, if given (e.g.
    ``["conntrack"]``), is run as ``conntrack -D -s IP`` for each newly added address
    so established connections end too (not needed with the shipped ruleset, which
    drops before accepting established traffic; not done on resync).
    """

    name = "firewall"
    expires_itself = True

    def __init__(self, *, table: str = "threatnet", family: str = "inet",
                 set4: str = "tn_v4", set6: str = "tn_v6", set6net: str = "tn_v6net",
                 nft: Sequence[str] = ("nft",),
                 ruleset: str | Path | None = None, conntrack: Sequence[str] | None = None,
                 timeout: float = 30.0, interval: float = 0.0, name: str | None = None,
                 filters: Iterable[KeyFilter] = ()) -> None:
        super().__init__(name=name, filters=filters, interval=interval)
        for label, value in (("table", table), ("set4", set4), ("set6", set6),
                             ("set6net", set6net)):
            if not _NAME.fullmatch(value):
                raise ValueError(f"nftables {label} name {value!r} is not a plain identifier")
        if family not in _FAMILIES:
            raise ValueError(f"nftables family {family!r} is not one of {', '.join(_FAMILIES)}")
        if not nft:
            raise ValueError("nft command is empty")
        self.table = table
        self.family = family
        self.set4 = set4
        self.set6 = set6
        self.set6net = set6net
        self.nft = list(nft)
        self.ruleset = Path(ruleset) if ruleset is not None else None
        self.conntrack = list(conntrack) if conntrack else None
        self.timeout = timeout
        self._applied: dict[int, float] = {}  # key -> expiry of the elements this put there

    # -- Responder

    def update(self, added: Sequence[Threat], removed: Sequence[Threat], now: float) -> None:
        live = [t for t in added if t.expires_at > now]
        ups = self._by_set(live)
        downs = self._by_set(removed)
        applied = self._applied
        lines = []
        for name in self._sets():
            renewed = [t for t in ups.get(name, []) if applied.get(t.key, 0) > now - _MARGIN]
            existing = [(self._element(t), "1s") for t in renewed + downs.get(name, [])]
            # add (exists now) + delete (gone now) + add (fresh timeout): see module doc
            lines += self._elements("add", name, existing)
            lines += self._elements("delete", name, [(e, None) for e, _ in existing])
            lines += self._elements("add", name, [
                (self._element(t), nft_timeout(t.expires_at - now)) for t in ups.get(name, [])])
        if not lines:
            return
        self._run_nft(lines)
        for t in removed:
            applied.pop(t.key, None)
        new = [t for t in live if applied.get(t.key, 0) <= now]
        for t in live:
            applied[t.key] = t.expires_at
        if len(applied) > 2 * len(live) + 1024:  # forget what the kernel has expired
            self._applied = {k: e for k, e in applied.items() if e > now - _MARGIN}
        if self.conntrack:
            self._kill_connections([t for t in new if t.prefix == 128])

    def resync(self, threats: Sequence[Threat], now: float) -> None:
        head = self._ruleset_text()
        body = [f"flush set {self.family} {self.table} {name}" for name in self._sets()]
        by_set = self._by_set(t for t in threats if t.expires_at > now)
        for name in self._sets():
            body += self._elements("add", name, [
                (self._element(t), nft_timeout(t.expires_at - now)) for t in by_set.get(name, [])])
        self._applied = {}  # unknown until this succeeds
        try:
            self._run_nft(head + body)
        except ResponderError as e:
            if self.ruleset is not None or _NO_SUCH not in str(e):
                raise
            log.warning("%s: table %s %s or its sets missing: creating them (load the "
                        "nftables/threatnet.nft that threatnet-examples writes to also drop "
                        "their traffic)", self.name, self.family, self.table)
            self._run_nft(self.definitions() + body)
        self._applied = {t.key: t.expires_at for group in by_set.values() for t in group}

    # -- nft

    def definitions(self) -> list[str]:
        """Commands that create the table and the sets if missing."""
        t = f"{self.family} {self.table}"
        return [f"add table {t}",
                f"add set {t} {self.set4} {{ type ipv4_addr; flags timeout; }}",
                f"add set {t} {self.set6} {{ type ipv6_addr; flags timeout; }}",
                f"add set {t} {self.set6net} {{ type ipv6_addr; flags timeout; }}"]

    def _sets(self) -> tuple[str, str, str]:
        return self.set4, self.set6, self.set6net

    def _by_set(self, threats: Iterable[Threat]) -> dict[str, list[Threat]]:
        """Threats grouped by the set that holds them; other IPv6 prefixes are skipped."""
        groups: dict[str, list[Threat]] = {}
        for t in threats:
            if t.prefix == 128:
                name = self.set4 if t.v4 else self.set6
            elif t.prefix == 64:
                name = self.set6net
            else:
                log.warning("%s: %s skipped: only single addresses and IPv6 /64s are "
                            "supported", self.name, t.ip)
                continue
            groups.setdefault(name, []).append(t)
        return groups

    @staticmethod
    def _element(threat: Threat) -> str:
        return format_ip(threat.key)

    def _ruleset_text(self) -> list[str]:
        if self.ruleset is None:
            return []
        try:
            return [self.ruleset.read_text().rstrip("\n")]
        except OSError as e:
            raise ResponderError(f"cannot read ruleset {self.ruleset}: {e.strerror or e}") from e

    def _elements(self, verb: str, set_name: str,
                  elements: list[tuple[str, str | None]]) -> list[str]:
        lines = []
        for i in range(0, len(elements), _CHUNK):
            chunk = elements[i:i + _CHUNK]
            items = ", ".join(e if t is None else f"{e} timeout {t}" for e, t in chunk)
            lines.append(f"{verb} element {self.family} {self.table} {set_name} {{ {items} }}")
        return lines

    def _run_nft(self, lines: list[str]) -> None:
        batch = "\n".join(lines) + "\n"
        argv = self.nft + ["-f", "-"]
        try:
            done = subprocess.run(argv, input=batch.encode(), capture_output=True,
                                  timeout=self.timeout, check=False)
        except FileNotFoundError:
            raise ResponderError(f"{self.nft[0]}: command not found (install nftables)") from None
        except PermissionError:
            raise ResponderError(f"{self.nft[0]}: permission denied (not executable)") from None
        except subprocess.TimeoutExpired:
            raise ResponderError(f"nft did not finish within {self.timeout:g} s") from None
        if done.returncode != 0:
            raise ResponderError(_nft_reason(done.returncode, done.stderr.decode(errors="replace")))

    def _kill_connections(self, threats: list[Threat]) -> None:
        assert self.conntrack is not None
        if shutil.which(self.conntrack[0]) is None:
            log.error("%s: %s: command not found (install conntrack); established "
                      "connections stay open", self.name, self.conntrack[0])
            return
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(self._conntrack_delete, threats))

    def _conntrack_delete(self, threat: Threat) -> None:
        assert self.conntrack is not None
        family = [] if threat.v4 else ["-f", "ipv6"]
        argv = self.conntrack + ["-D"] + family + ["-s", threat.ip]
        try:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            log.warning("%s: conntrack for %s failed: %s", self.name, threat.ip, e)
            return
        err = done.stderr.decode(errors="replace").strip()
        # conntrack exits 1 when there was nothing to delete ("0 flow entries ...").
        if done.returncode != 0 and "0 flow entries" not in err:
            log.warning("%s: conntrack for %s exited %s: %s", self.name, threat.ip,
                        done.returncode, err[-300:])


def _nft_reason(code: int, stderr: str) -> str:
    """One clear line from nft's error output."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "Error:" in line] or lines
    first = errors[0] if errors else f"exit status {code}"
    if "Operation not permitted" in stderr:
        return f"nft: permission denied (needs root or CAP_NET_ADMIN): {first}"
    if _NO_SUCH in stderr:
        return f"nft: table or set missing ({_NO_SUCH}): {first}"
    return f"nft failed (exit status {code}): {first[:300]}"
