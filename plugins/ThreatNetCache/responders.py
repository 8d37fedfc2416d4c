"""Threat Responses of ThreatNetCache: the responders of each channel, built from the
registry (plugins.ThreatNetCache.responders.*), fed from the channel's Threat Cache.

One ``ChannelResponses`` per (network, channel) for the plugin's lifetime. Its
ThreatResponse host runs every responder on a worker thread of its own; the
plugin's hooks only enqueue (``added``, ``expired``, ``resync``), so a slow or
failing responder (rbldnsd files on a full disk, nft without root, a missing
program) never holds up the bot: the host logs a clear error and retries with
backoff, and ``tn responders`` / the metrics show it.

When the settings change, a new host is started with the cache as it is now,
and the old one is stopped on a thread of its own. The new host's responders
wait (``_Gated``) until the old host has finished, so an old write can never
land after a new one on the same files or sets.
"""
from __future__ import annotations

import logging
import math
import shlex
import threading
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from threatnet.filter import NetworkFilter
from threatnet.response import (CommandResponder, DnsblResponder, FirewallResponder,
                                ThreatResponse)
from threatnet.response.changes import ChangeLog, ChangesResponder
from threatnet.response.host import ResponderStatus
from threatnet.response.responder import Responder, Threat

GATE_TIMEOUT = 60.0  # seconds a new host waits at most for the one it replaces
STOP_TIMEOUT = 5.0  # seconds die() waits for responders to apply what is pending
T = TypeVar("T", bound=tuple)


_Nets = tuple[str, ...]  # networks, as the keep and discard settings give them
# responders.<name>.* of one channel, each field named as its setting.
DnsblSpec = NamedTuple("DnsblSpec", [
    ("ip4file", str), ("ip6file", str), ("zone", str), ("ttl", int), ("keep", _Nets),
    ("discard", _Nets)])
FirewallSpec = NamedTuple("FirewallSpec", [
    ("enable", bool), ("family", str), ("table", str), ("set4", str), ("set6", str),
    ("set6net", str), ("nft", str), ("ruleset", str), ("conntrack", bool), ("keep", _Nets),
    ("discard", _Nets)])
CommandSpec = NamedTuple("CommandSpec", [
    ("argv", str), ("expireArgv", str), ("timeout", float), ("keep", _Nets),
    ("discard", _Nets)])


class Spec(NamedTuple):
    """The responder settings of one channel, as read from the registry."""

    dnsbl: DnsblSpec
    firewall: FirewallSpec
    command: CommandSpec
    http: bool  # feed the HTTP API's change stream


def read_spec(get: Callable[[str], Any], http: bool) -> Spec:
    """The Spec of a channel; ``get(name)`` reads a channel registry value."""
    def group(prefix: str, record: type[T]) -> T:
        values = (get(f"responders.{prefix}.{name}") for name in record._fields)
        return record(*(tuple(v) if isinstance(v, list) else v for v in values))
    return Spec(dnsbl=group("dnsbl", DnsblSpec), firewall=group("firewall", FirewallSpec),
                command=group("command", CommandSpec), http=bool(http))


def _filters(keep: _Nets, discard: _Nets) -> list[NetworkFilter]:
    filters = []
    if keep:
        filters.append(NetworkFilter("keep", keep, name="keep"))
    if discard:
        filters.append(NetworkFilter("discard", discard, name="discard"))
    return filters


def build(spec: Spec) -> tuple[list[Responder], list[tuple[str, str]]]:
    """(responders, problems) for a Spec: ``problems`` are (name, reason) of
    responders whose settings are unusable, so they were left out."""
    made: list[Responder] = []
    problems: list[tuple[str, str]] = []

    def attempt(name: str, make: Callable[[], Responder]) -> None:
        try:
            made.append(make())
        except ValueError as e:
            problems.append((name, str(e)))

    dnsbl, firewall, command = spec.dnsbl, spec.firewall, spec.command
    if dnsbl.ip4file or dnsbl.ip6file:
        attempt("dnsbl", lambda: DnsblResponder(
            dnsbl.ip4file or None, dnsbl.ip6file or None, zone=dnsbl.zone, ttl=dnsbl.ttl,
            filters=_filters(dnsbl.keep, dnsbl.discard)))
    if firewall.enable:
        attempt("firewall", lambda: FirewallResponder(
            family=firewall.family, table=firewall.table, set4=firewall.set4,
            set6=firewall.set6, set6net=firewall.set6net, nft=shlex.split(firewall.nft),
            ruleset=firewall.ruleset or None,
            conntrack=["conntrack"] if firewall.conntrack else None,
            filters=_filters(firewall.keep, firewall.discard)))
    if command.argv:
        attempt("command", lambda: CommandResponder(
            shlex.split(command.argv), expire_argv=shlex.split(command.expireArgv) or None,
            timeout=command.timeout, filters=_filters(command.keep, command.discard)))
    return made, problems


