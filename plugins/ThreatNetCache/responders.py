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
from typing import NamedTuple

from threatnet.filter import NetworkFilter
from threatnet.response import (CommandResponder, DnsblResponder, FirewallResponder,
                                ThreatResponse)
from threatnet.response.changes import ChangeLog, ChangesResponder
from threatnet.response.responder import Responder, Threat

GATE_TIMEOUT = 60.0  # seconds a new host waits at most for the one it replaces
STOP_TIMEOUT = 5.0  # seconds die() waits for responders to apply what is pending


def responding(responses, cache):
    """An on_keep hook for ``cache`` (threatnet.cache) that tells ``responses`` of
    every threat kept, whichever path kept it (heard, our own report, a bridge
    relay). Restored snapshots are not kept one by one: the responders start
    from, or resync to, the whole cache after a restore."""
    def kept(entry):
        responses.added(to_threat(entry, cache.timeout))
    return kept


def to_threat(entry, timeout):
    """A cache Entry as responders see it (``timeout``: the cache's block period)."""
    return Threat(entry.key, entry.ip, entry.comment, entry.nick,
                  entry.first_seen + timeout, 64 if "/" in entry.ip else 128)


class Spec(NamedTuple):
    """The responder settings of one channel, as read from the registry."""

    dnsbl: tuple  # (ip4file, ip6file, zone, ttl, keep, discard)
    firewall: tuple  # (enable, family, table, set4, set6, set6net, nft, ruleset, conntrack,
    #                   keep, discard)
    command: tuple  # (argv, expireArgv, timeout, keep, discard)
    http: bool  # feed the HTTP API's change stream


def read_spec(get, http):
    """The Spec of a channel; ``get(name)`` reads a channel registry value."""
    def group(prefix, names):
        return tuple(tuple(v) if isinstance(v, list) else v
                     for v in (get(f"responders.{prefix}.{n}") for n in names))
    return Spec(
        dnsbl=group("dnsbl", ("ip4file", "ip6file", "zone", "ttl", "keep", "discard")),
        firewall=group("firewall", ("enable", "family", "table", "set4", "set6", "set6net",
                                    "nft", "ruleset", "conntrack", "keep", "discard")),
        command=group("command", ("argv", "expireArgv", "timeout", "keep", "discard")),
        http=bool(http))


def _filters(keep, discard):
    filters = []
    if keep:
        filters.append(NetworkFilter("keep", keep, name="keep"))
    if discard:
        filters.append(NetworkFilter("discard", discard, name="discard"))
    return filters


def build(spec):
    """(responders, problems) for a Spec: ``problems`` are (name, reason) of
    responders whose settings are unusable, so they were left out."""
    made, problems = [], []

    def attempt(name, make):
        try:
            made.append(make())
        except ValueError as e:
            problems.append((name, str(e)))

    ip4, ip6, zone, ttl, keep, discard = spec.dnsbl
    if ip4 or ip6:
        attempt("dnsbl", lambda: DnsblResponder(
            ip4 or None, ip6 or None, zone=zone, ttl=ttl, filters=_filters(keep, discard)))
    (enable, family, table, set4, set6, set6net, nft, ruleset, conntrack, keep,
     discard) = spec.firewall
    if enable:
        attempt("firewall", lambda: FirewallResponder(
            family=family, table=table, set4=set4, set6=set6, set6net=set6net,
            nft=shlex.split(nft), ruleset=ruleset or None,
            conntrack=["conntrack"] if conntrack else None, filters=_filters(keep, discard)))
    argv, expire_argv, timeout, keep, discard = spec.command
    if argv:
        attempt("command", lambda: CommandResponder(
            shlex.split(argv), expire_argv=shlex.split(expire_argv) or None,
            timeout=timeout, filters=_filters(keep, discard)))
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

    def __init__(self, network, channel, clock, log, builder=None):
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
    def active(self):
        return self.host is not None

    def configure(self, spec, changes_log: ChangeLog | None, threats):
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
    def _stop(host, done):
        try:
            host.stop(GATE_TIMEOUT)
        finally:
            done.set()

    def added(self, threat):
        if self.host is not None:
            self.host.added(threat)

    def expired(self, key, expires_at):
        if self.host is not None:
            self.host.expired(key, expires_at)

    def resync(self, threats):
        if self.host is not None:
            self.host.resync(threats)

    def status(self):
        """ResponderStatus of each running responder."""
        host = self.host
        return host.status() if host is not None else []

    def stop(self, timeout=STOP_TIMEOUT):
        """Stop the responders (from die()): pending changes are applied first."""
        host, self.host = self.host, None
        if host is not None:
            host.stop(timeout)
            self._done.set()


def describe(status):
    """One responder's health, for `tn responders`."""
    if status.failures:
        health = (f"FAILING ({status.failures} attempt(s), retry in "
                  f"{math.ceil(status.retry_in)} s): {status.last_error}")
    elif status.pending:
        health = f"applying (lag {status.lag:.1f} s)"
    else:
        health = "ok"
    return (f"{status.name}: {status.threats} threats, {status.applies} applies, "
            f"{status.errors} errors, {health}")


def route_logs():
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