class _Gated(Responder):
    """``inner``, whose first apply waits until ``gate`` is set (see the module doc)."""

    def __init__(self, inner, gate):
        super().__init__(name=inner.name, filters=inner.filters, interval=inner.interval)
        self.expires_itself = inner.expires_itself
        self.inner = inner
        self.gate = gate

    def accepts(self, key):
        return self.inner.accepts(key)

    def _wait(self):
        if not self.gate.is_set():
            self.gate.wait(GATE_TIMEOUT)

    def update(self, added, removed, now):
        self._wait()
        self.inner.update(added, removed, now)

    def resync(self, threats, now):
        self._wait()
        self.inner.resync(threats, now)

    def due(self):
        return self.inner.due()

    def close(self):
        self.inner.close()


class _Shared(ChangesResponder):
    """The channel's one ChangesResponder, used by host after host: never closed."""

    def close(self):
        pass


class ChannelResponses:
    """The responders of one channel (see the module doc). Main-thread API, except
    ``status``, which any thread may call."""

    def __init__(self, network: str, channel: str, clock: Callable[[], float],
                 log: logging.Logger, builder: Callable[[Spec], tuple] | None = None) -> None:
        self.network = network
        self.channel = channel
        self.clock = clock
        self.log = log
        self.builder = builder or build  # tests pass their own
        self.spec = None
        self.problems = []  # (name, reason) of responders left out
        self.host = None  # ThreatResponse, or None without responders
        self.changes = None  # _Shared, once the HTTP API wanted it
        self._done = threading.Event()  # set when no host is running any more
        self._done.set()

    @property
    def active(self) -> bool:
        return self.host is not None

    def configure(self, spec: Spec, changes_log: ChangeLog | None,
                  threats: Callable[[], list[Threat]]) -> None:
        """Rebuild the responders if ``spec`` changed; ``threats()`` gives the cache's
        current threats, the new host's starting point."""
        if spec == self.spec:
            return
        self.spec = spec
        responders, self.problems = self.builder(spec)
        for name, reason in self.problems:
            self.log.error("%s on %s: %s responder not started: %s", self.channel,
                           self.network, name, reason)
        if spec.http and changes_log is not None:
            if self.changes is None or self.changes.log is not changes_log:
                self.changes = _Shared(changes_log, self.network, self.channel)
            responders.append(self.changes)
        old, old_done = self.host, self._done
        if responders:
            self._done = threading.Event()
            self.host = ThreatResponse([_Gated(r, old_done) for r in responders],
                                       clock=self.clock)
            self.host.start(threats())
            self.log.info("%s on %s: responders %s", self.channel, self.network,
                          ", ".join(r.name for r in responders))
        else:
            self.host = None  # self._done stays old_done: set once the old host is gone
        if old is not None:
            threading.Thread(target=self._stop, args=(old, old_done), daemon=True,
                             name=f"threatnet-response-stop-{self.channel}").start()

    @staticmethod
    def _stop(host: ThreatResponse, done: threading.Event) -> None:
        try:
            host.stop(GATE_TIMEOUT)
        finally:
            done.set()

    def added(self, threat: Threat) -> None:
        if self.host is not None:
            self.host.added(threat)

    def expired(self, key: int, expires_at: float | None = None) -> None:
        """The threat expired (``expires_at``: its own expiry) or was taken back (None)."""
        if self.host is not None:
            self.host.expired(key, expires_at)

    def resync(self, threats: list[Threat]) -> None:
        if self.host is not None:
            self.host.resync(threats)

    def status(self) -> list[ResponderStatus]:
        """ResponderStatus of each running responder."""
        host = self.host
        return host.status() if host is not None else []

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the responders (from die()): pending changes are applied first."""
        host, self.host = self.host, None
        if host is not None:
            host.stop(timeout)
            self._done.set()


def health(status: ResponderStatus) -> str:
    """Whether a responder is ok, applying, or failing (with the error and next retry)."""
    if status.failures:
        return (f"FAILING ({status.failures} attempt(s), retry in "
                f"{math.ceil(status.retry_in)} s): {status.last_error}")
    if status.pending:
        return f"applying (lag {status.lag:.1f} s)"
    return "ok"


def describe(status: ResponderStatus) -> str:
    """One responder's health, for `tn responders`."""
    return (f"{status.name}: {status.threats} threats, {status.applies} applies, "
            f"{status.errors} errors, {health(status)}")


def route_logs() -> Callable[[], None]:
    """Send the responders' log records (logger ``threatnet``) to Limnoria's log
    handlers, so a failing responder shows in the bot's log, not only on stderr.
    Returns an undo function for die()."""
    source = logging.getLogger("threatnet")
    added = [h for h in logging.getLogger("supybot").handlers if h not in source.handlers]
    for handler in added:
        source.addHandler(handler)
    propagate = source.propagate
    source.propagate = False

    def undo():
        for handler in added:
            source.removeHandler(handler)
        source.propagate = propagate
    return undo
